//! The planted bugs and the driver that proves the oracles catch each one with the oracle it
//! names. A mutant is compiled into `myelon` only (`MYELON_MUTANT=<name>`, see
//! `transport/build.rs`), in one shared target directory with the `mutants` profile, so
//! switching mutants rebuilds `myelon` and the harness, never the dependencies.

use std::path::Path;
use std::process::Command;

/// Which harness must catch a mutant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Harness {
    /// The public-API simulation (`dst api run`).
    Api,
    /// The liveness/framing step simulation (`dst run`).
    Steps,
}

/// A planted bug.
#[derive(Debug, Clone, Copy)]
pub struct Mutant {
    /// Its `myelon_mutant` name.
    pub name: &'static str,
    /// Where it lives and what it breaks.
    pub what: &'static str,
    /// The harness that must catch it.
    pub harness: Harness,
    /// The oracles allowed to catch it (any other is a failure of the check).
    pub oracles: &'static [&'static str],
}

const fn api(name: &'static str, what: &'static str, oracles: &'static [&'static str]) -> Mutant {
    Mutant {
        name,
        what,
        harness: Harness::Api,
        oracles,
    }
}

const fn steps(name: &'static str, what: &'static str, oracles: &'static [&'static str]) -> Mutant {
    Mutant {
        name,
        what,
        harness: Harness::Steps,
        oracles,
    }
}

/// Every mutant the DST must catch. (`relaxed_stamp` is loom's: `.ci/run` checks it there.)
pub const MUTANTS: &[Mutant] = &[
    api(
        "batch_late_announce",
        "ring/producer refresh_limit: a batch rescans with stamped, unannounced slots",
        &["overwrite"],
    ),
    api(
        "lost_wake",
        "ring/wait block_on: arms the futex wait but skips the re-check",
        &["lost-wakeup"],
    ),
    api(
        "batch_one_past_limit",
        "ring/producer try_publish_batch: the room check covers one slot less than the batch",
        &["overwrite"],
    ),
    api(
        "wrap_off_by_one",
        "ring/producer refresh_limit: one slot more than the gating minimum allows",
        &["overwrite"],
    ),
    api(
        "stamp_before_write",
        "ring/producer: the slot is published (stamped) before the event is written",
        &["overwrite", "torn-read"],
    ),
    api(
        "reserved_not_gating",
        "ring/registry gating_minimum: reservations stop gating",
        &["overwrite"],
    ),
    api(
        "rejoin_off_by_one",
        "ring/registry take_over: a same-id rejoin resumes one past its committed cursor",
        &["rejoin-start"],
    ),
    api(
        "release_before_read",
        "ring/consumer lease: the slot is released before the event is read",
        &["overwrite", "torn-read", "rejoin-start"],
    ),
    api(
        "closed_before_drain",
        "ring/consumer on_empty: end of stream reported without re-polling",
        &["loss"],
    ),
    api(
        "lock_takeover_live",
        "ring/registry lock: the registry lock is taken over from a live holder",
        &["overwrite", "gap", "duplicate", "rejoin-start"],
    ),
    api(
        "joining_resumed",
        "ring/registry register: a half-registered entry of a dead consumer is resumed",
        &["overwrite", "rejoin-start"],
    ),
    api(
        "reap_live_anonymous",
        "ring/registry reap_dead_anonymous: an anonymous entry is freed without proving its consumer dead",
        &["overwrite", "torn-read"],
    ),
    api(
        "reap_named",
        "ring/registry reap_dead_anonymous: dead consumers with an id are freed too (a rejoin restarts at the tail)",
        &["rejoin-start", "loss"],
    ),
    api(
        "reap_never",
        "ring/producer: a dead anonymous consumer's entry is never freed (it gates for ever)",
        &["wedge"],
    ),
    api(
        "framed_fragments_swapped",
        "framed producer fill_and_commit: two fragments of a long message trade places",
        &["torn-read"],
    ),
    api(
        "mp_skip_live_claim",
        "ring/multi live_producers: the hole check ignores live producers' intents",
        &["hole", "loss", "overwrite", "torn-read"],
    ),
    api(
        "mp_intent_after_cas",
        "ring/multi try_claim: the intent is stored after the claim's compare-and-swap",
        &["hole", "loss", "overwrite", "torn-read"],
    ),
    api(
        "mp_clear_intent_before_stamp",
        "ring/multi publish_range: the intent is cleared before the stamps",
        &["hole", "loss", "overwrite", "torn-read"],
    ),
    api(
        "mp_double_claim",
        "ring/multi try_claim: a plain store instead of the compare-and-swap",
        &["double-claim", "total-order", "loss", "overwrite", "torn-read", "source-order"],
    ),
    api(
        "mp_lap_unpublished",
        "ring/multi refresh_limit: the limit ignores other producers' unpublished claims (a slot is lapped before its late stamp)",
        &["loss", "overwrite", "torn-read", "total-order", "source-order"],
    ),
    steps(
        "alert_timer_not_reset",
        "liveness monitor: the stall timer is not reset by progress",
        &["liveness alerts"],
    ),
    steps(
        "rejoin_any_id",
        "liveness monitor: progress of any consumer counts as the stalled one's recovery",
        &["liveness alerts"],
    ),
    steps(
        "grace_from_stall_start",
        "liveness monitor: the grace period is measured from the stall start, not the alert",
        &["liveness shutdown"],
    ),
    steps(
        "startup_never_fires",
        "liveness monitor: the startup timeout never fires",
        &["liveness startup"],
    ),
    steps(
        "alert_repeats",
        "liveness monitor: the stall alert fires on every check, not once per window",
        &["liveness alerts"],
    ),
    steps(
        "healthy_check_late",
        "liveness monitor: while no alert is open, the next check is due two intervals later",
        &["liveness late"],
    ),
    steps(
        "reasm_accepts_non_first",
        "framed reassembly: a (re)joined consumer takes a non-first frame as a message start",
        &["framing"],
    ),
];

/// Outcome for one mutant.
#[derive(Debug, Clone)]
pub struct MutantResult {
    /// Its name.
    pub name: &'static str,
    /// Seeds run until the first failure (`None`: not caught).
    pub seeds_to_catch: Option<u64>,
    /// The oracle that caught it (as printed), if any.
    pub oracle: Option<String>,
    /// Whether that oracle is one the mutant names.
    pub expected: bool,
    /// What happened, for the report.
    pub note: String,
}

/// Builds mutant `m` and runs up to `seeds` seeds from `start` (`profile` for the step
/// harness) until the first failure.
pub fn run_mutant(
    m: &Mutant,
    seeds: u64,
    start: u64,
    profile: &str,
    target_dir: &Path,
) -> MutantResult {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["run", "--quiet", "--profile", "mutants", "-p", "myelon-dst"])
        .args(["--bin", "dst", "--"]);
    let (seeds_s, start_s) = (seeds.to_string(), start.to_string());
    match m.harness {
        Harness::Api => cmd.args(["api", "run", "--seeds", &seeds_s, "--start-seed", &start_s]),
        Harness::Steps => cmd
            .args(["run", "--stop-on-first", "--quiet", "--jobs", "1"])
            .args(["--seeds", &seeds_s, "--start-seed", &start_s])
            .args(["--profile", profile]),
    };
    cmd.env("MYELON_MUTANT", m.name)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS");
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => return result(m, None, None, format!("could not start cargo: {e}")),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout.lines().find(|l| l.starts_with("FAIL seed ")) else {
        let note = if out.status.success() {
            format!("SURVIVED {seeds} seeds")
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            let errs: Vec<&str> = err
                .lines()
                .filter(|l| l.contains("error"))
                .take(3)
                .collect();
            format!("build or run failed: {}", errs.join(" | "))
        };
        return result(m, None, None, note);
    };
    let seed = line
        .split_whitespace()
        .nth(2)
        .and_then(crate::workload::parse_u64)
        .unwrap_or(start);
    let oracle = line
        .split('[')
        .nth(1)
        .and_then(|r| r.split(']').next())
        .unwrap_or("?")
        .to_string();
    let note = format!("caught by [{oracle}] at seed {seed:#x}");
    result(m, Some(seed.wrapping_sub(start) + 1), Some(oracle), note)
}

fn result(m: &Mutant, n: Option<u64>, oracle: Option<String>, note: String) -> MutantResult {
    let expected = oracle.as_deref().is_some_and(|o| m.oracles.contains(&o));
    MutantResult {
        name: m.name,
        seeds_to_catch: n,
        oracle,
        expected,
        note,
    }
}
