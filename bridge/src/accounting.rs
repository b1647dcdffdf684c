//! Per-source accounting on the receiving side: in order, gap, duplicate; and the counters
//! both directions expose.
//!
//! A source's sequence numbers are its producer's framed message ids (32 bits, counting from 0
//! per producer incarnation, wrapping). The tracker compares the low 32 bits with serial-number
//! arithmetic (RFC 1982): a sequence ahead of the expected one by `d` (0 < d < 2^31) means `d`
//! messages never arrived (a gap); one behind means a message that was already delivered (a
//! duplicate). So the accounting survives the id wrapping and a sending bridge that restarts
//! without knowing how often it had wrapped.

// The counters are process-local (read by the binary and the tests), never in a shared segment:
// std's atomics are right here (the workspace's clippy.toml reserves them for that case).
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// How one received message relates to what its source sent before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The next sequence number of its source.
    InOrder,
    /// Ahead of the expected sequence: `missing` messages before it never arrived.
    Gap {
        /// Messages skipped.
        missing: u64,
    },
    /// At or behind a sequence already seen: sent again (a sending bridge restarted).
    Duplicate,
}

/// What the receiver knows of one source: the sequence it expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceState {
    /// The sequence number expected next (0 for a source never seen).
    pub next: u64,
}

/// Tracks every source's expected sequence number.
#[derive(Debug, Default, Clone)]
pub struct SourceTracker {
    sources: HashMap<u64, SourceState>,
}

impl SourceTracker {
    /// An empty tracker: every source is expected to start at sequence 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts from known states (a restarted receiver's saved ones).
    pub fn with_states(states: impl IntoIterator<Item = (u64, SourceState)>) -> Self {
        SourceTracker {
            sources: states.into_iter().collect(),
        }
    }

    /// What `seq` from `source` is, without recording it.
    pub fn classify(&self, source: u64, seq: u64) -> Delivery {
        let next = self.sources.get(&source).map_or(0, |s| s.next);
        // Serial-number comparison of the low 32 bits (the ids' width): i32 of the difference.
        let d = (seq as u32).wrapping_sub(next as u32) as i32;
        match d {
            0 => Delivery::InOrder,
            d if d > 0 => Delivery::Gap { missing: d as u64 },
            _ => Delivery::Duplicate,
        }
    }

    /// Records `seq` from `source` as received; returns what it was and the source's new state.
    pub fn observe(&mut self, source: u64, seq: u64) -> (Delivery, SourceState) {
        let delivery = self.classify(source, seq);
        let state = self
            .sources
            .entry(source)
            .or_insert(SourceState { next: 0 });
        match delivery {
            Delivery::InOrder => state.next = state.next.wrapping_add(1),
            Delivery::Gap { missing } => state.next = state.next.wrapping_add(missing + 1),
            Delivery::Duplicate => {}
        }
        (delivery, *state)
    }

    /// The state of `source`, if it was seen.
    pub fn state(&self, source: u64) -> Option<SourceState> {
        self.sources.get(&source).copied()
    }

    /// Sources seen.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether no source was seen.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

/// Live counters of one bridge (both directions use the fields that apply to them).
#[derive(Debug, Default)]
pub struct Counters {
    /// ring → zenoh: messages `put` on zenoh (a put that returned).
    pub sent: AtomicU64,
    /// zenoh → ring: samples received from zenoh.
    pub received: AtomicU64,
    /// zenoh → ring: messages published into the ring.
    pub delivered: AtomicU64,
    /// zenoh → ring: messages counted missing (sum of gaps).
    pub gaps: AtomicU64,
    /// zenoh → ring: messages received again.
    pub duplicates: AtomicU64,
    /// zenoh → ring: duplicates not published (with `drop_duplicates`).
    pub duplicates_dropped: AtomicU64,
    /// zenoh → ring: samples shorter than a header or of another wire version (dropped).
    pub malformed: AtomicU64,
    /// zenoh → ring: samples whose checksum did not match (damaged on the way; dropped, and
    /// counted as a gap once the next message of their source arrives).
    pub corrupt: AtomicU64,
    /// zenoh → ring: messages a restarted receiver cannot tell were delivered or not (the
    /// previous incarnation died between writing its intent and its record, and its ring is
    /// gone; at most one per source and restart). Each is counted as a gap too.
    pub uncertain: AtomicU64,
    /// Both: frames the ring-side consumer dropped (partial messages at a rejoin, bad frames).
    pub ring_dropped: AtomicU64,
}

impl Counters {
    /// All counters now.
    pub fn snapshot(&self) -> CountersSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CountersSnapshot {
            sent: l(&self.sent),
            received: l(&self.received),
            delivered: l(&self.delivered),
            gaps: l(&self.gaps),
            duplicates: l(&self.duplicates),
            duplicates_dropped: l(&self.duplicates_dropped),
            malformed: l(&self.malformed),
            corrupt: l(&self.corrupt),
            uncertain: l(&self.uncertain),
            ring_dropped: l(&self.ring_dropped),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A copy of [`Counters`]; `Display` prints `key=value` pairs (the binary's exit line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)] // the fields mirror `Counters`
pub struct CountersSnapshot {
    pub sent: u64,
    pub received: u64,
    pub delivered: u64,
    pub gaps: u64,
    pub duplicates: u64,
    pub duplicates_dropped: u64,
    pub malformed: u64,
    pub corrupt: u64,
    pub uncertain: u64,
    pub ring_dropped: u64,
}

impl std::fmt::Display for CountersSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent={} received={} delivered={} gaps={} duplicates={} duplicates_dropped={} \
             malformed={} corrupt={} uncertain={} ring_dropped={}",
            self.sent,
            self.received,
            self.delivered,
            self.gaps,
            self.duplicates,
            self.duplicates_dropped,
            self.malformed,
            self.corrupt,
            self.uncertain,
            self.ring_dropped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_order_gaps_and_duplicates() {
        // (seq received, what it is, next expected afterwards), from a fresh source.
        let table: &[(u64, Delivery, u64)] = &[
            (0, Delivery::InOrder, 1),
            (1, Delivery::InOrder, 2),
            (5, Delivery::Gap { missing: 3 }, 6),
            (3, Delivery::Duplicate, 6),
            (5, Delivery::Duplicate, 6),
            (6, Delivery::InOrder, 7),
        ];
        let mut t = SourceTracker::new();
        for &(seq, want, next) in table {
            let (got, state) = t.observe(9, seq);
            assert_eq!((got, state.next), (want, next), "seq {seq}");
        }
        assert_eq!(t.len(), 1);
        // Another source is independent: its first message at 2 is a gap of 2.
        assert_eq!(t.observe(10, 2).0, Delivery::Gap { missing: 2 });
    }

    #[test]
    fn survives_the_32_bit_wrap_and_a_rebased_sender() {
        let near = u64::from(u32::MAX) - 1;
        let mut t = SourceTracker::with_states([(1, SourceState { next: near })]);
        assert_eq!(t.observe(1, near).0, Delivery::InOrder);
        assert_eq!(t.observe(1, near + 1).0, Delivery::InOrder);
        // The sender wrapped: 2^32 is id 0 again.
        assert_eq!(t.observe(1, near + 2).0, Delivery::InOrder);
        // A restarted sender that lost its high word sends id 1 as seq 1: the next one.
        assert_eq!(t.observe(1, 1).0, Delivery::InOrder);
        // ... and id 0 again as a duplicate.
        assert_eq!(t.observe(1, 0).0, Delivery::Duplicate);
    }
}
