//! `dst`: run seeded simulation suites against myelon, replay, shrink, check determinism,
//! prove the oracles with planted mutants, and report coverage.

mod api_cmd;

use clap::{Parser, Subcommand};
use myelon_dst::mutants::{run_mutant, Harness, MUTANTS};
use myelon_dst::shrink::shrink;
use myelon_dst::steps::run;
use myelon_dst::suite::{replay_line, run_suite, SuiteOptions};
use myelon_dst::workload::{parse_u64, Profile, Workload};
use myelon_test_support::ReExec;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "dst", about = "Deterministic simulation testing for myelon")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The public-API simulation: real calls as actors, interleaved inside the calls.
    Api {
        #[command(subcommand)]
        cmd: api_cmd::ApiCmd,
    },
    /// Run seeds and check every oracle.
    Run {
        /// Number of seeds.
        #[arg(long, default_value = "10000")]
        seeds: u64,
        /// First seed (decimal or 0x hex).
        #[arg(long, default_value = "0", value_parser = seed)]
        start_seed: u64,
        /// Swarm profile: default, calm, liveness.
        #[arg(long, default_value = "default", value_parser = profile)]
        profile: Profile,
        /// Worker threads.
        #[arg(long, default_value = "1")]
        jobs: usize,
        /// Stop at the first failure.
        #[arg(long)]
        stop_on_first: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Replay one seed (or a schedule file) bit for bit.
    Replay {
        /// The seed (decimal or 0x hex).
        #[arg(long, value_parser = seed, required_unless_present = "schedule")]
        seed: Option<u64>,
        /// A schedule file written by `shrink`.
        #[arg(long)]
        schedule: Option<String>,
        /// Profile the seed was run under.
        #[arg(long, default_value = "default", value_parser = profile)]
        profile: Profile,
        /// Print the readable trace.
        #[arg(long)]
        trace: bool,
    },
    /// Reduce a failing seed's schedule to a minimal one that fails the same way; writes a
    /// schedule file for `replay --schedule`.
    Shrink {
        /// The failing seed (decimal or 0x hex).
        #[arg(long, value_parser = seed)]
        seed: u64,
        /// Profile the seed was run under.
        #[arg(long, default_value = "default", value_parser = profile)]
        profile: Profile,
        /// Where to write the schedule (default: `dst-shrunk-<seed>.schedule`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run seeds twice, each in its own process, and compare the trace hashes.
    CheckDeterminism {
        /// First seed.
        #[arg(long, default_value = "0", value_parser = seed)]
        seed: u64,
        /// How many consecutive seeds.
        #[arg(long, default_value = "20")]
        seeds: u64,
        /// Profile.
        #[arg(long, default_value = "default", value_parser = profile)]
        profile: Profile,
    },
    /// Build each planted bug (`--cfg myelon_mutant=...`) and report after how many seeds the
    /// oracles catch it.
    Mutants {
        /// Seeds to try per mutant.
        #[arg(long, default_value = "5000")]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value = "0", value_parser = seed)]
        start_seed: u64,
        /// Profile.
        #[arg(long, default_value = "default", value_parser = profile)]
        profile: Profile,
        /// Only this mutant.
        #[arg(long)]
        only: Option<String>,
        /// Target directory root for the mutant builds.
        #[arg(long, default_value = "target/dst-mutants")]
        target_dir: PathBuf,
    },
    /// Count the interesting situations a suite reaches.
    Coverage {
        /// Number of seeds.
        #[arg(long, default_value = "10000")]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value = "0", value_parser = seed)]
        start_seed: u64,
        /// Profile.
        #[arg(long, default_value = "default", value_parser = profile)]
        profile: Profile,
        /// Worker threads.
        #[arg(long, default_value = "1")]
        jobs: usize,
    },
}

fn seed(s: &str) -> Result<u64, String> {
    parse_u64(s).ok_or_else(|| format!("{s:?} is not a decimal or 0x-hex number"))
}

fn profile(s: &str) -> Result<Profile, String> {
    Profile::parse(s).ok_or_else(|| format!("unknown profile {s:?} (default, calm, liveness)"))
}

fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Api { cmd } => api_cmd::main(cmd),
        Cmd::Run {
            seeds,
            start_seed,
            profile,
            jobs,
            stop_on_first,
            quiet,
        } => {
            let r = run_suite(SuiteOptions {
                seeds,
                start: start_seed,
                profile,
                jobs,
                stop_on_first,
                progress: !quiet,
            });
            for (s, f) in r.failures.iter().take(20) {
                println!(
                    "FAIL seed {s:#x} [{}] at {}us step {}: {}",
                    f.oracle, f.at_us, f.step, f.detail
                );
                println!("  replay: {}", replay_line(*s, profile));
            }
            println!(
                "{} seeds ({} profile), {} failed, {:.0} seeds/s, {} steps, {:.2}s",
                r.ran,
                profile.name(),
                r.failures.len(),
                r.seeds_per_sec(),
                r.steps,
                r.elapsed.as_secs_f64()
            );
            if !quiet {
                let reached: Vec<String> = r
                    .coverage
                    .rows()
                    .into_iter()
                    .map(|(name, n)| format!("{name} {n}"))
                    .collect();
                println!("reached: {}", reached.join(", "));
            }
            if r.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Cmd::Shrink { seed, profile, out } => shrink_cmd(seed, profile, out),
        Cmd::CheckDeterminism {
            seed,
            seeds,
            profile,
        } => check_determinism(seed, seeds, profile),
        Cmd::Mutants {
            seeds,
            start_seed,
            profile,
            only,
            target_dir,
        } => mutants_cmd(seeds, start_seed, profile, only, &target_dir),
        Cmd::Coverage {
            seeds,
            start_seed,
            profile,
            jobs,
        } => {
            let r = run_suite(SuiteOptions {
                seeds,
                start: start_seed,
                profile,
                jobs,
                stop_on_first: false,
                progress: true,
            });
            println!(
                "coverage over {} seeds ({} profile):",
                r.ran,
                profile.name()
            );
            for (name, n) in r.coverage.rows() {
                println!("  {name:<40} {n:>9}");
            }
            println!("{} failed", r.failures.len());
            ExitCode::SUCCESS
        }
        Cmd::Replay {
            seed,
            schedule,
            profile,
            trace,
        } => {
            let w = match (&schedule, seed) {
                (Some(path), _) => match std::fs::read_to_string(path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| Workload::parse(&t))
                {
                    Ok(w) => w,
                    Err(e) => {
                        eprintln!("{path}: {e}");
                        return ExitCode::from(2);
                    }
                },
                (None, Some(s)) => Workload::generate(s, profile),
                (None, None) => unreachable!("clap requires one"),
            };
            let r = run(&w, trace);
            if trace {
                print!("{}", w.to_text());
                for line in &r.trace {
                    println!("{line}");
                }
            }
            println!(
                "trace hash {:#018x}, {} steps, {}us virtual",
                r.trace_hash, r.steps, r.end_us
            );
            match r.failure {
                Some(f) => {
                    println!(
                        "FAIL [{}] at {}us step {}: {}",
                        f.oracle, f.at_us, f.step, f.detail
                    );
                    ExitCode::FAILURE
                }
                None => {
                    println!("ok");
                    ExitCode::SUCCESS
                }
            }
        }
    }
}

fn shrink_cmd(seed: u64, profile: Profile, out: Option<PathBuf>) -> ExitCode {
    let w = Workload::generate(seed, profile);
    let Some(f) = run(&w, false).failure else {
        println!("seed {seed:#x} passes: nothing to shrink");
        return ExitCode::from(2);
    };
    println!("seed {seed:#x} fails [{}]: {}", f.oracle, f.detail);
    let (small, runs) = shrink(&w, f.oracle);
    let path = out.unwrap_or_else(|| PathBuf::from(format!("dst-shrunk-{seed:#x}.schedule")));
    if let Err(e) = std::fs::write(&path, small.to_text()) {
        eprintln!("{}: {e}", path.display());
        return ExitCode::from(2);
    }
    let again = run(&small, false).failure;
    println!(
        "shrunk in {runs} runs: {} -> {} faults, {} -> {} events, {} -> {} consumers",
        w.faults.len(),
        small.faults.len(),
        w.events,
        small.events,
        w.consumers.len(),
        small.consumers.len()
    );
    if let Some(f) = again {
        println!("still fails [{}]: {}", f.oracle, f.detail);
    }
    println!("wrote {}", path.display());
    println!(
        "  replay: cargo run --release -p myelon-dst -- replay --schedule {} --trace",
        path.display()
    );
    ExitCode::SUCCESS
}

fn child_hash(seed: u64, profile: Profile) -> Result<String, String> {
    let out = ReExec::try_new()
        .map_err(|e| e.to_string())?
        .args([
            "replay",
            "--seed",
            &seed.to_string(),
            "--profile",
            profile.name(),
        ])
        .output()
        .map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("trace hash ")
                .map(|r| r.split(',').next().unwrap_or("").to_string())
        })
        .ok_or_else(|| "no trace hash in the child's output".to_string())
}

/// The trace hash of `dst api replay --seed <seed>` run in a child process.
fn child_api_hash(seed: u64) -> Result<String, String> {
    let out = ReExec::try_new()
        .map_err(|e| e.to_string())?
        .args(["api", "replay", "--seed", &seed.to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.split("trace hash ").nth(1).map(str::to_string))
        .ok_or_else(|| "no trace hash in the child's output".to_string())
}

fn check_determinism(start: u64, seeds: u64, profile: Profile) -> ExitCode {
    let mut bad = 0;
    for s in start..start + seeds {
        let local = format!(
            "{:#018x}",
            myelon_dst::actors::run_seed(s, false).stats.trace_hash
        );
        match (child_api_hash(s), child_api_hash(s)) {
            (Ok(a), Ok(b)) if a == b && a == local => {}
            (a, b) => {
                bad += 1;
                println!("api seed {s:#x}: NOT deterministic: {a:?} vs {b:?} (in-process {local})");
            }
        }
        let a = child_hash(s, profile);
        let b = child_hash(s, profile);
        let local = format!(
            "{:#018x}",
            run(&Workload::generate(s, profile), false).trace_hash
        );
        match (a, b) {
            (Ok(a), Ok(b)) if a == b && a == local => {}
            (a, b) => {
                bad += 1;
                println!("seed {s:#x}: NOT deterministic: {a:?} vs {b:?} (in-process {local})");
            }
        }
    }
    println!(
        "{seeds} seeds of each simulation, each run in two separate processes: {bad} mismatches"
    );
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn mutants_cmd(
    seeds: u64,
    start: u64,
    profile: Profile,
    only: Option<String>,
    target: &std::path::Path,
) -> ExitCode {
    let mut bad = 0;
    println!(
        "{:<24} {:<6} {:>14}  note",
        "mutant", "sim", "seeds to catch"
    );
    for m in MUTANTS {
        if only.as_deref().is_some_and(|o| o != m.name) {
            continue;
        }
        let r = run_mutant(m, seeds, start, profile.name(), target);
        let n = r.seeds_to_catch.map_or("-".to_string(), |n| n.to_string());
        let verdict = match (&r.oracle, r.expected) {
            (None, _) => {
                bad += 1;
                "NOT CAUGHT"
            }
            (Some(_), false) => {
                bad += 1;
                "WRONG ORACLE"
            }
            (Some(_), true) => "ok",
        };
        let sim = match m.harness {
            Harness::Api => "api",
            Harness::Steps => "steps",
        };
        println!(
            "{:<24} {sim:<6} {n:>14}  {verdict}: {} (expects [{}]; {})",
            m.name,
            r.note,
            m.oracles.join("|"),
            m.what
        );
    }
    if bad == 0 {
        println!("every mutant caught by its oracle within {seeds} seeds");
        ExitCode::SUCCESS
    } else {
        println!("{bad} mutant(s) not caught by their oracle");
        ExitCode::FAILURE
    }
}
