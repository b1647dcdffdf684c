//! Consumers that register or rejoin while the producer is inside `publish_batch`.
//!
//! The producer announces its cursor once per batch, but consumers derive their start (a new
//! consumer) and validate their resume point (a rejoin) from the announced cursor. These tests
//! attach from inside the batch's closure, so the registration lands between two slot writes of
//! one batch, deterministically, over the simulated backend.

use myelon::backend::SimBackend;
use myelon::{Consumer, CoordinationMode, SharedDisruptorBuilder};

myelon::shm_event! {
    #[derive(Clone, Copy, Debug, Default)]
    struct Ev { seq: u64 }
}

fn builder(b: SimBackend, cap: usize) -> SharedDisruptorBuilder<Ev, SimBackend> {
    SharedDisruptorBuilder::with_backend(b, "batch-join", cap)
        .with_coordination(CoordinationMode::Immediate)
}

fn drain(c: &mut Consumer<Ev, SimBackend>) -> Vec<u64> {
    let mut got = Vec::new();
    while let Some(e) = c.try_consume_next_leased().expect("consume") {
        got.push(e.seq);
    }
    got
}

/// Capacity 4, no consumer, `publish_batch(8)`; a consumer registers while event 5 is written.
/// It must start on a slot nobody overwrites and receive a contiguous stream, and the producer
/// must not be wedged afterwards.
#[test]
fn consumer_registering_inside_a_batch_gets_a_contiguous_stream() {
    let world = SimBackend::new_world();
    let mut producer = builder(world.clone(), 4)
        .build_producer(Ev::default)
        .expect("producer");
    let mut consumer = None;
    producer.publish_batch(8, |i, e| {
        if i == 5 {
            let c = builder(world.sibling(), 4)
                .with_consumer_id("late")
                .build_consumer()
                .expect("attach during the batch");
            consumer = Some(c);
        }
        e.seq = i as u64;
    });
    let mut consumer = consumer.expect("attached");
    let got = drain(&mut consumer);
    assert!(!got.is_empty(), "the late consumer received nothing");
    let first = got[0];
    let want: Vec<u64> = (first..8).collect();
    assert_eq!(got, want, "not a contiguous tail of the batch");
    // The producer gates on the new consumer and moves on once it drained.
    for k in 8..16u64 {
        producer
            .try_publish(|e| e.seq = k)
            .expect("room after the drain");
        assert_eq!(drain(&mut consumer), vec![k]);
    }
}

/// A consumer reads (and releases) slots of a long batch as soon as they are stamped, crashes,
/// and rejoins under its id while the batch is still running: the rejoin must be accepted and
/// resume exactly after what the crashed incarnation released.
#[test]
fn same_id_rejoin_inside_a_long_batch_resumes_at_the_committed_cursor() {
    let world = SimBackend::new_world();
    let cap = 4usize;
    let mut producer = builder(world.clone(), cap)
        .build_producer(Ev::default)
        .expect("producer");
    let mut backend = world.sibling();
    let mut consumer = Some(
        builder(backend.clone(), cap)
            .with_consumer_id("c")
            .build_consumer()
            .expect("attach"),
    );
    let mut seen: Vec<u64> = Vec::new();
    let mut rejoined = false;
    // Each event is written only after the consumer drained everything stamped so far, so the
    // producer never needs to wait (the test is single-threaded).
    producer.publish_batch(40, |i, e| {
        if let Some(c) = consumer.as_mut() {
            seen.extend(drain(c));
        }
        if i == 29 {
            // Crash: forget the consumer without `Drop`; its process dies.
            std::mem::forget(consumer.take());
            backend.kill();
            backend = world.sibling();
            let c = builder(backend.clone(), cap)
                .with_consumer_id("c")
                .build_consumer()
                .expect("same-id rejoin inside the batch");
            rejoined = true;
            consumer = Some(c);
        }
        e.seq = i as u64;
    });
    assert!(rejoined);
    seen.extend(drain(consumer.as_mut().expect("consumer")));
    let want: Vec<u64> = (0..40).collect();
    assert_eq!(seen, want, "lost or repeated events across the rejoin");
}
