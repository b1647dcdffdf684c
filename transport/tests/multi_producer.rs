//! Many producers into one ring (`myelon::ring::multi`), over POSIX shared memory.
//!
//! * threads: two producers and two consumers in one process, every event checked;
//! * a given-up claim (`abort`) is skipped and counted;
//! * a producer process SIGKILLed between its claim and its stamps leaves a hole that consumers
//!   skip once it is provably dead — and do not skip while it lives (a slow producer is waited
//!   for);
//! * the last producer to detach closes the ring; attach checks (single- vs multi-producer);
//! * real processes: 4 producer processes × `MYELON_MP_EVENTS` events (default 1,000,000) into
//!   one ring read by 2 consumer processes; every event verified (producer id, per-producer
//!   order) and both consumers agree on the total order (a hash of the whole sequence).
//!
//! Run: `cargo test -p myelon --test multi_producer -- --nocapture`.
#![cfg(all(feature = "shm", not(madsim)))]

mod common;

use common::process::{
    env_str, env_u64, report, ChildProc, SegmentGuard, Spawn, CHILD_OK, SEGMENT_VAR,
};
use myelon::{
    attach_shared_consumer, attach_shared_multi_consumer, build_shared_multi_producer,
    build_shared_single_producer, AutoWaitStrategy, MultiProcessError, Sourced,
};
use std::time::Duration;

const ENTRY: &str = "child_role";
const LONG: Duration = Duration::from_secs(120);
const CAP: usize = 1024;
const COUNT_VAR: &str = "MYELON_MP_COUNT";
const SOURCE_VAR: &str = "MYELON_MP_SOURCE";
const CONSUMER_VAR: &str = "MYELON_MP_CONSUMER";
const PRODUCERS_VAR: &str = "MYELON_MP_PRODUCERS";

myelon::shm_event! {
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Ev {
        /// Index of this event among its producer's events.
        pub idx: u64,
        pub check: u64,
    }
}

fn check_of(source: u64, idx: u64) -> u64 {
    (source.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ idx).wrapping_mul(0xff51_afd7_ed55_8ccd)
}

fn ev(source: u64, idx: u64) -> Ev {
    Ev {
        idx,
        check: check_of(source, idx),
    }
}

/// Folds one delivered event into a hash of the delivered order.
fn fold(h: u64, e: &Sourced<Ev>) -> u64 {
    (h ^ e.source.rotate_left(32) ^ e.event.idx).wrapping_mul(0x0000_0100_0000_01b3)
}

#[test]
fn child_role() {
    let Some(role) = common::process::role() else {
        return;
    };
    match role.as_str() {
        "producer" => producer_role(),
        "consumer" => consumer_role(),
        "claim_and_hold" => claim_and_hold_role(),
        other => panic!("unknown child role {other:?}"),
    }
    report(CHILD_OK, role);
}

/// Publishes `COUNT` events as producer `SOURCE`, one at a time or in small batches.
fn producer_role() {
    let source = env_u64(SOURCE_VAR);
    let n = env_u64(COUNT_VAR);
    let mut p = build_shared_multi_producer::<Ev>(&env_str(SEGMENT_VAR), CAP)
        .with_source_id(source)
        .with_attach_timeout(LONG)
        .build(Ev::default)
        .expect("attach producer");
    report("ATTACHED", source);
    // Wait for the go line so that every producer runs concurrently.
    let _ = common::process::read_command();
    let mut idx = 0u64;
    while idx < n {
        // Every fourth round a batch of up to 3 (one claim: never interleaved).
        let k = if idx % 4 == 0 { (n - idx).min(3) } else { 1 };
        p.publish_batch(k as usize, |i, e| *e = ev(source, idx + i as u64))
            .expect("publish");
        idx += k;
    }
    report("PUBLISHED", n);
    let _ = common::process::read_command();
}

/// Reads until `Closed`, checking every event; reports the count and the order hash.
fn consumer_role() {
    let producers = env_u64(PRODUCERS_VAR);
    let mut c = attach_shared_multi_consumer::<Ev>(&env_str(SEGMENT_VAR), CAP)
        .with_consumer_id(env_str(CONSUMER_VAR))
        .with_attach_timeout(LONG)
        .with_wait_strategy(AutoWaitStrategy::Yield)
        .build_consumer()
        .expect("attach consumer");
    report("ATTACHED", c.next_sequence());
    let mut next = vec![0u64; producers as usize + 1];
    let (mut total, mut hash) = (0u64, 0u64);
    loop {
        match c.consume_next() {
            Ok(e) => {
                let s = e.source as usize;
                assert!(s >= 1 && s <= producers as usize, "source {}", e.source);
                assert_eq!(e.event.idx, next[s], "producer {s}'s order");
                assert_eq!(e.event.check, check_of(e.source, e.event.idx), "payload");
                next[s] += 1;
                total += 1;
                hash = fold(hash, &e);
            }
            Err(MultiProcessError::Closed) => break,
            Err(e) => panic!("consume: {e}"),
        }
    }
    assert_eq!(c.abandoned_slots(), 0);
    report("TOTAL", total);
    report("HASH", format!("{hash:016x}"));
}

/// Attaches as producer `SOURCE`, publishes `COUNT` events, then claims two slots and holds
/// them unpublished until killed.
fn claim_and_hold_role() {
    let source = env_u64(SOURCE_VAR);
    let mut p = build_shared_multi_producer::<Ev>(&env_str(SEGMENT_VAR), CAP)
        .with_source_id(source)
        .with_attach_timeout(LONG)
        .build(Ev::default)
        .expect("attach producer");
    for i in 0..env_u64(COUNT_VAR) {
        p.publish(|e| *e = ev(source, i)).expect("publish");
    }
    let claim = p.claim_batch(2, None).expect("claim");
    report("CLAIMED", claim.first_sequence());
    // Hold the claim until killed (stdin never closes before the kill).
    let _ = common::process::read_command();
    std::mem::forget(claim);
}

#[test]
fn threads_two_producers_two_consumers_agree_on_one_order() {
    const N: u64 = 200_000;
    let seg = SegmentGuard::new("mp-threads");
    let name = seg.name().to_string();
    // Both consumers attach before anything is published (reserved ids).
    let p1 = build_shared_multi_producer::<Ev>(&name, 256)
        .with_source_id(1)
        .with_consumer_ids(["a", "b"])
        .build(Ev::default)
        .expect("create");
    let p2 = build_shared_multi_producer::<Ev>(&name, 256)
        .with_source_id(2)
        .build(Ev::default)
        .expect("attach");
    let consumers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|id| {
            let mut c = attach_shared_multi_consumer::<Ev>(&name, 256)
                .with_consumer_id(id)
                .with_wait_strategy(AutoWaitStrategy::Yield)
                .build_consumer()
                .expect("consumer");
            std::thread::spawn(move || {
                let mut next = [0u64; 3];
                let mut hash = 0u64;
                for _ in 0..2 * N {
                    let e = c.consume_next().expect("event");
                    let s = e.source as usize;
                    assert_eq!(e.event.idx, next[s], "producer {s}'s order");
                    assert_eq!(e.event.check, check_of(e.source, e.event.idx));
                    next[s] += 1;
                    hash = fold(hash, &e);
                }
                assert_eq!(c.abandoned_slots(), 0);
                hash
            })
        })
        .collect();
    let producers: Vec<_> = [p1, p2]
        .into_iter()
        .map(|mut p| {
            std::thread::spawn(move || {
                let s = p.source();
                let mut i = 0;
                while i < N {
                    if i % 5 == 0 && i + 2 <= N {
                        p.publish_batch(2, |k, e| *e = ev(s, i + k as u64)).unwrap();
                        i += 2;
                    } else {
                        p.publish(|e| *e = ev(s, i)).unwrap();
                        i += 1;
                    }
                }
                p
            })
        })
        .collect();
    let producers: Vec<_> = producers.into_iter().map(|h| h.join().unwrap()).collect();
    let hashes: Vec<u64> = consumers.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        hashes[0], hashes[1],
        "both consumers saw the same total order"
    );
    drop(producers);
}

#[test]
fn an_aborted_claim_is_skipped_and_counted() {
    let seg = SegmentGuard::new("mp-abort");
    let mut a = build_shared_multi_producer::<Ev>(seg.name(), 16)
        .with_source_id(1)
        .build(Ev::default)
        .unwrap();
    let mut b = build_shared_multi_producer::<Ev>(seg.name(), 16)
        .with_source_id(2)
        .build(Ev::default)
        .unwrap();
    let mut c = attach_shared_multi_consumer::<Ev>(seg.name(), 16)
        .with_consumer_id("c")
        .build_consumer()
        .unwrap();
    a.publish(|e| *e = ev(1, 0)).unwrap();
    let claim = a.claim_batch(3, None).unwrap();
    assert_eq!(claim.first_sequence(), 1);
    b.publish(|e| *e = ev(2, 0)).unwrap(); // sequence 4, behind the claim
    claim.abort();
    // Dropping an unpublished claim gives it up too.
    drop(a.try_claim_batch(2).unwrap().expect("room"));
    a.publish(|e| *e = ev(1, 1)).unwrap();
    let got: Vec<(u64, u64)> = (0..3)
        .map(|_| {
            let e = c.consume_next_timeout(LONG).unwrap();
            (e.source, e.event.idx)
        })
        .collect();
    assert_eq!(got, vec![(1, 0), (2, 0), (1, 1)]);
    assert_eq!(c.abandoned_slots(), 5);
    assert_eq!(c.cursor(), 7);
}

#[test]
fn a_killed_producers_claim_is_skipped_once_it_is_dead_and_waited_for_while_it_lives() {
    const K: u64 = 5;
    let seg = SegmentGuard::new("mp-hole");
    let mut survivor = build_shared_multi_producer::<Ev>(seg.name(), CAP)
        .with_source_id(1)
        .build(Ev::default)
        .unwrap();
    let mut c = attach_shared_multi_consumer::<Ev>(seg.name(), CAP)
        .with_consumer_id("c")
        .with_producer_check_interval(Duration::from_millis(5))
        .build_consumer()
        .unwrap();
    let mut child: ChildProc = Spawn::new(ENTRY, "claim_and_hold")
        .env(SEGMENT_VAR, seg.name())
        .env(SOURCE_VAR, 7)
        .env(COUNT_VAR, K)
        .spawn();
    assert_eq!(child.expect("CLAIMED", LONG), K.to_string());
    survivor.publish(|e| *e = ev(1, 0)).unwrap(); // sequence K + 2, behind the hole
    for i in 0..K {
        let e = c.consume_next_timeout(LONG).unwrap();
        assert_eq!((e.source, e.event.idx), (7, i));
    }
    // The claimer lives: its claim is waited for, not skipped.
    let r = c.consume_next_timeout(Duration::from_millis(100));
    assert!(matches!(r, Err(MultiProcessError::Timeout { .. })), "{r:?}");
    assert_eq!(c.abandoned_slots(), 0);
    child.kill();
    let e = c.consume_next_timeout(LONG).unwrap();
    assert_eq!((e.source, e.event.idx), (1, 0));
    assert_eq!(c.abandoned_slots(), 2);
    // The ring moves on for producers too: a full lap more.
    for i in 1..=CAP as u64 {
        survivor.publish(|e| *e = ev(1, i)).unwrap();
        let e = c.consume_next_timeout(LONG).unwrap();
        assert_eq!((e.source, e.event.idx), (1, i));
    }
}

#[test]
fn the_last_producer_to_detach_closes_the_ring() {
    let seg = SegmentGuard::new("mp-close");
    let mut a = build_shared_multi_producer::<Ev>(seg.name(), 16)
        .with_source_id(1)
        .build(Ev::default)
        .unwrap();
    let mut b = build_shared_multi_producer::<Ev>(seg.name(), 16)
        .with_source_id(2)
        .build(Ev::default)
        .unwrap();
    let mut c = attach_shared_multi_consumer::<Ev>(seg.name(), 16)
        .with_consumer_id("c")
        .build_consumer()
        .unwrap();
    a.publish(|e| *e = ev(1, 0)).unwrap();
    drop(a);
    b.publish(|e| *e = ev(2, 0)).unwrap();
    assert_eq!(c.consume_next_timeout(LONG).unwrap().source, 1);
    assert_eq!(c.consume_next_timeout(LONG).unwrap().source, 2);
    assert!(matches!(
        c.consume_next_timeout(Duration::from_millis(20)),
        Err(MultiProcessError::Timeout { .. })
    ));
    b.close();
    assert!(matches!(
        c.consume_next_timeout(LONG),
        Err(MultiProcessError::Closed)
    ));
}

#[test]
fn producer_ids_are_unique_and_kinds_do_not_mix() {
    let seg = SegmentGuard::new("mp-kinds");
    let _a = build_shared_multi_producer::<Ev>(seg.name(), 16)
        .with_source_id(1)
        .build(Ev::default)
        .unwrap();
    let dup = build_shared_multi_producer::<Ev>(seg.name(), 16)
        .with_source_id(1)
        .build(Ev::default);
    assert!(
        matches!(dup, Err(MultiProcessError::ProducerIdInUse { source: 1 })),
        "{dup:?}"
    );
    let reserved = build_shared_multi_producer::<Ev>(seg.name(), 16)
        .with_source_id(u64::MAX)
        .build(Ev::default);
    assert!(matches!(
        reserved,
        Err(MultiProcessError::InvalidConfig { .. })
    ));
    // A plain consumer of `Ev` is refused (the slots hold `Sourced<Ev>`).
    let plain = attach_shared_consumer::<Ev>(seg.name(), 16)
        .with_consumer_id("x")
        .build_consumer();
    assert!(
        matches!(
            plain,
            Err(MultiProcessError::EventSizeMismatch { .. }
                | MultiProcessError::TypeMismatch { .. })
        ),
        "{plain:?}"
    );
    // A multi-producer builder never attaches to a single-producer ring.
    let seg2 = SegmentGuard::new("mp-kinds-sp");
    let _sp = build_shared_single_producer::<Sourced<Ev>>(seg2.name(), 16)
        .build_producer(Sourced::default)
        .unwrap();
    let mp = build_shared_multi_producer::<Ev>(seg2.name(), 16)
        .with_source_id(3)
        .build(Ev::default);
    assert!(
        matches!(mp, Err(MultiProcessError::LayoutMismatch { .. })),
        "{mp:?}"
    );
}

#[test]
fn four_producer_processes_into_one_ring_read_by_two_consumer_processes() {
    let per = std::env::var("MYELON_MP_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000u64);
    const PRODUCERS: u64 = 4;
    let seg = SegmentGuard::new("mp-procs");
    // The test process creates the ring (reserving both consumers) and stays attached as an
    // idle producer until every child producer is done, so the ring closes only at the end.
    let holder = build_shared_multi_producer::<Ev>(seg.name(), CAP)
        .with_source_id(100)
        .with_consumer_ids(["c1", "c2"])
        .build(Ev::default)
        .expect("create");
    let mut consumers: Vec<ChildProc> = ["c1", "c2"]
        .into_iter()
        .map(|id| {
            Spawn::new(ENTRY, "consumer")
                .env(SEGMENT_VAR, seg.name())
                .env(CONSUMER_VAR, id)
                .env(PRODUCERS_VAR, PRODUCERS)
                .spawn()
        })
        .collect();
    for c in &mut consumers {
        assert_eq!(c.expect("ATTACHED", LONG), "0");
    }
    let mut producers: Vec<ChildProc> = (1..=PRODUCERS)
        .map(|s| {
            Spawn::new(ENTRY, "producer")
                .env(SEGMENT_VAR, seg.name())
                .env(SOURCE_VAR, s)
                .env(COUNT_VAR, per)
                .spawn()
        })
        .collect();
    for p in &mut producers {
        p.expect("ATTACHED", LONG);
    }
    for p in &mut producers {
        p.send("go");
    }
    for p in &mut producers {
        assert_eq!(
            p.expect("PUBLISHED", Duration::from_secs(600)),
            per.to_string()
        );
        p.send("exit");
        p.finish(LONG);
    }
    drop(holder); // the last producer: closes the ring
    let mut hashes = Vec::new();
    for c in &mut consumers {
        assert_eq!(
            c.expect("TOTAL", Duration::from_secs(600)),
            (per * PRODUCERS).to_string()
        );
        hashes.push(c.expect("HASH", LONG));
        c.finish(LONG);
    }
    assert_eq!(hashes[0], hashes[1], "both consumers saw one total order");
    println!(
        "4 producer processes x {per} events, 2 consumer processes: every event verified, order hash {}",
        hashes[0]
    );
}

#[test]
fn a_managed_multi_producer_publish_stops_on_a_missing_required_consumer() {
    use myelon::liveness::{RequiredConsumerError, RequiredConsumerLivenessConfig};
    let seg = SegmentGuard::new("mp-managed");
    let mut a = build_shared_multi_producer::<Ev>(seg.name(), 4)
        .with_source_id(1)
        .build(Ev::default)
        .unwrap();
    let cfg = RequiredConsumerLivenessConfig::new(["worker"])
        .unwrap()
        .with_startup_wait_timeout(Duration::from_millis(50))
        .unwrap()
        .with_progress_check_interval(Duration::from_millis(10))
        .unwrap();
    a.enable_required_consumer_liveness(cfg).unwrap();
    // The reservation gates: four events fit, the fifth waits for "worker", who never comes.
    for i in 0..4 {
        a.publish_managed(|e| *e = ev(1, i)).unwrap();
    }
    let r = a.publish_managed(|e| *e = ev(1, 4));
    match r {
        Err(MultiProcessError::Liveness(RequiredConsumerError::StartupTimeout {
            missing, ..
        })) => {
            assert_eq!(missing, vec!["worker".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    assert!(a.required_consumer_failure().is_some(), "sticky");
    // The consumer that finally attaches resumes at the reservation: all four events.
    let mut c = attach_shared_multi_consumer::<Ev>(seg.name(), 4)
        .with_consumer_id("worker")
        .build_consumer()
        .unwrap();
    for i in 0..4 {
        assert_eq!(c.consume_next_timeout(LONG).unwrap().event.idx, i);
    }
}

#[test]
fn a_ring_whose_creator_left_is_kept_while_another_producer_lives() {
    use myelon::backend::ShmBackend;
    use myelon::observability::clean_abandoned;
    let seg = SegmentGuard::new("mp-keep");
    let a = build_shared_multi_producer::<Ev>(seg.name(), 16)
        .with_source_id(1)
        .build(Ev::default)
        .unwrap();
    let mut b = build_shared_multi_producer::<Ev>(seg.name(), 16)
        .with_source_id(2)
        .build(Ev::default)
        .unwrap();
    let mut c = attach_shared_multi_consumer::<Ev>(seg.name(), 16)
        .with_consumer_id("c")
        .build_consumer()
        .unwrap();
    drop(a); // the creator (owner of the object) leaves; b goes on
    let only_ours = |n: &str| n.trim_start_matches('/') == seg.name().trim_start_matches('/');
    let cleaned = clean_abandoned(&ShmBackend, false, only_ours).unwrap();
    assert!(cleaned.iter().all(|o| !o.removed), "{cleaned:?}");
    // Neither a single-producer builder nor a new creator may take the name over.
    let sp = build_shared_single_producer::<Sourced<Ev>>(seg.name(), 16)
        .build_producer(Sourced::default);
    assert!(sp.is_err(), "a live multi-producer ring was reclaimed");
    let mut d = build_shared_multi_producer::<Ev>(seg.name(), 16)
        .with_source_id(3)
        .build(Ev::default)
        .unwrap();
    b.publish(|e| *e = ev(2, 0)).unwrap();
    d.publish(|e| *e = ev(3, 0)).unwrap();
    assert_eq!(c.consume_next_timeout(LONG).unwrap().source, 2);
    assert_eq!(c.consume_next_timeout(LONG).unwrap().source, 3);
    drop((b, d)); // the last producer (not the creator) closes it and removes the name
    assert!(matches!(
        c.consume_next_timeout(LONG),
        Err(MultiProcessError::Closed)
    ));
    assert!(matches!(
        myelon::backend::RingBackend::open(&ShmBackend, seg.name()),
        Err(myelon::backend::BackendError::NotFound { .. })
    ));
}
