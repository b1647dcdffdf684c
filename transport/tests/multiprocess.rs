//! Layer 0 across real processes, over POSIX shared memory.
//!
//! The test binary re-executes itself in a role (`child_role`, see `common/process.rs`): each
//! child reports marker lines on stdout and ends with `CHILD-OK <role>`; the parent checks them.
//! Every child is killed and reaped, and every ring name unlinked, when its test ends, passed or
//! failed. Nothing here sleeps to wait for a condition or asserts a duration: the bounds below
//! only turn a hang into a failure.

mod common;

use common::process::{
    env_str, env_u64, read_command, report, ChildProc, SegmentGuard, Spawn, CHILD_OK, ID_VAR,
    SEGMENT_VAR,
};
use common::{checksum, fill, Event, Other};
use myelon::backend::BackendError;
use myelon::{
    attach_shared_consumer, build_shared_single_producer, type_fingerprint, AutoWaitStrategy,
    CoordinationMode, MultiProcessError, SharedConsumer, SharedProducer, ShmEvent,
};
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// Full path of the role entry test, as `--exact` needs it.
const ENTRY: &str = "child_role";
/// Bound on one blocking step (attach, receive, publish, a marker line).
const LONG: Duration = Duration::from_secs(30);
/// Bound on a child's whole run.
const CHILD_DEADLINE: Duration = Duration::from_secs(120);
/// Events a draining consumer handles per batch.
const BATCH: usize = 1024;

const CAPACITY_VAR: &str = "MYELON_TEST_CAPACITY";
const COUNT_VAR: &str = "MYELON_TEST_COUNT";
const STOP_AFTER_VAR: &str = "MYELON_TEST_STOP_AFTER";
const EVENT_VAR: &str = "MYELON_TEST_EVENT";

// ---------------------------------------------------------------------------------------------
// Child side
// ---------------------------------------------------------------------------------------------

/// Entry point of every child process; a no-op in a normal test run.
#[test]
fn child_role() {
    let Some(role) = common::process::role() else {
        return;
    };
    match role.as_str() {
        "consumer" => consumer_role(),
        "holding_producer" => holding_producer_role(),
        "streaming_producer" => streaming_producer_role(),
        "no_space" => no_space_role(),
        "umask" => umask_role(),
        "abandoned_create" => abandoned_create_role(),
        other => panic!("unknown child role {other:?}"),
    }
    report(CHILD_OK, role);
}

fn check(e: &Event, seq: u64) {
    assert_eq!(e.sequence, seq, "sequence gap or reorder");
    assert_eq!(e.checksum, checksum(seq), "torn or corrupt event {seq}");
}

/// Attaches as `MYELON_TEST_ID`, reports where it starts, then either releases exactly
/// `MYELON_TEST_STOP_AFTER` events and stalls until killed, or verifies the whole stream.
fn consumer_role() {
    let mut c = attach::<Event>(
        &env_str(SEGMENT_VAR),
        env_u64(CAPACITY_VAR) as usize,
        &env_str(ID_VAR),
    );
    let attached = format!("first={} resumed={}", c.next_sequence(), c.resumed());
    report("ATTACHED", attached);
    match std::env::var(STOP_AFTER_VAR) {
        Ok(k) => stall_after(&mut c, k.parse().expect("stop-after count")),
        Err(_) => drain_to_close(&mut c),
    }
}

fn stall_after(c: &mut SharedConsumer<Event>, k: u64) {
    let first = c.next_sequence() as u64;
    for s in first..first + k {
        // Copied out: the lease drops at once, so every event is committed before the next.
        let e = c.consume_next_timeout(LONG).expect("event");
        check(&e, s);
    }
    assert_eq!(c.cursor(), (first + k) as i64 - 1);
    report("RELEASED", c.next_sequence());
    let cmd = read_command();
    panic!("the stalled consumer was meant to be killed, got stdin {cmd:?}");
}

fn drain_to_close(c: &mut SharedConsumer<Event>) {
    let first = c.next_sequence() as u64;
    let (mut next, mut sum) = (first, 0u64);
    loop {
        let r = c.consume_batch_timeout(BATCH, LONG, |e, s, _| {
            assert_eq!(s, next as i64, "lease sequence");
            check(e, next);
            sum = sum.wrapping_add(e.checksum);
            next += 1;
        });
        match r {
            Ok(_) => {}
            Err(MultiProcessError::Closed) => break,
            Err(e) => panic!("consume at {next}: {e}"),
        }
    }
    report(
        "VERIFIED",
        format!("first={first} count={} sum={sum}", next - first),
    );
}

fn write_other(e: &mut Other, seq: u64) {
    e.a = seq;
    e.b = checksum(seq);
}

/// Creates the ring with a reservation for `MYELON_TEST_ID`, publishes `MYELON_TEST_COUNT`
/// events, reports `READY`, then obeys `publish <n>` lines on stdin until stdin closes, and
/// closes the stream. Killed while it waits on stdin, it leaves the ring as a crash would.
fn holding_producer_role() {
    let segment = env_str(SEGMENT_VAR);
    let capacity = env_u64(CAPACITY_VAR) as usize;
    match env_str(EVENT_VAR).as_str() {
        "event" => hold::<Event>(&segment, capacity, fill),
        "other" => hold::<Other>(&segment, capacity, write_other),
        other => panic!("unknown event type {other:?}"),
    }
}

fn hold<E: ShmEvent + Default>(segment: &str, capacity: usize, write: fn(&mut E, u64)) {
    let mut p = build_shared_single_producer::<E>(segment, capacity)
        .with_consumer_id(env_str(ID_VAR))
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .build_producer(E::default)
        .expect("build producer");
    let mut next = 0;
    for _ in 0..env_u64(COUNT_VAR) {
        p.try_publish(|e| write(e, next))
            .expect("the initial events fit in the ring");
        next += 1;
    }
    report("READY", next);
    while let Some(cmd) = read_command() {
        let n: u64 = cmd
            .strip_prefix("publish ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad command {cmd:?}"));
        for _ in 0..n {
            p.publish_timeout(LONG, |e| write(e, next))
                .expect("publish");
            next += 1;
        }
        report("PUBLISHED", next);
    }
    drop(p);
    report("CLOSED", next);
}

/// Waits for consumer `MYELON_TEST_ID`, publishes `MYELON_TEST_COUNT` events, closes the stream
/// by dropping the producer, and exits normally.
fn streaming_producer_role() {
    let mut p = build_shared_single_producer::<Event>(
        &env_str(SEGMENT_VAR),
        env_u64(CAPACITY_VAR) as usize,
    )
    .with_consumer_id(env_str(ID_VAR))
    .with_coordination(CoordinationMode::WaitForConsumers)
    .with_coordination_timeout(LONG)
    .build_producer(Event::default)
    .expect("build producer");
    publish_range(&mut p, 0..env_u64(COUNT_VAR));
    drop(p);
    report("CLOSED", "dropped");
}

fn shm_entries() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/dev/shm")
        .expect("read /dev/shm")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Runs inside a private mount namespace whose `/dev/shm` is a 1 MiB tmpfs.
fn no_space_role() {
    assert_eq!(
        shm_entries(),
        Vec::<String>::new(),
        "a fresh tmpfs is empty"
    );
    let segment = env_str(SEGMENT_VAR);
    let err = build_shared_single_producer::<Event>(&segment, 1 << 16)
        .build_producer(Event::default)
        .expect_err("a 4 MiB ring cannot fit in 1 MiB");
    assert!(
        matches!(
            err,
            MultiProcessError::Backend(BackendError::NoSpace { requested, .. })
                if requested > 1 << 20
        ),
        "{err}"
    );
    assert_eq!(
        shm_entries(),
        Vec::<String>::new(),
        "the failed create left a file"
    );
    // The same mount takes a ring that fits, so the refusal above was about space.
    let small = build_shared_single_producer::<Event>(&segment, 1 << 10)
        .build_producer(Event::default)
        .expect("a 70 KiB ring fits");
    assert_eq!(shm_entries(), vec![segment.clone()]);
    drop(small);
    assert_eq!(
        shm_entries(),
        Vec::<String>::new(),
        "the producer unlinks on drop"
    );
    report("NO-SPACE", "typed");
}

fn mode_of(path: &std::path::Path) -> u32 {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("stat {path:?}: {e}"));
    meta.permissions().mode() & 0o777
}

fn umask_role() {
    // SAFETY: umask only replaces the calling process's file-creation mask; this child process
    // exists for this one check, so no other test observes the change.
    unsafe { libc::umask(0) };
    let probe = std::env::temp_dir().join(common::unique("umask-probe"));
    std::fs::File::create(&probe).expect("create probe file");
    let probe_mode = mode_of(&probe);
    std::fs::remove_file(&probe).expect("remove probe file");
    assert_eq!(probe_mode, 0o666, "umask 000 is in effect");
    let segment = env_str(SEGMENT_VAR);
    let p = build_shared_single_producer::<Event>(&segment, 64)
        .build_producer(Event::default)
        .expect("build producer");
    let mode = mode_of(&shm_path(&segment));
    report("MODE", format!("{mode:o}"));
    assert_eq!(mode, 0o600);
    drop(p);
}

/// Leaves what a producer killed inside `ShmSegment::create` leaves: the object exists
/// (`O_CREAT|O_EXCL` with the unfinished mark, mode `0400`; its owner lock taken) but was never
/// sized. Blocks until killed.
fn abandoned_create_role() {
    let name = std::ffi::CString::new(format!("/{}", env_str(SEGMENT_VAR))).expect("no NUL");
    let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::shm_open(name.as_ptr(), flags, 0o400) };
    assert!(fd >= 0, "shm_open: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just returned by shm_open and stays open until this process dies.
    let locked = unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(locked, 0, "flock: {}", std::io::Error::last_os_error());
    report("CREATED", "unsized");
    let cmd = read_command();
    panic!("the creator was meant to be killed, got stdin {cmd:?}");
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

fn shm_path(segment: &str) -> PathBuf {
    PathBuf::from("/dev/shm").join(segment)
}

fn attach<E: ShmEvent>(segment: &str, capacity: usize, id: &str) -> SharedConsumer<E> {
    attach_shared_consumer::<E>(segment, capacity)
        .with_consumer_id(id)
        .with_attach_timeout(LONG)
        .with_wait_strategy(AutoWaitStrategy::Block)
        .build_consumer()
        .unwrap_or_else(|e| panic!("attach {id:?} to {segment:?}: {e}"))
}

fn publish_range(p: &mut SharedProducer<Event>, range: Range<u64>) {
    for s in range {
        p.publish_timeout(LONG, |e| fill(e, s))
            .unwrap_or_else(|e| panic!("publish {s}: {e}"));
    }
}

fn expect_event(c: &mut SharedConsumer<Event>, seq: u64) {
    let e = c
        .consume_next_timeout(LONG)
        .unwrap_or_else(|e| panic!("event {seq}: {e}"));
    check(&e, seq);
}

fn checksum_sum(range: Range<u64>) -> u64 {
    range.fold(0, |a, s| a.wrapping_add(checksum(s)))
}

fn consumer_child(segment: &str, id: &str, capacity: usize, stop_after: Option<u64>) -> ChildProc {
    let mut spawn = Spawn::new(ENTRY, "consumer")
        .env(SEGMENT_VAR, segment)
        .env(ID_VAR, id)
        .env(CAPACITY_VAR, capacity);
    if let Some(k) = stop_after {
        spawn = spawn.env(STOP_AFTER_VAR, k);
    }
    spawn.spawn()
}

fn holding_producer_child(
    segment: &str,
    event: &str,
    capacity: usize,
    count: u64,
    reserved_id: &str,
) -> ChildProc {
    Spawn::new(ENTRY, "holding_producer")
        .env(SEGMENT_VAR, segment)
        .env(EVENT_VAR, event)
        .env(CAPACITY_VAR, capacity)
        .env(COUNT_VAR, count)
        .env(ID_VAR, reserved_id)
        .spawn()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn one_producer_three_consumers_one_million_events() {
    const N: u64 = 1_000_000;
    const CAP: usize = 1 << 12;
    let seg = SegmentGuard::new("million");
    let ids = ["c0", "c1", "c2"];
    let mut children: Vec<ChildProc> = ids
        .iter()
        .map(|id| consumer_child(seg.name(), id, CAP, None))
        .collect();
    let mut p = build_shared_single_producer::<Event>(seg.name(), CAP)
        .with_consumer_ids(ids)
        .with_coordination(CoordinationMode::WaitForConsumers)
        .with_coordination_timeout(LONG)
        .build_producer(Event::default)
        .expect("all three consumers attach");
    for c in &mut children {
        assert_eq!(c.expect("ATTACHED", LONG), "first=0 resumed=true");
    }
    publish_range(&mut p, 0..N);
    drop(p);
    let want = format!("first=0 count={N} sum={}", checksum_sum(0..N));
    for c in &mut children {
        assert_eq!(c.expect("VERIFIED", CHILD_DEADLINE), want);
        c.finish(LONG);
    }
}

#[test]
fn killed_consumer_rejoins_under_its_id() {
    const N: u64 = 100_000;
    const CAP: usize = 1 << 10;
    const K: u64 = 300;
    let seg = SegmentGuard::new("rejoin");
    let mut c0 = consumer_child(seg.name(), "c0", CAP, None);
    let mut c1 = consumer_child(seg.name(), "c1", CAP, Some(K));
    let mut c2 = consumer_child(seg.name(), "c2", CAP, None);
    let mut p = build_shared_single_producer::<Event>(seg.name(), CAP)
        .with_consumer_ids(["c0", "c1", "c2"])
        .with_coordination(CoordinationMode::WaitForConsumers)
        .with_coordination_timeout(LONG)
        .build_producer(Event::default)
        .expect("all three consumers attach");
    // The publisher reports its cursor each time it finds the ring full.
    let (full_tx, full_rx) = mpsc::channel();
    let publisher = std::thread::spawn(move || {
        let mut reported = -1;
        for s in 0..N {
            if p.try_publish(|e| fill(e, s)).is_err() {
                if p.cursor() != reported {
                    reported = p.cursor();
                    let _ = full_tx.send(reported);
                }
                p.publish_timeout(LONG, |e| fill(e, s))
                    .unwrap_or_else(|e| panic!("publish {s}: {e}"));
            }
        }
    });
    assert_eq!(c1.expect("RELEASED", LONG), K.to_string());
    let status = c1.kill();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    // The killed consumer's committed cursor (K - 1) still gates: the ring fills up to exactly
    // K - 1 + CAP and the producer stops there.
    let full_at = (K - 1) as i64 + CAP as i64;
    loop {
        let cursor = full_rx
            .recv_timeout(LONG)
            .expect("the producer reports a full ring");
        assert!(
            cursor <= full_at,
            "overwrote an event the killed consumer never read"
        );
        if cursor == full_at {
            break;
        }
    }
    let mut rejoined = consumer_child(seg.name(), "c1", CAP, None);
    assert_eq!(
        rejoined.expect("ATTACHED", LONG),
        format!("first={K} resumed=true")
    );
    publisher.join().expect("publisher thread");
    let all = format!("first=0 count={N} sum={}", checksum_sum(0..N));
    for c in [&mut c0, &mut c2] {
        assert_eq!(c.expect("VERIFIED", CHILD_DEADLINE), all);
    }
    let rest = format!("first={K} count={} sum={}", N - K, checksum_sum(K..N));
    assert_eq!(rejoined.expect("VERIFIED", CHILD_DEADLINE), rest);
    for c in [&mut c0, &mut c2, &mut rejoined] {
        c.finish(LONG);
    }
}

#[test]
fn killed_producer_gives_typed_error() {
    const CAP: usize = 256;
    const M: u64 = 100;
    let seg = SegmentGuard::new("deadprod");
    let mut producer = holding_producer_child(seg.name(), "event", CAP, M, "k0");
    assert_eq!(producer.expect("READY", LONG), M.to_string());
    let mut c = attach::<Event>(seg.name(), CAP, "k0");
    assert!(c.resumed(), "takes the reservation, so starts at 0");
    for s in 0..M / 2 {
        expect_event(&mut c, s);
    }
    let status = producer.kill();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    // What was published before the crash is still delivered, then the crash is reported.
    for s in M / 2..M {
        expect_event(&mut c, s);
    }
    let err = c.consume_next_timeout(LONG).unwrap_err();
    assert!(matches!(err, MultiProcessError::ProducerDead), "{err}");

    // The dead producer's segment still holds the name; a new producer reclaims it.
    assert!(shm_path(seg.name()).exists());
    let mut p = build_shared_single_producer::<Event>(seg.name(), CAP)
        .build_producer(Event::default)
        .expect("a stale segment is reclaimed");
    // Id "k0" is still held by the live consumer of the old ring; attaching under it works only
    // on a new table, at the new ring's tail.
    let mut fresh = attach::<Event>(seg.name(), CAP, "k0");
    assert!(!fresh.resumed());
    assert_eq!(fresh.next_sequence(), 0);
    assert_eq!(p.publish(|e| fill(e, 0)), 0);
    expect_event(&mut fresh, 0);
    // The old consumer keeps its (unlinked) ring and its verdict.
    let err = c.consume_next_timeout(LONG).unwrap_err();
    assert!(matches!(err, MultiProcessError::ProducerDead), "{err}");
}

#[test]
fn live_producer_name_is_refused_across_processes() {
    const CAP: usize = 256;
    const M: u64 = 100;
    const MORE: u64 = 1000;
    let seg = SegmentGuard::new("live");
    let mut producer = holding_producer_child(seg.name(), "event", CAP, M, "v0");
    assert_eq!(producer.expect("READY", LONG), M.to_string());
    let err = build_shared_single_producer::<Event>(seg.name(), CAP)
        .build_producer(Event::default)
        .unwrap_err();
    assert!(
        matches!(
            err,
            MultiProcessError::Backend(BackendError::AlreadyExists { .. })
        ),
        "{err}"
    );
    // The child's ring is intact: its reservation, its events, its stream.
    let mut c = attach::<Event>(seg.name(), CAP, "v0");
    assert!(c.resumed());
    for s in 0..M {
        expect_event(&mut c, s);
    }
    producer.send(&format!("publish {MORE}"));
    producer.close_stdin();
    for s in M..M + MORE {
        expect_event(&mut c, s);
    }
    let err = c.consume_next_timeout(LONG).unwrap_err();
    assert!(matches!(err, MultiProcessError::Closed), "{err}");
    producer.finish(LONG);
    assert_eq!(producer.expect("CLOSED", LONG), (M + MORE).to_string());
}

#[test]
fn full_dev_shm_is_a_clean_error() {
    let unshare = ["unshare", "--mount", "--propagation", "private"];
    let ready = myelon_test_support::root("unshare -m and mount").and_then(|()| {
        myelon_test_support::probe(unshare[0], &[&unshare[1..], &["true"]].concat())
    });
    if !myelon_test_support::runnable("full_dev_shm_is_a_clean_error", ready) {
        return;
    }
    let seg = SegmentGuard::new("nospace");
    let mount_then_exec = r#"mount -t tmpfs -o size=1m tmpfs /dev/shm && exec "$0" "$@""#;
    let mut wrapper = unshare.to_vec();
    wrapper.extend(["sh", "-c", mount_then_exec]);
    let mut child = Spawn::new(ENTRY, "no_space")
        .env(SEGMENT_VAR, seg.name())
        .wrapped_in(&wrapper)
        .spawn();
    let status = child.finish(CHILD_DEADLINE);
    assert_eq!(status.signal(), None, "killed by a signal (SIGBUS?)");
    assert_eq!(child.expect("NO-SPACE", LONG), "typed");
    assert!(
        !shm_path(seg.name()).exists(),
        "the namespace's mount leaked"
    );
}

#[test]
fn segment_is_0600_under_umask_000() {
    let seg = SegmentGuard::new("umask");
    let mut child = Spawn::new(ENTRY, "umask")
        .env(SEGMENT_VAR, seg.name())
        .spawn();
    child.finish(CHILD_DEADLINE);
    assert_eq!(child.expect("MODE", LONG), "600");
}

#[test]
fn equal_size_type_mismatch_across_processes() {
    const CAP: usize = 64;
    const M: u64 = 4;
    assert_eq!(std::mem::size_of::<Event>(), std::mem::size_of::<Other>());
    let seg = SegmentGuard::new("types");
    let mut producer = holding_producer_child(seg.name(), "other", CAP, M, "t0");
    assert_eq!(producer.expect("READY", LONG), M.to_string());
    let err = attach_shared_consumer::<Event>(seg.name(), CAP)
        .with_consumer_id("t0")
        .build_consumer()
        .unwrap_err();
    let (ours, theirs) = (type_fingerprint::<Event>(), type_fingerprint::<Other>());
    assert_ne!(ours, theirs);
    assert!(
        matches!(
            err,
            MultiProcessError::TypeMismatch { expected, found }
                if expected == ours && found == theirs
        ),
        "{err}"
    );
    // The refused attach took nothing: the right type claims the reservation from sequence 0.
    let mut c = attach::<Other>(seg.name(), CAP, "t0");
    assert!(c.resumed());
    for s in 0..M {
        let e = c.consume_next_timeout(LONG).expect("event");
        assert_eq!((e.a, e.b), (s, checksum(s)));
    }
    producer.finish(LONG);
}

#[test]
fn producer_drop_signals_end_of_stream_across_processes() {
    const CAP: usize = 256;
    const N: u64 = 5000;
    let seg = SegmentGuard::new("eos");
    let mut producer = Spawn::new(ENTRY, "streaming_producer")
        .env(SEGMENT_VAR, seg.name())
        .env(CAPACITY_VAR, CAP)
        .env(COUNT_VAR, N)
        .env(ID_VAR, "d0")
        .spawn();
    let mut c = attach::<Event>(seg.name(), CAP, "d0");
    assert!(c.resumed());
    for s in 0..N {
        expect_event(&mut c, s);
    }
    // The producer process has dropped its producer and exited: end of stream, not a crash.
    producer.finish(LONG);
    let err = c.consume_next_timeout(LONG).unwrap_err();
    assert!(matches!(err, MultiProcessError::Closed), "{err}");
    assert!(matches!(
        c.try_consume_next(),
        Err(MultiProcessError::Closed)
    ));
    assert!(
        !shm_path(seg.name()).exists(),
        "the producer unlinks its ring"
    );
}

/// A producer killed between creating its object and sizing it (inside a long
/// `posix_fallocate`, say) leaves a zero-length object whose owner is dead. The next producer
/// should reclaim the name, as it does for a sized but uninitialised one.
#[test]
fn abandoned_unsized_segment_is_reclaimed() {
    let seg = SegmentGuard::new("unsized");
    let mut creator = Spawn::new(ENTRY, "abandoned_create")
        .env(SEGMENT_VAR, seg.name())
        .spawn();
    assert_eq!(creator.expect("CREATED", LONG), "unsized");
    creator.kill();
    let len = std::fs::metadata(shm_path(seg.name())).map(|m| m.len());
    assert_eq!(
        len.ok(),
        Some(0),
        "the dead creator's object is still there, unsized"
    );
    let p = build_shared_single_producer::<Event>(seg.name(), 64).build_producer(Event::default);
    assert!(p.is_ok(), "{}", p.unwrap_err());
}
