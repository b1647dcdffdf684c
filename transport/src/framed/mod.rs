//! Layer 1 — framed transport: variable-length `&[u8]` messages over a ring of fixed-size
//! frames.
//!
//! The frame type is a const generic chosen at compile time: [`FixedFrame<N>`] (`N` payload
//! bytes, then a 12-byte header) or [`AlignedFixedFrame<N>`] (payload 16-byte aligned, for
//! formats read in place such as rkyv, then a 16-byte header). A message that fits in one frame travels in one slot
//! and is read in place; a larger one is fragmented over consecutive slots and reassembled.
//!
//! ```
//! use myelon::backend::SimBackend;
//! use myelon::transport::{FixedFrame, FramedTransportConsumer, FramedTransportProducer};
//! use myelon::SharedDisruptorBuilder;
//!
//! type Frame = FixedFrame<52>; // 64-byte frames
//! let world = SimBackend::new_world();
//! let mut producer = FramedTransportProducer::from_builder(
//!     SharedDisruptorBuilder::<Frame, _>::with_backend(world.clone(), "doc", 64),
//! )?;
//! let mut consumer = FramedTransportConsumer::from_builder(
//!     SharedDisruptorBuilder::<Frame, _>::with_backend(world.sibling(), "doc", 64)
//!         .with_consumer_id("c0"),
//! )?;
//! producer.publish(b"hello")?;                  // one frame
//! producer.publish(&[7u8; 200])?;               // four frames, committed as a unit
//! assert_eq!(&*consumer.try_recv()?.expect("message"), b"hello");
//! assert_eq!(consumer.try_recv()?.expect("message").len(), 200);
//! # Ok::<(), myelon::transport::TransportError>(())
//! ```
//!
//! The wire format and the validation rules are in [`frame`]'s and [`Reassembler`]'s docs;
//! the producer's atomicity (a message appears as a unit, or streams when larger than the ring)
//! in [`FramedTransportProducer`]'s; in-place delivery, reassembly and joins in
//! [`FramedTransportConsumer`]'s.

mod consumer;
mod error;
pub mod frame;
mod multi;
mod producer;
mod reassembly;

pub use consumer::{FramedMessage, FramedTransportConsumer};
pub use error::{TransportError, TransportResult};
pub use frame::{
    frame_flags, is_last_frame, is_single_frame, AlignedFixedFrame, FixedFrame, FrameMeta,
    FramedTransportFrame,
};
pub use multi::FramedMultiProducer;
pub use producer::{FramedTransportProducer, MessageClaim};
#[cfg(feature = "tokio")]
pub(crate) use consumer::Ready;
#[cfg(feature = "tokio")]
pub(crate) use producer::fill_and_commit;
pub use reassembly::{Reassembler, Step};

#[allow(unused_imports)]
pub(crate) use reassembly::AlignedBuf;

use crate::backend::RingBackend;
use std::time::Duration;

/// Default bound on a message's size, on both sides (64 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;

pub use crate::backend::DefaultBackend;

/// Framed producer over a memory-mapped file.
#[cfg(all(feature = "mmap", not(loom)))]
pub type MmapFramedTransportProducer<F> = FramedTransportProducer<F, crate::backend::MmapBackend>;
/// Framed consumer over a memory-mapped file.
#[cfg(all(feature = "mmap", not(loom)))]
pub type MmapFramedTransportConsumer<F> = FramedTransportConsumer<F, crate::backend::MmapBackend>;

/// Publishes `payload` as one message, waiting for room as long as it takes; returns its id.
pub fn publish_framed_payload<F: FramedTransportFrame, B: RingBackend>(
    producer: &mut FramedTransportProducer<F, B>,
    payload: &[u8],
) -> TransportResult<u32> {
    producer.publish(payload)
}

/// Receives the next message as an owned vector, waiting at most `timeout`.
pub fn recv_framed_message<F: FramedTransportFrame, B: RingBackend>(
    consumer: &mut FramedTransportConsumer<F, B>,
    timeout: Duration,
) -> TransportResult<Vec<u8>> {
    Ok(consumer.recv_timeout(timeout)?.to_vec())
}

#[cfg(all(feature = "shm", not(loom)))]
mod shm_constructors {
    use super::*;
    use crate::backend::ShmBackend;
    use crate::SharedDisruptorBuilder;

    impl<F: FramedTransportFrame> FramedTransportProducer<F, ShmBackend> {
        /// Creates ring `segment` of `capacity` frames in POSIX shared memory (no coordination:
        /// use [`Self::from_builder`] for the builder's options).
        pub fn create_shared(segment: &str, capacity: usize) -> TransportResult<Self> {
            Self::from_builder(SharedDisruptorBuilder::with_backend(
                ShmBackend, segment, capacity,
            ))
        }
    }

    impl<F: FramedTransportFrame> FramedTransportConsumer<F, ShmBackend> {
        /// Attaches to ring `segment` of `capacity` frames as consumer `id`.
        pub fn attach_shared(segment: &str, capacity: usize, id: &str) -> TransportResult<Self> {
            Self::from_builder(
                SharedDisruptorBuilder::with_backend(ShmBackend, segment, capacity)
                    .with_consumer_id(id),
            )
        }
    }
}

#[cfg(all(feature = "mmap", not(loom)))]
mod mmap_constructors {
    use super::*;
    use crate::backend::MmapBackend;
    use std::path::Path;

    impl<F: FramedTransportFrame> FramedTransportProducer<F, MmapBackend> {
        /// Creates a ring of `capacity` frames in the file at `path` (created exclusively).
        pub fn create_mmap(path: impl AsRef<Path>, capacity: usize) -> TransportResult<Self> {
            Self::from_builder(crate::build_mmap_single_producer(path, capacity))
        }
    }

    impl<F: FramedTransportFrame> FramedTransportConsumer<F, MmapBackend> {
        /// Attaches to the ring in the file at `path` as consumer `id`.
        pub fn attach_mmap(
            path: impl AsRef<Path>,
            capacity: usize,
            id: &str,
        ) -> TransportResult<Self> {
            Self::from_builder(crate::attach_mmap_consumer(path, capacity).with_consumer_id(id))
        }
    }
}
