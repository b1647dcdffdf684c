//! Finding an example's executable from a test.
//!
//! Cargo gives integration tests the paths of `[[bin]]` targets (`CARGO_BIN_EXE_*`) but not of
//! examples, and whether `cargo test` built an example at all depends on the target filter. So
//! the test asks the cargo that runs it (`$CARGO`) to build the example with the test's profile
//! (`--release` when built without debug assertions) and reads the executable's path from
//! cargo's JSON artifact message. When the example is fresh this is a no-op check; the nested
//! cargo inherits the environment, so it shares the target directory and build cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Builds example `name` of `package` (run from `manifest_dir`, normally
/// `env!("CARGO_MANIFEST_DIR")`) and returns its executable.
///
/// # Panics
/// If cargo fails or reports no executable for the example.
pub fn build_example(manifest_dir: &str, package: &str, name: &str) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(Path::new(manifest_dir))
        .args(["build", "-p", package, "--example", name])
        .arg("--message-format=json-render-diagnostics");
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = cmd.stderr(Stdio::piped()).output().expect("run cargo");
    assert!(
        out.status.success(),
        "cargo build --example {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    example_executable(&String::from_utf8_lossy(&out.stdout), name)
        .unwrap_or_else(|| panic!("cargo reported no executable for example {name:?}"))
}

/// The `executable` of the `compiler-artifact` message for example `name` (one JSON object per
/// line). Assumes the path holds no character that JSON escapes (quote, backslash, control),
/// which keeps this free of a JSON dependency.
fn example_executable(json_lines: &str, name: &str) -> Option<PathBuf> {
    const KEY: &str = "\"executable\":\"";
    let name_field = format!("\"name\":\"{name}\"");
    json_lines
        .lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\""))
        .filter(|l| l.contains("\"kind\":[\"example\"]") && l.contains(&name_field))
        .find_map(|l| {
            let rest = &l[l.find(KEY)? + KEY.len()..];
            Some(PathBuf::from(&rest[..rest.find('"')?]))
        })
}
