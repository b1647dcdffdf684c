//! A consumer process attaching over and over while a producer process streams
//! `publish_batch(64)` bursts into a small ring (the bug of issue 9: a consumer registering
//! inside a batch started on a slot the rest of the batch overwrote).
//!
//! The producer child streams until it is killed; the parent (another process) attaches under a
//! fresh id, checks that what it receives is contiguous from its first event and untorn, detaches,
//! and does it again, `ATTACHES` times in a row. Nothing sleeps; the bounds only turn a hang into
//! a failure.

mod common;

use common::process::{env_str, report, SegmentGuard, Spawn, SEGMENT_VAR};
use common::{checksum, fill, Event};
use myelon::{attach_shared_consumer, build_shared_single_producer, CoordinationMode};
use std::time::{Duration, Instant};

const ENTRY: &str = "child_role";
/// Smaller than a burst: a batch rescans the consumer table (and a consumer can register) in its middle.
const CAPACITY: usize = 16;
const BURST: usize = 64;
/// Attaches in a row (each one a registration racing the producer's batches).
const ATTACHES: usize = 1000;
/// Events each attach verifies (several bursts, several wraps of the ring).
const PER_ATTACH: u64 = 600;
const LONG: Duration = Duration::from_secs(60);

/// Entry point of the producer child; a no-op in a normal test run.
#[test]
fn child_role() {
    let Some(role) = common::process::role() else {
        return;
    };
    assert_eq!(role, "batch_producer", "unknown role");
    let segment = env_str(SEGMENT_VAR);
    let mut p = build_shared_single_producer::<Event>(&segment, CAPACITY)
        .with_coordination(CoordinationMode::Immediate)
        .build_producer(Event::default)
        .expect("create ring");
    report("READY", &segment);
    let mut next = 0u64;
    // Streams until killed by the parent (the guard kills and reaps it).
    loop {
        p.publish_batch(BURST, |i, e| fill(e, next + i as u64));
        next += BURST as u64;
    }
}

#[test]
fn consumer_attaching_during_batches_receives_contiguous_streams() {
    let guard = SegmentGuard::new("batchjoin");
    let segment = guard.0.clone();
    let mut producer = Spawn::new(ENTRY, "batch_producer")
        .env(SEGMENT_VAR, &segment)
        .spawn();
    producer.expect("READY", LONG);
    let mut starts = Vec::with_capacity(ATTACHES);
    for round in 0..ATTACHES {
        let mut c = attach_shared_consumer::<Event>(&segment, CAPACITY)
            .with_consumer_id(format!("late-{round}"))
            .build_consumer()
            .expect("attach while the producer streams");
        let first = c.next_sequence() as u64;
        let deadline = Instant::now() + LONG;
        let mut want = first;
        while want < first + PER_ATTACH {
            match c.try_consume_next_leased() {
                Ok(Some(e)) => {
                    assert_eq!(e.sequence, want, "round {round}: gap or reorder");
                    assert_eq!(e.checksum, checksum(want), "round {round}: torn event");
                    want += 1;
                }
                Ok(None) => {
                    assert!(Instant::now() < deadline, "round {round}: stream stopped");
                    std::hint::spin_loop();
                }
                Err(e) => panic!("round {round}: {e} (attached at {first})"),
            }
        }
        starts.push(first);
    }
    producer.kill();
    // The attaches really raced the stream: they started at many different places.
    starts.sort_unstable();
    starts.dedup();
    assert!(
        starts.len() > ATTACHES / 2,
        "only {} distinct start sequences",
        starts.len()
    );
    println!(
        "{ATTACHES} attaches during publish_batch({BURST}) bursts, each verified over {PER_ATTACH} \
         events; {} distinct starts",
        starts.len()
    );
}
