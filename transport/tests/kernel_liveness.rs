//! Consumer death proven by the kernel, across real processes (issue 10): each attached consumer
//! holds its entry's lock slot (an open-file-description lock) for as long as it lives.
//!
//! - A SIGKILLed consumer that attached without an id stops gating: the producer, blocked on a
//!   full ring, frees its entry and carries on (before: a plain `publish` hung for ever).
//! - A SIGKILLed consumer with an id keeps gating, and its id rejoins at its cursor.
//! - A live consumer keeps its id against a second process, whatever its pid looks like.
//!
//! Nothing sleeps to wait for a condition; the bounds only turn a hang into a failure.

mod common;

use common::process::{
    env_str, env_u64, read_command, report, ChildProc, SegmentGuard, Spawn, CHILD_OK, ID_VAR,
    SEGMENT_VAR,
};
use common::{checksum, fill, Event};
use myelon::{attach_shared_consumer, build_shared_single_producer, MultiProcessError};
use std::time::Duration;

const ENTRY: &str = "child_role";
const LONG: Duration = Duration::from_secs(30);
const CAP: usize = 64;
const CONSUME_VAR: &str = "MYELON_TEST_CONSUME";

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

/// Attaches (with `MYELON_TEST_ID` if set, anonymously otherwise), consumes
/// `MYELON_TEST_CONSUME` events verifying each, reports, then waits for stdin (to be killed).
fn consumer_role() {
    let mut b =
        attach_shared_consumer::<Event>(&env_str(SEGMENT_VAR), CAP).with_attach_timeout(LONG);
    if let Ok(id) = std::env::var(ID_VAR) {
        b = b.with_consumer_id(id);
    }
    let mut c = b.build_consumer().expect("attach");
    report(
        "ATTACHED",
        format!("first={} resumed={}", c.next_sequence(), c.resumed()),
    );
    let first = c.next_sequence() as u64;
    for s in first..first + env_u64(CONSUME_VAR) {
        let e = c.consume_next_timeout(LONG).expect("consume");
        assert_eq!((e.sequence, e.checksum), (s, checksum(s)), "event {s}");
    }
    report("CONSUMED", c.next_sequence());
    let cmd = read_command();
    panic!("this consumer was meant to be killed, got stdin {cmd:?}");
}

fn consumer(seg: &str, id: Option<&str>, consume: u64) -> ChildProc {
    let mut s = Spawn::new(ENTRY, "consumer")
        .env(SEGMENT_VAR, seg)
        .env(CONSUME_VAR, consume);
    if let Some(id) = id {
        s = s.env(ID_VAR, id);
    }
    s.spawn()
}

#[test]
fn a_sigkilled_anonymous_consumer_stops_gating() {
    let seg = SegmentGuard::new("kl-anon");
    let mut p = build_shared_single_producer::<Event>(seg.name(), CAP)
        .build_producer(Event::default)
        .expect("producer");
    let mut c = consumer(seg.name(), None, 3);
    assert_eq!(c.expect("ATTACHED", LONG), "first=0 resumed=false");
    for s in 0..CAP as u64 {
        p.publish(|e| fill(e, s));
    }
    assert_eq!(c.expect("CONSUMED", LONG), "3");
    // Full but for the three it released; the consumer now dies without detaching.
    for s in CAP as u64..CAP as u64 + 3 {
        p.publish(|e| fill(e, s));
    }
    assert_eq!(p.consumers().len(), 1);
    c.kill();
    // The next publish finds the ring full and the only gating entry's holder provably dead:
    // it frees the entry and goes on (the bound only turns a hang into a failure).
    let s = CAP as u64 + 3;
    p.publish_timeout(LONG, |e| fill(e, s))
        .expect("a dead anonymous consumer no longer gates");
    assert!(p.consumers().is_empty(), "{:?}", p.consumers());
    println!("anonymous consumer SIGKILLed at sequence 3: its entry freed, publishing resumed");
}

#[test]
fn a_sigkilled_named_consumer_keeps_gating_and_rejoins_at_its_cursor() {
    let seg = SegmentGuard::new("kl-named");
    let mut p = build_shared_single_producer::<Event>(seg.name(), CAP)
        .build_producer(Event::default)
        .expect("producer");
    let mut c = consumer(seg.name(), Some("w"), 5);
    assert_eq!(c.expect("ATTACHED", LONG), "first=0 resumed=false");
    for s in 0..CAP as u64 {
        p.publish(|e| fill(e, s));
    }
    assert_eq!(c.expect("CONSUMED", LONG), "5");
    // While it lives, nobody else can take its id.
    let err = attach_shared_consumer::<Event>(seg.name(), CAP)
        .with_consumer_id("w")
        .build_consumer()
        .unwrap_err();
    assert!(
        matches!(err, MultiProcessError::ConsumerIdInUse { .. }),
        "{err}"
    );
    c.kill();
    for s in CAP as u64..CAP as u64 + 5 {
        p.publish(|e| fill(e, s));
    }
    let err = p
        .publish_timeout(Duration::from_millis(50), |e| fill(e, 0))
        .unwrap_err();
    assert!(matches!(err, MultiProcessError::Timeout { .. }), "{err}");
    let mut again = consumer(seg.name(), Some("w"), CAP as u64);
    assert_eq!(again.expect("ATTACHED", LONG), "first=5 resumed=true");
    assert_eq!(again.expect("CONSUMED", LONG), (5 + CAP).to_string());
}
