//! Greedy schedule reduction: drop faults, consumers and events, simplify the workload, and
//! keep each change that still fails with the same oracle.

use crate::steps::{run, Oracle};
use crate::workload::{Actor, FaultKind, Workload};

/// Most candidate runs one shrink tries.
const MAX_RUNS: usize = 4000;

/// Shrinks `w`, which fails with `oracle`, to a smaller workload that still does. Returns it
/// and the number of runs tried.
pub fn shrink(w: &Workload, oracle: Oracle) -> (Workload, usize) {
    let mut best = w.clone();
    let mut runs = 0usize;
    let mut improved = true;
    while improved && runs < MAX_RUNS {
        improved = false;
        for cand in candidates(&best) {
            if runs >= MAX_RUNS {
                break;
            }
            runs += 1;
            if run(&cand, false)
                .failure
                .is_some_and(|f| f.oracle == oracle)
            {
                best = cand;
                improved = true;
                break;
            }
        }
    }
    (best, runs)
}

/// Smaller or simpler variants of `w`, most aggressive first.
fn candidates(w: &Workload) -> Vec<Workload> {
    let mut out = Vec::new();
    if !w.faults.is_empty() {
        let mut c = w.clone();
        c.faults.clear();
        out.push(c);
    }
    for i in 0..w.faults.len() {
        let mut c = w.clone();
        c.faults.remove(i);
        out.push(c);
    }
    for events in [w.events / 2, w.events * 3 / 4, w.events.saturating_sub(1)] {
        if events >= 1 && events < w.events {
            let mut c = w.clone();
            c.events = events;
            out.push(c);
        }
    }
    if w.consumers.len() > 1 {
        for i in 0..w.consumers.len() {
            out.push(without_consumer(w, i));
        }
    }
    if w.batch_max > 1 {
        let mut c = w.clone();
        c.batch_max = 1;
        out.push(c);
    }
    if w.capacity > 2 {
        let mut c = w.clone();
        c.capacity /= 2;
        c.batch_max = c.batch_max.min(c.capacity as u64);
        c.framed = c.framed.min(c.capacity as u64);
        out.push(c);
    }
    for i in 0..w.consumers.len() {
        if w.consumers[i].slow_us > 0 {
            let mut c = w.clone();
            c.consumers[i].slow_us = 0;
            out.push(c);
        }
        if w.consumers[i].attach_us.is_some_and(|t| t > 0) {
            let mut c = w.clone();
            c.consumers[i].attach_us = Some(0);
            out.push(c);
        }
    }
    for i in 0..w.faults.len() {
        if w.faults[i].at_us > 0 {
            let mut c = w.clone();
            c.faults[i].at_us /= 2;
            c.faults.sort_by_key(|f| f.at_us);
            out.push(c);
        }
    }
    out
}

fn without_consumer(w: &Workload, i: usize) -> Workload {
    let mut c = w.clone();
    c.consumers.remove(i);
    let shift = |k: usize| if k > i { k - 1 } else { k };
    c.faults = w
        .faults
        .iter()
        .filter_map(|f| {
            let kind = match f.kind {
                FaultKind::Stall {
                    actor: Actor::Consumer(k),
                    dur_us,
                } => {
                    if k == i {
                        return None;
                    }
                    FaultKind::Stall {
                        actor: Actor::Consumer(shift(k)),
                        dur_us,
                    }
                }
                FaultKind::Crash { consumer: k } | FaultKind::Rejoin { consumer: k } if k == i => {
                    return None
                }
                FaultKind::Crash { consumer: k } => FaultKind::Crash { consumer: shift(k) },
                FaultKind::Rejoin { consumer: k } => FaultKind::Rejoin { consumer: shift(k) },
                other => other,
            };
            Some(crate::workload::Fault {
                at_us: f.at_us,
                kind,
            })
        })
        .collect();
    c
}
