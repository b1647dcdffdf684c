//! The 24-byte header the sending bridge puts in front of each payload on zenoh.
//!
//! ```text
//! 0        8        16       20        24
//! | source | seq    | crc32  | version | payload bytes (the ring message, unchanged) ...
//! ```
//! All fields little-endian. `source` names one producer incarnation of one ring (see
//! [`crate::run_ring_to_zenoh`]); `seq` is that producer's message id, counted from 0; `crc32`
//! is the CRC-32 (IEEE) of bytes 0..16 and the payload, so a sample damaged on the way is
//! recognised and dropped rather than published (zenoh 1.10.2 was seen delivering a sample
//! whose tail held the bytes of a later sample, under `CongestionControl::Drop`); `version` is
//! [`WIRE_VERSION`].

/// Bytes in front of every payload.
pub const HEADER_LEN: usize = 24;

/// The wire format this bridge writes and accepts.
pub const WIRE_VERSION: u32 = 1;

/// Source id and sequence number of one bridged message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// One producer incarnation of one ring.
    pub source: u64,
    /// The message's sequence number within its source.
    pub seq: u64,
}

/// Why a sample was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Shorter than a header.
    Short,
    /// Written by a bridge speaking another wire version.
    Version(u32),
    /// The checksum does not match: the sample was damaged on the way.
    Checksum,
}

impl Header {
    /// Clears `out` and writes the header for `body` into it (the caller appends `body`).
    pub fn write_to(&self, body: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.source.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        let crc = checksum(&out[..16], body);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&WIRE_VERSION.to_le_bytes());
    }

    /// Splits a zenoh payload into its header and the message bytes, checking its version and
    /// checksum. Nothing of a rejected sample (not even its header) is to be trusted.
    pub fn parse(bytes: &[u8]) -> Result<(Header, &[u8]), Rejected> {
        let (head, body) = bytes.split_at_checked(HEADER_LEN).ok_or(Rejected::Short)?;
        let word = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().expect("8 bytes"));
        let half = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().expect("4 bytes"));
        let version = half(20);
        if version != WIRE_VERSION {
            return Err(Rejected::Version(version));
        }
        if half(16) != checksum(&head[..16], body) {
            return Err(Rejected::Checksum);
        }
        Ok((
            Header {
                source: word(0),
                seq: word(8),
            },
            body,
        ))
    }
}

fn checksum(ids: &[u8], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(ids);
    h.update(body);
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(source: u64, seq: u64, body: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        Header { source, seq }.write_to(body, &mut buf);
        buf.extend_from_slice(body);
        buf
    }

    #[test]
    fn round_trips_and_rejects_short_input() {
        for (source, seq, body) in [
            (0u64, 0u64, &b""[..]),
            (u64::MAX, 1, b"x"),
            (0x0102_0304_0506_0708, u64::MAX - 1, b"hello"),
        ] {
            let buf = sealed(source, seq, body);
            assert_eq!(buf.len(), HEADER_LEN + body.len());
            let (h, b) = Header::parse(&buf).expect("parses");
            assert_eq!((h.source, h.seq, b), (source, seq, body));
        }
        assert_eq!(Header::parse(&[0u8; HEADER_LEN - 1]), Err(Rejected::Short));
    }

    #[test]
    fn any_damaged_byte_or_length_is_rejected() {
        let body: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let good = sealed(42, 7, &body);
        for at in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[at] ^= flip;
                let want = if (20..24).contains(&at) {
                    Err(Rejected::Version(u32::from_le_bytes(
                        bad[20..24].try_into().unwrap(),
                    )))
                } else {
                    Err(Rejected::Checksum)
                };
                assert_eq!(Header::parse(&bad), want, "byte {at} ^ {flip:#x}");
            }
        }
        // Truncated or extended payloads, and the tail replaced by other bytes (what zenoh
        // delivered once).
        assert_eq!(
            Header::parse(&good[..good.len() - 1]),
            Err(Rejected::Checksum)
        );
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(Header::parse(&longer), Err(Rejected::Checksum));
        let mut spliced = good.clone();
        let other = sealed(42, 8, &body[..100]);
        spliced[150..150 + other.len()].copy_from_slice(&other);
        assert_eq!(Header::parse(&spliced), Err(Rejected::Checksum));
    }
}
