//! A consumer process: attach, drain the ring until it closes, verify every event, report.

use crate::config::Config;
use crate::event::{checksum, now_ns, Event};
use crate::ATTACH_TIMEOUT;
use myelon::{attach_shared_consumer, MultiProcessError, SharedConsumer};
use std::process::ExitCode;
use std::time::Duration;

/// A consumer's bounded wait for the next batch.
const CONSUME_SLICE: Duration = Duration::from_millis(100);
/// Exit code of a consumer that the `--crash-after` test hook stops abruptly.
const CRASH_EXIT: i32 = 86;

pub fn run(id: &str, segment: &str, cfg: &Config) -> ExitCode {
    let attached = attach_shared_consumer::<Event>(segment, cfg.capacity)
        .with_consumer_id(id)
        .with_wait_strategy(cfg.wait.strategy())
        .with_attach_timeout(ATTACH_TIMEOUT)
        .build_consumer();
    let mut consumer = match attached {
        Ok(c) => c,
        Err(e) => {
            eprintln!("consumer {id}: cannot attach to {segment}: {e}");
            return ExitCode::from(2);
        }
    };
    let crash_after = cfg.crash_after.filter(|_| id == "c0");
    let mut verifier = Verifier::new(id, cfg.events);
    let end = drain(&mut consumer, &mut verifier, cfg.capacity, crash_after);
    println!("{}", verifier.summary_line());
    match verifier.verdict(&end) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("consumer {id}: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// Consumes until the producer closes the stream (`Ok`) or a fatal error.
fn drain(
    consumer: &mut SharedConsumer<Event>,
    verifier: &mut Verifier,
    capacity: usize,
    crash_after: Option<u64>,
) -> Result<(), MultiProcessError> {
    let batch = (capacity / 4).clamp(1, 1024);
    loop {
        let step = consumer.consume_batch_timeout(batch, CONSUME_SLICE, |e, seq, _| {
            verifier.check(e, seq);
        });
        match step {
            Ok(_) | Err(MultiProcessError::Timeout { .. }) => {}
            Err(MultiProcessError::Closed) => return Ok(()),
            Err(e) => return Err(e),
        }
        if crash_after.is_some_and(|n| verifier.received >= n) {
            // `exit` runs no destructors: the consumer stays registered and keeps gating the
            // producer, exactly as if this process had been killed.
            std::process::exit(CRASH_EXIT);
        }
    }
}

/// Checks every event in order and records its latency.
struct Verifier {
    id: String,
    expected: u64,
    next: u64,
    received: u64,
    errors: u64,
    first_ns: u64,
    last_ns: u64,
    latency: hdrhistogram::Histogram<u64>,
}

/// Verification errors printed in full; the rest are only counted.
const ERRORS_SHOWN: u64 = 5;

impl Verifier {
    fn new(id: &str, expected: u64) -> Verifier {
        let hour_ns = 3_600_000_000_000;
        Verifier {
            id: id.to_string(),
            expected,
            next: 0,
            received: 0,
            errors: 0,
            first_ns: 0,
            last_ns: 0,
            latency: hdrhistogram::Histogram::new_with_bounds(1, hour_ns, 3)
                .expect("constant histogram bounds are valid"),
        }
    }

    fn check(&mut self, e: &Event, seq: i64) {
        let now = now_ns();
        if self.received == 0 {
            self.first_ns = now;
        }
        self.last_ns = now;
        self.received += 1;
        if let Some(problem) = self.problem(e, seq) {
            self.errors += 1;
            if self.errors <= ERRORS_SHOWN {
                eprintln!("consumer {}: {problem}", self.id);
            }
        }
        self.next = seq as u64 + 1;
        self.latency
            .saturating_record(now.saturating_sub(e.send_ns));
    }

    fn problem(&self, e: &Event, seq: i64) -> Option<String> {
        let want = self.next;
        if seq as u64 != want {
            Some(format!("ring sequence {seq}, expected {want}"))
        } else if e.sequence != want {
            Some(format!("event {want} carries sequence {}", e.sequence))
        } else if e.checksum != checksum(e) {
            Some(format!("event {want}: checksum mismatch"))
        } else if want >= self.expected {
            Some(format!(
                "event {want} is beyond the {} expected",
                self.expected
            ))
        } else {
            None
        }
    }

    fn verdict(&self, end: &Result<(), MultiProcessError>) -> Result<(), String> {
        if let Err(e) = end {
            return Err(format!("stream ended with an error: {e}"));
        }
        if self.errors > 0 {
            return Err(format!("{} events failed verification", self.errors));
        }
        if self.received != self.expected {
            let (got, want) = (self.received, self.expected);
            return Err(format!("stream closed after {got} of {want} events"));
        }
        Ok(())
    }

    /// The one line the producer parses (see [`Summary::parse`]).
    fn summary_line(&self) -> String {
        let h = &self.latency;
        let span = self.last_ns.saturating_sub(self.first_ns).max(1);
        let rate = self.received as f64 * 1e9 / span as f64;
        format!(
            "CONSUMER {} events={} errors={} p50_ns={} p99_ns={} p999_ns={} max_ns={} rate={:.0}",
            self.id,
            self.received,
            self.errors,
            h.value_at_quantile(0.50),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
            rate,
        )
    }
}
