//! Layer 2 in two processes: typed messages, encoded with bincode, over framed slots.
//!
//! ```text
//! cargo run -p myelon --example typed
//! ```
//!
//! `myelon` re-exports bincode (default feature `bincode`), so the derives need no dependency
//! of their own: `#[bincode(crate = "myelon::bincode")]` points them at the re-export.

use myelon::bincode::{Decode, Encode};
use myelon::codec::BincodeCodec;
use myelon::producer::CoordinationMode;
use myelon::transport::{FixedFrame, TransportError};
use myelon::{
    attach_shared_consumer, build_shared_single_producer, portable_shm_segment_name,
    MultiProcessError, TypedConsumer, TypedProducer,
};
use myelon_test_support::{ReExec, ShmGuard, ROLE_ARG};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Encode, Decode)]
#[bincode(crate = "myelon::bincode")]
struct Order {
    id: u64,
    symbol: String,
    quantity: i32,
    tags: Vec<String>,
}

/// Decoding refuses messages over 1 MiB (a bound on what a peer can make us allocate).
type Codec = BincodeCodec<{ 1 << 20 }>;
/// 1 KiB slots.
type Frame = FixedFrame<{ 1024 - 12 }>;
const CAPACITY: usize = 256;
const CONSUMER_ID: &str = "matcher";
const ORDERS: u64 = 1_000;

fn order(id: u64) -> Order {
    Order {
        id,
        symbol: ["ACME", "INITECH", "GLOBEX"][id as usize % 3].to_string(),
        quantity: (id as i32 % 100) - 50,
        // Every hundredth order is larger than a slot: it travels in several frames.
        tags: (0..if id % 100 == 0 { 200 } else { 2 })
            .map(|t| format!("tag-{t}"))
            .collect(),
    }
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
    let segment = portable_shm_segment_name(&format!("myelon-ex-typed-{}", std::process::id()));
    let _cleanup = ShmGuard(segment.clone());
    let mut child = ReExec::with_role_arg("consumer")
        .arg(&segment)
        .spawn()
        .expect("start the consumer process");
    let mut tx = TypedProducer::<Order, Codec, Frame>::from_builder(
        build_shared_single_producer(&segment, CAPACITY)
            .with_consumer_ids([CONSUMER_ID])
            .with_coordination(CoordinationMode::WaitForConsumers),
        Codec::new(),
    )
    .expect("create the ring");
    for id in 0..ORDERS {
        tx.publish(&order(id)).expect("publish");
    }
    println!("producer: published {ORDERS} orders");
    drop(tx); // closes the stream and removes the segment
    let status = child.wait().expect("wait for the consumer");
    assert!(status.success(), "consumer failed: {status}");
    println!("producer: done");
}

fn consumer(segment: &str) {
    let mut rx = TypedConsumer::<Order, Codec, Frame>::from_builder(
        attach_shared_consumer(segment, CAPACITY).with_consumer_id(CONSUMER_ID),
        Codec::new(),
    )
    .expect("attach to the ring");
    let mut next = 0;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(o) => {
                assert_eq!(o, order(next), "decoded exactly what was sent");
                if next % 250 == 0 {
                    println!("consumer: order {} {} x{}", o.id, o.symbol, o.quantity);
                }
                next += 1;
            }
            Err(TransportError::Ring(MultiProcessError::Timeout { .. })) => {}
            Err(TransportError::Ring(MultiProcessError::Closed)) => break,
            Err(e) => panic!("consumer: {e}"),
        }
    }
    assert_eq!(next, ORDERS);
    println!("consumer: {next} orders decoded and verified");
}
