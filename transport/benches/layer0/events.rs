//! The event types of the benchmark: exactly 56, 64 and 1024 bytes.

use myelon::ShmEvent;

myelon::shm_event! {
    /// 56 bytes: with the 8-byte stamp the slot is exactly one 64-byte line (diagnostic).
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Ev56 { pub payload: [u64; 7] }
}

myelon::shm_event! {
    /// 64 bytes: with the stamp the slot spans two lines (72 bytes in a 128-byte stride).
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Ev64 { pub payload: [u64; 8] }
}

myelon::shm_event! {
    /// 1 KiB: seventeen lines per slot.
    #[derive(Clone, Copy, Debug)]
    pub struct Ev1k { pub payload: [u64; 128] }
}

impl Default for Ev1k {
    fn default() -> Self {
        Ev1k { payload: [0; 128] }
    }
}

const _: () = {
    assert!(std::mem::size_of::<Ev56>() == 56);
    assert!(std::mem::size_of::<Ev64>() == 64);
    assert!(std::mem::size_of::<Ev1k>() == 1024);
};

/// An event the benchmark can fill completely and verify: word `k` holds `seq + k`.
pub trait Payload: ShmEvent + Default {
    /// Size in bytes, for names.
    const BYTES: usize;
    /// The words of the event.
    fn words(&self) -> &[u64];
    /// The words of the event, mutably.
    fn words_mut(&mut self) -> &mut [u64];

    /// Writes every word (`seq + k`).
    #[inline(always)]
    fn fill(&mut self, seq: u64) {
        for (k, w) in self.words_mut().iter_mut().enumerate() {
            *w = seq.wrapping_add(k as u64);
        }
    }

    /// Whether the first and the last word carry `seq` (catches lost, reordered and torn
    /// events without reading every word).
    #[inline(always)]
    fn carries(&self, seq: u64) -> bool {
        let w = self.words();
        w[0] == seq && w[w.len() - 1] == seq.wrapping_add(w.len() as u64 - 1)
    }
}

macro_rules! payload {
    ($t:ty) => {
        impl Payload for $t {
            const BYTES: usize = std::mem::size_of::<$t>();
            fn words(&self) -> &[u64] {
                &self.payload
            }
            fn words_mut(&mut self) -> &mut [u64] {
                &mut self.payload
            }
        }
    };
}

payload!(Ev56);
payload!(Ev64);
payload!(Ev1k);
