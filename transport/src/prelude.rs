//! Convenience re-exports: the transport, codec and ring types most programs use, in one
//! `use myelon::prelude::*;`.

pub use crate::codec::{Codec, CodecError, ZeroCopyCodec};
pub use crate::transport::{
    frame_flags, publish_framed_payload, recv_framed_message, AlignedFixedFrame, FixedFrame,
    FrameMeta, FramedMessage, FramedTransportConsumer, FramedTransportFrame,
    FramedTransportProducer, MessageClaim, TransportError, TransportResult,
};
pub use crate::typed_transport::{TypedConsumer, TypedProducer, TypedPublishError};
pub use crate::{
    AutoWaitStrategy, Consumer, ConsumerInfo, CoordinationMode, MultiProcessError,
    MultiProcessResult, Producer, RingBufferFull, Sequence, SharedDisruptorBuilder, ShmEvent,
};

#[cfg(feature = "bincode")]
pub use crate::codec::BincodeCodec;
#[cfg(feature = "rkyv")]
pub use crate::codec::RkyvCodec;
#[cfg(feature = "flatbuffers")]
pub use crate::codec::{FlatbuffersCodec, FlatbuffersMessage};

#[cfg(all(feature = "shm", not(loom)))]
pub use crate::{
    attach_shared_consumer, build_shared_single_producer, portable_shm_segment_name,
    SharedConsumer, SharedProducer,
};

#[cfg(all(feature = "mmap", not(loom)))]
pub use crate::transport::{MmapFramedTransportConsumer, MmapFramedTransportProducer};
#[cfg(all(feature = "mmap", not(loom)))]
pub use crate::typed_transport::{MmapTypedConsumer, MmapTypedProducer};
#[cfg(all(feature = "mmap", not(loom)))]
pub use crate::{attach_mmap_consumer, build_mmap_single_producer, MmapConsumer, MmapProducer};
