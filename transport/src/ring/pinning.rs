//! CPU placement from the builder: `with_process_core` / `with_consumer_core` and the
//! `MYELON_PROCESS_CORE` / `MYELON_CONSUMER_CORE` environment variables.
//!
//! Pinning is the caller's thread (the one that calls `build_producer` / `build_consumer`, and
//! an `AutoConsumer`'s background thread for a consumer core), never the whole process. It is
//! applied before the ring is created or attached, so the pages a producer initialises are
//! first touched on its core. A core this process may not run on (outside its cpuset, or past
//! the machine) is a typed error naming the cores it may use.

use crate::ring::error::{MultiProcessError, MultiProcessResult};

/// Environment variable: the core of the calling thread of `build_producer` / `build_consumer`
/// when the builder names none.
pub const PROCESS_CORE_ENV: &str = "MYELON_PROCESS_CORE";
/// Environment variable: the core of a consumer's thread when the builder names none (it wins
/// over [`PROCESS_CORE_ENV`] for consumers).
pub const CONSUMER_CORE_ENV: &str = "MYELON_CONSUMER_CORE";

/// The core an environment variable names, if it is set.
pub(crate) fn core_from_env(var: &'static str) -> MultiProcessResult<Option<usize>> {
    match std::env::var(var) {
        Err(_) => Ok(None),
        Ok(v) => {
            v.trim()
                .parse::<usize>()
                .map(Some)
                .map_err(|_| MultiProcessError::InvalidConfig {
                    reason: "a MYELON_*_CORE variable is not a CPU number",
                })
        }
    }
}

/// Pins the calling thread to `core`.
#[cfg(all(any(feature = "shm", feature = "mmap"), not(loom)))]
pub(crate) fn pin(core: usize) -> MultiProcessResult<()> {
    use myelon_backend_shm::affinity;
    let allowed =
        affinity::allowed_cpus().map_err(|source| io_error("sched_getaffinity", source))?;
    if !allowed.contains(&core) {
        return Err(MultiProcessError::InvalidCore { core, allowed });
    }
    affinity::pin_current_thread(core).map_err(|source| io_error("sched_setaffinity", source))?;
    tracing::debug!(core, "thread pinned");
    Ok(())
}

#[cfg(all(any(feature = "shm", feature = "mmap"), not(loom)))]
fn io_error(op: &'static str, source: std::io::Error) -> MultiProcessError {
    MultiProcessError::Backend(crate::backend::BackendError::Io {
        op,
        name: String::new(),
        source,
    })
}

/// Without an OS backend there is nothing to pin to: every core is refused.
#[cfg(not(all(any(feature = "shm", feature = "mmap"), not(loom))))]
pub(crate) fn pin(core: usize) -> MultiProcessResult<()> {
    Err(MultiProcessError::InvalidCore {
        core,
        allowed: Vec::new(),
    })
}
