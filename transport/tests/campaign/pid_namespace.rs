//! A consumer in another PID namespace (a container sharing `/dev/shm` but not the PID
//! namespace: `docker --ipc=shareable`, a Kubernetes pod): `unshare -pf --mount-proc` runs a
//! consumer process that is pid 1 of its own namespace and sees only its own `/proc`, over the
//! same `/dev/shm`.
//!
//! * While it is alive, a consumer of the same id in this (the root) namespace must be refused
//!   with `ConsumerIdInUse`: its entry's kernel-released lock proves it alive. (Before entry
//!   locks this failed: the owner was a pid + start time looked up in the caller's own `/proc`,
//!   where the namespaced consumer's pid (1) names another process, so the live consumer was
//!   taken for dead and its entry taken over — two readers on one cursor.)
//! * After it is SIGKILLed, the same id rejoins from this namespace and resumes exactly at its
//!   committed cursor.
//!
//! Both need root (`unshare -p`); without it they print why they skip, and fail under
//! `MYELON_REQUIRE_ROOT_TESTS=1`.

use super::{attach, parse_attached, ENTRY, LONG};
use crate::common::process::{
    env_str, env_u64, read_command, report, ChildProc, SegmentGuard, Spawn, ID_VAR, SEGMENT_VAR,
};
use crate::common::{checksum, fill, Event};
use myelon::{
    attach_shared_consumer, build_shared_single_producer, CoordinationMode, MultiProcessError,
    SharedProducer,
};
use std::time::Duration;

const CAP: usize = 64;
const ID: &str = "ns";
/// Events published before the namespaced consumer attaches.
const M: u64 = 40;
/// Events it reads (and releases) before it holds still.
const K: u64 = 13;
const RELEASE_VAR: &str = "MYELON_TEST_RELEASE";
const UNSHARE: [&str; 4] = ["unshare", "-pf", "--mount-proc", "--kill-child"];

/// Attaches as `MYELON_TEST_ID`, reports `ATTACHED first=.. resumed=.. pid=<its own pid>`,
/// reads and verifies `MYELON_TEST_RELEASE` events, reports `RELEASED <next>`, then holds its
/// entry until stdin closes.
pub fn ns_consumer_role() {
    let mut c = attach(&env_str(SEGMENT_VAR), CAP, &env_str(ID_VAR));
    let pid = std::process::id();
    report(
        "ATTACHED",
        format!(
            "first={} resumed={} pid={pid}",
            c.next_sequence(),
            c.resumed()
        ),
    );
    for s in 0..env_u64(RELEASE_VAR) {
        let e = c.consume_next_timeout(LONG).expect("event");
        assert_eq!((e.sequence, e.checksum), (s, checksum(s)));
    }
    report("RELEASED", c.next_sequence());
    let _ = read_command();
}

/// Whether `unshare -pf --mount-proc` works here (root, a kernel that allows it).
fn namespaces_or_skip(test: &str) -> bool {
    let ready = myelon_test_support::root("unshare -p").and_then(|()| {
        myelon_test_support::probe(UNSHARE[0], &[&UNSHARE[1..], &["true"]].concat())
    });
    myelon_test_support::runnable(test, ready)
}

/// A producer (this process) with `ID` reserved and `M` events, and the namespaced consumer
/// after it released `K` of them.
fn namespaced_consumer(seg: &SegmentGuard) -> (SharedProducer<Event>, ChildProc) {
    let mut p = build_shared_single_producer::<Event>(seg.name(), CAP)
        .with_consumer_id(ID)
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .build_producer(Event::default)
        .expect("producer");
    for s in 0..M {
        p.try_publish(|e| fill(e, s)).expect("M events fit");
    }
    let mut child = Spawn::new(ENTRY, "ns_consumer")
        .env(SEGMENT_VAR, seg.name())
        .env(ID_VAR, ID)
        .env(RELEASE_VAR, K)
        .wrapped_in(&UNSHARE)
        .spawn();
    let attached = child.expect("ATTACHED", LONG);
    assert_eq!(parse_attached(&attached), (0, true), "{attached}");
    assert!(
        attached.ends_with(" pid=1"),
        "the consumer is pid 1 of its own namespace: {attached}"
    );
    assert_eq!(child.expect("RELEASED", LONG), K.to_string());
    (p, child)
}

fn attach_here(seg: &SegmentGuard) -> Result<myelon::SharedConsumer<Event>, MultiProcessError> {
    attach_shared_consumer::<Event>(seg.name(), CAP)
        .with_consumer_id(ID)
        .with_attach_timeout(LONG)
        .build_consumer()
}

// Failed before entry locks: the live namespaced consumer was taken for dead (its pid 1 names
// this namespace's init, with another start time).
#[test]
fn a_live_consumer_in_another_pid_namespace_keeps_its_id() {
    if !namespaces_or_skip("a_live_consumer_in_another_pid_namespace_keeps_its_id") {
        return;
    }
    let seg = SegmentGuard::new("pidns-live");
    let (_p, mut child) = namespaced_consumer(&seg);
    match attach_here(&seg) {
        Err(MultiProcessError::ConsumerIdInUse { id }) => assert_eq!(id, ID),
        Ok(c) => panic!(
            "a consumer attached under the id of a live consumer in another PID namespace \
             (resumed={}, first={}): its entry was taken for dead and taken over",
            c.resumed(),
            c.next_sequence()
        ),
        Err(e) => panic!("expected ConsumerIdInUse, got {e:?}"),
    }
    child.close_stdin();
    child.finish(LONG);
}

#[test]
fn a_killed_namespaced_consumer_rejoins_at_its_cursor() {
    if !namespaces_or_skip("a_killed_namespaced_consumer_rejoins_at_its_cursor") {
        return;
    }
    let seg = SegmentGuard::new("pidns-rejoin");
    let (_p, mut child) = namespaced_consumer(&seg);
    child.kill(); // `unshare`; --kill-child takes the namespace's pid 1 with it
    assert!(
        child.wait_output_closed(LONG),
        "the namespaced consumer outlived its unshare"
    );
    // Its process is gone (its output closed); the kernel may finish releasing what it held a
    // moment later, so a refusal is retried until the deadline.
    let mut last = None;
    let rejoined = myelon_test_support::wait_for(LONG, || match attach_here(&seg) {
        Ok(c) => {
            last = Some(Ok(c));
            true
        }
        Err(MultiProcessError::ConsumerIdInUse { .. }) => false,
        Err(e) => {
            last = Some(Err(e));
            true
        }
    });
    assert!(
        rejoined,
        "the id stayed in use after its consumer was killed"
    );
    let mut c = match last {
        Some(Ok(c)) => c,
        other => panic!("rejoin: {other:?}"),
    };
    assert!(c.resumed());
    assert_eq!(
        c.next_sequence(),
        K as i64,
        "resumes at its committed cursor"
    );
    for s in K..M {
        let e = c.consume_next_timeout(LONG).expect("event");
        assert_eq!((e.sequence, e.checksum), (s, checksum(s)));
    }
    let none = c.consume_next_timeout(Duration::ZERO);
    assert!(
        matches!(none, Err(MultiProcessError::Timeout { .. })),
        "{none:?}"
    );
}
