//! [`AsyncConsumer`]: a Layer 0 consumer whose receives are futures.

use super::doorbell::Doorbell;
use super::wait::poll_wait;
use crate::backend::RingBackend;
use crate::ring::consumer::{Consumer, EventLease};
use crate::ring::error::{MultiProcessError, MultiProcessResult};
use crate::ring::event::ShmEvent;
use crate::ring::wait::AutoWaitStrategy;
use crate::Sequence;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

impl<E: ShmEvent, B: RingBackend> Consumer<E, B> {
    /// Turns this consumer into an [`AsyncConsumer`]: `recv().await` instead of spinning or
    /// blocking a thread, and a [`futures_core::Stream`] of events. The consumer keeps its
    /// entry, cursor and id; [`AsyncConsumer::into_sync`] turns it back.
    pub fn into_async(mut self) -> AsyncConsumer<E, B> {
        let prior = self.wait_strategy();
        // Counts the consumer in `sleepers_registered` through its entry's `sleeper` flag (as a
        // `Block` consumer): from now on every publish checks for armed waiters.
        self.set_wait_strategy(AutoWaitStrategy::Block);
        let backend = self.backend().clone();
        // SAFETY: the line lies in `self`'s mapping; the `AsyncConsumer` declares `bell` before
        // `inner`, so the doorbell (and its helper thread) is gone before the mapping is.
        let bell = unsafe { Doorbell::new(self.wake_line(), backend, false) };
        AsyncConsumer {
            bell,
            inner: self,
            prior,
            ended: false,
        }
    }
}

/// A Layer 0 consumer with async receives (feature `tokio`; see [`crate::asynch`]).
///
/// Every receive is cancellation-safe: an event is consumed only by the poll that returns it,
/// so dropping a `recv()` future (a `tokio::select!` branch that lost, a timeout) loses
/// nothing, and the next receive returns that event. End of stream and a dead producer are the
/// sync API's errors (`Closed`, `ProducerDead`), after everything published was received.
pub struct AsyncConsumer<E: ShmEvent, B: RingBackend = crate::backend::DefaultBackend> {
    // Declared before `inner`: dropped (its helper thread joined) before the mapping.
    bell: Doorbell<B>,
    inner: Consumer<E, B>,
    prior: AutoWaitStrategy,
    /// The stream returned `Closed` or `ProducerDead`: it yields nothing more.
    ended: bool,
}

impl<E: ShmEvent, B: RingBackend> std::fmt::Debug for AsyncConsumer<E, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncConsumer")
            .field("inner", &self.inner)
            .field("bell", &self.bell)
            .finish()
    }
}

/// Disarms the doorbell when a receive future is dropped before it completed.
struct Waiting<'a, E: ShmEvent, B: RingBackend>(&'a mut AsyncConsumer<E, B>);

impl<E: ShmEvent, B: RingBackend> Drop for Waiting<'_, E, B> {
    fn drop(&mut self) {
        self.0.bell.disarm_on_drop();
    }
}

fn stamp_changed(seq: Sequence) -> MultiProcessError {
    MultiProcessError::Corrupt {
        what: "a published slot's stamp changed before it was read",
        value: seq,
    }
}

impl<E: ShmEvent, B: RingBackend> AsyncConsumer<E, B> {
    /// Ready when the next event is there (or an error: end of stream, a dead producer).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<MultiProcessResult<()>> {
        poll_wait(
            &mut self.bell,
            &mut self.inner,
            cx,
            |c| c.producer_check_interval(),
            |c| Ok(c.next_ready()?.then_some(())),
            |c| c.ready_or_closed(),
        )
    }

    /// Polls for the next event (the poll behind [`Self::recv`] and the `Stream`).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<MultiProcessResult<E>> {
        match self.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                let seq = self.inner.next_sequence();
                Poll::Ready(
                    self.inner
                        .try_consume_next()?
                        .ok_or_else(|| stamp_changed(seq)),
                )
            }
        }
    }

    /// The next event, copied out, once it is published.
    pub async fn recv(&mut self) -> MultiProcessResult<E> {
        let w = Waiting(self);
        poll_fn(|cx| w.0.poll_recv(cx)).await
    }

    /// The next event, borrowed in its slot (the producer cannot overwrite it until the lease
    /// is dropped), once it is published.
    pub async fn recv_leased(&mut self) -> MultiProcessResult<EventLease<'_, E, B>> {
        {
            let w = Waiting(&mut *self);
            poll_fn(|cx| w.0.poll_ready(cx)).await?;
        }
        let seq = self.inner.next_sequence();
        self.inner
            .try_consume_next_leased()?
            .ok_or_else(|| stamp_changed(seq))
    }

    /// Waits for the next event, then handles up to `max` published events in place with
    /// `f(event, sequence, end_of_batch)` (see [`Consumer::try_consume_batch`]). Returns how
    /// many were handled (at least one unless `max` is 0).
    pub async fn recv_batch<F>(&mut self, max: usize, f: F) -> MultiProcessResult<usize>
    where
        F: FnMut(&E, Sequence, bool),
    {
        if max == 0 {
            return Ok(0);
        }
        {
            let w = Waiting(&mut *self);
            poll_fn(|cx| w.0.poll_ready(cx)).await?;
        }
        self.inner.try_consume_batch(max, f)
    }

    /// The next event if one is published now (`Ok(None)`: nothing yet).
    pub fn try_recv(&mut self) -> MultiProcessResult<Option<E>> {
        self.inner.try_consume_next()
    }

    /// The sync consumer inside (cursor, lag, id, ...).
    pub fn get_ref(&self) -> &Consumer<E, B> {
        &self.inner
    }

    /// Turns back into a sync consumer with the wait strategy it had before.
    pub fn into_sync(self) -> Consumer<E, B> {
        let AsyncConsumer {
            bell,
            mut inner,
            prior,
            ..
        } = self;
        drop(bell);
        inner.set_wait_strategy(prior);
        inner
    }
}

/// Yields every event in order. `Closed` (end of stream) and `ProducerDead` are yielded once as
/// errors, after everything published was received, and end the stream; other errors are
/// yielded and the stream goes on.
impl<E: ShmEvent, B: RingBackend> futures_core::Stream for AsyncConsumer<E, B> {
    type Item = MultiProcessResult<E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let r = std::task::ready!(this.poll_recv(cx));
        if let Err(MultiProcessError::Closed | MultiProcessError::ProducerDead) = r {
            this.ended = true;
        }
        Poll::Ready(Some(r))
    }
}

impl<E: ShmEvent, B: RingBackend> futures_core::FusedStream for AsyncConsumer<E, B> {
    fn is_terminated(&self) -> bool {
        self.ended
    }
}

// Nothing in the handle is pinned or self-referential (the doorbell's thread points into the
// mapping, not into the handle), so it may move between polls.
impl<E: ShmEvent, B: RingBackend> Unpin for AsyncConsumer<E, B> {}
