//! Layers 2 and 3 in one process: every codec over sim (and mmap for the aliases), hostile
//! payloads through the ring, and zero-copy access reading in place.
//! Each test runs when its codec's feature is on (bincode by default; `--all-features` for all).
#![allow(dead_code, unused_imports)]

mod common;
mod typed_common;

use common::*;
use myelon::backend::{RingBackend, SimBackend};
#[cfg(feature = "bincode")]
use myelon::codec::BincodeCodec;
#[cfg(feature = "flatbuffers")]
use myelon::codec::FlatbuffersCodec;
#[cfg(feature = "rkyv")]
use myelon::codec::RkyvCodec;
use myelon::codec::{Codec, ZeroCopyCodec};
use myelon::transport::{
    AlignedFixedFrame, FixedFrame, FramedTransportConsumer, FramedTransportFrame,
};
use myelon::{
    MmapTypedConsumer, MmapTypedProducer, SharedDisruptorBuilder, TransportError, TypedConsumer,
    TypedProducer,
};
use std::time::Duration;
use typed_common::*;

const CAP: usize = 32;
const LONG: Duration = Duration::from_secs(20);
type Frame = FixedFrame<244>;
type AFrame = AlignedFixedFrame<240>;

type Pair<T, C, F> = (
    TypedProducer<T, C, F, SimBackend>,
    TypedConsumer<T, C, F, SimBackend>,
);

fn pair<T, C: Codec<T> + Clone, F: FramedTransportFrame>(codec: C) -> Pair<T, C, F> {
    let world = SimBackend::new_world();
    let name = unique("typed");
    let p = TypedProducer::from_builder(
        SharedDisruptorBuilder::with_backend(world.clone(), &name, CAP),
        codec.clone(),
    )
    .expect("producer");
    let c = TypedConsumer::from_builder(
        SharedDisruptorBuilder::with_backend(world.sibling(), &name, CAP).with_consumer_id("c0"),
        codec,
    )
    .expect("consumer");
    (p, c)
}

fn round_trip<T: PartialEq + std::fmt::Debug, C: Codec<T> + Clone, F: FramedTransportFrame>(
    codec: C,
    make: impl Fn(u64) -> T,
) {
    let (mut p, mut c) = pair::<T, C, F>(codec);
    for seq in 0..40 {
        p.publish(&make(seq)).expect("publish");
        assert_eq!(c.try_recv().expect("recv").expect("published"), make(seq));
    }
    // A hostile payload published as raw bytes in the same stream: a codec error, counted, and
    // the next message decodes.
    for garbage in [&[][..], &[0xff; 7][..], &[0x80; 300][..]] {
        p.framed_mut().publish(garbage).expect("raw");
        p.publish(&make(99)).expect("publish");
        assert!(
            matches!(c.try_recv(), Err(TransportError::Codec(_))),
            "{garbage:?}"
        );
        assert_eq!(c.try_recv().expect("recv").expect("published"), make(99));
    }
    assert_eq!(c.decode_errors(), 3);
}

/// With `set_copy_before_access(true)` the view is of a private copy that no peer can write
/// (for untrusted producers), not of the slot: successive messages, which lie in successive
/// slots, are then all seen at the one address of the consumer's reused buffer.
#[cfg(feature = "rkyv")]
#[test]
fn copy_before_access_validates_a_private_copy() {
    let (mut p, mut c) = pair::<RMsg, RkyvCodec, AFrame>(RkyvCodec::new());
    // Seq 73 fits one frame, so without the copy it is read in place.
    for _ in 0..4 {
        p.publish(&RMsg::new(73)).expect("publish");
    }
    let mut at = || {
        c.recv_access_timeout(LONG, |a| {
            assert_eq!((a.seq.to_native(), a.name.as_str()), (73, "msg-73"));
            a as *const ArchivedRMsg as usize
        })
        .expect("access")
    };
    let (a1, a2) = (at(), at());
    assert_ne!(a1, a2, "in place: two slots");
    c.set_copy_before_access(true);
    let mut at = || {
        c.recv_access_timeout(LONG, |a| {
            assert_eq!((a.seq.to_native(), a.name.as_str()), (73, "msg-73"));
            a as *const ArchivedRMsg as usize
        })
        .expect("access")
    };
    let (a3, a4) = (at(), at());
    assert_eq!(a3, a4, "copied: one private buffer");
    assert!(a3 != a1 && a3 != a2);
}

#[cfg(feature = "bincode")]
#[test]
fn bincode_round_trip_and_hostile_payloads() {
    round_trip::<BMsg, _, Frame>(BincodeCodec::<{ 1 << 16 }>::new(), BMsg::new);
}

#[cfg(feature = "rkyv")]
#[test]
fn rkyv_round_trip_and_hostile_payloads() {
    round_trip::<RMsg, _, AFrame>(RkyvCodec::new(), RMsg::new);
    // Misaligned slots (FixedFrame's payload is 4 bytes into a line) decode too.
    round_trip::<RMsg, _, Frame>(RkyvCodec::new(), RMsg::new);
}

#[cfg(feature = "flatbuffers")]
#[test]
fn flatbuffers_round_trip_and_hostile_payloads() {
    round_trip::<FMsg, _, Frame>(FlatbuffersCodec::new(), FMsg::new);
}

/// Layer 3: a single-frame message is validated and read where it lies in the ring slot.
fn in_place<T, C, F: FramedTransportFrame, B: RingBackend>(
    c: &mut FramedTransportConsumer<F, B>,
    codec: &C,
    check: impl Fn(C::View<'_>) -> u64,
) where
    C: ZeroCopyCodec<T>,
{
    let m = c.recv_timeout(LONG).expect("message");
    assert!(
        m.is_in_place(),
        "a single-frame message is read from its slot"
    );
    let range = m.as_ptr_range();
    let view = codec.access(&m).expect("valid");
    let seq = check(view);
    assert!(seq < 1000);
    assert!(range.start as usize % C::ALIGN == 0);
    drop(m);
}

#[cfg(all(feature = "rkyv", feature = "flatbuffers"))]
#[test]
fn zero_copy_access_reads_the_slot() {
    // rkyv: the archived root lies inside the slot's bytes.
    let (mut p, mut c) = pair::<RMsg, RkyvCodec, AFrame>(RkyvCodec::new());
    p.publish(&RMsg::new(73)).expect("publish");
    let codec = RkyvCodec::new();
    let framed = c.framed_mut();
    let m = framed.recv_timeout(LONG).expect("message");
    assert!(m.is_in_place());
    let bytes = m.as_ptr_range();
    let archived = ZeroCopyCodec::<RMsg>::access(&codec, &m).expect("valid");
    let at = archived as *const ArchivedRMsg as *const u8;
    assert!(bytes.contains(&at), "the archived value is read in place");
    assert_eq!(archived.seq.to_native(), 73);
    assert_eq!(archived.name.as_str(), "msg-73");
    drop(m);

    // flatbuffers: the root table's accessors borrow the slot's bytes.
    let (mut p, mut c) = pair::<FMsg, FlatbuffersCodec<FMsg>, Frame>(FlatbuffersCodec::new());
    p.publish(&FMsg::new(0)).expect("publish");
    let codec = FlatbuffersCodec::<FMsg>::new();
    in_place::<FMsg, _, _, _>(c.framed_mut(), &codec, |t| {
        assert_eq!(t.name(), Some("msg-0"));
        t.seq()
    });

    // Through the typed consumer, single and fragmented.
    for seq in [3u64, 4, 5, 6] {
        p.publish(&FMsg::new(seq)).expect("publish");
        let got = c
            .recv_access_timeout(LONG, |t| {
                (t.seq(), t.values().map(|v| v.len()).unwrap_or(0))
            })
            .expect("access");
        assert_eq!(got, (seq, values_of(seq).len()));
    }
}

#[cfg(feature = "bincode")]
#[test]
fn mmap_aliases() {
    let dir = TempDir::new("typedmmap");
    let path = dir.0.join("ring");
    let mut p: MmapTypedProducer<BMsg, BincodeCodec, Frame> = TypedProducer::from_builder(
        myelon::build_mmap_single_producer(&path, CAP),
        BincodeCodec::new(),
    )
    .expect("producer");
    let mut c: MmapTypedConsumer<BMsg, BincodeCodec, Frame> = TypedConsumer::from_builder(
        myelon::attach_mmap_consumer(&path, CAP).with_consumer_id("c0"),
        BincodeCodec::new(),
    )
    .expect("consumer");
    for seq in 0..10 {
        p.publish(&BMsg::new(seq)).expect("publish");
        assert_eq!(c.recv_timeout(LONG).expect("recv"), BMsg::new(seq));
    }
}
