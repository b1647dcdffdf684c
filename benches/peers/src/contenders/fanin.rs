//! Fan-in: `producers` peer processes publish into one ring (or one iceoryx2 service) that the
//! driver consumes. The contender-independent parts live here: the start/stop gate, the event
//! layout, the producers' loop (as fast as possible, or paced) and the consumer's checks.
//!
//! * **Event** (64 bytes, 8 words): word 0 = the producer's index `i` (0, 1, ..), word 1 = the
//!   producer number `p`, word 2 = its `CLOCK_MONOTONIC` stamp in ns (latency rows; 0 in the
//!   throughput rows), words 3..7 = the source pattern, word 7 = `!i` (a torn event is caught).
//! * **Gate**: a small shared mapping under the run prefix. Each producer raises its `ready`
//!   word once its producer / publisher exists; the driver, once its consumer is attached and
//!   every producer is ready, raises `go`; producers publish, raise `finished`, then wait for
//!   `done` (sleeping) so that nothing they sent goes away with them before it is read.
//! * **Consumer** (the driver): per producer, the next index it expects; an event out of order,
//!   of an unknown producer, with a wrong tail or (myelon's multi-producer ring) a `source` that
//!   is not its producer's is an error. Everything must arrive; the row fails otherwise.
//! * **Throughput**: M events/s from the consumer's first event to its last.
//! * **Latency**: each producer publishes one event every [`PERIOD_NS`] (busy-waiting on the
//!   clock; a producer that fell behind, e.g. descheduled, does not burst to catch up), stamped
//!   just before its publish call; the consumer reads the clock as it takes the event: **one-way**
//!   latency, receive time − stamp, warm-up events not recorded.

// The workspace's clippy.toml sends shared-memory atomics through the transport's `sync` facade
// (crate-private, there so that loom models see them). The gate's words are the bench's own
// mapping, not a ring, and are never loom-modelled: std's atomics, deliberately.
#![allow(clippy::disallowed_types)]

use super::{arg, Ctx, Outcome, Work, ATTACH_TIMEOUT};
use crate::clock::monotonic_ns;
use crate::msg;
use crate::proc::{fresh_name, BenchResult, Peers};
use myelon::backend::{Region, RingBackend, ShmBackend, ShmRegion};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Ring depth (iceoryx2: subscriber buffer) of the fan-in rows.
pub const DEPTH: usize = 4096;
/// Words of one fan-in event (64 bytes).
pub const WORDS: usize = 8;
/// Latency rows: one event per producer every 20 µs.
pub const PERIOD_NS: u64 = 20_000;

const GATE_BYTES: usize = 4096;
const GO: usize = 0;
const DONE: usize = 1;
const READY: usize = 4;
const FINISHED: usize = 20;
/// Most producers the gate has words for.
const MAX_PRODUCERS: usize = 16;

/// The start/stop words shared by the driver and the producers.
pub struct Gate {
    region: ShmRegion,
    name: String,
    owner: bool,
}

impl Gate {
    fn create() -> BenchResult<Gate> {
        let name = fresh_name("g");
        let region = ShmBackend.create(&name, GATE_BYTES)?;
        // Mark the region finished (mode 0600) so the producers may open it.
        region.finish(0o600)?;
        Ok(Gate {
            region,
            name,
            owner: true,
        })
    }

    fn open(name: &str) -> BenchResult<Gate> {
        let region = super::retry(ATTACH_TIMEOUT, || Ok(ShmBackend.open(name)?))?;
        if region.len() < GATE_BYTES {
            return Err("fanin: gate region too small".into());
        }
        Ok(Gate {
            region,
            name: name.into(),
            owner: false,
        })
    }

    /// Word `k` (128 bytes apart: each on its own pair of cache lines).
    fn word(&self, k: usize) -> &AtomicU64 {
        assert!((k + 1) * 128 <= GATE_BYTES && self.region.len() >= GATE_BYTES);
        // SAFETY: `k * 128 + 8 <= region.len()` (asserted); the region is page aligned, so the
        // word is 8-aligned; zero-filled memory is a valid `AtomicU64`, only ever accessed
        // atomically (by every process), and the reference does not outlive `self.region`.
        unsafe { &*(self.region.as_ptr().add(k * 128) as *const AtomicU64) }
    }

    fn raise(&self, k: usize) {
        self.word(k).store(1, Ordering::Release);
    }

    fn is_up(&self, k: usize) -> bool {
        self.word(k).load(Ordering::Acquire) != 0
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if self.owner {
            let _ = ShmBackend.remove(&self.name);
        }
    }
}

/// How much one fan-in row does.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub producers: usize,
    pub latency: bool,
    /// Events per producer, warm-up included.
    pub per_producer: u64,
    /// Warm-up events per producer (latency rows: not recorded).
    pub warmup: u64,
}

impl Plan {
    /// Throughput: `ctx.events` in all (5M: 2.5M per producer of two). Latency: `ctx.iters`
    /// timed events in all after `ctx.warmup` warm-up ones, shared among the producers.
    pub fn new(ctx: &Ctx, producers: usize, latency: bool) -> Plan {
        let p = producers.max(1) as u64;
        let (events, warmup) = if latency {
            ((ctx.iters / p).max(10), ctx.warmup / p)
        } else {
            ((ctx.events / p).max(2), 0)
        };
        Plan {
            producers: producers.max(1),
            latency,
            per_producer: events + warmup,
            warmup,
        }
    }

    fn total(&self) -> u64 {
        self.per_producer * self.producers as u64
    }
}

/// The producers' CPUs: the first on the peer CPU, the second on the third `--cpus` entry (the
/// peer CPU again unless one was given).
pub fn producer_cpus(ctx: &Ctx, producers: usize) -> Vec<usize> {
    (0..producers)
        .map(|k| if k == 0 { ctx.cpus.1 } else { ctx.cpu2 })
        .collect()
}

/// Writes event `i` of producer `p` with clock stamp `stamp` into `dst` (8 words).
#[inline(always)]
pub fn fill(dst: &mut [u64], src: &[u64], p: u64, i: u64, stamp: u64) {
    dst.copy_from_slice(src);
    dst[0] = i;
    dst[1] = p;
    dst[2] = stamp;
    dst[WORDS - 1] = msg::tail_of(i);
}

/// The source pattern of every fan-in event.
pub fn source() -> Vec<u64> {
    msg::source(WORDS)
}

/// The consumer's checks and measurements.
pub struct Tally {
    plan: Plan,
    next: Vec<u64>,
    pub received: u64,
    errors: u64,
    first: Option<Instant>,
    one_way_ns: Vec<f64>,
}

impl Tally {
    fn new(plan: Plan) -> Tally {
        Tally {
            plan,
            next: vec![0; plan.producers],
            received: 0,
            errors: 0,
            first: None,
            one_way_ns: Vec::with_capacity(if plan.latency {
                plan.total() as usize
            } else {
                0
            }),
        }
    }

    /// Checks one event; `source` is the ring's producer id of it when the transport carries
    /// one (myelon's multi-producer ring: producer `p` publishes as `p + 1`).
    #[inline(always)]
    pub fn event(&mut self, source: Option<u64>, w: &[u64]) {
        let now = if self.plan.latency { monotonic_ns() } else { 0 };
        if self.received == 0 {
            self.first = Some(Instant::now());
        }
        self.received += 1;
        if w.len() != WORDS {
            self.errors += 1;
            return;
        }
        let (i, p) = (w[0], w[1]);
        let ok = (p as usize) < self.next.len()
            && self.next[p as usize] == i
            && w[WORDS - 1] == msg::tail_of(i)
            && source.is_none_or(|s| s == p + 1);
        if !ok {
            self.errors += 1;
            return;
        }
        self.next[p as usize] += 1;
        if self.plan.latency && i >= self.plan.warmup {
            self.one_way_ns.push(now.saturating_sub(w[2]) as f64);
        }
    }
}

/// The driver side of a fan-in row: starts the producers (`role` peers, one per producer, each
/// given `name`), attaches the consumer with `attach`, opens the gate, and calls `poll` (which
/// feeds what it receives to the tally) until every event has arrived.
pub fn drive<C>(
    ctx: &Ctx,
    work: Work,
    role: &str,
    name: &str,
    attach: impl FnOnce(&mut Peers) -> BenchResult<C>,
    mut poll: impl FnMut(&mut C, &mut Tally) -> BenchResult<()>,
) -> BenchResult<Outcome> {
    let Work::FanIn { producers, latency } = work else {
        return Err(format!("fanin: not a fan-in workload: {work:?}").into());
    };
    if producers == 0 || producers > MAX_PRODUCERS {
        return Err(format!("fanin: {producers} producers").into());
    }
    let plan = Plan::new(ctx, producers, latency);
    let gate = Gate::create()?;
    let mut peers = Peers::spawn(role, &producer_cpus(ctx, producers), |k| {
        let mut a = work.args();
        a.extend([
            name.to_string(),
            gate.name.clone(),
            k.to_string(),
            plan.per_producer.to_string(),
            plan.warmup.to_string(),
        ]);
        a
    })?;
    let mut c = attach(&mut peers)?;
    let deadline = Instant::now() + ATTACH_TIMEOUT;
    while !(0..producers).all(|k| gate.is_up(READY + k)) {
        peers.check_alive()?;
        if Instant::now() >= deadline {
            return Err(format!("{role}: the producers never became ready").into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut t = Tally::new(plan);
    let total = plan.total();
    gate.raise(GO);
    let mut all_finished: Option<Instant> = None;
    let mut empty = 0u32;
    while t.received < total {
        let before = t.received;
        poll(&mut c, &mut t)?;
        if t.received != before {
            continue;
        }
        empty = empty.wrapping_add(1);
        if !empty.is_multiple_of(1 << 16) {
            continue;
        }
        // Every 2^16 empty polls: is a producer gone, or has everything been sent long ago?
        peers.check_alive()?;
        if (0..producers).all(|k| gate.is_up(FINISHED + k)) {
            let at = *all_finished.get_or_insert_with(Instant::now);
            if at.elapsed() > Duration::from_secs(2) {
                return Err(format!(
                    "{role}: {} of {total} events received 2 s after every producer finished",
                    t.received
                )
                .into());
            }
        }
    }
    let secs = t.first.map_or(0.0, |f| f.elapsed().as_secs_f64()).max(1e-9);
    gate.raise(DONE);
    drop(c);
    peers.finish(ctx.peer_timeout)?;
    if t.errors != 0 {
        return Err(format!(
            "{role}: {} of {total} events out of order or wrong (expected next per producer: {:?})",
            t.errors, t.next
        )
        .into());
    }
    Ok(if latency {
        Outcome::OneWay(t.one_way_ns)
    } else {
        Outcome::Rate((total - 1) as f64 / secs)
    })
}

/// The arguments a fan-in producer gets after its workload: ring / service name, and its number.
pub struct ProducerArgs {
    pub name: String,
    pub producer: u64,
}

/// The peer side of a fan-in row: `build` makes the producer (given the ring / service name and
/// the producer number), `send(producer, i, stamp)` publishes event `i` with that stamp and says
/// whether it was delivered (only iceoryx2's first send may not be: its subscriber connects
/// lazily; that one is retried).
pub fn produce<P>(
    work: Work,
    args: &[String],
    build: impl FnOnce(&ProducerArgs) -> BenchResult<P>,
    mut send: impl FnMut(&mut P, u64, u64) -> BenchResult<bool>,
) -> BenchResult<()> {
    let Work::FanIn { latency, .. } = work else {
        return Err(format!("fanin: not a fan-in workload: {work:?}").into());
    };
    let pa = ProducerArgs {
        name: arg(args, 0)?,
        producer: arg(args, 2)?,
    };
    let gate_name: String = arg(args, 1)?;
    let (n, _warmup): (u64, u64) = (arg(args, 3)?, arg(args, 4)?);
    let k = pa.producer as usize;
    if k >= MAX_PRODUCERS {
        return Err(format!("fanin: producer {k}").into());
    }
    let gate = Gate::open(&gate_name)?;
    let mut p = build(&pa)?;
    gate.raise(READY + k);
    let deadline = Instant::now() + ATTACH_TIMEOUT;
    while !gate.is_up(GO) {
        if Instant::now() >= deadline {
            return Err("fanin: never started".into());
        }
        // Both producers may wait on the same CPU: let the other one run.
        std::thread::yield_now();
    }
    let first_deadline = Instant::now() + ATTACH_TIMEOUT;
    let mut one = |p: &mut P, i: u64, stamp: u64| -> BenchResult<()> {
        while !send(p, i, stamp)? {
            if i != 0 || Instant::now() >= first_deadline {
                return Err(format!("fanin: event {i} not delivered").into());
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        Ok(())
    };
    if latency {
        let mut next = monotonic_ns();
        for i in 0..n {
            let mut now = monotonic_ns();
            while now < next {
                std::hint::spin_loop();
                now = monotonic_ns();
            }
            one(&mut p, i, now)?;
            next += PERIOD_NS;
            if next < now {
                // Fell behind (descheduled): no burst to catch up.
                next = now + PERIOD_NS;
            }
        }
    } else {
        for i in 0..n {
            one(&mut p, i, 0)?;
        }
    }
    gate.raise(FINISHED + k);
    while !gate.is_up(DONE) {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(p);
    Ok(())
}
