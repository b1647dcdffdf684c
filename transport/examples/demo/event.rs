//! The event, its timestamps and its checksum.

myelon::shm_event! {
    /// One event: 64 bytes (its ring slot adds the ring's 8-byte sequence stamp).
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Event {
        /// 0, 1, 2, ... in publication order.
        pub sequence: u64,
        /// CLOCK_MONOTONIC nanoseconds when the producer wrote the event.
        pub send_ns: u64,
        /// [`checksum`] of the other fields: a torn or stale read shows up as a mismatch.
        pub checksum: u64,
        /// Filler derived from `sequence`, so that the whole line is written and checked.
        pub payload: [u64; 5],
    }
}

const _: () = assert!(std::mem::size_of::<Event>() == 64);

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine, so a send time
/// written by the producer can be subtracted from a receive time read by a consumer.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable `timespec` for the whole call, and CLOCK_MONOTONIC is a
    // clock every supported (POSIX) target provides.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The splitmix64 finaliser: a cheap 64-bit mix in which every input bit affects every output bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

pub fn checksum(e: &Event) -> u64 {
    let mut h = mix(e.sequence ^ 0x6d79_656c_6f6e);
    h = mix(h ^ e.send_ns);
    for w in e.payload {
        h = mix(h ^ w);
    }
    h
}

/// Writes event `seq` into its slot and returns the send timestamp.
pub fn fill(e: &mut Event, seq: u64) -> u64 {
    let now = now_ns();
    e.sequence = seq;
    e.send_ns = now;
    for (i, w) in e.payload.iter_mut().enumerate() {
        *w = seq ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    e.checksum = checksum(e);
    now
}
