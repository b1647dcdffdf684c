//! The async API across real processes (feature `tokio`), over POSIX shared memory.
//!
//! * `tokio_consumer_receives_a_million_events_published_at_random_gaps`: a consumer process on
//!   a tokio runtime first waits idle for `MYELON_ASYNC_IDLE_MS` (10 s by default) and reports
//!   the CPU it used meanwhile (`getrusage`), then receives 1,000,000 events that this process
//!   publishes in bursts separated by random gaps, verifies every sequence and checksum, and
//!   reports the wake-up latency (publish to `recv()` returning, for the events whose `recv()`
//!   had gone to sleep) as p50 / p99 / max. The figures are printed, not asserted.
//! * `sigkilled_producer_ends_the_async_receive`: a producer process publishes, is SIGKILLed;
//!   the async consumer receives what it published, then `ProducerDead`.
//!
//! Run: `cargo test -p myelon --features tokio --test async_multiprocess -- --nocapture`.
#![cfg(all(feature = "tokio", not(madsim)))]

mod common;

use common::checksum;
use common::process::{
    env_str, env_u64, read_command, report, ChildProc, SegmentGuard, Spawn, CHILD_OK, SEGMENT_VAR,
};
use myelon::{
    attach_shared_consumer, build_shared_single_producer, CoordinationMode, MultiProcessError,
};
use std::future::poll_fn;
use std::time::Duration;

const ENTRY: &str = "child_role";
/// Bound on one step (attach, a marker line): turns a hang into a failure.
const LONG: Duration = Duration::from_secs(60);
const COUNT_VAR: &str = "MYELON_TEST_COUNT";
/// How long the consumer is left idle before the stream starts (ms).
const IDLE_VAR: &str = "MYELON_ASYNC_IDLE_MS";
const CAP: usize = 1024;

myelon::shm_event! {
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Stamped {
        pub sequence: u64,
        pub checksum: u64,
        /// CLOCK_MONOTONIC at publish, in ns (the same clock in every process).
        pub published_ns: u64,
    }
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// User plus system CPU time of this process.
fn cpu_time() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage for the duration of the call.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

// ---------------------------------------------------------------------------------------------
// Child side
// ---------------------------------------------------------------------------------------------

#[test]
fn child_role() {
    let Some(role) = common::process::role() else {
        return;
    };
    match role.as_str() {
        "tokio_consumer" => tokio_consumer_role(),
        "holding_producer" => holding_producer_role(),
        other => panic!("unknown child role {other:?}"),
    }
    report(CHILD_OK, role);
}

/// A tokio (current-thread) consumer: idle figures, then the whole stream verified, then the
/// latency figures.
fn tokio_consumer_role() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let mut c = attach_shared_consumer::<Stamped>(&env_str(SEGMENT_VAR), CAP)
            .with_consumer_id("async")
            .with_attach_timeout(LONG)
            .build_consumer()
            .expect("attach")
            .into_async();
        let n = env_u64(COUNT_VAR);
        let (cpu0, t0) = (cpu_time(), std::time::Instant::now());
        report("ATTACHED", c.get_ref().next_sequence());
        let first = c.recv().await.expect("first event");
        let (cpu, wall) = (cpu_time() - cpu0, t0.elapsed());
        report(
            "IDLE",
            format!(
                "cpu_us={} wall_ms={} cpu_pct={:.4}",
                cpu.as_micros(),
                wall.as_millis(),
                100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
            ),
        );
        // 1 ns to 60 s, 3 significant digits (`saturating_record` clamps above 60 s).
        let histogram = || hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3);
        let mut wake = histogram().expect("histogram");
        let mut all = histogram().expect("histogram");
        let mut check = |e: &Stamped, seq: u64, slept: bool| {
            assert_eq!(e.sequence, seq, "sequence gap or reorder");
            assert_eq!(e.checksum, checksum(seq), "torn or corrupt event {seq}");
            let ns = monotonic_ns().saturating_sub(e.published_ns);
            all.saturating_record(ns);
            if slept {
                wake.saturating_record(ns);
            }
        };
        check(&first, 0, false);
        let (cpu0, t0) = (cpu_time(), std::time::Instant::now());
        for seq in 1..n {
            let mut slept = false;
            let e = poll_fn(|cx| {
                let p = c.poll_recv(cx);
                slept |= p.is_pending();
                p
            })
            .await
            .expect("event");
            check(&e, seq, slept);
        }
        let (cpu, wall) = (cpu_time() - cpu0, t0.elapsed());
        assert!(matches!(c.recv().await, Err(MultiProcessError::Closed)));
        let us = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
        report("VERIFIED", n);
        report(
            "WAKE",
            format!(
                "wakeups={} p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1}",
                wake.len(),
                us(&wake, 0.5),
                us(&wake, 0.99),
                us(&wake, 0.999),
                wake.max() as f64 / 1e3
            ),
        );
        report(
            "ALL",
            format!(
                "p50_us={:.1} p99_us={:.1} stream_cpu_pct={:.1} stream_ms={}",
                us(&all, 0.5),
                us(&all, 0.99),
                100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
                wall.as_millis()
            ),
        );
    });
}

/// Creates the ring (reserving consumer "c"), publishes `MYELON_TEST_COUNT` events, reports
/// `PUBLISHED` and waits (on stdin) to be killed.
fn holding_producer_role() {
    let n = env_u64(COUNT_VAR);
    let mut p = build_shared_single_producer::<Stamped>(&env_str(SEGMENT_VAR), CAP)
        .with_consumer_ids(["c"])
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .build_producer(Stamped::default)
        .expect("build producer");
    for seq in 0..n {
        p.publish(|e| {
            e.sequence = seq;
            e.checksum = checksum(seq);
        });
    }
    report("PUBLISHED", n);
    while read_command().is_some() {}
    std::mem::forget(p); // never closed: only the kill ends it
}

// ---------------------------------------------------------------------------------------------
// Parent side
// ---------------------------------------------------------------------------------------------

/// A small xorshift: the gaps are random but the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn tokio_consumer_receives_a_million_events_published_at_random_gaps() {
    const N: u64 = 1_000_000;
    let idle_ms = std::env::var(IDLE_VAR)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(10_000);
    let seg = SegmentGuard::new("async-million");
    let mut child: ChildProc = Spawn::new(ENTRY, "tokio_consumer")
        .env(SEGMENT_VAR, seg.name())
        .env(COUNT_VAR, N)
        .spawn();
    let mut p = build_shared_single_producer::<Stamped>(seg.name(), CAP)
        .with_consumer_ids(["async"])
        .with_coordination(CoordinationMode::WaitForConsumers)
        .with_coordination_timeout(LONG)
        .build_producer(Stamped::default)
        .expect("the consumer attaches");
    assert_eq!(child.expect("ATTACHED", LONG), "0");
    // The idle period being measured (not a wait for a condition).
    std::thread::sleep(Duration::from_millis(idle_ms));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seq = 0u64;
    while seq < N {
        // A burst of 1..=64 events, then a gap of 0..=400 us (a third of the gaps are none).
        let burst = 1 + rng.next() % 64;
        for _ in 0..burst.min(N - seq) {
            p.publish(|e| {
                e.sequence = seq;
                e.checksum = checksum(seq);
                e.published_ns = monotonic_ns();
            });
            seq += 1;
        }
        let gap = rng.next() % 600;
        if gap < 400 {
            std::thread::sleep(Duration::from_micros(gap));
        }
    }
    drop(p);
    let idle = child.expect("IDLE", LONG);
    assert_eq!(
        child.expect("VERIFIED", Duration::from_secs(300)),
        N.to_string()
    );
    let wake = child.expect("WAKE", LONG);
    let all = child.expect("ALL", LONG);
    child.finish(LONG);
    println!("async consumer, idle {idle_ms} ms: {idle}");
    println!("async consumer, 1,000,000 events at random gaps: wake-up latency {wake}");
    println!("async consumer, every event (publish to recv): {all}");
}

#[test]
fn sigkilled_producer_ends_the_async_receive() {
    const K: u64 = 100;
    let seg = SegmentGuard::new("async-dead");
    let mut producer = Spawn::new(ENTRY, "holding_producer")
        .env(SEGMENT_VAR, seg.name())
        .env(COUNT_VAR, K)
        .spawn();
    assert_eq!(producer.expect("PUBLISHED", LONG), K.to_string());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let mut c = attach_shared_consumer::<Stamped>(seg.name(), CAP)
            .with_consumer_id("c")
            .with_attach_timeout(LONG)
            .build_consumer()
            .expect("attach")
            .into_async();
        for seq in 0..K / 2 {
            assert_eq!(c.recv().await.expect("event").sequence, seq);
        }
        producer.kill();
        for seq in K / 2..K {
            assert_eq!(c.recv().await.expect("event").sequence, seq);
        }
        let r = tokio::time::timeout(LONG, c.recv()).await.expect("a hang");
        assert!(matches!(r, Err(MultiProcessError::ProducerDead)), "{r:?}");
    });
}
