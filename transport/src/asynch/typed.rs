//! Layer 2 async: [`AsyncTypedConsumer`] and [`AsyncTypedProducer`].

use super::framed::{ends_stream, AsyncFramedConsumer, AsyncFramedProducer};
use crate::backend::RingBackend;
use crate::framed::{FramedMessage, FramedTransportFrame, TransportError, TransportResult};
use crate::typed::codec::Codec;
use crate::typed::{TypedConsumer, TypedProducer, TypedPublishError};
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

impl<T, C: Codec<T>, F: FramedTransportFrame, B: RingBackend> TypedConsumer<T, C, F, B> {
    /// Turns this consumer into an [`AsyncTypedConsumer`] (`recv().await` of `T`, a `Stream`
    /// of `T`).
    pub fn into_async(self) -> AsyncTypedConsumer<T, C, F, B> {
        let (framed, codec, decode_errors) = self.into_parts();
        AsyncTypedConsumer {
            framed: framed.into_async(),
            codec,
            decode_errors,
            ended: false,
            _t: PhantomData,
        }
    }
}

/// A typed consumer with async receives (feature `tokio`; see [`crate::asynch`]). Receives are
/// cancellation-safe.
pub struct AsyncTypedConsumer<T, C, F: FramedTransportFrame, B: RingBackend = crate::framed::DefaultBackend>
{
    framed: AsyncFramedConsumer<F, B>,
    codec: C,
    decode_errors: u64,
    ended: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T, C, F: FramedTransportFrame, B: RingBackend> fmt::Debug for AsyncTypedConsumer<T, C, F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncTypedConsumer")
            .field("framed", &self.framed)
            .field("decode_errors", &self.decode_errors)
            .finish_non_exhaustive()
    }
}

fn decode<T, C: Codec<T>, F: FramedTransportFrame, B: RingBackend>(
    codec: &mut C,
    errors: &mut u64,
    msg: &FramedMessage<'_, F, B>,
) -> TransportResult<T> {
    codec.decode(msg.bytes()).map_err(|e| {
        *errors += 1;
        TransportError::Codec(e)
    })
}

/// A received value whose message stays unreleased until this is dropped (see
/// [`AsyncTypedConsumer::recv_leased`]). Derefs to the value.
pub struct TypedLease<'a, T, F: FramedTransportFrame, B: RingBackend> {
    value: T,
    _message: FramedMessage<'a, F, B>,
}

impl<T: fmt::Debug, F: FramedTransportFrame, B: RingBackend> fmt::Debug for TypedLease<'_, T, F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TypedLease").field(&self.value).finish()
    }
}

impl<T, F: FramedTransportFrame, B: RingBackend> std::ops::Deref for TypedLease<'_, T, F, B> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T, F: FramedTransportFrame, B: RingBackend> TypedLease<'_, T, F, B> {
    /// Releases the message and returns the value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T, C: Codec<T>, F: FramedTransportFrame, B: RingBackend> AsyncTypedConsumer<T, C, F, B> {
    /// The next value once its message is there. A message that fails to decode is consumed,
    /// counted and returned as `Codec(..)`; the next receive carries on.
    pub async fn recv(&mut self) -> TransportResult<T> {
        let msg = self.framed.recv().await?;
        decode(&mut self.codec, &mut self.decode_errors, &msg)
    }

    /// The next value, with its message kept unreleased until the returned lease is dropped:
    /// for a message that fits in one frame, the producer cannot overwrite its slot, and a
    /// consumer that crashes before dropping the lease gets the same message again when it
    /// rejoins under its id. So work done (an answer published) before the drop is never lost
    /// to a crash: at-least-once handling. (A fragmented message is released frame by frame as
    /// it is reassembled; its lease pins nothing.)
    pub async fn recv_leased(&mut self) -> TransportResult<TypedLease<'_, T, F, B>> {
        let message = self.framed.recv().await?;
        let value = decode(&mut self.codec, &mut self.decode_errors, &message)?;
        Ok(TypedLease {
            value,
            _message: message,
        })
    }

    /// Polls for the next value (the poll behind the `Stream`).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<TransportResult<T>> {
        let ready = match std::task::ready!(self.framed.poll_ready(cx)) {
            Ok(r) => r,
            Err(e) => return Poll::Ready(Err(e)),
        };
        Poll::Ready(match self.framed.deliver(ready) {
            Ok(msg) => decode(&mut self.codec, &mut self.decode_errors, &msg),
            Err(e) => Err(e),
        })
    }

    /// Messages that failed to decode so far.
    pub fn decode_errors(&self) -> u64 {
        self.decode_errors
    }

    /// The async framed consumer inside.
    pub fn framed(&self) -> &AsyncFramedConsumer<F, B> {
        &self.framed
    }

    /// Turns back into a sync consumer.
    pub fn into_sync(self) -> TypedConsumer<T, C, F, B> {
        TypedConsumer::from_parts(self.framed.into_sync(), self.codec, self.decode_errors)
    }
}

/// Yields every value in order; `Ring(Closed)` and `Ring(ProducerDead)` are yielded once and
/// end the stream; decode and frame errors are yielded and the stream goes on.
impl<T, C: Codec<T> + Unpin, F: FramedTransportFrame, B: RingBackend> futures_core::Stream
    for AsyncTypedConsumer<T, C, F, B>
{
    type Item = TransportResult<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let r = std::task::ready!(this.poll_recv(cx));
        if let Err(e) = &r {
            this.ended = ends_stream(e);
        }
        Poll::Ready(Some(r))
    }
}

impl<T, C: Codec<T>, F: FramedTransportFrame, B: RingBackend> TypedProducer<T, C, F, B> {
    /// Turns this producer into an [`AsyncTypedProducer`], whose publishes await room.
    pub fn into_async(self) -> AsyncTypedProducer<T, C, F, B> {
        let (framed, codec) = self.into_parts();
        AsyncTypedProducer {
            framed: framed.into_async(),
            codec,
            buf: Vec::new(),
            _t: PhantomData,
        }
    }
}

/// A typed producer with async publishes (feature `tokio`; see [`crate::asynch`]).
pub struct AsyncTypedProducer<T, C, F: FramedTransportFrame, B: RingBackend = crate::framed::DefaultBackend>
{
    framed: AsyncFramedProducer<F, B>,
    codec: C,
    buf: Vec<u8>,
    _t: PhantomData<fn(&T)>,
}

impl<T, C, F: FramedTransportFrame, B: RingBackend> fmt::Debug for AsyncTypedProducer<T, C, F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncTypedProducer")
            .field("framed", &self.framed)
            .finish_non_exhaustive()
    }
}

impl<T, C: Codec<T>, F: FramedTransportFrame, B: RingBackend> AsyncTypedProducer<T, C, F, B> {
    fn encode(&mut self, value: &T) -> Result<(), TypedPublishError> {
        self.codec
            .encode(value, &mut self.buf)
            .map_err(TypedPublishError::Encode)
    }

    /// Publishes `value`, awaiting room as long as it takes; returns the message id.
    pub async fn publish(&mut self, value: &T) -> Result<u32, TypedPublishError> {
        self.encode(value)?;
        Ok(self.framed.publish(&self.buf).await?)
    }

    /// Publishes `value` under required-consumer liveness: a stalled required consumer is a
    /// `Transport(Liveness(..))` error, never a silent hang.
    pub async fn publish_managed(&mut self, value: &T) -> Result<u32, TypedPublishError> {
        self.encode(value)?;
        Ok(self.framed.publish_managed(&self.buf).await?)
    }

    /// Publishes `value` if the ring has room for all its frames now.
    pub fn try_publish(&mut self, value: &T) -> Result<u32, TypedPublishError> {
        self.encode(value)?;
        Ok(self.framed.try_publish(&self.buf)?)
    }

    /// Turns on required-consumer liveness for [`Self::publish_managed`].
    pub fn enable_required_consumer_liveness(
        &mut self,
        config: crate::RequiredConsumerLivenessConfig,
    ) -> TransportResult<()> {
        self.framed.enable_required_consumer_liveness(config)
    }

    /// The async framed producer inside.
    pub fn framed(&self) -> &AsyncFramedProducer<F, B> {
        &self.framed
    }

    /// Turns back into a sync producer.
    pub fn into_sync(self) -> TypedProducer<T, C, F, B> {
        TypedProducer::new(self.framed.into_sync(), self.codec)
    }
}

// Nothing in the handle is pinned or self-referential (the doorbell's thread points into the
// mapping, not into the handle), so it may move between polls.
impl<T, C, F: FramedTransportFrame, B: RingBackend> Unpin for AsyncTypedConsumer<T, C, F, B> {}

// As above: no field is ever pinned.
impl<T, C, F: FramedTransportFrame, B: RingBackend> Unpin for AsyncTypedProducer<T, C, F, B> {}
