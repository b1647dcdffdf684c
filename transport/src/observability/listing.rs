//! Listing the myelon segments of a backend (rings, coordination cursors) and removing the ones
//! whose owner died.

use super::inspect::{ConsumerLiveness, EntryKind, RingInspector};
use crate::backend::{BackendError, ProcessState, Region, RemovalGuard, RingBackend};
use crate::ring::layout::{try_header_of, MAGIC, RECLAIM_GUARD_SLOTS, STATE_INIT};
use crate::ring::sync::Ordering;
use crate::session::coordination_cursor::{is_cursor, COORDINATION_CURSOR_MAGIC};
use std::fmt;

/// What a listed segment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// A ring.
    Ring,
    /// A session coordination cursor.
    Cursor,
    /// A myelon segment whose creator never finished initialising it.
    Unfinished,
}

impl fmt::Display for SegmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ring => "ring",
            Self::Cursor => "cursor",
            Self::Unfinished => "unfinished",
        })
    }
}

/// One myelon segment of a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentListing {
    /// Its name on the backend.
    pub name: String,
    /// Ring or cursor.
    pub kind: SegmentKind,
    /// Pid of its creator (rings only).
    pub owner_pid: Option<u32>,
    /// Whether its creator is alive.
    pub owner: ProcessState,
    /// Mapped length in bytes.
    pub len: usize,
    /// Rings: capacity in slots.
    pub capacity: Option<u64>,
    /// Rings: events published.
    pub events_published: Option<u64>,
    /// Rings: attached consumers.
    pub consumers: Option<usize>,
}

fn classify(region: &impl Region) -> Option<SegmentKind> {
    if is_cursor(region) {
        return Some(SegmentKind::Cursor);
    }
    let h = try_header_of(region)?;
    // Relaxed: the region may be mapped read-only (see `inspect`).
    match (
        h.magic.load(Ordering::Relaxed),
        h.state.load(Ordering::Relaxed),
    ) {
        (MAGIC, STATE_INIT) => Some(SegmentKind::Unfinished),
        (MAGIC, _) => Some(SegmentKind::Ring),
        _ => None,
    }
}

fn listing<B: RingBackend>(backend: &B, name: &str) -> Option<SegmentListing> {
    let region = backend.open_read_only(name).ok()?;
    let kind = classify(&region)?;
    let mut l = SegmentListing {
        name: name.into(),
        kind,
        owner_pid: None,
        owner: region.owner_state(),
        len: region.len(),
        capacity: None,
        events_published: None,
        consumers: None,
    };
    if kind == SegmentKind::Ring {
        drop(region);
        let s = RingInspector::open(backend.clone(), name).ok()?.snapshot();
        l.owner_pid = Some(s.owner_pid);
        // A multi-producer ring is in use while any producer lives, creator or not (so
        // `clean_abandoned` leaves it).
        if s.multi_producer
            && s.producers
                .iter()
                .any(|p| p.liveness != ConsumerLiveness::OwnerDead)
        {
            l.owner = ProcessState::Alive;
        }
        l.capacity = Some(s.capacity);
        l.events_published = Some(s.events_published);
        l.consumers = Some(
            s.consumers
                .iter()
                .filter(|c| c.kind == EntryKind::Attached)
                .count(),
        );
    }
    Some(l)
}

/// The myelon segments (rings, coordination cursors, unfinished rings) of `backend`, sorted by
/// name. Anything else the backend lists, or cannot open (another user's), is skipped.
pub fn list_segments<B: RingBackend>(backend: &B) -> Result<Vec<SegmentListing>, BackendError> {
    let mut names = backend.list()?;
    names.sort();
    Ok(names.iter().filter_map(|n| listing(backend, n)).collect())
}

/// What [`clean_abandoned`] did with one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanOutcome {
    /// The segment.
    pub listing: SegmentListing,
    /// `true`: removed (or, in a dry run, would be).
    pub removed: bool,
}

/// Removes every myelon segment of `backend` whose creator is dead, with the backend's atomic
/// [`RingBackend::remove_if_abandoned`] (so a segment whose owner is alive — or that a new
/// owner re-created meanwhile — is never removed). `dry_run`: only reports what would go.
/// Only names for which `select` returns true are considered. Segments of live owners, and
/// anything that is not a myelon segment, are not touched and not reported.
pub fn clean_abandoned<B: RingBackend>(
    backend: &B,
    dry_run: bool,
    select: impl Fn(&str) -> bool,
) -> Result<Vec<CleanOutcome>, BackendError> {
    let mut out = Vec::new();
    for l in list_segments(backend)? {
        if l.owner != ProcessState::Dead || !select(&l.name) {
            continue;
        }
        let removed = if dry_run {
            true
        } else {
            match backend.remove_if_abandoned(
                &l.name,
                &[MAGIC, COORDINATION_CURSOR_MAGIC],
                RemovalGuard {
                    slots: &RECLAIM_GUARD_SLOTS,
                    keep: None,
                },
            ) {
                Ok(r) => r,
                // Gone, or replaced by something that is not ours since it was listed.
                Err(BackendError::NotFound { .. } | BackendError::ForeignObject { .. }) => false,
                Err(e) => return Err(e),
            }
        };
        out.push(CleanOutcome {
            listing: l,
            removed,
        });
    }
    Ok(out)
}
