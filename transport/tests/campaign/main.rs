//! The reliability campaign (issue 10, item 6; issue 15, item 4): real processes killed with
//! SIGKILL at random instants (consumers, the producer, one producer of a multi-producer ring),
//! racing reclaimers, a consumer in another PID namespace, and a soak with
//! attach/detach churn. Every test prints its figures (`campaign <test>: runs=.. kills=..
//! lost=.. hangs=..`); `-- --nocapture` shows them.
//!
//! Bounded by default (about a minute on two cores); the long sweep:
//!
//! ```text
//! MYELON_CAMPAIGN_RUNS=1000 MYELON_SOAK_SECS=60 \
//!   cargo test -p myelon --all-features --test campaign -- --nocapture --test-threads=1
//! ```
//!
//! * `MYELON_CAMPAIGN_RUNS` (default 500): consumer kills; producer kills are a quarter of it,
//!   reclaim races a tenth, and kills of one producer of a multi-producer ring a twenty-fifth.
//! * `MYELON_SOAK_SECS` (default 10): length of the soak.
//! * `MYELON_CAMPAIGN_SEED`: the seed of the random kill instants (printed by every test).
//! * `MYELON_REQUIRE_ROOT_TESTS=1`: the PID-namespace tests fail instead of skipping without
//!   root or `unshare`.
//!
//! A "hang" is a deadline ([`LONG`]) that passed while waiting for something a working ring
//! delivers in microseconds: the deadline detects hangs, it measures nothing. Nothing here
//! sleeps to wait for a condition; the only sleeps are the random delays that place a kill.
//! Every child is killed and reaped, and every name unlinked, when its test ends, passed or
//! failed.

#[path = "../common/mod.rs"]
mod common;

mod consumer_kills;
mod multi_producer_kills;
mod pid_namespace;
mod producer_kills;
mod reclaimers;
mod soak;

use common::checksum;
use common::process::{env_str, report, ChildProc, Spawn, CHILD_OK, ID_VAR, SEGMENT_VAR};
use common::Event;
use myelon::backend::ShmBackend;
use myelon::observability::RingInspector;
use myelon::{attach_shared_consumer, AutoWaitStrategy, MultiProcessError, SharedConsumer};
use std::time::{Duration, Instant};

/// Full path of the role entry test, as `--exact` needs it.
pub const ENTRY: &str = "child_role";
/// Deadline of any one step (a marker line, an attach, a receive): a hang detector.
pub const LONG: Duration = Duration::from_secs(30);
/// Events a verifying consumer takes per batch.
const BATCH: usize = 256;

/// Entry point of every child process; a no-op in a normal test run.
#[test]
fn child_role() {
    let Some(role) = common::process::role() else {
        return;
    };
    match role.as_str() {
        "verifier" => verifier_role(),
        "watcher" => producer_kills::watcher_role(),
        "streamer" => producer_kills::streamer_role(),
        "mp_survivor" => multi_producer_kills::survivor_role(),
        "mp_victim" => multi_producer_kills::victim_role(),
        "mp_reader" => multi_producer_kills::reader_role(),
        "racer" => reclaimers::racer_role(),
        "doomed" => reclaimers::doomed_role(),
        "ns_consumer" => pid_namespace::ns_consumer_role(),
        "soak_producer" => soak::producer_role(),
        "soak_consumer" => soak::consumer_role(),
        "soak_churner" => soak::churner_role(),
        "soak_visitor" => soak::visitor_role(),
        other => panic!("unknown child role {other:?}"),
    }
    report(CHILD_OK, role);
}

// ---------------------------------------------------------------------------------------------
// Knobs, randomness, figures
// ---------------------------------------------------------------------------------------------

/// `MYELON_CAMPAIGN_RUNS`, or 200.
pub fn campaign_runs() -> u64 {
    env_or("MYELON_CAMPAIGN_RUNS", 500)
}

/// A numeric environment variable (decimal or `0x` hex), or `default`.
pub fn env_or(var: &str, default: u64) -> u64 {
    match std::env::var(var) {
        Ok(v) => parse_u64(&v).unwrap_or_else(|| panic!("{var}={v:?} is not a number")),
        Err(_) => default,
    }
}

fn parse_u64(v: &str) -> Option<u64> {
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// splitmix64 over a seed printed at the start of each test, so the kill instants of a run can
/// be drawn again (`MYELON_CAMPAIGN_SEED`); the instants are only as repeatable as the
/// scheduler lets them be.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// The seed from `MYELON_CAMPAIGN_SEED`, or one from the clock; prints it.
    pub fn for_test(test: &str) -> Rng {
        let seed = std::env::var("MYELON_CAMPAIGN_SEED")
            .ok()
            .and_then(|v| parse_u64(&v))
            .unwrap_or_else(|| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                t.as_nanos() as u64 ^ u64::from(std::process::id())
            });
        println!("campaign {test}: seed {seed:#x} (MYELON_CAMPAIGN_SEED={seed:#x} draws the same instants)");
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// A duration uniform in `[0, max]`, at microsecond resolution.
    pub fn delay(&mut self, max: Duration) -> Duration {
        let us = max.as_micros() as u64;
        Duration::from_micros(self.next_u64() % (us + 1))
    }
}

/// Sleeps `d`: the random delay that places a kill (the campaign's randomness, not a wait).
pub fn random_pause(d: Duration) {
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

/// Prints one figures line, `campaign <test>: k=v k=v ...`.
pub fn figures(test: &str, started: Instant, pairs: &[(&str, String)]) {
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "campaign {test}: {} time={:.1}s",
        body.join(" "),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// Shared child side: a consumer that verifies every event it receives
// ---------------------------------------------------------------------------------------------

/// Attaches consumer `id` of `segment` (blocking waits, so idle consumers leave the cores to
/// the others).
pub fn attach(segment: &str, capacity: usize, id: &str) -> SharedConsumer<Event> {
    attach_shared_consumer::<Event>(segment, capacity)
        .with_consumer_id(id)
        .with_attach_timeout(LONG)
        .with_wait_strategy(AutoWaitStrategy::Block)
        .build_consumer()
        .unwrap_or_else(|e| panic!("attach {id:?} to {segment:?}: {e}"))
}

/// `ATTACHED first=<next sequence> resumed=<bool>`, parsed.
pub fn parse_attached(line: &str) -> (i64, bool) {
    let mut first = None;
    let mut resumed = None;
    for w in line.split_whitespace() {
        if let Some(v) = w.strip_prefix("first=") {
            first = v.parse().ok();
        } else if let Some(v) = w.strip_prefix("resumed=") {
            resumed = v.parse().ok();
        }
    }
    match (first, resumed) {
        (Some(f), Some(r)) => (f, r),
        _ => panic!("malformed ATTACHED line {line:?}"),
    }
}

/// Receives from `c` until `until` says stop, checking that sequences are contiguous from
/// `c.next_sequence()` and every checksum; returns `(first, count, sum of checksums, the
/// error that ended it)`. A gap, a reorder or a torn event panics.
pub fn verify_until(
    c: &mut SharedConsumer<Event>,
    until: impl Fn(&MultiProcessError) -> bool,
) -> (u64, u64, u64, MultiProcessError) {
    let first = c.next_sequence() as u64;
    let (mut next, mut sum) = (first, 0u64);
    loop {
        let r = c.consume_batch_timeout(BATCH, LONG, |e, s, _| {
            assert_eq!(s, next as i64, "lease sequence");
            assert_eq!(e.sequence, next, "sequence gap or reorder");
            assert_eq!(e.checksum, checksum(next), "torn or corrupt event {next}");
            sum = sum.wrapping_add(e.checksum);
            next += 1;
        });
        match r {
            Ok(_) => {}
            Err(e) if until(&e) => return (first, next - first, sum, e),
            Err(e) => panic!("receive at {next}: {e}"),
        }
    }
}

/// Attaches as `MYELON_TEST_ID` to `MYELON_TEST_SEGMENT` (capacity `MYELON_TEST_CAPACITY`),
/// reports where it starts, verifies everything to the end of the stream and reports
/// `VERIFIED first=.. count=.. sum=..`.
fn verifier_role() {
    let capacity = common::process::env_u64(CAPACITY_VAR) as usize;
    let mut c = attach(&env_str(SEGMENT_VAR), capacity, &env_str(ID_VAR));
    let attached = format!("first={} resumed={}", c.next_sequence(), c.resumed());
    report("ATTACHED", attached);
    let (first, count, sum, _) = verify_until(&mut c, |e| matches!(e, MultiProcessError::Closed));
    report("VERIFIED", format!("first={first} count={count} sum={sum}"));
}

/// Environment variable carrying a ring capacity to a child.
pub const CAPACITY_VAR: &str = "MYELON_TEST_CAPACITY";

/// A verifying consumer child (`verifier` role) of `segment`.
pub fn verifier(segment: &str, id: &str, capacity: usize) -> ChildProc {
    Spawn::new(ENTRY, "verifier")
        .env(SEGMENT_VAR, segment)
        .env(ID_VAR, id)
        .env(CAPACITY_VAR, capacity)
        .spawn()
}

/// What a `verifier` that read `range` reports.
pub fn verified(range: std::ops::Range<u64>) -> String {
    let sum = range.clone().fold(0u64, |a, s| a.wrapping_add(checksum(s)));
    format!(
        "first={} count={} sum={sum}",
        range.start,
        range.end - range.start
    )
}

/// The committed cursor of consumer `id` in the ring `inspector` reads (`None`: no such entry).
pub fn committed_cursor(inspector: &RingInspector<ShmBackend>, id: &str) -> Option<i64> {
    let s = inspector.snapshot();
    s.consumers.iter().find(|c| c.id == id).map(|c| c.cursor)
}

/// A deadline passed: counted, the campaign stops and fails after printing its figures.
#[derive(Debug)]
pub struct Hang;

/// Waits for a child's marker line: `Ok(value)`, or `Err(Hang)` after counting it in `hangs`
/// (the deadline passed; the transcript is printed), or a panic if the child died first.
pub fn await_marker(c: &mut ChildProc, key: &str, hangs: &mut u64) -> Result<String, Hang> {
    match c.try_expect(key, LONG) {
        Ok(v) => Ok(v),
        Err(myelon_test_support::NoMarker::TimedOut) => {
            *hangs += 1;
            println!("HANG: no {key:?} within {LONG:?}\n{}", c.transcript());
            Err(Hang)
        }
        Err(myelon_test_support::NoMarker::Closed) => {
            panic!("the child ended before {key:?}\n{}", c.transcript())
        }
    }
}
