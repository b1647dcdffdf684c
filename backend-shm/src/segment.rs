//! POSIX shared-memory segments: exclusive create, open, map, unlink, list.

use std::ffi::CStr;
use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

use crate::error::RegionError;
use crate::name::{fs_path, to_cstring, SHM_DIR};
use crate::ownership;

/// How many times [`ShmSegment::create`] retries when a fresh object could not be claimed.
const CREATE_ATTEMPTS: usize = 8;

/// A mapped POSIX shared-memory object (`shm_open` + `mmap(MAP_SHARED)`).
///
/// The creator is the *owner*: it holds an exclusive `flock` on its descriptor for its whole
/// lifetime and unlinks the name on drop (only if the name still refers to its own object).
/// Openers are non-owners; they can ask [`ShmSegment::owner_alive`].
///
/// The memory is plain bytes shared with other processes: this type hands out a raw pointer and
/// makes no claim about what is stored there or who writes it.
#[derive(Debug)]
pub struct ShmSegment {
    fd: OwnedFd,
    ptr: NonNull<u8>,
    len: usize,
    os_name: String,
    owner: bool,
    /// Owner only: set by [`Self::keep_name_on_drop`]; the name then outlives this handle.
    /// Process-local (a field of this handle, never in the shared mapping).
    #[allow(clippy::disallowed_types)]
    keep_name: std::sync::atomic::AtomicBool,
}

// SAFETY: the struct only holds a descriptor, a length, a name and the base address of a
// MAP_SHARED mapping it alone unmaps (in Drop). Nothing in it is tied to the creating thread;
// access to the mapped bytes goes through the raw pointer, whose synchronisation is the caller's
// responsibility.
unsafe impl Send for ShmSegment {}
// SAFETY: every `&self` method only reads immutable fields or issues syscalls on the descriptor
// (fstat/flock), which are thread-safe; no method writes through the mapping.
unsafe impl Sync for ShmSegment {}

impl ShmSegment {
    /// Exclusively creates the object `os_name` with `len` zero-filled bytes, mode `0600` whatever
    /// the umask, fully allocated, and maps it read-write. The caller becomes the owner.
    ///
    /// Fails with [`RegionError::AlreadyExists`] if anything is at the name, and with
    /// [`RegionError::NoSpace`] if `/dev/shm` cannot hold `len` bytes; on every error nothing is
    /// left behind at the name.
    pub fn create(os_name: &str, len: usize) -> Result<ShmSegment, RegionError> {
        let seg = Self::create_unfinished(os_name, len)?;
        seg.finish(0o600)?;
        Ok(seg)
    }

    /// Like [`ShmSegment::create`], but the object keeps the unfinished mark (mode
    /// [`ownership::UNFINISHED_MODE`], see [`ownership`]) until [`ShmSegment::finish`]: until
    /// then [`ShmSegment::open`] reports it [`RegionError::Empty`], and once its creator is dead
    /// [`remove_if_abandoned`] may reclaim it whatever its bytes. Write the mark the reclaimer
    /// will look for, then call `finish`.
    pub fn create_unfinished(os_name: &str, len: usize) -> Result<ShmSegment, RegionError> {
        let cname = to_cstring(os_name)?;
        let fd = create_claimed(&cname, os_name, len)?;
        let result = ownership::allocate(fd.as_fd(), len, os_name)
            .and_then(|()| map_shared(&fd, len, os_name, true));
        match result {
            Ok(ptr) => Ok(ShmSegment {
                fd,
                ptr,
                len,
                os_name: os_name.to_owned(),
                owner: true,
                keep_name: Default::default(),
            }),
            Err(e) => {
                unlink_if_ours(&fd, &cname, os_name);
                Err(e)
            }
        }
    }

    /// Gives the object its final permission bits (see [`ownership::check_final_mode`]),
    /// lifting the unfinished mark. Owner only.
    pub fn finish(&self, mode: u32) -> Result<(), RegionError> {
        ownership::check_final_mode(mode).map_err(|reason| RegionError::InvalidMode {
            name: self.os_name.clone(),
            mode,
            reason,
        })?;
        ownership::set_mode(self.fd.as_fd(), mode)
            .map_err(|e| RegionError::from_io("fchmod", &self.os_name, e))
    }

    /// The object's owner uid and permission bits, from `fstat` on this handle's descriptor.
    pub fn owner(&self) -> io::Result<ownership::ObjectOwner> {
        ownership::owner_of(self.fd.as_fd())
    }

    /// Opens the existing object `os_name` read-write (never following a symbolic link) and maps
    /// all of it. Fails with [`RegionError::Empty`] if it has length 0 or still carries the
    /// unfinished mark (its creator has not finished it yet).
    pub fn open(os_name: &str) -> Result<ShmSegment, RegionError> {
        Self::open_with(os_name, true)
    }

    /// Like [`ShmSegment::open`], but opens and maps the object **read-only** (`O_RDONLY`,
    /// `PROT_READ`): enough for a user who may read it but not write it (an inspector). A write
    /// through [`ShmSegment::as_ptr`] of such a segment faults.
    pub fn open_read_only(os_name: &str) -> Result<ShmSegment, RegionError> {
        Self::open_with(os_name, false)
    }

    fn open_with(os_name: &str, write: bool) -> Result<ShmSegment, RegionError> {
        let cname = to_cstring(os_name)?;
        let access = if write { libc::O_RDWR } else { libc::O_RDONLY };
        let flags = access | libc::O_CLOEXEC | libc::O_NOFOLLOW;
        let fd = match shm_open(&cname, flags, 0) {
            Ok(fd) => fd,
            Err(e) => return Err(open_refused(&cname, os_name, e)),
        };
        if ownership::is_unfinished(fd.as_fd()).unwrap_or(false) {
            return Err(RegionError::Empty {
                name: os_name.to_owned(),
            });
        }
        let len = mapped_len(&fd, os_name)?;
        let ptr = map_shared(&fd, len, os_name, write)?;
        Ok(ShmSegment {
            fd,
            ptr,
            len,
            os_name: os_name.to_owned(),
            owner: false,
            keep_name: Default::default(),
        })
    }

    /// Page-aligned base address of the mapping, valid for [`ShmSegment::len`] bytes while `self`
    /// lives.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false for a mapped segment (length 0 is refused by `create` and `open`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The POSIX name, with its leading `/`.
    pub fn os_name(&self) -> &str {
        &self.os_name
    }

    /// True if this handle created the object.
    pub fn is_owner(&self) -> bool {
        self.owner
    }

    /// Owner: do not remove the name when this handle drops (a multi-producer ring outlives its
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
        ownership::owner_alive(self.fd.as_fd())
    }
}

impl ShmSegment {
    /// Takes lock slot `slot` through this handle's open file description (see
    /// [`crate::slot_lock`]); `Ok(false)`: another handle holds it.
    pub fn try_lock_slot(&self, slot: u64) -> io::Result<bool> {
        crate::slot_lock::try_lock_slot(self.fd.as_fd(), slot)
    }

    /// Releases lock slot `slot` if this handle holds it.
    pub fn unlock_slot(&self, slot: u64) -> io::Result<()> {
        crate::slot_lock::unlock_slot(self.fd.as_fd(), slot)
    }

    /// Whether the object still has a name: `false` once it was unlinked (a reclaimer removed
    /// it), even if the name now refers to a newer object.
    pub fn is_linked(&self) -> bool {
        ownership::is_linked(self.fd.as_fd())
    }

    /// Whether another handle (in any process) holds lock slot `slot`.
    pub fn slot_held(&self, slot: u64) -> io::Result<bool> {
        crate::slot_lock::slot_held(self.fd.as_fd(), slot)
    }

    /// Makes bytes `offset..offset + len` of this mapping read-only in this process (`offset`
    /// page aligned; the range inside the mapping). A later write through the mapping there is
    /// a `SIGSEGV`. The caller must not hold or create any `&mut` or write access to them.
    pub fn protect_read_only(&self, offset: usize, len: usize) -> io::Result<()> {
        crate::protect::read_only(self.ptr, self.len, offset, len)
    }

    /// Faults the whole mapping's pages in now (for reading, or for writing), so that first
    /// accesses later take no page fault. The bytes are not changed.
    pub fn prefault(&self, write: bool) -> io::Result<()> {
        crate::protect::populate(self.ptr, self.len, write)
    }
}

impl Drop for ShmSegment {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe exactly the mapping made in `map_shared`, which nothing else
        // unmaps; `&mut self` in drop means no borrow of it outlives this call (the raw pointers
        // handed out are documented as valid only while `self` lives).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        if self.owner && !self.keep_name.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(cname) = to_cstring(&self.os_name) {
                unlink_if_ours(&self.fd, &cname, &self.os_name);
            }
        }
        // `fd` closes when the field drops, releasing the owner's flock last.
    }
}

/// Removes the object `os_name`. Existing mappings stay valid; the memory is freed when the last
/// one goes. Fails with [`RegionError::NotFound`] if nothing is at the name.
pub fn unlink(os_name: &str) -> Result<(), RegionError> {
    let cname = to_cstring(os_name)?;
    shm_unlink(&cname).map_err(|e| RegionError::from_io("shm_unlink", os_name, e))
}

/// How many leading bytes the `keep` test of [`remove_if_abandoned`] is shown.
pub const GUARD_HEAD_LEN: usize = 128;

/// Removes the object `os_name` only if its owner is gone, atomically with respect to creators
/// and other reclaimers: opens it, takes its owner lock exclusively ([`ownership::lock_abandoned`]),
/// then a shared lock on every lock slot of `guard_slots` ([`guard_allows`]), checks that the
/// name still refers to the locked object, unlinks it, and only then releases the locks (so a
/// process that takes one of those slots afterwards finds the object unlinked,
/// [`ShmSegment::is_linked`]). Returns `Ok(false)` when a live owner (or a momentary prober)
/// holds the owner lock, a live holder has one of `guard_slots`, or `keep`, shown the object's
/// first [`GUARD_HEAD_LEN`] bytes, keeps it. Works on objects of any length, including one its
/// creator never sized. Where the slot locks do not exist (not Linux) the slots are not
/// checked: nothing can hold them there.
///
/// Only an object provably made by this protocol is removed ([`ownership::is_ours`] with
/// `marks`, checked under the lock); anything else gives [`RegionError::Foreign`] and is left
/// intact.
pub fn remove_if_abandoned(
    os_name: &str,
    marks: &[[u8; 8]],
    guard_slots: &[Range<u64>],
    keep: Option<fn(&[u8]) -> bool>,
) -> Result<bool, RegionError> {
    let cname = to_cstring(os_name)?;
    let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    let fd =
        shm_open(&cname, flags, 0).map_err(|e| RegionError::from_io("shm_open", os_name, e))?;
    let locked = ownership::lock_abandoned(fd.as_fd())
        .map_err(|e| RegionError::from_io("flock", os_name, e))?;
    if !locked || !guard_allows(fd.as_fd(), guard_slots, os_name)? {
        return Ok(false);
    }
    let same = fs_path(os_name).is_none_or(|path| ownership::same_inode(fd.as_fd(), &path));
    let ours = ownership::is_ours(fd.as_fd(), marks)
        .map_err(|e| RegionError::from_io("read", os_name, e))?;
    if same && !ours {
        return Err(RegionError::Foreign {
            name: os_name.to_owned(),
        });
    }
    if same && guard_keeps(fd.as_fd(), keep, os_name)? {
        return Ok(false);
    }
    if same {
        shm_unlink(&cname).map_err(|e| RegionError::from_io("shm_unlink", os_name, e))?;
    }
    Ok(same)
}

/// Takes a shared lock on every slot of `slots` through `fd` ([`crate::slot_lock::try_share_ranges`]):
/// `false` if a live holder has one. Called with the owner lock held; the slots stay held until
/// `fd` closes. Not Linux: `true` (no slot locks exist there).
pub fn guard_allows(
    fd: BorrowedFd<'_>,
    slots: &[Range<u64>],
    name: &str,
) -> Result<bool, RegionError> {
    match crate::slot_lock::try_share_ranges(fd, slots) {
        Ok(free) => Ok(free),
        Err(e) if e.kind() == io::ErrorKind::Unsupported => Ok(true),
        Err(e) => Err(RegionError::from_io("fcntl", name, e)),
    }
}

/// Whether `keep` keeps the object behind `fd`, shown its first [`GUARD_HEAD_LEN`] bytes
/// (fewer if it is shorter). `None`: no.
pub fn guard_keeps(
    fd: BorrowedFd<'_>,
    keep: Option<fn(&[u8]) -> bool>,
    name: &str,
) -> Result<bool, RegionError> {
    let Some(keep) = keep else {
        return Ok(false);
    };
    let mut head = [0u8; GUARD_HEAD_LEN];
    let n =
        ownership::pread_head(fd, &mut head).map_err(|e| RegionError::from_io("read", name, e))?;
    Ok(keep(&head[..n]))
}

/// The names (with leading `/`) of the POSIX shared-memory objects that currently exist.
///
/// Linux only: lists the regular files of `/dev/shm`, skipping POSIX semaphores (`sem.*`) and
/// names that are not UTF-8. Other platforms cannot enumerate shared memory and get an empty list.
pub fn list() -> Result<Vec<String>, RegionError> {
    if !cfg!(target_os = "linux") {
        return Ok(Vec::new());
    }
    let entries = match std::fs::read_dir(SHM_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RegionError::from_io("read_dir", SHM_DIR, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| RegionError::from_io("read_dir", SHM_DIR, e))?;
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        match entry.file_name().into_string() {
            Ok(name) if is_file && !name.starts_with("sem.") => names.push(format!("/{name}")),
            _ => {}
        }
    }
    names.sort();
    Ok(names)
}

/// Why `open` could not open `os_name`: an object still carrying the unfinished mark refuses a
/// read-write open to its own (non-root) user, which is "not ready yet" (`Empty`), not a
/// permission problem; anything else is the OS error.
fn open_refused(cname: &CStr, os_name: &str, e: io::Error) -> RegionError {
    let err = RegionError::from_io("shm_open", os_name, e);
    if !matches!(err, RegionError::PermissionDenied { .. }) {
        return err;
    }
    let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    match shm_open(cname, flags, 0) {
        Ok(fd) if ownership::is_unfinished(fd.as_fd()).unwrap_or(false) => RegionError::Empty {
            name: os_name.to_owned(),
        },
        _ => err,
    }
}

/// `shm_open(O_CREAT|O_EXCL)` with the unfinished mark (mode `0400`, set again with `fchmod`
/// whatever the umask) + [`ownership::claim_fresh`], retried while a fresh object is snatched by
/// a concurrent reclaimer.
fn create_claimed(cname: &CStr, os_name: &str, len: usize) -> Result<OwnedFd, RegionError> {
    let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    let mark = ownership::UNFINISHED_MODE;
    for _ in 0..CREATE_ATTEMPTS {
        let fd = shm_open(cname, flags, mark as libc::mode_t)
            .map_err(|e| RegionError::from_alloc_io("shm_open", os_name, len, e))?;
        let claimed =
            ownership::set_mode(fd.as_fd(), mark).and_then(|()| ownership::claim_fresh(fd.as_fd()));
        match claimed {
            Ok(true) => return Ok(fd),
            Ok(false) => unlink_if_ours(&fd, cname, os_name),
            Err(e) => {
                unlink_if_ours(&fd, cname, os_name);
                return Err(RegionError::from_io("claim", os_name, e));
            }
        }
    }
    Err(RegionError::AlreadyExists {
        name: os_name.to_owned(),
    })
}

/// Unlinks `cname` if it still names the object behind `fd` (on platforms without `/dev/shm`,
/// unconditionally). Errors are ignored: this is cleanup.
fn unlink_if_ours(fd: &OwnedFd, cname: &CStr, os_name: &str) {
    let ours = fs_path(os_name).is_none_or(|path| ownership::same_inode(fd.as_fd(), &path));
    if ours {
        let _ = shm_unlink(cname);
    }
}

/// `fstat` length of an opened object, refusing 0 and non-regular files.
fn mapped_len(fd: &OwnedFd, os_name: &str) -> Result<usize, RegionError> {
    let st = ownership::fstat(fd.as_fd()).map_err(|e| RegionError::from_io("fstat", os_name, e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        let source = io::Error::new(io::ErrorKind::InvalidData, "not a regular file");
        return Err(RegionError::from_io("fstat", os_name, source));
    }
    match usize::try_from(st.st_size) {
        Ok(0) => Err(RegionError::Empty {
            name: os_name.to_owned(),
        }),
        Ok(len) if isize::try_from(len).is_ok() => Ok(len),
        _ => Err(RegionError::InvalidLength {
            name: os_name.to_owned(),
            len: usize::MAX,
            reason: "object size does not fit in the address space",
        }),
    }
}

fn map_shared(
    fd: &OwnedFd,
    len: usize,
    os_name: &str,
    write: bool,
) -> Result<NonNull<u8>, RegionError> {
    let prot = if write {
        libc::PROT_READ | libc::PROT_WRITE
    } else {
        libc::PROT_READ
    };
    // SAFETY: a fresh mapping chosen by the kernel (addr = null), so no existing memory is
    // affected; `fd` is open for the duration of the call and `len` > 0 was checked by the callers.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(RegionError::from_io(
            "mmap",
            os_name,
            io::Error::last_os_error(),
        ));
    }
    NonNull::new(ptr.cast::<u8>()).ok_or_else(|| {
        let source = io::Error::other("mmap returned null");
        RegionError::from_io("mmap", os_name, source)
    })
}

fn shm_open(cname: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: `cname` is a valid NUL-terminated string that outlives the call.
    let raw = unsafe { libc::shm_open(cname.as_ptr(), flags, mode) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: shm_open returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn shm_unlink(cname: &CStr) -> io::Result<()> {
    // SAFETY: `cname` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::shm_unlink(cname.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
