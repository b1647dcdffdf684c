//! Kill -9 a consumer at random instants, many times over one stream.
//!
//! One ring, a producer (this process) streaming without pause, two witness consumers that
//! verify every event from 0 to the end, and a victim id `v` whose process is SIGKILLed once
//! per run and started again under the same id. The instant is random: half of the runs kill
//! it a random delay after it was spawned (from before `main` to inside registration: the
//! registry lock and the take-over of the entry), the other half a random delay after it
//! attached (inside receives and releases). After each kill this process reads the entry's
//! committed cursor (`RingInspector`), and the next incarnation that reports its start must
//! start exactly one past it; each incarnation checks every sequence and checksum it reads, so
//! a wrong start, a gap, a duplicate or an overwritten slot fails it (and then it did not die
//! of our SIGKILL). At the end the witnesses must have received every event, the last victim
//! everything after its start.

use super::{
    campaign_runs, committed_cursor, figures, parse_attached, random_pause, verified, verifier,
    Rng, LONG,
};
use crate::common::process::{ChildProc, SegmentGuard};
use crate::common::{fill, Event};
use myelon::backend::ShmBackend;
use myelon::observability::RingInspector;
use myelon::{build_shared_single_producer, CoordinationMode, SharedProducer};
use myelon_test_support::NoMarker;
use std::os::unix::process::ExitStatusExt;
#[allow(clippy::disallowed_types)] // a stop flag between two threads of this process
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const CAP: usize = 256;
const VICTIM: &str = "v";
const WITNESSES: [&str; 2] = ["w0", "w1"];
/// Longest random delay after the victim attached (it is receiving meanwhile).
const AFTER_ATTACH: Duration = Duration::from_millis(4);

/// The producer on a thread of its own, publishing `0, 1, 2, ..` until stopped.
struct Stream {
    #[allow(clippy::disallowed_types)] // process-local stop flag, never in shared memory
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Stream {
    fn start(mut p: SharedProducer<Event>) -> Stream {
        #[allow(clippy::disallowed_types)] // process-local stop flag, never in shared memory
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut next = 0u64;
            while !flag.load(Ordering::Relaxed) {
                // A dead victim gates the ring until its next incarnation attaches: the
                // deadline only turns a wedged producer into a failure.
                p.publish_timeout(LONG, |e| fill(e, next))
                    .unwrap_or_else(|e| panic!("HANG: publish {next}: {e}"));
                next += 1;
            }
            next // dropping `p` closes the stream
        });
        Stream {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops publishing, closes the stream; returns how many events were published.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take().expect("running");
        t.join().expect("publisher thread")
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Counts of the campaign, printed at the end whatever happened.
#[derive(Debug, Default)]
struct Tally {
    kills: u64,
    /// Incarnations killed before they reported their start (before or inside registration,
    /// or just after it).
    killed_before_report: u64,
    rejoins_checked: u64,
    wrong_starts: Vec<String>,
    /// Events skipped by incarnations that started past their committed cursor + 1.
    skipped: u64,
    hangs: u64,
}

/// Kills one incarnation at a random instant and, if it reported where it started, checks that
/// against `next`. `Err`: a deadline passed (`TimedOut`) or the child ended on its own.
fn kill_one(
    v: &mut ChildProc,
    rng: &mut Rng,
    startup: &mut Duration,
    next: i64,
    t: &mut Tally,
) -> Result<(), NoMarker> {
    let spawned = Instant::now();
    if rng.coin() {
        v.try_expect("ATTACHED", LONG)?;
        *startup = spawned.elapsed();
        random_pause(rng.delay(AFTER_ATTACH));
    } else {
        random_pause(rng.delay(*startup * 3 / 2));
    }
    let status = v.kill();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the victim ended on its own: {status}\n{}",
        v.transcript()
    );
    if !v.wait_output_closed(LONG) {
        return Err(NoMarker::TimedOut);
    }
    t.kills += 1;
    match v.marker("ATTACHED") {
        Some(line) => check_start(&line, next, t),
        None => t.killed_before_report += 1,
    }
    Ok(())
}

fn check_start(line: &str, next: i64, t: &mut Tally) {
    let (first, resumed) = parse_attached(line);
    t.rejoins_checked += 1;
    t.skipped += (first - next).max(0) as u64;
    if first != next || !resumed {
        t.wrong_starts.push(format!(
            "started at {first} (resumed={resumed}), committed cursor + 1 = {next}"
        ));
    }
}

#[test]
fn consumer_kill_campaign() {
    let started = Instant::now();
    let runs = campaign_runs();
    let mut rng = Rng::for_test("consumer_kill_campaign");
    let seg = SegmentGuard::new("ckill");
    let mut witnesses: Vec<ChildProc> = WITNESSES
        .iter()
        .map(|id| verifier(seg.name(), id, CAP))
        .collect();
    let p = build_shared_single_producer(seg.name(), CAP)
        .with_consumer_ids(WITNESSES.iter().chain([&VICTIM]).copied())
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .build_producer(Event::default)
        .expect("producer");
    let stream = Stream::start(p);
    let inspector = RingInspector::open(ShmBackend, seg.name()).expect("inspector");
    let mut t = Tally::default();
    // Where the next incarnation must start: the reservation's cursor is -1.
    let mut next = 0i64;
    let mut startup = Duration::from_millis(20);
    for _ in 0..runs {
        let mut v = verifier(seg.name(), VICTIM, CAP);
        match kill_one(&mut v, &mut rng, &mut startup, next, &mut t) {
            Ok(()) => {}
            Err(NoMarker::TimedOut) => {
                t.hangs += 1;
                break;
            }
            Err(NoMarker::Closed) => panic!("the victim died on its own\n{}", v.transcript()),
        }
        let cursor = committed_cursor(&inspector, VICTIM).expect("the victim's entry stays");
        assert!(
            cursor + 1 >= next,
            "committed cursor went back: {cursor} after a start at {next}"
        );
        next = cursor + 1;
    }
    let mut last = verifier(seg.name(), VICTIM, CAP);
    let attached = last.try_expect("ATTACHED", LONG);
    if let Ok(line) = &attached {
        check_start(line, next, &mut t);
    }
    let published = stream.stop();
    let mut lost = t.skipped;
    for (w, id) in witnesses.iter_mut().zip(WITNESSES) {
        lost += received(w, id, 0..published, &mut t.hangs);
    }
    let tail = next.max(0) as u64..published;
    lost += received(&mut last, "last victim", tail, &mut t.hangs);
    figures(
        "consumer_kill_campaign",
        started,
        &[
            ("runs", runs.to_string()),
            ("kills", t.kills.to_string()),
            ("killed_before_report", t.killed_before_report.to_string()),
            ("rejoins_checked", t.rejoins_checked.to_string()),
            ("wrong_starts", t.wrong_starts.len().to_string()),
            ("victim_cursor_before_last", next.to_string()),
            ("events", published.to_string()),
            ("lost", lost.to_string()),
            ("hangs", t.hangs.to_string()),
        ],
    );
    assert!(attached.is_ok(), "the last victim never attached");
    assert_eq!(t.hangs, 0, "a deadline passed (see above)");
    assert!(t.wrong_starts.is_empty(), "{:#?}", t.wrong_starts);
    assert_eq!(lost, 0);
    assert_eq!(t.kills, runs);
    for w in &mut witnesses {
        w.finish(LONG);
    }
    last.finish(LONG);
}

/// How many events of `range` the verifying consumer `c` did not receive (it verified the
/// order and contents of those it did); a hang is counted in `hangs`.
fn received(c: &mut ChildProc, who: &str, range: std::ops::Range<u64>, hangs: &mut u64) -> u64 {
    let want = range.end - range.start;
    match c.try_expect("VERIFIED", LONG) {
        Ok(v) if v == verified(range.clone()) => 0,
        Ok(v) => {
            let count = v
                .split_whitespace()
                .find_map(|w| w.strip_prefix("count=")?.parse::<u64>().ok())
                .unwrap_or(0);
            println!("{who}: VERIFIED {v}, want {}", verified(range));
            want.saturating_sub(count).max(1)
        }
        Err(NoMarker::TimedOut) => {
            *hangs += 1;
            0
        }
        Err(NoMarker::Closed) => panic!("{who} failed\n{}", c.transcript()),
    }
}
