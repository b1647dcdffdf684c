//! `FixedTopology`: one scheduler process broadcasts typed requests to N worker processes over
//! one dispatch ring; each worker answers on its own response ring.
//!
//! ```text
//! cargo run -p myelon --example topology
//! ```
//!
//! The scheduler (this process) starts the workers (this executable again, `--role worker RANK
//! SESSION`); start order does not matter, both sides wait for each other (the rendezvous). The
//! scheduler sends each request and collects every worker's answer; dropping it closes the
//! dispatch ring, and the workers exit when they see the end of the stream.

use myelon::bincode::{Decode, Encode};
use myelon::codec::BincodeCodec;
use myelon::inference::InferenceTopologyError;
use myelon::transport::TransportError;
use myelon::{FixedTopology, MultiProcessError, WorkerCount};
use myelon_test_support::{ReExec, ShmGuard, ROLE_ARG};
use std::time::Duration;

#[derive(Debug, Encode, Decode)]
#[bincode(crate = "myelon::bincode")]
struct Request {
    id: u64,
    tokens: Vec<u32>,
}

#[derive(Debug, PartialEq, Encode, Decode)]
#[bincode(crate = "myelon::bincode")]
struct Response {
    id: u64,
    rank: u32,
    sum: u64,
}

type Codec = BincodeCodec<{ 1 << 20 }>;
const WORKERS: usize = 2;
const REQUESTS: u64 = 200;
const TIMEOUT: Duration = Duration::from_secs(30);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => scheduler(),
        [flag, role, rank, session] if flag == ROLE_ARG && role == "worker" => {
            worker(rank.parse().expect("worker rank"), session)
        }
        other => panic!("unexpected arguments {other:?}"),
    }
}

fn topology(session: &str) -> FixedTopology {
    let workers = WorkerCount::new(WORKERS).expect("2 to 8 workers");
    FixedTopology::new(session, workers)
        .expect("valid session label")
        .with_rendezvous_timeout(TIMEOUT)
}

/// What worker `rank` answers to `r` (the "model").
fn answer(rank: usize, r: &Request) -> Response {
    let sum = r.tokens.iter().map(|&t| u64::from(t)).sum::<u64>() * (rank as u64 + 1);
    Response {
        id: r.id,
        rank: rank as u32,
        sum,
    }
}

fn request(id: u64) -> Request {
    Request {
        id,
        tokens: (0..(id % 7) as u32 + 1).collect(),
    }
}

fn scheduler() {
    let session = format!("ex-topo-{}", std::process::id());
    let topo = topology(&session);
    // Remove the session's segments even if this process panics.
    let _cleanup: Vec<ShmGuard> = topo
        .layout()
        .all_segments()
        .map(|name| ShmGuard(name.to_string()))
        .collect();
    let mut workers: Vec<_> = (0..WORKERS)
        .map(|rank| {
            ReExec::with_role_arg("worker")
                .args([rank.to_string(), session.clone()])
                .spawn()
                .expect("start a worker")
        })
        .collect();
    let mut sched = topo
        .scheduler::<Request, Response, Codec>(Codec::new())
        .expect("rendezvous with every worker");
    println!("scheduler: session {session:?}, {WORKERS} workers attached");
    for id in 0..REQUESTS {
        let r = request(id);
        sched.broadcast(&r).expect("broadcast");
        for rank in 0..WORKERS {
            let resp = sched.recv_from(rank, TIMEOUT).expect("response");
            assert_eq!(
                resp,
                answer(rank, &r),
                "worker {rank} answered request {id}"
            );
        }
    }
    println!(
        "scheduler: {REQUESTS} requests, {} responses verified",
        REQUESTS * WORKERS as u64
    );
    drop(sched); // closes the dispatch ring: the workers finish
    for (rank, w) in workers.iter_mut().enumerate() {
        let status = w.wait().expect("wait for a worker");
        assert!(status.success(), "worker {rank} failed: {status}");
    }
    println!("scheduler: every worker exited cleanly");
}

fn worker(rank: usize, session: &str) {
    let mut w = topology(session)
        .worker::<Request, Response, Codec>(rank, Codec::new())
        .expect("rendezvous with the scheduler");
    let mut served = 0;
    loop {
        match w.recv_timeout(TIMEOUT) {
            Ok(r) => {
                w.respond(&answer(rank, &r)).expect("respond");
                served += 1;
            }
            Err(InferenceTopologyError::Transport(TransportError::Ring(
                MultiProcessError::Closed | MultiProcessError::ProducerDead,
            ))) => break,
            Err(e) => panic!("worker {rank}: {e}"),
        }
    }
    println!("worker {rank}: served {served} requests");
}
