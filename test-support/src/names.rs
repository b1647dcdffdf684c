//! Unique shared-memory names and the guard that unlinks them.

use std::ffi::CString;
#[allow(clippy::disallowed_types)] // a process-local counter for unique names
use std::sync::atomic::{AtomicU64, Ordering};

/// A name unique to this process and call: `myelon-t-<pid>-<tag>-<n>` (no leading `/`; POSIX
/// backends add it). Names start with `myelon` so that CI's check of `/dev/shm` sees leftovers.
pub fn unique_name(tag: &str) -> String {
    #[allow(clippy::disallowed_types)] // process-local counter, never in shared memory
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "myelon-t-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Unlinks a POSIX shared-memory name when dropped (a missing name is fine), so a failed test
/// leaves nothing in `/dev/shm`. The name may be given with or without its leading `/`.
#[derive(Debug)]
pub struct ShmGuard(pub String);

impl ShmGuard {
    /// A guard over a fresh [`unique_name`].
    pub fn new(tag: &str) -> ShmGuard {
        ShmGuard(unique_name(tag))
    }

    /// The guarded name, as given.
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl Drop for ShmGuard {
    fn drop(&mut self) {
        let os = format!("/{}", self.0.trim_start_matches('/'));
        let Ok(c) = CString::new(os) else { return };
        // SAFETY: `c` is a NUL-terminated string that outlives the call; shm_unlink only reads
        // it. A failure (typically ENOENT: the owner already removed it) is ignored on purpose.
        unsafe { libc::shm_unlink(c.as_ptr()) };
    }
}
