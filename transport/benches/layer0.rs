//! Layer 0 benchmark: round-trip latency against a floor measured in the same run, and one-way
//! stream throughput, between two busy-spinning processes pinned to two CPUs.
//!
//! ```text
//! cargo bench -p myelon --bench layer0 [-- --quick] [--runs R] [--iters N] [--events N] ..
//! ```
//!
//! The binary re-executes itself (`--role <role>`) to start the second process. See
//! `benches/README-bench.md` for what each row means; `--help` lists the options.

// The floors this benchmark measures against are bare std atomics on purpose (no ring, no
// facade), and its flags are process-local: `clippy.toml`'s rule on shared-memory atomics is
// for the library.
#![allow(clippy::disallowed_types)]

#[path = "layer0/clock.rs"]
mod clock;
#[path = "layer0/events.rs"]
mod events;
#[path = "layer0/floor.rs"]
mod floor;
#[path = "layer0/pingpong.rs"]
mod pingpong;
#[path = "layer0/proc.rs"]
mod proc;
#[path = "layer0/report.rs"]
mod report;
#[path = "layer0/slotfloor.rs"]
mod slotfloor;
#[path = "layer0/spin.rs"]
mod spin;
#[path = "layer0/stream.rs"]
mod stream;
#[path = "layer0/wakeup.rs"]
mod wakeup;

use clock::{time_trips, Clock, Stats};
use events::{Ev1k, Ev56, Ev64};
use proc::{BenchResult, Names};
use report::{Report, Value};
use std::process::ExitCode;
use std::time::Duration;
use stream::Mode;

/// What to measure and how much.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Untimed round trips before each latency measurement.
    pub warmup: u64,
    /// Timed round trips per latency measurement.
    pub iters: u64,
    /// Events per stream measurement.
    pub events: u64,
    /// Ring capacities tried for the stream.
    pub capacities: Vec<usize>,
    /// Events per `publish_batch` call.
    pub batch: usize,
    /// `max` of the consumer's `try_consume_batch` (default: a quarter of the capacity).
    pub consume_batch: Option<usize>,
    /// Ring capacity of the ping-pong rings.
    pub pingpong_capacity: usize,
    /// Repetitions of the whole set.
    pub runs: usize,
    /// CPU of this process, CPU of the peer.
    pub cpus: (usize, usize),
    /// Measurement-name prefixes to run (empty: all).
    pub only: Vec<String>,
    /// Longest wait for a peer to exit once told to.
    pub peer_timeout: Duration,
}

const USAGE: &str = "\
usage: layer0 [--quick] [--runs R] [--iters N] [--warmup N] [--events N]
              [--capacities C1,C2,..] [--batch B] [--consume-batch M]
              [--cpus A,B] [--pause] [--only NAME1,NAME2,..]
  --quick        fewer iterations (100k round trips, 5M events)
  --runs R       repeat everything R times; the table shows the median, min and max (default 1)
  --iters N      timed round trips per latency row (default 1000000)
  --events N     events per stream row (default 50000000)
  --capacities   stream ring capacities (default 1024,2048,4096,16384)
  --batch B      events per publish_batch call (default 64)
  --consume-batch M  max of try_consume_batch (default capacity/4)
  --cpus A,B     CPUs of this process and of the peer (default: first two allowed)
  --pause        issue a pause instruction in every spin loop (default: none)
  --only P,..    run only the rows whose name starts with one of the prefixes; rows:
                 timer floor floor_1line floor_slot56 floor_slot64 pingpong_56 pingpong_64
                 pingpong_1024 stream_publish_cap<C> stream_batch<B>_cap<C>
                 wake_futex wake_block wake_async (the last with --features tokio)";

fn parse_plan(args: &[String]) -> Result<Plan, String> {
    let mut plan = Plan {
        warmup: 50_000,
        iters: 1_000_000,
        events: 50_000_000,
        capacities: vec![1024, 2048, 4096, 16384],
        batch: 64,
        consume_batch: None,
        pingpong_capacity: 1024,
        runs: 1,
        cpus: proc::default_cpus(),
        only: Vec::new(),
        peer_timeout: Duration::from_secs(60),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        let num = |v: &String| v.parse::<u64>().map_err(|e| format!("{a} {v}: {e}"));
        let list = |v: &String| -> Result<Vec<usize>, String> {
            v.split(',')
                .map(|x| x.parse::<usize>().map_err(|e| format!("{a} {v}: {e}")))
                .collect()
        };
        match a.as_str() {
            "--bench" => {}
            "--quick" => {
                plan.warmup = 10_000;
                plan.iters = 100_000;
                plan.events = 5_000_000;
            }
            "--runs" => plan.runs = num(value()?)?.max(1) as usize,
            "--iters" => plan.iters = num(value()?)?.max(1),
            "--warmup" => plan.warmup = num(value()?)?,
            "--events" => plan.events = num(value()?)?.max(1),
            "--capacities" => plan.capacities = list(value()?)?,
            "--batch" => plan.batch = num(value()?)?.max(1) as usize,
            "--consume-batch" => plan.consume_batch = Some(num(value()?)?.max(1) as usize),
            "--pause" => spin::set_pause(true),
            "--cpus" => match list(value()?)?.as_slice() {
                [x, y] => plan.cpus = (*x, *y),
                _ => return Err("--cpus takes two CPUs: A,B".into()),
            },
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

/// The cost of the timed window itself (two timestamps around nothing).
fn timer_overhead(clock: &Clock, plan: &Plan) -> Stats {
    let ticks =
        time_trips(clock, plan.warmup, plan.iters, |_| Ok(())).expect("an empty trip cannot fail");
    Stats::from_ticks(clock, &ticks)
}

fn latency_rows(clock: &Clock, plan: &Plan, run: usize, report: &mut Report) -> BenchResult<()> {
    let mut names = Names::new();
    type Row = fn(&Clock, &Plan, &mut Names) -> BenchResult<Stats>;
    let rows: [(&str, Row); 8] = [
        ("timer", |c, p, _| Ok(timer_overhead(c, p))),
        ("floor", |c, p, n| floor::run(c, p, n, floor::FLOOR_LINES)),
        ("floor_1line", |c, p, n| floor::run(c, p, n, 1)),
        ("floor_slot56", slotfloor::run::<7>),
        ("floor_slot64", slotfloor::run::<8>),
        ("pingpong_56", pingpong::run::<Ev56>),
        ("pingpong_64", pingpong::run::<Ev64>),
        ("pingpong_1024", pingpong::run::<Ev1k>),
    ];
    for (name, row) in rows {
        if plan.wants(name) {
            let stats = row(clock, plan, &mut names)?;
            report.add(run, name, Value::Latency(stats));
        }
    }
    let waiters = [
        ("wake_block", wakeup::Waiter::Block),
        #[cfg(feature = "tokio")]
        ("wake_async", wakeup::Waiter::Async),
    ];
    if plan.wants("wake_futex") {
        let stats = wakeup::futex_floor::run(clock, plan, &mut names)?;
        report.add(run, "wake_futex", Value::Latency(stats));
    }
    for (name, waiter) in waiters {
        if plan.wants(name) {
            let stats = wakeup::run::<Ev64>(clock, plan, &mut names, waiter)?;
            report.add(run, name, Value::Latency(stats));
        }
    }
    Ok(())
}

fn stream_rows(clock: &Clock, plan: &Plan, run: usize, report: &mut Report) -> BenchResult<()> {
    let mut names = Names::new();
    for mode in [Mode::Publish, Mode::Batch(plan.batch)] {
        for &cap in &plan.capacities {
            let name = format!("stream_{}_cap{cap}", mode.name());
            if plan.wants(&name) {
                let stats = stream::run(clock, plan, &mut names, cap, mode)?;
                report.add(run, &name, Value::Stream(stats));
            }
        }
    }
    Ok(())
}

fn run_benchmark(plan: &Plan) -> BenchResult<bool> {
    proc::pin(plan.cpus.0);
    let clock = Clock::calibrate();
    println!(
        "layer0: processes on cpus {} and {}, busy-spin{}, timer {} ({:.0} MHz), \
         {} round trips (+{} warm-up), {} stream events, {} run(s)",
        plan.cpus.0,
        plan.cpus.1,
        if spin::pause() {
            " with pause"
        } else {
            " without pause"
        },
        clock.method(),
        clock.mhz(),
        plan.iters,
        plan.warmup,
        plan.events,
        plan.runs,
    );
    let mut report = Report::default();
    for run in 1..=plan.runs {
        latency_rows(&clock, plan, run, &mut report)?;
        stream_rows(&clock, plan, run, &mut report)?;
    }
    Ok(report.print_summary())
}

fn run_peer(role: &str, args: &[String]) -> BenchResult<()> {
    let args = proc::peer_setup(args)?;
    match role {
        r if r == floor::role(1) => floor::peer(&args, 1),
        r if r == floor::role(floor::FLOOR_LINES) => floor::peer(&args, floor::FLOOR_LINES),
        r if r == slotfloor::role::<7>() => slotfloor::peer::<7>(&args),
        r if r == slotfloor::role::<8>() => slotfloor::peer::<8>(&args),
        r if r == pingpong::role::<Ev56>() => pingpong::peer::<Ev56>(&args),
        r if r == pingpong::role::<Ev64>() => pingpong::peer::<Ev64>(&args),
        r if r == pingpong::role::<Ev1k>() => pingpong::peer::<Ev1k>(&args),
        stream::ROLE => stream::peer(&args),
        wakeup::futex_floor::ROLE => wakeup::futex_floor::peer(&args),
        r if r == wakeup::Waiter::Block.role() => {
            wakeup::peer::<Ev64>(&args, wakeup::Waiter::Block)
        }
        #[cfg(feature = "tokio")]
        r if r == wakeup::Waiter::Async.role() => {
            wakeup::peer::<Ev64>(&args, wakeup::Waiter::Async)
        }
        other => Err(format!("unknown role {other:?}").into()),
    }
}

fn main() -> ExitCode {
    proc::bench_main("layer0", USAGE, run_peer, parse_plan, run_benchmark)
}
