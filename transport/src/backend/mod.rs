//! The `RingBackend` seam: where the bytes live, what they are called, what time it is, how to
//! wait, and whether a process is alive. Everything about sequences lives above this line.
//!
//! Three implementations ship: [`ShmBackend`] (POSIX shared memory), [`MmapBackend`]
//! (memory-mapped files) and [`SimBackend`] (an in-process simulated machine with a virtual
//! clock). `myelon` names no libc or memmap2 outside these modules.

pub use crate::ring::sync::AtomicU32;
use std::fmt;
use std::time::Duration;

#[cfg(all(feature = "mmap", not(loom)))]
mod mmap;
#[cfg(all(feature = "shm", not(loom)))]
mod shm;
mod sim;

#[cfg(all(feature = "mmap", not(loom)))]
pub use mmap::{MmapBackend, MmapRegion};
#[cfg(all(feature = "shm", not(loom)))]
pub use shm::{ShmBackend, ShmRegion};
pub use sim::{SimBackend, SimRegionHandle};

/// Liveness of a process as a backend can tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    /// The process exists.
    Alive,
    /// The process is gone (or its pid was reused by another process).
    Dead,
    /// The backend cannot tell.
    Unknown,
}

/// Why a backend operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BackendError {
    /// The name is already taken.
    AlreadyExists {
        /// The name.
        name: String,
    },
    /// Nothing of that name exists.
    NotFound {
        /// The name.
        name: String,
    },
    /// Not enough space to allocate the whole region up front.
    NoSpace {
        /// The name.
        name: String,
        /// Bytes requested.
        requested: usize,
    },
    /// The name is not acceptable to this backend.
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The requested length cannot be allocated as a region (zero, or too large for the OS).
    InvalidLength {
        /// The name.
        name: String,
        /// The length.
        len: usize,
        /// Why.
        reason: &'static str,
    },
    /// The OS refused access.
    PermissionDenied {
        /// The name.
        name: String,
    },
    /// The object exists but has no bytes yet (its creator has not sized it).
    Empty {
        /// The name.
        name: String,
    },
    /// A symlink was found where a region file was expected; it is never followed.
    Symlink {
        /// The name.
        name: String,
    },
    /// An object that myelon did not create holds the name (it carries neither a myelon magic
    /// nor the unfinished mark of a myelon creator): it is never removed or reclaimed.
    ForeignObject {
        /// The name.
        name: String,
    },
    /// The permission bits asked for a region are refused (owner read and write are required;
    /// only read and write bits; never writable by every user).
    InvalidMode {
        /// The name.
        name: String,
        /// The mode asked for.
        mode: u32,
        /// Why.
        reason: &'static str,
    },
    /// Any other OS error.
    Io {
        /// The operation that failed.
        op: &'static str,
        /// The name.
        name: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::AlreadyExists { name } => write!(f, "{name:?} already exists"),
            BackendError::NotFound { name } => write!(f, "{name:?} not found"),
            BackendError::NoSpace { name, requested } => {
                write!(f, "no space to allocate {requested} bytes for {name:?}")
            }
            BackendError::InvalidName { name, reason } => {
                write!(f, "invalid segment name {name:?}: {reason}")
            }
            BackendError::InvalidLength { name, len, reason } => {
                write!(f, "cannot allocate {len} bytes for {name:?}: {reason}")
            }
            BackendError::PermissionDenied { name } => write!(f, "permission denied for {name:?}"),
            BackendError::Empty { name } => write!(f, "{name:?} exists but has no bytes yet"),
            BackendError::Symlink { name } => {
                write!(f, "{name:?} is a symlink; refusing to follow")
            }
            BackendError::ForeignObject { name } => write!(
                f,
                "{name:?} is held by an object myelon did not create; it is left intact"
            ),
            BackendError::InvalidMode { name, mode, reason } => {
                write!(f, "mode {mode:#o} refused for {name:?}: {reason}")
            }
            BackendError::Io { op, name, source } => write!(f, "{op} {name:?}: {source}"),
        }
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BackendError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// One mapped region: the bytes of a ring (or coordination cursor) as this process sees them.
///
/// # Safety
///
/// The ring code turns `as_ptr()` into typed references (only in `ring/layout.rs`), so an
/// implementation must guarantee, for as long as the `Region` value lives:
///
/// 1. **Length and lifetime.** `as_ptr()` is non-null and the same on every call, and the
///    `len()` bytes from it are mapped, readable and writable (page-granular: the mapping never
///    shrinks, is never remapped and is never unmapped before `drop`). Touching any of them
///    never faults (no sparse file pages: the whole length was allocated up front).
/// 2. **Alignment.** `as_ptr()` is aligned to at least 4096 bytes (a page). The layout checks it
///    and refuses a region that is not, but it may rely on it for every offset it computes.
/// 3. **Zero fill.** A region returned by `create` is zero-filled.
/// 4. **Sharing.** Other processes (or, in the simulator, other actors) may read and write any of
///    these bytes at any time. The ring only accesses shared words through atomics and slots
///    through the stamp protocol, and validates every value it reads; the implementation must
///    not assume the bytes are private, and must not itself write them after `create` returns.
pub unsafe trait Region: Send + Sync {
    /// Base of the mapping.
    fn as_ptr(&self) -> *mut u8;
    /// Length of the mapping in bytes.
    fn len(&self) -> usize;
    /// Whether the mapping is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether this handle created the region (and so removes it on drop).
    fn is_owner(&self) -> bool;
    /// Whether the creator of the region is still alive. For SHM and mmap this is a kernel
    /// released lock, so it is exact even across pid reuse.
    fn owner_state(&self) -> ProcessState;
    /// Creator only: the region now carries what identifies it (its magic); lift the unfinished
    /// mark `create` left on it and give it its final permission bits `mode` (`0o600`, or a
    /// group mode such as `0o660`). Until then `open` reports it `Empty` and a reclaimer may
    /// remove it once its creator died, whatever its bytes. Backends without such a mark do
    /// nothing.
    fn finish(&self, mode: u32) -> Result<(), BackendError> {
        let _ = mode;
        Ok(())
    }
    /// Who owns the object and its permission bits, as the OS reports them now; `None` for a
    /// backend without owners (the simulator).
    fn owner(&self) -> Option<RegionOwner> {
        None
    }
    /// Makes bytes `offset..offset + len` of this mapping read-only for this process (a write
    /// through it is then a `SIGSEGV` in the writer, not corruption for every peer). `offset`
    /// is page aligned; a `len` that does not end on a page is rounded up (the mapping ends on
    /// one). Consumers call it on the slot area. Backends whose peers share one address space
    /// (the simulator) cannot protect anything and do nothing.
    fn protect_read_only(&self, offset: usize, len: usize) -> Result<(), BackendError> {
        let _ = (offset, len);
        Ok(())
    }
    /// Faults every page of the mapping in now (`write`: for writing), so that the first
    /// accesses to each page later take no page fault (first-message latency). The bytes are
    /// not changed. Backends without page tables do nothing.
    fn prefault(&self, write: bool) -> Result<(), BackendError> {
        let _ = write;
        Ok(())
    }
    /// Takes lock slot `slot` of the object through this handle, without waiting: a lock the
    /// **kernel releases when the holder dies**, however it dies, and that means the same in
    /// every PID namespace sharing the object (SHM and mmap: an open-file-description `fcntl`
    /// lock on byte `slot` of the object's lock space; the simulator: its process table). Held
    /// per handle: two handles conflict even in one process. `Ok(true)`: held now (also if this
    /// handle held it already); `Ok(false)`: another live handle holds it. The ring uses one
    /// slot for the registry lock and one per consumer entry (`ring::layout::lock_slot`).
    fn try_lock_slot(&self, slot: u64) -> Result<bool, BackendError>;
    /// Creator only: keep the object's name when this handle drops (by default the creator's
    /// handle removes it). A multi-producer ring's creator that detaches while other producers
    /// still use the ring calls this; the last producer removes the ring.
    fn keep_name_on_drop(&self) {}
    /// Releases lock slot `slot` if this handle holds it (dropping the handle releases all).
    fn unlock_slot(&self, slot: u64);
    /// Whether the object still has its name: `false` once it was removed (by a reclaimer, or
    /// its last user), even if the name now refers to a newer object. A process that takes a
    /// lock slot of [`RemovalGuard::slots`] checks it afterwards: the removal held those slots
    /// until the name was gone, so a slot taken after it is one of a removed object.
    fn is_linked(&self) -> bool;
    /// Who holds lock slot `slot`, seen from this handle: `Alive` if another live handle holds
    /// it, `Dead` if nobody does (whoever held it let go or died: proven by the kernel),
    /// `Unknown` if the backend cannot tell (never to be taken for dead). A probe through the
    /// handle that holds the slot sees `Dead`: ask through another handle.
    fn slot_state(&self, slot: u64) -> ProcessState;
}

/// Owner uid and permission bits of a region's object (see [`Region::owner`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionOwner {
    /// Owner uid.
    pub uid: u32,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
}

/// A shared-memory-visible step of the ring code, reported to [`RingBackend::sched_point`]
/// just before it happens. Under the simulator each one is a point where the deterministic
/// scheduler may switch to another actor (or crash the caller there); on SHM and mmap the call
/// compiles to nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
#[non_exhaustive]
pub enum SchedPoint {
    /// Producer: write an event into a claimed slot (data: sequence).
    SlotWrite = 1,
    /// Producer: store a slot's stamp, publishing it (data: sequence).
    SlotStamp,
    /// Producer: store the producer cursor (data: cursor).
    CursorAnnounce,
    /// Producer: read one consumer-table entry in a gating scan (data: entry index).
    GatingEntry,
    /// Either side: read the waiter count of a wake line before a wake.
    WakeCheck,
    /// Either side: arm a futex wait (waiter count up, fence).
    WaitArm,
    /// Either side: re-check the condition after arming.
    WaitRecheck,
    /// Consumer: load the stamp of its next slot (data: sequence).
    StampLoad,
    /// Consumer: read an event in place (data: sequence).
    SlotRead,
    /// Consumer: store its cursor, releasing slots (data: cursor).
    CursorRelease,
    /// Consumer: load the header state or probe the producer's liveness.
    ProducerCheck,
    /// Registry: take or release the registry lock.
    RegistryLock,
    /// Registry: write a consumer-table entry (state, id, cursor, owner).
    EntryWrite,
    /// Registry: read the producer cursor to decide where a consumer starts (data: cursor).
    JoinCursor,
    /// Builder: initialise a segment's header and table, before `READY`.
    SegmentInit,
    /// Builder: store `READY` or `CLOSED` in the header.
    SegmentState,
    /// Backend: a region operation (create, open, remove, reclaim, list).
    RegionOp,
    /// Multi-producer: store the claim intent in the producer's entry (data: first sequence).
    ClaimIntent,
    /// Multi-producer: compare-and-swap the claim cursor (data: first sequence).
    ClaimCas,
    /// Multi-producer consumer: decide whether an unpublished claimed slot is abandoned (data:
    /// sequence).
    HoleCheck,
}

/// Outcome of [`RingBackend::wait`]. Callers must re-check their condition in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Woken, or the word no longer held the expected value.
    Woken,
    /// The timeout elapsed.
    TimedOut,
}

/// What [`RingBackend::remove_if_abandoned`] leaves in place besides an object whose creator
/// lives. Both tests are made under the removal's owner lock, on the object it would remove —
/// not on what a caller saw under the name earlier, which may have been replaced since.
#[derive(Clone, Copy, Debug, Default)]
pub struct RemovalGuard<'a> {
    /// Lock slots ([`Region::try_lock_slot`]) whose live holders keep the object. The removal
    /// takes them all (SHM and mmap: shared `fcntl` locks over those bytes of the lock space,
    /// which exclude every exclusive slot lock) and keeps them until the name is gone, so a
    /// process that takes one of them afterwards finds the object unlinked
    /// ([`Region::is_linked`]).
    pub slots: &'a [std::ops::Range<u64>],
    /// Shown the object's first [`REMOVAL_HEAD_LEN`] bytes (fewer if it is shorter): `true`
    /// keeps it.
    pub keep: Option<fn(&[u8]) -> bool>,
}

impl RemovalGuard<'_> {
    /// Nothing besides a live creator keeps the object.
    pub const NONE: RemovalGuard<'static> = RemovalGuard {
        slots: &[],
        keep: None,
    };
}

/// How many leading bytes [`RemovalGuard::keep`] is shown.
pub const REMOVAL_HEAD_LEN: usize = 128;

/// The platform seam of the ring.
pub trait RingBackend: Clone + Send + Sync + 'static {
    /// A mapped region.
    type Region: Region;

    /// Short name of the backend ("shm", "mmap", "sim").
    fn kind(&self) -> &'static str;
    /// Validates a logical name and returns the OS-level name it maps to.
    fn os_name(&self, name: &str) -> Result<String, BackendError>;
    /// Creates a region exclusively: zero-filled, fully allocated before it is mapped, owned by
    /// this process until dropped (and removed then).
    fn create(&self, name: &str, len: usize) -> Result<Self::Region, BackendError>;
    /// Maps an existing region read-write.
    fn open(&self, name: &str) -> Result<Self::Region, BackendError>;
    /// Maps an existing region **read-only**, for a reader that may not write it (an inspector
    /// run by another user). The returned region breaks clause 1 of the [`Region`] contract
    /// (its bytes are not writable): only code that never writes may use it (the
    /// `RingInspector`, which only loads). The default maps it read-write.
    fn open_read_only(&self, name: &str) -> Result<Self::Region, BackendError> {
        self.open(name)
    }
    /// Removes a name. Processes that mapped it keep their mapping.
    fn remove(&self, name: &str) -> Result<(), BackendError>;
    /// Removes `name` only if its creator is gone (no process holds its owner lock) and the
    /// object is provably made by this protocol, atomically with respect to creators and other
    /// reclaimers. Provably ours: its first eight bytes (a native-endian `u64`) are one of
    /// `magics`, or it still carries the unfinished mark of a creator of this user that died
    /// before [`Region::finish`]. `Ok(false)`: a live owner holds it, or `guard` keeps it (a
    /// live holder of one of its lock slots, or its `keep` test on the object's first bytes,
    /// both decided under the owner lock, on the very object removed). Anything else
    /// abandoned under the name is `ForeignObject` and left intact. Works on regions of any
    /// length, including one its creator never sized.
    fn remove_if_abandoned(
        &self,
        name: &str,
        magics: &[u64],
        guard: RemovalGuard<'_>,
    ) -> Result<bool, BackendError>;
    /// Logical names of the regions this backend can see (for discovery and cleanup).
    fn list(&self) -> Result<Vec<String>, BackendError>;
    /// Monotonic time since an arbitrary, per-backend origin (virtual in the simulator).
    fn now(&self) -> Duration;
    /// Blocks while `*word == expected`, for at most `timeout`. May return spuriously.
    fn wait(&self, word: &AtomicU32, expected: u32, timeout: Duration) -> WaitOutcome;
    /// Wakes every waiter blocked on `word`.
    fn wake_all(&self, word: &AtomicU32);
    /// Gives up the CPU briefly.
    fn yield_now(&self);
    /// Sleeps for `d` (advances virtual time in the simulator).
    fn sleep(&self, d: Duration);
    /// A compact non-zero token naming this process (used in shared-memory ownership words).
    fn process_token(&self) -> u64;
    /// The pid and start time of this process, for display.
    fn process_identity(&self) -> (u32, u64);
    /// Liveness of the process a token names, by pid and start time: a **hint** for display
    /// (the CLI's listings), wrong across PID namespaces and without `/proc`. The ring never
    /// decides that a peer is dead from it: that is what [`Region::slot_state`] proves.
    fn token_state(&self, token: u64) -> ProcessState;
    /// This process's effective uid, for the owner check of attach; `None` for a backend
    /// without users (the simulator).
    fn effective_uid(&self) -> Option<u32> {
        None
    }

    /// Whether this handle's process was killed (simulators only: a process the simulator
    /// killed runs no more code, so a ring handle dropped afterwards — a madsim node kill drops
    /// its tasks' futures — leaves the shared memory exactly as it was, as after `SIGKILL`).
    /// Real backends: always `false` (a killed process runs no destructor at all).
    #[inline(always)]
    fn process_killed(&self) -> bool {
        false
    }

    /// Async waits without a helper thread (the simulator under `--cfg madsim`, where threads
    /// are not allowed): arranges for `waker` to be woken by the next [`Self::wake_all`] on
    /// `word`, or wakes it at once if `word` no longer holds `expected`. `false`: not supported;
    /// the async API then sleeps in [`Self::wait`] on a helper thread.
    fn wake_on_change(&self, word: &AtomicU32, expected: u32, waker: &std::task::Waker) -> bool {
        let _ = (word, expected, waker);
        false
    }

    /// A scheduling point just before the step `point` (with a value worth tracing). The
    /// default is an inlined no-op: SHM and mmap pay nothing; the simulator hands control to
    /// its deterministic scheduler here.
    #[inline(always)]
    fn sched_point(&self, point: SchedPoint, data: i64) {
        let _ = (point, data);
    }

    /// How many rounds of a spin phase to run before yielding or blocking, given the nominal
    /// count (the simulator shortens spin phases: each round costs scheduling steps there).
    #[inline(always)]
    fn spin_rounds(&self, nominal: u32) -> u32 {
        nominal
    }

    /// The least an attach waits for a live holder of a ring's registry lock, given the
    /// nominal floor (1 s). The simulator scales it down to its own time scale: its stalls
    /// last microseconds to a few hundred milliseconds, and it must still see a holder that
    /// outlasts the floor.
    #[inline(always)]
    fn registry_lock_floor(&self, nominal: Duration) -> Duration {
        nominal
    }
}

/// The backend the short type names default to: POSIX shared memory (the simulator when the
/// `shm` feature is off).
#[cfg(all(feature = "shm", not(loom)))]
pub type DefaultBackend = ShmBackend;
/// The backend the short type names default to: POSIX shared memory (the simulator when the
/// `shm` feature is off).
#[cfg(not(all(feature = "shm", not(loom))))]
pub type DefaultBackend = SimBackend;
