//! Cross-process futex wait/wake on a 32-bit word.
//!
//! The calls use the *shared* futex operations (no `FUTEX_PRIVATE_FLAG`): the kernel keys the wait
//! queue by the backing page, so waiters and wakers in different processes meet on a word in a
//! `MAP_SHARED` mapping even when it is mapped at different addresses.
//!
//! Like every futex, [`wait`] may return [`WaitResult::Woken`] spuriously: callers re-check their
//! condition in a loop.
//!
//! On platforms other than Linux there is no futex: [`wait`] polls instead (it sleeps at most
//! 100 µs, then reports `ValueChanged` if the word moved, `TimedOut` if the whole timeout has
//! elapsed, else a spurious `Woken`), and [`wake`] does nothing and returns 0.

// The futex word is std's `AtomicU32`: this platform crate knows nothing of rings or of the
// transport's `sync` facade (which re-exports this very type outside loom builds); callers
// hand in a word that lives in their shared mapping.
#![allow(clippy::disallowed_types)]

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// How a [`wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitResult {
    /// A wake was delivered (or the wait ended spuriously): re-check the condition.
    Woken,
    /// The word did not hold `expected` when the wait started (`EAGAIN`).
    ValueChanged,
    /// The timeout elapsed (`ETIMEDOUT`).
    TimedOut,
    /// A signal interrupted the wait (`EINTR`), or the kernel reported another error.
    Interrupted,
}

/// Sleeps while `*word == expected`, until woken, interrupted, or `timeout` (relative; `None` =
/// forever) elapses.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> WaitResult {
    imp::wait(word, expected, timeout)
}

/// Wakes up to `count` waiters on `word`; returns how many were woken.
pub fn wake(word: &AtomicU32, count: u32) -> usize {
    imp::wake(word, count)
}

/// Wakes every waiter on `word`; returns how many were woken.
pub fn wake_all(word: &AtomicU32) -> usize {
    imp::wake(word, i32::MAX as u32)
}

#[cfg(target_os = "linux")]
mod imp {
    use super::WaitResult;
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    pub(super) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> WaitResult {
        let ts = timeout.map(to_timespec);
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `word` is a live, aligned u32 for the whole call (borrowed); the kernel only reads
        // it atomically. `ts_ptr` is null or points to `ts`, which outlives the call. FUTEX_WAIT
        // ignores the remaining arguments.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                ts_ptr,
                std::ptr::null::<u32>(),
                0u32,
            )
        };
        if rc == 0 {
            return WaitResult::Woken;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) => WaitResult::ValueChanged,
            Some(libc::ETIMEDOUT) => WaitResult::TimedOut,
            _ => WaitResult::Interrupted,
        }
    }

    pub(super) fn wake(word: &AtomicU32, count: u32) -> usize {
        let count = count.min(i32::MAX as u32) as libc::c_int;
        // SAFETY: `word` is a live, aligned u32 (borrowed); FUTEX_WAKE only uses its address as a
        // key and ignores the remaining arguments.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE,
                count,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                0u32,
            )
        };
        usize::try_from(rc).unwrap_or(0)
    }

    /// Relative timeout as a `timespec`, saturating at the largest representable value.
    fn to_timespec(d: Duration) -> libc::timespec {
        libc::timespec {
            tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
            // subsec_nanos() < 1_000_000_000 fits every c_long.
            tv_nsec: d.subsec_nanos() as libc::c_long,
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::WaitResult;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    const POLL: Duration = Duration::from_micros(100);

    pub(super) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> WaitResult {
        if word.load(Ordering::Acquire) != expected {
            return WaitResult::ValueChanged;
        }
        let nap = timeout.map_or(POLL, |t| t.min(POLL));
        std::thread::sleep(nap);
        if word.load(Ordering::Acquire) != expected {
            WaitResult::ValueChanged
        } else if timeout.is_some_and(|t| t <= POLL) {
            WaitResult::TimedOut
        } else {
            WaitResult::Woken
        }
    }

    pub(super) fn wake(_word: &AtomicU32, _count: u32) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    const DEADLINE: Duration = Duration::from_secs(30);

    #[test]
    fn wait_on_a_different_value_returns_value_changed() {
        let word = AtomicU32::new(1);
        assert_eq!(wait(&word, 0, None), WaitResult::ValueChanged);
    }

    #[test]
    fn wait_times_out() {
        let word = AtomicU32::new(0);
        assert_eq!(
            wait(&word, 0, Some(Duration::from_millis(5))),
            WaitResult::TimedOut
        );
    }

    #[test]
    fn wake_without_waiters_wakes_nobody() {
        let word = AtomicU32::new(0);
        assert_eq!(wake(&word, 1), 0);
        assert_eq!(wake_all(&word), 0);
    }

    #[test]
    fn huge_timeout_does_not_overflow() {
        let word = AtomicU32::new(3);
        assert_eq!(
            wait(&word, 0, Some(Duration::MAX)),
            WaitResult::ValueChanged
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sleeping_waiter_is_woken_by_wake_all() {
        let word = Arc::new(AtomicU32::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (word, done) = (Arc::clone(&word), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut woken = 0;
                while word.load(Ordering::Acquire) == 0 {
                    if wait(&word, 0, None) == WaitResult::Woken {
                        woken += 1;
                    }
                }
                done.store(true, Ordering::Release);
                woken
            })
        };
        let deadline = Instant::now() + DEADLINE;
        // Phase 1: the waiter really sleeps in the kernel (wake reports a woken thread).
        while wake_all(&word) == 0 {
            assert!(Instant::now() < deadline, "waiter never went to sleep");
            std::thread::yield_now();
        }
        // Phase 2: change the word and wake until the waiter reports done.
        while !done.load(Ordering::Acquire) {
            word.store(1, Ordering::Release);
            wake_all(&word);
            assert!(Instant::now() < deadline, "waiter never finished");
            std::thread::yield_now();
        }
        let woken = waiter.join().unwrap();
        assert!(woken >= 1, "the waiter saw no Woken result");
    }
}
