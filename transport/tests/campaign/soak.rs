//! A soak: `MYELON_SOAK_SECS` (default 10; 60 in the long sweep) of streaming with attach and
//! detach churn, and the resident memory and open descriptors of the processes that live
//! through it, measured after a warm-up and at the end.
//!
//! A producer process streams without pause to a long-lived consumer (`steady`, reserved, so it
//! must receive every event) while a churner process attaches, reads a random number of events
//! and detaches, again and again, and this process starts short-lived visitor processes that do
//! the same once each. Each long-lived process reads its `VmRSS` (`/proc/self/status`) and
//! counts `/proc/self/fd` once warmed up and again at the end (the churner while detached): the
//! descriptor counts must be equal and the resident size may grow by at most [`RSS_SLACK_KB`]:
//! a descriptor or a mapping leaked per attach fails it, and so does heap leaked per attach
//! from a few hundred bytes up (the churner attaches about 140 times a second; 60 s bring that
//! down to tens of bytes).

use super::{env_or, figures, Rng, ENTRY, LONG};
use crate::common::process::{env_str, env_u64, report, ChildProc, SegmentGuard, Spawn};
use crate::common::process::{ID_VAR, SEGMENT_VAR};
use crate::common::{checksum, fill, Event};
use myelon::{build_shared_single_producer, CoordinationMode, MultiProcessError, SharedConsumer};
use std::time::{Duration, Instant};

const CAP: usize = 1024;
const STEADY: &str = "steady";
const SECS_VAR: &str = "MYELON_TEST_SOAK_SECS";
/// Resident-size growth allowed between the warm-up and the end, per process.
const RSS_SLACK_KB: u64 = 512;

fn soak_secs() -> u64 {
    env_or("MYELON_SOAK_SECS", 10).max(2)
}

/// The part of the soak a process lets pass before its first measurement.
fn warm_up(secs: u64) -> Duration {
    Duration::from_secs(secs).mul_f64(0.2)
}

/// `(VmRSS in KiB, open descriptors)` of this process.
fn footprint() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    let fds = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count() as u64;
    (rss, fds)
}

/// Takes the first footprint once `warm` has passed, and the last when asked.
struct Meter {
    warm_at: Instant,
    first: Option<(u64, u64)>,
}

impl Meter {
    fn new(secs: u64) -> Meter {
        Meter {
            warm_at: Instant::now() + warm_up(secs),
            first: None,
        }
    }

    fn tick(&mut self) {
        if self.first.is_none() && Instant::now() >= self.warm_at {
            self.first = Some(footprint());
        }
    }

    /// Reports `MEM <rss0> <fds0> <rss1> <fds1>`.
    fn report(self) {
        let (r0, f0) = self.first.expect("measured after the warm-up");
        let (r1, f1) = footprint();
        report("MEM", format!("{r0} {f0} {r1} {f1}"));
    }
}

/// Streams to `MYELON_TEST_SEGMENT` for the soak, then closes the stream.
pub fn producer_role() {
    let secs = env_u64(SECS_VAR);
    let mut p = build_shared_single_producer::<Event>(&env_str(SEGMENT_VAR), CAP)
        .with_consumer_id(STEADY)
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .build_producer(Event::default)
        .expect("producer");
    report("READY", std::process::id());
    let end = Instant::now() + Duration::from_secs(secs);
    let mut meter = Meter::new(secs);
    let mut next = 0u64;
    while Instant::now() < end {
        for _ in 0..1024 {
            p.publish_timeout(LONG, |e| fill(e, next))
                .unwrap_or_else(|e| panic!("HANG: publish {next}: {e}"));
            next += 1;
        }
        meter.tick();
    }
    meter.report();
    drop(p);
    report("PUBLISHED", next);
}

/// Reads up to `max` events (all, with `u64::MAX`), verifying order and contents; returns how
/// many it read and whether the stream ended.
fn read_some(c: &mut SharedConsumer<Event>, max: u64, meter: Option<&mut Meter>) -> (u64, bool) {
    let first = c.next_sequence() as u64;
    let mut next = first;
    let mut meter = meter;
    while next - first < max {
        let want = (max - (next - first)).min(256) as usize;
        let r = c.consume_batch_timeout(want, LONG, |e, _, _| {
            assert_eq!(
                (e.sequence, e.checksum),
                (next, checksum(next)),
                "gap or torn event"
            );
            next += 1;
        });
        match r {
            Ok(_) => {}
            Err(MultiProcessError::Closed) => return (next - first, true),
            Err(e) => panic!("receive at {next}: {e}"),
        }
        if let Some(m) = meter.as_deref_mut() {
            m.tick();
        }
    }
    (next - first, false)
}

/// The long-lived consumer: everything from 0 to the end of the stream.
pub fn consumer_role() {
    let secs = env_u64(SECS_VAR);
    let mut c = super::attach(&env_str(SEGMENT_VAR), CAP, STEADY);
    let mut meter = Meter::new(secs);
    let (count, closed) = read_some(&mut c, u64::MAX, Some(&mut meter));
    assert!(closed);
    meter.report();
    report("VERIFIED", count);
}

/// Attaches, reads a random number of events, detaches; again until 90 % of the soak passed.
pub fn churner_role() {
    let secs = env_u64(SECS_VAR);
    let end = Instant::now() + Duration::from_secs(secs).mul_f64(0.9);
    let segment = env_str(SEGMENT_VAR);
    let mut rng = Rng(std::process::id().into());
    let mut meter = Meter::new(secs);
    let (mut attaches, mut events) = (0u64, 0u64);
    while Instant::now() < end {
        let mut c = super::attach(&segment, CAP, &env_str(ID_VAR));
        attaches += 1;
        events += read_some(&mut c, 1 + rng.next_u64() % 2000, None).0;
        drop(c);
        meter.tick();
    }
    meter.report();
    report("CHURNED", format!("{attaches} {events}"));
}

/// Attaches once as `MYELON_TEST_ID`, reads up to 100 events, detaches.
pub fn visitor_role() {
    let mut c = super::attach(&env_str(SEGMENT_VAR), CAP, &env_str(ID_VAR));
    read_some(&mut c, 100, None);
}

fn mem_of(c: &mut ChildProc, who: &str, out: &mut Vec<(String, [u64; 4])>) {
    let v: Vec<u64> = c
        .expect("MEM", LONG)
        .split_whitespace()
        .map(|w| w.parse().expect("number"))
        .collect();
    out.push((who.to_string(), [v[0], v[1], v[2], v[3]]));
}

#[test]
fn soak_with_churn_keeps_memory_and_descriptors_flat() {
    let started = Instant::now();
    let secs = soak_secs();
    let seg = SegmentGuard::new("soak");
    let spawn = |role: &str, id: &str| {
        Spawn::new(ENTRY, role)
            .env(SEGMENT_VAR, seg.name())
            .env(ID_VAR, id)
            .env(SECS_VAR, secs)
            .spawn()
    };
    let mut producer = spawn("soak_producer", "-");
    producer.expect("READY", LONG);
    let mut steady = spawn("soak_consumer", STEADY);
    let mut churner = spawn("soak_churner", "churn");
    let mut visitors = 0u64;
    while started.elapsed() < Duration::from_secs(secs).mul_f64(0.8) {
        spawn("soak_visitor", "visitor").finish(LONG);
        visitors += 1;
    }
    let mut mem = Vec::new();
    mem_of(&mut producer, "producer", &mut mem);
    mem_of(&mut steady, "steady", &mut mem);
    mem_of(&mut churner, "churner", &mut mem);
    let published: u64 = producer.expect("PUBLISHED", LONG).parse().expect("count");
    let verified: u64 = steady.expect("VERIFIED", LONG).parse().expect("count");
    let churned = churner.expect("CHURNED", LONG);
    let cells: Vec<(String, String)> = mem
        .iter()
        .flat_map(|(who, [r0, f0, r1, f1])| {
            [
                (format!("{who}_rss_kb"), format!("{r0}->{r1}")),
                (format!("{who}_fds"), format!("{f0}->{f1}")),
            ]
        })
        .collect();
    let mut pairs = vec![
        ("secs", secs.to_string()),
        ("events", published.to_string()),
        ("lost", published.saturating_sub(verified).to_string()),
        ("churner_attaches_events", churned.replace(' ', "/")),
        ("visitors", visitors.to_string()),
    ];
    pairs.extend(cells.iter().map(|(k, v)| (k.as_str(), v.clone())));
    figures("soak_with_churn", started, &pairs);
    assert_eq!(verified, published, "the steady consumer missed events");
    for (who, [r0, f0, r1, f1]) in &mem {
        assert_eq!(f1, f0, "{who}: open descriptors {f0} -> {f1}");
        assert!(r1 <= &(r0 + RSS_SLACK_KB), "{who}: VmRSS {r0} -> {r1} KiB");
    }
    for c in [&mut producer, &mut steady, &mut churner] {
        c.finish(LONG);
    }
}
