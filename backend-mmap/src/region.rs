//! `FileRegion`: an exclusively created, fully allocated, shared-mapped regular file.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use memmap2::{MmapOptions, MmapRaw};
use myelon_backend_shm::{ownership, RegionError};

/// How many times [`FileRegion::create`] retries when a fresh file could not be claimed.
const CREATE_ATTEMPTS: usize = 8;

/// A regular file mapped `MAP_SHARED` read-write.
///
/// The creator is the *owner*: it holds an exclusive `flock` on its descriptor for its whole
/// lifetime (see [`ownership`]) and removes the path on drop, but only if the path still names its
/// own file. Openers are non-owners and can ask [`FileRegion::owner_alive`].
///
/// The file is never truncated, resized or followed through a symbolic link by this type.
#[derive(Debug)]
pub struct FileRegion {
    // Declared before `file`: the mapping is dropped (unmapped) before the descriptor closes.
    map: MmapRaw,
    file: File,
    path: PathBuf,
    owner: bool,
    /// Owner only: set by [`Self::keep_name_on_drop`]; the name then outlives this handle.
    /// Process-local (a field of this handle, never in the shared mapping).
    #[allow(clippy::disallowed_types)]
    keep_name: std::sync::atomic::AtomicBool,
}

impl FileRegion {
    /// Exclusively creates the file `path` (`O_CREAT|O_EXCL|O_NOFOLLOW`, mode `0600` whatever the
    /// umask), allocates all `len` bytes up front, and maps it. The caller becomes the owner.
    ///
    /// Never touches an existing file: anything at `path`, a symbolic link included (even a
    /// dangling one), gives [`RegionError::AlreadyExists`]. A full file system gives
    /// [`RegionError::NoSpace`]. On every error nothing is left behind at `path`.
    pub fn create(path: &Path, len: usize) -> Result<FileRegion, RegionError> {
        let region = Self::create_unfinished(path, len)?;
        region.finish(0o600)?;
        Ok(region)
    }

    /// Like [`FileRegion::create`], but the file keeps the unfinished mark (mode
    /// [`ownership::UNFINISHED_MODE`], see [`ownership`]) until [`FileRegion::finish`]: until
    /// then [`FileRegion::open`] reports it [`RegionError::Empty`], and once its creator is dead
    /// [`remove_if_abandoned`](crate::remove_if_abandoned) may reclaim it whatever its bytes.
    pub fn create_unfinished(path: &Path, len: usize) -> Result<FileRegion, RegionError> {
        let name = path.display().to_string();
        check_len(len, &name)?;
        let file = create_claimed(path, &name, len)?;
        let result = ownership::allocate(file.as_fd(), len, &name)
            .and_then(|()| map_shared(&file, len, &name));
        match result {
            Ok(map) => Ok(FileRegion {
                map,
                file,
                path: path.to_owned(),
                owner: true,
                keep_name: Default::default(),
            }),
            Err(e) => {
                remove_if_ours(&file, path);
                Err(e)
            }
        }
    }

    /// Gives the file its final permission bits (see [`ownership::check_final_mode`]), lifting
    /// the unfinished mark. Owner only.
    pub fn finish(&self, mode: u32) -> Result<(), RegionError> {
        let name = || self.path.display().to_string();
        ownership::check_final_mode(mode).map_err(|reason| RegionError::InvalidMode {
            name: name(),
            mode,
            reason,
        })?;
        ownership::set_mode(self.file.as_fd(), mode)
            .map_err(|e| RegionError::from_io("fchmod", &name(), e))
    }

    /// The file's owner uid and permission bits, from `fstat` on this handle's descriptor.
    pub fn owner(&self) -> io::Result<ownership::ObjectOwner> {
        ownership::owner_of(self.file.as_fd())
    }

    /// Opens the existing regular file `path` read-write without following a symbolic link
    /// ([`RegionError::Symlink`]) and maps all of it. Length 0, or the unfinished mark, gives
    /// [`RegionError::Empty`].
    pub fn open(path: &Path) -> Result<FileRegion, RegionError> {
        Self::open_mode(path, true)
    }

    /// Like [`FileRegion::open`], but opens and maps the file **read-only**: enough for a user
    /// who may read it but not write it (an inspector). A write through
    /// [`FileRegion::as_ptr`] of such a region faults.
    pub fn open_read_only(path: &Path) -> Result<FileRegion, RegionError> {
        Self::open_mode(path, false)
    }

    fn open_mode(path: &Path, write: bool) -> Result<FileRegion, RegionError> {
        let name = path.display().to_string();
        let file = match open_with(path, write) {
            Ok(file) => file,
            Err(e) => return Err(open_refused(path, &name, e)),
        };
        if ownership::is_unfinished(file.as_fd()).unwrap_or(false) {
            return Err(RegionError::Empty { name });
        }
        let len = file_len(&file, &name)?;
        let map = if write {
            map_shared(&file, len, &name)?
        } else {
            MmapOptions::new()
                .len(len)
                .map_raw_read_only(&file)
                .map_err(|e| RegionError::from_io("mmap", &name, e))?
        };
        Ok(FileRegion {
            map,
            file,
            path: path.to_owned(),
            owner: false,
            keep_name: Default::default(),
        })
    }

    /// Page-aligned base address of the mapping, valid for [`FileRegion::len`] bytes while `self`
    /// lives.
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Always false for a mapped region (length 0 is refused by `create` and `open`).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// The path the region was created or opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True if this handle created the file.
    pub fn is_owner(&self) -> bool {
        self.owner
    }

    /// Owner: do not remove the file when this handle drops (a multi-producer ring outlives its
    /// creator's handle while other producers use it; the last of them removes it).
    pub fn keep_name_on_drop(&self) {
        self.keep_name
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Owner: always `Ok(true)`. Non-owner: whether some process still holds the creator's
    /// exclusive lock (see [`ownership::owner_alive`]).
    ///
    /// After the owner dies this turns false *eventually*, not necessarily at once: a child the
    /// owner was forking at that moment holds a copy of the locked descriptor until it execs or
    /// exits. Poll it.
    pub fn owner_alive(&self) -> io::Result<bool> {
        if self.owner {
            return Ok(true);
        }
        ownership::owner_alive(self.file.as_fd())
    }
}

impl FileRegion {
    /// Whether the file still has a name: `false` once it was removed (a reclaimer removed
    /// it), even if the path now refers to a newer file.
    pub fn is_linked(&self) -> bool {
        ownership::is_linked(self.file.as_fd())
    }

    /// Takes lock slot `slot` through this handle's open file description (see
    /// [`myelon_backend_shm::slot_lock`]); `Ok(false)`: another handle holds it.
    pub fn try_lock_slot(&self, slot: u64) -> io::Result<bool> {
        myelon_backend_shm::slot_lock::try_lock_slot(self.file.as_fd(), slot)
    }

    /// Releases lock slot `slot` if this handle holds it.
    pub fn unlock_slot(&self, slot: u64) -> io::Result<()> {
        myelon_backend_shm::slot_lock::unlock_slot(self.file.as_fd(), slot)
    }

    /// Whether another handle (in any process) holds lock slot `slot`.
    pub fn slot_held(&self, slot: u64) -> io::Result<bool> {
        myelon_backend_shm::slot_lock::slot_held(self.file.as_fd(), slot)
    }

    /// Makes bytes `offset..offset + len` of this mapping read-only in this process (`offset`
    /// page aligned; the range inside the mapping). A later write through the mapping there is
    /// a `SIGSEGV`. The caller must not hold or create any `&mut` or write access to them.
    pub fn protect_read_only(&self, offset: usize, len: usize) -> io::Result<()> {
        let base = std::ptr::NonNull::new(self.map.as_mut_ptr())
            .ok_or_else(|| io::Error::other("null mapping"))?;
        myelon_backend_shm::protect_read_only(base, self.map.len(), offset, len)
    }

    /// Faults the whole mapping's pages in now (for reading, or for writing), so that first
    /// accesses later take no page fault. The bytes are not changed.
    pub fn prefault(&self, write: bool) -> io::Result<()> {
        let base = std::ptr::NonNull::new(self.map.as_mut_ptr())
            .ok_or_else(|| io::Error::other("null mapping"))?;
        myelon_backend_shm::prefault(base, self.map.len(), write)
    }
}

impl Drop for FileRegion {
    fn drop(&mut self) {
        if self.owner && !self.keep_name.load(std::sync::atomic::Ordering::Relaxed) {
            remove_if_ours(&self.file, &self.path);
        }
        // Then `map` unmaps and `file` closes (field order), releasing the owner's flock last.
    }
}

fn open_with(path: &Path, write: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Why `open` could not open `path`: a file still carrying the unfinished mark refuses a
/// read-write open to its own (non-root) user, which is "not ready yet" (`Empty`).
fn open_refused(path: &Path, name: &str, e: io::Error) -> RegionError {
    let err = RegionError::from_io("open", name, e);
    if !matches!(err, RegionError::PermissionDenied { .. }) {
        return err;
    }
    match open_with(path, false) {
        Ok(f) if ownership::is_unfinished(f.as_fd()).unwrap_or(false) => RegionError::Empty {
            name: name.to_owned(),
        },
        _ => err,
    }
}

/// `open(O_CREAT|O_EXCL)` with the unfinished mark (mode `0400`, set again with `fchmod`
/// whatever the umask) + [`ownership::claim_fresh`], retried while a fresh file is snatched by a
/// concurrent reclaimer.
fn create_claimed(path: &Path, name: &str, len: usize) -> Result<File, RegionError> {
    let mark = ownership::UNFINISHED_MODE;
    for _ in 0..CREATE_ATTEMPTS {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mark)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| RegionError::from_alloc_io("open", name, len, e))?;
        let claimed = file
            .set_permissions(Permissions::from_mode(mark))
            .and_then(|()| ownership::claim_fresh(file.as_fd()));
        match claimed {
            Ok(true) => return Ok(file),
            Ok(false) => remove_if_ours(&file, path),
            Err(e) => {
                remove_if_ours(&file, path);
                return Err(RegionError::from_io("claim", name, e));
            }
        }
    }
    Err(RegionError::AlreadyExists {
        name: name.to_owned(),
    })
}

/// Removes `path` if it still names the file behind `file`. Errors are ignored: this is cleanup.
fn remove_if_ours(file: &File, path: &Path) {
    if ownership::same_inode(file.as_fd(), path) {
        let _ = std::fs::remove_file(path);
    }
}

fn check_len(len: usize, name: &str) -> Result<(), RegionError> {
    let reason = if len == 0 {
        "length must be non-zero"
    } else if isize::try_from(len).is_err() || libc::off_t::try_from(len).is_err() {
        "length does not fit in the address space or off_t"
    } else {
        return Ok(());
    };
    Err(RegionError::InvalidLength {
        name: name.to_owned(),
        len,
        reason,
    })
}

/// Length of an opened file, refusing 0 and anything but a regular file.
fn file_len(file: &File, name: &str) -> Result<usize, RegionError> {
    let meta = file
        .metadata()
        .map_err(|e| RegionError::from_io("fstat", name, e))?;
    if !meta.file_type().is_file() {
        let source = io::Error::new(io::ErrorKind::InvalidData, "not a regular file");
        return Err(RegionError::from_io("fstat", name, source));
    }
    match usize::try_from(meta.len()) {
        Ok(0) => Err(RegionError::Empty {
            name: name.to_owned(),
        }),
        Ok(len) if isize::try_from(len).is_ok() => Ok(len),
        _ => Err(RegionError::InvalidLength {
            name: name.to_owned(),
            len: usize::MAX,
            reason: "file size does not fit in the address space",
        }),
    }
}

fn map_shared(file: &File, len: usize, name: &str) -> Result<MmapRaw, RegionError> {
    MmapOptions::new()
        .len(len)
        .map_raw(file)
        .map_err(|e| RegionError::from_io("mmap", name, e))
}
