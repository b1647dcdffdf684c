//! `FixedTopology` across real processes: rendezvous in either start order, typed requests out
//! and responses back, a worker that never starts (typed error at the deadline), a scheduler
//! that never starts, and a worker killed and restarted mid-stream.

mod common;

use common::process::{env_str, env_u64, report, ChildProc, SegmentGuard, Spawn, CHILD_OK};
use myelon::backend::ShmBackend;
use myelon::codec::BincodeCodec;
use myelon::inference::{FixedTopology, InferenceTopologyError, Scheduler, WorkerCount};
use std::time::Duration;

const ENTRY: &str = "child_role";
const LONG: Duration = Duration::from_secs(30);
const SESSION_VAR: &str = "MYELON_TEST_SESSION";
const RANK_VAR: &str = "MYELON_TEST_RANK";
const WORKERS_VAR: &str = "MYELON_TEST_WORKERS";
const STOP_AFTER_VAR: &str = "MYELON_TEST_STOP_AFTER";

#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
struct Request {
    id: u64,
    tokens: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
struct Response {
    id: u64,
    rank: u32,
    sum: u64,
}

fn answer(rank: usize, r: &Request) -> Response {
    Response {
        id: r.id,
        rank: rank as u32,
        sum: r.tokens.iter().map(|&t| u64::from(t)).sum::<u64>() * (rank as u64 + 1),
    }
}

fn request(id: u64) -> Request {
    // Some requests span several frames.
    let len = if id % 10 == 0 {
        400
    } else {
        (id % 7) as usize + 1
    };
    Request {
        id,
        tokens: (0..len as u32).map(|t| t ^ id as u32).collect(),
    }
}

fn topology(label: &str, workers: usize) -> FixedTopology {
    FixedTopology::new(label, WorkerCount::new(workers).unwrap())
        .unwrap()
        .with_rendezvous_timeout(LONG)
}

#[test]
fn child_role() {
    let Some(role) = common::process::role() else {
        return;
    };
    match role.as_str() {
        "worker" => worker_role(),
        other => panic!("unknown child role {other:?}"),
    }
    report(CHILD_OK, role);
}

/// Serves requests until the scheduler closes the session (or, with `STOP_AFTER`, stops
/// responding after that many and waits to be killed).
fn worker_role() {
    let rank = env_u64(RANK_VAR) as usize;
    let topo = topology(&env_str(SESSION_VAR), env_u64(WORKERS_VAR) as usize);
    let mut w = topo
        .worker::<Request, Response, _>(rank, BincodeCodec::<{ 1 << 20 }>)
        .unwrap_or_else(|e| panic!("worker {rank}: {e}"));
    report(
        "CONNECTED",
        format!("incarnation={} resumed={}", w.incarnation(), w.resumed()),
    );
    let stop_after = std::env::var(STOP_AFTER_VAR)
        .ok()
        .map(|v| v.parse::<u64>().unwrap());
    let mut served = 0u64;
    loop {
        match w.recv_timeout(LONG) {
            Ok(r) => {
                if stop_after == Some(served) {
                    report("STALLED", r.id);
                    std::thread::sleep(LONG * 4);
                    panic!("meant to be killed");
                }
                w.respond(&answer(rank, &r)).expect("respond");
                served += 1;
            }
            Err(InferenceTopologyError::Transport(myelon::transport::TransportError::Ring(
                myelon::MultiProcessError::Closed,
            ))) => break,
            Err(e) => panic!("worker {rank}: {e}"),
        }
    }
    report("SERVED", served);
}

/// Removes every segment of a session when the test ends.
struct Session {
    label: String,
    _guards: Vec<SegmentGuard>,
}

fn session(tag: &str, workers: usize) -> Session {
    let label = common::unique(tag);
    let topo = topology(&label, workers);
    let guards = topo
        .layout()
        .all_segments()
        .map(|n| SegmentGuard(n.to_string()))
        .collect();
    Session {
        label,
        _guards: guards,
    }
}

fn spawn_worker(s: &Session, workers: usize, rank: usize) -> ChildProc {
    Spawn::new(ENTRY, "worker")
        .env(SESSION_VAR, &s.label)
        .env(WORKERS_VAR, workers)
        .env(RANK_VAR, rank)
        .spawn()
}

type Sched = Scheduler<Request, Response, BincodeCodec<{ 1 << 20 }>, ShmBackend>;

fn scheduler(label: &str, workers: usize) -> Sched {
    topology(label, workers)
        .scheduler(BincodeCodec::<{ 1 << 20 }>)
        .unwrap_or_else(|e| panic!("scheduler: {e}"))
}

/// Broadcasts `ids` and checks every worker's response to each, in order.
fn exchange(s: &mut Sched, workers: usize, ids: std::ops::Range<u64>) {
    for id in ids.clone() {
        s.broadcast(&request(id)).expect("broadcast");
    }
    for rank in 0..workers {
        for id in ids.clone() {
            let r = s.recv_from(rank, LONG).expect("response");
            assert_eq!(r, answer(rank, &request(id)), "rank {rank}");
        }
    }
}

#[test]
fn workers_first_then_scheduler_rendezvous_and_exchange() {
    let workers = 3;
    let sess = session("topo-wf", workers);
    let mut procs: Vec<ChildProc> = (0..workers)
        .map(|r| spawn_worker(&sess, workers, r))
        .collect();
    let mut s = scheduler(&sess.label, workers);
    for p in &mut procs {
        assert_eq!(p.expect("CONNECTED", LONG), "incarnation=1 resumed=true");
    }
    exchange(&mut s, workers, 0..200);
    drop(s);
    for p in &mut procs {
        assert_eq!(p.expect("SERVED", LONG), "200");
        p.finish(LONG);
    }
}

#[test]
fn scheduler_first_then_workers_for_every_worker_count_edge() {
    for workers in [WorkerCount::MIN, WorkerCount::MAX] {
        let sess = session("topo-sf", workers);
        let label = sess.label.clone();
        let sched = std::thread::spawn(move || {
            let mut s = scheduler(&label, workers);
            exchange(&mut s, workers, 0..20);
        });
        let mut procs: Vec<ChildProc> = (0..workers)
            .map(|r| spawn_worker(&sess, workers, r))
            .collect();
        sched.join().expect("scheduler thread");
        for p in &mut procs {
            assert_eq!(p.expect("SERVED", LONG), "20");
            p.finish(LONG);
        }
    }
}

#[test]
fn a_worker_that_never_starts_is_a_typed_error_at_the_deadline() {
    let workers = 2;
    let sess = session("topo-missing", workers);
    let mut only = spawn_worker(&sess, workers, 0);
    let topo = topology(&sess.label, workers).with_rendezvous_timeout(Duration::from_millis(500));
    let err = topo
        .scheduler::<Request, Response, _>(BincodeCodec::<{ 1 << 20 }>)
        .expect_err("rank 1 never starts");
    match err {
        InferenceTopologyError::RendezvousTimeout {
            side,
            missing,
            waited,
        } => {
            assert_eq!(side, "scheduler");
            let rank1 = topo.layout().response_segment(1).unwrap();
            assert!(
                missing.iter().any(|m| m == rank1 || m == "runner-1"),
                "{missing:?}"
            );
            assert!(!missing.iter().any(|m| m.contains("rsp0")), "{missing:?}");
            assert!(waited >= Duration::from_millis(500));
        }
        other => panic!("{other}"),
    }
    // The scheduler is gone: the worker that did start sees the session closed.
    only.finish(LONG);
}

#[test]
fn a_worker_without_a_scheduler_is_a_typed_error_at_the_deadline() {
    let sess = session("topo-nosched", 2);
    let topo = topology(&sess.label, 2).with_rendezvous_timeout(Duration::from_millis(200));
    match topo.worker::<Request, Response, _>(1, BincodeCodec::<{ 1 << 20 }>) {
        Err(InferenceTopologyError::RendezvousTimeout { side, missing, .. }) => {
            assert_eq!(side, "worker 1");
            assert!(missing[0].contains("coordination cursor"), "{missing:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        topo.worker::<Request, Response, _>(2, BincodeCodec::<{ 1 << 20 }>),
        Err(InferenceTopologyError::InvalidRank {
            rank: 2,
            workers: 2
        })
    ));
}

#[test]
fn a_killed_worker_restarts_and_the_scheduler_follows_it() {
    let workers = 2;
    let sess = session("topo-restart", workers);
    let mut w0 = spawn_worker(&sess, workers, 0);
    let mut w1 = Spawn::new(ENTRY, "worker")
        .env(SESSION_VAR, &sess.label)
        .env(WORKERS_VAR, workers)
        .env(RANK_VAR, 1)
        .env(STOP_AFTER_VAR, 5)
        .spawn();
    let mut s = scheduler(&sess.label, workers);
    for id in 0..10 {
        s.broadcast(&request(id)).unwrap();
    }
    // Worker 1 answers 0..5, receives 5 and stalls; kill it there.
    assert_eq!(w1.expect("STALLED", LONG), "5");
    w1.kill();
    let mut again = spawn_worker(&sess, workers, 1);
    assert_eq!(
        again.expect("CONNECTED", LONG),
        "incarnation=2 resumed=true"
    );
    for id in 0..10 {
        assert_eq!(s.recv_from(0, LONG).unwrap(), answer(0, &request(id)));
    }
    // Rank 1: 0..5 from the first incarnation, then (after re-attaching) 6..10 from the
    // second, which resumed after the last request the first one received (5: received,
    // never answered, not redelivered).
    for id in (0..5).chain(6..10) {
        assert_eq!(
            s.recv_from(1, LONG).unwrap(),
            answer(1, &request(id)),
            "id {id}"
        );
    }
    assert_eq!(s.worker_incarnation(1), 2);
    drop(s);
    w0.finish(LONG);
    again.finish(LONG);
}
