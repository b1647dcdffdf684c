//! The framed producer: fragments a message over consecutive slots and publishes them as a unit.
//!
//! A message of `len` bytes takes `max(1, ceil(len / DATA_BYTES))` frames. When that fits in
//! the ring, the frames are claimed together with [`Producer::try_claim_batch`], written in
//! place and committed at once: consumers see the whole message or nothing of it. A message
//! that needs more frames than the ring has slots cannot be claimed as a unit; the blocking
//! [`FramedTransportProducer::publish`] then streams it in ring-sized chunks of frames (each
//! chunk committed as a unit), and consumers reassemble it as it arrives. If such a producer dies
//! mid-message, consumers see the message incomplete: the next first frame reports
//! `IncompleteMessage` and counts it as dropped.

use super::error::{TransportError, TransportResult};
use super::frame::{fragment_meta, frames_for, FrameMeta, FramedTransportFrame};
use super::DEFAULT_MAX_MESSAGE_SIZE;
use crate::backend::RingBackend;
use crate::ring::builder::SharedDisruptorBuilder;
use crate::liveness::RequiredConsumerLivenessConfig;
use crate::ring::producer::{BatchClaim, Producer};
use crate::{RingBufferFull, Sequence};
use std::time::Duration;

/// Publishes variable-length byte messages over a ring of frames `F` on backend `B` (POSIX
/// shared memory by default; see [`MmapFramedTransportProducer`](super::MmapFramedTransportProducer)).
pub struct FramedTransportProducer<F: FramedTransportFrame, B: RingBackend = super::DefaultBackend>
{
    producer: Producer<F, B>,
    next_id: u32,
    max_message_size: usize,
}

impl<F: FramedTransportFrame, B: RingBackend> std::fmt::Debug for FramedTransportProducer<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramedTransportProducer")
            .field("producer", &self.producer)
            .field("next_message_id", &self.next_id)
            .finish()
    }
}

impl<F: FramedTransportFrame, B: RingBackend> FramedTransportProducer<F, B> {
    /// Wraps a Layer 0 producer of frames. Message ids start at 0 for each producer.
    pub fn new(producer: Producer<F, B>) -> Self {
        const {
            assert!(
                F::DATA_BYTES > 0,
                "a frame type needs at least one payload byte"
            )
        };
        FramedTransportProducer {
            producer,
            next_id: 0,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }

    /// Creates the ring described by `builder` (slots start as empty frames) and wraps it.
    pub fn from_builder(builder: SharedDisruptorBuilder<F, B>) -> TransportResult<Self> {
        Ok(Self::new(builder.build_producer(F::empty)?))
    }

    /// Refuses messages longer than `max` bytes (default [`DEFAULT_MAX_MESSAGE_SIZE`]).
    pub fn with_max_message_size(mut self, max: usize) -> Self {
        self.max_message_size = max;
        self
    }

    /// The parts, for the async producer (`asynch/framed.rs`): the Layer 0 producer, the next
    /// message id and the largest message accepted.
    #[cfg(feature = "tokio")]
    pub(crate) fn into_parts(self) -> (Producer<F, B>, u32, usize) {
        (self.producer, self.next_id, self.max_message_size)
    }

    /// Reassembles a producer from [`Self::into_parts`].
    #[cfg(feature = "tokio")]
    pub(crate) fn from_parts(producer: Producer<F, B>, next_id: u32, max: usize) -> Self {
        FramedTransportProducer {
            producer,
            next_id,
            max_message_size: max,
        }
    }

    /// The Layer 0 producer.
    pub fn inner(&self) -> &Producer<F, B> {
        &self.producer
    }

    /// The Layer 0 producer, mutably (raw frames published through it must follow the frame
    /// rules of [`super::frame`], or consumers will report them as corrupt).
    pub fn inner_mut(&mut self) -> &mut Producer<F, B> {
        &mut self.producer
    }

    /// Unwraps the Layer 0 producer.
    pub fn into_inner(self) -> Producer<F, B> {
        self.producer
    }

    /// Id the next message will carry.
    pub fn next_message_id(&self) -> u32 {
        self.next_id
    }

    /// Ring capacity in frames.
    pub fn capacity(&self) -> usize {
        self.producer.capacity()
    }

    /// Last published sequence (frame) of the ring.
    pub fn cursor(&self) -> Sequence {
        self.producer.cursor()
    }

    /// Frames a message of `len` bytes takes.
    pub fn frames_for(len: usize) -> usize {
        frames_for(len, F::DATA_BYTES)
    }

    #[inline]
    fn check(&self, len: usize) -> TransportResult<usize> {
        if len > self.max_message_size {
            return Err(TransportError::MessageTooLarge {
                message_id: 0,
                len,
                max: self.max_message_size,
            });
        }
        Ok(Self::frames_for(len))
    }

    #[inline]
    fn check_unit(&self, len: usize) -> TransportResult<usize> {
        let frames = self.check(len)?;
        if frames > self.capacity() {
            return Err(TransportError::ExceedsCapacity {
                frames,
                capacity: self.capacity(),
            });
        }
        Ok(frames)
    }

    /// Publishes `payload` as one message if the ring has room for all its frames now.
    /// Returns the message id. `Full`: not enough room (nothing published).
    #[inline]
    pub fn try_publish(&mut self, payload: &[u8]) -> TransportResult<u32> {
        let frames = self.check_unit(payload.len())?;
        let id = self.next_id;
        if frames == 1 {
            let meta = fragment_meta(id, 0, 1, payload.len(), F::DATA_BYTES);
            self.producer
                .try_publish(|frame| write_fragment(frame, &meta, payload))
                .map_err(|RingBufferFull| TransportError::Full { frames })?;
            self.next_id = id.wrapping_add(1);
            return Ok(id);
        }
        let batch = self
            .producer
            .try_claim_batch(frames)
            .map_err(|RingBufferFull| TransportError::Full { frames })?;
        fill_and_commit(batch, id, 0, frames, payload);
        self.next_id = id.wrapping_add(1);
        Ok(id)
    }

    /// Publishes `payload` as one message, waiting for room as long as it takes (strict
    /// broadcast). A message larger than the ring is streamed (see the module docs).
    #[inline]
    pub fn publish(&mut self, payload: &[u8]) -> TransportResult<u32> {
        let frames = self.check(payload.len())?;
        let id = self.next_id;
        if frames == 1 {
            // One frame: the Layer 0 publish, without a batch claim (shorter on the latency
            // path; the same slot, header and stamp).
            let meta = fragment_meta(id, 0, 1, payload.len(), F::DATA_BYTES);
            self.producer
                .publish(|frame| write_fragment(frame, &meta, payload));
            self.next_id = id.wrapping_add(1);
            return Ok(id);
        }
        let mut first = 0;
        while first < frames {
            let count = (frames - first).min(self.capacity());
            let batch = claim(&mut self.producer, count, None)?;
            fill_and_commit(batch, id, first, frames, payload);
            first += count;
        }
        self.next_id = id.wrapping_add(1);
        Ok(id)
    }

    /// Publishes `payload` as one message, waiting at most `timeout` for room
    /// (`Ring(Timeout)`: nothing published). The message must fit in the ring.
    pub fn publish_timeout(&mut self, payload: &[u8], timeout: Duration) -> TransportResult<u32> {
        let frames = self.check_unit(payload.len())?;
        let id = self.next_id;
        let batch = claim(&mut self.producer, frames, Some(timeout))?;
        fill_and_commit(batch, id, 0, frames, payload);
        self.next_id = id.wrapping_add(1);
        Ok(id)
    }

    /// Turns on required-consumer liveness for [`Self::publish_managed`] (see
    /// [`crate::liveness`]; delegates to [`Producer::enable_required_consumer_liveness`]).
    pub fn enable_required_consumer_liveness(
        &mut self,
        config: RequiredConsumerLivenessConfig,
    ) -> TransportResult<()> {
        Ok(self.producer.enable_required_consumer_liveness(config)?)
    }

    /// [`Self::publish`] under required-consumer liveness: while it waits for room it checks
    /// the required consumers and fails with `Liveness(..)` instead of hanging on a stalled
    /// one. A message larger than the ring is streamed chunk by chunk; if liveness fails
    /// between chunks, consumers see that message incomplete (dropped and counted).
    pub fn publish_managed(&mut self, payload: &[u8]) -> TransportResult<u32> {
        let frames = self.check(payload.len())?;
        let id = self.next_id;
        let mut first = 0;
        while first < frames {
            let count = (frames - first).min(self.capacity());
            let batch = self.producer.claim_batch_managed(count)?;
            fill_and_commit(batch, id, first, frames, payload);
            first += count;
        }
        self.next_id = id.wrapping_add(1);
        Ok(id)
    }

    /// Claims room for a message of exactly `len` bytes, to be written in place (see
    /// [`MessageClaim`]). `Full` if the ring has no room for it now.
    #[inline]
    pub fn try_claim(&mut self, len: usize) -> TransportResult<MessageClaim<'_, F, B>> {
        let frames = self.check_unit(len)?;
        let batch = self
            .producer
            .try_claim_batch(frames)
            .map_err(|RingBufferFull| TransportError::Full { frames })?;
        Ok(MessageClaim::new(batch, &mut self.next_id, len))
    }

    /// [`Self::try_claim`], waiting up to `timeout` (`None`: no bound) for room.
    pub fn claim_timeout(
        &mut self,
        len: usize,
        timeout: Option<Duration>,
    ) -> TransportResult<MessageClaim<'_, F, B>> {
        let frames = self.check_unit(len)?;
        let batch = claim(&mut self.producer, frames, timeout)?;
        Ok(MessageClaim::new(batch, &mut self.next_id, len))
    }
}

/// Claims `count` slots: the non-blocking claim first (it compares with the producer's cached
/// gating limit and rescans the consumer table only when that is reached), then the waiting one.
#[inline]
fn claim<F: FramedTransportFrame, B: RingBackend>(
    producer: &mut Producer<F, B>,
    count: usize,
    timeout: Option<Duration>,
) -> TransportResult<BatchClaim<'_, F, B>> {
    // Two calls because the borrow checker cannot yet see that the first borrow ends when the
    // claim fails (the `Result` carries no borrow in its error).
    if producer.try_claim_batch(count).is_ok() {
        return producer
            .try_claim_batch(count)
            .map_err(|RingBufferFull| TransportError::Full { frames: count });
    }
    Ok(producer.claim_batch_timeout(count, timeout)?)
}

/// Writes fragments `first..first + batch.len()` of the `frames`-frame message `id` with the
/// bytes of `payload`, then commits them.
#[inline]
pub(crate) fn fill_and_commit<F: FramedTransportFrame, B: RingBackend>(
    mut batch: BatchClaim<'_, F, B>,
    id: u32,
    first: usize,
    frames: usize,
    payload: &[u8],
) {
    for i in 0..batch.len() {
        let index = first + i;
        let meta = fragment_meta(id, index, frames, payload.len(), F::DATA_BYTES);
        let start = index * F::DATA_BYTES;
        // Mutant: the second and third fragments of a long message trade places.
        #[cfg(myelon_mutant = "framed_fragments_swapped")]
        let start = if frames >= 4 && (index == 1 || index == 2) {
            (3 - index) * F::DATA_BYTES
        } else {
            start
        };
        write_fragment(batch.slot_mut(i), &meta, &payload[start..]);
    }
    batch.commit();
}

/// Writes one fragment: its header `meta` and its `meta.len` bytes from the front of `rest`
/// (the single- and multi-producer framed producers both fill frames with it).
#[inline]
pub(crate) fn write_fragment<F: FramedTransportFrame>(frame: &mut F, meta: &FrameMeta, rest: &[u8]) {
    let len = meta.len as usize;
    if len == F::DATA_BYTES {
        // A full frame: a copy of constant size (inlined for small frames).
        frame.data_mut()[..F::DATA_BYTES].copy_from_slice(&rest[..F::DATA_BYTES]);
    } else {
        frame.data_mut()[..len].copy_from_slice(&rest[..len]);
    }
    // The header after the payload: it shares its line with the slot's stamp, written next.
    frame.set_meta(meta);
}

/// Room for one message of a known length, claimed in the ring: write the payload in place
/// (no intermediate buffer) through [`std::io::Write`] or [`MessageClaim::fragment_mut`], then
/// [`commit`](MessageClaim::commit) to publish every frame at once. Dropping the claim (or
/// [`abort`](MessageClaim::abort)) publishes nothing and does not use up a message id.
///
/// Frame headers are written at the commit; bytes of the claimed length that are not written
/// hold whatever the slots held before.
pub struct MessageClaim<'a, F: FramedTransportFrame, B: RingBackend> {
    batch: BatchClaim<'a, F, B>,
    next_id: &'a mut u32,
    len: usize,
    written: usize,
}

impl<F: FramedTransportFrame, B: RingBackend> std::fmt::Debug for MessageClaim<'_, F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageClaim")
            .field("message_id", &*self.next_id)
            .field("len", &self.len)
            .finish()
    }
}

impl<'a, F: FramedTransportFrame, B: RingBackend> MessageClaim<'a, F, B> {
    fn new(batch: BatchClaim<'a, F, B>, next_id: &'a mut u32, len: usize) -> Self {
        MessageClaim {
            batch,
            next_id,
            len,
            written: 0,
        }
    }

    /// Message length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Frames (fragments) the message takes.
    pub fn fragments(&self) -> usize {
        self.batch.len()
    }

    /// The id the message will carry.
    pub fn message_id(&self) -> u32 {
        *self.next_id
    }

    /// Bytes written so far through `std::io::Write`.
    pub fn written(&self) -> usize {
        self.written
    }

    /// The bytes of fragment `i` (`i < fragments()`): `DATA_BYTES` for every fragment but the
    /// last, which holds the rest.
    ///
    /// # Panics
    /// If `i >= fragments()`.
    #[inline]
    pub fn fragment_mut(&mut self, i: usize) -> &mut [u8] {
        let len = fragment_meta(0, i, self.batch.len(), self.len, F::DATA_BYTES).len as usize;
        &mut self.batch.slot_mut(i).data_mut()[..len]
    }

    /// Publishes the message; returns its id.
    #[inline]
    pub fn commit(mut self) -> u32 {
        let id = *self.next_id;
        // The headers last: each one shares its line with its slot's stamp (see
        // `FixedFrame`), which the commit writes right after.
        let frames = self.batch.len();
        for i in 0..frames {
            let meta = fragment_meta(id, i, frames, self.len, F::DATA_BYTES);
            self.batch.slot_mut(i).set_meta(&meta);
        }
        self.batch.commit();
        *self.next_id = id.wrapping_add(1);
        id
    }

    /// Publishes nothing.
    pub fn abort(self) {}
}

impl<F: FramedTransportFrame, B: RingBackend> std::io::Write for MessageClaim<'_, F, B> {
    /// Appends to the message; `Ok(0)` once the claimed length is written.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut done = 0;
        while done < buf.len() && self.written < self.len {
            let frame = self.written / F::DATA_BYTES;
            let offset = self.written % F::DATA_BYTES;
            let dst = &mut self.fragment_mut(frame)[offset..];
            let n = dst.len().min(buf.len() - done);
            dst[..n].copy_from_slice(&buf[done..done + n]);
            done += n;
            self.written += n;
        }
        Ok(done)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
