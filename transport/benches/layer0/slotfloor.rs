//! The slot floor (diagnostic): the ring's slot protocol with nothing else around it.
//!
//! Two arrays of 1024 slots (ping, pong), laid out like ring slots (layout version 3): a
//! payload of `W` words, then a stamp, the stride rounded up to 64 bytes. The writer stores the
//! payload, then the stamp (`Release`). The reader spins on the stamp (`Acquire`), then copies
//! the payload out. There are no cursors, no gating and no prefetch. The rows:
//!
//! * `floor_slot56` — `W = 7`: stamp and payload fill one line. The gap between this row and
//!   `floor` is what putting a payload beside the stamp costs. The gap between `pingpong_56` and
//!   this row is what the ring code adds.
//! * `floor_slot64` — `W = 8`: two lines per slot, as a 64-byte event has (the payload's line,
//!   then the stamp's). The payload's line is fetched only after the stamp was seen.

use crate::clock::{time_trips, Clock, Stats};
use crate::proc::{BenchResult, Names, Peer};
use crate::spin::spin_until;
use crate::Plan;
use myelon::backend::{Region, RingBackend, ShmBackend, ShmRegion};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Value that tells the peer to exit.
const STOP: u64 = u64::MAX;
/// Slots per direction (as the ring ping-pong's capacity; a power of two).
const SLOTS: usize = 1024;

/// One slot: the payload, then the stamp (as a ring slot).
#[repr(C)]
struct RawSlot<const W: usize> {
    payload: UnsafeCell<[u64; W]>,
    stamp: AtomicU64,
}

/// Bytes between two slots: the slot rounded up to whole 64-byte lines.
const fn stride<const W: usize>() -> usize {
    std::mem::size_of::<RawSlot<W>>().div_ceil(64) * 64
}

/// Role name of the peer for `W` payload words.
pub fn role<const W: usize>() -> String {
    format!("floor-slot-{}", 8 * W)
}

/// Ping slots then pong slots.
type Slots<'a, const W: usize> = (Vec<&'a RawSlot<W>>, Vec<&'a RawSlot<W>>);

fn slots<const W: usize>(region: &ShmRegion) -> BenchResult<Slots<'_, W>> {
    if region.len() < 2 * SLOTS * stride::<W>() {
        return Err("slot floor region too small".into());
    }
    let slot = |k: usize| {
        // Bounds: `k < 2 * SLOTS` and the region holds `2 * SLOTS * stride` bytes (checked); the
        // base is page-aligned and the stride a multiple of 64. Zero bytes are a valid `RawSlot`.
        // A payload is written by its direction's owner before the `Release` stamp store, read
        // only after the stamp was acquired, and rewritten only after a full round trip.
        // SAFETY: in bounds and aligned, valid for any bytes, accesses ordered as above.
        unsafe { &*(region.as_ptr().add(k * stride::<W>()) as *const RawSlot<W>) }
    };
    Ok((
        (0..SLOTS).map(slot).collect(),
        (SLOTS..2 * SLOTS).map(slot).collect(),
    ))
}

#[inline(always)]
fn send<const W: usize>(slot: &RawSlot<W>, stamp: u64, payload: &[u64; W]) {
    // SAFETY: this side owns the direction and the reader answered this slot's previous use a
    // full round trip ago (see `slots`), so nobody reads the payload now.
    unsafe { slot.payload.get().write(*payload) };
    slot.stamp.store(stamp, Ordering::Release);
}

/// The payload of a slot whose stamp was just acquired.
#[inline(always)]
fn payload<const W: usize>(slot: &RawSlot<W>) -> [u64; W] {
    // SAFETY: the caller acquired the stamp, so the writer's payload store happened-before this
    // read, and the writer does not touch the slot again before we answer (see `slots`).
    unsafe { slot.payload.get().read() }
}

/// Parent side: returns the round-trip statistics.
pub fn run<const W: usize>(clock: &Clock, plan: &Plan, names: &mut Names) -> BenchResult<Stats> {
    let name = names.fresh("fslot");
    let region = ShmBackend.create(&name, 2 * SLOTS * stride::<W>())?;
    // Mark the region finished (mode 0600) so the peer may open it.
    region.finish(0o600)?;
    let (ping, pong) = slots::<W>(&region)?;
    let mut peer = Peer::spawn(&role::<W>(), plan.cpus.1, &[name])?;
    let ticks = time_trips(clock, plan.warmup, plan.iters, |i| {
        let k = i as usize % SLOTS;
        let mut out = [0u64; W];
        for (j, w) in out.iter_mut().enumerate() {
            *w = i + j as u64;
        }
        send(ping[k], i + 1, &out);
        let back = spin_until(
            || Ok((pong[k].stamp.load(Ordering::Acquire) == i + 1).then(|| payload(pong[k]))),
            || peer.check_alive(),
        )?;
        if back[0] != i || back[W - 1] != i + W as u64 - 1 {
            return Err(format!("slot floor: round trip {i} came back as {}", back[0]).into());
        }
        Ok(())
    })?;
    let k = (plan.warmup + plan.iters) as usize % SLOTS;
    send(ping[k], STOP, &[0; W]);
    peer.finish(plan.peer_timeout)?;
    Ok(Stats::from_ticks(clock, &ticks))
}

/// Peer side: echoes every ping payload into the pong slot until `STOP`.
pub fn peer<const W: usize>(args: &[String]) -> BenchResult<()> {
    let [name] = args else {
        return Err("slot floor peer: expected <name>".into());
    };
    let region = ShmBackend.open(name)?;
    let (ping, pong) = slots::<W>(&region)?;
    for i in 0u64.. {
        let k = i as usize % SLOTS;
        let got = spin_until(
            || {
                let s = ping[k].stamp.load(Ordering::Acquire);
                Ok(match s {
                    STOP => Some(None),
                    _ if s == i + 1 => Some(Some(payload(ping[k]))),
                    _ => None,
                })
            },
            || Ok(()),
        )?;
        match got {
            Some(p) => send(pong[k], i + 1, &p),
            None => return Ok(()),
        }
    }
    Ok(())
}
