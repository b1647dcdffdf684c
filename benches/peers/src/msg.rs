//! The payloads every contender moves: `W` little-endian `u64` words. The sender copies a
//! prepared source buffer and stamps the message number into the first and the last word; the
//! receiver checks those two words (ping-pong, head+tail), or sums every word and compares with
//! the expected sum (checksum mode).

/// A fixed-size event of `W` words, for the raw (Layer 0) contenders.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Msg<const W: usize> {
    pub words: [u64; W],
}

impl<const W: usize> Default for Msg<W> {
    fn default() -> Self {
        Msg { words: [0; W] }
    }
}

// SAFETY: `Msg<W>` is `#[repr(C)]` around `[u64; W]`: every bit pattern is a valid value and it
// holds no pointer, which is what `ShmEvent` requires.
unsafe impl<const W: usize> myelon::ShmEvent for Msg<W> {}

/// The tail stamp of message `i` (distinct from the head so a torn message is caught).
#[inline(always)]
pub fn tail_of(i: u64) -> u64 {
    !i
}

/// A source of `words` words (word `k` = `k * 0x9e37_79b9 + 7`).
pub fn source(words: usize) -> Vec<u64> {
    (0..words as u64)
        .map(|k| k.wrapping_mul(0x9e37_79b9).wrapping_add(7))
        .collect()
}

/// Writes message `i` into `dst`: the source, then head and tail stamps.
#[inline(always)]
pub fn write(dst: &mut [u64], src: &[u64], i: u64) {
    dst.copy_from_slice(src);
    stamp(dst, i);
}

/// Stamps message number `i` into the first and last word.
#[inline(always)]
pub fn stamp(dst: &mut [u64], i: u64) {
    let n = dst.len();
    dst[0] = i;
    dst[n - 1] = tail_of(i);
}

/// Whether `m` carries message number `i` in its head and tail.
#[inline(always)]
pub fn carries(m: &[u64], i: u64) -> bool {
    m.len() > 1 && m[0] == i && m[m.len() - 1] == tail_of(i)
}

/// Sums every word of `m` (reads every byte).
#[inline(never)]
pub fn checksum(m: &[u64]) -> u64 {
    m.iter().fold(0u64, |s, w| s.wrapping_add(*w))
}

/// The checksum message `i` must have, given `src`'s sum without its head and tail.
#[inline(always)]
pub fn expected_sum(inner: u64, i: u64) -> u64 {
    inner.wrapping_add(i).wrapping_add(tail_of(i))
}

/// `src`'s sum without its first and last words.
pub fn inner_sum(src: &[u64]) -> u64 {
    checksum(&src[1..src.len() - 1])
}

/// Whether the bytes `b` carry message number `i` in their first and last word.
#[inline(always)]
pub fn carries_bytes(b: &[u8], i: u64) -> bool {
    let n = b.len();
    n >= 16
        && u64::from_le_bytes(b[..8].try_into().expect("8 bytes")) == i
        && u64::from_le_bytes(b[n - 8..].try_into().expect("8 bytes")) == tail_of(i)
}

/// Sums every little-endian word of `b` (reads every byte; any alignment).
#[inline(never)]
pub fn checksum_bytes(b: &[u8]) -> u64 {
    b.chunks_exact(8).fold(0u64, |s, c| {
        s.wrapping_add(u64::from_le_bytes(c.try_into().expect("8 bytes")))
    })
}

/// Views words as bytes.
#[inline(always)]
pub fn as_bytes(w: &[u64]) -> &[u8] {
    // SAFETY: any `u64` memory is valid as bytes, `u8` has alignment 1, and the length covers
    // exactly the words' bytes.
    unsafe { std::slice::from_raw_parts(w.as_ptr().cast::<u8>(), std::mem::size_of_val(w)) }
}
