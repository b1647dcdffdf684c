//! Consumers cannot write the data (issue 10, item 4): a consumer maps the slot area read-only,
//! so a consumer bug that writes a slot faults in that consumer instead of corrupting what every
//! other consumer reads. The header and the consumer table stay writable (cursors, wake
//! counters, registration).
//!
//! Nothing sleeps to wait for a condition; the bounds only turn a hang into a failure.

mod common;

use common::process::{env_str, report, SegmentGuard, Spawn, CHILD_OK, SEGMENT_VAR};
use common::{checksum, fill, Event};
use myelon::{
    attach_mmap_consumer, attach_shared_consumer, build_mmap_single_producer,
    build_shared_single_producer,
};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

const ENTRY: &str = "child_role";
const LONG: Duration = Duration::from_secs(30);
const CAP: usize = 64;

/// Entry point of every child process; a no-op in a normal test run.
#[test]
fn child_role() {
    let Some(role) = common::process::role() else {
        return;
    };
    match role.as_str() {
        "scribbler" => scribbler_role(),
        other => panic!("unknown child role {other:?}"),
    }
    report(CHILD_OK, role);
}

/// A buggy consumer: casts away the constness of a leased event and writes it in place.
#[allow(invalid_reference_casting)] // the bug under test
fn scribbler_role() {
    let mut c = attach_shared_consumer::<Event>(&env_str(SEGMENT_VAR), CAP)
        .with_consumer_id("scribbler")
        .with_attach_timeout(LONG)
        .build_consumer()
        .expect("attach");
    report("ATTACHED", c.next_sequence());
    let lease = c.consume_next_leased_timeout(LONG).expect("lease");
    report("LEASED", lease.sequence());
    let p = &*lease as *const Event as *mut Event;
    // SAFETY: none — this is the bug under test: a write through a shared reference into the
    // ring. The slot area is mapped read-only in consumers, so it must fault right here.
    unsafe { std::ptr::write_volatile(p, Event::default()) };
    report("WROTE", "the slot was writable");
}

/// The permission string (`r--s`, `rw-s`) of each line of `/proc/self/maps` naming `path`.
fn mapping_perms(path: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/maps")
        .expect("maps")
        .lines()
        .filter(|l| l.ends_with(path))
        .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_consumer_maps_the_slots_read_only_and_the_table_writable() {
    let seg = SegmentGuard::new("ro-shm");
    let _p = build_shared_single_producer::<Event>(seg.name(), CAP)
        .build_producer(Event::default)
        .expect("producer");
    let path = format!("/dev/shm/{}", seg.name().trim_start_matches('/'));
    // The producer's mapping: writable throughout.
    assert_eq!(mapping_perms(&path), vec!["rw-s"], "producer only");
    let _c = attach_shared_consumer::<Event>(seg.name(), CAP)
        .build_consumer()
        .expect("consumer");
    let mut perms = mapping_perms(&path);
    perms.sort();
    // The producer's, the consumer's header and table (writable), its slots (read-only).
    assert_eq!(perms, vec!["r--s", "rw-s", "rw-s"], "{perms:?}");
}

#[test]
fn an_mmap_consumer_maps_the_slots_read_only() {
    let dir = std::env::temp_dir().join(format!("myelon-ro-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    let _p = build_mmap_single_producer::<Event>(dir.join("ring"), CAP)
        .build_producer(Event::default)
        .expect("producer");
    let _c = attach_mmap_consumer::<Event>(dir.join("ring"), CAP)
        .build_consumer()
        .expect("consumer");
    let path = dir.join("ring").display().to_string();
    let mut perms = mapping_perms(&path);
    perms.sort();
    assert_eq!(perms, vec!["r--s", "rw-s", "rw-s"], "{perms:?}");
}

#[test]
fn a_consumer_that_writes_a_slot_faults_and_corrupts_nothing() {
    let seg = SegmentGuard::new("ro-crash");
    let mut p = build_shared_single_producer::<Event>(seg.name(), CAP)
        .with_consumer_id("scribbler")
        .build_producer(Event::default)
        .expect("producer");
    let mut honest = attach_shared_consumer::<Event>(seg.name(), CAP)
        .with_consumer_id("honest")
        .build_consumer()
        .expect("honest consumer");
    let mut child = Spawn::new(ENTRY, "scribbler")
        .env(SEGMENT_VAR, seg.name())
        .spawn();
    assert_eq!(child.expect("ATTACHED", LONG), "0");
    for s in 0..8u64 {
        p.publish(|e| fill(e, s));
    }
    assert_eq!(child.expect("LEASED", LONG), "0");
    let status = child.wait_exit(LONG);
    assert_eq!(
        status.signal(),
        Some(libc::SIGSEGV),
        "the write must fault: {status:?}\n{}",
        child.transcript()
    );
    assert!(!child.transcript().contains("WROTE"));
    for s in 0..8u64 {
        let e = honest.consume_next_timeout(LONG).expect("consume");
        assert_eq!(
            (e.sequence, e.checksum),
            (s, checksum(s)),
            "event {s} intact"
        );
    }
}
