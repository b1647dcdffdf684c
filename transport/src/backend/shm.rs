//! `RingBackend` over POSIX shared memory (`myelon-backend-shm`).

use super::{
    BackendError, ProcessState, Region, RegionOwner, RemovalGuard, RingBackend, WaitOutcome,
};
use crate::ring::sync::AtomicU32;
use myelon_backend_shm::{self as plat, RegionError, ShmSegment};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// POSIX shared-memory backend: one `shm_open` object per ring, futex waits, kernel-released
/// owner locks.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShmBackend;

/// A mapped POSIX shared-memory segment.
#[derive(Debug)]
pub struct ShmRegion(ShmSegment);

pub(crate) fn map_region_error(e: RegionError) -> BackendError {
    match e {
        RegionError::AlreadyExists { name } => BackendError::AlreadyExists { name },
        RegionError::NotFound { name } => BackendError::NotFound { name },
        RegionError::NoSpace { name, requested } => BackendError::NoSpace { name, requested },
        RegionError::InvalidName { name, reason } => BackendError::InvalidName { name, reason },
        RegionError::PermissionDenied { name } => BackendError::PermissionDenied { name },
        RegionError::Empty { name } => BackendError::Empty { name },
        RegionError::Symlink { name } => BackendError::Symlink { name },
        RegionError::Foreign { name } => BackendError::ForeignObject { name },
        RegionError::InvalidMode { name, mode, reason } => {
            BackendError::InvalidMode { name, mode, reason }
        }
        RegionError::Io { op, name, source } => BackendError::Io { op, name, source },
        RegionError::InvalidLength { name, len, reason } => {
            BackendError::InvalidLength { name, len, reason }
        }
        other => BackendError::Io {
            op: "backend",
            name: String::new(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

// SAFETY: the contract of `Region` is the backend crate's mapping contract: ShmRegion maps the
// whole object once (fully allocated, page aligned, zero-filled on create) and unmaps it only
// on drop; see the backend crate's region docs.
unsafe impl Region for ShmRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.0.as_ptr()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn is_owner(&self) -> bool {
        self.0.is_owner()
    }
    fn owner_state(&self) -> ProcessState {
        lock_probe(self.0.owner_alive())
    }
    fn finish(&self, mode: u32) -> Result<(), BackendError> {
        self.0.finish(mode).map_err(map_region_error)
    }
    fn owner(&self) -> Option<RegionOwner> {
        self.0.owner().ok().map(region_owner)
    }
    os_region_methods!(|r: &Self| r.0.os_name().to_string());
}

/// The methods of `Region` that SHM and mmap regions implement alike over their OS object
/// (lock slots, prefault, read-only protection); `$name` gives the object's name for errors.
macro_rules! os_region_methods {
    ($name:expr) => {
        fn try_lock_slot(&self, slot: u64) -> Result<bool, BackendError> {
            self.0
                .try_lock_slot(slot)
                .map_err(|source| $crate::backend::shm::os_error("lock slot", ($name)(self), source))
        }
        fn keep_name_on_drop(&self) {
            self.0.keep_name_on_drop()
        }
        fn unlock_slot(&self, slot: u64) {
            if let Err(e) = self.0.unlock_slot(slot) {
                tracing::warn!(slot, error = %e, "releasing a lock slot failed");
            }
        }
        fn slot_state(&self, slot: u64) -> ProcessState {
            $crate::backend::shm::lock_probe(self.0.slot_held(slot))
        }
        fn is_linked(&self) -> bool {
            self.0.is_linked()
        }
        fn prefault(&self, write: bool) -> Result<(), BackendError> {
            self.0.prefault(write).map_err(|source| {
                $crate::backend::shm::os_error("madvise(MADV_POPULATE)", ($name)(self), source)
            })
        }
        fn protect_read_only(&self, offset: usize, len: usize) -> Result<(), BackendError> {
            self.0
                .protect_read_only(offset, len)
                .map_err(|source| $crate::backend::shm::os_error("mprotect", ($name)(self), source))
        }
    };
}
pub(crate) use os_region_methods;

const _: () = assert!(super::REMOVAL_HEAD_LEN == myelon_backend_shm::GUARD_HEAD_LEN);

pub(crate) fn os_error(op: &'static str, name: String, source: std::io::Error) -> BackendError {
    BackendError::Io { op, name, source }
}

pub(crate) fn region_owner(o: plat::ownership::ObjectOwner) -> RegionOwner {
    RegionOwner {
        uid: o.uid,
        mode: o.mode,
    }
}

/// This process's effective uid.
pub(crate) fn plat_uid() -> u32 {
    plat::ownership::effective_uid()
}

/// The magics a reclaimer looks for, as the bytes they are stored as.
pub(crate) fn marks(magics: &[u64]) -> Vec<[u8; 8]> {
    magics.iter().map(|m| m.to_ne_bytes()).collect()
}

pub(crate) fn lock_probe(r: std::io::Result<bool>) -> ProcessState {
    match r {
        Ok(true) => ProcessState::Alive,
        Ok(false) => ProcessState::Dead,
        Err(_) => ProcessState::Unknown,
    }
}

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Packs pid and the low 32 bits of the start time into one word.
pub(crate) fn token_of(pid: u32, start_time: u64) -> u64 {
    u64::from(pid) | ((start_time & 0xffff_ffff) << 32)
}

pub(crate) fn os_token_state(token: u64) -> ProcessState {
    let pid = (token & 0xffff_ffff) as u32;
    if pid == 0 {
        return ProcessState::Unknown;
    }
    match plat::process::identity_of(pid) {
        None => ProcessState::Dead,
        Some(id) if token_of(id.pid, id.start_time) != token => ProcessState::Dead,
        Some(id) => match plat::process::state(id) {
            plat::process::ProcessState::Alive => ProcessState::Alive,
            plat::process::ProcessState::Dead => ProcessState::Dead,
            plat::process::ProcessState::Unknown => ProcessState::Unknown,
        },
    }
}

/// The OS-level shared helpers the file-backed backend reuses.
pub(crate) mod os {
    use super::*;

    pub(crate) fn now() -> Duration {
        origin().elapsed()
    }
    pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) -> WaitOutcome {
        match plat::futex::wait(word, expected, Some(timeout)) {
            plat::futex::WaitResult::TimedOut => WaitOutcome::TimedOut,
            _ => WaitOutcome::Woken,
        }
    }
    pub(crate) fn wake_all(word: &AtomicU32) {
        plat::futex::wake_all(word);
    }
    pub(crate) fn token() -> u64 {
        let id = plat::process::current();
        token_of(id.pid, id.start_time)
    }
    pub(crate) fn identity() -> (u32, u64) {
        let id = plat::process::current();
        (id.pid, id.start_time)
    }
}

impl RingBackend for ShmBackend {
    type Region = ShmRegion;

    fn kind(&self) -> &'static str {
        "shm"
    }
    fn os_name(&self, name: &str) -> Result<String, BackendError> {
        let os = if name.starts_with('/') {
            name.to_string()
        } else {
            format!("/{name}")
        };
        plat::validate_os_name(&os).map_err(map_region_error)?;
        Ok(os)
    }
    fn create(&self, name: &str, len: usize) -> Result<ShmRegion, BackendError> {
        let os = self.os_name(name)?;
        ShmSegment::create_unfinished(&os, len)
            .map(ShmRegion)
            .map_err(map_region_error)
    }
    fn open(&self, name: &str) -> Result<ShmRegion, BackendError> {
        let os = self.os_name(name)?;
        ShmSegment::open(&os)
            .map(ShmRegion)
            .map_err(map_region_error)
    }
    fn open_read_only(&self, name: &str) -> Result<ShmRegion, BackendError> {
        let os = self.os_name(name)?;
        ShmSegment::open_read_only(&os)
            .map(ShmRegion)
            .map_err(map_region_error)
    }
    fn remove(&self, name: &str) -> Result<(), BackendError> {
        let os = self.os_name(name)?;
        plat::unlink(&os).map_err(map_region_error)
    }
    fn remove_if_abandoned(
        &self,
        name: &str,
        magics: &[u64],
        guard: RemovalGuard<'_>,
    ) -> Result<bool, BackendError> {
        let os = self.os_name(name)?;
        plat::remove_if_abandoned(&os, &marks(magics), guard.slots, guard.keep)
            .map_err(map_region_error)
    }
    fn list(&self) -> Result<Vec<String>, BackendError> {
        let names = plat::list().map_err(map_region_error)?;
        Ok(names
            .into_iter()
            .map(|n| n.trim_start_matches('/').to_string())
            .collect())
    }
    fn now(&self) -> Duration {
        os::now()
    }
    fn wait(&self, word: &AtomicU32, expected: u32, timeout: Duration) -> WaitOutcome {
        os::wait(word, expected, timeout)
    }
    fn wake_all(&self, word: &AtomicU32) {
        os::wake_all(word)
    }
    fn yield_now(&self) {
        std::thread::yield_now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
    fn process_token(&self) -> u64 {
        os::token()
    }
    fn process_identity(&self) -> (u32, u64) {
        os::identity()
    }
    fn token_state(&self, token: u64) -> ProcessState {
        os_token_state(token)
    }
    fn effective_uid(&self) -> Option<u32> {
        Some(plat_uid())
    }
}
