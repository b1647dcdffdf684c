//! A broadcast consumer of a ring (Layer 0).
//!
//! A consumer learns of a new event from the slot itself: it loads the stamp of the slot its
//! next sequence maps to. Equal: the event is there. Lower: not yet published. Higher: the slot
//! was overwritten behind a gating consumer, which the protocol rules out, so it is reported as
//! corruption. The hot path touches the slot's line(s) and the consumer's own cursor line only.

use crate::backend::{ProcessState, Region, RingBackend, SchedPoint};
pub use crate::ring::auto::AutoConsumer;
use crate::ring::error::{MultiProcessError, MultiProcessResult};
use crate::ring::event::ShmEvent;
use crate::ring::layout::{skip_stamp, Segment, STATE_CLOSED};
use crate::ring::registry::{self, Registration};
use crate::ring::sync::Ordering;
use crate::ring::wait::{notify_now, AutoWaitStrategy, Idle};
use crate::Sequence;
use std::ops::Deref;
use std::time::Duration;

/// Default interval between checks that the producer process is still alive while a consumer
/// waits (also configurable per consumer).
pub const DEFAULT_PRODUCER_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// Empty polls between two clock reads in the non-blocking path.
const EMPTY_POLLS_PER_CHECK: u32 = 1024;

enum Poll {
    Ready,
    Empty,
}

/// Consumer for a multi-process ring with broadcast semantics: each consumer keeps its own
/// cursor and sees every event. Generic over the backend; use [`crate::SharedConsumer`] and
/// [`crate::MmapConsumer`].
pub struct Consumer<E: ShmEvent, B: RingBackend> {
    seg: Segment<E, B>,
    backend: B,
    name: String,
    id: String,
    reg: Registration,
    token: u64,
    /// Next sequence to read.
    next: i64,
    strategy: AutoWaitStrategy,
    sleeper_registered: bool,
    producer_check_interval: Duration,
    empty_polls: u32,
    last_check: Duration,
    detach_on_drop: bool,
    /// The core the builder pinned this consumer's thread to (an `AutoConsumer` pins its own).
    core: Option<usize>,
    /// Set once the producer was seen dead: from then on every empty poll reports it at once.
    /// (Single-producer rings only: a multi-producer ring may get a new producer.)
    producer_dead: bool,
    /// A multi-producer ring (`ring::multi`): skip markers and abandoned claims are skipped.
    multi: bool,
    /// Slots skipped so far (multi-producer rings; see [`Consumer::abandoned_slots`]).
    abandoned: u64,
}

impl<E: ShmEvent, B: RingBackend> std::fmt::Debug for Consumer<E, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.name)
            .field("id", &self.id)
            .field("backend", &self.backend.kind())
            .field("next", &self.next)
            .finish()
    }
}

/// A borrowed event in its ring slot. The slot stays reserved for this consumer (the producer
/// cannot overwrite it) until the lease is dropped, which releases it and advances the cursor.
pub struct EventLease<'a, E: ShmEvent, B: RingBackend> {
    consumer: &'a mut Consumer<E, B>,
    seq: i64,
    value: *const E,
}

// SAFETY: a lease is a `&mut Consumer` (which is `Send`) plus a pointer to an event in the
// consumer's own mapping that the lease keeps unreleased (I3); moving both to another thread is
// moving that exclusive borrow, and `E: ShmEvent` is `Sync`, so reading the event there is sound.
// (This lets an async task hold a lease across an `.await`, e.g. answer before releasing.)
unsafe impl<E: ShmEvent, B: RingBackend> Send for EventLease<'_, E, B> {}

impl<E: ShmEvent, B: RingBackend> std::fmt::Debug for EventLease<'_, E, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLease")
            .field("sequence", &self.seq)
            .finish()
    }
}

impl<E: ShmEvent, B: RingBackend> EventLease<'_, E, B> {
    /// Sequence of the leased event.
    pub fn sequence(&self) -> Sequence {
        self.seq
    }

    /// Ends the lease *without* releasing the event: the cursor stays before it, the producer
    /// still cannot overwrite it, and the next receive returns the same event again (a peek).
    pub fn keep(self) {
        std::mem::forget(self);
    }
}

impl<E: ShmEvent, B: RingBackend> Deref for EventLease<'_, E, B> {
    type Target = E;
    fn deref(&self) -> &E {
        // SAFETY: I3 — `value` points into the slot of `seq`, whose stamp this consumer acquired
        // and which its cursor (still below `seq`) keeps the producer from reusing while the
        // lease lives; any bit pattern is a valid `E` (`ShmEvent`).
        unsafe { &*self.value }
    }
}

impl<E: ShmEvent, B: RingBackend> Drop for EventLease<'_, E, B> {
    fn drop(&mut self) {
        // A lease dropped by a killed (simulated) process — a madsim node kill drops the task
        // holding it — releases nothing: the event is delivered again after a same-id rejoin,
        // as after SIGKILL. (`false` at compile time on SHM and mmap.)
        if self.consumer.backend.process_killed() {
            return;
        }
        self.consumer.release(self.seq);
    }
}

impl<E: ShmEvent, B: RingBackend> Consumer<E, B> {
    pub(crate) fn from_parts(
        seg: Segment<E, B>,
        backend: B,
        name: String,
        id: String,
        reg: Registration,
        strategy: AutoWaitStrategy,
        producer_check_interval: Duration,
    ) -> Self {
        let token = backend.process_token();
        let now = backend.now();
        let mut c = Consumer {
            seg,
            backend,
            name,
            id,
            reg,
            token,
            next: reg.start,
            strategy: AutoWaitStrategy::BusySpin,
            sleeper_registered: false,
            producer_check_interval,
            empty_polls: 0,
            last_check: now,
            detach_on_drop: true,
            producer_dead: false,
            core: None,
            multi: false,
            abandoned: 0,
        };
        c.multi = c.seg.is_multi_producer();
        c.set_wait_strategy(strategy);
        c
    }

    /// Changes how blocking calls wait when no event is available.
    pub fn set_wait_strategy(&mut self, strategy: AutoWaitStrategy) {
        let wants = strategy == AutoWaitStrategy::Block;
        if wants != self.sleeper_registered {
            self.mark_sleeper(wants);
        }
        self.sleeper_registered = wants;
        self.strategy = strategy;
    }

    /// Counts this consumer in (or out of) `sleepers_registered`, through its entry's `sleeper`
    /// flag so that a rejoin after its death can take the registration back
    /// (`registry::clear_stale_sleeper`). An entry a newer incarnation owns is left alone.
    fn mark_sleeper(&self, on: bool) {
        let e = self.seg.entry(self.reg.index);
        if e.incarnation.load(Ordering::Relaxed) != self.reg.incarnation {
            return;
        }
        let line = &self.seg.header().consumer_wake;
        let was = e.sleeper.swap(u32::from(on), Ordering::SeqCst);
        if on && was == 0 {
            line.sleepers_registered.fetch_add(1, Ordering::SeqCst);
        } else if !on && was != 0 {
            line.sleepers_registered.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The current wait strategy.
    pub fn wait_strategy(&self) -> AutoWaitStrategy {
        self.strategy
    }

    /// Step: is the next event there? (On a multi-producer ring, skip markers on the way are
    /// skipped first.)
    #[inline]
    fn poll(&mut self) -> MultiProcessResult<Poll> {
        self.backend.sched_point(SchedPoint::StampLoad, self.next);
        let stamp = self.seg.slot(self.next).stamp.load(Ordering::Acquire);
        if stamp == self.next {
            Ok(Poll::Ready)
        } else if stamp < self.next {
            if self.multi && stamp == skip_stamp(self.next) {
                return self.skip_markers();
            }
            Ok(Poll::Empty)
        } else {
            Err(MultiProcessError::Corrupt {
                what: "slot stamp ahead of a gating consumer",
                value: stamp,
            })
        }
    }

    /// Skips the skip markers from `next` on (claims their producers gave up), then polls.
    #[cold]
    fn skip_markers(&mut self) -> MultiProcessResult<Poll> {
        loop {
            self.skip_one();
            self.backend.sched_point(SchedPoint::StampLoad, self.next);
            let stamp = self.seg.slot(self.next).stamp.load(Ordering::Acquire);
            if stamp == self.next {
                return Ok(Poll::Ready);
            }
            if stamp > self.next {
                return Err(MultiProcessError::Corrupt {
                    what: "slot stamp ahead of a gating consumer",
                    value: stamp,
                });
            }
            if stamp != skip_stamp(self.next) {
                return Ok(Poll::Empty);
            }
        }
    }

    /// Skips the slot of `next` (a skip marker or an abandoned claim): releases it, counts it.
    fn skip_one(&mut self) {
        crate::observability::record_abandoned(self.seg.entry(self.reg.index));
        self.abandoned += 1;
        tracing::trace!(ring = %self.name, seq = self.next, "skipped an abandoned slot");
        self.release(self.next);
    }

    /// Multi-producer rings, on the empty path: while `next` is claimed but unpublished and no
    /// live producer can still publish it, skips it (see `ring::multi`, "Holes"). Returns
    /// whether some producer is attached and alive, or a claim is in progress.
    #[cold]
    fn skip_abandoned(&mut self) -> MultiProcessResult<bool> {
        let capacity = self.seg.geometry().capacity as i64;
        loop {
            self.backend.sched_point(SchedPoint::HoleCheck, self.next);
            let h = self.seg.header();
            let claimed = h.producer.value.load(Ordering::SeqCst);
            // No producer can claim more than a lap past this consumer's cursor (it gates
            // them), so a claim cursor beyond that is not one a producer wrote: without this
            // check a corrupt cursor would have this loop skip slots for ever.
            if claimed > self.next - 1 + capacity || claimed < -1 {
                return Err(MultiProcessError::Corrupt {
                    what: "claim cursor beyond a gating consumer's lap",
                    value: claimed,
                });
            }
            let stamp = self.seg.slot(self.next).stamp.load(Ordering::Acquire);
            if stamp == self.next {
                return Ok(true);
            }
            if stamp == skip_stamp(self.next) {
                self.skip_one();
                continue;
            }
            if stamp > self.next {
                return Err(MultiProcessError::Corrupt {
                    what: "slot stamp ahead of a gating consumer",
                    value: stamp,
                });
            }
            let (any_alive, covering) = crate::ring::multi::live_producers(&self.seg, self.next);
            if self.next > claimed || covering {
                // Not claimed yet, or a live producer may still publish it: wait.
                return Ok(any_alive || covering);
            }
            // Claimed, unpublished, and every producer that could own it is dead (or gone):
            // re-read the stamp (it may have been published just before its producer died).
            self.backend.sched_point(SchedPoint::StampLoad, self.next);
            if self.seg.slot(self.next).stamp.load(Ordering::Acquire) == self.next {
                return Ok(true);
            }
            tracing::debug!(ring = %self.name, id = %self.id, seq = self.next, "skipping a slot whose producer died before publishing it");
            self.skip_one();
        }
    }

    /// Slots this consumer skipped (multi-producer rings): claims their producers gave up or
    /// died before publishing. Always 0 on a single-producer ring.
    pub fn abandoned_slots(&self) -> u64 {
        self.abandoned
    }

    /// Whether this consumer reads a multi-producer ring.
    pub fn is_multi_producer(&self) -> bool {
        self.multi
    }

    /// Releases every sequence up to `seq` and advances.
    #[inline]
    fn release(&mut self, seq: i64) {
        self.backend.sched_point(SchedPoint::CursorRelease, seq);
        let h = self.seg.header();
        // Pairs with the producer's `Acquire` cursor load in `registry::gating_minimum`: the
        // reads of the released slots happen-before the producer overwrites them.
        #[cfg(not(myelon_mutant = "gating_relaxed_cursor"))]
        const RELEASE: Ordering = Ordering::Release;
        // Mutant: the release store does not order the slot reads before it (loom:
        // `two_consumers_gate_the_wrap`).
        #[cfg(myelon_mutant = "gating_relaxed_cursor")]
        const RELEASE: Ordering = Ordering::Relaxed;
        self.seg
            .entry(self.reg.index)
            .cursor
            .value
            .store(seq, RELEASE);
        self.next = seq + 1;
        self.empty_polls = 0;
        let w = &h.producer_wake;
        // Mutant: the release path keeps its unfenced check even for an async producer (loom:
        // `async_publish_wakes_after_release`).
        #[cfg(myelon_mutant = "release_unfenced")]
        let registered = false;
        #[cfg(not(myelon_mutant = "release_unfenced"))]
        let registered = w.sleepers_registered.load(Ordering::Relaxed) != 0;
        if registered {
            // An async producer counts itself there: it must not miss a wake-up, so the fenced
            // protocol (`wait::notify_now` pairs with its doorbell's arm, `asynch/doorbell.rs`).
            notify_now(&self.backend, w);
        } else if w.waiters.load(Ordering::Relaxed) != 0 {
            // Unfenced on purpose (keeps the release path fence-free); a sync producer that
            // blocks for space sleeps in short slices, which bounds the cost of a missed wake.
            w.seq.fetch_add(1, Ordering::Release);
            self.backend.wake_all(&w.seq);
        }
    }

    /// The empty path: end of stream, dead producer, or just nothing yet.
    fn on_empty(&mut self, force_check: bool) -> MultiProcessResult<()> {
        self.backend.sched_point(SchedPoint::ProducerCheck, 0);
        let h = self.seg.header();
        if self.multi {
            return self.on_empty_multi(force_check);
        }
        if h.state.load(Ordering::Acquire) == STATE_CLOSED {
            // Mutant: end of stream without draining what was published before CLOSED.
            #[cfg(myelon_mutant = "closed_before_drain")]
            return Err(MultiProcessError::Closed);
            // Everything the producer published happens-before CLOSED; re-poll once.
            #[allow(unreachable_code)]
            return match self.poll()? {
                Poll::Ready => Ok(()),
                Poll::Empty => Err(MultiProcessError::Closed),
            };
        }
        if self.producer_dead {
            return self.dead_unless_ready();
        }
        self.empty_polls = self.empty_polls.wrapping_add(1);
        if !force_check && self.empty_polls % EMPTY_POLLS_PER_CHECK != 0 {
            return Ok(());
        }
        let now = self.backend.now();
        if now.saturating_sub(self.last_check) < self.producer_check_interval {
            return Ok(());
        }
        self.last_check = now;
        if self.seg.region().owner_state() == ProcessState::Dead {
            tracing::warn!(ring = %self.name, id = %self.id, "producer died without closing");
            self.producer_dead = true;
            return self.dead_unless_ready();
        }
        Ok(())
    }

    /// The empty path of a multi-producer ring: end of stream once the last producer closed and
    /// everything claimed was read or skipped; `ProducerDead` while no producer is alive (not
    /// sticky: a new producer may attach); abandoned claims skipped.
    #[cold]
    fn on_empty_multi(&mut self, force_check: bool) -> MultiProcessResult<()> {
        let closed = self.seg.header().state.load(Ordering::Acquire) == STATE_CLOSED;
        if !closed {
            self.empty_polls = self.empty_polls.wrapping_add(1);
            if !force_check && self.empty_polls % EMPTY_POLLS_PER_CHECK != 0 {
                return Ok(());
            }
            let now = self.backend.now();
            if now.saturating_sub(self.last_check) < self.producer_check_interval {
                return Ok(());
            }
            self.last_check = now;
        }
        let alive = self.skip_abandoned()?;
        if let Poll::Ready = self.poll()? {
            return Ok(());
        }
        if closed {
            // Every producer detached: whatever is still unpublished below the claim cursor
            // was abandoned, and `skip_abandoned` skipped it.
            return Err(MultiProcessError::Closed);
        }
        if !alive {
            return Err(MultiProcessError::ProducerDead);
        }
        Ok(())
    }

    /// After the producer died: events it published before dying are still delivered.
    fn dead_unless_ready(&mut self) -> MultiProcessResult<()> {
        match self.poll()? {
            Poll::Ready => Ok(()),
            Poll::Empty => Err(MultiProcessError::ProducerDead),
        }
    }

    /// Leases the slot of `next`, whose stamp the caller has just seen ready (and not released
    /// since): no stamp load. The framed consumer takes a frame it kept this way.
    pub(crate) fn lease_ready(&mut self) -> EventLease<'_, E, B> {
        let seq = self.next;
        // Mutant: the slot is released (cursor stored) before the event is read.
        #[cfg(myelon_mutant = "release_before_read")]
        self.seg
            .entry(self.reg.index)
            .cursor
            .value
            .store(seq, Ordering::Release);
        self.backend.sched_point(SchedPoint::SlotRead, seq);
        let value = self.seg.slot(seq).value.with(|p| p);
        EventLease {
            consumer: self,
            seq,
            value,
        }
    }

    /// The backend's clock (virtual under the simulator): what every deadline of this consumer
    /// and the layers above it is measured on.
    #[inline]
    pub(crate) fn now(&self) -> Duration {
        self.backend.now()
    }

    /// Borrows the next event in place if one is published. `Ok(None)`: nothing yet.
    /// `Err(Closed)`: the producer closed the stream and everything was consumed.
    /// `Err(ProducerDead)`: the producer died (checked at most every producer-check interval).
    #[inline]
    pub fn try_consume_next_leased(&mut self) -> MultiProcessResult<Option<EventLease<'_, E, B>>> {
        match self.poll()? {
            Poll::Ready => Ok(Some(self.lease_ready())),
            Poll::Empty => {
                self.on_empty(false)?;
                self.seg.prefetch_slot_data(self.next);
                Ok(None)
            }
        }
    }

    /// Copies out the next event if one is published (see [`Self::try_consume_next_leased`]).
    #[inline]
    pub fn try_consume_next(&mut self) -> MultiProcessResult<Option<E>> {
        Ok(self.try_consume_next_leased()?.map(|l| *l))
    }

    /// Waits (with the consumer's strategy) until the next event is published, at most
    /// `timeout` (`None`: no bound). Dead producers and end of stream end the wait.
    fn wait_ready(&mut self, timeout: Option<Duration>) -> MultiProcessResult<()> {
        if let Poll::Ready = self.poll()? {
            return Ok(());
        }
        let start = self.backend.now();
        let mut idle = Idle::default();
        loop {
            self.on_empty(true)?;
            if let Poll::Ready = self.poll()? {
                return Ok(());
            }
            self.seg.prefetch_slot_data(self.next);
            let waited = self.backend.now().saturating_sub(start);
            let max = match timeout {
                Some(t) if waited >= t => {
                    return Err(MultiProcessError::Timeout {
                        op: "consume",
                        waited,
                    })
                }
                Some(t) => (t - waited).min(self.producer_check_interval),
                None => self.producer_check_interval,
            };
            let slot = self.seg.slot(self.next);
            let next = self.next;
            idle.wait(
                self.strategy,
                &self.backend,
                &self.seg.header().consumer_wake,
                max,
                || {
                    let s = slot.stamp.load(Ordering::Acquire);
                    s >= next || s == skip_stamp(next)
                },
            );
        }
    }

    /// The async API's poll (`asynch/`): whether the next event is there; when it is not,
    /// the empty path runs with the producer check due (at most every producer-check
    /// interval, by the clock), so end of stream and a dead producer are errors here.
    #[cfg(feature = "tokio")]
    pub(crate) fn next_ready(&mut self) -> MultiProcessResult<bool> {
        if let Poll::Ready = self.poll()? {
            return Ok(true);
        }
        self.on_empty(true)?;
        Ok(matches!(self.poll()?, Poll::Ready))
    }

    /// The async API's re-check after arming its doorbell: the next slot is stamped (or
    /// stamped beyond: corrupt, which the next poll reports), or the stream is closed. Both
    /// sides of the close (`Producer::drop`) bump the wake word after storing `CLOSED`, so a
    /// waiter that saw the bump sees `CLOSED` here.
    #[cfg(feature = "tokio")]
    pub(crate) fn ready_or_closed(&self) -> bool {
        self.backend.sched_point(SchedPoint::StampLoad, self.next);
        let s = self.seg.slot(self.next).stamp.load(Ordering::Acquire);
        s >= self.next
            || s == skip_stamp(self.next)
            || self.seg.header().state.load(Ordering::Acquire) == STATE_CLOSED
    }

    /// The wake line a waiting consumer arms (the async doorbell).
    #[cfg(feature = "tokio")]
    pub(crate) fn wake_line(&self) -> &crate::ring::layout::WakeLine {
        &self.seg.header().consumer_wake
    }

    /// This consumer's backend handle.
    #[cfg(feature = "tokio")]
    pub(crate) fn backend(&self) -> &B {
        &self.backend
    }

    /// How often a waiting consumer checks that the producer is alive.
    #[cfg(feature = "tokio")]
    pub(crate) fn producer_check_interval(&self) -> Duration {
        self.producer_check_interval
    }

    /// Borrows the next event, waiting as long as it takes (until end of stream or a dead
    /// producer).
    pub fn consume_next_leased(&mut self) -> MultiProcessResult<EventLease<'_, E, B>> {
        self.wait_ready(None)?;
        Ok(self.lease_ready())
    }

    /// Borrows the next event, waiting at most `timeout`.
    pub fn consume_next_leased_timeout(
        &mut self,
        timeout: Duration,
    ) -> MultiProcessResult<EventLease<'_, E, B>> {
        self.wait_ready(Some(timeout))?;
        Ok(self.lease_ready())
    }

    /// Copies out the next event, waiting as long as it takes.
    pub fn consume_next(&mut self) -> MultiProcessResult<E> {
        Ok(*self.consume_next_leased()?)
    }

    /// Copies out the next event, waiting at most `timeout`.
    pub fn consume_next_timeout(&mut self, timeout: Duration) -> MultiProcessResult<E> {
        Ok(*self.consume_next_leased_timeout(timeout)?)
    }

    /// Copies out the next event, sleeping [`crate::default_consume_sleep_duration`] between
    /// polls regardless of the configured strategy.
    pub fn consume_next_with_sleep(&mut self) -> MultiProcessResult<E> {
        let saved = self.strategy;
        self.set_wait_strategy(AutoWaitStrategy::Sleep(
            crate::ring::wait::default_consume_sleep_duration(),
        ));
        let r = self.consume_next();
        self.set_wait_strategy(saved);
        r
    }

    /// Handles up to `max` published events in place with `f(event, sequence, end_of_batch)`
    /// and releases them with one cursor store. Returns how many were handled (0: none
    /// available). End of stream and a dead producer are reported only when nothing is left.
    pub fn try_consume_batch<F>(&mut self, max: usize, mut f: F) -> MultiProcessResult<usize>
    where
        F: FnMut(&E, Sequence, bool),
    {
        if max == 0 {
            return Ok(0);
        }
        if let Poll::Empty = self.poll()? {
            self.on_empty(false)?;
            return Ok(0);
        }
        let first = self.next;
        let mut n = 0usize;
        let mut seq = first;
        loop {
            let slot = self.seg.slot(seq);
            let has_next = n + 1 < max && {
                self.backend.sched_point(SchedPoint::StampLoad, seq + 1);
                let s = self.seg.slot(seq + 1).stamp.load(Ordering::Acquire);
                if s > seq + 1 {
                    return Err(MultiProcessError::Corrupt {
                        what: "slot stamp ahead of a gating consumer",
                        value: s,
                    });
                }
                s == seq + 1
            };
            self.backend.sched_point(SchedPoint::SlotRead, seq);
            slot.value.with(|p| {
                // SAFETY: I3 — the stamp of `seq` was acquired (before the loop for `first`,
                // as `has_next` of the previous iteration otherwise) and this consumer's cursor
                // is still below `seq`, so the producer cannot overwrite the slot during `f`.
                f(unsafe { &*p }, seq, !has_next)
            });
            n += 1;
            if !has_next {
                break;
            }
            seq += 1;
        }
        self.release(seq);
        Ok(n)
    }

    /// [`Self::try_consume_batch`], waiting up to `timeout` for the first event.
    pub fn consume_batch_timeout<F>(
        &mut self,
        max: usize,
        timeout: Duration,
        f: F,
    ) -> MultiProcessResult<usize>
    where
        F: FnMut(&E, Sequence, bool),
    {
        self.wait_ready(Some(timeout))?;
        self.try_consume_batch(max, f)
    }

    #[cfg(test)]
    pub(crate) fn segment(&self) -> &Segment<E, B> {
        &self.seg
    }

    /// Last released sequence (-1 before the first).
    pub fn cursor(&self) -> Sequence {
        self.next - 1
    }

    /// Next sequence this consumer will read.
    pub fn next_sequence(&self) -> Sequence {
        self.next
    }

    /// The producer's cursor minus this consumer's: events published but not yet released.
    pub fn lag(&self) -> i64 {
        let p = self.seg.header().producer.value.load(Ordering::Acquire);
        (p - self.cursor()).max(0)
    }

    /// The observability counter line of this consumer's table entry.
    pub(crate) fn counters(&self) -> &crate::ring::layout::CounterLine {
        &self.seg.entry(self.reg.index).counters
    }

    /// This consumer's id.
    pub fn consumer_id(&self) -> &str {
        &self.id
    }

    /// Whether this consumer resumed an existing entry (same-id rejoin or a reservation).
    pub fn resumed(&self) -> bool {
        self.reg.resumed
    }

    /// The ring's epoch: a value chosen each time a producer creates the ring, so a consumer
    /// can tell the ring it attached to from one re-created later under the same name (after
    /// its producer died and restarted, say).
    pub fn ring_epoch(&self) -> u64 {
        self.seg.header().epoch.load(Ordering::Relaxed)
    }

    /// Ring capacity in events.
    pub fn capacity(&self) -> usize {
        self.seg.geometry().capacity
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn set_core(&mut self, core: Option<usize>) {
        self.core = core;
    }

    /// The core the builder pinned this consumer to (`with_consumer_core`, `with_process_core`
    /// or the `MYELON_*_CORE` variables), if any.
    pub fn core(&self) -> Option<usize> {
        self.core
    }

    /// Turns the consumer's entry into a reservation for its id when dropped: it keeps gating
    /// the producer, and the next consumer attaching with the same id resumes exactly here.
    /// Without this, dropping detaches (the entry stops gating and is freed). An anonymous
    /// consumer (attached without an id) has no id to resume under: its entry is freed anyway.
    pub fn keep_registration_on_drop(&mut self) {
        self.detach_on_drop = false;
    }
}

impl<E: ShmEvent, B: RingBackend> Drop for Consumer<E, B> {
    fn drop(&mut self) {
        // A killed (simulated) process runs no more code: its entry stays, still gating.
        if self.backend.process_killed() {
            return;
        }
        if self.sleeper_registered {
            self.mark_sleeper(false);
        }
        registry::detach(
            &self.seg,
            &self.backend,
            self.reg.index,
            self.reg.incarnation,
            self.token,
            !self.detach_on_drop,
        );
    }
}
