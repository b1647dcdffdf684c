//! Runs each per-layer example (`raw`, `framed`, `typed`, `liveness`, `topology`) as a user
//! would, checks what it printed, and that it left nothing in `/dev/shm`.

#![cfg(unix)]

use myelon::backend::{RingBackend, ShmBackend};
use myelon::{portable_shm_segment_name, MyelonTransportLayout, DEFAULT_TRANSPORT_PREFIX};
use myelon_test_support::{build_example, ShmGuard};
use std::process::{Command, Stdio};

/// What one run printed.
struct Run {
    stdout: String,
    all: String,
}

/// Runs example `name` with `args` to completion; `segments(pid)` are the names it uses, which
/// must all be gone afterwards (a guard removes them anyway if an assertion fails first).
fn run(name: &str, args: &[&str], segments: impl Fn(u32) -> Vec<String>) -> Run {
    let exe = build_example(env!("CARGO_MANIFEST_DIR"), "myelon", name);
    let child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start example {name}: {e}"));
    let names = segments(child.id());
    let _guards: Vec<ShmGuard> = names.iter().map(|n| ShmGuard(n.clone())).collect();
    let out = child.wait_with_output().expect("example output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name} failed: {}\n{all}", out.status);
    let left = ShmBackend.list().expect("list /dev/shm");
    for n in &names {
        assert!(
            !left.iter().any(|l| l == n.trim_start_matches('/')),
            "{name} left {n} behind\n{all}"
        );
    }
    Run { stdout, all }
}

impl Run {
    fn has(&self, wanted: &[&str]) {
        for w in wanted {
            assert!(self.stdout.contains(w), "missing {w:?} in:\n{}", self.all);
        }
    }
}

fn ring(tag: &str) -> impl Fn(u32) -> Vec<String> + '_ {
    move |pid| vec![portable_shm_segment_name(&format!("myelon-ex-{tag}-{pid}"))]
}

#[test]
fn raw_moves_every_event() {
    run("raw", &[], ring("raw")).has(&[
        "consumer: received 100000 events in order, every one verified",
        "producer: published 100000 events, consumer exited cleanly",
    ]);
}

#[test]
fn framed_delivers_small_and_fragmented_messages() {
    run("framed", &[], ring("framed")).has(&[
        "producer: message 3: 10000 bytes in 41 frame(s)",
        "consumer: message 0 of 5 bytes, in place",
        "consumer: message 3 of 10000 bytes, reassembled",
        "consumer: 4 messages, every byte verified",
    ]);
}

#[test]
fn typed_decodes_every_order() {
    run("typed", &[], ring("typed")).has(&[
        "producer: published 1000 orders",
        "consumer: 1000 orders decoded and verified",
    ]);
}

#[test]
fn liveness_alerts_then_recovers() {
    let r = run("liveness", &[], ring("live"));
    r.has(&[
        "consumer: stalling after 50 events",
        "producer: alert Stalled for \"worker\"",
        "producer: alert Recovered for \"worker\"",
        "consumer: read 200 events in order",
        "the consumer recovered and read them all",
    ]);
}

#[test]
fn liveness_shuts_down_when_the_consumer_never_recovers() {
    let r = run("liveness", &["--shutdown"], ring("live"));
    r.has(&[
        "producer: alert Stalled for \"worker\"",
        "never recovered: graceful shutdown",
        "shut down cleanly",
    ]);
    assert!(!r.stdout.contains("Recovered"), "{}", r.all);
}

#[test]
fn topology_answers_every_request_from_every_worker() {
    let segments = |pid: u32| {
        let layout =
            MyelonTransportLayout::new(&format!("ex-topo-{pid}"), DEFAULT_TRANSPORT_PREFIX, 2)
                .unwrap();
        layout.all_segments().map(str::to_string).collect()
    };
    run("topology", &[], segments).has(&[
        "2 workers attached",
        "scheduler: 200 requests, 400 responses verified",
        "worker 0: served 200 requests",
        "worker 1: served 200 requests",
        "scheduler: every worker exited cleanly",
    ]);
}
