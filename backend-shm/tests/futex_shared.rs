//! Futex wait/wake on a word in shared memory, across mappings and across processes.

// The platform crate's futex takes std's `AtomicU32` (it knows nothing of the transport's
// `sync` facade); the flags are process-local.
#![allow(clippy::disallowed_types)]

mod common;

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::*;
use myelon_backend_shm::futex::{wait, wake_all, WaitResult};
use myelon_backend_shm::ShmSegment;

const LEN: usize = 4096;

/// The first word of the segment as an atomic.
fn word(seg: &ShmSegment) -> &AtomicU32 {
    assert!(seg.len() >= 4);
    // SAFETY: the mapping is page aligned (so 4-aligned) and at least 4 bytes long, lives as long
    // as `seg` (the returned borrow is tied to it), and every process touches this word only
    // through atomics; AtomicU32 has the layout of u32.
    unsafe { &*seg.as_ptr().cast::<AtomicU32>() }
}

/// Waits on `w` until it leaves 0; returns how many waits ended in `Woken`.
fn wait_until_nonzero(w: &AtomicU32) -> usize {
    let mut woken = 0;
    while w.load(Ordering::Acquire) == 0 {
        if wait(w, 0, None) == WaitResult::Woken {
            woken += 1;
        }
    }
    woken
}

#[test]
fn wake_through_one_mapping_reaches_a_waiter_on_another() {
    let name = unique_name("futex-maps");
    let _guard = ShmGuard(name.clone());
    let owner = ShmSegment::create(&name, LEN).unwrap();
    let other = Arc::new(ShmSegment::open(&name).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (other, done) = (Arc::clone(&other), Arc::clone(&done));
        std::thread::spawn(move || {
            let woken = wait_until_nonzero(word(&other));
            done.store(true, Ordering::Release);
            woken
        })
    };
    // A private futex would key on the address: waking through the other mapping would find no
    // waiter. Shared futexes key on the page, so this returns 1 once the waiter sleeps.
    poll_until(DEADLINE, "a waiter asleep on the other mapping", || {
        wake_all(word(&owner)) >= 1
    });
    let deadline = Instant::now() + DEADLINE;
    while !done.load(Ordering::Acquire) {
        word(&owner).store(1, Ordering::Release);
        wake_all(word(&owner));
        assert!(Instant::now() < deadline, "waiter never finished");
        std::thread::yield_now();
    }
    assert!(waiter.join().unwrap() >= 1);
}

#[test]
fn wake_reaches_a_waiter_in_another_process() {
    const TEST: &str = "wake_reaches_a_waiter_in_another_process";
    if role().as_deref() == Some("waiter") {
        let seg = ShmSegment::open(&child_arg()).unwrap();
        let woken = wait_until_nonzero(word(&seg));
        assert!(woken >= 1, "never woken by the parent");
        println!("{}", child_ok_marker("waiter"));
        return;
    }
    let name = unique_name("futex-proc");
    let _guard = ShmGuard(name.clone());
    let seg = ShmSegment::create(&name, LEN).unwrap();
    let mut cmd = child_command(TEST, "waiter", &name);
    cmd.command().stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn child");
    poll_until(DEADLINE, "the child asleep on the futex", || {
        assert!(
            child.child().try_wait().unwrap().is_none(),
            "child exited early"
        );
        wake_all(word(&seg)) >= 1
    });
    let deadline = Instant::now() + DEADLINE;
    while child.child().try_wait().unwrap().is_none() {
        word(&seg).store(1, Ordering::Release);
        wake_all(word(&seg));
        assert!(Instant::now() < deadline, "child never finished");
        std::thread::yield_now();
    }
    let out = child.into_output().expect("wait for child");
    assert_child_ok(&out, "waiter");
}
