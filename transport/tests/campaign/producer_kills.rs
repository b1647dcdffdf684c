//! Kill -9 the producer at random instants: every consumer gets the typed `ProducerDead`.
//!
//! Two long-lived consumer processes (`watcher`s) attach, run after run, to a fresh ring whose
//! producer process streams without pause until it is SIGKILLed at a random instant: before the
//! watchers are told to attach (they then attach to a dead producer's ring), while they attach,
//! or a random delay after they attached; whichever, inside `publish`, between the slot write,
//! the stamp and the announcement. Each watcher verifies everything it receives and must end
//! with `ProducerDead` after receiving every event the producer announced (one more when the
//! kill fell between a stamp and its announcement: a consumer reads a stamped slot at once).
//! The time from the kill to each watcher's report is printed, not asserted: the consumers
//! notice within their producer-check interval (50 ms by default), the deadline only detects a
//! consumer that never does.

use super::{
    await_marker, campaign_runs, figures, random_pause, verify_until, Hang, Rng, ENTRY, LONG,
};
use crate::common::fill;
use crate::common::process::{
    env_str, read_command, report, ChildProc, SegmentGuard, Spawn, ID_VAR, SEGMENT_VAR,
};
use crate::common::Event;
use myelon::backend::ShmBackend;
use myelon::observability::{EntryKind, RingInspector};
use myelon::{build_shared_single_producer, CoordinationMode};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

const CAP: usize = 256;
const IDS: [&str; 2] = ["c0", "c1"];
/// Longest random delay before the kill, counted from the producer's `READY` or from the
/// watchers' attach.
const AFTER_ATTACH: Duration = Duration::from_millis(3);

/// Builds the ring `MYELON_TEST_SEGMENT` with both ids reserved and publishes until killed.
pub fn streamer_role() {
    let mut p = build_shared_single_producer::<Event>(&env_str(SEGMENT_VAR), CAP)
        .with_consumer_ids(IDS)
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .build_producer(Event::default)
        .expect("producer");
    report("READY", std::process::id());
    for next in 0u64.. {
        p.publish_timeout(LONG, |e| fill(e, next))
            .unwrap_or_else(|e| panic!("HANG: publish {next}: {e}"));
    }
}

/// Obeys `attach <run> <ring>` lines: attaches as `MYELON_TEST_ID`, reports `ATTACHED-<run>`,
/// verifies everything until an error and reports `END-<run> count=<n> err=<error>`.
pub fn watcher_role() {
    let id = env_str(ID_VAR);
    while let Some(cmd) = read_command() {
        let mut words = cmd.split_whitespace();
        let (Some("attach"), Some(run), Some(ring)) = (words.next(), words.next(), words.next())
        else {
            panic!("bad command {cmd:?}");
        };
        let mut c = super::attach(ring, CAP, &id);
        report(&format!("ATTACHED-{run}"), c.next_sequence());
        let (_, count, _, err) = verify_until(&mut c, |_| true);
        report(&format!("END-{run}"), format!("count={count} err={err:?}"));
    }
}

/// What one run saw.
#[derive(Debug, Default)]
struct Tally {
    kills: u64,
    attached_late: u64,
    producer_dead: u64,
    other_errors: Vec<String>,
    lost: u64,
    hangs: u64,
    /// Kill → report, per watcher (printed only).
    latencies: Vec<Duration>,
    /// How long the watchers took to attach, last time it was measured: the window of the
    /// kills placed from the producer's `READY`.
    attach_time: Duration,
}

fn parse_end(line: &str) -> (u64, String) {
    let count = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("count=")?.parse().ok())
        .unwrap_or_else(|| panic!("malformed END line {line:?}"));
    let err = line.split_once("err=").map_or("", |(_, e)| e).to_string();
    (count, err)
}

/// One ring, one producer killed at a random instant; both watchers' verdicts checked.
fn one_run(run: u64, watchers: &mut [ChildProc], rng: &mut Rng, t: &mut Tally) -> Result<(), Hang> {
    let seg = SegmentGuard::new("pkill");
    let mut producer = Spawn::new(ENTRY, "streamer")
        .env(SEGMENT_VAR, seg.name())
        .spawn();
    await_marker(&mut producer, "READY", &mut t.hangs)?;
    let attach = |watchers: &mut [ChildProc]| {
        for w in watchers.iter_mut() {
            w.send(&format!("attach {run} {}", seg.name()));
        }
    };
    // Three kinds of instant: before the watchers are told to attach (they attach to a dead
    // producer's ring), while they attach, and after they attached.
    let kind = rng.next_u64() % 3;
    if kind == 0 {
        random_pause(rng.delay(AFTER_ATTACH));
    } else {
        attach(watchers);
        let asked = Instant::now();
        if kind == 1 {
            random_pause(rng.delay(t.attach_time * 2));
        } else {
            for w in watchers.iter_mut() {
                await_marker(w, &format!("ATTACHED-{run}"), &mut t.hangs)?;
            }
            t.attach_time = asked.elapsed();
            random_pause(rng.delay(AFTER_ATTACH));
        }
    }
    let status = producer.kill();
    let killed = Instant::now();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the producer ended on its own: {status}\n{}",
        producer.transcript()
    );
    t.kills += 1;
    let snapshot = RingInspector::open(ShmBackend, seg.name())
        .expect("the dead producer's ring is still there")
        .snapshot();
    let announced = snapshot.events_published;
    // Watchers not attached yet right after the kill (one that attaches in between is counted
    // as attached): they attach to a dead producer's ring.
    t.attached_late += snapshot
        .consumers
        .iter()
        .filter(|c| c.kind == EntryKind::Reserved)
        .count() as u64;
    if kind == 0 {
        attach(watchers);
    }
    for w in watchers.iter_mut() {
        let line = await_marker(w, &format!("END-{run}"), &mut t.hangs)?;
        t.latencies.push(killed.elapsed());
        let (count, err) = parse_end(&line);
        if err == "ProducerDead" {
            t.producer_dead += 1;
        } else {
            t.other_errors.push(format!("run {run}: {err}"));
        }
        t.lost += announced.saturating_sub(count);
        assert!(
            count <= announced + 1,
            "run {run}: received {count} events, the producer announced {announced}"
        );
    }
    Ok(())
}

#[test]
fn producer_kill_campaign() {
    let started = Instant::now();
    let runs = campaign_runs() / 4;
    let mut rng = Rng::for_test("producer_kill_campaign");
    let mut watchers: Vec<ChildProc> = IDS
        .iter()
        .map(|id| Spawn::new(ENTRY, "watcher").env(ID_VAR, id).spawn())
        .collect();
    let mut t = Tally {
        attach_time: Duration::from_millis(5),
        ..Tally::default()
    };
    for run in 0..runs {
        if one_run(run, &mut watchers, &mut rng, &mut t).is_err() {
            break;
        }
    }
    t.latencies.sort();
    let at = |q: f64| {
        let i = ((t.latencies.len() as f64 - 1.0) * q).round() as usize;
        t.latencies
            .get(i)
            .map_or("-".into(), |d| format!("{:.1}ms", d.as_secs_f64() * 1e3))
    };
    figures(
        "producer_kill_campaign",
        started,
        &[
            ("runs", runs.to_string()),
            ("kills", t.kills.to_string()),
            ("consumers", IDS.len().to_string()),
            ("producer_dead", t.producer_dead.to_string()),
            ("other_errors", t.other_errors.len().to_string()),
            ("attached_after_kill", t.attached_late.to_string()),
            ("lost", t.lost.to_string()),
            ("hangs", t.hangs.to_string()),
            ("detect_p50", at(0.5)),
            ("detect_max", at(1.0)),
        ],
    );
    assert_eq!(t.hangs, 0, "a deadline passed");
    assert!(t.other_errors.is_empty(), "{:#?}", t.other_errors);
    assert_eq!(t.producer_dead, runs * IDS.len() as u64);
    assert_eq!(t.lost, 0);
    for w in &mut watchers {
        w.finish(LONG);
    }
}
