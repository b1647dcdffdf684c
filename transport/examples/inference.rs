//! An inference-shaped demo over `FixedTopology`: one scheduler process, N worker processes,
//! typed requests broadcast out, typed responses back — and one worker SIGKILLed mid-run and
//! restarted, under required-worker liveness.
//!
//! ```text
//! cargo run --release -p myelon --example inference                 # 3 workers, 20000 requests
//! cargo run --release -p myelon --example inference -- --workers 8 --requests 100000
//! cargo run --release -p myelon --example inference -- --no-chaos   # nobody gets killed
//! ```
//!
//! What happens: the scheduler (this process) spawns the workers (this executable again, with
//! `--worker RANK`), the rendezvous completes, and the scheduler streams requests (a few token
//! ids each; every tenth is long enough to span several frames) while draining responses. A
//! third of the way through, a chaos thread SIGKILLs worker 1. The dispatch ring (64 slots)
//! fills behind the dead worker, the blocked broadcast checks liveness, and after 100 ms without
//! progress raises a `Stalled` alert; the chaos thread restarts worker 1 when it sees it. The new
//! incarnation rejoins the dispatch ring under the same id, resumes after the last request the
//! dead one received, re-creates its response ring; the scheduler follows it there, and the
//! liveness layer reports `Recovered`. At the end every response is checked (exactly the
//! expected value, per rank in order, no duplicate), requests lost in the dead worker's hands
//! are counted, and the dispatch ring's counters are read back through `RingInspector`.

// Std atomics here are process-local (counters and flags between threads of this process);
// `clippy.toml`'s rule on shared-memory atomics is for the library.
#![allow(clippy::disallowed_types)]

use myelon::backend::ShmBackend;
use myelon::codec::BincodeCodec;
use myelon::inference::{FixedTopology, InferenceTopologyError, Scheduler, WorkerCount};
use myelon::observability::RingInspector;
use myelon::transport::TransportError;
use myelon::{MultiProcessError, RequiredConsumerAlertKind, RequiredConsumerFailureAction};
use myelon_test_support::{ChildGuard, ReExec};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
struct Request {
    id: u64,
    tokens: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
struct Response {
    id: u64,
    rank: u32,
    logit: u64,
}

type Codec = BincodeCodec<{ 1 << 20 }>;
const TIMEOUT: Duration = Duration::from_secs(30);

fn request(id: u64) -> Request {
    let len = if id % 10 == 0 {
        300
    } else {
        4 + (id % 5) as usize
    };
    Request {
        id,
        tokens: (0..len as u32)
            .map(|t| t.wrapping_mul(2_654_435_761) ^ id as u32)
            .collect(),
    }
}

/// The "model": what worker `rank` answers to `r`.
fn infer(rank: usize, r: &Request) -> Response {
    let logit = r.tokens.iter().fold(rank as u64 + 1, |h, &t| {
        h.wrapping_mul(31).wrapping_add(u64::from(t))
    });
    Response {
        id: r.id,
        rank: rank as u32,
        logit,
    }
}

struct Args {
    workers: usize,
    requests: u64,
    chaos: bool,
    worker: Option<usize>,
    session: String,
}

fn args() -> Args {
    let mut a = Args {
        workers: 3,
        requests: 20_000,
        chaos: true,
        worker: None,
        session: format!("infer-{}", std::process::id()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--workers" => a.workers = value().parse().expect("--workers N"),
            "--requests" => a.requests = value().parse().expect("--requests N"),
            "--no-chaos" => a.chaos = false,
            "--worker" => a.worker = Some(value().parse().expect("--worker RANK")),
            "--session" => a.session = value(),
            other => panic!("unknown flag {other:?} (see the example's docs)"),
        }
    }
    a
}

fn topology(a: &Args) -> FixedTopology {
    let workers = WorkerCount::new(a.workers).unwrap_or_else(|e| panic!("{e}"));
    let config = myelon::MyelonTransportConfig::new(&a.session, a.workers)
        .and_then(|c| c.with_rpc_depth(64))
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = workers;
    FixedTopology::from_config(config)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_rendezvous_timeout(TIMEOUT)
}

fn main() {
    let a = args();
    match a.worker {
        Some(rank) => worker(&a, rank),
        None => scheduler(&a),
    }
}

fn worker(a: &Args, rank: usize) {
    let topo = topology(a);
    let mut w = topo
        .worker::<Request, Response, Codec>(rank, BincodeCodec)
        .unwrap_or_else(|e| panic!("worker {rank}: {e}"));
    loop {
        match w.recv_timeout(TIMEOUT) {
            Ok(r) => {
                w.respond(&infer(rank, &r)).expect("respond");
            }
            Err(InferenceTopologyError::Transport(TransportError::Ring(
                MultiProcessError::Closed | MultiProcessError::ProducerDead,
            ))) => return,
            Err(e) => panic!("worker {rank}: {e}"),
        }
    }
}

/// The worker processes; each [`ChildGuard`] kills and reaps its worker when dropped (also on a
/// panic).
struct Workers(Mutex<Vec<ChildGuard>>);

impl Workers {
    /// This executable again, as worker `rank`.
    fn spawn(a: &Args, rank: usize) -> ChildGuard {
        ReExec::new()
            .args(["--worker", &rank.to_string(), "--session", &a.session])
            .args(["--workers", &a.workers.to_string()])
            .spawn()
            .expect("spawn worker")
    }
}

type Sched = Scheduler<Request, Response, Codec, ShmBackend>;

fn scheduler(a: &Args) {
    let topo = topology(a);
    println!(
        "session {:?}: scheduler pid {}, {} workers, {} requests; dispatch ring {} ({} slots)",
        a.session,
        std::process::id(),
        a.workers,
        a.requests,
        topo.layout().dispatch_segment(),
        topo.config().rpc_depth()
    );
    let workers = Arc::new(Workers(Mutex::new(
        (0..a.workers).map(|r| Workers::spawn(a, r)).collect(),
    )));
    let mut s: Sched = topo
        .scheduler(BincodeCodec)
        .unwrap_or_else(|e| panic!("rendezvous: {e}"));
    println!("rendezvous complete: every worker attached, every response ring attached");

    let (alerts_tx, alerts) = mpsc::channel();
    let alerts_tx = Mutex::new(alerts_tx);
    s.enable_required_worker_liveness(|c| {
        Ok(c.with_progress_timeout(Duration::from_millis(100))?
            .with_progress_check_interval(Duration::from_millis(10))?
            .with_shutdown_grace_period(Duration::from_secs(10))?
            .with_failure_action(RequiredConsumerFailureAction::GracefulShutdown)
            .with_alert_hook(Arc::new(move |alert| {
                println!(
                    "  liveness: {:?} {} (cursor {}, producer {}, {:?})",
                    alert.kind,
                    alert.consumer_id,
                    alert.consumer_cursor,
                    alert.producer_cursor,
                    alert.stalled_for
                );
                let _ = alerts_tx.lock().unwrap().send(alert.kind);
            })))
    })
    .unwrap_or_else(|e| panic!("liveness: {e}"));

    let progress = Arc::new(AtomicU64::new(0));
    let chaos = a
        .chaos
        .then(|| chaos_thread(a, &workers, &progress, alerts));
    let start = Instant::now();
    let mut got = vec![BTreeSet::new(); a.workers];
    for id in 0..a.requests {
        s.broadcast(&request(id))
            .unwrap_or_else(|e| panic!("broadcast {id}: {e}"));
        progress.store(id + 1, Ordering::Relaxed);
        drain(&mut s, &mut got, a.workers);
    }
    let sent = start.elapsed();
    finish(&mut s, &mut got, a.requests);
    let elapsed = start.elapsed();
    if let Some(c) = chaos {
        let (killed_at, restarted) = c.join().expect("chaos thread");
        println!("chaos: killed worker 1 after request {killed_at}, restarted: {restarted}");
    }
    report(a, &s, &got, sent, elapsed);
    drop(s);
    for c in workers.0.lock().unwrap().iter_mut() {
        let status = c.wait().expect("reap worker");
        assert!(
            status.success() || status.code().is_none(),
            "worker failed: {status}"
        );
    }
}

/// Kills worker 1 a third of the way through, restarts it once liveness raised the alert.
fn chaos_thread(
    a: &Args,
    workers: &Arc<Workers>,
    progress: &Arc<AtomicU64>,
    alerts: mpsc::Receiver<RequiredConsumerAlertKind>,
) -> std::thread::JoinHandle<(u64, bool)> {
    let (workers, progress) = (workers.clone(), progress.clone());
    let at = a.requests / 3;
    let args = Args {
        worker: None,
        session: a.session.clone(),
        ..*a
    };
    std::thread::spawn(move || {
        while progress.load(Ordering::Relaxed) < at {
            std::thread::sleep(Duration::from_millis(1));
        }
        let killed_at = progress.load(Ordering::Relaxed);
        {
            let mut w = workers.0.lock().unwrap();
            w[1].kill(); // SIGKILL, then reap
        }
        println!("chaos: SIGKILLed worker 1 at request {killed_at}");
        // Wait for the liveness layer to notice (the ring fills behind the dead worker).
        let alerted = alerts.recv_timeout(TIMEOUT) == Ok(RequiredConsumerAlertKind::Stalled);
        if alerted {
            workers.0.lock().unwrap()[1] = Workers::spawn(&args, 1);
            println!("chaos: restarted worker 1");
        }
        (killed_at, alerted)
    })
}

fn drain(s: &mut Sched, got: &mut [BTreeSet<u64>], workers: usize) {
    for (rank, seen) in got.iter_mut().enumerate().take(workers) {
        while let Some(r) = s.try_recv_from(rank).expect("receive") {
            check(rank, &r, seen);
        }
    }
}

fn check(rank: usize, r: &Response, seen: &mut BTreeSet<u64>) {
    assert_eq!(*r, infer(rank, &request(r.id)), "wrong response");
    assert!(
        seen.insert(r.id),
        "duplicate response {} from rank {rank}",
        r.id
    );
}

/// Receives until every rank answered the last request (responses arrive in order per rank).
fn finish(s: &mut Sched, got: &mut [BTreeSet<u64>], requests: u64) {
    for (rank, seen) in got.iter_mut().enumerate() {
        while seen.last().is_none_or(|&l| l + 1 < requests) {
            let r = s.recv_from(rank, TIMEOUT).expect("response");
            check(rank, &r, seen);
        }
    }
}

fn report(a: &Args, s: &Sched, got: &[BTreeSet<u64>], sent: Duration, elapsed: Duration) {
    let total: usize = got.iter().map(BTreeSet::len).sum();
    println!(
        "done: {} requests x {} workers in {:.2?} ({:.0} requests/s broadcast, {:.0} responses/s)",
        a.requests,
        a.workers,
        elapsed,
        a.requests as f64 / sent.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    for (rank, seen) in got.iter().enumerate() {
        let lost = a.requests - seen.len() as u64;
        println!(
            "  worker {rank}: {} responses, all correct, in order, no duplicate; lost in a dead worker's hands: {lost}; incarnations: {}",
            seen.len(),
            s.worker_incarnation(rank)
        );
        assert!(
            lost <= 1,
            "a restart loses at most the request being handled"
        );
    }
    let snap = RingInspector::open(ShmBackend, s.topology().layout().dispatch_segment())
        .expect("inspect the dispatch ring")
        .snapshot();
    println!(
        "dispatch ring counters: published {} frames, publish full {}, blocked {:.1?} in {} waits",
        snap.events_published, snap.publish_full, snap.blocked, snap.blocked_waits
    );
    for c in &snap.consumers {
        println!(
            "  {}: consumed {} frames, max lag {}, alerts {}, recoveries {}",
            c.id, c.consumed, c.max_lag, c.alerts, c.recoveries
        );
    }
    println!("verified");
}
