//! The producer process: start the consumers, create the ring, publish, close, summarise.

// Std atomics here are process-local (counters and flags between threads of this process);
// `clippy.toml`'s rule on shared-memory atomics is for the library.
#![allow(clippy::disallowed_types)]

use crate::config::Config;
use crate::event::{fill, now_ns, Event};
use crate::fleet::{consumer_ids, Fleet};
use crate::report::{print_header, print_summary, short};
use crate::ATTACH_TIMEOUT;
use myelon::producer::CoordinationMode;
use myelon::{
    build_shared_single_producer, portable_shm_segment_name, MultiProcessError, SharedProducer,
};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// One bounded publish attempt; between attempts the producer checks on its children.
const PUBLISH_SLICE: Duration = Duration::from_millis(100);
/// The producer gives up when the ring stays full this long with every consumer alive.
const STALL_LIMIT: Duration = Duration::from_secs(10);

pub fn run(cfg: &Config) -> ExitCode {
    install_stop_handler();
    let cfg = &Config {
        wait: cfg.wait.resolve(cfg.consumers),
        ..cfg.clone()
    };
    let segment = portable_shm_segment_name(&format!("myelon-demo-{}", std::process::id()));
    print_header(cfg, &segment);
    let mut fleet = match Fleet::spawn(cfg, &segment) {
        Ok(fleet) => fleet,
        Err(e) => {
            eprintln!("demo: cannot start the consumer processes: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut producer = match create_ring(cfg, &segment) {
        Ok(producer) => producer,
        Err(e) => {
            let why = fleet
                .first_exited()
                .map_or(String::new(), |w| format!(" ({w})"));
            eprintln!("demo: ring setup failed: {e}{why}");
            return ExitCode::FAILURE; // dropping `fleet` kills and reaps the consumers
        }
    };
    let run = publish_all(&mut producer, cfg, &mut fleet);
    // Closes the stream (the consumers drain it, then get `Closed`) and removes the segment.
    drop(producer);
    let reports = fleet.collect(cfg.events);
    print_summary(cfg, &run, &reports)
}

fn create_ring(cfg: &Config, segment: &str) -> Result<SharedProducer<Event>, MultiProcessError> {
    build_shared_single_producer::<Event>(segment, cfg.capacity)
        .with_consumer_ids(consumer_ids(cfg.consumers))
        .with_coordination(CoordinationMode::WaitForConsumers)
        .with_coordination_timeout(ATTACH_TIMEOUT)
        .build_producer(Event::default)
}

/// What the producer did.
pub struct Run {
    pub published: u64,
    pub elapsed_ns: u64,
    /// Why publishing stopped before the end, if it did.
    pub abort: Option<String>,
}

fn publish_all(producer: &mut SharedProducer<Event>, cfg: &Config, fleet: &mut Fleet) -> Run {
    let start = now_ns();
    let mut progress = Progress::new(cfg.events, start);
    let interval_ns = cfg.rate.map(|r| 1e9 / r as f64);
    let (mut seq, mut sent) = (0, start);
    let abort = loop {
        if seq == cfg.events {
            break None;
        }
        if let Some(interval) = interval_ns {
            spin_until(start + (seq as f64 * interval) as u64);
        }
        if let Err(reason) = publish_one(producer, seq, &mut sent, fleet) {
            break Some(reason);
        }
        seq += 1;
        if sent >= progress.due_ns {
            progress.show(seq, sent);
            if let Some(reason) = fleet.first_exited().or_else(stop_requested) {
                break Some(reason);
            }
        }
    };
    progress.finish(seq, sent);
    Run {
        published: seq,
        elapsed_ns: sent - start,
        abort,
    }
}

/// Publishes event `seq` (storing its send time in `sent`). While the ring is full, checks
/// between bounded attempts that every consumer is alive, that the user did not interrupt, and
/// that the ring drains at all.
fn publish_one(
    producer: &mut SharedProducer<Event>,
    seq: u64,
    sent: &mut u64,
    fleet: &mut Fleet,
) -> Result<(), String> {
    let mut blocked = Duration::ZERO;
    loop {
        match producer.publish_timeout(PUBLISH_SLICE, |e| *sent = fill(e, seq)) {
            Ok(_) => return Ok(()),
            Err(MultiProcessError::Timeout { waited, .. }) => blocked += waited,
            Err(e) => return Err(format!("publish failed: {e}")),
        }
        if let Some(reason) = fleet.first_exited().or_else(stop_requested) {
            return Err(reason);
        }
        if blocked >= STALL_LIMIT {
            return Err(format!(
                "the ring stayed full for {blocked:.1?}: a consumer is alive but not consuming"
            ));
        }
    }
}

fn spin_until(deadline_ns: u64) {
    while now_ns() < deadline_ns {
        std::hint::spin_loop();
    }
}

/// The progress line on stderr: rewritten in place on a terminal, plain lines otherwise.
struct Progress {
    total: u64,
    start_ns: u64,
    due_ns: u64,
    interval_ns: u64,
    tty: bool,
}

impl Progress {
    fn new(total: u64, start_ns: u64) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let interval_ns = if tty { 100_000_000 } else { 1_000_000_000 };
        Progress {
            total,
            start_ns,
            due_ns: start_ns + interval_ns,
            interval_ns,
            tty,
        }
    }

    fn line(&self, done: u64, now_ns: u64) -> String {
        let secs = now_ns.saturating_sub(self.start_ns).max(1) as f64 / 1e9;
        let rate = done as f64 / secs / 1e6;
        let (done, total) = (short(done), short(self.total));
        format!("published {done}/{total}  ({rate:.1} M ev/s)")
    }

    fn show(&mut self, done: u64, now_ns: u64) {
        let line = self.line(done, now_ns);
        if self.tty {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
        self.due_ns = now_ns + self.interval_ns;
    }

    fn finish(&mut self, done: u64, now_ns: u64) {
        self.show(done, now_ns);
        if self.tty {
            eprintln!();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stopping on Ctrl-C

/// Stop requests (SIGINT/SIGTERM) received. The first ends publishing cleanly (the ring is
/// dropped and removed, the consumers still report); a second also stops waiting for them.
static STOP_SIGNALS: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP_SIGNALS.fetch_add(1, Ordering::Relaxed);
}

fn install_stop_handler() {
    let handler = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_stop_signal` only performs a lock-free atomic add, which is
        // async-signal-safe, and lives for the whole program.
        unsafe { libc::signal(signal, handler) };
    }
}

/// How many stop requests (SIGINT/SIGTERM) arrived.
pub fn stop_signals() -> u32 {
    STOP_SIGNALS.load(Ordering::Relaxed)
}

fn stop_requested() -> Option<String> {
    (STOP_SIGNALS.load(Ordering::Relaxed) > 0).then(|| "interrupted".to_string())
}
