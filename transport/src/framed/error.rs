//! Errors of the framed transport (Layer 1).

use crate::typed::codec::CodecError;
use crate::ring::error::MultiProcessError;
use crate::liveness::RequiredConsumerError;
use std::fmt;

/// Result type of the framed and typed transports.
pub type TransportResult<T> = Result<T, TransportError>;

/// Why a framed operation failed.
///
/// Frame errors (`FrameLength` .. `MessageTooLarge` on the consumer side) describe what a
/// consumer found in a slot; the frame (and the message it belonged to) is dropped, counted in
/// [`dropped_messages`](crate::framed::FramedTransportConsumer::dropped_messages) and the
/// consumer stays usable: the next receive resumes at the next first frame.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportError {
    /// The ring failed (end of stream, dead producer, timeout, attach errors, ...).
    Ring(MultiProcessError),
    /// Not enough free slots for the whole message right now (`try_*` only).
    Full {
        /// Frames the message needs.
        frames: usize,
    },
    /// The message needs more frames than the ring has slots, so it cannot be claimed or
    /// published as a unit (`try_publish`, claims; `publish` streams such messages instead).
    ExceedsCapacity {
        /// Frames the message needs.
        frames: usize,
        /// Ring capacity in slots.
        capacity: usize,
    },
    /// A message longer than the configured maximum (producer: refused; consumer: dropped).
    MessageTooLarge {
        /// Message id (0 on the producer side).
        message_id: u32,
        /// Length seen so far (consumer) or requested (producer).
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A frame whose length exceeds the frame's payload capacity.
    FrameLength {
        /// Message id in the frame.
        message_id: u32,
        /// Length in the frame.
        len: u32,
        /// Payload bytes per frame.
        max: usize,
    },
    /// A frame with flag bits outside [`frame_flags::ALL`](super::frame_flags::ALL).
    InvalidFlags {
        /// Message id in the frame.
        message_id: u32,
        /// The flags.
        flags: u32,
    },
    /// A fragment that is not the last but does not fill its frame.
    ShortFragment {
        /// Message id.
        message_id: u32,
        /// Fragment index.
        fragment_index: u32,
        /// Its length.
        len: u32,
    },
    /// A fragment where a first frame was expected (after a completed message).
    MissingFirstFrame {
        /// Message id in the frame.
        message_id: u32,
    },
    /// A new first frame arrived before the last fragment of the message being reassembled.
    IncompleteMessage {
        /// The message left incomplete.
        message_id: u32,
    },
    /// A fragment of another message arrived in the middle of a message.
    MessageIdMismatch {
        /// Id of the message being reassembled.
        expected: u32,
        /// Id in the frame.
        found: u32,
    },
    /// A fragment index out of sequence.
    FragmentGap {
        /// Message id.
        message_id: u32,
        /// Expected index (truncated to the header's width).
        expected: u32,
        /// Index in the frame.
        found: u32,
    },
    /// Encoding or decoding a typed message failed (Layer 2/3).
    Codec(CodecError),
    /// A managed publish failed under required-consumer liveness (`publish_managed`).
    Liveness(RequiredConsumerError),
}

impl TransportError {
    /// Whether this is a frame-validation error (the consumer dropped data and stays usable),
    /// as opposed to a ring, capacity or codec error.
    pub fn is_frame_error(&self) -> bool {
        matches!(
            self,
            TransportError::FrameLength { .. }
                | TransportError::InvalidFlags { .. }
                | TransportError::ShortFragment { .. }
                | TransportError::MissingFirstFrame { .. }
                | TransportError::IncompleteMessage { .. }
                | TransportError::MessageIdMismatch { .. }
                | TransportError::FragmentGap { .. }
        ) || matches!(self, TransportError::MessageTooLarge { message_id, .. } if *message_id != 0)
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TransportError::*;
        match self {
            Ring(e) => write!(f, "ring: {e}"),
            Full { frames } => write!(f, "ring full: no room for {frames} frames"),
            ExceedsCapacity { frames, capacity } => {
                write!(f, "message needs {frames} frames, ring holds {capacity}")
            }
            MessageTooLarge {
                message_id,
                len,
                max,
            } => write!(
                f,
                "message {message_id}: {len} bytes exceed the maximum of {max}"
            ),
            FrameLength {
                message_id,
                len,
                max,
            } => write!(
                f,
                "message {message_id}: frame length {len} exceeds {max} payload bytes"
            ),
            InvalidFlags { message_id, flags } => {
                write!(f, "message {message_id}: invalid frame flags {flags:#x}")
            }
            ShortFragment {
                message_id,
                fragment_index,
                len,
            } => write!(
                f,
                "message {message_id}: inner fragment {fragment_index} holds only {len} bytes"
            ),
            MissingFirstFrame { message_id } => {
                write!(f, "message {message_id}: fragment without a first frame")
            }
            IncompleteMessage { message_id } => {
                write!(
                    f,
                    "message {message_id}: new message before its last fragment"
                )
            }
            MessageIdMismatch { expected, found } => {
                write!(f, "fragment of message {found} inside message {expected}")
            }
            FragmentGap {
                message_id,
                expected,
                found,
            } => write!(
                f,
                "message {message_id}: fragment {found} where {expected} was expected"
            ),
            Codec(e) => write!(f, "codec: {e}"),
            Liveness(e) => write!(f, "required-consumer liveness: {e}"),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransportError::Ring(e) => Some(e),
            TransportError::Codec(e) => Some(e),
            TransportError::Liveness(e) => Some(e),
            _ => None,
        }
    }
}

impl From<MultiProcessError> for TransportError {
    fn from(e: MultiProcessError) -> Self {
        TransportError::Ring(e)
    }
}

impl From<RequiredConsumerError> for TransportError {
    fn from(e: RequiredConsumerError) -> Self {
        TransportError::Liveness(e)
    }
}

impl From<CodecError> for TransportError {
    fn from(e: CodecError) -> Self {
        TransportError::Codec(e)
    }
}
