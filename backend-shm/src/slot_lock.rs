//! Kernel-released lock slots: proof of life for the holders of a region's entries.
//!
//! A *lock slot* is one byte of an object's lock space, locked with an open-file-description
//! lock (`fcntl(F_OFD_SETLK)`, Linux ≥ 3.15). Such a lock belongs to the open file description,
//! not to a pid: the kernel drops it when the last descriptor of that description closes —
//! whatever way its process ends, SIGKILL included — and it means the same in every PID
//! namespace and container that shares the object. So "nobody holds slot `n`" is proof that
//! whoever held it is gone (or let go), and "someone holds it" is proof that the holder lives;
//! no `/proc` lookup, no pid reuse, no guess.
//!
//! Slots are byte offsets in the lock space only; they need not lie inside the object's data
//! (POSIX allows locking past the end of a file), and they never touch its bytes. They are
//! independent of the owner's `flock` ([`crate::ownership`]): the two kinds of lock do not
//! interact on Linux.
//!
//! Semantics a caller must keep in mind:
//!
//! * A lock is per open file description: two handles of one process that opened the object
//!   separately conflict like two processes do, while a probe through the very description that
//!   holds the lock sees no conflict (ask through another handle).
//! * A `fork` without `exec` shares the description, so a child keeps its parent's slots held
//!   while it lives (as for the owner lock).
//! * Probing ([`slot_held`]) needs no write access: it works on a read-only descriptor.
//!
//! On other platforms every call fails with `Unsupported`: callers treat that as "unknown",
//! which is never "dead".

use std::io;
use std::os::fd::BorrowedFd;

/// Takes a **shared** lock on every slot of `ranges` through `fd`'s open file description,
/// without waiting, and keeps them (until they are unlocked or the description closes).
/// `Ok(true)`: all of them are held now; `Ok(false)`: another description holds one of them
/// (the exclusive lock of [`try_lock_slot`]); those taken before it stay held until the
/// description closes. While `fd` holds them, nobody else can take any of those slots with
/// [`try_lock_slot`]. Works on a read-only descriptor.
///
/// A reclaimer uses it to exclude, for the time of a removal, the processes whose slots
/// prove they use the object, and the ones about to register (see
/// [`crate::remove_if_abandoned`]).
pub fn try_share_ranges(fd: BorrowedFd<'_>, ranges: &[std::ops::Range<u64>]) -> io::Result<bool> {
    for r in ranges.iter().filter(|r| r.start < r.end) {
        if !imp::share(fd, r.start, r.end - r.start)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Takes the exclusive lock on `slot` through `fd`'s open file description, without waiting.
/// `Ok(true)`: held now (also if this description held it already); `Ok(false)`: another
/// description holds it. `fd` must be open for writing.
pub fn try_lock_slot(fd: BorrowedFd<'_>, slot: u64) -> io::Result<bool> {
    imp::set(fd, slot, true)
}

/// Releases `slot` if `fd`'s open file description holds it (a no-op otherwise).
pub fn unlock_slot(fd: BorrowedFd<'_>, slot: u64) -> io::Result<()> {
    imp::set(fd, slot, false).map(|_| ())
}

/// Whether an open file description other than `fd`'s holds `slot`.
pub fn slot_held(fd: BorrowedFd<'_>, slot: u64) -> io::Result<bool> {
    imp::held(fd, slot)
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use std::os::fd::AsRawFd;

    fn flock_of(slot: u64, kind: libc::c_int) -> io::Result<libc::flock> {
        flock_range(slot, 1, kind)
    }

    fn flock_range(slot: u64, len: u64, kind: libc::c_int) -> io::Result<libc::flock> {
        let start = libc::off_t::try_from(slot)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "lock slot beyond off_t"))?;
        // SAFETY: `flock` is a plain C struct of integers; all-zero is a valid value (and OFD
        // locks require `l_pid == 0`).
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = start;
        fl.l_len = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "lock range beyond off_t"))?;
        Ok(fl)
    }

    fn fcntl(fd: BorrowedFd<'_>, cmd: libc::c_int, fl: &mut libc::flock) -> io::Result<()> {
        loop {
            // SAFETY: `fl` is a valid, exclusively borrowed `struct flock` for the duration of
            // the call, as F_OFD_SETLK/F_OFD_GETLK require; the descriptor is kept open by the
            // caller's borrow.
            if unsafe { libc::fcntl(fd.as_raw_fd(), cmd, fl as *mut libc::flock) } == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    pub(super) fn set(fd: BorrowedFd<'_>, slot: u64, lock: bool) -> io::Result<bool> {
        let kind = if lock { libc::F_WRLCK } else { libc::F_UNLCK };
        let mut fl = flock_of(slot, kind)?;
        match fcntl(fd, libc::F_OFD_SETLK, &mut fl) {
            Ok(()) => Ok(true),
            Err(e)
                if lock && matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn share(fd: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<bool> {
        let mut fl = flock_range(start, len, libc::F_RDLCK)?;
        match fcntl(fd, libc::F_OFD_SETLK, &mut fl) {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn held(fd: BorrowedFd<'_>, slot: u64) -> io::Result<bool> {
        let mut fl = flock_of(slot, libc::F_WRLCK)?;
        fcntl(fd, libc::F_OFD_GETLK, &mut fl)?;
        Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "open-file-description locks need Linux",
        )
    }
    pub(super) fn set(_fd: BorrowedFd<'_>, _slot: u64, _lock: bool) -> io::Result<bool> {
        Err(unsupported())
    }
    pub(super) fn held(_fd: BorrowedFd<'_>, _slot: u64) -> io::Result<bool> {
        Err(unsupported())
    }
    pub(super) fn share(_fd: BorrowedFd<'_>, _start: u64, _len: u64) -> io::Result<bool> {
        Err(unsupported())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::fs::{File, OpenOptions};
    use std::os::fd::AsFd;
    use std::path::PathBuf;

    struct TempFile(PathBuf);
    impl TempFile {
        fn new(tag: &str) -> Self {
            let p =
                std::env::temp_dir().join(format!("myelon-slot-lock-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_file(&p);
            File::create(&p).expect("create");
            TempFile(p)
        }
        fn open(&self, write: bool) -> File {
            OpenOptions::new()
                .read(true)
                .write(write)
                .open(&self.0)
                .expect("open")
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn a_slot_is_held_per_open_file_description() {
        let t = TempFile::new("desc");
        let a = t.open(true);
        let b = t.open(true);
        let probe = t.open(false);
        assert!(!slot_held(probe.as_fd(), 3).unwrap());
        assert!(try_lock_slot(a.as_fd(), 3).unwrap());
        assert!(
            try_lock_slot(a.as_fd(), 3).unwrap(),
            "re-locking one's own slot"
        );
        assert!(!try_lock_slot(b.as_fd(), 3).unwrap(), "another description");
        assert!(
            slot_held(probe.as_fd(), 3).unwrap(),
            "a read-only probe sees it"
        );
        assert!(slot_held(b.as_fd(), 3).unwrap());
        assert!(
            !slot_held(a.as_fd(), 3).unwrap(),
            "no conflict with oneself"
        );
        assert!(
            !slot_held(probe.as_fd(), 4).unwrap(),
            "slots are independent"
        );
        assert!(try_lock_slot(b.as_fd(), 4).unwrap());
        unlock_slot(a.as_fd(), 3).unwrap();
        assert!(!slot_held(probe.as_fd(), 3).unwrap());
        assert!(try_lock_slot(b.as_fd(), 3).unwrap());
    }

    #[test]
    fn shared_ranges_exclude_the_slot_locks_both_ways() {
        let t = TempFile::new("share");
        let a = t.open(true);
        let reclaimer = t.open(false);
        let late = t.open(true);
        assert!(try_lock_slot(a.as_fd(), 5).unwrap());
        assert!(
            !try_share_ranges(reclaimer.as_fd(), &[0..1, 4..8]).unwrap(),
            "a held slot inside a range refuses the share"
        );
        assert!(
            try_share_ranges(reclaimer.as_fd(), &[0..1, 6..8, 9..9]).unwrap(),
            "ranges around it are free (and an empty range is nothing)"
        );
        assert!(
            !try_lock_slot(late.as_fd(), 0).unwrap(),
            "shared: nobody locks it"
        );
        assert!(!try_lock_slot(late.as_fd(), 7).unwrap());
        assert!(
            try_lock_slot(late.as_fd(), 8).unwrap(),
            "outside the ranges"
        );
        drop(reclaimer);
        assert!(
            try_lock_slot(late.as_fd(), 0).unwrap(),
            "released with the description"
        );
        assert!(try_lock_slot(late.as_fd(), 7).unwrap());
    }

    #[test]
    fn closing_the_description_releases_its_slots() {
        let t = TempFile::new("close");
        let probe = t.open(false);
        {
            let a = t.open(true);
            assert!(try_lock_slot(a.as_fd(), 1 << 40).unwrap(), "past the end");
            assert!(slot_held(probe.as_fd(), 1 << 40).unwrap());
        }
        assert!(!slot_held(probe.as_fd(), 1 << 40).unwrap());
    }
}
