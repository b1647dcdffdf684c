//! Behaviour every backend must share: one suite, instantiated for shm, mmap and sim.

// Std atomics here are process-local (counters and flags between threads of this process);
// `clippy.toml`'s rule on shared-memory atomics is for the library.
#![allow(clippy::disallowed_types)]

mod common;

use common::*;
use myelon::backend::RingBackend;
use myelon::{
    AutoConsumer, AutoWaitStrategy, Consumer, CoordinationMode, MultiProcessError, Producer,
    RingBufferFull, SharedDisruptorBuilder,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

fn builder<F: Fixture, E: myelon::ShmEvent>(
    backend: F::B,
    f: &F,
    cap: usize,
) -> SharedDisruptorBuilder<E, F::B> {
    SharedDisruptorBuilder::with_backend(backend, f.name(), cap)
}

fn producer<F: Fixture>(f: &F, cap: usize) -> Producer<Event, F::B> {
    builder::<F, Event>(f.producer(), f, cap)
        .build_producer(Event::default)
        .expect("build producer")
}

fn consumer<F: Fixture>(f: &F, cap: usize, id: &str) -> Consumer<Event, F::B> {
    builder::<F, Event>(f.consumer(), f, cap)
        .with_consumer_id(id)
        .with_attach_timeout(LONG)
        .build_consumer()
        .expect("attach consumer")
}

fn expect_next<B: RingBackend>(c: &mut Consumer<Event, B>, seq: u64) {
    let e = c.consume_next_timeout(LONG).expect("event");
    assert_eq!(e.sequence, seq);
    assert_eq!(e.checksum, checksum(seq));
}

pub fn in_order_across_wraps<F: Fixture>() {
    let f = F::new();
    let mut p = producer(&f, 8);
    let mut c = consumer(&f, 8, "c0");
    for round in 0..25u64 {
        for i in 0..4 {
            let s = round * 4 + i;
            assert_eq!(p.publish(|e| fill(e, s)), s as i64);
        }
        for i in 0..4 {
            expect_next(&mut c, round * 4 + i);
        }
    }
    assert_eq!(c.cursor(), 99);
    assert_eq!(p.cursor(), 99);
}

pub fn broadcast_to_three_with_backpressure<F: Fixture>() {
    let f = F::new();
    let mut p = producer(&f, 16);
    // Four threads on a small machine: consumers yield instead of spinning.
    let consumers: Vec<_> = (0..3)
        .map(|i| {
            builder::<F, Event>(f.consumer(), &f, 16)
                .with_consumer_id(format!("c{i}"))
                .with_wait_strategy(AutoWaitStrategy::Yield)
                .build_consumer()
                .expect("attach consumer")
        })
        .collect();
    // Under Miri (interpreted, hundreds of times slower) a few wraps of the ring are enough.
    const N: u64 = if cfg!(miri) { 200 } else { 20_000 };
    let handles: Vec<_> = consumers
        .into_iter()
        .map(|mut c| {
            std::thread::spawn(move || {
                let mut sum = 0u64;
                for s in 0..N {
                    let e = c.consume_next_timeout(LONG).expect("event");
                    assert_eq!(e.sequence, s, "order");
                    assert_eq!(e.checksum, checksum(s), "torn or corrupt event");
                    sum = sum.wrapping_add(e.checksum);
                }
                sum
            })
        })
        .collect();
    for s in 0..N {
        p.publish(|e| fill(e, s));
    }
    let want = (0..N).fold(0u64, |a, s| a.wrapping_add(checksum(s)));
    for h in handles {
        assert_eq!(h.join().expect("consumer thread"), want);
    }
}

pub fn full_ring_refuses_until_released<F: Fixture>() {
    let f = F::new();
    let mut p = producer(&f, 4);
    let mut c = consumer(&f, 4, "slow");
    for s in 0..4 {
        assert!(p.try_publish(|e| fill(e, s)).is_ok());
    }
    assert_eq!(p.try_publish(|e| fill(e, 4)), Err(RingBufferFull));
    assert!(matches!(
        p.publish_timeout(Duration::from_millis(5), |e| fill(e, 4)),
        Err(MultiProcessError::Timeout { .. })
    ));
    {
        let lease = c.try_consume_next_leased().unwrap().expect("event 0");
        assert_eq!(lease.sequence(), 0);
        // Still leased: the slot of event 0 is not free yet.
        assert_eq!(lease.checksum, checksum(0));
    }
    assert_eq!(p.try_publish(|e| fill(e, 4)), Ok(4));
    assert_eq!(p.try_publish(|e| fill(e, 5)), Err(RingBufferFull));
    assert_eq!(p.try_publish_batch(2, |_, _| {}), Err(RingBufferFull));
}

pub fn lease_pins_the_slot<F: Fixture>() {
    let f = F::new();
    let mut p = producer(&f, 2);
    let mut c = consumer(&f, 2, "pin");
    p.publish(|e| fill(e, 0));
    p.publish(|e| fill(e, 1));
    let lease = c.try_consume_next_leased().unwrap().expect("event 0");
    assert_eq!(p.try_publish(|e| fill(e, 2)), Err(RingBufferFull));
    assert_eq!(lease.sequence, 0);
    drop(lease);
    assert_eq!(p.try_publish(|e| fill(e, 2)), Ok(2));
}

pub fn late_joiner_starts_at_live_tail<F: Fixture>() {
    let f = F::new();
    let mut p = producer(&f, 8);
    for s in 0..13 {
        p.publish(|e| fill(e, s));
    }
    let mut c = consumer(&f, 8, "late");
    assert_eq!(c.next_sequence(), 13);
    assert!(!c.resumed());
    assert_eq!(
        c.try_consume_next().unwrap(),
        None,
        "stale slot read as new"
    );
    p.publish(|e| fill(e, 13));
    expect_next(&mut c, 13);
}

pub fn rejoin_resumes_at_committed_cursor<F: Fixture>() {
    let f = F::new();
    let mut p = producer(&f, 8);
    let mut c = consumer(&f, 8, "again");
    for s in 0..6 {
        p.publish(|e| fill(e, s));
    }
    expect_next(&mut c, 0);
    expect_next(&mut c, 1);
    c.keep_registration_on_drop();
    drop(c);
    for s in 6..10 {
        // Sequence 9 reuses the slot of 1, which "again" released before it left.
        p.publish(|e| fill(e, s));
    }
    assert_eq!(
        p.try_publish(|e| fill(e, 10)),
        Err(RingBufferFull),
        "rejoin entry must keep gating"
    );
    let mut c = consumer(&f, 8, "again");
    assert!(c.resumed());
    for s in 2..10 {
        expect_next(&mut c, s);
    }
}

pub fn duplicate_live_id_is_refused<F: Fixture>() {
    let f = F::new();
    let _p = producer(&f, 8);
    let _c = consumer(&f, 8, "dup");
    let err = builder::<F, Event>(f.consumer(), &f, 8)
        .with_consumer_id("dup")
        .build_consumer()
        .unwrap_err();
    assert!(
        matches!(err, MultiProcessError::ConsumerIdInUse { ref id } if id == "dup"),
        "{err}"
    );
}

pub fn detached_consumer_stops_gating<F: Fixture>() {
    let f = F::new();
    let mut p = producer(&f, 4);
    let c = consumer(&f, 4, "gone");
    for s in 0..4 {
        p.publish(|e| fill(e, s));
    }
    assert_eq!(p.try_publish(|e| fill(e, 4)), Err(RingBufferFull));
    drop(c);
    assert_eq!(p.try_publish(|e| fill(e, 4)), Ok(4));
}

pub fn attach_checks_type_and_shape<F: Fixture>() {
    let f = F::new();
    let _p = producer(&f, 8);
    let cap = builder::<F, Event>(f.consumer(), &f, 16)
        .build_consumer()
        .unwrap_err();
    assert!(
        matches!(
            cap,
            MultiProcessError::CapacityMismatch {
                expected: 16,
                found: 8
            }
        ),
        "{cap}"
    );
    let ty = builder::<F, Other>(f.consumer(), &f, 8)
        .build_consumer()
        .unwrap_err();
    assert!(matches!(ty, MultiProcessError::TypeMismatch { .. }), "{ty}");
    let size = builder::<F, u32>(f.consumer(), &f, 8)
        .build_consumer()
        .unwrap_err();
    assert!(
        matches!(
            size,
            MultiProcessError::EventSizeMismatch {
                expected: 4,
                found: 16
            }
        ),
        "{size}"
    );
}

pub fn attach_waits_then_times_out<F: Fixture>() {
    let f = F::new();
    let err = builder::<F, Event>(f.consumer(), &f, 8)
        .with_attach_timeout(Duration::from_millis(30))
        .build_consumer()
        .unwrap_err();
    assert!(matches!(err, MultiProcessError::NotReady { .. }), "{err}");
}

pub fn attach_before_producer_succeeds<F: Fixture>()
where
    F::B: Send,
{
    let f = F::new();
    let b = f.consumer();
    let name = f.name().to_string();
    let t = std::thread::spawn(move || {
        let mut c = SharedDisruptorBuilder::<Event, _>::with_backend(b, &name, 8)
            .with_consumer_id("early")
            .with_attach_timeout(LONG)
            .build_consumer()
            .expect("attach once the producer exists");
        c.consume_next_timeout(LONG).map(|e| e.sequence)
    });
    let mut p = builder::<F, Event>(f.producer(), &f, 8)
        .with_consumer_id("early")
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .build_producer(Event::default)
        .expect("producer");
    p.publish(|e| fill(e, 0));
    assert_eq!(t.join().unwrap().expect("event"), 0);
}

pub fn live_name_is_not_clobbered<F: Fixture>() {
    let f = F::new();
    let mut p = producer(&f, 8);
    p.publish(|e| fill(e, 0));
    let err = builder::<F, Event>(f.producer(), &f, 8)
        .build_producer(Event::default)
        .unwrap_err();
    assert!(
        matches!(
            err,
            MultiProcessError::Backend(myelon::backend::BackendError::AlreadyExists { .. })
        ),
        "{err}"
    );
    assert_eq!(
        p.try_publish(|e| fill(e, 1)),
        Ok(1),
        "first producer still works"
    );
}

pub fn close_drains_then_reports_closed<F: Fixture>() {
    let f = F::new();
    let mut p = producer(&f, 8);
    let mut c = consumer(&f, 8, "drain");
    for s in 0..3 {
        p.publish(|e| fill(e, s));
    }
    drop(p);
    for s in 0..3 {
        expect_next(&mut c, s);
    }
    assert!(matches!(
        c.try_consume_next(),
        Err(MultiProcessError::Closed)
    ));
    assert!(matches!(
        c.consume_next_timeout(LONG),
        Err(MultiProcessError::Closed)
    ));
}

pub fn wait_for_consumers_coordinates<F: Fixture>()
where
    F::B: Send,
{
    let f = F::new();
    let missing = builder::<F, Event>(f.producer(), &f, 8)
        .with_consumer_ids(["w0", "w1"])
        .with_coordination(CoordinationMode::WaitForConsumers)
        .with_coordination_timeout(Duration::from_millis(30))
        .build_producer(Event::default)
        .unwrap_err();
    match missing {
        MultiProcessError::ConsumersNotAttached { missing, .. } => {
            assert_eq!(missing, vec!["w0".to_string(), "w1".to_string()])
        }
        other => panic!("expected ConsumersNotAttached, got {other}"),
    }
    let threads: Vec<_> = ["w0", "w1"]
        .iter()
        .map(|id| {
            let b = f.consumer();
            let name = f.name().to_string();
            std::thread::spawn(move || {
                let mut c = SharedDisruptorBuilder::<Event, _>::with_backend(b, &name, 8)
                    .with_consumer_id(*id)
                    .with_attach_timeout(LONG)
                    .build_consumer()
                    .expect("attach");
                (0..20u64)
                    .map(|_| c.consume_next_timeout(LONG).expect("event").sequence)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut p = builder::<F, Event>(f.producer(), &f, 8)
        .with_consumer_ids(["w0", "w1"])
        .with_coordination(CoordinationMode::WaitForConsumers)
        .with_coordination_timeout(LONG)
        .build_producer(Event::default)
        .expect("all consumers attach");
    for s in 0..20 {
        p.publish(|e| fill(e, s));
    }
    for t in threads {
        assert_eq!(t.join().unwrap(), (0..20).collect::<Vec<_>>());
    }
}

pub fn buffer_until_consumers_keeps_the_head<F: Fixture>() {
    let f = F::new();
    let mut p = builder::<F, Event>(f.producer(), &f, 8)
        .discover_consumer_with_prefix(2, "cp")
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .build_producer(Event::default)
        .expect("producer");
    for s in 0..8 {
        assert_eq!(p.try_publish(|e| fill(e, s)), Ok(s as i64));
    }
    assert_eq!(p.try_publish(|e| fill(e, 8)), Err(RingBufferFull));
    let mut a = consumer(&f, 8, "cp_0");
    let mut b = consumer(&f, 8, "cp_1");
    assert!(a.resumed() && b.resumed());
    for s in 0..8 {
        expect_next(&mut a, s);
        expect_next(&mut b, s);
    }
    let ids: Vec<_> = p.consumers().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, vec!["cp_0".to_string(), "cp_1".to_string()]);
    let third = builder::<F, Event>(f.consumer(), &f, 8)
        .with_consumer_id("cp_2")
        .build_consumer()
        .expect("a third consumer takes a free entry");
    assert!(!third.resumed());
}

pub fn batches_both_ways<F: Fixture>() {
    let f = F::new();
    let mut p = producer(&f, 64);
    let mut c = consumer(&f, 64, "batch");
    assert_eq!(p.publish_batch(10, |i, e| fill(e, i as u64)), 9);
    assert_eq!(
        p.try_publish_batch(54, |i, e| fill(e, 10 + i as u64)),
        Ok(63)
    );
    assert_eq!(p.try_publish_batch(1, |_, _| {}), Err(RingBufferFull));
    let mut seen = Vec::new();
    let mut ends = 0;
    let n = c
        .try_consume_batch(40, |e, s, end| {
            assert_eq!(e.sequence as i64, s);
            seen.push(s);
            ends += usize::from(end);
        })
        .unwrap();
    assert_eq!((n, ends), (40, 1));
    let n = c.try_consume_batch(100, |e, s, _| {
        assert_eq!(e.checksum, checksum(s as u64));
        seen.push(s);
    });
    assert_eq!(n.unwrap(), 24);
    assert_eq!(seen, (0..64).collect::<Vec<_>>());
    assert_eq!(c.try_consume_batch(8, |_, _, _| {}).unwrap(), 0);
}

pub fn blocking_strategies_receive<F: Fixture>()
where
    F::B: Send,
{
    for strategy in [
        AutoWaitStrategy::Block,
        AutoWaitStrategy::Yield,
        AutoWaitStrategy::Sleep(Duration::from_micros(20)),
        AutoWaitStrategy::BusySpin,
    ] {
        let f = F::new();
        let mut p = producer(&f, 8);
        let c = consumer(&f, 8, "auto");
        let total = Arc::new(AtomicU64::new(0));
        let count = Arc::new(AtomicU64::new(0));
        let (t2, c2) = (Arc::clone(&total), Arc::clone(&count));
        let auto = AutoConsumer::spawn(c, strategy, move |e: &Event, s, _| {
            assert_eq!(e.sequence as i64, s);
            t2.fetch_add(e.sequence, Ordering::Relaxed);
            c2.fetch_add(1, Ordering::Relaxed);
        });
        for s in 0..500 {
            p.publish(|e| fill(e, s));
        }
        drop(p);
        let (c, result) = auto.join();
        assert!(result.is_ok(), "{strategy:?}: {result:?}");
        assert_eq!(count.load(Ordering::Relaxed), 500, "{strategy:?}");
        assert_eq!(total.load(Ordering::Relaxed), (0..500).sum::<u64>());
        assert_eq!(c.cursor(), 499);
    }
}

pub fn too_many_consumers<F: Fixture>() {
    let f = F::new();
    let _p = producer(&f, 8);
    let held: Vec<_> = (0..myelon::DEFAULT_MAX_CONSUMERS)
        .map(|i| consumer(&f, 8, &format!("m{i}")))
        .collect();
    let err = builder::<F, Event>(f.consumer(), &f, 8)
        .with_consumer_id("one-too-many")
        .build_consumer()
        .unwrap_err();
    assert!(
        matches!(err, MultiProcessError::TooManyConsumers { .. }),
        "{err}"
    );
    drop(held);
}

pub fn invalid_arguments_are_typed<F: Fixture>() {
    let f = F::new();
    let err = builder::<F, Event>(f.producer(), &f, 12)
        .build_producer(Event::default)
        .unwrap_err();
    assert!(matches!(
        err,
        MultiProcessError::InvalidCapacity { capacity: 12, .. }
    ));
    let _p = producer(&f, 8);
    for bad in ["", &"x".repeat(49), "nul\0"] {
        let err = builder::<F, Event>(f.consumer(), &f, 8)
            .with_consumer_id(bad)
            .build_consumer()
            .unwrap_err();
        assert!(
            matches!(err, MultiProcessError::InvalidConsumerId { .. }),
            "{bad:?}"
        );
    }
}

pub fn claims_commit_or_abort_as_a_unit<F: Fixture>() {
    let f = F::new();
    let mut p = producer(&f, 8);
    let mut c = consumer(&f, 8, "claim");
    {
        let mut claim = p.try_claim_batch(3).expect("space");
        assert_eq!((claim.len(), claim.first_sequence()), (3, 0));
        for i in 0..3 {
            fill(claim.slot_mut(i), 100 + i as u64);
        }
        assert_eq!(c.try_consume_next().unwrap(), None, "visible before commit");
        claim.abort();
    }
    assert_eq!(c.try_consume_next().unwrap(), None, "visible after abort");
    let mut claim = p.try_claim_batch(3).expect("space");
    assert_eq!(claim.first_sequence(), 0, "abort gives the slots back");
    for i in 0..3 {
        fill(claim.slot_mut(i), i as u64);
    }
    assert_eq!(claim.commit(), 2);
    for s in 0..3 {
        expect_next(&mut c, s);
    }
    assert!(p.try_claim_batch(0).is_err());
    assert!(p.try_claim_batch(9).is_err());
    assert!(
        p.try_claim_batch(8).is_ok(),
        "the consumer released everything"
    );
    p.publish_batch(8, |i, e| fill(e, 3 + i as u64));
    assert!(matches!(
        p.claim_batch_timeout(1, Some(Duration::from_millis(5))),
        Err(MultiProcessError::Timeout { .. })
    ));
}

macro_rules! conformance {
    ($module:ident, $fixture:ty) => {
        mod $module {
            use super::*;
            #[test]
            fn in_order_across_wraps() {
                super::in_order_across_wraps::<$fixture>()
            }
            #[test]
            fn broadcast_to_three_with_backpressure() {
                super::broadcast_to_three_with_backpressure::<$fixture>()
            }
            #[test]
            fn full_ring_refuses_until_released() {
                super::full_ring_refuses_until_released::<$fixture>()
            }
            #[test]
            fn lease_pins_the_slot() {
                super::lease_pins_the_slot::<$fixture>()
            }
            #[test]
            fn late_joiner_starts_at_live_tail() {
                super::late_joiner_starts_at_live_tail::<$fixture>()
            }
            #[test]
            fn rejoin_resumes_at_committed_cursor() {
                super::rejoin_resumes_at_committed_cursor::<$fixture>()
            }
            #[test]
            fn duplicate_live_id_is_refused() {
                super::duplicate_live_id_is_refused::<$fixture>()
            }
            #[test]
            fn detached_consumer_stops_gating() {
                super::detached_consumer_stops_gating::<$fixture>()
            }
            #[test]
            fn attach_checks_type_and_shape() {
                super::attach_checks_type_and_shape::<$fixture>()
            }
            #[test]
            fn attach_waits_then_times_out() {
                super::attach_waits_then_times_out::<$fixture>()
            }
            #[test]
            fn attach_before_producer_succeeds() {
                super::attach_before_producer_succeeds::<$fixture>()
            }
            #[test]
            fn live_name_is_not_clobbered() {
                super::live_name_is_not_clobbered::<$fixture>()
            }
            #[test]
            fn close_drains_then_reports_closed() {
                super::close_drains_then_reports_closed::<$fixture>()
            }
            #[test]
            fn wait_for_consumers_coordinates() {
                super::wait_for_consumers_coordinates::<$fixture>()
            }
            #[test]
            fn buffer_until_consumers_keeps_the_head() {
                super::buffer_until_consumers_keeps_the_head::<$fixture>()
            }
            #[test]
            fn batches_both_ways() {
                super::batches_both_ways::<$fixture>()
            }
            #[test]
            fn blocking_strategies_receive() {
                super::blocking_strategies_receive::<$fixture>()
            }
            #[test]
            fn too_many_consumers() {
                super::too_many_consumers::<$fixture>()
            }
            #[test]
            fn claims_commit_or_abort_as_a_unit() {
                super::claims_commit_or_abort_as_a_unit::<$fixture>()
            }
            #[test]
            fn invalid_arguments_are_typed() {
                super::invalid_arguments_are_typed::<$fixture>()
            }
        }
    };
}

conformance!(sim, SimFixture);
conformance!(shm, ShmFixture);
conformance!(mmap, MmapFixture);
