//! The consumer actors: attach (and rejoin under the same id), then receive with one real
//! public call per step, chosen by the seed: `try_consume_next` (copy out and release),
//! `try_consume_batch` (several in place, one release), or `try_consume_next_leased` +
//! `EventLease::keep` (read, not released) followed at a later step by a second lease that is
//! dropped (released) — so a crash can land while a consumer holds an event, and the event
//! must come again after its rejoin. Framed consumers are in `framed.rs`.

use super::event::SimEv;
use super::framed::FramedRx;
use super::producer::PState;
use super::scheduler::ActorId;
use super::trace::TraceCode;
use super::{us, Oracle, Sim, RING};
use crate::workload::ConsumerSpec;
use myelon::backend::SimBackend;
use myelon::{Consumer, MultiProcessError, SharedDisruptorBuilder};
use std::time::Duration;

/// What a consumer does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CState {
    /// Attach (first time, or a restart after a crash).
    Pending,
    /// Receive with a Layer 0 call.
    Ready,
    /// It leased `seq` and kept it: the next step releases it.
    Held(i64),
    /// Framed consumers that use the real `FramedTransportConsumer::try_recv`.
    Recv,
    /// Its stream ended.
    Finished,
    /// Its process was killed (a `Rejoin` fault or the heal point restarts it).
    Crashed,
    /// It never attaches.
    Never,
}

/// The Layer 0 receive call of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvCall {
    /// `try_consume_next`.
    Next,
    /// `try_consume_next_leased`, then `keep`.
    LeaseKeep,
    /// `try_consume_batch(max, ..)`.
    Batch(usize),
}

/// One consumer of the workload and its current incarnation.
pub struct ConsumerActor<E: SimEv> {
    /// The real Layer 0 consumer (framed consumers that feed the reassembler themselves).
    pub c: Option<Consumer<E, SimBackend>>,
    /// The real framed consumer (framed consumers that call `try_recv`).
    pub fc: Option<E::Fc>,
    /// Its process.
    pub backend: Option<SimBackend>,
    /// What it does next.
    pub state: CState,
    /// Framed: its reassembler and what the framed oracle expects of it.
    pub rx: Option<FramedRx>,
    /// What the last receive call handed out, `(sequence, event)`.
    got: Vec<(i64, E)>,
}

impl<E: SimEv> ConsumerActor<E> {
    /// Not attached yet.
    pub fn new(spec: &ConsumerSpec) -> ConsumerActor<E> {
        ConsumerActor {
            c: None,
            fc: None,
            backend: None,
            state: if spec.attach_us.is_some() {
                CState::Pending
            } else {
                CState::Never
            },
            rx: None,
            got: Vec::new(),
        }
    }

    /// Whether it still has something to do.
    pub fn alive(&self) -> bool {
        !matches!(
            self.state,
            CState::Finished | CState::Crashed | CState::Never
        )
    }
}

impl<E: SimEv> Sim<'_, E> {
    pub(super) fn step_consumer(&mut self, i: usize) {
        match self.cs[i].state {
            CState::Pending => self.attach(i),
            CState::Ready => self.receive(i),
            CState::Held(seq) => self.release_held(i, seq),
            CState::Recv => self.recv(i),
            CState::Finished | CState::Crashed | CState::Never => {}
        }
    }

    fn attach(&mut self, i: usize) {
        let w = self.w;
        let spec = &w.consumers[i];
        if matches!(self.prod.state, PState::Done | PState::Failed) {
            self.cs[i].state = CState::Never;
            return self.note(ActorId::Consumer(i), TraceCode::NotAttaching, 0, 0, || {
                "stream already closed: not attaching".into()
            });
        }
        let backend = SimBackend::spawn(self.world.world());
        let built = SharedDisruptorBuilder::<E, SimBackend>::with_backend(
            backend.clone(),
            RING,
            w.capacity,
        )
        .with_consumer_id(spec.id.clone())
        .with_attach_timeout(Duration::ZERO)
        .with_producer_check_interval(us(w.producer_check_us))
        .build_consumer();
        let c = match built {
            Ok(c) => c,
            Err(e) => {
                return self.fail(Oracle::Attach, format!("{} could not attach: {e}", spec.id))
            }
        };
        let start = c.next_sequence();
        let l = &mut self.check.ledgers[i];
        let (rejoin, was_in_table) = (l.attached_ever, l.in_table);
        if l.lease_lost.take().is_some_and(|lost| start <= lost) {
            self.cov.redelivery_after_crash += 1;
        }
        self.cov.same_id_rejoin += u64::from(rejoin);
        if rejoin
            && self
                .check
                .batches
                .iter()
                .any(|&(a, b)| a < start && start <= b)
        {
            self.cov.rejoin_mid_batch += 1;
        }
        let v = self.check.attached(i, &spec.id, start);
        let a = &mut self.cs[i];
        a.c = Some(c);
        a.backend = Some(backend);
        a.state = CState::Ready;
        self.note(
            ActorId::Consumer(i),
            TraceCode::Attached,
            start,
            i64::from(rejoin),
            || format!("attached (rejoin: {rejoin}), starts at {start}"),
        );
        if w.framed > 0 {
            // Even-numbered consumers run the real framed consumer's `try_recv`; odd ones
            // receive frames with Layer 0 calls and feed the real reassembler.
            if i % 2 == 0 {
                let a = &mut self.cs[i];
                if let Some(c) = a.c.take() {
                    a.fc = Some(E::wrap(c));
                    a.state = CState::Recv;
                }
            }
            self.framed_attach(i, start, rejoin, was_in_table);
        }
        self.verdict(v);
    }

    /// One Layer 0 receive call, checked event by event.
    fn receive(&mut self, i: usize) {
        let call = match self.sched.below(3) {
            0 => RecvCall::Next,
            1 => RecvCall::LeaseKeep,
            _ => RecvCall::Batch(self.sched.range(2, 4) as usize),
        };
        let a = &mut self.cs[i];
        let Some(c) = a.c.as_mut() else { return };
        let mut got = std::mem::take(&mut a.got);
        got.clear();
        let r = match call {
            RecvCall::Next => {
                let seq = c.next_sequence();
                c.try_consume_next()
                    .map(|v| got.extend(v.map(|v| (seq, v))))
            }
            RecvCall::LeaseKeep => c.try_consume_next_leased().map(|lease| {
                if let Some(l) = lease {
                    got.push((l.sequence(), *l));
                    l.keep();
                }
            }),
            RecvCall::Batch(max) => c
                .try_consume_batch(max, |e, seq, _| got.push((seq, *e)))
                .map(drop),
        };
        let per_event = if call == RecvCall::LeaseKeep { 2 } else { 3 };
        self.sched.work((per_event * got.len() as u64).max(1));
        match r {
            Ok(()) => self.received(i, call, &got),
            Err(e) => self.consumer_end(i, e),
        }
        self.cs[i].got = got;
    }

    /// Checks what one receive call handed out and books it.
    fn received(&mut self, i: usize, call: RecvCall, got: &[(i64, E)]) {
        let who = ActorId::Consumer(i);
        let Some(&(first, _)) = got.first() else {
            let next = self.check.ledgers[i].expected_next;
            let at = self.sched.now + self.w.producer_check_us;
            self.sched.wake_at(who, at);
            self.note(who, TraceCode::Empty, next, 0, || {
                format!("nothing at {next}")
            });
            let v = self.check.found_nothing(i);
            self.verdict(v);
            return;
        };
        let last = got[got.len() - 1].0;
        let kept = call == RecvCall::LeaseKeep;
        let (code, what) = match call {
            RecvCall::Next => (TraceCode::Consumed, "consumed"),
            RecvCall::LeaseKeep => (TraceCode::Peeked, "leased and kept"),
            RecvCall::Batch(_) => (TraceCode::ConsumedBatch, "consumed batch"),
        };
        self.note(who, code, first, last, || {
            format!("{what} {first}..={last}")
        });
        for &(seq, v) in got {
            let exact = v.same(&E::make(self.w.seed, &self.plan, seq));
            let verdict = self.check.received(i, seq, exact);
            if !self.verdict(verdict) {
                return;
            }
            if let Some((meta, data)) = v.frame() {
                self.framed_feed(i, seq, meta, data);
            }
            if !kept {
                self.book_release(i, seq);
            }
        }
        match call {
            RecvCall::LeaseKeep => {
                self.cov.lease_kept += 1;
                self.cs[i].state = CState::Held(first);
            }
            RecvCall::Batch(max) => {
                self.cov.batch_receive += u64::from(got.len() > 1);
                if got.len() < max {
                    // The batch stopped at the first unpublished slot.
                    let v = self.check.found_nothing(i);
                    self.verdict(v);
                }
                self.after_release(i);
            }
            RecvCall::Next => self.after_release(i),
        }
    }

    /// Releases the event a previous step leased and kept: the same event must be leased
    /// again (the producer could not overwrite it), and dropping that lease releases it.
    fn release_held(&mut self, i: usize, seq: i64) {
        let Some(c) = self.cs[i].c.as_mut() else {
            return;
        };
        let again = c
            .try_consume_next_leased()
            .map(|lease| lease.map(|l| (l.sequence(), *l)));
        self.sched.work(1);
        match again {
            Ok(Some((s, v))) if s == seq && v.same(&E::make(self.w.seed, &self.plan, seq)) => {
                self.book_release(i, seq);
                self.cs[i].state = CState::Ready;
                self.note(ActorId::Consumer(i), TraceCode::Released, seq, 0, || {
                    format!("released {seq}")
                });
                self.after_release(i);
            }
            Ok(Some((s, _))) => self.fail(
                Oracle::Overwrite,
                format!("kept {seq}, leased {s} or another event in its slot"),
            ),
            Ok(None) => self.fail(
                Oracle::Overwrite,
                format!("kept {seq}, its slot went empty"),
            ),
            Err(e) => self.fail(Oracle::Overwrite, format!("re-leasing kept {seq}: {e}")),
        }
    }

    /// Books the release of `seq` in the ledger.
    fn book_release(&mut self, i: usize, seq: i64) {
        let framed = self.cs[i].rx.is_some();
        let s = seq as usize;
        let msg = (framed && self.plan.is_last(s)).then(|| self.plan.msg[s]);
        self.check.released(i, seq, msg);
    }

    /// After a release: the consumer processes for its `slow_us`; a producer waiting for
    /// space may find it now.
    pub(super) fn after_release(&mut self, i: usize) {
        let slow = self.w.consumers[i].slow_us;
        if slow > 0 {
            let at = self.sched.now + slow;
            self.sched.wake_at(ActorId::Consumer(i), at);
        }
        if self.prod.state == PState::Ready && self.sched.waiting(ActorId::Producer) {
            self.sched.wake_now(ActorId::Producer);
        }
    }

    pub(super) fn consumer_end(&mut self, i: usize, e: MultiProcessError) {
        let next = self.check.ledgers[i].expected_next;
        let text = e.to_string();
        self.cs[i].state = CState::Finished;
        self.note(ActorId::Consumer(i), TraceCode::End, next, 0, || {
            format!("end: {text}")
        });
        let v = self
            .check
            .ended(i, &self.w.consumers[i].id, &e, self.stream_end());
        if self.verdict(v) {
            self.framed_end(i);
        }
    }

    /// Wakes the consumers waiting for an event (something was published, or the stream
    /// closed).
    pub(super) fn wake_consumers(&mut self) {
        for (i, a) in self.cs.iter().enumerate() {
            if matches!(a.state, CState::Ready | CState::Recv) {
                self.sched.wake_now(ActorId::Consumer(i));
            }
        }
    }
}
