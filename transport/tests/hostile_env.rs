//! Hostile and foreign environments (issue 10): objects under a ring's name that are not ours,
//! and the owner and mode checks of attach.
//!
//! Every name is unique per test and unlinked by a guard when the test ends, passed or failed.

mod common;

use common::Event;
use myelon::backend::BackendError;
use myelon::{build_mmap_single_producer, build_shared_single_producer, MultiProcessError};
use myelon_test_support::ShmGuard;
use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// Foreign objects under the name: never reclaimed
// ---------------------------------------------------------------------------------------------

fn shm_path(name: &str) -> PathBuf {
    Path::new("/dev/shm").join(name)
}

/// Creates `name` the way another program would: `shm_open(O_CREAT|O_EXCL, mode)`, sized to
/// `len` (its bytes zero), `head` written at offset 0. Nobody holds a lock on it.
fn foreign_shm(name: &str, mode: libc::mode_t, len: usize, head: &[u8]) {
    let c = CString::new(format!("/{name}")).expect("no NUL");
    let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::shm_open(c.as_ptr(), flags, mode) };
    assert!(fd >= 0, "shm_open: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is the descriptor just returned; no memory is passed.
    assert_eq!(unsafe { libc::fchmod(fd, mode) }, 0);
    if len > 0 {
        // SAFETY: as above.
        assert_eq!(unsafe { libc::ftruncate(fd, len as libc::off_t) }, 0);
    }
    if !head.is_empty() {
        // SAFETY: `head` is a live buffer of `head.len()` bytes for the duration of the call.
        let n = unsafe { libc::pwrite(fd, head.as_ptr().cast(), head.len(), 0) };
        assert_eq!(n, head.len() as isize);
    }
    // SAFETY: `fd` is ours and closed exactly once.
    unsafe { libc::close(fd) };
}

/// Identity and contents of a file, to prove it was left intact.
fn fingerprint(path: &Path) -> (u64, u64, Vec<u8>) {
    let meta = std::fs::symlink_metadata(path).expect("the foreign object is still there");
    (meta.ino(), meta.len(), std::fs::read(path).expect("read"))
}

fn assert_foreign<T: std::fmt::Debug>(r: Result<T, MultiProcessError>, what: &str) {
    match r {
        Err(MultiProcessError::Backend(BackendError::ForeignObject { .. })) => {}
        other => panic!("{what}: expected Backend(ForeignObject), got {other:?}"),
    }
}

/// Shapes of foreign objects: (what, mode, length, first bytes).
const FOREIGN: [(&str, libc::mode_t, usize, &[u8]); 4] = [
    ("freshly sized, zero bytes", 0o600, 8192, b""),
    ("another program's bytes", 0o600, 8192, b"SQLite format 3\0"),
    ("not yet sized", 0o600, 0, b""),
    ("zero bytes, group readable", 0o640, 1 << 20, b""),
];

#[test]
fn foreign_shm_objects_are_never_reclaimed() {
    for (what, mode, len, head) in FOREIGN {
        let g = ShmGuard::new("foreign");
        foreign_shm(g.name(), mode, len, head);
        let before = fingerprint(&shm_path(g.name()));
        let r = build_shared_single_producer::<Event>(g.name(), 64).build_producer(Event::default);
        assert_foreign(r, what);
        assert_eq!(fingerprint(&shm_path(g.name())), before, "{what}: touched");
    }
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(myelon_test_support::unique_name(tag));
        std::fs::create_dir_all(&p).expect("mkdir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn foreign_files_are_never_reclaimed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("foreign-mmap");
    for (i, (what, mode, len, head)) in FOREIGN.into_iter().enumerate() {
        let path = dir.0.join(format!("ring-{i}"));
        let mut bytes = vec![0u8; len];
        bytes[..head.len()].copy_from_slice(head);
        std::fs::write(&path, &bytes).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let before = fingerprint(&path);
        let r = build_mmap_single_producer::<Event>(&path, 64).build_producer(Event::default);
        assert_foreign(r, what);
        assert_eq!(fingerprint(&path), before, "{what}: touched");
    }
}

/// What a myelon creator killed before it finished leaves: the unfinished mark (mode `0400`,
/// our user), unsized or sized with zero bytes, nobody holding its lock. It is reclaimed.
const UNFINISHED: [(&str, usize); 2] = [("never sized", 0), ("sized, zero bytes", 8192)];

#[test]
fn an_unfinished_myelon_shm_object_is_reclaimed() {
    for (what, len) in UNFINISHED {
        let g = ShmGuard::new("unfinished");
        foreign_shm(g.name(), 0o400, len, b"");
        let r = build_shared_single_producer::<Event>(g.name(), 64).build_producer(Event::default);
        assert!(r.is_ok(), "{what}: {:?}", r.err());
    }
}

#[test]
fn an_unfinished_myelon_file_is_reclaimed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("unfinished-mmap");
    for (i, (what, len)) in UNFINISHED.into_iter().enumerate() {
        let path = dir.0.join(format!("ring-{i}"));
        std::fs::write(&path, vec![0u8; len]).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        let r = build_mmap_single_producer::<Event>(&path, 64).build_producer(Event::default);
        assert!(r.is_ok(), "{what}: {:?}", r.err());
    }
}
