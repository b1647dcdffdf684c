//! The 16-byte header the sending bridge puts in front of each payload on zenoh.
//!
//! ```text
//! 0      8      16
//! | source | seq | payload bytes (the ring message, unchanged) ...
//! ```
//! Both fields little-endian. `source` names one producer incarnation of one ring (see
//! [`crate::run_ring_to_zenoh`]); `seq` is that producer's message id, counted from 0.

/// Bytes in front of every payload.
pub const HEADER_LEN: usize = 16;

/// Source id and sequence number of one bridged message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// One producer incarnation of one ring.
    pub source: u64,
    /// The message's sequence number within its source.
    pub seq: u64,
}

impl Header {
    /// Writes the header into the first [`HEADER_LEN`] bytes of `out` (cleared first).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.source.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
    }

    /// Splits a zenoh payload into its header and the message bytes; `None` if it is shorter
    /// than a header.
    pub fn parse(bytes: &[u8]) -> Option<(Header, &[u8])> {
        let (head, body) = bytes.split_at_checked(HEADER_LEN)?;
        let (s, q) = head.split_at(8);
        let source = u64::from_le_bytes(s.try_into().ok()?);
        let seq = u64::from_le_bytes(q.try_into().ok()?);
        Some((Header { source, seq }, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_short_input() {
        for (source, seq, body) in [
            (0u64, 0u64, &b""[..]),
            (u64::MAX, 1, b"x"),
            (0x0102_0304_0506_0708, u64::MAX - 1, b"hello"),
        ] {
            let mut buf = Vec::new();
            Header { source, seq }.write_to(&mut buf);
            buf.extend_from_slice(body);
            let (h, b) = Header::parse(&buf).expect("parses");
            assert_eq!((h.source, h.seq, b), (source, seq, body));
        }
        assert_eq!(Header::parse(&[0u8; HEADER_LEN - 1]), None);
        assert!(Header::parse(&[0u8; HEADER_LEN]).is_some());
    }
}
