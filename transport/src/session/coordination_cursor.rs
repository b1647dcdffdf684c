//! The coordination cursor of a session: a one-page shared segment that says *which
//! incarnation* of each peer is current.
//!
//! Rings already tell a consumer whether their producer is alive, and coordination modes tell a
//! producer whether its consumers attached. What they cannot tell is whether the ring behind a
//! name is the one a *restarted* peer just created or the stale one it left behind when it died.
//! The coordination cursor answers that with monotonic counters:
//!
//! * a session **generation**, bumped by the engine each time it (re)starts the session;
//! * one **rank word** per runner rank (up to [`COORDINATION_RANKS`]), which runner `r` bumps
//!   *after* its rings of the new incarnation are ready. A peer that saw `r`'s ring die waits
//!   for `r`'s word to move past the value it last saw, then re-attaches by name.
//!
//! It is created by the engine with [`ensure_coordination_cursor`] (create, or open the live one,
//! or replace one whose creator died) and opened by runners with
//! [`CoordinationCursor::open_with`]. Its layout (page 0): a 128-byte header line (magic
//! `"MYELONC\x01"`, version, rank count, generation, state written last), then one 128-byte
//! line per rank. Like a ring, it is removed when its creator drops it; `myelon list` shows it
//! as kind `cursor`.

use super::layout_names::SegmentNameError;
use crate::backend::{BackendError, ProcessState, Region, RemovalGuard, RingBackend};
use crate::ring::sync::{AtomicU32, AtomicU64, Ordering};
use std::fmt;
use std::mem::size_of;
use std::time::Duration;

/// Magic at offset 0 of a coordination cursor segment.
pub const COORDINATION_CURSOR_MAGIC: u64 = u64::from_le_bytes(*b"MYELONC\x01");
/// Rank words in a coordination cursor.
pub const COORDINATION_RANKS: usize = 16;
const CURSOR_VERSION: u32 = 1;
const CURSOR_LEN: usize = 4096;
const STATE_READY: u32 = 1;

#[repr(C, align(128))]
struct CursorHeader {
    magic: AtomicU64,
    version: AtomicU32,
    ranks: AtomicU32,
    generation: AtomicU64,
    state: AtomicU32,
}

#[repr(C, align(128))]
struct RankLine {
    value: AtomicU64,
}

#[repr(C)]
struct CursorSegment {
    header: CursorHeader,
    ranks: [RankLine; COORDINATION_RANKS],
}

const _: () = {
    use std::mem::offset_of;
    assert!(offset_of!(CursorHeader, magic) == 0);
    assert!(offset_of!(CursorHeader, version) == 8);
    assert!(offset_of!(CursorHeader, ranks) == 12);
    assert!(offset_of!(CursorHeader, generation) == 16);
    assert!(offset_of!(CursorHeader, state) == 24);
    assert!(offset_of!(CursorSegment, ranks) == 128);
    assert!(size_of::<CursorSegment>() == 128 * (1 + COORDINATION_RANKS));
    assert!(size_of::<CursorSegment>() <= CURSOR_LEN);
};

/// Why a coordination cursor cannot be created or opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum CoordinationCursorError {
    /// The name is not a portable segment name.
    Name(SegmentNameError),
    /// The backend failed.
    Backend(BackendError),
    /// Something else lives under that name (it is never touched).
    NotACursor {
        /// The name.
        name: String,
    },
    /// The cursor did not appear (or become ready) in time.
    NotReady {
        /// The name.
        name: String,
        /// How long it was waited for.
        waited: Duration,
    },
}

impl fmt::Display for CoordinationCursorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(e) => e.fmt(f),
            Self::Backend(e) => write!(f, "coordination cursor: {e}"),
            Self::NotACursor { name } => write!(f, "{name:?} is not a coordination cursor"),
            Self::NotReady { name, waited } => {
                write!(f, "coordination cursor {name:?} not ready after {waited:?}")
            }
        }
    }
}

impl std::error::Error for CoordinationCursorError {}

impl From<BackendError> for CoordinationCursorError {
    fn from(e: BackendError) -> Self {
        CoordinationCursorError::Backend(e)
    }
}

/// A mapped coordination cursor (see the module docs).
pub struct CoordinationCursor<B: RingBackend = crate::backend::DefaultBackend> {
    region: B::Region,
    backend: B,
    name: String,
}

impl<B: RingBackend> fmt::Debug for CoordinationCursor<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoordinationCursor")
            .field("name", &self.name)
            .field("generation", &self.generation())
            .finish()
    }
}

/// The cursor segment of a region, if the region can hold one.
fn segment_of(region: &impl Region) -> Option<&CursorSegment> {
    // SAFETY: every field of `CursorSegment` is an atomic, valid for any bit pattern, and only
    // accessed atomically, so even a foreign region yields a valid reference.
    unsafe { crate::ring::layout::region_struct::<CursorSegment>(region) }
}

/// Whether `region` holds a ready coordination cursor.
pub(crate) fn is_cursor(region: &impl Region) -> bool {
    segment_of(region).is_some_and(|s| {
        // Relaxed then a fence (as Acquire): `listing` asks this of read-only mappings too.
        let ready = s.header.magic.load(Ordering::Relaxed) == COORDINATION_CURSOR_MAGIC
            && s.header.state.load(Ordering::Relaxed) == STATE_READY;
        crate::ring::sync::fence(Ordering::Acquire);
        ready
    })
}

/// Creates (or opens the live) coordination cursor `name` in POSIX shared memory; `name` must
/// pass [`validate_segment_name`](crate::session::validate_segment_name). See [`CoordinationCursor::ensure_with`].
#[cfg(feature = "shm")]
pub fn ensure_coordination_cursor(
    name: &str,
) -> Result<CoordinationCursor<crate::backend::ShmBackend>, CoordinationCursorError> {
    super::layout_names::validate_segment_name(name).map_err(CoordinationCursorError::Name)?;
    CoordinationCursor::ensure_with(crate::backend::ShmBackend, name)
}

impl<B: RingBackend> CoordinationCursor<B> {
    /// Creates cursor `name` on `backend` (generation 0, every rank word 0), or opens it if a
    /// live process created it; one left by a dead creator is removed (atomically, see
    /// [`RingBackend::remove_if_abandoned`]) and created afresh. Anything else under the name
    /// is `NotACursor` and is left alone.
    pub fn ensure_with(backend: B, name: &str) -> Result<Self, CoordinationCursorError> {
        for _ in 0..8 {
            match backend.create(name, CURSOR_LEN) {
                Ok(region) => return Self::initialise(region, backend, name),
                Err(BackendError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            match backend.open(name) {
                Ok(region) if is_cursor(&region) => {
                    if region.owner_state() != ProcessState::Dead {
                        return Ok(Self::wrap(region, backend, name));
                    }
                }
                Ok(region) if segment_of(&region).is_some_and(is_foreign) => {
                    return Err(CoordinationCursorError::NotACursor { name: name.into() });
                }
                // Not ready yet (its creator is initialising it) or gone: look again.
                Ok(_) | Err(BackendError::NotFound { .. } | BackendError::Empty { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            match backend.remove_if_abandoned(name, &[COORDINATION_CURSOR_MAGIC], RemovalGuard::NONE) {
                Ok(_) | Err(BackendError::NotFound { .. }) => {}
                Err(BackendError::ForeignObject { .. }) => {
                    return Err(CoordinationCursorError::NotACursor { name: name.into() });
                }
                Err(e) => return Err(e.into()),
            }
            backend.sleep(Duration::from_millis(1));
        }
        Err(CoordinationCursorError::NotReady {
            name: name.into(),
            waited: Duration::ZERO,
        })
    }

    /// Opens cursor `name` on `backend`, waiting up to `timeout` for it to exist and be ready.
    pub fn open_with(
        backend: B,
        name: &str,
        timeout: Duration,
    ) -> Result<Self, CoordinationCursorError> {
        let start = backend.now();
        loop {
            match backend.open(name) {
                Ok(region) if is_cursor(&region) => return Ok(Self::wrap(region, backend, name)),
                Ok(region) if segment_of(&region).is_some_and(is_foreign) => {
                    return Err(CoordinationCursorError::NotACursor { name: name.into() })
                }
                Ok(_) | Err(BackendError::NotFound { .. } | BackendError::Empty { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            let waited = backend.now().saturating_sub(start);
            if waited >= timeout {
                return Err(CoordinationCursorError::NotReady {
                    name: name.into(),
                    waited,
                });
            }
            backend.sleep(crate::default_discovery_poll_duration().min(timeout - waited));
        }
    }

    fn initialise(
        region: B::Region,
        backend: B,
        name: &str,
    ) -> Result<Self, CoordinationCursorError> {
        let init = CursorSegment {
            header: CursorHeader {
                magic: AtomicU64::new(COORDINATION_CURSOR_MAGIC),
                version: AtomicU32::new(CURSOR_VERSION),
                ranks: AtomicU32::new(COORDINATION_RANKS as u32),
                generation: AtomicU64::new(0),
                state: AtomicU32::new(0),
            },
            ranks: std::array::from_fn(|_| RankLine {
                value: AtomicU64::new(0),
            }),
        };
        // SAFETY: the region was just created exclusively (zero-filled) and is not READY, so no
        // other process reads it yet; `CursorSegment` is made only of atomics.
        let written = unsafe { crate::ring::layout::region_init(&region, init) };
        assert!(
            written && region.len() >= CURSOR_LEN,
            "backend region too small or misaligned (Region contract)"
        );
        // The magic is written: lift the unfinished mark (see `RingBackend::remove_if_abandoned`).
        region.finish(0o600)?;
        let c = Self::wrap(region, backend, name);
        // Publishes the initialised segment (pairs with the `Acquire` load in `is_cursor`).
        c.seg().header.state.store(STATE_READY, Ordering::Release);
        Ok(c)
    }

    fn wrap(region: B::Region, backend: B, name: &str) -> Self {
        CoordinationCursor {
            region,
            backend,
            name: name.into(),
        }
    }

    fn seg(&self) -> &CursorSegment {
        segment_of(&self.region).expect("checked when the cursor was created or opened")
    }

    fn line(&self, rank: usize) -> &AtomicU64 {
        assert!(
            rank < COORDINATION_RANKS,
            "rank {rank} >= {COORDINATION_RANKS}"
        );
        &self.seg().ranks[rank].value
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this handle created the cursor (and removes it on drop).
    pub fn is_owner(&self) -> bool {
        self.region.is_owner()
    }

    /// Whether the process that created the cursor is alive.
    pub fn owner_state(&self) -> ProcessState {
        self.region.owner_state()
    }

    /// The session generation (0 until the engine first advances it).
    pub fn generation(&self) -> u64 {
        self.seg().header.generation.load(Ordering::Acquire)
    }

    /// Bumps the session generation; returns the new value.
    pub fn advance_generation(&self) -> u64 {
        self.seg().header.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The word of runner `rank` (0: never announced).
    ///
    /// # Panics
    /// If `rank >= COORDINATION_RANKS`.
    pub fn rank_value(&self, rank: usize) -> u64 {
        self.line(rank).load(Ordering::Acquire)
    }

    /// Bumps the word of runner `rank` (its rings of a new incarnation are ready); returns the
    /// new value. Everything this process wrote before happens-before a peer's acquiring load
    /// of the new value.
    ///
    /// # Panics
    /// If `rank >= COORDINATION_RANKS`.
    pub fn announce_rank(&self, rank: usize) -> u64 {
        self.line(rank).fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Waits (polling with [`crate::default_discovery_poll_duration`]) up to `timeout` for the
    /// word of `rank` to differ from `seen`; returns the new value, or `None` at the deadline.
    pub fn wait_rank_change(&self, rank: usize, seen: u64, timeout: Duration) -> Option<u64> {
        let start = self.backend.now();
        loop {
            let v = self.rank_value(rank);
            if v != seen {
                return Some(v);
            }
            let waited = self.backend.now().saturating_sub(start);
            if waited >= timeout {
                return None;
            }
            self.backend
                .sleep(crate::default_discovery_poll_duration().min(timeout - waited));
        }
    }
}

/// A region with a non-zero magic that is not ours: never touched.
fn is_foreign(s: &CursorSegment) -> bool {
    let m = s.header.magic.load(Ordering::Acquire);
    m != 0 && m != COORDINATION_CURSOR_MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::SimBackend;

    #[test]
    fn ensure_creates_then_opens_the_live_one() {
        let world = SimBackend::new_world();
        let a = CoordinationCursor::ensure_with(world.clone(), "cur").unwrap();
        assert!(a.is_owner());
        assert_eq!((a.generation(), a.rank_value(3)), (0, 0));
        assert_eq!(a.advance_generation(), 1);
        let b = CoordinationCursor::ensure_with(world.sibling(), "cur").unwrap();
        assert!(!b.is_owner());
        assert_eq!(b.generation(), 1);
        assert_eq!(b.announce_rank(3), 1);
        assert_eq!(a.rank_value(3), 1);
        assert_eq!(a.wait_rank_change(3, 0, Duration::ZERO), Some(1));
        assert_eq!(a.wait_rank_change(3, 1, Duration::from_millis(5)), None);
    }

    #[test]
    fn open_waits_then_gives_a_typed_error() {
        let world = SimBackend::new_world();
        match CoordinationCursor::open_with(world, "absent", Duration::from_millis(3)) {
            Err(CoordinationCursorError::NotReady { waited, .. }) => {
                assert!(waited >= Duration::from_millis(3))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_ring_is_not_a_cursor() {
        let world = SimBackend::new_world();
        let _p = crate::SharedDisruptorBuilder::<u64, _>::with_backend(world.clone(), "ring", 8)
            .build_producer(|| 0)
            .unwrap();
        assert!(matches!(
            CoordinationCursor::ensure_with(world.sibling(), "ring"),
            Err(CoordinationCursorError::NotACursor { .. })
        ));
    }
}
