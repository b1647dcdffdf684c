//! The contenders. Each module runs the same three workloads in its own way and provides the
//! peer side of each:
//!
//! * `pp <size>` — ping-pong: the driver sends a `size`-byte message (a copy of a source buffer
//!   with the trip number stamped in its first and last word), the peer echoes a copy back, the
//!   driver checks the echo's stamps. One sample = one round trip (RTT).
//! * `stream <depth>` — one-way stream of 64-byte events; the peer checks every event's sequence
//!   and stamps, and reports events/s from its first to its last event.
//! * `bulk <checksum|headtail>` — one-way 1 MiB messages; the peer sums every word and compares
//!   with the expected sum, or reads the head and tail words only; GB/s as the peer saw it.
//! * `fanin <producers> <tput|lat>` — fan-in (`fanin.rs`): `producers` peers publish 64-byte
//!   events into one ring that the driver consumes, as fast as they can (M events/s) or one
//!   every 20 µs each (one-way latency). Only `myelon_mp`, `iceoryx2` and, with one producer,
//!   `myelon_raw` run it.

pub mod fanin;
pub mod floor;
pub mod iceoryx;
pub mod myelon_framed;
pub mod myelon_mp;
pub mod myelon_raw;
pub mod published_framed;
pub mod published_raw;
pub mod uds;

use crate::clock::Clock;
use crate::proc::BenchResult;
use std::time::Duration;

/// Bytes of one stream event.
pub const EVENT_BYTES: usize = 64;
/// Bytes of one bulk message.
pub const BULK_BYTES: usize = 1 << 20;
/// How long either side waits for the other to appear.
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(20);

/// How much every row does.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub clock: Clock,
    pub cpus: (usize, usize),
    /// The second fan-in producer's CPU (the peer CPU unless `--cpus` names a third).
    pub cpu2: usize,
    pub warmup: u64,
    pub iters: u64,
    pub events: u64,
    pub bulk_messages: u64,
    pub bulk_depth: usize,
    pub peer_timeout: Duration,
}

impl Ctx {
    /// Round trips (warm-up, timed) for a ping-pong of `size` bytes: 64 KiB does a tenth.
    pub fn trips(&self, size: usize) -> (u64, u64) {
        if size >= 65536 {
            ((self.warmup / 10).max(10), (self.iters / 10).max(100))
        } else {
            (self.warmup, self.iters)
        }
    }
}

/// Ring depth of the ping-pong rows: 1024 slots, fewer for large messages (8 MiB of slots).
pub fn pingpong_depth(size: usize) -> usize {
    ((8 << 20) / size).clamp(16, 1024)
}

/// One workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    PingPong {
        size: usize,
    },
    Stream {
        depth: usize,
    },
    Bulk {
        checksum: bool,
    },
    /// `producers` processes into one ring; throughput, or paced one-way latency.
    FanIn {
        producers: usize,
        latency: bool,
    },
}

impl Work {
    /// The arguments that tell a peer which workload it serves.
    pub fn args(&self) -> Vec<String> {
        match *self {
            Work::PingPong { size } => vec!["pp".into(), size.to_string()],
            Work::Stream { depth } => vec!["stream".into(), depth.to_string()],
            Work::Bulk { checksum } => vec![
                "bulk".into(),
                if checksum { "checksum" } else { "headtail" }.into(),
            ],
            Work::FanIn { producers, latency } => vec![
                "fanin".into(),
                producers.to_string(),
                if latency { "lat" } else { "tput" }.into(),
            ],
        }
    }

    /// Parses [`Work::args`]; returns the workload and the remaining arguments.
    pub fn parse(args: &[String]) -> BenchResult<(Work, &[String])> {
        match args {
            [k, v, rest @ ..] if k == "pp" => Ok((Work::PingPong { size: v.parse()? }, rest)),
            [k, v, rest @ ..] if k == "stream" => Ok((Work::Stream { depth: v.parse()? }, rest)),
            [k, v, rest @ ..] if k == "bulk" => Ok((
                Work::Bulk {
                    checksum: v == "checksum",
                },
                rest,
            )),
            [k, n, m, rest @ ..] if k == "fanin" => Ok((
                Work::FanIn {
                    producers: n.parse()?,
                    latency: m == "lat",
                },
                rest,
            )),
            _ => Err(format!("bad workload arguments {args:?}").into()),
        }
    }
}

/// What one run of one row measured.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Round-trip times, ns.
    Latency(Vec<f64>),
    /// One-way latencies (receive time − send stamp, `CLOCK_MONOTONIC`), ns.
    OneWay(Vec<f64>),
    /// Events per second.
    Rate(f64),
    /// GB/s (10^9 bytes per second).
    Bandwidth(f64),
}

/// The contenders, in the order they are interleaved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    /// Cache line ping-pong (latency floor) or single-thread memcpy (bandwidth floor).
    Floor,
    MyelonRaw,
    MyelonFramed,
    PublishedRaw,
    PublishedFramed,
    Iceoryx2,
    Uds,
    /// This tree's multi-producer ring (fan-in rows only).
    MyelonMp,
    /// The message floor (`floor.rs`, 64 B and 1 KiB): the payload's lines and a separate flag
    /// line per direction, the least any transport moves that keeps the payload whole.
    FloorMsg,
}

/// Last, so that the existing contenders keep their order and their plot colours.
pub const ALL: [Contender; 9] = [
    Contender::Floor,
    Contender::MyelonRaw,
    Contender::MyelonFramed,
    Contender::PublishedRaw,
    Contender::PublishedFramed,
    Contender::Iceoryx2,
    Contender::Uds,
    Contender::MyelonMp,
    Contender::FloorMsg,
];

/// The fan-in rows' order: the single-producer ring (one producer only), the multi-producer
/// ring, iceoryx2.
pub const FANIN_ORDER: [Contender; 3] = [
    Contender::MyelonRaw,
    Contender::MyelonMp,
    Contender::Iceoryx2,
];

impl Contender {
    pub fn name(&self) -> &'static str {
        match self {
            Contender::Floor => "floor",
            Contender::MyelonRaw => "myelon_raw",
            Contender::MyelonFramed => "myelon_framed",
            Contender::PublishedRaw => "published_raw",
            Contender::PublishedFramed => "published_framed",
            Contender::Iceoryx2 => "iceoryx2",
            Contender::Uds => "uds",
            Contender::MyelonMp => "myelon_mp",
            Contender::FloorMsg => "floor_msg",
        }
    }

    pub fn from_name(name: &str) -> Option<Contender> {
        ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether this contender takes part in `work` (the floor has no stream; a socket has no
    /// ring depth, so it runs the stream once, at the first depth). Fan-in: the multi-producer
    /// ring and iceoryx2, and the single-producer ring as the one-producer reference.
    pub fn supports(&self, work: Work, first_depth: usize) -> bool {
        match (self, work) {
            (Contender::MyelonMp | Contender::Iceoryx2, Work::FanIn { .. }) => true,
            (Contender::MyelonRaw, Work::FanIn { producers, .. }) => producers == 1,
            (_, Work::FanIn { .. }) | (Contender::MyelonMp, _) => false,
            (Contender::Floor, Work::Stream { .. }) => false,
            (Contender::FloorMsg, work) => {
                matches!(
                    work,
                    Work::PingPong { size: 64 } | Work::PingPong { size: 1024 }
                )
            }
            (Contender::MyelonFramed | Contender::PublishedFramed, Work::PingPong { size: 56 }) => {
                false
            }
            (Contender::Uds, Work::Stream { depth }) => depth == first_depth,
            _ => true,
        }
    }

    /// Runs one measurement (driver side).
    pub fn run(&self, ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
        match self {
            Contender::Floor => floor::run(ctx, work),
            Contender::MyelonRaw => myelon_raw::run(ctx, work),
            Contender::MyelonFramed => myelon_framed::run(ctx, work),
            Contender::PublishedRaw => published_raw::run(ctx, work),
            Contender::PublishedFramed => published_framed::run(ctx, work),
            Contender::Iceoryx2 => iceoryx::run(ctx, work),
            Contender::Uds => uds::run(ctx, work),
            Contender::MyelonMp => myelon_mp::run(ctx, work),
            Contender::FloorMsg => floor::run_msg(ctx, work),
        }
    }

    /// Runs the peer side of `work`.
    pub fn peer(&self, work: Work, args: &[String]) -> BenchResult<()> {
        match self {
            Contender::Floor => floor::peer(work, args),
            Contender::MyelonRaw => myelon_raw::peer(work, args),
            Contender::MyelonFramed => myelon_framed::peer(work, args),
            Contender::PublishedRaw => published_raw::peer(work, args),
            Contender::PublishedFramed => published_framed::peer(work, args),
            Contender::Iceoryx2 => iceoryx::peer(work, args),
            Contender::Uds => uds::peer(work, args),
            Contender::MyelonMp => myelon_mp::peer(work, args),
            Contender::FloorMsg => floor::peer_msg(work, args),
        }
    }
}

/// Polls `ready` until it yields; every 2^16 empty polls runs `check` (is the peer alive?).
#[inline(always)]
pub fn spin_until<T>(
    mut ready: impl FnMut() -> BenchResult<Option<T>>,
    mut check: impl FnMut() -> BenchResult<()>,
) -> BenchResult<T> {
    let mut polls = 0u32;
    loop {
        if let Some(v) = ready()? {
            return Ok(v);
        }
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(1 << 16) {
            check()?;
        }
    }
}

/// Retries `f` (e.g. attaching to a ring the other side has not created yet) until `timeout`.
pub fn retry<T>(timeout: Duration, mut f: impl FnMut() -> BenchResult<T>) -> BenchResult<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if std::time::Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// The consumer side's report of a stream: `events= errors= secs=`, `secs` from the first event
/// received to the last.
pub struct StreamTally {
    pub expected: u64,
    pub errors: u64,
    first: Option<std::time::Instant>,
}

impl StreamTally {
    pub fn new() -> StreamTally {
        StreamTally {
            expected: 0,
            errors: 0,
            first: None,
        }
    }

    /// Checks event `seq` (its position in the stream) carrying `words`.
    #[inline(always)]
    pub fn check_words(&mut self, words: &[u64]) {
        if !crate::msg::carries(words, self.expected) {
            self.errors += 1;
        }
        self.after_event();
    }

    /// As [`StreamTally::check_words`], for bytes.
    #[inline(always)]
    pub fn check_bytes(&mut self, b: &[u8]) {
        if b.len() != EVENT_BYTES || !crate::msg::carries_bytes(b, self.expected) {
            self.errors += 1;
        }
        self.after_event();
    }

    #[inline(always)]
    fn after_event(&mut self) {
        if self.expected == 0 {
            self.first = Some(std::time::Instant::now());
        }
        self.expected += 1;
    }

    /// Prints the report line.
    pub fn print(&self) {
        let secs = self.first.map_or(0.0, |t| t.elapsed().as_secs_f64());
        println!(
            "events={} errors={} secs={}",
            self.expected,
            self.errors,
            secs.max(1e-9)
        );
    }
}

/// The driver's reading of a stream report: events/s over events 1..n.
pub fn stream_rate(out: &str, n: u64) -> BenchResult<f64> {
    let (events, errors) = (
        crate::proc::field(out, "events")? as u64,
        crate::proc::field(out, "errors")? as u64,
    );
    if events != n || errors != 0 {
        return Err(format!("stream: {events} of {n} events received, {errors} wrong").into());
    }
    Ok((n - 1) as f64 / crate::proc::field(out, "secs")?)
}

/// The consumer side of a bulk run: checks message `i` (its words or bytes) and times the run
/// from the first message to the last.
pub struct BulkTally {
    pub checksum: bool,
    pub inner: u64,
    pub received: u64,
    pub errors: u64,
    first: Option<std::time::Instant>,
}

impl BulkTally {
    pub fn new(checksum: bool) -> BulkTally {
        let src = crate::msg::source(BULK_BYTES / 8);
        BulkTally {
            checksum,
            inner: crate::msg::inner_sum(&src),
            received: 0,
            errors: 0,
            first: None,
        }
    }

    #[inline(always)]
    pub fn check_words(&mut self, w: &[u64]) {
        let i = self.received;
        let ok = if self.checksum {
            crate::msg::checksum(w) == crate::msg::expected_sum(self.inner, i)
        } else {
            crate::msg::carries(w, i)
        };
        self.after(ok && w.len() * 8 == BULK_BYTES);
    }

    #[inline(always)]
    pub fn check_bytes(&mut self, b: &[u8]) {
        let i = self.received;
        let ok = if self.checksum {
            crate::msg::checksum_bytes(b) == crate::msg::expected_sum(self.inner, i)
        } else {
            crate::msg::carries_bytes(b, i)
        };
        self.after(ok && b.len() == BULK_BYTES);
    }

    #[inline(always)]
    fn after(&mut self, ok: bool) {
        if !ok {
            self.errors += 1;
        }
        if self.received == 0 {
            self.first = Some(std::time::Instant::now());
        }
        self.received += 1;
    }

    pub fn print(&self) {
        let secs = self.first.map_or(0.0, |t| t.elapsed().as_secs_f64());
        println!(
            "events={} errors={} secs={}",
            self.received,
            self.errors,
            secs.max(1e-9)
        );
    }
}

/// The driver's reading of a bulk report: GB/s over messages 1..n.
pub fn bulk_gbps(out: &str, n: u64) -> BenchResult<f64> {
    let rate = stream_rate(out, n)?;
    Ok(rate * BULK_BYTES as f64 / 1e9)
}

/// Parses `key` arguments of a peer: `[name..]` then numbers.
pub fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> BenchResult<T>
where
    T::Err: std::error::Error + 'static,
{
    Ok(args
        .get(i)
        .ok_or_else(|| format!("peer: missing argument {i} in {args:?}"))?
        .parse::<T>()?)
}
