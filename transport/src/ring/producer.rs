//! The single producer of a ring (Layer 0).
//!
//! Steady-state `publish` is: compare the next sequence with a cached limit, write the event in
//! place, store the slot stamp (`Release`), store the producer cursor (`Release`), and load one
//! read-mostly word to learn whether a consumer sleeps. No allocation, no syscall, no lock, no
//! fence. Only when the cached limit is reached does the producer rescan the consumer table.

use crate::backend::RingBackend;
use crate::liveness::LivenessMonitor;
use crate::ring::error::{MultiProcessError, MultiProcessResult, RingBufferFull};
use crate::ring::event::ShmEvent;
use crate::ring::layout::{Segment, STATE_CLOSED};
use crate::ring::registry::{self, ConsumerInfo};
use crate::ring::sync::{spin_hint, Ordering};
use crate::ring::wait::{block_on, notify};
use crate::Sequence;
use std::time::Duration;

pub use crate::ring::builder::CoordinationMode;

/// Ordering of the stamp store that publishes a slot. `Release` (pairs with the consumer's
/// `Acquire` stamp load, I3); the `relaxed_stamp` mutant weakens it so loom and the DST harness
/// can show that they catch the bug.
#[cfg(not(myelon_mutant = "relaxed_stamp"))]
const STAMP_PUBLISH: Ordering = Ordering::Release;
#[cfg(myelon_mutant = "relaxed_stamp")]
const STAMP_PUBLISH: Ordering = Ordering::Relaxed;

/// One shared-memory-visible step of a publish (see [`Producer::PUBLISH_STEPS`]).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishStep {
    /// Write the claimed slots' events.
    Write,
    /// Store their stamps.
    Stamp,
    /// Store the producer cursor.
    Announce,
}

#[cfg(not(myelon_mutant = "stamp_before_write"))]
const PUBLISH_ORDER: [PublishStep; 3] = [
    PublishStep::Write,
    PublishStep::Stamp,
    PublishStep::Announce,
];
#[cfg(myelon_mutant = "stamp_before_write")]
const PUBLISH_ORDER: [PublishStep; 3] = [
    PublishStep::Stamp,
    PublishStep::Write,
    PublishStep::Announce,
];

/// Rounds of pausing (each `SPACE_SPIN_PAUSES` pause instructions, then one rescan) before a
/// producer waiting for space starts yielding: tens of microseconds.
const SPACE_SPIN_ROUNDS: u32 = 2048;
const SPACE_SPIN_PAUSES: u32 = 16;
/// Rounds of `sched_yield` before it blocks on the futex.
const SPACE_YIELD_ROUNDS: u32 = 256;

/// Longest single futex sleep of a producer waiting for space; bounds the cost of a wake-up the
/// unfenced consumer release path can miss.
const SPACE_WAIT_SLICE: Duration = Duration::from_micros(100);

/// Multi-process producer for publishing events to a shared-memory ring, generic over the
/// backend. Use the aliases [`crate::SharedProducer`] and [`crate::MmapProducer`].
pub struct Producer<E: ShmEvent, B: RingBackend> {
    pub(crate) seg: Segment<E, B>,
    pub(crate) backend: B,
    pub(crate) name: String,
    /// Next sequence to publish.
    pub(crate) next: i64,
    /// Highest sequence publishable without rescanning the consumer table.
    pub(crate) limit: i64,
    pub(crate) capacity: i64,
    /// Required-consumer liveness, when enabled (cold path only).
    pub(crate) liveness: Option<Box<LivenessMonitor>>,
    /// Whether `liveness` holds a sticky failure (read by every managed publish, so kept here
    /// rather than behind the box).
    pub(crate) liveness_failed: bool,
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
            limit: -1,
            capacity,
            liveness: None,
            liveness_failed: false,
        };
        p.refresh_limit();
        p
    }

    pub(crate) fn refresh_limit(&mut self) {
        self.limit = registry::gating_minimum(&self.seg, self.next - 1) + self.capacity;
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

    /// Step: the next sequence if its slot is free, rescanning the consumer table at most once.
    #[inline]
    pub fn try_claim(&mut self) -> Option<Sequence> {
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
        // Pairs with the consumer's `Acquire` load of the stamp (I3).
        self.seg.slot(s).stamp.store(s, STAMP_PUBLISH);
    }

    #[inline]
    pub(crate) fn announce(&self, last: i64) {
        let h = self.seg.header();
        h.producer.value.store(last, Ordering::Release);
        notify(&self.backend, &h.consumer_wake);
    }

    /// The order of the publish steps ([`Producer::step_write`], [`Producer::step_stamp`],
    /// [`Producer::step_announce`]) a steppable driver must follow; the same order `publish`
    /// uses.
    #[doc(hidden)]
    pub const PUBLISH_STEPS: [PublishStep; 3] = PUBLISH_ORDER;

    /// Step: writes claimed sequence `seq` (`seq` in `cursor()+1 ..= cursor()+n` of the last
    /// successful claim of `n` slots) in place; nothing becomes visible to consumers.
    ///
    /// # Panics
    /// If `seq` is outside the claimable range.
    #[doc(hidden)]
    pub fn step_write<R>(&mut self, seq: Sequence, f: impl FnOnce(&mut E) -> R) -> R {
        assert!(
            seq >= self.next && seq <= self.limit,
            "step_write({seq}) outside the claimed range {}..={}",
            self.next,
            self.limit
        );
        self.write_slot(seq, f)
    }

    /// Step: publishes claimed sequence `seq` with one stamp store.
    ///
    /// # Panics
    /// If `seq` is outside the claimable range.
    #[doc(hidden)]
    pub fn step_stamp(&mut self, seq: Sequence) {
        assert!(
            seq >= self.next && seq <= self.limit,
            "step_stamp({seq}) outside the claimed range"
        );
        self.stamp_slot(seq);
    }

    /// Step: advances past `last` (every sequence up to it written and stamped) and stores the
    /// producer cursor.
    ///
    /// # Panics
    /// If `last` is outside the claimable range.
    #[doc(hidden)]
    pub fn step_announce(&mut self, last: Sequence) {
        assert!(
            last >= self.next && last <= self.limit,
            "step_announce({last}) outside the claimed range"
        );
        self.next = last + 1;
        self.announce(last);
    }

    /// Publishes one event written in place by `f`, if a slot is free.
    #[inline]
    pub fn try_publish<F: FnOnce(&mut E)>(&mut self, f: F) -> Result<Sequence, RingBufferFull> {
        let Some(s) = self.try_claim() else {
            crate::observability::record_full(self.seg.header());
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
        let s = match self.try_claim() {
            Some(s) => s,
            None => self.wait_for_space(1, None).unwrap_or(self.next),
        };
        self.write_and_stamp(s, f);
        self.announce(s);
        s
    }

    /// [`Producer::publish`] with a bound: `Timeout` if no slot frees up in time.
    pub fn publish_timeout<F: FnOnce(&mut E)>(
        &mut self,
        timeout: Duration,
        f: F,
    ) -> MultiProcessResult<Sequence> {
        let s = match self.try_claim() {
            Some(s) => s,
            None => self.wait_for_space(1, Some(timeout))?,
        };
        self.write_and_stamp(s, f);
        self.announce(s);
        Ok(s)
    }

    /// Publishes `count` events, `f(i, slot)` writing the `i`-th; each becomes visible as soon
    /// as it is written, the cursor is stored once. Returns the last sequence (the current
    /// cursor when `count == 0`).
    pub fn publish_batch<F: FnMut(usize, &mut E)>(&mut self, count: usize, mut f: F) -> Sequence {
        for i in 0..count {
            let s = match self.try_claim() {
                Some(s) => s,
                None => {
                    if i > 0 {
                        self.announce(self.next - 1);
                    }
                    self.wait_for_space(1, None).unwrap_or(self.next)
                }
            };
            self.write_and_stamp(s, |e| f(i, e));
        }
        if count > 0 {
            self.announce(self.next - 1);
        }
        self.next - 1
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
        if !self.has_room(count as i64) {
            crate::observability::record_full(self.seg.header());
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
            crate::observability::record_full(self.seg.header());
            return Err(RingBufferFull);
        }
        Ok(BatchClaim {
            first: self.next,
            count,
            producer: self,
        })
    }

    /// [`Self::try_claim_batch`], waiting up to `timeout` (`None`: no bound) for space.
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
        // Fast path: the cached gating limit already covers the claim (no table scan).
        if self.next + count as i64 - 1 > self.limit {
            self.wait_for_space(count as i64, timeout)?;
        }
        let first = self.next;
        Ok(BatchClaim {
            first,
            count,
            producer: self,
        })
    }

    /// Waits until `n` more slots are free; returns the next sequence.
    fn wait_for_space(&mut self, n: i64, timeout: Option<Duration>) -> MultiProcessResult<i64> {
        let want = self.next + n - 1;
        let start = self.backend.now();
        let mut idle = 0u32;
        loop {
            self.refresh_limit();
            if want <= self.limit {
                if idle > 0 {
                    let waited = self.backend.now().saturating_sub(start);
                    crate::observability::record_blocked(self.seg.header(), waited);
                }
                return Ok(self.next);
            }
            let waited = self.backend.now().saturating_sub(start);
            let slice = match timeout {
                Some(t) if waited >= t => {
                    crate::observability::record_blocked(self.seg.header(), waited);
                    return Err(MultiProcessError::Timeout {
                        op: "publish",
                        waited,
                    });
                }
                Some(t) => (t - waited).min(SPACE_WAIT_SLICE),
                None => SPACE_WAIT_SLICE,
            };
            idle = idle.saturating_add(1);
            if idle < SPACE_SPIN_ROUNDS {
                // Rescanning reads every consumer's cursor line; pause between scans so the
                // consumers keep their lines while they drain.
                for _ in 0..SPACE_SPIN_PAUSES {
                    spin_hint();
                }
            } else if idle < SPACE_SPIN_ROUNDS + SPACE_YIELD_ROUNDS {
                self.backend.yield_now();
            } else {
                let h = self.seg.header();
                let seg = &self.seg;
                let (next, cap) = (self.next, self.capacity);
                block_on(&self.backend, &h.producer_wake, slice, || {
                    registry::gating_minimum(seg, next - 1) + cap >= want
                });
            }
        }
    }

    /// Blocks until every reserved consumer (explicit id or discovery prefix) has attached.
    pub fn wait_for_consumers(&self, timeout: Duration) -> MultiProcessResult<()> {
        let start = self.backend.now();
        loop {
            let missing = registry::unclaimed(&self.seg);
            if missing.is_empty() {
                return Ok(());
            }
            let waited = self.backend.now().saturating_sub(start);
            if waited >= timeout {
                return Err(MultiProcessError::ConsumersNotAttached { missing, waited });
            }
            self.backend
                .sleep(crate::ring::wait::default_discovery_poll_duration().min(timeout - waited));
        }
    }

    #[cfg(test)]
    pub(crate) fn segment(&self) -> &Segment<E, B> {
        &self.seg
    }

    /// Last published sequence (-1 before the first event).
    pub fn cursor(&self) -> Sequence {
        self.next - 1
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

/// Consecutive slots claimed by [`Producer::try_claim_batch`]: write them in place with
/// [`BatchClaim::slot_mut`], then [`commit`](BatchClaim::commit) to publish them in order, or drop
/// (or [`abort`](BatchClaim::abort)) to publish nothing: until the stamps are stored no consumer
/// can see the slots, so an abandoned claim needs no undo. The producer is borrowed meanwhile.
pub struct BatchClaim<'a, E: ShmEvent, B: RingBackend> {
    pub(crate) producer: &'a mut Producer<E, B>,
    pub(crate) first: i64,
    pub(crate) count: usize,
}

impl<E: ShmEvent, B: RingBackend> std::fmt::Debug for BatchClaim<'_, E, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchClaim")
            .field("first", &self.first)
            .field("count", &self.count)
            .finish()
    }
}

impl<E: ShmEvent, B: RingBackend> BatchClaim<'_, E, B> {
    /// Number of claimed slots.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always false: a claim covers at least one slot.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sequence the first claimed slot will be published as.
    pub fn first_sequence(&self) -> Sequence {
        self.first
    }

    /// The `i`-th claimed slot (`i < len()`), holding whatever it held a lap ago.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn slot_mut(&mut self, i: usize) -> &mut E {
        assert!(i < self.count, "claim index {i} out of {}", self.count);
        let seq = self.first + i as i64;
        let slot = self.producer.seg.slot(seq);
        slot.value.with_mut(|p| {
            // SAFETY: I3 — `seq` lies in this producer's claimed range (checked against the
            // gating limit when the claim was made), unpublished, so no consumer reads the slot;
            // the `&mut self` borrow makes this the only reference handed out at a time.
            unsafe { &mut *p }
        })
    }

    /// Publishes every claimed slot, in order; returns the last sequence.
    pub fn commit(self) -> Sequence {
        let last = self.first + self.count as i64 - 1;
        for seq in self.first..=last {
            // Pairs with the consumer's `Acquire` load of the stamp (I3).
            self.producer.seg.slot(seq).stamp.store(seq, STAMP_PUBLISH);
        }
        self.producer.next = last + 1;
        self.producer.announce(last);
        last
    }

    /// Publishes nothing; the claimed slots are reused by the next publish.
    pub fn abort(self) {}
}

impl<E: ShmEvent, B: RingBackend> Drop for Producer<E, B> {
    fn drop(&mut self) {
        let h = self.seg.header();
        h.state.store(STATE_CLOSED, Ordering::Release);
        h.consumer_wake.seq.fetch_add(1, Ordering::Release);
        self.backend.wake_all(&h.consumer_wake.seq);
        tracing::debug!(name = %self.name, cursor = self.next - 1, "producer closed the ring");
    }
}
