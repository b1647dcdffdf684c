//! The step simulation (`dst run|replay|shrink|coverage|check-determinism`): one seeded run
//! of the real producer and consumers of `myelon` over the simulated backend, one real public
//! call per scheduling step, under a scheduler that owns virtual time, with every call's
//! outcome checked as it happens.
//!
//! Each step is one real call: the producer publishes with `try_publish`, `try_publish_batch`
//! or `try_claim_batch` + `BatchClaim::commit` (chosen by the seed), and under required-consumer
//! liveness asks `managed_try_claim` first (see `producer.rs` for why that step remains); a
//! consumer receives with `try_consume_next`, `try_consume_batch`, or leases its next event,
//! keeps it (unreleased) and releases it at a later step; framed consumers call the real
//! `FramedTransportConsumer::try_recv` or feed the real `Reassembler` frame by frame. Faults
//! (stalls, crashes without `Drop`, same-id rejoins, producer crashes) land between calls.
//! The interleavings *inside* the calls are the public-API simulation's (`dst api`).
//!
//! Layout: `scheduler.rs` (who runs, virtual time), `faults.rs` (the fault schedule),
//! `producer.rs` / `consumer.rs` / `framed.rs` (the actors' real calls), `checker.rs`,
//! `liveness.rs` and the framed oracle in `framed.rs` (what must hold, apart from the
//! scheduler), `oracles.rs` (the typed [`Oracle`]s), `trace.rs` (typed [`TraceCode`]s and the
//! trace hash), `event.rs` (what is written), `coverage.rs`.

mod checker;
mod consumer;
mod coverage;
mod event;
mod faults;
mod framed;
mod liveness;
mod oracles;
mod producer;
mod scheduler;
mod trace;

pub use coverage::Coverage;
pub use event::{message_byte, payload, Ev, Frame};
pub use oracles::{Failure, Oracle};
pub use scheduler::ActorId;
pub use trace::TraceCode;

use checker::{StateChecker, StreamEnd};
use consumer::ConsumerActor;
use event::{Plan, SimEv};
use oracles::Verdict;
use producer::{PState, ProducerActor};
use scheduler::Scheduler;
use trace::Trace;

use crate::workload::Workload;
use myelon::backend::SimBackend;
use myelon::{Consumer, Producer};
use std::mem::ManuallyDrop;
use std::time::Duration;

/// The ring's name in the simulated world.
const RING: &str = "dst";

/// The result of one run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The first oracle violation, if any.
    pub failure: Option<Failure>,
    /// Hash of every step taken (bit-for-bit replay check).
    pub trace_hash: u64,
    /// Steps taken.
    pub steps: u64,
    /// Virtual time at the end (µs).
    pub end_us: u64,
    /// Situations reached.
    pub coverage: Coverage,
    /// The readable trace (only when asked for).
    pub trace: Vec<String>,
}

/// Runs `w` and checks it; `trace` keeps a readable line per step. A panic anywhere in the run
/// (library or harness) is reported as a failure of the `panic` oracle, not propagated.
pub fn run(w: &Workload, trace: bool) -> RunReport {
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if w.framed > 0 {
            Sim::<Frame>::new(w, trace).run()
        } else {
            Sim::<Ev>::new(w, trace).run()
        }
    }));
    caught.unwrap_or_else(|payload| {
        let detail = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic payload".into());
        RunReport {
            failure: Some(Failure {
                oracle: Oracle::Panic,
                detail,
                at_us: 0,
                step: 0,
            }),
            trace_hash: 0,
            steps: 0,
            end_us: 0,
            coverage: Coverage::default(),
            trace: Vec::new(),
        }
    })
}

fn us(d: u64) -> Duration {
    Duration::from_micros(d)
}

/// Actors whose process was killed: forgotten without `Drop` (as SIGKILL), their memory
/// released only after the run's last check.
struct Graveyard<E: SimEv> {
    consumers: Vec<ManuallyDrop<Consumer<E, SimBackend>>>,
    framed: Vec<ManuallyDrop<E::Fc>>,
    producers: Vec<ManuallyDrop<Producer<E, SimBackend>>>,
}

impl<E: SimEv> Graveyard<E> {
    fn release(&mut self) {
        for c in self.consumers.drain(..) {
            drop(ManuallyDrop::into_inner(c));
        }
        for c in self.framed.drain(..) {
            drop(ManuallyDrop::into_inner(c));
        }
        for p in self.producers.drain(..) {
            drop(ManuallyDrop::into_inner(p));
        }
    }
}

/// One run in progress.
struct Sim<'w, E: SimEv> {
    w: &'w Workload,
    plan: Plan,
    world: SimBackend,
    sched: Scheduler,
    prod: ProducerActor<E>,
    cs: Vec<ConsumerActor<E>>,
    check: StateChecker,
    fault_ix: usize,
    graveyard: Graveyard<E>,
    trace: Trace,
    cov: Coverage,
    failure: Option<Failure>,
}

impl<'w, E: SimEv> Sim<'w, E> {
    fn new(w: &'w Workload, trace: bool) -> Sim<'w, E> {
        let world = SimBackend::new_world();
        world.world().set_tick(Duration::ZERO);
        let mut sim = Sim {
            w,
            plan: Plan::new(w),
            sched: Scheduler::new(w, world.sibling()),
            prod: ProducerActor::new(world.sibling()),
            cs: w.consumers.iter().map(ConsumerActor::new).collect(),
            check: StateChecker::new(w.consumers.len(), w.capacity),
            world,
            fault_ix: 0,
            graveyard: Graveyard {
                consumers: Vec::new(),
                framed: Vec::new(),
                producers: Vec::new(),
            },
            trace: Trace::new(trace),
            cov: Coverage::default(),
            failure: None,
        };
        sim.build_producer();
        sim
    }

    fn run(mut self) -> RunReport {
        self.main_loop();
        self.finish()
    }

    fn main_loop(&mut self) {
        while self.failure.is_none() {
            self.apply_faults();
            if !self.sched.healed && self.sched.now >= self.sched.heal_at {
                self.heal();
            }
            if self.finished() {
                break;
            }
            let (prod, cs) = (&self.prod, &self.cs);
            let Some(actor) = self.sched.pick(|a| alive(prod, cs, a)) else {
                let next_fault = self.w.faults.get(self.fault_ix).map(|f| f.at_us);
                if !self.sched.jump(next_fault, |a| alive(prod, cs, a)) {
                    let detail = "nothing can run and nothing is scheduled".into();
                    return self.fail(Oracle::Hang, detail);
                }
                continue;
            };
            match actor {
                ActorId::Producer => self.step_producer(),
                ActorId::Consumer(i) => self.step_consumer(i),
                ActorId::Harness => {}
            }
            self.sched.tick();
            if self.sched.over_budget() {
                let (step, now) = (self.sched.step, self.sched.now);
                self.fail(Oracle::Hang, format!("no end after {step} steps / {now}us"));
            }
        }
    }

    fn finished(&self) -> bool {
        self.prod.terminal() && self.cs.iter().all(|a| !a.alive())
    }

    fn finish(mut self) -> RunReport {
        if self.failure.is_none() {
            let done = self.prod.state == PState::Done;
            let v = self.check.finished(done, self.w.events);
            self.verdict(v);
        }
        let report = RunReport {
            failure: self.failure.clone(),
            trace_hash: self.trace.hash(),
            steps: self.sched.step,
            end_us: self.sched.now,
            coverage: self.cov.clone(),
            trace: self.trace.take_lines(),
        };
        // The forgotten actors' memory is released only now, after every check.
        self.graveyard.release();
        report
    }

    /// Records the first failure.
    fn fail(&mut self, oracle: Oracle, detail: String) {
        if self.failure.is_none() {
            self.note(ActorId::Harness, TraceCode::Fail, 0, 0, || {
                format!("FAIL [{oracle}] {detail}")
            });
            self.failure = Some(Failure {
                oracle,
                detail,
                at_us: self.sched.now,
                step: self.sched.step,
            });
        }
    }

    /// Records a failed check; true if it passed.
    fn verdict(&mut self, v: Verdict) -> bool {
        match v {
            Ok(()) => true,
            Err(v) => {
                self.fail(v.oracle, v.detail);
                false
            }
        }
    }

    /// Hashes one trace record; keeps its text when tracing.
    fn note(
        &mut self,
        who: ActorId,
        code: TraceCode,
        a: i64,
        b: i64,
        text: impl FnOnce() -> String,
    ) {
        let at = (self.sched.now, self.sched.step);
        self.trace
            .note(at, who, &self.w.consumers, code, a, b, text);
    }

    /// How the producer's stream ended, as the consumers must report it.
    fn stream_end(&self) -> StreamEnd {
        match self.prod.state {
            PState::Done | PState::Failed => StreamEnd::Closed,
            PState::Crashed => StreamEnd::Crashed,
            PState::Ready | PState::Claimed { .. } => StreamEnd::Open,
        }
    }
}

/// Whether actor `a` still has something to do.
fn alive<E: SimEv>(prod: &ProducerActor<E>, cs: &[ConsumerActor<E>], a: ActorId) -> bool {
    match a {
        ActorId::Producer => !prod.terminal(),
        ActorId::Consumer(i) => cs[i].alive(),
        ActorId::Harness => false,
    }
}
