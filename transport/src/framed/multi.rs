//! Framed messages on a multi-producer ring: [`FramedMultiProducer`].
//!
//! The ring's slots hold [`Sourced<F>`] frames (`Sourced<F>` is itself a
//! [`FramedTransportFrame`]), so the ordinary [`super::FramedTransportConsumer`] of `Sourced<F>`
//! reads them, and [`super::FramedMessage::source`] names the producer of each message.
//!
//! A message claims all its frames with one claim (`MultiProducer::claim_batch`): its frames
//! are consecutive in the ring and never interleave with another producer's. Hence a message
//! must fit in the ring (`ExceedsCapacity` otherwise; a single-producer ring can stream longer
//! ones, a multi-producer ring cannot without letting fragments interleave). A producer that
//! dies while publishing leaves its message's unstamped frames as a hole: consumers skip the
//! hole (Layer 0) and drop the partial message at the next first frame, counted in
//! `dropped_messages` as for any interrupted message.

use super::error::{TransportError, TransportResult};
use super::frame::{fragment_meta, frames_for, FrameMeta, FramedTransportFrame};
use super::producer::write_fragment;
use super::DEFAULT_MAX_MESSAGE_SIZE;
use crate::backend::RingBackend;
use crate::ring::multi::{MultiClaim, MultiProducer, MultiProducerBuilder, Sourced};
use std::time::Duration;

impl<F: FramedTransportFrame> FramedTransportFrame for Sourced<F> {
    const DATA_BYTES: usize = F::DATA_BYTES;
    const HEADER_BYTES: usize = F::HEADER_BYTES + 8;
    const INDEX_MASK: u32 = F::INDEX_MASK;

    fn empty() -> Self {
        Sourced {
            source: 0,
            event: F::empty(),
        }
    }

    fn meta(&self) -> FrameMeta {
        self.event.meta()
    }

    fn set_meta(&mut self, meta: &FrameMeta) {
        self.event.set_meta(meta)
    }

    fn data(&self) -> &[u8] {
        self.event.data()
    }

    fn data_mut(&mut self) -> &mut [u8] {
        self.event.data_mut()
    }

    fn source(&self) -> Option<u64> {
        Some(self.source)
    }
}

/// Publishes variable-length byte messages into a multi-producer ring of frames `F`, as one of
/// its producers. Message ids count per producer from 0.
pub struct FramedMultiProducer<F: FramedTransportFrame, B: RingBackend = super::DefaultBackend> {
    producer: MultiProducer<F, B>,
    next_id: u32,
    max_message_size: usize,
}

impl<F: FramedTransportFrame, B: RingBackend> std::fmt::Debug for FramedMultiProducer<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramedMultiProducer")
            .field("producer", &self.producer)
            .field("next_message_id", &self.next_id)
            .finish()
    }
}

impl<F: FramedTransportFrame, B: RingBackend> FramedMultiProducer<F, B> {
    /// Wraps a Layer 0 producer of a multi-producer ring of frames.
    pub fn new(producer: MultiProducer<F, B>) -> Self {
        const {
            assert!(
                F::DATA_BYTES > 0,
                "a frame type needs at least one payload byte"
            )
        };
        FramedMultiProducer {
            producer,
            next_id: 0,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }

    /// Creates or attaches to the ring described by `builder` (a created ring's slots start as
    /// empty frames) and wraps the producer.
    pub fn from_builder(builder: MultiProducerBuilder<F, B>) -> TransportResult<Self> {
        Ok(Self::new(builder.build(F::empty)?))
    }

    /// Refuses messages longer than `max` bytes (default [`DEFAULT_MAX_MESSAGE_SIZE`]).
    pub fn with_max_message_size(mut self, max: usize) -> Self {
        self.max_message_size = max;
        self
    }

    /// The Layer 0 producer.
    pub fn inner(&self) -> &MultiProducer<F, B> {
        &self.producer
    }

    /// Unwraps the Layer 0 producer.
    pub fn into_inner(self) -> MultiProducer<F, B> {
        self.producer
    }

    /// This producer's id (the `source` of its messages).
    pub fn source(&self) -> u64 {
        self.producer.source()
    }

    /// Id the next message will carry.
    pub fn next_message_id(&self) -> u32 {
        self.next_id
    }

    /// Ring capacity in frames.
    pub fn capacity(&self) -> usize {
        self.producer.capacity()
    }

    /// Frames a message of `len` bytes takes.
    pub fn frames_for(len: usize) -> usize {
        frames_for(len, F::DATA_BYTES)
    }

    fn check(&self, len: usize) -> TransportResult<usize> {
        if len > self.max_message_size {
            return Err(TransportError::MessageTooLarge {
                message_id: self.next_id,
                len,
                max: self.max_message_size,
            });
        }
        let frames = Self::frames_for(len);
        if frames > self.capacity() {
            return Err(TransportError::ExceedsCapacity {
                frames,
                capacity: self.capacity(),
            });
        }
        Ok(frames)
    }

    /// Publishes `payload` as one message if the ring has room for all its frames now; returns
    /// the message id. `Full`: not enough room (nothing published).
    pub fn try_publish(&mut self, payload: &[u8]) -> TransportResult<u32> {
        let frames = self.check(payload.len())?;
        let claim = self
            .producer
            .try_claim_batch(frames)?
            .ok_or(TransportError::Full { frames })?;
        let id = fill_frames(claim, self.next_id, frames, payload);
        self.next_id = id.wrapping_add(1);
        Ok(id)
    }

    /// Publishes `payload` as one message, waiting for room as long as it takes.
    pub fn publish(&mut self, payload: &[u8]) -> TransportResult<u32> {
        self.publish_within(payload, None)
    }

    /// Publishes `payload`, waiting at most `timeout` for room (`Ring(Timeout)`: nothing
    /// published).
    pub fn publish_timeout(&mut self, payload: &[u8], timeout: Duration) -> TransportResult<u32> {
        self.publish_within(payload, Some(timeout))
    }

    fn publish_within(&mut self, payload: &[u8], timeout: Option<Duration>) -> TransportResult<u32> {
        let frames = self.check(payload.len())?;
        let id = self.next_id;
        let claim = self
            .producer
            .claim_batch(frames, timeout)
            .map_err(TransportError::Ring)?;
        fill_frames(claim, id, frames, payload);
        self.next_id = id.wrapping_add(1);
        Ok(id)
    }
}

/// Writes the `frames` frames of message `id` into `claim` and commits them; returns `id`.
fn fill_frames<F: FramedTransportFrame, B: RingBackend>(
    mut claim: MultiClaim<'_, F, B>,
    id: u32,
    frames: usize,
    payload: &[u8],
) -> u32 {
    for i in 0..frames {
        let meta = fragment_meta(id, i, frames, payload.len(), F::DATA_BYTES);
        write_fragment(claim.slot_mut(i), &meta, &payload[i * F::DATA_BYTES..]);
    }
    claim.commit();
    id
}
