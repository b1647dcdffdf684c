//! Observability counters read by a process that is neither the producer nor a consumer.
//!
//! The producer and two consumers are child processes driven step by step over stdin, so each
//! counter has a known value when the parent (the reader) inspects the ring by name, without
//! knowing its event type. Also in-process checks of the framed layer's dropped-message counter
//! and the liveness alert counters.

// Std atomics here are process-local (counters and flags between threads of this process);
// `clippy.toml`'s rule on shared-memory atomics is for the library.
#![allow(clippy::disallowed_types)]

mod common;

use common::process::{
    env_str, read_command, report, ChildProc, SegmentGuard, Spawn, CHILD_OK, ID_VAR, SEGMENT_VAR,
};
use common::{fill, Event};
use myelon::backend::{ProcessState, ShmBackend};
use myelon::observability::{ConsumerLiveness, EntryKind, RingInspector, RingSnapshot};
use myelon::transport::{
    frame_flags, FixedFrame, FrameMeta, FramedTransportConsumer, FramedTransportFrame,
    FramedTransportProducer,
};
use myelon::{
    attach_shared_consumer, build_shared_single_producer, AutoWaitStrategy, CoordinationMode,
    RequiredConsumerAlertKind, RequiredConsumerFailureAction, RequiredConsumerLivenessConfig,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ENTRY: &str = "child_role";
const LONG: Duration = Duration::from_secs(30);
const CAPACITY: usize = 16;
const FAILED_TRIES: u64 = 5;

#[test]
fn child_role() {
    let Some(role) = common::process::role() else {
        return;
    };
    match role.as_str() {
        "producer" => producer_role(),
        "consumer" => consumer_role(),
        other => panic!("unknown child role {other:?}"),
    }
    report(CHILD_OK, role);
}

/// Fills the ring (its two reservations gate from sequence 0), fails `FAILED_TRIES` try-publishes,
/// then on `more` publishes another ring's worth with blocking publishes.
fn producer_role() {
    let mut p = build_shared_single_producer::<Event>(&env_str(SEGMENT_VAR), CAPACITY)
        .with_consumer_ids(["c0", "c1"])
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .build_producer(Event::default)
        .expect("producer");
    for s in 0..CAPACITY as u64 {
        p.try_publish(|e| fill(e, s))
            .expect("room for a ring's worth");
    }
    for _ in 0..FAILED_TRIES {
        assert!(
            p.try_publish(|e| fill(e, 99)).is_err(),
            "ring should be full"
        );
    }
    report("FILLED", p.cursor());
    assert_eq!(read_command().as_deref(), Some("more"));
    for s in CAPACITY as u64..2 * CAPACITY as u64 {
        p.publish_timeout(LONG, |e| fill(e, s)).expect("publish");
    }
    report("PUBLISHED", p.cursor() + 1);
    assert_eq!(read_command(), None);
}

/// Attaches as `MYELON_TEST_ID`; on `consume N` consumes N events and reports the total.
fn consumer_role() {
    let id = env_str(ID_VAR);
    let mut c = attach_shared_consumer::<Event>(&env_str(SEGMENT_VAR), CAPACITY)
        .with_consumer_id(id.as_str())
        .with_attach_timeout(LONG)
        .with_wait_strategy(AutoWaitStrategy::Block)
        .build_consumer()
        .expect("attach");
    report("ATTACHED", c.next_sequence());
    let mut total = 0u64;
    while let Some(cmd) = read_command() {
        let n: u64 = cmd
            .strip_prefix("consume ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad command {cmd:?}"));
        for _ in 0..n {
            let e = c
                .consume_next_timeout(LONG)
                .unwrap_or_else(|e| panic!("event {total}: {e}"));
            assert_eq!(e.sequence, total, "gap or reorder");
            total += 1;
        }
        report(&format!("CONSUMED-{total}"), total);
    }
}

fn spawn(role: &str, segment: &str, id: &str) -> ChildProc {
    Spawn::new(ENTRY, role)
        .env(SEGMENT_VAR, segment)
        .env(ID_VAR, id)
        .spawn()
}

fn snapshot(name: &str) -> RingSnapshot {
    RingInspector::open(ShmBackend, name)
        .unwrap_or_else(|e| panic!("inspect {name}: {e}"))
        .snapshot()
}

/// Polls the ring until `cond` holds for a snapshot (a bound, not a timing assertion).
fn snapshot_until(name: &str, what: &str, cond: impl Fn(&RingSnapshot) -> bool) -> RingSnapshot {
    let deadline = Instant::now() + LONG;
    loop {
        let s = snapshot(name);
        if cond(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "never saw {what}: {s:#?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn counters_read_from_another_process_match_what_happened() {
    let seg = SegmentGuard::new("obs");
    let mut producer = spawn("producer", seg.name(), "-");
    producer.expect("FILLED", LONG);
    let mut consumers = [
        spawn("consumer", seg.name(), "c0"),
        spawn("consumer", seg.name(), "c1"),
    ];
    for c in &mut consumers {
        assert_eq!(
            c.expect("ATTACHED", LONG),
            "0",
            "reserved consumers start at 0"
        );
    }
    let s = snapshot(seg.name());
    assert_eq!(
        (s.events_published, s.publish_full, s.blocked_waits),
        (16, 5, 0)
    );
    assert_eq!(s.owner, ProcessState::Alive);
    assert_eq!(s.owner_pid, producer.pid());
    for c in &s.consumers {
        assert_eq!(
            (c.kind, c.liveness),
            (EntryKind::Attached, ConsumerLiveness::Live)
        );
        assert_eq!(
            (c.cursor, c.consumed, c.lag, c.max_lag),
            (-1, 0, 16, 16),
            "{c:?}"
        );
    }

    for c in &mut consumers {
        c.send("consume 8");
        c.expect("CONSUMED-8", LONG);
    }
    producer.send("more");
    // The producer publishes 8 into the freed slots, then waits for space. Both consumers are
    // told to go on before either is waited for: each gates the other's next events.
    snapshot_until(seg.name(), "24 events published", |s| {
        s.events_published == 24
    });
    for c in &mut consumers {
        c.send("consume 24");
    }
    snapshot_until(seg.name(), "32 events published", |s| {
        s.events_published == 32
    });
    for c in &mut consumers {
        c.expect("CONSUMED-32", LONG);
    }
    assert_eq!(producer.expect("PUBLISHED", LONG), "32");

    let s = snapshot(seg.name());
    assert_eq!(s.events_published, 32);
    assert!(s.blocked_waits >= 1, "the producer waited for space: {s:?}");
    assert_eq!(s.publish_full, FAILED_TRIES + s.blocked_waits);
    assert!(s.blocked > Duration::ZERO);
    let mut ids: Vec<&str> = s.consumers.iter().map(|c| c.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["c0", "c1"]);
    for c in &s.consumers {
        assert_eq!((c.cursor, c.consumed, c.lag), (31, 32, 0), "{c:?}");
        assert_eq!(c.max_lag, 16, "a ring's worth behind, never more: {c:?}");
        assert_eq!(c.first_sequence, 0);
        assert_eq!(c.liveness, ConsumerLiveness::Live);
    }
    let pids: Vec<Option<u32>> = consumers.iter().map(|c| Some(c.pid())).collect();
    for c in &s.consumers {
        assert!(pids.contains(&c.owner_pid), "{c:?} not one of {pids:?}");
    }

    // A consumer killed without detaching keeps gating, and the reader sees its owner dead.
    consumers[1].kill();
    let s = snapshot_until(seg.name(), "c1 dead", |s| {
        s.consumers
            .iter()
            .any(|c| c.id == "c1" && c.liveness == ConsumerLiveness::OwnerDead)
    });
    assert_eq!(s.consumers.len(), 2);
    consumers[0].finish(LONG);
    producer.finish(LONG);
}

type Frame = FixedFrame<52>;

#[test]
fn framed_partial_messages_are_counted_in_the_segment() {
    let seg = SegmentGuard::new("obsf");
    let mut p = FramedTransportProducer::<Frame, _>::create_shared(seg.name(), 64).unwrap();
    let mut c = FramedTransportConsumer::<Frame, _>::attach_shared(seg.name(), 64, "f0").unwrap();
    // The tail of a message whose first frame this consumer never saw (as after a join).
    p.inner_mut().publish(|f| {
        f.set_meta(&FrameMeta {
            message_id: 77,
            len: 10,
            flags: frame_flags::LAST,
            fragment_index: 1,
        })
    });
    p.publish(b"whole").unwrap();
    assert_eq!(&*c.recv_timeout(LONG).unwrap(), b"whole");
    assert_eq!(c.dropped_messages(), 1);
    let s = snapshot(seg.name());
    assert_eq!(s.consumers[0].partial_dropped, 1);
    assert_eq!(s.consumers[0].consumed, 2, "two frames released");
}

#[test]
fn liveness_alerts_and_recoveries_are_counted() {
    let seg = SegmentGuard::new("obsl");
    let mut p = build_shared_single_producer::<Event>(seg.name(), 8)
        .build_producer(Event::default)
        .unwrap();
    let mut c = attach_shared_consumer::<Event>(seg.name(), 8)
        .with_consumer_id("req")
        .build_consumer()
        .unwrap();
    let alerted = Arc::new(AtomicBool::new(false));
    let flag = alerted.clone();
    let cfg = RequiredConsumerLivenessConfig::new(["req"])
        .unwrap()
        .with_progress_timeout(Duration::from_millis(20))
        .unwrap()
        .with_progress_check_interval(Duration::from_millis(5))
        .unwrap()
        .with_failure_action(RequiredConsumerFailureAction::AlertOnly)
        .with_alert_hook(Arc::new(move |a| {
            if a.kind == RequiredConsumerAlertKind::Stalled {
                flag.store(true, Ordering::Release);
            }
        }));
    p.enable_required_consumer_liveness(cfg).unwrap();
    for i in 0..8 {
        p.publish_managed(|e| fill(e, i)).unwrap();
    }
    let drainer = std::thread::spawn(move || {
        // Consumes only once the producer raised its alert, so the stall is certain.
        while !alerted.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        for _ in 0..9 {
            c.consume_next_timeout(LONG).unwrap();
        }
        c
    });
    p.publish_managed(|e| fill(e, 8)).unwrap();
    let c = drainer.join().unwrap();
    // The recovery is observed when the next blocked episode ends or the next check runs.
    let s = snapshot(seg.name());
    let k = s.consumers.iter().find(|k| k.id == "req").unwrap();
    assert_eq!(k.alerts, 1, "{k:?}");
    assert_eq!(k.recoveries, 1, "{k:?}");
    assert_eq!(k.liveness, ConsumerLiveness::Live);
    drop(c);
}
