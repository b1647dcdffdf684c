//! Tests that need root or a kernel feature (`unshare`, another user): they print why they skip
//! where they cannot run, and fail instead when [`REQUIRE_ROOT_VAR`]`=1` says they must run
//! (CI sets it, so a lane that silently lost its privileges fails instead of passing).

/// Set to `1` to turn every such skip into a failure.
pub const REQUIRE_ROOT_VAR: &str = "MYELON_REQUIRE_ROOT_TESTS";

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `Ok` if `program args..` runs and exits 0 (a probe such as `unshare -pf --mount-proc true`),
/// otherwise why not.
pub fn probe(program: &str, args: &[&str]) -> Result<(), String> {
    match std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("`{program} {}` failed: {s}", args.join(" "))),
        Err(e) => Err(format!("cannot run {program}: {e}")),
    }
}

/// `Ok` as root, otherwise why a test that needs root cannot run.
pub fn root(needs: &str) -> Result<(), String> {
    if is_root() {
        Ok(())
    } else {
        Err(format!("needs root ({needs})"))
    }
}

/// Whether test `test` may run: `Ok` runs it; `Err(why)` prints `<test>: SKIPPED, <why>` and
/// returns false, or panics when [`REQUIRE_ROOT_VAR`]`=1`.
pub fn runnable(test: &str, ready: Result<(), String>) -> bool {
    let Err(why) = ready else {
        return true;
    };
    let line = format!("{test}: SKIPPED, {why}");
    assert!(
        std::env::var(REQUIRE_ROOT_VAR).as_deref() != Ok("1"),
        "{line}, and {REQUIRE_ROOT_VAR}=1"
    );
    println!("{line}");
    false
}
