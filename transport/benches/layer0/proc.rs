//! Processes: the re-executed peer, CPU pinning, and the cleanup of every segment name.
//!
//! The benchmark binary starts its peer by re-executing itself (`current_exe()`) with
//! `--role <role>`. Leaving nothing in `/dev/shm` rests on three guards:
//!
//! * every segment name is taken from [`Names`], which removes them all when dropped (normal
//!   exit, early return, panic) whoever created them, so a peer killed half-way leaks nothing;
//! * on Linux the same names are also unlinked by a `SIGINT`/`SIGTERM`/`SIGHUP` handler;
//! * a [`Peer`] kills and reaps its process when dropped before it finished (a
//!   `myelon_test_support::ChildGuard`), and the peer asks
//!   the kernel to kill it if the benchmark process dies (`PR_SET_PDEATHSIG`).

use myelon::backend::{BackendError, RingBackend, ShmBackend};
use myelon_test_support::{ChildGuard, ReExec, ROLE_ARG};
use std::error::Error;
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

pub type BenchResult<T> = Result<T, Box<dyn Error>>;

/// Argument carrying the parent pid to a peer.
const PARENT_ARG: &str = "--parent";
/// Argument carrying the CPU a peer pins itself to.
const CPU_ARG: &str = "--cpu";
/// Environment variable carrying the spin policy to a peer.
const PAUSE_ENV: &str = "MYELON_L0_PAUSE";

/// Pins the calling thread to `cpu`; a warning (not an error) when the OS refuses.
pub fn pin(cpu: usize) {
    if let Err(e) = myelon_backend_shm::affinity::pin_current_thread(cpu) {
        eprintln!(
            "warning: cannot pin pid {} to cpu {cpu}: {e}",
            std::process::id()
        );
    }
}

/// The two CPUs to use (`--cpus a,b` or the first two the process may run on).
pub fn default_cpus() -> (usize, usize) {
    let cpus = myelon_backend_shm::affinity::allowed_cpus().unwrap_or_default();
    match cpus.as_slice() {
        [a, b, ..] => (*a, *b),
        [a] => {
            eprintln!("warning: only cpu {a} is available; both processes share it");
            (*a, *a)
        }
        [] => (0, 1),
    }
}

/// A peer process running one role. Dropped before [`Peer::finish`], it is killed and reaped
/// (by its [`ChildGuard`]).
pub struct Peer {
    child: ChildGuard,
    role: String,
}

impl Peer {
    /// Starts `current_exe() --role <role> --parent <pid> --cpu <cpu> <args..>` with a piped
    /// stdout.
    pub fn spawn(role: &str, cpu: usize, args: &[String]) -> BenchResult<Peer> {
        let mut exec = ReExec::with_role_arg(role)
            .arg(PARENT_ARG)
            .arg(std::process::id().to_string())
            .arg(CPU_ARG)
            .arg(cpu.to_string())
            .args(args)
            .env(PAUSE_ENV, if crate::spin::pause() { "1" } else { "0" });
        exec.command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        Ok(Peer {
            child: exec.spawn()?,
            role: role.to_string(),
        })
    }

    /// `Err` if the peer has already exited (it never should before [`Peer::finish`]).
    pub fn check_alive(&mut self) -> BenchResult<()> {
        match self.child.try_status() {
            None => Ok(()),
            Some(status) => Err(format!("peer {:?} exited early: {status}", self.role).into()),
        }
    }

    /// Waits up to `timeout` for the peer to exit successfully; returns its stdout.
    pub fn finish(mut self, timeout: Duration) -> BenchResult<String> {
        let Some(status) = self.child.wait_deadline(Instant::now() + timeout) else {
            self.child.kill();
            return Err(format!("peer {:?} did not exit within {timeout:?}", self.role).into());
        };
        let mut out = String::new();
        if let Some(mut stdout) = self.child.child().stdout.take() {
            stdout.read_to_string(&mut out)?;
        }
        if !status.success() {
            return Err(format!("peer {:?} failed: {status}", self.role).into());
        }
        Ok(out)
    }
}

/// Role-side setup: die with the benchmark process and pin to the given CPU. `args` follow the
/// role name; returns the role's own arguments.
pub fn peer_setup(args: &[String]) -> BenchResult<Vec<String>> {
    match args {
        [p, pid, c, cpu, rest @ ..] if p == PARENT_ARG && c == CPU_ARG => {
            die_with_parent(pid.parse()?)?;
            pin(cpu.parse()?);
            crate::spin::set_pause(std::env::var(PAUSE_ENV).is_ok_and(|v| v == "1"));
            Ok(rest.to_vec())
        }
        _ => Err("peer started without --parent <pid> --cpu <n>".into()),
    }
}

#[cfg(target_os = "linux")]
fn die_with_parent(parent: u32) -> BenchResult<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // The parent may have died before the prctl took effect.
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } as u32 != parent {
        return Err("benchmark process is gone".into());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_parent: u32) -> BenchResult<()> {
    Ok(())
}

/// The segment names of one run; all are removed when this is dropped.
pub struct Names {
    names: Vec<String>,
}

impl Names {
    /// An empty set; installs the signal handler once.
    pub fn new() -> Names {
        signals::install();
        Names { names: Vec::new() }
    }

    /// A fresh name unique to this process (at most 31 bytes, the portable limit).
    pub fn fresh(&mut self, tag: &str) -> String {
        let name = format!("ml0-{}-{}-{tag}", std::process::id(), self.names.len());
        debug_assert!(name.len() < myelon::PORTABLE_SHM_SEGMENT_NAME_MAX_LEN);
        signals::register(&name);
        self.names.push(name.clone());
        name
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        for name in self.names.drain(..) {
            match ShmBackend.remove(&name) {
                Ok(()) | Err(BackendError::NotFound { .. }) => {}
                Err(e) => eprintln!("warning: cannot remove segment {name:?}: {e}"),
            }
            signals::unregister(&name);
        }
    }
}

/// Unlinks the registered names from a signal handler (async-signal-safe: `unlink`, `_exit`).
#[cfg(target_os = "linux")]
mod signals {
    use std::ffi::CString;
    use std::sync::atomic::{AtomicPtr, Ordering};
    use std::sync::Once;

    const SLOTS: usize = 64;
    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());
    /// Leaked `/dev/shm/<name>` paths, null when free.
    static PATHS: [AtomicPtr<libc::c_char>; SLOTS] = [EMPTY; SLOTS];

    fn path(name: &str) -> CString {
        CString::new(format!("/dev/shm/{name}")).expect("segment names hold no NUL")
    }

    pub fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                // SAFETY: `on_signal` only calls async-signal-safe functions (`unlink`,
                // `_exit`) and reads atomics.
                unsafe { libc::signal(sig, handler) };
            }
        });
    }

    pub fn register(name: &str) {
        let p = path(name).into_raw();
        for slot in &PATHS {
            if slot
                .compare_exchange(std::ptr::null_mut(), p, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
        // SAFETY: `p` came from `into_raw` above and was not stored anywhere.
        drop(unsafe { CString::from_raw(p) });
    }

    pub fn unregister(name: &str) {
        let want = path(name);
        for slot in &PATHS {
            let p = slot.load(Ordering::Acquire);
            // SAFETY: non-null slots hold strings leaked by `register`, freed only here after
            // being swapped out.
            if !p.is_null() && unsafe { std::ffi::CStr::from_ptr(p) } == want.as_c_str() {
                let p = slot.swap(std::ptr::null_mut(), Ordering::AcqRel);
                if !p.is_null() {
                    // SAFETY: `p` was leaked by `register` and is no longer reachable from
                    // `PATHS` (swapped out above).
                    drop(unsafe { CString::from_raw(p) });
                }
            }
        }
    }

    extern "C" fn on_signal(sig: libc::c_int) {
        for slot in &PATHS {
            let p = slot.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: `p` is a NUL-terminated path leaked by `register`; unlink is
                // async-signal-safe.
                unsafe { libc::unlink(p) };
            }
        }
        // SAFETY: `_exit` is async-signal-safe and never returns.
        unsafe { libc::_exit(128 + sig) };
    }
}

#[cfg(not(target_os = "linux"))]
mod signals {
    pub fn install() {}
    pub fn register(_name: &str) {}
    pub fn unregister(_name: &str) {}
}

/// The shared `main` of the benchmark binaries: `--role R ...` runs a peer, `-h`/`--help`
/// prints `usage`, anything else is parsed into a plan and run. Exit codes: 0 (targets met or
/// missed — a benchmark reports, it does not fail on speed), 1 (an error), 2 (bad arguments).
pub fn bench_main<P>(
    name: &str,
    usage: &str,
    run_peer: impl FnOnce(&str, &[String]) -> BenchResult<()>,
    parse_plan: impl FnOnce(&[String]) -> Result<P, String>,
    run_benchmark: impl FnOnce(&P) -> BenchResult<bool>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, role, rest @ ..] = args.as_slice() {
        if flag == ROLE_ARG {
            return match run_peer(role, rest) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{name} peer {role}: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{usage}");
        return ExitCode::SUCCESS;
    }
    let plan = match parse_plan(&args) {
        Ok(plan) => plan,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    match run_benchmark(&plan) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            println!("some targets were missed (see above)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
