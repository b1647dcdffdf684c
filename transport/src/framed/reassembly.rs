//! The reassembler: a pure state machine fed one frame header at a time, which validates every
//! field, collects fragments into a reusable 16-byte-aligned buffer and decides what happens to
//! each frame. It does not touch shared memory; the framed consumer feeds it frames it has
//! leased from the ring (and the fuzz target feeds it arbitrary ones).
//!
//! States: *hunting* (skipping until a first frame: the start, and after any error), *idle*
//! (between messages, a first frame is expected) and *assembling* (the fragments of one message
//! so far). A single-frame message never enters the buffer: [`Step::Single`] tells the caller to
//! deliver it from the frame itself.
//!
//! `dropped` counts messages of which the consumer saw at least one frame but delivered nothing:
//! a partial message at a join or rejoin, and a message abandoned because of a frame error. Each
//! such message is counted once, however many of its frames are skipped.

use super::error::TransportError;
use super::frame::{frame_flags, FrameMeta};

/// What the caller does with the frame it fed (see [`Reassembler::feed`]).
#[derive(Debug)]
pub enum Step {
    /// The frame is a whole message of `len` bytes (validated `<= data.len()`): deliver it from
    /// the frame itself. Nothing was copied.
    Single {
        /// Its message id.
        message_id: u32,
        /// Its length.
        len: usize,
    },
    /// The frame completed a message, now in [`Reassembler::message`] (in copying mode).
    Complete {
        /// Its message id.
        message_id: u32,
        /// Bytes of this last fragment (validated `<= data.len()`).
        len: usize,
    },
    /// The frame's fragment was accepted (and appended, in copying mode); more are needed.
    Pending {
        /// Bytes of this fragment (validated `<= data.len()`).
        len: usize,
    },
    /// The frame was skipped while looking for a first frame (a join in the middle of a message).
    Skipped,
    /// The frame was invalid or out of place and was dropped (with the message it belonged to).
    Dropped(TransportError),
    /// The message being reassembled ended without its last fragment; the frame was **not**
    /// used: feed the same frame again (it starts the next message).
    Interrupted(TransportError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Hunting,
    Idle,
    Assembling {
        id: u32,
        next_index: u32,
        len: usize,
    },
}

/// Reassembles framed messages; see the module docs.
#[derive(Debug)]
pub struct Reassembler {
    state: State,
    buf: AlignedBuf,
    data_bytes: usize,
    index_mask: u32,
    max_message_size: usize,
    dropped: u64,
    /// The message whose frames are being skipped (already counted in `dropped`).
    hunted: Option<u32>,
    /// Whether accepted fragments are copied into the buffer (off while a caller visits
    /// fragments in place).
    copy: bool,
}

impl Reassembler {
    /// A reassembler for frames of `data_bytes` payload bytes whose headers keep the bits
    /// `index_mask` of the fragment index, accepting messages of at most `max_message_size`
    /// bytes. It starts hunting for a first frame.
    pub fn new(data_bytes: usize, index_mask: u32, max_message_size: usize) -> Self {
        Reassembler {
            state: State::Hunting,
            buf: AlignedBuf::default(),
            data_bytes,
            index_mask,
            max_message_size,
            dropped: 0,
            hunted: None,
            copy: true,
        }
    }

    /// Largest message accepted.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Changes the largest message accepted.
    pub fn set_max_message_size(&mut self, max: usize) {
        self.max_message_size = max;
    }

    /// Messages dropped so far (see the module docs).
    #[inline]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether accepted fragments are copied into the buffer (the default). With copying off,
    /// the caller uses each fragment where it lies (`Pending`/`Complete` carry its length);
    /// validation and the size limit apply the same.
    pub fn set_copy(&mut self, copy: bool) {
        self.copy = copy;
    }

    /// The last completed multi-frame message (16-byte aligned), or the fragments copied so
    /// far of the message in progress.
    #[inline]
    pub fn message(&self) -> &[u8] {
        self.buf.as_slice()
    }

    /// The id and length so far of a message being reassembled.
    pub fn in_progress(&self) -> Option<(u32, usize)> {
        match self.state {
            State::Assembling { id, len, .. } => Some((id, len)),
            _ => None,
        }
    }

    /// Forgets any message in progress (counting it as dropped) and hunts for a first frame.
    pub fn reset(&mut self) {
        if let State::Assembling { id, .. } = self.state {
            self.drop_message(id);
        }
        self.state = State::Hunting;
    }

    #[inline]
    fn drop_message(&mut self, id: u32) {
        if self.hunted != Some(id) {
            self.dropped += 1;
            self.hunted = Some(id);
        }
        self.state = State::Hunting;
    }

    fn dropped_with(&mut self, id: u32, e: TransportError) -> Step {
        self.drop_message(id);
        Step::Dropped(e)
    }

    /// Decides about one frame with header `meta` (untrusted) and payload area `data`.
    #[inline]
    pub fn feed(&mut self, meta: FrameMeta, data: &[u8]) -> Step {
        let id = meta.message_id;
        if meta.flags & !frame_flags::ALL != 0 {
            let current = match self.state {
                State::Assembling { id, .. } => id,
                _ => id,
            };
            let e = TransportError::InvalidFlags {
                message_id: id,
                flags: meta.flags,
            };
            return self.dropped_with(current, e);
        }
        if meta.is_first() {
            if let State::Assembling { id: current, .. } = self.state {
                self.drop_message(current);
                return Step::Interrupted(TransportError::IncompleteMessage {
                    message_id: current,
                });
            }
            return self.start(meta, data);
        }
        match self.state {
            #[cfg(myelon_mutant = "reasm_accepts_non_first")]
            State::Hunting => {
                // Planted bug (DST mutant): a frame seen while hunting starts a message even
                // though it is not a first frame.
                let mut first = meta;
                first.flags |= frame_flags::FIRST;
                first.fragment_index = 0;
                self.start(first, data)
            }
            #[cfg(not(myelon_mutant = "reasm_accepts_non_first"))]
            State::Hunting => {
                if self.hunted != Some(id) {
                    self.dropped += 1;
                    self.hunted = Some(id);
                }
                Step::Skipped
            }
            State::Idle => {
                self.dropped_with(id, TransportError::MissingFirstFrame { message_id: id })
            }
            State::Assembling {
                id: current,
                next_index,
                len,
            } => self.continue_message(meta, data, current, next_index, len),
        }
    }

    /// The single-frame fast path of a receive: if no message is being reassembled and
    /// `meta` (untrusted) is a whole message in one valid frame — exactly `FIRST | LAST`,
    /// fragment index 0, `len` within the frame's `data_len` bytes and within the maximum
    /// message size — accepts it as [`Self::feed`] would (`Step::Single`) and returns its
    /// length. Otherwise returns `None` and changes nothing: the caller feeds the frame, which
    /// decides about everything else (and reports every error) as before.
    #[inline]
    pub(crate) fn accept_single(&mut self, meta: &FrameMeta, data_len: usize) -> Option<usize> {
        let len = meta.len as usize;
        let whole = meta.flags == frame_flags::ALL
            && meta.fragment_index & self.index_mask == 0
            && len <= self.data_bytes
            && len <= data_len
            && len <= self.max_message_size;
        if !whole || matches!(self.state, State::Assembling { .. }) {
            return None;
        }
        self.hunted = None;
        self.state = State::Idle;
        Some(len)
    }

    /// Checks that fragment `meta` of a message holds `len <= frame capacity` bytes and, unless
    /// it is the last, exactly a full frame.
    #[inline]
    fn check_len(&self, meta: &FrameMeta, data: &[u8]) -> Result<usize, TransportError> {
        let len = meta.len as usize;
        if len > self.data_bytes || len > data.len() {
            return Err(TransportError::FrameLength {
                message_id: meta.message_id,
                len: meta.len,
                max: self.data_bytes.min(data.len()),
            });
        }
        if !meta.is_last() && len != self.data_bytes {
            return Err(TransportError::ShortFragment {
                message_id: meta.message_id,
                fragment_index: meta.fragment_index,
                len: meta.len,
            });
        }
        Ok(len)
    }

    #[inline]
    fn start(&mut self, meta: FrameMeta, data: &[u8]) -> Step {
        let id = meta.message_id;
        if meta.fragment_index & self.index_mask != 0 {
            let e = TransportError::FragmentGap {
                message_id: id,
                expected: 0,
                found: meta.fragment_index,
            };
            return self.dropped_with(id, e);
        }
        let len = match self.check_len(&meta, data) {
            Ok(len) => len,
            Err(e) => return self.dropped_with(id, e),
        };
        if len > self.max_message_size {
            return self.dropped_with(id, self.too_large(id, len));
        }
        self.hunted = None;
        if meta.is_last() {
            self.state = State::Idle;
            return Step::Single {
                message_id: id,
                len,
            };
        }
        self.buf.clear();
        if self.copy {
            self.buf.extend_bounded(&data[..len], self.max_message_size);
        }
        self.state = State::Assembling {
            id,
            next_index: 1,
            len,
        };
        Step::Pending { len }
    }

    #[inline]
    fn continue_message(
        &mut self,
        meta: FrameMeta,
        data: &[u8],
        current: u32,
        next_index: u32,
        so_far: usize,
    ) -> Step {
        if meta.message_id != current {
            let e = TransportError::MessageIdMismatch {
                expected: current,
                found: meta.message_id,
            };
            self.drop_message(current);
            // The foreign message's remaining fragments are skipped without another count.
            self.hunted = Some(meta.message_id);
            return Step::Dropped(e);
        }
        if meta.fragment_index & self.index_mask != next_index & self.index_mask {
            let e = TransportError::FragmentGap {
                message_id: current,
                expected: next_index & self.index_mask,
                found: meta.fragment_index,
            };
            return self.dropped_with(current, e);
        }
        let len = match self.check_len(&meta, data) {
            Ok(len) => len,
            Err(e) => return self.dropped_with(current, e),
        };
        let total = so_far.saturating_add(len);
        if total > self.max_message_size {
            return self.dropped_with(current, self.too_large(current, total));
        }
        if self.copy {
            self.buf.extend_bounded(&data[..len], self.max_message_size);
        }
        if meta.is_last() {
            self.state = State::Idle;
            Step::Complete {
                message_id: current,
                len,
            }
        } else {
            self.state = State::Assembling {
                id: current,
                next_index: next_index.wrapping_add(1),
                len: total,
            };
            Step::Pending { len }
        }
    }

    fn too_large(&self, id: u32, len: usize) -> TransportError {
        TransportError::MessageTooLarge {
            message_id: id,
            len,
            max: self.max_message_size,
        }
    }
}

/// A 16-byte unit, so that the buffer's bytes start 16-byte aligned.
#[derive(Clone, Copy, Default)]
#[repr(C, align(16))]
struct Chunk([u8; 16]);

/// A growable byte buffer whose data starts 16-byte aligned (what rkyv archives need). Grows
/// to the largest message seen and is reused: no allocation per message in steady state.
#[derive(Default)]
pub(crate) struct AlignedBuf {
    chunks: Vec<Chunk>,
    len: usize,
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .finish()
    }
}

impl AlignedBuf {
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        let n = self.chunks.len() * 16;
        // SAFETY: `Chunk` is `repr(C)` around `[u8; 16]` with no padding (size 16, align 16),
        // so `chunks` is `n` initialised, contiguous bytes; the `&mut self` borrow is unique.
        unsafe { std::slice::from_raw_parts_mut(self.chunks.as_mut_ptr().cast::<u8>(), n) }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        debug_assert!(self.len <= self.chunks.len() * 16);
        // SAFETY: as in `bytes_mut`: the chunks are `chunks.len() * 16 >= len` initialised
        // contiguous bytes (`len` only grows in `extend_from_slice`, after resizing `chunks`).
        unsafe { std::slice::from_raw_parts(self.chunks.as_ptr().cast::<u8>(), self.len) }
    }

    pub(crate) fn extend_from_slice(&mut self, src: &[u8]) {
        self.extend_bounded(src, usize::MAX);
    }

    /// Appends `src`; the buffer never grows beyond `max(len + src.len(), limit)` bytes
    /// (rounded up to 16).
    pub(crate) fn extend_bounded(&mut self, src: &[u8], limit: usize) {
        let end = self.len + src.len();
        let need = end.div_ceil(16);
        if need > self.chunks.len() {
            // Grow geometrically so that a message built from many fragments costs O(len),
            // but never past the limit (the maximum message size).
            let doubled = (self.chunks.len() * 2).min(limit.div_ceil(16));
            self.chunks.resize(need.max(doubled), Chunk::default());
        }
        let start = self.len;
        self.bytes_mut()[start..end].copy_from_slice(src);
        self.len = end;
    }

    /// Replaces the contents with `src`.
    #[allow(dead_code)]
    pub(crate) fn set(&mut self, src: &[u8]) {
        self.clear();
        self.extend_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frame_flags::{FIRST, LAST, SINGLE};

    const N: usize = 4;

    fn meta(id: u32, len: u32, flags: u32, index: u32) -> FrameMeta {
        FrameMeta {
            message_id: id,
            len,
            flags,
            fragment_index: index,
        }
    }

    fn r() -> Reassembler {
        Reassembler::new(N, 0xffff, 64)
    }

    const D: [u8; N] = [1, 2, 3, 4];

    #[test]
    fn single_and_fragmented() {
        let mut a = r();
        assert!(matches!(
            a.feed(meta(0, 3, SINGLE, 0), &D),
            Step::Single {
                message_id: 0,
                len: 3
            }
        ));
        assert!(matches!(
            a.feed(meta(1, 4, FIRST, 0), &D),
            Step::Pending { .. }
        ));
        assert!(matches!(a.feed(meta(1, 4, 0, 1), &D), Step::Pending { .. }));
        assert!(matches!(
            a.feed(meta(1, 2, LAST, 2), &D),
            Step::Complete { message_id: 1, .. }
        ));
        assert_eq!(a.message(), &[1, 2, 3, 4, 1, 2, 3, 4, 1, 2]);
        assert_eq!(a.message().as_ptr() as usize % 16, 0);
        assert_eq!(a.dropped(), 0);
    }

    #[test]
    fn join_mid_message_skips_and_counts_once() {
        let mut a = r();
        assert!(matches!(a.feed(meta(7, 4, 0, 3), &D), Step::Skipped));
        assert!(matches!(a.feed(meta(7, 4, 0, 4), &D), Step::Skipped));
        assert!(matches!(a.feed(meta(7, 1, LAST, 5), &D), Step::Skipped));
        assert_eq!(a.dropped(), 1);
        assert!(matches!(
            a.feed(meta(8, 0, SINGLE, 0), &D),
            Step::Single { .. }
        ));
        assert_eq!(a.dropped(), 1);
    }

    /// Table: (frames fed after a valid first fragment of message 1, expected error).
    #[test]
    fn errors_in_the_middle() {
        type Check = fn(&Step) -> bool;
        let table: [(FrameMeta, Check); 7] = [
            (meta(2, 4, 0, 1), |s| {
                matches!(
                    s,
                    Step::Dropped(TransportError::MessageIdMismatch {
                        expected: 1,
                        found: 2
                    })
                )
            }),
            (meta(1, 4, 0, 2), |s| {
                matches!(
                    s,
                    Step::Dropped(TransportError::FragmentGap {
                        expected: 1,
                        found: 2,
                        ..
                    })
                )
            }),
            (meta(1, 5, 0, 1), |s| {
                matches!(s, Step::Dropped(TransportError::FrameLength { len: 5, .. }))
            }),
            (meta(1, u32::MAX, LAST, 1), |s| {
                matches!(s, Step::Dropped(TransportError::FrameLength { .. }))
            }),
            (meta(1, 3, 0, 1), |s| {
                matches!(
                    s,
                    Step::Dropped(TransportError::ShortFragment { len: 3, .. })
                )
            }),
            (meta(1, 4, 0x80, 1), |s| {
                matches!(
                    s,
                    Step::Dropped(TransportError::InvalidFlags { flags: 0x80, .. })
                )
            }),
            (meta(9, 1, SINGLE, 0), |s| {
                matches!(
                    s,
                    Step::Interrupted(TransportError::IncompleteMessage { message_id: 1 })
                )
            }),
        ];
        for (m, ok) in table {
            let mut a = r();
            assert!(matches!(
                a.feed(meta(1, 4, FIRST, 0), &D),
                Step::Pending { .. }
            ));
            let s = a.feed(m, &D);
            assert!(ok(&s), "{m:?} gave {s:?}");
            assert_eq!(a.dropped(), 1, "{m:?}");
            assert!(a.in_progress().is_none());
            // Usable afterwards: the next first frame starts a message.
            assert!(matches!(
                a.feed(meta(10, 2, SINGLE, 0), &D),
                Step::Single { len: 2, .. }
            ));
        }
    }

    #[test]
    fn bad_first_frames_are_dropped() {
        let table = [
            meta(1, 4, FIRST, 1),
            meta(1, 5, SINGLE, 0),
            meta(1, 3, FIRST, 0),
            meta(1, 0, 0xffff_ffff, 0),
        ];
        for m in table {
            let mut a = r();
            assert!(matches!(a.feed(m, &D), Step::Dropped(_)), "{m:?}");
            assert!(
                matches!(a.feed(meta(1, 4, 0, 1), &D), Step::Skipped),
                "{m:?}"
            );
            assert_eq!(a.dropped(), 1, "{m:?}");
        }
    }

    #[test]
    fn missing_first_after_a_message() {
        let mut a = r();
        assert!(matches!(
            a.feed(meta(0, 1, SINGLE, 0), &D),
            Step::Single { .. }
        ));
        assert!(matches!(
            a.feed(meta(1, 4, 0, 1), &D),
            Step::Dropped(TransportError::MissingFirstFrame { message_id: 1 })
        ));
        assert!(matches!(a.feed(meta(1, 1, LAST, 2), &D), Step::Skipped));
        assert_eq!(a.dropped(), 1);
    }

    #[test]
    fn size_limit_bounds_reassembly() {
        let mut a = Reassembler::new(N, 0xffff, 6);
        assert!(matches!(
            a.feed(meta(1, 4, FIRST, 0), &D),
            Step::Pending { .. }
        ));
        assert!(matches!(
            a.feed(meta(1, 4, 0, 1), &D),
            Step::Dropped(TransportError::MessageTooLarge { len: 8, max: 6, .. })
        ));
        let mut a = Reassembler::new(N, 0xffff, 2);
        assert!(matches!(
            a.feed(meta(1, 3, SINGLE, 0), &D),
            Step::Dropped(TransportError::MessageTooLarge { .. })
        ));
    }

    #[test]
    fn buffer_growth_stays_within_the_limit() {
        let max = 1000;
        let mut a = Reassembler::new(N, 0xffff, max);
        assert!(matches!(
            a.feed(meta(1, 4, FIRST, 0), &D),
            Step::Pending { .. }
        ));
        for i in 1..249 {
            assert!(matches!(a.feed(meta(1, 4, 0, i), &D), Step::Pending { .. }));
        }
        assert!(matches!(
            a.feed(meta(1, 4, LAST, 249), &D),
            Step::Complete { .. }
        ));
        assert_eq!(a.message().len(), 1000);
        assert!(a.buf.chunks.len() * 16 <= max.next_multiple_of(16));
    }

    #[test]
    fn fragment_index_wraps_with_the_header_width() {
        let mut a = Reassembler::new(1, 0xffff, 1 << 20);
        let d = [7u8];
        assert!(matches!(
            a.feed(meta(1, 1, FIRST, 0), &d),
            Step::Pending { .. }
        ));
        for i in 1..70_000u32 {
            assert!(
                matches!(a.feed(meta(1, 1, 0, i & 0xffff), &d), Step::Pending { .. }),
                "{i}"
            );
        }
        assert!(matches!(
            a.feed(meta(1, 1, LAST, 70_000 & 0xffff), &d),
            Step::Complete { .. }
        ));
        assert_eq!(a.message().len(), 70_001);
    }
}
