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

use myelon::producer::CoordinationMode;
use myelon::{
    attach_shared_consumer, build_shared_single_producer, portable_shm_segment_name,
    AutoWaitStrategy, MultiProcessError, SharedConsumer, SharedProducer,
};
use std::io::{IsTerminal, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

myelon::shm_event! {
    /// One event: 64 bytes (its ring slot adds the ring's 8-byte sequence stamp).
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Event {
        /// 0, 1, 2, ... in publication order.
        pub sequence: u64,
        /// CLOCK_MONOTONIC nanoseconds when the producer wrote the event.
        pub send_ns: u64,
        /// [`checksum`] of the other fields: a torn or stale read shows up as a mismatch.
        pub checksum: u64,
        /// Filler derived from `sequence`, so that the whole line is written and checked.
        pub payload: [u64; 5],
    }
}

const _: () = assert!(std::mem::size_of::<Event>() == 64);

const USAGE: &str = "\
usage: demo [--events N] [--consumers N] [--capacity N] [--rate N] [--wait MODE]

  --events N     events to publish (default 5M; '_' and the suffixes k, M, G are accepted)
  --consumers N  consumer processes, 1 to 16 (default 2)
  --capacity N   ring capacity in events, a power of two (default 4096)
  --rate N       pace the producer at N events/s by spinning (default: as fast as the ring allows)
  --wait MODE    how consumers wait for events: auto, spin, yield or block (default auto: spin
                 when every process can have its own core, yield otherwise)
";

/// How long the producer waits for the consumers to attach.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(10);
/// One bounded publish attempt; between attempts the producer checks on its children.
const PUBLISH_SLICE: Duration = Duration::from_millis(100);
/// The producer gives up when the ring stays full this long with every consumer alive.
const STALL_LIMIT: Duration = Duration::from_secs(10);
/// How long the producer waits for the consumers' reports after closing the stream.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);
/// A consumer's bounded wait for the next batch.
const CONSUME_SLICE: Duration = Duration::from_millis(100);
/// Exit code of a consumer that the `--crash-after` test hook stops abruptly.
const CRASH_EXIT: i32 = 86;

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
        Role::Producer => run_producer(&cli.cfg),
        Role::Consumer { id, segment } => run_consumer(id, segment, &cli.cfg),
    }
}

// ---------------------------------------------------------------------------------------------
// Command line

#[derive(Debug, Clone)]
struct Config {
    events: u64,
    consumers: usize,
    capacity: usize,
    rate: Option<u64>,
    wait: Wait,
    /// Test hook (not in the usage text): consumer `c0` exits abruptly, without dropping its
    /// consumer (as after a crash), once it has received this many events.
    crash_after: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Auto,
    Spin,
    Yield,
    Block,
}

enum Role {
    Producer,
    Consumer { id: String, segment: String },
}

/// Every option; each takes a value (`--key value` or `--key=value`).
const KEYS: [&str; 9] = [
    "--events",
    "--consumers",
    "--capacity",
    "--rate",
    "--wait",
    "--crash-after",
    "--role",
    "--id",
    "--segment",
];

struct Cli {
    cfg: Config,
    role: Role,
}

impl Cli {
    fn parse(args: Vec<String>) -> Result<Cli, String> {
        let mut cfg = Config {
            events: 5_000_000,
            consumers: 2,
            capacity: 4096,
            rate: None,
            wait: Wait::Auto,
            crash_after: None,
        };
        let (mut role, mut id, mut segment) = (None, None, None);
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let (key, value) = match arg.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None if !KEYS.contains(&arg.as_str()) => {
                    return Err(format!("unknown argument {arg:?}"));
                }
                None => {
                    let v = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
                    (arg, v)
                }
            };
            match key.as_str() {
                "--role" => role = Some(value),
                "--id" => id = Some(value),
                "--segment" => segment = Some(value),
                _ => cfg.set(&key, &value)?,
            }
        }
        cfg.validate()?;
        let role = match (role.as_deref(), id, segment) {
            (None | Some("producer"), _, _) => Role::Producer,
            (Some("consumer"), Some(id), Some(segment)) => Role::Consumer { id, segment },
            (Some("consumer"), _, _) => {
                return Err("--role consumer needs --id and --segment".into())
            }
            (Some(other), _, _) => return Err(format!("unknown role {other:?}")),
        };
        Ok(Cli { cfg, role })
    }
}

impl Config {
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let bad = |e: String| format!("{key}: {e}");
        match key {
            "--events" => self.events = parse_count(value).map_err(bad)?,
            "--consumers" => self.consumers = parse_count(value).map_err(bad)? as usize,
            "--capacity" => self.capacity = parse_count(value).map_err(bad)? as usize,
            "--rate" => self.rate = Some(parse_count(value).map_err(bad)?),
            "--crash-after" => self.crash_after = Some(parse_count(value).map_err(bad)?),
            "--wait" => self.wait = Wait::parse(value).ok_or_else(|| bad(value.into()))?,
            _ => return Err(format!("unknown argument {key:?}")),
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        if self.events == 0 {
            return Err("--events must be at least 1".into());
        }
        if !(1..=myelon::DEFAULT_MAX_CONSUMERS).contains(&self.consumers) {
            let max = myelon::DEFAULT_MAX_CONSUMERS;
            return Err(format!("--consumers must be between 1 and {max}"));
        }
        if !self.capacity.is_power_of_two() || self.capacity > myelon::MAX_CAPACITY {
            return Err("--capacity must be a power of two (at most 2^30)".into());
        }
        if self.rate == Some(0) {
            return Err("--rate must be at least 1 event/s".into());
        }
        Ok(())
    }
}

/// `5000000`, `5_000_000`, `5M`, `200k`, `1G`.
fn parse_count(text: &str) -> Result<u64, String> {
    let clean = text.replace('_', "");
    let (digits, scale) = match clean.char_indices().last() {
        Some((i, 'k' | 'K')) => (&clean[..i], 1_000),
        Some((i, 'm' | 'M')) => (&clean[..i], 1_000_000),
        Some((i, 'g' | 'G')) => (&clean[..i], 1_000_000_000),
        _ => (clean.as_str(), 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{text:?} is not a count"))
}

impl Wait {
    fn parse(text: &str) -> Option<Wait> {
        match text {
            "auto" => Some(Wait::Auto),
            "spin" => Some(Wait::Spin),
            "yield" => Some(Wait::Yield),
            "block" => Some(Wait::Block),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Wait::Auto => "auto",
            Wait::Spin => "spin",
            Wait::Yield => "yield",
            Wait::Block => "block",
        }
    }

    /// `Auto` becomes `Spin` when the producer and every consumer can each have a core.
    fn resolve(self, consumers: usize) -> Wait {
        match self {
            Wait::Auto if cores() > consumers => Wait::Spin,
            Wait::Auto => Wait::Yield,
            other => other,
        }
    }

    fn strategy(self) -> AutoWaitStrategy {
        match self {
            Wait::Auto | Wait::Yield => AutoWaitStrategy::Yield,
            Wait::Spin => AutoWaitStrategy::BusySpin,
            Wait::Block => AutoWaitStrategy::Block,
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

// ---------------------------------------------------------------------------------------------
// Events: timestamps and checksums

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine, so a send time
/// written by the producer can be subtracted from a receive time read by a consumer.
fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable `timespec` for the whole call, and CLOCK_MONOTONIC is a
    // clock every supported (POSIX) target provides.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The splitmix64 finaliser: a cheap 64-bit mix in which every input bit affects every output bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn checksum(e: &Event) -> u64 {
    let mut h = mix(e.sequence ^ 0x6d79_656c_6f6e);
    h = mix(h ^ e.send_ns);
    for w in e.payload {
        h = mix(h ^ w);
    }
    h
}

/// Writes event `seq` into its slot and returns the send timestamp.
fn fill(e: &mut Event, seq: u64) -> u64 {
    let now = now_ns();
    e.sequence = seq;
    e.send_ns = now;
    for (i, w) in e.payload.iter_mut().enumerate() {
        *w = seq ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    e.checksum = checksum(e);
    now
}

// ---------------------------------------------------------------------------------------------
// Consumer process

fn run_consumer(id: &str, segment: &str, cfg: &Config) -> ExitCode {
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

// ---------------------------------------------------------------------------------------------
// Producer process

fn run_producer(cfg: &Config) -> ExitCode {
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

fn consumer_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("c{i}")).collect()
}

/// What the producer did.
struct Run {
    published: u64,
    elapsed_ns: u64,
    /// Why publishing stopped before the end, if it did.
    abort: Option<String>,
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

fn stop_requested() -> Option<String> {
    (STOP_SIGNALS.load(Ordering::Relaxed) > 0).then(|| "interrupted".to_string())
}

// ---------------------------------------------------------------------------------------------
// The consumer processes, seen from the producer

/// The consumer child processes. Dropping the fleet kills and reaps every child still running,
/// so no error path leaves a consumer behind.
struct Fleet {
    members: Vec<Member>,
}

struct Member {
    id: String,
    child: Child,
    status: Option<ExitStatus>,
}

impl Fleet {
    fn spawn(cfg: &Config, segment: &str) -> std::io::Result<Fleet> {
        let exe = std::env::current_exe()?;
        let mut fleet = Fleet {
            members: Vec::new(),
        };
        for id in consumer_ids(cfg.consumers) {
            let child = Command::new(&exe)
                .args(consumer_args(cfg, &id, segment))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                // Own process group: Ctrl-C reaches only the producer, which then closes the
                // stream so that the consumers can finish and report.
                .process_group(0)
                .spawn()?;
            fleet.members.push(Member {
                id,
                child,
                status: None,
            });
        }
        Ok(fleet)
    }

    /// A description of the first consumer that has exited, if any (before the end of the
    /// stream, any exit is a failure).
    fn first_exited(&mut self) -> Option<String> {
        self.members.iter_mut().find_map(|m| {
            let status = m.poll()?;
            Some(format!("consumer {} exited early ({status})", m.id))
        })
    }

    /// Waits (bounded) for every consumer to exit and reads its report.
    fn collect(&mut self, expected: u64) -> Vec<Report> {
        let deadline = Instant::now() + REPORT_TIMEOUT;
        let members = self.members.iter_mut();
        members.map(|m| m.finish(deadline, expected)).collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for m in &mut self.members {
            if m.poll().is_none() {
                let _ = m.child.kill();
                m.status = m.child.wait().ok();
            }
        }
    }
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
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    fn finish(&mut self, deadline: Instant, expected: u64) -> Report {
        let status = self.wait_until(deadline);
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
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
            if Instant::now() >= deadline || STOP_SIGNALS.load(Ordering::Relaxed) > 1 {
                let _ = self.child.kill();
                self.status = self.child.wait().ok();
                return Err("did not finish in time and was killed".into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// One consumer's `CONSUMER ...` line, parsed.
struct Summary {
    events: u64,
    errors: u64,
    p50_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    max_ns: u64,
    rate: f64,
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

struct Report {
    id: String,
    summary: Option<Summary>,
    /// `None`: verified every event; otherwise why this consumer failed.
    failure: Option<String>,
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

// ---------------------------------------------------------------------------------------------
// Output

fn print_header(cfg: &Config, segment: &str) {
    let (events, cap, n) = (grouped(cfg.events), cfg.capacity, cfg.consumers);
    println!("myelon demo: 1 producer -> {n} consumer processes over POSIX shared memory");
    println!(
        "  ring {segment}: capacity {cap} x 64-byte events, CoordinationMode::WaitForConsumers"
    );
    println!(
        "  {events} events, consumers wait by {} ({} cores), producer {}",
        cfg.wait.name(),
        cores(),
        match cfg.rate {
            Some(r) => format!("paced at {} ev/s", grouped(r)),
            None => "unpaced (as fast as the slowest consumer)".to_string(),
        }
    );
}

fn print_summary(cfg: &Config, run: &Run, reports: &[Report]) -> ExitCode {
    let secs = run.elapsed_ns.max(1) as f64 / 1e9;
    let rate = run.published as f64 / secs / 1e6;
    println!();
    println!("events    {} x 64 B", grouped(cfg.events));
    let published = grouped(run.published);
    println!("producer  {published} published in {secs:.3} s  ({rate:.1} M ev/s)");
    println!();
    println!(
        "{:<9} {:<7} {:>12} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "consumer", "result", "events", "errors", "Mev/s", "p50", "p99", "p99.9", "max"
    );
    for r in reports {
        println!("{}", table_row(r));
    }
    println!();
    print_latency_note(cfg);
    print_verdict(run, reports)
}

fn table_row(r: &Report) -> String {
    let result = if r.failure.is_none() { "PASS" } else { "FAIL" };
    let Some(s) = &r.summary else {
        return format!("{:<9} {:<7} {:>12} {:>7}", r.id, result, "-", "-");
    };
    format!(
        "{:<9} {:<7} {:>12} {:>7} {:>7.1} {:>9} {:>9} {:>9} {:>9}",
        r.id,
        result,
        grouped(s.events),
        s.errors,
        s.rate / 1e6,
        human_ns(s.p50_ns),
        human_ns(s.p99_ns),
        human_ns(s.p999_ns),
        human_ns(s.max_ns),
    )
}

fn print_latency_note(cfg: &Config) {
    println!("latency = consumer receive time - producer send time (CLOCK_MONOTONIC).");
    if cfg.rate.is_none() {
        println!(
            "The producer ran unpaced, so latency includes queueing at full rate: events wait \
             in the ring\nbehind up to {} others. Try --rate 1M for the latency of a single \
             event in flight.",
            cfg.capacity
        );
    }
}

fn print_verdict(run: &Run, reports: &[Report]) -> ExitCode {
    let mut ok = true;
    if let Some(why) = &run.abort {
        println!("producer stopped early: {why}");
        ok = false;
    }
    for r in reports {
        if let Some(why) = &r.failure {
            println!("consumer {}: {why}", r.id);
            ok = false;
        }
    }
    if ok {
        println!("PASS: every consumer received and verified every event, in order.");
        ExitCode::SUCCESS
    } else {
        println!("FAIL");
        ExitCode::FAILURE
    }
}

/// `5000000` → `5,000,000`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `2100000` → `2.1M`.
fn short(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// `1234` → `1.2µs`.
fn human_ns(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{:.1}µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1}ms", ns as f64 / 1e6),
        _ => format!("{:.2}s", ns as f64 / 1e9),
    }
}
