//! Racing reclaimers: eight processes build a producer under the same name at once.
//!
//! Each round first leaves something under the name: in two rounds of three, whatever a
//! producer process SIGKILLed at a random instant left (nothing yet, an unfinished object, or
//! a whole ring with events: a stale segment); in the third, a live producer's ring. Then
//! eight racer processes, released together, build a producer of that name. Over a stale
//! segment exactly one must win and the seven others get a typed error; over a live ring all
//! eight must lose. Whatever stands under the name afterwards must be the winner's (or the live
//! producer's) ring, the same object (inode) it created, with its events intact: a consumer
//! attaching under the id it reserved receives them all, then the end of the stream.

use super::{await_marker, campaign_runs, figures, random_pause, Hang, Rng, ENTRY, LONG};
use crate::common::process::{
    env_str, read_command, report, ChildProc, SegmentGuard, Spawn, SEGMENT_VAR,
};
use crate::common::{checksum, fill, Event};
use myelon::{build_shared_single_producer, CoordinationMode, MultiProcessError, SharedProducer};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const CAP: usize = 64;
const RACERS: usize = 8;
/// Events every ring of this test holds before anyone reads it.
const M: u64 = 16;
/// The id every producer of this test reserves, so the check reads its ring from sequence 0.
const CHECK_ID: &str = "check";

fn path(name: &str) -> PathBuf {
    PathBuf::from("/dev/shm").join(name)
}

fn inode(name: &str) -> Option<u64> {
    std::fs::symlink_metadata(path(name)).ok().map(|m| m.ino())
}

fn build(name: &str) -> Result<SharedProducer<Event>, MultiProcessError> {
    let mut p = build_shared_single_producer::<Event>(name, CAP)
        .with_consumer_id(CHECK_ID)
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .build_producer(Event::default)?;
    for s in 0..M {
        p.try_publish(|e| fill(e, s)).expect("M events fit");
    }
    Ok(p)
}

/// Holds a ring until stdin closes (or until it is killed).
fn hold(p: SharedProducer<Event>) {
    let _ = read_command();
    drop(p);
}

/// A producer of `MYELON_TEST_SEGMENT`: reports `READY <inode>`, holds it until stdin closes.
pub fn doomed_role() {
    let name = env_str(SEGMENT_VAR);
    let p = build(&name).expect("producer");
    report("READY", inode(&name).expect("created"));
    hold(p);
}

/// Waits for `go`, then builds a producer of `MYELON_TEST_SEGMENT`: `RESULT won <inode>` (and
/// holds it until stdin closes) or `RESULT lost <error>`.
pub fn racer_role() {
    let name = env_str(SEGMENT_VAR);
    report("WAITING", std::process::id());
    assert_eq!(read_command().as_deref(), Some("go"));
    match build(&name) {
        Ok(p) => {
            report("RESULT", format!("won {}", inode(&name).expect("created")));
            hold(p);
        }
        Err(e) => report("RESULT", format!("lost {e:?}")),
    }
}

/// What stood under the name when the racers started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Before {
    Nothing,
    Unfinished,
    StaleRing,
    LiveRing,
}

fn stale_kind(name: &str) -> Before {
    match std::fs::symlink_metadata(path(name)) {
        Err(_) => Before::Nothing,
        Ok(m) if m.mode() & 0o777 == 0o400 => Before::Unfinished,
        Ok(_) => Before::StaleRing,
    }
}

#[derive(Debug, Default)]
struct Tally {
    rounds: BTreeMap<String, u64>,
    winners: u64,
    losers: BTreeMap<String, u64>,
    bad_rounds: Vec<String>,
    hangs: u64,
    /// How long a producer process took to become ready, last time it was measured: the
    /// window of the kills placed from its spawn.
    startup: Duration,
}

/// The error's variant path, e.g. `Backend(AlreadyExists`.
fn variant(err: &str) -> String {
    err.split(" {").next().unwrap_or(err).to_string()
}

/// Kills a producer of `name` at a random instant (from spawn, or after it became ready).
fn leave_stale(name: &str, rng: &mut Rng, t: &mut Tally) -> Result<(), Hang> {
    let spawned = Instant::now();
    let mut doomed = Spawn::new(ENTRY, "doomed").env(SEGMENT_VAR, name).spawn();
    if rng.coin() {
        await_marker(&mut doomed, "READY", &mut t.hangs)?;
        t.startup = spawned.elapsed();
        random_pause(rng.delay(Duration::from_millis(1)));
    } else {
        // Before, while or just after it creates the ring.
        random_pause(rng.delay(t.startup * 3 / 2));
    }
    let status = doomed.kill();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "{}",
        doomed.transcript()
    );
    Ok(())
}

/// Reads the ring under `name` as the reserved consumer: every event, in order, then `Closed`
/// once `owner` (the producer process) lets go of it.
fn check_ring(name: &str, owner: &mut ChildProc) {
    let mut c = super::attach(name, CAP, CHECK_ID);
    assert!(c.resumed(), "the reservation of the ring's creator");
    for s in 0..M {
        let e = c.consume_next_timeout(LONG).expect("event");
        assert_eq!((e.sequence, e.checksum), (s, checksum(s)));
    }
    owner.close_stdin();
    let end = c.consume_next_timeout(LONG);
    assert!(matches!(end, Err(MultiProcessError::Closed)), "{end:?}");
    owner.finish(LONG);
}

fn one_round(round: u64, rng: &mut Rng, t: &mut Tally) -> Result<(), Hang> {
    let seg = SegmentGuard::new("race");
    let name = seg.name();
    let mut live = None;
    if round % 3 == 2 {
        let mut holder = Spawn::new(ENTRY, "doomed").env(SEGMENT_VAR, name).spawn();
        await_marker(&mut holder, "READY", &mut t.hangs)?;
        live = Some(holder);
    } else {
        leave_stale(name, rng, t)?;
    }
    let before = if live.is_some() {
        Before::LiveRing
    } else {
        stale_kind(name)
    };
    let ino_before = inode(name);
    *t.rounds.entry(format!("{before:?}")).or_default() += 1;
    let mut racers: Vec<ChildProc> = (0..RACERS)
        .map(|_| Spawn::new(ENTRY, "racer").env(SEGMENT_VAR, name).spawn())
        .collect();
    for r in &mut racers {
        await_marker(r, "WAITING", &mut t.hangs)?;
    }
    for r in &mut racers {
        r.send("go");
    }
    let mut winners = Vec::new();
    for (i, r) in racers.iter_mut().enumerate() {
        let result = await_marker(r, "RESULT", &mut t.hangs)?;
        match result.split_once(' ') {
            Some(("won", ino)) => winners.push((i, ino.parse::<u64>().expect("inode"))),
            Some(("lost", err)) => *t.losers.entry(variant(err)).or_default() += 1,
            _ => panic!("malformed RESULT {result:?}"),
        }
    }
    t.winners += winners.len() as u64;
    let want = usize::from(live.is_none());
    if winners.len() != want {
        t.bad_rounds.push(format!(
            "round {round} over {before:?}: {} winners",
            winners.len()
        ));
        return Ok(());
    }
    match (live.as_mut(), winners.first()) {
        (Some(holder), _) => {
            assert_eq!(
                inode(name),
                ino_before,
                "round {round}: the live ring was replaced"
            );
            check_ring(name, holder);
        }
        (None, Some(&(i, ino))) => {
            assert_eq!(
                inode(name),
                Some(ino),
                "round {round}: the winner's ring was replaced"
            );
            check_ring(name, &mut racers[i]);
        }
        (None, None) => unreachable!("one winner"),
    }
    for (i, r) in racers.iter_mut().enumerate() {
        if winners.first().map(|w| w.0) != Some(i) {
            r.finish(LONG);
        }
    }
    Ok(())
}

#[test]
fn racing_reclaimers_campaign() {
    let started = Instant::now();
    let rounds = (campaign_runs() / 10).max(3);
    let mut rng = Rng::for_test("racing_reclaimers_campaign");
    let mut t = Tally {
        startup: Duration::from_millis(5),
        ..Tally::default()
    };
    for round in 0..rounds {
        if one_round(round, &mut rng, &mut t).is_err() {
            break;
        }
    }
    let map = |m: &BTreeMap<String, u64>| {
        let v: Vec<String> = m.iter().map(|(k, n)| format!("{k}:{n}")).collect();
        v.join(",")
    };
    figures(
        "racing_reclaimers_campaign",
        started,
        &[
            ("rounds", rounds.to_string()),
            ("racers", RACERS.to_string()),
            ("before", map(&t.rounds)),
            ("winners", t.winners.to_string()),
            ("losers", map(&t.losers)),
            ("bad_rounds", t.bad_rounds.len().to_string()),
            ("hangs", t.hangs.to_string()),
        ],
    );
    assert_eq!(t.hangs, 0, "a deadline passed");
    assert!(t.bad_rounds.is_empty(), "{:#?}", t.bad_rounds);
    let typed: u64 = t.losers.values().sum();
    let live_rounds = t.rounds.get("LiveRing").copied().unwrap_or(0);
    assert_eq!(t.winners, rounds - live_rounds);
    assert_eq!(typed + t.winners, rounds * RACERS as u64);
    assert_eq!(
        t.losers.keys().collect::<Vec<_>>(),
        ["Backend(AlreadyExists"],
        "every loser is told the name is taken"
    );
}
