//! Results: one machine-readable `RESULT` line per measurement as it completes, then the table
//! (the median over runs, with the best and worst beside it, ratios, targets judged on the
//! median) and one `SUMMARY` line per row.

use crate::clock::Stats;
use crate::stream::StreamStats;

/// Target: ping-pong 64 B p50 at most this many times the floor p50 (same run).
pub const TARGET_PINGPONG_RATIO: f64 = 1.5;
/// Target: stream throughput, events per second.
pub const TARGET_STREAM_RATE: f64 = 25e6;
/// The row the ping-pong target applies to.
const TARGET_PINGPONG: &str = "pingpong_64";
/// The row every latency is divided by.
const FLOOR: &str = "floor";
/// The row that is the timer's own cost (no ratio).
const TIMER: &str = "timer";

/// What one measurement produced.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    /// Round-trip latency.
    Latency(Stats),
    /// One-way throughput.
    Stream(StreamStats),
}

/// One measurement of one run.
#[derive(Debug, Clone)]
struct Record {
    run: usize,
    name: String,
    value: Value,
}

/// All records of the benchmark.
#[derive(Debug, Default)]
pub struct Report {
    records: Vec<Record>,
    summary: Vec<String>,
}

impl Report {
    /// Adds a record and prints its `RESULT` line.
    pub fn add(&mut self, run: usize, name: &str, value: Value) {
        let (ratio, n) = (self.ratio(run, name, &value), name);
        let line = match value {
            Value::Latency(s) => format!(
                "RESULT run={run} name={n} p50_ns={:.0} p99_ns={:.0} p999_ns={:.0} max_ns={:.0} \
                 mean_ns={:.1} samples={}{}",
                s.p50,
                s.p99,
                s.p999,
                s.max,
                s.mean,
                s.samples,
                ratio.map_or(String::new(), |r| format!(" ratio_p50={r:.3}")),
            ),
            Value::Stream(s) => format!(
                "RESULT run={run} name={n} events={} events_per_s={:.0} \
                 best_window_events_per_s={:.0} producer_events_per_s={:.0} mean_batch={:.1}",
                s.events, s.consumer_rate, s.window_rate, s.producer_rate, s.mean_batch
            ),
        };
        println!("{line}");
        self.records.push(Record {
            run,
            name: name.to_string(),
            value,
        });
    }

    /// p50 of `value` over the floor p50 of the same run.
    fn ratio(&self, run: usize, name: &str, value: &Value) -> Option<f64> {
        let Value::Latency(s) = value else {
            return None;
        };
        if name == FLOOR || name == TIMER {
            return None;
        }
        self.records.iter().find_map(|r| match r.value {
            Value::Latency(f) if r.run == run && r.name == FLOOR && f.p50 > 0.0 => {
                Some(s.p50 / f.p50)
            }
            _ => None,
        })
    }

    /// Row names in first-seen order.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for r in &self.records {
            if !names.contains(&r.name) {
                names.push(r.name.clone());
            }
        }
        names
    }

    fn of(&self, name: &str) -> impl Iterator<Item = &Record> + '_ {
        let name = name.to_string();
        self.records.iter().filter(move |r| r.name == name)
    }

    /// Prints the tables and the `SUMMARY` lines; returns whether every measured target was met.
    pub fn print_summary(&mut self) -> bool {
        let mut pass = true;
        let is_stream = |r: &Record| matches!(r.value, Value::Stream(_));
        let has_stream = self.records.iter().any(is_stream);
        let has_latency = !self.records.iter().all(is_stream);
        if has_latency {
            println!();
            println!(
                "{:<15} {:>9} {:>11} {:>9} {:>9} {:>7} {:>11}  target",
                "round trip",
                "p50 med",
                "p50 min..max",
                "p99 med",
                "p99.9 med",
                "/floor",
                "/fl min..max"
            );
        }
        for name in self.names() {
            pass &= self.latency_row(&name);
        }
        if has_stream {
            println!();
            println!(
                "{:<24} {:>7} {:>12} {:>8} {:>8} {:>6}",
                "stream 64 B (M ev/s)", "median", "min..max", "window", "producer", "batch"
            );
        }
        let mut best: Vec<(String, f64, String)> = Vec::new();
        for name in self.names() {
            let Some(rate) = self.stream_row(&name) else {
                continue;
            };
            let mode = name.split("_cap").next().unwrap_or(&name).to_string();
            match best.iter_mut().find(|(m, _, _)| *m == mode) {
                Some(b) if b.1 < rate => *b = (mode, rate, name.clone()),
                Some(_) => {}
                None => best.push((mode, rate, name.clone())),
            }
        }
        for (mode, rate, name) in best {
            let ok = rate >= TARGET_STREAM_RATE;
            pass &= ok;
            println!(
                "{mode}: {:.1} M events/s median at its best capacity ({name}); target >= {:.0} M/s: {}",
                rate / 1e6,
                TARGET_STREAM_RATE / 1e6,
                verdict(ok)
            );
            self.summary.push(format!(
                "SUMMARY name={mode} best_capacity={name} median_events_per_s={rate:.0} \
                 target_events_per_s={TARGET_STREAM_RATE:.0} pass={ok}"
            ));
        }
        println!();
        for line in &self.summary {
            println!("{line}");
        }
        pass
    }

    /// Prints one latency row (if `name` is one); returns false if it misses its target.
    fn latency_row(&mut self, name: &str) -> bool {
        let runs: Vec<(usize, Stats)> = self
            .of(name)
            .filter_map(|r| match r.value {
                Value::Latency(s) => Some((r.run, s)),
                Value::Stream(_) => None,
            })
            .collect();
        if runs.is_empty() {
            return true;
        }
        let p50: Vec<f64> = runs.iter().map(|(_, s)| s.p50).collect();
        let ratios: Vec<f64> = runs
            .iter()
            .filter_map(|(run, s)| self.ratio(*run, name, &Value::Latency(*s)))
            .collect();
        let ((lo, hi), (rlo, rhi)) = (min_max(&p50), min_max(&ratios));
        let med = median(&p50);
        let p99 = median(&runs.iter().map(|(_, s)| s.p99).collect::<Vec<_>>());
        let p999 = median(&runs.iter().map(|(_, s)| s.p999).collect::<Vec<_>>());
        let has_ratio = !ratios.is_empty();
        let rmed = median(&ratios);
        let ok = !(name == TARGET_PINGPONG && has_ratio && rmed > TARGET_PINGPONG_RATIO);
        let target = if name == TARGET_PINGPONG && has_ratio {
            format!("median <= {TARGET_PINGPONG_RATIO} x floor: {}", verdict(ok))
        } else {
            String::new()
        };
        let (ratio, rspread) = if has_ratio {
            (format!("{rmed:.2}"), format!("{rlo:.2}..{rhi:.2}"))
        } else {
            ("-".to_string(), "-".to_string())
        };
        println!(
            "{name:<15} {med:>9.0} {:>11} {p99:>9.0} {p999:>9.0} {ratio:>7} {rspread:>11}  {target}",
            format!("{lo:.0}..{hi:.0}"),
        );
        self.summary.push(format!(
            "SUMMARY name={name} runs={} median_p50_ns={med:.0} best_p50_ns={lo:.0} \
             worst_p50_ns={hi:.0} median_p99_ns={p99:.0} median_p999_ns={p999:.0} \
             median_ratio_p50={ratio} ratio_p50_range={rspread}",
            runs.len(),
        ));
        ok
    }

    /// Prints one stream row (if `name` is one); returns its median rate.
    fn stream_row(&mut self, name: &str) -> Option<f64> {
        let runs: Vec<StreamStats> = self
            .of(name)
            .filter_map(|r| match r.value {
                Value::Stream(s) => Some(s),
                Value::Latency(_) => None,
            })
            .collect();
        if runs.is_empty() {
            return None;
        }
        let rates: Vec<f64> = runs.iter().map(|s| s.consumer_rate).collect();
        let (lo, hi) = min_max(&rates);
        let med = median(&rates);
        let window = median(&runs.iter().map(|s| s.window_rate).collect::<Vec<_>>());
        let producer = median(&runs.iter().map(|s| s.producer_rate).collect::<Vec<_>>());
        let batch = median(&runs.iter().map(|s| s.mean_batch).collect::<Vec<_>>());
        println!(
            "{name:<24} {:>7.1} {:>12} {:>8.1} {:>8.1} {:>6.0}",
            med / 1e6,
            format!("{:.1}..{:.1}", lo / 1e6, hi / 1e6),
            window / 1e6,
            producer / 1e6,
            batch,
        );
        self.summary.push(format!(
            "SUMMARY name={name} runs={} median_events_per_s={med:.0} best_events_per_s={hi:.0} \
             worst_events_per_s={lo:.0} median_window_events_per_s={window:.0}",
            runs.len()
        ));
        Some(med)
    }
}

/// The median (the mean of the two middle values for an even count; NaN for none).
fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}
