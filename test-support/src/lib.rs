//! Test support for the myelon workspace (unpublished).
//!
//! Every real-process test, benchmark and example in the workspace starts its peers the same
//! way: it re-executes its own binary ([`ReExec`]) in a role, holds each child in a
//! [`ChildGuard`] that kills and reaps it when dropped (so no error path leaves a process
//! behind), waits for things by polling with a deadline ([`poll_until`]), and names its
//! shared-memory segments uniquely ([`unique_name`]) behind a guard that unlinks them
//! ([`ShmGuard`]).
//!
//! Test binaries add a line protocol on top ([`Spawn`], [`ChildProc`]): the child is the test
//! binary running one entry test with [`ROLE_VAR`] set, it prints `KEY value` marker lines
//! ([`report`]) and ends with `CHILD-OK <role>`; the parent waits for markers with a deadline
//! and prints the child's transcript when a test fails.
//!
//! Tests that need root or `unshare` ask [`runnable`]: it prints why they skip, or fails them
//! when [`REQUIRE_ROOT_VAR`] says they must run.
//!
//! [`build_example`] finds (building it if needed) an example's executable for a test that runs
//! it as a user would.
//!
//! This crate depends on nothing of myelon (only `libc`, for `shm_unlink`), so every crate of
//! the workspace, the platform crates included, can use it without a dependency cycle.

mod child;
mod example;
mod marked;
mod names;
mod poll;
mod require;
mod role;

pub use child::{ChildGuard, ReExec, ROLE_ARG};
pub use example::build_example;
pub use marked::{ChildProc, NoMarker, Spawn};
pub use names::{unique_name, ShmGuard};
pub use poll::{poll_until, wait_for, wait_for_line, DEADLINE};
pub use require::{is_root, probe, root, runnable, REQUIRE_ROOT_VAR};
pub use role::{
    assert_child_ok, child_ok_marker, env_str, env_u64, read_command, report, role, CHILD_OK,
    ROLE_VAR,
};
