//! The async pipeline for real: a tokio runtime, the scheduler and `N` workers as tasks, each
//! with its own rings in POSIX shared memory (the same code `tests/sim_pipeline.rs` runs under
//! madsim).
//!
//! ```text
//! cargo run -p myelon-async-pipeline --example async_pipeline [-- <workers> <requests>]
//! MYELON_PIPELINE_BUG=1 cargo run ...   # with the planted user bug (harmless without restarts)
//! ```

use myelon::backend::ShmBackend;
use myelon_async_pipeline::{scheduler, worker, Config};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let workers = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4);
    let requests = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let mut cfg = Config::new(&format!("apipe-{}", std::process::id()), workers, requests);
    cfg.planted_bug = std::env::var_os("MYELON_PIPELINE_BUG").is_some();
    let sched = tokio::spawn(scheduler(ShmBackend, cfg.clone()));
    let tasks: Vec<_> = (0..workers)
        .map(|w| tokio::spawn(worker(ShmBackend, cfg.clone(), w, 0)))
        .collect();
    let report = sched.await??;
    println!(
        "scheduler: {} requests answered by {workers} workers ({} answered twice)",
        report.answered, report.repeats
    );
    for (w, t) in tasks.into_iter().enumerate() {
        println!("worker {w}: answered {}", t.await??);
    }
    Ok(())
}
