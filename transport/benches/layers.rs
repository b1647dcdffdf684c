//! Layers 1–3 benchmark, against Layer 0 and memcpy floors measured in the same run, between
//! two busy-spinning processes pinned to two CPUs (the Layer 0 benchmark's process, pinning,
//! clock and ping-pong modules are reused as they are).
//!
//! ```text
//! cargo bench -p myelon --features rkyv --bench layers [-- --quick] [--iters N] [--messages N]
//! ```
//!
//! Rows:
//! * `pingpong_64` — raw Layer 0 ping-pong of a 64-byte event (the baseline);
//! * `framed_pingpong_64` / `_1024` / `_65536` — framed ping-pong of 64 B, 1 KiB (each in one
//!   frame, read in place) and 64 KiB (16 fragments of 4 KiB frames, reassembled);
//! * `memcpy` — single-thread copy bandwidth over the same working set as the ring;
//! * `handoff` — the same 1 MiB pipeline without myelon (two threads, heap buffers): what the
//!   hardware gives when every byte crosses between the two cores' caches;
//! * `bulk_1MiB_frame1MiB` / `bulk_1MiB_frame64KiB` — one-way 1 MiB messages, producer copying
//!   every byte in, consumer reading every byte, as one frame or 16 fragments (reassembled);
//!   `bulk_1MiB_frame64KiB_fragments` reads the 16 fragments in place
//!   (`recv_fragments_timeout`, no reassembly copy);
//! * `rkyv_access` / `rkyv_decode` — ns per validated in-place access vs full decode.
//!
//! Targets: framed 64 B p50 ≤ 1.3× raw 64 B p50; 1 MiB ≥ 0.7× memcpy; access < decode / 4.

// The floors this benchmark measures against are bare std atomics on purpose (no ring, no
// facade), and its flags are process-local: `clippy.toml`'s rule on shared-memory atomics is
// for the library.
#![allow(clippy::disallowed_types)]

#[path = "layer0/clock.rs"]
#[allow(dead_code)]
mod clock;
#[path = "layer0/events.rs"]
#[allow(dead_code)]
mod events;
#[path = "layer0/pingpong.rs"]
#[allow(dead_code)]
mod pingpong;
#[path = "layer0/proc.rs"]
#[allow(dead_code)]
mod proc;
#[path = "layer0/spin.rs"]
#[allow(dead_code)]
mod spin;

#[path = "layers/bulk.rs"]
mod bulk;
#[path = "layers/framed_pingpong.rs"]
mod framed_pingpong;
#[path = "layers/zerocopy.rs"]
mod zerocopy;

use clock::{Clock, Stats};
use events::Ev64;
use myelon::transport::FixedFrame;
use proc::{BenchResult, Names};
use std::process::ExitCode;
use std::time::Duration;

/// 64-byte payload frames (76-byte frame: the slot is two lines, as for a raw 64-byte event).
type F64 = FixedFrame<64>;
/// 1 KiB payload frames.
type F1K = FixedFrame<1024>;
/// 4 KiB frames (4084 payload bytes + 12).
type F4K = FixedFrame<{ 4096 - 12 }>;
/// 64 KiB frames.
type F64K = FixedFrame<{ 64 * 1024 }>;
/// 1 MiB frames.
type F1M = FixedFrame<{ 1024 * 1024 }>;

const MIB: usize = 1024 * 1024;

/// What to measure and how much (the field names the reused Layer 0 modules read).
#[derive(Debug, Clone)]
pub struct Plan {
    pub warmup: u64,
    pub iters: u64,
    pub pingpong_capacity: usize,
    pub cpus: (usize, usize),
    pub peer_timeout: Duration,
    pub bulk_messages: u64,
    pub decode_iters: u64,
    pub bulk_capacity: usize,
    pub runs: usize,
    pub only: Vec<String>,
}

const USAGE: &str = "\
usage: layers [--quick] [--iters N] [--warmup N] [--messages N] [--cpus A,B] [--only P,..]
  --quick       100k round trips, 2k bulk messages
  --iters N     timed round trips per ping-pong row (default 1000000)
  --messages N  1 MiB messages per bulk row (default 10000)
  --runs R      repeat everything R times; each row shows its median with min..max beside
                it (p50 ns, GB/s, ns per op), floors included, and each run's ratios are printed
  --bulk-capacity N  ring depth of the bulk rows, in 1 MiB messages (default 4)
  --cpus A,B    CPUs of this process and of the peer (default: first two allowed)
  --only P,..   rows whose name starts with a prefix: pingpong framed memcpy handoff bulk rkyv";

fn parse_plan(args: &[String]) -> Result<Plan, String> {
    let mut plan = Plan {
        warmup: 50_000,
        iters: 1_000_000,
        pingpong_capacity: 1024,
        cpus: proc::default_cpus(),
        peer_timeout: Duration::from_secs(120),
        bulk_messages: 10_000,
        decode_iters: 1_000_000,
        bulk_capacity: 4,
        runs: 1,
        only: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        let num = |v: &String| v.parse::<u64>().map_err(|e| format!("{a} {v}: {e}"));
        match a.as_str() {
            "--bench" => {}
            "--quick" => {
                plan.warmup = 10_000;
                plan.iters = 100_000;
                plan.bulk_messages = 2_000;
                plan.decode_iters = 200_000;
            }
            "--iters" => plan.iters = num(value()?)?.max(1),
            "--warmup" => plan.warmup = num(value()?)?,
            "--messages" => plan.bulk_messages = num(value()?)?.max(2),
            "--runs" => plan.runs = num(value()?)?.max(1) as usize,
            "--bulk-capacity" => plan.bulk_capacity = num(value()?)?.max(1) as usize,
            "--cpus" => {
                let v: Vec<usize> = value()?
                    .split(',')
                    .map(|x| x.parse().map_err(|e| format!("--cpus: {e}")))
                    .collect::<Result<_, _>>()?;
                match v.as_slice() {
                    [x, y] => plan.cpus = (*x, *y),
                    _ => return Err("--cpus takes two CPUs: A,B".into()),
                }
            }
            "--only" => plan.only = value()?.split(',').map(str::to_string).collect(),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(plan)
}

impl Plan {
    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| name.starts_with(p.as_str()))
    }
}

/// Results of one or more runs (every run's value kept), printed as a table of medians with the
/// min and max beside them; the targets are judged on the medians.
#[derive(Default)]
struct Results {
    latency: Vec<(String, Vec<Stats>)>,
    bandwidth: Vec<(String, Vec<f64>)>,
    per_op: Vec<(String, Vec<f64>)>,
}

fn push<T>(rows: &mut Vec<(String, Vec<T>)>, name: &str, v: T) {
    match rows.iter_mut().find(|(n, _)| n == name) {
        Some((_, all)) => all.push(v),
        None => rows.push((name.to_string(), vec![v])),
    }
}

/// The median (mean of the two middle values for an even count).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn spread(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if v.len() < 2 {
        "-".to_string()
    } else if hi >= 100.0 {
        format!("{lo:.0}..{hi:.0}")
    } else {
        format!("{lo:.2}..{hi:.2}")
    }
}

impl Results {
    fn push_lat(&mut self, name: &str, s: Stats) {
        push(&mut self.latency, name, s);
    }
    fn push_bw(&mut self, name: &str, v: f64) {
        push(&mut self.bandwidth, name, v);
    }
    fn push_op(&mut self, name: &str, v: f64) {
        push(&mut self.per_op, name, v);
    }

    fn merge(&mut self, other: Results) {
        for (n, all) in other.latency {
            for s in all {
                self.push_lat(&n, s);
            }
        }
        for (n, all) in other.bandwidth {
            for v in all {
                self.push_bw(&n, v);
            }
        }
        for (n, all) in other.per_op {
            for v in all {
                self.push_op(&n, v);
            }
        }
    }

    /// One line with this run's ratios (the spread across runs).
    fn print_ratios(&self, run: usize) {
        let ratio = |a: Option<f64>, b: Option<f64>| {
            a.zip(b)
                .map_or("-".to_string(), |(a, b)| format!("{:.2}", a / b))
        };
        let p50 = |n: &str| self.p50(n);
        println!(
            "run {run}: framed64/raw64 p50 {}, bulk1MiB/memcpy {} (64KiB frames {}, in place {}), handoff/memcpy {}, access/decode {}",
            ratio(p50("framed_pingpong_64"), p50("pingpong_64")),
            ratio(self.bw("bulk_1MiB_frame1MiB"), self.bw("memcpy_1MiB")),
            ratio(self.bw("bulk_1MiB_frame64KiB"), self.bw("memcpy_1MiB")),
            ratio(self.bw("bulk_1MiB_frame64KiB_fragments"), self.bw("memcpy_1MiB")),
            ratio(self.bw("handoff_1MiB"), self.bw("memcpy_1MiB")),
            ratio(self.op("rkyv_access"), self.op("rkyv_decode")),
        );
    }

    /// Median p50 of a latency row over runs.
    fn p50(&self, name: &str) -> Option<f64> {
        let all = &self.latency.iter().find(|(n, _)| n == name)?.1;
        Some(median(&all.iter().map(|s| s.p50).collect::<Vec<_>>()))
    }
    /// Median of a bandwidth row over runs.
    fn bw(&self, name: &str) -> Option<f64> {
        let all = &self.bandwidth.iter().find(|(n, _)| n == name)?.1;
        Some(median(all))
    }
    /// Median of a per-operation row over runs.
    fn op(&self, name: &str) -> Option<f64> {
        let all = &self.per_op.iter().find(|(n, _)| n == name)?.1;
        Some(median(all))
    }

    fn print(&self) -> bool {
        println!(
            "\n{:<26} {:>10} {:>13} {:>10} {:>10} {:>10}",
            "latency (round trip)",
            "p50 ns med",
            "p50 min..max",
            "p99 med",
            "p99.9 med",
            "mean med"
        );
        for (n, all) in &self.latency {
            let col = |f: fn(&Stats) -> f64| all.iter().map(f).collect::<Vec<_>>();
            println!(
                "{n:<26} {:>10.0} {:>13} {:>10.0} {:>10.0} {:>10.0}",
                median(&col(|s| s.p50)),
                spread(&col(|s| s.p50)),
                median(&col(|s| s.p99)),
                median(&col(|s| s.p999)),
                median(&col(|s| s.mean)),
            );
        }
        println!(
            "\n{:<26} {:>10} {:>13}",
            "bandwidth", "GB/s med", "min..max"
        );
        for (n, all) in &self.bandwidth {
            println!("{n:<26} {:>10.2} {:>13}", median(all), spread(all));
        }
        println!(
            "\n{:<26} {:>10} {:>13}",
            "per operation", "ns med", "min..max"
        );
        for (n, all) in &self.per_op {
            println!("{n:<26} {:>10.1} {:>13}", median(all), spread(all));
        }
        println!("\ntargets:");
        let mut all = true;
        let mut target =
            |what: &str, ratio: Option<f64>, ok: fn(f64) -> bool, bound: &str| match ratio {
                Some(r) => {
                    let pass = ok(r);
                    all &= pass;
                    println!(
                        "  {what:<46} {r:>6.2} ({bound}) {}",
                        if pass { "met" } else { "MISSED" }
                    );
                }
                None => println!("  {what:<46}      - (not measured)"),
            };
        let raw = self.p50("pingpong_64");
        let framed = self.p50("framed_pingpong_64");
        target(
            "framed 64 B p50 / raw 64 B p50",
            framed.zip(raw).map(|(f, r)| f / r),
            |r| r <= 1.3,
            "<= 1.30",
        );
        let memcpy = self.bw("memcpy_1MiB");
        for row in [
            "bulk_1MiB_frame1MiB",
            "bulk_1MiB_frame64KiB",
            "bulk_1MiB_frame64KiB_fragments",
        ] {
            target(
                &format!("{row} / memcpy"),
                self.bw(row).zip(memcpy).map(|(b, m)| b / m),
                |r| r >= 0.7,
                ">= 0.70",
            );
        }
        let handoff = self.bw("handoff_1MiB");
        let show = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}"));
        println!(
            "  (context) bare two-thread handoff / memcpy: {}",
            show(handoff.zip(memcpy).map(|(h, m)| h / m))
        );
        for row in [
            "bulk_1MiB_frame1MiB",
            "bulk_1MiB_frame64KiB",
            "bulk_1MiB_frame64KiB_fragments",
        ] {
            let r = self.bw(row).zip(handoff).map(|(b, h)| b / h);
            println!("  (context) {row} / bare handoff: {}", show(r));
        }
        let ratio = self
            .op("rkyv_access")
            .zip(self.op("rkyv_decode"))
            .map(|(a, d)| a / d);
        target("rkyv access / full decode", ratio, |r| r < 0.25, "< 0.25");
        all
    }
}

fn latency_rows(clock: &Clock, plan: &Plan, r: &mut Results) -> BenchResult<()> {
    let mut names = Names::new();
    type Row = fn(&Clock, &Plan, &mut Names) -> BenchResult<Stats>;
    let rows: [(&str, Row); 4] = [
        ("pingpong_64", pingpong::run::<Ev64>),
        ("framed_pingpong_64", |c, p, n| {
            framed_pingpong::run::<F64>(c, p, n, 64)
        }),
        ("framed_pingpong_1024", |c, p, n| {
            framed_pingpong::run::<F1K>(c, p, n, 1024)
        }),
        ("framed_pingpong_65536", |c, p, n| {
            let p = Plan {
                pingpong_capacity: 256,
                iters: (p.iters / 10).max(1),
                warmup: p.warmup / 10,
                ..p.clone()
            };
            framed_pingpong::run::<F4K>(c, &p, n, 65536)
        }),
    ];
    for (name, row) in rows {
        if plan.wants(name) {
            r.push_lat(name, row(clock, plan, &mut names)?);
        }
    }
    Ok(())
}

fn bandwidth_rows(clock: &Clock, plan: &Plan, r: &mut Results) -> BenchResult<()> {
    let mut names = Names::new();
    let cap = plan.bulk_capacity;
    if plan.wants("memcpy") {
        let passes = plan.bulk_messages.max(100);
        r.push_bw("memcpy_1MiB", bulk::memcpy_floor(clock, MIB, cap, passes));
    }
    if plan.wants("handoff") {
        let gbps = bulk::handoff_floor(plan.cpus, MIB, cap, plan.bulk_messages);
        r.push_bw("handoff_1MiB", gbps);
    }
    let rows = [
        ("bulk_1MiB_frame1MiB", false, bulk::Recv::Message),
        ("bulk_1MiB_frame64KiB", true, bulk::Recv::Message),
        (
            "bulk_1MiB_frame64KiB_fragments",
            true,
            bulk::Recv::Fragments,
        ),
    ];
    for (row, frame_64k, recv) in rows {
        if plan.wants(row) {
            let gbps = if frame_64k {
                bulk::run::<F64K>(plan, &mut names, MIB, 16 * cap, recv)?
            } else {
                bulk::run::<F1M>(plan, &mut names, MIB, cap, recv)?
            };
            r.push_bw(row, gbps);
        }
    }
    Ok(())
}

fn run_benchmark(plan: &Plan) -> BenchResult<bool> {
    proc::pin(plan.cpus.0);
    let clock = Clock::calibrate();
    println!(
        "layers: processes on cpus {} and {}, timer {} ({:.0} MHz), {} round trips (+{} warm-up), {} bulk messages",
        plan.cpus.0, plan.cpus.1, clock.method(), clock.mhz(), plan.iters, plan.warmup, plan.bulk_messages
    );
    let mut all = Results::default();
    for k in 1..=plan.runs {
        let mut r = Results::default();
        latency_rows(&clock, plan, &mut r)?;
        bandwidth_rows(&clock, plan, &mut r)?;
        if plan.wants("rkyv") {
            let (access, decode, len) = zerocopy::run(plan.decode_iters);
            if k == 1 {
                println!("rkyv message: {len} bytes");
            }
            r.push_op("rkyv_access", access);
            r.push_op("rkyv_decode", decode);
        }
        r.print_ratios(k);
        all.merge(r);
    }
    if plan.runs > 1 {
        println!(
            "\nmedian of {} runs per row (min..max beside it):",
            plan.runs
        );
    }
    Ok(all.print())
}

fn run_peer(role: &str, args: &[String]) -> BenchResult<()> {
    let args = proc::peer_setup(args)?;
    match role {
        r if r == pingpong::role::<Ev64>() => pingpong::peer::<Ev64>(&args),
        r if r == framed_pingpong::role(64) => framed_pingpong::peer::<F64>(&args),
        r if r == framed_pingpong::role(1024) => framed_pingpong::peer::<F1K>(&args),
        r if r == framed_pingpong::role(65536) => framed_pingpong::peer::<F4K>(&args),
        r if r == bulk::role::<F1M>() => bulk::peer::<F1M>(&args),
        r if r == bulk::role::<F64K>() => bulk::peer::<F64K>(&args),
        other => Err(format!("unknown role {other:?}").into()),
    }
}

fn main() -> ExitCode {
    proc::bench_main("layers", USAGE, run_peer, parse_plan, run_benchmark)
}
