//! The floor: what two processes pay to hand a cache line back and forth, with no ring.
//!
//! * `floor` — A stores `n` into a cache-line-aligned `AtomicU64`, B sees `n` and stores
//!   `n + 1`, A sees `n + 1`. One line crosses per hop. Successive round trips use successive
//!   words of a 1024-word array (128 bytes apart), as the ring uses successive slots.
//! * `floor_1line` (reference) — the same with a single word.
//! * `floor_slot64` (diagnostic) — the ring's slot protocol stripped to the bone, with the
//!   ring's layout: a stamp at offset 0 and a 64-byte payload at offset 8 in a 128-byte stride,
//!   two slot arrays (ping, pong) of 1024 slots. Writer: payload, then stamp (`Release`);
//!   reader: stamp (`Acquire`), then payload. No cursors, no gating. It isolates what the slot
//!   layout alone costs (two lines per hop) from what the ring code adds.

use crate::clock::{time_trips, Clock, Stats};
use crate::proc::{BenchResult, Names, Peer};
use crate::spin::spin_until;
use crate::Plan;
use myelon::backend::{Region, RingBackend, ShmBackend, ShmRegion};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Value that tells the peer to exit.
const STOP: u64 = u64::MAX;
/// Distance between two words: each has its own pair of 64-byte lines.
const WORD_STRIDE: usize = 128;
/// Lines cycled by `floor` (as the ring ping-pong's capacity) and by `floor_1line`.
pub const FLOOR_LINES: usize = 1024;
/// Slots per direction of the slot floor (as the ring ping-pong's capacity).
const SLOTS: usize = 1024;

fn region_len(lines: usize) -> usize {
    (lines * WORD_STRIDE).max(4096)
}

fn words(region: &ShmRegion, lines: usize) -> BenchResult<Vec<&AtomicU64>> {
    if region.len() < lines * WORD_STRIDE {
        return Err("floor region too small".into());
    }
    Ok((0..lines)
        .map(|k| {
            // SAFETY: `k * WORD_STRIDE + 8 <= lines * WORD_STRIDE <= region.len()` (checked), and
            // the page-aligned base keeps every word 128-byte aligned; the bytes were
            // zero-filled by `create`, a valid `AtomicU64`, and are only accessed atomically.
            // The references live no longer than the region borrow.
            unsafe { &*(region.as_ptr().add(k * WORD_STRIDE) as *const AtomicU64) }
        })
        .collect())
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
    let name = names.fresh("floor");
    let region = ShmBackend.create(&name, region_len(lines))?;
    let w = words(&region, lines)?;
    let mut peer = Peer::spawn(&role(lines), plan.cpus.1, &[name])?;
    let ticks = time_trips(clock, plan.warmup, plan.iters, |i| {
        let (word, v) = (w[i as usize % lines], 2 * i + 1);
        word.store(v, Ordering::Release);
        spin_until(
            || Ok((word.load(Ordering::Acquire) == v + 1).then_some(())),
            || peer.check_alive(),
        )
    })?;
    w[(plan.warmup + plan.iters) as usize % lines].store(STOP, Ordering::Release);
    peer.finish(plan.peer_timeout)?;
    Ok(Stats::from_ticks(clock, &ticks))
}

/// Peer side of the floor: answers `2i + 1` with `2i + 2` on word `i % lines` until `STOP`.
pub fn peer(args: &[String], lines: usize) -> BenchResult<()> {
    let [name] = args else {
        return Err("floor peer: expected <name>".into());
    };
    let region = ShmBackend.open(name)?;
    let w = words(&region, lines)?;
    for i in 0u64.. {
        let (word, v) = (w[i as usize % lines], 2 * i + 1);
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

/// One slot of the slot floor, laid out as a ring slot of a 64-byte event.
#[repr(C, align(128))]
struct RawSlot {
    stamp: AtomicU64,
    payload: UnsafeCell<[u64; 8]>,
}

const _: () = assert!(std::mem::size_of::<RawSlot>() == 128);

/// Ping slots then pong slots.
fn slots(region: &ShmRegion) -> BenchResult<(&[RawSlot], &[RawSlot])> {
    if region.len() < 2 * SLOTS * std::mem::size_of::<RawSlot>() {
        return Err("slot floor region too small".into());
    }
    // SAFETY: the region holds 2 * SLOTS slots (checked) from a page-aligned base (so 128-byte
    // aligned); zero bytes are a valid `RawSlot` (atomic zero, payload of zeros). Payloads are
    // written only by the side that owns the direction, before it stores the stamp (`Release`),
    // and read only after the stamp was acquired; a slot is reused only after a full round
    // trip through the other direction.
    let all = unsafe { std::slice::from_raw_parts(region.as_ptr() as *const RawSlot, 2 * SLOTS) };
    Ok(all.split_at(SLOTS))
}

#[inline(always)]
fn send(slot: &RawSlot, stamp: u64, payload: &[u64; 8]) {
    // SAFETY: this side owns the direction and the reader released this slot one round trip
    // ago (see `slots`).
    unsafe { slot.payload.get().write(*payload) };
    slot.stamp.store(stamp, Ordering::Release);
}

/// The payload of a slot whose stamp was just acquired.
#[inline(always)]
fn payload(slot: &RawSlot) -> [u64; 8] {
    // SAFETY: the caller acquired the stamp, so the writer's payload store happened-before this
    // read, and the writer does not touch the slot again before we answer (see `slots`).
    unsafe { slot.payload.get().read() }
}

#[inline(always)]
fn recv(slot: &RawSlot, stamp: u64) -> Option<[u64; 8]> {
    (slot.stamp.load(Ordering::Acquire) == stamp).then(|| payload(slot))
}

/// Parent side of `floor_slot64`.
pub fn run_slots(clock: &Clock, plan: &Plan, names: &mut Names) -> BenchResult<Stats> {
    let name = names.fresh("fslot");
    let region = ShmBackend.create(&name, 2 * SLOTS * std::mem::size_of::<RawSlot>())?;
    let (ping, pong) = slots(&region)?;
    let mut peer = Peer::spawn("floor-slot", plan.cpus.1, &[name])?;
    let ticks = time_trips(clock, plan.warmup, plan.iters, |i| {
        let k = i as usize % SLOTS;
        let mut payload = [0u64; 8];
        for (j, w) in payload.iter_mut().enumerate() {
            *w = i + j as u64;
        }
        send(&ping[k], i + 1, &payload);
        let back = spin_until(|| Ok(recv(&pong[k], i + 1)), || peer.check_alive())?;
        if back[0] != i || back[7] != i + 7 {
            return Err(format!("slot floor: round trip {i} came back as {}", back[0]).into());
        }
        Ok(())
    })?;
    let k = (plan.warmup + plan.iters) as usize % SLOTS;
    send(&ping[k], STOP, &[0; 8]);
    peer.finish(plan.peer_timeout)?;
    Ok(Stats::from_ticks(clock, &ticks))
}

/// Peer side of `floor_slot64`: echoes every ping payload into the pong slot.
pub fn peer_slots(args: &[String]) -> BenchResult<()> {
    let [name] = args else {
        return Err("slot floor peer: expected <name>".into());
    };
    let region = ShmBackend.open(name)?;
    let (ping, pong) = slots(&region)?;
    for i in 0u64.. {
        let k = i as usize % SLOTS;
        let payload = spin_until(
            || {
                let s = ping[k].stamp.load(Ordering::Acquire);
                Ok(match s {
                    STOP => Some(None),
                    _ if s == i + 1 => Some(Some(payload(&ping[k]))),
                    _ => None,
                })
            },
            || Ok(()),
        )?;
        match payload {
            Some(p) => send(&pong[k], i + 1, &p),
            None => return Ok(()),
        }
    }
    Ok(())
}
