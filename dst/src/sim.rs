//! One seeded run: the real producer and consumers of `myelon` over the simulated backend,
//! driven step by step by a seeded scheduler that owns virtual time, with the oracles checked
//! after every step.

use crate::reference::{Fact, RefAlert, RefError, RefLiveness};
use crate::rng::{mix, Rng};
use crate::workload::{Actor, FaultKind, Workload};
use myelon::backend::SimBackend;
use myelon::producer::PublishStep;
use myelon::transport::{
    FixedFrame, FrameMeta, FramedTransportConsumer, FramedTransportFrame, Reassembler, Step,
    TransportError, DEFAULT_MAX_MESSAGE_SIZE,
};
use myelon::{
    Consumer, MultiProcessError, Producer, RequiredConsumerAlert, RequiredConsumerAlertKind,
    RequiredConsumerError, RequiredConsumerFailureAction, RequiredConsumerLivenessConfig,
    SharedDisruptorBuilder, ShmEvent,
};
use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The event type: the sequence and a check word derived from it (a torn or stale slot shows).
pub type Ev = [u64; 2];
const RING: &str = "dst";
/// Steps after which a run counts as hung.
const STEP_LIMIT: u64 = 3_000_000;
/// Virtual time after the heal point after which a run counts as hung.
const HEAL_BUDGET_US: u64 = 120_000_000;
const NEVER: u64 = u64::MAX;

/// The frame type of framed runs ([`Workload::framed`]): 8 payload bytes, so a message of a
/// few dozen bytes spans several slots.
pub type Frame = FixedFrame<FRAME_DATA>;
const FRAME_DATA: usize = 8;

/// The event the producer writes for `seq` in run `seed`.
pub fn payload(seed: u64, seq: i64) -> Ev {
    [seq as u64, mix(seq as u64 ^ seed)]
}

/// Byte `j` of framed message `m` in run `seed`.
pub fn message_byte(seed: u64, m: u32, j: usize) -> u8 {
    let h = mix(seed ^ (u64::from(m) << 24) ^ 0x6d65_7373);
    ((h >> ((j % 8) * 8)) as u8) ^ ((j / 8) as u8).wrapping_mul(31)
}

/// How a framed run lays its messages over the frames: message `m` takes `frames[m]`
/// consecutive slots from `start[m]` and holds `len[m]` bytes.
#[derive(Debug, Default)]
struct Plan {
    /// Per slot: its message.
    msg: Vec<u32>,
    /// Per slot: its fragment index.
    idx: Vec<u16>,
    /// Per message: frames.
    frames: Vec<u16>,
    /// Per message: bytes.
    len: Vec<u32>,
}

impl Plan {
    fn new(w: &Workload) -> Plan {
        let mut p = Plan::default();
        if w.framed == 0 {
            return p;
        }
        let mut rng = Rng::fork(w.seed, 3);
        let mut seq = 0u64;
        while seq < w.events {
            let k = rng.range(1, w.framed).min(w.events - seq);
            let m = p.frames.len() as u32;
            let last = rng.range(1, FRAME_DATA as u64);
            p.frames.push(k as u16);
            p.len.push(((k - 1) * FRAME_DATA as u64 + last) as u32);
            for i in 0..k {
                p.msg.push(m);
                p.idx.push(i as u16);
            }
            seq += k;
        }
        p
    }

    fn is_last(&self, seq: usize) -> bool {
        self.idx[seq] + 1 == self.frames[self.msg[seq] as usize]
    }

    /// Whether `bytes` are exactly message `m`.
    fn check(&self, seed: u64, m: u32, bytes: &[u8]) -> bool {
        bytes.len() == self.len[m as usize] as usize
            && bytes
                .iter()
                .enumerate()
                .all(|(j, &b)| b == message_byte(seed, m, j))
    }
}

/// An event type the harness drives: the Layer 0 check pair, or a frame of a framed message.
trait SimEv: ShmEvent {
    /// The real framed consumer over this event type (only used for frames).
    type Fc;
    fn wrap(c: Consumer<Self, SimBackend>) -> Self::Fc;
    fn fc_next(fc: &Self::Fc) -> i64;
    fn fc_dropped(fc: &Self::Fc) -> u64;
    /// `try_recv`; a message comes back as its id and whether it is byte-exact.
    fn fc_recv(
        fc: &mut Self::Fc,
        seed: u64,
        plan: &Plan,
    ) -> Result<Option<(u32, bool)>, TransportError>;
    fn blank() -> Self;
    fn make(seed: u64, plan: &Plan, seq: i64) -> Self;
    fn same(&self, o: &Self) -> bool;
    fn word(&self) -> i64;
    fn frame(&self) -> Option<(FrameMeta, &[u8])>;
}

impl SimEv for Ev {
    type Fc = Consumer<Ev, SimBackend>;
    fn wrap(c: Consumer<Self, SimBackend>) -> Self::Fc {
        c
    }
    fn fc_next(fc: &Self::Fc) -> i64 {
        fc.next_sequence()
    }
    fn fc_dropped(_: &Self::Fc) -> u64 {
        0
    }
    fn fc_recv(_: &mut Self::Fc, _: u64, _: &Plan) -> Result<Option<(u32, bool)>, TransportError> {
        Ok(None)
    }
    fn blank() -> Self {
        [0, 0]
    }
    fn make(seed: u64, _: &Plan, seq: i64) -> Self {
        payload(seed, seq)
    }
    fn same(&self, o: &Self) -> bool {
        self == o
    }
    fn word(&self) -> i64 {
        self[0] as i64
    }
    fn frame(&self) -> Option<(FrameMeta, &[u8])> {
        None
    }
}

impl SimEv for Frame {
    type Fc = FramedTransportConsumer<Frame, SimBackend>;
    fn wrap(c: Consumer<Self, SimBackend>) -> Self::Fc {
        FramedTransportConsumer::new(c)
    }
    fn fc_next(fc: &Self::Fc) -> i64 {
        fc.inner().next_sequence()
    }
    fn fc_dropped(fc: &Self::Fc) -> u64 {
        fc.dropped_messages()
    }
    fn fc_recv(
        fc: &mut Self::Fc,
        seed: u64,
        plan: &Plan,
    ) -> Result<Option<(u32, bool)>, TransportError> {
        fc.try_recv().map(|m| {
            m.map(|m| {
                let id = m.message_id();
                let whole = (id as usize) < plan.len.len() && plan.check(seed, id, &m);
                (id, whole)
            })
        })
    }
    fn blank() -> Self {
        Frame::empty()
    }
    fn make(seed: u64, plan: &Plan, seq: i64) -> Self {
        let s = seq as usize;
        let m = plan.msg[s];
        let k = plan.idx[s] as usize;
        let from = k * FRAME_DATA;
        let len = (plan.len[m as usize] as usize - from).min(FRAME_DATA);
        let mut flags = 0;
        if k == 0 {
            flags |= myelon::transport::frame_flags::FIRST;
        }
        if plan.is_last(s) {
            flags |= myelon::transport::frame_flags::LAST;
        }
        let mut f = Frame::empty();
        f.set_meta(&FrameMeta {
            message_id: m,
            len: len as u32,
            flags,
            fragment_index: k as u32,
        });
        for (j, b) in f.data_mut()[..len].iter_mut().enumerate() {
            *b = message_byte(seed, m, from + j);
        }
        f
    }
    fn same(&self, o: &Self) -> bool {
        self.meta() == o.meta() && self.data() == o.data()
    }
    fn word(&self) -> i64 {
        let m = self.meta();
        (i64::from(m.message_id) << 16) | i64::from(m.fragment_index)
    }
    fn frame(&self) -> Option<(FrameMeta, &[u8])> {
        Some((self.meta(), self.data()))
    }
}

/// An oracle violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Which oracle (stable name; shrinking keeps it).
    pub oracle: &'static str,
    /// What happened.
    pub detail: String,
    /// Virtual time of the failing step (µs).
    pub at_us: u64,
    /// Step number.
    pub step: u64,
}

/// Counts of interesting situations a run reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// The producer published past the capacity (the ring wrapped).
    pub ring_wrapped: u64,
    /// A stall alert followed by a same-id recovery.
    pub alert_then_recovery: u64,
    /// A stall alert followed by the graceful shutdown.
    pub alert_then_shutdown: u64,
    /// The producer crashed after writing a slot and before stamping it.
    pub crash_between_write_and_publish: u64,
    /// A framed consumer rejoined (same id) with its first slot inside a fragmented message,
    /// so it must skip that message's remaining frames and count it as dropped.
    pub rejoin_mid_message: u64,
    /// Of those, the ones where the consumer is the real `FramedTransportConsumer::try_recv`.
    pub rejoin_mid_message_try_recv: u64,
    /// A framed message of several frames delivered whole.
    pub framed_multi_frame: u64,
    /// `StartupTimeout`.
    pub startup_timeout: u64,
    /// A consumer crashed holding a lease, and the event was delivered again after its rejoin.
    pub redelivery_after_crash: u64,
    /// A same-id rejoin.
    pub same_id_rejoin: u64,
    /// `NonRequiredConsumerDead`.
    pub non_required_dead: u64,
    /// A producer crash.
    pub producer_crash: u64,
    /// A multi-slot claim.
    pub batch_claim: u64,
    /// A same-id rejoin that resumed inside a multi-slot claim (the Layer 0 stand-in for a
    /// rejoin mid-message).
    pub rejoin_mid_batch: u64,
}

impl Coverage {
    /// Adds another run's counts.
    pub fn add(&mut self, o: &Coverage) {
        for ((_, a), (_, b)) in self.rows_mut().into_iter().zip(o.rows()) {
            *a += b;
        }
    }

    /// (name, count) rows.
    pub fn rows(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("ring wrapped", self.ring_wrapped),
            ("alert then recovery", self.alert_then_recovery),
            ("alert then shutdown", self.alert_then_shutdown),
            (
                "crash between write and publish",
                self.crash_between_write_and_publish,
            ),
            ("rejoin mid-message", self.rejoin_mid_message),
            (
                "rejoin mid-message (try_recv consumer)",
                self.rejoin_mid_message_try_recv,
            ),
            ("framed multi-frame message", self.framed_multi_frame),
            ("startup timeout", self.startup_timeout),
            ("redelivery after crash", self.redelivery_after_crash),
            ("same-id rejoin", self.same_id_rejoin),
            ("dead non-required consumer", self.non_required_dead),
            ("producer crash", self.producer_crash),
            ("batch claim", self.batch_claim),
            ("rejoin mid-batch", self.rejoin_mid_batch),
        ]
    }

    fn rows_mut(&mut self) -> Vec<(&'static str, &mut u64)> {
        vec![
            ("", &mut self.ring_wrapped),
            ("", &mut self.alert_then_recovery),
            ("", &mut self.alert_then_shutdown),
            ("", &mut self.crash_between_write_and_publish),
            ("", &mut self.rejoin_mid_message),
            ("", &mut self.rejoin_mid_message_try_recv),
            ("", &mut self.framed_multi_frame),
            ("", &mut self.startup_timeout),
            ("", &mut self.redelivery_after_crash),
            ("", &mut self.same_id_rejoin),
            ("", &mut self.non_required_dead),
            ("", &mut self.producer_crash),
            ("", &mut self.batch_claim),
            ("", &mut self.rejoin_mid_batch),
        ]
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PState {
    Claim,
    Steps {
        first: i64,
        n: i64,
        phase: usize,
        i: i64,
    },
    Done,
    Failed,
    Crashed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CState {
    Pending,
    Peek,
    Read(i64),
    Release(i64),
    /// Framed consumers that use the real `FramedTransportConsumer::try_recv`.
    Recv,
    Finished,
    Crashed,
    Never,
}

struct Ledger {
    in_table: bool,
    attached_ever: bool,
    committed: i64,
    dead: bool,
    expected_next: i64,
    alerted: bool,
    lease_lost: Option<i64>,
    /// Framed: the last message whose last frame this id released (across incarnations).
    committed_msg: i64,
}

/// The framed side of a consumer incarnation: the real reassembler, and what the oracle
/// expects of it.
struct FramedRx {
    asm: Reassembler,
    /// The next message this incarnation must deliver.
    expect_msg: u32,
    /// Partial messages this incarnation drops (1 if it joined mid-message).
    dropped: u64,
    /// Whether it has consumed a frame of that partial message (the drop counts from then).
    seen_partial: bool,
}

struct CActor<E: SimEv> {
    c: Option<Consumer<E, SimBackend>>,
    fc: Option<E::Fc>,
    backend: Option<SimBackend>,
    state: CState,
    l: Ledger,
    rx: Option<FramedRx>,
}

type Alerts = Arc<Mutex<Vec<RequiredConsumerAlert>>>;

struct Sim<'w, E: SimEv> {
    w: &'w Workload,
    plan: Plan,
    rng: Rng,
    now: u64,
    step: u64,
    world: SimBackend,
    p: Option<Producer<E, SimBackend>>,
    pbackend: SimBackend,
    pstate: PState,
    pnext: i64,
    claim_n: Option<i64>,
    batches: Vec<(i64, i64)>,
    stamped: i64,
    announced: i64,
    cs: Vec<CActor<E>>,
    wake: Vec<u64>,
    stalled: Vec<u64>,
    fault_ix: usize,
    heal_at: u64,
    healed: bool,
    reference: Option<RefLiveness>,
    alerts: Alerts,
    graveyard_c: Vec<ManuallyDrop<Consumer<E, SimBackend>>>,
    graveyard_f: Vec<ManuallyDrop<E::Fc>>,
    graveyard_p: Vec<ManuallyDrop<Producer<E, SimBackend>>>,
    hash: u64,
    trace: Option<Vec<String>>,
    cov: Coverage,
    failure: Option<Failure>,
}

/// Runs `w` and checks it; `trace` keeps a readable line per step. A panic anywhere in the run
/// (library or harness) is reported as a failure of the `panic` oracle, not propagated.
pub fn run(w: &Workload, trace: bool) -> RunReport {
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if w.framed > 0 {
            let mut sim = Sim::<Frame>::new(w, trace);
            sim.main_loop();
            sim.finish()
        } else {
            let mut sim = Sim::<Ev>::new(w, trace);
            sim.main_loop();
            sim.finish()
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
                oracle: "panic",
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

impl<'w, E: SimEv> Sim<'w, E> {
    fn new(w: &'w Workload, trace: bool) -> Sim<'w, E> {
        let world = SimBackend::new_world();
        world.world().set_tick(Duration::ZERO);
        let pbackend = world.sibling();
        let n = w.consumers.len();
        let heal_at = w.faults.iter().map(|f| f.at_us).max().map_or(0, |t| t + 1);
        let cs = w
            .consumers
            .iter()
            .map(|spec| CActor {
                c: None,
                backend: None,
                state: if spec.attach_us.is_some() {
                    CState::Pending
                } else {
                    CState::Never
                },
                l: Ledger {
                    in_table: false,
                    attached_ever: false,
                    committed: -1,
                    dead: false,
                    expected_next: 0,
                    alerted: false,
                    lease_lost: None,
                    committed_msg: -1,
                },
                rx: None,
                fc: None,
            })
            .collect();
        let mut wake = vec![0u64; n + 1];
        for (i, spec) in w.consumers.iter().enumerate() {
            wake[i + 1] = spec.attach_us.unwrap_or(NEVER);
        }
        let mut sim = Sim {
            w,
            plan: Plan::new(w),
            rng: Rng::fork(w.seed, 2),
            now: 0,
            step: 0,
            world,
            p: None,
            pbackend,
            pstate: PState::Claim,
            pnext: 0,
            claim_n: None,
            batches: Vec::new(),
            stamped: -1,
            announced: -1,
            cs,
            wake,
            stalled: vec![0; n + 1],
            fault_ix: 0,
            heal_at,
            healed: heal_at == 0,
            reference: None,
            alerts: Alerts::default(),
            graveyard_c: Vec::new(),
            graveyard_f: Vec::new(),
            graveyard_p: Vec::new(),
            hash: 0xcbf2_9ce4_8422_2325,
            trace: trace.then(Vec::new),
            cov: Coverage::default(),
            failure: None,
        };
        sim.build_producer();
        sim
    }

    fn build_producer(&mut self) {
        let w = self.w;
        let built = SharedDisruptorBuilder::with_backend(self.pbackend.clone(), RING, w.capacity)
            .build_producer(E::blank);
        let mut p = match built {
            Ok(p) => p,
            Err(e) => return self.fail("setup", format!("build_producer: {e}")),
        };
        let required = w.required_ids();
        if !required.is_empty() {
            let l = w.liveness;
            let sink = Arc::clone(&self.alerts);
            let cfg = RequiredConsumerLivenessConfig::new(required.iter().cloned())
                .and_then(|c| c.with_startup_wait_timeout(us(l.startup_us)))
                .and_then(|c| c.with_progress_timeout(us(l.progress_us)))
                .and_then(|c| c.with_progress_check_interval(us(l.check_us)))
                .and_then(|c| c.with_shutdown_grace_period(us(l.grace_us)))
                .map(|c| {
                    c.with_failure_action(if l.alert_only {
                        RequiredConsumerFailureAction::AlertOnly
                    } else {
                        RequiredConsumerFailureAction::GracefulShutdown
                    })
                    .with_alert_hook(Arc::new(move |a| {
                        sink.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(a.clone())
                    }))
                });
            match cfg.and_then(|c| p.enable_required_consumer_liveness(c)) {
                Ok(()) => {}
                Err(e) => return self.fail("setup", format!("enable liveness: {e}")),
            }
            for (i, spec) in w.consumers.iter().enumerate() {
                if spec.required {
                    self.cs[i].l.in_table = true;
                }
            }
            self.reference = Some(RefLiveness::new(l, 0, &self.facts()));
        }
        self.p = Some(p);
        self.note(0, 1, 0, 0, || "ring created".to_string());
    }

    fn fail(&mut self, oracle: &'static str, detail: String) {
        if self.failure.is_none() {
            self.note(9, 9, 0, 0, || format!("FAIL [{oracle}] {detail}"));
            self.failure = Some(Failure {
                oracle,
                detail,
                at_us: self.now,
                step: self.step,
            });
        }
    }

    /// Hashes one trace record; keeps its text when tracing.
    fn note(&mut self, actor: u64, code: u64, a: i64, b: i64, text: impl FnOnce() -> String) {
        for word in [self.now, actor, code, a as u64, b as u64] {
            self.hash = (self.hash ^ word).wrapping_mul(0x0000_0100_0000_01b3);
        }
        if let Some(t) = &mut self.trace {
            let who = if actor == 0 {
                "producer".to_string()
            } else if actor == 9 {
                "harness".to_string()
            } else {
                self.w.consumers[actor as usize - 1].id.clone()
            };
            t.push(format!(
                "{:>10}us #{:<7} {who:>8}: {}",
                self.now,
                self.step,
                text()
            ));
        }
    }

    fn facts(&self) -> Vec<Fact> {
        self.w
            .consumers
            .iter()
            .zip(&self.cs)
            .map(|(spec, a)| Fact {
                id: spec.id.clone(),
                required: spec.required,
                in_table: a.l.in_table,
                attached_ever: a.l.attached_ever,
                committed: a.l.committed,
                dead: a.l.dead,
            })
            .collect()
    }

    fn producer_terminal(&self) -> bool {
        matches!(self.pstate, PState::Done | PState::Failed | PState::Crashed)
    }

    fn finished(&self) -> bool {
        self.producer_terminal()
            && self
                .cs
                .iter()
                .all(|a| matches!(a.state, CState::Finished | CState::Crashed | CState::Never))
    }

    fn runnable(&self, actor: usize) -> bool {
        if self.stalled[actor] > self.now || self.wake[actor] > self.now {
            return false;
        }
        if actor == 0 {
            !self.producer_terminal()
        } else {
            !matches!(
                self.cs[actor - 1].state,
                CState::Finished | CState::Crashed | CState::Never
            )
        }
    }

    fn main_loop(&mut self) {
        let mut runnable = Vec::with_capacity(self.cs.len() + 1);
        while self.failure.is_none() {
            self.apply_faults();
            if !self.healed && self.now >= self.heal_at {
                self.heal();
            }
            if self.finished() {
                break;
            }
            runnable.clear();
            runnable.extend((0..=self.cs.len()).filter(|&a| self.runnable(a)));
            if runnable.is_empty() {
                if !self.jump() {
                    return self.fail("hang", "nothing can run and nothing is scheduled".into());
                }
                continue;
            }
            let actor = runnable[self.rng.below(runnable.len() as u64) as usize];
            self.step += 1;
            if actor == 0 {
                self.step_producer();
            } else {
                self.step_consumer(actor - 1);
            }
            self.now += self.rng.below(3);
            self.world.world().advance_to(us(self.now));
            if self.step > STEP_LIMIT || self.now > self.heal_at.saturating_add(HEAL_BUDGET_US) {
                self.fail(
                    "hang",
                    format!("no end after {} steps / {}us", self.step, self.now),
                );
            }
        }
    }

    /// Moves time to the next thing that can happen; false if nothing ever will.
    fn jump(&mut self) -> bool {
        let mut next = NEVER;
        if let Some(f) = self.w.faults.get(self.fault_ix) {
            next = next.min(f.at_us);
        }
        if !self.healed {
            next = next.min(self.heal_at);
        }
        for a in 0..=self.cs.len() {
            let alive = if a == 0 {
                !self.producer_terminal()
            } else {
                !matches!(
                    self.cs[a - 1].state,
                    CState::Finished | CState::Crashed | CState::Never
                )
            };
            if alive && self.wake[a] != NEVER {
                next = next.min(self.wake[a].max(self.stalled[a]));
            }
        }
        if next == NEVER {
            return false;
        }
        self.now = self.now.max(next);
        self.world.world().advance_to(us(self.now));
        true
    }

    fn apply_faults(&mut self) {
        while let Some(f) = self.w.faults.get(self.fault_ix).copied() {
            if f.at_us > self.now {
                break;
            }
            self.fault_ix += 1;
            match f.kind {
                FaultKind::Stall { actor, dur_us } => {
                    let a = match actor {
                        Actor::Producer => 0,
                        Actor::Consumer(i) => i + 1,
                    };
                    self.stalled[a] = self.stalled[a].max(self.now + dur_us);
                    self.note(9, 20, a as i64, dur_us as i64, || {
                        format!("fault: stall actor {a} for {dur_us}us")
                    });
                }
                FaultKind::Crash { consumer } => self.crash_consumer(consumer),
                FaultKind::Rejoin { consumer } => self.rejoin(consumer),
                FaultKind::ProducerCrash => self.crash_producer(),
            }
        }
    }

    fn heal(&mut self) {
        self.healed = true;
        self.note(9, 24, 0, 0, || {
            "heal: stalls end, crashed consumers rejoin".into()
        });
        for s in &mut self.stalled {
            *s = (*s).min(self.now);
        }
        for i in 0..self.cs.len() {
            self.rejoin(i);
        }
    }

    fn crash_consumer(&mut self, i: usize) {
        let a = &mut self.cs[i];
        if !matches!(
            a.state,
            CState::Peek | CState::Read(_) | CState::Release(_) | CState::Recv
        ) {
            return;
        }
        if let CState::Read(s) | CState::Release(s) = a.state {
            a.l.lease_lost = Some(s);
        }
        if let Some(c) = a.c.take() {
            self.graveyard_c.push(ManuallyDrop::new(c));
        }
        if let Some(c) = a.fc.take() {
            self.graveyard_f.push(ManuallyDrop::new(c));
        }
        a.rx = None; // the reassembler's state dies with the process
        if let Some(b) = a.backend.take() {
            b.kill();
        }
        a.state = CState::Crashed;
        a.l.dead = true;
        self.note(9, 21, i as i64, 0, || format!("fault: crash consumer {i}"));
    }

    fn rejoin(&mut self, i: usize) {
        if self.cs[i].state == CState::Crashed {
            self.cs[i].state = CState::Pending;
            self.wake[i + 1] = self.now;
            self.note(9, 22, i as i64, 0, || {
                format!("fault: consumer {i} restarts")
            });
        }
    }

    fn crash_producer(&mut self) {
        if self.producer_terminal() {
            return;
        }
        if let PState::Steps { phase, i, .. } = self.pstate {
            let order = Producer::<E, SimBackend>::PUBLISH_STEPS;
            let wrote = order[..phase].contains(&PublishStep::Write)
                || (order[phase] == PublishStep::Write && i > 0);
            let stamped_all = order[..phase].contains(&PublishStep::Stamp);
            if wrote && !stamped_all {
                self.cov.crash_between_write_and_publish += 1;
            }
        }
        if let Some(p) = self.p.take() {
            self.graveyard_p.push(ManuallyDrop::new(p));
        }
        self.pbackend.kill();
        self.pstate = PState::Crashed;
        self.cov.producer_crash += 1;
        self.note(9, 23, 0, 0, || "fault: producer crash".into());
    }

    fn wake_consumers(&mut self) {
        for (i, a) in self.cs.iter().enumerate() {
            if matches!(a.state, CState::Peek | CState::Recv) && self.wake[i + 1] > self.now {
                self.wake[i + 1] = self.now;
            }
        }
    }

    fn close_producer(&mut self, state: PState) {
        self.p = None; // Drop: the stream is closed.
        self.pstate = state;
        self.wake_consumers();
    }

    fn step_producer(&mut self) {
        match self.pstate {
            PState::Claim => self.producer_claim(),
            PState::Steps { first, n, phase, i } => self.producer_publish_step(first, n, phase, i),
            _ => {}
        }
    }

    fn producer_claim(&mut self) {
        let w = self.w;
        if self.pnext as u64 >= w.events {
            self.note(0, 2, self.pnext, 0, || "done: closes the stream".into());
            return self.close_producer(PState::Done);
        }
        let n = match self.claim_n {
            Some(n) => n,
            None => {
                let left = w.events - self.pnext as u64;
                let n = if w.framed > 0 {
                    // One message per claim: its frames are committed as a unit.
                    let m = self.plan.msg[self.pnext as usize] as usize;
                    i64::from(self.plan.frames[m])
                } else {
                    self.rng.range(1, w.batch_max.max(1)).min(left) as i64
                };
                self.claim_n = Some(n);
                n
            }
        };
        let cap = w.capacity as i64;
        let want = self.pnext + n - 1;
        let facts = self.facts();
        let free = facts
            .iter()
            .all(|f| !f.in_table || f.committed >= want - cap);
        let expected = self
            .reference
            .as_mut()
            .map(|r| r.on_claim(self.now, free, want, cap, &facts));
        let Some(p) = self.p.as_mut() else { return };
        let r = p.managed_try_claim(n as usize, us(self.now));
        let next_check = p.next_liveness_check();
        let got: Vec<RefAlert> =
            std::mem::take(&mut *self.alerts.lock().unwrap_or_else(|e| e.into_inner()))
                .into_iter()
                .map(|a| match a.kind {
                    RequiredConsumerAlertKind::Stalled => RefAlert::Stalled(a.consumer_id),
                    RequiredConsumerAlertKind::Recovered => RefAlert::Recovered(a.consumer_id),
                })
                .collect();
        self.check_liveness(expected, &got, &r);
        for a in &got {
            self.note_alert(a);
        }
        match r {
            Ok(Some(first)) => {
                if !free {
                    return self.fail(
                        "overwrite",
                        format!("claimed {first}..={want} past a gating consumer"),
                    );
                }
                if first != self.pnext {
                    return self.fail("claim", format!("claimed {first}, expected {}", self.pnext));
                }
                if want >= cap {
                    self.cov.ring_wrapped += u64::from(first < cap);
                }
                if n > 1 {
                    self.cov.batch_claim += 1;
                    self.batches.push((first, first + n - 1));
                }
                self.claim_n = None;
                self.pstate = PState::Steps {
                    first,
                    n,
                    phase: 0,
                    i: 0,
                };
                self.note(0, 3, first, n, || format!("claim {first}..={want}"));
            }
            Ok(None) => {
                if free {
                    return self.fail(
                        "spurious block",
                        format!("claim of {want} refused though every gating consumer released it"),
                    );
                }
                self.wake[0] = next_check
                    .map_or(NEVER, |t| t.as_micros() as u64)
                    .max(self.now);
                self.note(0, 4, want, 0, || format!("blocked claiming {want}"));
            }
            Err(e) => self.producer_error(e),
        }
    }

    fn note_alert(&mut self, a: &RefAlert) {
        let (code, id) = match a {
            RefAlert::Stalled(id) => (5, id),
            RefAlert::Recovered(id) => (6, id),
        };
        let i = self
            .w
            .consumers
            .iter()
            .position(|c| &c.id == id)
            .unwrap_or(0);
        match a {
            RefAlert::Stalled(_) => self.cs[i].l.alerted = true,
            RefAlert::Recovered(_) => {
                if std::mem::take(&mut self.cs[i].l.alerted) {
                    self.cov.alert_then_recovery += 1;
                }
            }
        }
        let text = format!("{a:?}");
        self.note(0, code, i as i64, 0, || format!("alert {text}"));
    }

    fn producer_error(&mut self, e: RequiredConsumerError) {
        let text = e.to_string();
        match e {
            RequiredConsumerError::NonRequiredConsumerDead { .. } => {
                self.cov.non_required_dead += 1;
                self.wake[0] = self.now + self.w.liveness.check_us;
                self.note(0, 7, 0, 0, || format!("error (retrying): {text}"));
            }
            RequiredConsumerError::StartupTimeout { .. } => {
                self.cov.startup_timeout += 1;
                self.note(0, 8, 0, 0, || format!("error: {text}"));
                self.close_producer(PState::Failed);
            }
            RequiredConsumerError::GracefulShutdownTriggered { .. } => {
                if self.cs.iter().any(|a| a.l.alerted) {
                    self.cov.alert_then_shutdown += 1;
                }
                self.note(0, 8, 1, 0, || format!("error: {text}"));
                self.close_producer(PState::Failed);
            }
            _ => self.fail("liveness", format!("unexpected error {text}")),
        }
    }

    fn check_liveness(
        &mut self,
        expected: Option<(Vec<RefAlert>, Option<RefError>)>,
        got: &[RefAlert],
        r: &Result<Option<i64>, RequiredConsumerError>,
    ) {
        let Some((want_alerts, want_err)) = expected else {
            if !got.is_empty() || r.is_err() {
                self.fail("liveness", format!("liveness is off, yet {got:?} / {r:?}"));
            }
            return;
        };
        if want_alerts != got {
            return self.fail(
                "liveness alerts",
                format!("reference expects {want_alerts:?}, producer raised {got:?}"),
            );
        }
        let ok = match (&want_err, r) {
            (None, Ok(_)) => true,
            (
                Some(RefError::StartupTimeout(m)),
                Err(RequiredConsumerError::StartupTimeout { missing }),
            ) => m == missing,
            (
                Some(RefError::GracefulShutdown(id)),
                Err(RequiredConsumerError::GracefulShutdownTriggered { consumer_id, .. }),
            ) => id == consumer_id,
            (
                Some(RefError::NonRequiredDead(ids)),
                Err(RequiredConsumerError::NonRequiredConsumerDead { consumer_id }),
            ) => ids.contains(consumer_id),
            _ => false,
        };
        if !ok {
            let oracle = match (&want_err, r) {
                (Some(RefError::StartupTimeout(_)), _)
                | (_, Err(RequiredConsumerError::StartupTimeout { .. })) => "liveness startup",
                (Some(RefError::GracefulShutdown(_)), _)
                | (_, Err(RequiredConsumerError::GracefulShutdownTriggered { .. })) => {
                    "liveness shutdown"
                }
                _ => "liveness",
            };
            self.fail(
                oracle,
                format!("reference expects {want_err:?}, producer returned {r:?}"),
            );
        }
    }

    fn producer_publish_step(&mut self, first: i64, n: i64, phase: usize, i: i64) {
        let order = Producer::<E, SimBackend>::PUBLISH_STEPS;
        let seq = first + i;
        let seed = self.w.seed;
        let cap = self.w.capacity as i64;
        let Some(p) = self.p.as_mut() else { return };
        let (next_phase, next_i) = if order[phase] == PublishStep::Announce || i + 1 == n {
            (phase + 1, 0)
        } else {
            (phase, i + 1)
        };
        match order[phase] {
            PublishStep::Write => {
                let ev = E::make(seed, &self.plan, seq);
                p.step_write(seq, |e| *e = ev);
                let bad = self
                    .cs
                    .iter()
                    .zip(&self.w.consumers)
                    .find(|(a, _)| a.l.in_table && a.l.committed < seq - cap)
                    .map(|(a, s)| (s.id.clone(), a.l.committed));
                self.note(0, 10, seq, 0, || format!("write {seq}"));
                if let Some((id, c)) = bad {
                    return self.fail(
                        "overwrite",
                        format!("slot of {seq} written while {id} had released only {c}"),
                    );
                }
            }
            PublishStep::Stamp => {
                p.step_stamp(seq);
                if seq == self.stamped + 1 {
                    self.stamped = seq;
                }
                self.note(0, 11, seq, 0, || format!("stamp {seq}"));
                self.wake_consumers();
            }
            PublishStep::Announce => {
                let last = first + n - 1;
                p.step_announce(last);
                self.announced = last;
                self.pnext = last + 1;
                self.note(0, 12, last, 0, || format!("announce {last}"));
            }
        }
        self.pstate = if next_phase == order.len() {
            PState::Claim
        } else {
            PState::Steps {
                first,
                n,
                phase: next_phase,
                i: next_i,
            }
        };
    }

    fn step_consumer(&mut self, i: usize) {
        match self.cs[i].state {
            CState::Pending => self.attach(i),
            CState::Peek => self.peek(i),
            CState::Recv => self.recv(i),
            CState::Read(seq) => self.read(i, seq),
            CState::Release(seq) => self.release(i, seq),
            _ => {}
        }
    }

    fn attach(&mut self, i: usize) {
        let spec = &self.w.consumers[i];
        if matches!(self.pstate, PState::Done | PState::Failed) {
            self.cs[i].state = CState::Never;
            return self.note(i as u64 + 1, 30, 0, 0, || {
                "stream already closed: not attaching".into()
            });
        }
        let backend = SimBackend::spawn(self.world.world());
        let built = SharedDisruptorBuilder::<E, SimBackend>::with_backend(
            backend.clone(),
            RING,
            self.w.capacity,
        )
        .with_consumer_id(spec.id.clone())
        .with_attach_timeout(Duration::ZERO)
        .with_producer_check_interval(us(self.w.producer_check_us))
        .build_consumer();
        let c = match built {
            Ok(c) => c,
            Err(e) => return self.fail("attach", format!("{} could not attach: {e}", spec.id)),
        };
        let start = c.next_sequence();
        let a = &mut self.cs[i];
        let expected = if a.l.in_table {
            a.l.committed + 1
        } else {
            self.announced + 1
        };
        let rejoin = a.l.attached_ever;
        let was_in_table = a.l.in_table;
        if let Some(lost) = a.l.lease_lost.take() {
            if start <= lost {
                self.cov.redelivery_after_crash += 1;
            }
        }
        self.cov.same_id_rejoin += u64::from(rejoin);
        if rejoin && self.batches.iter().any(|&(a, b)| a < start && start <= b) {
            self.cov.rejoin_mid_batch += 1;
        }
        a.l.in_table = true;
        a.l.attached_ever = true;
        a.l.dead = false;
        a.l.committed = start - 1;
        a.l.expected_next = start;
        a.c = Some(c);
        a.backend = Some(backend);
        a.state = CState::Peek;
        self.note(i as u64 + 1, 31, start, i64::from(rejoin), || {
            format!("attached (rejoin: {rejoin}), starts at {start}")
        });
        if self.w.framed > 0 {
            // Even-numbered consumers run the real framed consumer's `try_recv`; odd ones step
            // the Layer 0 consumer slot by slot and feed the real reassembler.
            if i % 2 == 0 {
                let a = &mut self.cs[i];
                if let Some(c) = a.c.take() {
                    a.fc = Some(E::wrap(c));
                    a.state = CState::Recv;
                }
            }
            self.framed_attach(i, start, rejoin, was_in_table);
        }
        if start != expected {
            let oracle = if start > expected {
                "loss"
            } else {
                "duplicate"
            };
            self.fail(
                oracle,
                format!(
                    "{} attached at {start}, its committed cursor says {expected}",
                    self.w.consumers[i].id
                ),
            );
        }
    }

    fn peek(&mut self, i: usize) {
        let a = &mut self.cs[i];
        let Some(c) = a.c.as_mut() else { return };
        let expected = a.l.expected_next;
        let r = c.step_peek();
        match r {
            Ok(Some(seq)) => {
                a.state = CState::Read(seq);
                self.note(i as u64 + 1, 32, seq, 0, || format!("peek {seq}"));
                if seq != expected {
                    return self.fail("order", format!("got {seq}, expected {expected}"));
                }
                if seq > self.stamped {
                    self.fail(
                        "unpublished read",
                        format!("peeked {seq}, only {} published", self.stamped),
                    );
                }
            }
            Ok(None) => {
                self.wake[i + 1] = self.now + self.w.producer_check_us;
                self.note(i as u64 + 1, 33, expected, 0, || {
                    format!("nothing at {expected}")
                });
                if expected <= self.stamped {
                    self.fail(
                        "missed publish",
                        format!("{expected} is published but the consumer sees nothing"),
                    );
                }
            }
            Err(e) => self.consumer_end(i, e),
        }
    }

    fn consumer_end(&mut self, i: usize, e: MultiProcessError) {
        let expected = self.cs[i].l.expected_next;
        let drained = expected > self.stamped;
        let text = e.to_string();
        self.cs[i].state = CState::Finished;
        self.note(i as u64 + 1, 34, expected, 0, || format!("end: {text}"));
        let ok = match e {
            MultiProcessError::Closed => matches!(self.pstate, PState::Done | PState::Failed),
            MultiProcessError::ProducerDead => self.pstate == PState::Crashed,
            _ => {
                return self.fail(
                    "corrupt",
                    format!("consumer {}: {text}", self.w.consumers[i].id),
                )
            }
        };
        if !ok {
            self.fail(
                "end of stream",
                format!("{text} while the producer is {:?}", self.pstate),
            );
        } else if !drained {
            self.fail(
                "loss",
                format!("{text} at {expected} though {} was published", self.stamped),
            );
        } else if let Some(rx) = &self.cs[i].rx {
            let (got, all) = (rx.expect_msg, self.plan.frames.len() as u32);
            if self.pstate == PState::Done && got != all {
                self.fail(
                    "framed loss",
                    format!("stream closed after message {got} of {all} was delivered"),
                );
            }
        }
    }

    fn read(&mut self, i: usize, seq: i64) {
        let seed = self.w.seed;
        let a = &mut self.cs[i];
        let Some(c) = a.c.as_mut() else { return };
        match c.step_read(seq) {
            Ok(v) => {
                a.state = CState::Release(seq);
                self.note(i as u64 + 1, 35, seq, v.word(), || format!("read {seq}"));
                if !v.same(&E::make(seed, &self.plan, seq)) {
                    return self.fail(
                        "torn read",
                        format!("slot {seq} did not hold the event written for {seq}"),
                    );
                }
                if let Some((meta, data)) = v.frame() {
                    self.framed_feed(i, seq, meta, data);
                }
            }
            Err(e) => {
                let text = e.to_string();
                self.fail("overwrite", format!("reading leased {seq}: {text}"));
            }
        }
    }

    fn release(&mut self, i: usize, seq: i64) {
        let slow = self.w.consumers[i].slow_us;
        let a = &mut self.cs[i];
        let Some(c) = a.c.as_mut() else { return };
        c.step_release(seq);
        a.l.committed = seq;
        if a.rx.is_some() && self.plan.is_last(seq as usize) {
            a.l.committed_msg = i64::from(self.plan.msg[seq as usize]);
        }
        a.l.expected_next = seq + 1;
        a.state = CState::Peek;
        if slow > 0 {
            self.wake[i + 1] = self.now + slow;
        }
        if self.wake[0] > self.now && self.pstate == PState::Claim {
            self.wake[0] = self.now;
        }
        self.note(i as u64 + 1, 36, seq, 0, || format!("release {seq}"));
    }

    fn finish(mut self) -> RunReport {
        if self.failure.is_none()
            && self.pstate == PState::Done
            && self.stamped + 1 != self.w.events as i64
        {
            let s = self.stamped;
            self.fail("loss", format!("producer done after publishing up to {s}"));
        }
        let report = RunReport {
            failure: self.failure.clone(),
            trace_hash: self.hash,
            steps: self.step,
            end_us: self.now,
            coverage: self.cov.clone(),
            trace: self.trace.take().unwrap_or_default(),
        };
        // The forgotten actors' memory is released only now, after every check.
        for c in self.graveyard_c.drain(..) {
            drop(ManuallyDrop::into_inner(c));
        }
        for c in self.graveyard_f.drain(..) {
            drop(ManuallyDrop::into_inner(c));
        }
        for p in self.graveyard_p.drain(..) {
            drop(ManuallyDrop::into_inner(p));
        }
        report
    }
}

impl<E: SimEv> Sim<'_, E> {
    /// A framed consumer (re)joins at slot `start`: a fresh reassembler, which must skip the
    /// rest of a message it joined in the middle of and count it as dropped.
    fn framed_attach(&mut self, i: usize, start: i64, rejoin: bool, was_in_table: bool) {
        let s = start as usize;
        let (expect_msg, dropped) = if s >= self.plan.msg.len() {
            (self.plan.frames.len() as u32, 0)
        } else if self.plan.idx[s] != 0 {
            (self.plan.msg[s] + 1, 1)
        } else {
            (self.plan.msg[s], 0)
        };
        if dropped == 1 && rejoin {
            self.cov.rejoin_mid_message += 1;
            self.cov.rejoin_mid_message_try_recv += u64::from(self.cs[i].fc.is_some());
            self.note(i as u64 + 1, 40, start, 0, || {
                format!("rejoined mid-message at slot {start}")
            });
        }
        let a = &mut self.cs[i];
        let committed_msg = a.l.committed_msg;
        a.rx = Some(FramedRx {
            asm: Reassembler::new(
                Frame::DATA_BYTES,
                Frame::INDEX_MASK,
                DEFAULT_MAX_MESSAGE_SIZE,
            ),
            expect_msg,
            dropped,
            seen_partial: false,
        });
        if !was_in_table {
            // A first attach owes nothing before its join point.
            self.cs[i].l.committed_msg = i64::from(expect_msg) - 1;
        } else {
            // Only the partial message may be lost across the rejoin.
            let lost = i64::from(expect_msg) - (committed_msg + 1);
            if lost != dropped as i64 {
                self.fail(
                    "framed loss",
                    format!(
                        "rejoin resumes at message {expect_msg}, last committed {committed_msg}"
                    ),
                );
            }
        }
    }

    /// Feeds the frame of `seq` to the consumer's reassembler and checks what it made of it.
    fn framed_feed(&mut self, i: usize, seq: i64, meta: FrameMeta, data: &[u8]) {
        let seed = self.w.seed;
        let s = seq as usize;
        let m = self.plan.msg[s];
        let last = self.plan.is_last(s);
        let frames = self.plan.frames[m as usize];
        let a = &mut self.cs[i];
        let Some(rx) = a.rx.as_mut() else { return };
        let step = rx.asm.feed(meta, data);
        let expect = rx.expect_msg;
        let delivered = match &step {
            Step::Skipped if m < expect => {
                rx.seen_partial = true;
                None
            }
            Step::Pending { .. } if m == expect && !last => None,
            Step::Single { message_id, len } if m == expect && frames == 1 && *message_id == m => {
                Some(self.plan.check(seed, m, &data[..(*len).min(data.len())]))
            }
            Step::Complete { message_id, .. } if m == expect && last && *message_id == m => {
                Some(self.plan.check(seed, m, rx.asm.message()))
            }
            _ => {
                let text = format!("{step:?}");
                return self.fail(
                    "framing",
                    format!(
                        "slot {seq} (message {m}, fragment {}): reassembler said {text}, \
                         expecting message {expect}",
                        self.plan.idx[s]
                    ),
                );
            }
        };
        let want_dropped = if rx.seen_partial { rx.dropped } else { 0 };
        let got_dropped = rx.asm.dropped();
        if let Some(whole) = delivered {
            rx.expect_msg = m + 1;
            let committed = a.l.committed_msg;
            self.cov.framed_multi_frame += u64::from(frames > 1);
            self.note(i as u64 + 1, 41, i64::from(m), 0, || {
                format!("delivered message {m} ({frames} frames)")
            });
            if !whole {
                return self.fail(
                    "framed torn message",
                    format!("message {m} was not delivered byte-exact"),
                );
            }
            if i64::from(m) <= committed {
                return self.fail(
                    "framed duplicate",
                    format!("message {m} delivered again; {committed} was committed"),
                );
            }
        }
        if got_dropped != want_dropped {
            self.fail(
                "framed dropped count",
                format!("dropped_messages {got_dropped}, the oracle expects {want_dropped}"),
            );
        }
    }
}

impl<E: SimEv> Sim<'_, E> {
    /// One `try_recv` of the real framed consumer, checked against the plan: the slots it
    /// consumed, what it delivered, and its dropped count.
    fn recv(&mut self, i: usize) {
        let seed = self.w.seed;
        let cap = self.w.capacity as i64;
        let slow = self.w.consumers[i].slow_us;
        let a = &mut self.cs[i];
        let Some(fc) = a.fc.as_mut() else { return };
        let seq0 = E::fc_next(fc);
        let r = E::fc_recv(fc, seed, &self.plan);
        let seq1 = E::fc_next(fc);
        let got_dropped = E::fc_dropped(fc);
        let Some(rx) = a.rx.as_mut() else { return };
        let mut deliver: Option<u32> = None;
        let mut bad: Option<String> = None;
        for s in seq0..seq1 {
            let su = s as usize;
            if s > self.stamped || su >= self.plan.msg.len() {
                bad = Some(format!(
                    "consumed slot {s}, only {} published",
                    self.stamped
                ));
                break;
            }
            let m = self.plan.msg[su];
            if m < rx.expect_msg {
                rx.seen_partial = true;
                continue;
            }
            if m > rx.expect_msg || deliver.is_some() {
                bad = Some(format!(
                    "slot {s} of message {m} while expecting {}",
                    rx.expect_msg
                ));
                break;
            }
            if self.plan.is_last(su) {
                deliver = Some(m);
                rx.expect_msg = m + 1;
            }
        }
        let want_dropped = if rx.seen_partial { rx.dropped } else { 0 };
        let committed_before = a.l.committed_msg;
        for s in seq0..seq1 {
            if (s as usize) < self.plan.msg.len() && self.plan.is_last(s as usize) {
                a.l.committed_msg = i64::from(self.plan.msg[s as usize]);
            }
        }
        a.l.committed = seq1 - 1;
        a.l.expected_next = seq1;
        self.note(i as u64 + 1, 42, seq0, seq1, || {
            format!("try_recv: slots {seq0}..{seq1}")
        });
        if let Some(b) = bad {
            return self.fail("framing", b);
        }
        if seq1 > seq0 && self.wake[0] > self.now && self.pstate == PState::Claim {
            self.wake[0] = self.now;
        }
        match r {
            Ok(got) => {
                let got_id = got.map(|(id, _)| id);
                if got_id != deliver {
                    return self.fail(
                        "framing",
                        format!(
                            "try_recv over {seq0}..{seq1} gave {got_id:?}, expected {deliver:?}"
                        ),
                    );
                }
                if let Some((m, whole)) = got {
                    self.cov.framed_multi_frame += u64::from(self.plan.frames[m as usize] > 1);
                    self.note(i as u64 + 1, 41, i64::from(m), 0, || {
                        format!("delivered message {m}")
                    });
                    if !whole {
                        return self.fail(
                            "framed torn message",
                            format!("message {m} was not delivered byte-exact"),
                        );
                    }
                    if i64::from(m) <= committed_before {
                        return self.fail(
                            "framed duplicate",
                            format!(
                                "message {m} delivered again; {committed_before} was committed"
                            ),
                        );
                    }
                    if slow > 0 {
                        self.wake[i + 1] = self.now + slow;
                    }
                } else if seq1 - seq0 < cap {
                    if seq1 <= self.stamped {
                        return self.fail(
                            "missed publish",
                            format!("{seq1} is published but try_recv stopped before it"),
                        );
                    }
                    self.wake[i + 1] = self.now + self.w.producer_check_us;
                }
                if got_dropped != want_dropped {
                    self.fail(
                        "framed dropped count",
                        format!(
                            "dropped_messages {got_dropped}, the oracle expects {want_dropped}"
                        ),
                    );
                }
            }
            Err(TransportError::Ring(e))
                if matches!(
                    e,
                    MultiProcessError::Closed | MultiProcessError::ProducerDead
                ) =>
            {
                self.consumer_end(i, e)
            }
            Err(e) => self.fail("framing", format!("try_recv: {e}")),
        }
    }
}
