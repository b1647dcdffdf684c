//! POSIX shared-memory platform layer for myelon.
//!
//! This crate is the thin OS layer under the myelon transport. It provides:
//!
//! - [`ShmSegment`]: an exclusively created (`O_CREAT|O_EXCL`), mode `0600`, fully allocated
//!   (`posix_fallocate`, so no `SIGBUS` on a full `/dev/shm`) and zero-filled POSIX shared-memory
//!   object, mapped `MAP_SHARED`; [`unlink`] and [`list`] for cleanup tools.
//! - [`ownership`]: the owner-lock protocol (the creator holds an exclusive `flock` for its
//!   lifetime; others probe it to learn whether the owner died), also used by
//!   `myelon-backend-mmap`.
//! - [`slot_lock`]: kernel-released per-entry locks (open-file-description `fcntl` locks), the
//!   proof of life of a region's entry holders across PID namespaces.
//! - [`futex`]: cross-process wait/wake on a `u32` in shared memory.
//! - [`process`]: process identity as `(pid, start time)` and liveness checks robust to pid reuse.
//! - [`affinity`]: pinning threads to CPUs.
//!
//! It is **not** a ring buffer and knows nothing about rings: no headers, layouts, sequences or
//! readiness flags live here. It hands out raw, page-aligned byte pointers; what is stored behind
//! them, and how accesses are synchronised, is the transport crate's business.
//!
//! Linux is the target. Elsewhere it builds with documented fallbacks (futex waits poll, pinning
//! is `Unsupported`, [`list`] is empty).

mod error;
mod name;
mod protect;
mod segment;

pub mod affinity;
pub mod futex;
pub mod ownership;
pub mod process;
pub mod slot_lock;

pub use error::RegionError;
pub use name::{validate_os_name, MAX_OS_NAME_LEN};
pub use segment::{
    guard_allows, guard_keeps, list, remove_if_abandoned, unlink, ShmSegment, GUARD_HEAD_LEN,
};

/// Makes part of a mapping read-only (see [`ShmSegment::protect_read_only`]); for other crates
/// that map objects the same way (`myelon-backend-mmap`).
pub fn protect_read_only(
    base: std::ptr::NonNull<u8>,
    map_len: usize,
    offset: usize,
    len: usize,
) -> std::io::Result<()> {
    protect::read_only(base, map_len, offset, len)
}

/// Faults a whole mapping's pages in now (see [`ShmSegment::prefault`]); for other crates that
/// map objects the same way (`myelon-backend-mmap`).
pub fn prefault(base: std::ptr::NonNull<u8>, map_len: usize, write: bool) -> std::io::Result<()> {
    protect::populate(base, map_len, write)
}
