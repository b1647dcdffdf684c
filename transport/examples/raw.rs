//! Layer 0 in two processes: fixed-size `Copy` events through a ring in POSIX shared memory.
//!
//! ```text
//! cargo run -p myelon --example raw
//! ```
//!
//! The producer (this process) starts a consumer (this executable again, `--role consumer`),
//! creates the ring with the consumer's id reserved (`WaitForConsumers`: `build_producer` returns
//! once it attached, and it receives every event from sequence 0), publishes, and drops the
//! producer: that closes the stream and removes the segment. The consumer checks every event and
//! exits when it sees `Closed`.

use myelon::producer::CoordinationMode;
use myelon::{
    attach_shared_consumer, build_shared_single_producer, portable_shm_segment_name,
    MultiProcessError,
};
use myelon_test_support::{ReExec, ShmGuard, ROLE_ARG};
use std::time::Duration;

myelon::shm_event! {
    /// The event: plain data, valid for any bit pattern (`shm_event!` checks that).
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Tick {
        pub seq: u64,
        pub square: u64,
    }
}

const EVENTS: u64 = 100_000;
const CAPACITY: usize = 1024;
const CONSUMER_ID: &str = "reader";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => producer(),
        [flag, role, segment] if flag == ROLE_ARG && role == "consumer" => consumer(segment),
        other => panic!("unexpected arguments {other:?}"),
    }
}

fn producer() {
    let segment = portable_shm_segment_name(&format!("myelon-ex-raw-{}", std::process::id()));
    let _cleanup = ShmGuard(segment.clone()); // removes the ring even if this process panics
    let mut child = ReExec::with_role_arg("consumer")
        .arg(&segment)
        .spawn()
        .expect("start the consumer process");
    let mut producer = build_shared_single_producer::<Tick>(&segment, CAPACITY)
        .with_consumer_ids([CONSUMER_ID])
        .with_coordination(CoordinationMode::WaitForConsumers)
        .build_producer(Tick::default)
        .expect("create the ring");
    println!("producer: ring {segment} ({CAPACITY} slots), consumer {CONSUMER_ID:?} attached");
    for seq in 0..EVENTS {
        // Writes the event in place in its slot; waits while the ring is full.
        producer.publish(|t| {
            t.seq = seq;
            t.square = seq.wrapping_mul(seq);
        });
    }
    drop(producer); // closes the stream and removes the segment
    let status = child.wait().expect("wait for the consumer");
    assert!(status.success(), "consumer failed: {status}");
    println!("producer: published {EVENTS} events, consumer exited cleanly");
}

fn consumer(segment: &str) {
    let mut consumer = attach_shared_consumer::<Tick>(segment, CAPACITY)
        .with_consumer_id(CONSUMER_ID)
        .build_consumer()
        .expect("attach to the ring");
    let mut received = 0u64;
    loop {
        // Up to 256 events per call, read in place; waits at most 100 ms for the first one.
        let step = consumer.consume_batch_timeout(256, Duration::from_millis(100), |t, seq, _| {
            assert_eq!(t.seq, seq as u64, "events arrive in order");
            assert_eq!(t.square, t.seq.wrapping_mul(t.seq), "no torn event");
            received += 1;
        });
        match step {
            Ok(_) | Err(MultiProcessError::Timeout { .. }) => {}
            Err(MultiProcessError::Closed) => break, // everything published has been read
            Err(e) => panic!("consumer: {e}"),
        }
    }
    assert_eq!(received, EVENTS);
    println!("consumer: received {received} events in order, every one verified");
}
