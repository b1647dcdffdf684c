//! The shared-memory segment layout: the only module that turns a raw region pointer into
//! typed references.
//!
//! One region per ring:
//!
//! ```text
//! offset 0      Header            six 128-byte lines: identity + state, producer cursor,
//!                                 consumer wake word, producer wake word, registry, counters
//! offset 768    ConsumerEntry[N]  N = DEFAULT_MAX_CONSUMERS, 384 bytes each: the cursor alone on
//!                                 the first 128-byte line, id/owner/state on the second,
//!                                 counters on the third
//! 6912          ProducerEntry[16] multi-producer rings only (64 bytes each; unused otherwise)
//! slots_offset  (page aligned) Slot<E>[capacity] each: stamp (i64) then the event, stride rounded up to 64 bytes
//! ```
//!
//! Invariants the rest of the crate relies on:
//!
//! * **I1** Every offset and length is computed locally from `E` and the capacity
//!   ([`Geometry`]); values read from the header are only *compared* against them, never used
//!   to address memory.
//! * **I2** The region is at least `Geometry::total_len` bytes (checked in [`Segment::new`]) and
//!   its base is aligned to at least `REGION_MIN_ALIGN`, so every typed reference handed out
//!   below is in bounds and aligned.
//! * **I3** A slot's stamp holds the sequence of the event it contains (or -1). The producer
//!   writes a slot's value only for a sequence it has claimed and whose previous occupant every
//!   gating consumer has released; it then stores the stamp with `Release`. A consumer reads the
//!   value only after loading that stamp with `Acquire`.
//! * **I4** Every structure in the region is initialised with `ptr::write(T::new(..))` by the
//!   creator before the header state becomes `READY`; peers read nothing but the header state
//!   until they have acquired `READY`.

use crate::backend::{Region, RingBackend};
use crate::ring::event::ShmEvent;
use crate::ring::sync::{fence, AtomicI64, AtomicU32, AtomicU64, Ordering, SlotCell};
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ptr::NonNull;

/// Magic number at offset 0 of every myelon ring segment ("MYELONR" + format byte).
pub const MAGIC: u64 = u64::from_le_bytes(*b"MYELONR\x01");
/// Version of this layout; bumped on any incompatible change. 3: the stamp after the event in
/// each slot. 4: the frame types (`FixedFrame`, `AlignedFixedFrame`) put their header after
/// their payload, a change of the events' layout that their type fingerprint cannot see.
pub const LAYOUT_VERSION: u32 = 4;
/// Default maximum number of consumers that can be registered with one ring.
pub const DEFAULT_MAX_CONSUMERS: usize = 16;
/// Entries in the consumer table. Loom models use a small table to keep the state space small.
#[cfg(not(loom))]
pub(crate) const TABLE_ENTRIES: usize = DEFAULT_MAX_CONSUMERS;
#[cfg(loom)]
pub(crate) const TABLE_ENTRIES: usize = 2;
/// Longest consumer id, in bytes.
pub const CONSUMER_ID_MAX_LEN: usize = 48;
/// Largest capacity a ring may have (slots).
pub const MAX_CAPACITY: usize = 1 << 30;
/// Largest slot (in cache lines) whose other lines a spinning consumer prefetches: only a
/// small event's one data line. For larger events prefetching lines the producer is about to
/// write costs more than it saves (peers bench, same run: 1 KiB framed ping-pong 431 ns with a
/// one-line prefetch against 300 without; 64 B ping-pong 160 ns with it against 210 without).
pub(crate) const PREFETCH_MAX_SLOT_LINES: usize = 2;
/// Largest slot (in cache lines) whose data lines a producer prefetches for writing right after
/// it publishes the slot before (see [`Segment::prefetch_slot_for_write`]). Slots of at most
/// [`PREFETCH_MAX_SLOT_LINES`] lines are left out: their consumer prefetches that line while it
/// spins, and both prefetching it would bounce it between them.
pub(crate) const PREFETCH_WRITE_MAX_SLOT_LINES: usize = 32;
/// Minimum alignment of a region's base address that the layout needs.
pub(crate) const REGION_MIN_ALIGN: usize = 4096;

/// Header state: being initialised by its creator.
pub(crate) const STATE_INIT: u32 = 0;
/// Header state: ready for consumers.
pub(crate) const STATE_READY: u32 = 1;
/// Header state: the producer closed the stream normally (end of stream).
pub(crate) const STATE_CLOSED: u32 = 2;

/// Entry state: unused.
pub(crate) const ENTRY_FREE: u32 = 0;
/// Entry state: registered consumer; gates the producer.
pub(crate) const ENTRY_ACTIVE: u32 = 1;
/// Entry state: reserved by the producer for an expected consumer id; gates the producer.
pub(crate) const ENTRY_RESERVED: u32 = 2;
/// Entry state: reserved for the first consumer whose id starts with the stored prefix; gates.
pub(crate) const ENTRY_RESERVED_PREFIX: u32 = 3;
/// Entry state: a consumer is registering (its start cursor is not final yet); gates. A
/// joining entry whose owner died is registered afresh by the next consumer of its id.
pub(crate) const ENTRY_JOINING: u32 = 4;

/// Entry flag: its consumer attached without an id (a generated label). Nobody can rejoin it,
/// so once its holder is provably dead the entry stops gating (`registry::reap_dead_anonymous`).
pub(crate) const FLAG_ANONYMOUS: u32 = 1;

/// Ring flag (header `ring_flags`): a multi-producer ring (`ring::multi`). Its header cursor is
/// the claim cursor, its producers are listed in the producer table, and consumers skip the
/// slots of claims whose producer died or gave up.
pub(crate) const RING_MULTI_PRODUCER: u32 = 1;

/// Entries in the producer table of a multi-producer ring. The table lives in the padding
/// between the consumer table and the page-aligned slots, so both kinds of ring have the same
/// geometry.
#[cfg(not(loom))]
pub const MAX_PRODUCERS: usize = 16;
#[cfg(loom)]
pub const MAX_PRODUCERS: usize = 2;

/// Producer entry state: unused.
pub(crate) const PRODUCER_FREE: u32 = 0;
/// Producer entry state: a producer is (or was, if its lock slot is free) attached.
pub(crate) const PRODUCER_ACTIVE: u32 = 1;

/// A producer entry's `intent` when it claims nothing.
pub(crate) const NO_INTENT: i64 = i64::MAX;

/// The stamp that marks slot `seq` (`0 <= seq < i64::MAX - 1`; sequences stay below
/// `registry::MAX_CURSOR` plus a lap) as skipped (a claim given up by a live producer): never a
/// sequence, never the initial `-1`, and below every sequence, so a consumer that does not look
/// for it just sees "not published yet".
#[inline]
pub(crate) fn skip_stamp(seq: i64) -> i64 {
    (-2i64).wrapping_sub(seq)
}

/// The kernel-released lock slot ([`crate::backend::Region::try_lock_slot`]) of the registry
/// lock: whoever holds the header's lock word holds it, so a word left set with this slot free
/// belongs to a dead holder.
pub(crate) const REGISTRY_LOCK_SLOT: u64 = 0;

/// The lock slot of consumer-table entry `index`: held by the handle of the consumer attached
/// to the entry for as long as it is attached (`ACTIVE` or `JOINING`). Free while the entry is
/// attached means its consumer is dead — proven by the kernel, in any PID namespace.
#[inline]
pub(crate) fn entry_lock_slot(index: usize) -> u64 {
    1 + index as u64
}

/// The lock slot of producer-table entry `index` (multi-producer rings): held by the attached
/// producer's handle, so a free slot under an `ACTIVE` entry proves that producer is dead.
#[inline]
pub(crate) const fn producer_lock_slot(index: usize) -> u64 {
    1 + TABLE_ENTRIES as u64 + index as u64
}

/// The lock slots whose live holders keep a ring from being removed by a reclaimer
/// ([`crate::backend::RemovalGuard::slots`]): the producer slots of a multi-producer ring,
/// which a producer takes before it writes its entry and holds for its lifetime. A producer
/// registering checks [`crate::backend::Region::is_linked`] once it holds its slot: if a
/// removal took the slots first, the name is gone by then (or the slot was refused while the
/// removal held it). Consumer entries and the registry lock are not in it: a single-producer
/// ring whose producer died is reclaimed under its consumers, which then see it dead, and a
/// consumer that stalls in its registration must not hold up a producer's restart.
#[allow(clippy::single_range_in_vec_init)] // one range of slots, not the slots themselves
pub(crate) const RECLAIM_GUARD_SLOTS: [std::ops::Range<u64>; 1] =
    [producer_lock_slot(0)..producer_lock_slot(MAX_PRODUCERS)];

/// Byte offsets of the header words a removal's `keep` test reads
/// ([`head_is_ready_multi_producer`]), in the byte layout of a real mapping.
const HEAD_MAGIC_AT: usize = 0;
const HEAD_RING_FLAGS_AT: usize = 76;
const HEAD_STATE_AT: usize = 96;

/// Whether the first bytes of an object (`head`, as a removal shows them,
/// [`crate::backend::REMOVAL_HEAD_LEN`]) are those of a ready multi-producer ring: its magic,
/// `STATE_READY`, and the multi-producer flag. Too short: no.
pub(crate) fn head_is_ready_multi_producer(head: &[u8]) -> bool {
    let word = |at: usize, n: usize| head.get(at..at + n);
    let (Some(magic), Some(flags), Some(state)) = (
        word(HEAD_MAGIC_AT, 8),
        word(HEAD_RING_FLAGS_AT, 4),
        word(HEAD_STATE_AT, 4),
    ) else {
        return false;
    };
    let u32_of = |b: &[u8]| u32::from_ne_bytes(b.try_into().expect("4 bytes"));
    u64::from_ne_bytes(magic.try_into().expect("8 bytes")) == MAGIC
        && u32_of(flags) & RING_MULTI_PRODUCER != 0
        && u32_of(state) == STATE_READY
}

/// The head image [`head_is_ready_multi_producer`] reads, built from the typed header of a
/// mapping whose bytes cannot be read as plain bytes (the simulator's regions, whose header
/// words are atomics, under loom of another layout): the three words it looks at, at their
/// byte offsets, the rest zero. `None` if the `len` bytes at `base` cannot hold a header.
///
/// # Safety
///
/// `base` points to `len` mapped bytes that stay mapped for the call, page aligned (as every
/// region is).
pub(crate) unsafe fn head_image_of(base: *const u8, len: usize) -> Option<Vec<u8>> {
    if len < size_of::<Header>() || base as usize % REGION_MIN_ALIGN != 0 {
        return None;
    }
    // SAFETY: the caller's contract and the checks above: at least a header's bytes, aligned;
    // every field of `Header` is an atomic, valid for any bit pattern.
    let h = unsafe { &*(base as *const Header) };
    let r = Ordering::Relaxed;
    let mut head = vec![0u8; crate::backend::REMOVAL_HEAD_LEN];
    head[HEAD_MAGIC_AT..HEAD_MAGIC_AT + 8].copy_from_slice(&h.magic.load(r).to_ne_bytes());
    head[HEAD_RING_FLAGS_AT..HEAD_RING_FLAGS_AT + 4]
        .copy_from_slice(&h.ring_flags.load(r).to_ne_bytes());
    head[HEAD_STATE_AT..HEAD_STATE_AT + 4].copy_from_slice(&h.state.load(r).to_ne_bytes());
    Some(head)
}

/// A 128-byte line holding one cursor.
#[repr(C, align(128))]
pub(crate) struct CursorLine {
    pub(crate) value: AtomicI64,
}

/// A 128-byte line holding a futex word and a waiter count.
#[repr(C, align(128))]
pub(crate) struct WakeLine {
    /// Futex word: bumped by the waker before `wake_all`.
    pub(crate) seq: AtomicU32,
    /// Number of parties blocked (or about to block) on `seq`.
    pub(crate) waiters: AtomicU32,
    /// Number of consumers that may block on the consumer wake line (producer notifies only when
    /// non-zero, keeping the publish path free of fences otherwise).
    pub(crate) sleepers_registered: AtomicU32,
}

/// A 128-byte line for consumer registration.
#[repr(C, align(128))]
pub(crate) struct RegistryLine {
    /// 0 when free, otherwise the process token of the holder.
    pub(crate) lock: AtomicU64,
    /// Bumped on every registration change.
    pub(crate) generation: AtomicU64,
}

/// The segment header. Identity fields are atomics so that reading a foreign or half-written
/// region is never a data race; they are written once by the creator before `state = READY`.
#[repr(C, align(128))]
pub(crate) struct Header {
    pub(crate) magic: AtomicU64,
    pub(crate) layout_version: AtomicU32,
    pub(crate) header_len: AtomicU32,
    pub(crate) type_fingerprint: AtomicU64,
    pub(crate) capacity: AtomicU64,
    pub(crate) event_size: AtomicU32,
    pub(crate) event_align: AtomicU32,
    pub(crate) slot_stride: AtomicU32,
    pub(crate) max_consumers: AtomicU32,
    pub(crate) slots_offset: AtomicU64,
    pub(crate) total_len: AtomicU64,
    pub(crate) epoch: AtomicU64,
    pub(crate) owner_pid: AtomicU32,
    /// [`RING_MULTI_PRODUCER`] or 0 (former padding: single-producer rings hold 0 here).
    pub(crate) ring_flags: AtomicU32,
    pub(crate) owner_start_time: AtomicU64,
    pub(crate) owner_token: AtomicU64,
    /// `STATE_INIT` → `STATE_READY` (written last, `Release`) → `STATE_CLOSED`.
    pub(crate) state: AtomicU32,
    pub(crate) producer: CursorLine,
    pub(crate) consumer_wake: WakeLine,
    pub(crate) producer_wake: WakeLine,
    pub(crate) registry: RegistryLine,
    /// Ring-wide counters (observability); written by the producer on cold paths.
    pub(crate) counters: CounterLine,
}

/// Sixteen 64-bit counters on their own 128-byte line. Index meaning is owned by the
/// observability layer; the ring core only reserves the space.
#[repr(C, align(128))]
pub(crate) struct CounterLine {
    pub(crate) values: [AtomicU64; COUNTERS_PER_LINE],
}

/// Counters in one [`CounterLine`].
pub(crate) const COUNTERS_PER_LINE: usize = 16;

/// One consumer-table entry.
#[repr(C, align(128))]
pub(crate) struct ConsumerEntry {
    /// Last sequence this consumer released (-1: none). Alone on its line; written only by the
    /// consumer, read by the producer when it refreshes its gating minimum.
    pub(crate) cursor: CursorLine,
    pub(crate) state: AtomicU32,
    pub(crate) id_len: AtomicU32,
    pub(crate) owner_token: AtomicU64,
    pub(crate) incarnation: AtomicU64,
    pub(crate) id: [AtomicU64; CONSUMER_ID_MAX_LEN / 8],
    /// 1 while this entry's consumer counts itself in `consumer_wake.sleepers_registered` (it
    /// waits with `Block`), so that whoever reuses the entry of a dead consumer can take its
    /// registration back (`registry::clear_stale_sleeper`). In what was padding: old segments
    /// hold 0 here.
    pub(crate) sleeper: AtomicU32,
    /// [`FLAG_ANONYMOUS`] or 0; written with the entry under the registry lock (former padding:
    /// old segments hold 0 here).
    pub(crate) flags: AtomicU32,
    /// Per-consumer counters (observability), on their own line so that updating them never
    /// disturbs the producer's scans of `state`.
    pub(crate) counters: CounterLine,
}

/// One producer-table entry of a multi-producer ring (one 64-byte line: each producer writes
/// only its own; consumers read them on their cold path only).
#[repr(C, align(64))]
pub(crate) struct ProducerEntry {
    /// `PRODUCER_FREE` or `PRODUCER_ACTIVE`; written under the registry lock.
    pub(crate) state: AtomicU32,
    pub(crate) reserved: AtomicU32,
    /// The id the producer chose (`Sourced::source` of its events).
    pub(crate) source: AtomicU64,
    /// Process token of the producer (display only; death is proven by its lock slot).
    pub(crate) owner_token: AtomicU64,
    /// First sequence of the claim this producer is making or holds unpublished, or
    /// [`NO_INTENT`]. Stored before the claim's compare-and-swap and cleared after its stamps:
    /// so every claimed, unpublished sequence `s` has a producer whose `intent <= s`.
    pub(crate) intent: AtomicI64,
    /// Events this producer published (observability).
    pub(crate) published: AtomicU64,
    /// Slots this producer claimed and gave up (`MultiClaim::abort`, a dropped claim).
    pub(crate) skipped: AtomicU64,
    /// Bumped at every attach to this entry.
    pub(crate) incarnation: AtomicU64,
}

/// One ring slot: the stamp says which sequence the value holds. The stamp comes **after** the
/// value (layout version 3): a consumer spins on the stamp's line while the producer writes the
/// value's lines, which it then stamps last, so the lines a consumer polls are not the ones the
/// producer fills first (with the stamp in front, the first value line bounced between the two
/// cores twice per event). Peers bench, the two binaries alternating in one session, medians
/// of the runs with the floor at ~100 ns, as landed (with the small-slot prefetch rule of
/// [`Segment::prefetch_slot_data`]): 1 KiB ping-pong raw 390 → 321 ns, framed 451 → 401 ns,
/// 64 B 160 → 170 ns; 64 B stream 37 / 34 / 37 → 51 / 41 / 49 M events/s at depths 256 / 1024 /
/// 16384.
#[repr(C)]
pub(crate) struct Slot<E> {
    pub(crate) value: SlotCell<E>,
    pub(crate) stamp: AtomicI64,
}

#[cfg(not(loom))]
const _: () = {
    use std::mem::offset_of;
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, layout_version) == 8);
    assert!(offset_of!(Header, header_len) == 12);
    assert!(offset_of!(Header, type_fingerprint) == 16);
    assert!(offset_of!(Header, capacity) == 24);
    assert!(offset_of!(Header, event_size) == 32);
    assert!(offset_of!(Header, slot_stride) == 40);
    assert!(offset_of!(Header, slots_offset) == 48);
    assert!(offset_of!(Header, total_len) == 56);
    assert!(offset_of!(Header, epoch) == 64);
    assert!(offset_of!(Header, owner_pid) == 72);
    assert!(offset_of!(Header, owner_start_time) == 80);
    assert!(offset_of!(Header, owner_token) == 88);
    assert!(offset_of!(Header, state) == 96);
    assert!(offset_of!(Header, state) == HEAD_STATE_AT);
    assert!(offset_of!(Header, magic) == HEAD_MAGIC_AT);
    assert!(offset_of!(Header, ring_flags) == HEAD_RING_FLAGS_AT);
    assert!(offset_of!(Header, producer) == 128);
    assert!(offset_of!(Header, consumer_wake) == 256);
    assert!(offset_of!(Header, producer_wake) == 384);
    assert!(offset_of!(Header, registry) == 512);
    assert!(offset_of!(Header, counters) == 640);
    assert!(size_of::<Header>() == 768);
    assert!(offset_of!(ConsumerEntry, cursor) == 0);
    assert!(offset_of!(ConsumerEntry, state) == 128);
    assert!(offset_of!(ConsumerEntry, id_len) == 132);
    assert!(offset_of!(ConsumerEntry, owner_token) == 136);
    assert!(offset_of!(ConsumerEntry, incarnation) == 144);
    assert!(offset_of!(ConsumerEntry, id) == 152);
    assert!(offset_of!(ConsumerEntry, sleeper) == 200);
    assert!(offset_of!(ConsumerEntry, flags) == 204);
    assert!(offset_of!(ConsumerEntry, counters) == 256);
    assert!(size_of::<ConsumerEntry>() == 384);
    assert!(size_of::<ProducerEntry>() == 64);
    assert!(
        size_of::<Header>()
            + TABLE_ENTRIES * size_of::<ConsumerEntry>()
            + MAX_PRODUCERS * size_of::<ProducerEntry>()
            <= 8192,
        "the producer table must fit in the padding before the first slot"
    );
    assert!(offset_of!(Slot<u64>, value) == 0);
    assert!(offset_of!(Slot<u64>, stamp) == 8);
};

impl ProducerEntry {
    fn new() -> Self {
        ProducerEntry {
            state: AtomicU32::new(PRODUCER_FREE),
            reserved: AtomicU32::new(0),
            source: AtomicU64::new(0),
            owner_token: AtomicU64::new(0),
            intent: AtomicI64::new(NO_INTENT),
            published: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            incarnation: AtomicU64::new(0),
        }
    }
}

impl CursorLine {
    pub(crate) fn new(v: i64) -> Self {
        CursorLine {
            value: AtomicI64::new(v),
        }
    }
}

impl CounterLine {
    fn new() -> Self {
        CounterLine {
            values: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl WakeLine {
    fn new() -> Self {
        WakeLine {
            seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            sleepers_registered: AtomicU32::new(0),
        }
    }
}

impl ConsumerEntry {
    fn new() -> Self {
        ConsumerEntry {
            cursor: CursorLine::new(-1),
            state: AtomicU32::new(ENTRY_FREE),
            id_len: AtomicU32::new(0),
            owner_token: AtomicU64::new(0),
            incarnation: AtomicU64::new(0),
            id: std::array::from_fn(|_| AtomicU64::new(0)),
            sleeper: AtomicU32::new(0),
            flags: AtomicU32::new(0),
            counters: CounterLine::new(),
        }
    }

    /// Stores `id` (at most `CONSUMER_ID_MAX_LEN` bytes; checked by the caller).
    pub(crate) fn write_id(&self, id: &[u8]) {
        debug_assert!(id.len() <= CONSUMER_ID_MAX_LEN);
        let mut buf = [0u8; CONSUMER_ID_MAX_LEN];
        buf[..id.len()].copy_from_slice(id);
        for (word, chunk) in self.id.iter().zip(buf.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            word.store(u64::from_le_bytes(w), Ordering::Relaxed);
        }
        self.id_len.store(id.len() as u32, Ordering::Release);
    }

    /// Reads the stored id; `None` if the stored length is corrupt.
    pub(crate) fn read_id(&self) -> Option<([u8; CONSUMER_ID_MAX_LEN], usize)> {
        // Relaxed then a fence (as Acquire): sound on the inspector's read-only mappings too.
        let len = self.id_len.load(Ordering::Relaxed) as usize;
        fence(Ordering::Acquire);
        if len > CONSUMER_ID_MAX_LEN {
            return None;
        }
        let mut buf = [0u8; CONSUMER_ID_MAX_LEN];
        for (word, chunk) in self.id.iter().zip(buf.chunks_exact_mut(8)) {
            chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        Some((buf, len))
    }
}

impl<E> Slot<E> {
    fn new(value: E) -> Self {
        Slot {
            stamp: AtomicI64::new(-1),
            value: SlotCell::new(value),
        }
    }
}

/// Sizes and offsets of a ring, computed from the event type and capacity alone (I1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) capacity: usize,
    pub(crate) mask: usize,
    pub(crate) slot_stride: usize,
    pub(crate) max_consumers: usize,
    pub(crate) slots_offset: usize,
    pub(crate) total_len: usize,
    pub(crate) event_size: usize,
    pub(crate) event_align: usize,
}

/// Why a capacity or event type cannot be laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GeometryError {
    Capacity(&'static str),
    EventTooAligned(usize),
    TooLarge,
}

const fn round_up(v: usize, to: usize) -> Option<usize> {
    match v.checked_add(to - 1) {
        Some(x) => Some(x / to * to),
        None => None,
    }
}

impl Geometry {
    pub(crate) fn new<E>(capacity: usize) -> Result<Geometry, GeometryError> {
        if capacity == 0 || !capacity.is_power_of_two() {
            return Err(GeometryError::Capacity(
                "capacity must be a non-zero power of two",
            ));
        }
        if capacity > MAX_CAPACITY {
            return Err(GeometryError::Capacity("capacity exceeds 2^30 slots"));
        }
        let slot_align = align_of::<Slot<E>>();
        if slot_align > REGION_MIN_ALIGN {
            return Err(GeometryError::EventTooAligned(align_of::<E>()));
        }
        let line = slot_align.max(64);
        let slot_stride = round_up(size_of::<Slot<E>>(), line).ok_or(GeometryError::TooLarge)?;
        let max_consumers = TABLE_ENTRIES;
        let table_end = size_of::<Header>()
            + max_consumers * size_of::<ConsumerEntry>()
            + MAX_PRODUCERS * size_of::<ProducerEntry>();
        // Page aligned, so that consumers can map the slots read-only (`Region::protect_read_only`)
        // while the header and table stay writable.
        let slots_offset = round_up(table_end, REGION_MIN_ALIGN).ok_or(GeometryError::TooLarge)?;
        let slots_len = capacity
            .checked_mul(slot_stride)
            .ok_or(GeometryError::TooLarge)?;
        let end = slots_offset
            .checked_add(slots_len)
            .ok_or(GeometryError::TooLarge)?;
        let total_len = round_up(end, 4096).ok_or(GeometryError::TooLarge)?;
        if total_len > isize::MAX as usize || slot_stride > u32::MAX as usize {
            return Err(GeometryError::TooLarge);
        }
        Ok(Geometry {
            capacity,
            mask: capacity - 1,
            slot_stride,
            max_consumers,
            slots_offset,
            total_len,
            event_size: size_of::<E>(),
            event_align: align_of::<E>(),
        })
    }
}

/// The identity values a creator stamps into a new header.
pub(crate) struct HeaderInit {
    pub(crate) fingerprint: u64,
    pub(crate) epoch: u64,
    pub(crate) owner_pid: u32,
    pub(crate) owner_start_time: u64,
    pub(crate) owner_token: u64,
    /// [`RING_MULTI_PRODUCER`] or 0.
    pub(crate) ring_flags: u32,
}

impl Header {
    /// Stores the identity of a fresh ring into a zero-filled header, field by field with
    /// atomic stores: a consumer that is already polling the header (`peek_state`, attach
    /// waiting for `READY`) reads it concurrently, so a plain write of the whole struct would
    /// race with its atomic loads (found by Miri). Fields whose initial value is zero are left
    /// as the zero fill made them; `state` stays `STATE_INIT` until the caller publishes
    /// `READY` with a `Release` store.
    #[cfg(not(loom))]
    fn store_init(&self, g: &Geometry, init: &HeaderInit) {
        let r = Ordering::Relaxed;
        self.magic.store(MAGIC, r);
        self.layout_version.store(LAYOUT_VERSION, r);
        self.header_len.store(size_of::<Header>() as u32, r);
        self.type_fingerprint.store(init.fingerprint, r);
        self.capacity.store(g.capacity as u64, r);
        self.event_size.store(g.event_size as u32, r);
        self.event_align.store(g.event_align as u32, r);
        self.slot_stride.store(g.slot_stride as u32, r);
        self.max_consumers.store(g.max_consumers as u32, r);
        self.slots_offset.store(g.slots_offset as u64, r);
        self.total_len.store(g.total_len as u64, r);
        self.epoch.store(init.epoch, r);
        self.owner_pid.store(init.owner_pid, r);
        self.owner_start_time.store(init.owner_start_time, r);
        self.owner_token.store(init.owner_token, r);
        self.ring_flags.store(init.ring_flags, r);
        self.producer.value.store(-1, r);
    }

    #[cfg_attr(not(loom), allow(dead_code))]
    fn new(g: &Geometry, init: &HeaderInit) -> Self {
        Header {
            magic: AtomicU64::new(MAGIC),
            layout_version: AtomicU32::new(LAYOUT_VERSION),
            header_len: AtomicU32::new(size_of::<Header>() as u32),
            type_fingerprint: AtomicU64::new(init.fingerprint),
            capacity: AtomicU64::new(g.capacity as u64),
            event_size: AtomicU32::new(g.event_size as u32),
            event_align: AtomicU32::new(g.event_align as u32),
            slot_stride: AtomicU32::new(g.slot_stride as u32),
            max_consumers: AtomicU32::new(g.max_consumers as u32),
            slots_offset: AtomicU64::new(g.slots_offset as u64),
            total_len: AtomicU64::new(g.total_len as u64),
            epoch: AtomicU64::new(init.epoch),
            owner_pid: AtomicU32::new(init.owner_pid),
            ring_flags: AtomicU32::new(init.ring_flags),
            owner_start_time: AtomicU64::new(init.owner_start_time),
            owner_token: AtomicU64::new(init.owner_token),
            state: AtomicU32::new(STATE_INIT),
            producer: CursorLine::new(-1),
            consumer_wake: WakeLine::new(),
            producer_wake: WakeLine::new(),
            registry: RegistryLine {
                lock: AtomicU64::new(0),
                generation: AtomicU64::new(0),
            },
            counters: CounterLine::new(),
        }
    }
}

/// A `T` at the start of `region`, or `None` when the region is too small or its base is not
/// aligned for `T`. Used for shared objects other than rings (the coordination cursor), so that
/// every cast of a region pointer stays in this module.
///
/// # Safety
/// Every bit pattern must be a valid `T` and `T` must be accessed only through atomics (any
/// process may write the bytes at any time).
pub(crate) unsafe fn region_struct<T>(region: &impl Region) -> Option<&T> {
    let p = region.as_ptr();
    if region.len() < size_of::<T>() || (p as usize) % align_of::<T>() != 0 {
        return None;
    }
    // SAFETY: in bounds and aligned (checked above); any bytes form a valid `T` and it is only
    // read through atomics (the caller's contract); the reference lives as long as the region
    // borrow, and the region stays mapped for as long as it lives (`Region` contract 1).
    Some(unsafe { &*(p as *const T) })
}

/// Writes `value` at the start of a region this process just created, before any other process
/// can read it. Returns `false` (writing nothing) when the region is too small or misaligned.
///
/// # Safety
/// No other process may access the region yet (it was created exclusively and is not marked
/// ready), and every field of `T` must be an atomic (so later shared access is well defined).
pub(crate) unsafe fn region_init<T>(region: &impl Region, value: T) -> bool {
    let p = region.as_ptr() as *mut T;
    if region.len() < size_of::<T>() || (p as usize) % align_of::<T>() != 0 {
        return false;
    }
    // SAFETY: in bounds and aligned (checked above); nobody else accesses the bytes yet (the
    // caller's contract), so this write races with nothing.
    unsafe { p.write(value) };
    true
}

/// The header of a region that may not be a myelon segment at all, or `None` when the region
/// is too small or misaligned to hold one. Only atomics are reachable through it.
pub(crate) fn try_header_of(region: &impl Region) -> Option<&Header> {
    if region.len() < size_of::<Header>() || region.as_ptr() as usize % REGION_MIN_ALIGN != 0 {
        return None;
    }
    // SAFETY: the region is at least `size_of::<Header>()` bytes and aligned (checked above);
    // every field of `Header` is an atomic, valid for any bit pattern, so even a foreign or
    // half-written region yields a valid reference; it lives as long as the region borrow.
    Some(unsafe { &*(region.as_ptr() as *const Header) })
}

/// Consumer-table entry `i` of a region whose event type is unknown (the observability
/// inspector), or `None` when `i` is beyond [`TABLE_ENTRIES`] or the region cannot hold the
/// entry. Entries are all atomics, so any bytes form a valid entry; the caller validates
/// what it reads.
pub(crate) fn try_entry_of(region: &impl Region, i: usize) -> Option<&ConsumerEntry> {
    try_header_of(region)?;
    let off = size_of::<Header>().checked_add(i.checked_mul(size_of::<ConsumerEntry>())?)?;
    if i >= TABLE_ENTRIES || off.checked_add(size_of::<ConsumerEntry>())? > region.len() {
        return None;
    }
    // SAFETY: the region is page aligned (checked by `try_header_of`) and `off + size_of::<
    // ConsumerEntry>() <= len` (checked above); `off` is a multiple of 128, the entry's
    // alignment; every field of `ConsumerEntry` is an atomic, valid for any bit pattern.
    Some(unsafe { &*(region.as_ptr().add(off) as *const ConsumerEntry) })
}

/// Producer-table entry `i` of a region whose event type is unknown (the inspector), or `None`
/// when `i >= MAX_PRODUCERS` or the region cannot hold it. All atomics: any bytes are valid.
pub(crate) fn try_producer_entry_of(region: &impl Region, i: usize) -> Option<&ProducerEntry> {
    try_header_of(region)?;
    let off = size_of::<Header>()
        .checked_add(TABLE_ENTRIES * size_of::<ConsumerEntry>())?
        .checked_add(i.checked_mul(size_of::<ProducerEntry>())?)?;
    if i >= MAX_PRODUCERS || off.checked_add(size_of::<ProducerEntry>())? > region.len() {
        return None;
    }
    // SAFETY: the region is page aligned (checked by `try_header_of`) and `off + size_of::<
    // ProducerEntry>() <= len` (checked above); `off` is a multiple of 64, the entry's
    // alignment; every field of `ProducerEntry` is an atomic, valid for any bit pattern.
    Some(unsafe { &*(region.as_ptr().add(off) as *const ProducerEntry) })
}

/// Reads the magic and state of a region that may not be a myelon segment at all.
/// Returns `None` when the region is too small to hold a header.
pub(crate) fn peek_state(region: &impl Region) -> Option<(u64, u32)> {
    let header = try_header_of(region)?;
    Some((
        header.magic.load(Ordering::Acquire),
        header.state.load(Ordering::Acquire),
    ))
}

/// A mapped ring: the region plus the geometry it was validated against.
pub(crate) struct Segment<E, B: RingBackend> {
    region: B::Region,
    base: NonNull<u8>,
    geom: Geometry,
    /// Lines of a slot that [`Segment::prefetch_slot_for_write`] prefetches (0: none: off, the
    /// default, or a CPU without `prefetchw`, or a slot size outside its range).
    write_prefetch_lines: usize,
    _event: PhantomData<fn() -> E>,
}

// SAFETY: all shared state inside the region is accessed through atomics or through slot cells
// whose access is coordinated by stamps and cursors (I3); the region handle itself is Send+Sync.
unsafe impl<E: ShmEvent, B: RingBackend> Send for Segment<E, B> {}
// SAFETY: as for `Send`.
unsafe impl<E: ShmEvent, B: RingBackend> Sync for Segment<E, B> {}

/// How many lines of a slot of `slot_stride` bytes [`Segment::prefetch_slot_for_write`]
/// prefetches: all of them (it skips the stamp's) for slots of more than
/// [`PREFETCH_MAX_SLOT_LINES`] and at most [`PREFETCH_WRITE_MAX_SLOT_LINES`] lines, on a CPU
/// with `prefetchw`; otherwise none.
fn write_prefetch_lines(slot_stride: usize, cpu_has_prefetchw: bool) -> usize {
    let lines = slot_stride / 64;
    if cpu_has_prefetchw
        && lines > PREFETCH_MAX_SLOT_LINES
        && lines <= PREFETCH_WRITE_MAX_SLOT_LINES
    {
        lines
    } else {
        0
    }
}

/// Whether this CPU has `prefetchw` (CPUID 8000_0001h, ECX bit 8). Never under loom or Miri,
/// nor off x86_64.
pub(crate) fn cpu_has_prefetchw() -> bool {
    #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
    {
        // `__cpuid` is safe from Rust 1.87 on, an `unsafe fn` before (`rust-version` is older).
        #[allow(unused_unsafe)]
        // SAFETY: CPUID exists on every x86_64 CPU; leaf 8000_0000h gives the highest extended
        // leaf, and 8000_0001h is only asked for when it exists.
        let (max, ecx) = unsafe {
            let max = core::arch::x86_64::__cpuid(0x8000_0000).eax;
            let ecx = if max >= 0x8000_0001 {
                core::arch::x86_64::__cpuid(0x8000_0001).ecx
            } else {
                0
            };
            (max, ecx)
        };
        max >= 0x8000_0001 && ecx & (1 << 8) != 0
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom), not(miri))))]
    false
}

impl<E: ShmEvent, B: RingBackend> Segment<E, B> {
    /// Wraps a mapped region. Fails if the region is too small or misaligned for `geom`.
    pub(crate) fn new(region: B::Region, geom: Geometry) -> Result<Self, B::Region> {
        let base = match NonNull::new(region.as_ptr()) {
            Some(b) => b,
            None => return Err(region),
        };
        if region.len() < geom.total_len || base.as_ptr() as usize % REGION_MIN_ALIGN != 0 {
            return Err(region);
        }
        Ok(Segment {
            region,
            base,
            geom,
            write_prefetch_lines: 0,
            _event: PhantomData,
        })
    }

    /// Initialises a freshly created, zero-filled region (I4). Must be called once, by the
    /// creator, before anyone can observe `STATE_READY`.
    pub(crate) fn initialise(&self, init: &HeaderInit, mut factory: impl FnMut() -> E) {
        // Atomic stores into the zero fill: peers may already be polling the header.
        #[cfg(not(loom))]
        self.header().store_init(&self.geom, init);
        // Loom's atomics are not valid when zero-filled: write them whole (loom models never
        // poll a header before it is initialised).
        #[cfg(loom)]
        {
            let hdr = self.base.as_ptr() as *mut Header;
            // SAFETY: I2 — the region holds a `Header` at offset 0, aligned; the region was
            // just created by this thread and no other loom thread looks at it before READY.
            unsafe { hdr.write(Header::new(&self.geom, init)) };
        }
        for i in 0..self.geom.max_consumers {
            let p = self.entry_ptr(i);
            // SAFETY: I2 — entry `i < max_consumers` lies inside the table, aligned to 128.
            unsafe { p.write(ConsumerEntry::new()) };
        }
        for i in 0..MAX_PRODUCERS {
            let p = self.producer_entry_ptr(i);
            // SAFETY: I2 — producer entry `i < MAX_PRODUCERS` lies between the consumer table
            // and `slots_offset` (`Geometry::new` reserves it), aligned to 64.
            unsafe { p.write(ProducerEntry::new()) };
        }
        for i in 0..self.geom.capacity {
            let p = self.slot_ptr(i);
            // SAFETY: I2 — slot `i < capacity` lies inside the slot array, aligned to the
            // slot's alignment (stride and slots_offset are multiples of it).
            unsafe { p.write(Slot::new(factory())) };
        }
    }

    pub(crate) fn geometry(&self) -> &Geometry {
        &self.geom
    }

    pub(crate) fn region(&self) -> &B::Region {
        &self.region
    }

    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: I2 + I4 — a `Header` lives at offset 0 and was initialised by the creator
        // before READY; callers only use a `Segment` after READY was acquired (attach) or after
        // `initialise` (create).
        unsafe { &*(self.base.as_ptr() as *const Header) }
    }

    fn entry_ptr(&self, i: usize) -> *mut ConsumerEntry {
        let off = size_of::<Header>() + i * size_of::<ConsumerEntry>();
        // SAFETY: I2 — `off` < slots_offset <= total_len <= region length for i < max_consumers.
        unsafe { self.base.as_ptr().add(off) as *mut ConsumerEntry }
    }

    fn producer_entry_ptr(&self, i: usize) -> *mut ProducerEntry {
        let off = size_of::<Header>()
            + self.geom.max_consumers * size_of::<ConsumerEntry>()
            + i * size_of::<ProducerEntry>();
        // SAFETY: I2 — for i < MAX_PRODUCERS, `off + 64 <= slots_offset <= region length`.
        unsafe { self.base.as_ptr().add(off) as *mut ProducerEntry }
    }

    /// Producer-table entry `i` (`i < MAX_PRODUCERS`; meaningful in multi-producer rings).
    #[inline]
    pub(crate) fn producer_entry(&self, i: usize) -> &ProducerEntry {
        assert!(i < MAX_PRODUCERS, "producer index out of range");
        // SAFETY: I2 + I4 — index checked above; the entry was initialised before READY.
        unsafe { &*self.producer_entry_ptr(i) }
    }

    /// Whether this is a multi-producer ring (read once per handle; the flag never changes).
    pub(crate) fn is_multi_producer(&self) -> bool {
        self.header().ring_flags.load(Ordering::Relaxed) & RING_MULTI_PRODUCER != 0
    }

    fn slot_ptr(&self, i: usize) -> *mut Slot<E> {
        let off = self.geom.slots_offset + i * self.geom.slot_stride;
        // SAFETY: I2 — for i < capacity, `off + stride <= total_len <= region length`.
        unsafe { self.base.as_ptr().add(off) as *mut Slot<E> }
    }

    /// Consumer-table entry `i` (`i < max_consumers`).
    #[inline]
    pub(crate) fn entry(&self, i: usize) -> &ConsumerEntry {
        assert!(i < self.geom.max_consumers, "consumer index out of range");
        // SAFETY: I2 + I4 — index checked above; the entry was initialised before READY.
        unsafe { &*self.entry_ptr(i) }
    }

    /// The slot holding sequence `seq`.
    #[inline]
    pub(crate) fn slot(&self, seq: i64) -> &Slot<E> {
        let i = (seq as usize) & self.geom.mask;
        // SAFETY: I2 + I4 — `i <= mask < capacity`; the slot was initialised before READY.
        unsafe { &*self.slot_ptr(i) }
    }

    /// Hints the CPU to fetch the lines of the slot of `seq` other than its stamp's, when the
    /// slot spans at most [`PREFETCH_MAX_SLOT_LINES`] lines. A consumer spinning on the stamp of
    /// an empty slot calls this so that, when the producer publishes, a small event's data line
    /// travels alongside the stamp's line instead of after it. Purely a performance hint: no
    /// memory is read.
    #[inline]
    pub(crate) fn prefetch_slot_data(&self, seq: i64) {
        #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
        {
            let first = self.slot_ptr((seq as usize) & self.geom.mask) as *const i8;
            let stamp_line = std::mem::offset_of!(Slot<E>, stamp) / 64;
            let lines = self.geom.slot_stride / 64;
            if lines > PREFETCH_MAX_SLOT_LINES {
                return;
            }
            for line in (0..lines).filter(|&l| l != stamp_line) {
                // SAFETY: I2 — `line * 64 < slot_stride`, so the address lies inside this slot;
                // `_mm_prefetch` never faults and reads nothing architecturally, and SSE is part
                // of the x86_64 baseline.
                unsafe {
                    core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                        first.add(line * 64),
                    )
                }
            }
        }
        #[cfg(not(all(target_arch = "x86_64", not(loom), not(miri))))]
        let _ = seq;
    }

    /// Lines [`Self::prefetch_slot_for_write`] prefetches per call (0: off).
    #[cfg(test)]
    pub(crate) fn write_prefetch_lines(&self) -> usize {
        self.write_prefetch_lines
    }

    /// Turns [`Self::prefetch_slot_for_write`] on (for the slot sizes and CPUs it applies to)
    /// or off.
    pub(crate) fn set_write_prefetch(&mut self, on: bool) {
        self.write_prefetch_lines = if on {
            write_prefetch_lines(self.geom.slot_stride, cpu_has_prefetchw())
        } else {
            0
        };
    }

    /// Asks for the data lines of slot `seq` in the exclusive state, ahead of the producer's
    /// next write into it: a producer calls this right after publishing `seq - 1`, when `seq`
    /// is already free, so that the ownership requests of its lines overlap the time until
    /// the next publish instead of holding up the stores of that publish (x86 stores become
    /// visible in order, so the stamp waits for the slowest line). The stamp's line is left
    /// alone: a consumer may be polling it. Only for slots of
    /// `PREFETCH_MAX_SLOT_LINES + 1 ..= PREFETCH_WRITE_MAX_SLOT_LINES` lines, on CPUs with
    /// `prefetchw`, and only when the producer's builder turned it on
    /// (`with_write_prefetch`). Purely a performance hint: no memory is read or written.
    /// (Peers bench, 12 interleaved invocations of each build, one session: 1 KiB ping-pong
    /// whose receiver reads the first and last words, p50 raw 330 -> 285 ns, framed 381 -> 350
    /// ns. Layer 0 bench, both sides reading every byte, both builds with aligned loops: 351
    /// -> 381 ns; turned on for one of its two rings at a time, 361 -> 321 ns on the ring whose
    /// consumer copies each event out while writing its echo, 361 -> 391 ns on the ring whose
    /// consumer reads it whole at once. A producer cannot tell which consumer it has: off by
    /// default; `benches/peers/README.md` has the figures.)
    #[inline]
    pub(crate) fn prefetch_slot_for_write(&self, seq: i64) {
        if self.write_prefetch_lines == 0 {
            return;
        }
        #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
        {
            let first = self.slot_ptr((seq as usize) & self.geom.mask) as *const u8;
            let stamp_line = std::mem::offset_of!(Slot<E>, stamp) / 64;
            for line in (0..self.write_prefetch_lines).filter(|&l| l != stamp_line) {
                // SAFETY: I2 — `line * 64 < slot_stride`, so the address lies inside this slot.
                // `prefetchw` is a hint that never faults and reads or writes nothing
                // architecturally; it runs only when CPUID reported it (`cpu_has_prefetchw`).
                unsafe {
                    core::arch::asm!(
                        "prefetchw byte ptr [{0}]",
                        in(reg) first.add(line * 64),
                        options(nostack, preserves_flags, readonly)
                    )
                }
            }
        }
        #[cfg(not(all(target_arch = "x86_64", not(loom), not(miri))))]
        let _ = seq;
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = &ConsumerEntry> + '_ {
        (0..self.geom.max_consumers).map(move |i| self.entry(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_prefetch_covers_mid_sized_slots_only() {
        fn stride<E: ShmEvent>() -> usize {
            Geometry::new::<E>(8).unwrap().slot_stride
        }
        for (stride, lines) in [
            (stride::<u64>(), 0),
            (stride::<[u8; 56]>(), 0),
            (stride::<[u8; 64]>(), 0),
            (stride::<[u8; 120]>(), 0),
            (stride::<[u8; 121]>(), 3),
            (stride::<[u8; 1024]>(), 17),
        ] {
            assert_eq!(write_prefetch_lines(stride, true), lines, "stride {stride}");
            assert_eq!(
                write_prefetch_lines(stride, false),
                0,
                "no prefetchw: {stride}"
            );
        }
        // The largest slot prefetched is PREFETCH_WRITE_MAX_SLOT_LINES lines; one more is not.
        let max = PREFETCH_WRITE_MAX_SLOT_LINES * 64;
        assert_eq!(
            write_prefetch_lines(max, true),
            PREFETCH_WRITE_MAX_SLOT_LINES
        );
        assert_eq!(write_prefetch_lines(max + 64, true), 0);
    }

    #[test]
    fn geometry_table() {
        // (event size, align) -> expected stride
        let g = Geometry::new::<u64>(8).unwrap();
        assert_eq!(g.slot_stride, 64);
        let g = Geometry::new::<[u8; 56]>(8).unwrap();
        assert_eq!(g.slot_stride, 64);
        let g = Geometry::new::<[u8; 57]>(8).unwrap();
        assert_eq!(g.slot_stride, 128);
        let g = Geometry::new::<[u64; 8]>(4096).unwrap();
        assert_eq!(g.slot_stride, 128);
        assert_eq!(
            g.slots_offset, 8192,
            "the table (768 + 16 * 384) rounded up to a page"
        );
        assert_eq!(g.total_len % 4096, 0);
        assert!(g.total_len >= g.slots_offset + 4096 * 128);
    }

    #[test]
    fn geometry_rejects_bad_capacities() {
        for c in [0usize, 3, 6, 1000, MAX_CAPACITY * 2] {
            assert!(Geometry::new::<u64>(c).is_err(), "capacity {c}");
        }
        for c in [1usize, 2, 1024, 1 << 20] {
            assert!(Geometry::new::<u64>(c).is_ok(), "capacity {c}");
        }
    }

    #[test]
    fn geometry_rejects_overflowing_sizes() {
        assert_eq!(
            Geometry::new::<[u8; 1 << 40]>(MAX_CAPACITY),
            Err(GeometryError::TooLarge)
        );
    }
}
