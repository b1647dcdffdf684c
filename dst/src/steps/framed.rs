//! Framed runs (Layer 1): the framed consumers and the framed oracle. Even-numbered consumers
//! call the real `FramedTransportConsumer::try_recv`; odd-numbered ones receive frames with
//! Layer 0 calls (`consumer.rs`) and feed each to the real `Reassembler`. Either way, every
//! delivered message must be whole and byte-exact, message ids advance one by one per
//! incarnation, nothing committed is delivered again, and the only loss is the partial message
//! a consumer (re)joined in the middle of, which `dropped_messages()` must count.

use super::event::{Frame, SimEv};
use super::oracles::Oracle;
use super::producer::PState;
use super::scheduler::ActorId;
use super::trace::TraceCode;
use super::Sim;
use myelon::transport::{
    FrameMeta, FramedTransportFrame, Reassembler, Step, TransportError, DEFAULT_MAX_MESSAGE_SIZE,
};
use myelon::MultiProcessError;

/// The framed side of a consumer incarnation: the real reassembler, and what the oracle
/// expects of it.
#[derive(Debug)]
pub struct FramedRx {
    asm: Reassembler,
    /// The next message this incarnation must deliver.
    expect_msg: u32,
    /// Partial messages this incarnation drops (1 if it joined mid-message).
    dropped: u64,
    /// Whether it has consumed a frame of that partial message (the drop counts from then).
    seen_partial: bool,
}

impl FramedRx {
    /// What `dropped_messages()` must say now.
    fn want_dropped(&self) -> u64 {
        if self.seen_partial {
            self.dropped
        } else {
            0
        }
    }
}

impl<E: SimEv> Sim<'_, E> {
    /// A framed consumer (re)joins at slot `start`: a fresh reassembler, which must skip the
    /// rest of a message it joined in the middle of and count it as dropped.
    pub(super) fn framed_attach(&mut self, i: usize, start: i64, rejoin: bool, was_in_table: bool) {
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
            self.note(
                ActorId::Consumer(i),
                TraceCode::RejoinMidMessage,
                start,
                0,
                || format!("rejoined mid-message at slot {start}"),
            );
        }
        self.cs[i].rx = Some(FramedRx {
            asm: Reassembler::new(
                Frame::DATA_BYTES,
                Frame::INDEX_MASK,
                DEFAULT_MAX_MESSAGE_SIZE,
            ),
            expect_msg,
            dropped,
            seen_partial: false,
        });
        let l = &mut self.check.ledgers[i];
        if !was_in_table {
            // A first attach owes nothing before its join point.
            l.committed_msg = i64::from(expect_msg) - 1;
            return;
        }
        // Only the partial message may be lost across the rejoin, and only if this id still
        // owed it (an id that first attached inside that message never did).
        let committed_msg = l.committed_msg;
        let partial_owed = dropped == 1 && i64::from(self.plan.msg[s]) > committed_msg;
        if i64::from(expect_msg) - (committed_msg + 1) != i64::from(partial_owed) {
            self.fail(
                Oracle::FramedLoss,
                format!("rejoin resumes at message {expect_msg}, last committed {committed_msg}"),
            );
        }
    }

    /// Feeds the frame of `seq` to the consumer's reassembler and checks what it made of it.
    pub(super) fn framed_feed(&mut self, i: usize, seq: i64, meta: FrameMeta, data: &[u8]) {
        let seed = self.w.seed;
        let s = seq as usize;
        let m = self.plan.msg[s];
        let last = self.plan.is_last(s);
        let frames = self.plan.frames[m as usize];
        let Some(rx) = self.cs[i].rx.as_mut() else {
            return;
        };
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
                let detail = format!(
                    "slot {seq} (message {m}, fragment {}): reassembler said {step:?}, \
                     expecting message {expect}",
                    self.plan.idx[s]
                );
                return self.fail(Oracle::Framing, detail);
            }
        };
        let (want_dropped, got_dropped) = (rx.want_dropped(), rx.asm.dropped());
        if let Some(whole) = delivered {
            rx.expect_msg = m + 1;
            let committed = self.check.ledgers[i].committed_msg;
            if !self.delivered(i, m, frames, whole, committed) {
                return;
            }
        }
        if got_dropped != want_dropped {
            self.fail(
                Oracle::FramedDroppedCount,
                format!("dropped_messages {got_dropped}, the oracle expects {want_dropped}"),
            );
        }
    }

    /// Message `m` of `frames` frames was delivered (`whole`: byte-exact) to a consumer whose
    /// id had committed up to message `committed`; false if that violates an oracle.
    fn delivered(&mut self, i: usize, m: u32, frames: u16, whole: bool, committed: i64) -> bool {
        self.cov.framed_multi_frame += u64::from(frames > 1);
        self.note(
            ActorId::Consumer(i),
            TraceCode::Delivered,
            i64::from(m),
            0,
            || format!("delivered message {m} ({frames} frames)"),
        );
        if !whole {
            let detail = format!("message {m} was not delivered byte-exact");
            self.fail(Oracle::FramedTornMessage, detail);
            return false;
        }
        if i64::from(m) <= committed {
            let detail = format!("message {m} delivered again; {committed} was committed");
            self.fail(Oracle::FramedDuplicate, detail);
            return false;
        }
        true
    }

    /// The stream ended for a consumer: a framed one must have every message by then if the
    /// producer finished.
    pub(super) fn framed_end(&mut self, i: usize) {
        let Some(rx) = &self.cs[i].rx else { return };
        let (got, all) = (rx.expect_msg, self.plan.frames.len() as u32);
        if self.prod.state == PState::Done && got != all {
            self.fail(
                Oracle::FramedLoss,
                format!("stream closed after message {got} of {all} was delivered"),
            );
        }
    }

    /// The messages `try_recv` must have consumed over slots `seq0..seq1`: the one it
    /// delivers, if any; an error if it consumed a slot out of plan.
    fn plan_recv(&mut self, i: usize, seq0: i64, seq1: i64) -> Result<Option<u32>, String> {
        let stamped = self.check.stamped;
        let Some(rx) = self.cs[i].rx.as_mut() else {
            return Ok(None);
        };
        let mut deliver = None;
        for s in seq0..seq1 {
            let su = s as usize;
            if s > stamped || su >= self.plan.msg.len() {
                return Err(format!("consumed slot {s}, only {stamped} published"));
            }
            let m = self.plan.msg[su];
            if m < rx.expect_msg {
                rx.seen_partial = true;
                continue;
            }
            if m > rx.expect_msg || deliver.is_some() {
                let expect = rx.expect_msg;
                return Err(format!("slot {s} of message {m} while expecting {expect}"));
            }
            if self.plan.is_last(su) {
                deliver = Some(m);
                rx.expect_msg = m + 1;
            }
        }
        Ok(deliver)
    }

    /// One `try_recv` of the real framed consumer, checked against the plan: the slots it
    /// consumed, what it delivered, and its dropped count.
    pub(super) fn recv(&mut self, i: usize) {
        let (seed, cap) = (self.w.seed, self.w.capacity as i64);
        let Some(fc) = self.cs[i].fc.as_mut() else {
            return;
        };
        let seq0 = E::fc_next(fc);
        let r = E::fc_recv(fc, seed, &self.plan);
        let seq1 = E::fc_next(fc);
        let got_dropped = E::fc_dropped(fc);
        self.sched.work((3 * (seq1 - seq0).max(0) as u64).max(1));
        let planned = self.plan_recv(i, seq0, seq1);
        let committed_before = self.check.ledgers[i].committed_msg;
        for s in seq0..seq1 {
            let su = s as usize;
            let msg =
                (su < self.plan.msg.len() && self.plan.is_last(su)).then(|| self.plan.msg[su]);
            self.check.released(i, s, msg);
        }
        self.note(ActorId::Consumer(i), TraceCode::TryRecv, seq0, seq1, || {
            format!("try_recv: slots {seq0}..{seq1}")
        });
        let deliver = match planned {
            Ok(d) => d,
            Err(b) => return self.fail(Oracle::Framing, b),
        };
        if seq1 > seq0 && self.prod.state == PState::Ready && self.sched.waiting(ActorId::Producer)
        {
            self.sched.wake_now(ActorId::Producer);
        }
        let got = match r {
            Ok(got) => got,
            Err(TransportError::Ring(
                e @ (MultiProcessError::Closed | MultiProcessError::ProducerDead),
            )) => return self.consumer_end(i, e),
            Err(e) => return self.fail(Oracle::Framing, format!("try_recv: {e}")),
        };
        let got_id = got.map(|(id, _)| id);
        if got_id != deliver {
            return self.fail(
                Oracle::Framing,
                format!("try_recv over {seq0}..{seq1} gave {got_id:?}, expected {deliver:?}"),
            );
        }
        if let Some((m, whole)) = got {
            let frames = self.plan.frames[m as usize];
            if !self.delivered(i, m, frames, whole, committed_before) {
                return;
            }
            let slow = self.w.consumers[i].slow_us;
            if slow > 0 {
                let at = self.sched.now + slow;
                self.sched.wake_at(ActorId::Consumer(i), at);
            }
        } else if seq1 - seq0 < cap {
            if seq1 <= self.check.stamped {
                return self.fail(
                    Oracle::MissedPublish,
                    format!("{seq1} is published but try_recv stopped before it"),
                );
            }
            let at = self.sched.now + self.w.producer_check_us;
            self.sched.wake_at(ActorId::Consumer(i), at);
        }
        let want_dropped = self.cs[i].rx.as_ref().map_or(0, FramedRx::want_dropped);
        if got_dropped != want_dropped {
            self.fail(
                Oracle::FramedDroppedCount,
                format!("dropped_messages {got_dropped}, the oracle expects {want_dropped}"),
            );
        }
    }
}
