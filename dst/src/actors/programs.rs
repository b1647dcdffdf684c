//! What actors do: sequences of real public API calls chosen by the seed. Programs report to
//! the [`Ledger`] between calls (never while a call is in progress, so a crash inside a call
//! leaves the ledger as the process's own memory would be: the last completed call).

use super::coverage::{Coverage, Path};
use super::oracle::{check_word, Failure, Ledger, Oracle};
use super::sched::{ActorId, Exit};
use crate::rng::Rng;
use myelon::backend::{RingBackend, SimBackend};
use myelon::{
    AutoWaitStrategy, CoordinationMode, MultiProcessError, RequiredConsumerAlert,
    RequiredConsumerAlertKind, RequiredConsumerError, RequiredConsumerFailureAction,
    RequiredConsumerLivenessConfig, SharedDisruptorBuilder,
};
use myelon::{Consumer, ConsumerInfo};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

myelon::shm_event! {
    /// The simulated event: its sequence and a check word derived from it.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Ev {
        /// The sequence it was published as.
        pub value: u64,
        /// `check_word(value)`.
        pub check: u64,
    }
}

/// Writes event `seq`.
fn fill(e: &mut Ev, seq: i64) {
    e.value = seq as u64;
    e.check = check_word(seq as u64);
}

/// State every program of a seed shares (single-threaded: one actor runs at a time).
#[derive(Debug, Clone)]
pub struct Shared {
    /// The ledger the oracles check.
    pub ledger: Rc<RefCell<Ledger>>,
    /// Which public paths ran.
    pub coverage: Rc<RefCell<Coverage>>,
    /// Ring name.
    pub ring: String,
    /// Ring capacity.
    pub capacity: usize,
    /// Liveness alerts seen by the hook (stalled, recovered).
    pub alerts: std::sync::Arc<std::sync::Mutex<[bool; 2]>>,
}

impl Shared {
    fn cover(&self, p: Path) {
        self.coverage.borrow_mut().hit(p);
    }

    fn fail(&self, oracle: Oracle, detail: String) -> Exit {
        let f = Failure::new(oracle, detail);
        self.ledger.borrow_mut().fail(f.clone());
        Exit::Failed(f.encode())
    }

    fn builder(&self, b: SimBackend) -> SharedDisruptorBuilder<Ev, SimBackend> {
        SharedDisruptorBuilder::with_backend(b, &self.ring, self.capacity)
    }
}

/// Notes the dead anonymous consumers whose entries the producer freed: their labels left its
/// table. Reads the table (`Producer::consumers()`) only while such a death is pending.
pub fn note_reaped(sh: &Shared, table: impl FnOnce() -> Vec<ConsumerInfo>) {
    if sh.ledger.borrow().dead_anonymous.is_empty() {
        return;
    }
    let ids: Vec<String> = table().into_iter().map(|c| c.id).collect();
    if sh.ledger.borrow_mut().reaped(&ids) > 0 {
        sh.cover(Path::AnonymousReaped);
    }
}

/// The producer's plan.
#[derive(Debug, Clone)]
pub struct ProducerPlan {
    /// Events to publish.
    pub events: i64,
    /// Coordination mode.
    pub coordination: CoordinationMode,
    /// Expected consumer ids (reserved unless `Immediate`).
    pub expected: Vec<String>,
    /// Largest batch.
    pub max_batch: usize,
    /// Required-consumer liveness, when the seed turns it on (then the blocking publish
    /// flavours are the managed ones).
    pub liveness: Option<LivenessPlan>,
    /// Reserve the expected consumers by discovery prefix (`"c"`, one per expected id) instead
    /// of by id.
    pub prefix: bool,
    /// First try a ring with more expected consumers than the table holds
    /// (`TooManyConsumers`).
    pub overflow_probe: bool,
}

/// Required-consumer liveness knobs of a seed.
#[derive(Debug, Clone)]
pub struct LivenessPlan {
    /// Required ids.
    pub required: Vec<String>,
    /// `startup_wait_timeout`.
    pub startup: Duration,
    /// `progress_timeout`.
    pub progress: Duration,
    /// `progress_check_interval`.
    pub check: Duration,
    /// `shutdown_grace_period`.
    pub grace: Duration,
    /// `AlertOnly` instead of `GracefulShutdown`.
    pub alert_only: bool,
    /// Only the managed publish flavours (seeds with anonymous consumers: a producer that
    /// never calls a plain blocking publish must get past a dead anonymous consumer too).
    pub managed_only: bool,
}

impl LivenessPlan {
    fn config(&self, sh: &Shared) -> Result<RequiredConsumerLivenessConfig, MultiProcessError> {
        let alerts = std::sync::Arc::clone(&sh.alerts);
        // The hook runs inside the producer's call; it only notes which kinds fired.
        let hook = move |a: &RequiredConsumerAlert| {
            let k = match a.kind {
                RequiredConsumerAlertKind::Stalled => 0,
                RequiredConsumerAlertKind::Recovered => 1,
            };
            if let Ok(mut seen) = alerts.lock() {
                seen[k] = true;
            }
        };
        let c = RequiredConsumerLivenessConfig::new(self.required.clone())?
            .with_startup_wait_timeout(self.startup)?
            .with_progress_timeout(self.progress)?
            .with_progress_check_interval(self.check)?
            .with_shutdown_grace_period(self.grace)?
            .with_failure_action(if self.alert_only {
                RequiredConsumerFailureAction::AlertOnly
            } else {
                RequiredConsumerFailureAction::GracefulShutdown
            })
            .with_alert_hook(std::sync::Arc::new(hook));
        Ok(c)
    }
}

/// What a managed publish error means for the producer's program.
enum Managed {
    /// Sticky: stop publishing and close.
    Stop,
    /// Not sticky: try again.
    Retry,
    /// Not a liveness outcome.
    Bad(String),
}

fn managed_error(sh: &Shared, e: RequiredConsumerError) -> Managed {
    match e {
        RequiredConsumerError::GracefulShutdownTriggered { .. } => {
            sh.cover(Path::ShutdownTriggered);
            Managed::Stop
        }
        RequiredConsumerError::StartupTimeout { .. } => {
            sh.cover(Path::StartupTimedOut);
            Managed::Stop
        }
        RequiredConsumerError::NonRequiredConsumerDead { .. } => {
            sh.cover(Path::NonRequiredDead);
            Managed::Retry
        }
        e => Managed::Bad(e.to_string()),
    }
}

/// The producer: creates the ring, publishes `events` events through a seed-chosen mix of
/// every publish and claim flavour, then closes the ring by dropping the producer.
pub fn producer(sh: Shared, plan: ProducerPlan, backend: SimBackend, mut rng: Rng) -> Exit {
    if plan.overflow_probe {
        let ids: Vec<String> = (0..=myelon::DEFAULT_MAX_CONSUMERS)
            .map(|i| format!("x{i}"))
            .collect();
        let probe = SharedDisruptorBuilder::<Ev, SimBackend>::with_backend(
            backend.clone(),
            &format!("{}-x", sh.ring),
            sh.capacity,
        )
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .with_consumer_ids(ids)
        .build_producer(Ev::default);
        match probe {
            Err(MultiProcessError::TooManyConsumers { .. }) => sh.cover(Path::TooManyConsumers),
            Err(e) => return sh.fail(Oracle::UnexpectedError, format!("overflow probe: {e}")),
            Ok(_) => {
                return sh.fail(
                    Oracle::UnexpectedError,
                    "a ring reserved more consumers than its table holds".into(),
                )
            }
        }
    }
    let mut b = sh
        .builder(backend.clone())
        .with_coordination(plan.coordination);
    if plan.prefix && !plan.expected.is_empty() {
        b = b.discover_consumer_with_prefix(plan.expected.len(), "c");
        sh.cover(Path::PrefixReservation);
    } else if !plan.expected.is_empty() {
        b = b.with_consumer_ids(plan.expected.clone());
    }
    let mut p = match b.build_producer(Ev::default) {
        Ok(p) => p,
        Err(e) => return sh.fail(Oracle::UnexpectedError, format!("build_producer: {e}")),
    };
    sh.cover(Path::BuildProducer);
    sh.ledger.borrow_mut().epoch = Some(p.ring_epoch());
    let managed = match &plan.liveness {
        Some(l) => {
            let cfg = match l.config(&sh) {
                Ok(c) => c,
                Err(e) => return sh.fail(Oracle::UnexpectedError, format!("liveness config: {e}")),
            };
            if let Err(e) = p.enable_required_consumer_liveness(cfg) {
                return sh.fail(Oracle::UnexpectedError, format!("enable liveness: {e}"));
            }
            sh.cover(Path::LivenessEnabled);
            true
        }
        None => false,
    };
    let managed_only = managed && plan.liveness.as_ref().is_some_and(|l| l.managed_only);
    let cap = sh.capacity;
    while p.cursor() + 1 < plan.events {
        let next = p.cursor() + 1;
        let left = (plan.events - next) as usize;
        let k = (rng.range(1, plan.max_batch as u64) as usize).min(left);
        let mut flavour = rng.below(9);
        if managed_only && !matches!(flavour, 0 | 3 | 7 | 8) {
            flavour = [0, 3, 7][flavour as usize % 3];
        }
        let last = match flavour {
            0 if managed => {
                sh.cover(Path::PublishManaged);
                match p.publish_managed(|e| fill(e, next)) {
                    Ok(s) => s,
                    Err(e) => match managed_error(&sh, e) {
                        Managed::Stop => break,
                        Managed::Retry => continue,
                        Managed::Bad(e) => return sh.fail(Oracle::UnexpectedError, e),
                    },
                }
            }
            3 if managed => {
                sh.cover(Path::PublishBatchManaged);
                let r = p.publish_batch_managed(k, |i, e| fill(e, next + i as i64));
                sh.ledger.borrow_mut().published = p.cursor();
                match r {
                    Ok(s) => s,
                    Err(e) => match managed_error(&sh, e) {
                        Managed::Stop => break,
                        Managed::Retry => continue,
                        Managed::Bad(e) => return sh.fail(Oracle::UnexpectedError, e),
                    },
                }
            }
            7 | 8 if managed => {
                let k = k.min(cap);
                match p.claim_batch_managed(k) {
                    Ok(mut claim) => {
                        for i in 0..k {
                            fill(claim.slot_mut(i), next + i as i64);
                        }
                        sh.cover(Path::ClaimBatchManaged);
                        claim.commit()
                    }
                    Err(e) => match managed_error(&sh, e) {
                        Managed::Stop => break,
                        Managed::Retry => continue,
                        Managed::Bad(e) => return sh.fail(Oracle::UnexpectedError, e),
                    },
                }
            }
            0 => {
                sh.cover(Path::Publish);
                p.publish(|e| fill(e, next))
            }
            1 => {
                sh.cover(Path::TryPublish);
                match p.try_publish(|e| fill(e, next)) {
                    Ok(s) => s,
                    Err(_) => {
                        sh.cover(Path::TryPublishFull);
                        backend.yield_now();
                        continue;
                    }
                }
            }
            2 => {
                let t = if rng.chance(30) {
                    Duration::MAX
                } else {
                    Duration::from_micros(rng.log_range(1, 2_000))
                };
                sh.cover(Path::PublishTimeout);
                match p.publish_timeout(t, |e| fill(e, next)) {
                    Ok(s) => s,
                    Err(MultiProcessError::Timeout { .. }) => {
                        sh.cover(Path::PublishTimedOut);
                        continue;
                    }
                    Err(e) => {
                        return sh.fail(Oracle::UnexpectedError, format!("publish_timeout: {e}"))
                    }
                }
            }
            3 | 4 => {
                sh.cover(Path::PublishBatch);
                p.publish_batch(k, |i, e| fill(e, next + i as i64))
            }
            5 => {
                sh.cover(Path::TryPublishBatch);
                match p.try_publish_batch(k, |i, e| fill(e, next + i as i64)) {
                    Ok(s) => s,
                    Err(_) => {
                        sh.cover(Path::TryPublishBatchFull);
                        backend.yield_now();
                        continue;
                    }
                }
            }
            6 => {
                let k = k.min(cap);
                match p.try_claim_batch(k) {
                    Ok(mut claim) => {
                        for i in 0..k {
                            fill(claim.slot_mut(i), next + i as i64);
                        }
                        if rng.chance(15) {
                            sh.cover(Path::ClaimAbort);
                            claim.abort();
                            continue;
                        }
                        sh.cover(Path::ClaimCommit);
                        claim.commit()
                    }
                    Err(_) => {
                        sh.cover(Path::TryClaimFull);
                        backend.yield_now();
                        continue;
                    }
                }
            }
            _ => {
                let k = k.min(cap);
                let t = if rng.chance(50) {
                    None
                } else {
                    Some(Duration::from_micros(rng.log_range(1, 2_000)))
                };
                match p.claim_batch_timeout(k, t) {
                    Ok(mut claim) => {
                        for i in 0..k {
                            fill(claim.slot_mut(i), next + i as i64);
                        }
                        sh.cover(Path::ClaimBatchTimeout);
                        claim.commit()
                    }
                    Err(MultiProcessError::Timeout { .. }) => {
                        sh.cover(Path::ClaimTimedOut);
                        continue;
                    }
                    Err(e) => {
                        return sh
                            .fail(Oracle::UnexpectedError, format!("claim_batch_timeout: {e}"))
                    }
                }
            }
        };
        sh.ledger.borrow_mut().published = last;
        note_reaped(&sh, || p.consumers());
    }
    drop(p);
    sh.cover(Path::ProducerClose);
    Exit::Done
}

/// How a consumer receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receive {
    /// `try_consume_next_leased`, yielding when empty.
    TryLeased,
    /// `try_consume_batch`.
    TryBatch,
    /// `consume_next_leased` with the `Block` strategy (a simulated futex).
    BlockLeased,
    /// `consume_next_timeout` with the `Block` strategy.
    BlockTimeout,
    /// `consume_batch_timeout` with the `Yield` strategy.
    YieldBatch,
}

const RECEIVES: [Receive; 5] = [
    Receive::TryLeased,
    Receive::TryBatch,
    Receive::BlockLeased,
    Receive::BlockTimeout,
    Receive::YieldBatch,
];

/// Who a consumer actor attaches as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// Under a consumer id (`with_consumer_id`): a crash is followed by a same-id rejoin.
    Named(String),
    /// Without an id: a generated label, never resumed; every attach is a new consumer.
    Anonymous,
}

impl Who {
    /// The ledger's key of attach number `n` of actor `me`: the id, or `~a3.0` for an
    /// anonymous consumer (never its label, which differs between runs in one process).
    pub fn key(&self, me: ActorId, n: u32) -> String {
        match self {
            Who::Named(id) => id.clone(),
            Who::Anonymous => format!("~{me}.{n}"),
        }
    }

    /// The id passed to the builder, if any.
    pub fn id(&self) -> Option<&str> {
        match self {
            Who::Named(id) => Some(id),
            Who::Anonymous => None,
        }
    }
}

/// A consumer: attaches (under its id, or anonymously) and receives until the end of the
/// stream, every call a seed-chosen receive flavour; each event is checked against its
/// sequence.
pub fn consumer(sh: Shared, who: Who, me: ActorId, backend: SimBackend, mut rng: Rng) -> Exit {
    // Some consumers leave now and then (detach, or keep their registration) and come back.
    // An anonymous one mostly stays a while (a number of receive calls) and leaves; half the
    // time it comes back (as a new anonymous consumer), else it is gone for good.
    let anonymous = who == Who::Anonymous;
    let churn = rng.chance(25);
    let mut attaches = 0u32;
    loop {
        let visit = (anonymous && rng.chance(70)).then(|| rng.log_range(1, 150));
        let key = who.key(me, attaches);
        attaches += 1;
        // Everything published so far is behind the live tail an anonymous attach starts at.
        let floor = {
            let l = sh.ledger.borrow();
            (l.gen, l.published)
        };
        let mut c = match attach(&sh, &who, &backend) {
            Ok(Some(c)) => c,
            Ok(None) => return Exit::Done,
            Err(exit) => return exit,
        };
        let stay = Stay { churn, visit };
        let left = receive(&sh, &key, me, &backend, &mut rng, &mut c, stay, floor);
        if anonymous {
            sh.ledger.borrow_mut().anonymous_leaving(me);
            if !matches!(left, Leave::Exit(_)) {
                sh.cover(Path::AnonymousLeave);
            }
        }
        match left {
            Leave::Exit(exit) => return exit,
            Leave::Dead => {
                // Detaches from the dead ring: a next attach to it would be a fresh one.
                drop(c);
                sh.ledger.borrow_mut().left(&key, false);
            }
            Leave::Detach => {
                drop(c);
                sh.cover(Path::Detach);
                sh.ledger.borrow_mut().left(&key, false);
            }
            Leave::Keep => {
                c.keep_registration_on_drop();
                drop(c);
                sh.cover(Path::KeepRegistration);
                // Nobody can resume an anonymous consumer: its entry is freed all the same.
                sh.ledger.borrow_mut().left(&key, !anonymous);
            }
        }
        if anonymous && rng.chance(50) {
            return Exit::Done;
        }
    }
}

/// How long a consumer stays attached.
#[derive(Debug, Clone, Copy)]
struct Stay {
    /// It leaves now and then (after any receive call, 2% of the time).
    churn: bool,
    /// It leaves after this many receive calls.
    visit: Option<u64>,
}

/// Attaches `who`: `Ok(None)` when the ring came and went before this consumer did.
fn attach(
    sh: &Shared,
    who: &Who,
    backend: &SimBackend,
) -> Result<Option<Consumer<Ev, SimBackend>>, Exit> {
    let mut busy = 0u32;
    let name = who.id().unwrap_or("anonymous");
    loop {
        let mut attach = sh
            .builder(backend.clone())
            .with_attach_timeout(Duration::from_millis(2))
            .with_producer_check_interval(Duration::from_micros(200));
        if let Some(id) = who.id() {
            attach = attach.with_consumer_id(id);
        }
        match attach.build_consumer() {
            Ok(c) => return Ok(Some(c)),
            // The ring is not there: not created yet, or created, closed and unlinked before
            // this consumer came (it then missed the whole stream, which is legitimate only
            // for a consumer nobody reserved).
            Err(MultiProcessError::NotReady { .. }) => {
                let l = sh.ledger.borrow();
                if l.producer_done {
                    let reserved = l.reserved.iter().any(|r| Some(r.as_str()) == who.id());
                    drop(l);
                    sh.cover(Path::MissedClosedRing);
                    let gen = sh.ledger.borrow().gen;
                    let seen = sh
                        .ledger
                        .borrow()
                        .released
                        .contains_key(&(gen, name.to_string()));
                    if reserved && !seen {
                        sh.cover(Path::ReservedMissedClose);
                    }
                    return Ok(None);
                }
            }
            // Another process holds the registry lock (a stalled one, possibly): try again.
            Err(MultiProcessError::RegistryBusy { .. }) => {
                sh.cover(Path::RegistryBusy);
                backend.sleep(Duration::from_micros(5));
            }
            // An intruder holds the id for a moment (it lets go at once): try again.
            Err(MultiProcessError::ConsumerIdInUse { .. }) if busy < 1000 && who.id().is_some() => {
                busy += 1;
                sh.cover(Path::IdInUseRetry);
                backend.sleep(Duration::from_micros(5));
            }
            // A resumed cursor a lap behind the producer: it ran past a gating consumer.
            Err(e @ MultiProcessError::Corrupt { .. }) => {
                return Err(sh.fail(Oracle::Overwrite, format!("{name} attach: {e}")))
            }
            Err(e) => return Err(sh.fail(Oracle::UnexpectedError, format!("{name} attach: {e}"))),
        }
    }
}

/// Why a receive loop ended.
enum Leave {
    Exit(Exit),
    /// Its producer died: attach again (to the restarted producer's ring).
    Dead,
    Detach,
    Keep,
}

/// Receives with a seed-chosen mix of flavours until the end of the stream (or until it decides
/// to leave, see [`Stay`]). `id` is the ledger's key (an anonymous consumer's
/// starts with `~`); `floor` is the generation and last published sequence when it began to
/// attach.
#[allow(clippy::too_many_arguments)]
fn receive(
    sh: &Shared,
    id: &str,
    me: ActorId,
    backend: &SimBackend,
    rng: &mut Rng,
    c: &mut Consumer<Ev, SimBackend>,
    stay: Stay,
    floor: (usize, i64),
) -> Leave {
    sh.cover(if c.resumed() {
        Path::AttachResumed
    } else {
        Path::AttachFresh
    });
    let gen = sh.ledger.borrow().gen_of(c.ring_epoch());
    if gen < sh.ledger.borrow().gen {
        sh.cover(Path::AttachedDeadRing);
    }
    let (start, resumed) = (c.next_sequence(), c.resumed());
    let k = if id.starts_with('~') {
        sh.cover(Path::AnonymousAttach);
        let label = c.consumer_id().to_string();
        sh.ledger
            .borrow_mut()
            .attached_anonymous(id, &label, me, start, resumed, gen, floor)
    } else {
        sh.ledger.borrow_mut().attached(id, me, start, resumed, gen)
    };
    let mix: Vec<Receive> = RECEIVES.into_iter().filter(|_| rng.chance(60)).collect();
    let mix = if mix.is_empty() {
        vec![Receive::TryLeased]
    } else {
        mix
    };
    let mut calls = 0u64;
    loop {
        let how = mix[rng.below(mix.len() as u64) as usize];
        let strategy = match how {
            Receive::BlockLeased | Receive::BlockTimeout => AutoWaitStrategy::Block,
            Receive::YieldBatch => AutoWaitStrategy::Yield,
            _ => AutoWaitStrategy::BusySpin,
        };
        if c.wait_strategy() != strategy {
            c.set_wait_strategy(strategy);
        }
        let r = match how {
            Receive::TryLeased => match c.try_consume_next_leased() {
                Ok(Some(lease)) => {
                    let (seq, e) = (lease.sequence(), *lease);
                    sh.ledger.borrow_mut().received(k, seq, e.value, e.check);
                    drop(lease);
                    sh.cover(Path::TryLeased);
                    Ok(1)
                }
                Ok(None) => {
                    backend.yield_now();
                    Ok(0)
                }
                Err(e) => Err(e),
            },
            Receive::TryBatch => {
                let max = rng.range(1, 2 * sh.capacity as u64) as usize;
                let r = c.try_consume_batch(max, |e, seq, _| {
                    sh.ledger.borrow_mut().received(k, seq, e.value, e.check);
                });
                if matches!(r, Ok(0)) {
                    backend.yield_now();
                } else {
                    sh.cover(Path::TryBatch);
                }
                r
            }
            Receive::BlockLeased | Receive::BlockTimeout => {
                sh.ledger
                    .borrow_mut()
                    .waiting
                    .insert(me, (c.next_sequence(), gen));
                let r = if how == Receive::BlockLeased {
                    c.consume_next_leased().map(|lease| {
                        let (seq, e) = (lease.sequence(), *lease);
                        sh.ledger.borrow_mut().received(k, seq, e.value, e.check);
                    })
                } else {
                    let seq = c.next_sequence();
                    let t = Duration::from_micros(rng.log_range(1, 5_000));
                    match c.consume_next_timeout(t) {
                        Ok(e) => {
                            sh.ledger.borrow_mut().received(k, seq, e.value, e.check);
                            Ok(())
                        }
                        Err(MultiProcessError::Timeout { .. }) => {
                            sh.cover(Path::ConsumeTimedOut);
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                };
                sh.ledger.borrow_mut().waiting.remove(&me);
                sh.cover(if how == Receive::BlockLeased {
                    Path::BlockLeased
                } else {
                    Path::BlockTimeout
                });
                r.map(|()| 1)
            }
            Receive::YieldBatch => {
                let max = rng.range(1, sh.capacity as u64) as usize;
                let t = Duration::from_micros(rng.log_range(1, 5_000));
                let r = c.consume_batch_timeout(max, t, |e, seq, _| {
                    sh.ledger.borrow_mut().received(k, seq, e.value, e.check);
                });
                sh.cover(Path::YieldBatch);
                match r {
                    Err(MultiProcessError::Timeout { .. }) => Ok(0),
                    r => r,
                }
            }
        };
        match r {
            Ok(_) => sh.ledger.borrow_mut().released_through(k),
            Err(MultiProcessError::Closed) => {
                sh.cover(Path::SawClosed);
                sh.ledger.borrow_mut().closed(k);
                return Leave::Exit(Exit::Done);
            }
            Err(MultiProcessError::ProducerDead) => {
                sh.cover(Path::SawProducerDead);
                sh.ledger.borrow_mut().producer_dead(k);
                return Leave::Dead;
            }
            Err(e @ MultiProcessError::Corrupt { .. }) => {
                return Leave::Exit(sh.fail(Oracle::Overwrite, format!("{id}: {e}")))
            }
            Err(e) => return Leave::Exit(sh.fail(Oracle::UnexpectedError, format!("{id}: {e}"))),
        }
        if sh.ledger.borrow().failure.is_some() {
            return Leave::Exit(Exit::Failed("ledger".into()));
        }
        calls += 1;
        if stay.visit.is_some_and(|v| calls >= v) || (stay.churn && rng.chance(2)) {
            return if rng.chance(50) {
                Leave::Keep
            } else {
                Leave::Detach
            };
        }
    }
}

/// An intruder: tries to attach under an id a live consumer may hold. Refused with
/// `ConsumerIdInUse` while the holder lives; if the holder died meanwhile it resumes the entry
/// and hands it straight back (keeping the registration), so the holder's rejoin resumes where
/// it would have.
pub fn intruder(sh: Shared, id: String, backend: SimBackend) -> Exit {
    let attach = sh
        .builder(backend.clone())
        .with_consumer_id(id.clone())
        .with_attach_timeout(Duration::from_millis(1));
    let live_before: Vec<usize> = sh
        .ledger
        .borrow()
        .live
        .keys()
        .filter(|(_, i)| *i == id)
        .map(|(g, _)| *g)
        .collect();
    match attach.build_consumer() {
        Err(MultiProcessError::ConsumerIdInUse { .. }) => {
            sh.cover(Path::IdInUseRefused);
            Exit::Done
        }
        Err(MultiProcessError::NotReady { .. }) => Exit::Done,
        Err(MultiProcessError::RegistryBusy { .. }) => {
            sh.cover(Path::RegistryBusy);
            Exit::Done
        }
        Err(e) => sh.fail(Oracle::UnexpectedError, format!("intruder {id}: {e}")),
        Ok(mut c) => {
            let gen = sh.ledger.borrow().gen_of(c.ring_epoch());
            let still_live = sh.ledger.borrow().live.contains_key(&(gen, id.clone()));
            if live_before.contains(&gen) && still_live {
                return sh.fail(
                    Oracle::IdInUse,
                    format!("intruder attached as {id} while its holder lives"),
                );
            }
            if c.resumed() {
                // Hold the entry a moment (the holder's rejoin meets ConsumerIdInUse), then
                // hand it back where it was.
                backend.sleep(Duration::from_micros(20));
                c.keep_registration_on_drop();
                drop(c);
            } else {
                // A fresh registration, dropped at once: the id has no entry any more (no
                // reservation, no committed cursor) and its next attach is a fresh one.
                drop(c);
                sh.ledger.borrow_mut().forget_id(&id);
            }
            Exit::Done
        }
    }
}
