//! Process identity and liveness against real processes.

mod common;

use std::process::Stdio;

use common::*;
use myelon_backend_shm::process::{current, identity_of, state, ProcessIdentity, ProcessState};

const SLEEPER_TEST: &str = "sleeper_role";

/// Child role used by the other tests: block until stdin closes. As a parent it does nothing.
#[test]
fn sleeper_role() {
    if role().as_deref() == Some("sleeper") {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        println!("{}", child_ok_marker("sleeper"));
    }
}

fn spawn_sleeper() -> ChildGuard {
    let mut cmd = child_command(SLEEPER_TEST, "sleeper", "");
    cmd.command().stdin(Stdio::piped()).stdout(Stdio::piped());
    cmd.spawn().expect("spawn child")
}

#[test]
fn current_process_is_alive_and_stable() {
    let me = current();
    assert_eq!(me.pid, std::process::id());
    assert_ne!(me.start_time, 0, "/proc is available here");
    assert_eq!(me.reserved, 0);
    assert_eq!(current(), me, "cached identity is the same");
    assert_eq!(identity_of(me.pid), Some(me));
    assert_eq!(state(me), ProcessState::Alive);
}

#[test]
fn reaped_child_is_dead() {
    let mut child = spawn_sleeper();
    let pid = child.child().id();
    let id = identity_of(pid).expect("a running child has an identity");
    assert_eq!(state(id), ProcessState::Alive);
    drop(child.child().stdin.take()); // EOF: the sleeper exits
    let out = child.into_output().expect("wait for child");
    assert_child_ok(&out, "sleeper");
    assert_eq!(state(id), ProcessState::Dead);
    assert_eq!(identity_of(pid).filter(|found| *found == id), None);
}

#[test]
fn killed_unreaped_child_is_dead() {
    let mut child = spawn_sleeper();
    let id = identity_of(child.child().id()).expect("a running child has an identity");
    child.child().kill().unwrap();
    // Not reaped yet: the pid still exists as a zombie, which must count as dead.
    poll_until(DEADLINE, "the zombie to be reported dead", || {
        state(id) == ProcessState::Dead
    });
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", id.pid)).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 1..];
    assert_eq!(
        after_comm.split_whitespace().next(),
        Some("Z"),
        "still a zombie: {stat}"
    );
    child.child().wait().unwrap();
}

#[test]
fn wrong_start_time_means_the_pid_was_reused() {
    let me = current();
    for start_time in [me.start_time + 1, me.start_time + 1000, u64::MAX] {
        let impostor = ProcessIdentity { start_time, ..me };
        assert_eq!(
            state(impostor),
            ProcessState::Dead,
            "start_time {start_time}"
        );
    }
}

#[test]
fn pid_zero_and_out_of_range_pids_are_unknown() {
    for pid in [0, i32::MAX as u32 + 1, u32::MAX] {
        let id = ProcessIdentity {
            pid,
            reserved: 0,
            start_time: 1,
        };
        assert_eq!(state(id), ProcessState::Unknown, "pid {pid}");
    }
    assert_eq!(identity_of(0), None);
}

#[test]
fn forked_child_computes_its_own_identity() {
    let parent = current(); // populate the cache
                            // SAFETY: the child only calls `current()` (reads /proc through std, which glibc's fork
                            // handlers keep usable) and `_exit`; it never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let me = current();
        // SAFETY: getpid has no preconditions.
        let ok = me.pid == unsafe { libc::getpid() } as u32 && me != parent && me.start_time != 0;
        // SAFETY: _exit ends the forked child without running the parent's atexit handlers.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child and `status` is a live c_int.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child saw the parent's identity (status {status})"
    );
}
