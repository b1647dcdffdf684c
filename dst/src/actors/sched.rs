//! The seeded actor scheduler: runs actors (real API calls on coroutines) one suspension at a
//! time, owns virtual time, parks futex waiters until they are woken or time out, and injects
//! stalls and crashes. It decides *when* things happen; what each actor does is its program's,
//! and what counts as a failure is the [`Observer`]'s (the oracles live apart from it).

use super::hook;
use crate::rng::Rng;
use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult};
use myelon::backend::SimBackend;
use myelon_backend_sim::actor::{Resumed, Suspend};
use std::fmt;
use std::time::Duration;

/// Stack of every actor coroutine (committed lazily by the OS).
const STACK_BYTES: usize = 256 * 1024;
thread_local! {
    /// Coroutine stacks kept across seeds (allocating one is an mmap + guard page).
    static STACK_POOL: std::cell::RefCell<Vec<DefaultStack>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Virtual time a `sched_yield` takes.
const YIELD_TIME: Duration = Duration::from_micros(1);
/// Virtual time one scheduling step takes.
const STEP: Duration = Duration::from_nanos(100);

/// An actor of one seed, numbered in spawn order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActorId(pub u16);

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a{}", self.0)
    }
}

/// How an actor's program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It did what it set out to do.
    Done,
    /// It saw something an oracle forbids (its program checks what it receives).
    Failed(String),
}

/// A program to run as a new actor.
pub struct Spawn {
    /// Its id (chosen by whoever spawns it; unique per seed).
    pub id: ActorId,
    /// Name for traces ("producer", "c1#2").
    pub label: String,
    /// The simulated process it runs in (killed when the actor crashes).
    pub backend: SimBackend,
    /// Whether the fault schedule may crash it.
    pub crashable: bool,
    /// The program: real API calls.
    pub program: Box<dyn FnOnce() -> Exit>,
}

impl fmt::Debug for Spawn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawn").field("label", &self.label).finish()
    }
}

/// What the oracles see of a run, and how they react to a crash.
pub trait Observer {
    /// `actor` suspended with `s` at `now`; an error ends the seed.
    fn on_suspend(&mut self, actor: ActorId, s: &Suspend, now: Duration) -> Result<(), String>;
    /// `actor` was crashed (forgotten without `Drop`, its process killed). May ask for a new
    /// actor (a same-id rejoin) to start after a delay.
    fn on_crash(&mut self, actor: ActorId, now: Duration) -> Option<(Duration, Spawn)>;
    /// `actor`'s program returned.
    fn on_exit(&mut self, actor: ActorId, exit: &Exit) -> Result<(), String>;
    /// Whether a crashable actor may be crashed right now (default: yes).
    fn may_crash(&self, _actor: ActorId) -> bool {
        true
    }
}

/// Fault knobs of one seed.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Percent chance per scheduling step that another runnable actor runs.
    pub switch_pct: u64,
    /// Per crashable-actor point: one crash in this many (0: never).
    pub crash_one_in: u64,
    /// Most crashes per seed.
    pub max_crashes: u32,
    /// Per point: one stall in this many (0: never).
    pub stall_one_in: u64,
    /// Longest stall.
    pub max_stall: Duration,
}

/// Why a run ended without every actor finishing cleanly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// An oracle (observer or program) failed.
    Oracle(String),
    /// Every live actor is parked forever: nobody runnable and no timer pending.
    Deadlock(String),
    /// The step or time budget ran out while actors were still running.
    Wedge(String),
    /// An actor panicked (a bug in the harness or an assertion in the code under test).
    Panic(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Runnable,
    Parked {
        addr: usize,
        until: Option<Duration>,
    },
    Sleeping {
        until: Duration,
    },
    Finished,
    Crashed,
}

struct Actor {
    id: ActorId,
    label: String,
    backend: SimBackend,
    crashable: bool,
    coro: Option<Coroutine<Resumed, Suspend, Exit, DefaultStack>>,
    state: State,
    pending: Resumed,
    /// Not scheduled before this instant (a stall).
    stalled_until: Duration,
    /// The last suspension was a scheduling point (crashes happen only there).
    at_point: bool,
    /// Its code (registration points are crashed more often).
    last_point: u16,
}

/// Counters of one run (for coverage and traces).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunStats {
    /// Scheduling steps.
    pub steps: u64,
    /// Switches between actors.
    pub switches: u64,
    /// Futex parks, and how many ended with a wake.
    pub parks: u64,
    /// Parks ended by a wake.
    pub woken: u64,
    /// Crashes injected.
    pub crashes: u32,
    /// Stalls injected.
    pub stalls: u32,
    /// Hash of the whole trace (actor, suspension, time), for determinism checks.
    pub trace_hash: u64,
}

/// The scheduler of one seed.
pub struct Scheduler {
    rng: Rng,
    faults: Faults,
    world: SimBackend,
    actors: Vec<Actor>,
    delayed: Vec<(Duration, Spawn)>,
    stacks: Vec<DefaultStack>,
    current: Option<usize>,
    /// The current actor just yielded: switch if anyone else can run.
    yielded: bool,
    max_steps: u64,
    max_time: Duration,
    trace: Option<Vec<String>>,
    /// Counters of this run.
    pub stats: RunStats,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("actors", &self.actors.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // Unfinished actors (a failed run) still hold their stacks: forget them like a crash.
        for a in &mut self.actors {
            if let Some(mut coro) = a.coro.take() {
                if !coro.done() {
                    // SAFETY: as in `crash`: the coroutine's stack objects are leaked without
                    // running destructors; nothing outside the coroutine points into them.
                    unsafe { coro.force_reset() };
                }
                self.stacks.push(coro.into_stack());
            }
        }
        let stacks = std::mem::take(&mut self.stacks);
        STACK_POOL.with(|p| {
            let mut p = p.borrow_mut();
            p.extend(stacks);
            p.truncate(16);
        });
    }
}

/// Restores "no actor hook" for this thread when the run ends, even by a panic.
struct HookGuard;

impl Drop for HookGuard {
    fn drop(&mut self) {
        hook::leave();
        myelon_backend_sim::actor::set_hook(None);
    }
}

impl Scheduler {
    /// A scheduler for one seed over the world `world` (any backend of it: its clock is used).
    pub fn new(rng: Rng, faults: Faults, world: SimBackend) -> Scheduler {
        world.world().set_tick(Duration::ZERO);
        Scheduler {
            rng,
            faults,
            world,
            actors: Vec::new(),
            delayed: Vec::new(),
            stacks: Vec::new(),
            current: None,
            yielded: false,
            max_steps: 3_000_000,
            max_time: Duration::from_secs(600),
            trace: None,
            stats: RunStats {
                trace_hash: 0xcbf2_9ce4_8422_2325,
                ..RunStats::default()
            },
        }
    }

    /// Records a human-readable line per step (for `--trace`).
    pub fn with_trace(mut self) -> Scheduler {
        self.trace = Some(Vec::new());
        self
    }

    /// The recorded trace lines.
    pub fn take_trace(&mut self) -> Vec<String> {
        self.trace.take().unwrap_or_default()
    }

    /// The virtual clock.
    pub fn now(&self) -> Duration {
        self.world.world().peek_now()
    }

    /// Starts a new actor now.
    pub fn spawn(&mut self, s: Spawn) -> ActorId {
        let id = s.id;
        let stack = self
            .stacks
            .pop()
            .or_else(|| STACK_POOL.with(|p| p.borrow_mut().pop()))
            .unwrap_or_else(|| DefaultStack::new(STACK_BYTES).expect("actor stack"));
        let program = s.program;
        let coro = Coroutine::with_stack(stack, move |y: &hook::ActorYielder, _first: Resumed| {
            hook::enter(y);
            let exit = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(program)) {
                Ok(exit) => exit,
                Err(p) => Exit::Failed(format!("panic: {}", panic_text(&p))),
            };
            hook::leave();
            exit
        });
        self.actors.push(Actor {
            id,
            label: s.label,
            backend: s.backend,
            crashable: s.crashable,
            coro: Some(coro),
            state: State::Runnable,
            pending: Resumed::Go,
            stalled_until: Duration::ZERO,
            at_point: false,
            last_point: 0,
        });
        id
    }

    /// Starts an actor after `delay` of virtual time.
    pub fn spawn_later(&mut self, delay: Duration, s: Spawn) {
        let at = self.now().saturating_add(delay);
        self.delayed.push((at, s));
    }

    /// The label of an actor.
    pub fn label(&self, a: ActorId) -> &str {
        self.actors
            .iter()
            .find(|x| x.id == a)
            .map_or("?", |x| x.label.as_str())
    }

    /// Runs until every actor finished or crashed (and no delayed spawn is left).
    pub fn run(&mut self, obs: &mut dyn Observer) -> Result<(), RunError> {
        myelon_backend_sim::actor::set_hook(Some(hook::hook));
        let _guard = HookGuard;
        loop {
            self.start_due_spawns();
            self.expire_timers();
            let Some(i) = self.pick() else {
                if self.all_done() && self.delayed.is_empty() {
                    return Ok(());
                }
                self.advance_to_next_timer()?;
                continue;
            };
            self.stats.steps += 1;
            if self.stats.steps > self.max_steps || self.now() > self.max_time {
                return Err(RunError::Wedge(format!(
                    "budget spent ({} steps, {:?} virtual) with {} still running",
                    self.stats.steps,
                    self.now(),
                    self.running_labels()
                )));
            }
            if self.maybe_fault(i, obs)? {
                continue;
            }
            self.step(i, obs)?;
            self.world.world().advance(STEP);
        }
    }

    fn running_labels(&self) -> String {
        let v: Vec<String> = self
            .actors
            .iter()
            .filter(|a| !matches!(a.state, State::Finished | State::Crashed))
            .map(|a| format!("{}:{:?}", a.label, a.state))
            .collect();
        v.join(", ")
    }

    fn all_done(&self) -> bool {
        self.actors
            .iter()
            .all(|a| matches!(a.state, State::Finished | State::Crashed))
    }

    fn start_due_spawns(&mut self) {
        let now = self.now();
        let mut k = 0;
        while k < self.delayed.len() {
            if self.delayed[k].0 <= now {
                let (_, s) = self.delayed.remove(k);
                self.spawn(s);
            } else {
                k += 1;
            }
        }
    }

    /// The next actor to step: the current one unless the dice say switch, else a random
    /// runnable one.
    fn pick(&mut self) -> Option<usize> {
        let now = self.now();
        let runnable = |a: &Actor| a.state == State::Runnable && a.stalled_until <= now;
        let yielded = std::mem::take(&mut self.yielded);
        if let Some(c) = self.current {
            if runnable(&self.actors[c]) && !yielded && !self.rng.chance(self.faults.switch_pct) {
                return Some(c);
            }
        }
        let n = self.actors.iter().filter(|a| runnable(a)).count();
        if n == 0 {
            return None;
        }
        let k = self.rng.below(n as u64) as usize;
        let i = self
            .actors
            .iter()
            .enumerate()
            .filter(|(_, a)| runnable(a))
            .nth(k)
            .map(|(i, _)| i);
        if i != self.current {
            self.stats.switches += 1;
        }
        self.current = i;
        i
    }

    /// Nobody can run now: jump to the earliest timer (park timeout, sleep, stall, delayed
    /// spawn), or report a deadlock.
    fn advance_to_next_timer(&mut self) -> Result<(), RunError> {
        let now = self.now();
        let mut next: Option<Duration> = self.delayed.iter().map(|(t, _)| *t).min();
        for a in &self.actors {
            let t = match a.state {
                State::Parked { until, .. } => until,
                State::Sleeping { until } => Some(until),
                State::Runnable if a.stalled_until > now => Some(a.stalled_until),
                _ => None,
            };
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        let Some(t) = next else {
            return Err(RunError::Deadlock(format!(
                "nobody can run and no timer is pending: {}",
                self.running_labels()
            )));
        };
        self.world.world().advance_to(t);
        self.expire_timers();
        Ok(())
    }

    /// Parks and sleeps whose time has come become runnable.
    fn expire_timers(&mut self) {
        let now = self.now();
        for a in &mut self.actors {
            match a.state {
                State::Parked { until: Some(u), .. } if u <= now => {
                    a.state = State::Runnable;
                    a.pending = Resumed::TimedOut;
                }
                State::Sleeping { until } if until <= now => {
                    a.state = State::Runnable;
                    a.pending = Resumed::Go;
                }
                _ => {}
            }
        }
    }

    /// Injects a crash or a stall on actor `i` if the dice say so; true if `i` must not step.
    fn maybe_fault(&mut self, i: usize, obs: &mut dyn Observer) -> Result<bool, RunError> {
        let f = self.faults;
        let a = &self.actors[i];
        // The registration window is a few points long but where the hardest bugs live.
        let one_in = if is_registration_point(a.last_point) {
            (f.crash_one_in / 8).max(1)
        } else {
            f.crash_one_in
        };
        if a.crashable
            && a.at_point
            && f.crash_one_in > 0
            && self.stats.crashes < f.max_crashes
            && obs.may_crash(a.id)
            && self.rng.below(one_in) == 0
        {
            self.crash(i, obs);
            return Ok(true);
        }
        // Stalls there too: a process stopped inside the registry's critical section is what
        // makes other attachers wait out the lock floor and get `RegistryBusy`.
        let stall_one_in = if is_registration_point(a.last_point) {
            (f.stall_one_in / 8).max(1)
        } else {
            f.stall_one_in
        };
        if f.stall_one_in > 0 && self.rng.below(stall_one_in) == 0 {
            let d = Duration::from_nanos(self.rng.log_range(1_000, f.max_stall.as_nanos() as u64));
            self.actors[i].stalled_until = self.now().saturating_add(d);
            self.stats.stalls += 1;
            self.note(i, format!("stalled for {d:?}"));
            return Ok(true);
        }
        Ok(false)
    }

    /// Forgets actor `i` where it stands (no `Drop` runs: whatever it half-did stays in shared
    /// memory) and kills its simulated process.
    fn crash(&mut self, i: usize, obs: &mut dyn Observer) {
        self.stats.crashes += 1;
        let a = &mut self.actors[i];
        if let Some(mut coro) = a.coro.take() {
            // `force_reset` leaks what lives on the coroutine's stack without running
            // destructors — exactly a crash.
            // SAFETY: the program closure is `'static` and owns its state, so nothing outside
            // the coroutine points into that stack; the leaked objects are never touched again.
            unsafe { coro.force_reset() };
            self.stacks.push(coro.into_stack());
        }
        a.backend.kill();
        a.state = State::Crashed;
        self.note(i, "crashed".to_string());
        let id = self.actors[i].id;
        if let Some((delay, s)) = obs.on_crash(id, self.now()) {
            self.spawn_later(delay, s);
        }
    }

    fn note(&mut self, i: usize, what: String) {
        if let Some(t) = self.trace.as_mut() {
            t.push(format!(
                "{:>10?} {:<12} {what}",
                self.world.world().peek_now(),
                self.actors[i].label
            ));
        }
    }

    fn hash(&mut self, i: usize, code: u64, data: i64) {
        let mut h = self.stats.trace_hash;
        for v in [i as u64, code, data as u64] {
            h ^= v;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.stats.trace_hash = h;
    }

    /// Resumes actor `i` until its next suspension, and applies it.
    fn step(&mut self, i: usize, obs: &mut dyn Observer) -> Result<(), RunError> {
        let input = std::mem::replace(&mut self.actors[i].pending, Resumed::Go);
        let coro = self.actors[i]
            .coro
            .as_mut()
            .expect("runnable actor has a coroutine");
        let r = coro.resume(input);
        hook::leave();
        let now = self.now();
        let id = self.actors[i].id;
        match r {
            CoroutineResult::Yield(s) => {
                self.apply(i, s);
                obs.on_suspend(id, &s, now).map_err(RunError::Oracle)
            }
            CoroutineResult::Return(exit) => {
                let a = &mut self.actors[i];
                a.state = State::Finished;
                if let Some(c) = a.coro.take() {
                    self.stacks.push(c.into_stack());
                }
                self.note(i, format!("exit {exit:?}"));
                self.hash(i, 0xffff, 0);
                if let Exit::Failed(why) = &exit {
                    if why.starts_with("panic: ") {
                        return Err(RunError::Panic(format!("{}: {why}", self.label(id))));
                    }
                }
                obs.on_exit(id, &exit).map_err(RunError::Oracle)
            }
        }
    }

    fn apply(&mut self, i: usize, s: Suspend) {
        let now = self.now();
        self.actors[i].at_point = matches!(s, Suspend::Point { .. });
        match s {
            Suspend::Point { code, data } => {
                self.actors[i].last_point = code;
                self.hash(i, u64::from(code), data);
                if self.trace.is_some() {
                    self.note(i, format!("{} {data}", point_name(code)));
                }
            }
            Suspend::Park { addr, timeout } => {
                self.stats.parks += 1;
                self.hash(i, 0x1000, timeout.as_nanos() as i64);
                let until = now.checked_add(timeout);
                self.actors[i].state = State::Parked { addr, until };
                self.note(i, format!("park {timeout:?}"));
            }
            Suspend::Wake { addr } => {
                self.hash(i, 0x2000, 0);
                let mut woke = 0;
                for a in &mut self.actors {
                    if matches!(a.state, State::Parked { addr: p, .. } if p == addr) {
                        a.state = State::Runnable;
                        a.pending = Resumed::Woken;
                        woke += 1;
                    }
                }
                self.stats.woken += woke;
                self.note(i, format!("wake ({woke} parked)"));
            }
            Suspend::Sleep(d) => {
                self.hash(i, 0x3000, d.as_nanos() as i64);
                self.actors[i].state = State::Sleeping {
                    until: now.saturating_add(d),
                };
                self.note(i, format!("sleep {d:?}"));
            }
            Suspend::Yield => {
                // `sched_yield`: someone else runs next if anyone can, and a little time passes.
                self.hash(i, 0x4000, 0);
                self.yielded = true;
                self.world.world().advance(YIELD_TIME);
            }
        }
    }
}

fn is_registration_point(code: u16) -> bool {
    use myelon::backend::SchedPoint as P;
    [P::RegistryLock, P::JoinCursor, P::EntryWrite]
        .iter()
        .any(|p| *p as u16 == code)
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".to_string()
    }
}

/// The name of a `myelon::backend::SchedPoint` code, for traces.
pub fn point_name(code: u16) -> &'static str {
    use myelon::backend::SchedPoint as P;
    const NAMES: [(P, &str); 20] = [
        (P::SlotWrite, "slot-write"),
        (P::SlotStamp, "slot-stamp"),
        (P::CursorAnnounce, "announce"),
        (P::GatingEntry, "gating-entry"),
        (P::WakeCheck, "wake-check"),
        (P::WaitArm, "wait-arm"),
        (P::WaitRecheck, "wait-recheck"),
        (P::StampLoad, "stamp-load"),
        (P::SlotRead, "slot-read"),
        (P::CursorRelease, "release"),
        (P::ProducerCheck, "producer-check"),
        (P::RegistryLock, "registry-lock"),
        (P::EntryWrite, "entry-write"),
        (P::JoinCursor, "join-cursor"),
        (P::SegmentInit, "segment-init"),
        (P::SegmentState, "segment-state"),
        (P::RegionOp, "region-op"),
        (P::ClaimIntent, "claim-intent"),
        (P::ClaimCas, "claim-cas"),
        (P::HoleCheck, "hole-check"),
    ];
    NAMES
        .iter()
        .find(|(p, _)| *p as u16 == code)
        .map_or("?", |(_, n)| n)
}
