//! Ownership of a freshly created region object, shared by shm segments and mapped files.
//!
//! Protocol: the creator makes the object with `O_CREAT|O_EXCL`, then holds an exclusive `flock`
//! on its descriptor for as long as it lives ([`claim_fresh`]). The lock belongs to the open file
//! description, so the kernel drops it when the owner dies, however it dies. Anyone else can then
//! ask [`owner_alive`] with a shared, non-blocking lock attempt on their own descriptor.
//!
//! Caveat: a `fork` (without `exec`) of the owner shares the open file description, so the owner
//! counts as alive while such a child keeps the descriptor open.
//!
//! # Marks: what may be reclaimed
//!
//! A lock nobody holds says only that no *locker* is alive; any other program's object under a
//! name (a database's, a freshly sized one whose bytes are still zero) holds no lock either. So a
//! reclaimer removes an abandoned object only when it is provably made by this protocol
//! ([`is_ours`], checked under the reclaimer's exclusive lock, on the locked descriptor):
//!
//! * it starts with one of the caller's eight-byte marks (the transport passes its ring or cursor
//!   magic, which its creator writes before it lifts the unfinished mark), or
//! * it still carries the **unfinished mark**: mode exactly [`UNFINISHED_MODE`] (`0400`) and
//!   owned by the reclaimer's effective uid. A creator makes the object with that mode in the
//!   same `O_CREAT|O_EXCL` call that creates it (the mark is there from the first instant the
//!   name exists; a umask can only clear bits, which makes the object look foreign — the safe
//!   side), sizes and initialises it, and only then sets its final mode ([`set_mode`]). A creator
//!   that dies anywhere before that leaves an object that is still ours by this mark, whether
//!   it was never sized, sized but zero, or half written.
//!
//! Why the mode and not the bytes alone: between the exclusive create and the first write there
//! are no bytes to mark, and a size-0 or all-zero object is exactly what another program's
//! creator leaves at the same stage. Why not another lock: a lock leaves no trace once its holder
//! dies. The mode is set atomically with the name, survives its creator, costs nothing, and
//! `0400` owned by oneself is not what other programs make their shared objects with (the owner
//! cannot even reopen it for writing); a foreign object that happens to look like that is the
//! documented residual risk. Another user's object never counts as ours.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{is_no_space, RegionError};

/// How many times [`claim_fresh`] retries the exclusive lock while a prober briefly holds a
/// shared lock on the fresh object.
const LOCK_ATTEMPTS: usize = 1000;

/// Claims ownership right after an `O_CREAT|O_EXCL` open: takes `flock(LOCK_EX|LOCK_NB)`, then
/// checks with `fstat` that the object still has a name (`st_nlink > 0`), since a concurrent
/// reclaimer may have unlinked the fresh object before we locked it.
///
/// Returns `Ok(true)` if we own it, `Ok(false)` if the caller must close the descriptor and retry
/// the exclusive create. A shared lock held by a prober is waited out for a bounded number of
/// attempts; after that the claim fails with `Ok(false)`.
pub fn claim_fresh(fd: BorrowedFd<'_>) -> io::Result<bool> {
    for _ in 0..LOCK_ATTEMPTS {
        match flock(fd, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => return Ok(fstat(fd)?.st_nlink > 0),
            Err(e) if is_would_block(&e) => std::thread::yield_now(),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Non-owner probe: is some descriptor still holding the owner's exclusive lock?
///
/// Takes `flock(LOCK_SH|LOCK_NB)`: success means no exclusive holder, so it unlocks and returns
/// `Ok(false)` (owner dead); `EWOULDBLOCK` returns `Ok(true)` (owner alive).
///
/// Never call this on the owner's own descriptor: `flock` on the same open file description
/// *converts* the owner's exclusive lock instead of conflicting with it.
pub fn owner_alive(fd: BorrowedFd<'_>) -> io::Result<bool> {
    match flock(fd, libc::LOCK_SH | libc::LOCK_NB) {
        Ok(()) => {
            flock(fd, libc::LOCK_UN)?;
            Ok(false)
        }
        Err(e) if is_would_block(&e) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Reclaimer: takes `flock(LOCK_EX|LOCK_NB)` on a descriptor of an existing object. `Ok(true)`:
/// no owner holds it (it is abandoned) and the caller now holds the lock until it closes the
/// descriptor; `Ok(false)`: someone holds a lock (a live owner, or briefly a prober).
pub fn lock_abandoned(fd: BorrowedFd<'_>) -> io::Result<bool> {
    match flock(fd, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => Ok(true),
        Err(e) if is_would_block(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Allocates all `len` bytes of the object behind `fd` up front, so that touching any page of a
/// mapping later can never raise `SIGBUS` for lack of space.
///
/// Uses `posix_fallocate`; `ENOSPC`/`EDQUOT`/`ENOMEM`/`EFBIG` give [`RegionError::NoSpace`]. If the
/// file system does not support it (`EOPNOTSUPP`/`EINVAL`), falls back to `ftruncate` and writing
/// one zero byte into every page with `pwrite`. `len` must be non-zero and fit in `off_t`.
pub fn allocate(fd: BorrowedFd<'_>, len: usize, name: &str) -> Result<(), RegionError> {
    let off_len = checked_off_len(len, name)?;
    loop {
        match posix_fallocate(fd, off_len) {
            0 => return Ok(()),
            libc::EINTR => continue,
            e if is_no_space(Some(e)) => {
                return Err(RegionError::NoSpace {
                    name: name.to_owned(),
                    requested: len,
                })
            }
            e if e == libc::EOPNOTSUPP || e == libc::ENOTSUP || e == libc::EINVAL => {
                return allocate_by_writing(fd, len, name)
            }
            e => {
                let source = io::Error::from_raw_os_error(e);
                return Err(RegionError::from_alloc_io(
                    "posix_fallocate",
                    name,
                    len,
                    source,
                ));
            }
        }
    }
}

/// `posix_fallocate(fd, 0, len)`; returns the error number (it does not set `errno`).
#[cfg(not(target_vendor = "apple"))]
fn posix_fallocate(fd: BorrowedFd<'_>, len: libc::off_t) -> libc::c_int {
    // SAFETY: plain library call on a descriptor the caller keeps open (BorrowedFd); no memory is
    // passed.
    unsafe { libc::posix_fallocate(fd.as_raw_fd(), 0, len) }
}

/// Apple platforms have no `posix_fallocate`: report "unsupported" so [`allocate`] writes pages.
#[cfg(target_vendor = "apple")]
fn posix_fallocate(_fd: BorrowedFd<'_>, _len: libc::off_t) -> libc::c_int {
    libc::EOPNOTSUPP
}

/// Fallback of [`allocate`]: `ftruncate` to `len`, then one zero byte written into every page so
/// that no page stays sparse.
pub(crate) fn allocate_by_writing(
    fd: BorrowedFd<'_>,
    len: usize,
    name: &str,
) -> Result<(), RegionError> {
    let off_len = checked_off_len(len, name)?;
    // SAFETY: plain syscall on a descriptor the caller keeps open; no memory is passed.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), off_len) } != 0 {
        let source = io::Error::last_os_error();
        return Err(RegionError::from_alloc_io("ftruncate", name, len, source));
    }
    for offset in (0..len).step_by(page_size()) {
        pwrite_zero_byte(fd, offset)
            .map_err(|source| RegionError::from_alloc_io("pwrite", name, len, source))?;
    }
    Ok(())
}

fn pwrite_zero_byte(fd: BorrowedFd<'_>, offset: usize) -> io::Result<()> {
    let zero = [0u8; 1];
    let offset =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    loop {
        // SAFETY: `zero` is a live 1-byte buffer for the duration of the call and we pass its
        // exact length; the descriptor is kept open by the caller.
        let n = unsafe { libc::pwrite(fd.as_raw_fd(), zero.as_ptr().cast(), 1, offset) };
        match n {
            1 => return Ok(()),
            0 => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// The mode a creator gives a fresh object until it has written its mark (see "Marks" above).
pub const UNFINISHED_MODE: u32 = 0o400;

/// Owner and permission bits of an object, from `fstat` on its descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectOwner {
    /// Owner uid (`st_uid`).
    pub uid: u32,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
}

/// The owner and mode of the object behind `fd`.
pub fn owner_of(fd: BorrowedFd<'_>) -> io::Result<ObjectOwner> {
    Ok(owner_from(&fstat(fd)?))
}

fn owner_from(st: &libc::stat) -> ObjectOwner {
    // `st_mode`'s integer type is platform-dependent (u16 on macOS); widen it.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let mode = u32::from(st.st_mode) & 0o7777;
    ObjectOwner {
        uid: st.st_uid,
        mode,
    }
}

/// This process's effective uid.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether the object behind `fd` still carries the unfinished mark of a creator running as
/// this process's effective user (see "Marks" above).
pub fn is_unfinished(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(unfinished(owner_of(fd)?))
}

fn unfinished(o: ObjectOwner) -> bool {
    o.mode == UNFINISHED_MODE && o.uid == effective_uid()
}

/// Whether the object behind `fd` is provably made by this protocol: it carries the unfinished
/// mark, or its first eight bytes are one of `marks` (see "Marks" above). Call it while holding
/// the exclusive lock ([`lock_abandoned`]), so that nobody finishes or rewrites it meanwhile.
pub fn is_ours(fd: BorrowedFd<'_>, marks: &[[u8; 8]]) -> io::Result<bool> {
    if is_unfinished(fd)? {
        return Ok(true);
    }
    let mut head = [0u8; 8];
    Ok(pread_head(fd, &mut head)? == head.len() && marks.contains(&head))
}

/// Reads up to `buf.len()` bytes from offset 0; returns how many (fewer at the end of file).
pub fn pread_head(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: `rest` is a live, writable buffer of `rest.len()` bytes for the duration of the
        // call; the descriptor is kept open by the caller.
        let n = unsafe {
            libc::pread(
                fd.as_raw_fd(),
                rest.as_mut_ptr().cast(),
                rest.len(),
                done as libc::off_t,
            )
        };
        match n {
            0 => break,
            n if n > 0 => done += n as usize,
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(done)
}

/// Sets the permission bits of the object behind `fd` (`fchmod`), whatever the umask.
pub fn set_mode(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor the caller keeps open; no memory is passed.
    if unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Checks a final mode a creator asks for: read and write for the owner, nothing beyond read and
/// write bits, and never writable by others (`o+w`): a ring anyone may write is anyone's.
pub fn check_final_mode(mode: u32) -> Result<(), &'static str> {
    if mode & !0o666 != 0 {
        Err("only read and write permission bits may be set")
    } else if mode & 0o600 != 0o600 {
        Err("the owner must keep read and write access")
    } else if mode & 0o002 != 0 {
        Err("a region writable by every user is refused")
    } else {
        Ok(())
    }
}

/// True if `path` currently names the same inode (`st_dev`, `st_ino`) as `fd`. A symbolic link at
/// `path` is not followed. Any error (missing path, failed `fstat`) gives `false`.
pub fn same_inode(fd: BorrowedFd<'_>, path: &Path) -> bool {
    let (Ok(ours), Ok(theirs)) = (fstat(fd), std::fs::symlink_metadata(path)) else {
        return false;
    };
    // `st_dev`/`st_ino` have platform-dependent integer types; widen both sides to u64.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let (dev, ino) = (ours.st_dev as u64, u64::from(ours.st_ino));
    dev == theirs.dev() && ino == theirs.ino()
}

/// Whether the object behind `fd` still has a name (its link count is not 0): `false` once it
/// was unlinked, even if the name now points to another object. An error counts as linked
/// (never taken for "removed").
pub fn is_linked(fd: BorrowedFd<'_>) -> bool {
    fstat(fd).map_or(true, |st| st.st_nlink > 0)
}

/// `fstat` of a borrowed descriptor.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` points to writable memory of the size of `struct stat`; the descriptor is kept
    // open by the caller.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat returned 0, so the kernel filled in the whole struct.
    Ok(unsafe { st.assume_init() })
}

/// The system page size in bytes.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf only reads a configuration value.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

fn checked_off_len(len: usize, name: &str) -> Result<libc::off_t, RegionError> {
    let invalid = |reason| RegionError::InvalidLength {
        name: name.to_owned(),
        len,
        reason,
    };
    if len == 0 {
        return Err(invalid("length must be non-zero"));
    }
    libc::off_t::try_from(len).map_err(|_| invalid("length does not fit in off_t"))
}

fn flock(fd: BorrowedFd<'_>, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: plain syscall on a descriptor the caller keeps open; no memory is passed.
        if unsafe { libc::flock(fd.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn is_would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, OpenOptions};
    use std::os::fd::AsFd;
    use std::path::PathBuf;

    /// A scratch file under the temp dir, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(tag: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("myelon-ownership-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_file(&path);
            Self(path)
        }
        fn open(&self) -> File {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.0)
                .expect("open scratch file")
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn claim_then_probe_from_another_description() {
        let tmp = TempFile::new("claim");
        let owner = tmp.open();
        assert!(claim_fresh(owner.as_fd()).unwrap());
        let other = tmp.open();
        assert!(owner_alive(other.as_fd()).unwrap(), "owner holds the lock");
        drop(owner);
        // Polled: a process forked by a concurrent test would hold a copy of the owner's
        // descriptor, and so the lock, until its exec.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while owner_alive(other.as_fd()).unwrap() {
            assert!(std::time::Instant::now() < deadline, "lock never released");
            std::thread::yield_now();
        }
        // The probe must not leave a lock behind: a new owner can still claim.
        let again = tmp.open();
        assert!(claim_fresh(again.as_fd()).unwrap());
    }

    #[test]
    fn claim_of_an_unlinked_object_fails() {
        let tmp = TempFile::new("unlinked");
        let file = tmp.open();
        std::fs::remove_file(&tmp.0).unwrap();
        assert!(!claim_fresh(file.as_fd()).unwrap());
    }

    #[test]
    fn claim_fails_while_another_owner_holds_the_lock() {
        let tmp = TempFile::new("contended");
        let first = tmp.open();
        assert!(claim_fresh(first.as_fd()).unwrap());
        let second = tmp.open();
        assert!(!claim_fresh(second.as_fd()).unwrap());
    }

    #[test]
    fn same_inode_tracks_the_name() {
        let tmp = TempFile::new("inode");
        let file = tmp.open();
        assert!(same_inode(file.as_fd(), &tmp.0));
        std::fs::remove_file(&tmp.0).unwrap();
        assert!(!same_inode(file.as_fd(), &tmp.0), "name gone");
        let _replacement = tmp.open();
        assert!(
            !same_inode(file.as_fd(), &tmp.0),
            "name points to a new inode"
        );
    }

    #[test]
    fn allocate_sets_length_and_blocks() {
        for (tag, use_fallback) in [("fallocate", false), ("fallback", true)] {
            let tmp = TempFile::new(tag);
            let file = tmp.open();
            let len = 3 * page_size() + 17;
            if use_fallback {
                allocate_by_writing(file.as_fd(), len, "scratch").unwrap();
            } else {
                allocate(file.as_fd(), len, "scratch").unwrap();
            }
            let meta = file.metadata().unwrap();
            assert_eq!(meta.len(), len as u64, "{tag}");
            // Every page is backed: allocated 512-byte blocks cover the whole length.
            assert!(
                meta.blocks() * 512 >= (len as u64 / page_size() as u64) * page_size() as u64,
                "{tag}: sparse"
            );
        }
    }

    #[test]
    fn allocate_rejects_zero_length() {
        let tmp = TempFile::new("zero");
        let file = tmp.open();
        let err = allocate(file.as_fd(), 0, "scratch").unwrap_err();
        assert!(
            matches!(err, RegionError::InvalidLength { len: 0, .. }),
            "{err:?}"
        );
    }
}
