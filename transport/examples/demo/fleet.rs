//! The consumer processes, seen from the producer.

use crate::config::Config;
use crate::producer::stop_signals;
use myelon_test_support::{ChildGuard, ReExec};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long the producer waits for the consumers' reports after closing the stream.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// The consumer child processes. Each is held by a [`ChildGuard`], which kills and reaps it if
/// it is still running when the fleet is dropped, so no error path leaves a consumer behind.
pub struct Fleet {
    members: Vec<Member>,
}

struct Member {
    id: String,
    child: ChildGuard,
}

impl Fleet {
    /// Starts one consumer process (this executable, `--role=consumer`) per consumer id.
    pub fn spawn(cfg: &Config, segment: &str) -> std::io::Result<Fleet> {
        let mut fleet = Fleet {
            members: Vec::new(),
        };
        for id in consumer_ids(cfg.consumers) {
            let mut exec = ReExec::try_new()?.args(consumer_args(cfg, &id, segment));
            exec.command()
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                // Own process group: Ctrl-C reaches only the producer, which then closes the
                // stream so that the consumers can finish and report.
                .process_group(0);
            fleet.members.push(Member {
                id,
                child: exec.spawn()?,
            });
        }
        Ok(fleet)
    }

    /// A description of the first consumer that has exited, if any (before the end of the
    /// stream, any exit is a failure).
    pub fn first_exited(&mut self) -> Option<String> {
        self.members.iter_mut().find_map(|m| {
            let status = m.poll()?;
            Some(format!("consumer {} exited early ({status})", m.id))
        })
    }

    /// Waits (bounded) for every consumer to exit and reads its report.
    pub fn collect(&mut self, expected: u64) -> Vec<Report> {
        let deadline = Instant::now() + REPORT_TIMEOUT;
        let members = self.members.iter_mut();
        members.map(|m| m.finish(deadline, expected)).collect()
    }
}

/// The ids of `n` consumers: `c0`, `c1`, ...
pub fn consumer_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("c{i}")).collect()
}

fn consumer_args(cfg: &Config, id: &str, segment: &str) -> Vec<String> {
    let mut args = vec![
        "--role=consumer".to_string(),
        format!("--id={id}"),
        format!("--segment={segment}"),
        format!("--events={}", cfg.events),
        format!("--capacity={}", cfg.capacity),
        format!("--wait={}", cfg.wait.name()),
    ];
    if let Some(n) = cfg.crash_after {
        args.push(format!("--crash-after={n}"));
    }
    args
}

impl Member {
    /// The exit status, if the child has exited (reaping it).
    fn poll(&mut self) -> Option<ExitStatus> {
        self.child.try_status()
    }

    fn finish(&mut self, deadline: Instant, expected: u64) -> Report {
        let status = self.wait_until(deadline);
        let mut out = String::new();
        if let Some(mut stdout) = self.child.child().stdout.take() {
            let _ = stdout.read_to_string(&mut out);
        }
        Report::new(&self.id, status, &out, expected)
    }

    /// Polls until the child exits; past the deadline (or on a second Ctrl-C) kills it.
    fn wait_until(&mut self, deadline: Instant) -> Result<ExitStatus, String> {
        loop {
            if let Some(status) = self.poll() {
                return Ok(status);
            }
            if Instant::now() >= deadline || stop_signals() > 1 {
                self.child.kill();
                return Err("did not finish in time and was killed".into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// One consumer's `CONSUMER ...` line, parsed.
pub struct Summary {
    pub events: u64,
    pub errors: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    pub rate: f64,
}

impl Summary {
    fn parse(out: &str, id: &str) -> Option<Summary> {
        let prefix = format!("CONSUMER {id} ");
        let line = out.lines().find(|l| l.starts_with(&prefix))?;
        let field = |key: &str| -> Option<u64> {
            let value = line
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(key))?;
            value.strip_prefix('=')?.parse().ok()
        };
        Some(Summary {
            events: field("events")?,
            errors: field("errors")?,
            p50_ns: field("p50_ns")?,
            p99_ns: field("p99_ns")?,
            p999_ns: field("p999_ns")?,
            max_ns: field("max_ns")?,
            rate: field("rate")? as f64,
        })
    }
}

pub struct Report {
    pub id: String,
    pub summary: Option<Summary>,
    /// `None`: verified every event; otherwise why this consumer failed.
    pub failure: Option<String>,
}

impl Report {
    fn new(id: &str, status: Result<ExitStatus, String>, out: &str, expected: u64) -> Report {
        let summary = Summary::parse(out, id);
        let failure = match (&status, &summary) {
            (Err(why), _) => Some(why.clone()),
            (Ok(s), None) => Some(format!("exited ({s}) without a report")),
            (Ok(_), Some(r)) if r.errors > 0 => Some(format!("{} events failed", r.errors)),
            (Ok(_), Some(r)) if r.events != expected => {
                Some(format!("received {} of {expected} events", r.events))
            }
            (Ok(s), Some(_)) if !s.success() => Some(format!("exited with {s}")),
            (Ok(_), Some(_)) => None,
        };
        Report {
            id: id.to_string(),
            summary,
            failure,
        }
    }
}
