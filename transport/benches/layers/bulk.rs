//! One-way bulk messages: the producer publishes `size`-byte messages (`publish` copies every
//! byte of a source buffer into the ring); the consumer process receives each one and reads
//! every byte (a word sum), checking the message number in word 0. Throughput is measured by the
//! consumer, from the first message received to the last.
//!
//! The floor is single-thread `memcpy` bandwidth in the same run, over the same working set: a
//! `size`-byte source copied in turn into `capacity` destination buffers of `size` bytes (as the
//! producer's copies rotate through the ring's slots).
//!
//! A second floor, `handoff`, is the same pipeline without myelon: two threads of this process
//! pinned to the same two CPUs hand `size`-byte heap buffers over through `capacity` slots (a
//! mutex per slot and two atomic counters), the writer copying every byte in, the reader summing
//! every byte. It is what the hardware gives this pattern: every line crosses from one core's
//! cache to the other's.

use crate::clock::Clock;
use crate::proc::{BenchResult, Names, Peer};
use crate::Plan;
use myelon::producer::CoordinationMode;
use myelon::transport::{
    FramedTransportConsumer, FramedTransportFrame, FramedTransportProducer, TransportError,
};
use myelon::{attach_shared_consumer, build_shared_single_producer, MultiProcessError};
use std::time::Duration;

const ATTACH_TIMEOUT: Duration = Duration::from_secs(20);

/// Bytes per second as GB/s (10^9).
fn gbps(bytes: f64, ns: f64) -> f64 {
    bytes / ns
}

/// Peer role for frames of `F`.
pub fn role<F: FramedTransportFrame>() -> String {
    format!("bulk-{}", F::DATA_BYTES)
}

/// How the consumer receives each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recv {
    /// `try_recv`: in place for one frame, reassembled (one copy) for several.
    Message,
    /// `recv_fragments_timeout`: every fragment read in place, no reassembly.
    Fragments,
}

fn source(size: usize) -> Vec<u8> {
    (0..size).map(|k| (k * 7 + 3) as u8).collect()
}

/// Sums every byte of `m` as little-endian words (vectorised), so every byte is read.
#[inline(never)]
fn read_all(m: &[u8]) -> u64 {
    let mut chunks = m.chunks_exact(8);
    let mut sum = 0u64;
    for c in &mut chunks {
        sum = sum.wrapping_add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
    }
    chunks
        .remainder()
        .iter()
        .fold(sum, |s, b| s.wrapping_add(u64::from(*b)))
}

/// Parent side: publishes `plan.bulk_messages` messages; returns GB/s as the consumer saw it.
pub fn run<F: FramedTransportFrame>(
    plan: &Plan,
    names: &mut Names,
    size: usize,
    capacity: usize,
    recv: Recv,
) -> BenchResult<f64> {
    let name = names.fresh("bulk");
    let mut producer = FramedTransportProducer::from_builder(
        build_shared_single_producer::<F>(&name, capacity)
            .with_consumer_id("c")
            .with_coordination(CoordinationMode::BufferUntilConsumers),
    )?
    .with_max_message_size(size);
    let n = plan.bulk_messages;
    let mode = if recv == Recv::Fragments {
        "fragments"
    } else {
        "message"
    };
    let args = [
        name,
        capacity.to_string(),
        n.to_string(),
        size.to_string(),
        mode.to_string(),
    ];
    let peer = Peer::spawn(&role::<F>(), plan.cpus.1, &args)?;
    let mut src = source(size);
    for i in 0..n {
        src[..8].copy_from_slice(&i.to_le_bytes());
        producer.publish(&src)?;
    }
    drop(producer);
    let out = peer.finish(plan.peer_timeout)?;
    let ns: f64 = out
        .split_whitespace()
        .nth(1)
        .ok_or("bulk peer printed no timing")?
        .parse()?;
    Ok(gbps(((n - 1) * size as u64) as f64, ns))
}

/// Consumer side: prints `elapsed_ns <ns>` for messages 1..n after reading every byte.
pub fn peer<F: FramedTransportFrame>(args: &[String]) -> BenchResult<()> {
    let [name, cap, n, size, mode] = args else {
        return Err("bulk peer: expected <name> <capacity> <messages> <size> <mode>".into());
    };
    let (cap, n, size): (usize, u64, usize) = (cap.parse()?, n.parse()?, size.parse()?);
    let mut consumer = FramedTransportConsumer::from_builder(
        attach_shared_consumer::<F>(name, cap)
            .with_consumer_id("c")
            .with_attach_timeout(ATTACH_TIMEOUT),
    )?
    .with_max_message_size(size);
    let clock = std::time::Instant::now();
    let mut start = None;
    let mut sink = 0u64;
    if mode == "fragments" {
        for i in 0..n {
            let (mut len, mut head) = (0usize, [0u8; 8]);
            consumer.recv_fragments_timeout(ATTACH_TIMEOUT, |b| {
                if len == 0 {
                    head.copy_from_slice(&b[..8]);
                }
                len += b.len();
                sink = sink.wrapping_add(read_all(b));
            })?;
            if i == 0 {
                start = Some(clock.elapsed());
            }
            if len != size || head != i.to_le_bytes() {
                return Err(format!("bulk: message {i} is wrong").into());
            }
        }
        let elapsed = clock.elapsed() - start.unwrap_or_default();
        std::hint::black_box(sink);
        println!("elapsed_ns {}", elapsed.as_nanos());
        return Ok(());
    }
    for i in 0..n {
        let m = loop {
            match consumer.try_recv() {
                Ok(Some(m)) => break m,
                Ok(None) => {}
                Err(TransportError::Ring(MultiProcessError::Closed)) => {
                    return Err(format!("stream closed after {i} of {n}").into())
                }
                Err(e) => return Err(e.into()),
            }
        };
        if i == 0 {
            start = Some(clock.elapsed());
        }
        if m.len() != size || m[..8] != i.to_le_bytes() {
            return Err(format!("bulk: message {i} is wrong").into());
        }
        sink = sink.wrapping_add(read_all(&m));
    }
    let elapsed = clock.elapsed() - start.unwrap_or_default();
    std::hint::black_box(sink);
    println!("elapsed_ns {}", elapsed.as_nanos());
    Ok(())
}

/// The bare two-thread handoff described in the module docs, GB/s as the reader saw it.
pub fn handoff_floor(cpus: (usize, usize), size: usize, capacity: usize, n: u64) -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    let slots: Arc<Vec<Mutex<Vec<u8>>>> =
        Arc::new((0..capacity).map(|_| Mutex::new(vec![0u8; size])).collect());
    let head = Arc::new(AtomicU64::new(0)); // messages written
    let tail = Arc::new(AtomicU64::new(0)); // messages read
    let reader = {
        let (slots, head, tail) = (Arc::clone(&slots), Arc::clone(&head), Arc::clone(&tail));
        std::thread::spawn(move || {
            crate::proc::pin(cpus.1);
            let mut sink = 0u64;
            let mut start = None;
            for i in 0..n {
                while head.load(Ordering::Acquire) <= i {
                    std::hint::spin_loop();
                }
                if i == 0 {
                    start = Some(std::time::Instant::now());
                }
                let slot = slots[(i as usize) % capacity].lock().expect("slot");
                sink = sink.wrapping_add(read_all(&slot));
                drop(slot);
                tail.store(i + 1, Ordering::Release);
            }
            std::hint::black_box(sink);
            start.map(|s| s.elapsed()).unwrap_or_default()
        })
    };
    crate::proc::pin(cpus.0);
    let src = source(size);
    for i in 0..n {
        while i - tail.load(Ordering::Acquire) >= capacity as u64 {
            std::hint::spin_loop();
        }
        slots[(i as usize) % capacity]
            .lock()
            .expect("slot")
            .copy_from_slice(&src);
        head.store(i + 1, Ordering::Release);
    }
    let elapsed = reader.join().expect("reader thread");
    gbps(((n - 1) * size as u64) as f64, elapsed.as_nanos() as f64)
}

/// Single-thread memcpy bandwidth over `capacity` rotating `size`-byte destinations, GB/s
/// (best of three passes of `passes` copies).
pub fn memcpy_floor(_clock: &Clock, size: usize, capacity: usize, passes: u64) -> f64 {
    let src = source(size);
    let mut dst = vec![vec![0u8; size]; capacity];
    let mut best = 0f64;
    for _ in 0..3 {
        let t0 = std::time::Instant::now();
        for i in 0..passes {
            let d = &mut dst[(i as usize) % capacity];
            d.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&d[0]);
        }
        let ns = t0.elapsed().as_nanos() as f64;
        best = best.max(gbps((passes * size as u64) as f64, ns));
    }
    best
}
