//! Behaviour of `ShmSegment`, `unlink` and `list` against the real `/dev/shm`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use common::*;
use myelon_backend_shm::{list, unlink, RegionError, ShmSegment};

const LEN: usize = 64 * 1024;

/// Copies `data` into the mapping at `offset` with volatile writes (the same pages may be mapped
/// at other addresses, so no Rust reference is formed over them).
fn write_bytes(seg: &ShmSegment, offset: usize, data: &[u8]) {
    assert!(offset + data.len() <= seg.len());
    for (i, &b) in data.iter().enumerate() {
        // SAFETY: offset + i < len (asserted above) and the mapping lives as long as `seg`.
        unsafe { seg.as_ptr().add(offset + i).write_volatile(b) };
    }
}

/// Reads `n` bytes of the mapping at `offset` with volatile reads.
fn read_bytes(seg: &ShmSegment, offset: usize, n: usize) -> Vec<u8> {
    assert!(offset + n <= seg.len());
    // SAFETY: offset + i < len (asserted above) and the mapping lives as long as `seg`.
    (0..n)
        .map(|i| unsafe { seg.as_ptr().add(offset + i).read_volatile() })
        .collect()
}

fn dev_shm_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new("/dev/shm").join(&name[1..])
}

fn is_listed(name: &str) -> bool {
    list().unwrap().iter().any(|n| n == name)
}

#[test]
fn create_then_open_share_memory() {
    let name = unique_name("share");
    let _guard = ShmGuard(name.clone());
    let owner = ShmSegment::create(&name, LEN).unwrap();
    assert!(owner.is_owner());
    assert_eq!(owner.len(), LEN);
    assert!(!owner.is_empty());
    assert_eq!(owner.os_name(), name);
    assert_eq!(owner.as_ptr() as usize % 4096, 0, "page aligned");
    assert!(
        read_bytes(&owner, 0, LEN).iter().all(|&b| b == 0),
        "zero filled"
    );

    write_bytes(&owner, 10, b"from owner");
    let other = ShmSegment::open(&name).unwrap();
    assert!(!other.is_owner());
    assert_eq!(other.len(), LEN);
    assert_ne!(other.as_ptr(), owner.as_ptr(), "a second, distinct mapping");
    assert_eq!(read_bytes(&other, 10, 10), b"from owner");

    write_bytes(&other, LEN - 5, b"back!");
    assert_eq!(read_bytes(&owner, LEN - 5, 5), b"back!");
}

#[test]
fn second_create_is_already_exists_and_leaves_the_first_intact() {
    let name = unique_name("twice");
    let _guard = ShmGuard(name.clone());
    let first = ShmSegment::create(&name, LEN).unwrap();
    write_bytes(&first, 0, b"keep");
    match ShmSegment::create(&name, 2 * LEN) {
        Err(RegionError::AlreadyExists { name: got }) => assert_eq!(got, name),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    let reopened = ShmSegment::open(&name).unwrap();
    assert_eq!(reopened.len(), LEN, "length untouched");
    assert_eq!(read_bytes(&reopened, 0, 4), b"keep", "contents untouched");
}

#[test]
fn open_and_unlink_of_a_missing_name_are_not_found() {
    let name = unique_name("missing");
    assert!(matches!(
        ShmSegment::open(&name),
        Err(RegionError::NotFound { .. })
    ));
    assert!(matches!(unlink(&name), Err(RegionError::NotFound { .. })));
}

#[test]
fn bad_names_are_invalid_everywhere() {
    let too_long = format!("/{}", "x".repeat(300));
    for name in [
        "",
        "noslash",
        "/",
        "/a/b",
        "/.",
        "/..",
        "/nul\0byte",
        too_long.as_str(),
    ] {
        let check = |what: &str, r: Result<(), RegionError>| {
            assert!(
                matches!(r, Err(RegionError::InvalidName { .. })),
                "{what}({name:?}): {r:?}"
            );
        };
        check("create", ShmSegment::create(name, LEN).map(drop));
        check("open", ShmSegment::open(name).map(drop));
        check("unlink", unlink(name));
    }
}

#[test]
fn zero_length_create_fails_and_leaves_nothing() {
    let name = unique_name("zero");
    let _guard = ShmGuard(name.clone());
    let err = ShmSegment::create(&name, 0).unwrap_err();
    assert!(
        matches!(err, RegionError::InvalidLength { len: 0, .. }),
        "{err:?}"
    );
    assert!(!is_listed(&name));
}

#[test]
fn open_of_an_unallocated_object_is_empty() {
    let name = unique_name("empty");
    let _guard = ShmGuard(name.clone());
    // A creator that has not allocated yet leaves a zero-length object.
    fs::File::create(dev_shm_path(&name)).unwrap();
    assert!(matches!(
        ShmSegment::open(&name),
        Err(RegionError::Empty { .. })
    ));
}

#[test]
fn symlinks_are_not_followed() {
    let target = unique_name("target");
    let link = unique_name("link");
    let _guards = (ShmGuard(target.clone()), ShmGuard(link.clone()));
    let real = ShmSegment::create(&target, LEN).unwrap();
    std::os::unix::fs::symlink(dev_shm_path(&target), dev_shm_path(&link)).unwrap();
    assert!(matches!(
        ShmSegment::open(&link),
        Err(RegionError::Symlink { .. })
    ));
    assert!(matches!(
        ShmSegment::create(&link, LEN),
        Err(RegionError::AlreadyExists { .. })
    ));
    assert!(!is_listed(&link), "list() skips symlinks");
    assert_eq!(real.len(), LEN);
}

#[test]
fn owner_drop_unlinks_but_non_owner_drop_does_not() {
    let name = unique_name("drop");
    let _guard = ShmGuard(name.clone());
    let owner = ShmSegment::create(&name, LEN).unwrap();
    assert!(is_listed(&name));
    drop(ShmSegment::open(&name).unwrap());
    assert!(is_listed(&name), "non-owner drop must not unlink");
    let survivor = ShmSegment::open(&name).unwrap();
    drop(owner);
    assert!(!is_listed(&name), "owner drop unlinks");
    assert!(matches!(
        ShmSegment::open(&name),
        Err(RegionError::NotFound { .. })
    ));
    write_bytes(&survivor, 0, b"still mapped");
    assert_eq!(read_bytes(&survivor, 0, 12), b"still mapped");
}

#[test]
fn owner_drop_spares_an_object_recreated_under_its_name() {
    let name = unique_name("recreated");
    let _guard = ShmGuard(name.clone());
    let old_owner = ShmSegment::create(&name, LEN).unwrap();
    unlink(&name).unwrap();
    let new_owner = ShmSegment::create(&name, 2 * LEN).unwrap();
    write_bytes(&new_owner, 0, b"new");
    drop(old_owner);
    let reopened =
        ShmSegment::open(&name).expect("the new object must survive the old owner's drop");
    assert_eq!(reopened.len(), 2 * LEN);
    assert_eq!(read_bytes(&reopened, 0, 3), b"new");
    drop(reopened);
    drop(new_owner);
    assert!(!is_listed(&name));
}

#[test]
fn list_shows_live_segments_with_a_leading_slash() {
    let name = unique_name("listed");
    let _guard = ShmGuard(name.clone());
    assert!(!is_listed(&name));
    let seg = ShmSegment::create(&name, LEN).unwrap();
    assert!(is_listed(&name));
    assert!(list()
        .unwrap()
        .iter()
        .all(|n| n.starts_with('/') && !n.starts_with("/sem.")));
    drop(seg);
    assert!(!is_listed(&name));
}

#[test]
fn owner_alive_within_one_process() {
    let name = unique_name("alive");
    let _guard = ShmGuard(name.clone());
    let owner = ShmSegment::create(&name, LEN).unwrap();
    let other = ShmSegment::open(&name).unwrap();
    assert!(owner.owner_alive().unwrap());
    assert!(other.owner_alive().unwrap(), "owner's lock is held");
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
        // Child: the process-wide umask change cannot race the parent's other tests.
        for (i, mask) in [0o000, 0o022, 0o777].into_iter().enumerate() {
            let name = format!("{}-{i}", child_arg());
            let _guard = ShmGuard(name.clone());
            // SAFETY: umask only swaps the process's file-mode mask.
            unsafe { libc::umask(mask) };
            let seg = ShmSegment::create(&name, LEN).unwrap();
            let mode = fs::metadata(dev_shm_path(&name))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777;
            assert_eq!(mode, 0o600, "umask {mask:o}");
            drop(seg);
        }
        println!("{}", child_ok_marker("umask"));
        return;
    }
    let name = unique_name("umask");
    let _guards: Vec<_> = (0..3).map(|i| ShmGuard(format!("{name}-{i}"))).collect();
    let out = child_command(TEST, "umask", &name).output().unwrap();
    assert_child_ok(&out, "umask");
}

#[test]
fn owner_alive_follows_a_killed_owner_process() {
    const TEST: &str = "owner_alive_follows_a_killed_owner_process";
    if role().as_deref() == Some("owner") {
        let seg = ShmSegment::create(&child_arg(), LEN).unwrap();
        write_bytes(&seg, 0, b"owned");
        println!("ready");
        // Block until the parent kills us (or closes stdin, if the parent itself fails).
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        println!("{}", child_ok_marker("owner"));
        return;
    }
    let name = unique_name("killed");
    let _guard = ShmGuard(name.clone());
    let mut cmd = child_command(TEST, "owner", &name);
    cmd.command().stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn child");
    wait_for_line(child.child().stdout.take().unwrap(), "ready", DEADLINE);

    let seg = ShmSegment::open(&name).unwrap();
    assert_eq!(read_bytes(&seg, 0, 5), b"owned");
    assert!(!seg.is_owner());
    assert!(seg.owner_alive().unwrap(), "owner process is running");

    child.child().kill().unwrap();
    child.child().wait().unwrap();
    poll_until(DEADLINE, "owner_alive() == false", || {
        !seg.owner_alive().unwrap()
    });
    assert!(is_listed(&name), "a killed owner leaves its object behind");
    // The guard removes it.
}

#[test]
fn create_on_a_full_dev_shm_is_no_space() {
    const TEST: &str = "create_on_a_full_dev_shm_is_no_space";
    const HUGE: usize = 4 * 1024 * 1024;
    if role().as_deref() == Some("full") {
        // Child, in a private mount namespace with a 1 MiB tmpfs on /dev/shm.
        assert!(list().unwrap().is_empty(), "not the fresh tmpfs");
        let small = ShmSegment::create("/myelon-fits", LEN).unwrap();
        write_bytes(&small, LEN - 1, &[1]);
        drop(small);
        match ShmSegment::create("/myelon-too-big", HUGE) {
            Err(RegionError::NoSpace { requested, .. }) => assert_eq!(requested, HUGE),
            other => panic!("expected NoSpace, got {other:?}"),
        }
        let left: Vec<_> = fs::read_dir("/dev/shm").unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        println!("{}", child_ok_marker("full"));
        return;
    }
    if let Some(reason) = mount_namespace_skip_reason() {
        println!("SKIPPED {TEST}: {reason}");
        return;
    }
    let mount = "mount -t tmpfs -o size=1m tmpfs /dev/shm";
    let out = in_mount_namespace(mount, TEST, "full", "")
        .output()
        .unwrap();
    assert_child_ok(&out, "full");
}

#[test]
fn open_read_only_maps_without_write_permission() {
    let name = format!("/myelon-ro-open-{}", std::process::id());
    let _ = myelon_backend_shm::unlink(&name);
    let seg = ShmSegment::create(&name, 8192).expect("create");
    // SAFETY: the creator's mapping is writable and 8192 bytes long.
    unsafe { seg.as_ptr().write(42) };
    let ro = ShmSegment::open_read_only(&name).expect("open read-only");
    // SAFETY: the read-only mapping is 8192 bytes long; reading it is allowed.
    assert_eq!(unsafe { ro.as_ptr().read() }, 42);
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let base = format!("{:x}-", ro.as_ptr() as usize);
    let line = maps
        .lines()
        .find(|l| l.starts_with(&base))
        .expect("mapping");
    assert!(line.split_whitespace().nth(1) == Some("r--s"), "{line}");
    assert!(!ro.is_owner());
    drop(ro);
    drop(seg);
}
