//! The raw substrate of [`myelon`] under the crate name the API reference imports it by,
//! `disruptor_mp`: Layer 0 (fixed-size events in a shared-memory ring) and nothing above it.
//!
//! Every item is a re-export, so types are identical across the two paths: a
//! `disruptor_mp::SharedConsumer<E>` *is* a `myelon::SharedConsumer<E>`. Reference code such as
//! its quick start (`use disruptor_mp::portable_shm_segment_name;` beside `use myelon::...`)
//! compiles unchanged with
//!
//! ```toml
//! [dependencies]
//! myelon = { path = "transport" }            # or the published version
//! disruptor-mp = { path = "disruptor-mp" }   # this crate (unpublished: path or git only)
//! ```
//!
//! New code needs only `myelon`.

#[cfg(feature = "dst")]
pub use myelon::dst;
pub use myelon::{attach_mmap_consumer, build_mmap_single_producer, MmapConsumer, MmapProducer};
pub use myelon::{
    attach_shared_consumer, build_shared_single_producer, default_block_strategy_duration,
    default_consume_sleep_duration, default_discovery_poll_duration, perform_default_block_wait,
    perform_default_consume_sleep_wait, perform_default_discovery_poll_wait, perform_sleep_wait,
    portable_shm_segment_name, shm_event, type_fingerprint, AutoConsumer, AutoWaitStrategy,
    BatchClaim, Consumer, ConsumerInfo, CoordinationMode, EventLease, MultiProcessError,
    MultiProcessResult, Producer, RequiredConsumerAlert, RequiredConsumerAlertHook,
    RequiredConsumerAlertKind, RequiredConsumerError, RequiredConsumerFailureAction,
    RequiredConsumerLivenessConfig, RingBufferFull, Sequence, SharedConsumer,
    SharedDisruptorBuilder, SharedProducer, ShmEvent, DEFAULT_ATTACH_TIMEOUT,
    DEFAULT_COORDINATION_TIMEOUT, DEFAULT_MAX_CONSUMERS, PORTABLE_SHM_SEGMENT_NAME_MAX_LEN,
};
pub use myelon::{backend, consumer, liveness, lock_free, observability, producer, shared_memory};
