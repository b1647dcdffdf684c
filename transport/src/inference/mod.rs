//! Fixed-topology inference helpers: one scheduler, `N` workers (2 to 8).
//!
//! ```text
//!                      dispatch ring (broadcast, typed requests)
//!   scheduler ───────────────────────────────────────────────▶ worker 0 .. worker N-1
//!   scheduler ◀──────── response ring r (typed responses) ─────── worker r
//! ```
//!
//! Names come from a [`MyelonTransportConfig`] (session label, prefix, depths): the scheduler
//! creates the dispatch ring and the session's [coordination
//! cursor](crate::session::coordination_cursor); worker `r` creates response ring `r`. Every
//! process derives the same names from the label.
//!
//! **Rendezvous.** Neither side publishes before the other is attached:
//! [`FixedTopology::scheduler`] returns once every worker has attached to the dispatch ring and
//! the scheduler has attached to every response ring; [`FixedTopology::worker`] returns once the
//! worker is attached to the dispatch ring and the scheduler to its response ring. Each fails
//! with [`InferenceTopologyError::RendezvousTimeout`] (naming what is missing) at the rendezvous
//! deadline. The dispatch ring reserves an entry per worker id from the start, so requests are
//! never published to a worker that has not attached yet without being kept for it.
//!
//! **Worker restarts.** A worker that dies and is started again with the same rank rejoins the
//! dispatch ring under its id and resumes after the last request it received (a typed receive
//! releases the request's slots when it decodes it, so a request the dead worker received but
//! never answered is not delivered again: give requests a deadline on the scheduler side). It
//! re-creates its response ring (the dead one is reclaimed) and bumps its rank
//! word in the coordination cursor; it does not wait for the scheduler this time (the
//! scheduler's reservation keeps its responses). The scheduler, on finding the old response
//! ring's producer dead in [`Scheduler::recv_from`], waits for that word to move and re-attaches.
//!
//! **Liveness.** [`Scheduler::enable_required_worker_liveness`] makes the workers required
//! consumers of the dispatch ring: a stalled or dead worker that blocks a broadcast becomes an
//! alert (and a recovery when it rejoins), or a
//! [`GracefulShutdownTriggered`](crate::RequiredConsumerError::GracefulShutdownTriggered) error
//! from [`Scheduler::broadcast`], never a silent hang.

mod scheduler;
mod worker;

pub use scheduler::Scheduler;

/// The name a backend is given for a layout's segment: without its leading `/` (the SHM backend
/// adds it back; for the mmap backend it is the file name in the session directory).
fn ring_name(segment: &str) -> &str {
    segment.trim_start_matches('/')
}
pub use worker::Worker;

use crate::backend::RingBackend;
use crate::typed::codec::CodecError;
use crate::ring::error::MultiProcessError;
use crate::transport::{
    CoordinationCursorError, FixedFrame, MyelonLayoutError, MyelonTransportConfig,
    MyelonTransportLayout, TransportError,
};
use crate::RequiredConsumerError;
use std::fmt;
use std::time::Duration;

/// The frame of every topology ring: 512-byte frames (500 payload bytes); larger messages are
/// fragmented and reassembled.
pub type TopologyFrame = FixedFrame<500>;

/// Default rendezvous deadline.
pub const DEFAULT_RENDEZVOUS_TIMEOUT: Duration = Duration::from_secs(30);

/// Number of workers of a [`FixedTopology`]: 2 to 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerCount(u8);

impl WorkerCount {
    /// Fewest workers.
    pub const MIN: usize = 2;
    /// Most workers.
    pub const MAX: usize = 8;

    /// `n` workers; `InvalidWorkerCount` outside `MIN..=MAX`.
    pub fn new(n: usize) -> InferenceTopologyResult<Self> {
        if (Self::MIN..=Self::MAX).contains(&n) {
            Ok(WorkerCount(n as u8))
        } else {
            Err(InferenceTopologyError::InvalidWorkerCount {
                count: n,
                min: Self::MIN,
                max: Self::MAX,
            })
        }
    }

    /// The count.
    pub fn get(self) -> usize {
        usize::from(self.0)
    }

    /// Every valid count, ascending.
    pub fn all() -> impl Iterator<Item = WorkerCount> {
        (Self::MIN..=Self::MAX).map(|n| WorkerCount(n as u8))
    }
}

impl TryFrom<usize> for WorkerCount {
    type Error = InferenceTopologyError;
    fn try_from(n: usize) -> InferenceTopologyResult<Self> {
        WorkerCount::new(n)
    }
}

impl fmt::Display for WorkerCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a topology operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum InferenceTopologyError {
    /// A worker count outside `2..=8`.
    InvalidWorkerCount {
        /// The count.
        count: usize,
        /// [`WorkerCount::MIN`].
        min: usize,
        /// [`WorkerCount::MAX`].
        max: usize,
    },
    /// A worker rank not below the worker count.
    InvalidRank {
        /// The rank.
        rank: usize,
        /// The worker count.
        workers: usize,
    },
    /// The session configuration or a derived name was refused.
    Layout(MyelonLayoutError),
    /// The peers did not all attach before the rendezvous deadline.
    RendezvousTimeout {
        /// `"scheduler"` or `"worker <rank>"`: who gave up.
        side: String,
        /// What was still missing (worker ids, ring names, the coordination cursor).
        missing: Vec<String>,
        /// How long it waited.
        waited: Duration,
    },
    /// A worker's response ring died and no new incarnation appeared before the deadline.
    WorkerLost {
        /// The worker's rank.
        rank: usize,
    },
    /// The coordination cursor could not be created or opened.
    Cursor(CoordinationCursorError),
    /// A ring or frame error.
    Transport(TransportError),
    /// A message could not be encoded or decoded.
    Codec(CodecError),
    /// Required-worker liveness stopped a broadcast.
    Liveness(RequiredConsumerError),
    /// The directories of an mmap session could not be made (`scheduler_mmap`, `worker_mmap`).
    MmapLayout(crate::session::MmapLayoutError),
}

impl fmt::Display for InferenceTopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidWorkerCount { count, min, max } => {
                write!(f, "{count} workers: a fixed topology has {min} to {max}")
            }
            Self::InvalidRank { rank, workers } => {
                write!(f, "worker rank {rank} out of range for {workers} workers")
            }
            Self::Layout(e) => e.fmt(f),
            Self::RendezvousTimeout {
                side,
                missing,
                waited,
            } => write!(
                f,
                "{side}: rendezvous timed out after {waited:?}, missing {missing:?}"
            ),
            Self::WorkerLost { rank } => write!(
                f,
                "worker {rank}'s response ring died and no restart appeared in time"
            ),
            Self::Cursor(e) => e.fmt(f),
            Self::Transport(e) => e.fmt(f),
            Self::Codec(e) => e.fmt(f),
            Self::Liveness(e) => e.fmt(f),
            Self::MmapLayout(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for InferenceTopologyError {}

impl From<MyelonLayoutError> for InferenceTopologyError {
    fn from(e: MyelonLayoutError) -> Self {
        Self::Layout(e)
    }
}
impl From<crate::session::MmapLayoutError> for InferenceTopologyError {
    fn from(e: crate::session::MmapLayoutError) -> Self {
        Self::MmapLayout(e)
    }
}
impl From<CoordinationCursorError> for InferenceTopologyError {
    fn from(e: CoordinationCursorError) -> Self {
        Self::Cursor(e)
    }
}
impl From<TransportError> for InferenceTopologyError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Codec(c) => Self::Codec(c),
            TransportError::Liveness(l) => Self::Liveness(l),
            e => Self::Transport(e),
        }
    }
}
impl From<MultiProcessError> for InferenceTopologyError {
    fn from(e: MultiProcessError) -> Self {
        Self::Transport(TransportError::Ring(e))
    }
}
impl From<CodecError> for InferenceTopologyError {
    fn from(e: CodecError) -> Self {
        Self::Codec(e)
    }
}
impl From<RequiredConsumerError> for InferenceTopologyError {
    fn from(e: RequiredConsumerError) -> Self {
        Self::Liveness(e)
    }
}

/// Result type of the topology helpers.
pub type InferenceTopologyResult<T> = Result<T, InferenceTopologyError>;

/// One scheduler and `N` workers over a session's rings (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedTopology {
    config: MyelonTransportConfig,
    workers: WorkerCount,
    rendezvous_timeout: Duration,
}

impl FixedTopology {
    /// A topology of `workers` workers for session `session_label`, with the default prefix,
    /// depths and wait strategy.
    pub fn new(session_label: &str, workers: WorkerCount) -> InferenceTopologyResult<Self> {
        Self::from_config(MyelonTransportConfig::new(session_label, workers.get())?)
    }

    /// A topology over an existing session configuration (its runner count must be a valid
    /// [`WorkerCount`]).
    pub fn from_config(config: MyelonTransportConfig) -> InferenceTopologyResult<Self> {
        Ok(FixedTopology {
            workers: WorkerCount::new(config.runners())?,
            config,
            rendezvous_timeout: DEFAULT_RENDEZVOUS_TIMEOUT,
        })
    }

    /// How long a scheduler or worker waits for its peers when it starts.
    pub fn with_rendezvous_timeout(mut self, timeout: Duration) -> Self {
        self.rendezvous_timeout = timeout;
        self
    }

    /// The session configuration.
    pub fn config(&self) -> &MyelonTransportConfig {
        &self.config
    }

    /// The segment names.
    pub fn layout(&self) -> &MyelonTransportLayout {
        self.config.layout()
    }

    /// Number of workers.
    pub fn workers(&self) -> WorkerCount {
        self.workers
    }

    /// The rendezvous deadline.
    pub fn rendezvous_timeout(&self) -> Duration {
        self.rendezvous_timeout
    }

    /// The consumer id of worker `rank` on the dispatch ring.
    pub fn worker_id(rank: usize) -> String {
        MyelonTransportLayout::dispatch_consumer_id(rank)
    }

    /// The dispatch-ring consumer ids of every worker (the required set for liveness).
    pub fn worker_ids(&self) -> Vec<String> {
        (0..self.workers.get()).map(Self::worker_id).collect()
    }

    fn check_rank(&self, rank: usize) -> InferenceTopologyResult<()> {
        if rank < self.workers.get() {
            Ok(())
        } else {
            Err(InferenceTopologyError::InvalidRank {
                rank,
                workers: self.workers.get(),
            })
        }
    }

    /// Starts the scheduler on `backend` (see the module docs for the rendezvous).
    pub fn scheduler_on<Req, Resp, C, B>(
        &self,
        backend: B,
        codec: C,
    ) -> InferenceTopologyResult<Scheduler<Req, Resp, C, B>>
    where
        C: crate::Codec<Req> + crate::Codec<Resp> + Clone,
        B: RingBackend,
    {
        Scheduler::connect(self, backend, codec)
    }

    /// Starts worker `rank` on `backend` (see the module docs for the rendezvous).
    pub fn worker_on<Req, Resp, C, B>(
        &self,
        backend: B,
        rank: usize,
        codec: C,
    ) -> InferenceTopologyResult<Worker<Req, Resp, C, B>>
    where
        C: crate::Codec<Req> + crate::Codec<Resp> + Clone,
        B: RingBackend,
    {
        self.check_rank(rank)?;
        Worker::connect(self, backend, rank, codec)
    }

    /// Starts the scheduler over POSIX shared memory.
    #[cfg(feature = "shm")]
    pub fn scheduler<Req, Resp, C>(
        &self,
        codec: C,
    ) -> InferenceTopologyResult<Scheduler<Req, Resp, C, crate::backend::ShmBackend>>
    where
        C: crate::Codec<Req> + crate::Codec<Resp> + Clone,
    {
        self.scheduler_on(crate::backend::ShmBackend, codec)
    }

    /// Starts worker `rank` over POSIX shared memory.
    #[cfg(feature = "shm")]
    pub fn worker<Req, Resp, C>(
        &self,
        rank: usize,
        codec: C,
    ) -> InferenceTopologyResult<Worker<Req, Resp, C, crate::backend::ShmBackend>>
    where
        C: crate::Codec<Req> + crate::Codec<Resp> + Clone,
    {
        self.worker_on(crate::backend::ShmBackend, rank, codec)
    }

    /// This session's ring files under `root` (see [`MmapTransportLayout`](crate::MmapTransportLayout)).
    pub fn mmap_layout(&self, root: impl Into<std::path::PathBuf>) -> crate::MmapTransportLayout {
        self.layout().mmap_layout(root)
    }

    /// Starts the scheduler over memory-mapped files in this session's directory under `root`
    /// (created, mode 0700, if missing: [`MmapTransportLayout::ensure_directories`](crate::MmapTransportLayout::ensure_directories)).
    #[cfg(feature = "mmap")]
    pub fn scheduler_mmap<Req, Resp, C>(
        &self,
        root: impl Into<std::path::PathBuf>,
        codec: C,
    ) -> InferenceTopologyResult<Scheduler<Req, Resp, C, crate::backend::MmapBackend>>
    where
        C: crate::Codec<Req> + crate::Codec<Resp> + Clone,
    {
        let files = self.mmap_layout(root);
        files.ensure_directories()?;
        self.scheduler_on(crate::backend::MmapBackend::new(files.session_dir()), codec)
    }

    /// Starts worker `rank` over memory-mapped files in this session's directory under `root`.
    #[cfg(feature = "mmap")]
    pub fn worker_mmap<Req, Resp, C>(
        &self,
        root: impl Into<std::path::PathBuf>,
        rank: usize,
        codec: C,
    ) -> InferenceTopologyResult<Worker<Req, Resp, C, crate::backend::MmapBackend>>
    where
        C: crate::Codec<Req> + crate::Codec<Resp> + Clone,
    {
        let files = self.mmap_layout(root);
        files.ensure_directories()?;
        self.worker_on(crate::backend::MmapBackend::new(files.session_dir()), rank, codec)
    }
}

/// The time left before `deadline` (backend clock), or a rendezvous error naming `missing`.
pub(crate) fn left<B: RingBackend>(
    backend: &B,
    start: Duration,
    timeout: Duration,
    side: &str,
    missing: impl FnOnce() -> Vec<String>,
) -> InferenceTopologyResult<Duration> {
    let waited = backend.now().saturating_sub(start);
    if waited >= timeout {
        return Err(InferenceTopologyError::RendezvousTimeout {
            side: side.into(),
            missing: missing(),
            waited,
        });
    }
    Ok(timeout - waited)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_count_table() {
        for n in 0..20 {
            let ok = (2..=8).contains(&n);
            match WorkerCount::new(n) {
                Ok(w) => assert!(ok && w.get() == n, "{n}"),
                Err(InferenceTopologyError::InvalidWorkerCount { count, min, max }) => {
                    assert!(!ok && (count, min, max) == (n, 2, 8), "{n}")
                }
                Err(e) => panic!("{n}: {e}"),
            }
        }
        assert_eq!(WorkerCount::all().count(), 7);
        let t = FixedTopology::new("s", WorkerCount::new(3).unwrap()).unwrap();
        assert_eq!(t.worker_ids(), ["runner-0", "runner-1", "runner-2"]);
        assert!(matches!(
            t.check_rank(3),
            Err(InferenceTopologyError::InvalidRank {
                rank: 3,
                workers: 3
            })
        ));
        let one = MyelonTransportConfig::new("s", 1).unwrap();
        assert!(FixedTopology::from_config(one).is_err());
    }
}
