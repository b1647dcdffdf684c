//! [`AsyncProducer`]: a Layer 0 producer whose publishes await space instead of blocking.

use super::doorbell::Doorbell;
use super::wait::poll_wait;
use crate::backend::RingBackend;
use crate::liveness::RequiredConsumerError;
use crate::ring::error::{MultiProcessError, MultiProcessResult, RingBufferFull};
use crate::ring::event::ShmEvent;
use crate::ring::producer::{BatchClaim, Producer};
use crate::Sequence;
use std::future::poll_fn;
use std::task::{Context, Poll};
use std::time::Duration;

/// Longest sleep of a producer waiting for space. A release always rings an async producer (the
/// fenced path of `Consumer::release`), so this bounds only what frees room without a release:
/// a consumer that detaches (its entry stops gating), and the window in which the producer's
/// registration is not yet visible to a consumer.
pub(crate) const ASYNC_SPACE_SLICE: Duration = Duration::from_millis(10);

impl<E: ShmEvent, B: RingBackend> Producer<E, B> {
    /// Turns this producer into an [`AsyncProducer`], whose publishes await space in a full ring
    /// instead of blocking the thread. From now on consumers of this ring ring its doorbell
    /// when they release (a fence on their release path while it lives).
    pub fn into_async(self) -> AsyncProducer<E, B> {
        let backend = self.backend().clone();
        // SAFETY: the line lies in `self`'s mapping; the `AsyncProducer` declares `bell` before
        // `inner`, so the doorbell (and its helper thread) is gone before the mapping is.
        let bell = unsafe { Doorbell::new(self.wake_line(), backend, true) };
        AsyncProducer {
            bell,
            inner: self,
            blocked_since: None,
        }
    }
}

/// A Layer 0 producer with async publishes (feature `tokio`; see [`crate::asynch`]).
///
/// A publish is cancellation-safe: nothing is written before space is there, and the write,
/// the stamp and the announce happen in the poll that completes, so dropping a `publish()`
/// future publishes nothing (its closure is dropped unrun). Dropping the producer closes the
/// stream, as the sync one does.
pub struct AsyncProducer<E: ShmEvent, B: RingBackend = crate::backend::DefaultBackend> {
    // Declared before `inner`: dropped (its helper thread joined) before the mapping.
    bell: Doorbell<B>,
    inner: Producer<E, B>,
    /// When the current wait for space started (for the observability counters).
    blocked_since: Option<Duration>,
}

impl<E: ShmEvent, B: RingBackend> std::fmt::Debug for AsyncProducer<E, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncProducer")
            .field("inner", &self.inner)
            .field("bell", &self.bell)
            .finish()
    }
}

/// Disarms the doorbell when a publish future is dropped before it completed.
struct Waiting<'a, E: ShmEvent, B: RingBackend>(&'a mut AsyncProducer<E, B>);

impl<E: ShmEvent, B: RingBackend> Drop for Waiting<'_, E, B> {
    fn drop(&mut self) {
        self.0.bell.disarm_on_drop();
        self.0.blocked_since = None;
    }
}

impl<E: ShmEvent, B: RingBackend> AsyncProducer<E, B> {
    /// Counts a finished wait, or notes the start of one.
    fn account<T>(&mut self, p: Poll<T>) -> Poll<T> {
        match (&p, self.blocked_since) {
            (Poll::Pending, None) => self.blocked_since = Some(self.inner.now()),
            (Poll::Ready(_), Some(start)) => {
                self.inner
                    .record_space_wait(self.inner.now().saturating_sub(start));
                self.blocked_since = None;
            }
            _ => {}
        }
        p
    }

    /// Ready once `n` slots (`1..=capacity`) are free.
    pub(crate) fn poll_room(&mut self, cx: &mut Context<'_>, n: usize) -> Poll<()> {
        let p = poll_wait(
            &mut self.bell,
            &mut self.inner,
            cx,
            |_| ASYNC_SPACE_SLICE,
            |p| Ok::<_, std::convert::Infallible>(p.has_room(n as i64).then_some(())),
            |p| p.has_room(n as i64),
        );
        self.account(p.map(|r| match r {
            Ok(()) => (),
            Err(never) => match never {},
        }))
    }

    /// Ready once `n` slots are free, running the liveness checks while the ring is full (as
    /// the managed publishes do; a plain room check without liveness enabled).
    pub(crate) fn poll_room_managed(
        &mut self,
        cx: &mut Context<'_>,
        n: usize,
    ) -> Poll<Result<(), RequiredConsumerError>> {
        let p = poll_wait(
            &mut self.bell,
            &mut self.inner,
            cx,
            |p| match p.next_liveness_check() {
                Some(at) => at.saturating_sub(p.now()).min(ASYNC_SPACE_SLICE),
                None => ASYNC_SPACE_SLICE,
            },
            |p| {
                let now = p.now();
                p.managed_try_claim(n, now).map(|s| s.map(drop))
            },
            |p| p.has_room(n as i64),
        );
        self.account(p)
    }

    /// Waits until `n` slots are free (disarming if the future is dropped).
    pub(crate) async fn room(&mut self, n: usize) {
        let w = Waiting(self);
        poll_fn(|cx| w.0.poll_room(cx, n)).await
    }

    /// Waits until `n` slots are free under required-consumer liveness.
    pub(crate) async fn room_managed(&mut self, n: usize) -> Result<(), RequiredConsumerError> {
        let w = Waiting(self);
        poll_fn(|cx| w.0.poll_room_managed(cx, n)).await
    }

    /// Publishes one event written in place by `f`, awaiting a free slot while the slowest
    /// gating consumer holds it (strict broadcast: as long as it takes). Returns its sequence.
    pub async fn publish<F: FnOnce(&mut E)>(&mut self, f: F) -> Sequence {
        let s = loop {
            if let Some(s) = self.inner.try_claim() {
                break s;
            }
            self.room(1).await;
        };
        self.inner.write_and_stamp(s, f);
        self.inner.announce(s);
        s
    }

    /// [`Self::publish`] under required-consumer liveness (see
    /// [`Producer::publish_managed`]): while it awaits space it checks the required consumers
    /// and fails instead of waiting for ever on a stalled one.
    pub async fn publish_managed<F: FnOnce(&mut E)>(
        &mut self,
        f: F,
    ) -> Result<Sequence, RequiredConsumerError> {
        let s = loop {
            self.room_managed(1).await?;
            if let Some(s) = self.inner.try_claim() {
                break s;
            }
        };
        self.inner.write_and_stamp(s, f);
        self.inner.announce(s);
        Ok(s)
    }

    /// Awaits `count` consecutive free slots and claims them, to be written in place and
    /// committed as a unit (see [`Producer::try_claim_batch`]). `InvalidConfig` when `count` is
    /// 0 or exceeds the capacity.
    pub async fn claim_batch(&mut self, count: usize) -> MultiProcessResult<BatchClaim<'_, E, B>> {
        if count == 0 || count > self.inner.capacity() {
            return Err(MultiProcessError::InvalidConfig {
                reason: "a claim must cover between 1 and capacity slots",
            });
        }
        while !self.inner.has_room(count as i64) {
            self.room(count).await;
        }
        self.inner
            .try_claim_batch(count)
            .map_err(|RingBufferFull| MultiProcessError::Corrupt {
                what: "the gating limit moved back after a room check",
                value: count as i64,
            })
    }

    /// [`Self::claim_batch`] under required-consumer liveness (see
    /// [`Producer::claim_batch_managed`]). `InvalidClaim` when `count` is 0 or exceeds the
    /// capacity.
    pub async fn claim_batch_managed(
        &mut self,
        count: usize,
    ) -> Result<BatchClaim<'_, E, B>, RequiredConsumerError> {
        let capacity = self.inner.capacity();
        if count == 0 || count > capacity {
            return Err(RequiredConsumerError::InvalidClaim { count, capacity });
        }
        loop {
            self.room_managed(count).await?;
            if self.inner.has_room(count as i64) {
                break;
            }
        }
        self.inner
            .try_claim_batch(count)
            .map_err(|RingBufferFull| RequiredConsumerError::InvalidClaim { count, capacity })
    }

    /// Publishes one event if a slot is free now.
    pub fn try_publish<F: FnOnce(&mut E)>(&mut self, f: F) -> Result<Sequence, RingBufferFull> {
        self.inner.try_publish(f)
    }

    /// The sync producer inside.
    pub fn get_ref(&self) -> &Producer<E, B> {
        &self.inner
    }

    /// The sync producer inside, mutably (its blocking calls block the thread).
    pub fn get_mut(&mut self) -> &mut Producer<E, B> {
        &mut self.inner
    }

    /// Turns back into a sync producer (its consumers stop ringing this doorbell).
    pub fn into_sync(self) -> Producer<E, B> {
        let AsyncProducer { bell, inner, .. } = self;
        drop(bell);
        inner
    }

    /// Closes the stream: consumers drain what was published, then get `Closed`.
    pub fn close(self) {}
}

// Nothing in the handle is pinned or self-referential (the doorbell's thread points into the
// mapping, not into the handle), so it may move between polls.
impl<E: ShmEvent, B: RingBackend> Unpin for AsyncProducer<E, B> {}
