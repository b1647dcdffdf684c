//! Property: any sequence of payloads of 0..=4× the frame capacity comes out of a framed
//! consumer exactly as it went in (bytes, order, message ids), single-frame ones in place —
//! over sim, shm and mmap, with `FixedFrame` and `AlignedFixedFrame`.

mod common;

use common::*;
use myelon::backend::RingBackend;
use myelon::transport::{
    AlignedFixedFrame, FixedFrame, FramedTransportConsumer, FramedTransportFrame,
    FramedTransportProducer,
};
use myelon::SharedDisruptorBuilder;
use proptest::prelude::*;

const CAP: usize = 8;

fn round_trip<F: Fixture, E: FramedTransportFrame>(messages: &[Vec<u8>], claim: bool) {
    let f = F::new();
    let mut p = FramedTransportProducer::<E, F::B>::from_builder(
        SharedDisruptorBuilder::with_backend(f.producer(), f.name(), CAP),
    )
    .expect("producer");
    let mut c = FramedTransportConsumer::<E, F::B>::from_builder(
        SharedDisruptorBuilder::with_backend(f.consumer(), f.name(), CAP).with_consumer_id("c0"),
    )
    .expect("consumer");
    for (i, m) in messages.iter().enumerate() {
        let id = if claim {
            let mut cl = p.try_claim(m.len()).expect("claim");
            std::io::Write::write_all(&mut cl, m).expect("write");
            cl.commit()
        } else {
            p.try_publish(m).expect("publish")
        };
        assert_eq!(id, i as u32);
        check_next(&mut c, m, id);
    }
    assert!(matches!(c.try_recv(), Ok(None)));
    assert_eq!(c.dropped_messages(), 0);
}

fn check_next<E: FramedTransportFrame, B: RingBackend>(
    c: &mut FramedTransportConsumer<E, B>,
    want: &[u8],
    id: u32,
) {
    let got = c.try_recv().expect("recv").expect("a message is published");
    assert_eq!(got.message_id(), id);
    assert_eq!(&*got, want);
    assert_eq!(got.is_in_place(), want.len() <= E::DATA_BYTES);
}

fn payloads(max: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..=max), 1..12)
}

const N: usize = 52;
const A: usize = 48;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sim_fixed(m in payloads(4 * N), claim in any::<bool>()) {
        round_trip::<SimFixture, FixedFrame<N>>(&m, claim);
    }

    #[test]
    fn sim_aligned(m in payloads(4 * A), claim in any::<bool>()) {
        round_trip::<SimFixture, AlignedFixedFrame<A>>(&m, claim);
    }

    #[test]
    fn shm_fixed(m in payloads(4 * N), claim in any::<bool>()) {
        round_trip::<ShmFixture, FixedFrame<N>>(&m, claim);
    }

    #[test]
    fn shm_aligned(m in payloads(4 * A), claim in any::<bool>()) {
        round_trip::<ShmFixture, AlignedFixedFrame<A>>(&m, claim);
    }

    #[test]
    fn mmap_fixed(m in payloads(4 * N), claim in any::<bool>()) {
        round_trip::<MmapFixture, FixedFrame<N>>(&m, claim);
    }

    #[test]
    fn mmap_aligned(m in payloads(4 * A), claim in any::<bool>()) {
        round_trip::<MmapFixture, AlignedFixedFrame<A>>(&m, claim);
    }
}
