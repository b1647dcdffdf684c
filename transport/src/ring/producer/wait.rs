//! The one wait-for-space loop of the producer, shared by every blocking publish and claim.
//!
//! What differs between a plain publish, a bounded one and a managed one is only what happens
//! on each round without room: nothing, a deadline check, or a liveness check. That is a
//! [`SpaceHook`]; the loop itself (rescan, spin, yield, futex sleep) exists once.

use super::Producer;
use crate::backend::RingBackend;
use crate::ring::error::MultiProcessError;
use crate::ring::event::ShmEvent;
use crate::ring::layout::Segment;
use crate::ring::registry;
use crate::ring::sync::spin_hint;
use crate::ring::wait::block_on;
use std::convert::Infallible;
use std::time::Duration;

/// Rounds of pausing (each `SPACE_SPIN_PAUSES` pause instructions, then one rescan) before a
/// producer waiting for space starts yielding: tens of microseconds.
const SPACE_SPIN_ROUNDS: u32 = 2048;
const SPACE_SPIN_PAUSES: u32 = 16;
/// Rounds of `sched_yield` before it blocks on the futex.
const SPACE_YIELD_ROUNDS: u32 = 256;
/// Longest single futex sleep of a producer waiting for space; bounds the cost of a wake-up the
/// unfenced consumer release path can miss.
pub(crate) const SPACE_WAIT_SLICE: Duration = Duration::from_micros(100);

/// What a hook may read of the ring while the producer waits (never its mutable state).
pub(crate) struct RingView<'a, E: ShmEvent, B: RingBackend> {
    pub(crate) seg: &'a Segment<E, B>,
    pub(crate) backend: &'a B,
    /// Last sequence the producer published (stamped).
    pub(crate) published: i64,
    pub(crate) capacity: i64,
}

/// The per-round policy of a producer waiting for space.
pub(crate) trait SpaceHook<E: ShmEvent, B: RingBackend> {
    /// Why a wait ended without space.
    type Error;
    /// The ring has room at `now` (the wait is over, possibly after no round at all).
    fn on_room(&mut self, _ring: &RingView<'_, E, B>, _now: Duration) {}
    /// One round without room for sequence `want` at `now`: go on (returning the longest the
    /// producer may sleep before the hook must run again) or stop with an error.
    fn on_full(
        &mut self,
        ring: &RingView<'_, E, B>,
        now: Duration,
        want: i64,
    ) -> Result<Duration, Self::Error>;
}

/// Wait as long as it takes (plain `publish`).
#[derive(Debug)]
pub(crate) struct NoDeadline;

impl<E: ShmEvent, B: RingBackend> SpaceHook<E, B> for NoDeadline {
    type Error = Infallible;
    fn on_full(
        &mut self,
        _: &RingView<'_, E, B>,
        _: Duration,
        _: i64,
    ) -> Result<Duration, Infallible> {
        Ok(SPACE_WAIT_SLICE)
    }
}

/// Wait until a deadline (`*_timeout` calls); `None` or a deadline past the clock's range means
/// no bound.
#[derive(Debug)]
pub(crate) struct Deadline {
    start: Duration,
    timeout: Option<Duration>,
}

impl Deadline {
    pub(crate) fn new(start: Duration, timeout: Option<Duration>) -> Self {
        Deadline { start, timeout }
    }
}

impl<E: ShmEvent, B: RingBackend> SpaceHook<E, B> for Deadline {
    type Error = MultiProcessError;
    fn on_full(
        &mut self,
        _: &RingView<'_, E, B>,
        now: Duration,
        _: i64,
    ) -> Result<Duration, MultiProcessError> {
        let waited = now.saturating_sub(self.start);
        match self.timeout {
            Some(t) if waited >= t => Err(MultiProcessError::Timeout {
                op: "publish",
                waited,
            }),
            Some(t) => Ok((t - waited).min(SPACE_WAIT_SLICE)),
            None => Ok(SPACE_WAIT_SLICE),
        }
    }
}

impl<E: ShmEvent, B: RingBackend> Producer<E, B> {
    pub(crate) fn view(&self) -> RingView<'_, E, B> {
        RingView {
            seg: &self.seg,
            backend: &self.backend,
            published: self.next - 1,
            capacity: self.capacity,
        }
    }

    /// Waits until `n` more slots are free; returns the next sequence. Counts the wait in the
    /// ring's observability counters (blocked waits, blocked time).
    pub(super) fn wait_for_space<H: SpaceHook<E, B>>(
        &mut self,
        n: i64,
        hook: &mut H,
    ) -> Result<i64, H::Error> {
        let want = self.next + n - 1;
        let start = self.backend.now();
        let mut idle = 0u32;
        loop {
            self.refresh_limit();
            let now = self.backend.now();
            if want <= self.limit {
                hook.on_room(&self.view(), now);
                if idle > 0 {
                    crate::observability::record_blocked(
                        self.seg.header(),
                        now.saturating_sub(start),
                    );
                }
                return Ok(self.next);
            }
            let slice = match hook.on_full(&self.view(), now, want) {
                Ok(slice) => slice.clamp(Duration::from_micros(1), SPACE_WAIT_SLICE),
                Err(e) => {
                    crate::observability::record_blocked(
                        self.seg.header(),
                        now.saturating_sub(start),
                    );
                    return Err(e);
                }
            };
            idle = idle.saturating_add(1);
            let spin = self.backend.spin_rounds(SPACE_SPIN_ROUNDS);
            // Past the spin phase, on every round that yields or sleeps: a dead anonymous
            // consumer may be what holds the ring full (nobody can rejoin it). (Mutant
            // `reap_never`: skipped, see `Producer::on_try_full`.)
            #[cfg(not(myelon_mutant = "reap_never"))]
            if idle >= spin && registry::reap_dead_anonymous(&self.seg, &self.backend) > 0 {
                continue;
            }
            if idle < spin {
                // Rescanning reads every consumer's cursor line; pause between scans so the
                // consumers keep their lines while they drain.
                for _ in 0..SPACE_SPIN_PAUSES {
                    spin_hint();
                }
            } else if idle < spin + self.backend.spin_rounds(SPACE_YIELD_ROUNDS) {
                self.backend.yield_now();
            } else {
                let (seg, backend, next, cap) =
                    (&self.seg, &self.backend, self.next, self.capacity);
                block_on(&self.backend, &seg.header().producer_wake, slice, || {
                    registry::gating_minimum(seg, backend, next - 1) + cap >= want
                });
            }
        }
    }
}
