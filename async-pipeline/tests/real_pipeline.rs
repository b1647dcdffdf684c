//! The pipeline for real, over POSIX shared memory on tokio (what `examples/async_pipeline.rs`
//! runs), with the planted bug both off and on (without restarts the bug never fires): every
//! request answered once, nothing left in `/dev/shm`.
#![cfg(not(madsim))]

use myelon::backend::ShmBackend;
use myelon_async_pipeline::{scheduler, worker, Config};

async fn run(planted_bug: bool) {
    let session = myelon_test_support::unique_name("apipe");
    let mut cfg = Config::new(&session, 3, 3_000);
    cfg.planted_bug = planted_bug;
    let sched = tokio::spawn(scheduler(ShmBackend, cfg.clone()));
    let workers: Vec<_> = (0..3)
        .map(|w| tokio::spawn(worker(ShmBackend, cfg.clone(), w, 0)))
        .collect();
    let report = match sched.await.unwrap() {
        Ok(r) => r,
        Err(e) => {
            // Say what the workers that already stopped said: a worker's error (an attach that
            // failed, say) shows up at the scheduler only as requests never answered.
            let mut said = Vec::new();
            for (i, w) in workers.into_iter().enumerate() {
                if w.is_finished() {
                    said.push(format!("worker {i}: {:?}", w.await));
                } else {
                    w.abort();
                }
            }
            panic!("scheduler: {e}; workers that stopped: {said:?}");
        }
    };
    assert_eq!((report.answered, report.repeats), (3_000, 0));
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap().unwrap();
    }
    assert_eq!(total, 3_000);
    let left: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(&session))
        .collect();
    assert!(left.is_empty(), "left in /dev/shm: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_runs_over_shared_memory() {
    run(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_bug_needs_a_restart_to_fire() {
    run(true).await;
}
