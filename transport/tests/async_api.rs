//! The async API (feature `tokio`) in one process, over POSIX shared memory (and the simulator
//! for a dead producer): every layer's `recv` / `publish`, streams, cancellation, `select!` with
//! a timer and a socket, end of stream, producer death, required-consumer liveness.
//!
//! Run: `cargo test -p myelon --features tokio --test async_api`. The two-process figures (idle
//! CPU, wake-up latency, 1,000,000 messages) are in `async_multiprocess.rs`.
#![cfg(all(feature = "tokio", not(madsim)))]

mod common;

use common::{checksum, fill, unique, Event, Fixture, ShmFixture};
use myelon::backend::{ShmBackend, SimBackend};
use myelon::codec::{BincodeCodec, DEFAULT_BINCODE_LIMIT};
use myelon::{
    AsyncConsumer, AsyncMultiProducer, AsyncProducer, FixedFrame, FramedTransportConsumer,
    FramedTransportProducer, MultiProcessError, MultiProducerBuilder, RequiredConsumerError,
    RequiredConsumerLivenessConfig, SharedDisruptorBuilder, Sourced, TransportError, TypedConsumer,
    TypedProducer,
};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

/// Bound on anything that should happen promptly: turns a hang into a failure, never a check of
/// speed.
const LONG: Duration = Duration::from_secs(30);

fn shm_pair(
    f: &ShmFixture,
    cap: usize,
) -> (
    AsyncProducer<Event, ShmBackend>,
    AsyncConsumer<Event, ShmBackend>,
) {
    let p = SharedDisruptorBuilder::<Event, _>::with_backend(f.producer(), f.name(), cap)
        .build_producer(Event::default)
        .unwrap()
        .into_async();
    let c = SharedDisruptorBuilder::<Event, _>::with_backend(f.consumer(), f.name(), cap)
        .with_consumer_id("c")
        .build_consumer()
        .unwrap()
        .into_async();
    (p, c)
}

fn check(e: &Event, seq: u64) {
    assert_eq!(
        (e.sequence, e.checksum),
        (seq, checksum(seq)),
        "event {seq}"
    );
}

async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LONG, f)
        .await
        .expect("timed out (a hang)")
}

/// Both directions wait: a ring of 4 slots, 20,000 events, an async producer task that is
/// blocked on a full ring most of the time and an async consumer task that finds it empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_producer_and_consumer_through_a_small_ring() {
    const N: u64 = 20_000;
    let f = ShmFixture::new();
    let (mut p, mut c) = shm_pair(&f, 4);
    let producer = tokio::spawn(async move {
        for i in 0..N {
            let s = p.publish(|e| fill(e, i)).await;
            assert_eq!(s, i as i64);
        }
        p
    });
    within(async {
        for i in 0..N {
            check(&c.recv().await.unwrap(), i);
        }
    })
    .await;
    let p = producer.await.unwrap();
    drop(p);
    assert!(matches!(
        within(c.recv()).await,
        Err(MultiProcessError::Closed)
    ));
}

/// A sync producer thread publishing with pauses; the async consumer receives everything,
/// leased and copied, and batches.
#[tokio::test]
async fn sync_producer_async_consumer_leased_and_batches() {
    const N: u64 = 5_000;
    let f = ShmFixture::new();
    let mut p = SharedDisruptorBuilder::<Event, _>::with_backend(f.producer(), f.name(), 64)
        .build_producer(Event::default)
        .unwrap();
    let mut c = SharedDisruptorBuilder::<Event, _>::with_backend(f.consumer(), f.name(), 64)
        .with_consumer_id("c")
        .build_consumer()
        .unwrap()
        .into_async();
    let t = std::thread::spawn(move || {
        for i in 0..N {
            p.publish(|e| fill(e, i));
            if i % 97 == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    });
    let mut next = 0u64;
    within(async {
        while next < N {
            match next % 3 {
                0 => {
                    let l = c.recv_leased().await.unwrap();
                    assert_eq!(l.sequence(), next as i64);
                    check(&l, next);
                    next += 1;
                }
                1 => {
                    check(&c.recv().await.unwrap(), next);
                    next += 1;
                }
                _ => {
                    let n = c
                        .recv_batch(16, |e, s, _| {
                            assert_eq!(s, next as i64);
                            check(e, next);
                            next += 1;
                        })
                        .await
                        .unwrap();
                    assert!(n >= 1);
                }
            }
        }
    })
    .await;
    t.join().unwrap();
    assert!(matches!(
        within(c.recv()).await,
        Err(MultiProcessError::Closed)
    ));
}

/// Dropping a pending `recv()` loses nothing: a `select!` against a short timer drops the
/// receive future again and again while a thread publishes at irregular gaps; every event
/// still arrives, once, in order. Also: a future polled once (armed) and then dropped.
#[tokio::test]
async fn dropped_recv_futures_lose_nothing() {
    const N: u64 = 2_000;
    let f = ShmFixture::new();
    let (p, mut c) = shm_pair(&f, 16);
    let mut p = p.into_sync();

    // Armed, then dropped while pending.
    {
        let mut fut = pin!(c.recv());
        let polled = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_pending())).await;
        assert!(polled, "nothing was published yet");
    }
    p.publish(|e| fill(e, 0));
    check(&within(c.recv()).await.unwrap(), 0);

    let t = std::thread::spawn(move || {
        for i in 1..N {
            p.publish(|e| fill(e, i));
            if i % 7 == 0 {
                std::thread::sleep(Duration::from_micros(50 + (i % 5) * 100));
            }
        }
    });
    let (mut next, mut timeouts) = (1u64, 0u64);
    within(async {
        while next < N {
            tokio::select! {
                r = c.recv() => {
                    check(&r.unwrap(), next);
                    next += 1;
                }
                _ = tokio::time::sleep(Duration::from_micros(100)) => timeouts += 1,
            }
        }
    })
    .await;
    t.join().unwrap();
    println!("{N} events through select! with a 100 us timer; {timeouts} receive futures dropped");
    assert!(matches!(
        within(c.recv()).await,
        Err(MultiProcessError::Closed)
    ));
}

/// `select!` over a ring receive and a socket: each branch fires for its own source.
#[tokio::test]
async fn select_with_a_socket() {
    let f = ShmFixture::new();
    let (mut p, mut c) = shm_pair(&f, 8);
    let (a, b) = tokio::net::UnixDatagram::pair().unwrap();
    let mut buf = [0u8; 16];
    for round in 0..10u64 {
        if round % 2 == 0 {
            a.send(&round.to_le_bytes()).await.unwrap();
        } else {
            p.publish(|e| fill(e, round)).await;
        }
        let got = within(async {
            tokio::select! {
                r = c.recv() => ("ring", r.unwrap().sequence),
                n = b.recv(&mut buf) => {
                    assert_eq!(n.unwrap(), 8);
                    ("socket", u64::from_le_bytes(buf[..8].try_into().unwrap()))
                }
            }
        })
        .await;
        let want = if round % 2 == 0 { "socket" } else { "ring" };
        assert_eq!(got, (want, round));
    }
}

/// The stream yields every event, then `Closed` once, then ends.
#[tokio::test]
async fn stream_drains_then_ends_with_closed() {
    let f = ShmFixture::new();
    let (mut p, c) = shm_pair(&f, 8);
    let t = tokio::spawn(async move {
        for i in 0..100 {
            p.publish(|e| fill(e, i)).await;
        }
        // `p` dropped: end of stream.
    });
    let mut c = pin!(c);
    let mut items = Vec::new();
    within(async {
        while let Some(r) = poll_fn(|cx| futures_core::Stream::poll_next(c.as_mut(), cx)).await {
            items.push(r);
        }
    })
    .await;
    t.await.unwrap();
    assert_eq!(items.len(), 101);
    for (i, r) in items[..100].iter().enumerate() {
        check(r.as_ref().unwrap(), i as u64);
    }
    assert!(matches!(items[100], Err(MultiProcessError::Closed)));
}

/// A producer that dies without closing (a simulated process killed): the consumer receives what
/// it published, then `ProducerDead`, as the sync API reports it.
#[tokio::test]
async fn dead_producer_ends_the_receive() {
    let world = SimBackend::new_world();
    let name = unique("dead");
    let mut p = SharedDisruptorBuilder::<Event, _>::with_backend(world.clone(), &name, 8)
        .build_producer(Event::default)
        .unwrap();
    let mut c = SharedDisruptorBuilder::<Event, _>::with_backend(world.sibling(), &name, 8)
        .with_consumer_id("c")
        .build_consumer()
        .unwrap()
        .into_async();
    p.publish(|e| fill(e, 0));
    world.kill();
    std::mem::forget(p); // as after SIGKILL: no Drop, no close
    check(&within(c.recv()).await.unwrap(), 0);
    assert!(matches!(
        within(c.recv()).await,
        Err(MultiProcessError::ProducerDead)
    ));
}

type Frame = FixedFrame<52>;

/// Framed messages of 0 to 10x the frame (the largest longer than the ring, so streamed) from an
/// async producer to an async consumer, through `recv` and the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framed_async_round_trip() {
    let guard = myelon_test_support::ShmGuard::new("afr");
    let name = guard.name().to_string();
    let mut p = FramedTransportProducer::from_builder(
        SharedDisruptorBuilder::<Frame, _>::with_backend(ShmBackend, &name, 8),
    )
    .unwrap()
    .into_async();
    let mut c = FramedTransportConsumer::from_builder(
        SharedDisruptorBuilder::<Frame, _>::with_backend(ShmBackend, &name, 8)
            .with_consumer_id("c"),
    )
    .unwrap()
    .into_async();
    let payload = |i: usize| -> Vec<u8> { (0..(i * 37) % 530).map(|b| (b ^ i) as u8).collect() };
    const N: usize = 300;
    let t = tokio::spawn(async move {
        for i in 0..N {
            let id = p.publish(&payload(i)).await.unwrap();
            assert_eq!(id, i as u32);
        }
    });
    within(async {
        for i in 0..N / 2 {
            let m = c.recv().await.unwrap();
            assert_eq!(m.message_id(), i as u32);
            assert_eq!(&*m, &payload(i)[..]);
        }
    })
    .await;
    let mut c = pin!(c);
    let mut i = N / 2;
    within(async {
        while let Some(r) = poll_fn(|cx| futures_core::Stream::poll_next(c.as_mut(), cx)).await {
            match r {
                Ok(m) => {
                    assert_eq!(m, payload(i));
                    i += 1;
                }
                Err(TransportError::Ring(MultiProcessError::Closed)) => break,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    t.await.unwrap();
    assert_eq!(i, N);
}

/// Typed values (bincode) from an async typed producer to an async typed consumer.
#[tokio::test]
async fn typed_async_round_trip() {
    #[derive(bincode::Encode, bincode::Decode, Debug, PartialEq, Clone)]
    struct Request {
        id: u64,
        prompt: String,
    }
    let guard = myelon_test_support::ShmGuard::new("aty");
    let name = guard.name().to_string();
    let mut p = TypedProducer::from_builder(
        SharedDisruptorBuilder::<Frame, _>::with_backend(ShmBackend, &name, 16),
        BincodeCodec::<DEFAULT_BINCODE_LIMIT>::new(),
    )
    .unwrap()
    .into_async();
    let mut c = TypedConsumer::<Request, _, Frame, _>::from_builder(
        SharedDisruptorBuilder::<Frame, _>::with_backend(ShmBackend, &name, 16)
            .with_consumer_id("c"),
        BincodeCodec::<DEFAULT_BINCODE_LIMIT>::new(),
    )
    .unwrap()
    .into_async();
    let req = |i: u64| Request {
        id: i,
        prompt: "x".repeat((i as usize * 13) % 200),
    };
    let t = tokio::spawn(async move {
        for i in 0..500 {
            p.publish(&req(i)).await.unwrap();
        }
    });
    within(async {
        for i in 0..500 {
            assert_eq!(c.recv().await.unwrap(), req(i));
        }
    })
    .await;
    t.await.unwrap();
    assert!(matches!(
        within(c.recv()).await,
        Err(TransportError::Ring(MultiProcessError::Closed))
    ));
    assert_eq!(c.decode_errors(), 0);
}

/// A required consumer that stops releasing: the async managed publish alerts and then fails
/// with `GracefulShutdownTriggered` instead of waiting for ever; the plain one keeps waiting
/// (checked by a timer winning the `select!`).
#[tokio::test]
async fn managed_publish_fails_on_a_stalled_required_consumer() {
    let f = ShmFixture::new();
    let mut p = SharedDisruptorBuilder::<Event, _>::with_backend(f.producer(), f.name(), 2)
        .build_producer(Event::default)
        .unwrap();
    let _stalled = SharedDisruptorBuilder::<Event, _>::with_backend(f.consumer(), f.name(), 2)
        .with_consumer_id("req")
        .build_consumer()
        .unwrap();
    let config = RequiredConsumerLivenessConfig::new(["req"])
        .unwrap()
        .with_progress_timeout(Duration::from_millis(20))
        .unwrap()
        .with_progress_check_interval(Duration::from_millis(5))
        .unwrap()
        .with_shutdown_grace_period(Duration::from_millis(20))
        .unwrap();
    p.enable_required_consumer_liveness(config).unwrap();
    let mut p = p.into_async();
    for i in 0..2 {
        p.publish_managed(|e| fill(e, i)).await.unwrap();
    }
    tokio::select! {
        _ = p.publish(|e| fill(e, 2)) => panic!("published into a full ring"),
        _ = tokio::time::sleep(Duration::from_millis(30)) => {}
    }
    let r = within(p.publish_managed(|e| fill(e, 2))).await;
    assert!(
        matches!(
            r,
            Err(RequiredConsumerError::GracefulShutdownTriggered { .. })
        ),
        "{r:?}"
    );
}

/// `into_sync` gives the handles back, registration and cursor intact.
#[tokio::test]
async fn into_sync_round_trip() {
    let f = ShmFixture::new();
    let (mut p, mut c) = shm_pair(&f, 8);
    p.publish(|e| fill(e, 0)).await;
    check(&c.recv().await.unwrap(), 0);
    let mut p = p.into_sync();
    let mut c = c.into_sync();
    p.publish(|e| fill(e, 1));
    check(&c.consume_next_timeout(LONG).unwrap(), 1);
    let mut c = c.into_async();
    p.publish(|e| fill(e, 2));
    check(&within(c.recv()).await.unwrap(), 2);
}

fn multi_producer(
    f: &ShmFixture,
    cap: usize,
    source: u64,
) -> AsyncMultiProducer<Event, ShmBackend> {
    MultiProducerBuilder::<Event, _>::with_backend(f.producer(), f.name(), cap)
        .with_source_id(source)
        .with_consumer_id("c")
        .build(Event::default)
        .unwrap()
        .into_async()
}

fn multi_consumer(f: &ShmFixture, cap: usize) -> AsyncConsumer<Sourced<Event>, ShmBackend> {
    SharedDisruptorBuilder::<Sourced<Event>, _>::with_backend(f.consumer(), f.name(), cap)
        .with_consumer_id("c")
        .build_consumer()
        .unwrap()
        .into_async()
}

/// Two async producers of one multi-producer ring of 4 slots, each in its own task, one event
/// at a time and in batches of 3, blocked on the full ring most of the time; an async consumer
/// receives every event of each producer once, in that producer's order, then `Closed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_multi_producers_through_a_small_ring() {
    const N: u64 = 6_000;
    let f = ShmFixture::new();
    let cap = 4;
    let producers: Vec<_> = (1..=2u64)
        .map(|source| {
            let mut p = multi_producer(&f, cap, source);
            tokio::spawn(async move {
                let mut i = 0u64;
                while i < N {
                    if i % 5 == 0 && i + 3 <= N {
                        let first = i;
                        p.publish_batch(3, |k, e| fill(e, first + k as u64))
                            .await
                            .unwrap();
                        i += 3;
                    } else {
                        p.publish(|e| fill(e, i)).await.unwrap();
                        i += 1;
                    }
                }
                p
            })
        })
        .collect();
    let mut c = multi_consumer(&f, cap);
    let mut next = [0u64; 3];
    within(async {
        for _ in 0..2 * N {
            let s = c.recv().await.unwrap();
            let k = s.source as usize;
            assert!(k == 1 || k == 2, "source {k}");
            check(&s.event, next[k]);
            next[k] += 1;
        }
    })
    .await;
    assert_eq!(next[1..], [N, N]);
    let mut done = Vec::new();
    for p in producers {
        done.push(p.await.unwrap());
    }
    // Every claimed sequence carried an event (a claim left unpublished would be skipped by
    // the consumer: only the cursor shows it).
    assert_eq!(done[0].inner().claim_cursor(), 2 * N as i64 - 1);
    drop(done);
    assert!(matches!(
        within(c.recv()).await,
        Err(MultiProcessError::Closed)
    ));
}

/// A multi-producer publish future dropped while it waits for room claims nothing: the next
/// publish takes the next sequence, and the consumer sees no hole and nothing skipped.
#[tokio::test]
async fn a_dropped_multi_publish_claims_nothing() {
    let f = ShmFixture::new();
    let mut p = multi_producer(&f, 4, 7);
    let mut c = multi_consumer(&f, 4);
    for i in 0..4 {
        assert_eq!(p.try_publish(|e| fill(e, i)).unwrap(), Some(i as i64));
    }
    {
        let mut fut = pin!(p.publish(|e| fill(e, 99)));
        let pending = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_pending())).await;
        assert!(pending, "the ring is full");
    }
    for i in 0..4 {
        let s = within(c.recv()).await.unwrap();
        assert_eq!(s.source, 7);
        check(&s.event, i);
    }
    assert_eq!(within(p.publish(|e| fill(e, 4))).await.unwrap(), 4);
    let s = within(c.recv()).await.unwrap();
    check(&s.event, 4);
    assert_eq!(p.inner().last_published(), 4);
    assert_eq!(p.inner().claim_cursor(), 4, "nothing else was claimed");
}
