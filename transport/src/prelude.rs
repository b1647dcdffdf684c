//! Convenience re-exports: the transport, codec, liveness and observability types most programs
//! use, in one `use myelon::prelude::*;`.
//!
//! ```
//! use myelon::prelude::*;
//! use myelon::backend::SimBackend;
//!
//! let world = SimBackend::new_world();
//! let mut tx = FramedTransportProducer::<FixedFrame<52>, _>::from_builder(
//!     SharedDisruptorBuilder::with_backend(world.clone(), "prelude", 16),
//! )?;
//! let mut rx = FramedTransportConsumer::<FixedFrame<52>, _>::from_builder(
//!     SharedDisruptorBuilder::with_backend(world.sibling(), "prelude", 16).with_consumer_id("c"),
//! )?;
//! tx.publish(b"hi")?;
//! assert_eq!(&*rx.try_recv()?.expect("message"), b"hi");
//! # Ok::<(), TransportError>(())
//! ```

pub use crate::typed::codec::{Codec, CodecError, ZeroCopyCodec};
pub use crate::observability::{ConsumerSnapshot, RingInspector, RingSnapshot};
pub use crate::framed::{
    frame_flags, publish_framed_payload, recv_framed_message, AlignedFixedFrame, FixedFrame,
    FrameMeta, FramedMessage, FramedTransportConsumer, FramedTransportFrame,
    FramedTransportProducer, MessageClaim, TransportError, TransportResult,
};
pub use crate::typed::{TypedConsumer, TypedProducer, TypedPublishError};
pub use crate::{
    AutoWaitStrategy, Consumer, ConsumerInfo, CoordinationMode, MultiProcessError,
    MultiProcessResult, Producer, RingBufferFull, Sequence, SharedDisruptorBuilder, ShmEvent,
};
pub use crate::{
    RequiredConsumerAlert, RequiredConsumerError, RequiredConsumerFailureAction,
    RequiredConsumerLivenessConfig,
};

#[cfg(feature = "bincode")]
pub use crate::typed::codec::BincodeCodec;
#[cfg(feature = "rkyv")]
pub use crate::typed::codec::RkyvCodec;
#[cfg(feature = "flatbuffers")]
pub use crate::typed::codec::{FlatbuffersCodec, FlatbuffersMessage};

#[cfg(all(feature = "shm", not(loom)))]
pub use crate::{
    attach_shared_consumer, build_shared_single_producer, portable_shm_segment_name,
    SharedConsumer, SharedProducer,
};

#[cfg(all(feature = "mmap", not(loom)))]
pub use crate::framed::{MmapFramedTransportConsumer, MmapFramedTransportProducer};
#[cfg(all(feature = "mmap", not(loom)))]
pub use crate::typed::{MmapTypedConsumer, MmapTypedProducer};
#[cfg(all(feature = "mmap", not(loom)))]
pub use crate::{attach_mmap_consumer, build_mmap_single_producer, MmapConsumer, MmapProducer};
