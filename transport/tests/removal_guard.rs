//! A removal's guard on the real backends (SHM and mmap), in a test binary of its own: the
//! other hostile-environment tests spawn processes, and a `fork` in another test thread shares
//! this test's open file descriptions (and so their locks) with the child until it execs, which
//! would make a released lock look held for a moment.

mod common;

use common::TempDir;
use myelon::backend::{MmapBackend, Region, RemovalGuard, RingBackend, ShmBackend};
use myelon::MAGIC;
use myelon_test_support::ShmGuard;

/// A removal's guard on the real backends ([`myelon::backend::RemovalGuard`]): a live holder
/// of one of its lock slots keeps the object, so does its `keep` test on the object's first
/// bytes, both decided under the owner lock; and a process that takes one of those slots
/// after the removal finds the object unlinked. What the ring's reclaimers rely on to never
/// remove a ring from under a producer that is registering or attached.
// The test's own words in a scratch object (not a ring, never loom-modelled): std's atomics.
#[allow(clippy::disallowed_types)]
fn removal_guard_on<B: RingBackend>(backend: &B, name: &str) {
    let creator = backend.create(name, 4096).expect("create");
    let word = |r: &B::Region, at: usize| {
        // SAFETY: the region is at least 4096 bytes, page aligned; `at` is 8-aligned and below
        // 128; the words are only accessed atomically, by this test.
        unsafe { &*(r.as_ptr().add(at) as *const std::sync::atomic::AtomicU64) }
    };
    word(&creator, 0).store(MAGIC, std::sync::atomic::Ordering::SeqCst);
    creator.finish(0o600).expect("finish");
    creator.keep_name_on_drop();
    let holder = backend.open(name).expect("open");
    assert!(holder.try_lock_slot(7).expect("lock"));
    // The creator is gone: nothing but the guard keeps the object now.
    drop(creator);
    let slots = [5..7u64, 7..9];
    let guard = RemovalGuard {
        slots: &slots,
        keep: None,
    };
    assert!(
        !backend
            .remove_if_abandoned(name, &[MAGIC], guard)
            .expect("remove"),
        "a live holder of a guarded slot keeps it"
    );
    assert!(holder.is_linked());
    holder.unlock_slot(7);
    word(&holder, 8).store(0xab, std::sync::atomic::Ordering::SeqCst);
    let keep = RemovalGuard {
        slots: &slots,
        keep: Some(|head: &[u8]| head.len() >= 16 && head[8] == 0xab),
    };
    assert!(
        !backend
            .remove_if_abandoned(name, &[MAGIC], keep)
            .expect("remove"),
        "kept by its first bytes"
    );
    assert!(holder.is_linked());
    let late = backend.open(name).expect("open");
    assert!(
        backend
            .remove_if_abandoned(name, &[MAGIC], guard)
            .expect("remove"),
        "nothing keeps it"
    );
    assert!(late.try_lock_slot(7).expect("lock"), "the removal let go");
    assert!(
        !late.is_linked(),
        "a slot taken afterwards is one of a removed object"
    );
    assert!(!holder.is_linked());
}

#[test]
fn a_removal_guard_keeps_what_it_guards_shm() {
    let g = ShmGuard::new("guard");
    removal_guard_on(&ShmBackend, g.name());
}

#[test]
fn a_removal_guard_keeps_what_it_guards_mmap() {
    let dir = TempDir::new("guard-mmap");
    removal_guard_on(&MmapBackend::new(&dir.0), "ring");
}
