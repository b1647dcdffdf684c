//! `dst api ...`: the public-API simulation (actors running the real calls on coroutines).

// The sweep's seed counter and stop flag are process-local (shared by its worker threads).
#![allow(clippy::disallowed_types)]

use clap::Subcommand;
use myelon_dst::actors::coverage::{CoverageCounts, Path};
use myelon_dst::actors::{run_seed, Scenario};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Subcommands of `dst api`.
#[derive(Subcommand)]
pub enum ApiCmd {
    /// Run seeds; every failure prints one line that replays it.
    Run {
        /// Number of seeds.
        #[arg(long, default_value = "10000")]
        seeds: u64,
        /// First seed (decimal or 0x hex).
        #[arg(long, default_value = "0", value_parser = crate::seed)]
        start_seed: u64,
        /// Worker threads.
        #[arg(long, default_value = "1")]
        jobs: usize,
        /// Keep going after the first failure.
        #[arg(long)]
        keep_going: bool,
    },
    /// Replay one seed bit for bit.
    Replay {
        /// The seed.
        #[arg(long, value_parser = crate::seed)]
        seed: u64,
        /// Print every step.
        #[arg(long)]
        trace: bool,
    },
    /// How many seeds reached each public path and situation.
    Coverage {
        /// Number of seeds.
        #[arg(long, default_value = "20000")]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value = "0", value_parser = crate::seed)]
        start_seed: u64,
        /// Worker threads.
        #[arg(long, default_value = "1")]
        jobs: usize,
    },
}

/// The command line that replays `seed`.
pub fn replay_line(seed: u64) -> String {
    format!("cargo run --release -p myelon-dst -- api replay --seed {seed:#x} --trace")
}

struct Sweep {
    steps: u64,
    failures: Vec<(u64, String)>,
    coverage: CoverageCounts,
    ran: u64,
}

fn sweep(start: u64, seeds: u64, jobs: usize, stop_on_first: bool) -> Sweep {
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let jobs = jobs.max(1);
    let results: Vec<Sweep> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..jobs)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Sweep {
                        steps: 0,
                        failures: Vec::new(),
                        coverage: CoverageCounts::default(),
                        ran: 0,
                    };
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= seeds || stop.load(Ordering::Relaxed) {
                            break out;
                        }
                        let seed = start.wrapping_add(k);
                        let o = run_seed(seed, false);
                        out.ran += 1;
                        out.steps += o.stats.steps;
                        out.coverage.add(&o.coverage);
                        if let Some(f) = o.failure {
                            out.failures.push((seed, f.to_string()));
                            if stop_on_first {
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("sweep thread"))
            .collect()
    });
    let mut all = Sweep {
        steps: 0,
        failures: Vec::new(),
        coverage: CoverageCounts::default(),
        ran: 0,
    };
    for r in results {
        all.failures.extend(r.failures);
        all.coverage.merge(&r.coverage);
        all.ran += r.ran;
        all.steps += r.steps;
    }
    all.failures.sort();
    all
}

/// Runs `dst api ...`.
pub fn main(cmd: ApiCmd) -> ExitCode {
    match cmd {
        ApiCmd::Run {
            seeds,
            start_seed,
            jobs,
            keep_going,
        } => {
            let t = Instant::now();
            let s = sweep(start_seed, seeds, jobs, !keep_going);
            let secs = t.elapsed().as_secs_f64();
            for (seed, f) in &s.failures {
                println!("FAIL seed {seed:#x} {f}");
                println!("  replay: {}", replay_line(*seed));
            }
            println!(
                "api: {} seeds from {start_seed:#x}, {} failed, {:.0} seeds/s ({jobs} jobs), {:.0} steps/seed",
                s.ran,
                s.failures.len(),
                s.ran as f64 / secs.max(1e-9),
                s.steps as f64 / (s.ran.max(1) as f64)
            );
            if s.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        ApiCmd::Replay { seed, trace } => {
            let sc = Scenario::generate(seed);
            println!("scenario: {sc:?}");
            let o = run_seed(seed, trace);
            for line in &o.trace {
                println!("{line}");
            }
            println!(
                "seed {seed:#x}: {} steps, {} switches, {} parks ({} woken), {} crashes, {} stalls, trace hash {:#018x}",
                o.stats.steps, o.stats.switches, o.stats.parks, o.stats.woken, o.stats.crashes,
                o.stats.stalls, o.stats.trace_hash
            );
            match o.failure {
                Some(f) => {
                    println!("FAIL {f}");
                    ExitCode::FAILURE
                }
                None => {
                    println!("ok");
                    ExitCode::SUCCESS
                }
            }
        }
        ApiCmd::Coverage {
            seeds,
            start_seed,
            jobs,
        } => {
            let s = sweep(start_seed, seeds, jobs, false);
            println!("{:<24} {:>10}", "path", "seeds");
            let mut zero = 0;
            for p in Path::ALL {
                let n = s.coverage.get(p);
                zero += u32::from(n == 0);
                println!("{:<24} {:>10}", p.name(), n);
            }
            println!(
                "{} seeds, {} failed, {zero} paths never reached",
                s.ran,
                s.failures.len()
            );
            if zero == 0 && s.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
