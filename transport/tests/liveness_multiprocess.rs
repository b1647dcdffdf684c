//! Required-consumer liveness across real processes over POSIX shared memory: a SIGSTOPped
//! required consumer raises one alert and recovers on SIGCONT with nothing lost; a SIGKILLed
//! one restarted under its id before the grace period recovers; one never restarted ends in
//! `GracefulShutdownTriggered`; one never started in `StartupTimeout`; a dead non-required one
//! in `NonRequiredConsumerDead`.
//!
//! The producer runs in the test process (its alert hook feeds a channel); consumers are
//! re-executions of this binary (see `common/process.rs`). Nothing sleeps to wait for a
//! condition; the bounds only turn a hang into a failure.

mod common;

use common::process::{
    env_str, env_u64, read_command, report, ChildProc, SegmentGuard, Spawn, CHILD_OK, ID_VAR,
    SEGMENT_VAR,
};
use common::{checksum, fill, Event};
use myelon::{
    attach_shared_consumer, build_shared_single_producer, MultiProcessError, RequiredConsumerAlert,
    RequiredConsumerAlertKind, RequiredConsumerError, RequiredConsumerLivenessConfig,
    SharedConsumer, SharedProducer,
};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ENTRY: &str = "child_role";
const LONG: Duration = Duration::from_secs(30);
const CHILD_DEADLINE: Duration = Duration::from_secs(120);
const CAP: usize = 64;
const N: u64 = 4096;
const CAPACITY_VAR: &str = "MYELON_TEST_CAPACITY";
const STOP_AFTER_VAR: &str = "MYELON_TEST_STOP_AFTER";

/// Entry point of every child process; a no-op in a normal test run.
#[test]
fn child_role() {
    let Some(role) = common::process::role() else {
        return;
    };
    match role.as_str() {
        "consumer" => consumer_role(),
        other => panic!("unknown child role {other:?}"),
    }
    report(CHILD_OK, role);
}

fn consumer_role() {
    let mut c: SharedConsumer<Event> =
        attach_shared_consumer(&env_str(SEGMENT_VAR), env_u64(CAPACITY_VAR) as usize)
            .with_consumer_id(env_str(ID_VAR))
            .with_attach_timeout(LONG)
            .build_consumer()
            .expect("attach");
    report(
        "ATTACHED",
        format!("first={} resumed={}", c.next_sequence(), c.resumed()),
    );
    let first = c.next_sequence() as u64;
    let stop_after = std::env::var(STOP_AFTER_VAR)
        .ok()
        .map(|k| k.parse::<u64>().expect("count"));
    let (mut next, mut sum) = (first, 0u64);
    loop {
        if stop_after == Some(next - first) {
            report("RELEASED", next);
            let cmd = read_command();
            panic!("the stalled consumer was meant to be killed, got stdin {cmd:?}");
        }
        match c.consume_next_timeout(LONG) {
            Ok(e) => {
                assert_eq!(e.sequence, next, "gap or reorder");
                assert_eq!(e.checksum, checksum(next), "torn event {next}");
                sum = sum.wrapping_add(e.checksum);
                next += 1;
            }
            Err(MultiProcessError::Closed) => break,
            Err(e) => panic!("consume at {next}: {e}"),
        }
    }
    report(
        "VERIFIED",
        format!("first={first} count={} sum={sum}", next - first),
    );
}

fn consumer_child(segment: &str, id: &str, stop_after: Option<u64>) -> ChildProc {
    let mut s = Spawn::new(ENTRY, "consumer")
        .env(SEGMENT_VAR, segment)
        .env(ID_VAR, id)
        .env(CAPACITY_VAR, CAP);
    if let Some(k) = stop_after {
        s = s.env(STOP_AFTER_VAR, k);
    }
    s.spawn()
}

fn verified(range: std::ops::Range<u64>) -> String {
    let sum = range.clone().fold(0u64, |a, s| a.wrapping_add(checksum(s)));
    format!(
        "first={} count={} sum={sum}",
        range.start,
        range.end - range.start
    )
}

/// A producer with liveness for `ids`, its alerts on a channel.
fn producer(
    seg: &str,
    ids: &[&str],
    progress: Duration,
    grace: Duration,
    startup: Duration,
) -> (SharedProducer<Event>, Receiver<RequiredConsumerAlert>) {
    let mut p = build_shared_single_producer::<Event>(seg, CAP)
        .build_producer(Event::default)
        .expect("producer");
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let cfg = RequiredConsumerLivenessConfig::new(ids.iter().copied())
        .unwrap()
        .with_progress_timeout(progress)
        .unwrap()
        .with_progress_check_interval(progress / 10)
        .unwrap()
        .with_shutdown_grace_period(grace)
        .unwrap()
        .with_startup_wait_timeout(startup)
        .unwrap()
        .with_alert_hook(Arc::new(move |a| {
            let _ = tx.lock().unwrap().send(a.clone());
        }));
    p.enable_required_consumer_liveness(cfg).expect("enable");
    (p, rx)
}

fn next_alert(rx: &Receiver<RequiredConsumerAlert>) -> (RequiredConsumerAlertKind, String) {
    let a = rx.recv_timeout(LONG).expect("an alert");
    (a.kind, a.consumer_id)
}

fn publish_all(
    mut p: SharedProducer<Event>,
) -> std::thread::JoinHandle<Result<SharedProducer<Event>, RequiredConsumerError>> {
    std::thread::spawn(move || {
        for s in 0..N {
            p.publish_managed(|e| fill(e, s))?;
        }
        Ok(p)
    })
}

fn signal(child: &ChildProc, sig: libc::c_int) {
    // SAFETY: `kill(2)` on the pid of a child this test spawned and has not reaped.
    let rc = unsafe { libc::kill(child.pid() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({}, {sig})", child.pid());
}

/// The scheduler state letter of a process (`T` when stopped), from `/proc/<pid>/stat`.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim().chars().next()
}

/// Polls (with a deadline) until every thread of `child` has stopped.
fn wait_until_stopped(child: &ChildProc) {
    let deadline = std::time::Instant::now() + LONG;
    let all_stopped = || {
        let dir = format!("/proc/{}/task", child.pid());
        std::fs::read_dir(dir).is_ok_and(|tasks| {
            tasks.flatten().all(|t| {
                let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                stat.rsplit(')')
                    .next()
                    .and_then(|r| r.trim().chars().next())
                    .is_some_and(|s| s == 'T' || s == 't')
            })
        })
    };
    while !all_stopped() {
        assert!(
            std::time::Instant::now() < deadline,
            "child {} did not stop (state {:?})",
            child.pid(),
            process_state(child.pid())
        );
        std::thread::yield_now();
    }
}

#[test]
fn sigstopped_required_consumer_alerts_once_and_recovers_on_sigcont() {
    let seg = SegmentGuard::new("live-stop");
    let (p, rx) = producer(seg.name(), &["r0"], Duration::from_millis(300), LONG, LONG);
    let mut c = consumer_child(seg.name(), "r0", None);
    assert_eq!(c.expect("ATTACHED", LONG), "first=0 resumed=true");
    signal(&c, libc::SIGSTOP);
    // kill(2) returns before a busy child on another CPU has actually stopped; publishing
    // before it has would let it consume everything and never stall.
    wait_until_stopped(&c);
    let publisher = publish_all(p);
    assert_eq!(
        next_alert(&rx),
        (RequiredConsumerAlertKind::Stalled, "r0".into())
    );
    signal(&c, libc::SIGCONT);
    // Exactly one alert in the stall window: the next one is the recovery.
    assert_eq!(
        next_alert(&rx),
        (RequiredConsumerAlertKind::Recovered, "r0".into())
    );
    let p = publisher
        .join()
        .expect("publisher")
        .expect("every event published");
    drop(p);
    assert_eq!(c.expect("VERIFIED", CHILD_DEADLINE), verified(0..N));
    c.finish(LONG);
}

#[test]
fn sigkilled_required_consumer_restarted_under_its_id_recovers() {
    const K: u64 = 100;
    let seg = SegmentGuard::new("live-kill");
    let (p, rx) = producer(seg.name(), &["r0"], Duration::from_millis(200), LONG, LONG);
    let mut c = consumer_child(seg.name(), "r0", Some(K));
    let publisher = publish_all(p);
    assert_eq!(c.expect("RELEASED", LONG), K.to_string());
    c.kill();
    assert_eq!(
        next_alert(&rx),
        (RequiredConsumerAlertKind::Stalled, "r0".into())
    );
    let mut again = consumer_child(seg.name(), "r0", None);
    assert_eq!(
        again.expect("ATTACHED", LONG),
        format!("first={K} resumed=true")
    );
    assert_eq!(
        next_alert(&rx),
        (RequiredConsumerAlertKind::Recovered, "r0".into())
    );
    let p = publisher
        .join()
        .expect("publisher")
        .expect("every event published");
    drop(p);
    assert_eq!(again.expect("VERIFIED", CHILD_DEADLINE), verified(K..N));
    again.finish(LONG);
}

#[test]
fn sigkilled_required_consumer_not_restarted_triggers_graceful_shutdown() {
    const K: u64 = 10;
    let seg = SegmentGuard::new("live-dead");
    let (mut p, rx) = producer(
        seg.name(),
        &["r0"],
        Duration::from_millis(100),
        Duration::from_millis(200),
        LONG,
    );
    let mut c = consumer_child(seg.name(), "r0", Some(K));
    assert_eq!(c.expect("ATTACHED", LONG), "first=0 resumed=true");
    let mut result = Ok(0);
    let mut published = 0;
    for s in 0..N {
        if s == K + CAP as u64 {
            // The ring is full behind the consumer: kill it once it has released K.
            assert_eq!(c.expect("RELEASED", LONG), K.to_string());
            c.kill();
        }
        result = p.publish_managed(|e| fill(e, s));
        if result.is_err() {
            break;
        }
        published += 1;
    }
    assert_eq!(published, K + CAP as u64);
    let err = result.unwrap_err();
    assert!(
        matches!(&err, RequiredConsumerError::GracefulShutdownTriggered { consumer_id, .. } if consumer_id == "r0"),
        "{err:?}"
    );
    // It stays failed.
    assert_eq!(p.publish_managed(|e| fill(e, 0)), Err(err));
    assert_eq!(
        next_alert(&rx),
        (RequiredConsumerAlertKind::Stalled, "r0".into())
    );
    assert!(rx.try_recv().is_err(), "exactly one alert");
}

#[test]
fn required_consumer_never_started_is_a_startup_timeout() {
    let seg = SegmentGuard::new("live-never");
    let (mut p, rx) = producer(
        seg.name(),
        &["r0"],
        Duration::from_millis(100),
        LONG,
        Duration::from_millis(300),
    );
    for s in 0..CAP as u64 {
        p.publish_managed(|e| fill(e, s))
            .expect("the reservation buffers one ring");
    }
    let expected = RequiredConsumerError::StartupTimeout {
        missing: vec!["r0".into()],
    };
    assert_eq!(p.publish_managed(|e| fill(e, 0)), Err(expected.clone()));
    assert_eq!(p.publish_managed(|e| fill(e, 0)), Err(expected));
    assert!(
        rx.try_recv().is_err(),
        "no stall alert for a consumer that never appeared"
    );
}

#[test]
fn sigkilled_non_required_consumer_is_a_typed_error() {
    const K: u64 = 5;
    let seg = SegmentGuard::new("live-opt");
    let (mut p, rx) = producer(seg.name(), &["r0"], Duration::from_millis(100), LONG, LONG);
    let mut r0 = consumer_child(seg.name(), "r0", None);
    let mut c1 = consumer_child(seg.name(), "c1", Some(K));
    assert_eq!(r0.expect("ATTACHED", LONG), "first=0 resumed=true");
    assert!(c1.expect("ATTACHED", LONG).starts_with("first="));
    let mut result = Ok(0);
    for s in 0..N {
        result = p.publish_managed(|e| fill(e, s));
        if result.is_err() {
            break;
        }
        if s == CAP as u64 {
            assert!(c1.expect("RELEASED", LONG).parse::<u64>().is_ok());
            c1.kill();
        }
    }
    assert_eq!(
        result,
        Err(RequiredConsumerError::NonRequiredConsumerDead {
            consumer_id: "c1".into()
        })
    );
    assert!(rx.try_recv().is_err());
    drop(p);
    let v = r0.expect("VERIFIED", CHILD_DEADLINE);
    assert!(v.starts_with("first=0 "), "{v}");
    r0.finish(LONG);
}
