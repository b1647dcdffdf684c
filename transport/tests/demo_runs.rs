//! Runs the `demo` example end to end, as a user would, and checks its verdict and its cleanup.
//!
//! Finding the example binary: `myelon_test_support::build_example` asks the cargo that runs
//! this test to build `--example demo` with the test's profile and reads the executable's path
//! from cargo's JSON artifact message (cargo gives tests the paths of binaries, not examples).
//!
//! Cleanup: the demo names its ring `myelon-demo-<its pid>` and removes it when its producer
//! drops; the test asserts that nothing is left under that name, and a guard removes it anyway
//! if an assertion fails first.

#![cfg(unix)]

use myelon::backend::{RingBackend, ShmBackend};
use myelon::portable_shm_segment_name;
use myelon_test_support::build_example;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The demo executable, built once per test binary.
fn demo_exe() -> &'static PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| build_example(env!("CARGO_MANIFEST_DIR"), "myelon", "demo"))
}

/// Removes the demo's segment if a failing run left it behind.
struct SegmentGuard(String);

impl Drop for SegmentGuard {
    fn drop(&mut self) {
        let _ = ShmBackend.remove(&self.0);
    }
}

struct DemoRun {
    success: bool,
    stdout: String,
    stderr: String,
}

impl DemoRun {
    fn context(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }

    /// The summary-table row of consumer `id`, split into columns.
    fn row(&self, id: &str) -> Vec<&str> {
        let row = self
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id));
        let row = row.unwrap_or_else(|| panic!("no row for {id}\n{}", self.context()));
        row.split_whitespace().collect()
    }
}

/// Runs the demo to completion and checks that its ring is gone afterwards.
fn run_demo(args: &[&str]) -> DemoRun {
    let child = Command::new(demo_exe())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the demo");
    let segment = portable_shm_segment_name(&format!("myelon-demo-{}", child.id()));
    let _guard = SegmentGuard(segment.clone());
    let out = child.wait_with_output().expect("wait for the demo");
    let run = DemoRun {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let left = ShmBackend.list().expect("list shared-memory segments");
    assert!(
        !left.iter().any(|n| n == segment.trim_start_matches('/')),
        "the demo left {segment} behind\n{}",
        run.context()
    );
    run
}

#[test]
fn demo_verifies_every_event_in_both_consumers() {
    let run = run_demo(&["--events", "200000", "--capacity", "1024"]);
    assert!(run.success, "demo failed\n{}", run.context());
    for id in ["c0", "c1"] {
        let row = run.row(id);
        assert_eq!(
            row[1..4],
            ["PASS", "200,000", "0"],
            "{id}\n{}",
            run.context()
        );
    }
    assert!(
        run.stdout.contains("PASS: every consumer"),
        "{}",
        run.context()
    );
}

#[test]
fn demo_reports_a_crashed_consumer_instead_of_hanging() {
    // c0 exits abruptly after ~1000 events without detaching, so its entry keeps gating the
    // producer: the ring fills and the producer must notice the dead child, not wait forever.
    let args = [
        "--events",
        "200000",
        "--capacity",
        "1024",
        "--crash-after",
        "1000",
    ];
    let run = run_demo(&args);
    assert!(
        !run.success,
        "a crashed consumer must fail the demo\n{}",
        run.context()
    );
    assert_eq!(run.row("c0")[1], "FAIL", "{}", run.context());
    let verdict = run.stdout.lines().find(|l| l.starts_with("consumer c0: "));
    assert!(
        verdict.is_some_and(|l| l.contains("exited")),
        "the verdict should name the dead consumer\n{}",
        run.context()
    );
}
