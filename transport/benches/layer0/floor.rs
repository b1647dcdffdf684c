//! The floor: what two processes pay to hand a cache line back and forth, with no ring.
//!
//! * `floor` — A stores `n` into a cache-line-aligned `AtomicU64`, B sees `n` and stores
//!   `n + 1`, A sees `n + 1`. One line crosses per hop. Successive round trips use successive
//!   words of a 1024-word array (128 bytes apart), as the ring uses successive slots.
//! * `floor_1line` (reference) — the same with a single word.

use crate::clock::{time_trips, Clock, Stats};
use crate::proc::{BenchResult, Names, Peer};
use crate::spin::spin_until;
use crate::Plan;
use myelon::backend::{Region, RingBackend, ShmBackend, ShmRegion};
use std::sync::atomic::{AtomicU64, Ordering};

/// Value that tells the peer to exit.
const STOP: u64 = u64::MAX;
/// Distance between two words: each has its own pair of 64-byte lines.
const WORD_STRIDE: usize = 128;
/// Lines cycled by `floor` (as the ring ping-pong's capacity); `floor_1line` uses one.
pub const FLOOR_LINES: usize = 1024;

fn region_len(lines: usize) -> usize {
    (lines * WORD_STRIDE).max(4096)
}

fn words(region: &ShmRegion, lines: usize) -> BenchResult<Vec<&AtomicU64>> {
    if region.len() < lines * WORD_STRIDE {
        return Err("floor region too small".into());
    }
    Ok((0..lines)
        .map(|k| {
            // SAFETY: in bounds (`k * WORD_STRIDE + 8 <= region.len()`, checked), 128-aligned (page
            // base), zero-filled bytes are a valid `AtomicU64` only accessed atomically, and the
            // reference lives no longer than the region borrow.
            unsafe { &*(region.as_ptr().add(k * WORD_STRIDE) as *const AtomicU64) }
        })
        .collect())
}

/// The index mask for `lines` words (a power of two, so that no division sits in the timed
/// window).
fn line_mask(lines: usize) -> BenchResult<usize> {
    if lines.is_power_of_two() {
        Ok(lines - 1)
    } else {
        Err(format!("floor: {lines} lines is not a power of two").into())
    }
}

/// Role name of the peer of a floor over `lines` lines.
pub fn role(lines: usize) -> String {
    format!("floor-{lines}")
}

/// Parent side of `floor` (`lines` = [`FLOOR_LINES`]) and `floor_1line` (`lines` = 1).
///
/// Round trip `i` uses word `i % lines`: A stores `2i + 1`, B sees it and stores `2i + 2`, A
/// sees that. With one line this is the classic single-word ping-pong; cycling through 1024
/// lines, as the ring cycles through its slots, averages over the L3 slices the lines hash to
/// (a single line's round trip depends on where its home slice sits on the mesh).
pub fn run(clock: &Clock, plan: &Plan, names: &mut Names, lines: usize) -> BenchResult<Stats> {
    let mask = line_mask(lines)?;
    let name = names.fresh("floor");
    let region = ShmBackend.create(&name, region_len(lines))?;
    // Mark the region finished (mode 0600) so the peer may open it.
    region.finish(0o600)?;
    let w = words(&region, lines)?;
    let mut peer = Peer::spawn(&role(lines), plan.cpus.1, &[name])?;
    let ticks = time_trips(clock, plan.warmup, plan.iters, |i| {
        let (word, v) = (w[i as usize & mask], 2 * i + 1);
        word.store(v, Ordering::Release);
        spin_until(
            || Ok((word.load(Ordering::Acquire) == v + 1).then_some(())),
            || peer.check_alive(),
        )
    })?;
    w[(plan.warmup + plan.iters) as usize & mask].store(STOP, Ordering::Release);
    peer.finish(plan.peer_timeout)?;
    Ok(Stats::from_ticks(clock, &ticks))
}

/// Peer side of the floor: answers `2i + 1` with `2i + 2` on word `i % lines` until `STOP`.
pub fn peer(args: &[String], lines: usize) -> BenchResult<()> {
    let [name] = args else {
        return Err("floor peer: expected <name>".into());
    };
    let mask = line_mask(lines)?;
    let region = ShmBackend.open(name)?;
    let w = words(&region, lines)?;
    for i in 0u64.. {
        let (word, v) = (w[i as usize & mask], 2 * i + 1);
        let stop = spin_until(
            || {
                let x = word.load(Ordering::Acquire);
                Ok((x == v || x == STOP).then_some(x == STOP))
            },
            || Ok(()),
        )?;
        if stop {
            break;
        }
        word.store(v + 1, Ordering::Release);
    }
    Ok(())
}
