//! The bincode 2 codec (feature `bincode`, on by default).
//!
//! Uses bincode's own `Encode`/`Decode` traits (derive them with `#[derive(bincode::Encode,
//! bincode::Decode)]`; no serde), with the standard configuration (little-endian, variable-length
//! integers) plus a byte limit. The limit bounds what a hostile payload can make the decoder
//! allocate: every length prefix is checked against it before a container is allocated. Bytes
//! left over after the value are an error, so a truncated or padded message never decodes.

use super::{Codec, CodecError};
use bincode::config::{self, Config};

/// Default decode limit: 64 MiB, the framed transport's default maximum message size.
pub const DEFAULT_BINCODE_LIMIT: usize = 64 << 20;

/// bincode 2 codec with a decode limit of `LIMIT` bytes.
#[derive(Debug, Default, Clone, Copy)]
pub struct BincodeCodec<const LIMIT: usize = DEFAULT_BINCODE_LIMIT>;

impl<const LIMIT: usize> BincodeCodec<LIMIT> {
    /// The codec.
    pub const fn new() -> Self {
        BincodeCodec
    }

    fn config() -> impl Config {
        config::standard().with_limit::<LIMIT>()
    }
}

impl<T, const LIMIT: usize> Codec<T> for BincodeCodec<LIMIT>
where
    T: bincode::Encode + bincode::Decode<()>,
{
    const NAME: &'static str = "bincode";

    fn encode(&mut self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.clear();
        bincode::encode_into_std_write(value, out, Self::config())
            .map_err(|e| CodecError::encode("bincode", e))?;
        if out.len() > LIMIT {
            return Err(CodecError::TooLarge {
                codec: "bincode",
                len: out.len(),
                max: LIMIT,
            });
        }
        Ok(())
    }

    fn decode(&mut self, bytes: &[u8]) -> Result<T, CodecError> {
        let (value, used) = bincode::decode_from_slice::<T, _>(bytes, Self::config())
            .map_err(|e| CodecError::decode("bincode", e))?;
        if used != bytes.len() {
            return Err(CodecError::decode(
                "bincode",
                format_args!("{} trailing bytes", bytes.len() - used),
            ));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, bincode::Encode, bincode::Decode)]
    struct Msg {
        id: u64,
        name: String,
        values: Vec<u32>,
    }

    #[test]
    fn round_trip() {
        let mut c = BincodeCodec::<1024>::new();
        let m = Msg {
            id: 7,
            name: "seven".into(),
            values: vec![1, 2, 3],
        };
        let mut buf = Vec::new();
        c.encode(&m, &mut buf).expect("encode");
        assert_eq!(Codec::<Msg>::decode(&mut c, &buf).expect("decode"), m);
    }

    #[test]
    fn hostile_inputs_are_errors() {
        let mut c = BincodeCodec::<1024>::new();
        // A vector claiming u64::MAX elements: refused by the limit, no allocation attempt.
        let mut huge = vec![7u8, 0];
        huge.push(0xff); // varint u64 marker
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        for bad in [&[][..], &[0xff][..], &huge[..]] {
            let r: Result<Msg, _> = c.decode(bad);
            assert!(
                matches!(r, Err(CodecError::Decode { .. })),
                "{bad:?}: {r:?}"
            );
        }
        let mut buf = Vec::new();
        let m = Msg {
            id: 1,
            name: String::new(),
            values: vec![],
        };
        c.encode(&m, &mut buf).expect("encode");
        buf.push(0);
        let r: Result<Msg, _> = c.decode(&buf);
        assert!(
            matches!(r, Err(CodecError::Decode { .. })),
            "trailing: {r:?}"
        );
    }

    #[test]
    fn encode_limit() {
        let mut c = BincodeCodec::<8>::new();
        let m = Msg {
            id: 1,
            name: "a name longer than eight bytes".into(),
            values: vec![],
        };
        let mut buf = Vec::new();
        assert!(c.encode(&m, &mut buf).is_err());
    }
}
