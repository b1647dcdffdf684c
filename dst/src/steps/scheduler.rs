//! The seeded scheduler: who may run (wake-up times, stalls), which runnable actor goes next,
//! and virtual time — which it alone advances. It knows nothing of rings or oracles.

use crate::rng::Rng;
use crate::workload::Workload;
use myelon::backend::SimBackend;
use std::time::Duration;

/// "Never" as a virtual instant.
pub const NEVER: u64 = u64::MAX;
/// Steps after which a run counts as hung.
pub const STEP_LIMIT: u64 = 3_000_000;
/// Virtual time after the heal point after which a run counts as hung.
pub const HEAL_BUDGET_US: u64 = 120_000_000;

/// Who acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorId {
    /// The producer.
    Producer,
    /// Consumer `i` of the workload.
    Consumer(usize),
    /// The harness itself (faults, the heal point, failures).
    Harness,
}

impl ActorId {
    /// The word a trace record hashes for this actor.
    pub fn word(self) -> u64 {
        match self {
            ActorId::Producer => 0,
            ActorId::Consumer(i) => i as u64 + 1,
            ActorId::Harness => 9,
        }
    }

    /// The scheduling slot of an actor that runs (the harness never does).
    fn slot(self) -> usize {
        match self {
            ActorId::Producer => 0,
            ActorId::Consumer(i) => i + 1,
            ActorId::Harness => unreachable!("the harness is not scheduled"),
        }
    }

    fn of_slot(slot: usize) -> ActorId {
        if slot == 0 {
            ActorId::Producer
        } else {
            ActorId::Consumer(slot - 1)
        }
    }
}

/// Virtual time, step count, and per actor when it may run next.
#[derive(Debug)]
pub struct Scheduler {
    rng: Rng,
    world: SimBackend,
    /// Virtual time (µs).
    pub now: u64,
    /// Steps taken.
    pub step: u64,
    wake: Vec<u64>,
    stalled: Vec<u64>,
    /// When the last fault is over: stalls end and crashed consumers rejoin.
    pub heal_at: u64,
    /// Whether the heal point has passed.
    pub healed: bool,
    runnable: Vec<ActorId>,
    /// Shared-memory operations the current step's call made (see [`Scheduler::work`]).
    ops: u64,
}

impl Scheduler {
    /// The scheduler of `w` over `world` (whose clock it drives).
    pub fn new(w: &Workload, world: SimBackend) -> Scheduler {
        let heal_at = w.faults.iter().map(|f| f.at_us).max().map_or(0, |t| t + 1);
        let mut wake = vec![0u64; w.consumers.len() + 1];
        for (i, spec) in w.consumers.iter().enumerate() {
            wake[i + 1] = spec.attach_us.unwrap_or(NEVER);
        }
        Scheduler {
            rng: Rng::fork(w.seed, 2),
            world,
            now: 0,
            step: 0,
            stalled: vec![0; wake.len()],
            runnable: Vec::with_capacity(wake.len()),
            wake,
            heal_at,
            healed: heal_at == 0,
            ops: 0,
        }
    }

    /// A seeded choice in `0..n` (actors use it to pick which real call to make).
    pub fn below(&mut self, n: u64) -> u64 {
        self.rng.below(n)
    }

    /// A seeded choice in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng.range(lo, hi)
    }

    /// `a` runs again at `t` (`NEVER`: only when woken).
    pub fn wake_at(&mut self, a: ActorId, t: u64) {
        self.wake[a.slot()] = t;
    }

    /// `a` runs again at `now` if it was waiting for later.
    pub fn wake_now(&mut self, a: ActorId) {
        let now = self.now;
        let w = &mut self.wake[a.slot()];
        if *w > now {
            *w = now;
        }
    }

    /// Whether `a` waits for a time after now.
    pub fn waiting(&self, a: ActorId) -> bool {
        self.wake[a.slot()] > self.now
    }

    /// `a` is not scheduled for `dur_us`.
    pub fn stall(&mut self, a: ActorId, dur_us: u64) {
        let s = &mut self.stalled[a.slot()];
        *s = (*s).max(self.now + dur_us);
    }

    /// The heal point: every stall ends now.
    pub fn end_stalls(&mut self) {
        self.healed = true;
        for s in &mut self.stalled {
            *s = (*s).min(self.now);
        }
    }

    /// Picks the next actor among those `alive` that are due and not stalled, and counts the
    /// step; `None` if none is due.
    pub fn pick(&mut self, alive: impl Fn(ActorId) -> bool) -> Option<ActorId> {
        let now = self.now;
        self.runnable.clear();
        for slot in 0..self.wake.len() {
            let a = ActorId::of_slot(slot);
            if self.stalled[slot] <= now && self.wake[slot] <= now && alive(a) {
                self.runnable.push(a);
            }
        }
        if self.runnable.is_empty() {
            return None;
        }
        let a = self.runnable[self.rng.below(self.runnable.len() as u64) as usize];
        self.step += 1;
        Some(a)
    }

    /// The current step's call made `ops` shared-memory operations (slot writes, stamps, cursor
    /// stores, reads): it takes virtual time in proportion (a publish of `n` events as long as
    /// `2n + 1` single operations), so a run spans as much virtual time — and meets as many
    /// of its faults — whichever calls the seed chose.
    pub fn work(&mut self, ops: u64) {
        self.ops += ops;
    }

    /// After a step: a little virtual time passes, on average one microsecond per operation.
    pub fn tick(&mut self) {
        let ops = std::mem::take(&mut self.ops).max(1);
        self.now += self.rng.below(2 * ops + 1);
        self.world
            .world()
            .advance_to(Duration::from_micros(self.now));
    }

    /// Whether the run exceeded its budget of steps or virtual time.
    pub fn over_budget(&self) -> bool {
        self.step > STEP_LIMIT || self.now > self.heal_at.saturating_add(HEAL_BUDGET_US)
    }

    /// Moves time to the next thing that can happen (`next_fault`, the heal point, an `alive`
    /// actor's wake-up); false if nothing ever will.
    pub fn jump(&mut self, next_fault: Option<u64>, alive: impl Fn(ActorId) -> bool) -> bool {
        let mut next = next_fault.unwrap_or(NEVER);
        if !self.healed {
            next = next.min(self.heal_at);
        }
        for slot in 0..self.wake.len() {
            if alive(ActorId::of_slot(slot)) && self.wake[slot] != NEVER {
                next = next.min(self.wake[slot].max(self.stalled[slot]));
            }
        }
        if next == NEVER {
            return false;
        }
        self.now = self.now.max(next);
        self.world
            .world()
            .advance_to(Duration::from_micros(self.now));
        true
    }
}
