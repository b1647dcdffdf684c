//! `RingBackend` over memory-mapped files (`myelon-backend-mmap`).

use super::shm::{lock_probe, map_region_error, marks, os, os_token_state, plat_uid, region_owner};
use super::{
    BackendError, ProcessState, Region, RegionOwner, RemovalGuard, RingBackend, WaitOutcome,
};
use crate::ring::sync::AtomicU32;
use myelon_backend_mmap::{self as plat, FileRegion};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Memory-mapped file backend: every ring is one file in `dir`, created exclusively with mode
/// 0600, fully allocated, never truncated, never followed through a symlink.
#[derive(Debug, Clone)]
pub struct MmapBackend {
    dir: Arc<PathBuf>,
}

/// A mapped ring file.
#[derive(Debug)]
pub struct MmapRegion(FileRegion);

impl MmapBackend {
    /// A backend whose ring names are files in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        MmapBackend {
            dir: Arc::new(dir.into()),
        }
    }

    /// Splits a file path into a backend for its directory and the file name.
    pub fn for_path(path: &Path) -> Result<(MmapBackend, String), BackendError> {
        let invalid = |reason| BackendError::InvalidName {
            name: path.display().to_string(),
            reason,
        };
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .ok_or_else(|| invalid("path has no UTF-8 file name"))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok((MmapBackend::new(dir), file.to_string()))
    }

    /// The directory holding the ring files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> Result<PathBuf, BackendError> {
        let invalid = |reason| BackendError::InvalidName {
            name: name.to_string(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("empty name"));
        }
        if name.contains('/') || name.contains('\0') {
            return Err(invalid("a ring file name may not contain '/' or NUL"));
        }
        if name == "." || name == ".." {
            return Err(invalid("'.' and '..' are not file names"));
        }
        Ok(self.dir.join(name))
    }
}

// SAFETY: the contract of `Region` is the backend crate's mapping contract: MmapRegion maps the
// whole object once (fully allocated, page aligned, zero-filled on create) and unmaps it only
// on drop; see the backend crate's region docs.
unsafe impl Region for MmapRegion {
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
    super::shm::os_region_methods!(|r: &Self| r.0.path().display().to_string());
}

impl RingBackend for MmapBackend {
    type Region = MmapRegion;

    fn kind(&self) -> &'static str {
        "mmap"
    }
    fn os_name(&self, name: &str) -> Result<String, BackendError> {
        Ok(self.path(name)?.display().to_string())
    }
    fn create(&self, name: &str, len: usize) -> Result<MmapRegion, BackendError> {
        FileRegion::create_unfinished(&self.path(name)?, len)
            .map(MmapRegion)
            .map_err(map_region_error)
    }
    fn open(&self, name: &str) -> Result<MmapRegion, BackendError> {
        FileRegion::open(&self.path(name)?)
            .map(MmapRegion)
            .map_err(map_region_error)
    }
    fn open_read_only(&self, name: &str) -> Result<MmapRegion, BackendError> {
        FileRegion::open_read_only(&self.path(name)?)
            .map(MmapRegion)
            .map_err(map_region_error)
    }
    fn remove(&self, name: &str) -> Result<(), BackendError> {
        plat::remove(&self.path(name)?).map_err(map_region_error)
    }
    fn remove_if_abandoned(
        &self,
        name: &str,
        magics: &[u64],
        guard: RemovalGuard<'_>,
    ) -> Result<bool, BackendError> {
        plat::remove_if_abandoned(&self.path(name)?, &marks(magics), guard.slots, guard.keep)
            .map_err(map_region_error)
    }
    fn list(&self) -> Result<Vec<String>, BackendError> {
        let files = plat::list(&self.dir).map_err(map_region_error)?;
        Ok(files
            .into_iter()
            .filter_map(|p| p.file_name().and_then(|f| f.to_str()).map(String::from))
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
