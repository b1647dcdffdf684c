//! `MmapTransportLayout` with real files and real processes: its directories (mode 0700, a
//! symlink or a file in their place refused), a producer process and a consumer process that
//! meet through the layout's paths, and `FixedTopology` over mmap files (`scheduler_mmap` /
//! `worker_mmap`) with the scheduler and a worker in two processes.

use myelon::codec::BincodeCodec;
use myelon::inference::{FixedTopology, WorkerCount};
use myelon::{attach_mmap_consumer, build_mmap_single_producer, MmapLayoutError};
use myelon::{MmapTransportLayout, MyelonTransportLayout};
use myelon_test_support::{env_str, env_u64, report, ChildProc, Spawn, CHILD_OK, DEADLINE};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const ENTRY: &str = "child_role";
const ROOT_VAR: &str = "MYELON_TEST_ROOT";
const SESSION_VAR: &str = "MYELON_TEST_SESSION";
const EVENTS: u64 = 200; // fewer than CAP: the reservation holds them all until c0 attaches
const CAP: usize = 256;

myelon::shm_event! {
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Event { pub sequence: u64, pub check: u64 }
}

/// A fresh directory under the temp dir, removed (with everything in it) when dropped.
struct TempRoot(PathBuf);

impl TempRoot {
    fn new(tag: &str) -> TempRoot {
        let p = std::env::temp_dir().join(myelon_test_support::unique_name(tag));
        TempRoot(p)
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn layout() -> MmapTransportLayout {
    MmapTransportLayout::new(env_str(ROOT_VAR), &env_str(SESSION_VAR), 1).expect("layout")
}

#[test]
fn child_role() {
    let Some(role) = myelon_test_support::role() else {
        return;
    };
    match role.as_str() {
        "producer" => producer_role(),
        "consumer" => consumer_role(),
        "scheduler" => scheduler_role(),
        "worker" => worker_role(),
        other => panic!("unknown child role {other:?}"),
    }
    report(CHILD_OK, role);
}

fn producer_role() {
    let files = layout();
    files.ensure_directories().expect("directories");
    let mut p = build_mmap_single_producer::<Event>(files.dispatch_path(), CAP)
        .with_consumer_id("c0")
        .build_producer(Event::default)
        .expect("producer");
    for i in 0..EVENTS {
        p.publish(|e| {
            e.sequence = i;
            e.check = i.wrapping_mul(0x9e37_79b9);
        });
    }
    report("PUBLISHED", EVENTS);
    // Stay alive (a live producer) until the parent says the consumer is done.
    let _ = myelon_test_support::read_command();
}

fn consumer_role() {
    let files = layout();
    let mut c = attach_mmap_consumer::<Event>(files.dispatch_path(), CAP)
        .with_consumer_id("c0")
        .build_consumer()
        .expect("consumer");
    for i in 0..EVENTS {
        let e = c
            .consume_next_leased_timeout(DEADLINE)
            .expect("event in time");
        assert_eq!((e.sequence, e.check), (i, i.wrapping_mul(0x9e37_79b9)));
    }
    report("RECEIVED", EVENTS);
}

fn topology() -> FixedTopology {
    FixedTopology::new(&env_str(SESSION_VAR), WorkerCount::new(2).unwrap())
        .unwrap()
        .with_rendezvous_timeout(DEADLINE)
}

fn scheduler_role() {
    let topo = topology();
    let mut s = topo
        .scheduler_mmap::<u64, u64, _>(env_str(ROOT_VAR), BincodeCodec::<1024>)
        .expect("scheduler");
    for id in 0..50u64 {
        s.broadcast(&id).expect("broadcast");
    }
    for rank in 0..2 {
        for id in 0..50u64 {
            let r = s.recv_from(rank, DEADLINE).expect("response");
            assert_eq!(r, id * 10 + rank as u64);
        }
    }
    report("ANSWERED", 100);
}

fn worker_role() {
    let rank = env_u64("MYELON_TEST_RANK") as usize;
    let mut w = topology()
        .worker_mmap::<u64, u64, _>(env_str(ROOT_VAR), rank, BincodeCodec::<1024>)
        .expect("worker");
    for _ in 0..50 {
        let id = w.recv_timeout(DEADLINE).expect("request");
        w.respond(&(id * 10 + rank as u64)).expect("respond");
    }
}

fn spawn(role: &str, root: &Path, session: &str) -> ChildProc {
    Spawn::new(ENTRY, role)
        .env(ROOT_VAR, root.display())
        .env(SESSION_VAR, session)
        .spawn()
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn directories_are_private_and_never_symlinks() {
    let root = TempRoot::new("mlayout-dirs");
    let l = MmapTransportLayout::new(root.0.join("rings"), "s1", 2).unwrap();
    l.ensure_directories().expect("create");
    l.ensure_directories().expect("idempotent");
    assert_eq!(mode(l.root()), 0o700);
    assert_eq!(mode(l.session_dir()), 0o700);

    // A symlink where the session directory should be is refused, not followed.
    let elsewhere = root.0.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root.0.join("rings").join("s2")).unwrap();
    let l2 = MmapTransportLayout::new(root.0.join("rings"), "s2", 1).unwrap();
    match l2.ensure_directories() {
        Err(MmapLayoutError::Symlink { path }) => assert_eq!(path, l2.session_dir()),
        other => panic!("{other:?}"),
    }
    // So is a file.
    std::fs::write(root.0.join("rings").join("s3"), b"x").unwrap();
    let l3 = MmapTransportLayout::new(root.0.join("rings"), "s3", 1).unwrap();
    assert!(matches!(
        l3.ensure_directories(),
        Err(MmapLayoutError::NotADirectory { .. })
    ));
    // A symlinked root too.
    let l4 = MmapTransportLayout::new(root.0.join("rings").join("s2"), "x", 1).unwrap();
    assert!(matches!(
        l4.ensure_directories(),
        Err(MmapLayoutError::Symlink { .. })
    ));
}

#[test]
fn a_producer_and_a_consumer_process_meet_through_the_paths() {
    let root = TempRoot::new("mlayout-procs");
    let mut producer = spawn("producer", &root.0, "sess");
    assert_eq!(producer.expect("PUBLISHED", DEADLINE), EVENTS.to_string());
    // The consumer starts after everything was published; its named id was reserved.
    let mut consumer = spawn("consumer", &root.0, "sess");
    assert_eq!(consumer.expect("RECEIVED", DEADLINE), EVENTS.to_string());
    consumer.finish(DEADLINE);
    producer.close_stdin();
    producer.finish(DEADLINE);
    let files = MmapTransportLayout::new(&root.0, "sess", 1).unwrap();
    // The producer removed its ring file when it was dropped; nothing else was created.
    let left: Vec<_> = std::fs::read_dir(files.session_dir()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn fixed_topology_over_mmap_files_in_two_processes() {
    let root = TempRoot::new("mlayout-topo");
    let label = format!("mmaptopo{}", std::process::id());
    let mut scheduler = spawn("scheduler", &root.0, &label);
    let mut workers: Vec<ChildProc> = (0..2)
        .map(|rank| {
            Spawn::new(ENTRY, "worker")
                .env(ROOT_VAR, root.0.display())
                .env(SESSION_VAR, &label)
                .env("MYELON_TEST_RANK", rank)
                .spawn()
        })
        .collect();
    assert_eq!(scheduler.expect("ANSWERED", DEADLINE), "100");
    for w in &mut workers {
        w.finish(DEADLINE);
    }
    scheduler.finish(DEADLINE);
    // The files were where the layout says they are (the session directory exists).
    let t = MyelonTransportLayout::new(&label, "myelon", 2).unwrap();
    assert!(t.mmap_layout(&root.0).session_dir().is_dir());
}

#[test]
fn mmap_builders_report_a_bad_path_at_build() {
    use myelon::backend::BackendError;
    use myelon::MultiProcessError;
    let is_invalid_name = |e: MultiProcessError| {
        matches!(
            e,
            MultiProcessError::Backend(BackendError::InvalidName { .. })
        )
    };
    let p = build_mmap_single_producer::<Event>("/", CAP).build_producer(Event::default);
    assert!(p.map(drop).is_err_and(is_invalid_name));
    let c = attach_mmap_consumer::<Event>("/", CAP).build_consumer();
    assert!(c.map(drop).is_err_and(is_invalid_name));
}
