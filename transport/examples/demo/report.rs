//! What the producer prints: the header, the table, the verdict, and number formats.

use crate::config::{cores, Config};
use crate::fleet::Report;
use crate::producer::Run;
use std::process::ExitCode;

pub fn print_header(cfg: &Config, segment: &str) {
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

pub fn print_summary(cfg: &Config, run: &Run, reports: &[Report]) -> ExitCode {
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
pub fn short(n: u64) -> String {
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
