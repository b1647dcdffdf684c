//! The consumer side of the multi-producer ledger: attaches, deliveries, skips, end of stream.

use super::oracle::{mp_check, ConsumerInc, EventId, Hole, MpLedger};
use crate::actors::oracle::Oracle;

impl MpLedger {
    /// Consumer `id` attached to a ring of `epoch` at `start` (`resumed`: it took an entry
    /// over). A resumed attach starts after its id's committed cursor, past nothing but what
    /// an earlier incarnation received or may have skipped; a reserved id's first attach
    /// resumes at 0; a named id never attaches afresh twice.
    pub fn attached(&mut self, id: &str, start: i64, resumed: bool, epoch: u64) -> usize {
        let main = self.is_main_epoch(epoch);
        if main {
            self.check_start(id, start, resumed);
            self.committed.insert(id.to_string(), start - 1);
        }
        self.incs.push(ConsumerInc {
            id: id.to_string(),
            main,
            start,
            checked: start,
            last: start - 1,
            delivered: 0,
            per_source: Default::default(),
        });
        self.incs.len() - 1
    }

    fn check_start(&mut self, id: &str, start: i64, resumed: bool) {
        let reserved_first = self.reserved.iter().any(|r| r == id) && !self.seen.contains(id);
        let low = match self.committed.get(id) {
            Some(&c) => Some(c + 1),
            None if reserved_first => Some(0),
            None => None,
        };
        self.seen.insert(id.to_string());
        match (resumed, low) {
            (true, None) => self.fail(
                Oracle::RejoinStart,
                format!("{id} resumed an entry at {start} that none of its attaches made"),
            ),
            (false, Some(l)) => self.fail(
                Oracle::RejoinStart,
                format!("{id} attached afresh at {start}, its entry says {l}"),
            ),
            (true, Some(l)) if start < l => self.fail(
                Oracle::RejoinStart,
                format!(
                    "{id} resumed at {start}, before its committed cursor {}",
                    l - 1
                ),
            ),
            (true, Some(l)) => {
                // A crash inside a call may come after a release the program never saw: of
                // an event it received, or of holes it skipped.
                for s in l..start {
                    let got = self.delivered_by_id.get(id).is_some_and(|d| d.contains(&s));
                    if !got {
                        self.skip(id, s);
                    }
                }
            }
            (false, None) => {}
        }
    }

    /// Incarnation `k` received event `ev` (with its check word) at `seq`.
    pub fn received(&mut self, k: usize, seq: i64, ev: EventId, check: u64) {
        let inc = &self.incs[k];
        let id = inc.id.clone();
        if !inc.main {
            return self.fail(
                Oracle::UnexpectedError,
                format!("{id} received {ev:?} at {seq} from a ring nobody publishes into"),
            );
        }
        if check != mp_check(ev) {
            return self.fail(Oracle::TornRead, format!("{id} read a torn event at {seq}"));
        }
        if seq <= inc.last {
            let last = inc.last;
            return self.fail(
                Oracle::Duplicate,
                format!("{id} received {seq} after {last}"),
            );
        }
        for s in inc.checked..seq {
            self.skip(&id, s);
        }
        self.check_order(k, seq, ev);
        self.check_claim(&id, seq, ev);
        let inc = &mut self.incs[k];
        inc.checked = seq + 1;
        inc.last = seq;
        inc.delivered += 1;
        self.delivered_by_id.entry(id).or_default().insert(seq);
    }

    /// Per-source order for incarnation `k`, and one total order for every consumer.
    fn check_order(&mut self, k: usize, seq: i64, ev: EventId) {
        let (source, pinc, idx) = ev;
        let inc = &mut self.incs[k];
        let id = inc.id.clone();
        let prev = inc.per_source.insert(source, (pinc, idx));
        if let Some(p) = prev.filter(|p| *p >= (pinc, idx)) {
            let d = format!(
                "{id} received source {source}'s {:?} after {p:?}",
                (pinc, idx)
            );
            self.fail(Oracle::SourceOrder, d);
        }
        let first = *self.order.entry(seq).or_insert(ev);
        if first != ev {
            let d = format!("{id} received {ev:?} at {seq}, another consumer {first:?}");
            self.fail(Oracle::TotalOrder, d);
        }
    }

    /// A delivered event is the one its sequence's claim wrote, and it was stamped.
    fn check_claim(&mut self, id: &str, seq: i64, ev: EventId) {
        let Some(c) = self.claim_of(seq) else {
            return self.fail(
                Oracle::Overwrite,
                format!("{id} received {ev:?} at {seq}, which no producer claimed"),
            );
        };
        let i = c.intent;
        let want = (i.source, i.inc, i.idx + (seq - c.first) as u64);
        let detail = if c.aborted {
            format!("{id} received {ev:?} at {seq}, a claim given up")
        } else if want != ev {
            format!("{id} received {ev:?} at {seq}, its claim wrote {want:?}")
        } else if !self.stamped.contains(&seq) {
            format!("{id} received {ev:?} at {seq} before its stamp")
        } else {
            return;
        };
        self.fail(Oracle::Overwrite, detail);
    }

    /// Consumer `id` went past `seq` without receiving it: an allowed hole, or a failure.
    fn skip(&mut self, id: &str, seq: i64) {
        if self.stamped.contains(&seq) {
            return self.fail(
                Oracle::Loss,
                format!("{id} skipped {seq}, which was published"),
            );
        }
        let hole = match self.claim_of(seq) {
            None => Err(format!("{id} skipped {seq}, which no producer claimed")),
            Some(c) if c.aborted => Ok(Hole::Marker),
            Some(c) if self.dead.contains(&c.actor) => Ok(Hole::Dead),
            Some(c) => Err(format!(
                "{id} skipped {seq}, claimed by live source {} (incarnation {})",
                c.intent.source, c.intent.inc
            )),
        };
        match hole {
            Ok(h) => self.holes[h as usize] += 1,
            Err(d) => self.fail(Oracle::BadHole, d),
        }
    }

    /// Incarnation `k`'s call returned (or failed) with the consumer at `next` after
    /// `abandoned` skips in all: validates what it went past, and the skip count.
    pub fn after_call(&mut self, k: usize, next: i64, abandoned: u64) {
        let inc = &self.incs[k];
        if !inc.main {
            return;
        }
        let (id, from) = (inc.id.clone(), inc.checked);
        for s in from..next {
            self.skip(&id, s);
        }
        let inc = &mut self.incs[k];
        inc.checked = inc.checked.max(next);
        let passed = (next - inc.start) as u64;
        if passed != inc.delivered + abandoned {
            let d = format!(
                "{id} went from {} to {next}: {} delivered, but abandoned_slots = {abandoned}",
                inc.start, inc.delivered
            );
            self.fail(Oracle::BadHole, d);
        }
        self.committed.insert(id, next - 1);
    }

    /// Incarnation `k` saw `Closed` at `next`: every stamped sequence from its start on was
    /// passed (so delivered: skipped stamped ones already failed).
    pub fn closed(&mut self, k: usize, next: i64, abandoned: u64) {
        self.after_call(k, next, abandoned);
        let inc = &self.incs[k];
        if !inc.main {
            return;
        }
        if let Some(s) = self.stamped.range(inc.start.max(next)..).next() {
            let d = format!("{} got Closed at {next}, but {s} was published", inc.id);
            self.fail(Oracle::Loss, d);
        }
    }
}
