//! The framed consumer's reassembler fed arbitrary frames: it must never panic, never deliver a
//! message longer than the limit or a single frame longer than the frame, and account for every
//! frame (each step is one of the documented outcomes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use myelon::transport::{FrameMeta, Reassembler, Step};

const DATA: usize = 16;
const MAX: usize = 100;

fuzz_target!(|input: &[u8]| {
    // Low bit of the first byte picks the header width (FixedFrame's 16-bit index or the
    // aligned frame's 32-bit one).
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let mask = if mode & 1 == 0 { 0xffff } else { u32::MAX };
    let mut r = Reassembler::new(DATA, mask, MAX);
    // The next bit turns copying off (fragments used in place, as `recv_fragments_timeout` does).
    let copy = mode & 2 == 0;
    r.set_copy(copy);
    let data = [0x5a_u8; DATA];
    let mut interrupted = 0;
    for chunk in rest.chunks_exact(13) {
        let word = |i: usize| u32::from_le_bytes([chunk[i], chunk[i + 1], chunk[i + 2], chunk[i + 3]]);
        let meta = FrameMeta {
            message_id: word(0) % 4,
            len: word(4),
            flags: word(8) % 8,
            fragment_index: u32::from(chunk[12] % 8),
        };
        let dropped_before = r.dropped();
        match r.feed(meta, &data) {
            Step::Single { len, .. } => assert!(len <= DATA && len <= MAX),
            Step::Complete { len, .. } => {
                assert!(len <= DATA);
                if copy {
                    assert!(r.message().len() <= MAX && r.message().len() >= DATA);
                }
            }
            Step::Pending { len } => {
                assert_eq!(len, DATA, "an inner fragment is full");
                assert!(r.in_progress().is_some_and(|(_, n)| n <= MAX));
            }
            Step::Skipped | Step::Dropped(_) => assert!(r.in_progress().is_none()),
            Step::Interrupted(_) => {
                // The same frame fed again is never interrupted twice in a row.
                interrupted += 1;
                assert!(r.dropped() > dropped_before);
                assert!(!matches!(r.feed(meta, &data), Step::Interrupted(_)));
            }
        }
    }
    let _ = interrupted;
});
