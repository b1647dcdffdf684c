//! Peers benchmark: myelon (this tree, raw and framed) against the published myelon
//! 0.1.0-alpha.2 (raw and framed), iceoryx2 0.10 publish-subscribe and a Unix-domain socket,
//! between two processes pinned to two CPUs, with a cache-line ping-pong floor and a memcpy
//! floor measured in the same run. See README.md.
//!
//! ```text
//! cargo run --release --manifest-path benches/peers/Cargo.toml -- --runs 5
//! ```

mod clock;
mod contenders;
mod msg;
mod plots;
mod proc;
mod stats;

use clap::Parser;
use contenders::{Contender, Ctx, Outcome, Work, ALL};
use proc::BenchResult;
use stats::{Pcts, Sample, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Cross-process benchmark of myelon against its peers.
#[derive(Parser, Debug, Clone)]
#[command(name = "myelon-peers-bench")]
struct Args {
    /// Repeat every row R times (interleaved); the report gives the median with min and max.
    #[arg(long)]
    runs: Option<usize>,
    /// A short smoke run (seconds): few iterations, one run unless --runs is given.
    #[arg(long)]
    quick: bool,
    /// Only rows whose `<group>/<contender>` contains one of these substrings (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// Timed round trips per ping-pong row (64 KiB does a tenth).
    #[arg(long)]
    iters: Option<u64>,
    /// Untimed warm-up round trips per ping-pong row.
    #[arg(long)]
    warmup: Option<u64>,
    /// Events per stream row.
    #[arg(long)]
    events: Option<u64>,
    /// 1 MiB messages per bulk row.
    #[arg(long)]
    bulk_messages: Option<u64>,
    /// Ring depth of the bulk rows, in 1 MiB messages.
    #[arg(long, default_value_t = 4)]
    bulk_depth: usize,
    /// Ring depths of the stream rows.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "256,1024,4096,16384,65536"
    )]
    depths: Vec<usize>,
    /// CPUs of the driver and of the peer; an optional third: the second fan-in producer's
    /// (default: the peer CPU, shared by both producers).
    #[arg(long, value_delimiter = ',', default_value = "0,1")]
    cpus: Vec<usize>,
    /// Name of the result files: results/<name>.md, .csv, .json, -*.svg.
    #[arg(long, default_value = "latest")]
    name: String,
    /// Directory of the result files (default: benches/peers/results).
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

/// One group of rows: a workload every contender that supports it runs.
struct Group {
    label: String,
    work: Work,
    /// Ping-pong only: no warm-up and [`FIRST_TRIPS`] timed trips on fresh rings (the first
    /// messages after attach), instead of the steady-state counts.
    first: bool,
}

/// Timed round trips of a `_first1000` row.
const FIRST_TRIPS: u64 = 1000;

/// Timed round trips of the floor probe run right before each steady ping-pong row.
const PROBE_TRIPS: u64 = 20_000;

fn groups(a: &Args) -> Vec<Group> {
    // 56 B: an event that shares its line with myelon's stamp (the raw contenders, the
    // socket and iceoryx2 only); 64 B takes a second line.
    let mut g: Vec<Group> = [56, 64, 1024, 65536]
        .into_iter()
        .map(|size| Group {
            label: format!("pingpong_{size}"),
            work: Work::PingPong { size },
            first: false,
        })
        .collect();
    // The first messages after attach (issue: within 2x of the steady state), right after the
    // steady rows so both see the same machine state.
    g.extend([64, 1024].into_iter().map(|size| Group {
        label: format!("pingpong_{size}_first{FIRST_TRIPS}"),
        work: Work::PingPong { size },
        first: true,
    }));
    g.extend(a.depths.iter().map(|&depth| Group {
        label: format!("stream_64_d{depth}"),
        work: Work::Stream { depth },
        first: false,
    }));
    for (checksum, tag) in [(true, "checksum"), (false, "headtail")] {
        g.push(Group {
            label: format!("bulk_1MiB_{tag}"),
            work: Work::Bulk { checksum },
            first: false,
        });
    }
    for (latency, tag) in [(false, "throughput"), (true, "latency")] {
        for producers in [1, 2] {
            g.push(Group {
                label: format!("fanin_64_{tag}{}", if producers == 1 { "_1p" } else { "" }),
                work: Work::FanIn { producers, latency },
                first: false,
            });
        }
    }
    g
}

fn label(group: &Group, c: Contender) -> String {
    match (group.work, c) {
        (Work::Stream { .. }, Contender::Uds) => "stream_64_socket".into(),
        _ => group.label.clone(),
    }
}

fn sh(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn machine() -> String {
    let model = sh("lscpu", &[])
        .lines()
        .find(|l| l.starts_with("Model name:"))
        .map(|l| l.trim_start_matches("Model name:").trim().to_string())
        .unwrap_or_else(|| "?".into());
    format!(
        "nproc {}, CPU {model}, kernel {}, clocksource {}",
        sh("nproc", &[]),
        sh("uname", &["-r"]),
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .unwrap_or_default()
            .trim()
    )
}

fn run_driver(a: &Args) -> BenchResult<bool> {
    let runs = a.runs.unwrap_or(if a.quick { 1 } else { 5 }).max(1);
    let (cpu0, cpu1, cpu2) = match a.cpus.as_slice() {
        [x, y] => (*x, *y, *y),
        [x, y, z] => (*x, *y, *z),
        _ => return Err("--cpus takes two or three CPUs: A,B[,C]".into()),
    };
    // Before pinning: `nproc` reports the CPUs this process may use.
    let machine = machine();
    proc::pin(cpu0);
    let ctx = Ctx {
        clock: clock::Clock::calibrate(),
        cpus: (cpu0, cpu1),
        cpu2,
        warmup: a.warmup.unwrap_or(if a.quick { 2_000 } else { 20_000 }),
        iters: a
            .iters
            .unwrap_or(if a.quick { 20_000 } else { 200_000 })
            .max(10),
        events: a
            .events
            .unwrap_or(if a.quick { 500_000 } else { 5_000_000 })
            .max(2),
        bulk_messages: a
            .bulk_messages
            .unwrap_or(if a.quick { 200 } else { 2_000 })
            .max(2),
        bulk_depth: a.bulk_depth.max(1),
        peer_timeout: Duration::from_secs(300),
    };
    let started = sh("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]);
    println!("peers: {machine}");
    println!(
        "peers: {runs} run(s), cpus {cpu0},{cpu1}, tsc {:.0} MHz, {} round trips (+{} warm-up), {} stream events, {} x 1 MiB, load {}",
        ctx.clock.mhz(), ctx.iters, ctx.warmup, ctx.events, ctx.bulk_messages, proc::loadavg()
    );
    let first_depth = a.depths.first().copied().unwrap_or(0);
    let wanted = |g: &str, c: Contender| {
        let key = format!("{g}/{}", c.name());
        a.only.is_empty() || a.only.iter().any(|o| key.contains(o.as_str()))
    };
    let watchdog = proc::Watchdog::start();
    let mut samples: Vec<Sample> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let groups = groups(a);
    for run in 1..=runs {
        for g in &groups {
            let order: &[Contender] = if matches!(g.work, Work::FanIn { .. }) {
                &contenders::FANIN_ORDER
            } else {
                &ALL
            };
            for &c in order {
                let name = label(g, c);
                if !c.supports(g.work, first_depth) || !wanted(&name, c) {
                    continue;
                }
                if failures
                    .iter()
                    .any(|f| f.starts_with(&format!("{name}/{} ", c.name())))
                {
                    continue; // Failed in an earlier run: do not retry every run.
                }
                // The floor right before each steady ping-pong or stream row: this VM's two
                // vCPUs move between a near and a far placement within minutes (floor ~100
                // against ~440 ns), so a row is compared with the floor of its own placement.
                let probe = match g.work {
                    Work::PingPong { .. } | Work::Stream { .. } | Work::Bulk { .. }
                        if c != Contender::Floor =>
                    {
                        let short = Ctx {
                            warmup: PROBE_TRIPS / 10,
                            iters: PROBE_TRIPS,
                            ..ctx.clone()
                        };
                        match Contender::Floor.run(&short, Work::PingPong { size: 64 }) {
                            Ok(Outcome::Latency(ns)) => Some(Pcts::from_ns(&ns).p50),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                let load_before = proc::loadavg();
                watchdog.arm(ctx.peer_timeout + Duration::from_secs(60));
                let outcome = if g.first {
                    let cold = Ctx {
                        warmup: 0,
                        iters: FIRST_TRIPS,
                        ..ctx.clone()
                    };
                    c.run(&cold, g.work)
                } else {
                    c.run(&ctx, g.work)
                };
                watchdog.arm(Duration::from_secs(u32::MAX as u64));
                let load_after = proc::loadavg();
                let value = match outcome {
                    Ok(Outcome::Latency(ns)) => Value::Lat(Pcts::from_ns(&ns)),
                    Ok(Outcome::OneWay(ns)) => {
                        Value::OneWay(Pcts::from_ns(&ns), stats::fast_share(&ns))
                    }
                    Ok(Outcome::Rate(r)) => Value::Mps(r / 1e6),
                    Ok(Outcome::Bandwidth(b)) => Value::Gbps(b),
                    Err(e) => {
                        let msg = format!("{name}/{} failed: {e}", c.name());
                        eprintln!("peers: {msg}");
                        failures.push(msg);
                        continue;
                    }
                };
                let shown = match value {
                    Value::Lat(p) => format!(
                        "p50={:.0}ns p99={:.0}ns p99.9={:.0}ns",
                        p.p50, p.p99, p.p999
                    ),
                    Value::OneWay(p, f) => format!(
                        "one-way p50={:.0}ns p99={:.0}ns p99.9={:.0}ns <=10us={:.0}%",
                        p.p50,
                        p.p99,
                        p.p999,
                        f * 100.0
                    ),
                    Value::Mps(v) => format!("{v:.2} M events/s"),
                    Value::Gbps(v) => format!("{v:.2} GB/s"),
                };
                let probed = probe
                    .map(|p| format!(" probe={p:.0}ns"))
                    .unwrap_or_default();
                println!("RESULT run={run} row={name} contender={} {shown}{probed} load=[{load_before}]->[{load_after}]", c.name());
                samples.push(Sample {
                    group: name,
                    contender: c.name(),
                    run,
                    load_before,
                    load_after,
                    value,
                    probe,
                });
            }
        }
    }
    let rows = stats::rows(&samples);
    let mut md = format!(
        "## Peers benchmark: `{}`\n\n- command: `{}`\n- machine: {machine}\n- started {started}, load before {}, load at end {}\n- {runs} run(s) per row, interleaved; {} timed round trips per ping-pong row (64 KiB: a tenth) after {} warm-up, {} stream events per row, {} x 1 MiB per bulk row (ring depth {}), ping-pong ring depth 1024 slots (64 KiB: 128)\n- figures: the median over runs, (min–max) over runs; ratios divide the median by the median of the `floor` row of the same group (ping-pong: cache-line RTT; bulk: single-thread memcpy)\n\n",
        a.name,
        std::env::args().collect::<Vec<_>>().join(" "),
        samples.first().map_or("?".into(), |s| s.load_before.clone()),
        proc::loadavg(),
        ctx.iters,
        ctx.warmup,
        ctx.events,
        ctx.bulk_messages,
        ctx.bulk_depth,
    );
    if samples.iter().any(|s| stats::is_fanin(&s.group)) {
        let (t2, l2) = (
            contenders::fanin::Plan::new(&ctx, 2, false),
            contenders::fanin::Plan::new(&ctx, 2, true),
        );
        md.push_str(&format!(
            "- fan-in: producers on CPU {cpu1} and CPU {cpu2} ({}), the consumer (driver) on CPU {cpu0}; ring depth {}; throughput: {} events in all ({} per producer of two); latency: {} timed events in all ({} per producer of two) after {} warm-up, one event per producer every {} µs\n\n",
            if cpu1 == cpu2 { "the same CPU: the two producer processes share it" } else { "one CPU each" },
            contenders::fanin::DEPTH,
            ctx.events,
            t2.per_producer,
            ctx.iters,
            l2.per_producer - l2.warmup,
            ctx.warmup,
            contenders::fanin::PERIOD_NS / 1000,
        ));
    }
    md.push_str(&stats::markdown(&rows));
    if !failures.is_empty() {
        md.push_str("### Rows that failed\n\n");
        for f in &failures {
            md.push_str(&format!("- {f}\n"));
        }
        md.push('\n');
    }
    println!("\n{md}");
    let dir = a
        .out_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results"));
    std::fs::create_dir_all(&dir)?;
    let base = |ext: &str| dir.join(format!("{}{ext}", a.name));
    std::fs::write(base(".md"), &md)?;
    std::fs::write(base(".csv"), stats::csv(&samples))?;
    std::fs::write(base(".json"), stats::json(&samples))?;
    plots::latency(&rows, &base("-latency.svg"))?;
    plots::by_size(&rows, &base("-by-size.svg"))?;
    plots::by_depth(&rows, &a.depths, &base("-by-depth.svg"))?;
    println!(
        "peers: wrote {}",
        base(".{md,csv,json} and -*.svg").display()
    );
    Ok(failures.is_empty())
}

fn run_peer(args: &[String]) -> BenchResult<()> {
    proc::peer_setup()?;
    let (name, rest) = args.split_first().ok_or("peer: no contender")?;
    let c = Contender::from_name(name).ok_or_else(|| format!("peer: unknown contender {name}"))?;
    let (work, rest) = Work::parse(rest)?;
    c.peer(work, rest)
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some(proc::ROLE_ARG) {
        return match run_peer(&raw[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("peers peer {:?}: {e}", raw.get(1));
                ExitCode::FAILURE
            }
        };
    }
    let args = Args::parse();
    if !proc::is_driver() {
        return match proc::supervise() {
            Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
            Err(e) => {
                eprintln!("peers: cannot start the driver: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run_driver(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("peers: some rows failed (listed in the report)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("peers: {e}");
            ExitCode::FAILURE
        }
    }
}
