//! Typed streams across real processes over POSIX shared memory, one per codec: the producer
//! (this process) publishes messages of varied size — some fit one frame, some are fragmented —
//! and two consumer processes (the test binary re-executed in a role) verify every one. For rkyv
//! and flatbuffers one consumer decodes owned values (Layer 2) and the other reads each message
//! in place through `ZeroCopyCodec::access` (Layer 3).
//!
//! Each codec's test runs when its feature is on (bincode by default; `--all-features` for all).

mod common;
mod typed_common;

use common::process::{
    env_str, report, ChildProc, SegmentGuard, Spawn, CHILD_OK, ID_VAR, SEGMENT_VAR,
};
#[cfg(feature = "bincode")]
use myelon::codec::BincodeCodec;
use myelon::codec::Codec;
#[cfg(feature = "flatbuffers")]
use myelon::codec::FlatbuffersCodec;
#[cfg(feature = "rkyv")]
use myelon::codec::RkyvCodec;
use myelon::transport::{AlignedFixedFrame, FixedFrame, FramedTransportFrame};
use myelon::{
    attach_shared_consumer, build_shared_single_producer, AutoWaitStrategy, CoordinationMode,
    MultiProcessError, TransportError, TypedConsumer, TypedProducer,
};
use std::time::Duration;
use typed_common::*;

const ENTRY: &str = "child_role";
const LONG: Duration = Duration::from_secs(30);
const CHILD_DEADLINE: Duration = Duration::from_secs(120);
const MESSAGES: u64 = 3000;
const CAP: usize = 64;
const MODE_VAR: &str = "MYELON_TEST_MODE";

/// 256-byte frames; messages run to ~620 bytes, so up to three fragments.
type Frame = FixedFrame<244>;
/// 256-byte aligned frames, for rkyv read in place.
#[allow(dead_code)]
type AFrame = AlignedFixedFrame<240>;

#[test]
fn child_role() {
    let Some(role) = common::process::role() else {
        return;
    };
    let seg = env_str(SEGMENT_VAR);
    let id = env_str(ID_VAR);
    #[allow(unused_variables)] // only the zero-copy codecs have an access mode
    let access = env_str(MODE_VAR) == "access";
    let (count, sum) = match role.as_str() {
        #[cfg(feature = "bincode")]
        "bincode" => {
            consume::<BMsg, _, Frame>(&seg, &id, BincodeCodec::<{ 1 << 20 }>::new(), |m| {
                check_owned(m.seq, &m.name, &m.values)
            })
        }
        #[cfg(feature = "rkyv")]
        "rkyv" if access => consume_access::<RMsg, _, AFrame>(&seg, &id, RkyvCodec::new(), |m| {
            let values: Vec<u32> = m.values.iter().map(|v| v.to_native()).collect();
            check_owned(m.seq.to_native(), m.name.as_str(), &values)
        }),
        #[cfg(feature = "rkyv")]
        "rkyv" => consume::<RMsg, _, AFrame>(&seg, &id, RkyvCodec::new(), |m| {
            check_owned(m.seq, &m.name, &m.values)
        }),
        #[cfg(feature = "flatbuffers")]
        "flatbuffers" if access => {
            consume_access::<FMsg, _, Frame>(&seg, &id, FlatbuffersCodec::new(), |t| {
                let values: Vec<u32> = t.values().map(|v| v.iter().collect()).unwrap_or_default();
                check_owned(t.seq(), t.name().unwrap_or(""), &values)
            })
        }
        #[cfg(feature = "flatbuffers")]
        "flatbuffers" => consume::<FMsg, _, Frame>(&seg, &id, FlatbuffersCodec::new(), |m| {
            check_owned(m.seq, &m.name, &m.values)
        }),
        other => panic!("unknown role {other:?}"),
    };
    report("VERIFIED", format!("count={count} sum={sum}"));
    report(CHILD_OK, role);
}

fn check_owned(seq: u64, name: &str, values: &[u32]) -> (u64, u64) {
    assert_eq!(name, name_of(seq), "name of {seq}");
    assert_eq!(values, &values_of(seq)[..], "values of {seq}");
    (seq, digest(seq, values))
}

fn attach<T, C: Codec<T>, F: FramedTransportFrame>(
    seg: &str,
    id: &str,
    codec: C,
) -> TypedConsumer<T, C, F> {
    let b = attach_shared_consumer::<F>(seg, CAP)
        .with_consumer_id(id)
        .with_attach_timeout(LONG)
        .with_wait_strategy(AutoWaitStrategy::Yield);
    let c = TypedConsumer::from_builder(b, codec).expect("attach");
    report("ATTACHED", id);
    c
}

/// Receives until end of stream; `check` returns (seq, digest) of each message.
fn drain(mut next: impl FnMut() -> Result<(u64, u64), TransportError>) -> (u64, u64) {
    let (mut count, mut sum) = (0u64, 0u64);
    loop {
        match next() {
            Ok((seq, d)) => {
                assert_eq!(seq, count, "gap or reorder");
                count += 1;
                sum = sum.wrapping_add(d);
            }
            Err(TransportError::Ring(MultiProcessError::Closed)) => return (count, sum),
            Err(e) => panic!("receive after {count}: {e}"),
        }
    }
}

fn consume<T, C: Codec<T>, F: FramedTransportFrame>(
    seg: &str,
    id: &str,
    codec: C,
    check: impl Fn(&T) -> (u64, u64),
) -> (u64, u64) {
    let mut c = attach::<T, C, F>(seg, id, codec);
    let r = drain(|| c.recv_timeout(LONG).map(|m| check(&m)));
    assert_eq!(c.framed().dropped_messages(), 0);
    r
}

#[allow(dead_code)] // without the zero-copy codecs
fn consume_access<T, C, F: FramedTransportFrame>(
    seg: &str,
    id: &str,
    codec: C,
    check: impl Fn(C::View<'_>) -> (u64, u64),
) -> (u64, u64)
where
    C: myelon::codec::ZeroCopyCodec<T>,
{
    let mut c = attach::<T, C, F>(seg, id, codec);
    let r = drain(|| c.recv_access_timeout(LONG, &check));
    assert_eq!(c.decode_errors(), 0);
    r
}

fn spawn(seg: &str, codec: &str, id: &str, mode: &str) -> ChildProc {
    Spawn::new(ENTRY, codec)
        .env(SEGMENT_VAR, seg)
        .env(ID_VAR, id)
        .env(MODE_VAR, mode)
        .spawn()
}

fn expected() -> String {
    let sum = (0..MESSAGES).fold(0u64, |s, seq| s.wrapping_add(digest(seq, &values_of(seq))));
    format!("count={MESSAGES} sum={sum}")
}

fn stream<T, C: Codec<T>, F: FramedTransportFrame>(
    codec_name: &str,
    codec: C,
    make: impl Fn(u64) -> T,
    modes: [&str; 2],
) {
    let seg = SegmentGuard::new(codec_name);
    let mut children = [
        spawn(seg.name(), codec_name, "c0", modes[0]),
        spawn(seg.name(), codec_name, "c1", modes[1]),
    ];
    let b = build_shared_single_producer::<F>(seg.name(), CAP)
        .with_consumer_ids(["c0", "c1"])
        .with_coordination(CoordinationMode::WaitForConsumers)
        .with_coordination_timeout(LONG);
    let mut p = TypedProducer::<T, C, F>::from_builder(b, codec).expect("producer");
    let mut fragmented = 0;
    for seq in 0..MESSAGES {
        let before = p.framed().cursor();
        let id = p.publish(&make(seq)).expect("publish");
        assert_eq!(u64::from(id), seq);
        fragmented += usize::from(p.framed().cursor() - before > 1);
    }
    assert!(fragmented > 0, "some messages must span frames");
    drop(p);
    let want = expected();
    for c in &mut children {
        assert_eq!(c.expect("VERIFIED", CHILD_DEADLINE), want);
        c.finish(LONG);
    }
}

#[cfg(feature = "bincode")]
#[test]
fn typed_stream_bincode() {
    stream::<BMsg, _, Frame>(
        "bincode",
        BincodeCodec::<{ 1 << 20 }>::new(),
        BMsg::new,
        ["decode", "decode"],
    );
}

#[cfg(feature = "rkyv")]
#[test]
fn typed_stream_rkyv() {
    stream::<RMsg, _, AFrame>("rkyv", RkyvCodec::new(), RMsg::new, ["decode", "access"]);
}

#[cfg(feature = "flatbuffers")]
#[test]
fn typed_stream_flatbuffers() {
    stream::<FMsg, _, Frame>(
        "flatbuffers",
        FlatbuffersCodec::new(),
        FMsg::new,
        ["decode", "access"],
    );
}
