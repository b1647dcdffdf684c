//! Async producers of one multi-producer ring under madsim: two producer tasks, each its own
//! simulated process on myelon's simulator, publish into a 4-slot ring with `publish().await`,
//! one at a time or three at once, and give up a publish now and then when a short madsim
//! timeout fires first (the future is dropped while it waits for room); an async consumer
//! task, a third process, takes its time. The seed chooses the timeouts and the pauses. The
//! oracle: the consumer receives every event each producer's completed publishes sent, once,
//! in that producer's order, nothing else, then `Closed`; and the ring's claim cursor counts
//! exactly those events — so a dropped publish claimed nothing and left no hole.
//!
//! ```text
//! RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/madsim \
//!   MADSIM_TEST_SEED=1 MADSIM_TEST_NUM=300 \
//!   cargo test -p myelon-async-pipeline --test sim_multi
//! ```
#![cfg(madsim)]

use madsim::rand::Rng;
use myelon::backend::SimBackend;
use myelon::{MultiProcessError, MultiProducerBuilder, SharedDisruptorBuilder, Sourced};
use std::time::Duration;

const CAP: usize = 4;
const EVENTS: u64 = 400;

/// Event `i` of a producer: its index, and a check word.
fn event(i: u64) -> [u64; 2] {
    [i, !i]
}

#[madsim::test]
async fn async_multi_producers_lose_nothing_when_publishes_are_dropped() {
    let machine = SimBackend::new_world();
    let producers: Vec<_> = (1..=2u64)
        .map(|source| {
            MultiProducerBuilder::<[u64; 2], _>::with_backend(machine.sibling(), "mp", CAP)
                .with_source_id(source)
                .with_consumer_id("c")
                .build(Default::default)
                .expect("producer")
                .into_async()
        })
        .collect();
    let mut consumer =
        SharedDisruptorBuilder::<Sourced<[u64; 2]>, _>::with_backend(machine.sibling(), "mp", CAP)
            .with_consumer_id("c")
            .build_consumer()
            .expect("consumer")
            .into_async();
    let mut tasks = Vec::new();
    for mut p in producers {
        tasks.push(tokio::spawn(async move {
            let mut rng = madsim::rand::thread_rng();
            let (mut i, mut dropped) = (0u64, 0u32);
            while i < EVENTS {
                let wait = Duration::from_micros(rng.gen_range(1..200));
                let batch = rng.gen_range(0..4) == 0 && i + 3 <= EVENTS;
                let first = i;
                let done = if batch {
                    let publish = p.publish_batch(3, |k, e| *e = event(first + k as u64));
                    tokio::time::timeout(wait, publish).await.map(|r| (r, 3))
                } else {
                    let publish = p.publish(|e| *e = event(first));
                    tokio::time::timeout(wait, publish).await.map(|r| (r, 1))
                };
                match done {
                    Ok((r, n)) => {
                        r.expect("publish");
                        i += n;
                    }
                    Err(_) => dropped += 1,
                }
            }
            (p, dropped)
        }));
    }
    let mut rng = madsim::rand::thread_rng();
    let mut next = [0u64; 3];
    for _ in 0..2 * EVENTS {
        if rng.gen_range(0..8) == 0 {
            tokio::time::sleep(Duration::from_micros(rng.gen_range(1..500))).await;
        }
        let s = consumer.recv().await.expect("receive");
        let k = s.source as usize;
        assert!(k == 1 || k == 2, "source {k}");
        assert_eq!(s.event, event(next[k]), "producer {k}'s event {}", next[k]);
        next[k] += 1;
    }
    assert_eq!(next[1..], [EVENTS, EVENTS]);
    let mut dropped = 0;
    let mut done = Vec::new();
    for t in tasks {
        let (p, d) = t.await.expect("producer task");
        dropped += d;
        done.push(p);
    }
    // Every sequence claimed carried an event: a dropped publish claimed nothing (a claim
    // left unpublished is skipped by consumers, so only the cursor shows it).
    for p in &done {
        assert_eq!(p.inner().claim_cursor(), 2 * EVENTS as i64 - 1, "claims");
    }
    drop(done);
    assert!(matches!(
        consumer.recv().await,
        Err(MultiProcessError::Closed)
    ));
    // How many publishes were given up is the seed's (about a hundred per run); none at all
    // would mean the run never tested what it is for.
    assert!(dropped > 0, "no publish was dropped while waiting for room");
}
