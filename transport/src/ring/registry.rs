//! The consumer table: registration, rejoin, reservations and the producer's gating minimum.
//!
//! Registration changes happen under a registry lock: a word in the header holding the process
//! token of its holder, and the kernel-released lock slot [`REGISTRY_LOCK_SLOT`] that the holder
//! takes first and keeps while it holds the word. The producer's publish path never takes the
//! lock: it only reads entry states and cursors.
//!
//! **Death is proven, not guessed.** Every attached entry (`JOINING` or `ACTIVE`) is backed by
//! the lock slot [`entry_lock_slot`] of its index, taken by the consumer's handle *before* the
//! entry is written and held until it detaches or its process ends; the kernel releases it
//! however the process ends (SIGKILL included) and the answer is the same in every PID
//! namespace that shares the object. So "the slot is free" proves the consumer is gone, "held"
//! proves it lives, and a probe that fails is `Unknown`, which is never taken for dead. Pids and
//! start times (`owner_token`) are kept for display only. Consequences:
//!
//! * a same-id rejoin takes over an entry only when its slot is free (a live consumer in another
//!   container keeps its id: `ConsumerIdInUse`);
//! * a dead holder of the registry lock is detected by its free slot, not by its pid;
//! * an anonymous consumer (no id, nobody can rejoin it) whose slot is free stops gating: the
//!   producer frees its entry when it finds the ring full ([`reap_dead_anonymous`]: in a
//!   blocking wait past its spin phase, and once in a while when a non-blocking call returns
//!   `RingBufferFull`, so a producer that only tries gets past it too); it never keeps a
//!   reservation either (`detach` frees it whatever `keep_registration_on_drop` said).
//!
//! Whoever touches an attached entry's slot does so under the registry lock (registration,
//! detach, reaping), so a registrant never sees a live consumer's entry half-written.
//!
//! **Late-join safety.** A fresh consumer publishes its entry (`state = JOINING`, `SeqCst`), then
//! issues a `SeqCst` fence and reads the producer cursor `c1`; it starts at `c1 + 1`. The
//! producer issues a `SeqCst` fence before every gating scan. Either the scan sees the entry,
//! or the scan's fence precedes the consumer's fence, in which case `c1` is at least the
//! producer's cursor at scan time, and the limit computed by that scan (at most
//! `cursor + capacity`) lets the producer overwrite slots only up to sequence `c1`. So the first
//! slot the consumer reads is never overwritten behind its back.
//!
//! The argument needs the cursor the consumer reads to cover everything the scan's limit was
//! computed from: **the producer announces every stamped slot before it rescans** (the top of
//! `Producer::refresh_limit`). A batch (`publish_batch`) stores its cursor once at the end, so
//! without that announcement a scan inside the batch computes `limit = stamped + capacity`
//! while consumers still read the older announced cursor `c1 < stamped`; one registering then
//! starts at `c1 + 1`, a slot the rest of the batch overwrites (found by review; the planted
//! bug `batch_late_announce` keeps the old order, and `tests/batch_join.rs` reproduces it).
//! The same invariant bounds a released cursor by `announced + capacity`, which is what
//! [`take_over`] checks when a consumer rejoins.
//!
//! **Dying while joining.** The entry gates from the `JOINING` store on, but its cursor is
//! final only when the consumer stores `c1` and then `ACTIVE`. A consumer killed in between
//! leaves a stale cursor that no rejoin may resume from (the producer may be far past it, and
//! `take_over` would rightly call it corrupt — found by the public-API simulation: a crash at
//! that point made the id unusable and wedged the producer). So a `JOINING` entry with a dead
//! owner is registered afresh (a new `c0`/`c1`, at the live tail) by the next consumer of its
//! id; until then it gates, as any dead consumer with an id does.

use crate::backend::{ProcessState, Region, RingBackend, SchedPoint};
use crate::ring::error::{MultiProcessError, MultiProcessResult};
use crate::ring::event::ShmEvent;
use crate::ring::layout::{
    entry_lock_slot, ConsumerEntry, Segment, CONSUMER_ID_MAX_LEN, ENTRY_ACTIVE, ENTRY_FREE,
    ENTRY_JOINING, ENTRY_RESERVED, ENTRY_RESERVED_PREFIX, FLAG_ANONYMOUS, REGISTRY_LOCK_SLOT,
};
use crate::ring::sync::{fence, spin_hint, Ordering};
use std::time::Duration;

/// Checks a consumer id (or discovery prefix): 1..=48 bytes, no NUL.
pub(crate) fn validate_id(id: &str) -> MultiProcessResult<()> {
    let reason = if id.is_empty() {
        "empty"
    } else if id.len() > CONSUMER_ID_MAX_LEN {
        "longer than 48 bytes"
    } else if id.contains('\0') {
        "contains NUL"
    } else {
        return Ok(());
    };
    Err(MultiProcessError::InvalidConsumerId {
        id: id.to_string(),
        reason,
    })
}

/// Whether `state` makes an entry gate the producer.
#[inline]
pub(crate) fn is_gating(state: u32) -> bool {
    matches!(
        state,
        ENTRY_ACTIVE | ENTRY_JOINING | ENTRY_RESERVED | ENTRY_RESERVED_PREFIX
    )
}

fn id_equals(entry: &ConsumerEntry, id: &[u8]) -> bool {
    entry.read_id().is_some_and(|(buf, len)| &buf[..len] == id)
}

fn id_has_prefix(entry: &ConsumerEntry, id: &[u8]) -> bool {
    entry
        .read_id()
        .is_some_and(|(buf, len)| id.starts_with(&buf[..len]))
}

/// The id stored in an entry, lossily decoded (for diagnostics and listings).
pub(crate) fn entry_id(entry: &ConsumerEntry) -> String {
    match entry.read_id() {
        Some((buf, len)) => String::from_utf8_lossy(&buf[..len]).into_owned(),
        None => String::from("<corrupt id>"),
    }
}

/// The highest producer cursor a real ring can reach (2^61 events: centuries at a billion
/// events a second). Anything above is corrupt; bounding it leaves headroom for every
/// `cursor + capacity + 1` computed from it, so no value read from shared memory can overflow.
pub(crate) const MAX_CURSOR: i64 = 1 << 61;

/// Reads the producer cursor and validates it (`-1..=MAX_CURSOR`).
pub(crate) fn producer_cursor<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    order: Ordering,
) -> MultiProcessResult<i64> {
    let c = seg.header().producer.value.load(order);
    if !(-1..=MAX_CURSOR).contains(&c) {
        return Err(MultiProcessError::Corrupt {
            what: "producer cursor",
            value: c,
        });
    }
    Ok(c)
}

/// Sleep between attempts once spinning on a held registry lock gave nothing.
const LOCK_BACKOFF: Duration = Duration::from_micros(50);

/// Holds the registry lock; releases it on drop (also when unwinding).
pub(crate) struct RegistryGuard<'a, R: Region> {
    word: &'a crate::ring::sync::AtomicU64,
    region: &'a R,
    token: u64,
}

impl<R: Region> Drop for RegistryGuard<'_, R> {
    fn drop(&mut self) {
        let _ = self
            .word
            .compare_exchange(self.token, 0, Ordering::Release, Ordering::Relaxed);
        self.region.unlock_slot(REGISTRY_LOCK_SLOT);
    }
}

/// Takes the registry lock; fails with `RegistryBusy` if a live holder keeps it past `timeout`.
///
/// The kernel-released slot decides: whoever holds [`REGISTRY_LOCK_SLOT`] holds the lock. A
/// word still set when we get the slot was left by a holder that died inside its critical
/// section (it would still hold the slot otherwise), so we take it over.
pub(crate) fn lock<'a, E: ShmEvent, B: RingBackend>(
    seg: &'a Segment<E, B>,
    backend: &B,
    timeout: Duration,
) -> MultiProcessResult<RegistryGuard<'a, B::Region>> {
    let word = &seg.header().registry.lock;
    let region = seg.region();
    let token = backend.process_token();
    let start = backend.now();
    let mut spins = 0u32;
    loop {
        backend.sched_point(SchedPoint::RegistryLock, 0);
        let got = match region.try_lock_slot(REGISTRY_LOCK_SLOT) {
            Ok(got) => got,
            Err(e) => {
                tracing::warn!(error = %e, "the registry lock slot cannot be taken");
                false
            }
        };
        // Mutant: the lock is taken whoever holds it.
        #[cfg(myelon_mutant = "lock_takeover_live")]
        let got = got || true;
        if got {
            let holder = word.swap(token, Ordering::Acquire);
            if holder != 0 && holder != token {
                tracing::warn!(holder, "taking over the registry lock of a dead process");
            }
            return Ok(RegistryGuard {
                word,
                region,
                token,
            });
        }
        let waited = backend.now().saturating_sub(start);
        if waited >= timeout {
            return Err(MultiProcessError::RegistryBusy { waited });
        }
        spins += 1;
        if spins < backend.spin_rounds(64) {
            spin_hint();
        } else {
            backend.sleep(LOCK_BACKOFF);
        }
    }
}

/// Whether the consumer attached to entry `index` is alive, as the kernel proves it (its lock
/// slot is held by another handle than `seg`'s). `Unknown` counts as alive.
pub(crate) fn holder_alive<E: ShmEvent, B: RingBackend>(seg: &Segment<E, B>, index: usize) -> bool {
    seg.region().slot_state(entry_lock_slot(index)) != ProcessState::Dead
}

/// Whether the consumer attached to entry `index` is provably dead (its lock slot is free).
pub(crate) fn holder_dead<E: ShmEvent, B: RingBackend>(seg: &Segment<E, B>, index: usize) -> bool {
    !holder_alive(seg, index)
}

/// Takes entry `index`'s lock slot for this handle; a live holder means the id is in use.
fn take_entry_slot<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    index: usize,
    id: &[u8],
) -> MultiProcessResult<()> {
    match seg.region().try_lock_slot(entry_lock_slot(index)) {
        Ok(true) => Ok(()),
        Ok(false) => Err(MultiProcessError::ConsumerIdInUse {
            id: String::from_utf8_lossy(id).into_owned(),
        }),
        Err(e) => Err(MultiProcessError::Backend(e)),
    }
}

/// Writes reservations for expected consumers. Called by the creator before `READY`.
pub(crate) fn reserve<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    ids: &[String],
    prefix: Option<(usize, &str)>,
) -> MultiProcessResult<()> {
    let prefixes = prefix.map_or(0, |(n, _)| n);
    let max = seg.geometry().max_consumers;
    if ids.len() + prefixes > max {
        return Err(MultiProcessError::TooManyConsumers { max });
    }
    let mut slots = seg.entries();
    for id in ids {
        validate_id(id)?;
        let e = slots
            .next()
            .ok_or(MultiProcessError::TooManyConsumers { max })?;
        e.write_id(id.as_bytes());
        e.state.store(ENTRY_RESERVED, Ordering::Release);
    }
    if let Some((n, p)) = prefix {
        validate_id(p)?;
        for _ in 0..n {
            let e = slots
                .next()
                .ok_or(MultiProcessError::TooManyConsumers { max })?;
            e.write_id(p.as_bytes());
            e.state.store(ENTRY_RESERVED_PREFIX, Ordering::Release);
        }
    }
    Ok(())
}

/// Ids (or `prefix*`) of reservations no consumer has claimed yet.
pub(crate) fn unclaimed<E: ShmEvent, B: RingBackend>(seg: &Segment<E, B>) -> Vec<String> {
    seg.entries()
        .filter_map(|e| match e.state.load(Ordering::Acquire) {
            ENTRY_RESERVED => Some(entry_id(e)),
            ENTRY_RESERVED_PREFIX => Some(format!("{}*", entry_id(e))),
            _ => None,
        })
        .collect()
}

/// Where a registered consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Registration {
    pub(crate) index: usize,
    /// First sequence this consumer will read.
    pub(crate) start: i64,
    pub(crate) incarnation: u64,
    /// Whether the consumer resumed an existing entry (rejoin or reservation).
    pub(crate) resumed: bool,
}

fn take_over<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    backend: &B,
    index: usize,
    token: u64,
) -> MultiProcessResult<Registration> {
    let e = seg.entry(index);
    backend.sched_point(SchedPoint::JoinCursor, 0);
    let published = producer_cursor(seg, Ordering::Acquire)?;
    let id = e
        .read_id()
        .map(|(b, l)| b[..l].to_vec())
        .unwrap_or_default();
    let cursor = e.cursor.value.load(Ordering::Acquire);
    let capacity = seg.geometry().capacity as i64;
    let lowest = published.saturating_sub(capacity).max(-1);
    // A consumer reads a slot as soon as its stamp is stored, before the producer announces
    // the cursor, so a released cursor may run ahead of `published` by up to one claim.
    if cursor < lowest || cursor > published.saturating_add(capacity) {
        return Err(MultiProcessError::Corrupt {
            what: "consumer cursor",
            value: cursor,
        });
    }
    take_entry_slot(seg, index, &id)?;
    backend.sched_point(SchedPoint::EntryWrite, index as i64);
    e.owner_token.store(token, Ordering::Relaxed);
    e.flags.store(0, Ordering::Relaxed);
    let incarnation = e.incarnation.fetch_add(1, Ordering::Relaxed) + 1;
    clear_stale_sleeper(seg, e);
    e.state.store(ENTRY_ACTIVE, Ordering::SeqCst);
    // Mutant: a rejoining consumer skips the first event it had not released.
    #[cfg(myelon_mutant = "rejoin_off_by_one")]
    let cursor = cursor + 1;
    Ok(Registration {
        index,
        start: cursor + 1,
        incarnation,
        resumed: true,
    })
}

fn claim_free<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    backend: &B,
    index: usize,
    id: &[u8],
    token: u64,
    flags: u32,
) -> MultiProcessResult<Registration> {
    let e = seg.entry(index);
    backend.sched_point(SchedPoint::JoinCursor, 0);
    let c0 = producer_cursor(seg, Ordering::Acquire)?;
    // Held from before the entry gates until the consumer detaches or dies (module docs).
    take_entry_slot(seg, index, id)?;
    backend.sched_point(SchedPoint::EntryWrite, index as i64);
    e.write_id(id);
    e.owner_token.store(token, Ordering::Relaxed);
    e.flags.store(flags, Ordering::Relaxed);
    e.cursor.value.store(c0, Ordering::Relaxed);
    let incarnation = e.incarnation.fetch_add(1, Ordering::Relaxed) + 1;
    clear_stale_sleeper(seg, e);
    // Gating from here on, but not resumable: the start cursor is not final until `ACTIVE`.
    e.state.store(ENTRY_JOINING, Ordering::SeqCst);
    // Pairs with the fence before the producer's gating scan (module docs).
    fence(Ordering::SeqCst);
    backend.sched_point(SchedPoint::JoinCursor, 0);
    let c1 = producer_cursor(seg, Ordering::SeqCst)?.max(c0);
    backend.sched_point(SchedPoint::EntryWrite, index as i64);
    e.cursor.value.store(c1, Ordering::Release);
    backend.sched_point(SchedPoint::EntryWrite, index as i64);
    e.state.store(ENTRY_ACTIVE, Ordering::Release);
    crate::observability::reset_entry(e, c1 + 1);
    Ok(Registration {
        index,
        start: c1 + 1,
        incarnation,
        resumed: false,
    })
}

/// Takes back the `Block` registration of the entry's previous (dead) incarnation, if it left
/// one: a consumer SIGKILLed while registered never decrements `sleepers_registered`, and every
/// later publish would pay a fence and a futex wake for it.
///
/// Why here: this runs under the registry lock exactly when an entry is reused — a same-id
/// rejoin (`take_over`, owner proven dead or a reservation) or a fresh claim (`claim_free`, a
/// free entry or a dead half-registered one) — and after the incarnation was bumped, so the old
/// handle (if any process still held it) no longer touches the flag (`Consumer::mark_sleeper`
/// checks the incarnation). A dead consumer that never comes back keeps its registration, but
/// its entry keeps gating too: the producer then stalls on it (and liveness reports it), which
/// costs more than the wake. The new incarnation registers afresh if it waits with `Block`.
fn clear_stale_sleeper<E: ShmEvent, B: RingBackend>(seg: &Segment<E, B>, e: &ConsumerEntry) {
    if e.sleeper.swap(0, Ordering::SeqCst) != 0 {
        seg.header()
            .consumer_wake
            .sleepers_registered
            .fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether entry `e` answers to `id` for a rejoin: same id, and not an anonymous entry (whose
/// generated label nobody rejoins; a user id that happens to equal it must not resume it).
fn rejoinable(e: &ConsumerEntry, id: &[u8]) -> bool {
    e.flags.load(Ordering::Relaxed) & FLAG_ANONYMOUS == 0 && id_equals(e, id)
}

/// Registers consumer `id`: resumes its entry if it exists and its consumer is provably dead
/// (or it is a reservation), claims a matching prefix reservation, or takes a free entry at the
/// live tail. An `anonymous` consumer (no id given; `id` is a generated label) always takes a
/// free entry, flagged so that it stops gating once its consumer is dead. Waits for the
/// registry lock as [`attach_lock_timeout`] says.
pub(crate) fn register<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    backend: &B,
    id: &str,
    anonymous: bool,
    attach_timeout: Duration,
) -> MultiProcessResult<Registration> {
    validate_id(id)?;
    let _guard = lock(seg, backend, attach_lock_timeout(backend, attach_timeout))?;
    let token = backend.process_token();
    let idb = id.as_bytes();
    let n = seg.geometry().max_consumers;
    if anonymous {
        return claim_first_free(seg, backend, idb, token, FLAG_ANONYMOUS);
    }
    for i in 0..n {
        let e = seg.entry(i);
        let st = e.state.load(Ordering::Acquire);
        if st == ENTRY_JOINING && rejoinable(e, idb) {
            // A consumer of this id died while registering (it never read anything): register
            // afresh on its entry.
            if holder_alive(seg, i) {
                return Err(MultiProcessError::ConsumerIdInUse { id: id.into() });
            }
            // Mutant: the half-registered entry is resumed from its stale cursor.
            #[cfg(myelon_mutant = "joining_resumed")]
            let r = take_over(seg, backend, i, token)?;
            #[cfg(not(myelon_mutant = "joining_resumed"))]
            let r = claim_free(seg, backend, i, idb, token, 0)?;
            bump_generation(seg);
            return Ok(r);
        }
        if (st == ENTRY_ACTIVE || st == ENTRY_RESERVED) && rejoinable(e, idb) {
            if st == ENTRY_ACTIVE && holder_alive(seg, i) {
                return Err(MultiProcessError::ConsumerIdInUse { id: id.into() });
            }
            let r = take_over(seg, backend, i, token)?;
            bump_generation(seg);
            return Ok(r);
        }
    }
    // A discovery reservation: first one this id already half-claimed (a consumer of the id
    // died between writing its id into the entry and taking it over — found by the public-API
    // simulation: without this preference the id took a fresh prefix slot and orphaned that
    // one, which then gated the producer with nobody left to claim it), then any other.
    let prefixed = (0..n)
        .find(|&i| {
            let e = seg.entry(i);
            e.state.load(Ordering::Acquire) == ENTRY_RESERVED_PREFIX && id_equals(e, idb)
        })
        .or_else(|| {
            (0..n).find(|&i| {
                let e = seg.entry(i);
                e.state.load(Ordering::Acquire) == ENTRY_RESERVED_PREFIX && id_has_prefix(e, idb)
            })
        });
    if let Some(i) = prefixed {
        seg.entry(i).write_id(idb);
        let r = take_over(seg, backend, i, token)?;
        bump_generation(seg);
        return Ok(r);
    }
    claim_first_free(seg, backend, idb, token, 0)
}

/// Blocks until every reserved consumer (explicit id or discovery prefix) of `seg` has
/// attached, at most `timeout` (both producers' `wait_for_consumers`).
pub(crate) fn wait_for_consumers<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    backend: &B,
    timeout: Duration,
) -> MultiProcessResult<()> {
    let start = backend.now();
    loop {
        let missing = unclaimed(seg);
        if missing.is_empty() {
            return Ok(());
        }
        let waited = backend.now().saturating_sub(start);
        if waited >= timeout {
            return Err(MultiProcessError::ConsumersNotAttached { missing, waited });
        }
        backend.sleep(crate::ring::wait::default_discovery_poll_duration().min(timeout - waited));
    }
}

/// Claims the first free entry whose lock slot this handle can take. A free entry's slot is
/// held only in the instant between a detach and its handle's unlock, both under the registry
/// lock we hold, or by a consumer whose detach could not take the registry lock; such an entry
/// is skipped.
fn claim_first_free<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    backend: &B,
    idb: &[u8],
    token: u64,
    flags: u32,
) -> MultiProcessResult<Registration> {
    let n = seg.geometry().max_consumers;
    for i in 0..n {
        if seg.entry(i).state.load(Ordering::Acquire) == ENTRY_FREE {
            match claim_free(seg, backend, i, idb, token, flags) {
                Err(MultiProcessError::ConsumerIdInUse { .. }) => continue,
                r => {
                    let r = r?;
                    bump_generation(seg);
                    return Ok(r);
                }
            }
        }
    }
    Err(MultiProcessError::TooManyConsumers { max: n })
}

/// Makes sure consumer `id` has a gating entry: an attached one or a reservation. A new
/// reservation starts at `published` (its consumer resumes right after it). Used when
/// required-consumer liveness is enabled.
pub(crate) fn ensure_entry<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    backend: &B,
    id: &str,
    published: i64,
) -> MultiProcessResult<()> {
    validate_id(id)?;
    let _guard = lock(seg, backend, Duration::from_secs(1))?;
    let idb = id.as_bytes();
    for (index, e) in seg.entries().enumerate() {
        if !rejoinable(e, idb) {
            continue;
        }
        match e.state.load(Ordering::Acquire) {
            ENTRY_ACTIVE | ENTRY_RESERVED => return Ok(()),
            // A consumer of this id is registering: it starts at the live tail, at or after
            // `published`, and gates from then on.
            ENTRY_JOINING if holder_alive(seg, index) => return Ok(()),
            // It died registering (found by the public-API simulation: without this a second
            // entry was reserved for the id, and the next consumer of the id registered afresh
            // on the dead one, leaving the reservation to gate forever). Its entry becomes the
            // id's reservation.
            ENTRY_JOINING => {
                e.owner_token.store(0, Ordering::Relaxed);
                e.flags.store(0, Ordering::Relaxed);
                e.cursor.value.store(published, Ordering::Relaxed);
                crate::observability::reset_entry(e, published + 1);
                e.state.store(ENTRY_RESERVED, Ordering::Release);
                bump_generation(seg);
                return Ok(());
            }
            _ => {}
        }
    }
    // An unclaimed discovery reservation this id would claim becomes the id's reservation, so
    // the prefix slot does not gate on its own for a consumer that will never come.
    let prefixed = seg.entries().find(|e| {
        e.state.load(Ordering::Acquire) == ENTRY_RESERVED_PREFIX && id_has_prefix(e, idb)
    });
    if let Some(e) = prefixed {
        e.write_id(idb);
        e.flags.store(0, Ordering::Relaxed);
        e.state.store(ENTRY_RESERVED, Ordering::Release);
        bump_generation(seg);
        return Ok(());
    }
    let free = seg
        .entries()
        .find(|e| e.state.load(Ordering::Acquire) == ENTRY_FREE)
        .ok_or(MultiProcessError::TooManyConsumers {
            max: seg.geometry().max_consumers,
        })?;
    free.write_id(idb);
    free.owner_token.store(0, Ordering::Relaxed);
    free.flags.store(0, Ordering::Relaxed);
    free.cursor.value.store(published, Ordering::Relaxed);
    crate::observability::reset_entry(free, published + 1);
    // Publishes the id and cursor with the state (pairs with the `Acquire` state loads).
    free.state.store(ENTRY_RESERVED, Ordering::Release);
    bump_generation(seg);
    Ok(())
}

fn bump_generation<E: ShmEvent, B: RingBackend>(seg: &Segment<E, B>) {
    seg.header()
        .registry
        .generation
        .fetch_add(1, Ordering::Release);
}

/// The least an attach (a consumer registering, a producer joining a multi-producer ring)
/// waits for the registry lock, whatever its attach timeout: the timeout bounds the wait for the
/// ring to appear, and a live holder is inside a critical section of a few microseconds (a dead
/// one is taken over at once). A zero timeout failing with `RegistryBusy` because another
/// attacher was in there, or was descheduled in there on a loaded machine, would end the retry
/// loop of a user who waits for `NotReady` (the async pipeline's CI run did: 3.4 us).
pub(crate) const REGISTRY_LOCK_MIN_WAIT: Duration = Duration::from_secs(1);

/// How long an attach with attach timeout `attach_timeout` waits for the registry lock (the
/// simulator scales the floor to its time scale: [`RingBackend::registry_lock_floor`]).
pub(crate) fn attach_lock_timeout<B: RingBackend>(
    backend: &B,
    attach_timeout: Duration,
) -> Duration {
    attach_timeout.max(backend.registry_lock_floor(REGISTRY_LOCK_MIN_WAIT))
}

/// How long a detach waits for the registry lock before it detaches without it.
pub(crate) const DETACH_LOCK_TIMEOUT: Duration = Duration::from_millis(100);

/// Frees a consumer's entry when it detaches normally (or turns it into a reservation for its
/// id when `keep` is set and it has one: an anonymous entry is always freed), if it still owns
/// it, then lets go of the entry's lock slot.
///
/// Under the registry lock, so that no registrant sees the entry free while its slot is still
/// held. If a live holder keeps the lock past [`DETACH_LOCK_TIMEOUT`] the consumer detaches
/// anyway (a `Drop` must not hang): a registrant then at worst skips the entry for a moment.
pub(crate) fn detach<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    backend: &B,
    index: usize,
    incarnation: u64,
    token: u64,
    keep: bool,
) {
    let guard = lock(seg, backend, DETACH_LOCK_TIMEOUT);
    if let Err(e) = &guard {
        tracing::warn!(error = %e, "detaching without the registry lock");
    }
    let e = seg.entry(index);
    backend.sched_point(SchedPoint::EntryWrite, index as i64);
    // Nobody can resume an anonymous consumer: a reservation of its label would gate the
    // producer for ever (no id claims it, and the reaper frees attached entries only).
    let keep = keep && e.flags.load(Ordering::Relaxed) & FLAG_ANONYMOUS == 0;
    let to = if keep { ENTRY_RESERVED } else { ENTRY_FREE };
    if e.owner_token.load(Ordering::Relaxed) == token
        && e.incarnation.load(Ordering::Relaxed) == incarnation
        && e.state
            .compare_exchange(ENTRY_ACTIVE, to, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        bump_generation(seg);
    }
    seg.region().unlock_slot(entry_lock_slot(index));
    drop(guard);
}

/// Frees the entries of anonymous consumers that are provably dead (their lock slot is free):
/// nobody can rejoin them, so they would gate the producer for ever. Returns how many were
/// freed. Cheap when there is nothing to do (a scan of the states, no syscall unless an
/// attached anonymous entry exists); called by a producer that finds the ring full (each round
/// of a blocking wait past its spin phase; every 64th `RingBufferFull` of the non-blocking
/// calls).
pub(crate) fn reap_dead_anonymous<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    backend: &B,
) -> usize {
    #[cfg(not(myelon_mutant = "reap_named"))]
    let attached_anonymous = |e: &ConsumerEntry| {
        matches!(
            e.state.load(Ordering::Acquire),
            ENTRY_ACTIVE | ENTRY_JOINING
        ) && e.flags.load(Ordering::Relaxed) & FLAG_ANONYMOUS != 0
    };
    // Mutant: dead consumers with an id are freed too (their rejoin starts afresh, at the tail).
    #[cfg(myelon_mutant = "reap_named")]
    let attached_anonymous = |e: &ConsumerEntry| {
        matches!(
            e.state.load(Ordering::Acquire),
            ENTRY_ACTIVE | ENTRY_JOINING
        )
    };
    // Mutant: an attached anonymous entry is freed without its lock slot proving it dead.
    #[cfg(myelon_mutant = "reap_live_anonymous")]
    let holder_dead = |_: &Segment<E, B>, _: usize| true;
    let candidate = seg
        .entries()
        .enumerate()
        .any(|(i, e)| attached_anonymous(e) && holder_dead(seg, i));
    if !candidate {
        return 0;
    }
    let Ok(_guard) = lock(seg, backend, Duration::ZERO) else {
        return 0;
    };
    let mut freed = 0;
    for (i, e) in seg.entries().enumerate() {
        // Re-checked under the lock: a registrant holds the slot before it writes the entry.
        if attached_anonymous(e) && holder_dead(seg, i) {
            backend.sched_point(SchedPoint::EntryWrite, i as i64);
            clear_stale_sleeper(seg, e);
            e.state.store(ENTRY_FREE, Ordering::Release);
            freed += 1;
            tracing::warn!(
                id = %entry_id(e),
                cursor = e.cursor.value.load(Ordering::Relaxed),
                "a dead anonymous consumer stops gating"
            );
        }
    }
    if freed > 0 {
        bump_generation(seg);
    }
    freed
}

/// The lowest sequence every gating consumer has released, clamped to what is possible:
/// `[published - capacity, published]`. A value outside that window can only come from a
/// corrupt entry; clamping low blocks the producer (like a stalled consumer), clamping high
/// treats the entry as caught up.
pub(crate) fn gating_minimum<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    backend: &B,
    published: i64,
) -> i64 {
    // Pairs with the fence in `claim_free` (module docs).
    // Mutant: no fence, so the scan may miss a joining entry while the joiner reads a cursor
    // older than the one announced before the scan (loom: `late_join_*`).
    #[cfg(not(myelon_mutant = "join_no_fence"))]
    fence(Ordering::SeqCst);
    let lowest = published - seg.geometry().capacity as i64;
    let mut min = published;
    for (i, e) in seg.entries().enumerate() {
        backend.sched_point(SchedPoint::GatingEntry, i as i64);
        let st = e.state.load(Ordering::Acquire);
        // Mutant: reservations (expected consumers not attached yet) stop gating.
        #[cfg(myelon_mutant = "reserved_not_gating")]
        let st = if st == ENTRY_RESERVED { ENTRY_FREE } else { st };
        if is_gating(st) {
            let c = e.cursor.value.load(Ordering::Acquire);
            if c < lowest || c > published {
                tracing::debug!(
                    cursor = c,
                    published,
                    "clamping an impossible consumer cursor"
                );
            }
            min = min.min(c.clamp(lowest, published));
            crate::observability::note_lag(e, published - c.clamp(lowest, published));
        }
    }
    min
}

/// A snapshot of one table entry, for diagnostics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// The consumer id (or discovery prefix for an unclaimed prefix reservation).
    pub id: String,
    /// Last released sequence.
    pub cursor: i64,
    /// Whether a consumer holds the entry (false: a reservation not yet claimed).
    pub attached: bool,
    /// Attach count of this entry.
    pub incarnation: u64,
}

/// Every gating entry of the table.
pub(crate) fn snapshot<E: ShmEvent, B: RingBackend>(seg: &Segment<E, B>) -> Vec<ConsumerInfo> {
    seg.entries()
        .filter_map(|e| {
            let st = e.state.load(Ordering::Acquire);
            is_gating(st).then(|| ConsumerInfo {
                id: entry_id(e),
                cursor: e.cursor.value.load(Ordering::Acquire),
                attached: st == ENTRY_ACTIVE,
                incarnation: e.incarnation.load(Ordering::Relaxed),
            })
        })
        .collect()
}
