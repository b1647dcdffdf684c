//! The fault schedule: stalls (as SIGSTOP), crashes that forget an actor's state without
//! `Drop` and kill its process (as SIGKILL), same-id restarts, and the heal point after the
//! last fault where stalls end and crashed consumers rejoin. Faults land between real calls.

use super::consumer::CState;
use super::event::SimEv;
use super::producer::PState;
use super::scheduler::ActorId;
use super::trace::TraceCode;
use super::Sim;
use crate::workload::{Actor, FaultKind};
use std::mem::ManuallyDrop;

impl<E: SimEv> Sim<'_, E> {
    /// Applies every fault due by now.
    pub(super) fn apply_faults(&mut self) {
        while let Some(f) = self.w.faults.get(self.fault_ix).copied() {
            if f.at_us > self.sched.now {
                break;
            }
            self.fault_ix += 1;
            match f.kind {
                FaultKind::Stall { actor, dur_us } => {
                    let a = match actor {
                        Actor::Producer => ActorId::Producer,
                        Actor::Consumer(i) => ActorId::Consumer(i),
                    };
                    self.sched.stall(a, dur_us);
                    let w = a.word();
                    self.note(
                        ActorId::Harness,
                        TraceCode::Stall,
                        w as i64,
                        dur_us as i64,
                        || format!("fault: stall actor {w} for {dur_us}us"),
                    );
                }
                FaultKind::Crash { consumer } => self.crash_consumer(consumer),
                FaultKind::Rejoin { consumer } => self.rejoin(consumer),
                FaultKind::ProducerCrash => self.crash_producer(),
            }
        }
    }

    /// The heal point: stalls end, crashed consumers restart.
    pub(super) fn heal(&mut self) {
        self.sched.end_stalls();
        self.note(ActorId::Harness, TraceCode::Heal, 0, 0, || {
            "heal: stalls end, crashed consumers rejoin".into()
        });
        for i in 0..self.cs.len() {
            self.rejoin(i);
        }
    }

    fn crash_consumer(&mut self, i: usize) {
        let a = &mut self.cs[i];
        let held = match a.state {
            CState::Ready | CState::Recv => None,
            CState::Held(s) => Some(s),
            CState::Pending | CState::Finished | CState::Crashed | CState::Never => return,
        };
        if let Some(c) = a.c.take() {
            self.graveyard.consumers.push(ManuallyDrop::new(c));
        }
        if let Some(c) = a.fc.take() {
            self.graveyard.framed.push(ManuallyDrop::new(c));
        }
        a.rx = None; // the reassembler's state dies with the process
        if let Some(b) = a.backend.take() {
            b.kill();
        }
        a.state = CState::Crashed;
        let l = &mut self.check.ledgers[i];
        l.dead = true;
        if held.is_some() {
            l.lease_lost = held;
        }
        self.note(
            ActorId::Harness,
            TraceCode::CrashConsumer,
            i as i64,
            0,
            || format!("fault: crash consumer {i}"),
        );
    }

    fn rejoin(&mut self, i: usize) {
        if self.cs[i].state == CState::Crashed {
            self.cs[i].state = CState::Pending;
            let now = self.sched.now;
            self.sched.wake_at(ActorId::Consumer(i), now);
            self.note(ActorId::Harness, TraceCode::Restart, i as i64, 0, || {
                format!("fault: consumer {i} restarts")
            });
        }
    }

    fn crash_producer(&mut self) {
        if self.prod.terminal() {
            return;
        }
        if let Some(p) = self.prod.p.take() {
            self.graveyard.producers.push(ManuallyDrop::new(p));
        }
        self.prod.backend.kill();
        self.prod.state = PState::Crashed;
        self.cov.producer_crash += 1;
        self.note(ActorId::Harness, TraceCode::CrashProducer, 0, 0, || {
            "fault: producer crash".into()
        });
    }
}
