//! Errors of the raw ring (Layer 0).

use crate::backend::BackendError;
use std::fmt;
use std::time::Duration;

/// Errors that can occur during multi-process setup and operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum MultiProcessError {
    /// The platform refused an operation (name taken, not found, no space, ...).
    Backend(BackendError),
    /// The capacity is not a power of two, is zero, or is too large.
    InvalidCapacity {
        /// Requested capacity.
        capacity: usize,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The event type cannot be placed in a slot (alignment above a page, or too large).
    UnsupportedEvent {
        /// Why.
        reason: &'static str,
    },
    /// A consumer id is empty, too long, or has a NUL byte.
    InvalidConsumerId {
        /// The id.
        id: String,
        /// Why.
        reason: &'static str,
    },
    /// The builder was asked for something contradictory.
    InvalidConfig {
        /// Why.
        reason: &'static str,
    },
    /// The segment did not become ready before the deadline.
    NotReady {
        /// The segment name.
        name: String,
        /// How long the caller waited.
        waited: Duration,
    },
    /// The region is not a myelon ring.
    BadMagic {
        /// Expected magic.
        expected: u64,
        /// Found magic.
        found: u64,
    },
    /// The ring was made by an incompatible layout version.
    LayoutVersionMismatch {
        /// This build's version.
        expected: u32,
        /// The segment's version.
        found: u32,
    },
    /// The ring carries a different event type.
    TypeMismatch {
        /// Fingerprint of the type this side was built with.
        expected: u64,
        /// Fingerprint stored in the segment.
        found: u64,
    },
    /// The ring's event size differs.
    EventSizeMismatch {
        /// This side's `size_of::<E>()`.
        expected: usize,
        /// The segment's event size.
        found: usize,
    },
    /// The ring's capacity differs from the one asked for.
    CapacityMismatch {
        /// Requested capacity.
        expected: usize,
        /// The segment's capacity.
        found: usize,
    },
    /// The ring's slot stride differs.
    SlotSizeMismatch {
        /// This side's stride.
        expected: usize,
        /// The segment's stride.
        found: usize,
    },
    /// A header field other than those above disagrees with this build's layout.
    LayoutMismatch {
        /// Which field.
        field: &'static str,
        /// Expected value.
        expected: u64,
        /// Found value.
        found: u64,
    },
    /// A value read from shared memory is impossible; the segment is corrupt (or hostile).
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// The value found.
        value: i64,
    },
    /// A live consumer already holds this id.
    ConsumerIdInUse {
        /// The id.
        id: String,
    },
    /// The consumer table is full.
    TooManyConsumers {
        /// Table size.
        max: usize,
    },
    /// Multi-producer ring: a live producer already uses this producer id.
    ProducerIdInUse {
        /// The id.
        source: u64,
    },
    /// Multi-producer ring: the producer table is full (of live producers).
    TooManyProducers {
        /// Table size.
        max: usize,
    },
    /// A managed publish of a multi-producer ring stopped under required-consumer liveness
    /// (the single-producer ring's managed calls return the [`RequiredConsumerError`] itself).
    ///
    /// [`RequiredConsumerError`]: crate::liveness::RequiredConsumerError
    Liveness(crate::liveness::RequiredConsumerError),
    /// The producer is gone without closing the stream (it crashed or was killed).
    ProducerDead,
    /// The producer closed the stream and every event has been consumed.
    Closed,
    /// A bounded wait ran out.
    Timeout {
        /// The operation.
        op: &'static str,
        /// How long it waited.
        waited: Duration,
    },
    /// Expected consumers did not attach before the coordination deadline.
    ConsumersNotAttached {
        /// Ids (or `prefix*`) still missing.
        missing: Vec<String>,
        /// How long the producer waited.
        waited: Duration,
    },
    /// The segment's registry lock is held by a live process that did not release it in time.
    RegistryBusy {
        /// How long the caller waited.
        waited: Duration,
    },
    /// Attach refused: the segment's owner or permission bits are not trusted (another user's
    /// ring, or one others may write). See `with_accepted_owners` and `with_group_access`.
    UntrustedSegment {
        /// The segment name.
        name: String,
        /// Its owner uid.
        owner_uid: u32,
        /// Its permission bits.
        mode: u32,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The builder was given the same expected consumer id twice.
    DuplicateConsumerId {
        /// The id.
        id: String,
    },
    /// A core to pin to (`with_process_core`, `with_consumer_core`, `MYELON_*_CORE`) is not
    /// one this process may run on.
    InvalidCore {
        /// The core asked for.
        core: usize,
        /// The cores this thread may run on (empty: pinning is not available).
        allowed: Vec<usize>,
    },
}

/// Result type for multi-process operations.
pub type MultiProcessResult<T> = Result<T, MultiProcessError>;

impl fmt::Display for MultiProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MultiProcessError as E;
        match self {
            E::Backend(e) => write!(f, "backend: {e}"),
            E::InvalidCapacity { capacity, reason } => {
                write!(f, "invalid capacity {capacity}: {reason}")
            }
            E::UnsupportedEvent { reason } => write!(f, "unsupported event type: {reason}"),
            E::InvalidConsumerId { id, reason } => {
                write!(f, "invalid consumer id {id:?}: {reason}")
            }
            E::InvalidConfig { reason } => write!(f, "invalid configuration: {reason}"),
            E::NotReady { name, waited } => {
                write!(f, "segment {name:?} not ready after {waited:?}")
            }
            E::BadMagic { expected, found } => {
                write!(
                    f,
                    "not a myelon ring: magic {found:#018x}, expected {expected:#018x}"
                )
            }
            E::LayoutVersionMismatch { expected, found } => {
                write!(f, "layout version {found}, this build speaks {expected}")
            }
            E::TypeMismatch { expected, found } => write!(
                f,
                "event type mismatch: segment fingerprint {found:#018x}, expected {expected:#018x}"
            ),
            E::EventSizeMismatch { expected, found } => {
                write!(f, "event size {found} bytes, expected {expected}")
            }
            E::CapacityMismatch { expected, found } => {
                write!(f, "capacity {found}, expected {expected}")
            }
            E::SlotSizeMismatch { expected, found } => {
                write!(f, "slot stride {found} bytes, expected {expected}")
            }
            E::LayoutMismatch {
                field,
                expected,
                found,
            } => write!(f, "header field {field} is {found}, expected {expected}"),
            E::Corrupt { what, value } => write!(f, "corrupt shared state: {what} = {value}"),
            E::ConsumerIdInUse { id } => write!(f, "consumer id {id:?} is held by a live consumer"),
            E::Liveness(e) => write!(f, "required-consumer liveness: {e}"),
            E::ProducerIdInUse { source } => {
                write!(
                    f,
                    "producer id {source} is used by a live producer of this ring"
                )
            }
            E::TooManyProducers { max } => {
                write!(f, "the producer table is full ({max} live producers)")
            }
            E::TooManyConsumers { max } => write!(f, "consumer table full ({max} entries)"),
            E::ProducerDead => write!(f, "the producer died without closing the stream"),
            E::Closed => write!(f, "the producer closed the stream"),
            E::Timeout { op, waited } => write!(f, "{op} timed out after {waited:?}"),
            E::ConsumersNotAttached { missing, waited } => {
                write!(f, "consumers {missing:?} not attached after {waited:?}")
            }
            E::RegistryBusy { waited } => {
                write!(f, "consumer registry held by a live process for {waited:?}")
            }
            E::UntrustedSegment {
                name,
                owner_uid,
                mode,
                reason,
            } => write!(
                f,
                "refusing to attach to {name:?} (owner uid {owner_uid}, mode {mode:04o}): {reason}"
            ),
            E::DuplicateConsumerId { id } => {
                write!(f, "expected consumer id {id:?} given more than once")
            }
            E::InvalidCore { core, allowed } if allowed.is_empty() => {
                write!(
                    f,
                    "cannot pin to core {core}: pinning is not available here"
                )
            }
            E::InvalidCore { core, allowed } => {
                write!(
                    f,
                    "core {core} is not one this process may run on (allowed: {allowed:?})"
                )
            }
        }
    }
}

impl std::error::Error for MultiProcessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MultiProcessError::Backend(e) => Some(e),
            MultiProcessError::Liveness(e) => Some(e),
            _ => None,
        }
    }
}

impl From<BackendError> for MultiProcessError {
    fn from(e: BackendError) -> Self {
        MultiProcessError::Backend(e)
    }
}

/// Error indicating that the ring buffer is full: a gating consumer has not released the slot
/// the next event would overwrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingBufferFull;

impl fmt::Display for RingBufferFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ring buffer full")
    }
}

impl std::error::Error for RingBufferFull {}
