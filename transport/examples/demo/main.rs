//! First-run demo: one producer process streams 64-byte events through a ring in POSIX shared
//! memory to N consumer processes, each of which verifies every event and measures latency.
//!
//! ```text
//! cargo run --release -p myelon --example demo
//! cargo run --release -p myelon --example demo -- --events 20M --consumers 3 --capacity 16384
//! cargo run --release -p myelon --example demo -- --rate 1M     # paced: latency without queueing
//! ```
//!
//! The producer process picks a ring name unique to its pid, re-executes this binary once per
//! consumer (`--role consumer`), creates the ring with `CoordinationMode::WaitForConsumers` (so
//! every consumer sees every event from sequence 0), publishes, and closes the stream by dropping
//! the producer, which also removes the segment. Each consumer drains the ring until
//! `MultiProcessError::Closed` and prints one `CONSUMER ...` line on stdout, which the producer
//! parses into the final table. A consumer that dies or stalls is reported, never waited for
//! forever; every error path kills and reaps the children and drops the ring.

mod config;
mod consumer;
mod event;
mod fleet;
mod producer;
mod report;

use config::{Cli, Role, USAGE};
use std::process::ExitCode;
use std::time::Duration;

/// How long the producer waits for the consumers to attach.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let cli = match Cli::parse(args) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("demo: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match &cli.role {
        Role::Producer => producer::run(&cli.cfg),
        Role::Consumer { id, segment } => consumer::run(id, segment, &cli.cfg),
    }
}
