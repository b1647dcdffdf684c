//! The producer actor: builds the ring (and turns on required-consumer liveness), then
//! publishes the workload's events with one real public call per step, and closes the stream
//! by `Drop` when done.
//!
//! Each publish is `try_publish`, `try_publish_batch` or `try_claim_batch` + `commit`, chosen by
//! the seed; a framed run publishes one message per call (its frames as one batch). Under
//! liveness a step of `managed_try_claim` comes first: see [`Sim::managed_claim`].

use super::event::SimEv;
use super::liveness::{bound_expiry, check_liveness, check_upper_bound, ref_alert};
use super::scheduler::{ActorId, NEVER};
use super::trace::TraceCode;
use super::{us, Oracle, Sim, RING};
use crate::reference::{AlertKind, RefAlert, RefLiveness};
use myelon::backend::SimBackend;
use myelon::{
    Producer, RequiredConsumerAlert, RequiredConsumerError, RequiredConsumerFailureAction,
    RequiredConsumerLivenessConfig, SharedDisruptorBuilder,
};
use std::sync::{Arc, Mutex};

/// Where the alert hook puts the producer's alerts until the harness takes them.
type Alerts = Arc<Mutex<Vec<RequiredConsumerAlert>>>;

/// What the producer does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PState {
    /// Claim (under liveness) or publish the next events.
    Ready,
    /// `managed_try_claim` found room for `n` slots from `first`; the next step publishes them.
    Claimed {
        /// First sequence of the claim.
        first: i64,
        /// Slots.
        n: i64,
    },
    /// Published everything and closed the stream.
    Done,
    /// Stopped by a liveness error (and closed the stream).
    Failed,
    /// Its process was killed.
    Crashed,
}

/// The real publish call of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PublishCall {
    /// `try_publish` (single events only).
    TryPublish,
    /// `try_publish_batch(n, ..)`.
    TryPublishBatch,
    /// `try_claim_batch(n)`, the slots written in place, `BatchClaim::commit`.
    ClaimCommit,
}

/// The producer's handle and what the harness keeps of it.
pub struct ProducerActor<E: SimEv> {
    /// The real producer (`None` once closed or crashed).
    pub p: Option<Producer<E, SimBackend>>,
    /// Its process.
    pub backend: SimBackend,
    /// What it does next.
    pub state: PState,
    /// The next sequence it publishes, as the harness counts.
    pub next: i64,
    /// The size of the claim it is trying to make (kept while blocked).
    claim_n: Option<i64>,
    alerts: Alerts,
}

impl<E: SimEv> ProducerActor<E> {
    /// Not built yet, in process `backend`.
    pub fn new(backend: SimBackend) -> ProducerActor<E> {
        ProducerActor {
            p: None,
            backend,
            state: PState::Ready,
            next: 0,
            claim_n: None,
            alerts: Alerts::default(),
        }
    }

    /// Whether it has nothing more to do.
    pub fn terminal(&self) -> bool {
        matches!(self.state, PState::Done | PState::Failed | PState::Crashed)
    }

    /// The alerts raised since the last call, as the reference writes them.
    fn take_alerts(&self) -> Vec<RefAlert> {
        let raised = std::mem::take(&mut *self.alerts.lock().unwrap_or_else(|e| e.into_inner()));
        raised.into_iter().map(ref_alert).collect()
    }
}

impl<E: SimEv> Sim<'_, E> {
    pub(super) fn build_producer(&mut self) {
        let w = self.w;
        let built =
            SharedDisruptorBuilder::with_backend(self.prod.backend.clone(), RING, w.capacity)
                .build_producer(E::blank);
        let mut p = match built {
            Ok(p) => p,
            Err(e) => return self.fail(Oracle::Setup, format!("build_producer: {e}")),
        };
        let required = w.required_ids();
        if !required.is_empty() {
            let l = w.liveness;
            let sink = Arc::clone(&self.prod.alerts);
            let action = if l.alert_only {
                RequiredConsumerFailureAction::AlertOnly
            } else {
                RequiredConsumerFailureAction::GracefulShutdown
            };
            let cfg = RequiredConsumerLivenessConfig::new(required.iter().cloned())
                .and_then(|c| c.with_startup_wait_timeout(us(l.startup_us)))
                .and_then(|c| c.with_progress_timeout(us(l.progress_us)))
                .and_then(|c| c.with_progress_check_interval(us(l.check_us)))
                .and_then(|c| c.with_shutdown_grace_period(us(l.grace_us)))
                .map(|c| {
                    c.with_failure_action(action)
                        .with_alert_hook(Arc::new(move |a| {
                            sink.lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(a.clone())
                        }))
                });
            if let Err(e) = cfg.and_then(|c| p.enable_required_consumer_liveness(c)) {
                return self.fail(Oracle::Setup, format!("enable liveness: {e}"));
            }
            self.check.enable_liveness(l, &w.consumers);
        }
        self.prod.p = Some(p);
        self.note(ActorId::Producer, TraceCode::RingCreated, 0, 0, || {
            "ring created".to_string()
        });
    }

    pub(super) fn step_producer(&mut self) {
        match self.prod.state {
            PState::Ready => self.producer_ready(),
            PState::Claimed { first, n } => self.publish(first, n),
            PState::Done | PState::Failed | PState::Crashed => {}
        }
    }

    fn producer_ready(&mut self) {
        let next = self.prod.next;
        if next as u64 >= self.w.events {
            self.note(ActorId::Producer, TraceCode::Done, next, 0, || {
                "done: closes the stream".into()
            });
            return self.close_producer(PState::Done);
        }
        let n = self.claim_size();
        if self.check.reference.is_some() {
            self.managed_claim(n);
        } else {
            self.publish(next, n);
        }
    }

    /// The size of the next claim: the seed's batch, or the next framed message's frames.
    fn claim_size(&mut self) -> i64 {
        if let Some(n) = self.prod.claim_n {
            return n;
        }
        let (w, next) = (self.w, self.prod.next);
        let n = if w.framed > 0 {
            // The rest of the current message, committed as a unit; sometimes only a part of
            // it, as the framed producer streams a message larger than the ring, so that
            // consumers see messages whose tail is not published yet.
            let s = next as usize;
            let m = self.plan.msg[s] as usize;
            let rest = u64::from(self.plan.frames[m] - self.plan.idx[s]);
            if rest > 1 && self.sched.below(4) == 0 {
                self.sched.range(1, rest - 1) as i64
            } else {
                rest as i64
            }
        } else {
            let left = w.events - next as u64;
            self.sched.range(1, w.batch_max.max(1)).min(left) as i64
        };
        self.prod.claim_n = Some(n);
        n
    }

    /// One liveness round of a managed producer at a time the harness chooses. While blocked
    /// it is stepped when the reference model says the next check is due or the upper bound of
    /// a stall expires (and when a release wakes it), never when the producer says: a producer
    /// whose checks run late is compared at the time it should have checked
    /// ([`check_liveness`]), and the upper bound is checked after every round
    /// ([`check_upper_bound`]).
    ///
    /// This is the doc-hidden `Producer::managed_try_claim`, not a real managed publish call:
    /// `publish_managed`, `publish_batch_managed` and `claim_batch_managed` block while the ring
    /// is full, and outside the public-API simulation's coroutines a blocked call on
    /// `SimBackend` advances the virtual clock itself (its `sleep`/`wait`), so the producer,
    /// not the harness, would own the time of every liveness check and no consumer could run
    /// while it waits. No public call is non-blocking *and* runs the liveness check, so this
    /// step stays; the publish that follows it is a real non-blocking call. (The managed calls
    /// themselves run under `dst api`, which can suspend inside them.)
    fn managed_claim(&mut self, n: i64) {
        let (now, next) = (self.sched.now, self.prod.next);
        let want = next + n - 1;
        let expected = self.check.expect_liveness(now, want, &self.w.consumers);
        let Some(p) = self.prod.p.as_mut() else {
            return;
        };
        let r = p.managed_try_claim(n as usize, us(now));
        let got = self.prod.take_alerts();
        let v = check_liveness(expected, &got, &r);
        if !self.verdict(v) {
            return;
        }
        for a in &got {
            self.note_alert(a);
        }
        let (unalerted, bound) = self.check.unalerted_stalls(want, &self.w.consumers);
        if r.is_ok() && !self.verdict(check_upper_bound(now, &unalerted, bound)) {
            return;
        }
        let expiry = bound_expiry(&unalerted, bound);
        match r {
            Ok(Some(first)) => {
                let v = self.check.claimed(next, first, want);
                self.note(ActorId::Producer, TraceCode::Claimed, first, n, || {
                    format!("managed claim {first}..={want}")
                });
                if self.verdict(v) {
                    self.prod.state = PState::Claimed { first, n };
                }
            }
            Ok(None) => {
                let v = self.check.refused(want);
                self.verdict(v);
                let reference = self.check.reference.as_ref();
                let due = reference.and_then(RefLiveness::next_check).unwrap_or(NEVER);
                let at = due.min(expiry.unwrap_or(NEVER));
                self.sched.wake_at(ActorId::Producer, at.max(now));
                self.note(ActorId::Producer, TraceCode::Blocked, want, 0, || {
                    format!("blocked claiming {want}")
                });
            }
            Err(e) => self.producer_error(e),
        }
    }

    /// One real publish call for the `n` events from `next` (which a managed claim found room
    /// for, or which the call itself checks).
    fn publish(&mut self, next: i64, n: i64) {
        let call = match (n, self.sched.below(3)) {
            (1, 0) => PublishCall::TryPublish,
            (_, 0 | 1) => PublishCall::TryPublishBatch,
            _ => PublishCall::ClaimCommit,
        };
        let (seed, plan) = (self.w.seed, &self.plan);
        let Some(p) = self.prod.p.as_mut() else {
            return;
        };
        let make = |i: usize| E::make(seed, plan, next + i as i64);
        let r = match call {
            PublishCall::TryPublish => p.try_publish(|e| *e = make(0)).map(|s| (s, s)),
            PublishCall::TryPublishBatch => p
                .try_publish_batch(n as usize, |i, e| *e = make(i))
                .map(|last| (last - n + 1, last)),
            PublishCall::ClaimCommit => p.try_claim_batch(n as usize).map(|mut c| {
                let first = c.first_sequence();
                for i in 0..n as usize {
                    *c.slot_mut(i) = make(i);
                }
                (first, c.commit())
            }),
        };
        self.sched.work(2 * n as u64 + 1);
        let Ok((first, last)) = r else {
            let want = next + n - 1;
            let v = self.check.refused(want);
            self.verdict(v);
            self.sched.wake_at(ActorId::Producer, NEVER);
            return self.note(ActorId::Producer, TraceCode::Blocked, want, 0, || {
                format!("{call:?} of {next}..={want}: full")
            });
        };
        let v = self.check.published(next, first, last);
        self.note(ActorId::Producer, TraceCode::Published, first, last, || {
            format!("{call:?}: published {first}..={last}")
        });
        if !self.verdict(v) {
            return;
        }
        let cap = self.w.capacity as i64;
        if last >= cap {
            self.cov.ring_wrapped += u64::from(first < cap);
        }
        self.cov.batch_claim += u64::from(n > 1);
        self.prod.next = last + 1;
        self.prod.claim_n = None;
        self.prod.state = PState::Ready;
        self.wake_consumers();
    }

    fn note_alert(&mut self, a: &RefAlert) {
        let code = match a.kind {
            AlertKind::Stalled => TraceCode::AlertStalled,
            AlertKind::Recovered => TraceCode::AlertRecovered,
        };
        let i = self
            .w
            .consumers
            .iter()
            .position(|c| c.id == a.id)
            .unwrap_or(0);
        let l = &mut self.check.ledgers[i];
        match a.kind {
            AlertKind::Stalled => l.alerted = true,
            AlertKind::Recovered => {
                if std::mem::take(&mut l.alerted) {
                    self.cov.alert_then_recovery += 1;
                }
            }
        }
        let text = format!("{a:?}");
        self.note(ActorId::Producer, code, i as i64, 0, || {
            format!("alert {text}")
        });
    }

    fn producer_error(&mut self, e: RequiredConsumerError) {
        let text = e.to_string();
        match e {
            RequiredConsumerError::NonRequiredConsumerDead { .. } => {
                self.cov.non_required_dead += 1;
                let at = self.sched.now + self.w.liveness.check_us;
                self.sched.wake_at(ActorId::Producer, at);
                self.note(ActorId::Producer, TraceCode::RetryError, 0, 0, || {
                    format!("error (retrying): {text}")
                });
            }
            RequiredConsumerError::StartupTimeout { .. } => {
                self.cov.startup_timeout += 1;
                self.note(ActorId::Producer, TraceCode::FatalError, 0, 0, || {
                    format!("error: {text}")
                });
                self.close_producer(PState::Failed);
            }
            RequiredConsumerError::GracefulShutdownTriggered { .. } => {
                if self.check.ledgers.iter().any(|l| l.alerted) {
                    self.cov.alert_then_shutdown += 1;
                }
                self.note(ActorId::Producer, TraceCode::FatalError, 1, 0, || {
                    format!("error: {text}")
                });
                self.close_producer(PState::Failed);
            }
            _ => self.fail(Oracle::Liveness, format!("unexpected error {text}")),
        }
    }

    /// Drops the producer (the stream is closed) and lets the waiting consumers see it.
    fn close_producer(&mut self, state: PState) {
        self.prod.p = None;
        self.prod.state = state;
        self.wake_consumers();
    }
}
