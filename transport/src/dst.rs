//! Deterministic simulation for your own tests (feature `dst`, off by default).
//!
//! Everything myelon offers runs over [`SimBackend`], an in-process simulated machine: regions
//! are heap memory shared through a [`SimWorld`], time is the world's virtual clock (it moves
//! only when something sleeps, waits or calls [`SimWorld::advance`]), and process liveness is the
//! world's process table. One simulated process is one `SimBackend`
//! ([`SimBackend::new_world`], [`SimBackend::sibling`]); its rings, framed and typed endpoints
//! and liveness checks are the same code that runs over shared memory.
//!
//! What this module adds for a test that wants one seed to decide everything and to replay it:
//!
//! - [`SeedRng`]: a small deterministic generator (splitmix64) — same seed, same choices, on
//!   every platform. Drive your own interleaving with it (which actor steps next, when to crash).
//! - [`crash`]: forget an actor's state *without running `Drop`* and mark its simulated process
//!   dead, as after `SIGKILL`: whatever it half-did stays in the simulated memory. Rejoin by
//!   attaching again with the same consumer id from a [`SimBackend::sibling`].
//! - [`seed_from_env`] and [`replay_line`]: take the seed from `MYELON_SEED` when it is set, and
//!   print the one line that reruns a failing seed.
//! - [`TraceHash`]: fold what happened into one number, to check that a replay is identical.
//!
//! - [`actor`] and [`SchedPoint`]: the scheduling hooks. Every shared-memory-visible step inside
//!   myelon's calls over a `SimBackend` reports a [`SchedPoint`], and every simulated futex wait,
//!   wake, sleep and yield an [`actor::Suspend`], to the hook installed with
//!   [`actor::set_hook`] on the calling thread (nothing happens without one). A scheduler that
//!   runs actors as coroutines or baton-passing threads can switch, stall or crash them there —
//!   the repository's `myelon-dst` crate (`dst/src/actors/`) is such a scheduler, built on
//!   exactly these hooks.
//!
//! Without a hook installed, your test runs on one thread with the interleaving it chooses from
//! the seed between calls.
//!
//! ```
//! use myelon::backend::SimBackend;
//! use myelon::dst::{crash, SeedRng};
//! use myelon::SharedDisruptorBuilder;
//!
//! myelon::shm_event! {
//!     #[derive(Clone, Copy, Debug, Default)]
//!     pub struct Tick { pub n: u64 }
//! }
//!
//! let producer_process = SimBackend::new_world();
//! let mut tx = SharedDisruptorBuilder::<Tick, _>::with_backend(producer_process.clone(), "ticks", 8)
//!     .with_consumer_id("c0") // named: reserved, so it misses nothing
//!     .build_producer(Tick::default)?;
//! let consumer_process = producer_process.sibling();
//! let rx = SharedDisruptorBuilder::<Tick, _>::with_backend(consumer_process.clone(), "ticks", 8)
//!     .with_consumer_id("c0")
//!     .build_consumer()?;
//! tx.publish(|t| t.n = 1);
//! crash(&consumer_process, rx); // no Drop: its entry stays, still gating
//! let mut rx = SharedDisruptorBuilder::<Tick, _>::with_backend(producer_process.sibling(), "ticks", 8)
//!     .with_consumer_id("c0")
//!     .build_consumer()?; // same-id rejoin at the committed cursor
//! assert_eq!(rx.try_consume_next()?.map(|t| t.n), Some(1));
//! let mut rng = SeedRng::new(7);
//! assert_eq!(rng.next_u64(), SeedRng::new(7).next_u64());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `transport/tests/dst_feature.rs` is a complete example: a producer and two consumers of a
//! user event type under a seed, a crash and a same-id rejoin, nothing lost, and the same seed
//! replayed to the same trace hash.

pub use crate::backend::SchedPoint;
pub use crate::backend::{SimBackend, SimRegionHandle};
pub use myelon_backend_sim::actor;
pub use myelon_backend_sim::{SimError, SimProcessState, SimWorld, DEFAULT_TICK_NANOS};

/// The environment variable [`seed_from_env`] reads (decimal or `0x` hex).
pub const SEED_ENV: &str = "MYELON_SEED";

/// A small deterministic generator (splitmix64): the same seed gives the same sequence on every
/// platform and in every build.
#[derive(Debug, Clone)]
pub struct SeedRng(u64);

impl SeedRng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SeedRng {
        SeedRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; `0` when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The seed in `MYELON_SEED` (decimal or `0x` hex) if it is set and parses, else `default`.
pub fn seed_from_env(default: u64) -> u64 {
    std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| parse_seed(&s))
        .unwrap_or(default)
}

/// Parses a seed written in decimal or `0x` hex.
pub fn parse_seed(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The copy-paste line that reruns test `test` (its name as `cargo test` filters it) with
/// `seed`: `MYELON_SEED=0x.. cargo test <test> -- --exact`. Print it when a seeded test fails.
pub fn replay_line(seed: u64, test: &str) -> String {
    format!("{SEED_ENV}={seed:#x} cargo test {test} -- --exact")
}

/// Crashes a simulated process as `SIGKILL` would: `state` (a producer, a consumer, a framed
/// or typed endpoint: anything of that process) is forgotten without running `Drop`, so what it
/// half-did stays in the simulated memory, and `process` is marked dead in the world's process
/// table (a consumer entry it owned is then rejoinable by id; a ring it created is reclaimable).
/// The forgotten state's heap memory is leaked, as a test can afford.
pub fn crash<T>(process: &SimBackend, state: T) {
    std::mem::forget(state);
    process.kill();
}

/// FNV-1a over the `u64`s a test records: equal hashes for two runs of one seed show the replay
/// did the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceHash(u64);

impl Default for TraceHash {
    fn default() -> Self {
        TraceHash(0xcbf2_9ce4_8422_2325)
    }
}

impl TraceHash {
    /// An empty trace.
    pub fn new() -> TraceHash {
        TraceHash::default()
    }

    /// Folds `value` into the trace.
    pub fn record(&mut self, value: u64) {
        for b in value.to_le_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub fn value(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_and_replay_lines_name_them() {
        assert_eq!(parse_seed("0x1f"), Some(31));
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed("x"), None);
        assert_eq!(
            replay_line(31, "my_test"),
            "MYELON_SEED=0x1f cargo test my_test -- --exact"
        );
        let mut a = SeedRng::new(3);
        let mut b = SeedRng::new(3);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
            assert!(a.below(5) < 5);
            b.below(5);
        }
        assert_eq!(SeedRng::new(1).below(0), 0);
    }
}
