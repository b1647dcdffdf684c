//! Observability: live counters that sit in the ring's shared segment, readable from any
//! process without disturbing the hot path.
//!
//! Nothing is counted per event. What a reader wants per event is derived from the cursors the
//! ring already keeps:
//!
//! | figure | derived from |
//! |---|---|
//! | events published | producer cursor + 1 |
//! | events consumed by a consumer | its cursor + 1 − the first sequence its id read ([`consumer_counter::FIRST_SEQUENCE`]) |
//! | current lag of a consumer | producer cursor − its cursor |
//!
//! The counters proper are bumped on cold paths only, each by the one process that owns the
//! figure, with `Relaxed` read-modify-writes on a 128-byte line of their own (so a reader never
//! contends with a cursor line):
//!
//! * ring-wide ([`ring_counter`], the header's counter line, written by the producer): publish
//!   attempts that found the ring full, publishes that had to wait and the total time they
//!   waited;
//! * per consumer-table entry ([`consumer_counter`]): the maximum lag the producer saw in its
//!   gating scans (written by the producer: a scan happens at least once per `capacity` events
//!   and continuously while the producer waits for space, so the lag at which a consumer gated
//!   the producer is always recorded), partial messages dropped by the framed consumer (written
//!   by the consumer), liveness alerts raised and recoveries (written by the producer's liveness
//!   layer).
//!
//! A counter line is reset when a new consumer id takes a free entry; a same-id rejoin keeps it,
//! so the figures of an id survive its process being restarted.
//!
//! Read them with [`RingInspector`] (attach to a ring by name without knowing its event type),
//! from the `myelon stat` command, or, with the `metrics` feature, export them through the
//! `metrics` facade (`export_metrics`).

#[cfg(not(loom))]
mod inspect;
#[cfg(not(loom))]
mod listing;
#[cfg(all(feature = "metrics", not(loom)))]
mod metrics_export;

#[cfg(not(loom))]
pub use inspect::{
    ConsumerLiveness, ConsumerSnapshot, EntryKind, InspectError, ProducerSnapshot, RingInspector,
    RingSnapshot, RingState,
};
#[cfg(not(loom))]
pub use listing::{clean_abandoned, list_segments, CleanOutcome, SegmentKind, SegmentListing};
#[cfg(all(feature = "metrics", not(loom)))]
pub use metrics_export::export_metrics;

/// Loom models leave the counters out: they are not part of any protocol, and every modelled
/// atomic operation multiplies the state space. `--cfg myelon_counters_off` leaves them out
/// too, so that the benchmark can compare the publish path with and without them.
const ENABLED: bool = !cfg!(any(loom, myelon_counters_off));

use crate::ring::layout::{ConsumerEntry, CounterLine, Header};
use crate::ring::sync::Ordering;
use std::time::Duration;

/// Indices of the ring-wide counters (the header's counter line).
pub mod ring_counter {
    /// Publish calls that found the ring full: a `try_*` publish or claim that failed, or a
    /// blocking publish that had to wait for space.
    pub const PUBLISH_FULL: usize = 0;
    /// Blocking publishes (or claims) that waited for space.
    pub const BLOCKED_WAITS: usize = 1;
    /// Total time those waits took, in nanoseconds.
    pub const BLOCKED_NANOS: usize = 2;
}

/// Indices of the per-consumer counters (the counter line of each consumer-table entry).
pub mod consumer_counter {
    /// The first sequence the entry's consumer id read (stored as `i64` bits): events
    /// consumed = cursor + 1 − this.
    pub const FIRST_SEQUENCE: usize = 0;
    /// Largest lag (producer cursor − consumer cursor) seen by the producer's gating scans.
    pub const MAX_LAG: usize = 1;
    /// Messages of which the framed consumer saw some frames but delivered nothing.
    pub const PARTIAL_DROPPED: usize = 2;
    /// Liveness `Stalled` alerts raised for this consumer id.
    pub const ALERTS: usize = 3;
    /// Liveness `Recovered` alerts for this consumer id.
    pub const RECOVERIES: usize = 4;
    /// Multi-producer rings: slots this consumer skipped because their producer died before
    /// publishing them or gave the claim up.
    pub const ABANDONED_SLOTS: usize = 5;
}

/// Consumer: skipped one abandoned slot of a multi-producer ring.
#[cold]
pub(crate) fn record_abandoned(entry: &ConsumerEntry) {
    if !ENABLED {
        return;
    }
    entry.counters.values[consumer_counter::ABANDONED_SLOTS].fetch_add(1, Ordering::Relaxed);
}

/// Producer: a publish found the ring full.
#[cold]
#[inline(never)]
pub(crate) fn record_full(header: &Header) {
    if !ENABLED {
        return;
    }
    header.counters.values[ring_counter::PUBLISH_FULL].fetch_add(1, Ordering::Relaxed);
}

/// Producer: a publish waited `waited` for space (and found the ring full first).
#[cold]
#[inline(never)]
pub(crate) fn record_blocked(header: &Header, waited: Duration) {
    if !ENABLED {
        return;
    }
    header.counters.values[ring_counter::PUBLISH_FULL].fetch_add(1, Ordering::Relaxed);
    record_wait(header, waited);
}

/// Producer: a publish that was already counted as full waited `waited` for space.
#[cold]
#[inline(never)]
pub(crate) fn record_wait(header: &Header, waited: Duration) {
    if !ENABLED {
        return;
    }
    let c = &header.counters.values;
    c[ring_counter::BLOCKED_WAITS].fetch_add(1, Ordering::Relaxed);
    let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
    c[ring_counter::BLOCKED_NANOS].fetch_add(nanos, Ordering::Relaxed);
}

/// Producer, during a gating scan: `lag` is how far the entry's consumer is behind.
#[inline]
pub(crate) fn note_lag(entry: &ConsumerEntry, lag: i64) {
    if !ENABLED {
        return;
    }
    let lag = lag.max(0) as u64;
    let max = &entry.counters.values[consumer_counter::MAX_LAG];
    // Only the producer writes this counter, so load-then-store does not lose updates.
    if lag > max.load(Ordering::Relaxed) {
        max.store(lag, Ordering::Relaxed);
    }
}

/// Registry: a new consumer id took the entry; it reads from `first_sequence` on.
pub(crate) fn reset_entry(entry: &ConsumerEntry, first_sequence: i64) {
    if !ENABLED {
        return;
    }
    for (i, c) in entry.counters.values.iter().enumerate() {
        let v = if i == consumer_counter::FIRST_SEQUENCE {
            first_sequence as u64
        } else {
            0
        };
        c.store(v, Ordering::Relaxed);
    }
}

/// Framed consumer: `n` more partial messages dropped.
#[cold]
#[inline(never)]
pub(crate) fn record_dropped(line: &CounterLine, n: u64) {
    if !ENABLED {
        return;
    }
    line.values[consumer_counter::PARTIAL_DROPPED].fetch_add(n, Ordering::Relaxed);
}

/// Liveness: counts each alert in the entry of its consumer id (an id no longer in the table
/// is not counted).
#[cold]
pub(crate) fn record_alerts<E: crate::ShmEvent, B: crate::backend::RingBackend>(
    seg: &crate::ring::layout::Segment<E, B>,
    alerts: Vec<(String, crate::RequiredConsumerAlertKind)>,
) {
    for (id, kind) in alerts {
        let entry = seg.entries().find(|e| {
            crate::ring::registry::is_gating(e.state.load(Ordering::Acquire))
                && crate::ring::registry::entry_id(e) == id
        });
        if let Some(e) = entry {
            record_alert(e, kind);
        }
    }
}

fn record_alert(entry: &ConsumerEntry, kind: crate::RequiredConsumerAlertKind) {
    let i = match kind {
        crate::RequiredConsumerAlertKind::Stalled => consumer_counter::ALERTS,
        crate::RequiredConsumerAlertKind::Recovered => consumer_counter::RECOVERIES,
    };
    entry.counters.values[i].fetch_add(1, Ordering::Relaxed);
}
