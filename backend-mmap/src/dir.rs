//! Removing and listing region files by path.

use std::io;
use std::path::{Path, PathBuf};

use myelon_backend_shm::RegionError;

/// Removes the file (or symbolic link, which is not followed) at `path`. Existing mappings stay
/// valid. Fails with [`RegionError::NotFound`] if nothing is there.
pub fn remove(path: &Path) -> Result<(), RegionError> {
    std::fs::remove_file(path)
        .map_err(|e| RegionError::from_io("remove", &path.display().to_string(), e))
}

/// Removes the file at `path` only if its owner is gone, atomically with respect to creators and
/// other reclaimers (see `myelon_backend_shm::remove_if_abandoned`): exclusive owner lock, a
/// shared lock on `guard_slots`, same inode check, remove, then release. `Ok(false)` when a
/// live owner holds the lock, a live holder has one of `guard_slots`, or `keep` keeps it. Symlinks are
/// not followed. Only a file provably made by this protocol is removed
/// (`myelon_backend_shm::ownership::is_ours` with `marks`, under the lock); anything else gives
/// [`RegionError::Foreign`] and is left intact.
pub fn remove_if_abandoned(
    path: &Path,
    marks: &[[u8; 8]],
    guard_slots: &[std::ops::Range<u64>],
    keep: Option<fn(&[u8]) -> bool>,
) -> Result<bool, RegionError> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::OpenOptionsExt;
    let name = || path.display().to_string();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| RegionError::from_io("open", &name(), e))?;
    let locked = myelon_backend_shm::ownership::lock_abandoned(file.as_fd())
        .map_err(|e| RegionError::from_io("flock", &name(), e))?;
    if !locked || !myelon_backend_shm::guard_allows(file.as_fd(), guard_slots, &name())? {
        return Ok(false);
    }
    if !myelon_backend_shm::ownership::same_inode(file.as_fd(), path) {
        return Ok(false);
    }
    let ours = myelon_backend_shm::ownership::is_ours(file.as_fd(), marks)
        .map_err(|e| RegionError::from_io("read", &name(), e))?;
    if !ours {
        return Err(RegionError::Foreign { name: name() });
    }
    if myelon_backend_shm::guard_keeps(file.as_fd(), keep, &name())? {
        return Ok(false);
    }
    std::fs::remove_file(path).map_err(|e| RegionError::from_io("remove", &name(), e))?;
    Ok(true)
}

/// The regular files directly in `dir`, sorted; symbolic links, directories and other file types
/// are skipped (links are not followed). A missing `dir` gives an empty list.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>, RegionError> {
    let name = || dir.display().to_string();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RegionError::from_io("read_dir", &name(), e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| RegionError::from_io("read_dir", &name(), e))?;
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}
