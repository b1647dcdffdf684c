//! The planted bugs (`--cfg myelon_mutant="NAME"`) and the driver that proves the oracles
//! catch each: it builds the harness with the flag in its own target directory and runs seeds
//! until the first failure.

use std::path::Path;
use std::process::Command;

/// Every mutant the DST must catch, with where it lives and what it breaks.
pub const MUTANTS: &[(&str, &str)] = &[
    (
        "wrap_off_by_one",
        "producer.rs refresh_limit: one slot more than the gating minimum allows",
    ),
    (
        "stamp_before_write",
        "producer.rs: the slot is published (stamped) before the event is written",
    ),
    (
        "reserved_not_gating",
        "registry.rs gating_minimum: stale gating that ignores reservations",
    ),
    (
        "rejoin_off_by_one",
        "registry.rs take_over: a same-id rejoin resumes one past its committed cursor",
    ),
    (
        "alert_timer_not_reset",
        "liveness monitor: the stall timer is not reset by progress",
    ),
    (
        "rejoin_any_id",
        "liveness monitor: progress of any consumer counts as the stalled one's recovery",
    ),
    (
        "grace_from_stall_start",
        "liveness monitor: the grace period is measured from the stall start, not the alert",
    ),
    (
        "startup_never_fires",
        "liveness monitor: the startup timeout never fires",
    ),
    (
        "alert_repeats",
        "liveness monitor: the stall alert fires on every check, not once per window",
    ),
    (
        "reasm_accepts_non_first",
        "transport reassembly.rs: a (re)joined consumer takes a non-first frame as a message start",
    ),
];

/// Outcome for one mutant.
#[derive(Debug, Clone)]
pub struct MutantResult {
    /// Its name.
    pub name: &'static str,
    /// Seeds run until the first failure (`None`: survived every seed, or did not build).
    pub seeds_to_catch: Option<u64>,
    /// The oracle that caught it, or why it was not caught.
    pub note: String,
}

/// Builds and runs mutant `name` over `seeds` seeds of `profile` from seed `start`.
pub fn run_mutant(
    name: &'static str,
    seeds: u64,
    start: u64,
    profile: &str,
    target_root: &Path,
) -> MutantResult {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "myelon-dst",
            "--bin",
            "dst",
            "--",
        ])
        .args(["run", "--stop-on-first", "--quiet", "--jobs", "1"])
        .args([
            "--seeds",
            &seeds.to_string(),
            "--start-seed",
            &start.to_string(),
        ])
        .args(["--profile", profile])
        .env("RUSTFLAGS", format!("--cfg myelon_mutant=\"{name}\""))
        .env("CARGO_TARGET_DIR", target_root.join(name))
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            return MutantResult {
                name,
                seeds_to_catch: None,
                note: format!("could not start cargo: {e}"),
            }
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = stdout.lines().find(|l| l.starts_with("FAIL seed "));
    match first {
        Some(line) => {
            let mut parts = line.split_whitespace();
            let seed = parts
                .nth(2)
                .and_then(crate::workload::parse_u64)
                .unwrap_or(start);
            let oracle = line
                .split('[')
                .nth(1)
                .and_then(|r| r.split(']').next())
                .unwrap_or("?")
                .to_string();
            MutantResult {
                name,
                seeds_to_catch: Some(seed.wrapping_sub(start) + 1),
                note: format!("caught by [{oracle}] at seed {seed:#x}"),
            }
        }
        None if out.status.success() => MutantResult {
            name,
            seeds_to_catch: None,
            note: format!("SURVIVED {seeds} seeds"),
        },
        None => MutantResult {
            name,
            seeds_to_catch: None,
            note: format!(
                "build or run failed: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .filter(|l| l.contains("error"))
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
        },
    }
}
