//! Many producers into one ring (MPSC / MPMC): [`MultiProducer`].
//!
//! A multi-producer ring has the single-producer ring's layout (same geometry, same consumer
//! table, same slots) with three differences, all flagged by `RING_MULTI_PRODUCER` in the header:
//!
//! * its slots hold [`Sourced<E>`]: the event plus the id of the producer that sent it;
//! * the header cursor is the **claim cursor**: the last sequence some producer claimed (not
//!   necessarily published yet). Producers claim a run of consecutive sequences with one
//!   compare-and-swap on it, so every consumer sees one total order and each producer's events
//!   keep their order; a claim of `n` slots is one unit (a framed message's frames never
//!   interleave with another producer's);
//! * a **producer table** (`MAX_PRODUCERS` entries, in the padding before the slots) lists the
//!   attached producers, each with a kernel-released lock slot and a claim `intent`.
//!
//! Consumers are the ordinary [`crate::Consumer`] of `Sourced<E>`: a slot is there when its stamp
//! says so, exactly as on a single-producer ring.
//!
//! # Claiming
//!
//! A producer reads the claim cursor `c`, checks its cached gating limit (rescanning the consumer
//! table when needed), stores `intent = c + 1` in its entry (`SeqCst`), then compare-and-swaps
//! the cursor from `c` to `c + n`. It writes the slots, stores their stamps (`Release`) and
//! clears its intent. So at every instant, **every claimed but unpublished sequence `s` has an
//! attached producer whose `intent <= s`**: its owner (the intent is stored before the swap that
//! claims `s` and cleared only after `s` is stamped), and possibly producers whose swap failed
//! (their stale intent is conservative: it only makes a consumer wait for them to retry).
//!
//! The gating scan is the single-producer one (`registry::gating_minimum`) with the claim
//! cursor as "published", read with a read-modify-write before the scan's fence. That RMW is a
//! modification of the cursor that a registering consumer's later read must see (or a later
//! one), which is what the late-join argument in `registry.rs` needs of the announced cursor.
//! The limit is then lowered below the oldest claim another live producer has not published
//! yet (`unpublished_bound`): consumers alone do not keep a producer from lapping a slot whose
//! claimer is still writing it.
//!
//! # Holes
//!
//! A claimed slot that is never published is a hole. Two kinds, and consumers skip both, count
//! them ([`crate::Consumer::abandoned_slots`], the `abandoned_slots` counter of `myelon stat`)
//! and move on:
//!
//! * **given up** by a live producer ([`MultiClaim::abort`], a claim dropped unpublished): the
//!   producer stamps each slot with a *skip marker* (`skip_stamp(s)`, a negative value that is
//!   never a sequence), which consumers skip at once;
//! * **abandoned** by a producer that died between its claim and its stamps. Nobody writes
//!   anything: a consumer that waits on `s` checks, on its producer-check interval, whether `s`
//!   is claimed (`s <=` the claim cursor) and whether any *live* producer has `intent <= s`.
//!   None: the owner is dead (proven by the kernel: its lock slot is free), so `s` will never be
//!   published and the consumer skips it — after re-reading the stamp, which the owner may have
//!   stored just before dying. Every consumer reaches the same verdict on its own, so no writer
//!   is needed and no slot is ever written by anyone but its claimer. A producer that is alive
//!   but slow is waited for, however long.
//!
//! **Bound.** A consumer waiting on a hole whose producer died skips it at its next producer
//! check: within `producer_check_interval` (default 50 ms) of the death, for a consumer that is
//! blocked on it (a `try_*` loop checks every 1024 empty polls once the interval has passed).
//! Producers gate only on consumers, so the ring moves again as soon as the consumers have.
//!
//! # End of stream
//!
//! A producer that detaches frees its entry; the last one to detach closes the ring (`Closed`
//! for consumers once they read or skipped everything claimed). While no producer is alive and
//! the ring is not closed, consumers get `ProducerDead` from their producer check — not sticky:
//! a producer that attaches later continues the stream.

use crate::backend::{ProcessState, Region, RingBackend, SchedPoint};
use crate::liveness::{
    LivenessMonitor, ManagedHook, RequiredConsumerError, RequiredConsumerLivenessConfig,
};
use crate::ring::builder::SharedDisruptorBuilder;
use crate::ring::error::{MultiProcessError, MultiProcessResult};
use crate::ring::event::ShmEvent;
use crate::ring::layout::{
    producer_lock_slot, skip_stamp, Segment, MAX_PRODUCERS, NO_INTENT, PRODUCER_ACTIVE,
    PRODUCER_FREE, STATE_CLOSED,
};
use crate::ring::producer::{Deadline, RingView, SpaceHook};
use crate::ring::registry;
use crate::ring::sync::{spin_hint, Ordering};
use crate::ring::wait::{block_on, notify, notify_now};
use crate::Sequence;
use std::time::Duration;

/// An event of a multi-producer ring: the id of the producer that published it
/// ([`MultiProducer::source`]) and the event itself. Consumers of a multi-producer ring of `E`
/// are consumers of `Sourced<E>` ([`crate::attach_shared_multi_consumer`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sourced<E> {
    /// The publishing producer's id (chosen by it: `with_source_id`).
    pub source: u64,
    /// The event.
    pub event: E,
}

// SAFETY: `repr(C)` of a `u64` and an `E: ShmEvent`: every bit pattern of both fields is valid,
// there are no pointers, and the padding (if `E` is more aligned than 8) is never read as a
// value. `Copy + Send + Sync + 'static` follow from `E`'s.
unsafe impl<E: ShmEvent> ShmEvent for Sourced<E> {}

/// Producer-id value reserved by the ring (never a producer's id).
pub const RESERVED_SOURCE: u64 = u64::MAX;

/// How long a blocking claim sleeps at most between two looks at the ring (it is woken by
/// consumer releases before that).
const BLOCK_SLICE: Duration = Duration::from_millis(1);

/// Rounds of pausing (each `SPIN_PAUSES` pause instructions, then one claim attempt with its
/// rescan) before a blocking claim starts yielding, then rounds of `sched_yield` before it
/// sleeps: the single producer's progression (`producer/wait.rs`). Sleeping early costs a
/// futex wake-up (tens of microseconds on a VM) per full ring and a wake syscall per consumer
/// release meanwhile; the peers bench measured the multi-producer ring 3-7x below the
/// single-producer one with a 256-spin phase and no pauses.
const SPIN_ROUNDS: u32 = 2048;
const SPIN_PAUSES: u32 = 16;
const YIELD_ROUNDS: u32 = 256;

/// Whether some attached producer is alive, and whether a live one may still publish `seq`
/// (its `intent <= seq`). Probes the lock slot of each `ACTIVE` entry (one system call each on
/// SHM and mmap): the consumer's cold path only.
pub(crate) fn live_producers<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    seq: i64,
) -> (bool, bool) {
    let mut any = false;
    let mut covering = false;
    for i in 0..MAX_PRODUCERS {
        let p = seg.producer_entry(i);
        if p.state.load(Ordering::SeqCst) != PRODUCER_ACTIVE {
            continue;
        }
        // Read the intent before probing: a producer that dies after this load still counts
        // as covering if its intent did, and one that is alive is asked again next time.
        let intent = p.intent.load(Ordering::SeqCst);
        if seg.region().slot_state(producer_lock_slot(i)) == ProcessState::Dead {
            continue;
        }
        any = true;
        if intent <= seq {
            covering = true;
        }
    }
    // Mutant: the hole check ignores the live producers' intents (skips a live claim).
    #[cfg(myelon_mutant = "mp_skip_live_claim")]
    let covering = false;
    (any, covering)
}

/// Whether `region` is a multi-producer ring, not closed, with a live producer attached: such a
/// ring is in use even when its creator has gone (its owner lock is the creator's alone), so the
/// stale-ring reclaim and `myelon clean` must leave it. Any bytes are tolerated.
pub(crate) fn live_producer_in(region: &impl Region) -> bool {
    use crate::ring::layout::{
        try_header_of, try_producer_entry_of, MAGIC, RING_MULTI_PRODUCER, STATE_READY,
    };
    let Some(h) = try_header_of(region) else {
        return false;
    };
    let r = Ordering::Relaxed;
    if h.magic.load(r) != MAGIC
        || h.ring_flags.load(r) & RING_MULTI_PRODUCER == 0
        || h.state.load(r) != STATE_READY
    {
        return false;
    }
    (0..MAX_PRODUCERS).any(|i| {
        try_producer_entry_of(region, i).is_some_and(|p| p.state.load(r) == PRODUCER_ACTIVE)
            && region.slot_state(producer_lock_slot(i)) != ProcessState::Dead
    })
}

/// One of several producers of a multi-producer ring. Build with
/// [`crate::build_shared_multi_producer`] (or the mmap / simulator equivalents): the first
/// producer creates the ring, later ones attach to it.
pub struct MultiProducer<E: ShmEvent, B: RingBackend> {
    seg: Segment<Sourced<E>, B>,
    backend: B,
    name: String,
    index: usize,
    source: u64,
    capacity: i64,
    /// Highest sequence claimable without rescanning the consumer table.
    limit: i64,
    /// Last sequence this producer published (-1: none).
    last: i64,
    /// Required-consumer liveness, when enabled (cold path only).
    liveness: Option<Box<LivenessMonitor>>,
}

impl<E: ShmEvent, B: RingBackend> std::fmt::Debug for MultiProducer<E, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiProducer")
            .field("name", &self.name)
            .field("source", &self.source)
            .field("index", &self.index)
            .field("backend", &self.backend.kind())
            .finish()
    }
}

/// Consecutive slots claimed by one producer of a multi-producer ring: write them with
/// [`MultiClaim::slot_mut`], then [`commit`](MultiClaim::commit). Unlike a single-producer claim
/// the sequences are taken once claimed: [`abort`](MultiClaim::abort) (or dropping the claim)
/// stamps them as skipped, and consumers skip them.
pub struct MultiClaim<'a, E: ShmEvent, B: RingBackend> {
    producer: &'a mut MultiProducer<E, B>,
    first: i64,
    count: usize,
    done: bool,
}

impl<E: ShmEvent, B: RingBackend> std::fmt::Debug for MultiClaim<'_, E, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiClaim")
            .field("first", &self.first)
            .field("count", &self.count)
            .finish()
    }
}

impl<E: ShmEvent, B: RingBackend> MultiClaim<'_, E, B> {
    /// Number of claimed slots.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always false: a claim covers at least one slot.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sequence of the first claimed slot.
    pub fn first_sequence(&self) -> Sequence {
        self.first
    }

    /// The `i`-th claimed event (`i < len()`), holding whatever it held a lap ago.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn slot_mut(&mut self, i: usize) -> &mut E {
        assert!(i < self.count, "claim index {i} out of {}", self.count);
        let seq = self.first + i as i64;
        &mut self.producer.slot(seq).event
    }

    /// Publishes every claimed slot, in order; returns the last sequence.
    pub fn commit(mut self) -> Sequence {
        self.done = true;
        let last = self.first + self.count as i64 - 1;
        self.producer.publish_range(self.first, last);
        last
    }

    /// Gives the claimed slots up: they are stamped as skipped, and consumers skip them.
    pub fn abort(mut self) {
        self.done = true;
        self.producer.skip_range(self.first, self.count);
    }
}

impl<E: ShmEvent, B: RingBackend> Drop for MultiClaim<'_, E, B> {
    fn drop(&mut self) {
        if !self.done && !self.producer.backend.process_killed() {
            self.producer.skip_range(self.first, self.count);
        }
    }
}

impl<E: ShmEvent, B: RingBackend> MultiProducer<E, B> {
    pub(crate) fn from_parts(
        seg: Segment<Sourced<E>, B>,
        backend: B,
        name: String,
        index: usize,
        source: u64,
    ) -> Self {
        let capacity = seg.geometry().capacity as i64;
        let mut p = MultiProducer {
            seg,
            backend,
            name,
            index,
            source,
            capacity,
            limit: -1,
            last: -1,
            liveness: None,
        };
        p.refresh_limit();
        p
    }

    /// This producer's id: the `source` of every event it publishes.
    pub fn source(&self) -> u64 {
        self.source
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Ring capacity in events.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Last sequence this producer published (-1: none yet).
    pub fn last_published(&self) -> Sequence {
        self.last
    }

    /// The ring's claim cursor: the last sequence any producer claimed.
    pub fn claim_cursor(&self) -> Sequence {
        self.seg.header().producer.value.load(Ordering::Acquire)
    }

    /// The ring's epoch (see [`crate::Consumer::ring_epoch`]).
    pub fn ring_epoch(&self) -> u64 {
        self.seg.header().epoch.load(Ordering::Relaxed)
    }

    /// The gating entries of the consumer table.
    pub fn consumers(&self) -> Vec<registry::ConsumerInfo> {
        registry::snapshot(&self.seg)
    }

    /// Rescans the consumer table. The claim cursor is read with a read-modify-write (a
    /// modification in its order) before the scan's fence: see the module docs.
    fn refresh_limit(&mut self) {
        let c = self
            .seg
            .header()
            .producer
            .value
            .fetch_add(0, Ordering::SeqCst);
        let gating = registry::gating_minimum(&self.seg, &self.backend, c);
        // Mutant: the limit ignores the other producers' unpublished claims (seed 0x66e).
        #[cfg(myelon_mutant = "mp_lap_unpublished")]
        let gating = gating.max(self.unpublished_bound(gating));
        #[cfg(not(myelon_mutant = "mp_lap_unpublished"))]
        let gating = self.unpublished_bound(gating);
        self.limit = gating + self.capacity;
    }

    /// `bound`, lowered to just below the oldest claim another *live* producer has not
    /// published yet: a slot is reused only once its claim is done. Consumers alone do not
    /// ensure it — a consumer that joins after an unpublished claim does not gate it, and with
    /// no consumer the gating minimum is the claim cursor itself — so without this a producer
    /// could lap a slower producer's claimed slot, and that producer's late stamp would land
    /// over the newer event (found by the DST, seed 0x66e). A dead producer's claim does not
    /// count (it will never write again; consumers skip it). Reads the intents after the
    /// claim cursor's read-modify-write and the scan's fence, so a claim made before that
    /// read is seen here, and one made after it lies beyond it. Probes a producer's lock slot
    /// only when its intent is the one that binds.
    fn unpublished_bound(&self, bound: i64) -> i64 {
        let mut dead = 0u32;
        loop {
            let mut oldest: Option<(usize, i64)> = None;
            for i in 0..MAX_PRODUCERS {
                if i == self.index || dead & (1 << i) != 0 {
                    continue;
                }
                let p = self.seg.producer_entry(i);
                if p.state.load(Ordering::SeqCst) != PRODUCER_ACTIVE {
                    continue;
                }
                let intent = p.intent.load(Ordering::SeqCst);
                // Sequences start at 0: a negative intent is not one a producer wrote.
                if intent == NO_INTENT || intent < 0 {
                    continue;
                }
                if oldest.is_none_or(|(_, o)| intent < o) {
                    oldest = Some((i, intent));
                }
            }
            let Some((i, intent)) = oldest else {
                return bound;
            };
            if intent > bound {
                return bound;
            }
            if self.seg.region().slot_state(producer_lock_slot(i)) == ProcessState::Dead {
                dead |= 1 << i;
                continue;
            }
            return intent - 1;
        }
    }

    /// Tries once to claim `n` (1..=capacity) consecutive slots. `Ok(None)`: not enough room.
    fn try_claim(&mut self, n: i64) -> MultiProcessResult<Option<i64>> {
        debug_assert!(n >= 1 && n <= self.capacity);
        let mut rescanned = false;
        loop {
            let entry = self.seg.producer_entry(self.index);
            let cursor = &self.seg.header().producer.value;
            let c = cursor.load(Ordering::Acquire);
            // A cursor below -1, or beyond the largest cursor the ring ever uses (far from
            // overflowing any sequence arithmetic), is not one a producer wrote.
            if !(-1..=registry::MAX_CURSOR).contains(&c) {
                return Err(MultiProcessError::Corrupt {
                    what: "claim cursor",
                    value: c,
                });
            }
            let last = c + n;
            if last > self.limit {
                if rescanned {
                    entry.intent.store(NO_INTENT, Ordering::SeqCst);
                    return Ok(None);
                }
                self.refresh_limit();
                rescanned = true;
                continue;
            }
            #[cfg(not(myelon_mutant = "mp_intent_after_cas"))]
            {
                self.backend.sched_point(SchedPoint::ClaimIntent, c + 1);
                entry.intent.store(c + 1, Ordering::SeqCst);
            }
            self.backend.sched_point(SchedPoint::ClaimCas, c + 1);
            #[cfg(not(myelon_mutant = "mp_double_claim"))]
            let won = cursor
                .compare_exchange(c, last, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok();
            // Mutant: a plain store instead of the compare-and-swap (two producers may claim
            // one slot).
            #[cfg(myelon_mutant = "mp_double_claim")]
            let won = {
                cursor.store(last, Ordering::SeqCst);
                true
            };
            // Mutant: the intent is stored after the claim (a hole check in between finds no
            // live producer covering the claimed sequence).
            #[cfg(myelon_mutant = "mp_intent_after_cas")]
            {
                self.backend.sched_point(SchedPoint::ClaimIntent, c + 1);
                entry.intent.store(c + 1, Ordering::SeqCst);
            }
            if won {
                return Ok(Some(c + 1));
            }
            spin_hint();
        }
    }

    /// What a wait policy ([`SpaceHook`]) may read of the ring: "published" is the claim cursor.
    fn view(&self) -> RingView<'_, Sourced<E>, B> {
        RingView {
            seg: &self.seg,
            backend: &self.backend,
            published: self.claim_cursor(),
            capacity: self.capacity,
        }
    }

    /// Claims `n` slots, waiting while the ring is full (spinning, then sleeping on the
    /// producer wake line, which consumer releases ring) under the policy `hook`: as long as it
    /// takes, until a deadline, or under required-consumer liveness. `map` turns the hook's
    /// error into the ring's.
    fn claim_with<H: SpaceHook<Sourced<E>, B>>(
        &mut self,
        n: i64,
        hook: &mut H,
        map: fn(H::Error) -> MultiProcessError,
    ) -> MultiProcessResult<i64> {
        if let Some(s) = self.try_claim(n)? {
            hook.on_room(&self.view(), self.backend.now());
            return Ok(s);
        }
        let start = self.backend.now();
        crate::observability::record_full(self.seg.header());
        let mut spins = 0u32;
        loop {
            if let Some(s) = self.try_claim(n)? {
                let now = self.backend.now();
                hook.on_room(&self.view(), now);
                crate::observability::record_wait(self.seg.header(), now.saturating_sub(start));
                return Ok(s);
            }
            let now = self.backend.now();
            let want = self.claim_cursor().saturating_add(n);
            let slice = match hook.on_full(&self.view(), now, want) {
                Ok(slice) => slice.clamp(Duration::from_micros(1), BLOCK_SLICE),
                Err(e) => {
                    crate::observability::record_wait(self.seg.header(), now.saturating_sub(start));
                    return Err(map(e));
                }
            };
            spins += 1;
            let spin = self.backend.spin_rounds(SPIN_ROUNDS);
            if spins < spin {
                // Each attempt rescans the consumer table: pause between them, so that the
                // consumers keep their lines while they drain.
                for _ in 0..SPIN_PAUSES {
                    spin_hint();
                }
                continue;
            }
            if spins < spin + self.backend.spin_rounds(YIELD_ROUNDS) {
                self.backend.yield_now();
                continue;
            }
            // Dead anonymous consumers stop gating (as for the single producer).
            registry::reap_dead_anonymous(&self.seg, &self.backend);
            let (seg, backend, cap) = (&self.seg, &self.backend, self.capacity);
            // Woken by a consumer release (its wake is unfenced, so the slice bounds a missed
            // one); the re-check is a gating scan, as for the single producer.
            block_on(&self.backend, &seg.header().producer_wake, slice, || {
                let c = seg.header().producer.value.load(Ordering::Acquire);
                registry::gating_minimum(seg, backend, c) + cap >= c.saturating_add(n)
            });
            self.refresh_limit();
        }
    }

    /// Claims `n` slots waiting at most `timeout` (`None`: no bound).
    #[inline]
    fn claim_waiting(&mut self, n: i64, timeout: Option<Duration>) -> MultiProcessResult<i64> {
        // Fast path: room now, no clock read (two clock reads per publish made `publish` ~6x
        // slower than `try_publish`).
        if let Some(s) = self.try_claim(n)? {
            return Ok(s);
        }
        let mut hook = Deadline::new(self.backend.now(), timeout);
        self.claim_with(n, &mut hook, |e| e)
    }

    /// Turns on required-consumer liveness for [`Self::publish_managed`] and
    /// [`Self::publish_batch_managed`] (see [`crate::liveness`]): this producer, while it waits
    /// for space, checks the required consumers and stops with `Liveness(..)` as the
    /// single-producer ring's managed calls do. Reserves an entry for every required id not in
    /// the consumer table yet. Each producer of a ring keeps its own monitor.
    pub fn enable_required_consumer_liveness(
        &mut self,
        config: RequiredConsumerLivenessConfig,
    ) -> MultiProcessResult<()> {
        config.validate()?;
        let published = self.claim_cursor();
        for id in config.required_ids() {
            registry::ensure_entry(&self.seg, &self.backend, id, published)?;
        }
        self.refresh_limit();
        let monitor = LivenessMonitor::enable(config, &self.view());
        self.liveness = Some(Box::new(monitor));
        Ok(())
    }

    /// The sticky liveness failure, if this producer has failed.
    pub fn required_consumer_failure(&self) -> Option<&RequiredConsumerError> {
        self.liveness.as_ref().and_then(|m| m.failed())
    }

    /// Claims `n` slots under the liveness monitor (a plain blocking claim when it is off).
    fn claim_managed(&mut self, n: i64) -> MultiProcessResult<i64> {
        let Some(monitor) = self.liveness.take() else {
            return self.claim_waiting(n, None);
        };
        let mut hook = ManagedHook::new(monitor);
        let r = match hook.precheck() {
            Err(e) => Err(MultiProcessError::Liveness(e)),
            Ok(()) if !hook.in_episode() => match self.try_claim(n) {
                // Fast path, as `claim_waiting`'s: room now, no episode to close.
                Ok(Some(s)) => Ok(s),
                Ok(None) => self.claim_with(n, &mut hook, MultiProcessError::Liveness),
                Err(e) => Err(e),
            },
            Ok(()) => self.claim_with(n, &mut hook, MultiProcessError::Liveness),
        };
        self.liveness = Some(hook.into_monitor());
        r
    }

    /// [`Self::publish`] under required-consumer liveness: a stalled or missing required
    /// consumer ends the wait with `Liveness(..)` instead of a silent hang.
    pub fn publish_managed<F: FnOnce(&mut E)>(&mut self, f: F) -> MultiProcessResult<Sequence> {
        let s = self.claim_managed(1)?;
        f(&mut self.slot(s).event);
        self.publish_range(s, s);
        Ok(s)
    }

    /// [`Self::publish_batch`] under required-consumer liveness.
    pub fn publish_batch_managed<F: FnMut(usize, &mut E)>(
        &mut self,
        count: usize,
        mut f: F,
    ) -> MultiProcessResult<Sequence> {
        let n = self.check_count(count)?;
        let first = self.claim_managed(n)?;
        let mut claim = MultiClaim {
            producer: self,
            first,
            count,
            done: false,
        };
        for i in 0..count {
            f(i, claim.slot_mut(i));
        }
        Ok(claim.commit())
    }

    /// The `Sourced` slot of claimed sequence `seq`.
    fn slot(&mut self, seq: i64) -> &mut Sourced<E> {
        self.backend.sched_point(SchedPoint::SlotWrite, seq);
        let slot = self.seg.slot(seq);
        slot.value.with_mut(|p| {
            // I3: `seq` lies in a range this producer claimed with the claim cursor's
            // compare-and-swap (no other producer can claim it), below the gating limit and
            // below every live producer's unpublished claim, so every gating consumer released
            // its previous occupant and its previous claimer is done with it (or dead).
            // SAFETY: I3 as above; unpublished, so no consumer reads it; `&mut self` makes
            // this the only reference handed out.
            unsafe { &mut *p }
        })
    }

    /// Stamps `first..=last` (claimed by this producer and written), clears the intent, wakes
    /// sleeping consumers.
    fn publish_range(&mut self, first: i64, last: i64) {
        for seq in first..=last {
            self.slot(seq).source = self.source;
        }
        // Mutant: the intent is cleared before the stamps (the claim looks abandoned while its
        // live producer is still stamping it).
        #[cfg(myelon_mutant = "mp_clear_intent_before_stamp")]
        self.seg
            .producer_entry(self.index)
            .intent
            .store(NO_INTENT, Ordering::SeqCst);
        for seq in first..=last {
            self.backend.sched_point(SchedPoint::SlotStamp, seq);
            // Pairs with the consumer's `Acquire` load of the stamp (I3).
            self.seg.slot(seq).stamp.store(seq, Ordering::Release);
        }
        let entry = self.seg.producer_entry(self.index);
        // `Release`: a consumer that reads the cleared intent (its loads are `SeqCst`, so
        // acquire) sees these stamps when it re-reads them (module docs, "Holes").
        entry.intent.store(NO_INTENT, Ordering::Release);
        // Only this producer writes its counter: no read-modify-write needed.
        let done = entry.published.load(Ordering::Relaxed);
        entry.published.store(
            done.wrapping_add((last - first + 1) as u64),
            Ordering::Relaxed,
        );
        self.last = last;
        notify(&self.backend, &self.seg.header().consumer_wake);
    }

    /// Stamps `count` claimed slots from `first` as skipped and clears the intent.
    fn skip_range(&mut self, first: i64, count: usize) {
        // Mutant: one skip marker too many, stamped on the slot after the claim, which another
        // producer may have published (loom: `an_aborted_claim_is_skipped_not_its_neighbour`).
        #[cfg(myelon_mutant = "mp_skip_over_published")]
        let count = count + 1;
        for seq in first..first + count as i64 {
            self.backend.sched_point(SchedPoint::SlotStamp, seq);
            self.seg
                .slot(seq)
                .stamp
                .store(skip_stamp(seq), Ordering::Release);
        }
        let entry = self.seg.producer_entry(self.index);
        entry.intent.store(NO_INTENT, Ordering::SeqCst);
        entry.skipped.fetch_add(count as u64, Ordering::Relaxed);
        notify_now(&self.backend, &self.seg.header().consumer_wake);
    }

    fn check_count(&self, count: usize) -> MultiProcessResult<i64> {
        if count == 0 || count as i64 > self.capacity {
            return Err(MultiProcessError::InvalidConfig {
                reason: "a claim must cover between 1 and capacity slots",
            });
        }
        Ok(count as i64)
    }

    /// Publishes one event written in place by `f`, if a slot is free: `Ok(None)` when the
    /// ring is full (nothing published), an error when the claim cursor is corrupt.
    pub fn try_publish<F: FnOnce(&mut E)>(&mut self, f: F) -> MultiProcessResult<Option<Sequence>> {
        match self.try_claim(1)? {
            Some(s) => {
                f(&mut self.slot(s).event);
                self.publish_range(s, s);
                Ok(Some(s))
            }
            None => {
                crate::observability::record_full(self.seg.header());
                Ok(None)
            }
        }
    }

    /// Publishes one event written in place by `f`, waiting for space as long as it takes
    /// (strict broadcast). A corrupt claim cursor is an error.
    pub fn publish<F: FnOnce(&mut E)>(&mut self, f: F) -> MultiProcessResult<Sequence> {
        let s = self.claim_waiting(1, None)?;
        f(&mut self.slot(s).event);
        self.publish_range(s, s);
        Ok(s)
    }

    /// [`Self::publish`] waiting at most `timeout` for space (`Duration::MAX`: no bound).
    pub fn publish_timeout<F: FnOnce(&mut E)>(
        &mut self,
        timeout: Duration,
        f: F,
    ) -> MultiProcessResult<Sequence> {
        let t = (timeout != Duration::MAX).then_some(timeout);
        let s = self.claim_waiting(1, t)?;
        f(&mut self.slot(s).event);
        self.publish_range(s, s);
        Ok(s)
    }

    /// The backend handle (the async doorbell's).
    #[cfg(feature = "tokio")]
    pub(crate) fn backend(&self) -> &B {
        &self.backend
    }

    /// The wake line a producer waiting for space arms (the async doorbell).
    #[cfg(feature = "tokio")]
    pub(crate) fn wake_line(&self) -> &crate::ring::layout::WakeLine {
        &self.seg.header().producer_wake
    }

    /// The async producer's claim attempt: `n` slots if there is room now (the ring's full
    /// counter counts a miss, as `try_publish` does).
    #[cfg(feature = "tokio")]
    pub(crate) fn try_claim_slots(&mut self, n: usize) -> MultiProcessResult<Option<i64>> {
        let got = self.try_claim(n as i64)?;
        if got.is_none() {
            crate::observability::record_full(self.seg.header());
        }
        Ok(got)
    }

    /// Whether `n` slots are free now (a gating rescan; claims nothing): the async producer's
    /// re-check after it armed its doorbell.
    #[cfg(feature = "tokio")]
    pub(crate) fn has_room(&mut self, n: usize) -> bool {
        self.refresh_limit();
        self.claim_cursor().saturating_add(n as i64) <= self.limit
    }

    /// `count` between 1 and the capacity (`InvalidConfig` otherwise).
    #[cfg(feature = "tokio")]
    pub(crate) fn check_claim_count(&self, count: usize) -> MultiProcessResult<()> {
        self.check_count(count).map(drop)
    }

    /// Writes the `count` slots from `first`, which this producer claimed, with `f(i, ..)`,
    /// stamps them and wakes consumers. Returns the last sequence.
    #[cfg(feature = "tokio")]
    pub(crate) fn write_claimed(
        &mut self,
        first: i64,
        count: usize,
        mut f: impl FnMut(usize, &mut E),
    ) -> Sequence {
        let last = first + count as i64 - 1;
        for (i, seq) in (first..=last).enumerate() {
            f(i, &mut self.slot(seq).event);
        }
        self.publish_range(first, last);
        last
    }

    /// Claims `count` consecutive slots (one unit: no other producer's event lands between
    /// them) if they are free. `Ok(None)`: not enough room.
    pub fn try_claim_batch(
        &mut self,
        count: usize,
    ) -> MultiProcessResult<Option<MultiClaim<'_, E, B>>> {
        let n = self.check_count(count)?;
        match self.try_claim(n)? {
            Some(first) => Ok(Some(MultiClaim {
                producer: self,
                first,
                count,
                done: false,
            })),
            None => {
                crate::observability::record_full(self.seg.header());
                Ok(None)
            }
        }
    }

    /// Claims `count` consecutive slots, waiting at most `timeout` (`None`: no bound) for room.
    pub fn claim_batch(
        &mut self,
        count: usize,
        timeout: Option<Duration>,
    ) -> MultiProcessResult<MultiClaim<'_, E, B>> {
        let n = self.check_count(count)?;
        let t = timeout.filter(|t| *t != Duration::MAX);
        let first = self.claim_waiting(n, t)?;
        Ok(MultiClaim {
            producer: self,
            first,
            count,
            done: false,
        })
    }

    /// Publishes `count` events as one unit, `f(i, event)` writing the `i`-th, waiting for room
    /// as long as it takes. Returns the last sequence.
    pub fn publish_batch<F: FnMut(usize, &mut E)>(
        &mut self,
        count: usize,
        mut f: F,
    ) -> MultiProcessResult<Sequence> {
        let mut claim = self.claim_batch(count, None)?;
        for i in 0..count {
            f(i, claim.slot_mut(i));
        }
        Ok(claim.commit())
    }

    /// Blocks until every reserved consumer (explicit id or discovery prefix) has attached.
    pub fn wait_for_consumers(&self, timeout: Duration) -> MultiProcessResult<()> {
        registry::wait_for_consumers(&self.seg, &self.backend, timeout)
    }

    /// Detaches this producer; the last producer to detach closes the ring. Equivalent to
    /// dropping it.
    pub fn close(self) {}
}

impl<E: ShmEvent, B: RingBackend> Drop for MultiProducer<E, B> {
    fn drop(&mut self) {
        // A killed (simulated) process runs no more code: its entry stays, as after SIGKILL.
        if self.backend.process_killed() {
            return;
        }
        let closed = detach_producer(&self.seg, &self.backend, self.index);
        if closed {
            let h = self.seg.header();
            h.consumer_wake.seq.fetch_add(1, Ordering::Release);
            self.backend.wake_all(&h.consumer_wake.seq);
            // The last producer removes the ring's name (consumers drain what they mapped). The
            // creator's handle does it as it drops; another producer's asks the backend, which
            // removes it only if no creator holds it (one may have made a new ring there).
            if !self.seg.region().is_owner() {
                match self.backend.remove_if_abandoned(
                    &self.name,
                    &[crate::ring::layout::MAGIC],
                    crate::backend::RemovalGuard {
                        slots: &crate::ring::layout::RECLAIM_GUARD_SLOTS,
                        keep: Some(crate::ring::layout::head_is_ready_multi_producer),
                    },
                ) {
                    Ok(_) | Err(crate::backend::BackendError::NotFound { .. }) => {}
                    Err(e) => {
                        tracing::warn!(name = %self.name, error = %e, "removing the closed ring failed")
                    }
                }
            }
        } else {
            // Other producers go on: the creator's handle must not take the name with it.
            self.seg.region().keep_name_on_drop();
        }
        tracing::debug!(name = %self.name, source = self.source, closed, "producer detached");
    }
}

/// Registers a producer with id `source` in the producer table (under the registry lock):
/// a free entry, or the entry of a producer that is provably dead. Its lock slot is taken first.
/// Waits for the registry lock as [`registry::attach_lock_timeout`] says.
pub(crate) fn register_producer<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    backend: &B,
    source: u64,
    attach_timeout: Duration,
) -> MultiProcessResult<usize> {
    if source == RESERVED_SOURCE {
        return Err(MultiProcessError::InvalidConfig {
            reason: "the producer id u64::MAX is reserved",
        });
    }
    let _guard = registry::lock(
        seg,
        backend,
        registry::attach_lock_timeout(backend, attach_timeout),
    )?;
    if seg.header().state.load(Ordering::Acquire) == STATE_CLOSED {
        return Err(MultiProcessError::Closed);
    }
    let token = backend.process_token();
    let mut candidate = None;
    for i in 0..MAX_PRODUCERS {
        let p = seg.producer_entry(i);
        let st = p.state.load(Ordering::Acquire);
        let alive = st == PRODUCER_ACTIVE
            && seg.region().slot_state(producer_lock_slot(i)) != ProcessState::Dead;
        if alive && p.source.load(Ordering::Relaxed) == source {
            return Err(MultiProcessError::ProducerIdInUse { source });
        }
        if !alive && candidate.is_none() {
            candidate = Some(i);
        }
    }
    let Some(i) = candidate else {
        return Err(MultiProcessError::TooManyProducers { max: MAX_PRODUCERS });
    };
    // The slot of an entry that holds no live producer is free, unless a removal holds all
    // the producer slots (`RECLAIM_GUARD_SLOTS`) for a moment: then, or if a removal had them
    // before and unlinked the ring meanwhile, the ring is going, and a producer must not join
    // a ring nobody can find any more. `Closed` sends the builder back to the name.
    match seg.region().try_lock_slot(producer_lock_slot(i)) {
        Ok(true) => {}
        Ok(false) => return Err(MultiProcessError::Closed),
        Err(e) => return Err(MultiProcessError::Backend(e)),
    }
    #[cfg(not(myelon_mutant = "register_on_unlinked"))]
    if !seg.region().is_linked() {
        seg.region().unlock_slot(producer_lock_slot(i));
        return Err(MultiProcessError::Closed);
    }
    backend.sched_point(SchedPoint::EntryWrite, i as i64);
    let p = seg.producer_entry(i);
    // A dead producer's intent goes with its entry: consumers then find no live producer that
    // may publish its hole, which is the same verdict.
    p.intent.store(NO_INTENT, Ordering::SeqCst);
    p.source.store(source, Ordering::Relaxed);
    p.owner_token.store(token, Ordering::Relaxed);
    p.published.store(0, Ordering::Relaxed);
    p.skipped.store(0, Ordering::Relaxed);
    p.incarnation.fetch_add(1, Ordering::Relaxed);
    p.state.store(PRODUCER_ACTIVE, Ordering::SeqCst);
    Ok(i)
}

/// Frees producer entry `index` (under the registry lock) and releases its lock slot. Returns
/// whether this was the last live producer, in which case the ring is now closed.
pub(crate) fn detach_producer<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    backend: &B,
    index: usize,
) -> bool {
    let guard = registry::lock(seg, backend, registry::DETACH_LOCK_TIMEOUT);
    let p = seg.producer_entry(index);
    if guard.is_err() {
        // The entry stays ACTIVE; with its lock slot released below, every reader takes it for
        // a dead producer's, which it now is as far as the ring is concerned.
        tracing::warn!("registry lock busy: producer entry left for the dead-producer rules");
        seg.region().unlock_slot(producer_lock_slot(index));
        return false;
    }
    backend.sched_point(SchedPoint::EntryWrite, index as i64);
    p.intent.store(NO_INTENT, Ordering::SeqCst);
    p.state.store(PRODUCER_FREE, Ordering::SeqCst);
    seg.region().unlock_slot(producer_lock_slot(index));
    let others = (0..MAX_PRODUCERS).any(|i| {
        i != index
            && seg.producer_entry(i).state.load(Ordering::Acquire) == PRODUCER_ACTIVE
            && seg.region().slot_state(producer_lock_slot(i)) != ProcessState::Dead
    });
    if !others {
        backend.sched_point(SchedPoint::SegmentState, 0);
        seg.header().state.store(STATE_CLOSED, Ordering::Release);
    }
    !others
}

/// Builder of one producer of a multi-producer ring: the first one built creates the ring, the
/// next ones attach to it (see [`crate::build_shared_multi_producer`]).
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build"]
pub struct MultiProducerBuilder<E, B: RingBackend> {
    inner: SharedDisruptorBuilder<Sourced<E>, B>,
    source: Option<u64>,
}

impl<E: ShmEvent, B: RingBackend> MultiProducerBuilder<E, B> {
    /// A builder for ring `name` of `capacity` events on `backend`.
    pub fn with_backend(backend: B, name: &str, capacity: usize) -> Self {
        MultiProducerBuilder {
            inner: SharedDisruptorBuilder::with_backend(backend, name, capacity),
            source: None,
        }
    }

    #[cfg(all(feature = "mmap", not(loom)))]
    pub(crate) fn from_inner(inner: SharedDisruptorBuilder<Sourced<E>, B>) -> Self {
        MultiProducerBuilder {
            inner,
            source: None,
        }
    }

    /// This producer's id, carried by each of its events ([`Sourced::source`]); unique among
    /// the ring's live producers (`ProducerIdInUse` otherwise). Default: derived from the
    /// process id and a per-process counter. `u64::MAX` is reserved.
    pub fn with_source_id(mut self, source: u64) -> Self {
        self.source = Some(source);
        self
    }

    /// Expected consumer (reserved if this producer creates the ring; see
    /// [`SharedDisruptorBuilder::with_consumer_id`]).
    pub fn with_consumer_id(mut self, id: impl Into<String>) -> Self {
        self.inner = self.inner.with_consumer_id(id);
        self
    }

    /// Expected consumers (reserved if this producer creates the ring).
    pub fn with_consumer_ids<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner = self.inner.with_consumer_ids(ids);
        self
    }

    /// Coordination mode applied if this producer creates the ring.
    pub fn with_coordination(mut self, mode: crate::CoordinationMode) -> Self {
        self.inner = self.inner.with_coordination(mode);
        self
    }

    /// How long to wait for a ring being created by another producer to become ready (the
    /// registry lock is waited for at least 1 s whatever this says; see
    /// [`SharedDisruptorBuilder::with_attach_timeout`]).
    pub fn with_attach_timeout(mut self, timeout: Duration) -> Self {
        self.inner = self.inner.with_attach_timeout(timeout);
        self
    }

    /// Cross-user setups (see [`SharedDisruptorBuilder::with_group_access`]).
    pub fn with_group_access(mut self, group: bool) -> Self {
        self.inner = self.inner.with_group_access(group);
        self
    }

    /// Owner uids accepted besides this process's when attaching to an existing ring.
    pub fn with_accepted_owners(mut self, uids: &[u32]) -> Self {
        self.inner = self.inner.with_accepted_owners(uids);
        self
    }

    /// Pins the building thread to `core` (see [`SharedDisruptorBuilder::with_process_core`]).
    pub fn with_process_core(mut self, core: usize) -> Self {
        self.inner = self.inner.with_process_core(core);
        self
    }

    /// Creates or attaches; a created ring's slots start as `factory()`.
    pub fn build(self, factory: impl FnMut() -> E) -> MultiProcessResult<MultiProducer<E, B>> {
        let source = self.source.unwrap_or_else(default_source);
        self.inner.build_multi_producer(source, factory)
    }
}

#[allow(clippy::disallowed_types)] // a process-local counter
fn default_source() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (u64::from(std::process::id()) << 24) | (n & 0xff_ffff)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::backend::SimBackend;

    fn ring(world: &SimBackend, name: &str) -> MultiProducer<u64, SimBackend> {
        ring_in(&world.sibling(), name)
    }

    /// A multi-producer ring created by the simulated process of `process` (producer 1).
    fn ring_in(process: &SimBackend, name: &str) -> MultiProducer<u64, SimBackend> {
        MultiProducerBuilder::<u64, _>::with_backend(process.clone(), name, 8)
            .with_source_id(1)
            .build(|| 0)
            .unwrap()
    }

    #[test]
    fn a_corrupt_claim_cursor_is_a_typed_error_for_producers_and_consumers() {
        let world = SimBackend::new_world();
        let mut p = ring(&world, "corrupt");
        let mut c =
            SharedDisruptorBuilder::<Sourced<u64>, _>::with_backend(world.sibling(), "corrupt", 8)
                .with_consumer_id("c")
                .with_producer_check_interval(Duration::ZERO)
                .build_consumer()
                .unwrap();
        p.publish(|e| *e = 7).unwrap();
        assert_eq!(c.try_consume_next().unwrap().unwrap().event, 7);
        for bad in [i64::MAX, i64::MAX - 20, -5, i64::MIN] {
            p.seg.header().producer.value.store(bad, Ordering::SeqCst);
            assert!(
                matches!(
                    p.try_publish(|e| *e = 1),
                    Err(MultiProcessError::Corrupt { .. })
                ),
                "producer, cursor {bad}"
            );
            assert!(matches!(
                p.publish_timeout(Duration::MAX, |e| *e = 1),
                Err(MultiProcessError::Corrupt { .. })
            ));
            if bad > 0 {
                // Beyond a lap past the consumer: it must not skip "holes" for ever.
                let r = c.consume_next_timeout(Duration::from_millis(5));
                assert!(
                    matches!(r, Err(MultiProcessError::Corrupt { .. })),
                    "consumer, cursor {bad}: {r:?}"
                );
            }
        }
    }

    #[test]
    fn a_producer_does_not_register_on_a_ring_whose_name_was_removed() {
        // A producer that opened the ring before a reclaimer removed its name (the removal
        // held the registry slot until the name was gone) finds it unlinked once it holds
        // the registry lock, and reports `Closed`, which sends a builder back to the name.
        let world = SimBackend::new_world();
        let p = ring(&world, "gone");
        let late = world.sibling();
        let seg = Segment::<Sourced<u64>, _>::new(late.open("gone").unwrap(), *p.seg.geometry())
            .map_err(|_| "segment")
            .unwrap();
        let index = register_producer(&seg, &late, 2, Duration::from_millis(10)).unwrap();
        detach_producer(&seg, &late, index);
        late.remove("gone").unwrap();
        let r = register_producer(&seg, &late, 3, Duration::from_millis(10));
        assert!(matches!(r, Err(MultiProcessError::Closed)), "{r:?}");
        drop(p);
    }

    /// The guard every ring removal uses (`RECLAIM_GUARD_SLOTS`), and the multi-producer
    /// builder's `keep`, decided under the removal on the object removed.
    #[test]
    fn a_removal_keeps_a_ring_with_a_live_producer_or_a_registration_in_progress() {
        use crate::backend::RemovalGuard;
        use crate::ring::layout::{head_is_ready_multi_producer, MAGIC, RECLAIM_GUARD_SLOTS};
        let guard = RemovalGuard {
            slots: &RECLAIM_GUARD_SLOTS,
            keep: None,
        };
        let world = SimBackend::new_world();
        let creator = world.sibling();
        let p1 = ring_in(&creator, "kept");
        let other = world.sibling();
        let p2 = MultiProducerBuilder::<u64, _>::with_backend(other.clone(), "kept", 8)
            .with_source_id(2)
            .build(|| 0)
            .unwrap();
        // The creator dies: the name's owner is dead, its second producer lives.
        creator.kill();
        drop(p1);
        let reclaimer = world.sibling();
        assert!(
            !reclaimer
                .remove_if_abandoned("kept", &[MAGIC], guard)
                .unwrap(),
            "a live producer keeps it"
        );
        assert!(
            reclaimer
                .remove_if_abandoned("kept", &[MAGIC], RemovalGuard::NONE)
                .is_ok(),
            "control: the owner alone would not"
        );
        assert!(reclaimer.open("kept").is_err(), "the control removed it");
        drop(p2);

        // A producer registering (it holds its slot, its entry not written yet) keeps a ring
        // too, and a multi-producer builder's removal keeps a ready multi-producer ring whose
        // producers are all gone.
        let creator = world.sibling();
        let p1 = ring_in(&creator, "ready");
        let registering = world.sibling();
        let region = registering.open("ready").unwrap();
        assert!(region.try_lock_slot(producer_lock_slot(1)).unwrap());
        creator.kill();
        drop(p1);
        assert!(
            !reclaimer
                .remove_if_abandoned("ready", &[MAGIC], guard)
                .unwrap(),
            "a producer slot is held"
        );
        region.unlock_slot(producer_lock_slot(1));
        let multi = RemovalGuard {
            keep: Some(head_is_ready_multi_producer),
            ..guard
        };
        assert!(
            !reclaimer
                .remove_if_abandoned("ready", &[MAGIC], multi)
                .unwrap(),
            "ready multi-producer ring"
        );
        assert!(
            reclaimer
                .remove_if_abandoned("ready", &[MAGIC], guard)
                .unwrap(),
            "nothing holds it any more"
        );
        assert!(!region.is_linked());
    }

    #[test]
    fn a_builder_does_not_reclaim_a_dead_ring_from_under_a_registering_producer() {
        // A multi-producer ring whose creator died; a producer process is registering on it
        // (it holds its producer slot, its entry not written yet). A builder must not remove
        // the ring from under it: it reports the name taken. Once the producer has let go, it
        // reclaims.
        let world = SimBackend::new_world();
        let dead = world.sibling();
        let p = ring_in(&dead, "r");
        dead.kill();
        drop(p);
        let registering = world.sibling();
        let region = registering.open("r").unwrap();
        assert!(region.try_lock_slot(producer_lock_slot(1)).unwrap());
        let build = || {
            SharedDisruptorBuilder::<u64, _>::with_backend(world.sibling(), "r", 8)
                .build_producer(|| 0)
        };
        let r = build();
        assert!(
            matches!(
                r,
                Err(MultiProcessError::Backend(
                    crate::backend::BackendError::AlreadyExists { .. }
                ))
            ),
            "{:?}",
            r.as_ref().err()
        );
        assert!(region.is_linked());
        region.unlock_slot(producer_lock_slot(1));
        let p = build().unwrap();
        assert!(!region.is_linked(), "reclaimed once the producer let go");
        drop(p);
    }

    #[test]
    fn a_consumer_stalled_in_its_registration_does_not_hold_up_a_restart() {
        use crate::ring::layout::REGISTRY_LOCK_SLOT;
        // Found by the DST (seed 0x765e36303040, with the registry slot in the guard): a
        // consumer stalled 2.2 ms holding the registry lock of a dead producer's ring while
        // the producer restarted; the restart gave up with `AlreadyExists`. A single-producer
        // ring is reclaimed under its consumers, registering or not.
        let world = SimBackend::new_world();
        let dead = world.sibling();
        let p = SharedDisruptorBuilder::<u64, _>::with_backend(dead.clone(), "s", 8)
            .build_producer(|| 0)
            .unwrap();
        dead.kill();
        drop(p);
        let consumer = world.sibling();
        let region = consumer.open("s").unwrap();
        assert!(region.try_lock_slot(REGISTRY_LOCK_SLOT).unwrap());
        let p = SharedDisruptorBuilder::<u64, _>::with_backend(world.sibling(), "s", 8)
            .build_producer(|| 0)
            .unwrap();
        assert!(!region.is_linked(), "reclaimed");
        drop(p);
    }

    #[test]
    fn skip_stamps_are_never_sequences_nor_the_initial_stamp() {
        // Sequences never exceed `registry::MAX_CURSOR` plus a lap.
        for s in [0i64, 1, 2, 1 << 40, registry::MAX_CURSOR + (1 << 30)] {
            let k = skip_stamp(s);
            assert!(k < 0 && k != -1, "{s} -> {k}");
        }
        assert_eq!(skip_stamp(0), -2);
        assert_ne!(skip_stamp(1), skip_stamp(2));
    }
}
