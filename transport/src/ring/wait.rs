//! Wait strategies and the configurable wait-policy helpers.
//!
//! Environment variables (read once per process, values in microseconds):
//!
//! | variable | default | used by |
//! |---|---|---|
//! | `MYELON_BLOCK_WAIT_US` | 1000 | longest single futex sleep of [`AutoWaitStrategy::Block`] |
//! | `MYELON_CONSUME_SLEEP_US` | 50 | `consume_next_with_sleep` and [`perform_default_consume_sleep_wait`] |
//! | `MYELON_DISCOVERY_POLL_US` | 1000 | attach/coordination polling loops |

use crate::backend::{RingBackend, SchedPoint};
use crate::ring::layout::WakeLine;
use crate::ring::sync::{fence, spin_hint, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// Wait strategy for consumers (and for [`crate::AutoConsumer`]) when no event is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoWaitStrategy {
    /// Spin on the slot: lowest latency, one core busy.
    #[default]
    BusySpin,
    /// Spin briefly, then `sched_yield` between polls.
    Yield,
    /// Sleep for the given duration between polls.
    Sleep(Duration),
    /// Spin briefly, then block on a futex in shared memory until the producer publishes (a
    /// real kernel sleep; the producer pays a fence and a wake syscall only while a consumer is
    /// blocked). Each sleep lasts at most [`default_block_strategy_duration`], so liveness and
    /// end-of-stream are re-checked regularly.
    Block,
}

fn env_micros(var: &str, default_us: u64) -> Duration {
    let us = std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default_us);
    Duration::from_micros(us)
}

/// Return the configured backoff used by [`AutoWaitStrategy::Block`]: the longest single
/// futex sleep (`MYELON_BLOCK_WAIT_US`, default 1 ms).
pub fn default_block_strategy_duration() -> Duration {
    static V: OnceLock<Duration> = OnceLock::new();
    *V.get_or_init(|| env_micros("MYELON_BLOCK_WAIT_US", 1000))
}

/// Return the configured sleep used by `consume_next_with_sleep` and similar helpers
/// (`MYELON_CONSUME_SLEEP_US`, default 50 µs).
pub fn default_consume_sleep_duration() -> Duration {
    static V: OnceLock<Duration> = OnceLock::new();
    *V.get_or_init(|| env_micros("MYELON_CONSUME_SLEEP_US", 50))
}

/// Return the configured poll interval used by discovery/startup coordination loops
/// (`MYELON_DISCOVERY_POLL_US`, default 1 ms).
pub fn default_discovery_poll_duration() -> Duration {
    static V: OnceLock<Duration> = OnceLock::new();
    *V.get_or_init(|| env_micros("MYELON_DISCOVERY_POLL_US", 1000))
}

/// Apply the configured [`AutoWaitStrategy::Block`] wait policy when no shared word is at hand:
/// sleeps for [`default_block_strategy_duration`].
pub fn perform_default_block_wait() {
    std::thread::sleep(default_block_strategy_duration());
}

/// Apply the configured consumer sleep wait policy.
pub fn perform_default_consume_sleep_wait() {
    std::thread::sleep(default_consume_sleep_duration());
}

/// Apply the configured discovery/startup polling wait policy.
pub fn perform_default_discovery_poll_wait() {
    std::thread::sleep(default_discovery_poll_duration());
}

/// Apply the explicit [`AutoWaitStrategy::Sleep`] wait policy.
pub fn perform_sleep_wait(duration: Duration) {
    std::thread::sleep(duration);
}

/// Spins before the first yield or block.
const SPIN_LIMIT: u32 = 128;

/// Per-call idle state of a blocking loop.
#[derive(Debug, Default)]
pub(crate) struct Idle {
    spins: u32,
}

impl Idle {
    /// Waits once according to `strategy`, at most `max` long. `ready` re-checks the condition
    /// after announcing a blocked waiter (the futex protocol needs it). For `Block`, the caller
    /// must have registered as a sleeper on `line` (see `WakeLine::sleepers_registered`).
    pub(crate) fn wait<B: RingBackend>(
        &mut self,
        strategy: AutoWaitStrategy,
        backend: &B,
        line: &WakeLine,
        max: Duration,
        ready: impl FnOnce() -> bool,
    ) {
        self.spins = self.spins.saturating_add(1);
        match strategy {
            AutoWaitStrategy::BusySpin => spin_hint(),
            _ if self.spins < backend.spin_rounds(SPIN_LIMIT) => spin_hint(),
            AutoWaitStrategy::Yield => backend.yield_now(),
            AutoWaitStrategy::Sleep(d) => backend.sleep(d.min(max)),
            AutoWaitStrategy::Block => block_on(
                backend,
                line,
                default_block_strategy_duration().min(max),
                ready,
            ),
        }
    }
}

/// One futex sleep on `line`, announced through `waiters` so that the waker knows to wake.
pub(crate) fn block_on<B: RingBackend>(
    backend: &B,
    line: &WakeLine,
    timeout: Duration,
    ready: impl FnOnce() -> bool,
) {
    backend.sched_point(SchedPoint::WaitArm, 0);
    let seen = line.seq.load(Ordering::Acquire);
    line.waiters.fetch_add(1, Ordering::SeqCst);
    // Pairs with the fence in `notify`: either the waker sees `waiters > 0`, or `ready` sees
    // the state the waker published before its fence.
    fence(Ordering::SeqCst);
    backend.sched_point(SchedPoint::WaitRecheck, 0);
    // Mutant: arms the wait but skips the re-check (a wake-up published before the arm is
    // lost until the timeout).
    #[cfg(myelon_mutant = "lost_wake")]
    let ready = || {
        let _ = ready;
        false
    };
    if !ready() && !timeout.is_zero() {
        backend.wait(&line.seq, seen, timeout);
    }
    line.waiters.fetch_sub(1, Ordering::SeqCst);
}

/// Wakes whoever blocks on `line`, if anyone registered to. Cheap when nobody did: one relaxed
/// load of a line that is read-mostly.
#[inline]
pub(crate) fn notify<B: RingBackend>(backend: &B, line: &WakeLine) {
    backend.sched_point(SchedPoint::WakeCheck, 0);
    if line.sleepers_registered.load(Ordering::Relaxed) == 0 {
        return;
    }
    notify_now(backend, line);
}

/// Wakes whoever blocks on `line`, with the fence that pairs with `block_on`.
#[inline]
pub(crate) fn notify_now<B: RingBackend>(backend: &B, line: &WakeLine) {
    // Mutant: no fence, so the waker may read `waiters == 0` while the waiter's re-check misses
    // what was published (loom: `block_wakes_after_publish`).
    #[cfg(not(myelon_mutant = "wake_no_fence"))]
    fence(Ordering::SeqCst);
    if line.waiters.load(Ordering::Relaxed) != 0 {
        line.seq.fetch_add(1, Ordering::Release);
        backend.wake_all(&line.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_parsing_falls_back_on_garbage() {
        assert_eq!(
            env_micros("MYELON_TEST_UNSET_VARIABLE", 7),
            Duration::from_micros(7)
        );
    }

    #[test]
    fn defaults_are_positive() {
        assert!(!default_block_strategy_duration().is_zero());
        assert!(!default_consume_sleep_duration().is_zero());
        assert!(!default_discovery_poll_duration().is_zero());
    }
}
