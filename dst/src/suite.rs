//! Many seeds: parallel runs, a progress bar, the failures with their replay lines, coverage.

use crate::steps::{run, Coverage, Failure};
use crate::workload::{Profile, Workload};
use std::io::Write as _;
// Work counters shared by the suite's threads, process-local.
#[allow(clippy::disallowed_types)]
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct SuiteOptions {
    /// Number of seeds.
    pub seeds: u64,
    /// First seed; seed `k` of the suite is `start + k`.
    pub start: u64,
    /// Swarm profile.
    pub profile: Profile,
    /// Worker threads.
    pub jobs: usize,
    /// Stop at the first failure.
    pub stop_on_first: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// What a suite found.
#[derive(Debug, Clone, Default)]
pub struct SuiteResult {
    /// Seeds run.
    pub ran: u64,
    /// Failing seeds, sorted.
    pub failures: Vec<(u64, Failure)>,
    /// Summed coverage.
    pub coverage: Coverage,
    /// Summed steps.
    pub steps: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl SuiteResult {
    /// Seeds per second of wall time.
    pub fn seeds_per_sec(&self) -> f64 {
        self.ran as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The copy-paste line that replays `seed`.
pub fn replay_line(seed: u64, profile: Profile) -> String {
    format!(
        "cargo run --release -p myelon-dst -- replay --seed {seed:#x} --profile {} --trace",
        profile.name()
    )
}

/// Runs the suite.
#[allow(clippy::disallowed_types)] // work counters shared by the suite's threads, process-local
pub fn run_suite(o: SuiteOptions) -> SuiteResult {
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let out = Mutex::new(SuiteResult::default());
    let chunk = 16u64;
    std::thread::scope(|s| {
        for _ in 0..o.jobs.max(1) {
            s.spawn(|| {
                let mut local = SuiteResult::default();
                while !stop.load(Ordering::Relaxed) {
                    let k0 = next.fetch_add(chunk, Ordering::Relaxed);
                    if k0 >= o.seeds {
                        break;
                    }
                    for k in k0..(k0 + chunk).min(o.seeds) {
                        let seed = o.start.wrapping_add(k);
                        let r = run(&Workload::generate(seed, o.profile), false);
                        local.ran += 1;
                        local.steps += r.steps;
                        local.coverage.add(&r.coverage);
                        if let Some(f) = r.failure {
                            local.failures.push((seed, f));
                            if o.stop_on_first {
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let mut g = out.lock().unwrap_or_else(|e| e.into_inner());
                g.ran += local.ran;
                g.steps += local.steps;
                g.coverage.add(&local.coverage);
                g.failures.extend(local.failures);
            });
        }
        if o.progress {
            let mut last = Instant::now() - Duration::from_secs(1);
            loop {
                let d = done.load(Ordering::Relaxed);
                if d >= o.seeds
                    || stop.load(Ordering::Relaxed)
                        && next.load(Ordering::Relaxed) >= o.seeds.min(d + 1)
                {
                    break;
                }
                if last.elapsed() >= Duration::from_millis(200) {
                    last = Instant::now();
                    draw_bar(d, o.seeds, started.elapsed());
                }
                std::thread::sleep(Duration::from_millis(20));
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        }
    });
    let mut r = out.into_inner().unwrap_or_else(|e| e.into_inner());
    r.failures.sort_by_key(|(s, _)| *s);
    r.elapsed = started.elapsed();
    if o.progress {
        draw_bar(r.ran, o.seeds, r.elapsed);
        eprintln!();
    }
    r
}

fn draw_bar(done: u64, total: u64, elapsed: Duration) {
    let width = 40u64;
    let filled = (done * width).checked_div(total).unwrap_or(width) as usize;
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r[{}{}] {done}/{total} seeds  {rate:.0}/s  ",
        "#".repeat(filled),
        "-".repeat(width as usize - filled)
    );
    let _ = err.flush();
}
