//! Test fixtures shared by the integration tests: one per backend, unique names, cleanup guards.
#![allow(dead_code, unused_imports)] // each test binary uses a different subset

pub mod process;

use myelon::backend::{RingBackend, SimBackend};
pub use myelon_test_support::unique_name as unique;
use std::path::PathBuf;

myelon::shm_event! {
    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    pub struct Event {
        pub sequence: u64,
        pub checksum: u64,
    }
}

myelon::shm_event! {
    /// Same size as `Event`, different type.
    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    pub struct Other {
        pub a: u64,
        pub b: u64,
    }
}

pub fn checksum(seq: u64) -> u64 {
    seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef
}

pub fn fill(e: &mut Event, seq: u64) {
    e.sequence = seq;
    e.checksum = checksum(seq);
}

/// A backend under test: hands out the producer's backend and one backend per consumer (a
/// distinct simulated process for the simulator), plus a unique ring name.
pub trait Fixture {
    type B: RingBackend;
    fn new() -> Self;
    fn producer(&self) -> Self::B;
    fn consumer(&self) -> Self::B;
    fn name(&self) -> &str;
}

pub struct SimFixture {
    backend: SimBackend,
    name: String,
}

impl Fixture for SimFixture {
    type B = SimBackend;
    fn new() -> Self {
        SimFixture {
            backend: SimBackend::new_world(),
            name: unique("sim"),
        }
    }
    fn producer(&self) -> SimBackend {
        self.backend.clone()
    }
    fn consumer(&self) -> SimBackend {
        self.backend.sibling()
    }
    fn name(&self) -> &str {
        &self.name
    }
}

pub struct ShmFixture {
    name: String,
}

impl Fixture for ShmFixture {
    type B = myelon::backend::ShmBackend;
    fn new() -> Self {
        ShmFixture {
            name: unique("shm"),
        }
    }
    fn producer(&self) -> Self::B {
        myelon::backend::ShmBackend
    }
    fn consumer(&self) -> Self::B {
        myelon::backend::ShmBackend
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ShmFixture {
    fn drop(&mut self) {
        // Owners unlink on drop; this removes what a failing test may have left.
        let _ = myelon::backend::ShmBackend.remove(&self.name);
    }
}

/// A private temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct MmapFixture {
    dir: TempDir,
    name: String,
}

impl Fixture for MmapFixture {
    type B = myelon::backend::MmapBackend;
    fn new() -> Self {
        MmapFixture {
            dir: TempDir::new("mmapdir"),
            name: "ring".to_string(),
        }
    }
    fn producer(&self) -> Self::B {
        myelon::backend::MmapBackend::new(&self.dir.0)
    }
    fn consumer(&self) -> Self::B {
        myelon::backend::MmapBackend::new(&self.dir.0)
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// A liveness configuration with short, virtual-time-friendly timeouts: required `ids`, 10 ms
/// progress timeout, 1 ms checks, 20 ms grace, 50 ms startup.
pub fn fast_liveness(ids: &[&str]) -> myelon::RequiredConsumerLivenessConfig {
    let ms = std::time::Duration::from_millis(1);
    myelon::RequiredConsumerLivenessConfig::new(ids.iter().copied())
        .unwrap()
        .with_startup_wait_timeout(50 * ms)
        .unwrap()
        .with_progress_timeout(10 * ms)
        .unwrap()
        .with_progress_check_interval(ms)
        .unwrap()
        .with_shutdown_grace_period(20 * ms)
        .unwrap()
}
