//! Export of a [`RingSnapshot`] through the `metrics` facade (feature `metrics`).

use super::RingSnapshot;

/// Records `snapshot` with whatever `metrics` recorder the program installed: monotonic figures
/// as counters (set to their absolute value), the others as gauges, labelled with `ring` and,
/// per consumer, `consumer`. Call it periodically (e.g. from the thread that scrapes), with a
/// snapshot from [`super::RingInspector::snapshot`]; nothing is exported from the hot path.
///
/// | metric | kind | labels |
/// |---|---|---|
/// | `myelon_events_published` | counter | ring |
/// | `myelon_publish_full` | counter | ring |
/// | `myelon_publish_blocked_waits` | counter | ring |
/// | `myelon_publish_blocked_seconds` | gauge (total) | ring |
/// | `myelon_producer_alive` | gauge (0/1) | ring |
/// | `myelon_consumer_consumed` | counter | ring, consumer |
/// | `myelon_consumer_lag` | gauge | ring, consumer |
/// | `myelon_consumer_max_lag` | gauge | ring, consumer |
/// | `myelon_consumer_partial_dropped` | counter | ring, consumer |
/// | `myelon_consumer_alerts` | counter | ring, consumer |
/// | `myelon_consumer_recoveries` | counter | ring, consumer |
/// | `myelon_consumer_abandoned_slots` | counter | ring, consumer (multi-producer rings) |
pub fn export_metrics(snapshot: &RingSnapshot) {
    let ring = snapshot.name.clone();
    metrics::counter!("myelon_events_published", "ring" => ring.clone())
        .absolute(snapshot.events_published);
    metrics::counter!("myelon_publish_full", "ring" => ring.clone())
        .absolute(snapshot.publish_full);
    metrics::counter!("myelon_publish_blocked_waits", "ring" => ring.clone())
        .absolute(snapshot.blocked_waits);
    metrics::gauge!("myelon_publish_blocked_seconds", "ring" => ring.clone())
        .set(snapshot.blocked.as_secs_f64());
    let alive = snapshot.owner == crate::backend::ProcessState::Alive;
    metrics::gauge!("myelon_producer_alive", "ring" => ring.clone())
        .set(f64::from(u8::from(alive)));
    for c in &snapshot.consumers {
        let labels = [("ring", ring.clone()), ("consumer", c.id.clone())];
        metrics::counter!("myelon_consumer_consumed", &labels).absolute(c.consumed);
        metrics::gauge!("myelon_consumer_lag", &labels).set(c.lag as f64);
        metrics::gauge!("myelon_consumer_max_lag", &labels).set(c.max_lag as f64);
        metrics::counter!("myelon_consumer_partial_dropped", &labels).absolute(c.partial_dropped);
        metrics::counter!("myelon_consumer_alerts", &labels).absolute(c.alerts);
        metrics::counter!("myelon_consumer_recoveries", &labels).absolute(c.recoveries);
        metrics::counter!("myelon_consumer_abandoned_slots", &labels).absolute(c.abandoned_slots);
    }
}
