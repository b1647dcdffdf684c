//! Memory-mapped file platform layer for myelon.
//!
//! [`FileRegion`] is a regular file used as a shared-memory region, for hosts or deployments where
//! POSIX shared memory (`/dev/shm`) is unavailable, too small, or not shared between the
//! processes (e.g. containers that share only a volume). A region file is:
//!
//! - created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`): an existing file is never truncated,
//!   resized or reused, and a symbolic link is never followed;
//! - mode `0600` whatever the umask;
//! - fully allocated up front (`posix_fallocate`), so a full disk is a [`RegionError::NoSpace`]
//!   at create time instead of a `SIGBUS` later;
//! - owned by its creator through the `flock` protocol of [`myelon_backend_shm::ownership`],
//!   so other processes can tell whether the owner died, and removed by its owner on drop.
//!
//! This crate is **not** a ring buffer and knows nothing about what is stored in the region: it
//! hands out a raw, page-aligned pointer and its length. Errors are the shared
//! [`RegionError`] of `myelon-backend-shm`.

mod dir;
mod region;

pub use dir::{list, remove, remove_if_abandoned};
pub use myelon_backend_shm::RegionError;
pub use region::FileRegion;
