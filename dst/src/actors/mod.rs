//! Deterministic simulation of the **public API**: the producer and consumers are real
//! `myelon` calls (`publish`, `publish_batch`, `try_claim_batch` + `commit`, blocking receives
//! over a simulated futex, …) running as actors on coroutines; every shared-memory-visible step
//! inside those calls is a point where the seeded [`sched::Scheduler`] may switch actors, stall
//! one, or crash it (forgotten without `Drop`, its simulated process killed), and a crashed
//! consumer rejoins under its id (an anonymous one, attached without an id, is never resumed:
//! the producer must free its entry, and its actor may attach again as a new anonymous
//! consumer). The [`oracle`]s check every delivery, every attach position, every park, and the
//! end of the stream.
//!
//! One seed is one trace: the only inputs are the seed and the code. `run_seed` reproduces a
//! failure bit for bit (same trace hash).

pub mod coverage;
pub mod framed;
pub mod hook;
pub mod multi;
pub mod oracle;
pub mod programs;
pub mod sched;

use crate::rng::Rng;
use coverage::{Coverage, Path};
use framed::{Layer, MsgPlan};
use myelon::backend::{SchedPoint, SimBackend};
use myelon::CoordinationMode;
use myelon_backend_sim::actor::Suspend;
use oracle::{Failure, Ledger, Oracle};
use programs::{LivenessPlan, ProducerPlan, Shared, Who};
use sched::{ActorId, Exit, Faults, Observer, RunError, RunStats, Scheduler, Spawn};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

/// What one seed set up.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The seed.
    pub seed: u64,
    /// Ring capacity.
    pub capacity: usize,
    /// Which layer runs.
    pub layer: Layer,
    /// The producer's plan (Layer 0).
    pub plan: ProducerPlan,
    /// The producer's plan (Layers 1–2).
    pub msgs: MsgPlan,
    /// Consumer ids.
    pub consumers: Vec<String>,
    /// Actors that try to attach under a live consumer's id.
    pub intruders: usize,
    /// Consumer actors that attach without an id (a generated label; never resumed).
    pub anonymous: usize,
    /// The producer may crash (and is then restarted under the same name).
    pub producer_crashes: bool,
    /// Fault knobs.
    pub faults: Faults,
    /// A multi-producer ring instead (a fraction of the seeds, from their own stream: the
    /// other seeds keep their scenarios).
    pub multi: Option<multi::MpPlan>,
}

impl Scenario {
    /// The scenario of `seed`.
    pub fn generate(seed: u64) -> Scenario {
        let mut r = Rng::fork(seed, 1);
        let capacity = 1usize << r.range(1, 4);
        let events = r.log_range(1, 300) as i64;
        let n = r.range(1, 3) as usize;
        let consumers: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let reserved = r.chance(50);
        let plan = ProducerPlan {
            events,
            coordination: if reserved {
                CoordinationMode::BufferUntilConsumers
            } else {
                CoordinationMode::Immediate
            },
            expected: if reserved {
                consumers.clone()
            } else {
                Vec::new()
            },
            max_batch: r.range(1, 2 * capacity as u64) as usize,
            liveness: None,
            prefix: false,
            overflow_probe: false,
        };
        let mut plan = plan;
        // Draws added later come from their own stream, so older seeds keep their scenarios.
        let mut r2 = Rng::fork(seed, 6);
        let prefix_roll = r2.chance(30);
        plan.overflow_probe = r2.chance(5);
        if r.chance(40) {
            let us = |r: &mut Rng, lo: u64, hi: u64| Duration::from_micros(r.log_range(lo, hi));
            let required: Vec<String> =
                consumers.iter().filter(|_| r.chance(60)).cloned().collect();
            let required = if required.is_empty() {
                vec![consumers[0].clone()]
            } else {
                required
            };
            let progress = us(&mut r, 100, 5_000);
            plan.liveness = Some(LivenessPlan {
                required,
                startup: us(&mut r, 200, 20_000),
                progress,
                check: us(&mut r, 20, 1_000).min(progress),
                grace: us(&mut r, 100, 10_000),
                alert_only: r.chance(30),
                managed_only: false,
            });
        }
        // Prefix reservations, but not with liveness: enabling it turns unclaimed prefix slots
        // into reservations of the required ids, which the ledger does not model.
        plan.prefix = reserved && prefix_roll && plan.liveness.is_none();
        // Intruders only where no reservation exists (a fresh registration of theirs would
        // consume one, which the ledger cannot tell apart from the consumer's own).
        let intruders = if plan.expected.is_empty() && plan.liveness.is_none() && r.chance(40) {
            r.range(1, 3) as usize
        } else {
            0
        };
        let layer = match r.below(4) {
            0 | 1 => Layer::Raw,
            2 => Layer::Framed,
            _ => Layer::Typed,
        };
        let msgs = MsgPlan {
            messages: r.log_range(1, 60),
            max_len: [0, 8, 20, 60][r.below(4) as usize],
            coordination: plan.coordination,
            expected: plan.expected.clone(),
        };
        let faults = Faults {
            switch_pct: [5, 30, 70][r.below(3) as usize],
            crash_one_in: [0, 40, 300][r.below(3) as usize],
            max_crashes: r.range(1, 3) as u32,
            stall_one_in: [0, 0, 400][r.below(3) as usize],
            max_stall: Duration::from_millis(4),
        };
        let producer_crashes = layer == Layer::Raw && plan.liveness.is_none() && r.chance(25);
        // Anonymous consumers (their own stream: seeds without them keep their scenarios).
        let mut r3 = Rng::fork(seed, 7);
        // Few seeds, as every extra consumer slows the whole seed down (it gates the producer).
        let anonymous = if r3.chance(8) {
            1 + usize::from(r3.chance(30))
        } else {
            0
        };
        if let Some(l) = plan.liveness.as_mut() {
            l.managed_only = anonymous > 0 && r3.chance(30);
        }
        let multi = multi::MpPlan::generate(seed, capacity, faults);
        Scenario {
            seed,
            multi,
            capacity,
            layer,
            producer_crashes,
            plan,
            msgs,
            consumers,
            intruders,
            anonymous,
            faults,
        }
    }
}

/// The result of one seed.
#[derive(Debug, Clone)]
pub struct SeedOutcome {
    /// The first oracle failure, if any.
    pub failure: Option<Failure>,
    /// Scheduler counters (incl. the trace hash).
    pub stats: RunStats,
    /// Paths reached.
    pub coverage: Coverage,
    /// The trace, when asked for.
    pub trace: Vec<String>,
}

/// The oracles' side of the scheduler: pending stamps, lost wake-ups, crash → rejoin.
struct Checker {
    shared: Shared,
    /// The producer's plan (a restart publishes it again into the new ring).
    plan: ProducerPlan,
    seed: u64,
    layer: Layer,
    max_len: usize,
    world: SimBackend,
    /// Consumer actors and their ids.
    ids: BTreeMap<ActorId, String>,
    /// Consumer actors that attach without an id.
    anon: BTreeSet<ActorId>,
    producer: ActorId,
    rng: Rng,
    /// Draws about anonymous consumers (their own stream: `rng`'s draws stay those of the
    /// seeds that have none).
    anon_rng: Rng,
    next_actor: u16,
}

impl Checker {
    /// The current producer crashed: a new one (a new process) builds the ring again under
    /// the same name after a while, reclaiming the dead one's segment.
    fn restart_producer(&mut self) -> (Duration, Spawn) {
        // A stamp point reached but not executed is dropped there: the crash came first.
        let mut l = self.shared.ledger.borrow_mut();
        l.producer_restarted(self.plan.expected.clone());
        if self.plan.prefix {
            let (gen, n) = (l.gen, self.plan.expected.len());
            l.prefix_slots.insert(gen, n);
        }
        drop(l);
        let mut cov = self.shared.coverage.borrow_mut();
        cov.hit(Path::ProducerCrash);
        cov.hit(Path::ProducerRestart);
        drop(cov);
        let me = ActorId(self.next_actor);
        self.next_actor += 1;
        self.producer = me;
        let backend = self.world.sibling();
        let (sh, plan, b2) = (self.shared.clone(), self.plan.clone(), backend.clone());
        let rng = Rng::fork(self.seed ^ u64::from(me.0), 3);
        let delay = Duration::from_nanos(self.rng.log_range(100, 1_000_000));
        let spawn = Spawn {
            id: me,
            label: format!("producer#{}", me.0),
            backend,
            crashable: true,
            program: Box::new(move || programs::producer(sh, plan, b2, rng)),
        };
        (delay, spawn)
    }

    fn consumer_spawn(&mut self, who: Who, incarnation: u32) -> Spawn {
        let backend = self.world.sibling();
        let me = ActorId(self.next_actor);
        self.next_actor += 1;
        let (rng, label) = match &who {
            Who::Named(id) => {
                self.ids.insert(me, id.clone());
                let rng = Rng::fork(self.rng.next_u64(), u64::from(me.0));
                (rng, format!("{id}#{incarnation}"))
            }
            Who::Anonymous => {
                self.anon.insert(me);
                let rng = Rng::fork(self.anon_rng.next_u64(), u64::from(me.0));
                (rng, format!("anon-{me}"))
            }
        };
        let sh = self.shared.clone();
        let b2 = backend.clone();
        let (layer, max_len) = (self.layer, self.max_len);
        let program: Box<dyn FnOnce() -> Exit> = match layer {
            Layer::Raw => Box::new(move || programs::consumer(sh, who, me, b2, rng)),
            _ => Box::new(move || framed::consumer(sh, who, me, layer, max_len, b2, rng)),
        };
        Spawn {
            id: me,
            label,
            backend,
            crashable: true,
            program,
        }
    }

    /// An anonymous consumer crashed: its entry (if it had one) is dead, and nobody resumes
    /// it. Half the time its actor restarts as a new anonymous consumer.
    fn anonymous_crashed(&mut self, actor: ActorId) -> Option<(Duration, Spawn)> {
        let died = {
            let mut l = self.shared.ledger.borrow_mut();
            l.waiting.remove(&actor);
            l.anonymous_died(actor)
        };
        if died {
            self.shared.coverage.borrow_mut().hit(Path::AnonymousCrash);
        }
        if !self.anon_rng.chance(50) {
            return None;
        }
        let delay = Duration::from_nanos(self.anon_rng.log_range(100, 2_000_000));
        Some((delay, self.consumer_spawn(Who::Anonymous, 0)))
    }
}

impl Observer for Checker {
    fn on_suspend(&mut self, actor: ActorId, s: &Suspend, _now: Duration) -> Result<(), String> {
        let is_producer = actor == self.producer;
        let stamp_point =
            matches!(*s, Suspend::Point { code, .. } if code == SchedPoint::SlotStamp as u16);
        let join_point =
            matches!(*s, Suspend::Point { code, .. } if code == SchedPoint::JoinCursor as u16);
        let park = matches!(*s, Suspend::Park { .. });
        // Most suspensions concern no oracle: leave the ledger alone.
        if !(is_producer || join_point || park) {
            return Ok(());
        }
        let mut l = self.shared.ledger.borrow_mut();
        if is_producer {
            if let Some((_, seq)) = l.pending_stamp.take() {
                l.stamped = l.stamped.max(seq);
            }
            if let (true, Suspend::Point { data, .. }) = (stamp_point, *s) {
                l.pending_stamp = Some((actor, data));
            }
        }
        if park {
            self.shared.coverage.borrow_mut().hit(Path::Parked);
            if let Some(&(want, gen)) = l.waiting.get(&actor) {
                let stamped = l.gen_counts(gen).1;
                if want <= stamped {
                    let who = match self.ids.get(&actor) {
                        Some(id) => id.clone(),
                        None => format!("anonymous {actor}"),
                    };
                    let detail = format!(
                        "{who} parked waiting for {want}, already published (stamped {stamped})"
                    );
                    l.fail(Failure::new(Oracle::LostWakeup, detail));
                }
            }
        }
        if join_point && l.stamped >= l.published + 2 {
            self.shared.coverage.borrow_mut().hit(Path::JoinDuringBatch);
        }
        match &l.failure {
            Some(f) => Err(f.encode()),
            None => Ok(()),
        }
    }

    fn on_crash(&mut self, actor: ActorId, _now: Duration) -> Option<(Duration, Spawn)> {
        // Whether the actor held no attached incarnation when it crashed: then it may have
        // been inside an attach (its first, or one after it left or its ring's producer died)
        // and taken a prefix reservation with it (found at seed 0x8d5740c36501: a consumer
        // that had left crashed re-attaching, holding the last prefix slot).
        let attaching = !self
            .shared
            .ledger
            .borrow()
            .live
            .values()
            .any(|a| *a == actor);
        self.shared.ledger.borrow_mut().gone(actor);
        if actor == self.producer {
            return Some(self.restart_producer());
        }
        if self.anon.contains(&actor) {
            return self.anonymous_crashed(actor);
        }
        let id = self.ids.get(&actor)?.clone();
        {
            let mut l = self.shared.ledger.borrow_mut();
            l.waiting.remove(&actor);
            if attaching {
                l.crashed_attaching();
            }
        }
        let mut cov = self.shared.coverage.borrow_mut();
        cov.hit(Path::ConsumerCrash);
        cov.hit(Path::Rejoin);
        drop(cov);
        let n = self.ids.values().filter(|v| **v == id).count() as u32;
        let delay = Duration::from_nanos(self.rng.log_range(100, 2_000_000));
        Some((delay, self.consumer_spawn(Who::Named(id), n)))
    }

    fn may_crash(&self, actor: ActorId) -> bool {
        // A producer is crashed only once its ring's epoch is known, so the oracles can tell
        // its ring from the one its restart creates.
        actor != self.producer || self.shared.ledger.borrow().epoch.is_some()
    }

    fn on_exit(&mut self, actor: ActorId, exit: &Exit) -> Result<(), String> {
        let mut l = self.shared.ledger.borrow_mut();
        l.gone(actor);
        if actor == self.producer {
            if let Some((_, seq)) = l.pending_stamp.take() {
                l.stamped = l.stamped.max(seq);
            }
            l.producer_done = true;
        }
        if let Some(f) = &l.failure {
            return Err(f.encode());
        }
        match exit {
            Exit::Done => Ok(()),
            Exit::Failed(why) => Err(why.clone()),
        }
    }
}

/// Runs seed `seed`; `trace` records every step.
pub fn run_seed(seed: u64, trace: bool) -> SeedOutcome {
    run_scenario(&Scenario::generate(seed), trace)
}

/// Runs a scenario.
pub fn run_scenario(sc: &Scenario, trace: bool) -> SeedOutcome {
    if let Some(plan) = &sc.multi {
        return multi::run(sc, plan, trace);
    }
    let world = SimBackend::new_world();
    let shared = Shared {
        ledger: Rc::new(RefCell::new(Ledger::new())),
        coverage: Rc::new(RefCell::new(Coverage::default())),
        ring: format!("dst-{:x}", sc.seed),
        capacity: sc.capacity,
        alerts: Default::default(),
    };
    // Reserved ids start at 0: the builder's expected consumers, and (Layer 0) the required
    // ids liveness reserves right after the ring is built, before anything is published.
    let mut reserved = sc.plan.expected.clone();
    if let (Layer::Raw, Some(l)) = (sc.layer, &sc.plan.liveness) {
        for id in &l.required {
            if !reserved.contains(id) {
                reserved.push(id.clone());
            }
        }
    }
    shared.ledger.borrow_mut().reserved = reserved;
    if sc.layer == Layer::Raw && sc.plan.prefix {
        let n = sc.plan.expected.len();
        shared.ledger.borrow_mut().prefix_slots.insert(0, n);
    }
    if let (Layer::Raw, Some(l)) = (sc.layer, &sc.plan.liveness) {
        shared.ledger.borrow_mut().liveness_required = l.required.clone();
    }
    let mut sched = Scheduler::new(Rng::fork(sc.seed, 2), sc.faults, world.clone());
    if trace {
        sched = sched.with_trace();
    }
    let pb = world.sibling();
    let (sh, plan, msgs, pb2) = (shared.clone(), sc.plan.clone(), sc.msgs.clone(), pb.clone());
    let prng = Rng::fork(sc.seed, 3);
    let layer = sc.layer;
    let program: Box<dyn FnOnce() -> Exit> = match layer {
        Layer::Raw => Box::new(move || programs::producer(sh, plan, pb2, prng)),
        _ => Box::new(move || framed::producer(sh, msgs, layer, pb2, prng)),
    };
    let producer = sched.spawn(Spawn {
        id: ActorId(0),
        label: "producer".into(),
        backend: pb,
        crashable: sc.producer_crashes,
        program,
    });
    shared.ledger.borrow_mut().producer = Some(producer);
    let mut checker = Checker {
        shared: shared.clone(),
        plan: sc.plan.clone(),
        seed: sc.seed,
        layer: sc.layer,
        max_len: sc.msgs.max_len,
        world: world.clone(),
        ids: BTreeMap::new(),
        anon: BTreeSet::new(),
        producer,
        rng: Rng::fork(sc.seed, 4),
        anon_rng: Rng::fork(sc.seed, 8),
        next_actor: 1,
    };
    for id in &sc.consumers {
        let s = checker.consumer_spawn(Who::Named(id.clone()), 0);
        sched.spawn(s);
    }
    if sc.layer == Layer::Raw {
        let mut r = Rng::fork(sc.seed, 5);
        for k in 0..sc.intruders {
            let id = sc.consumers[r.below(sc.consumers.len() as u64) as usize].clone();
            let backend = world.sibling();
            let (sh, b2) = (shared.clone(), backend.clone());
            let me = ActorId(checker.next_actor);
            checker.next_actor += 1;
            sched.spawn_later(
                Duration::from_nanos(r.log_range(100, 500_000)),
                Spawn {
                    id: me,
                    label: format!("intruder{k}"),
                    backend,
                    crashable: false,
                    program: Box::new(move || programs::intruder(sh, id, b2)),
                },
            );
        }
    }
    for _ in 0..sc.anonymous {
        let delay = Duration::from_nanos(checker.anon_rng.log_range(1, 300_000));
        let s = checker.consumer_spawn(Who::Anonymous, 0);
        sched.spawn_later(delay, s);
    }
    let result = sched.run(&mut checker);
    let mut stats = sched.stats;
    let trace_lines = sched.take_trace();
    drop(sched);
    let failure = match result {
        Ok(()) => None,
        Err(RunError::Oracle(s)) => Some(Failure::decode(&s)),
        Err(RunError::Deadlock(s)) => Some(Failure::new(Oracle::Deadlock, s)),
        Err(RunError::Wedge(s)) => Some(Failure::new(Oracle::Wedge, s)),
        Err(RunError::Panic(s)) => Some(Failure::new(Oracle::Panic, s)),
    };
    let mut coverage = shared.coverage.borrow().clone();
    if stats.woken > 0 {
        coverage.hit(Path::WokenByWake);
    }
    if stats.stalls > 0 {
        coverage.hit(Path::Stall);
    }
    let alerts = shared.alerts.lock().map(|a| *a).unwrap_or_default();
    if alerts[0] {
        coverage.hit(Path::AlertStalled);
    }
    if alerts[1] {
        coverage.hit(Path::AlertRecovered);
    }
    stats.trace_hash ^= failure.as_ref().map_or(0, |f| f.oracle as u64 + 1);
    SeedOutcome {
        failure,
        stats,
        coverage,
        trace: trace_lines,
    }
}
