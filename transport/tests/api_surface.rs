//! Every crate-level name of the API reference (`spec/myelon-api-reference.txt`: its Re-exports,
//! Modules, Structs, Enums, Constants, Functions and Type Aliases), at its documented path. This
//! file fails to compile if one of them disappears or moves; it runs with the default features,
//! and with `rkyv` / `flatbuffers` for the two re-exports those features add.

#![allow(unused_imports)]

// Re-exports.
use myelon::{
    compact_session_tag, coordination_cursor_name, ensure_coordination_cursor, frame_flags,
    is_last_frame, is_single_frame, publish_framed_payload, recv_framed_message,
    validate_segment_name, AlignedFixedFrame, Codec, CodecError, FixedTopology, FrameMeta,
    InferenceTopologyError, InferenceTopologyResult, MmapFramedTransportConsumer,
    MmapFramedTransportProducer, MmapTypedConsumer, MmapTypedProducer, MyelonTransportConfig,
    MyelonTransportLayout, MyelonWaitStrategy, RunnerMyelonTransportConfig, TransportError,
    TransportResult, TypedConsumer, TypedProducer, TypedPublishError, WorkerCount,
    DEFAULT_MYELON_RESPONSE_DEPTH, DEFAULT_MYELON_RPC_DEPTH, DEFAULT_TRANSPORT_PREFIX,
    SEGMENT_NAME_LIMIT_MACOS,
};
// The re-exports' documented origins.
use myelon::codec::{Codec as _, CodecError as _};
#[cfg(feature = "flatbuffers")]
use myelon::flatbuffers;
use myelon::inference::{
    FixedTopology as _, InferenceTopologyError as _, InferenceTopologyResult as _, WorkerCount as _,
};
#[cfg(feature = "rkyv")]
use myelon::rkyv;
use myelon::transport::{
    compact_session_tag as _, coordination_cursor_name as _, ensure_coordination_cursor as _,
    frame_flags as _, is_last_frame as _, is_single_frame as _, publish_framed_payload as _,
    recv_framed_message as _, validate_segment_name as _, AlignedFixedFrame as _, FrameMeta as _,
    MmapFramedTransportConsumer as _, MmapFramedTransportProducer as _, MyelonTransportConfig as _,
    MyelonTransportLayout as _, MyelonWaitStrategy as _, RunnerMyelonTransportConfig as _,
    TransportError as _, TransportResult as _, DEFAULT_MYELON_RESPONSE_DEPTH as _,
    DEFAULT_MYELON_RPC_DEPTH as _, DEFAULT_TRANSPORT_PREFIX as _, SEGMENT_NAME_LIMIT_MACOS as _,
};
use myelon::typed_transport::{
    MmapTypedConsumer as _, MmapTypedProducer as _, TypedConsumer as _, TypedProducer as _,
    TypedPublishError as _,
};

// Modules.
use myelon::{
    backend, codec, consumer, inference, lock_free, observability, prelude, producer,
    shared_memory, transport, typed_transport,
};

// Structs.
use myelon::{
    AutoConsumer, MmapConsumer, MmapProducer, MmapTransportLayout, RequiredConsumerAlert,
    RequiredConsumerLivenessConfig, RingBufferFull, SharedConsumer, SharedDisruptorBuilder,
    SharedProducer,
};

// Enums.
use myelon::producer::CoordinationMode as _;
use myelon::{
    AutoWaitStrategy, CoordinationMode, MultiProcessError, RequiredConsumerError,
    RequiredConsumerFailureAction,
};

// Constants.
use myelon::{DEFAULT_MAX_CONSUMERS, PORTABLE_SHM_SEGMENT_NAME_MAX_LEN};

// Functions.
use myelon::{
    attach_shared_consumer, build_shared_single_producer, default_block_strategy_duration,
    default_consume_sleep_duration, default_discovery_poll_duration, perform_default_block_wait,
    perform_default_consume_sleep_wait, perform_default_discovery_poll_wait, perform_sleep_wait,
    portable_shm_segment_name,
};

// Type aliases.
use myelon::{MultiProcessResult, RequiredConsumerAlertHook, Sequence};

myelon::shm_event! {
    #[derive(Clone, Copy, Debug, Default)]
    struct Event { sequence: u64 }
}

/// The names used as types and values, so a change of kind (a struct turned into a function,
/// say) fails too.
#[test]
fn names_resolve_as_documented() {
    type Frame = myelon::transport::FixedFrame<8>;
    let _: Option<SharedProducer<Event>> = None;
    let _: Option<SharedConsumer<Event>> = None;
    let _: Option<MmapProducer<Event>> = None;
    let _: Option<MmapConsumer<Event>> = None;
    let _: Option<SharedDisruptorBuilder<Event, backend::ShmBackend>> = None;
    let _: Option<AutoConsumer<Event, backend::ShmBackend>> = None;
    let _: Option<AlignedFixedFrame<16>> = None;
    let _: Option<FramedTransportTypes> = None;
    let _: Option<MmapTransportLayout> = None;
    let _: Option<RequiredConsumerAlert> = None;
    let _: Option<RequiredConsumerAlertHook> = None;
    let _: Option<RequiredConsumerLivenessConfig> = None;
    let _: Option<RequiredConsumerError> = None;
    let _: Option<RequiredConsumerFailureAction> = None;
    let _: Option<RingBufferFull> = None;
    let _: Option<MultiProcessError> = None;
    let _: MultiProcessResult<()> = Ok(());
    let _: InferenceTopologyResult<()> = Ok(());
    let _: TransportResult<()> = Ok(());
    let _: Option<InferenceTopologyError> = None;
    let _: Option<TransportError> = None;
    let _: Option<CodecError> = None;
    let _: Option<FrameMeta> = None;
    let _: Option<MyelonTransportConfig> = None;
    let _: Option<RunnerMyelonTransportConfig> = None;
    let _: Option<MyelonTransportLayout> = None;
    let _: Option<FixedTopology> = None;
    let _: Option<WorkerCount> = None;
    let _: Sequence = 0i64;
    let _ = (
        CoordinationMode::Immediate,
        AutoWaitStrategy::BusySpin,
        MyelonWaitStrategy::Block,
    );
    let _: [usize; 5] = [
        DEFAULT_MAX_CONSUMERS,
        PORTABLE_SHM_SEGMENT_NAME_MAX_LEN,
        SEGMENT_NAME_LIMIT_MACOS,
        DEFAULT_MYELON_RPC_DEPTH,
        DEFAULT_MYELON_RESPONSE_DEPTH,
    ];
    let _: &str = DEFAULT_TRANSPORT_PREFIX;
    let _ = (
        build_shared_single_producer::<Event>,
        attach_shared_consumer::<Event>,
        portable_shm_segment_name,
        compact_session_tag,
        coordination_cursor_name,
        validate_segment_name,
        ensure_coordination_cursor,
        is_last_frame,
        is_single_frame,
    );
    let _ = (
        default_block_strategy_duration,
        default_consume_sleep_duration,
        default_discovery_poll_duration,
        perform_default_block_wait,
        perform_default_consume_sleep_wait,
        perform_default_discovery_poll_wait,
        perform_sleep_wait,
    );
    let _ = publish_framed_payload::<Frame, backend::ShmBackend>;
    let _ = recv_framed_message::<Frame, backend::ShmBackend>;
    let _ = frame_flags::FIRST;
    fn codec_is_a_trait<T, C: Codec<T>>() {}
    fn typed_types<C: Codec<u64>>(
        _: Option<TypedProducer<u64, C, Frame>>,
        _: Option<TypedConsumer<u64, C, Frame>>,
        _: Option<MmapTypedProducer<u64, C, Frame>>,
        _: Option<MmapTypedConsumer<u64, C, Frame>>,
        _: Option<TypedPublishError>,
        _: Option<MmapFramedTransportProducer<Frame>>,
        _: Option<MmapFramedTransportConsumer<Frame>>,
    ) {
    }
    let _ = (
        MmapTransportLayout::new(std::env::temp_dir(), "api-surface", 1).map(|l| l.runners()),
        codec_is_a_trait::<u64, codec::BincodeCodec>,
        typed_types::<codec::BincodeCodec>,
    );
}

type FramedTransportTypes = (
    myelon::transport::FramedTransportProducer<myelon::transport::FixedFrame<8>>,
    myelon::transport::FramedTransportConsumer<myelon::transport::FixedFrame<8>>,
);

#[cfg(feature = "rkyv")]
#[test]
fn rkyv_is_re_exported() {
    let _ = rkyv::util::AlignedVec::<16>::new();
}

#[cfg(feature = "flatbuffers")]
#[test]
fn flatbuffers_is_re_exported() {
    let _ = flatbuffers::FlatBufferBuilder::new();
}
