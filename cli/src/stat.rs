//! `myelon stat`: one ring's cursors, consumers and counters, optionally refreshed in place.

use crate::{owner_word, CliResult};
use clap::Args;
use myelon::backend::{MmapBackend, RingBackend, ShmBackend};
use myelon::observability::{
    ConsumerSnapshot, InspectError, RingInspector, RingSnapshot, RingState,
};
use myelon::transport::coordination_cursor::COORDINATION_RANKS;
use myelon::transport::CoordinationCursor;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `myelon stat`.
#[derive(Args)]
pub(crate) struct StatArgs {
    /// Ring name: a POSIX shared-memory name (`/demo` or `demo`), or a file name in `--dir`.
    name: String,
    /// The ring is a file in this mmap directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Refresh in place until interrupted (or `--count` frames).
    #[arg(long)]
    watch: bool,
    /// Milliseconds between refreshes.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    interval: u64,
    /// With `--watch`: stop after this many frames (0: never).
    #[arg(long, default_value_t = 0, value_name = "N")]
    count: u64,
}

pub(crate) fn run(args: &StatArgs) -> CliResult {
    match &args.dir {
        None => open_and_show(ShmBackend, args),
        Some(d) => open_and_show(MmapBackend::new(d.clone()), args),
    }
}

fn open_and_show<B: RingBackend>(backend: B, args: &StatArgs) -> CliResult {
    match RingInspector::open(backend.clone(), &args.name) {
        Ok(inspector) => show(inspector, args),
        Err(e @ InspectError::NotARing { .. }) => {
            // Perhaps a session's coordination cursor.
            match CoordinationCursor::open_with(backend, &args.name, Duration::ZERO) {
                Ok(c) => {
                    print!("{}", cursor_text(&c));
                    Ok(())
                }
                Err(_) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn cursor_text<B: RingBackend>(c: &CoordinationCursor<B>) -> String {
    let ranks: Vec<String> = (0..COORDINATION_RANKS)
        .map(|r| (r, c.rank_value(r)))
        .filter(|(_, v)| *v > 0)
        .map(|(r, v)| format!("{r}:{v}"))
        .collect();
    let ranks = if ranks.is_empty() {
        "-".to_string()
    } else {
        ranks.join(" ")
    };
    format!(
        "coordination cursor {}  owner {}  generation {}\nrank incarnations {ranks}\n",
        c.name(),
        owner_word(c.owner_state()),
        c.generation(),
    )
}

/// ANSI: cursor home, clear screen.
const CLEAR: &str = "\x1b[H\x1b[2J";

fn show<B: RingBackend>(inspector: RingInspector<B>, args: &StatArgs) -> CliResult {
    let mut prev: Option<RingSnapshot> = None;
    let mut frames = 0u64;
    loop {
        let s = inspector.snapshot();
        let mut out = String::new();
        if args.watch {
            out.push_str(CLEAR);
        }
        render(&mut out, &s, prev.as_ref())?;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(out.as_bytes())?;
        stdout.flush()?;
        frames += 1;
        if !args.watch || (args.count > 0 && frames >= args.count) {
            return Ok(());
        }
        prev = Some(s);
        std::thread::sleep(Duration::from_millis(args.interval.max(1)));
    }
}

/// `(now - before) / seconds` as a display string, or `-` without a previous frame.
fn rate(now: u64, before: Option<u64>, secs: f64) -> String {
    match before {
        Some(b) if secs > 0.0 => format!("{:.0}/s", now.saturating_sub(b) as f64 / secs),
        _ => "-".into(),
    }
}

fn state_word(s: RingState) -> String {
    match s {
        RingState::Initialising => "initialising".into(),
        RingState::Ready => "ready".into(),
        RingState::Closed => "closed".into(),
        RingState::Unknown(w) => format!("unknown({w})"),
    }
}

fn render(out: &mut String, s: &RingSnapshot, prev: Option<&RingSnapshot>) -> std::fmt::Result {
    let secs = prev.map_or(0.0, |p| s.taken_at.saturating_sub(p.taken_at).as_secs_f64());
    writeln!(
        out,
        "ring {} ({})  state {}  producer pid {} {}",
        s.name,
        s.backend,
        state_word(s.state),
        s.owner_pid,
        owner_word(s.owner)
    )?;
    writeln!(
        out,
        "capacity {} slots x {} B (event {} B)  segment {} B",
        s.capacity, s.slot_stride, s.event_size, s.segment_len
    )?;
    writeln!(
        out,
        "producer cursor {}  published {} ({})",
        s.producer_cursor,
        s.events_published,
        rate(s.events_published, prev.map(|p| p.events_published), secs)
    )?;
    let blocked_ms = |d: Duration| d.as_secs_f64() * 1e3;
    let blocked_rate = match prev {
        Some(p) if secs > 0.0 => format!(
            "{:.1} ms/s",
            blocked_ms(s.blocked.saturating_sub(p.blocked)) / secs
        ),
        _ => "-".into(),
    };
    writeln!(
        out,
        "publish full {} ({})  blocked waits {} ({})  blocked {:.3} ms ({})",
        s.publish_full,
        rate(s.publish_full, prev.map(|p| p.publish_full), secs),
        s.blocked_waits,
        rate(s.blocked_waits, prev.map(|p| p.blocked_waits), secs),
        blocked_ms(s.blocked),
        blocked_rate
    )?;
    writeln!(
        out,
        "{:<20} {:>8} {:<8} {:>12} {:>12} {:>10} {:>8} {:>8} {:>8} {:>7} {:>6}",
        "CONSUMER",
        "PID",
        "STATE",
        "CURSOR",
        "CONSUMED",
        "RATE",
        "LAG",
        "MAX_LAG",
        "DROPPED",
        "ALERTS",
        "RECOV"
    )?;
    for c in &s.consumers {
        let before = prev
            .and_then(|p| p.consumers.iter().find(|k| k.id == c.id))
            .map(|k| k.consumed);
        consumer_row(out, c, rate(c.consumed, before, secs))?;
    }
    if s.consumers.is_empty() {
        writeln!(out, "(no consumers)")?;
    }
    if s.multi_producer {
        multi_producer_rows(out, s)?;
    }
    Ok(())
}

/// The producer table of a multi-producer ring, and what each consumer skipped.
fn multi_producer_rows(out: &mut String, s: &RingSnapshot) -> std::fmt::Result {
    writeln!(
        out,
        "multi-producer ring (the producer cursor is the claim cursor)"
    )?;
    writeln!(
        out,
        "{:<20} {:>8} {:<8} {:>12} {:>8} {:>12}",
        "PRODUCER", "PID", "STATE", "PUBLISHED", "SKIPPED", "CLAIMING"
    )?;
    for p in &s.producers {
        writeln!(
            out,
            "{:<20} {:>8} {:<8} {:>12} {:>8} {:>12}",
            p.source,
            p.owner_pid,
            p.liveness.to_string(),
            p.published,
            p.skipped,
            p.claiming
                .map_or_else(|| "-".to_string(), |c| c.to_string())
        )?;
    }
    if s.producers.is_empty() {
        writeln!(out, "(no producers)")?;
    }
    let abandoned: Vec<String> = s
        .consumers
        .iter()
        .map(|c| format!("{} {}", c.id, c.abandoned_slots))
        .collect();
    writeln!(
        out,
        "abandoned_slots (skipped per consumer): {}",
        abandoned.join(", ")
    )
}

fn consumer_row(out: &mut String, c: &ConsumerSnapshot, rate: String) -> std::fmt::Result {
    let pid = c
        .owner_pid
        .map_or_else(|| "-".to_string(), |p| p.to_string());
    writeln!(
        out,
        "{:<20} {:>8} {:<8} {:>12} {:>12} {:>10} {:>8} {:>8} {:>8} {:>7} {:>6}",
        c.id,
        pid,
        c.liveness.to_string(),
        c.cursor,
        c.consumed,
        rate,
        c.lag,
        c.max_lag,
        c.partial_dropped,
        c.alerts,
        c.recoveries
    )
}
