//! Layer 1 in two processes: variable-length byte messages over fixed-size frames, one of them
//! larger than a frame (fragmented by the producer, reassembled by the consumer).
//!
//! ```text
//! cargo run -p myelon --example framed
//! ```

use myelon::producer::CoordinationMode;
use myelon::transport::TransportError;
use myelon::transport::{FixedFrame, FramedTransportConsumer, FramedTransportProducer};
use myelon::{
    attach_shared_consumer, build_shared_single_producer, portable_shm_segment_name,
    MultiProcessError,
};
use myelon_test_support::{ReExec, ShmGuard, ROLE_ARG};
use std::time::Duration;

/// 256-byte slots: a 12-byte frame header and 244 payload bytes.
type Frame = FixedFrame<{ 256 - 12 }>;
const CAPACITY: usize = 64;
const CONSUMER_ID: &str = "reader";
/// The one message that spans several frames.
const BIG: usize = 10_000;

/// The messages, in order: three short texts, then `BIG` bytes.
fn messages() -> Vec<Vec<u8>> {
    let mut m: Vec<Vec<u8>> = ["hello", "", "framed world"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    m.push((0..BIG).map(|i| (i % 251) as u8).collect());
    m
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => producer(),
        [flag, role, segment] if flag == ROLE_ARG && role == "consumer" => consumer(segment),
        other => panic!("unexpected arguments {other:?}"),
    }
}

fn producer() {
    let segment = portable_shm_segment_name(&format!("myelon-ex-framed-{}", std::process::id()));
    let _cleanup = ShmGuard(segment.clone());
    let mut child = ReExec::with_role_arg("consumer")
        .arg(&segment)
        .spawn()
        .expect("start the consumer process");
    let mut producer = FramedTransportProducer::from_builder(
        build_shared_single_producer::<Frame>(&segment, CAPACITY)
            .with_consumer_ids([CONSUMER_ID])
            .with_coordination(CoordinationMode::WaitForConsumers),
    )
    .expect("create the ring");
    for m in messages() {
        // All frames of a message are committed at once: consumers see all of it or nothing.
        let id = producer.publish(&m).expect("publish");
        let frames = m.len().div_ceil(244).max(1);
        println!(
            "producer: message {id}: {} bytes in {frames} frame(s)",
            m.len()
        );
    }
    drop(producer); // closes the stream and removes the segment
    let status = child.wait().expect("wait for the consumer");
    assert!(status.success(), "consumer failed: {status}");
    println!("producer: done");
}

fn consumer(segment: &str) {
    let mut consumer = FramedTransportConsumer::from_builder(
        attach_shared_consumer::<Frame>(segment, CAPACITY).with_consumer_id(CONSUMER_ID),
    )
    .expect("attach to the ring");
    let expected = messages();
    let mut received = 0;
    loop {
        match consumer.recv_timeout(Duration::from_millis(100)) {
            Ok(msg) => {
                // A single-frame message is read in place in its slot; a fragmented one was
                // reassembled into the consumer's buffer.
                let place = if msg.is_in_place() {
                    "in place"
                } else {
                    "reassembled"
                };
                assert_eq!(msg.bytes(), expected[received].as_slice(), "message intact");
                println!(
                    "consumer: message {} of {} bytes, {place}",
                    msg.message_id(),
                    msg.len()
                );
                received += 1;
            }
            Err(TransportError::Ring(MultiProcessError::Timeout { .. })) => {}
            Err(TransportError::Ring(MultiProcessError::Closed)) => break,
            Err(e) => panic!("consumer: {e}"),
        }
    }
    assert_eq!(received, expected.len());
    println!("consumer: {received} messages, every byte verified");
}
