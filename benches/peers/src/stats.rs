//! Samples, their aggregation over runs (median, min, max, ratio to the same-run floor), and the
//! report: a markdown table, a CSV of every sample and a JSON copy of it.

use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// Percentiles of one ping-pong run, from an HdrHistogram of its round trips (3 significant
/// digits, in ns).
#[derive(Debug, Clone, Copy)]
pub struct Pcts {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
}

impl Pcts {
    pub fn from_ns(ns: &[f64]) -> Pcts {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
        for v in ns {
            h.saturating_record(v.round().max(1.0) as u64);
        }
        Pcts {
            p50: h.value_at_quantile(0.50) as f64,
            p99: h.value_at_quantile(0.99) as f64,
            p999: h.value_at_quantile(0.999) as f64,
        }
    }
}

/// The one-way latency under which an event counts as "fast" (the consumer was running when it
/// was sent) in the fan-in share column.
pub const FAST_NS: f64 = 10_000.0;

/// The share of `ns` at most [`FAST_NS`] (0 when empty).
pub fn fast_share(ns: &[f64]) -> f64 {
    if ns.is_empty() {
        return 0.0;
    }
    ns.iter().filter(|v| **v <= FAST_NS).count() as f64 / ns.len() as f64
}

/// One measured value.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    /// Round-trip percentiles, ns.
    Lat(Pcts),
    /// One-way latency percentiles (fan-in: receive time − send stamp), ns, and the share of
    /// events that took at most [`FAST_NS`].
    OneWay(Pcts, f64),
    /// Million events per second.
    Mps(f64),
    /// GB/s.
    Gbps(f64),
}

/// One run of one row.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The workload group, e.g. `pingpong_64`, `stream_64_d1024`, `bulk_1MiB_checksum`.
    pub group: String,
    pub contender: &'static str,
    pub run: usize,
    pub load_before: String,
    pub load_after: String,
    pub value: Value,
    /// Steady ping-pong and stream rows: p50 (ns) of a short floor ping-pong run right before
    /// this one, in the same vCPU placement.
    pub probe: Option<f64>,
}

impl Sample {
    /// The headline figure: p50 ns, M events/s or GB/s.
    pub fn headline(&self) -> f64 {
        match self.value {
            Value::Lat(p) | Value::OneWay(p, _) => p.p50,
            Value::Mps(v) | Value::Gbps(v) => v,
        }
    }
}

/// Median, min, max of `v` (not empty).
pub fn spread(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (med, v[0], v[n - 1])
}

/// A row of the report: one group and one contender over all runs.
#[derive(Debug, Clone)]
pub struct Row {
    pub group: String,
    pub contender: &'static str,
    pub runs: usize,
    /// Median, min, max of the headline figure.
    pub head: (f64, f64, f64),
    /// Medians of p99 and p99.9 (latency rows).
    pub tail: Option<(f64, f64)>,
    /// Median / the floor's median in the same group (latency: p50; bulk: GB/s).
    pub ratio: Option<f64>,
    /// Steady ping-pong rows: the median over runs of p50 / the floor probe taken right
    /// before that run (see [`Sample::probe`]).
    pub adjacent: Option<f64>,
    /// Lowest and highest 1-minute load average read before/after the row's runs.
    pub load: (f64, f64),
    /// One-way latency rows: median over runs of the share of events at most [`FAST_NS`].
    pub fast: Option<f64>,
    /// Steady ping-pong and stream rows: the median over the runs whose adjacent floor probe
    /// (the floor row: its own p50) was at most [`NEAR_FLOOR_NS`] (the two vCPUs near each
    /// other; `None` if no run was), and how many runs that was.
    pub near: Option<(Option<f64>, usize)>,
}

/// A floor probe p50 at most this (ns) says the two vCPUs were near each other (one CCX or one
/// core) for the run after it; far apart, this VM's floor is ~440 ns.
pub const NEAR_FLOOR_NS: f64 = 150.0;

/// Aggregates the samples into rows, in first-seen order.
pub fn rows(samples: &[Sample]) -> Vec<Row> {
    let mut keys: Vec<(String, &'static str)> = Vec::new();
    for s in samples {
        if !keys.iter().any(|(g, c)| *g == s.group && *c == s.contender) {
            keys.push((s.group.clone(), s.contender));
        }
    }
    let pick = |g: &str, c: &str| -> Vec<&Sample> {
        samples
            .iter()
            .filter(|s| s.group == g && s.contender == c)
            .collect()
    };
    let load1 = |l: &str| {
        l.split_whitespace()
            .next()
            .and_then(|x| x.parse::<f64>().ok())
    };
    keys.iter()
        .map(|(g, c)| {
            let ss = pick(g, c);
            let head = spread(&mut ss.iter().map(|s| s.headline()).collect::<Vec<_>>());
            let tail = match ss[0].value {
                Value::Lat(_) | Value::OneWay(..) => {
                    let p = |f: fn(&Pcts) -> f64| {
                        spread(
                            &mut ss
                                .iter()
                                .filter_map(|s| match &s.value {
                                    Value::Lat(p) | Value::OneWay(p, _) => Some(f(p)),
                                    _ => None,
                                })
                                .collect::<Vec<_>>(),
                        )
                        .0
                    };
                    Some((p(|p| p.p99), p(|p| p.p999)))
                }
                _ => None,
            };
            let floor = pick(g, "floor");
            let ratio = (!floor.is_empty() && !matches!(ss[0].value, Value::Mps(_))).then(|| {
                head.0 / spread(&mut floor.iter().map(|s| s.headline()).collect::<Vec<_>>()).0
            });
            let loads: Vec<f64> = ss
                .iter()
                .flat_map(|s| [load1(&s.load_before), load1(&s.load_after)])
                .flatten()
                .collect();
            let load = loads
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
            let shares: Vec<f64> = ss
                .iter()
                .filter_map(|s| match s.value {
                    Value::OneWay(_, f) => Some(f),
                    _ => None,
                })
                .collect();
            let fast = (!shares.is_empty()).then(|| spread(&mut shares.clone()).0);
            let rate = matches!(ss[0].value, Value::Mps(_));
            let mut adj: Vec<f64> = ss
                .iter()
                .filter_map(|s| s.probe.filter(|p| *p > 0.0).map(|p| s.headline() / p))
                .collect();
            let bandwidth = matches!(ss[0].value, Value::Gbps(_));
            let adjacent = (!rate && !bandwidth && !adj.is_empty()).then(|| spread(&mut adj).0);
            // The floor row is its own probe.
            let is_floor = *c == "floor";
            let placement = |s: &Sample| {
                if is_floor {
                    Some(s.headline())
                } else {
                    s.probe
                }
            };
            let mut near_runs: Vec<f64> = ss
                .iter()
                .filter(|s| placement(s).is_some_and(|p| p > 0.0 && p <= NEAR_FLOOR_NS))
                .map(|s| s.headline())
                .collect();
            let probed = ss.iter().any(|s| s.probe.is_some())
                || (is_floor && pick(g, "myelon_raw").iter().any(|s| s.probe.is_some()));
            // The bulk floor (memcpy, one process) has no placement: only the rings' rows.
            let near =
                (probed && !(is_floor && matches!(ss[0].value, Value::Gbps(_)))).then(|| {
                    let n = near_runs.len();
                    ((n > 0).then(|| spread(&mut near_runs).0), n)
                });
            Row {
                fast,
                group: g.clone(),
                contender: c,
                runs: ss.len(),
                head,
                tail,
                ratio,
                adjacent,
                load,
                near,
            }
        })
        .collect()
}

/// A row's headline cell: the median in bold, then (min–max) over runs.
fn spread_cell(r: &Row) -> String {
    format!(
        "**{}** ({}–{})",
        fmt_num(r.head.0),
        fmt_num(r.head.1),
        fmt_num(r.head.2)
    )
}

/// A row's near-placement cell: the median and the count of runs, or "–".
fn near_cell(r: &Row) -> String {
    match r.near {
        Some((Some(m), n)) => format!("{} ({n})", fmt_num(m)),
        Some((None, n)) => format!("– ({n})"),
        None => "–".to_string(),
    }
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Whether a group is a fan-in row (`fanin_64_throughput`, `fanin_64_latency`, `.._1p`).
pub fn is_fanin(group: &str) -> bool {
    group.starts_with("fanin")
}

/// Producers of a fan-in group: 1 for the `_1p` reference rows, 2 otherwise.
pub fn fanin_producers(group: &str) -> usize {
    if group.ends_with("_1p") {
        1
    } else {
        2
    }
}

/// The markdown tables (latency, stream, bulk, fan-in).
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    let ratio = |r: &Row| r.ratio.map_or("–".into(), |x| format!("{x:.2}"));
    let load = |r: &Row| format!("{:.2}–{:.2}", r.load.0, r.load.1);
    let lat: Vec<&Row> = rows
        .iter()
        .filter(|r| r.tail.is_some() && !is_fanin(&r.group) && !is_first(&r.group))
        .collect();
    if !lat.is_empty() {
        out.push_str("### Ping-pong: round-trip time (RTT), ns\n\n");
        out.push_str("The adjacent-floor column: each run of a row is preceded by a short floor run (20,000 trips) in the same vCPU placement; it is the median over runs of p50 / that floor's p50.\n\n");
        let _ = writeln!(out, "The near-placement column: the median p50 over the runs whose adjacent floor probe (the floor row: its own p50) was at most {NEAR_FLOOR_NS:.0} ns, i.e. the two vCPUs were near each other, and how many runs that was; compare contenders there, where the placement is the same.\n");
        out.push_str("| row | contender | runs | p50 median (min–max) | p99 median | p99.9 median | p50 / floor p50 | p50 / adjacent floor p50 | p50 near-placement median (runs) | load 1m |\n|---|---|---|---|---|---|---|---|---|---|\n");
        for r in lat {
            let (p99, p999) = r.tail.unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.group,
                r.contender,
                r.runs,
                spread_cell(r),
                fmt_num(p99),
                fmt_num(p999),
                ratio(r),
                r.adjacent.map_or("–".into(), |x| format!("{x:.2}")),
                near_cell(r),
                load(r)
            );
        }
        out.push('\n');
    }
    for (title, prefix, unit) in [
        (
            "### Stream of 64 B events, every event checked: M events/s over the whole run",
            "stream",
            "M ev/s",
        ),
        ("### 1 MiB messages, one way: GB/s", "bulk", "GB/s"),
    ] {
        let sel: Vec<&Row> = rows
            .iter()
            .filter(|r| r.group.starts_with(prefix))
            .collect();
        if sel.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title}\n");
        if prefix == "stream" || prefix == "bulk" {
            let _ = writeln!(
                out,
                "The near-placement column: the median over the runs whose adjacent floor probe (a short floor ping-pong right before the run) was at most {NEAR_FLOOR_NS:.0} ns, i.e. the two vCPUs were near each other, and how many runs that was.\n"
            );
        }
        let _ = writeln!(
            out,
            "| row | contender | runs | {unit} median (min–max) | median / floor median | near-placement median (runs) | load 1m |\n|---|---|---|---|---|---|---|"
        );
        for r in sel {
            let near = near_cell(r);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {near} | {} |",
                r.group,
                r.contender,
                r.runs,
                spread_cell(r),
                ratio(r),
                load(r)
            );
        }
        out.push('\n');
    }
    first_markdown(rows, &mut out);
    fanin_markdown(rows, &mut out);
    out
}

/// Whether a group is a `_first<N>` row (the first round trips after attach).
pub fn is_first(group: &str) -> bool {
    group
        .rsplit_once("_first")
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The first round trips after attach against the same contender's steady state (its row
/// without the `_first<N>` suffix, same run set): medians over runs of p50 and p99.
fn first_markdown(rows: &[Row], out: &mut String) {
    let sel: Vec<&Row> = rows.iter().filter(|r| is_first(&r.group)).collect();
    if sel.is_empty() {
        return;
    }
    out.push_str(
        "### First round trips after attach (fresh rings, no warm-up) against the steady state, ns

",
    );
    out.push_str("The last column divides the two rows' adjacent-floor ratios (each run's p50 / the floor probe right before it), so a first row and its steady row measured in different vCPU placements still compare; the first rows' probe runs before the fresh rings are created.\n\n");
    out.push_str("| row | contender | runs | first p50 median (min–max) | first p99 median | steady p50 | steady p99 | first p50 / steady p50 | first p99 / steady p99 | first / steady, each against its adjacent floor |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for r in sel {
        let steady_group = r.group.rsplit_once("_first").map_or("", |(g, _)| g);
        let steady = rows
            .iter()
            .find(|s| s.group == steady_group && s.contender == r.contender);
        let (p99, _) = r.tail.unwrap_or_default();
        let (sp50, sp99) = steady.map_or((f64::NAN, f64::NAN), |s| {
            (s.head.0, s.tail.unwrap_or_default().0)
        });
        let q = |a: f64, b: f64| {
            if b.is_finite() && b > 0.0 {
                format!("{:.2}", a / b)
            } else {
                "–".into()
            }
        };
        let n = |v: f64| {
            if v.is_finite() {
                fmt_num(v)
            } else {
                "–".into()
            }
        };
        let adjacent = match (r.adjacent, steady.and_then(|s| s.adjacent)) {
            (Some(a), Some(b)) => q(a, b),
            _ => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {adjacent} |",
            r.group,
            r.contender,
            r.runs,
            spread_cell(r),
            fmt_num(p99),
            n(sp50),
            n(sp99),
            q(r.head.0, sp50),
            q(p99, sp99),
        );
    }
    out.push('\n');
}

/// The fan-in section: throughput, then one-way latency.
fn fanin_markdown(rows: &[Row], out: &mut String) {
    let sel: Vec<&Row> = rows.iter().filter(|r| is_fanin(&r.group)).collect();
    if sel.is_empty() {
        return;
    }
    let load = |r: &Row| format!("{:.2}–{:.2}", r.load.0, r.load.1);
    out.push_str("### Fan-in: 2 producers → 1 consumer\n\n");
    out.push_str("Each producer is its own process; both are pinned to the peer CPU (a 2-vCPU machine: they share it, time-sliced by the kernel), the consumer is the driver on the other CPU. 64-byte events, ring depth (iceoryx2: subscriber buffer) 4096, every event checked (per-producer order, nothing lost). The `_1p` rows are the same workload with one producer: `myelon_raw` there is the single-producer ring, the reference for `myelon_mp`.\n\n");
    let tput: Vec<&&Row> = sel.iter().filter(|r| r.tail.is_none()).collect();
    if !tput.is_empty() {
        out.push_str("#### Throughput: M events/s, the consumer's first event to its last\n\n");
        out.push_str("| row | contender | producers | runs | M ev/s median (min–max) | load 1m |\n|---|---|---|---|---|---|\n");
        for r in tput {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                r.group,
                r.contender,
                fanin_producers(&r.group),
                r.runs,
                spread_cell(r),
                load(r)
            );
        }
        out.push('\n');
    }
    let lat: Vec<&&Row> = sel.iter().filter(|r| r.tail.is_some()).collect();
    if !lat.is_empty() {
        out.push_str("#### Latency: **one-way** (not RTT), ns: receive time − send stamp, `CLOCK_MONOTONIC`, each producer paced at one event per 20 µs\n\n");
        out.push_str("The consumer busy-polls on its CPU; when that CPU is shared (other processes runnable), an event sent while the consumer is descheduled waits for its next time slice (milliseconds). The last column, the share of events delivered within 10 µs, shows how much of the distribution is the transport and how much is the scheduler.\n\n");
        out.push_str("| row | contender | producers | runs | one-way p50 median (min–max) | p99 median | p99.9 median | ≤ 10 µs (median share) | load 1m |\n|---|---|---|---|---|---|---|---|---|\n");
        for r in lat {
            let (p99, p999) = r.tail.unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {:.0}% | {} |",
                r.group,
                r.contender,
                fanin_producers(&r.group),
                r.runs,
                spread_cell(r),
                fmt_num(p99),
                fmt_num(p999),
                r.fast.unwrap_or(0.0) * 100.0,
                load(r)
            );
        }
        out.push('\n');
    }
}

/// Every sample as CSV: `group,contender,run,metric,value,load_before,load_after`.
pub fn csv(samples: &[Sample]) -> String {
    let mut out = String::from("group,contender,run,metric,value,load_before,load_after\n");
    for s in samples {
        let metrics: Vec<(&str, f64)> = match s.value {
            Value::Lat(p) => vec![
                ("rtt_p50_ns", p.p50),
                ("rtt_p99_ns", p.p99),
                ("rtt_p999_ns", p.p999),
            ],
            Value::OneWay(p, f) => vec![
                ("oneway_p50_ns", p.p50),
                ("oneway_p99_ns", p.p99),
                ("oneway_p999_ns", p.p999),
                ("oneway_le10us_share", f),
            ],
            Value::Mps(v) => vec![("mevents_per_s", v)],
            Value::Gbps(v) => vec![("gb_per_s", v)],
        };
        let mut metrics = metrics;
        if let Some(p) = s.probe {
            metrics.push(("adjacent_floor_p50_ns", p));
        }
        for (m, v) in metrics {
            let _ = writeln!(
                out,
                "{},{},{},{m},{v:.4},{},{}",
                s.group, s.contender, s.run, s.load_before, s.load_after
            );
        }
    }
    out
}

/// Every sample as a JSON array (the same fields as the CSV, one object per sample).
pub fn json(samples: &[Sample]) -> String {
    let items: Vec<String> = samples
        .iter()
        .map(|s| {
            let v = match s.value {
                Value::Lat(p) => format!(
                    "\"rtt_p50_ns\":{},\"rtt_p99_ns\":{},\"rtt_p999_ns\":{}",
                    p.p50, p.p99, p.p999
                ),
                Value::OneWay(p, f) => format!(
                    "\"oneway_p50_ns\":{},\"oneway_p99_ns\":{},\"oneway_p999_ns\":{},\"oneway_le10us_share\":{f:.4}",
                    p.p50, p.p99, p.p999
                ),
                Value::Mps(v) => format!("\"mevents_per_s\":{v:.4}"),
                Value::Gbps(v) => format!("\"gb_per_s\":{v:.4}"),
            };
            let v = match s.probe {
                Some(p) => format!("{v},\"adjacent_floor_p50_ns\":{p}"),
                None => v,
            };
            format!(
                "  {{\"group\":\"{}\",\"contender\":\"{}\",\"run\":{},\"load_before\":\"{}\",\"load_after\":\"{}\",{v}}}",
                s.group, s.contender, s.run, s.load_before, s.load_after
            )
        })
        .collect();
    format!("[\n{}\n]\n", items.join(",\n"))
}
