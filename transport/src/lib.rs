//! Multiprocess shared-memory transport for inference and other low-latency pipelines.
//!
//! One producer process publishes; N consumer processes receive every event, in order,
//! through a lock-free ring buffer that lives in shared memory (strict broadcast: the slowest
//! gating consumer bounds the producer, nothing is ever overwritten unread).
//!
//! Layer 0 moves fixed-size [`ShmEvent`] values:
//!
//! ```no_run
//! use myelon::{attach_shared_consumer, build_shared_single_producer, portable_shm_segment_name};
//!
//! myelon::shm_event! {                       // #[repr(C)] + a compile-time check that every field
//!     #[derive(Clone, Copy, Debug, Default)] // is valid for any bit pattern and holds no pointer
//!     pub struct Event { pub sequence: u64, pub checksum: u64 }
//! }
//!
//! let segment = portable_shm_segment_name("readme-l0");       // "/readme-l0", fits macOS's 31 bytes
//! let mut producer = build_shared_single_producer::<Event>(&segment, 4096)
//!     .discover_consumer_with_prefix(1, "cp")                 // one consumer "cp…": reserved, so it
//!     .build_producer(Event::default)                         // gets every event however late it comes
//!     .expect("build producer");
//! producer.publish(|slot| slot.sequence = 1);
//! producer.publish(|slot| slot.sequence = 2);
//!
//! // another process
//! let mut consumer = attach_shared_consumer::<Event>(&segment, 4096)
//!     .with_consumer_id("cp_0")
//!     .build_consumer()
//!     .expect("attach");
//! while let Some(event) = consumer.try_consume_next_leased().expect("ring") {
//!     println!("received sequence {}", event.sequence);      // read in place; released on drop
//! }
//! ```
//!
//! The consumer prints `received sequence 1` and `received sequence 2`, also when it starts after
//! both were published: the producer named it (`discover_consumer_with_prefix`), so its entry is
//! reserved (see [`CoordinationMode`]).
//!
//! Layer 1 ([`transport`]) frames variable-length messages over fixed slots, Layer 2
//! ([`typed_transport`] + [`codec`]) encodes typed values, Layer 3 ([`codec::ZeroCopyCodec`])
//! reads them in place. Every backend implements [`backend::RingBackend`]: POSIX shared memory
//! (`shm`, default), memory-mapped files (`mmap`, default) and an in-process simulator (always
//! available) that the deterministic simulation harness drives.
//!
//! The source tree follows the layers: `ring/` (Layer 0), `framed/` (Layer 1), `typed/`
//! (Layers 2–3 and `codec/`), `session/` (names and the coordination cursor), beside
//! `backend/`, `liveness/`, `observability/` and `inference/`. The public modules below are the
//! reference API's paths onto them.

#![warn(missing_docs)]
#![warn(missing_debug_implementations)]

/// Items that exist only outside loom models (loom builds compile Layer 0 alone).
macro_rules! cfg_not_loom {
    ($($item:item)*) => { $( #[cfg(not(loom))] $item )* };
}

#[cfg(feature = "tokio")]
pub mod asynch;
pub mod backend;
#[cfg(all(feature = "dst", not(loom)))]
pub mod dst;
pub mod liveness;
pub mod observability;
mod ring;

cfg_not_loom! {
    mod framed;
    pub mod inference;
    pub mod prelude;
    mod session;
    mod typed;
}

// ---------------------------------------------------------------------------------------------
// Public paths of the reference API.

pub use ring::{consumer, producer};

cfg_not_loom! {
    pub use typed::codec;

    /// Layer 1, framed messages, and the session layout helpers (the reference's
    /// `myelon::transport` path).
    pub mod transport {
        pub use crate::framed::*;
        pub use crate::session::{
            compact_session_tag, coordination_cursor, coordination_cursor_name, layout_names,
            mmap_layout, validate_segment_name, CoordinationCursor, CoordinationCursorError,
            MmapLayoutError, MmapTransportLayout, MyelonLayoutError,
            MyelonTransportConfig, MyelonTransportLayout, MyelonWaitStrategy,
            RunnerMyelonTransportConfig, SegmentNameError, DEFAULT_MYELON_RESPONSE_DEPTH,
            DEFAULT_MYELON_RPC_DEPTH, DEFAULT_TRANSPORT_PREFIX, MAX_RUNNERS,
            SEGMENT_NAME_LIMIT_MACOS,
        };
        #[cfg(feature = "shm")]
        pub use crate::session::ensure_coordination_cursor;
    }

    /// Layers 2 and 3, typed messages over the framed transport (the reference's
    /// `myelon::typed_transport` path).
    pub mod typed_transport {
        pub use crate::typed::*;
    }

    pub use inference::{FixedTopology, InferenceTopologyError, InferenceTopologyResult, WorkerCount};
    pub use session::{portable_shm_segment_name, PORTABLE_SHM_SEGMENT_NAME_MAX_LEN};
    pub use transport::{
        compact_session_tag, coordination_cursor_name, frame_flags, is_last_frame,
        is_single_frame, publish_framed_payload, recv_framed_message, validate_segment_name,
        AlignedFixedFrame, FixedFrame, FrameMeta, FramedMultiProducer, FramedTransportConsumer,
        FramedTransportProducer, MmapLayoutError, MmapTransportLayout, MyelonTransportConfig,
        MyelonTransportLayout,
        MyelonWaitStrategy, RunnerMyelonTransportConfig, TransportError, TransportResult,
        DEFAULT_MYELON_RESPONSE_DEPTH, DEFAULT_MYELON_RPC_DEPTH, DEFAULT_TRANSPORT_PREFIX,
        SEGMENT_NAME_LIMIT_MACOS,
    };
    pub use codec::{Codec, CodecError};
    pub use typed_transport::{
        TypedConsumer, TypedMultiProducer, TypedProducer, TypedPublishError,
    };
}

#[cfg(all(feature = "shm", not(loom)))]
pub use transport::ensure_coordination_cursor;
#[cfg(all(feature = "mmap", not(loom)))]
pub use transport::{MmapFramedTransportConsumer, MmapFramedTransportProducer};
#[cfg(all(feature = "mmap", not(loom)))]
pub use typed_transport::{MmapTypedConsumer, MmapTypedProducer};

#[cfg(feature = "tokio")]
pub use asynch::{AsyncConsumer, AsyncMultiProducer, AsyncProducer};
#[cfg(all(feature = "tokio", not(loom)))]
pub use asynch::{
    AsyncFramedConsumer, AsyncFramedProducer, AsyncTypedConsumer, AsyncTypedProducer,
};
pub use liveness::{
    RequiredConsumerAlert, RequiredConsumerAlertHook, RequiredConsumerAlertKind,
    RequiredConsumerError, RequiredConsumerFailureAction, RequiredConsumerLivenessConfig,
};
#[cfg(all(any(feature = "shm", feature = "mmap"), not(loom)))]
pub use ring::api::*;
pub use ring::auto::AutoConsumer;
pub use ring::builder::{
    CoordinationMode, SharedDisruptorBuilder, DEFAULT_ATTACH_TIMEOUT, DEFAULT_COORDINATION_TIMEOUT,
};
pub use ring::consumer::{Consumer, EventLease};
pub use ring::error::{MultiProcessError, MultiProcessResult, RingBufferFull};
pub use ring::event::{type_fingerprint, ShmEvent};
pub use ring::layout::{
    CONSUMER_ID_MAX_LEN, DEFAULT_MAX_CONSUMERS, LAYOUT_VERSION, MAGIC, MAX_CAPACITY, MAX_PRODUCERS,
};
pub use ring::multi::{MultiClaim, MultiProducer, MultiProducerBuilder, Sourced};
pub use ring::pinning::{CONSUMER_CORE_ENV, PROCESS_CORE_ENV};
pub use ring::producer::{BatchClaim, Producer};
pub use ring::registry::ConsumerInfo;
pub use ring::wait::{
    default_block_strategy_duration, default_consume_sleep_duration,
    default_discovery_poll_duration, perform_default_block_wait,
    perform_default_consume_sleep_wait, perform_default_discovery_poll_wait, perform_sleep_wait,
    AutoWaitStrategy,
};

#[cfg(feature = "bincode")]
pub use bincode;
#[cfg(feature = "flatbuffers")]
pub use flatbuffers;
#[cfg(feature = "rkyv")]
pub use rkyv;

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

/// Compiles the README's examples as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
