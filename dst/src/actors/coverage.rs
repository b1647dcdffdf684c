//! Which public paths and situations a seed reached (the `coverage` report counts seeds).

/// A public call or a situation worth reaching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Path {
    /// `build_producer` created the ring.
    BuildProducer,
    /// `Producer::publish`.
    Publish,
    /// `Producer::try_publish` succeeded.
    TryPublish,
    /// `try_publish` found the ring full.
    TryPublishFull,
    /// `Producer::publish_timeout`.
    PublishTimeout,
    /// `publish_timeout` timed out.
    PublishTimedOut,
    /// `Producer::publish_batch`.
    PublishBatch,
    /// `Producer::try_publish_batch`.
    TryPublishBatch,
    /// `try_publish_batch` found too little room.
    TryPublishBatchFull,
    /// `try_claim_batch` + `BatchClaim::commit`.
    ClaimCommit,
    /// `BatchClaim::abort`.
    ClaimAbort,
    /// `try_claim_batch` found too little room.
    TryClaimFull,
    /// `claim_batch_timeout` + commit.
    ClaimBatchTimeout,
    /// `claim_batch_timeout` timed out.
    ClaimTimedOut,
    /// The producer closed the ring (drop).
    ProducerClose,
    /// A consumer attached at the live tail or on a reservation.
    AttachFresh,
    /// A consumer resumed an entry (same-id rejoin or reservation).
    AttachResumed,
    /// `try_consume_next_leased` delivered.
    TryLeased,
    /// `try_consume_batch` delivered.
    TryBatch,
    /// `consume_next_leased` with `Block`.
    BlockLeased,
    /// `consume_next_timeout` with `Block`.
    BlockTimeout,
    /// `consume_next_timeout` timed out.
    ConsumeTimedOut,
    /// `consume_batch_timeout` with `Yield`.
    YieldBatch,
    /// A consumer saw `Closed`.
    SawClosed,
    /// A simulated futex wait parked an actor.
    Parked,
    /// A parked actor was woken by a wake (not its timeout).
    WokenByWake,
    /// A consumer crashed inside a call.
    ConsumerCrash,
    /// A crashed consumer's id rejoined.
    Rejoin,
    /// An actor was stalled.
    Stall,
    /// A consumer registered while the producer was inside a batch (stamped, unannounced).
    JoinDuringBatch,
    /// A consumer came after the producer had closed and unlinked the ring.
    MissedClosedRing,
    /// ... and it was a reserved consumer (its reservation died with the ring).
    ReservedMissedClose,
    /// A typed producer published (bincode).
    TypedPublish,
    /// `FramedTransportProducer::publish`.
    FramedPublish,
    /// `try_claim`/`claim_timeout` + `MessageClaim::commit`.
    MessageClaimCommit,
    /// `MessageClaim::abort`.
    MessageClaimAbort,
    /// A message took more than one frame.
    Fragmented,
    /// A framed or typed consumer received a whole message.
    MessageReceived,
    /// A consumer (re)joined mid-message and counted the partial message.
    DroppedPartial,
    /// A typed `try_publish` / `publish_timeout` refused a message larger than the ring.
    ExceedsCapacity,
    /// A consumer left normally (`Drop` detaches).
    Detach,
    /// A consumer left with `keep_registration_on_drop`.
    KeepRegistration,
    /// A consumer's attach met `ConsumerIdInUse` (an intruder) and retried.
    IdInUseRetry,
    /// An intruder was refused with `ConsumerIdInUse`.
    IdInUseRefused,
    /// `enable_required_consumer_liveness`.
    LivenessEnabled,
    /// `publish_managed`.
    PublishManaged,
    /// `publish_batch_managed`.
    PublishBatchManaged,
    /// `claim_batch_managed` + commit.
    ClaimBatchManaged,
    /// A `Stalled` alert reached the hook.
    AlertStalled,
    /// A `Recovered` alert reached the hook.
    AlertRecovered,
    /// A managed publish failed with `GracefulShutdownTriggered`.
    ShutdownTriggered,
    /// A managed publish failed with `StartupTimeout`.
    StartupTimedOut,
    /// A managed publish reported `NonRequiredConsumerDead`.
    NonRequiredDead,
    /// An attach found the registry lock held past its timeout (a stalled holder) and retried.
    RegistryBusy,
    /// The producer crashed inside a call.
    ProducerCrash,
    /// A restarted producer reclaimed the dead one's name and created the ring again.
    ProducerRestart,
    /// A consumer got `ProducerDead` (after receiving everything stamped).
    SawProducerDead,
    /// A consumer attached to a dead producer's ring before the restart reclaimed it.
    AttachedDeadRing,
    /// Expected consumers reserved by `discover_consumer_with_prefix` and claimed by id.
    PrefixReservation,
    /// `build_producer` refused more expected consumers than the table holds.
    TooManyConsumers,
    /// A consumer attached without an id (a generated label, flagged anonymous).
    AnonymousAttach,
    /// An attached anonymous consumer left (`Drop`, with or without
    /// `keep_registration_on_drop`: nobody can resume it either way).
    AnonymousLeave,
    /// An attached anonymous consumer crashed (its entry is left behind, gating).
    AnonymousCrash,
    /// The producer freed a dead anonymous consumer's entry (its label left
    /// `Producer::consumers()`).
    AnonymousReaped,
    /// Multi-producer: `MultiProducer::publish` / `try_publish` / `publish_batch`.
    MultiPublish,
    /// Multi-producer: `claim_batch` / `try_claim_batch` + `MultiClaim::commit`.
    MultiClaim,
    /// Multi-producer: a claim given up (`MultiClaim::abort` or dropped unpublished).
    MultiAbort,
    /// Multi-producer: `try_publish` / `try_claim_batch` found the ring full.
    MultiFull,
    /// Multi-producer: a producer crashed inside a claim or publish call, or holding a claim.
    MultiProducerCrashMidClaim,
    /// Multi-producer: a crashed producer restarted (same source id, new numbering epoch).
    MultiProducerRestart,
    /// Multi-producer: a consumer skipped a claim whose producer died before stamping it.
    HoleSkipped,
    /// Multi-producer: a consumer skipped a given-up claim (skip markers).
    SkipMarkerSkipped,
    /// Multi-producer: a consumer got `ProducerDead` (no live producer) and carried on.
    MultiSawProducerDead,
    /// Multi-producer: a crashed consumer rejoined under its id.
    MultiRejoin,
    /// Multi-producer: a consumer read until `Closed` (the last producer detached).
    MultiClosed,
}

impl Path {
    /// Every path, in report order.
    pub const ALL: [Path; 75] = [
        Path::BuildProducer,
        Path::Publish,
        Path::TryPublish,
        Path::TryPublishFull,
        Path::PublishTimeout,
        Path::PublishTimedOut,
        Path::PublishBatch,
        Path::TryPublishBatch,
        Path::TryPublishBatchFull,
        Path::ClaimCommit,
        Path::ClaimAbort,
        Path::TryClaimFull,
        Path::ClaimBatchTimeout,
        Path::ClaimTimedOut,
        Path::ProducerClose,
        Path::AttachFresh,
        Path::AttachResumed,
        Path::TryLeased,
        Path::TryBatch,
        Path::BlockLeased,
        Path::BlockTimeout,
        Path::ConsumeTimedOut,
        Path::YieldBatch,
        Path::SawClosed,
        Path::Parked,
        Path::WokenByWake,
        Path::ConsumerCrash,
        Path::Rejoin,
        Path::Stall,
        Path::JoinDuringBatch,
        Path::MissedClosedRing,
        Path::ReservedMissedClose,
        Path::TypedPublish,
        Path::FramedPublish,
        Path::MessageClaimCommit,
        Path::MessageClaimAbort,
        Path::Fragmented,
        Path::MessageReceived,
        Path::DroppedPartial,
        Path::ExceedsCapacity,
        Path::Detach,
        Path::KeepRegistration,
        Path::IdInUseRetry,
        Path::IdInUseRefused,
        Path::LivenessEnabled,
        Path::PublishManaged,
        Path::PublishBatchManaged,
        Path::ClaimBatchManaged,
        Path::AlertStalled,
        Path::AlertRecovered,
        Path::ShutdownTriggered,
        Path::StartupTimedOut,
        Path::NonRequiredDead,
        Path::RegistryBusy,
        Path::ProducerCrash,
        Path::ProducerRestart,
        Path::SawProducerDead,
        Path::AttachedDeadRing,
        Path::PrefixReservation,
        Path::TooManyConsumers,
        Path::AnonymousAttach,
        Path::AnonymousLeave,
        Path::AnonymousCrash,
        Path::AnonymousReaped,
        Path::MultiPublish,
        Path::MultiClaim,
        Path::MultiAbort,
        Path::MultiFull,
        Path::MultiProducerCrashMidClaim,
        Path::MultiProducerRestart,
        Path::HoleSkipped,
        Path::SkipMarkerSkipped,
        Path::MultiSawProducerDead,
        Path::MultiRejoin,
        Path::MultiClosed,
    ];

    /// Situations rare enough that a few thousand seeds may miss them (the 20,000-seed
    /// `dst api coverage` run in CI requires them too).
    pub const RARE: [Path; 3] = [
        Path::RegistryBusy,
        Path::IdInUseRetry,
        Path::MultiSawProducerDead,
    ];

    /// Its name in reports.
    pub fn name(self) -> String {
        format!("{self:?}")
    }
}

/// The paths one seed reached.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    hit: u128,
}

impl Coverage {
    /// Marks `p` reached.
    pub fn hit(&mut self, p: Path) {
        self.hit |= 1 << (p as u8);
    }

    /// Whether `p` was reached.
    pub fn has(&self, p: Path) -> bool {
        self.hit & (1 << (p as u8)) != 0
    }
}

/// Seeds per path over a sweep.
#[derive(Debug, Clone, Default)]
pub struct CoverageCounts {
    /// Seeds that reached each path (indexed by `Path as usize`).
    pub seeds: Vec<u64>,
}

impl CoverageCounts {
    /// Adds one seed's coverage.
    pub fn add(&mut self, c: &Coverage) {
        if self.seeds.is_empty() {
            self.seeds = vec![0; Path::ALL.len()];
        }
        for p in Path::ALL {
            if c.has(p) {
                self.seeds[p as usize] += 1;
            }
        }
    }

    /// Adds another sweep's counts.
    pub fn merge(&mut self, o: &CoverageCounts) {
        if self.seeds.is_empty() {
            self.seeds = vec![0; Path::ALL.len()];
        }
        for (a, b) in self.seeds.iter_mut().zip(&o.seeds) {
            *a += b;
        }
    }

    /// Seeds that reached `p`.
    pub fn get(&self, p: Path) -> u64 {
        self.seeds.get(p as usize).copied().unwrap_or(0)
    }
}
