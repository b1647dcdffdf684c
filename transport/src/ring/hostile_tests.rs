//! Hostile and stale shared memory, and simulated crashes, on the sim backend: every corrupt
//! value is a typed error or a safe clamp, never a panic, an out-of-bounds access or a hang.

use crate::backend::{Region, RingBackend, SimBackend};
use crate::ring::layout::{ENTRY_ACTIVE, LAYOUT_VERSION, MAGIC, REGISTRY_LOCK_SLOT};
use crate::ring::sync::Ordering;
use crate::{Consumer, MultiProcessError, Producer, RingBufferFull, SharedDisruptorBuilder};
use std::time::Duration;

const NAME: &str = "hostile";

fn builder(b: &SimBackend, cap: usize) -> SharedDisruptorBuilder<u64, SimBackend> {
    SharedDisruptorBuilder::with_backend(b.clone(), NAME, cap)
        .with_attach_timeout(Duration::from_millis(20))
}

fn pair(
    cap: usize,
) -> (
    SimBackend,
    Producer<u64, SimBackend>,
    Consumer<u64, SimBackend>,
) {
    let b = SimBackend::new_world();
    let p = builder(&b, cap).build_producer(|| 0).unwrap();
    let c = builder(&b.sibling(), cap)
        .with_consumer_id("c")
        .build_consumer()
        .unwrap();
    (b, p, c)
}

#[test]
fn stamp_ahead_is_a_typed_error_and_consumer_stays_usable() {
    let (_b, mut p, mut c) = pair(4);
    p.publish(|e| *e = 1);
    let slot = p.segment().slot(0);
    slot.stamp.store(1_000_000, Ordering::Release);
    assert!(matches!(
        c.try_consume_next(),
        Err(MultiProcessError::Corrupt {
            value: 1_000_000,
            ..
        })
    ));
    assert!(matches!(
        c.consume_next_timeout(Duration::from_millis(5)),
        Err(MultiProcessError::Corrupt { .. })
    ));
    slot.stamp.store(0, Ordering::Release);
    assert_eq!(c.try_consume_next().unwrap(), Some(1));
}

#[test]
fn batch_stops_at_a_corrupt_stamp() {
    let (_b, mut p, mut c) = pair(8);
    for i in 0..3 {
        p.publish(|e| *e = i);
    }
    p.segment().slot(1).stamp.store(i64::MAX, Ordering::Release);
    let mut seen = 0;
    let r = c.try_consume_batch(8, |_, _, _| seen += 1);
    assert!(matches!(r, Err(MultiProcessError::Corrupt { .. })), "{r:?}");
    assert_eq!(seen, 0, "nothing delivered from a corrupt batch");
}

#[test]
fn negative_garbage_stamp_reads_as_empty() {
    let (_b, _p, mut c) = pair(4);
    c.segment().slot(0).stamp.store(i64::MIN, Ordering::Release);
    assert_eq!(c.try_consume_next().unwrap(), None);
}

#[test]
fn impossible_consumer_cursors_are_clamped() {
    let (_b, mut p, c) = pair(4);
    let entry = c.segment().entry(0);
    assert_eq!(entry.state.load(Ordering::Acquire), ENTRY_ACTIVE);
    // Far ahead: treated as caught up, so the producer is not blocked by garbage...
    entry.cursor.value.store(i64::MAX, Ordering::Release);
    for i in 0..10 {
        assert!(p.try_publish(|e| *e = i).is_ok());
    }
    // ...far behind: treated as a consumer a whole lap behind, so the producer stops.
    entry.cursor.value.store(i64::MIN, Ordering::Release);
    let mut published = 0;
    while p.try_publish(|e| *e = 0).is_ok() {
        published += 1;
        assert!(published <= 4, "producer overran a lagging consumer");
    }
    assert_eq!(p.try_publish(|e| *e = 0), Err(RingBufferFull));
}

#[test]
fn corrupt_producer_cursor_refuses_registration() {
    let (b, p, _c) = pair(4);
    p.segment()
        .header()
        .producer
        .value
        .store(-7, Ordering::Release);
    let err = builder(&b.sibling(), 4)
        .with_consumer_id("late")
        .build_consumer()
        .unwrap_err();
    assert!(
        matches!(err, MultiProcessError::Corrupt { value: -7, .. }),
        "{err}"
    );
}

#[test]
fn corrupt_id_length_is_skipped() {
    let (b, p, _c) = pair(4);
    p.segment()
        .entry(0)
        .id_len
        .store(u32::MAX, Ordering::Release);
    assert_eq!(p.consumers()[0].id, "<corrupt id>");
    // A consumer with the "same" id no longer matches the corrupt entry; it takes a new one.
    let other = builder(&b.sibling(), 4)
        .with_consumer_id("c")
        .build_consumer()
        .unwrap();
    assert!(!other.resumed());
}

#[test]
fn rejoin_with_corrupt_cursor_is_refused() {
    let (b, p, c) = pair(4);
    let entry = p.segment().entry(0);
    std::mem::forget(c);
    // The consumer's simulated process dies; its entry holds an impossible cursor.
    let owner = entry.owner_token.load(Ordering::Relaxed) as u32;
    b.world().kill_process(owner);
    entry.cursor.value.store(99, Ordering::Release);
    let err = builder(&b.sibling(), 4)
        .with_consumer_id("c")
        .build_consumer()
        .unwrap_err();
    assert!(
        matches!(err, MultiProcessError::Corrupt { value: 99, .. }),
        "{err}"
    );
    drop(p);
}

fn poke_header(p: &Producer<u64, SimBackend>, f: impl FnOnce(&crate::ring::layout::Header)) {
    f(p.segment().header())
}

#[test]
fn header_fields_are_each_checked() {
    type Poke = fn(&crate::ring::layout::Header);
    type Want = fn(&MultiProcessError) -> bool;
    let cases: [(Poke, Want); 6] = [
        (
            |h| h.magic.store(0x1234, Ordering::Relaxed),
            |e| {
                matches!(
                    e,
                    MultiProcessError::BadMagic {
                        expected: MAGIC,
                        found: 0x1234
                    }
                )
            },
        ),
        (
            |h| {
                h.layout_version
                    .store(LAYOUT_VERSION + 1, Ordering::Relaxed)
            },
            |e| matches!(e, MultiProcessError::LayoutVersionMismatch { .. }),
        ),
        (
            |h| h.slot_stride.store(4096, Ordering::Relaxed),
            |e| matches!(e, MultiProcessError::SlotSizeMismatch { found: 4096, .. }),
        ),
        (
            |h| h.total_len.store(u64::MAX, Ordering::Relaxed),
            |e| {
                matches!(
                    e,
                    MultiProcessError::LayoutMismatch {
                        field: "total_len",
                        ..
                    }
                )
            },
        ),
        (
            |h| h.state.store(77, Ordering::Relaxed),
            |e| {
                matches!(
                    e,
                    MultiProcessError::Corrupt {
                        what: "header state",
                        value: 77
                    }
                )
            },
        ),
        (
            |h| h.max_consumers.store(u32::MAX, Ordering::Relaxed),
            |e| {
                matches!(
                    e,
                    MultiProcessError::LayoutMismatch {
                        field: "max_consumers",
                        ..
                    }
                )
            },
        ),
    ];
    for (poke, want) in cases {
        let b = SimBackend::new_world();
        let p = builder(&b, 4).build_producer(|| 0).unwrap();
        poke_header(&p, poke);
        let err = builder(&b.sibling(), 4).build_consumer().unwrap_err();
        assert!(want(&err), "unexpected {err}");
    }
}

#[test]
fn foreign_region_is_not_a_ring() {
    let b = SimBackend::new_world();
    let r = b.create(NAME, 8192).unwrap();
    // SAFETY: the region is 8192 zeroed bytes we own; we write the first 8 bytes.
    unsafe { (r.as_ptr() as *mut u64).write(0xfeed_face) };
    let err = builder(&b.sibling(), 4).build_consumer().unwrap_err();
    assert!(
        matches!(
            err,
            MultiProcessError::BadMagic {
                found: 0xfeed_face,
                ..
            }
        ),
        "{err}"
    );
    // And a producer does not clobber it, even though its owner is alive.
    let err = builder(&b.sibling(), 4).build_producer(|| 0).unwrap_err();
    assert!(matches!(err, MultiProcessError::Backend(_)), "{err}");
}

#[test]
fn too_small_region_is_never_read_out_of_bounds() {
    let b = SimBackend::new_world();
    let _r = b.create(NAME, 64).unwrap();
    let err = builder(&b.sibling(), 4).build_consumer().unwrap_err();
    assert!(matches!(err, MultiProcessError::NotReady { .. }), "{err}");
}

/// A live sibling process of `b` that holds the registry lock of `p`'s ring, as a process
/// inside its critical section does: the kernel-released slot (held as long as the returned
/// region lives), then the word.
fn hold_registry(
    b: &SimBackend,
    p: &Producer<u64, SimBackend>,
) -> (SimBackend, <SimBackend as RingBackend>::Region) {
    let holder = b.sibling();
    let held = holder.open(NAME).unwrap();
    assert!(held.try_lock_slot(REGISTRY_LOCK_SLOT).unwrap());
    p.segment()
        .header()
        .registry
        .lock
        .store(holder.process_token(), Ordering::Release);
    (holder, held)
}

#[test]
fn registry_lock_of_dead_holder_is_taken_over_live_one_times_out() {
    let (b, p, _c) = pair(4);
    let lock = &p.segment().header().registry.lock;
    let (holder, _held) = hold_registry(&b, &p);
    let err = builder(&b.sibling(), 4)
        .with_consumer_id("x")
        .build_consumer()
        .unwrap_err();
    assert!(
        matches!(err, MultiProcessError::RegistryBusy { .. }),
        "{err}"
    );
    holder.kill();
    let c = builder(&b.sibling(), 4)
        .with_consumer_id("x")
        .build_consumer()
        .expect("lock of a dead holder is taken over");
    assert_eq!(c.consumer_id(), "x");
    assert_eq!(
        lock.load(Ordering::Acquire),
        0,
        "released after registration"
    );
}

#[test]
fn a_zero_attach_timeout_still_waits_out_a_live_registry_holder() {
    // `with_attach_timeout(ZERO)` means "do not wait for the ring to appear", not "fail if
    // another attacher is inside the registry's few-microsecond critical section": a user's
    // retry loop handles `NotReady`, and a `RegistryBusy` that a moment of contention (or a
    // descheduled holder, under load) produces would end it (found in the async pipeline's CI
    // run: a worker's attach failed after 3.4 us). A holder that keeps the lock past the
    // floor is reported, as with any timeout.
    let (b, p, _c) = pair(4);
    let _holder = hold_registry(&b, &p);
    let consumer = builder(&b.sibling(), 4)
        .with_attach_timeout(Duration::ZERO)
        .with_consumer_id("x")
        .build_consumer()
        .map(drop);
    match consumer {
        Err(MultiProcessError::RegistryBusy { waited }) => assert!(
            waited >= b.registry_lock_floor(crate::ring::registry::REGISTRY_LOCK_MIN_WAIT),
            "a consumer gave up after {waited:?}"
        ),
        other => panic!("expected RegistryBusy, got {other:?}"),
    }
}

#[test]
fn a_zero_attach_timeout_still_waits_out_a_live_registry_holder_multi_producer() {
    let b = SimBackend::new_world();
    let build = |b: &SimBackend, source: u64| {
        crate::ring::multi::MultiProducerBuilder::<u64, _>::with_backend(b.clone(), NAME, 4)
            .with_source_id(source)
            .with_attach_timeout(Duration::ZERO)
            .build(|| 0)
    };
    let first = build(&b.sibling(), 1).unwrap();
    let holder = b.sibling();
    let held = holder.open(NAME).unwrap();
    assert!(held.try_lock_slot(REGISTRY_LOCK_SLOT).unwrap());
    match build(&b.sibling(), 2).map(drop) {
        Err(MultiProcessError::RegistryBusy { waited }) => assert!(
            waited >= b.registry_lock_floor(crate::ring::registry::REGISTRY_LOCK_MIN_WAIT),
            "a producer gave up after {waited:?}"
        ),
        other => panic!("expected RegistryBusy, got {other:?}"),
    }
    drop(first);
}

#[test]
fn a_lock_word_without_a_live_slot_holder_is_taken_over_whatever_its_pid() {
    // The word names a process that is alive (as a pid lookup would say, e.g. a pid reused or
    // one of another PID namespace), but nobody holds the slot: the holder died inside its
    // critical section, and the kernel's lock is the proof.
    let (b, p, _c) = pair(4);
    let lock = &p.segment().header().registry.lock;
    let alive = b.sibling();
    lock.store(alive.process_token(), Ordering::Release);
    let c = builder(&b.sibling(), 4)
        .with_consumer_id("x")
        .build_consumer()
        .expect("taken over");
    assert_eq!(c.consumer_id(), "x");
    assert_eq!(lock.load(Ordering::Acquire), 0);
}

#[test]
fn crashed_consumer_keeps_gating_and_rejoins_at_its_cursor() {
    let (b, mut p, mut c) = pair(4);
    for i in 0..4 {
        p.publish(|e| *e = i);
    }
    assert_eq!(c.try_consume_next().unwrap(), Some(0));
    let pid = p.segment().entry(0).owner_token.load(Ordering::Relaxed) as u32;
    std::mem::forget(c); // SIGKILL: no Drop
    b.world().kill_process(pid);
    assert_eq!(p.try_publish(|e| *e = 4), Ok(4));
    assert_eq!(
        p.try_publish(|e| *e = 5),
        Err(RingBufferFull),
        "dead consumer still gates"
    );
    let mut c = builder(&b.sibling(), 4)
        .with_consumer_id("c")
        .build_consumer()
        .unwrap();
    assert!(c.resumed());
    for want in 1..5 {
        assert_eq!(c.try_consume_next().unwrap(), Some(want));
    }
}

#[test]
fn dead_producer_ends_blocking_receive_and_its_name_is_reclaimed() {
    let b = SimBackend::new_world();
    let pb = b.sibling();
    let mut p = builder(&pb, 4).build_producer(|| 0).unwrap();
    let mut c = builder(&b.sibling(), 4)
        .with_consumer_id("c")
        .with_producer_check_interval(Duration::from_millis(1))
        .build_consumer()
        .unwrap();
    p.publish(|e| *e = 9);
    std::mem::forget(p); // SIGKILL: no Drop, the segment stays
    pb.kill();
    assert_eq!(c.consume_next_timeout(Duration::from_secs(5)).unwrap(), 9);
    let err = c.consume_next_timeout(Duration::from_secs(5)).unwrap_err();
    assert!(matches!(err, MultiProcessError::ProducerDead), "{err}");
    let err = c.try_consume_next().unwrap_err();
    assert!(
        matches!(err, MultiProcessError::ProducerDead),
        "sticky: {err}"
    );
    // A new producer reclaims the stale name.
    let mut p2 = builder(&b.sibling(), 4)
        .build_producer(|| 0)
        .expect("stale ring reclaimed");
    assert_eq!(p2.try_publish(|e| *e = 1), Ok(0));
}

#[test]
fn full_sim_memory_is_a_clean_error() {
    let world = std::sync::Arc::new(myelon_backend_sim::SimWorld::with_budget(64 * 1024));
    let b = SimBackend::spawn(&world);
    let err = builder(&b, 1 << 12).build_producer(|| 0).unwrap_err();
    assert!(
        matches!(
            err,
            MultiProcessError::Backend(crate::backend::BackendError::NoSpace { .. })
        ),
        "{err}"
    );
    assert!(b.list().unwrap().is_empty());
}

/// The extreme values a hostile or corrupt peer can store in a 64-bit cursor.
const EXTREMES: [i64; 5] = [i64::MAX, i64::MAX - 1, i64::MIN, i64::MIN + 1, -2];

#[test]
fn extreme_producer_cursor_refuses_registration() {
    for v in EXTREMES {
        let (b, p, _c) = pair(4);
        p.segment()
            .header()
            .producer
            .value
            .store(v, Ordering::Release);
        let err = builder(&b.sibling(), 4)
            .with_consumer_id("late")
            .build_consumer()
            .map(drop)
            .unwrap_err();
        assert!(
            matches!(err, MultiProcessError::Corrupt { .. }),
            "producer cursor {v}: {err}"
        );
    }
}

#[test]
fn extreme_cursors_refuse_a_rejoin() {
    // (producer cursor, the dead consumer's cursor)
    let cases = [
        (i64::MAX, i64::MAX),
        (i64::MAX - 1, i64::MAX),
        (3, i64::MAX),
        (3, i64::MIN),
        (-1, i64::MIN),
    ];
    for (published, cursor) in cases {
        let (b, p, c) = pair(4);
        let entry = p.segment().entry(0);
        std::mem::forget(c);
        b.world()
            .kill_process(entry.owner_token.load(Ordering::Relaxed) as u32);
        p.segment()
            .header()
            .producer
            .value
            .store(published, Ordering::Release);
        entry.cursor.value.store(cursor, Ordering::Release);
        let err = builder(&b.sibling(), 4)
            .with_consumer_id("c")
            .build_consumer()
            .map(drop)
            .unwrap_err();
        assert!(
            matches!(err, MultiProcessError::Corrupt { .. }),
            "published {published}, cursor {cursor}: {err}"
        );
    }
}

#[test]
fn consume_survives_extreme_producer_cursor_and_stamps() {
    for v in EXTREMES {
        let (_b, mut p, mut c) = pair(4);
        p.publish(|e| *e = 1);
        p.segment()
            .header()
            .producer
            .value
            .store(v, Ordering::Release);
        assert_eq!(c.try_consume_next().unwrap(), Some(1));
        p.segment().slot(1).stamp.store(v, Ordering::Release);
        let r = c.try_consume_next();
        assert!(
            matches!(r, Ok(None) | Err(MultiProcessError::Corrupt { .. })),
            "stamp {v}: {r:?}"
        );
        let r = c.consume_next_timeout(Duration::from_millis(1));
        assert!(r.is_err(), "stamp {v}: {r:?}");
    }
}

#[test]
fn inspector_and_listing_survive_extreme_cursors_and_counters() {
    use crate::observability::{list_segments, RingInspector};
    let cursors = [i64::MAX, i64::MIN, -1, 0];
    for producer in EXTREMES.into_iter().chain([-1, 0]) {
        for consumer in cursors {
            let (b, p, c) = pair(4);
            let seg = p.segment();
            seg.header()
                .producer
                .value
                .store(producer, Ordering::Release);
            seg.entry(0).cursor.value.store(consumer, Ordering::Release);
            for counter in seg.entry(0).counters.values.iter() {
                counter.store(u64::MAX, Ordering::Relaxed);
            }
            for counter in seg.header().counters.values.iter() {
                counter.store(u64::MAX, Ordering::Relaxed);
            }
            let s = RingInspector::open(b.sibling(), NAME).unwrap().snapshot();
            assert!(s.events_published <= i64::MAX as u64);
            for cs in &s.consumers {
                assert!(cs.lag <= s.capacity, "{cs:?}");
            }
            // `myelon list` and `myelon stat` render these snapshots.
            let listed = list_segments(&b.sibling()).unwrap();
            assert_eq!(listed.len(), 1);
            let _ = format!("{s:?}");
            drop((c, p));
        }
    }
}

/// A consumer killed while registered for `Block` used to leave `sleepers_registered` raised
/// forever (every later publish paid a fence and a futex wake); the same-id rejoin that reuses
/// its entry clears it, and the new incarnation registers afresh only if it blocks too.
#[test]
fn a_dead_block_consumers_sleeper_registration_is_cleared_on_rejoin() {
    use crate::AutoWaitStrategy;
    let b = SimBackend::new_world();
    let p = builder(&b, 4).build_producer(|| 0).unwrap();
    let sleepers = || {
        p.segment()
            .header()
            .consumer_wake
            .sleepers_registered
            .load(Ordering::SeqCst)
    };
    for rejoin_strategy in [AutoWaitStrategy::BusySpin, AutoWaitStrategy::Block] {
        let own = b.sibling();
        let c = builder(&own, 4)
            .with_consumer_id("sleepy")
            .with_wait_strategy(AutoWaitStrategy::Block)
            .build_consumer()
            .unwrap();
        assert_eq!(sleepers(), 1);
        std::mem::forget(c);
        own.kill();
        assert_eq!(sleepers(), 1, "nobody knows it died yet");
        let again = builder(&b.sibling(), 4)
            .with_consumer_id("sleepy")
            .with_wait_strategy(rejoin_strategy)
            .build_consumer()
            .unwrap();
        assert!(again.resumed());
        let want = u32::from(rejoin_strategy == AutoWaitStrategy::Block);
        assert_eq!(sleepers(), want, "rejoined with {rejoin_strategy:?}");
        drop(again);
        assert_eq!(sleepers(), 0, "a normal drop unregisters");
    }
}

#[test]
fn a_dead_anonymous_consumer_stops_gating_a_dead_named_one_keeps_its_place() {
    let b = SimBackend::new_world();
    let mut p = builder(&b, 4).build_producer(|| 0).unwrap();
    let anon_proc = b.sibling();
    let anon = builder(&anon_proc, 4).build_consumer().unwrap();
    let named_proc = b.sibling();
    let named = builder(&named_proc, 4)
        .with_consumer_id("w")
        .build_consumer()
        .unwrap();
    for i in 0..4 {
        p.publish(|e| *e = i);
    }
    assert_eq!(p.try_publish(|e| *e = 4), Err(RingBufferFull));
    // SIGKILL both: no Drop, their entries stay as they are.
    std::mem::forget(anon);
    std::mem::forget(named);
    anon_proc.kill();
    named_proc.kill();
    // The named one keeps gating (its id may come back): a bounded publish times out...
    let err = p
        .publish_timeout(Duration::from_millis(5), |e| *e = 4)
        .unwrap_err();
    assert!(matches!(err, MultiProcessError::Timeout { .. }), "{err}");
    // ...and nobody can rejoin the anonymous entry: it was freed.
    let ids: Vec<_> = p.consumers().into_iter().map(|c| c.id).collect();
    assert_eq!(
        ids,
        vec!["w".to_string()],
        "the anonymous entry stopped gating"
    );
    // The named one rejoins where it was; then the producer moves.
    let mut w = builder(&b.sibling(), 4)
        .with_consumer_id("w")
        .build_consumer()
        .unwrap();
    assert!(w.resumed());
    assert_eq!(w.try_consume_next().unwrap(), Some(0));
    assert_eq!(p.try_publish(|e| *e = 4), Ok(4));
}

#[test]
fn a_live_anonymous_consumer_is_never_reaped() {
    let b = SimBackend::new_world();
    let mut p = builder(&b, 4).build_producer(|| 0).unwrap();
    let mut c = builder(&b.sibling(), 4).build_consumer().unwrap();
    for i in 0..4 {
        p.publish(|e| *e = i);
    }
    let err = p
        .publish_timeout(Duration::from_millis(5), |e| *e = 4)
        .unwrap_err();
    assert!(matches!(err, MultiProcessError::Timeout { .. }), "{err}");
    assert_eq!(p.consumers().len(), 1, "still gating");
    assert_eq!(c.try_consume_next().unwrap(), Some(0));
}

#[test]
fn a_user_id_equal_to_an_anonymous_label_does_not_resume_it() {
    let b = SimBackend::new_world();
    let _p = builder(&b, 4).build_producer(|| 0).unwrap();
    let anon_proc = b.sibling();
    let anon = builder(&anon_proc, 4).build_consumer().unwrap();
    let label = anon.consumer_id().to_string();
    std::mem::forget(anon);
    anon_proc.kill();
    let c = builder(&b.sibling(), 4)
        .with_consumer_id(&label)
        .build_consumer()
        .unwrap();
    assert!(!c.resumed(), "a fresh entry, not the anonymous one");
}

/// A producer that never blocks (`try_publish` / `try_publish_batch` / `try_claim_batch` in a
/// loop, as the framed and typed `try_publish` do) gets past a dead anonymous consumer too.
/// Before, only a blocking wait freed its entry and such a loop stayed full for ever (found by
/// the public-API simulation, seed 0x295 of `dst api run`: a typed producer's `try_publish`
/// loop).
#[test]
fn a_producer_that_only_tries_gets_past_a_dead_anonymous_consumer() {
    let b = SimBackend::new_world();
    let mut p = builder(&b, 4).build_producer(|| 0).unwrap();
    let anon_proc = b.sibling();
    let anon = builder(&anon_proc, 4).build_consumer().unwrap();
    for i in 0..4 {
        p.publish(|e| *e = i);
    }
    std::mem::forget(anon);
    anon_proc.kill();
    let tries = |p: &mut Producer<u64, SimBackend>,
                 f: &dyn Fn(&mut Producer<u64, SimBackend>) -> bool| {
        (0..1000).position(|_| f(p))
    };
    let published = tries(&mut p, &|p| p.try_publish(|e| *e = 4).is_ok());
    assert!(published.is_some(), "try_publish stayed full");
    assert_eq!(p.consumers(), vec![]);
    // The same through the batch flavours, with a fresh dead anonymous consumer each time.
    for batch in [false, true] {
        let proc_ = b.sibling();
        let anon = builder(&proc_, 4).build_consumer().unwrap();
        while p.try_publish(|e| *e = 0).is_ok() {}
        std::mem::forget(anon);
        proc_.kill();
        let ok = if batch {
            tries(&mut p, &|p| p.try_publish_batch(2, |_, e| *e = 0).is_ok())
        } else {
            tries(&mut p, &|p| {
                p.try_claim_batch(2).map(|c| c.commit()).is_ok()
            })
        };
        assert!(ok.is_some(), "batch={batch}: stayed full");
    }
}

/// Nobody can resume an anonymous consumer, so keeping its registration must not leave a
/// reservation behind: before, the entry became a `RESERVED` entry no id could claim and the
/// reaper never frees, gating the producer for ever (found by the public-API simulation, seed
/// 0x9f of `dst api run`, once anonymous consumers churned there).
#[test]
fn an_anonymous_consumer_that_keeps_its_registration_is_freed_all_the_same() {
    let b = SimBackend::new_world();
    let mut p = builder(&b, 4).build_producer(|| 0).unwrap();
    let mut anon = builder(&b.sibling(), 4).build_consumer().unwrap();
    for i in 0..4 {
        p.publish(|e| *e = i);
    }
    anon.keep_registration_on_drop();
    drop(anon);
    assert_eq!(p.consumers(), vec![], "no entry left behind");
    assert_eq!(
        p.publish_timeout(Duration::from_millis(5), |e| *e = 4)
            .unwrap(),
        4
    );
}

/// A consumer whose pid means nothing here (another PID namespace, a reused pid, no `/proc`)
/// but whose process lives keeps its id: death is the kernel's lock, not a pid lookup. Before
/// entry lock slots this took the live entry over (`resumed() == true`: two readers on one
/// cursor).
#[cfg(all(feature = "shm", target_os = "linux"))]
#[test]
fn a_live_consumer_whose_pid_looks_dead_keeps_its_id() {
    use crate::backend::ShmBackend;
    let name = format!("myelon-unit-pidns-{}", std::process::id());
    let _ = ShmBackend.remove(&name);
    let b = ShmBackend;
    let shm = |cap| {
        SharedDisruptorBuilder::<u64, ShmBackend>::with_backend(b, &name, cap)
            .with_attach_timeout(Duration::from_millis(200))
    };
    let _p = shm(4).build_producer(|| 0).unwrap();
    let c = shm(4).with_consumer_id("w").build_consumer().unwrap();
    // What a consumer of another PID namespace looks like from here: a pid that does not exist.
    let entry = c.segment().entry(0);
    entry
        .owner_token
        .store(0x7fff_fff0 | (1u64 << 32), Ordering::Relaxed);
    let err = shm(4).with_consumer_id("w").build_consumer().unwrap_err();
    assert!(
        matches!(err, MultiProcessError::ConsumerIdInUse { .. }),
        "{err}"
    );
    drop(c);
    let c2 = shm(4).with_consumer_id("w").build_consumer().unwrap();
    assert_eq!(c2.consumer_id(), "w");
}

#[cfg(all(feature = "shm", target_os = "linux"))]
#[test]
fn a_zero_attach_timeout_waits_a_second_for_a_live_registry_holder_on_shm() {
    // The real floor, on real shared memory: another open file description holds the
    // registry's kernel lock slot (as a live process inside its critical section would).
    use crate::backend::ShmBackend;
    let name = format!("myelon-unit-regfloor-{}", std::process::id());
    let _ = ShmBackend.remove(&name);
    let shm = || {
        SharedDisruptorBuilder::<u64, ShmBackend>::with_backend(ShmBackend, &name, 4)
            .with_attach_timeout(Duration::ZERO)
    };
    let p = shm().build_producer(|| 0).unwrap();
    let held = ShmBackend.open(&name).unwrap();
    assert!(held.try_lock_slot(REGISTRY_LOCK_SLOT).unwrap());
    match shm().with_consumer_id("late").build_consumer().map(drop) {
        Err(MultiProcessError::RegistryBusy { waited }) => assert!(
            waited >= crate::ring::registry::REGISTRY_LOCK_MIN_WAIT,
            "gave up after {waited:?}"
        ),
        other => panic!("expected RegistryBusy, got {other:?}"),
    }
    held.unlock_slot(REGISTRY_LOCK_SLOT);
    let c = shm().with_consumer_id("late").build_consumer().unwrap();
    assert_eq!(c.consumer_id(), "late");
    drop((c, p));
}
