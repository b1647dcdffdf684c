//! SVG plots of the aggregated rows (plotters, SVG backend): latency percentiles per size and
//! contender, throughput against message size, throughput against ring depth.

use crate::proc::BenchResult;
use crate::stats::Row;
use plotters::prelude::*;
use std::path::Path;

const COLORS: [RGBColor; 8] = [
    RGBColor(0, 0, 0),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

fn color(contender: &str) -> RGBColor {
    let i = crate::contenders::ALL
        .iter()
        .position(|c| c.name() == contender)
        .unwrap_or(0);
    COLORS[i % COLORS.len()]
}

fn contenders(rows: &[Row]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for r in rows {
        if !v.contains(&r.contender) {
            v.push(r.contender);
        }
    }
    v
}

fn log_bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| *v > 0.0)
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        (1.0, 10.0)
    } else {
        (lo / 1.5, hi * 1.5)
    }
}

/// `1.5`, `20`, `3k`, `4M`: axis labels of a log scale.
fn compact(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.0}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

type Series = Vec<(&'static str, Vec<(f64, f64)>)>;

/// One log-log (or lin-x/log-y) chart with a line per contender.
fn chart(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    x_desc: &str,
    y_desc: &str,
    x_labels: &[(f64, String)],
    series: &Series,
) -> BenchResult<()> {
    let xs: Vec<f64> = x_labels.iter().map(|(x, _)| *x).collect();
    let (x0, x1) = (
        xs.iter().cloned().fold(f64::MAX, f64::min) - 0.5,
        xs.iter().cloned().fold(f64::MIN, f64::max) + 0.5,
    );
    let (y0, y1) = log_bounds(series.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y)));
    let mut c = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, (y0..y1).log_scale())?;
    let labels = x_labels.to_vec();
    let fmt = move |x: &f64| {
        labels
            .iter()
            .find(|(v, _)| (v - x).abs() < 0.25)
            .map(|(_, l)| l.clone())
            .unwrap_or_default()
    };
    c.configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(x_labels.len() * 4 + 1)
        .x_label_formatter(&fmt)
        .y_label_formatter(&|y| compact(*y))
        .draw()?;
    for (name, points) in series {
        let col = color(name);
        c.draw_series(LineSeries::new(points.clone(), col.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2)));
        c.draw_series(points.iter().map(|p| Circle::new(*p, 3, col.filled())))?;
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}

/// Latency percentiles (p50, p99, p99.9 of the RTT) per ping-pong size, a panel per size.
pub fn latency(rows: &[Row], path: &Path) -> BenchResult<()> {
    let groups: Vec<String> = {
        let mut g: Vec<String> = Vec::new();
        for r in rows
            .iter()
            .filter(|r| r.tail.is_some() && !crate::stats::is_fanin(&r.group))
        {
            if !g.contains(&r.group) {
                g.push(r.group.clone());
            }
        }
        g
    };
    if groups.is_empty() {
        return Ok(());
    }
    let root = SVGBackend::new(path, (420 * groups.len() as u32, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, groups.len()));
    let labels = [
        (0.0, "p50".to_string()),
        (1.0, "p99".into()),
        (2.0, "p99.9".into()),
    ];
    for (g, area) in groups.iter().zip(panels.iter()) {
        let series: Series = rows
            .iter()
            .filter(|r| &r.group == g)
            .filter_map(|r| {
                let (p99, p999) = r.tail?;
                Some((r.contender, vec![(0.0, r.head.0), (1.0, p99), (2.0, p999)]))
            })
            .collect();
        chart(
            area,
            &format!("{g}: RTT medians over runs"),
            "percentile",
            "ns (log)",
            &labels,
            &series,
        )?;
    }
    root.present()?;
    Ok(())
}

fn find<'a>(rows: &'a [Row], group: &str, contender: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.group == group && r.contender == contender)
}

/// Throughput against message size: lock-step ping-pong goodput (2 x size / median p50 RTT)
/// at 64 B, 1 KiB, 64 KiB and the one-way 1 MiB rate (checksum mode), GB/s.
pub fn by_size(rows: &[Row], path: &Path) -> BenchResult<()> {
    let sizes: [(f64, &str, usize, &str); 4] = [
        (0.0, "64 B", 64, "pingpong_64"),
        (1.0, "1 KiB", 1024, "pingpong_1024"),
        (2.0, "64 KiB", 65536, "pingpong_65536"),
        (3.0, "1 MiB (bulk)", 1 << 20, "bulk_1MiB_checksum"),
    ];
    let mut series: Series = Vec::new();
    for c in contenders(rows) {
        let points: Vec<(f64, f64)> = sizes
            .iter()
            .filter_map(|(x, _, size, g)| {
                let r = find(rows, g, c)?;
                Some(if g.starts_with("bulk") {
                    (*x, r.head.0)
                } else {
                    (*x, 2.0 * *size as f64 / r.head.0)
                })
            })
            .collect();
        if !points.is_empty() {
            series.push((c, points));
        }
    }
    if series.is_empty() {
        return Ok(());
    }
    let root = SVGBackend::new(path, (760, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let labels: Vec<(f64, String)> = sizes
        .iter()
        .map(|(x, l, _, _)| (*x, l.to_string()))
        .collect();
    chart(
        &root,
        "Throughput vs message size (ping-pong: 2*size/p50 RTT; 1 MiB: one-way bulk)",
        "message size",
        "GB/s (log)",
        &labels,
        &series,
    )?;
    root.present()?;
    Ok(())
}

/// Stream throughput against ring depth, M events/s (the socket, which has no depth, is drawn
/// flat across all depths).
pub fn by_depth(rows: &[Row], depths: &[usize], path: &Path) -> BenchResult<()> {
    let mut series: Series = Vec::new();
    for c in contenders(rows) {
        let mut points: Vec<(f64, f64)> = depths
            .iter()
            .enumerate()
            .filter_map(|(k, d)| {
                Some((k as f64, find(rows, &format!("stream_64_d{d}"), c)?.head.0))
            })
            .collect();
        if let Some(r) = find(rows, "stream_64_socket", c) {
            points = (0..depths.len()).map(|k| (k as f64, r.head.0)).collect();
        }
        if !points.is_empty() {
            series.push((c, points));
        }
    }
    if series.is_empty() {
        return Ok(());
    }
    let root = SVGBackend::new(path, (760, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let labels: Vec<(f64, String)> = depths
        .iter()
        .enumerate()
        .map(|(k, d)| (k as f64, d.to_string()))
        .collect();
    chart(
        &root,
        "Stream of 64 B events vs ring depth (median over runs)",
        "ring depth (slots)",
        "M events/s (log)",
        &labels,
        &series,
    )?;
    root.present()?;
    Ok(())
}
