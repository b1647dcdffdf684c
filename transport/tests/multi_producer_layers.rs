//! Multi-producer rings through every backend and layer: framed messages (never interleaved,
//! each naming its producer) on the simulator, typed values on mmap files, and a simulated
//! producer killed between its claim and its stamps (the consumer skips the hole once the
//! simulated kernel releases the producer's lock; a producer killed between two stamps of one
//! message is the DST's to schedule).
#![cfg(not(madsim))]

mod common;

use common::{unique, TempDir};
use myelon::backend::SimBackend;
use myelon::codec::BincodeCodec;
use myelon::observability::{ConsumerLiveness, RingInspector};
use myelon::{
    FixedFrame, FramedMultiProducer, FramedTransportConsumer, MultiProcessError,
    MultiProducerBuilder, SharedDisruptorBuilder, Sourced, TransportError, TypedConsumer,
    TypedMultiProducer,
};
use std::time::Duration;

const CAP: usize = 64;
type Frame = FixedFrame<32>;

/// A deterministic message of `len` bytes for (source, n).
fn body(source: u64, n: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (source as u8).wrapping_mul(31) ^ (n as u8).wrapping_add(i as u8))
        .collect()
}

/// Tiny xorshift, so the sizes do not depend on another crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn framed_messages_of_two_simulated_producers_arrive_whole_and_named() {
    let world = SimBackend::new_world();
    let name = unique("mpframed");
    let mut a = FramedMultiProducer::from_builder(
        MultiProducerBuilder::<Frame, _>::with_backend(world.clone(), &name, CAP).with_source_id(1),
    )
    .unwrap();
    let mut b = FramedMultiProducer::from_builder(
        MultiProducerBuilder::<Frame, _>::with_backend(world.sibling(), &name, CAP)
            .with_source_id(2),
    )
    .unwrap();
    let mut c = FramedTransportConsumer::from_builder(
        SharedDisruptorBuilder::<Sourced<Frame>, _>::with_backend(world.sibling(), &name, CAP)
            .with_consumer_id("c"),
    )
    .unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut sent = Vec::new();
    let mut next = [0u32; 3];
    for round in 0..2_000u32 {
        let (p, s) = if rng.next() % 2 == 0 {
            (&mut a, 1u64)
        } else {
            (&mut b, 2u64)
        };
        let len = (rng.next() % 100) as usize; // 0..=99 bytes: 1 to 4 frames
        let id = p.publish(&body(s, next[s as usize], len)).unwrap();
        assert_eq!(id, next[s as usize]);
        sent.push((s, id, len));
        next[s as usize] += 1;
        // Drain now and then so the ring never blocks this single thread.
        if round % 8 == 7 || round == 1_999 {
            while let Some(m) = c.try_recv().unwrap() {
                let (s, id, len) = sent.remove(0);
                assert_eq!(m.source(), Some(s));
                assert_eq!(m.message_id(), id);
                assert_eq!(m.bytes(), &body(s, id, len)[..]);
            }
        }
    }
    assert!(sent.is_empty());
    assert_eq!(c.dropped_messages(), 0);
    // A message must fit in the ring: its frames are claimed as one unit.
    let too_long = a.publish(&vec![0u8; 32 * CAP + 1]);
    assert!(
        matches!(too_long, Err(TransportError::ExceedsCapacity { .. })),
        "{too_long:?}"
    );
}

#[test]
fn a_simulated_producer_killed_between_claim_and_stamps_leaves_a_hole_that_is_skipped() {
    let world = SimBackend::new_world();
    let name = unique("mphole");
    let victim_backend = world.sibling();
    let mut survivor = FramedMultiProducer::from_builder(
        MultiProducerBuilder::<Frame, _>::with_backend(world.clone(), &name, CAP).with_source_id(1),
    )
    .unwrap();
    let mut victim =
        MultiProducerBuilder::<Frame, _>::with_backend(victim_backend.clone(), &name, CAP)
            .with_source_id(9)
            .build(Frame::default)
            .unwrap();
    let mut c = FramedTransportConsumer::from_builder(
        SharedDisruptorBuilder::<Sourced<Frame>, _>::with_backend(world.sibling(), &name, CAP)
            .with_consumer_id("c")
            .with_producer_check_interval(Duration::from_millis(1)),
    )
    .unwrap();
    survivor.publish(b"before").unwrap();
    // The victim claims a three-frame message, writes it, stamps nothing, and is killed.
    let claim = victim.claim_batch(3, None).unwrap();
    let first = claim.first_sequence();
    std::mem::forget(claim);
    victim_backend.kill();
    drop(victim);
    survivor.publish(b"after").unwrap();
    assert_eq!(c.recv().unwrap().bytes(), b"before");
    let m = c.recv().unwrap();
    assert_eq!((m.source(), m.bytes()), (Some(1), &b"after"[..]));
    drop(m);
    assert_eq!(c.inner().abandoned_slots(), 3);
    assert_eq!(first, 1);
    // What the inspector (`myelon stat`) shows of it.
    let snap = RingInspector::open(world.sibling(), &name)
        .unwrap()
        .snapshot();
    assert!(snap.multi_producer);
    let by_source = |s: u64| snap.producers.iter().find(|p| p.source == s).unwrap();
    assert_eq!(by_source(1).liveness, ConsumerLiveness::Live);
    assert_eq!(by_source(1).published, 2); // two one-frame messages
    assert_eq!(by_source(9).liveness, ConsumerLiveness::OwnerDead);
    assert_eq!(by_source(9).claiming, Some(1));
    assert_eq!(snap.consumers[0].abandoned_slots, 3);
    assert_eq!(snap.producer_cursor, 4);
}

#[test]
fn typed_values_of_two_producers_on_an_mmap_file() {
    #[derive(Debug, PartialEq, bincode::Encode, bincode::Decode)]
    struct Msg {
        from: u64,
        n: u32,
        text: String,
    }
    let dir = TempDir::new("mptyped");
    let path = dir.0.join("ring");
    let mut producers: Vec<TypedMultiProducer<Msg, BincodeCodec, Frame, _>> = (1..=2)
        .map(|s| {
            TypedMultiProducer::from_builder(
                myelon::build_mmap_multi_producer::<Frame>(&path, CAP).with_source_id(s),
                BincodeCodec::new(),
            )
            .unwrap()
        })
        .collect();
    let mut c: TypedConsumer<Msg, BincodeCodec, Sourced<Frame>, _> = TypedConsumer::from_builder(
        myelon::attach_mmap_multi_consumer::<Frame>(&path, CAP).with_consumer_id("c"),
        BincodeCodec::new(),
    )
    .unwrap();
    for n in 0..10u32 {
        for (i, p) in producers.iter_mut().enumerate() {
            let from = i as u64 + 1;
            p.publish(&Msg {
                from,
                n,
                text: "x".repeat(n as usize * 7),
            })
            .unwrap();
        }
    }
    for n in 0..10u32 {
        for from in 1..=2u64 {
            let m = c.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(
                m,
                Msg {
                    from,
                    n,
                    text: "x".repeat(n as usize * 7)
                }
            );
            assert_eq!(c.last_source(), Some(from));
        }
    }
    drop(producers);
    assert!(matches!(
        c.recv_timeout(Duration::from_secs(10)),
        Err(TransportError::Ring(MultiProcessError::Closed))
    ));
}

#[test]
fn sixteen_producers_fit_the_table_and_a_dead_ones_entry_is_reused() {
    let world = SimBackend::new_world();
    let name = unique("mpfull");
    let backends: Vec<SimBackend> = (0..16).map(|_| world.sibling()).collect();
    let mut producers: Vec<_> = backends
        .iter()
        .enumerate()
        .map(|(i, b)| {
            MultiProducerBuilder::<u64, _>::with_backend(b.clone(), &name, 8)
                .with_source_id(i as u64)
                .build(|| 0)
                .unwrap()
        })
        .collect();
    assert_eq!(myelon::MAX_PRODUCERS, 16);
    let extra = || {
        MultiProducerBuilder::<u64, _>::with_backend(world.sibling(), &name, 8)
            .with_source_id(99)
            .build(|| 0)
    };
    assert!(matches!(
        extra(),
        Err(MultiProcessError::TooManyProducers { max: 16 })
    ));
    // A producer killed (no detach) leaves its entry to the next one.
    backends[3].kill();
    drop(producers.remove(3));
    let again = extra().expect("the dead producer's entry is free");
    assert_eq!(again.source(), 99);
    let snap = RingInspector::open(world.sibling(), &name)
        .unwrap()
        .snapshot();
    assert_eq!(snap.producers.len(), 16);
    assert!(snap
        .producers
        .iter()
        .all(|p| p.liveness == ConsumerLiveness::Live));
}

#[test]
fn late_join_and_same_id_rejoin_on_a_multi_producer_ring() {
    let world = SimBackend::new_world();
    let name = unique("mprejoin");
    let builder = |b: &SimBackend, s: u64| {
        MultiProducerBuilder::<u64, _>::with_backend(b.clone(), &name, 16)
            .with_source_id(s)
            .build(|| 0)
            .unwrap()
    };
    let (mut a, mut b) = (builder(&world, 1), builder(&world.sibling(), 2));
    let consumer = |backend: &SimBackend, id: &str| {
        SharedDisruptorBuilder::<Sourced<u64>, _>::with_backend(backend.clone(), &name, 16)
            .with_consumer_id(id)
            .build_consumer()
            .unwrap()
    };
    let crashing = world.sibling();
    let mut c = consumer(&crashing, "c");
    for i in 0..4 {
        a.publish(|e| *e = i).unwrap();
        b.publish(|e| *e = 100 + i).unwrap();
    }
    for _ in 0..3 {
        c.try_consume_next().unwrap().unwrap();
    }
    // A claim in progress: a late joiner starts after it (at the claim cursor + 1)...
    let claim = a.claim_batch(1, None).unwrap();
    let held = claim.first_sequence();
    let mut late = consumer(&world.sibling(), "late");
    assert_eq!(late.next_sequence(), held + 1);
    claim.commit();
    b.publish(|e| *e = 104).unwrap();
    let e = late.try_consume_next().unwrap().unwrap();
    assert_eq!((e.source, e.event), (2, 104));
    // ...and a consumer killed mid-stream rejoins under its id where it stopped.
    crashing.kill();
    drop(c);
    let mut c = consumer(&world.sibling(), "c");
    assert!(c.resumed());
    assert_eq!(c.next_sequence(), 3);
    let rest: Vec<(u64, u64)> = std::iter::from_fn(|| c.try_consume_next().unwrap())
        .map(|e| (e.source, e.event))
        .collect();
    assert_eq!(
        rest,
        vec![
            (2, 101),
            (1, 2),
            (2, 102),
            (1, 3),
            (2, 103),
            (1, 0),
            (2, 104)
        ]
    );
}
