//! [`BatchClaim`]: consecutive slots written in place and published as a unit.

use super::{Producer, STAMP_PUBLISH};
use crate::backend::{RingBackend, SchedPoint};
use crate::ring::event::ShmEvent;
use crate::Sequence;

/// Consecutive slots claimed by [`Producer::try_claim_batch`]: write them in place with
/// [`BatchClaim::slot_mut`], then [`commit`](BatchClaim::commit) to publish them in order, or drop
/// (or [`abort`](BatchClaim::abort)) to publish nothing: until the stamps are stored no consumer
/// can see the slots, so an abandoned claim needs no undo. The producer is borrowed meanwhile.
pub struct BatchClaim<'a, E: ShmEvent, B: RingBackend> {
    producer: &'a mut Producer<E, B>,
    first: i64,
    count: usize,
}

impl<E: ShmEvent, B: RingBackend> std::fmt::Debug for BatchClaim<'_, E, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchClaim")
            .field("first", &self.first)
            .field("count", &self.count)
            .finish()
    }
}

impl<'a, E: ShmEvent, B: RingBackend> BatchClaim<'a, E, B> {
    /// Claims `count` slots from the producer's next sequence; the caller checked the room.
    pub(super) fn new(producer: &'a mut Producer<E, B>, count: usize) -> Self {
        debug_assert!(producer.next + count as i64 - 1 <= producer.limit);
        BatchClaim {
            first: producer.next,
            count,
            producer,
        }
    }

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
        self.producer
            .backend
            .sched_point(SchedPoint::SlotWrite, seq);
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
            self.producer
                .backend
                .sched_point(SchedPoint::SlotStamp, seq);
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
