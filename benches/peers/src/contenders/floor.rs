//! The floors, measured in the same run as the contenders:
//!
//! * ping-pong: a cache line handed back and forth between the two pinned processes through a
//!   shared mapping. A stores `2i + 1` into a word, B sees it and stores `2i + 2`, A sees that.
//!   Round trip `i` uses word `i % 1024`, 128 bytes apart (as a ring uses its next slot). The
//!   message size does not matter to it: it is the floor of every ping-pong row.
//! * bulk: single-thread `memcpy` of 1 MiB into `bulk_depth` rotating destinations (the
//!   producer's copy into ring slots, without a second process). The bulk mode does not matter.

// The workspace's clippy.toml sends shared-memory atomics through the transport's `sync` facade
// (crate-private, there so that loom models see them). The floor's words are the bench's own
// mapping, not a ring, and are never loom-modelled: std's atomics, deliberately.
#![allow(clippy::disallowed_types)]

use super::{arg, spin_until, Ctx, Outcome, Work, BULK_BYTES};
use crate::clock::time_trips;
use crate::proc::{fresh_name, BenchResult, Peer};
use myelon::backend::{Region, RingBackend, ShmBackend, ShmRegion};
use std::sync::atomic::{AtomicU64, Ordering};

const ROLE: &str = "floor";
const LINES: usize = 1024;
const STRIDE: usize = 128;

fn words(region: &ShmRegion) -> BenchResult<Vec<&AtomicU64>> {
    if region.len() < LINES * STRIDE {
        return Err("floor: region too small".into());
    }
    Ok((0..LINES)
        .map(|k| {
            // SAFETY: `k * STRIDE + 8 <= region.len()` (checked above); the region is page
            // aligned, so every word is 8-aligned; zero-filled memory is a valid `AtomicU64`,
            // only ever accessed atomically, and the reference does not outlive `region`.
            unsafe { &*(region.as_ptr().add(k * STRIDE) as *const AtomicU64) }
        })
        .collect())
}

pub fn run(ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
    match work {
        Work::PingPong { size } => line_pingpong(ctx, work, size),
        Work::Bulk { .. } => Ok(Outcome::Bandwidth(memcpy(ctx))),
        Work::Stream { .. } => Err("floor: no stream floor".into()),
        Work::FanIn { .. } => Err("floor: no fan-in floor".into()),
    }
}

fn line_pingpong(ctx: &Ctx, work: Work, size: usize) -> BenchResult<Outcome> {
    let name = fresh_name("f");
    let region = ShmBackend.create(&name, LINES * STRIDE)?;
    // Mark the region finished (mode 0600) so the peer may open it.
    region.finish(0o600)?;
    let w = words(&region)?;
    let (warmup, iters) = ctx.trips(size);
    let mut args = work.args();
    args.extend([name.clone(), (warmup + iters).to_string()]);
    let mut peer = Peer::spawn(ROLE, ctx.cpus.1, &args)?;
    let ticks = time_trips(&ctx.clock, warmup, iters, |i| {
        let (word, v) = (w[i as usize % LINES], 2 * i + 1);
        word.store(v, Ordering::Release);
        spin_until(
            || Ok((word.load(Ordering::Acquire) == v + 1).then_some(())),
            || peer.check_alive(),
        )
    });
    let finished = peer.finish(ctx.peer_timeout);
    let _ = ShmBackend.remove(&name);
    let ticks = ticks?;
    finished?;
    Ok(Outcome::Latency(
        ticks.iter().map(|t| ctx.clock.ns(*t)).collect(),
    ))
}

pub fn peer(_work: Work, args: &[String]) -> BenchResult<()> {
    let (name, n): (String, u64) = (arg(args, 0)?, arg(args, 1)?);
    let region = ShmBackend.open(&name)?;
    let w = words(&region)?;
    for i in 0..n {
        let (word, v) = (w[i as usize % LINES], 2 * i + 1);
        spin_until(
            || Ok((word.load(Ordering::Acquire) == v).then_some(())),
            || Ok(()),
        )?;
        word.store(v + 1, Ordering::Release);
    }
    Ok(())
}

/// GB/s of copying 1 MiB into `bulk_depth` rotating buffers, `bulk_messages` times.
fn memcpy(ctx: &Ctx) -> f64 {
    let src = crate::msg::source(BULK_BYTES / 8);
    let mut dst = vec![vec![0u64; BULK_BYTES / 8]; ctx.bulk_depth.max(1)];
    let n = ctx.bulk_messages.max(16);
    let t0 = std::time::Instant::now();
    for i in 0..n {
        let d = &mut dst[i as usize % ctx.bulk_depth.max(1)];
        d.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&d[0]);
    }
    (n * BULK_BYTES as u64) as f64 / t0.elapsed().as_nanos() as f64
}
