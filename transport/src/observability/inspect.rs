//! The type-erased inspector: attaches to a ring by name without knowing its event type and
//! reads its header, consumer table and counters. Read-only: it maps the segment read-only
//! (`RingBackend::open_read_only`, so a user who may only read the ring can inspect it), never
//! registers, never writes, and holds no lock (the liveness probes are the backend's
//! kernel-lock tests, which work on a read-only descriptor). On a read-only mapping only
//! `Relaxed` atomic loads are sound, so every load here is `Relaxed`, with `Acquire` fences
//! where the order of two reads matters.

use super::{consumer_counter, ring_counter};
use crate::backend::{BackendError, ProcessState, Region, RingBackend};
use crate::ring::layout::{
    entry_lock_slot, producer_lock_slot, try_entry_of, try_header_of, try_producer_entry_of,
    ConsumerEntry, Header, ENTRY_ACTIVE, ENTRY_JOINING, ENTRY_RESERVED, ENTRY_RESERVED_PREFIX,
    LAYOUT_VERSION, MAGIC, MAX_PRODUCERS, NO_INTENT, PRODUCER_ACTIVE, RING_MULTI_PRODUCER,
    STATE_CLOSED, STATE_INIT, STATE_READY, TABLE_ENTRIES,
};
use crate::ring::registry::entry_id;
use crate::ring::sync::{fence, Ordering};
use std::fmt;
use std::time::Duration;

/// Why a ring cannot be inspected.
#[derive(Debug)]
#[non_exhaustive]
pub enum InspectError {
    /// The backend could not open the name.
    Backend(BackendError),
    /// The segment is not a myelon ring (wrong magic, or too small for a header).
    NotARing {
        /// The name.
        name: String,
        /// The magic found (0 if the segment is too small).
        magic: u64,
    },
    /// A ring of another layout version.
    LayoutVersion {
        /// The name.
        name: String,
        /// The version found.
        found: u32,
    },
    /// The ring's creator has not finished initialising it.
    NotReady {
        /// The name.
        name: String,
    },
}

impl fmt::Display for InspectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Backend(e) => e.fmt(f),
            Self::NotARing { name, magic } => {
                write!(f, "{name:?} is not a myelon ring (magic {magic:#018x})")
            }
            Self::LayoutVersion { name, found } => write!(
                f,
                "{name:?} has layout version {found}; this build reads {LAYOUT_VERSION}"
            ),
            Self::NotReady { name } => write!(f, "{name:?} is still being initialised"),
        }
    }
}

impl std::error::Error for InspectError {}

impl From<BackendError> for InspectError {
    fn from(e: BackendError) -> Self {
        InspectError::Backend(e)
    }
}

/// The stream state of a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingState {
    /// Being initialised by its creator.
    Initialising,
    /// Open for publishing.
    Ready,
    /// The producer closed the stream (consumers drain, then get `Closed`).
    Closed,
    /// An unknown state word (corruption).
    Unknown(u32),
}

impl RingState {
    fn from_word(w: u32) -> Self {
        match w {
            STATE_INIT => Self::Initialising,
            STATE_READY => Self::Ready,
            STATE_CLOSED => Self::Closed,
            other => Self::Unknown(other),
        }
    }
}

/// What holds a consumer-table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A consumer registered (its process may since have died).
    Attached,
    /// Reserved for an expected consumer id that has not attached yet.
    Reserved,
    /// Reserved for the first consumer whose id starts with the stored prefix.
    ReservedPrefix,
}

/// Liveness of a consumer as a reader can tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerLiveness {
    /// Attached, its process alive, no open liveness alert.
    Live,
    /// Attached, its process alive, and a liveness alert raised that has not recovered yet.
    Stalled,
    /// Attached, but its process is dead: the entry keeps gating until the id rejoins.
    OwnerDead,
    /// A reservation: gating, waiting for its consumer to attach.
    Waiting,
    /// Attached, the backend cannot tell whether its process lives.
    Unknown,
}

impl fmt::Display for ConsumerLiveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Live => "live",
            Self::Stalled => "stalled",
            Self::OwnerDead => "dead",
            Self::Waiting => "waiting",
            Self::Unknown => "unknown",
        })
    }
}

/// One gating entry of the consumer table, with its counters and derived figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSnapshot {
    /// Index in the table.
    pub index: usize,
    /// Consumer id (the prefix for an unclaimed prefix reservation).
    pub id: String,
    /// What holds the entry.
    pub kind: EntryKind,
    /// Liveness.
    pub liveness: ConsumerLiveness,
    /// Pid of the process holding the entry (OS backends; `None` for reservations).
    pub owner_pid: Option<u32>,
    /// Times a consumer attached to this entry.
    pub incarnation: u64,
    /// Last released sequence.
    pub cursor: i64,
    /// First sequence this id read.
    pub first_sequence: i64,
    /// Events consumed by this id: `cursor + 1 - first_sequence`.
    pub consumed: u64,
    /// Producer cursor (the claim cursor on a multi-producer ring) − consumer cursor, clamped
    /// to `0..=capacity`.
    pub lag: u64,
    /// Largest lag the producer's gating scans saw.
    pub max_lag: u64,
    /// Partial messages the framed consumer dropped.
    pub partial_dropped: u64,
    /// Liveness alerts raised for this id.
    pub alerts: u64,
    /// Liveness recoveries of this id.
    pub recoveries: u64,
    /// Multi-producer rings: slots this consumer skipped (claims given up, or whose producer
    /// died before publishing them). 0 on a single-producer ring.
    pub abandoned_slots: u64,
}

/// One entry of a multi-producer ring's producer table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerSnapshot {
    /// Index in the producer table.
    pub index: usize,
    /// The producer's id (`source` of its events).
    pub source: u64,
    /// Proven by the entry's kernel-released lock slot: `Live`, `OwnerDead` or `Unknown`.
    pub liveness: ConsumerLiveness,
    /// Pid of the process holding the entry (display only).
    pub owner_pid: u32,
    /// Times a producer attached to this entry.
    pub incarnation: u64,
    /// Events this producer published since it attached.
    pub published: u64,
    /// Slots it claimed and gave up.
    pub skipped: u64,
    /// First sequence of the claim it is making, if any (a dead producer's stays: its hole).
    pub claiming: Option<i64>,
}

/// Everything a reader can see of a ring at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingSnapshot {
    /// The ring's name.
    pub name: String,
    /// Backend kind (`shm`, `mmap`, `sim`).
    pub backend: &'static str,
    /// When the snapshot was taken (the backend's monotonic clock).
    pub taken_at: Duration,
    /// Stream state.
    pub state: RingState,
    /// Pid of the producer that created the ring.
    pub owner_pid: u32,
    /// Whether that producer is alive.
    pub owner: ProcessState,
    /// Capacity in slots.
    pub capacity: u64,
    /// Event size in bytes.
    pub event_size: u32,
    /// Slot stride in bytes.
    pub slot_stride: u32,
    /// Segment length in bytes.
    pub segment_len: u64,
    /// Last published sequence (-1: none).
    pub producer_cursor: i64,
    /// Events published: `producer_cursor + 1`.
    pub events_published: u64,
    /// Publish calls that found the ring full.
    pub publish_full: u64,
    /// Publishes that waited for space.
    pub blocked_waits: u64,
    /// Total time publishes waited for space.
    pub blocked: Duration,
    /// The gating entries of the consumer table.
    pub consumers: Vec<ConsumerSnapshot>,
    /// Whether this is a multi-producer ring (its producer cursor is the claim cursor).
    pub multi_producer: bool,
    /// Multi-producer rings: the producer table's attached entries (empty otherwise).
    pub producers: Vec<ProducerSnapshot>,
}

/// A read-only view of a ring whose event type is unknown.
pub struct RingInspector<B: RingBackend> {
    region: B::Region,
    backend: B,
    name: String,
    entries: usize,
}

impl<B: RingBackend> fmt::Debug for RingInspector<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingInspector")
            .field("name", &self.name)
            .field("backend", &self.backend.kind())
            .finish()
    }
}

/// Pid encoded in an OS backend's process token (its low 32 bits).
fn token_pid(token: u64) -> u32 {
    (token & 0xffff_ffff) as u32
}

impl<B: RingBackend> RingInspector<B> {
    /// Maps ring `name` of `backend` for reading and checks that it is a myelon ring of this
    /// layout version.
    pub fn open(backend: B, name: &str) -> Result<Self, InspectError> {
        // Read-only: a user who may read the ring but not write it can inspect it.
        let region = backend.open_read_only(name)?;
        let not_a_ring = |magic| InspectError::NotARing {
            name: name.into(),
            magic,
        };
        let h = try_header_of(&region).ok_or(not_a_ring(0))?;
        // Read-only mappings: Relaxed loads (the only atomic accesses that are sound on
        // read-only memory) followed by Acquire fences where order matters.
        let magic = h.magic.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if magic != MAGIC {
            return Err(not_a_ring(magic));
        }
        let version = h.layout_version.load(Ordering::Relaxed);
        if version != LAYOUT_VERSION {
            return Err(InspectError::LayoutVersion {
                name: name.into(),
                found: version,
            });
        }
        if h.state.load(Ordering::Relaxed) == STATE_INIT {
            return Err(InspectError::NotReady { name: name.into() });
        }
        let entries = (h.max_consumers.load(Ordering::Relaxed) as usize).min(TABLE_ENTRIES);
        let entries = (0..entries)
            .take_while(|&i| try_entry_of(&region, i).is_some())
            .count();
        Ok(RingInspector {
            region,
            backend,
            name: name.into(),
            entries,
        })
    }

    fn header(&self) -> &Header {
        try_header_of(&self.region).expect("checked in open")
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads everything at once. Values written concurrently are read individually (each
    /// consistent, the set approximately simultaneous); impossible values are clamped.
    pub fn snapshot(&self) -> RingSnapshot {
        let h = self.header();
        let r = Ordering::Relaxed;
        let capacity = h.capacity.load(r);
        let c = &h.counters.values;
        // Consumer cursors first, then the producer's: a consumer never releases what was not
        // published, so read in this order the figures agree (consumed <= published) unless a
        // consumer released a slot between its stamp store and the producer's announcement.
        let entries: Vec<_> = (0..self.entries)
            .filter_map(|i| Some((i, try_entry_of(&self.region, i)?)))
            .collect();
        let cursors: Vec<i64> = entries
            .iter()
            .map(|(_, e)| e.cursor.value.load(Ordering::Relaxed))
            .collect();
        let producer_cursor = h.producer.value.load(Ordering::Relaxed).max(-1);
        fence(Ordering::Acquire);
        let multi_producer = h.ring_flags.load(r) & RING_MULTI_PRODUCER != 0;
        let consumers = entries
            .iter()
            .zip(cursors)
            .filter_map(|((i, e), cursor)| self.consumer(*i, e, cursor, producer_cursor, capacity))
            .collect();
        RingSnapshot {
            name: self.name.clone(),
            backend: self.backend.kind(),
            taken_at: self.backend.now(),
            state: RingState::from_word(h.state.load(Ordering::Relaxed)),
            owner_pid: h.owner_pid.load(r),
            owner: self.region.owner_state(),
            capacity,
            event_size: h.event_size.load(r),
            slot_stride: h.slot_stride.load(r),
            segment_len: h.total_len.load(r),
            producer_cursor,
            events_published: producer_cursor.saturating_add(1) as u64,
            publish_full: c[ring_counter::PUBLISH_FULL].load(r),
            blocked_waits: c[ring_counter::BLOCKED_WAITS].load(r),
            blocked: Duration::from_nanos(c[ring_counter::BLOCKED_NANOS].load(r)),
            consumers,
            multi_producer,
            producers: if multi_producer {
                self.producers()
            } else {
                Vec::new()
            },
        }
    }

    fn consumer(
        &self,
        index: usize,
        e: &ConsumerEntry,
        cursor: i64,
        producer_cursor: i64,
        capacity: u64,
    ) -> Option<ConsumerSnapshot> {
        let kind = match e.state.load(Ordering::Relaxed) {
            ENTRY_ACTIVE | ENTRY_JOINING => EntryKind::Attached,
            ENTRY_RESERVED => EntryKind::Reserved,
            ENTRY_RESERVED_PREFIX => EntryKind::ReservedPrefix,
            _ => return None,
        };
        let r = Ordering::Relaxed;
        let c = &e.counters.values;
        let cursor = cursor.max(-1);
        let first_sequence = (c[consumer_counter::FIRST_SEQUENCE].load(r) as i64).max(0);
        let alerts = c[consumer_counter::ALERTS].load(r);
        let recoveries = c[consumer_counter::RECOVERIES].load(r);
        let token = e.owner_token.load(r);
        let liveness = match kind {
            // Proven by the entry's kernel-released lock slot, never by the pid (which may
            // live in another PID namespace).
            EntryKind::Attached => match self.region.slot_state(entry_lock_slot(index)) {
                ProcessState::Dead => ConsumerLiveness::OwnerDead,
                ProcessState::Unknown => ConsumerLiveness::Unknown,
                ProcessState::Alive if alerts > recoveries => ConsumerLiveness::Stalled,
                ProcessState::Alive => ConsumerLiveness::Live,
            },
            _ => ConsumerLiveness::Waiting,
        };
        Some(ConsumerSnapshot {
            index,
            id: entry_id(e),
            kind,
            liveness,
            owner_pid: (kind == EntryKind::Attached).then(|| token_pid(token)),
            incarnation: e.incarnation.load(r),
            cursor,
            first_sequence,
            // Values read from shared memory: saturating, never an overflow.
            consumed: cursor
                .saturating_add(1)
                .saturating_sub(first_sequence)
                .max(0) as u64,
            lag: (producer_cursor.saturating_sub(cursor).max(0) as u64).min(capacity),
            max_lag: c[consumer_counter::MAX_LAG].load(r),
            partial_dropped: c[consumer_counter::PARTIAL_DROPPED].load(r),
            alerts,
            recoveries,
            abandoned_slots: c[consumer_counter::ABANDONED_SLOTS].load(r),
        })
    }

    /// The attached (or dead, not yet replaced) producers of a multi-producer ring.
    fn producers(&self) -> Vec<ProducerSnapshot> {
        let r = Ordering::Relaxed;
        (0..MAX_PRODUCERS)
            .filter_map(|i| {
                let p = try_producer_entry_of(&self.region, i)?;
                if p.state.load(r) != PRODUCER_ACTIVE {
                    return None;
                }
                let intent = p.intent.load(r);
                Some(ProducerSnapshot {
                    index: i,
                    source: p.source.load(r),
                    liveness: match self.region.slot_state(producer_lock_slot(i)) {
                        ProcessState::Dead => ConsumerLiveness::OwnerDead,
                        ProcessState::Unknown => ConsumerLiveness::Unknown,
                        ProcessState::Alive => ConsumerLiveness::Live,
                    },
                    owner_pid: token_pid(p.owner_token.load(r)),
                    incarnation: p.incarnation.load(r),
                    published: p.published.load(r),
                    skipped: p.skipped.load(r),
                    claiming: (intent != NO_INTENT).then_some(intent),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::SimBackend;
    use crate::observability::list_segments;
    use crate::SharedDisruptorBuilder;

    #[test]
    fn snapshot_derives_figures_from_cursors() {
        let world = SimBackend::new_world();
        let mut p = SharedDisruptorBuilder::<u64, _>::with_backend(world.clone(), "r", 8)
            .build_producer(|| 0)
            .unwrap();
        let mut c = SharedDisruptorBuilder::<u64, _>::with_backend(world.sibling(), "r", 8)
            .with_consumer_id("c0")
            .build_consumer()
            .unwrap();
        for i in 0..8 {
            p.publish(|e| *e = i);
        }
        assert!(p.try_publish(|e| *e = 9).is_err());
        for _ in 0..3 {
            c.try_consume_next().unwrap().unwrap();
        }
        let s = RingInspector::open(world.sibling(), "r")
            .unwrap()
            .snapshot();
        assert_eq!((s.producer_cursor, s.events_published), (7, 8));
        assert_eq!(s.publish_full, 1);
        assert_eq!(s.consumers.len(), 1);
        let k = &s.consumers[0];
        assert_eq!((k.id.as_str(), k.kind), ("c0", EntryKind::Attached));
        assert_eq!((k.cursor, k.consumed, k.lag, k.max_lag), (2, 3, 5, 8));
    }

    #[test]
    fn foreign_segments_are_refused() {
        let world = SimBackend::new_world();
        let _r = world.create("junk", 8192).unwrap();
        assert!(matches!(
            RingInspector::open(world.clone(), "junk"),
            Err(InspectError::NotARing { magic: 0, .. })
        ));
        assert!(list_segments(&world).unwrap().is_empty());
    }
}
