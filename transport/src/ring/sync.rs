//! The one place atomics and interior-mutable cells come from.
//!
//! Under `--cfg loom` every atomic and the slot cell switch to loom's checked versions, so the
//! same ring code runs inside loom models over the simulated region.
//!
//! Outside loom the atomics are `#[repr(transparent)]` wrappers that dereference to std's, not
//! re-exports of them: `clippy.toml` disallows std's atomic types everywhere else, and a
//! re-export would resolve to the very type it disallows. So a std atomic written anywhere in
//! the crate is a clippy error, and every atomic that lives in shared memory comes from here.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, Ordering};
#[cfg(loom)]
pub use loom::sync::atomic::{AtomicI64, AtomicU32, AtomicU64};

/// Declares a facade atomic: same size, alignment and bit validity as the std type it wraps
/// (so `offset_of!` assertions and zero-filled regions are unaffected), every std method
/// through `Deref`.
#[cfg(not(loom))]
macro_rules! facade_atomic {
    ($(#[$doc:meta])* $name:ident($std:ident, $int:ty)) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Debug, Default)]
        pub struct $name(
            // The one place the std type is named (see the module docs).
            #[allow(clippy::disallowed_types)] std::sync::atomic::$std,
        );

        impl $name {
            /// A new atomic holding `v`.
            #[inline]
            pub const fn new(v: $int) -> Self {
                #[allow(clippy::disallowed_types)] // the wrapped std type, see above
                let inner = std::sync::atomic::$std::new(v);
                $name(inner)
            }
        }

        impl std::ops::Deref for $name {
            #[allow(clippy::disallowed_types)] // the wrapped std type, see above
            type Target = std::sync::atomic::$std;
            #[inline]
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }
    };
}

#[cfg(not(loom))]
facade_atomic! {
    /// A 64-bit signed atomic for shared memory (cursors, stamps); derefs to std's `AtomicI64`.
    AtomicI64(AtomicI64, i64)
}
#[cfg(not(loom))]
facade_atomic! {
    /// A 64-bit unsigned atomic for shared memory; derefs to std's `AtomicU64`.
    AtomicU64(AtomicU64, u64)
}
#[cfg(not(loom))]
facade_atomic! {
    /// A 32-bit atomic for shared memory, also the futex word of [`crate::backend::RingBackend`]
    /// waits; derefs to std's `AtomicU32` (what an OS futex call takes).
    AtomicU32(AtomicU32, u32)
}

/// Spin-loop hint (a no-op yield point under loom).
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// A cell holding one event inside a ring slot.
///
/// Access is coordinated by the slot's stamp: the producer writes only slots no gating consumer
/// still holds, and consumers read only slots whose stamp they have acquired.
#[repr(transparent)]
pub(crate) struct SlotCell<T> {
    #[cfg(not(loom))]
    inner: std::cell::UnsafeCell<T>,
    #[cfg(loom)]
    inner: loom::cell::UnsafeCell<T>,
}

impl<T> SlotCell<T> {
    pub(crate) fn new(value: T) -> Self {
        SlotCell {
            #[cfg(not(loom))]
            inner: std::cell::UnsafeCell::new(value),
            #[cfg(loom)]
            inner: loom::cell::UnsafeCell::new(value),
        }
    }

    /// Runs `f` with a shared pointer to the value (tracked as a read under loom).
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(not(loom))]
        return f(self.inner.get());
        #[cfg(loom)]
        return self.inner.with(f);
    }

    /// Runs `f` with a mutable pointer to the value (tracked as a write under loom).
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(not(loom))]
        return f(self.inner.get());
        #[cfg(loom)]
        return self.inner.with_mut(f);
    }
}

/// Process-local synchronisation of the async doorbell's helper thread (`asynch/doorbell.rs`):
/// std's, or loom's under `--cfg loom`, so that loom models run the helper thread, its lock and
/// its condition variable as part of the model. Nothing here lives in shared memory.
#[cfg(all(feature = "tokio", not(loom)))]
pub(crate) mod local {
    pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use std::thread;
}
#[cfg(all(feature = "tokio", loom))]
pub(crate) mod local {
    pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use loom::thread;
}
