//! Multiprocess shared-memory transport for inference and other low-latency pipelines.
//!
//! One producer process publishes; N consumer processes receive every event, in order,
//! through a lock-free ring buffer that lives in shared memory (strict broadcast: the slowest
//! gating consumer bounds the producer, nothing is ever overwritten unread).
//!
//! Layer 0 (this crate today) moves fixed-size [`ShmEvent`] values:
//!
//! ```no_run
//! use myelon::{attach_shared_consumer, build_shared_single_producer, portable_shm_segment_name};
//! use myelon::producer::CoordinationMode;
//!
//! myelon::shm_event! {
//!     #[derive(Clone, Copy, Debug, Default)]
//!     pub struct Event { pub sequence: u64 }
//! }
//!
//! let segment = portable_shm_segment_name("demo");
//! let mut producer = build_shared_single_producer::<Event>(&segment, 4096)
//!     .discover_consumer_with_prefix(1, "cp")
//!     .with_coordination(CoordinationMode::Immediate)
//!     .build_producer(Event::default)
//!     .expect("build producer");
//! producer.publish(|slot| slot.sequence = 1);
//!
//! // In another process:
//! let mut consumer = attach_shared_consumer::<Event>(&segment, 4096)
//!     .with_consumer_id("cp_0")
//!     .build_consumer()
//!     .expect("attach consumer");
//! if let Some(event) = consumer.try_consume_next_leased().expect("consume") {
//!     assert!(event.sequence >= 1);
//! };
//! ```
//!
//! Every backend implements [`backend::RingBackend`]: POSIX shared memory (`shm`, default),
//! memory-mapped files (`mmap`, default) and an in-process simulator (always available) that
//! the deterministic simulation harness drives.

#![warn(missing_docs)]

mod auto;
pub mod backend;
mod builder;
#[cfg(not(loom))]
pub mod codec;
pub mod consumer;
mod error;
mod event;
#[cfg(not(loom))]
pub mod inference;
mod layout;
pub mod liveness;
mod names;
pub mod observability;
#[cfg(not(loom))]
pub mod prelude;
pub mod producer;
mod registry;
mod sync;
#[cfg(not(loom))]
pub mod transport;
#[cfg(not(loom))]
pub mod typed_transport;
mod wait;

#[cfg(all(test, not(loom)))]
mod hostile_tests;

pub use auto::AutoConsumer;
#[cfg(feature = "bincode")]
pub use bincode;
pub use builder::{
    CoordinationMode, SharedDisruptorBuilder, DEFAULT_ATTACH_TIMEOUT, DEFAULT_COORDINATION_TIMEOUT,
};
#[cfg(not(loom))]
pub use codec::{Codec, CodecError};
pub use consumer::{Consumer, EventLease};
pub use error::{MultiProcessError, MultiProcessResult, RingBufferFull};
pub use event::{type_fingerprint, ShmEvent};
#[cfg(feature = "flatbuffers")]
pub use flatbuffers;
#[cfg(not(loom))]
pub use inference::{FixedTopology, InferenceTopologyError, InferenceTopologyResult, WorkerCount};
pub use layout::{CONSUMER_ID_MAX_LEN, DEFAULT_MAX_CONSUMERS, LAYOUT_VERSION, MAGIC, MAX_CAPACITY};
pub use liveness::{
    RequiredConsumerAlert, RequiredConsumerAlertHook, RequiredConsumerAlertKind,
    RequiredConsumerError, RequiredConsumerFailureAction, RequiredConsumerLivenessConfig,
};
pub use names::{portable_shm_segment_name, PORTABLE_SHM_SEGMENT_NAME_MAX_LEN};
pub use producer::{BatchClaim, Producer};
pub use registry::ConsumerInfo;
#[cfg(feature = "rkyv")]
pub use rkyv;
#[cfg(all(feature = "shm", not(loom)))]
pub use transport::ensure_coordination_cursor;
#[cfg(not(loom))]
pub use transport::{
    compact_session_tag, coordination_cursor_name, validate_segment_name, MyelonTransportConfig,
    MyelonTransportLayout, MyelonWaitStrategy, RunnerMyelonTransportConfig,
    DEFAULT_MYELON_RESPONSE_DEPTH, DEFAULT_MYELON_RPC_DEPTH, DEFAULT_TRANSPORT_PREFIX,
    SEGMENT_NAME_LIMIT_MACOS,
};
#[cfg(not(loom))]
pub use transport::{
    frame_flags, is_last_frame, is_single_frame, publish_framed_payload, recv_framed_message,
    AlignedFixedFrame, FixedFrame, FrameMeta, FramedTransportConsumer, FramedTransportProducer,
    TransportError, TransportResult,
};
#[cfg(all(feature = "mmap", not(loom)))]
pub use transport::{MmapFramedTransportConsumer, MmapFramedTransportProducer};
#[cfg(all(feature = "mmap", not(loom)))]
pub use typed_transport::{MmapTypedConsumer, MmapTypedProducer};
#[cfg(not(loom))]
pub use typed_transport::{TypedConsumer, TypedProducer, TypedPublishError};
pub use wait::{
    default_block_strategy_duration, default_consume_sleep_duration,
    default_discovery_poll_duration, perform_default_block_wait,
    perform_default_consume_sleep_wait, perform_default_discovery_poll_wait, perform_sleep_wait,
    AutoWaitStrategy,
};

/// Shared-memory top level façade types: the SHM producer/consumer pair and their builders.
#[cfg(all(feature = "shm", not(loom)))]
pub mod shared_memory {
    pub use crate::{
        attach_shared_consumer, build_shared_single_producer, portable_shm_segment_name,
        SharedConsumer, SharedDisruptorBuilder, SharedProducer, PORTABLE_SHM_SEGMENT_NAME_MAX_LEN,
    };
}

/// Lock-free coordination façade types: sequences, the full-ring error, wait strategies.
pub mod lock_free {
    pub use crate::{AutoWaitStrategy, RingBufferFull, Sequence};
}

/// The type for sequence numbers in the ring buffer.
pub type Sequence = i64;

#[cfg(all(feature = "shm", not(loom)))]
mod shm_api {
    use super::*;
    use crate::backend::ShmBackend;

    /// Multi-process producer over POSIX shared memory.
    pub type SharedProducer<E> = Producer<E, ShmBackend>;
    /// Broadcast consumer over POSIX shared memory.
    pub type SharedConsumer<E> = Consumer<E, ShmBackend>;

    /// Create a shared single producer for multi-process communication: a builder for ring
    /// `segment` of `capacity` events (a power of two) in POSIX shared memory.
    pub fn build_shared_single_producer<E: ShmEvent>(
        segment: &str,
        capacity: usize,
    ) -> SharedDisruptorBuilder<E, ShmBackend> {
        SharedDisruptorBuilder::with_backend(ShmBackend, segment, capacity)
    }

    /// Attach to an existing shared disruptor as a consumer: a builder whose `build_consumer`
    /// waits for ring `segment` to be ready and checks its type and capacity.
    pub fn attach_shared_consumer<E: ShmEvent>(
        segment: &str,
        capacity: usize,
    ) -> SharedDisruptorBuilder<E, ShmBackend> {
        SharedDisruptorBuilder::with_backend(ShmBackend, segment, capacity)
    }
}
#[cfg(all(feature = "shm", not(loom)))]
pub use shm_api::*;

#[cfg(all(feature = "mmap", not(loom)))]
mod mmap_api {
    use super::*;
    use crate::backend::MmapBackend;
    use std::path::Path;

    /// Producer for the mmap transport.
    pub type MmapProducer<E> = Producer<E, MmapBackend>;
    /// Consumer for the mmap transport.
    pub type MmapConsumer<E> = Consumer<E, MmapBackend>;

    fn builder<E: ShmEvent>(
        path: &Path,
        capacity: usize,
    ) -> MultiProcessResult<SharedDisruptorBuilder<E, MmapBackend>> {
        let (backend, name) = MmapBackend::for_path(path)?;
        Ok(SharedDisruptorBuilder::with_backend(
            backend, &name, capacity,
        ))
    }

    /// A producer builder for a ring stored in the file at `path` (created exclusively, mode
    /// 0600; an existing file is never truncated).
    pub fn build_mmap_single_producer<E: ShmEvent>(
        path: impl AsRef<Path>,
        capacity: usize,
    ) -> MultiProcessResult<SharedDisruptorBuilder<E, MmapBackend>> {
        builder(path.as_ref(), capacity)
    }

    /// A consumer builder for the ring stored in the file at `path`.
    pub fn attach_mmap_consumer<E: ShmEvent>(
        path: impl AsRef<Path>,
        capacity: usize,
    ) -> MultiProcessResult<SharedDisruptorBuilder<E, MmapBackend>> {
        builder(path.as_ref(), capacity)
    }
}
#[cfg(all(feature = "mmap", not(loom)))]
pub use mmap_api::*;

/// Compiles the README's examples as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
