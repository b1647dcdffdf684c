//! Kill -9 one producer of a multi-producer ring at random instants: the ring moves on.
//!
//! One ring (`ring::multi`), created by this test process, which stays attached as an idle
//! producer (it never claims) so that the ring closes only at the end. Two `survivor` producer
//! processes publish numbered events (claims of 1 to 3) for the whole test; two
//! `reader` consumer processes verify everything they receive (the survivors pause 100 µs
//! after each claim, so the ring has room and the kills fall in the victim's claims as well as
//! in its waits for room). Run after run, a `victim`
//! producer process attaches with the same source id as the one before it (the restarted
//! producer of a real system), publishes numbered events (its own index space per
//! incarnation), and is SIGKILLed a random delay after it is ready: wherever it is, waiting for
//! room, between its claim and its stamps (a hole), or between two claims.
//!
//! The victim prints a line before each claim (`CLAIM idx k`), one after it (`CLAIMED seq`, the
//! first claimed sequence) and one after each commit (`PUB idx`): what it claimed and what it
//! published before the kill are known. After each kill the test reads the claim cursor `K`
//! and asks each reader to say when it is past `K` (everything the victim claimed is at or
//! below it): the ring moved on. Checked:
//!
//! * every reader gets past `K` (a deadline detects a reader stuck at the victim's hole);
//! * per-producer order, no duplicate, no torn event: every event is checked as it arrives,
//!   survivors' indices are contiguous, the victim's are contiguous within each incarnation;
//! * no loss: each survivor's events all arrive (counted), and of each incarnation of the
//!   victim at least everything up to its last `PUB` line, at most what it had claimed;
//! * holes: the slots a reader skipped (`abandoned_slots`) lie in the kill's range of the
//!   claim cursor, within the victim's last `CLAIMED` claim, at most its size per kill; both
//!   readers skip the very same slots, and their `abandoned_slots` equal the holes they saw.
//!
//! Printed, not asserted: the time from the kill to the first event a reader reads after the
//! hole (the reader is blocked on the hole until its next producer check: the bound is its
//! producer-check interval, 50 ms by default, plus scheduling), and from the kill to its report
//! of being past `K`. `MYELON_CAMPAIGN_RUNS / 25` kills (20 by default, 200 in the long sweep).

use super::{await_marker, campaign_runs, figures, random_pause, Hang, Rng, ENTRY, LONG};
use crate::common::process::{
    env_str, env_u64, read_command, report, ChildProc, SegmentGuard, Spawn, ID_VAR, SEGMENT_VAR,
};
use crate::common::Event;
use myelon::backend::ShmBackend;
use myelon::{
    attach_shared_multi_consumer, build_shared_multi_producer, AutoWaitStrategy, MultiProcessError,
    MultiProducer, Sourced,
};
use std::collections::{BTreeMap, VecDeque};
use std::os::unix::process::ExitStatusExt;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

const CAP: usize = 256;
const IDS: [&str; 2] = ["m0", "m1"];
const SURVIVORS: [u64; 2] = [1, 2];
/// The killed producer's source id, the same for every incarnation.
const VICTIM: u64 = 3;
/// The test process's idle producer.
const HOLDER: u64 = 100;
/// Longest random delay from the victim's `READY` to its kill.
const BEFORE_KILL: Duration = Duration::from_millis(5);
/// A survivor's pause after each claim it publishes: load shaping, not a wait for anything.
/// Flat out, the survivors keep the ring full, so the victim spends its life waiting for room
/// and is nearly always killed there, before its claim (no hole); paced, the ring has room and
/// the victim's claim windows get their share of the kills. The ring still fills up behind
/// every hole while the readers wait on it, so the producers' side of moving on is exercised.
const SURVIVOR_PACE: Duration = Duration::from_micros(100);
/// How long a reader's receive waits before it looks at its commands again.
const READER_POLL: Duration = Duration::from_millis(2);
const BATCH: usize = 64;
const SOURCE_VAR: &str = "MYELON_MP_SOURCE";
const INCARNATION_VAR: &str = "MYELON_MP_INCARNATION";

/// Claim size for a producer's event `idx`: 1, 2 or 3.
fn claim_size(idx: u64) -> usize {
    1 + (idx / 5 % 3) as usize
}

fn check_of(source: u64, idx: u64) -> u64 {
    (source.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ idx).wrapping_mul(0xff51_afd7_ed55_8ccd)
}

/// The victim's index of its `i`-th event in incarnation `inc`.
fn victim_idx(inc: u64, i: u64) -> u64 {
    (inc << 32) | i
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process of the machine.
fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The parent's command lines, read by a thread so that a busy loop can look without blocking.
fn commands() -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        while let Some(cmd) = read_command() {
            if tx.send(cmd).is_err() {
                break;
            }
        }
    });
    rx
}

fn producer(source: u64) -> MultiProducer<Event, ShmBackend> {
    build_shared_multi_producer::<Event>(&env_str(SEGMENT_VAR), CAP)
        .with_source_id(source)
        .with_attach_timeout(LONG)
        .build(Event::default)
        .unwrap_or_else(|e| panic!("attach producer {source}: {e}"))
}

/// Claims `k` slots (a deadline turns a stuck ring into a failure) and writes events
/// `idx..idx + k` of `source` into them; `report_claim` runs between the claim and the writes.
fn claim_and_write<'a>(
    p: &'a mut MultiProducer<Event, ShmBackend>,
    source: u64,
    idx: u64,
    k: usize,
    report_claim: impl FnOnce(i64),
) -> myelon::MultiClaim<'a, Event, ShmBackend> {
    let mut claim = p
        .claim_batch(k, Some(LONG))
        .unwrap_or_else(|e| panic!("HANG: producer {source} claim at {idx}: {e}"));
    report_claim(claim.first_sequence());
    for j in 0..k {
        let e = claim.slot_mut(j);
        e.sequence = idx + j as u64;
        e.checksum = check_of(source, e.sequence);
    }
    claim
}

/// Publishes events 0, 1, .. of `MYELON_MP_SOURCE` until told to stop (any command, or stdin
/// closed); reports `PUBLISHED <count>`.
pub fn survivor_role() {
    let source = env_u64(SOURCE_VAR);
    let mut p = producer(source);
    let stop = commands();
    report("READY", source);
    let mut idx = 0u64;
    while matches!(stop.try_recv(), Err(TryRecvError::Empty)) {
        let k = claim_size(idx);
        claim_and_write(&mut p, source, idx, k, |_| {}).commit();
        idx += k as u64;
        std::thread::sleep(SURVIVOR_PACE);
    }
    report("PUBLISHED", idx);
}

/// Incarnation `MYELON_MP_INCARNATION` of the victim: publishes until killed, saying what it
/// claims and what it published.
pub fn victim_role() {
    let inc = env_u64(INCARNATION_VAR);
    let mut p = producer(VICTIM);
    report("READY", inc);
    let mut i = 0u64;
    loop {
        let k = claim_size(i);
        report("CLAIM", format!("idx={i} k={k}"));
        let idx = victim_idx(inc, i);
        let claim = claim_and_write(&mut p, VICTIM, idx, k, |s| report("CLAIMED", s));
        claim.commit();
        i += k as u64;
        report("PUB", i - 1);
    }
}

/// What a reader checks as events arrive.
#[derive(Debug, Default)]
struct Verify {
    /// Next index of each survivor.
    next: BTreeMap<u64, u64>,
    /// The victim's current incarnation and its next index there.
    victim: Option<(u64, u64)>,
    /// Last index read of each finished incarnation of the victim.
    incarnations: Vec<(u64, u64)>,
}

impl Verify {
    fn check(&mut self, e: &Sourced<Event>, s: i64) {
        let (src, idx) = (e.source, e.event.sequence);
        assert_eq!(
            e.event.checksum,
            check_of(src, idx),
            "torn or corrupt event at sequence {s}: {e:?}"
        );
        if SURVIVORS.contains(&src) {
            let next = self.next.entry(src).or_default();
            assert_eq!(
                idx, *next,
                "survivor {src} at sequence {s}: gap, reorder or duplicate"
            );
            *next += 1;
            return;
        }
        assert_eq!(src, VICTIM, "unknown source at sequence {s}");
        let (inc, i) = (idx >> 32, idx & 0xffff_ffff);
        match self.victim {
            Some((cur, next)) if cur == inc => {
                assert_eq!(
                    i, next,
                    "victim incarnation {inc} at sequence {s}: gap, reorder or duplicate"
                );
            }
            Some((cur, next)) => {
                assert!(
                    inc > cur,
                    "victim incarnation {inc} after {cur} at sequence {s}"
                );
                assert_eq!(i, 0, "victim incarnation {inc} starts at {i}, sequence {s}");
                self.incarnations.push((cur, next - 1));
            }
            None => assert_eq!(i, 0, "victim incarnation {inc} starts at {i}, sequence {s}"),
        }
        self.victim = Some((inc, i + 1));
    }

    /// `inc:last` for every incarnation of the victim that was read.
    fn incarnations_line(mut self) -> String {
        if let Some((cur, next)) = self.victim.take() {
            self.incarnations.push((cur, next - 1));
        }
        let all: Vec<String> = self
            .incarnations
            .iter()
            .map(|(inc, last)| format!("{inc}:{last}"))
            .collect();
        all.join(",")
    }
}

/// Consumer `MYELON_TEST_ID`: verifies every event to the end of the stream. Obeys `past <run>
/// <K>` (reports `PAST-<run> <ns>` once its next sequence is past `K`) and reports each hole it
/// skipped (`HOLE first=.. n=.. t=<ns when the next event was read>`); at the end `COUNTS`,
/// `ABANDONED` and `INCARNATIONS`.
pub fn reader_role() {
    let id = env_str(ID_VAR);
    let mut c = attach_shared_multi_consumer::<Event>(&env_str(SEGMENT_VAR), CAP)
        .with_consumer_id(id.as_str())
        .with_attach_timeout(LONG)
        .with_wait_strategy(AutoWaitStrategy::Block)
        .build_consumer()
        .unwrap_or_else(|e| panic!("attach {id}: {e}"));
    report("ATTACHED", c.next_sequence());
    let cmds = commands();
    let mut targets: VecDeque<(u64, i64)> = VecDeque::new();
    let mut v = Verify::default();
    // A hole skipped and not yet followed by an event: (first sequence, slots).
    let mut hole: Option<(i64, u64)> = None;
    loop {
        while let Ok(cmd) = cmds.try_recv() {
            let w: Vec<&str> = cmd.split_whitespace().collect();
            match w.as_slice() {
                ["past", run, k] => targets.push_back((run.parse().unwrap(), k.parse().unwrap())),
                _ => panic!("bad command {cmd:?}"),
            }
        }
        while let Some(&(run, k)) = targets.front() {
            if c.next_sequence() <= k {
                break;
            }
            report(&format!("PAST-{run}"), mono_ns());
            targets.pop_front();
        }
        let (at, skipped_before) = (c.next_sequence(), c.abandoned_slots());
        let r = c.consume_batch_timeout(BATCH, READER_POLL, |e, s, _| v.check(e, s));
        // Skipped slots always come before the first event a call reads.
        let skipped = c.abandoned_slots() - skipped_before;
        if skipped > 0 {
            hole = match hole {
                Some((first, n)) if first + n as i64 == at => Some((first, n + skipped)),
                Some((first, n)) => panic!("hole {first}+{n} not followed by an event before {at}"),
                None => Some((at, skipped)),
            };
        }
        match r {
            Ok(n) if n > 0 => {
                if let Some((first, n)) = hole.take() {
                    report("HOLE", format!("first={first} n={n} t={}", mono_ns()));
                }
            }
            Ok(_) | Err(MultiProcessError::Timeout { .. }) => {}
            Err(MultiProcessError::Closed) => break,
            Err(e) => panic!("{id}: receive at {}: {e}", c.next_sequence()),
        }
    }
    assert!(
        hole.is_none(),
        "{id}: a hole at the end of the stream: {hole:?}"
    );
    let counts: Vec<String> = v.next.iter().map(|(s, n)| format!("{s}:{n}")).collect();
    report("COUNTS", counts.join(","));
    report("ABANDONED", c.abandoned_slots());
    report("INCARNATIONS", v.incarnations_line());
}

/// Every value of a `key ` line the child printed, in order.
fn values(child: &ChildProc, key: &str) -> Vec<String> {
    let pat = format!("{key} ");
    child
        .transcript()
        .lines()
        .filter(|l| !l.starts_with("[stderr]"))
        .filter_map(|l| {
            l.find(&pat)
                .map(|at| l[at + pat.len()..].trim().to_string())
        })
        .collect()
}

/// `k=v` field of a marker value.
fn field(value: &str, k: &str) -> u64 {
    let pat = format!("{k}=");
    value
        .split_whitespace()
        .find_map(|w| w.strip_prefix(pat.as_str())?.parse().ok())
        .unwrap_or_else(|| panic!("no {k} in {value:?}"))
}

/// One kill, as the test saw it.
#[derive(Debug)]
struct Kill {
    killed_ns: u64,
    /// The claim cursor right after the kill: the victim claimed nothing above it.
    cursor: i64,
    /// Last index the victim reported published (`PUB`).
    published: Option<u64>,
    /// Last index the victim may have published (end of its last `CLAIM`).
    claimed_max: Option<u64>,
    /// Size of the claim outstanding at the kill (0: none); with its first sequence if the
    /// victim reported it (`CLAIMED`).
    outstanding: u64,
    hole_at: Option<i64>,
}

/// Reads the victim's lines in order: what it had published and claimed when it died.
fn victim_kill(victim: &mut ChildProc, killed_ns: u64, cursor: i64) -> Kill {
    victim.wait_output_closed(LONG);
    let mut k = Kill {
        killed_ns,
        cursor,
        published: None,
        claimed_max: None,
        outstanding: 0,
        hole_at: None,
    };
    for line in victim.transcript().lines() {
        if let Some(at) = line.find("CLAIM ") {
            let v = &line[at + 6..];
            let (i, n) = (field(v, "idx"), field(v, "k"));
            k.claimed_max = Some(i + n - 1);
            k.outstanding = n;
            k.hole_at = None;
        } else if let Some(at) = line.find("CLAIMED ") {
            k.hole_at = Some(line[at + 8..].trim().parse().expect("CLAIMED seq"));
        } else if let Some(at) = line.find("PUB ") {
            k.published = Some(line[at + 4..].trim().parse().expect("PUB idx"));
            k.outstanding = 0;
            k.hole_at = None;
        }
    }
    k
}

/// What the whole test saw.
#[derive(Debug, Default)]
struct Tally {
    kills: Vec<Kill>,
    hangs: u64,
    /// Kill → reader past the claim cursor of the kill, in ns (per kill and reader).
    past: Vec<u64>,
}

/// One incarnation of the victim, killed a random delay after it is ready; every reader must
/// get past the claim cursor read after the kill.
fn one_kill(
    run: u64,
    seg: &str,
    holder: &MultiProducer<Event, ShmBackend>,
    readers: &mut [ChildProc],
    rng: &mut Rng,
    t: &mut Tally,
) -> Result<(), Hang> {
    let mut victim = Spawn::new(ENTRY, "mp_victim")
        .env(SEGMENT_VAR, seg)
        .env(INCARNATION_VAR, run)
        .spawn();
    await_marker(&mut victim, "READY", &mut t.hangs)?;
    random_pause(rng.delay(BEFORE_KILL));
    // Timed from the signal, so the kill → move-on times include the kill itself.
    let killed_ns = mono_ns();
    let status = victim.kill();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the victim ended on its own: {status}\n{}",
        victim.transcript()
    );
    let cursor = holder.claim_cursor();
    t.kills.push(victim_kill(&mut victim, killed_ns, cursor));
    for r in readers.iter_mut() {
        r.send(&format!("past {run} {cursor}"));
    }
    for r in readers.iter_mut() {
        let at: u64 = await_marker(r, &format!("PAST-{run}"), &mut t.hangs)?
            .parse()
            .expect("PAST ns");
        t.past.push(at.saturating_sub(killed_ns));
    }
    Ok(())
}

/// A reader's holes: (first sequence, slots, ns of the next event).
fn holes(reader: &ChildProc) -> Vec<(i64, u64, u64)> {
    values(reader, "HOLE")
        .iter()
        .map(|v| (field(v, "first") as i64, field(v, "n"), field(v, "t")))
        .collect()
}

/// Checks one reader's holes against the kills; returns the kill → next-event times.
fn check_holes(id: &str, holes: &[(i64, u64, u64)], kills: &[Kill]) -> Vec<u64> {
    let mut per_kill = vec![0u64; kills.len()];
    let mut move_on = Vec::new();
    for &(first, n, t) in holes {
        // The kill whose cursor range holds the hole: the victim of run `i` claimed only
        // sequences above the cursor read after kill `i - 1`.
        let i = kills.partition_point(|k| k.cursor < first);
        let k = kills
            .get(i)
            .unwrap_or_else(|| panic!("{id}: hole {first}+{n} after the last kill"));
        assert!(
            first + n as i64 - 1 <= k.cursor,
            "{id}: hole {first}+{n} crosses the claim cursor {} of kill {i}",
            k.cursor
        );
        if let Some(at) = k.hole_at {
            assert!(
                first >= at && first + n as i64 <= at + k.outstanding as i64,
                "{id}: hole {first}+{n} outside the victim's last claim {at}+{} (kill {i})",
                k.outstanding
            );
        }
        per_kill[i] += n;
        move_on.push(t.saturating_sub(k.killed_ns));
    }
    for (i, (n, k)) in per_kill.iter().zip(kills).enumerate() {
        assert!(
            *n <= k.outstanding,
            "{id}: {n} slots skipped for kill {i}, whose victim had {} outstanding: {k:?}",
            k.outstanding
        );
    }
    move_on
}

/// Checks one reader's view of the victim's incarnations: nothing published before a kill lost.
fn check_incarnations(id: &str, line: &str, kills: &[Kill]) -> u64 {
    let read: BTreeMap<u64, u64> = line
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (inc, last) = s.split_once(':').expect("inc:last");
            (inc.parse().unwrap(), last.parse().unwrap())
        })
        .collect();
    let mut lost = 0;
    for (inc, k) in kills.iter().enumerate() {
        let last = read.get(&(inc as u64)).copied();
        if let Some(p) = k.published {
            if last.is_none_or(|l| l < p) {
                println!("LOST: {id}: incarnation {inc} published up to {p}, read {last:?}");
                lost += p + 1 - last.map_or(0, |l| l + 1);
            }
        }
        if let Some(l) = last {
            assert!(
                k.claimed_max.is_some_and(|m| l <= m),
                "{id}: incarnation {inc} read up to {l}, claimed at most {:?}",
                k.claimed_max
            );
        }
    }
    lost
}

fn quantile_ms(sorted: &[u64], q: f64) -> String {
    if sorted.is_empty() {
        return "-".into();
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    format!("{:.1}ms", sorted[i] as f64 / 1e6)
}

#[test]
fn multi_producer_kill_campaign() {
    let started = Instant::now();
    let kills = (campaign_runs() / 25).max(1);
    let mut rng = Rng::for_test("multi_producer_kill_campaign");
    let seg = SegmentGuard::new("mpkill");
    let holder = build_shared_multi_producer::<Event>(seg.name(), CAP)
        .with_source_id(HOLDER)
        .with_consumer_ids(IDS)
        .build(Event::default)
        .expect("create the ring");
    let mut readers: Vec<ChildProc> = IDS
        .iter()
        .map(|id| {
            Spawn::new(ENTRY, "mp_reader")
                .env(SEGMENT_VAR, seg.name())
                .env(ID_VAR, id)
                .spawn()
        })
        .collect();
    let mut survivors: Vec<ChildProc> = SURVIVORS
        .iter()
        .map(|s| {
            Spawn::new(ENTRY, "mp_survivor")
                .env(SEGMENT_VAR, seg.name())
                .env(SOURCE_VAR, s)
                .spawn()
        })
        .collect();
    let mut t = Tally::default();
    for r in &mut readers {
        r.expect("ATTACHED", LONG);
    }
    for s in &mut survivors {
        s.expect("READY", LONG);
    }
    for run in 0..kills {
        if one_kill(run, seg.name(), &holder, &mut readers, &mut rng, &mut t).is_err() {
            break;
        }
    }
    // End of the stream: the survivors stop and detach, then the holder, which closes it.
    let mut published = BTreeMap::new();
    for (s, p) in SURVIVORS.iter().zip(&mut survivors) {
        p.send("stop");
        let n: u64 = p
            .expect("PUBLISHED", LONG)
            .parse()
            .expect("PUBLISHED count");
        published.insert(*s, n);
        p.finish(LONG);
    }
    drop(holder);
    let (mut lost, mut abandoned, mut move_on) = (0u64, 0u64, Vec::new());
    let mut seen_holes = Vec::new();
    for (id, r) in IDS.iter().zip(&mut readers) {
        let counts = r.expect("COUNTS", LONG);
        let want: Vec<String> = published.iter().map(|(s, n)| format!("{s}:{n}")).collect();
        assert_eq!(
            counts,
            want.join(","),
            "{id}: survivors' events read vs published"
        );
        let skipped: u64 = r.expect("ABANDONED", LONG).parse().expect("ABANDONED");
        let inc = r.expect("INCARNATIONS", LONG);
        r.finish(LONG);
        let h = holes(r);
        assert_eq!(
            h.iter().map(|x| x.1).sum::<u64>(),
            skipped,
            "{id}: abandoned_slots vs the holes it reported"
        );
        abandoned += skipped;
        move_on.extend(check_holes(id, &h, &t.kills));
        lost += check_incarnations(id, &inc, &t.kills);
        seen_holes.push(h.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>());
    }
    assert!(
        seen_holes.windows(2).all(|w| w[0] == w[1]),
        "the readers skipped different slots: {seen_holes:?}"
    );
    move_on.sort_unstable();
    t.past.sort_unstable();
    let with_claim = t.kills.iter().filter(|k| k.outstanding > 0).count();
    // Events the victims reported published before their kills (each one checked read).
    let reported: u64 = t
        .kills
        .iter()
        .filter_map(|k| k.published)
        .map(|p| p + 1)
        .sum();
    figures(
        "multi_producer_kill_campaign",
        started,
        &[
            ("kills", t.kills.len().to_string()),
            ("producers", format!("{}+victim", SURVIVORS.len())),
            ("consumers", IDS.len().to_string()),
            ("killed_in_a_claim", with_claim.to_string()),
            ("holes_per_reader", seen_holes[0].len().to_string()),
            (
                "abandoned_slots_per_reader",
                (abandoned / IDS.len() as u64).to_string(),
            ),
            (
                "survivor_events",
                published.values().sum::<u64>().to_string(),
            ),
            ("victim_events_reported", reported.to_string()),
            ("lost", lost.to_string()),
            ("hangs", t.hangs.to_string()),
            ("move_on_p50", quantile_ms(&move_on, 0.5)),
            ("move_on_p99", quantile_ms(&move_on, 0.99)),
            ("move_on_max", quantile_ms(&move_on, 1.0)),
            ("past_cursor_p99", quantile_ms(&t.past, 0.99)),
            ("past_cursor_max", quantile_ms(&t.past, 1.0)),
        ],
    );
    assert_eq!(t.hangs, 0, "a deadline passed");
    assert_eq!(t.kills.len() as u64, kills);
    assert_eq!(lost, 0);
}
