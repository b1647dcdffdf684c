//! Layer 1 behaviour every backend must share: one suite, instantiated for shm, mmap and sim.

mod common;

use common::*;
use myelon::transport::{
    frame_flags, AlignedFixedFrame, FixedFrame, FrameMeta, FramedTransportConsumer,
    FramedTransportFrame, FramedTransportProducer, TransportError,
};
use myelon::{AutoWaitStrategy, MultiProcessError, SharedDisruptorBuilder};
use std::io::Write;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

type Frame = FixedFrame<52>; // 64-byte frames
const N: usize = 52;

fn builder<F: Fixture, E: myelon::ShmEvent>(
    b: F::B,
    f: &F,
    cap: usize,
) -> SharedDisruptorBuilder<E, F::B> {
    SharedDisruptorBuilder::with_backend(b, f.name(), cap)
}

fn producer<F: Fixture, E: FramedTransportFrame>(
    f: &F,
    cap: usize,
) -> FramedTransportProducer<E, F::B> {
    FramedTransportProducer::from_builder(builder::<F, E>(f.producer(), f, cap)).expect("producer")
}

fn consumer<F: Fixture, E: FramedTransportFrame>(
    f: &F,
    cap: usize,
    id: &str,
) -> FramedTransportConsumer<E, F::B> {
    FramedTransportConsumer::from_builder(
        builder::<F, E>(f.consumer(), f, cap)
            .with_consumer_id(id)
            .with_attach_timeout(LONG),
    )
    .expect("consumer")
}

/// Deterministic payload of `len` bytes for message `seed`.
fn payload(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (checksum(seed.wrapping_add(i as u64)) >> 7) as u8)
        .collect()
}

fn expect_msg<E: FramedTransportFrame, B: myelon::backend::RingBackend>(
    c: &mut FramedTransportConsumer<E, B>,
    want: &[u8],
    in_place: bool,
) -> u32 {
    let m = c.recv_timeout(LONG).expect("message");
    assert_eq!(m.len(), want.len());
    assert!(&*m == want, "payload differs (len {})", want.len());
    assert_eq!(m.is_in_place(), in_place, "len {}", want.len());
    m.message_id()
}

pub fn single_and_fragmented_round_trip<F: Fixture>() {
    let f = F::new();
    let mut p = producer::<F, Frame>(&f, 16);
    let mut c = consumer::<F, Frame>(&f, 16, "c0");
    let sizes = [0, 1, N - 1, N, N + 1, 2 * N, 3 * N + 5, 4 * N, 16 * N];
    for (i, &len) in sizes.iter().enumerate() {
        let before = p.cursor();
        let id = p.publish(&payload(i as u64, len)).expect("publish");
        assert_eq!(id, i as u32, "message ids count per producer from 0");
        assert_eq!(p.cursor() - before, len.div_ceil(N).max(1) as i64);
        let got = expect_msg(&mut c, &payload(i as u64, len), len <= N);
        assert_eq!(got, id);
    }
    assert_eq!(c.messages_received(), sizes.len() as u64);
    assert_eq!(c.dropped_messages(), 0);
    assert!(matches!(c.try_recv(), Ok(None)));
}

pub fn aligned_frames_deliver_aligned_bytes<F: Fixture>() {
    let f = F::new();
    type A = AlignedFixedFrame<48>;
    let mut p = producer::<F, A>(&f, 16);
    let mut c = consumer::<F, A>(&f, 16, "c0");
    for len in [0usize, 5, 48, 49, 200] {
        p.publish(&payload(len as u64, len)).expect("publish");
        let m = c.recv_timeout(LONG).expect("message");
        assert_eq!(&*m, &payload(len as u64, len)[..]);
        assert_eq!(m.as_ptr() as usize % 16, 0, "len {len}");
    }
}

pub fn message_larger_than_the_ring_streams<F: Fixture>() {
    let f = F::new();
    let mut p = producer::<F, Frame>(&f, 4);
    let c = FramedTransportConsumer::from_builder(
        builder::<F, Frame>(f.consumer(), &f, 4)
            .with_consumer_id("c0")
            .with_wait_strategy(AutoWaitStrategy::Yield),
    )
    .expect("consumer");
    let big = payload(9, 37 * N + 3);
    assert!(matches!(
        p.try_publish(&big),
        Err(TransportError::ExceedsCapacity {
            frames: 38,
            capacity: 4
        })
    ));
    let want = big.clone();
    let reader = std::thread::spawn(move || {
        let mut c = c;
        let a = c.recv_timeout(LONG).expect("big").to_vec();
        let b = c.recv_timeout(LONG).expect("small").to_vec();
        (a, b, c.dropped_messages())
    });
    p.publish(&big).expect("stream");
    p.publish(b"after").expect("publish");
    let (a, b, dropped) = reader.join().expect("reader");
    assert!(a == want);
    assert_eq!(b, b"after");
    assert_eq!(dropped, 0);
}

pub fn try_publish_is_all_or_nothing<F: Fixture>() {
    let f = F::new();
    let mut p = producer::<F, Frame>(&f, 4);
    let mut c = consumer::<F, Frame>(&f, 4, "c0");
    p.try_publish(&payload(0, 3 * N)).expect("three frames");
    let before = p.cursor();
    assert!(matches!(
        p.try_publish(&payload(1, 2 * N)),
        Err(TransportError::Full { frames: 2 })
    ));
    assert_eq!(p.cursor(), before, "nothing published");
    assert_eq!(p.next_message_id(), 1, "no id used");
    p.try_publish(b"x").expect("one frame fits");
    expect_msg(&mut c, &payload(0, 3 * N), false);
    expect_msg(&mut c, b"x", true);
}

pub fn claims_write_in_place_commit_or_abort<F: Fixture>() {
    let f = F::new();
    let mut p = producer::<F, Frame>(&f, 8);
    let mut c = consumer::<F, Frame>(&f, 8, "c0");
    let body = payload(3, 3 * N + 10);
    {
        let mut claim = p.try_claim(body.len()).expect("claim");
        assert_eq!(claim.fragments(), 4);
        claim.write_all(&body).expect("write");
        assert_eq!(claim.write(b"more").expect("write past end"), 0);
        assert_eq!(claim.commit(), 0);
    }
    {
        let mut claim = p.try_claim(10).expect("claim");
        claim.fragment_mut(0).copy_from_slice(b"abandoned!");
        claim.abort();
    }
    assert!(matches!(c.try_recv(), Ok(Some(_))));
    assert!(
        matches!(c.try_recv(), Ok(None)),
        "an aborted claim publishes nothing"
    );
    let mut claim = p.claim_timeout(2 * N, Some(LONG)).expect("claim");
    claim.fragment_mut(0).fill(1);
    claim.fragment_mut(1).fill(2);
    assert_eq!(claim.commit(), 1, "the aborted claim used no id");
    let mut want = vec![1u8; N];
    want.extend(vec![2u8; N]);
    expect_msg(&mut c, &want, false);
}

pub fn broadcast_to_two<F: Fixture>() {
    let f = F::new();
    let mut p = producer::<F, Frame>(&f, 32);
    let mut c0 = consumer::<F, Frame>(&f, 32, "c0");
    let mut c1 = consumer::<F, Frame>(&f, 32, "c1");
    for round in 0..20u64 {
        let len = (round as usize * 17) % (3 * N);
        p.publish(&payload(round, len)).expect("publish");
        expect_msg(&mut c0, &payload(round, len), len <= N);
        expect_msg(&mut c1, &payload(round, len), len <= N);
    }
}

pub fn end_of_stream_is_closed<F: Fixture>() {
    let f = F::new();
    let mut p = producer::<F, Frame>(&f, 8);
    let mut c = consumer::<F, Frame>(&f, 8, "c0");
    p.publish(&payload(1, 2 * N)).expect("publish");
    drop(p);
    expect_msg(&mut c, &payload(1, 2 * N), false);
    assert!(matches!(
        c.recv_timeout(LONG),
        Err(TransportError::Ring(MultiProcessError::Closed))
    ));
}

pub fn size_limits<F: Fixture>() {
    let f = F::new();
    let mut p = producer::<F, Frame>(&f, 16).with_max_message_size(4 * N);
    assert!(matches!(
        p.publish(&payload(0, 4 * N + 1)),
        Err(TransportError::MessageTooLarge { .. })
    ));
    let mut c = consumer::<F, Frame>(&f, 16, "c0").with_max_message_size(2 * N);
    p.publish(&payload(0, 3 * N)).expect("publish");
    p.publish(&payload(1, 2 * N)).expect("publish");
    assert!(matches!(
        c.recv_timeout(LONG),
        Err(TransportError::MessageTooLarge { max, .. }) if max == 2 * N
    ));
    expect_msg(&mut c, &payload(1, 2 * N), false);
    assert_eq!(c.dropped_messages(), 1);
}

/// A consumer that crashes (here: a Layer 0 consumer that read two fragments and kept its
/// registration) and rejoins with the same id lands in the middle of a message: it skips to the
/// next first frame, counts one dropped message and delivers everything after it.
pub fn rejoin_in_the_middle_skips_to_next_message<F: Fixture>() {
    let f = F::new();
    let mut p = producer::<F, Frame>(&f, 16);
    let mut raw = builder::<F, Frame>(f.consumer(), &f, 16)
        .with_consumer_id("c0")
        .build_consumer()
        .expect("raw consumer");
    p.publish(&payload(0, 4 * N)).expect("publish");
    for i in 0..2 {
        let frame = raw.consume_next_timeout(LONG).expect("frame");
        assert_eq!(frame.meta().fragment_index, i);
    }
    raw.keep_registration_on_drop();
    drop(raw);
    p.publish(&payload(1, 2 * N + 1)).expect("publish");
    p.publish(b"tail").expect("publish");
    let mut c = consumer::<F, Frame>(&f, 16, "c0");
    assert!(c.inner().resumed());
    let id = expect_msg(&mut c, &payload(1, 2 * N + 1), false);
    assert_eq!(id, 1);
    assert_eq!(c.dropped_messages(), 1);
    expect_msg(&mut c, b"tail", true);
    assert_eq!(c.dropped_messages(), 1);
    // The drop is also counted in the ring's shared counters (what `myelon stat` shows).
    let snap = myelon::observability::RingInspector::open(f.consumer(), f.name())
        .expect("inspect")
        .snapshot();
    let entry = snap
        .consumers
        .iter()
        .find(|e| e.id == "c0")
        .expect("c0 entry");
    assert_eq!(entry.partial_dropped, 1);
}

/// What a consumer joining mid-message sees: the tail fragments of a message (published here
/// through a raw Layer 0 producer of the same frame type), then whole messages.
pub fn join_in_the_middle_skips_to_next_message<F: Fixture>() {
    let f = F::new();
    let mut raw = builder::<F, Frame>(f.producer(), &f, 16)
        .build_producer(Frame::empty)
        .expect("raw producer");
    let mut c = consumer::<F, Frame>(&f, 16, "joiner");
    let frames = [
        (
            FrameMeta {
                message_id: 5,
                len: N as u32,
                flags: 0,
                fragment_index: 2,
            },
            0u8,
        ),
        (
            FrameMeta {
                message_id: 5,
                len: 3,
                flags: frame_flags::LAST,
                fragment_index: 3,
            },
            0,
        ),
        (
            FrameMeta {
                message_id: 6,
                len: 4,
                flags: frame_flags::SINGLE,
                fragment_index: 0,
            },
            6,
        ),
        (
            FrameMeta {
                message_id: 7,
                len: N as u32,
                flags: frame_flags::FIRST,
                fragment_index: 0,
            },
            7,
        ),
        (
            FrameMeta {
                message_id: 7,
                len: 1,
                flags: frame_flags::LAST,
                fragment_index: 1,
            },
            7,
        ),
    ];
    for (meta, fill) in frames {
        raw.publish(|fr| {
            fr.set_meta(&meta);
            fr.data_mut().fill(fill);
        });
    }
    let m = c.recv_timeout(LONG).expect("message 6");
    assert_eq!((m.message_id(), &*m), (6, &[6u8; 4][..]));
    drop(m);
    assert_eq!(c.dropped_messages(), 1, "the partial message 5");
    let m = c.recv_timeout(LONG).expect("message 7");
    assert_eq!(m.message_id(), 7);
    assert_eq!(m.len(), N + 1);
    assert!(m.iter().all(|&b| b == 7));
    drop(m);
    assert_eq!(c.dropped_messages(), 1);
}

/// Two producers in one process number their messages independently, each from 0.
pub fn message_ids_are_per_producer<F: Fixture>() {
    let f = F::new();
    let other = format!("{}b", f.name());
    let mut p1 = producer::<F, Frame>(&f, 8);
    let mut p2 = FramedTransportProducer::<Frame, F::B>::from_builder(
        SharedDisruptorBuilder::with_backend(f.producer(), &other, 8),
    )
    .expect("second producer");
    let mut c2 = FramedTransportConsumer::<Frame, F::B>::from_builder(
        SharedDisruptorBuilder::with_backend(f.consumer(), &other, 8).with_consumer_id("c"),
    )
    .expect("consumer");
    for i in 0..5u32 {
        assert_eq!(p1.publish(b"one").expect("publish"), i);
        assert_eq!(p2.publish(b"two").expect("publish"), i);
        assert_eq!(c2.recv_timeout(LONG).expect("message").message_id(), i);
    }
}

/// Two consumer threads and a producer, messages of pseudo-random sizes from empty to twice the
/// ring (those stream), every byte checked.
pub fn stress_random_sizes<F: Fixture>() {
    const CAP: usize = 16;
    // Under Miri (interpreted, hundreds of times slower) a few dozen messages are enough.
    const COUNT: u64 = if cfg!(miri) { 40 } else { 1000 };
    let f = F::new();
    let mut p = producer::<F, Frame>(&f, CAP);
    let size = |i: u64| (checksum(i) % (2 * CAP * N) as u64) as usize;
    let readers: Vec<_> = ["c0", "c1"]
        .into_iter()
        .map(|id| {
            let mut c = FramedTransportConsumer::from_builder(
                builder::<F, Frame>(f.consumer(), &f, CAP)
                    .with_consumer_id(id)
                    .with_wait_strategy(AutoWaitStrategy::Yield),
            )
            .expect("consumer");
            std::thread::spawn(move || {
                for i in 0..COUNT {
                    let m = c.recv_timeout(LONG).expect("message");
                    assert_eq!(m.message_id(), i as u32);
                    assert!(*m == payload(i, size(i))[..], "message {i} differs");
                }
                c.dropped_messages()
            })
        })
        .collect();
    for i in 0..COUNT {
        p.publish(&payload(i, size(i))).expect("publish");
    }
    for r in readers {
        assert_eq!(r.join().expect("reader"), 0);
    }
}

/// Fragment-wise receive: each fragment is visited in place, in order; a message partly
/// received by `try_recv` is visited from its first byte; a message that breaks after a visit
/// is an error and is dropped.
pub fn fragments_are_visited_in_place<F: Fixture>() {
    let f = F::new();
    let mut raw = builder::<F, Frame>(f.producer(), &f, 16)
        .build_producer(Frame::empty)
        .expect("raw producer");
    let mut c = consumer::<F, Frame>(&f, 16, "c0");
    let frame = |id: u32, index: u32, flags: u32, len: usize, fill: u8| {
        move |fr: &mut Frame| {
            fr.set_meta(&FrameMeta {
                message_id: id,
                len: len as u32,
                flags,
                fragment_index: index,
            });
            fr.data_mut().fill(fill);
        }
    };
    let mut seen: Vec<Vec<u8>> = Vec::new();
    // A whole three-fragment message, then a single-frame one.
    raw.publish(frame(0, 0, frame_flags::FIRST, N, 1));
    raw.publish(frame(0, 1, 0, N, 2));
    raw.publish(frame(0, 2, frame_flags::LAST, 5, 3));
    raw.publish(frame(1, 0, frame_flags::SINGLE, 7, 4));
    let id = c
        .recv_fragments_timeout(LONG, |b| seen.push(b.to_vec()))
        .expect("message 0");
    assert_eq!(id, 0);
    assert_eq!(seen, vec![vec![1; N], vec![2; N], vec![3; 5]]);
    seen.clear();
    let id = c
        .recv_fragments_timeout(LONG, |b| seen.push(b.to_vec()))
        .expect("message 1");
    assert_eq!((id, &seen[..]), (1, &[vec![4u8; 7]][..]));
    // Partly received by try_recv, completed fragment-wise: the copied prefix comes first.
    raw.publish(frame(2, 0, frame_flags::FIRST, N, 5));
    raw.publish(frame(2, 1, 0, N, 6));
    assert!(matches!(c.try_recv(), Ok(None)));
    raw.publish(frame(2, 2, frame_flags::LAST, 1, 7));
    seen.clear();
    let id = c
        .recv_fragments_timeout(LONG, |b| seen.push(b.to_vec()))
        .expect("message 2");
    let mut prefix = vec![5u8; N];
    prefix.extend(vec![6u8; N]);
    assert_eq!((id, &seen[..]), (2, &[prefix, vec![7u8; 1]][..]));
    // Broken after one visited fragment: an error, dropped, and the next message is fine.
    raw.publish(frame(3, 0, frame_flags::FIRST, N, 8));
    raw.publish(frame(3, 2, frame_flags::LAST, 1, 9));
    raw.publish(frame(4, 0, frame_flags::SINGLE, 2, 10));
    seen.clear();
    let r = c.recv_fragments_timeout(LONG, |b| seen.push(b.to_vec()));
    assert!(
        matches!(r, Err(TransportError::FragmentGap { message_id: 3, .. })),
        "{r:?}"
    );
    assert_eq!(seen.len(), 1, "the visitor saw the prefix before the gap");
    assert_eq!(c.dropped_messages(), 1);
    seen.clear();
    let id = c
        .recv_fragments_timeout(LONG, |b| seen.push(b.to_vec()))
        .expect("message 4");
    assert_eq!((id, &seen[..]), (4, &[vec![10u8; 2]][..]));
    assert_eq!(c.messages_received(), 4);
}

macro_rules! framed_conformance {
    ($module:ident, $fixture:ty) => {
        mod $module {
            use super::*;
            #[test]
            fn single_and_fragmented_round_trip() {
                super::single_and_fragmented_round_trip::<$fixture>()
            }
            #[test]
            fn aligned_frames_deliver_aligned_bytes() {
                super::aligned_frames_deliver_aligned_bytes::<$fixture>()
            }
            #[test]
            fn message_larger_than_the_ring_streams() {
                super::message_larger_than_the_ring_streams::<$fixture>()
            }
            #[test]
            fn try_publish_is_all_or_nothing() {
                super::try_publish_is_all_or_nothing::<$fixture>()
            }
            #[test]
            fn claims_write_in_place_commit_or_abort() {
                super::claims_write_in_place_commit_or_abort::<$fixture>()
            }
            #[test]
            fn broadcast_to_two() {
                super::broadcast_to_two::<$fixture>()
            }
            #[test]
            fn end_of_stream_is_closed() {
                super::end_of_stream_is_closed::<$fixture>()
            }
            #[test]
            fn size_limits() {
                super::size_limits::<$fixture>()
            }
            #[test]
            fn rejoin_in_the_middle_skips_to_next_message() {
                super::rejoin_in_the_middle_skips_to_next_message::<$fixture>()
            }
            #[test]
            fn fragments_are_visited_in_place() {
                super::fragments_are_visited_in_place::<$fixture>()
            }
            #[test]
            fn stress_random_sizes() {
                super::stress_random_sizes::<$fixture>()
            }
            #[test]
            fn message_ids_are_per_producer() {
                super::message_ids_are_per_producer::<$fixture>()
            }
            #[test]
            fn join_in_the_middle_skips_to_next_message() {
                super::join_in_the_middle_skips_to_next_message::<$fixture>()
            }
        }
    };
}

framed_conformance!(sim, SimFixture);
framed_conformance!(shm, ShmFixture);
framed_conformance!(mmap, MmapFixture);
