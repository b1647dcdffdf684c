//! Multi-producer seeds: 2–4 producers of one `MultiProducer` ring, each a simulated process
//! publishing its own numbered events through every publish and claim flavour (and giving
//! claims up now and then), crashed at any scheduling point — inside a claim (`ClaimIntent`,
//! `ClaimCas`), between the claim and the stamps, between stamps — and restarted under the same
//! source id once dead, in a new numbering epoch that continues from the durable count of
//! events whose publish returned. Named consumers (rejoining after crashes) read until `Closed`.
//! The [`oracle`]s check per-source order, one total order, no loss, holes only where a claim
//! was given up or its producer died (each counted once by `abandoned_slots`), and the
//! scheduler's budget checks that the run ends.

pub mod delivery;
pub mod oracle;
pub mod programs;

use super::coverage::{Coverage, Path};
use super::oracle::{Failure, Oracle};
use super::sched::{ActorId, Exit, Faults, Observer, RunError, Scheduler, Spawn};
use super::{Scenario, SeedOutcome};
use crate::rng::Rng;
use myelon::backend::SimBackend;
use myelon_backend_sim::actor::Suspend;
use oracle::MpLedger;
use programs::MpShared;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// What a multi-producer seed runs.
#[derive(Debug, Clone)]
pub struct MpPlan {
    /// Events per producer (source `i + 1` publishes `events[i]`).
    pub events: Vec<u64>,
    /// Largest claim.
    pub max_batch: usize,
    /// Consumer ids.
    pub consumers: Vec<String>,
    /// The ring's creator reserves the consumers (`BufferUntilConsumers`): they start at 0.
    pub reserved: bool,
    /// Percent of claims given up.
    pub abort_pct: u64,
    /// Fault knobs of this seed.
    pub faults: Faults,
}

impl MpPlan {
    /// The plan of `seed` (its own stream), for ring `capacity`, if the seed runs one.
    pub fn generate(seed: u64, capacity: usize, faults: Faults) -> Option<MpPlan> {
        let mut r = Rng::fork(seed, 11);
        if !r.chance(12) {
            return None;
        }
        let producers = r.range(2, 4) as usize;
        let events = (0..producers).map(|_| r.log_range(1, 60)).collect();
        let consumers = (0..r.range(1, 3)).map(|i| format!("c{i}")).collect();
        let faults = Faults {
            crash_one_in: [0, 20, 60, 200][r.below(4) as usize],
            max_crashes: r.range(1, 4) as u32,
            ..faults
        };
        Some(MpPlan {
            events,
            max_batch: r.range(1, capacity as u64) as usize,
            consumers,
            reserved: r.chance(50),
            abort_pct: [0, 5, 20][r.below(3) as usize],
            faults,
        })
    }
}

/// The oracles' side of the scheduler for a multi-producer seed.
struct MpChecker {
    sh: MpShared,
    world: SimBackend,
    seed: u64,
    /// Producer actors and their source ids; consumer actors and their ids.
    sources: BTreeMap<ActorId, u64>,
    ids: BTreeMap<ActorId, String>,
    rng: Rng,
    next_actor: u16,
}

impl MpChecker {
    fn producer_spawn(&mut self, source: u64) -> Spawn {
        let me = ActorId(self.next_actor);
        self.next_actor += 1;
        self.sources.insert(me, source);
        let backend = self.world.sibling();
        let (sh, b2) = (self.sh.clone(), backend.clone());
        let rng = Rng::fork(self.seed ^ u64::from(me.0), 12);
        Spawn {
            id: me,
            label: format!("p{source}#{}", me.0),
            backend,
            crashable: true,
            program: Box::new(move || programs::producer(sh, source, me, b2, rng)),
        }
    }

    fn consumer_spawn(&mut self, id: String) -> Spawn {
        let me = ActorId(self.next_actor);
        self.next_actor += 1;
        let n = self.ids.values().filter(|v| **v == id).count();
        self.ids.insert(me, id.clone());
        let backend = self.world.sibling();
        let (sh, b2) = (self.sh.clone(), backend.clone());
        let rng = Rng::fork(self.rng.next_u64(), u64::from(me.0));
        Spawn {
            id: me,
            label: format!("{id}#{n}"),
            backend,
            crashable: true,
            program: Box::new(move || programs::consumer(sh, id, b2, rng)),
        }
    }

    fn cover(&self, p: Path) {
        self.sh.coverage.borrow_mut().hit(p);
    }
}

impl Observer for MpChecker {
    fn on_suspend(&mut self, actor: ActorId, s: &Suspend, _now: Duration) -> Result<(), String> {
        let mut l = self.sh.ledger.borrow_mut();
        if self.sources.contains_key(&actor) {
            let point = match *s {
                Suspend::Point { code, data } => Some((code, data)),
                _ => None,
            };
            l.producer_point(actor, point);
        }
        match &l.failure {
            Some(f) => Err(f.encode()),
            None => Ok(()),
        }
    }

    fn on_crash(&mut self, actor: ActorId, _now: Duration) -> Option<(Duration, Spawn)> {
        if let Some(&source) = self.sources.get(&actor) {
            if self.sh.ledger.borrow_mut().producer_crashed(actor) {
                self.cover(Path::MultiProducerCrashMidClaim);
            }
            self.cover(Path::MultiProducerRestart);
            let delay = Duration::from_nanos(self.rng.log_range(100, 1_000_000));
            return Some((delay, self.producer_spawn(source)));
        }
        self.sh.ledger.borrow_mut().dead.insert(actor);
        let id = self.ids.get(&actor)?.clone();
        self.cover(Path::ConsumerCrash);
        self.cover(Path::MultiRejoin);
        let delay = Duration::from_nanos(self.rng.log_range(100, 2_000_000));
        Some((delay, self.consumer_spawn(id)))
    }

    fn may_crash(&self, actor: ActorId) -> bool {
        // A producer is crashed only once attached: a crash while creating the ring would
        // leave a half-made segment the others wait on (the single-producer seeds cover it).
        let l = self.sh.ledger.borrow();
        !self.sources.contains_key(&actor) || l.producer_attached(actor)
    }

    fn on_exit(&mut self, actor: ActorId, exit: &Exit) -> Result<(), String> {
        let mut l = self.sh.ledger.borrow_mut();
        if self.sources.contains_key(&actor) {
            l.producer_exited(actor);
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

/// Runs the multi-producer seed `sc` (whose `multi` plan is `plan`).
pub fn run(sc: &Scenario, plan: &MpPlan, trace: bool) -> SeedOutcome {
    let world = SimBackend::new_world();
    let reserved = if plan.reserved {
        plan.consumers.clone()
    } else {
        Vec::new()
    };
    let sh = MpShared {
        ledger: Rc::new(RefCell::new(MpLedger::new(plan.events.clone(), reserved))),
        coverage: Rc::new(RefCell::new(Coverage::default())),
        ring: format!("dst-mp-{:x}", sc.seed),
        capacity: sc.capacity,
        plan: plan.clone(),
    };
    let mut sched = Scheduler::new(Rng::fork(sc.seed, 2), plan.faults, world.clone());
    if trace {
        sched = sched.with_trace();
    }
    let mut checker = MpChecker {
        sh: sh.clone(),
        world: world.clone(),
        seed: sc.seed,
        sources: BTreeMap::new(),
        ids: BTreeMap::new(),
        rng: Rng::fork(sc.seed, 13),
        next_actor: 0,
    };
    for source in 1..=plan.events.len() as u64 {
        let s = checker.producer_spawn(source);
        let delay = Duration::from_nanos(checker.rng.log_range(1, 200_000));
        sched.spawn_later(delay, s);
    }
    for id in &plan.consumers {
        let s = checker.consumer_spawn(id.clone());
        let delay = Duration::from_nanos(checker.rng.log_range(1, 300_000));
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
    let mut coverage = sh.coverage.borrow().clone();
    let holes = sh.ledger.borrow().holes;
    if holes[0] > 0 {
        coverage.hit(Path::SkipMarkerSkipped);
    }
    if holes[1] > 0 {
        coverage.hit(Path::HoleSkipped);
    }
    if stats.stalls > 0 {
        coverage.hit(Path::Stall);
    }
    stats.trace_hash ^= failure.as_ref().map_or(0, |f| f.oracle as u64 + 1);
    SeedOutcome {
        failure,
        stats,
        coverage,
        trace: trace_lines,
    }
}
