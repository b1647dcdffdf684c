//! Runs the `inference` example end to end (scheduler + worker processes, a worker killed and
//! restarted under liveness) and checks its verdict and its cleanup.
//!
//! The example is built by `myelon_test_support::build_example` (the cargo running this test
//! builds it with this test's profile; cargo gives tests the paths of binaries, not examples).

use myelon::backend::{RingBackend, ShmBackend};
use myelon::MyelonTransportLayout;
use myelon_test_support::build_example;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn example_exe() -> PathBuf {
    build_example(env!("CARGO_MANIFEST_DIR"), "myelon", "inference")
}

#[test]
fn the_inference_example_survives_a_killed_worker() {
    let exe = example_exe();
    let child = Command::new(exe)
        .args(["--workers", "3", "--requests", "3000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    let pid = child.id();
    let out = child.wait_with_output().expect("example output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let all = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // Whatever happened, nothing of the session may stay behind.
    let layout = MyelonTransportLayout::new(&format!("infer-{pid}"), "myelon", 3).unwrap();
    for name in layout.all_segments() {
        let left = ShmBackend.open(name).is_ok();
        if left {
            let _ = ShmBackend.remove(name);
        }
        assert!(!left, "{name} left behind\n{all}");
    }
    assert!(
        out.status.success(),
        "example failed: {}\n{all}",
        out.status
    );
    for want in [
        "rendezvous complete",
        "SIGKILLed worker 1",
        "Stalled runner-1",
        "restarted worker 1",
        "Recovered runner-1",
        "incarnations: 2",
        "runner-1: consumed",
        "alerts 1, recoveries 1",
        "verified",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{all}");
    }
    assert_eq!(stdout.matches("all correct").count(), 3, "{all}");
}
