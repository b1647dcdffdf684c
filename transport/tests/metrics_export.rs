//! The `metrics` feature: a ring snapshot exported through the `metrics` facade, captured by a
//! recorder local to the test.
#![cfg(feature = "metrics")]

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};
use myelon::backend::SimBackend;
use myelon::observability::{export_metrics, RingInspector};
use myelon::SharedDisruptorBuilder;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Every metric's last value, by name and labels (`name{k=v,..}`).
#[derive(Default)]
struct Capture(Arc<Mutex<BTreeMap<String, f64>>>);

struct Cell(String, Arc<Mutex<BTreeMap<String, f64>>>);

impl CounterFn for Cell {
    fn increment(&self, v: u64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() += v as f64;
    }
    fn absolute(&self, v: u64) {
        self.1.lock().unwrap().insert(self.0.clone(), v as f64);
    }
}

impl GaugeFn for Cell {
    fn increment(&self, v: f64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() += v;
    }
    fn decrement(&self, v: f64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() -= v;
    }
    fn set(&self, v: f64) {
        self.1.lock().unwrap().insert(self.0.clone(), v);
    }
}

impl Capture {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Cell(
            format!("{}{{{}}}", key.name(), labels.join(",")),
            self.0.clone(),
        ))
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn a_snapshot_is_exported_with_ring_and_consumer_labels() {
    let world = SimBackend::new_world();
    let mut p = SharedDisruptorBuilder::<u64, _>::with_backend(world.clone(), "m", 8)
        .build_producer(|| 0)
        .unwrap();
    let mut c = SharedDisruptorBuilder::<u64, _>::with_backend(world.sibling(), "m", 8)
        .with_consumer_id("c0")
        .build_consumer()
        .unwrap();
    for i in 0..8 {
        p.publish(|e| *e = i);
    }
    assert!(p.try_publish(|e| *e = 9).is_err());
    c.try_consume_next().unwrap().unwrap();
    let snap = RingInspector::open(world.sibling(), "m")
        .unwrap()
        .snapshot();
    let capture = Capture::default();
    metrics::with_local_recorder(&capture, || export_metrics(&snap));
    let got = capture.0.lock().unwrap().clone();
    let want = [
        ("myelon_events_published{ring=m}", 8.0),
        ("myelon_publish_full{ring=m}", 1.0),
        ("myelon_producer_alive{ring=m}", 1.0),
        ("myelon_consumer_consumed{ring=m,consumer=c0}", 1.0),
        ("myelon_consumer_lag{ring=m,consumer=c0}", 7.0),
        ("myelon_consumer_max_lag{ring=m,consumer=c0}", 8.0),
        ("myelon_consumer_alerts{ring=m,consumer=c0}", 0.0),
    ];
    for (k, v) in want {
        assert_eq!(got.get(k), Some(&v), "{k} in {got:#?}");
    }
}
