//! Layers 2 and 3 — typed messages: a [`Codec`] on top of the framed transport.
//!
//! [`TypedProducer`] encodes each value into a buffer it reuses and publishes the bytes as one
//! framed message (fragmented if needed). [`TypedConsumer`] receives the next message and either
//! decodes an owned value ([`TypedConsumer::try_recv`], Layer 2) or, with a
//! [`ZeroCopyCodec`], hands a validated view of the bytes to a closure
//! ([`TypedConsumer::try_recv_access`], Layer 3):
//!
//! * a **single-frame** message is accessed **in place in its ring slot** (the slot stays
//!   leased while the closure runs), with no copy and no deserialization — provided the slot's
//!   payload has the alignment the codec needs ([`ZeroCopyCodec::ALIGN`]: 16 for rkyv, which
//!   [`AlignedFixedFrame`] provides; 1 for flatbuffers). Misaligned bytes (rkyv in a
//!   [`FixedFrame`], whose payload starts 4 bytes into a 16-byte line) are first copied into an
//!   aligned buffer the consumer reuses.
//! * a **fragmented** message is accessed in the framed consumer's reassembly buffer (16-byte
//!   aligned), after the one copy reassembly makes: still no deserialization, no allocation in
//!   steady state.
//!
//! A message that fails to decode or validate is a [`TransportError::Codec`]; it is consumed,
//! counted ([`TypedConsumer::decode_errors`]) and the consumer carries on with the next one.
//!
//! [`AlignedFixedFrame`]: crate::framed::AlignedFixedFrame
//! [`FixedFrame`]: crate::framed::FixedFrame

pub mod codec;

use crate::backend::RingBackend;
use crate::typed::codec::{Codec, CodecError, ZeroCopyCodec};
use crate::liveness::RequiredConsumerLivenessConfig;
use crate::framed::{
    AlignedBuf, DefaultBackend, FramedMessage, FramedMultiProducer, FramedTransportConsumer,
    FramedTransportFrame, FramedTransportProducer, TransportError, TransportResult,
};
use crate::SharedDisruptorBuilder;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

/// Why publishing a typed message failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum TypedPublishError {
    /// The value could not be encoded (nothing was published).
    Encode(CodecError),
    /// The framed transport refused the message (see [`TransportError`]).
    Transport(TransportError),
}

impl fmt::Display for TypedPublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypedPublishError::Encode(e) => write!(f, "encode: {e}"),
            TypedPublishError::Transport(e) => write!(f, "transport: {e}"),
        }
    }
}

impl std::error::Error for TypedPublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TypedPublishError::Encode(e) => Some(e),
            TypedPublishError::Transport(e) => Some(e),
        }
    }
}

impl From<TransportError> for TypedPublishError {
    fn from(e: TransportError) -> Self {
        TypedPublishError::Transport(e)
    }
}

/// Publishes values of `T` encoded with codec `C` over a framed ring of `F` on backend `B`
/// (POSIX shared memory by default; [`MmapTypedProducer`] for files).
pub struct TypedProducer<T, C, F: FramedTransportFrame, B: RingBackend = DefaultBackend> {
    framed: FramedTransportProducer<F, B>,
    codec: C,
    buf: Vec<u8>,
    _t: PhantomData<fn(&T)>,
}

impl<T, C, F: FramedTransportFrame, B: RingBackend> fmt::Debug for TypedProducer<T, C, F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedProducer")
            .field("framed", &self.framed)
            .finish_non_exhaustive()
    }
}

impl<T, C: Codec<T>, F: FramedTransportFrame, B: RingBackend> TypedProducer<T, C, F, B> {
    /// Wraps a framed producer.
    pub fn new(framed: FramedTransportProducer<F, B>, codec: C) -> Self {
        TypedProducer {
            framed,
            codec,
            buf: Vec::new(),
            _t: PhantomData,
        }
    }

    /// Creates the ring described by `builder` and wraps it.
    pub fn from_builder(builder: SharedDisruptorBuilder<F, B>, codec: C) -> TransportResult<Self> {
        Ok(Self::new(
            FramedTransportProducer::from_builder(builder)?,
            codec,
        ))
    }

    /// The framed producer.
    pub fn framed(&self) -> &FramedTransportProducer<F, B> {
        &self.framed
    }

    /// The framed producer, mutably (to publish raw byte messages in the same stream).
    pub fn framed_mut(&mut self) -> &mut FramedTransportProducer<F, B> {
        &mut self.framed
    }

    /// The codec.
    pub fn codec_mut(&mut self) -> &mut C {
        &mut self.codec
    }

    /// Unwraps the framed producer.
    pub fn into_inner(self) -> FramedTransportProducer<F, B> {
        self.framed
    }

    /// The parts, for the async producer (`asynch/typed.rs`).
    #[cfg(feature = "tokio")]
    pub(crate) fn into_parts(self) -> (FramedTransportProducer<F, B>, C) {
        (self.framed, self.codec)
    }

    fn encode(&mut self, value: &T) -> Result<(), TypedPublishError> {
        self.codec
            .encode(value, &mut self.buf)
            .map_err(TypedPublishError::Encode)
    }

    /// Publishes `value` if the ring has room for all its frames now; returns the message id.
    pub fn try_publish(&mut self, value: &T) -> Result<u32, TypedPublishError> {
        self.encode(value)?;
        Ok(self.framed.try_publish(&self.buf)?)
    }

    /// Publishes `value`, waiting for room as long as it takes.
    pub fn publish(&mut self, value: &T) -> Result<u32, TypedPublishError> {
        self.encode(value)?;
        Ok(self.framed.publish(&self.buf)?)
    }

    /// Turns on required-consumer liveness for [`Self::publish_managed`] (see
    /// [`crate::liveness`]).
    pub fn enable_required_consumer_liveness(
        &mut self,
        config: RequiredConsumerLivenessConfig,
    ) -> TransportResult<()> {
        self.framed.enable_required_consumer_liveness(config)
    }

    /// Publishes `value` under required-consumer liveness: a stalled required consumer is a
    /// `Transport(Liveness(..))` error, never a silent hang (see
    /// [`FramedTransportProducer::publish_managed`]).
    pub fn publish_managed(&mut self, value: &T) -> Result<u32, TypedPublishError> {
        self.encode(value)?;
        Ok(self.framed.publish_managed(&self.buf)?)
    }

    /// Publishes `value`, waiting at most `timeout` for room.
    pub fn publish_timeout(
        &mut self,
        value: &T,
        timeout: Duration,
    ) -> Result<u32, TypedPublishError> {
        self.encode(value)?;
        Ok(self.framed.publish_timeout(&self.buf, timeout)?)
    }
}

/// Publishes values of `T` encoded with codec `C` into a multi-producer framed ring of `F`, as
/// one of its producers (see [`crate::FramedMultiProducer`]). Consumers are ordinary
/// [`TypedConsumer`]s of `Sourced<F>`; [`TypedConsumer::last_source`] names the producer of the
/// value just received.
pub struct TypedMultiProducer<T, C, F: FramedTransportFrame, B: RingBackend = DefaultBackend> {
    framed: FramedMultiProducer<F, B>,
    codec: C,
    buf: Vec<u8>,
    _t: PhantomData<fn(&T)>,
}

impl<T, C, F: FramedTransportFrame, B: RingBackend> fmt::Debug for TypedMultiProducer<T, C, F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedMultiProducer")
            .field("framed", &self.framed)
            .finish_non_exhaustive()
    }
}

impl<T, C: Codec<T>, F: FramedTransportFrame, B: RingBackend> TypedMultiProducer<T, C, F, B> {
    /// Wraps a framed multi-producer.
    pub fn new(framed: FramedMultiProducer<F, B>, codec: C) -> Self {
        TypedMultiProducer {
            framed,
            codec,
            buf: Vec::new(),
            _t: PhantomData,
        }
    }

    /// Creates or attaches to the ring described by `builder` and wraps the producer.
    pub fn from_builder(
        builder: crate::MultiProducerBuilder<F, B>,
        codec: C,
    ) -> TransportResult<Self> {
        Ok(Self::new(FramedMultiProducer::from_builder(builder)?, codec))
    }

    /// The framed producer.
    pub fn framed(&self) -> &FramedMultiProducer<F, B> {
        &self.framed
    }

    fn encode(&mut self, value: &T) -> Result<(), TypedPublishError> {
        self.codec
            .encode(value, &mut self.buf)
            .map_err(TypedPublishError::Encode)
    }

    /// Publishes `value` if the ring has room for all its frames now; returns the message id.
    pub fn try_publish(&mut self, value: &T) -> Result<u32, TypedPublishError> {
        self.encode(value)?;
        Ok(self.framed.try_publish(&self.buf)?)
    }

    /// Publishes `value`, waiting for room as long as it takes.
    pub fn publish(&mut self, value: &T) -> Result<u32, TypedPublishError> {
        self.encode(value)?;
        Ok(self.framed.publish(&self.buf)?)
    }

    /// Publishes `value`, waiting at most `timeout` for room.
    pub fn publish_timeout(
        &mut self,
        value: &T,
        timeout: Duration,
    ) -> Result<u32, TypedPublishError> {
        self.encode(value)?;
        Ok(self.framed.publish_timeout(&self.buf, timeout)?)
    }
}

/// Receives values of `T` encoded with codec `C` from a framed ring of `F` on backend `B`
/// (POSIX shared memory by default; [`MmapTypedConsumer`] for files).
pub struct TypedConsumer<T, C, F: FramedTransportFrame, B: RingBackend = DefaultBackend> {
    framed: FramedTransportConsumer<F, B>,
    codec: C,
    aligned: AlignedBuf,
    decode_errors: u64,
    copy_before_access: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T, C, F: FramedTransportFrame, B: RingBackend> fmt::Debug for TypedConsumer<T, C, F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedConsumer")
            .field("framed", &self.framed)
            .field("decode_errors", &self.decode_errors)
            .finish_non_exhaustive()
    }
}

impl<T, C: Codec<T>, F: FramedTransportFrame, B: RingBackend> TypedConsumer<T, C, F, B> {
    /// Wraps a framed consumer.
    pub fn new(framed: FramedTransportConsumer<F, B>, codec: C) -> Self {
        TypedConsumer {
            framed,
            codec,
            aligned: AlignedBuf::default(),
            copy_before_access: false,
            decode_errors: 0,
            _t: PhantomData,
        }
    }

    /// Attaches to the ring described by `builder` and wraps the consumer.
    pub fn from_builder(builder: SharedDisruptorBuilder<F, B>, codec: C) -> TransportResult<Self> {
        Ok(Self::new(
            FramedTransportConsumer::from_builder(builder)?,
            codec,
        ))
    }

    /// The framed consumer (counters: messages received, dropped).
    pub fn framed(&self) -> &FramedTransportConsumer<F, B> {
        &self.framed
    }

    /// The producer of the last value received (multi-producer rings; `None` on a
    /// single-producer ring).
    pub fn last_source(&self) -> Option<u64> {
        self.framed.last_source()
    }

    /// The framed consumer, mutably (e.g. to set the maximum message size).
    pub fn framed_mut(&mut self) -> &mut FramedTransportConsumer<F, B> {
        &mut self.framed
    }

    /// Unwraps the framed consumer.
    pub fn into_inner(self) -> FramedTransportConsumer<F, B> {
        self.framed
    }

    /// The parts, for the async consumer (`asynch/typed.rs`): the framed consumer, the codec
    /// and the decode-error count.
    #[cfg(feature = "tokio")]
    pub(crate) fn into_parts(self) -> (FramedTransportConsumer<F, B>, C, u64) {
        (self.framed, self.codec, self.decode_errors)
    }

    /// Reassembles a consumer from [`Self::into_parts`].
    #[cfg(feature = "tokio")]
    pub(crate) fn from_parts(framed: FramedTransportConsumer<F, B>, codec: C, errors: u64) -> Self {
        let mut c = Self::new(framed, codec);
        c.decode_errors = errors;
        c
    }

    /// Messages that failed to decode or validate so far.
    pub fn decode_errors(&self) -> u64 {
        self.decode_errors
    }

    fn decoded(
        codec: &mut C,
        errors: &mut u64,
        msg: FramedMessage<'_, F, B>,
    ) -> TransportResult<T> {
        codec.decode(msg.bytes()).map_err(|e| {
            *errors += 1;
            TransportError::Codec(e)
        })
    }

    /// Decodes the next message if one is available now (`Ok(None)`: nothing yet).
    pub fn try_recv(&mut self) -> TransportResult<Option<T>> {
        match self.framed.try_recv()? {
            None => Ok(None),
            Some(m) => Self::decoded(&mut self.codec, &mut self.decode_errors, m).map(Some),
        }
    }

    /// Decodes the next message, waiting as long as it takes.
    pub fn recv(&mut self) -> TransportResult<T> {
        let m = self.framed.recv()?;
        Self::decoded(&mut self.codec, &mut self.decode_errors, m)
    }

    /// Decodes the next message, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> TransportResult<T> {
        let m = self.framed.recv_timeout(timeout)?;
        Self::decoded(&mut self.codec, &mut self.decode_errors, m)
    }
}

impl<T, C: ZeroCopyCodec<T>, F: FramedTransportFrame, B: RingBackend> TypedConsumer<T, C, F, B> {
    /// Copies every message into a private buffer before validating it, so that the view a
    /// closure gets cannot change under it even if the **producer** wrote into the slot after
    /// validation (a buggy or hostile producer; consumers map the slots read-only and cannot).
    /// Off by default: the producer, the only peer that may write slots, is trusted to follow
    /// the protocol (README, trust model). Costs one copy of each single-frame message;
    /// fragmented ones are already copied by reassembly.
    pub fn set_copy_before_access(&mut self, on: bool) {
        self.copy_before_access = on;
    }

    fn accessed<R>(
        codec: &C,
        aligned: &mut AlignedBuf,
        errors: &mut u64,
        copy: bool,
        msg: FramedMessage<'_, F, B>,
        f: impl FnOnce(C::View<'_>) -> R,
    ) -> TransportResult<R> {
        let bytes: &[u8] = &msg;
        let bytes = if !copy && (bytes.as_ptr() as usize) % C::ALIGN == 0 {
            bytes
        } else {
            aligned.set(bytes);
            aligned.as_slice()
        };
        match codec.access(bytes) {
            Ok(view) => Ok(f(view)),
            Err(e) => {
                *errors += 1;
                Err(TransportError::Codec(e))
            }
        }
    }

    /// Validates the next message if one is available now and runs `f` on its in-place view
    /// (see the module docs for where the bytes are). `Ok(None)`: nothing yet.
    pub fn try_recv_access<R>(
        &mut self,
        f: impl FnOnce(C::View<'_>) -> R,
    ) -> TransportResult<Option<R>> {
        match self.framed.try_recv()? {
            None => Ok(None),
            Some(m) => Self::accessed(
                &self.codec,
                &mut self.aligned,
                &mut self.decode_errors,
                self.copy_before_access,
                m,
                f,
            )
            .map(Some),
        }
    }

    /// [`Self::try_recv_access`], waiting as long as it takes.
    pub fn recv_access<R>(&mut self, f: impl FnOnce(C::View<'_>) -> R) -> TransportResult<R> {
        let m = self.framed.recv()?;
        Self::accessed(
            &self.codec,
            &mut self.aligned,
            &mut self.decode_errors,
            self.copy_before_access,
            m,
            f,
        )
    }

    /// [`Self::try_recv_access`], waiting at most `timeout`.
    pub fn recv_access_timeout<R>(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(C::View<'_>) -> R,
    ) -> TransportResult<R> {
        let m = self.framed.recv_timeout(timeout)?;
        Self::accessed(
            &self.codec,
            &mut self.aligned,
            &mut self.decode_errors,
            self.copy_before_access,
            m,
            f,
        )
    }
}

/// Typed producer over a memory-mapped file.
#[cfg(all(feature = "mmap", not(loom)))]
pub type MmapTypedProducer<T, C, F> = TypedProducer<T, C, F, crate::backend::MmapBackend>;
/// Typed consumer over a memory-mapped file.
#[cfg(all(feature = "mmap", not(loom)))]
pub type MmapTypedConsumer<T, C, F> = TypedConsumer<T, C, F, crate::backend::MmapBackend>;
