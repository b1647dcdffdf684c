//! Hostile and foreign environments (issue 10): objects under a ring's name that are not ours,
//! and the owner and mode checks of attach.
//!
//! Every name is unique per test and unlinked by a guard when the test ends, passed or failed.

mod common;

use common::process::{env_str, read_command, report, Spawn, CHILD_OK, ID_VAR, SEGMENT_VAR};
use common::{checksum, fill, Event, TempDir};
use myelon::backend::BackendError;
use myelon::{
    attach_mmap_consumer, attach_shared_consumer, build_mmap_single_producer,
    build_shared_single_producer, MultiProcessError,
};
use myelon_test_support::ShmGuard;
use std::ffi::CString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Full path of the role entry test, as `--exact` needs it.
const ENTRY: &str = "child_role";
/// Bound on one blocking step (a marker line, an attach).
const LONG: Duration = Duration::from_secs(30);
/// The uid and gid the two-user test drops to (`nobody` on Linux).
const NOBODY: u32 = 65534;

/// Entry point of every child process; a no-op in a normal test run.
#[test]
fn child_role() {
    let Some(role) = common::process::role() else {
        return;
    };
    match role.as_str() {
        "nobody_producer" => nobody_producer_role(),
        "nobody_consumer" => nobody_consumer_role(),
        other => panic!("unknown child role {other:?}"),
    }
    report(CHILD_OK, role);
}

/// Makes this process `nobody` (uid and gid 65534, no supplementary groups) for good.
fn become_nobody() {
    // SAFETY: plain syscalls without memory arguments; the group is dropped before the user,
    // while this process may still change it.
    unsafe {
        assert_eq!(libc::setgroups(0, std::ptr::null()), 0, "setgroups");
        assert_eq!(libc::setgid(NOBODY), 0, "setgid");
        assert_eq!(libc::setuid(NOBODY), 0, "setuid");
    }
}

/// Drops to `nobody`, creates the ring `MYELON_TEST_SEGMENT` and holds it until stdin closes.
fn nobody_producer_role() {
    become_nobody();
    let p = build_shared_single_producer::<Event>(&env_str(SEGMENT_VAR), 64)
        .build_producer(Event::default)
        .expect("producer as nobody");
    // SAFETY: geteuid has no preconditions.
    report("CREATED", unsafe { libc::geteuid() });
    let _ = read_command();
    drop(p);
}

/// Whether this process may run the tests that need root; prints why not, and fails when
/// `MYELON_REQUIRE_ROOT_TESTS=1` demands them.
fn root_or_skip(test: &str) -> bool {
    myelon_test_support::runnable(test, myelon_test_support::root("chown / setuid"))
}

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

// ---------------------------------------------------------------------------------------------
// Owners and modes: attach checks
// ---------------------------------------------------------------------------------------------

fn assert_untrusted<T: std::fmt::Debug>(r: Result<T, MultiProcessError>, uid: u32, mode: u32) {
    match r {
        Err(MultiProcessError::UntrustedSegment {
            owner_uid, mode: m, ..
        }) => assert_eq!((owner_uid, m), (uid, mode)),
        other => panic!("expected UntrustedSegment(uid {uid}, mode {mode:o}), got {other:?}"),
    }
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), None).expect("chown");
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// One backend's attach checks: `attach(accepted owners, group access)` against the object at
/// `path` that a live producer created.
fn owner_and_mode_checks<T: std::fmt::Debug>(
    path: &Path,
    attach: impl Fn(&[u32], bool) -> Result<T, MultiProcessError>,
) {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    assert_eq!(std::fs::metadata(path).unwrap().mode() & 0o7777, 0o600);
    attach(&[], false).expect("our own 0600 ring");

    chown(path, NOBODY);
    assert_untrusted(attach(&[], false), NOBODY, 0o600);
    attach(&[NOBODY], false).expect("an accepted owner");
    chown(path, me);

    chmod(path, 0o666);
    assert_untrusted(attach(&[], false), me, 0o666);
    assert_untrusted(attach(&[], true), me, 0o666);

    chmod(path, 0o660);
    assert_untrusted(attach(&[], false), me, 0o660);
    attach(&[], true).expect("group access accepted");
    chmod(path, 0o600);
}

#[test]
fn shm_attach_checks_owner_and_mode() {
    if !root_or_skip("shm_attach_checks_owner_and_mode") {
        return;
    }
    let g = ShmGuard::new("owner");
    let _p = build_shared_single_producer::<Event>(g.name(), 64)
        .build_producer(Event::default)
        .expect("producer");
    owner_and_mode_checks(&shm_path(g.name()), |owners, group| {
        attach_shared_consumer::<Event>(g.name(), 64)
            .with_accepted_owners(owners)
            .with_group_access(group)
            .build_consumer()
    });
}

#[test]
fn mmap_attach_checks_owner_and_mode() {
    if !root_or_skip("mmap_attach_checks_owner_and_mode") {
        return;
    }
    let dir = TempDir::new("owner-mmap");
    let path = dir.0.join("ring");
    let _p = build_mmap_single_producer::<Event>(&path, 64)
        .build_producer(Event::default)
        .expect("producer");
    owner_and_mode_checks(&path, |owners, group| {
        attach_mmap_consumer::<Event>(&path, 64)
            .with_accepted_owners(owners)
            .with_group_access(group)
            .build_consumer()
    });
}

#[test]
fn group_access_creates_0660_and_attaches() {
    let g = ShmGuard::new("group");
    let _p = build_shared_single_producer::<Event>(g.name(), 64)
        .with_group_access(true)
        .build_producer(Event::default)
        .expect("producer");
    let mode = std::fs::metadata(shm_path(g.name())).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o660);
    assert_untrusted(
        attach_shared_consumer::<Event>(g.name(), 64).build_consumer(),
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() },
        0o660,
    );
    attach_shared_consumer::<Event>(g.name(), 64)
        .with_group_access(true)
        .build_consumer()
        .expect("consumer with group access");
}

/// Two real users: a child dropped to `nobody` creates the ring; this process (root) refuses
/// it by default and accepts it when `nobody` is an accepted owner.
#[test]
fn a_ring_of_another_user_is_refused_unless_accepted() {
    if !root_or_skip("a_ring_of_another_user_is_refused_unless_accepted") {
        return;
    }
    let g = ShmGuard::new("twouser");
    let mut child = Spawn::new(ENTRY, "nobody_producer")
        .env(SEGMENT_VAR, g.name())
        .spawn();
    assert_eq!(child.expect("CREATED", LONG), NOBODY.to_string());
    let attach = |owners: &[u32]| {
        attach_shared_consumer::<Event>(g.name(), 64)
            .with_attach_timeout(LONG)
            .with_accepted_owners(owners)
            .build_consumer()
    };
    assert_untrusted(attach(&[]), NOBODY, 0o600);
    let c = attach(&[NOBODY]).expect("nobody's ring, accepted");
    drop(c);
    child.close_stdin();
    assert!(child.finish(LONG).success(), "{}", child.transcript());
}

/// Drops to `nobody`, then obeys `attach <owners: uid,uid.. or -> <group access: 0|1>` lines:
/// attaches as `MYELON_TEST_ID` to `MYELON_TEST_SEGMENT` and reports, for the n-th command,
/// `RESULT-<n> ok read=<events>` (every event verified, then detached), `RESULT-<n> untrusted
/// <owner uid> <mode>`, `RESULT-<n> denied` (the OS refused to open it) or `RESULT-<n> other
/// <error>`.
fn nobody_consumer_role() {
    become_nobody();
    let mut n = 0;
    while let Some(cmd) = read_command() {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let ["attach", owners, group] = words[..] else {
            panic!("bad command {cmd:?}");
        };
        let owners: Vec<u32> = match owners {
            "-" => Vec::new(),
            list => list.split(',').map(|u| u.parse().expect("uid")).collect(),
        };
        let r = attach_shared_consumer::<Event>(&env_str(SEGMENT_VAR), 64)
            .with_consumer_id(env_str(ID_VAR))
            .with_attach_timeout(LONG)
            .with_accepted_owners(&owners)
            .with_group_access(group == "1")
            .build_consumer();
        let result = match r {
            Ok(mut c) => {
                let mut read = 0;
                while let Some(e) = c.try_consume_next().expect("receive") {
                    assert_eq!((e.sequence, e.checksum), (read, checksum(read)));
                    read += 1;
                }
                format!("ok read={read}")
            }
            Err(MultiProcessError::UntrustedSegment {
                owner_uid, mode, ..
            }) => format!("untrusted {owner_uid} {mode:o}"),
            Err(MultiProcessError::Backend(BackendError::PermissionDenied { .. })) => {
                "denied".to_string()
            }
            Err(e) => format!("other {e:?}"),
        };
        report(&format!("RESULT-{n}"), result);
        n += 1;
    }
}

/// Two real users, the other way round: root creates the ring for its group (`0660`, group
/// `nogroup`), a consumer process dropped to `nobody` (in that group) attaches. It is refused
/// while either side has not opted in — `nobody` must accept root as an owner *and* accept a
/// group-writable ring — and the OS refuses it once the group loses access; with both opt-ins
/// it reads every event.
#[test]
fn a_group_member_attaches_only_when_it_accepts_owner_and_group() {
    if !root_or_skip("a_group_member_attaches_only_when_it_accepts_owner_and_group") {
        return;
    }
    const M: u64 = 5;
    let g = ShmGuard::new("groupuser");
    let mut p = build_shared_single_producer::<Event>(g.name(), 64)
        .with_group_access(true)
        .with_consumer_id("peer")
        .build_producer(Event::default)
        .expect("producer");
    for s in 0..M {
        p.try_publish(|e| fill(e, s)).expect("fits");
    }
    let path = shm_path(g.name());
    std::os::unix::fs::chown(&path, None, Some(NOBODY)).expect("chgrp");
    let mut child = Spawn::new(ENTRY, "nobody_consumer")
        .env(SEGMENT_VAR, g.name())
        .env(ID_VAR, "peer")
        .spawn();
    let mut n = 0;
    let mut attach = |owners: &str, group: u8| {
        child.send(&format!("attach {owners} {group}"));
        n += 1;
        child.expect(&format!("RESULT-{}", n - 1), LONG)
    };
    assert_eq!(attach("-", 0), "untrusted 0 660", "root's ring, by default");
    assert_eq!(
        attach("0", 0),
        "untrusted 0 660",
        "group-writable, not accepted"
    );
    assert_eq!(
        attach("-", 1),
        "untrusted 0 660",
        "owner root, not accepted"
    );
    chmod(&path, 0o600);
    assert_eq!(attach("0", 1), "denied", "the group lost its access");
    chmod(&path, 0o660);
    assert_eq!(attach("0", 1), format!("ok read={M}"), "both opt-ins");
    child.close_stdin();
    assert!(child.finish(LONG).success(), "{}", child.transcript());
}
