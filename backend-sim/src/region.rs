//! A zero-filled heap region standing in for a shared-memory mapping.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;

/// Alignment of every simulated region; at least a cache-line pair, like a page-aligned mapping.
pub const REGION_ALIGN: usize = 4096;

/// A zero-filled heap allocation shared by every simulated process that "maps" it.
#[derive(Debug)]
pub struct SimRegion {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the region is plain bytes owned by this struct; concurrent access to the bytes is
// coordinated by the atomics the ring places inside them, exactly as for a real shared mapping.
unsafe impl Send for SimRegion {}
// SAFETY: see `Send`; `SimRegion` itself exposes only a raw pointer and a length.
unsafe impl Sync for SimRegion {}

impl SimRegion {
    /// Allocates `len` zeroed bytes aligned to [`REGION_ALIGN`]. Returns `None` for a zero
    /// length or when the allocator refuses.
    pub fn new_zeroed(len: usize) -> Option<SimRegion> {
        if len == 0 {
            return None;
        }
        let layout = Layout::from_size_align(len, REGION_ALIGN).ok()?;
        // SAFETY: `layout` has a non-zero size (checked above) as `alloc_zeroed` requires.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw)?;
        Some(SimRegion { ptr, layout })
    }

    /// Base address of the region.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length of the region in bytes.
    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// Always false: zero-length regions cannot be created.
    pub fn is_empty(&self) -> bool {
        self.layout.size() == 0
    }
}

impl Drop for SimRegion {
    fn drop(&mut self) {
        // SAFETY: `ptr` was returned by `alloc_zeroed(self.layout)` in `new_zeroed` and is freed
        // exactly once, here.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_zeroed_and_aligned() {
        for len in [1usize, 63, 4096, 1 << 20] {
            let r = SimRegion::new_zeroed(len).expect("alloc");
            assert_eq!(r.len(), len);
            assert_eq!(r.as_ptr() as usize % REGION_ALIGN, 0);
            // SAFETY: the region owns `len` initialised (zeroed) bytes at `as_ptr()`.
            let bytes = unsafe { std::slice::from_raw_parts(r.as_ptr(), len) };
            assert!(bytes.iter().all(|b| *b == 0));
        }
        assert!(SimRegion::new_zeroed(0).is_none());
    }
}
