//! Helpers for the integration tests: the shared ones (re-exec'd children, guards, deadline
//! polling) come from `myelon-test-support`; here only what is particular to this crate.
#![allow(dead_code, unused_imports)] // each test binary uses a different subset

pub use myelon_test_support::{
    assert_child_ok, child_ok_marker, poll_until, role, wait_for_line, ChildGuard, ReExec,
    ShmGuard, DEADLINE,
};
use std::process::Command;

/// Env var carrying the child's argument (a segment name, a path).
pub const ARG_VAR: &str = "MYELON_TEST_ARG";

/// The argument the parent gave this child.
pub fn child_arg() -> String {
    std::env::var(ARG_VAR).expect("child started without MYELON_TEST_ARG")
}

/// A shared-memory object name unique to this process and call, with the leading `/` that this
/// crate's functions take, e.g. `/myelon-t-1234-tag-7`.
pub fn unique_name(tag: &str) -> String {
    format!("/{}", myelon_test_support::unique_name(tag))
}

/// The current test binary, re-exec'd to run only `test` in child role `role` with `arg`.
pub fn child_command(test: &str, role: &str, arg: &str) -> ReExec {
    ReExec::test_role(test, role).env(ARG_VAR, arg)
}

/// Why a test that needs a private mount namespace cannot run here, if it cannot.
pub fn mount_namespace_skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root".into());
    }
    match Command::new("unshare").args(["-m", "true"]).output() {
        Err(e) => Some(format!("`unshare` is unavailable: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "`unshare -m` does not work here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// `unshare -m sh -c '<mount> && exec "$0" "$@"' <test-bin> <test> --exact --nocapture ..`,
/// with the child role set. `mount` is a shell command run inside the new mount namespace.
pub fn in_mount_namespace(mount: &str, test: &str, role: &str, arg: &str) -> ReExec {
    let script = format!("{mount} && exec \"$0\" \"$@\"");
    child_command(test, role, arg).wrapped_in("unshare", &["-m", "sh", "-c", &script])
}
