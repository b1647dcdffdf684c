//! The flatbuffers codec (feature `flatbuffers`), with zero-copy access to the root table.
//!
//! flatbuffers has no derive: a message type implements [`FlatbuffersMessage`], naming its root
//! table type (the `Follow + Verifiable` struct `flatc` generates, or a hand-written one) and how
//! to build it and read it back. Decoding and [`ZeroCopyCodec::access`] run the flatbuffers
//! verifier first, bounded by [`VerifierOptions`] (depth, table count, apparent size), so a
//! hostile buffer is a [`CodecError`]; the accessors of a verified table read in place.

use super::{Codec, CodecError, ZeroCopyCodec};
use flatbuffers::{FlatBufferBuilder, Follow, Verifiable, VerifierOptions, WIPOffset};

/// A type sent as a flatbuffers message.
pub trait FlatbuffersMessage: Sized {
    /// The root table type as seen from a buffer with lifetime `'a`.
    type Root<'a>: Follow<'a, Inner = Self::Root<'a>> + Verifiable + 'a;

    /// Builds `self` as the root table in `fbb` and returns its offset (not yet finished).
    fn build<'b>(&self, fbb: &mut FlatBufferBuilder<'b>) -> WIPOffset<Self::Root<'b>>;

    /// Reads an owned value from a verified root table.
    fn from_root(root: Self::Root<'_>) -> Result<Self, CodecError>;
}

/// flatbuffers codec for `T`: owns a reusable builder and the verifier limits.
pub struct FlatbuffersCodec<T> {
    fbb: FlatBufferBuilder<'static>,
    opts: VerifierOptions,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for FlatbuffersCodec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlatbuffersCodec")
            .field("max_depth", &self.opts.max_depth)
            .field("max_tables", &self.opts.max_tables)
            .field("max_apparent_size", &self.opts.max_apparent_size)
            .finish()
    }
}

impl<T> Clone for FlatbuffersCodec<T> {
    /// A codec with the same limits and its own builder.
    fn clone(&self) -> Self {
        Self::with_verifier_options(self.opts.clone())
    }
}

impl<T> Default for FlatbuffersCodec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> FlatbuffersCodec<T> {
    /// The codec with the verifier's default limits (depth 64, 1M tables, 1 GiB apparent size).
    pub fn new() -> Self {
        Self::with_verifier_options(VerifierOptions::default())
    }

    /// The codec with explicit verifier limits.
    pub fn with_verifier_options(opts: VerifierOptions) -> Self {
        FlatbuffersCodec {
            fbb: FlatBufferBuilder::new(),
            opts,
            _t: std::marker::PhantomData,
        }
    }

    fn verified<'a>(&self, bytes: &'a [u8]) -> Result<T::Root<'a>, CodecError>
    where
        T: FlatbuffersMessage,
    {
        flatbuffers::root_with_opts::<T::Root<'a>>(&self.opts, bytes)
            .map_err(|e| CodecError::decode("flatbuffers", e))
    }
}

impl<T: FlatbuffersMessage> Codec<T> for FlatbuffersCodec<T> {
    const NAME: &'static str = "flatbuffers";

    fn encode(&mut self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.fbb.reset();
        let root = value.build(&mut self.fbb);
        self.fbb.finish_minimal(root);
        out.clear();
        out.extend_from_slice(self.fbb.finished_data());
        Ok(())
    }

    fn decode(&mut self, bytes: &[u8]) -> Result<T, CodecError> {
        T::from_root(self.verified(bytes)?)
    }
}

impl<T: FlatbuffersMessage> ZeroCopyCodec<T> for FlatbuffersCodec<T> {
    type View<'a> = T::Root<'a>;

    fn access<'a>(&self, bytes: &'a [u8]) -> Result<T::Root<'a>, CodecError> {
        self.verified(bytes)
    }
}
