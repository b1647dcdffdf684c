//! The framed and typed steady-state paths allocate nothing: publishing single-frame and
//! fragmented messages (copy or claim), receiving them in place and reassembled, and, with the
//! rkyv codec, zero-copy access. Counted per thread by a wrapping global allocator.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;
use std::io::Write;

mod common;
use common::unique;
use myelon::transport::{AlignedFixedFrame, FramedTransportConsumer, FramedTransportProducer};

type Frame = AlignedFixedFrame<240>;

#[test]
fn framed_steady_state_does_not_allocate() {
    let name = unique("fnoalloc");
    let _guard = common::process::SegmentGuard(name.clone());
    let mut p = FramedTransportProducer::<Frame>::create_shared(&name, 64).expect("producer");
    let mut c = FramedTransportConsumer::<Frame>::attach_shared(&name, 64, "c").expect("consumer");
    let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let mut round = |check: bool| {
        let before = allocations();
        let mut sum = 0u64;
        for len in [0usize, 17, 240, 241, 700, 1000] {
            p.publish(&payload[..len]).expect("publish");
            let m = c.try_recv().expect("recv").expect("message");
            sum += m.len() as u64;
        }
        let mut claim = p.try_claim(600).expect("claim");
        claim.write_all(&payload[..600]).expect("write");
        claim.commit();
        sum += c.try_recv().expect("recv").expect("message").len() as u64;
        assert_eq!(sum, 17 + 240 + 241 + 700 + 1000 + 600);
        if check {
            assert_eq!(allocations() - before, 0, "framed hot path allocated");
        }
    };
    round(false); // grows the reassembly buffer to the largest message
    for _ in 0..50 {
        round(true);
    }
}

#[cfg(feature = "rkyv")]
#[test]
fn rkyv_access_steady_state_does_not_allocate() {
    use myelon::codec::RkyvCodec;
    use myelon::{TypedConsumer, TypedProducer};

    #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    struct Msg {
        seq: u64,
        name: String,
    }

    let name = unique("rnoalloc");
    let _guard = common::process::SegmentGuard(name.clone());
    let mut p = TypedProducer::<Msg, RkyvCodec, Frame>::new(
        FramedTransportProducer::create_shared(&name, 64).expect("producer"),
        RkyvCodec::new(),
    );
    let mut c = TypedConsumer::<Msg, RkyvCodec, Frame>::new(
        FramedTransportConsumer::attach_shared(&name, 64, "c").expect("consumer"),
        RkyvCodec::new(),
    );
    let msg = Msg {
        seq: 7,
        name: "x".repeat(300), // fragmented: accessed in the reassembly buffer
    };
    let small = Msg {
        seq: 8,
        name: "small".into(), // one frame: accessed in the slot
    };
    for i in 0..20 {
        p.publish(&msg).expect("publish");
        p.publish(&small).expect("publish");
        let before = allocations();
        let a = c.try_recv_access(|m| m.seq.to_native()).expect("recv");
        let b = c.try_recv_access(|m| m.name.len()).expect("recv");
        assert_eq!((a, b), (Some(7), Some(5)));
        if i > 0 {
            assert_eq!(allocations() - before, 0, "zero-copy access allocated");
        }
    }
}
