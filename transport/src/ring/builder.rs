//! Construction: `SharedDisruptorBuilder`, coordination, attach checks, stale-segment reclaim.

use crate::backend::{BackendError, ProcessState, Region, RemovalGuard, RingBackend, SchedPoint};
use crate::ring::consumer::{Consumer, DEFAULT_PRODUCER_CHECK_INTERVAL};
use crate::ring::error::{MultiProcessError, MultiProcessResult};
use crate::ring::event::{type_fingerprint, Fnv1a, ShmEvent};
use crate::ring::layout::{
    head_is_ready_multi_producer, peek_state, Geometry, GeometryError, Header, HeaderInit, Segment,
    LAYOUT_VERSION, MAGIC, RECLAIM_GUARD_SLOTS, STATE_CLOSED, STATE_INIT, STATE_READY,
};
use crate::ring::pinning;
use crate::ring::producer::Producer;
use crate::ring::registry;
use crate::ring::sync::Ordering;
use crate::ring::wait::{default_discovery_poll_duration, AutoWaitStrategy};
#[allow(clippy::disallowed_types)] // `anonymous_id`'s counter is process-local
use std::sync::atomic::AtomicU64 as StdAtomicU64;
use std::time::Duration;

/// Coordination mode for multiprocess producer startup: when does the producer consider its
/// peers attached?
///
/// Expected peers are the consumer ids given to the producer's builder (`with_consumer_id`,
/// `with_consumer_ids`) and the `discover_consumer_with_prefix` count.
///
/// **Default.** A builder that names expected consumers and chooses no mode reserves them, as
/// [`BufferUntilConsumers`](CoordinationMode::BufferUntilConsumers) does: naming a consumer
/// means "this one is mine, do not lose its messages", so it receives every event from
/// sequence 0 however late it attaches (the producer can publish up to `capacity` events
/// before it does). A builder that names none publishes at once
/// ([`Immediate`](CoordinationMode::Immediate)). `CoordinationMode::default()` is `Immediate`,
/// the mode of a builder without expected consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CoordinationMode {
    /// Publish at once. Nothing is reserved: a consumer that attaches later starts at the live
    /// tail (the first event published after it registered). Chosen explicitly together with
    /// named expected consumers, the names are only used for discovery (e.g.
    /// `Producer::wait_for_consumers`), not reserved; the builder logs a `tracing` warning then,
    /// because those consumers lose what is published before they attach.
    #[default]
    Immediate,
    /// Reserve an entry for each expected consumer and block in `build_producer` until all of
    /// them attached (or fail with `ConsumersNotAttached` at the coordination deadline). Every
    /// expected consumer receives every event from sequence 0.
    WaitForConsumers,
    /// Reserve an entry for each expected consumer and return at once; the reservations gate
    /// the producer, so it can publish up to `capacity` events before the expected consumers
    /// attach, and they receive every event from sequence 0. The default when a builder names
    /// expected consumers.
    BufferUntilConsumers,
}

/// Default time a consumer waits for the segment to exist and become ready.
pub const DEFAULT_ATTACH_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time `WaitForConsumers` waits for the expected consumers.
pub const DEFAULT_COORDINATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Builder for creating multi-process disruptors: one producer or one consumer of a named ring.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build_producer or build_consumer"]
pub struct SharedDisruptorBuilder<E, B: RingBackend> {
    backend: B,
    name: String,
    capacity: usize,
    consumer_id: Option<String>,
    expected_ids: Vec<String>,
    prefix: Option<(usize, String)>,
    /// `None`: not chosen (see [`CoordinationMode`] for the default).
    coordination: Option<CoordinationMode>,
    attach_timeout: Duration,
    coordination_timeout: Duration,
    wait_strategy: AutoWaitStrategy,
    producer_check_interval: Duration,
    /// Producer: create the ring `0660` instead of `0600`; consumer: accept a group-writable
    /// ring.
    group_access: bool,
    /// Consumer: owner uids accepted besides this process's effective uid.
    accepted_owners: Vec<u32>,
    /// Cores to pin the building thread to (see `ring::pinning`).
    process_core: Option<usize>,
    consumer_core: Option<usize>,
    /// Consumer: fault the mapping's pages in at attach (default on).
    prefault: bool,
    write_prefetch: bool,
    /// An error found while making the builder (an mmap path without a file name), reported by
    /// `build_producer` / `build_consumer` so that every constructor returns a builder.
    deferred: Option<DeferredError>,
    _event: std::marker::PhantomData<fn() -> E>,
}

/// A name the backend refused while the builder was made (`BackendError::InvalidName`).
#[derive(Debug, Clone)]
struct DeferredError {
    name: String,
    reason: &'static str,
}

impl<E: ShmEvent, B: RingBackend> SharedDisruptorBuilder<E, B> {
    /// A builder for ring `name` of `capacity` events on `backend`.
    pub fn with_backend(backend: B, name: &str, capacity: usize) -> Self {
        SharedDisruptorBuilder {
            backend,
            name: name.to_string(),
            capacity,
            consumer_id: None,
            expected_ids: Vec::new(),
            prefix: None,
            coordination: None,
            attach_timeout: DEFAULT_ATTACH_TIMEOUT,
            coordination_timeout: DEFAULT_COORDINATION_TIMEOUT,
            wait_strategy: AutoWaitStrategy::BusySpin,
            producer_check_interval: DEFAULT_PRODUCER_CHECK_INTERVAL,
            group_access: false,
            accepted_owners: Vec::new(),
            process_core: None,
            consumer_core: None,
            prefault: true,
            write_prefetch: false,
            deferred: None,
            _event: std::marker::PhantomData,
        }
    }

    /// A builder whose `build_producer` / `build_consumer` fail with
    /// `Backend(InvalidName { name, reason })`.
    #[cfg(all(feature = "mmap", not(loom)))]
    pub(crate) fn with_invalid_name(
        backend: B,
        name: String,
        reason: &'static str,
        capacity: usize,
    ) -> Self {
        let mut b = Self::with_backend(backend, "", capacity);
        b.deferred = Some(DeferredError { name, reason });
        b
    }

    fn check_deferred(&self) -> MultiProcessResult<()> {
        match &self.deferred {
            Some(d) => Err(BackendError::InvalidName {
                name: d.name.clone(),
                reason: d.reason,
            }
            .into()),
            None => Ok(()),
        }
    }

    /// Consumer side: this consumer's id (a same-id rejoin resumes at its committed cursor).
    /// Producer side: an expected consumer id, reserved unless `Immediate` is chosen (see
    /// [`CoordinationMode`]).
    pub fn with_consumer_id(mut self, id: impl Into<String>) -> Self {
        self.consumer_id = Some(id.into());
        self
    }

    /// Producer side: expected consumer ids, discovered by explicit id and reserved unless
    /// `Immediate` is chosen (see [`CoordinationMode`]).
    pub fn with_consumer_ids<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.expected_ids.extend(ids.into_iter().map(Into::into));
        self
    }

    /// Producer side: expect `count` consumers whose ids start with `prefix`; `count` entries are
    /// reserved for them unless `Immediate` is chosen (see [`CoordinationMode`]).
    pub fn discover_consumer_with_prefix(
        mut self,
        count: usize,
        prefix: impl Into<String>,
    ) -> Self {
        self.prefix = Some((count, prefix.into()));
        self
    }

    /// Producer side: when the producer considers its peers attached (default: see
    /// [`CoordinationMode`]).
    pub fn with_coordination(mut self, mode: CoordinationMode) -> Self {
        self.coordination = Some(mode);
        self
    }

    /// The mode `build_producer` uses for `expected` named ids: the one chosen, else
    /// `BufferUntilConsumers` when consumers are named, else `Immediate`.
    fn effective_coordination(&self, expected: &[String]) -> CoordinationMode {
        let named = !expected.is_empty() || self.prefix.as_ref().is_some_and(|(n, _)| *n > 0);
        match self.coordination {
            Some(CoordinationMode::Immediate) if named => {
                tracing::warn!(
                    name = %self.name,
                    ?expected,
                    prefix = ?self.prefix,
                    "CoordinationMode::Immediate with named expected consumers: they are not \
                     reserved and lose what is published before they attach"
                );
                CoordinationMode::Immediate
            }
            Some(mode) => mode,
            None if named => CoordinationMode::BufferUntilConsumers,
            None => CoordinationMode::Immediate,
        }
    }

    /// Consumer side: how long to wait for the segment to exist and be ready (`NotReady`
    /// after it; `Duration::ZERO`: one look). The consumer registry's lock, held for a few
    /// microseconds by another attacher, is waited for at least 1 s whatever this says
    /// (`RegistryBusy` after it: a live process kept it).
    pub fn with_attach_timeout(mut self, timeout: Duration) -> Self {
        self.attach_timeout = timeout;
        self
    }

    /// Producer side: how long `WaitForConsumers` waits.
    pub fn with_coordination_timeout(mut self, timeout: Duration) -> Self {
        self.coordination_timeout = timeout;
        self
    }

    /// Consumer side: how blocking receives wait.
    pub fn with_wait_strategy(mut self, strategy: AutoWaitStrategy) -> Self {
        self.wait_strategy = strategy;
        self
    }

    /// Consumer side: how often a waiting consumer checks that the producer is alive.
    pub fn with_producer_check_interval(mut self, interval: Duration) -> Self {
        self.producer_check_interval = interval;
        self
    }

    /// Cross-user setups. Producer side: create the ring with mode `0660` (owner and group may
    /// read and write) instead of `0600`. Consumer side: accept a ring whose group may write it
    /// (never one every user may write). See "Attach checks" in the README.
    pub fn with_group_access(mut self, group: bool) -> Self {
        self.group_access = group;
        self
    }

    /// Consumer side: owner uids to accept besides this process's effective uid (by default a
    /// consumer attaches only to a ring its own user created). See "Attach checks" in the
    /// README.
    pub fn with_accepted_owners(mut self, uids: &[u32]) -> Self {
        self.accepted_owners.extend_from_slice(uids);
        self
    }

    fn create_mode(&self) -> u32 {
        if self.group_access {
            0o660
        } else {
            0o600
        }
    }

    /// The owner and mode check of attach: the ring's object must belong to this user (or an
    /// accepted owner) and must not be writable by others, nor by its group unless
    /// `with_group_access(true)`. Whoever may write the segment can corrupt every consumer's
    /// view of it, so a ring another user created first under our name is refused, not used.
    fn check_owner(&self, region: &B::Region) -> MultiProcessResult<()> {
        let (Some(o), Some(me)) = (region.owner(), self.backend.effective_uid()) else {
            return Ok(());
        };
        let refuse = |reason| {
            Err(MultiProcessError::UntrustedSegment {
                name: self.name.clone(),
                owner_uid: o.uid,
                mode: o.mode,
                reason,
            })
        };
        if o.uid != me && !self.accepted_owners.contains(&o.uid) {
            return refuse("owned by another user (see with_accepted_owners)");
        }
        if o.mode & 0o002 != 0 {
            return refuse("writable by every user");
        }
        if o.mode & 0o020 != 0 && !self.group_access {
            return refuse("writable by its group (see with_group_access)");
        }
        Ok(())
    }

    fn geometry(&self) -> MultiProcessResult<Geometry> {
        Geometry::new::<E>(self.capacity).map_err(|e| match e {
            GeometryError::Capacity(reason) => MultiProcessError::InvalidCapacity {
                capacity: self.capacity,
                reason,
            },
            GeometryError::EventTooAligned(_) => MultiProcessError::UnsupportedEvent {
                reason: "event alignment exceeds a page",
            },
            GeometryError::TooLarge => MultiProcessError::InvalidCapacity {
                capacity: self.capacity,
                reason: "ring size overflows the address space",
            },
        })
    }

    /// Pins the thread that calls `build_producer` / `build_consumer` to CPU `core` before the
    /// ring is created or attached (so a producer first-touches its pages there). A core this
    /// process may not run on is [`MultiProcessError::InvalidCore`]. Without this option the
    /// `MYELON_PROCESS_CORE` environment variable is used, if set.
    pub fn with_process_core(mut self, core: usize) -> Self {
        self.process_core = Some(core);
        self
    }

    /// Consumer side: pins the consuming thread to CPU `core` — the caller of `build_consumer`,
    /// and the background thread of an [`AutoConsumer`](crate::AutoConsumer) made from the
    /// consumer. Wins over [`Self::with_process_core`] for consumers. Without either option,
    /// `MYELON_CONSUMER_CORE` then `MYELON_PROCESS_CORE` are used, if set.
    pub fn with_consumer_core(mut self, core: usize) -> Self {
        self.consumer_core = Some(core);
        self
    }

    /// Consumer side: whether attach faults every page of the ring into this process's page
    /// tables (`MADV_POPULATE_READ`) so that the first messages after attach are as fast as the
    /// steady state (default `true`; costs about a page fault per 4 KiB of ring, once). The
    /// producer's pages are faulted in by its initialisation of every slot.
    pub fn with_prefault(mut self, on: bool) -> Self {
        self.prefault = on;
        self
    }

    /// Single-producer rings, producer side: whether each publish also asks for the next free
    /// slot's data lines in the exclusive state (`prefetchw`), so that the next publish's
    /// stores find them owned (default `false`; only slots of 3–32 cache lines, on CPUs with
    /// `prefetchw`; a hint that changes no result). It pays when consumers read a part of each
    /// message (headers, a few fields): cross-process 1 KiB ping-pong whose receiver checks
    /// the first and last words, 330 → 285 ns. It costs when they read all of it, because the
    /// prefetch takes the consumer's stale copies of the next slot away while it reads the
    /// current one: the same ping-pong with every byte read, 351 → 381 ns
    /// (`benches/peers/README.md`).
    pub fn with_write_prefetch(mut self, on: bool) -> Self {
        self.write_prefetch = on;
        self
    }

    fn producer_core(&self) -> MultiProcessResult<Option<usize>> {
        match self.process_core {
            Some(c) => Ok(Some(c)),
            None => pinning::core_from_env(pinning::PROCESS_CORE_ENV),
        }
    }

    fn consumer_core(&self) -> MultiProcessResult<Option<usize>> {
        if let Some(c) = self.consumer_core.or(self.process_core) {
            return Ok(Some(c));
        }
        match pinning::core_from_env(pinning::CONSUMER_CORE_ENV)? {
            Some(c) => Ok(Some(c)),
            None => pinning::core_from_env(pinning::PROCESS_CORE_ENV),
        }
    }

    /// Creates the ring and returns its producer; every slot starts as `factory()`.
    pub fn build_producer(self, factory: impl FnMut() -> E) -> MultiProcessResult<Producer<E, B>> {
        self.check_deferred()?;
        if let Some(core) = self.producer_core()? {
            pinning::pin(core)?;
        }
        let geom = self.geometry()?;
        let mut expected = self.expected_ids.clone();
        refuse_duplicates(&expected)?;
        if let Some(id) = &self.consumer_id {
            if !expected.contains(id) {
                expected.push(id.clone());
            }
        }
        for id in &expected {
            registry::validate_id(id)?;
        }
        if let Some((n, p)) = &self.prefix {
            if *n > 0 {
                registry::validate_id(p)?;
            }
        }
        let coordination = self.effective_coordination(&expected);
        let region = create_reclaiming(&self.backend, &self.name, geom.total_len)?;
        let seg = Segment::<E, B>::new(region, geom).map_err(|_| MultiProcessError::Corrupt {
            what: "created region smaller than requested",
            value: geom.total_len as i64,
        })?;
        let (pid, start_time) = self.backend.process_identity();
        let token = self.backend.process_token();
        self.backend.sched_point(SchedPoint::SegmentInit, 0);
        seg.initialise(
            &HeaderInit {
                fingerprint: type_fingerprint::<E>(),
                epoch: new_epoch(&self.backend, &self.name),
                owner_pid: pid,
                owner_start_time: start_time,
                owner_token: token,
                ring_flags: 0,
            },
            factory,
        );
        // The magic is written: lift the unfinished mark (see `reclaim_if_stale`).
        seg.region().finish(self.create_mode())?;
        if coordination != CoordinationMode::Immediate {
            let prefix = self
                .prefix
                .as_ref()
                .filter(|(n, _)| *n > 0)
                .map(|(n, p)| (*n, p.as_str()));
            registry::reserve(&seg, &expected, prefix)?;
        }
        self.backend.sched_point(SchedPoint::SegmentState, 0);
        seg.header().state.store(STATE_READY, Ordering::Release);
        tracing::debug!(name = %self.name, backend = self.backend.kind(), capacity = geom.capacity, "ring created");
        let mut producer = Producer::from_parts(seg, self.backend, self.name);
        producer.set_write_prefetch(self.write_prefetch);
        if coordination == CoordinationMode::WaitForConsumers {
            producer.wait_for_consumers(self.coordination_timeout)?;
        }
        Ok(producer)
    }

    /// Attaches to an existing ring as a consumer (waiting up to the attach timeout for it to
    /// exist and become ready), after checking that it carries this event type and capacity.
    pub fn build_consumer(self) -> MultiProcessResult<Consumer<E, B>> {
        self.check_deferred()?;
        let core = self.consumer_core()?;
        if let Some(core) = core {
            pinning::pin(core)?;
        }
        let geom = self.geometry()?;
        let id = match &self.consumer_id {
            Some(id) => id.clone(),
            None => anonymous_id(&self.backend),
        };
        registry::validate_id(&id)?;
        let region = open_ready(&self.backend, &self.name, self.attach_timeout)?;
        self.check_owner(&region)?;
        let seg = validate::<E, B>(region, &geom)?;
        // A consumer never writes a slot: map them read-only here, so that a consumer bug that
        // writes one faults in that consumer instead of corrupting what every peer reads.
        seg.region()
            .protect_read_only(geom.slots_offset, geom.total_len - geom.slots_offset)?;
        if self.prefault {
            if let Err(e) = seg.region().prefault(false) {
                tracing::warn!(error = %e, "prefaulting the ring failed; first reads may fault");
            }
        }
        let anonymous = self.consumer_id.is_none();
        let reg = registry::register(&seg, &self.backend, &id, anonymous, self.attach_timeout)?;
        tracing::debug!(name = %self.name, id = %id, start = reg.start, resumed = reg.resumed, "consumer attached");
        let mut c = Consumer::from_parts(
            seg,
            self.backend,
            self.name,
            id,
            reg,
            self.wait_strategy,
            self.producer_check_interval,
        );
        c.set_core(core);
        Ok(c)
    }
}

impl<X: ShmEvent, B: RingBackend> SharedDisruptorBuilder<crate::ring::multi::Sourced<X>, B> {
    /// Builds one producer of a multi-producer ring (`ring::multi`): attaches to the ring if it
    /// exists (checking owner, mode, layout, type and that it is a multi-producer ring), or
    /// creates it (reserving the expected consumers, as `build_producer` does) if it does not,
    /// or if the one there was closed (every producer detached). Two producers that race to
    /// create it end with one creator and one attacher.
    pub(crate) fn build_multi_producer(
        self,
        source: u64,
        mut factory: impl FnMut() -> X,
    ) -> MultiProcessResult<crate::ring::multi::MultiProducer<X, B>> {
        use crate::ring::layout::RING_MULTI_PRODUCER;
        use crate::ring::multi::{register_producer, MultiProducer, Sourced};
        self.check_deferred()?;
        if let Some(core) = self.producer_core()? {
            pinning::pin(core)?;
        }
        let geom = self.geometry()?;
        for id in self.expected_ids.iter().chain(self.consumer_id.iter()) {
            registry::validate_id(id)?;
        }
        let attach = |region: B::Region| -> MultiProcessResult<MultiProducer<X, B>> {
            self.check_owner(&region)?;
            let seg = validate::<Sourced<X>, B>(region, &geom)?;
            let flags = seg.header().ring_flags.load(Ordering::Relaxed);
            if flags & RING_MULTI_PRODUCER == 0 {
                return Err(MultiProcessError::LayoutMismatch {
                    field: "ring_flags (a single-producer ring)",
                    expected: u64::from(RING_MULTI_PRODUCER),
                    found: u64::from(flags),
                });
            }
            let index = register_producer(&seg, &self.backend, source, self.attach_timeout)?;
            tracing::debug!(name = %self.name, source, index, "producer attached to a multi-producer ring");
            Ok(MultiProducer::from_parts(
                seg,
                self.backend.clone(),
                self.name.clone(),
                index,
                source,
            ))
        };
        for _ in 0..8 {
            match self.backend.open(&self.name) {
                Ok(region) => match peek_state(&region) {
                    Some((MAGIC, STATE_READY)) => match attach(region) {
                        // Closed between our look and the registry lock: make a new one.
                        Err(MultiProcessError::Closed) => {}
                        r => return r,
                    },
                    Some((MAGIC, STATE_CLOSED)) => {}
                    _ => {
                        // Being created (or not ours, which `open_ready` reports).
                        drop(region);
                        let region = open_ready(&self.backend, &self.name, self.attach_timeout)?;
                        if let Some((MAGIC, STATE_READY)) = peek_state(&region) {
                            match attach(region) {
                                Err(MultiProcessError::Closed) => {}
                                r => return r,
                            }
                        }
                    }
                },
                Err(BackendError::NotFound { .. }) => {}
                Err(BackendError::Empty { .. }) => {
                    let region = open_ready(&self.backend, &self.name, self.attach_timeout)?;
                    if let Some((MAGIC, STATE_READY)) = peek_state(&region) {
                        match attach(region) {
                            Err(MultiProcessError::Closed) => {}
                            r => return r,
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
            let region = match self.backend.create(&self.name, geom.total_len) {
                Ok(r) => r,
                Err(BackendError::AlreadyExists { .. }) => {
                    // Something is there. A ready multi-producer ring is attached to (back at the
                    // top), even when its creator is dead: its consumers and other producers
                    // are on it (found by the DST, seed 0x38da: a racing builder reclaimed the
                    // ring a crashed creator had just made ready, under its consumers). Only
                    // what is closed, unfinished, or another kind of ring of a dead owner is
                    // reclaimed.
                    let ready_multi = self
                        .backend
                        .open(&self.name)
                        .is_ok_and(|r| ready_multi_producer(&r));
                    if !ready_multi {
                        match reclaim_if_stale(&self.backend, &self.name, true)? {
                            Reclaim::Removed => {}
                            Reclaim::Busy | Reclaim::Keep => self.backend.sleep(RECLAIM_RETRY),
                        }
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let seg = Segment::<Sourced<X>, B>::new(region, geom).map_err(|_| {
                MultiProcessError::Corrupt {
                    what: "created region smaller than requested",
                    value: geom.total_len as i64,
                }
            })?;
            let (pid, start_time) = self.backend.process_identity();
            self.backend.sched_point(SchedPoint::SegmentInit, 0);
            seg.initialise(
                &HeaderInit {
                    fingerprint: type_fingerprint::<Sourced<X>>(),
                    epoch: new_epoch(&self.backend, &self.name),
                    owner_pid: pid,
                    owner_start_time: start_time,
                    owner_token: self.backend.process_token(),
                    ring_flags: RING_MULTI_PRODUCER,
                },
                || Sourced {
                    source: 0,
                    event: factory(),
                },
            );
            seg.region().finish(self.create_mode())?;
            let mut expected = self.expected_ids.clone();
            refuse_duplicates(&expected)?;
            if let Some(id) = &self.consumer_id {
                if !expected.contains(id) {
                    expected.push(id.clone());
                }
            }
            let coordination = self.effective_coordination(&expected);
            if coordination != CoordinationMode::Immediate {
                let prefix = self
                    .prefix
                    .as_ref()
                    .filter(|(n, _)| *n > 0)
                    .map(|(n, p)| (*n, p.as_str()));
                registry::reserve(&seg, &expected, prefix)?;
            }
            let index = register_producer(&seg, &self.backend, source, self.attach_timeout)?;
            self.backend.sched_point(SchedPoint::SegmentState, 0);
            seg.header().state.store(STATE_READY, Ordering::Release);
            tracing::debug!(name = %self.name, source, "multi-producer ring created");
            let producer = MultiProducer::from_parts(
                seg,
                self.backend.clone(),
                self.name.clone(),
                index,
                source,
            );
            if coordination == CoordinationMode::WaitForConsumers {
                producer.wait_for_consumers(self.coordination_timeout)?;
            }
            return Ok(producer);
        }
        Err(BackendError::AlreadyExists {
            name: self.name.clone(),
        }
        .into())
    }
}

/// Each expected id reserves one entry that only a consumer of that id can claim, so an id
/// listed twice would leave a reservation nobody ever claims — gating the producer forever under
/// `BufferUntilConsumers`. A duplicate is a configuration error, refused before anything is
/// created.
fn refuse_duplicates(ids: &[String]) -> MultiProcessResult<()> {
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(MultiProcessError::DuplicateConsumerId { id: id.clone() });
        }
    }
    Ok(())
}

#[allow(clippy::disallowed_types)] // a process-local counter
fn anonymous_id<B: RingBackend>(backend: &B) -> String {
    static COUNTER: StdAtomicU64 = StdAtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("anon-{}-{n}", backend.process_identity().0)
}

fn new_epoch<B: RingBackend>(backend: &B, name: &str) -> u64 {
    let mut h = Fnv1a::new();
    h.write(name.as_bytes());
    h.write(&backend.process_token().to_le_bytes());
    h.write(&(backend.now().as_nanos() as u64).to_le_bytes());
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    if backend.kind() != "sim" {
        h.write(&wall.to_le_bytes());
    }
    h.finish()
}

/// Creates the region; if the name is taken by a myelon ring whose owner is dead (or a region
/// a myelon creator never finished), removes it and tries again. A live owner's ring gives
/// `AlreadyExists`; anything that is not provably ours gives `ForeignObject`, left intact.
fn create_reclaiming<B: RingBackend>(
    backend: &B,
    name: &str,
    len: usize,
) -> MultiProcessResult<B::Region> {
    for _ in 0..4 {
        match backend.create(name, len) {
            Ok(r) => return Ok(r),
            Err(BackendError::AlreadyExists { .. }) => {
                match reclaim_if_stale(backend, name, false)? {
                    Reclaim::Removed => {}
                    // A prober (a consumer checking liveness) may hold the dead owner's lock for
                    // a moment; give it that moment.
                    Reclaim::Busy => backend.sleep(RECLAIM_RETRY),
                    Reclaim::Keep => break,
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(BackendError::AlreadyExists {
        name: name.to_string(),
    }
    .into())
}

const RECLAIM_RETRY: Duration = Duration::from_millis(1);

/// Whether `region` is a ready multi-producer ring (which a multi-producer builder attaches to
/// and never reclaims, its creator alive or not).
fn ready_multi_producer<R: Region>(region: &R) -> bool {
    use crate::ring::layout::{try_header_of, RING_MULTI_PRODUCER};
    matches!(peek_state(region), Some((MAGIC, STATE_READY)))
        && try_header_of(region)
            .is_some_and(|h| h.ring_flags.load(Ordering::Relaxed) & RING_MULTI_PRODUCER != 0)
}

enum Reclaim {
    Removed,
    Busy,
    Keep,
}

/// Decides what to do with a name that is taken.
///
/// What may be reclaimed is decided by the backend under its exclusive owner lock
/// ([`RingBackend::remove_if_abandoned`] with our [`MAGIC`]), not here: "nobody holds our lock"
/// is true of every other program's object too, so only an object that is provably a myelon
/// ring goes — one whose first word is our magic, or one still carrying the unfinished mark a
/// myelon creator puts on the object in the very `O_CREAT|O_EXCL` call that creates it and lifts
/// (`Region::finish`, right after `initialise` wrote the magic) only once the magic is there.
/// So a creator killed at any instruction leaves something reclaimable (unsized, zero, or half
/// written, it still carries the mark or the magic), while a foreign object — zero-filled or
/// not, sized or not — is `ForeignObject` and never touched. The probe below only tells a
/// prober's momentary lock on a dead owner's ring (`Busy`, retried) from a live owner (`Keep`).
///
/// `multi` (a multi-producer builder): a ring whose owner is alive when looked at, and a ready
/// multi-producer ring whatever its creator's state, are kept (the builder looks again and
/// attaches), not handed to `remove_if_abandoned`, which decides on the owner alone, later. A
/// multi-producer ring outlives its creator: if the creator died after this look, other
/// producers and consumers may be on the ring by then (found by the DST: seed 0x337ce58a671e,
/// a builder stalled 2.4 ms between a look at a ring still being created and the removal, and
/// removed it from under three producers; seed 0x5ef11be0, a builder removed a ready ring
/// whose creator had just died while a third producer was attaching to it). What is still
/// removed cannot change under the builder: a ring its dead creator never finished, or a
/// closed one. The name may point to a newer object by the time of the removal; the removal
/// then decides again on that object, under its locks (its `RemovalGuard`): a producer
/// registering on it or attached to it keeps it, and for a multi-producer builder so does its
/// being a ready multi-producer ring.
fn reclaim_if_stale<B: RingBackend>(
    backend: &B,
    name: &str,
    multi: bool,
) -> MultiProcessResult<Reclaim> {
    let dead_before = match backend.open(name) {
        // A multi-producer ring outlives its creator while another producer is attached.
        Ok(region) if crate::ring::multi::live_producer_in(&region) => return Ok(Reclaim::Keep),
        Ok(region)
            if multi
                && (region.owner_state() != ProcessState::Dead
                    || ready_multi_producer(&region)) =>
        {
            return Ok(Reclaim::Keep)
        }
        Ok(region) => region.owner_state() == ProcessState::Dead,
        Err(BackendError::NotFound { .. }) => return Ok(Reclaim::Removed),
        // Unsized or unfinished: its creator may be gone.
        Err(BackendError::Empty { .. }) => true,
        Err(_) => false,
    };
    // Decided again under the removal's locks, on the object it removes (the name may refer
    // to a newer one by now): a producer registering or attached keeps it, and a
    // multi-producer builder keeps a ready multi-producer ring.
    let guard = RemovalGuard {
        slots: &RECLAIM_GUARD_SLOTS,
        keep: multi.then_some(head_is_ready_multi_producer as fn(&[u8]) -> bool),
    };
    // Mutant: the removal decides on the owner alone, as before the guard.
    #[cfg(myelon_mutant = "reclaim_unguarded")]
    let guard = RemovalGuard::NONE;
    match backend.remove_if_abandoned(name, &[MAGIC], guard) {
        Ok(true) => {
            tracing::info!(name, "reclaimed a ring left by a dead producer");
            Ok(Reclaim::Removed)
        }
        Ok(false) if dead_before => Ok(Reclaim::Busy),
        Ok(false) => Ok(Reclaim::Keep),
        Err(BackendError::NotFound { .. }) => Ok(Reclaim::Removed),
        Err(BackendError::PermissionDenied { .. }) => Ok(Reclaim::Keep),
        Err(e) => Err(e.into()),
    }
}

/// Opens `name` and waits until its header is ready (or closed), at most `timeout`.
fn open_ready<B: RingBackend>(
    backend: &B,
    name: &str,
    timeout: Duration,
) -> MultiProcessResult<B::Region> {
    let start = backend.now();
    loop {
        match backend.open(name) {
            Ok(region) => match peek_state(&region) {
                Some((MAGIC, STATE_READY | STATE_CLOSED)) => return Ok(region),
                Some((0, STATE_INIT)) | None => {}
                Some((MAGIC, STATE_INIT)) => {}
                Some((MAGIC, state)) => {
                    return Err(MultiProcessError::Corrupt {
                        what: "header state",
                        value: i64::from(state),
                    })
                }
                Some((found, _)) => {
                    return Err(MultiProcessError::BadMagic {
                        expected: MAGIC,
                        found,
                    })
                }
            },
            Err(BackendError::NotFound { .. } | BackendError::Empty { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let waited = backend.now().saturating_sub(start);
        if waited >= timeout {
            return Err(MultiProcessError::NotReady {
                name: name.to_string(),
                waited,
            });
        }
        backend.sleep(default_discovery_poll_duration().min(timeout - waited));
    }
}

fn check(field: &'static str, expected: u64, found: u64) -> MultiProcessResult<()> {
    if expected == found {
        Ok(())
    } else {
        Err(MultiProcessError::LayoutMismatch {
            field,
            expected,
            found,
        })
    }
}

/// Checks every header field against this build's geometry for `E` (I1).
fn validate<E: ShmEvent, B: RingBackend>(
    region: B::Region,
    geom: &Geometry,
) -> MultiProcessResult<Segment<E, B>> {
    let len = region.len();
    let Some(h) = HeaderView::read(&region) else {
        return Err(MultiProcessError::LayoutMismatch {
            field: "region length",
            expected: geom.total_len as u64,
            found: len as u64,
        });
    };
    if h.magic != MAGIC {
        return Err(MultiProcessError::BadMagic {
            expected: MAGIC,
            found: h.magic,
        });
    }
    if h.version != LAYOUT_VERSION {
        return Err(MultiProcessError::LayoutVersionMismatch {
            expected: LAYOUT_VERSION,
            found: h.version,
        });
    }
    check(
        "header_len",
        std::mem::size_of::<Header>() as u64,
        h.header_len,
    )?;
    if h.event_size != geom.event_size as u64 {
        return Err(MultiProcessError::EventSizeMismatch {
            expected: geom.event_size,
            found: h.event_size as usize,
        });
    }
    let fp = type_fingerprint::<E>();
    if h.fingerprint != fp {
        return Err(MultiProcessError::TypeMismatch {
            expected: fp,
            found: h.fingerprint,
        });
    }
    if h.capacity != geom.capacity as u64 {
        return Err(MultiProcessError::CapacityMismatch {
            expected: geom.capacity,
            found: h.capacity as usize,
        });
    }
    if h.slot_stride != geom.slot_stride as u64 {
        return Err(MultiProcessError::SlotSizeMismatch {
            expected: geom.slot_stride,
            found: h.slot_stride as usize,
        });
    }
    check("event_align", geom.event_align as u64, h.event_align)?;
    check("max_consumers", geom.max_consumers as u64, h.max_consumers)?;
    check("slots_offset", geom.slots_offset as u64, h.slots_offset)?;
    check("total_len", geom.total_len as u64, h.total_len)?;
    if len < geom.total_len {
        return Err(MultiProcessError::LayoutMismatch {
            field: "region length",
            expected: geom.total_len as u64,
            found: len as u64,
        });
    }
    Segment::new(region, *geom).map_err(|r: B::Region| MultiProcessError::LayoutMismatch {
        field: "region length or alignment",
        expected: geom.total_len as u64,
        found: r.len() as u64,
    })
}

/// The identity fields of a header, copied out.
struct HeaderView {
    magic: u64,
    version: u32,
    header_len: u64,
    fingerprint: u64,
    capacity: u64,
    event_size: u64,
    event_align: u64,
    slot_stride: u64,
    max_consumers: u64,
    slots_offset: u64,
    total_len: u64,
}

impl HeaderView {
    fn read(region: &impl Region) -> Option<HeaderView> {
        let h = crate::ring::layout::try_header_of(region)?;
        let r = Ordering::Relaxed;
        Some(HeaderView {
            magic: h.magic.load(r),
            version: h.layout_version.load(r),
            header_len: u64::from(h.header_len.load(r)),
            fingerprint: h.type_fingerprint.load(r),
            capacity: h.capacity.load(r),
            event_size: u64::from(h.event_size.load(r)),
            event_align: u64::from(h.event_align.load(r)),
            slot_stride: u64::from(h.slot_stride.load(r)),
            max_consumers: u64::from(h.max_consumers.load(r)),
            slots_offset: h.slots_offset.load(r),
            total_len: h.total_len.load(r),
        })
    }
}

#[cfg(all(test, not(loom)))]
#[path = "builder_tests.rs"]
mod tests;
