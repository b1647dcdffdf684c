//! The one place atomics and interior-mutable cells come from.
//!
//! Under `--cfg loom` every atomic and the slot cell switch to loom's checked versions, so the
//! same ring code runs inside loom models over the simulated region.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicI64, AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicI64, AtomicU32, AtomicU64, Ordering};

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
