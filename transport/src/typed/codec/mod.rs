//! Layer 2/3 — codecs: how a typed message becomes the bytes of a framed message, and back.
//!
//! A [`Codec<T>`] encodes into a reusable buffer and decodes from a byte slice. Decoding reads
//! bytes a peer process wrote into shared memory, so every shipped codec is **bounded and
//! validating**: a hostile payload is a [`CodecError`], never a panic, an unbounded allocation
//! or undefined behaviour.
//!
//! A [`ZeroCopyCodec<T>`] can additionally *access* a message in place: it validates the bytes
//! and returns a view borrowing them (an rkyv `Archived<T>` reference, a flatbuffers root table)
//! without deserializing or allocating.
//!
//! | codec | feature | `T` | decode | access |
//! |---|---|---|---|---|
//! | `BincodeCodec` | `bincode` (default) | `bincode::Encode + Decode<()>` | byte limit, trailing bytes rejected | — |
//! | `RkyvCodec` | `rkyv` | `rkyv::Archive` with a checkable archive | `rkyv::from_bytes` (bytecheck) | `rkyv::access` (bytecheck) |
//! | `FlatbuffersCodec` | `flatbuffers` | a `FlatbuffersMessage` | verifier with limits | the verified root table |

use std::fmt;

#[cfg(feature = "bincode")]
mod bincode_codec;
#[cfg(feature = "flatbuffers")]
mod flatbuffers_codec;
#[cfg(feature = "rkyv")]
mod rkyv_codec;

#[cfg(feature = "bincode")]
pub use bincode_codec::{BincodeCodec, DEFAULT_BINCODE_LIMIT};
#[cfg(feature = "flatbuffers")]
pub use flatbuffers_codec::{FlatbuffersCodec, FlatbuffersMessage};
#[cfg(feature = "rkyv")]
pub use rkyv_codec::RkyvCodec;

/// Why encoding or decoding failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The value could not be encoded.
    Encode {
        /// The codec.
        codec: &'static str,
        /// The encoder's message.
        reason: String,
    },
    /// The bytes are not a valid encoding of the type (malformed, truncated, out of limits,
    /// trailing bytes, failed validation).
    Decode {
        /// The codec.
        codec: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The encoding is larger than the codec's limit.
    TooLarge {
        /// The codec.
        codec: &'static str,
        /// Bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
}

#[cfg_attr(
    not(any(feature = "bincode", feature = "rkyv", feature = "flatbuffers")),
    allow(dead_code)
)]
impl CodecError {
    pub(crate) fn decode(codec: &'static str, reason: impl fmt::Display) -> Self {
        CodecError::Decode {
            codec,
            reason: reason.to_string(),
        }
    }

    // Only the codecs that can fail to encode call it.
    #[cfg_attr(not(any(feature = "bincode", feature = "rkyv")), allow(dead_code))]
    pub(crate) fn encode(codec: &'static str, reason: impl fmt::Display) -> Self {
        CodecError::Encode {
            codec,
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Encode { codec, reason } => write!(f, "{codec}: cannot encode: {reason}"),
            CodecError::Decode { codec, reason } => write!(f, "{codec}: cannot decode: {reason}"),
            CodecError::TooLarge { codec, len, max } => {
                write!(f, "{codec}: {len} bytes exceed the limit of {max}")
            }
        }
    }
}

impl std::error::Error for CodecError {}

/// Encodes values of `T` into bytes and decodes them back.
pub trait Codec<T> {
    /// A short name for errors and logs.
    const NAME: &'static str;

    /// Encodes `value`, replacing the contents of `out` (whose capacity is reused).
    fn encode(&mut self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError>;

    /// Decodes a value from `bytes`, which are untrusted: any input gives a value or an error.
    fn decode(&mut self, bytes: &[u8]) -> Result<T, CodecError>;
}

/// A codec whose encoding can be read in place: [`ZeroCopyCodec::access`] validates the bytes
/// and returns a view borrowing them, with no deserialization and no allocation.
pub trait ZeroCopyCodec<T>: Codec<T> {
    /// The in-place view of a message.
    type View<'a>;

    /// Alignment the bytes must have for [`ZeroCopyCodec::access`]; the typed consumer copies a
    /// misaligned message into an aligned buffer first (16 is what [`AlignedFixedFrame`] slots
    /// and the reassembly buffer provide).
    ///
    /// [`AlignedFixedFrame`]: crate::framed::AlignedFixedFrame
    const ALIGN: usize = 1;

    /// Validates `bytes` (untrusted) and returns the view.
    fn access<'a>(&self, bytes: &'a [u8]) -> Result<Self::View<'a>, CodecError>;
}
