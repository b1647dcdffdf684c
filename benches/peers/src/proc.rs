//! Processes: the supervisor that cleans up, the re-executed peer, CPU pinning, unique names.
//!
//! Three processes take part in a run:
//!
//! * the **supervisor** (what the user starts) picks the run prefix `mpb<pid>_`, re-executes
//!   itself as the **driver** and waits for it; whatever way the driver ends (success, error,
//!   panic, a signal, even `SIGKILL`), the supervisor then removes every `/dev/shm` entry that
//!   starts with the prefix and the private iceoryx2 root directory of the run. `SIGINT`,
//!   `SIGTERM` and `SIGHUP` sent to the supervisor are forwarded to the driver, and cleanup
//!   still runs.
//! * the **driver** measures; for every row it starts a **peer** (`--role <role> <args..>`),
//!   which asks the kernel to kill it if the driver dies (`PR_SET_PDEATHSIG`).
//!
//! Every shared-memory name of every contender starts with the run prefix, which holds the
//! supervisor's pid, so the cleanup never touches a name that is not this run's.

// The workspace's clippy.toml sends shared-memory atomics through the transport's `sync` facade
// (so loom sees them). This file's atomics are process-local: a name counter, the watchdog's
// deadline shared between two threads of the driver, the supervisor's signal-handler pid.
#![allow(clippy::disallowed_types)]

use std::error::Error;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub type BenchResult<T> = Result<T, Box<dyn Error>>;

/// Marks a peer invocation: `<exe> --role <role> <args..>`.
pub const ROLE_ARG: &str = "--role";
/// Environment variable carrying the run prefix (its presence marks the driver).
const PREFIX_ENV: &str = "MYELON_PEERS_PREFIX";
/// Environment variable carrying the CPU a peer pins itself to.
const CPU_ENV: &str = "MYELON_PEERS_CPU";

/// The run prefix of every shared-memory name, `mpb<supervisor pid>_`.
pub fn prefix() -> String {
    std::env::var(PREFIX_ENV).unwrap_or_else(|_| format!("mpb{}_", std::process::id()))
}

/// Whether this process is the driver (started by the supervisor).
pub fn is_driver() -> bool {
    std::env::var_os(PREFIX_ENV).is_some()
}

/// The private iceoryx2 root directory of the run (removed by the supervisor).
pub fn iceoryx_root() -> PathBuf {
    PathBuf::from(format!("/tmp/iceoryx2/{}/", prefix()))
}

/// A fresh shared-memory name: `<prefix><n><tag>`, at most 31 bytes for short tags.
pub fn fresh_name(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{}{n}{tag}", prefix())
}

/// Pins the calling thread to `cpu` with `sched_setaffinity`; a warning when refused.
pub fn pin(cpu: usize) {
    // SAFETY: `cpu_set_t` is plain data for which all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc = if cpu < libc::CPU_SETSIZE as usize {
        // SAFETY: `CPU_SET` writes one bit of `set`, which lives on this stack frame; `cpu` was
        // checked against the set's capacity just above.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: pid 0 is the calling thread; `set` is a valid, initialised `cpu_set_t` of the
        // size passed.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) }
    } else {
        -1
    };
    if rc != 0 {
        eprintln!(
            "warning: cannot pin pid {} to cpu {cpu}",
            std::process::id()
        );
    }
}

/// `/proc/loadavg`'s first three fields, e.g. `1.02 0.88 0.61`.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A peer process running one role; killed and reaped if dropped before [`Peer::finish`].
pub struct Peer {
    child: Option<Child>,
    role: String,
}

impl Peer {
    /// Starts `current_exe() --role <role> <args..>` pinned to `cpu`, stdout piped.
    pub fn spawn(role: &str, cpu: usize, args: &[String]) -> BenchResult<Peer> {
        let child = Command::new(std::env::current_exe()?)
            .arg(ROLE_ARG)
            .arg(role)
            .args(args)
            .env(CPU_ENV, cpu.to_string())
            .env(PREFIX_ENV, prefix())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(Peer {
            child: Some(child),
            role: role.to_string(),
        })
    }

    /// `Err` if the peer has already exited (it never should before [`Peer::finish`]).
    pub fn check_alive(&mut self) -> BenchResult<()> {
        let child = self.child.as_mut().ok_or("peer already reaped")?;
        match child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(format!("peer {:?} exited early: {status}", self.role).into()),
        }
    }

    /// Waits up to `timeout` for a successful exit; returns the peer's stdout.
    pub fn finish(mut self, timeout: Duration) -> BenchResult<String> {
        let mut child = self.child.take().ok_or("peer already reaped")?;
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("peer {:?} did not exit within {timeout:?}", self.role).into());
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let mut out = String::new();
        if let Some(mut stdout) = child.stdout.take() {
            stdout.read_to_string(&mut out)?;
        }
        if !status.success() {
            return Err(format!("peer {:?} failed: {status}", self.role).into());
        }
        Ok(out)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Several peers running the same role (the fan-in producers). Spawned one after the other: if
/// any spawn fails, the ones already started are killed and reaped (their [`Peer`] drops); the
/// same when the group is dropped before [`Peers::finish`], or when one of them fails to finish.
pub struct Peers {
    peers: Vec<Peer>,
}

impl Peers {
    /// Starts one peer per entry of `cpus`, pinned to it, peer `k` with the arguments `args(k)`.
    pub fn spawn(
        role: &str,
        cpus: &[usize],
        args: impl Fn(usize) -> Vec<String>,
    ) -> BenchResult<Peers> {
        let mut peers = Vec::with_capacity(cpus.len());
        for (k, &cpu) in cpus.iter().enumerate() {
            peers.push(Peer::spawn(role, cpu, &args(k))?);
        }
        Ok(Peers { peers })
    }

    /// `Err` if any peer has already exited.
    pub fn check_alive(&mut self) -> BenchResult<()> {
        self.peers.iter_mut().try_for_each(Peer::check_alive)
    }

    /// Waits for every peer to exit successfully (each within `timeout`); their outputs. At the
    /// first failure the others are killed and reaped.
    pub fn finish(self, timeout: Duration) -> BenchResult<Vec<String>> {
        let mut outs = Vec::with_capacity(self.peers.len());
        let mut rest = self.peers.into_iter();
        for p in rest.by_ref() {
            outs.push(p.finish(timeout)?);
        }
        Ok(outs)
    }
}

/// Reads `key=value` from a peer's output line.
pub fn field(out: &str, key: &str) -> BenchResult<f64> {
    out.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .ok_or_else(|| format!("peer printed no {key}: {out:?}"))?
        .parse::<f64>()
        .map_err(Into::into)
}

/// Peer-side setup: die with the driver, pin to the CPU the driver chose.
pub fn peer_setup() -> BenchResult<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } == 1 {
        return Err("driver process is gone".into());
    }
    if let Some(cpu) = std::env::var(CPU_ENV).ok().and_then(|c| c.parse().ok()) {
        pin(cpu);
    }
    Ok(())
}

/// A watchdog for the driver: if a row runs longer than its budget, the driver exits with an
/// error (its peers die with it, the supervisor cleans up) instead of hanging on a dead peer.
pub struct Watchdog {
    deadline_ms: std::sync::Arc<AtomicU64>,
    origin: Instant,
}

impl Watchdog {
    pub fn start() -> Watchdog {
        let deadline_ms = std::sync::Arc::new(AtomicU64::new(u64::MAX));
        let origin = Instant::now();
        let d = deadline_ms.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(200));
            if origin.elapsed().as_millis() as u64 > d.load(Ordering::Relaxed) {
                eprintln!("peers: a row exceeded its time budget (a peer hung or died); exiting");
                std::process::exit(3);
            }
        });
        Watchdog {
            deadline_ms,
            origin,
        }
    }

    /// Arms the watchdog for the next `budget`.
    pub fn arm(&self, budget: Duration) {
        let at = self.origin.elapsed() + budget;
        self.deadline_ms
            .store(at.as_millis() as u64, Ordering::Relaxed);
    }
}

/// The driver's pid, for the supervisor's signal handler.
static DRIVER_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = DRIVER_PID.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe and only sends a signal to our own child.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Supervisor: runs the driver (this executable, same arguments), then cleans up. Returns the
/// driver's exit code.
pub fn supervise() -> BenchResult<i32> {
    let prefix = prefix();
    let ice_parent = PathBuf::from("/tmp/iceoryx2");
    let ice_parent_existed = ice_parent.exists();
    let mut child = Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env(PREFIX_ENV, &prefix)
        .spawn()?;
    DRIVER_PID.store(child.id() as i32, Ordering::Relaxed);
    let handler = forward as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: `forward` only reads an atomic and calls the async-signal-safe `kill`.
        unsafe { libc::signal(sig, handler) };
    }
    let status = child.wait()?;
    let removed = cleanup(&prefix, ice_parent_existed);
    if removed > 0 {
        eprintln!("peers: removed {removed} leftover entries of this run ({prefix}*)");
    }
    Ok(status.code().unwrap_or(1))
}

/// Removes `/dev/shm/<prefix>*` and the run's iceoryx2 directory; returns what was removed.
fn cleanup(prefix: &str, ice_parent_existed: bool) -> usize {
    let mut removed = 0;
    if let Ok(dir) = std::fs::read_dir("/dev/shm") {
        for e in dir.flatten() {
            if e.file_name().to_string_lossy().starts_with(prefix)
                && std::fs::remove_file(e.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    let root = iceoryx_root();
    if root.exists() && std::fs::remove_dir_all(&root).is_ok() {
        removed += 1;
    }
    if !ice_parent_existed {
        // Only if it is empty: other users' iceoryx2 state is never touched.
        let _ = std::fs::remove_dir("/tmp/iceoryx2");
    }
    removed
}
