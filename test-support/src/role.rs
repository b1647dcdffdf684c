//! The child's side of a re-executed test: its role, its inputs, its marker lines.

use std::io::{BufRead, Write};

/// Environment variable naming the role of a re-executed test binary.
pub const ROLE_VAR: &str = "MYELON_TEST_ROLE";
/// The last marker every successful child prints (`CHILD-OK <role>`), so that a filter that
/// matched no test (exit 0, nothing run) cannot pass.
pub const CHILD_OK: &str = "CHILD-OK";

/// The role this process runs in, if it is a re-executed child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// A required environment variable of a child.
pub fn env_str(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("child: {var} is not set"))
}

/// A required numeric environment variable of a child.
pub fn env_u64(var: &str) -> u64 {
    let v = env_str(var);
    v.parse()
        .unwrap_or_else(|_| panic!("child: {var}={v:?} is not a number"))
}

/// Prints one `key value` marker line and flushes it at once (the parent may be waiting on it).
pub fn report(key: &str, value: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{key} {value}").expect("write marker");
    out.flush().expect("flush marker");
}

/// Blocks until the parent writes a line (returned without its newline) or closes stdin
/// (`None`).
pub fn read_command() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) => None,
        Ok(_) => Some(line.trim_end().to_string()),
        Err(e) => panic!("child: reading stdin: {e}"),
    }
}

/// The line a child prints when its role completed: `CHILD-OK <role>`.
pub fn child_ok_marker(role: &str) -> String {
    format!("{CHILD_OK} {role}")
}

/// Asserts that a finished child exited successfully and printed [`child_ok_marker`] (so a
/// child that ran no test, e.g. after a wrong `--exact` filter, cannot pass silently).
pub fn assert_child_ok(out: &std::process::Output, role: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child {role} failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(&child_ok_marker(role)),
        "child {role} did not run its role\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}
