//! Process identity that survives pid reuse: `(pid, start time)`.
//!
//! The start time is field 22 of `/proc/<pid>/stat` (clock ticks since boot). A recycled pid gets
//! a different start time, so a stored [`ProcessIdentity`] never mistakes a newcomer for the
//! process it was taken from. `start_time == 0` means "unknown" (no `/proc`); such an identity is
//! checked by pid only.

use std::io;
#[allow(clippy::disallowed_types)] // process-local caches of this process's identity
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A process, as `(pid, start time)`. `#[repr(C)]` so it can be stored in shared memory.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ProcessIdentity {
    pub pid: u32,
    /// Always 0; keeps `start_time` 8-byte aligned with no implicit padding.
    pub reserved: u32,
    /// Clock ticks since boot at which the process started; 0 if unknown.
    pub start_time: u64,
}

const _: () = assert!(std::mem::size_of::<ProcessIdentity>() == 16);
const _: () = assert!(std::mem::offset_of!(ProcessIdentity, start_time) == 8);

/// What [`state`] could tell about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    Alive,
    Dead,
    Unknown,
}

#[allow(clippy::disallowed_types)] // process-local cache, never in shared memory
static CACHED_PID: AtomicU32 = AtomicU32::new(0);
#[allow(clippy::disallowed_types)] // process-local cache, never in shared memory
static CACHED_START: AtomicU64 = AtomicU64::new(0);

/// The identity of the calling process. Cached per pid: after a `fork` the child computes its own.
pub fn current() -> ProcessIdentity {
    let pid = std::process::id();
    if CACHED_PID.load(Ordering::Acquire) == pid {
        return ProcessIdentity {
            pid,
            reserved: 0,
            start_time: CACHED_START.load(Ordering::Relaxed),
        };
    }
    let id = identity_of(pid).unwrap_or(ProcessIdentity {
        pid,
        ..ProcessIdentity::default()
    });
    if id.start_time != 0 {
        // Every writer for a given pid stores the same start time, and a reader only trusts
        // CACHED_START after seeing its own pid in CACHED_PID (Release/Acquire pair).
        CACHED_START.store(id.start_time, Ordering::Relaxed);
        CACHED_PID.store(pid, Ordering::Release);
    }
    id
}

/// The identity of process `pid`, or `None` if it does not exist or `/proc` cannot tell.
pub fn identity_of(pid: u32) -> Option<ProcessIdentity> {
    if pid == 0 {
        return None;
    }
    let stat = read_stat(pid).ok()?;
    let (_, start_time) = parse_stat(&stat)?;
    Some(ProcessIdentity {
        pid,
        reserved: 0,
        start_time,
    })
}

/// Whether the process `id` still runs.
///
/// pid 0 (or a pid beyond `i32::MAX`) is `Unknown`. `kill(pid, 0)` failing with `ESRCH` is
/// `Dead`. Then `/proc/<pid>/stat` decides: missing, a different start time (pid reused) or a
/// zombie is `Dead`, otherwise `Alive`. If `/proc` cannot be read (not mounted, or the process is
/// hidden from us and `kill` said `EPERM`), the `kill` answer stands: `Alive`.
pub fn state(id: ProcessIdentity) -> ProcessState {
    let Ok(pid) = libc::pid_t::try_from(id.pid) else {
        return ProcessState::Unknown;
    };
    if pid == 0 {
        return ProcessState::Unknown;
    }
    let permitted = match signal_zero(pid) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => false,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return ProcessState::Dead,
        Err(_) => return ProcessState::Unknown,
    };
    match read_stat(id.pid) {
        Ok(stat) => state_from_stat(&stat, id.start_time),
        Err(e) if e.kind() == io::ErrorKind::NotFound && permitted && proc_available() => {
            ProcessState::Dead
        }
        Err(_) => ProcessState::Alive,
    }
}

fn state_from_stat(stat: &str, expected_start: u64) -> ProcessState {
    let Some((run_state, start_time)) = parse_stat(stat) else {
        return ProcessState::Unknown;
    };
    let reused = expected_start != 0 && start_time != expected_start;
    if reused || matches!(run_state, 'Z' | 'X' | 'x') {
        ProcessState::Dead
    } else {
        ProcessState::Alive
    }
}

/// Parses `(state, start_time)` out of a `/proc/<pid>/stat` line. The command name (field 2) may
/// hold spaces and `)`, so fields are counted from the text after the *last* `)`: there the first
/// field is the state (field 3) and the 20th is the start time (field 22).
pub(crate) fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_ascii_whitespace();
    let run_state = fields.next()?.chars().next()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    Some((run_state, start_time))
}

fn read_stat(pid: u32) -> io::Result<String> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
}

fn proc_available() -> bool {
    std::path::Path::new("/proc/self/stat").exists()
}

fn signal_zero(pid: libc::pid_t) -> io::Result<()> {
    // SAFETY: signal 0 performs only the existence and permission checks; `pid` > 0 was checked by
    // the caller, so this never addresses a process group.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_line(comm: &str, state: char, start: u64) -> String {
        // Fields 4..=21 are filler, field 22 is the start time, then a few trailing fields.
        let filler: Vec<String> = (4..=21).map(|i| i.to_string()).collect();
        format!(
            "1234 ({comm}) {state} {} {start} 23 24 25\n",
            filler.join(" ")
        )
    }

    #[test]
    fn parse_stat_table() {
        let cases: &[(&str, char, u64)] = &[
            ("bash", 'S', 42),
            ("with space", 'R', 7),
            ("a) b) c", 'Z', 99),
            (")", 'D', 1),
            ("((", 'S', u64::MAX),
            ("", 'T', 0),
        ];
        for &(comm, state, start) in cases {
            let line = stat_line(comm, state, start);
            assert_eq!(parse_stat(&line), Some((state, start)), "{line}");
        }
    }

    #[test]
    fn parse_stat_rejects_garbage() {
        for line in [
            "",
            "1234 bash S 1 2",
            "1234 (bash) S 1 2 3",
            "1234 (x) S x x x x x x x x x x x x x x x x x x nope",
        ] {
            assert_eq!(parse_stat(line), None, "{line:?}");
        }
    }

    #[test]
    fn state_from_stat_table() {
        let cases: &[(char, u64, u64, ProcessState)] = &[
            ('S', 10, 10, ProcessState::Alive),
            ('R', 10, 0, ProcessState::Alive),
            ('S', 10, 11, ProcessState::Dead),
            ('Z', 10, 10, ProcessState::Dead),
            ('X', 10, 10, ProcessState::Dead),
        ];
        for &(st, actual, expected, want) in cases {
            let line = stat_line("p", st, actual);
            assert_eq!(
                state_from_stat(&line, expected),
                want,
                "{st} {actual} {expected}"
            );
        }
        assert_eq!(state_from_stat("garbage", 1), ProcessState::Unknown);
    }

    #[test]
    fn layout_is_pinned() {
        assert_eq!(std::mem::align_of::<ProcessIdentity>(), 8);
    }
}
