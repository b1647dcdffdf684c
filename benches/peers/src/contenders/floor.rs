//! The floors, measured in the same run as the contenders:
//!
//! * ping-pong: a cache line handed back and forth between the two pinned processes through a
//!   shared mapping. A stores `2i + 1` into a word, B sees it and stores `2i + 2`, A sees that.
//!   Round trip `i` uses word `i % 1024`, 128 bytes apart (as a ring uses its next slot). The
//!   message size does not matter to it: it is the floor of every ping-pong row.
//! * the message floor (`floor_msg`, ping-pong 64 B and 1 KiB; called `floor_msg64` in the
//!   results up to s22, when it had 64 B only): what any transport that keeps the payload
//!   whole and signals it with a separate word must move. Per direction a mapping of 1024
//!   slots: the payload's lines (1 or 16), then a flag line. The sender writes the payload (as
//!   every contender: a copy of the source with the trip number in its first and last word),
//!   then stores the flag; the receiver spins on the flag — at 64 B prefetching the payload
//!   line while it waits (without that prefetch this floor is slower) — then copies the payload
//!   out; the peer echoes it into the other direction's slot. No cursor, no gating, no check
//!   for a dead peer: 2 lines per half trip at 64 B (where the line floor moves one), 17 at
//!   1 KiB, as a myelon slot (16 lines of event, the stamp's line) or the published crate
//!   (16 lines of event, its cursor's line).
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

/// Words of the 64-byte payload of `floor_msg` (one line; the slot's flag is on the next line).
const MSG_WORDS: usize = 8;
/// Words of the 1 KiB payload of `floor_msg` (16 lines; the flag is on the 17th).
const KIB_WORDS: usize = 128;

/// Bytes between two slots of a `floor_msg` mapping whose payload is `w` words: the payload
/// lines, then the flag's line.
const fn msg_stride(w: usize) -> usize {
    w * 8 + 64
}

/// The payload and the flag word of slot `k % LINES` of `region`, whose payloads are `w` words
/// (slots [`msg_stride`]`(w)` bytes apart).
fn msg_slot(region: &ShmRegion, w: usize, k: usize) -> (*mut u64, &AtomicU64) {
    let base = region.as_ptr();
    // SAFETY: in bounds (`msg_region` checked `LINES * msg_stride(w)` bytes); page-aligned base
    // and a stride of whole lines, so the flag is 8-aligned; zeroed memory is a valid
    // `AtomicU64`, only used atomically, not outliving `region`.
    unsafe {
        let slot = base.add((k % LINES) * msg_stride(w));
        (slot as *mut u64, &*(slot.add(w * 8) as *const AtomicU64))
    }
}

/// Hints the payload line of `p` into the cache (a prefetch reads nothing architecturally).
#[inline(always)]
fn prefetch(p: *const u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` never faults and reads nothing architecturally; SSE is baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Copies message `src` into the payload `dst`. One line: word by word, with volatile stores
/// (as the 64-byte floor always did); larger: one `memcpy`, as the contenders copy. The peer
/// reads it only after the flag's `Release`/`Acquire` pair.
#[inline(always)]
fn put<const W: usize>(dst: *mut u64, src: &[u64; W]) {
    if W == MSG_WORDS {
        for (k, w) in src.iter().enumerate() {
            // SAFETY: `dst` is a payload of `W` words (`msg_slot`), written only by this side
            // while the peer waits for the flag.
            unsafe { dst.add(k).write_volatile(*w) }
        }
    } else {
        // SAFETY: as above; `src` is a local array, so the two do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, W) }
    }
}

/// Reads the payload `src` (as [`put`] writes it).
#[inline(always)]
fn get<const W: usize>(src: *const u64) -> [u64; W] {
    let mut m = [0u64; W];
    if W == MSG_WORDS {
        for (k, w) in m.iter_mut().enumerate() {
            // SAFETY: `src` is a payload of `W` words (`msg_slot`), written by the peer before
            // the flag this side loaded with `Acquire`.
            *w = unsafe { src.add(k).read_volatile() };
        }
    } else {
        // SAFETY: as above; `m` is a local array.
        unsafe { std::ptr::copy_nonoverlapping(src, m.as_mut_ptr(), W) }
    }
    m
}

fn msg_region(name: &str, w: usize, create: bool) -> BenchResult<ShmRegion> {
    let len = LINES * msg_stride(w);
    let region = if create {
        let r = ShmBackend.create(name, len)?;
        r.finish(0o600)?;
        r
    } else {
        ShmBackend.open(name)?
    };
    if region.len() < len {
        return Err("floor_msg: region too small".into());
    }
    Ok(region)
}

pub fn run_msg(ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
    match work {
        Work::PingPong { size: 64 } => run_msg_sized::<MSG_WORDS>(ctx, work),
        Work::PingPong { size: 1024 } => run_msg_sized::<KIB_WORDS>(ctx, work),
        _ => Err(format!("floor_msg: unsupported {work:?}").into()),
    }
}

pub fn peer_msg(work: Work, args: &[String]) -> BenchResult<()> {
    match work {
        Work::PingPong { size: 64 } => peer_msg_sized::<MSG_WORDS>(args),
        Work::PingPong { size: 1024 } => peer_msg_sized::<KIB_WORDS>(args),
        _ => Err(format!("floor_msg: unsupported {work:?}").into()),
    }
}

/// Whether the receiver prefetches the payload while it spins on the flag: for one line, as
/// myelon's consumer does for slots of up to two lines (without it the 64-byte floor is
/// slower); not for 16, which the sender is writing meanwhile (myelon does not either).
const fn spin_prefetch(w: usize) -> bool {
    w == MSG_WORDS
}

fn run_msg_sized<const W: usize>(ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
    let (ping, pong) = (fresh_name("g"), fresh_name("h"));
    let out = msg_region(&ping, W, true)?;
    let back = match msg_region(&pong, W, true) {
        Ok(r) => r,
        Err(e) => {
            let _ = ShmBackend.remove(&ping);
            return Err(e);
        }
    };
    let (warmup, iters) = ctx.trips(W * 8);
    let mut args = work.args();
    args.extend([ping.clone(), pong.clone(), (warmup + iters).to_string()]);
    let result = (|| {
        let mut peer = Peer::spawn("floor_msg", ctx.cpus.1, &args)?;
        let mut src = [0u64; W];
        src.copy_from_slice(&crate::msg::source(W));
        let ticks = time_trips(&ctx.clock, warmup, iters, |i| {
            let k = i as usize % LINES;
            let (payload, flag) = msg_slot(&out, W, k);
            crate::msg::stamp(&mut src, i);
            put(payload, &src);
            flag.store(i + 1, Ordering::Release);
            let (rpayload, rflag) = msg_slot(&back, W, k);
            spin_until(
                || {
                    if rflag.load(Ordering::Acquire) != i + 1 {
                        if spin_prefetch(W) {
                            prefetch(rpayload);
                        }
                        return Ok(None);
                    }
                    if crate::msg::carries(&get::<W>(rpayload), i) {
                        Ok(Some(()))
                    } else {
                        Err(format!("floor_msg: trip {i} came back wrong").into())
                    }
                },
                || peer.check_alive(),
            )
        });
        let finished = peer.finish(ctx.peer_timeout);
        let ticks = ticks?;
        finished?;
        Ok(Outcome::Latency(
            ticks.iter().map(|t| ctx.clock.ns(*t)).collect(),
        ))
    })();
    let _ = ShmBackend.remove(&ping);
    let _ = ShmBackend.remove(&pong);
    result
}

fn peer_msg_sized<const W: usize>(args: &[String]) -> BenchResult<()> {
    let (ping, pong, n): (String, String, u64) = (arg(args, 0)?, arg(args, 1)?, arg(args, 2)?);
    let inbox = msg_region(&ping, W, false)?;
    let outbox = msg_region(&pong, W, false)?;
    for i in 0..n {
        let k = i as usize % LINES;
        let (payload, flag) = msg_slot(&inbox, W, k);
        let m = spin_until(
            || {
                if flag.load(Ordering::Acquire) != i + 1 {
                    if spin_prefetch(W) {
                        prefetch(payload);
                    }
                    return Ok(None);
                }
                Ok(Some(get::<W>(payload)))
            },
            || Ok(()),
        )?;
        let (rpayload, rflag) = msg_slot(&outbox, W, k);
        put(rpayload, &m);
        rflag.store(i + 1, Ordering::Release);
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
