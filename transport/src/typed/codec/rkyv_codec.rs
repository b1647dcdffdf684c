//! The rkyv 0.8 codec (feature `rkyv`), with zero-copy access.
//!
//! Encoding uses rkyv's high-level serializer into the caller's reusable `Vec<u8>`; positions in
//! an rkyv archive are relative to its start, so the archive keeps its alignment wherever it is
//! copied to a 16-byte-aligned address — an [`AlignedFixedFrame`] slot or the framed consumer's
//! reassembly buffer.
//!
//! Decoding and [`ZeroCopyCodec::access`] validate with bytecheck: every relative pointer,
//! length, enum tag, UTF-8 string and alignment is checked against the byte slice first, so a
//! hostile archive is a [`CodecError`]. `decode` uses rkyv's high-level validator
//! (`rkyv::from_bytes`); `access` uses the low-level one (`rkyv::api::low::access`), which checks
//! the same but does not track shared pointers (measurably cheaper for small messages), so
//! zero-copy access needs an archive without `Rc`/`Arc` (such types still `decode`). A deserialized value allocates no more than what the
//! (bounded) archive describes. `decode` copies misaligned input into an aligned scratch buffer
//! it reuses; `access` needs 16-byte-aligned bytes ([`ZeroCopyCodec::ALIGN`]) and reports
//! misaligned input as an error — the typed consumer aligns for it.
//!
//! [`AlignedFixedFrame`]: crate::framed::AlignedFixedFrame

use super::{Codec, CodecError, ZeroCopyCodec};
use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::api::low::LowValidator;
use rkyv::bytecheck::CheckBytes;
use rkyv::de::Pool;
use rkyv::rancor::{Error as RkyvError, Strategy};
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

/// Alignment rkyv archives are read at.
const ALIGN: usize = 16;

/// rkyv codec: `T: Archive + Serialize + Deserialize`, with a checkable archive
/// (`#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]`; bytecheck support is derived
/// by default).
#[derive(Default)]
pub struct RkyvCodec {
    scratch: AlignedVec<ALIGN>,
}

impl std::fmt::Debug for RkyvCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RkyvCodec").finish_non_exhaustive()
    }
}

impl Clone for RkyvCodec {
    /// A new codec (the scratch buffer is not shared).
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl RkyvCodec {
    /// The codec.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<T> Codec<T> for RkyvCodec
where
    T: Archive + for<'a> Serialize<HighSerializer<Vec<u8>, ArenaHandle<'a>, RkyvError>>,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, RkyvError>>
        + Deserialize<T, Strategy<Pool, RkyvError>>,
{
    const NAME: &'static str = "rkyv";

    fn encode(&mut self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let mut buf = std::mem::take(out);
        buf.clear();
        *out = rkyv::api::high::to_bytes_in::<_, RkyvError>(value, buf)
            .map_err(|e| CodecError::encode("rkyv", e))?;
        Ok(())
    }

    fn decode(&mut self, bytes: &[u8]) -> Result<T, CodecError> {
        let bytes = if (bytes.as_ptr() as usize) % ALIGN == 0 {
            bytes
        } else {
            self.scratch.clear();
            self.scratch.extend_from_slice(bytes);
            &self.scratch[..]
        };
        rkyv::from_bytes::<T, RkyvError>(bytes).map_err(|e| CodecError::decode("rkyv", e))
    }
}

impl<T> ZeroCopyCodec<T> for RkyvCodec
where
    T: Archive + for<'a> Serialize<HighSerializer<Vec<u8>, ArenaHandle<'a>, RkyvError>>,
    T::Archived: for<'a> CheckBytes<HighValidator<'a, RkyvError>>
        + for<'a> CheckBytes<LowValidator<'a, RkyvError>>
        + Deserialize<T, Strategy<Pool, RkyvError>>
        + 'static,
{
    type View<'a> = &'a T::Archived;
    const ALIGN: usize = ALIGN;

    fn access<'a>(&self, bytes: &'a [u8]) -> Result<&'a T::Archived, CodecError> {
        rkyv::api::low::access::<T::Archived, RkyvError>(bytes)
            .map_err(|e| CodecError::decode("rkyv", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    struct Msg {
        id: u64,
        name: String,
        values: Vec<u32>,
    }

    fn sample() -> Msg {
        Msg {
            id: 42,
            name: "forty-two".into(),
            values: vec![4, 2],
        }
    }

    #[test]
    fn round_trip_and_access() {
        let mut c = RkyvCodec::new();
        let mut out = Vec::new();
        c.encode(&sample(), &mut out).expect("encode");
        let mut aligned = AlignedVec::<16>::new();
        aligned.extend_from_slice(&out);
        let v: &ArchivedMsg = ZeroCopyCodec::<Msg>::access(&c, &aligned).expect("access");
        assert_eq!(v.id, 42);
        assert_eq!(v.name.as_str(), "forty-two");
        assert_eq!(
            Codec::<Msg>::decode(&mut c, &aligned).expect("decode"),
            sample()
        );
        // Misaligned input still decodes (copied), but access reports it.
        let mut shifted = AlignedVec::<16>::new();
        shifted.push(0);
        shifted.extend_from_slice(&out);
        assert_eq!(
            Codec::<Msg>::decode(&mut c, &shifted[1..]).expect("decode"),
            sample()
        );
        assert!(ZeroCopyCodec::<Msg>::access(&c, &shifted[1..]).is_err());
    }

    #[test]
    fn hostile_archives_are_errors() {
        let mut c = RkyvCodec::new();
        let mut out = Vec::new();
        c.encode(&sample(), &mut out).expect("encode");
        let mut buf = AlignedVec::<16>::new();
        for i in 0..out.len() {
            for v in [0u8, 0x7f, 0x80, 0xff] {
                buf.clear();
                buf.extend_from_slice(&out);
                buf[i] = v;
                // Any outcome but a panic: a value or an error.
                let _ = Codec::<Msg>::decode(&mut c, &buf);
                let _ = ZeroCopyCodec::<Msg>::access(&c, &buf);
            }
        }
        for bad in [&[][..], &[0xff; 3][..], &[0xff; 64][..]] {
            buf.clear();
            buf.extend_from_slice(bad);
            assert!(Codec::<Msg>::decode(&mut c, &buf).is_err(), "{bad:?}");
        }
    }
}
