//! The `myelon` binary, run as a user would: its output is checked against rings whose state
//! the test controls (a live ring owned by this process, a stale one left by a SIGKILLed
//! child).

use myelon::backend::{BackendError, MmapBackend, RingBackend, ShmBackend};
use myelon::{attach_shared_consumer, build_mmap_single_producer, build_shared_single_producer};
use myelon_test_support::{
    env_str, read_command, report, unique_name, ShmGuard as SegmentGuard, Spawn, CHILD_OK,
};
use std::process::{Command, Output};
use std::time::Duration;

const ENTRY: &str = "child_role";
const LONG: Duration = Duration::from_secs(30);
/// Environment variable carrying the ring name to a child.
const SEGMENT_VAR: &str = "MYELON_TEST_SEGMENT";

myelon::shm_event! {
    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    pub struct Event {
        pub sequence: u64,
        pub checksum: u64,
    }
}

fn fill(e: &mut Event, seq: u64) {
    e.sequence = seq;
    e.checksum = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef;
}

#[test]
fn child_role() {
    let Some(role) = myelon_test_support::role() else {
        return;
    };
    match role.as_str() {
        "holder" => {
            let _p = build_shared_single_producer::<Event>(&env_str(SEGMENT_VAR), 64)
                .build_producer(Event::default)
                .expect("producer");
            report("READY", std::process::id());
            read_command();
        }
        other => panic!("unknown child role {other:?}"),
    }
    report(CHILD_OK, role);
}

fn myelon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_myelon"))
        .args(args)
        .output()
        .expect("run myelon")
}

/// Runs `myelon args..`, asserts it succeeded, returns its stdout.
fn ok(args: &[&str]) -> String {
    let out = myelon(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "myelon {args:?} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The line of `out` mentioning `name`, split into columns.
fn row<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    let line = out
        .lines()
        .find(|l| {
            l.split_whitespace()
                .any(|w| w.trim_start_matches('/') == name.trim_start_matches('/'))
        })
        .unwrap_or_else(|| panic!("no line for {name:?} in:\n{out}"));
    line.split_whitespace().collect()
}

/// A unique prefix for this test's names, and a stale ring under it (its owner SIGKILLed).
fn stale_ring(tag: &str) -> (String, SegmentGuard, u32) {
    let prefix = format!("myelon-t-{}-{tag}", std::process::id());
    let stale = SegmentGuard(format!("{prefix}-stale"));
    let mut child = Spawn::new(ENTRY, "holder")
        .env(SEGMENT_VAR, stale.name())
        .spawn();
    child.expect("READY", LONG);
    let pid = child.pid();
    child.kill();
    (prefix, stale, pid)
}

#[test]
fn list_shows_live_and_stale_rings_with_their_owner() {
    let (prefix, stale, dead_pid) = stale_ring("list");
    let live = SegmentGuard(format!("{prefix}-live"));
    let mut p = build_shared_single_producer::<Event>(live.name(), 128)
        .build_producer(Event::default)
        .unwrap();
    for s in 0..5 {
        p.publish(|e| fill(e, s));
    }
    let out = ok(&["list", "--prefix", &prefix]);
    let me = std::process::id().to_string();
    assert_eq!(
        row(&out, live.name()),
        [
            "shm",
            &format!("/{}", live.name()),
            "ring",
            &me,
            "alive",
            "128",
            "5",
            "0"
        ]
    );
    let dead = row(&out, stale.name());
    assert_eq!(dead[2..5], ["ring", &dead_pid.to_string(), "stale"]);
    assert!(out.contains("2 segment(s)"), "{out}");
    assert!(out.starts_with("BACKEND"), "{out}");
}

#[test]
fn list_and_stat_read_an_mmap_directory() {
    let dir = std::env::temp_dir().join(unique_name("cli-mmap"));
    std::fs::create_dir_all(&dir).unwrap();
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    std::fs::write(dir.join("not-a-ring"), vec![0u8; 8192]).unwrap();
    let mut p = build_mmap_single_producer::<Event>(dir.join("ring"), 64)
        .build_producer(Event::default)
        .unwrap();
    p.publish(|e| fill(e, 0));
    let d = dir.to_str().unwrap();
    let out = ok(&["list", "--no-shm", "--dir", d]);
    let r = row(&out, dir.join("ring").to_str().unwrap());
    assert_eq!(r[0], "mmap");
    assert_eq!(
        r[2..],
        [
            "ring",
            &std::process::id().to_string(),
            "alive",
            "64",
            "1",
            "0"
        ]
    );
    assert!(
        out.contains("1 segment(s)"),
        "only myelon rings are listed:\n{out}"
    );
    let out = ok(&["stat", "ring", "--dir", d]);
    assert!(out.contains("published 1"), "{out}");
    assert!(out.contains("(mmap)"), "{out}");
}

#[test]
fn stat_shows_cursors_lag_and_counters() {
    let seg = SegmentGuard::new("cli-stat");
    let mut p = build_shared_single_producer::<Event>(seg.name(), 16)
        .build_producer(Event::default)
        .unwrap();
    let mut c = attach_shared_consumer::<Event>(seg.name(), 16)
        .with_consumer_id("cli-c0")
        .build_consumer()
        .unwrap();
    for s in 0..10 {
        p.publish(|e| fill(e, s));
    }
    for _ in 0..4 {
        c.try_consume_next().unwrap().unwrap();
    }
    let out = ok(&["stat", seg.name()]);
    assert!(out.contains("producer cursor 9  published 10"), "{out}");
    assert!(out.contains("state ready"), "{out}");
    assert!(out.contains("publish full 0"), "{out}");
    let r = row(&out, "cli-c0");
    let me = std::process::id().to_string();
    // id, pid, state, cursor, consumed, rate, lag, max lag, dropped, alerts, recoveries
    assert_eq!(
        r,
        ["cli-c0", &me, "live", "3", "4", "-", "6", "0", "0", "0", "0"]
    );
    assert!(!out.contains('\x1b'), "no escape codes without --watch");

    // Fill the ring: the failed try-publish and the gating lag show up.
    while p.try_publish(|e| fill(e, 0)).is_ok() {}
    let out = ok(&["stat", &format!("/{}", seg.name())]);
    assert!(out.contains("published 20"), "{out}");
    assert!(out.contains("publish full 1"), "{out}");
    assert_eq!(row(&out, "cli-c0")[6..8], ["16", "16"]);

    let out = ok(&[
        "stat",
        seg.name(),
        "--watch",
        "--count",
        "2",
        "--interval",
        "1",
    ]);
    assert_eq!(
        out.matches("\x1b[H\x1b[2J").count(),
        2,
        "two frames, each redrawn in place"
    );
    let second = out.rsplit("\x1b[H\x1b[2J").next().unwrap();
    assert!(
        row(second, "cli-c0")[5].ends_with("/s"),
        "rates in later frames:\n{second}"
    );
}

#[test]
fn stat_of_a_missing_ring_fails_with_a_message() {
    let out = myelon(&["stat", "/myelon-t-no-such-ring"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn clean_removes_a_dead_owners_ring_and_leaves_a_live_one() {
    let (prefix, stale, _) = stale_ring("clean");
    let live = SegmentGuard(format!("{prefix}-live"));
    let mut p = build_shared_single_producer::<Event>(live.name(), 64)
        .build_producer(Event::default)
        .unwrap();

    let out = ok(&["clean", "--dry-run", "--prefix", &prefix]);
    assert!(
        out.contains(&format!("would remove shm /{}", stale.name())),
        "{out}"
    );
    assert!(
        !out.contains(live.name()),
        "a live ring is never a candidate:\n{out}"
    );
    assert!(out.contains("1 segment(s) would be removed"), "{out}");
    assert!(
        ShmBackend.open(stale.name()).is_ok(),
        "a dry run removes nothing"
    );

    let out = ok(&["clean", "--prefix", &prefix]);
    assert!(
        out.contains(&format!("removed shm /{}", stale.name())),
        "{out}"
    );
    assert!(out.contains("1 segment(s) removed"), "{out}");
    assert!(matches!(
        ShmBackend.open(stale.name()),
        Err(BackendError::NotFound { .. })
    ));
    // The live ring is intact and still works.
    assert!(ShmBackend.open(live.name()).is_ok());
    p.publish(|e| fill(e, 1));
    let out = ok(&["clean", "--prefix", &prefix]);
    assert!(out.contains("0 segment(s) removed"), "{out}");
    let _ = MmapBackend::new(std::env::temp_dir());
}

#[test]
fn stat_of_a_coordination_cursor_shows_its_words() {
    let name = format!("/myelon-t-{}-clicur", std::process::id());
    let _guard = SegmentGuard(name.clone());
    let cur = myelon::ensure_coordination_cursor(&name).unwrap();
    cur.advance_generation();
    cur.announce_rank(2);
    cur.announce_rank(2);
    let out = ok(&["stat", &name]);
    assert!(out.contains("generation 1"), "{out}");
    assert!(out.contains("rank incarnations 2:2"), "{out}");
    assert!(out.contains("owner alive"), "{out}");
    let out = ok(&["list", "--prefix", name.trim_start_matches('/')]);
    assert_eq!(row(&out, &name)[2..5], ["cursor", "-", "alive"]);
}

// ---------------------------------------------------------------------------------------------
// Another user reading: `stat` and `list` by a user who may read the ring
// ---------------------------------------------------------------------------------------------

/// The uid and gid of `nobody` / `nogroup`.
const NOBODY: u32 = 65534;

/// A directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `myelon args..` as `nobody` (uid and gid 65534, no supplementary groups), from a copy
/// of the binary in a fresh directory every user may enter (the target directory may not be).
fn myelon_as_nobody(args: &[&str]) -> Output {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = TempDir(std::env::temp_dir().join(unique_name("cli-exe")));
    std::fs::create_dir_all(&dir.0).expect("mkdir");
    let exe = dir.0.join("myelon");
    std::fs::copy(env!("CARGO_BIN_EXE_myelon"), &exe).expect("copy the binary");
    for p in [&dir.0, &exe] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    // Another test thread forking while this one wrote the copy leaves a child holding it open
    // for writing until that child execs: exec then fails with ETXTBSY for a moment. Retry.
    let mut attempts = 0;
    loop {
        match Command::new(&exe)
            .args(args)
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
        {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 1000 => {
                attempts += 1;
                std::thread::yield_now();
            }
            r => return r.expect("run myelon as nobody"),
        }
    }
}

/// A live ring of this process with three events, a consumer `reader` that read one, and the
/// object's owner, group and mode set to `owner`, `nogroup` and `mode`.
fn shared_ring(tag: &str, owner: Option<u32>, mode: u32) -> (SegmentGuard, impl Sized, impl Sized) {
    use std::os::unix::fs::PermissionsExt;
    let seg = SegmentGuard::new(tag);
    let mut p = build_shared_single_producer::<Event>(seg.name(), 16)
        .with_group_access(true)
        .build_producer(Event::default)
        .expect("producer");
    let mut c = attach_shared_consumer::<Event>(seg.name(), 16)
        .with_consumer_id("reader")
        .with_group_access(true)
        .build_consumer()
        .expect("consumer");
    for s in 0..3 {
        p.publish(|e| fill(e, s));
    }
    c.try_consume_next().expect("receive").expect("an event");
    let path = std::path::Path::new("/dev/shm").join(seg.name());
    std::os::unix::fs::chown(&path, owner, Some(NOBODY)).expect("chown");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    (seg, p, c)
}

/// What `stat` and `list` must show of a [`shared_ring`], whoever runs them.
fn assert_stat_and_list(name: &str, run: impl Fn(&[&str]) -> Output) {
    let text = |out: &Output, what: &str| {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{what} failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let out = text(&run(&["stat", name]), "stat");
    assert!(out.contains("producer cursor 2  published 3"), "{out}");
    assert_eq!(row(&out, "reader")[2..5], ["live", "0", "1"], "{out}");
    let out = text(&run(&["list", "--prefix", name]), "list");
    assert_eq!(row(&out, name)[2], "ring", "{out}");
    assert!(out.contains("1 segment(s)"), "{out}");
}

#[test]
fn stat_and_list_by_a_group_member_who_may_write() {
    let test = "stat_and_list_by_a_group_member_who_may_write";
    if !myelon_test_support::runnable(test, myelon_test_support::root("chown, setuid")) {
        return;
    }
    let (seg, _p, _c) = shared_ring("cli-g660", None, 0o660);
    assert_stat_and_list(seg.name(), myelon_as_nobody);
}

// Failed before `RingBackend::open_read_only`: `stat` and `list` opened every ring read-write,
// which a user with read access only is refused (`stat`: "permission denied"; `list` skipped
// the ring).
#[test]
fn stat_and_list_by_a_group_member_who_may_only_read() {
    let test = "stat_and_list_by_a_group_member_who_may_only_read";
    if !myelon_test_support::runnable(test, myelon_test_support::root("chown, setuid")) {
        return;
    }
    let (seg, _p, _c) = shared_ring("cli-g640", None, 0o640);
    assert_stat_and_list(seg.name(), myelon_as_nobody);
}

#[test]
fn root_stats_and_lists_a_ring_another_user_owns() {
    let test = "root_stats_and_lists_a_ring_another_user_owns";
    if !myelon_test_support::runnable(test, myelon_test_support::root("chown")) {
        return;
    }
    let (seg, _p, _c) = shared_ring("cli-other", Some(NOBODY), 0o600);
    assert_stat_and_list(seg.name(), myelon);
}

#[test]
fn stat_of_a_multi_producer_ring_lists_its_producers_and_abandoned_slots() {
    use myelon::{attach_shared_multi_consumer, build_shared_multi_producer};
    let seg = SegmentGuard::new("cli-mp");
    let mut a = build_shared_multi_producer::<Event>(seg.name(), 16)
        .with_source_id(11)
        .build(Event::default)
        .unwrap();
    let mut b = build_shared_multi_producer::<Event>(seg.name(), 16)
        .with_source_id(22)
        .build(Event::default)
        .unwrap();
    let mut c = attach_shared_multi_consumer::<Event>(seg.name(), 16)
        .with_consumer_id("cli-mp-c")
        .build_consumer()
        .unwrap();
    a.publish(|e| fill(e, 0)).unwrap();
    b.claim_batch(2, None).unwrap().abort(); // given up: skipped and counted
    b.publish(|e| fill(e, 1)).unwrap();
    for _ in 0..2 {
        c.consume_next_timeout(LONG).unwrap();
    }
    let out = ok(&["stat", seg.name()]);
    assert!(out.contains("multi-producer ring"), "{out}");
    let me = std::process::id().to_string();
    // source, pid, state, published, skipped, claiming
    assert_eq!(row(&out, "11"), ["11", &me, "live", "1", "0", "-"]);
    assert_eq!(row(&out, "22"), ["22", &me, "live", "1", "2", "-"]);
    assert!(
        out.contains("abandoned_slots (skipped per consumer): cli-mp-c 2"),
        "{out}"
    );
}
