//! Layer 1 async: [`AsyncFramedConsumer`] and [`AsyncFramedProducer`].

use super::doorbell::Doorbell;
use super::producer::AsyncProducer;
use super::wait::poll_wait;
use crate::backend::RingBackend;
use crate::framed::{
    fill_and_commit, FramedMessage, FramedTransportConsumer, FramedTransportFrame,
    FramedTransportProducer, Ready, TransportError, TransportResult,
};
use crate::ring::error::MultiProcessError;
use crate::ring::wait::AutoWaitStrategy;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

impl<F: FramedTransportFrame, B: RingBackend> FramedTransportConsumer<F, B> {
    /// Turns this consumer into an [`AsyncFramedConsumer`] (`recv().await` of whole messages, a
    /// `Stream` of owned messages). A message partly received stays in progress.
    pub fn into_async(mut self) -> AsyncFramedConsumer<F, B> {
        let inner = self.inner_mut();
        let prior = inner.wait_strategy();
        // As `Consumer::into_async`: counted in `sleepers_registered` through its entry.
        inner.set_wait_strategy(AutoWaitStrategy::Block);
        let backend = inner.backend().clone();
        // SAFETY: the line lies in the mapping of `self`'s Layer 0 consumer; the
        // `AsyncFramedConsumer` declares `bell` before `framed`, so the doorbell (and its
        // helper thread) is gone before the mapping is.
        let bell = unsafe { Doorbell::new(inner.wake_line(), backend, false) };
        AsyncFramedConsumer {
            bell,
            framed: self,
            prior,
            ended: false,
        }
    }
}

/// A framed consumer with async receives (feature `tokio`; see [`crate::asynch`]).
///
/// Receives are cancellation-safe: frames are taken from the ring only while a poll runs, and
/// a message partly reassembled when a `recv()` future is dropped stays in progress for the
/// next receive.
pub struct AsyncFramedConsumer<F: FramedTransportFrame, B: RingBackend = crate::framed::DefaultBackend>
{
    // Declared before `framed`: dropped (its helper thread joined) before the mapping.
    bell: Doorbell<B>,
    framed: FramedTransportConsumer<F, B>,
    prior: AutoWaitStrategy,
    ended: bool,
}

impl<F: FramedTransportFrame, B: RingBackend> std::fmt::Debug for AsyncFramedConsumer<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncFramedConsumer")
            .field("framed", &self.framed)
            .field("bell", &self.bell)
            .finish()
    }
}

struct Waiting<'a, F: FramedTransportFrame, B: RingBackend>(&'a mut AsyncFramedConsumer<F, B>);

impl<F: FramedTransportFrame, B: RingBackend> Drop for Waiting<'_, F, B> {
    fn drop(&mut self) {
        self.0.bell.disarm_on_drop();
    }
}

/// Whether an error ends a stream (as it ends the sync receive loop).
pub(crate) fn ends_stream(e: &TransportError) -> bool {
    matches!(
        e,
        TransportError::Ring(MultiProcessError::Closed | MultiProcessError::ProducerDead)
    )
}

impl<F: FramedTransportFrame, B: RingBackend> AsyncFramedConsumer<F, B> {
    /// Ready once a whole message is ready to deliver.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<TransportResult<Ready>> {
        poll_wait(
            &mut self.bell,
            &mut self.framed,
            cx,
            |f| f.inner().producer_check_interval(),
            |f| {
                if let Some(r) = f.try_ready()? {
                    return Ok(Some(r));
                }
                // Nothing whole yet: end of stream and a dead producer are errors here.
                f.inner_mut().next_ready()?;
                Ok(None)
            },
            |f| f.inner().ready_or_closed(),
        )
    }

    /// Awaits the next message being ready (disarming if the future is dropped).
    pub(crate) async fn ready(&mut self) -> TransportResult<Ready> {
        let w = Waiting(self);
        poll_fn(|cx| w.0.poll_ready(cx)).await
    }

    /// Hands over a message [`Self::ready`] found.
    pub(crate) fn deliver(&mut self, ready: Ready) -> TransportResult<FramedMessage<'_, F, B>> {
        self.framed.deliver(ready)
    }

    /// The next whole message once it is there (in its slot for a single frame, in the
    /// reassembly buffer otherwise; see [`FramedTransportConsumer::recv`]).
    pub async fn recv(&mut self) -> TransportResult<FramedMessage<'_, F, B>> {
        let ready = self.ready().await?;
        self.framed.deliver(ready)
    }

    /// The next whole message, copied into a vector (for holding across `.await`s).
    pub async fn recv_vec(&mut self) -> TransportResult<Vec<u8>> {
        Ok(self.recv().await?.to_vec())
    }

    /// The next whole message if one is there now.
    pub fn try_recv(&mut self) -> TransportResult<Option<FramedMessage<'_, F, B>>> {
        self.framed.try_recv()
    }

    /// The sync consumer inside (counters: messages received, dropped).
    pub fn get_ref(&self) -> &FramedTransportConsumer<F, B> {
        &self.framed
    }

    /// Turns back into a sync consumer.
    pub fn into_sync(self) -> FramedTransportConsumer<F, B> {
        let AsyncFramedConsumer {
            bell,
            mut framed,
            prior,
            ..
        } = self;
        drop(bell);
        framed.inner_mut().set_wait_strategy(prior);
        framed
    }
}

/// Yields every whole message as an owned vector; `Ring(Closed)` and `Ring(ProducerDead)` are
/// yielded once and end the stream; frame errors are yielded and the stream goes on with the
/// next message (as the sync receive does).
impl<F: FramedTransportFrame, B: RingBackend> futures_core::Stream for AsyncFramedConsumer<F, B> {
    type Item = TransportResult<Vec<u8>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let r = match std::task::ready!(this.poll_ready(cx)) {
            Ok(ready) => this.framed.deliver(ready).map(|m| m.to_vec()),
            Err(e) => Err(e),
        };
        if let Err(e) = &r {
            this.ended = ends_stream(e);
        }
        Poll::Ready(Some(r))
    }
}

impl<F: FramedTransportFrame, B: RingBackend> futures_core::FusedStream
    for AsyncFramedConsumer<F, B>
{
    fn is_terminated(&self) -> bool {
        self.ended
    }
}

impl<F: FramedTransportFrame, B: RingBackend> FramedTransportProducer<F, B> {
    /// Turns this producer into an [`AsyncFramedProducer`], whose publishes await room.
    pub fn into_async(self) -> AsyncFramedProducer<F, B> {
        let (producer, next_id, max_message_size) = self.into_parts();
        AsyncFramedProducer {
            inner: producer.into_async(),
            next_id,
            max_message_size,
        }
    }
}

/// A framed producer with async publishes (feature `tokio`; see [`crate::asynch`]).
///
/// A message that fits in the ring is claimed and committed as a unit in the poll that
/// completes the publish: dropping the future earlier publishes nothing. A message larger than
/// the ring is streamed in ring-sized parts (as the sync `publish` does); dropping its future
/// after the first part leaves consumers a partial message, which they drop and count.
pub struct AsyncFramedProducer<F: FramedTransportFrame, B: RingBackend = crate::framed::DefaultBackend>
{
    inner: AsyncProducer<F, B>,
    next_id: u32,
    max_message_size: usize,
}

impl<F: FramedTransportFrame, B: RingBackend> std::fmt::Debug for AsyncFramedProducer<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncFramedProducer")
            .field("inner", &self.inner)
            .field("next_message_id", &self.next_id)
            .finish()
    }
}

impl<F: FramedTransportFrame, B: RingBackend> AsyncFramedProducer<F, B> {
    fn frames(&self, len: usize) -> TransportResult<usize> {
        if len > self.max_message_size {
            return Err(TransportError::MessageTooLarge {
                message_id: 0,
                len,
                max: self.max_message_size,
            });
        }
        Ok(FramedTransportProducer::<F, B>::frames_for(len))
    }

    /// Publishes `payload` as one message, awaiting room as long as it takes; returns its id.
    pub async fn publish(&mut self, payload: &[u8]) -> TransportResult<u32> {
        self.publish_with(payload, false).await
    }

    /// [`Self::publish`] under required-consumer liveness (see
    /// [`FramedTransportProducer::publish_managed`]).
    pub async fn publish_managed(&mut self, payload: &[u8]) -> TransportResult<u32> {
        self.publish_with(payload, true).await
    }

    async fn publish_with(&mut self, payload: &[u8], managed: bool) -> TransportResult<u32> {
        let frames = self.frames(payload.len())?;
        let id = self.next_id;
        let capacity = self.inner.get_ref().capacity();
        let mut first = 0;
        while first < frames {
            let count = (frames - first).min(capacity);
            let batch = if managed {
                self.inner.claim_batch_managed(count).await?
            } else {
                self.inner.claim_batch(count).await?
            };
            fill_and_commit(batch, id, first, frames, payload);
            // The id is used up once a part is visible (a dropped future must not reuse it).
            self.next_id = id.wrapping_add(1);
            first += count;
        }
        Ok(id)
    }

    /// Publishes `payload` if the ring has room for all its frames now.
    pub fn try_publish(&mut self, payload: &[u8]) -> TransportResult<u32> {
        let frames = self.frames(payload.len())?;
        let capacity = self.inner.get_ref().capacity();
        if frames > capacity {
            return Err(TransportError::ExceedsCapacity { frames, capacity });
        }
        let id = self.next_id;
        let batch = self
            .inner
            .get_mut()
            .try_claim_batch(frames)
            .map_err(|_| TransportError::Full { frames })?;
        fill_and_commit(batch, id, 0, frames, payload);
        self.next_id = id.wrapping_add(1);
        Ok(id)
    }

    /// Id the next message will carry.
    pub fn next_message_id(&self) -> u32 {
        self.next_id
    }

    /// The Layer 0 async producer inside.
    pub fn get_ref(&self) -> &AsyncProducer<F, B> {
        &self.inner
    }

    /// Turns on required-consumer liveness for [`Self::publish_managed`].
    pub fn enable_required_consumer_liveness(
        &mut self,
        config: crate::RequiredConsumerLivenessConfig,
    ) -> TransportResult<()> {
        Ok(self
            .inner
            .get_mut()
            .enable_required_consumer_liveness(config)?)
    }

    /// Turns back into a sync producer.
    pub fn into_sync(self) -> FramedTransportProducer<F, B> {
        FramedTransportProducer::from_parts(
            self.inner.into_sync(),
            self.next_id,
            self.max_message_size,
        )
    }
}

// Nothing in the handle is pinned or self-referential (the doorbell's thread points into the
// mapping, not into the handle), so it may move between polls.
impl<F: FramedTransportFrame, B: RingBackend> Unpin for AsyncFramedConsumer<F, B> {}

// As above: no field is ever pinned.
impl<F: FramedTransportFrame, B: RingBackend> Unpin for AsyncFramedProducer<F, B> {}
