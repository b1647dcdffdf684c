//! One-way stream throughput of 64-byte events.
//!
//! The parent publishes `events` events as fast as it can, with `publish` (one per call) or
//! `publish_batch` (`batch` per call), filling every word (word `k` = `seq + k`). The peer
//! consumes with `try_consume_batch`, checking every event's sequence and its first and last
//! words. The producer starts once the consumer is attached.
//!
//! The consumer reports two rates: the overall one, from the first batch it receives to the
//! last event (the events of the first batch are not counted), and the best rate over windows
//! of [`WINDOW`] events, which a descheduling of either process (the machine is shared) does
//! not drag down. Window boundaries are timed with the benchmark clock, whose calibration the
//! parent hands over (the TSC is invariant and shared by both CPUs).

use crate::clock::Clock;
use crate::events::{Ev64, Payload};
use crate::proc::{BenchResult, Names, Peer};
use crate::Plan;
use myelon::producer::CoordinationMode;
use myelon::{attach_shared_consumer, build_shared_single_producer, MultiProcessError};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

const CONSUMER_ID: &str = "stream";
/// Role name of the consuming peer.
pub const ROLE: &str = "stream";
/// How often the parent checks that the consumer is alive while publishing.
const WATCH_INTERVAL: Duration = Duration::from_millis(10);
/// Events per throughput window.
const WINDOW: u64 = 1 << 20;

/// How the producer publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `publish`, one event per call.
    Publish,
    /// `publish_batch` of this many events per call.
    Batch(usize),
}

impl Mode {
    /// Short name for tables and result lines.
    pub fn name(&self) -> String {
        match self {
            Mode::Publish => "publish".to_string(),
            Mode::Batch(n) => format!("batch{n}"),
        }
    }
}

/// What one stream run measured.
#[derive(Debug, Clone, Copy)]
pub struct StreamStats {
    /// Events received and checked.
    pub events: u64,
    /// Events per second on the consumer, first batch to last event.
    pub consumer_rate: f64,
    /// Best events per second over windows of [`WINDOW`] events (0 if the run is shorter).
    pub window_rate: f64,
    /// Events per second on the producer, first publish to last.
    pub producer_rate: f64,
    /// Mean events per non-empty `try_consume_batch`.
    pub mean_batch: f64,
}

fn publish_all(producer: &mut myelon::SharedProducer<Ev64>, n: u64, mode: Mode) {
    match mode {
        Mode::Publish => {
            for i in 0..n {
                producer.publish(|e| e.fill(i));
            }
        }
        Mode::Batch(b) => {
            let mut i = 0;
            while i < n {
                let k = (b as u64).min(n - i);
                producer.publish_batch(k as usize, |j, e| e.fill(i + j as u64));
                i += k;
            }
        }
    }
}

/// Publishes on a thread of its own (it inherits this thread's CPU) while this thread watches
/// the peer: `publish` waits for space indefinitely (strict broadcast), so a consumer that dies
/// would otherwise hang the benchmark. On that error the blocked thread is left behind; the
/// process exits soon after, and the segment name is removed by [`Names`]. Returns the
/// producer's elapsed seconds; the producer is dropped (the stream closed) on its thread.
fn publish_watched(
    mut producer: myelon::SharedProducer<Ev64>,
    n: u64,
    mode: Mode,
    peer: &mut Peer,
) -> BenchResult<f64> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("publisher".into())
        .spawn(move || {
            let start = Instant::now();
            publish_all(&mut producer, n, mode);
            let secs = start.elapsed().as_secs_f64();
            drop(producer);
            let _ = tx.send(secs);
        })?;
    loop {
        match rx.recv_timeout(WATCH_INTERVAL) {
            Ok(secs) => return Ok(secs),
            Err(RecvTimeoutError::Timeout) => peer.check_alive()?,
            Err(RecvTimeoutError::Disconnected) => return Err("publisher thread panicked".into()),
        }
    }
}

/// Parent side (producer).
pub fn run(
    clock: &Clock,
    plan: &Plan,
    names: &mut Names,
    capacity: usize,
    mode: Mode,
) -> BenchResult<StreamStats> {
    let name = names.fresh("stream");
    let n = plan.events;
    let producer = build_shared_single_producer::<Ev64>(&name, capacity)
        .with_consumer_id(CONSUMER_ID)
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .build_producer(Ev64::default)?;
    let max = plan.consume_batch.unwrap_or(capacity / 4).max(1);
    let args = [
        name,
        capacity.to_string(),
        n.to_string(),
        max.to_string(),
        clock.ns_per_tick().to_string(),
    ];
    let mut peer = Peer::spawn(ROLE, plan.cpus.1, &args)?;
    while producer.consumers().iter().any(|c| !c.attached) {
        peer.check_alive()?;
        std::thread::sleep(Duration::from_millis(1));
    }
    let producer_secs = publish_watched(producer, n, mode, &mut peer)?;
    let out = peer.finish(plan.peer_timeout)?;
    let field = |key: &str| -> BenchResult<f64> {
        out.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .ok_or_else(|| format!("stream peer printed no {key}: {out:?}"))?
            .parse::<f64>()
            .map_err(Into::into)
    };
    let (events, errors) = (field("events")? as u64, field("errors")? as u64);
    if errors != 0 || events != n {
        return Err(format!("stream: {events} of {n} events received, {errors} wrong").into());
    }
    Ok(StreamStats {
        events,
        consumer_rate: field("counted")? / field("secs")?,
        window_rate: field("window_rate")?,
        producer_rate: n as f64 / producer_secs,
        mean_batch: events as f64 / field("batches")?.max(1.0),
    })
}

/// Window bookkeeping of the consumer: timestamps at every [`WINDOW`] events.
struct Windows {
    next_mark: u64,
    last: Option<(u64, u64)>,
    best_ticks: u64,
}

impl Windows {
    fn new() -> Windows {
        Windows {
            next_mark: 0,
            last: None,
            best_ticks: u64::MAX,
        }
    }

    #[inline]
    fn after_batch(&mut self, clock: &Clock, received: u64) {
        if received < self.next_mark {
            return;
        }
        let now = clock.now();
        if let Some((at, t)) = self.last {
            let per_window = now.wrapping_sub(t) as u128 * WINDOW as u128 / (received - at) as u128;
            self.best_ticks = self.best_ticks.min(per_window as u64);
        }
        self.last = Some((received, now));
        self.next_mark = received + WINDOW;
    }

    fn best_rate(&self, clock: &Clock) -> f64 {
        match self.best_ticks {
            u64::MAX => 0.0,
            t => WINDOW as f64 * 1e9 / clock.ns(t.max(1)),
        }
    }
}

/// Peer side (consumer): prints `events= counted= secs= window_rate= errors= batches=`.
pub fn peer(args: &[String]) -> BenchResult<()> {
    let [name, cap, n, max, ns_per_tick] = args else {
        return Err(
            "stream peer: expected <name> <capacity> <events> <max batch> <ns/tick>".into(),
        );
    };
    let (cap, n, max): (usize, u64, usize) = (cap.parse()?, n.parse()?, max.parse()?);
    let clock = Clock::with_ns_per_tick(ns_per_tick.parse()?);
    let mut consumer = attach_shared_consumer::<Ev64>(name, cap)
        .with_consumer_id(CONSUMER_ID)
        .build_consumer()?;
    let pause = crate::spin::pause();
    let (mut expected, mut errors, mut batches) = (0u64, 0u64, 0u64);
    let mut first: Option<(Instant, u64)> = None;
    let mut windows = Windows::new();
    while expected < n {
        let got = consumer.try_consume_batch(max, |e, seq, _| {
            if seq as u64 != expected || !e.carries(expected) {
                errors += 1;
            }
            expected += 1;
        });
        match got {
            Ok(0) if pause => std::hint::spin_loop(),
            Ok(0) => {}
            Ok(_) => {
                batches += 1;
                windows.after_batch(&clock, expected);
                if first.is_none() {
                    first = Some((Instant::now(), expected));
                }
            }
            Err(MultiProcessError::Closed) => break,
            Err(e) => return Err(e.into()),
        }
    }
    let last = Instant::now();
    let (t0, before) = first.ok_or("stream peer: no event received")?;
    println!(
        "events={expected} counted={} secs={} window_rate={} errors={errors} batches={batches}",
        expected - before,
        (last - t0).as_secs_f64().max(1e-9),
        windows.best_rate(&clock),
    );
    Ok(())
}
