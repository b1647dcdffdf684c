//! The single producer of a ring (Layer 0).
//!
//! Steady-state `publish` is: compare the next sequence with a cached limit, write the event in
//! place, store the slot stamp (`Release`), store the producer cursor (`Release`), and load one
//! read-mostly word to learn whether a consumer sleeps. No allocation, no syscall, no lock, no
//! fence. Only when the cached limit is reached does the producer rescan the consumer table.

mod claim;
mod managed;
mod wait;

pub use claim::BatchClaim;
pub(crate) use wait::{Deadline, RingView, SpaceHook};

use crate::backend::{RingBackend, SchedPoint};
use crate::liveness::LivenessMonitor;
use crate::ring::error::{MultiProcessError, MultiProcessResult, RingBufferFull};
use crate::ring::event::ShmEvent;
use crate::ring::layout::{Segment, STATE_CLOSED};
use crate::ring::registry::{self, ConsumerInfo};
use crate::ring::sync::Ordering;
use crate::ring::wait::notify;
use crate::Sequence;
use std::time::Duration;
use wait::NoDeadline;

pub use crate::ring::builder::CoordinationMode;

/// A non-blocking call that finds the ring full frees dead anonymous consumers' entries once in
/// this many results (a blocking wait does it on every round past its spin phase).
const TRY_FULLS_PER_REAP: u32 = 64;

/// Ordering of the stamp store that publishes a slot. `Release` (pairs with the consumer's
/// `Acquire` stamp load, I3); the `relaxed_stamp` mutant weakens it so loom and the DST harness
/// can show that they catch the bug.
#[cfg(not(myelon_mutant = "relaxed_stamp"))]
const STAMP_PUBLISH: Ordering = Ordering::Release;
#[cfg(myelon_mutant = "relaxed_stamp")]
const STAMP_PUBLISH: Ordering = Ordering::Relaxed;

/// Multi-process producer for publishing events to a shared-memory ring, generic over the
/// backend. Use the aliases [`crate::SharedProducer`] and [`crate::MmapProducer`].
///
/// Every field is private to this module and its children (`claim`, `managed`, `wait`): the
/// producer's state has one owner. The liveness module supplies a `SpaceHook` for the managed
/// calls; it never touches these fields.
pub struct Producer<E: ShmEvent, B: RingBackend> {
    seg: Segment<E, B>,
    backend: B,
    name: String,
    /// Next sequence to publish.
    next: i64,
    /// Last cursor stored in the header (`next - 1` except inside a batch).
    announced: i64,
    /// Highest sequence publishable without rescanning the consumer table.
    limit: i64,
    capacity: i64,
    /// Required-consumer liveness, when enabled (cold path only).
    liveness: Option<Box<LivenessMonitor>>,
    /// Whether `liveness` holds a sticky failure (read by every managed publish, so kept here
    /// rather than behind the box).
    liveness_failed: bool,
    /// `RingBufferFull` results of the non-blocking calls so far (see `on_try_full`).
    try_fulls: u32,
}

impl<E: ShmEvent, B: RingBackend> std::fmt::Debug for Producer<E, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("name", &self.name)
            .field("backend", &self.backend.kind())
            .field("next", &self.next)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<E: ShmEvent, B: RingBackend> Producer<E, B> {
    pub(crate) fn from_parts(seg: Segment<E, B>, backend: B, name: String) -> Self {
        let capacity = seg.geometry().capacity as i64;
        let mut p = Producer {
            seg,
            backend,
            name,
            next: 0,
            announced: -1,
            limit: -1,
            capacity,
            liveness: None,
            liveness_failed: false,
            try_fulls: 0,
        };
        p.refresh_limit();
        p
    }

    /// Turns the next-slot write prefetch on or off (see
    /// [`SharedDisruptorBuilder::with_write_prefetch`](crate::SharedDisruptorBuilder::with_write_prefetch)).
    pub(crate) fn set_write_prefetch(&mut self, on: bool) {
        self.seg.set_write_prefetch(on);
    }

    /// Rescans the consumer table for the gating minimum. Everything stamped is announced
    /// first: a consumer that registers concurrently starts after the *announced* cursor, and
    /// the late-join argument (`registry.rs`) needs that cursor to cover every slot the limit
    /// computed here lets the producer overwrite.
    pub(crate) fn refresh_limit(&mut self) {
        // Mutant: a batch keeps its stamps unannounced across rescans (the PR-9 bug).
        #[cfg(not(myelon_mutant = "batch_late_announce"))]
        if self.announced != self.next - 1 {
            self.announce(self.next - 1);
        }
        self.limit =
            registry::gating_minimum(&self.seg, &self.backend, self.next - 1) + self.capacity;
        // Mutant: lets the producer claim one slot too many (overwrites an unreleased slot).
        #[cfg(myelon_mutant = "wrap_off_by_one")]
        {
            self.limit += 1;
        }
    }

    /// Whether the next `n` slots are free: compares with the cached limit and rescans the
    /// consumer table at most once. The one place every claim path decides "room or full".
    #[inline]
    pub(crate) fn has_room(&mut self, n: i64) -> bool {
        let last = self.next + n - 1;
        if last > self.limit {
            self.refresh_limit();
            if last > self.limit {
                return false;
            }
        }
        true
    }

    /// The next sequence if its slot is free, rescanning the consumer table at most once (the
    /// claim of every single-event publish).
    #[inline]
    pub(crate) fn try_claim(&mut self) -> Option<Sequence> {
        self.has_room(1).then_some(self.next)
    }

    /// Writes the event of claimed sequence `s` and publishes it.
    #[inline]
    pub(crate) fn write_and_stamp<R>(&mut self, s: i64, f: impl FnOnce(&mut E) -> R) -> R {
        debug_assert!(s == self.next && s <= self.limit);
        #[cfg(not(myelon_mutant = "stamp_before_write"))]
        let r = {
            let r = self.write_slot(s, f);
            self.stamp_slot(s);
            r
        };
        // Mutant: the stamp is published before the event is written.
        #[cfg(myelon_mutant = "stamp_before_write")]
        let r = {
            self.stamp_slot(s);
            self.write_slot(s, f)
        };
        self.next = s + 1;
        r
    }

    /// Writes the event of claimed (unpublished) sequence `s` in place.
    #[inline]
    fn write_slot<R>(&mut self, s: i64, f: impl FnOnce(&mut E) -> R) -> R {
        self.backend.sched_point(SchedPoint::SlotWrite, s);
        let slot = self.seg.slot(s);
        slot.value.with_mut(|p| {
            // SAFETY: I3 — `s` was claimed by this (single) producer and its previous occupant
            // `s - capacity` has been released by every gating consumer (`s <= limit`), so no
            // consumer holds a reference into this slot; `p` is in bounds and aligned (I2).
            f(unsafe { &mut *p })
        })
    }

    /// Publishes slot `s` to consumers: its stamp store.
    #[inline]
    fn stamp_slot(&self, s: i64) {
        self.backend.sched_point(SchedPoint::SlotStamp, s);
        // Pairs with the consumer's `Acquire` load of the stamp (I3).
        self.seg.slot(s).stamp.store(s, STAMP_PUBLISH);
    }

    /// A non-blocking call found no room: counts it, and every [`TRY_FULLS_PER_REAP`]-th time
    /// frees the entries of dead anonymous consumers, so that a producer that only ever tries
    /// (a `try_publish` loop, the framed and typed `try_publish`) gets past one too. Only
    /// then does it probe anonymous entries' lock slots, which costs a system call each.
    #[cold]
    fn on_try_full(&mut self) {
        crate::observability::record_full(self.seg.header());
        self.try_fulls = self.try_fulls.wrapping_add(1);
        // Mutant (with the one in `wait_for_space`): the producer never frees a dead anonymous
        // consumer's entry, which then gates it for ever.
        #[cfg(not(myelon_mutant = "reap_never"))]
        if self.try_fulls % self.backend.spin_rounds(TRY_FULLS_PER_REAP).max(1) == 0 {
            registry::reap_dead_anonymous(&self.seg, &self.backend);
        }
    }

    /// Stores the producer cursor (everything up to `last` is stamped), wakes sleeping
    /// consumers, and, when the write prefetch is on, prefetches the next slot for writing if
    /// it is already free.
    #[inline]
    pub(crate) fn announce(&mut self, last: i64) {
        self.backend.sched_point(SchedPoint::CursorAnnounce, last);
        self.announced = last;
        let h = self.seg.header();
        h.producer.value.store(last, Ordering::Release);
        notify(&self.backend, &h.consumer_wake);
        if self.next <= self.limit {
            self.seg.prefetch_slot_for_write(self.next);
        }
    }

    /// Publishes one event written in place by `f`, if a slot is free.
    #[inline]
    pub fn try_publish<F: FnOnce(&mut E)>(&mut self, f: F) -> Result<Sequence, RingBufferFull> {
        let Some(s) = self.try_claim() else {
            self.on_try_full();
            return Err(RingBufferFull);
        };
        self.write_and_stamp(s, f);
        self.announce(s);
        Ok(s)
    }

    /// Publishes one event written in place by `f`, waiting for space while the slowest gating
    /// consumer holds the slot (strict broadcast: it waits indefinitely; see
    /// [`Producer::publish_timeout`] for a bounded wait).
    #[inline]
    pub fn publish<F: FnOnce(&mut E)>(&mut self, f: F) -> Sequence {
        match self.publish_with(&mut NoDeadline, f) {
            Ok(s) => s,
            Err(never) => match never {},
        }
    }

    /// [`Producer::publish`] with a bound: `Timeout` if no slot frees up in time
    /// (`Duration::MAX`: no bound).
    pub fn publish_timeout<F: FnOnce(&mut E)>(
        &mut self,
        timeout: Duration,
        f: F,
    ) -> MultiProcessResult<Sequence> {
        let mut hook = Deadline::new(self.backend.now(), Some(timeout));
        self.publish_with(&mut hook, f)
    }

    /// One event: the fast path inline, the wait through `hook` when the ring is full.
    #[inline]
    pub(crate) fn publish_with<H: SpaceHook<E, B>, F: FnOnce(&mut E)>(
        &mut self,
        hook: &mut H,
        f: F,
    ) -> Result<Sequence, H::Error> {
        let s = match self.try_claim() {
            Some(s) => s,
            None => self.wait_for_space(1, hook)?,
        };
        self.write_and_stamp(s, f);
        self.announce(s);
        Ok(s)
    }

    /// Publishes `count` events, `f(i, slot)` writing the `i`-th; each becomes visible as soon
    /// as it is written, the cursor is stored at least once per rescan of the consumer table
    /// and at the end. Returns the last sequence (the current cursor when `count == 0`).
    pub fn publish_batch<F: FnMut(usize, &mut E)>(&mut self, count: usize, f: F) -> Sequence {
        match self.publish_batch_with(&mut NoDeadline, count, f) {
            Ok(s) => s,
            Err(never) => match never {},
        }
    }

    /// The batch loop of every publish_batch flavour; waits through `hook` when full. On an
    /// error the events written before it stay published.
    pub(crate) fn publish_batch_with<H: SpaceHook<E, B>, F: FnMut(usize, &mut E)>(
        &mut self,
        hook: &mut H,
        count: usize,
        mut f: F,
    ) -> Result<Sequence, H::Error> {
        for i in 0..count {
            let s = match self.try_claim() {
                Some(s) => s,
                None => match self.wait_for_space(1, hook) {
                    Ok(s) => s,
                    Err(e) => {
                        self.announce_pending();
                        return Err(e);
                    }
                },
            };
            self.write_and_stamp(s, |e| f(i, e));
        }
        self.announce_pending();
        Ok(self.next - 1)
    }

    /// Stores the cursor if some stamped slots are not announced yet.
    #[inline]
    fn announce_pending(&mut self) {
        if self.announced != self.next - 1 {
            self.announce(self.next - 1);
        }
    }

    /// Publishes all `count` events or none: `RingBufferFull` if fewer than `count` slots are
    /// free (always when `count > capacity`).
    pub fn try_publish_batch<F: FnMut(usize, &mut E)>(
        &mut self,
        count: usize,
        mut f: F,
    ) -> Result<Sequence, RingBufferFull> {
        if count == 0 {
            return Ok(self.next - 1);
        }
        if count as i64 > self.capacity {
            return Err(RingBufferFull);
        }
        // Mutant: the room check covers one slot less than the batch writes.
        #[cfg(myelon_mutant = "batch_one_past_limit")]
        let room = self.has_room((count as i64 - 1).max(1));
        #[cfg(not(myelon_mutant = "batch_one_past_limit"))]
        let room = self.has_room(count as i64);
        if !room {
            self.on_try_full();
            return Err(RingBufferFull);
        }
        let last = self.next + count as i64 - 1;
        for i in 0..count {
            let s = self.next;
            self.write_and_stamp(s, |e| f(i, e));
        }
        self.announce(last);
        Ok(last)
    }

    /// Claims `count` consecutive slots to be written in place and then published (or
    /// abandoned) as a unit: nothing becomes visible to consumers before
    /// [`BatchClaim::commit`]. `RingBufferFull` if fewer than `count` slots are free (always when
    /// `count` is 0 or exceeds the capacity).
    pub fn try_claim_batch(
        &mut self,
        count: usize,
    ) -> Result<BatchClaim<'_, E, B>, RingBufferFull> {
        if count == 0 || count as i64 > self.capacity {
            return Err(RingBufferFull);
        }
        if !self.has_room(count as i64) {
            self.on_try_full();
            return Err(RingBufferFull);
        }
        Ok(BatchClaim::new(self, count))
    }

    /// [`Self::try_claim_batch`], waiting up to `timeout` (`None` or `Duration::MAX`: no bound)
    /// for space.
    pub fn claim_batch_timeout(
        &mut self,
        count: usize,
        timeout: Option<Duration>,
    ) -> MultiProcessResult<BatchClaim<'_, E, B>> {
        if count == 0 || count as i64 > self.capacity {
            return Err(MultiProcessError::InvalidConfig {
                reason: "a claim must cover between 1 and capacity slots",
            });
        }
        let mut hook = Deadline::new(self.backend.now(), timeout);
        self.claim_batch_with(&mut hook, count)
    }

    /// Waits (through `hook`) for `count` consecutive free slots and claims them. `count` is in
    /// `1..=capacity` (checked by the callers, which report it in their own error type).
    pub(crate) fn claim_batch_with<H: SpaceHook<E, B>>(
        &mut self,
        hook: &mut H,
        count: usize,
    ) -> Result<BatchClaim<'_, E, B>, H::Error> {
        debug_assert!(count >= 1 && count as i64 <= self.capacity);
        // Fast path: the cached gating limit already covers the claim (no table scan).
        if !self.has_room(count as i64) {
            self.wait_for_space(count as i64, hook)?;
        }
        Ok(BatchClaim::new(self, count))
    }

    /// Blocks until every reserved consumer (explicit id or discovery prefix) has attached.
    pub fn wait_for_consumers(&self, timeout: Duration) -> MultiProcessResult<()> {
        registry::wait_for_consumers(&self.seg, &self.backend, timeout)
    }

    /// The wake line a producer waiting for space arms (the async doorbell).
    #[cfg(feature = "tokio")]
    pub(crate) fn wake_line(&self) -> &crate::ring::layout::WakeLine {
        &self.seg.header().producer_wake
    }

    /// This producer's backend handle.
    #[cfg(feature = "tokio")]
    pub(crate) fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend's clock.
    #[cfg(feature = "tokio")]
    pub(crate) fn now(&self) -> Duration {
        self.backend.now()
    }

    /// Counts one episode of waiting for space (the async publish's own wait loop), as
    /// `wait_for_space` does for the blocking ones.
    #[cfg(feature = "tokio")]
    pub(crate) fn record_space_wait(&self, waited: Duration) {
        crate::observability::record_blocked(self.seg.header(), waited);
    }

    #[cfg(test)]
    pub(crate) fn segment(&self) -> &Segment<E, B> {
        &self.seg
    }

    /// Last published sequence (-1 before the first event).
    pub fn cursor(&self) -> Sequence {
        self.next - 1
    }

    /// The ring's epoch, chosen when this producer created it (see
    /// [`crate::Consumer::ring_epoch`]).
    pub fn ring_epoch(&self) -> u64 {
        self.seg.header().epoch.load(Ordering::Relaxed)
    }

    /// Ring capacity in events.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// The segment name this producer created.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The gating entries of the consumer table (attached consumers and reservations).
    pub fn consumers(&self) -> Vec<ConsumerInfo> {
        registry::snapshot(&self.seg)
    }

    /// Closes the stream: consumers drain what was published, then get `Closed`. Equivalent to
    /// dropping the producer.
    pub fn close(self) {}
}

impl<E: ShmEvent, B: RingBackend> Drop for Producer<E, B> {
    fn drop(&mut self) {
        // A killed (simulated) process runs no more code: no close, the ring stays as it was.
        if self.backend.process_killed() {
            return;
        }
        self.backend.sched_point(SchedPoint::SegmentState, 0);
        let h = self.seg.header();
        h.state.store(STATE_CLOSED, Ordering::Release);
        h.consumer_wake.seq.fetch_add(1, Ordering::Release);
        self.backend.wake_all(&h.consumer_wake.seq);
        tracing::debug!(name = %self.name, cursor = self.next - 1, "producer closed the ring");
    }
}
