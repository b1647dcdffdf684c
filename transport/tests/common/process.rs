//! Real-process fixtures: re-exec the test binary in a role, read the child's marker lines, and
//! clean up (kill and reap every child, unlink the segment) even when a test fails. The
//! machinery lives in `myelon-test-support`; this module names the variables these tests pass.

pub use myelon_test_support::{
    env_str, env_u64, read_command, report, role, ChildProc, ShmGuard as SegmentGuard, Spawn,
    CHILD_OK,
};

/// Environment variable carrying the ring name to a child.
pub const SEGMENT_VAR: &str = "MYELON_TEST_SEGMENT";
/// Environment variable carrying a consumer id to a child.
pub const ID_VAR: &str = "MYELON_TEST_ID";
