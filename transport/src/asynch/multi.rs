//! [`AsyncMultiProducer`]: one producer of a multi-producer ring whose publishes await space
//! instead of blocking. (A multi-producer ring's consumers are ordinary consumers of
//! `Sourced<E>`: their `into_async()` is [`crate::AsyncConsumer`].)

use super::doorbell::Doorbell;
use super::producer::ASYNC_SPACE_SLICE;
use super::wait::poll_wait;
use crate::backend::RingBackend;
use crate::ring::error::MultiProcessResult;
use crate::ring::event::ShmEvent;
use crate::ring::multi::MultiProducer;
use crate::Sequence;
use std::future::poll_fn;

impl<E: ShmEvent, B: RingBackend> MultiProducer<E, B> {
    /// Turns this producer into an [`AsyncMultiProducer`], whose publishes await space in a
    /// full ring instead of blocking the thread. From now on consumers of this ring ring its
    /// doorbell when they release (a fence on their release path while it lives); other
    /// producers of the ring, async or not, are unaffected.
    pub fn into_async(self) -> AsyncMultiProducer<E, B> {
        let backend = self.backend().clone();
        // SAFETY: the line lies in `self`'s mapping; the `AsyncMultiProducer` declares `bell`
        // before `inner`, so the doorbell (and its helper thread) is gone before the mapping.
        let bell = unsafe { Doorbell::new(self.wake_line(), backend, true) };
        AsyncMultiProducer { bell, inner: self }
    }
}

/// One producer of a multi-producer ring, with async publishes (feature `tokio`; see
/// [`crate::asynch`]).
///
/// A publish is cancellation-safe: nothing is claimed before there is room, and the claim, the
/// write and the stamps happen in the poll that completes, so dropping a `publish()` future
/// publishes nothing and leaves no hole (its closure is dropped unrun).
///
/// What frees room: a consumer's release rings the doorbell at once. Room that frees up
/// otherwise — a slower producer publishing a claim that held this one back a whole lap
/// behind, a consumer detaching — is seen within the wait's slice (10 ms).
pub struct AsyncMultiProducer<E: ShmEvent, B: RingBackend = crate::backend::DefaultBackend> {
    // Declared before `inner`: dropped (its helper thread joined) before the mapping.
    bell: Doorbell<B>,
    inner: MultiProducer<E, B>,
}

impl<E: ShmEvent, B: RingBackend> std::fmt::Debug for AsyncMultiProducer<E, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncMultiProducer")
            .field("source", &self.inner.source())
            .field("bell", &self.bell)
            .finish()
    }
}

/// Disarms the doorbell when a publish future is dropped before it completed.
struct Waiting<'a, E: ShmEvent, B: RingBackend>(&'a mut AsyncMultiProducer<E, B>);

impl<E: ShmEvent, B: RingBackend> Drop for Waiting<'_, E, B> {
    fn drop(&mut self) {
        self.0.bell.disarm_on_drop();
    }
}

impl<E: ShmEvent, B: RingBackend> AsyncMultiProducer<E, B> {
    /// Claims `n` consecutive slots (`1..=capacity`), awaiting room; a corrupt claim cursor is
    /// an error.
    async fn claim(&mut self, n: usize) -> MultiProcessResult<i64> {
        let w = Waiting(self);
        poll_fn(|cx| {
            let AsyncMultiProducer { bell, inner } = &mut *w.0;
            poll_wait(
                bell,
                inner,
                cx,
                |_| ASYNC_SPACE_SLICE,
                |p| p.try_claim_slots(n),
                |p| p.has_room(n),
            )
        })
        .await
    }

    /// Publishes one event written in place by `f`, awaiting a free slot while a gating
    /// consumer holds it (strict broadcast: as long as it takes). Returns its sequence; a
    /// corrupt claim cursor is an error.
    pub async fn publish<F: FnOnce(&mut E)>(&mut self, f: F) -> MultiProcessResult<Sequence> {
        let s = self.claim(1).await?;
        let mut f = Some(f);
        Ok(self.inner.write_claimed(s, 1, |_, e| {
            if let Some(f) = f.take() {
                f(e)
            }
        }))
    }

    /// Publishes `count` events as one unit (no other producer's event lands between them),
    /// event `i` written in place by `f(i, ..)`, awaiting room for all of them. Returns the
    /// last sequence. `count` must be between 1 and the capacity.
    pub async fn publish_batch<F: FnMut(usize, &mut E)>(
        &mut self,
        count: usize,
        f: F,
    ) -> MultiProcessResult<Sequence> {
        self.inner.check_claim_count(count)?;
        let s = self.claim(count).await?;
        Ok(self.inner.write_claimed(s, count, f))
    }

    /// Publishes one event if a slot is free now (`Ok(None)`: the ring is full).
    pub fn try_publish<F: FnOnce(&mut E)>(&mut self, f: F) -> MultiProcessResult<Option<Sequence>> {
        self.inner.try_publish(f)
    }

    /// The synchronous producer underneath (its source id, name, counters).
    pub fn inner(&self) -> &MultiProducer<E, B> {
        &self.inner
    }
}
