//! Every `Duration` every API accepts (issue 10, input hygiene): `Duration::MAX` means "no
//! deadline", never an overflow panic. Each `*_timeout` API, each builder timeout and each
//! liveness duration is called with `Duration::MAX` over the simulator and POSIX shared memory,
//! where what it waits for is already there (or, for the blocking receives, arrives from another
//! thread: nothing here sleeps).

mod common;

use common::*;
use myelon::codec::BincodeCodec;
use myelon::transport::{FixedFrame, FramedTransportConsumer, FramedTransportProducer};
use myelon::{
    CoordinationMode, RequiredConsumerLivenessConfig, SharedDisruptorBuilder, TypedConsumer,
    TypedProducer,
};
use std::time::Duration;

const MAX: Duration = Duration::MAX;
const CAP: usize = 8;
type Frame = FixedFrame<52>;

fn builder<F: Fixture, E: myelon::ShmEvent>(b: F::B, f: &F) -> SharedDisruptorBuilder<E, F::B> {
    SharedDisruptorBuilder::with_backend(b, f.name(), CAP)
        .with_attach_timeout(MAX)
        .with_coordination_timeout(MAX)
        .with_producer_check_interval(MAX)
}

fn layer0<F: Fixture>() {
    let f = F::new();
    let mut p = builder::<F, Event>(f.producer(), &f)
        .build_producer(Event::default)
        .expect("producer");
    let mut c = builder::<F, Event>(f.consumer(), &f)
        .with_consumer_id("c")
        .build_consumer()
        .expect("consumer with attach timeout MAX");
    for seq in 0..3 {
        p.publish_timeout(MAX, |e| fill(e, seq))
            .expect("publish_timeout(MAX)");
    }
    let mut claim = p.claim_batch_timeout(2, Some(MAX)).expect("claim(MAX)");
    fill(claim.slot_mut(0), 3);
    fill(claim.slot_mut(1), 4);
    claim.commit();
    assert_eq!(c.consume_next_timeout(MAX).expect("consume").sequence, 0);
    assert_eq!(
        c.consume_next_leased_timeout(MAX).expect("lease").sequence,
        1
    );
    let mut seen = Vec::new();
    c.consume_batch_timeout(8, MAX, |e, _, _| seen.push(e.sequence))
        .expect("batch(MAX)");
    assert_eq!(seen, [2, 3, 4]);
}

fn coordination<F: Fixture>() {
    let f = F::new();
    let consumer = f.consumer();
    let name = f.name().to_string();
    // The consumer attaches from another thread, waiting without a deadline for the ring; the
    // producer waits without a deadline for the consumer.
    let t = std::thread::spawn(move || {
        SharedDisruptorBuilder::<Event, F::B>::with_backend(consumer, &name, CAP)
            .with_consumer_id("w")
            .with_attach_timeout(MAX)
            .build_consumer()
            .map(|_| ())
    });
    let p = builder::<F, Event>(f.producer(), &f)
        .with_consumer_ids(["w"])
        .with_coordination(CoordinationMode::WaitForConsumers)
        .build_producer(Event::default)
        .expect("WaitForConsumers with coordination timeout MAX");
    t.join().expect("consumer thread").expect("consumer");
    drop(p);
}

fn framed_and_typed<F: Fixture>() {
    let f = F::new();
    let mut p =
        FramedTransportProducer::<Frame, _>::from_builder(builder::<F, Frame>(f.producer(), &f))
            .expect("framed producer");
    let mut c = FramedTransportConsumer::<Frame, _>::from_builder(
        builder::<F, Frame>(f.consumer(), &f).with_consumer_id("c"),
    )
    .expect("framed consumer");
    p.publish_timeout(b"one", MAX)
        .expect("publish_timeout(MAX)");
    let mut claim = p.claim_timeout(3, Some(MAX)).expect("claim_timeout(MAX)");
    claim.fragment_mut(0)[..3].copy_from_slice(b"two");
    claim.commit();
    assert_eq!(&*c.recv_timeout(MAX).expect("recv_timeout(MAX)"), b"one");
    let mut got = Vec::new();
    c.recv_fragments_timeout(MAX, |b| got.extend_from_slice(b))
        .expect("recv_fragments_timeout(MAX)");
    assert_eq!(got, b"two");
    drop((p, c));

    let g = F::new();
    let codec = BincodeCodec::<1024>::new();
    let mut tp = TypedProducer::<u64, _, Frame, _>::from_builder(
        builder::<F, Frame>(g.producer(), &g),
        codec,
    )
    .expect("typed producer");
    let mut tc = TypedConsumer::<u64, _, Frame, _>::from_builder(
        builder::<F, Frame>(g.consumer(), &g).with_consumer_id("c"),
        codec,
    )
    .expect("typed consumer");
    tp.publish_timeout(&7, MAX)
        .expect("typed publish_timeout(MAX)");
    assert_eq!(tc.recv_timeout(MAX).expect("typed recv_timeout(MAX)"), 7);
}

fn liveness<F: Fixture>() {
    let f = F::new();
    let cfg = RequiredConsumerLivenessConfig::new(["r"])
        .unwrap()
        .with_startup_wait_timeout(MAX)
        .expect("startup MAX")
        .with_progress_timeout(MAX)
        .expect("progress MAX")
        .with_progress_check_interval(MAX)
        .expect("interval MAX")
        .with_shutdown_grace_period(MAX)
        .expect("grace MAX");
    let mut p = builder::<F, Event>(f.producer(), &f)
        .build_producer(Event::default)
        .expect("producer");
    p.enable_required_consumer_liveness(cfg).expect("enable");
    let mut c = builder::<F, Event>(f.consumer(), &f)
        .with_consumer_id("r")
        .build_consumer()
        .expect("consumer");
    // More than the capacity: the managed publish waits for room, checking liveness.
    let t = std::thread::spawn(move || {
        for seq in 0..2 * CAP as u64 {
            assert_eq!(c.consume_next_timeout(MAX).expect("consume").sequence, seq);
        }
    });
    for seq in 0..2 * CAP as u64 {
        p.publish_managed(|e| fill(e, seq))
            .expect("managed publish");
    }
    t.join().expect("consumer thread");
}

/// A blocking receive with no deadline gets what another thread publishes later.
fn blocking_receive_without_deadline<F: Fixture>() {
    let f = F::new();
    let mut p = builder::<F, Event>(f.producer(), &f)
        .build_producer(Event::default)
        .expect("producer");
    let mut c = builder::<F, Event>(f.consumer(), &f)
        .with_consumer_id("c")
        .build_consumer()
        .expect("consumer");
    let t = std::thread::spawn(move || c.consume_next_timeout(MAX).map(|e| e.sequence));
    p.publish(|e| fill(e, 0));
    assert_eq!(t.join().expect("thread").expect("consume"), 0);
}

macro_rules! durations {
    ($m:ident, $fixture:ty) => {
        mod $m {
            use super::*;
            #[test]
            fn layer0_timeouts_accept_duration_max() {
                layer0::<$fixture>();
            }
            #[test]
            fn coordination_and_attach_timeouts_accept_duration_max() {
                coordination::<$fixture>();
            }
            #[test]
            fn framed_and_typed_timeouts_accept_duration_max() {
                framed_and_typed::<$fixture>();
            }
            #[test]
            fn liveness_durations_accept_duration_max() {
                liveness::<$fixture>();
            }
            #[test]
            fn a_receive_without_deadline_gets_a_later_event() {
                blocking_receive_without_deadline::<$fixture>();
            }
        }
    };
}

durations!(shm, ShmFixture);
durations!(sim, SimFixture);
