//! Helpers for the integration tests: unique names, cleanup guards, re-exec'd child processes.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Env var that turns a re-exec'd test binary into a child with a role.
pub const ROLE_VAR: &str = "MYELON_TEST_ROLE";
/// Env var carrying the child's argument (a segment name, a path).
pub const ARG_VAR: &str = "MYELON_TEST_ARG";
/// Generous bound for anything we poll for; only reached when something is broken.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The role of this process if it is a re-exec'd child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// The argument the parent gave this child.
pub fn child_arg() -> String {
    std::env::var(ARG_VAR).expect("child started without MYELON_TEST_ARG")
}

/// A name unique to this process and call, e.g. `/myelon-t1234-7-tag`.
pub fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("/myelon-t{}-{n}-{tag}", std::process::id())
}

/// Unlinks a shared-memory name on drop, whether the test passed or not.
pub struct ShmGuard(pub String);

impl Drop for ShmGuard {
    fn drop(&mut self) {
        let _ = myelon_backend_shm::unlink(&self.0);
    }
}

/// Args that make the test binary run exactly one test, printing its output.
pub fn exact_args(test: &str) -> [&str; 4] {
    ["--exact", test, "--nocapture", "--test-threads=1"]
}

/// The current test binary, re-exec'd to run only `test` in child role `role` with `arg`.
pub fn child_command(test: &str, role: &str, arg: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args(exact_args(test))
        .env(ROLE_VAR, role)
        .env(ARG_VAR, arg);
    cmd
}

/// The line a child prints when its role completed; the parent requires it, so a child that ran
/// no test (e.g. a wrong `--exact` filter) cannot pass silently.
pub fn child_ok_marker(role: &str) -> String {
    format!("CHILD-OK {role}")
}

/// Asserts that a finished child exited successfully and printed its marker.
pub fn assert_child_ok(out: &Output, role: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child {role} failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(&child_ok_marker(role)),
        "child {role} did not run its role\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

/// Kills and reaps the child on drop if the test did not.
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    pub fn spawn(cmd: &mut Command) -> Self {
        Self(Some(cmd.spawn().expect("spawn child")))
    }

    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child already consumed")
    }

    /// Waits for the child to exit and collects its remaining output.
    pub fn into_output(mut self) -> Output {
        let child = self.0.take().expect("child already consumed");
        child.wait_with_output().expect("wait for child")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads `stdout` on a helper thread until a line ending in `wanted` arrives (libtest may have
/// printed `test name ... ` before it on the same line), or panics at the deadline or at end of
/// output.
pub fn wait_for_line(stdout: ChildStdout, wanted: &str) {
    let (tx, rx) = mpsc::channel();
    let wanted_owned = wanted.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.trim_end().ends_with(&wanted_owned) {
                let _ = tx.send(());
                break;
            }
        }
    });
    rx.recv_timeout(DEADLINE)
        .unwrap_or_else(|e| panic!("child never printed {wanted:?}: {e}"));
}

/// Polls `cond` until it holds, panicking with `what` at the deadline.
pub fn poll_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// Why a test that needs a private mount namespace cannot run here, if it cannot.
pub fn mount_namespace_skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root".into());
    }
    match Command::new("unshare").args(["-m", "true"]).output() {
        Err(e) => Some(format!("`unshare` is unavailable: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "`unshare -m` does not work here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// `unshare -m sh -c '<mount> && exec "$0" "$@"' <test-bin> --exact <test> --nocapture`, with
/// the child role set. `mount` is a shell command run inside the new mount namespace.
pub fn in_mount_namespace(mount: &str, test: &str, role: &str, arg: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let script = format!("{mount} && exec \"$0\" \"$@\"");
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c", &script])
        .arg(exe)
        .args(exact_args(test))
        .env(ROLE_VAR, role)
        .env(ARG_VAR, arg);
    cmd
}
