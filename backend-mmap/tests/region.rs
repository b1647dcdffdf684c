//! Behaviour of `FileRegion`, `remove` and `list` against real files.

// The re-exec / guard / polling helpers are shared with backend-shm's integration tests.
#[path = "../../backend-shm/tests/common/mod.rs"]
mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;
use myelon_backend_mmap::{list, remove, FileRegion, RegionError};

const LEN: usize = 64 * 1024;

/// A fresh directory unique to this test, removed with everything in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(&unique_name(tag)[1..]);
        fs::create_dir(&dir).unwrap();
        Self(dir)
    }

    fn join(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn write_bytes(region: &FileRegion, offset: usize, data: &[u8]) {
    assert!(offset + data.len() <= region.len());
    for (i, &b) in data.iter().enumerate() {
        // SAFETY: offset + i < len (asserted above) and the mapping lives as long as `region`.
        unsafe { region.as_ptr().add(offset + i).write_volatile(b) };
    }
}

fn read_bytes(region: &FileRegion, offset: usize, n: usize) -> Vec<u8> {
    assert!(offset + n <= region.len());
    // SAFETY: offset + i < len (asserted above) and the mapping lives as long as `region`.
    (0..n)
        .map(|i| unsafe { region.as_ptr().add(offset + i).read_volatile() })
        .collect()
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn create_then_open_share_memory() {
    let dir = TempDir::new("share");
    let path = dir.join("region");
    let owner = FileRegion::create(&path, LEN).unwrap();
    assert!(owner.is_owner());
    assert_eq!(owner.len(), LEN);
    assert!(!owner.is_empty());
    assert_eq!(owner.path(), path);
    assert_eq!(owner.as_ptr() as usize % 4096, 0, "page aligned");
    assert_eq!(fs::metadata(&path).unwrap().len(), LEN as u64);
    assert!(
        read_bytes(&owner, 0, LEN).iter().all(|&b| b == 0),
        "zero filled"
    );

    write_bytes(&owner, 3, b"from owner");
    let other = FileRegion::open(&path).unwrap();
    assert!(!other.is_owner());
    assert_eq!(other.len(), LEN);
    assert_eq!(read_bytes(&other, 3, 10), b"from owner");
    write_bytes(&other, LEN - 4, b"back");
    assert_eq!(read_bytes(&owner, LEN - 4, 4), b"back");
}

#[test]
fn existing_file_is_never_truncated() {
    let dir = TempDir::new("existing");
    let path = dir.join("data");
    fs::write(&path, b"precious").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    match FileRegion::create(&path, LEN) {
        Err(RegionError::AlreadyExists { .. }) => {}
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(
        fs::read(&path).unwrap(),
        b"precious",
        "contents and length unchanged"
    );
    assert_eq!(mode_of(&path), 0o644, "mode unchanged");
    // A second region at an existing region's path is refused the same way.
    let region_path = dir.join("region");
    let first = FileRegion::create(&region_path, LEN).unwrap();
    assert!(matches!(
        FileRegion::create(&region_path, 2 * LEN),
        Err(RegionError::AlreadyExists { .. })
    ));
    assert_eq!(fs::metadata(&region_path).unwrap().len(), LEN as u64);
    drop(first);
}

#[test]
fn symlinks_are_not_followed() {
    let dir = TempDir::new("symlink");
    let target = dir.join("target");
    fs::write(&target, b"target!").unwrap();
    let link = dir.join("link");
    symlink(&target, &link).unwrap();
    assert!(matches!(
        FileRegion::create(&link, LEN),
        Err(RegionError::AlreadyExists { .. } | RegionError::Symlink { .. })
    ));
    assert!(matches!(
        FileRegion::open(&link),
        Err(RegionError::Symlink { .. })
    ));
    assert_eq!(fs::read(&target).unwrap(), b"target!", "target untouched");

    // A dangling link must not make create produce its target.
    let missing = dir.join("missing-target");
    let dangling = dir.join("dangling");
    symlink(&missing, &dangling).unwrap();
    assert!(FileRegion::create(&dangling, LEN).is_err());
    assert!(!missing.exists(), "create followed a dangling symlink");
    assert!(fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn missing_paths_are_not_found() {
    let dir = TempDir::new("missing");
    let path = dir.join("nothing");
    assert!(matches!(
        FileRegion::open(&path),
        Err(RegionError::NotFound { .. })
    ));
    assert!(matches!(remove(&path), Err(RegionError::NotFound { .. })));
    let in_missing_dir = dir.join("no-such-dir").join("region");
    assert!(matches!(
        FileRegion::create(&in_missing_dir, LEN),
        Err(RegionError::NotFound { .. })
    ));
}

#[test]
fn zero_length_create_fails_and_leaves_nothing() {
    let dir = TempDir::new("zero");
    let path = dir.join("region");
    let err = FileRegion::create(&path, 0).unwrap_err();
    assert!(
        matches!(err, RegionError::InvalidLength { len: 0, .. }),
        "{err:?}"
    );
    assert!(fs::symlink_metadata(&path).is_err());
}

#[test]
fn open_of_an_empty_file_is_empty() {
    let dir = TempDir::new("empty");
    let path = dir.join("region");
    fs::File::create(&path).unwrap();
    assert!(matches!(
        FileRegion::open(&path),
        Err(RegionError::Empty { .. })
    ));
}

#[test]
fn owner_drop_removes_but_non_owner_drop_does_not() {
    let dir = TempDir::new("drop");
    let path = dir.join("region");
    let owner = FileRegion::create(&path, LEN).unwrap();
    drop(FileRegion::open(&path).unwrap());
    assert!(path.exists(), "non-owner drop must not remove");
    let survivor = FileRegion::open(&path).unwrap();
    drop(owner);
    assert!(!path.exists(), "owner drop removes");
    write_bytes(&survivor, 0, b"still mapped");
    assert_eq!(read_bytes(&survivor, 0, 12), b"still mapped");
}

#[test]
fn owner_drop_spares_a_file_recreated_at_its_path() {
    let dir = TempDir::new("recreated");
    let path = dir.join("region");
    let old_owner = FileRegion::create(&path, LEN).unwrap();
    remove(&path).unwrap();
    let new_owner = FileRegion::create(&path, 2 * LEN).unwrap();
    write_bytes(&new_owner, 0, b"new");
    drop(old_owner);
    let reopened = FileRegion::open(&path).expect("the new file must survive the old owner's drop");
    assert_eq!(reopened.len(), 2 * LEN);
    assert_eq!(read_bytes(&reopened, 0, 3), b"new");
    drop(reopened);
    drop(new_owner);
    assert!(!path.exists());
}

#[test]
fn list_shows_regular_files_only() {
    let dir = TempDir::new("list");
    assert!(list(&dir.join("no-such-dir")).unwrap().is_empty());
    assert!(list(&dir.0).unwrap().is_empty());
    let region = FileRegion::create(&dir.join("b-region"), LEN).unwrap();
    fs::write(dir.join("a-plain"), b"x").unwrap();
    fs::create_dir(dir.join("subdir")).unwrap();
    symlink(dir.join("a-plain"), dir.join("c-link")).unwrap();
    assert_eq!(
        list(&dir.0).unwrap(),
        vec![dir.join("a-plain"), dir.join("b-region")]
    );
    drop(region);
    assert_eq!(list(&dir.0).unwrap(), vec![dir.join("a-plain")]);
}

#[test]
fn owner_alive_within_one_process() {
    let dir = TempDir::new("alive");
    let path = dir.join("region");
    let owner = FileRegion::create(&path, LEN).unwrap();
    let other = FileRegion::open(&path).unwrap();
    assert!(owner.owner_alive().unwrap());
    assert!(other.owner_alive().unwrap());
    assert!(
        other.owner_alive().unwrap(),
        "probing does not disturb the owner's lock"
    );
    drop(owner);
    // Eventually, not at once: a child being spawned by a concurrent test holds a copy of every
    // descriptor (and so the lock) between its fork and its exec.
    poll_until(
        DEADLINE,
        "owner_alive() == false after the owner's drop",
        || !other.owner_alive().unwrap(),
    );
}

#[test]
fn mode_is_0600_whatever_the_umask() {
    const TEST: &str = "mode_is_0600_whatever_the_umask";
    if role().as_deref() == Some("umask") {
        let dir = PathBuf::from(child_arg());
        for mask in [0o000, 0o022, 0o777] {
            let path = dir.join(format!("region-{mask:o}"));
            // SAFETY: umask only swaps the process's file-mode mask; this child runs one test.
            unsafe { libc::umask(mask) };
            let region = FileRegion::create(&path, LEN).unwrap();
            assert_eq!(mode_of(&path), 0o600, "umask {mask:o}");
            drop(region);
        }
        println!("{}", child_ok_marker("umask"));
        return;
    }
    let dir = TempDir::new("umask");
    let out = child_command(TEST, "umask", dir.0.to_str().unwrap())
        .output()
        .unwrap();
    assert_child_ok(&out, "umask");
}

#[test]
fn owner_alive_follows_a_killed_owner_process() {
    const TEST: &str = "owner_alive_follows_a_killed_owner_process";
    if role().as_deref() == Some("owner") {
        let region = FileRegion::create(Path::new(&child_arg()), LEN).unwrap();
        write_bytes(&region, 0, b"owned");
        println!("ready");
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        println!("{}", child_ok_marker("owner"));
        return;
    }
    let dir = TempDir::new("killed");
    let path = dir.join("region");
    let mut cmd = child_command(TEST, "owner", path.to_str().unwrap());
    cmd.command().stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn child");
    wait_for_line(child.child().stdout.take().unwrap(), "ready", DEADLINE);

    let region = FileRegion::open(&path).unwrap();
    assert_eq!(read_bytes(&region, 0, 5), b"owned");
    assert!(region.owner_alive().unwrap(), "owner process is running");
    child.child().kill().unwrap();
    child.child().wait().unwrap();
    poll_until(DEADLINE, "owner_alive() == false", || {
        !region.owner_alive().unwrap()
    });
    assert!(path.exists(), "a killed owner leaves its file behind");
}

#[test]
fn create_on_a_full_tmpfs_is_no_space() {
    const TEST: &str = "create_on_a_full_tmpfs_is_no_space";
    const HUGE: usize = 4 * 1024 * 1024;
    if role().as_deref() == Some("full") {
        // Child, in a private mount namespace with a 1 MiB tmpfs over the parent's directory.
        let dir = PathBuf::from(child_arg());
        assert!(
            list(&dir).unwrap().is_empty(),
            "not the fresh tmpfs (the parent's marker is visible)"
        );
        let small = FileRegion::create(&dir.join("fits"), LEN).unwrap();
        write_bytes(&small, LEN - 1, &[1]);
        drop(small);
        match FileRegion::create(&dir.join("too-big"), HUGE) {
            Err(RegionError::NoSpace { requested, .. }) => assert_eq!(requested, HUGE),
            other => panic!("expected NoSpace, got {other:?}"),
        }
        let left: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        println!("{}", child_ok_marker("full"));
        return;
    }
    if let Some(reason) = mount_namespace_skip_reason() {
        println!("SKIPPED {TEST}: {reason}");
        return;
    }
    let dir = TempDir::new("full");
    fs::write(dir.join("marker"), b"hidden by the tmpfs").unwrap();
    let mount = format!("mount -t tmpfs -o size=1m tmpfs \"${ARG_VAR}\"");
    let out = in_mount_namespace(&mount, TEST, "full", dir.0.to_str().unwrap())
        .output()
        .unwrap();
    assert_child_ok(&out, "full");
    assert_eq!(
        list(&dir.0).unwrap(),
        vec![dir.join("marker")],
        "the host directory is untouched"
    );
}
