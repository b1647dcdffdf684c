//! The state checker: what the harness knows happened (what the producer published, what each
//! consumer id released, which processes it killed), and the checks of every real call's
//! outcome against it. The actors report here; the scheduler never looks in. The liveness
//! checks compare the producer with the independent reference model (`reference.rs`), fed
//! from this ledger only.

use super::oracles::{violated, Oracle, Verdict};
use crate::reference::{Fact, RefAlert, RefError, RefLiveness};
use crate::workload::{ConsumerSpec, LivenessSpec};
use myelon::MultiProcessError;

/// What the harness knows of one consumer id, across its incarnations.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// Whether the id holds an entry in the consumer table (required ids: from the start).
    pub in_table: bool,
    /// Whether a consumer with this id ever attached.
    pub attached_ever: bool,
    /// Last sequence it released.
    pub committed: i64,
    /// Whether its current process was killed and not restarted.
    pub dead: bool,
    /// The sequence its current incarnation must receive next.
    pub expected_next: i64,
    /// Whether a `Stalled` alert is open for it.
    pub alerted: bool,
    /// The sequence it held (leased, unreleased) when it was killed.
    pub lease_lost: Option<i64>,
    /// Framed: the last message whose last frame this id released (across incarnations).
    pub committed_msg: i64,
}

impl Ledger {
    fn new() -> Ledger {
        Ledger {
            in_table: false,
            attached_ever: false,
            committed: -1,
            dead: false,
            expected_next: 0,
            alerted: false,
            lease_lost: None,
            committed_msg: -1,
        }
    }
}

/// How the producer's stream ended, as far as a consumer's end-of-stream check cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Still publishing.
    Open,
    /// Closed by `Drop` (done, or after a liveness failure).
    Closed,
    /// The producer process was killed.
    Crashed,
}

/// The harness's ledger of the run and the checks against it.
#[derive(Debug)]
pub struct StateChecker {
    /// Last sequence published (stamped) by a real publish call.
    pub stamped: i64,
    /// Last sequence announced (the producer cursor).
    pub announced: i64,
    /// Per consumer of the workload.
    pub ledgers: Vec<Ledger>,
    /// Multi-slot publishes, `(first, last)`.
    pub batches: Vec<(i64, i64)>,
    /// The liveness reference model, when liveness is on.
    pub reference: Option<RefLiveness>,
    capacity: i64,
}

impl StateChecker {
    /// Nothing published, no consumer attached.
    pub fn new(consumers: usize, capacity: usize) -> StateChecker {
        StateChecker {
            stamped: -1,
            announced: -1,
            ledgers: vec![Ledger::new(); consumers],
            batches: Vec::new(),
            reference: None,
            capacity: capacity as i64,
        }
    }

    /// The ledger as the reference model sees it.
    pub fn facts(&self, specs: &[ConsumerSpec]) -> Vec<Fact> {
        specs
            .iter()
            .zip(&self.ledgers)
            .map(|(spec, l)| Fact {
                id: spec.id.clone(),
                required: spec.required,
                in_table: l.in_table,
                attached_ever: l.attached_ever,
                committed: l.committed,
                dead: l.dead,
            })
            .collect()
    }

    /// Liveness on: the required ids hold entries from now, and the reference starts.
    pub fn enable_liveness(&mut self, spec: LivenessSpec, specs: &[ConsumerSpec]) {
        for (l, s) in self.ledgers.iter_mut().zip(specs) {
            l.in_table |= s.required;
        }
        self.reference = Some(RefLiveness::new(spec, 0, &self.facts(specs)));
    }

    /// Whether every gating consumer released the previous occupant of `last`'s slot.
    pub fn room_for(&self, last: i64) -> bool {
        self.ledgers
            .iter()
            .all(|l| !l.in_table || l.committed >= last - self.capacity)
    }

    /// A claim (or publish) of `first..=last` succeeded; `next` is where it had to start.
    pub fn claimed(&self, next: i64, first: i64, last: i64) -> Verdict {
        if !self.room_for(last) {
            let who = self
                .ledgers
                .iter()
                .position(|l| l.in_table && l.committed < last - self.capacity);
            return violated(
                Oracle::Overwrite,
                format!("claimed {first}..={last} past a gating consumer ({who:?})"),
            );
        }
        if first != next {
            return violated(Oracle::Claim, format!("claimed {first}, expected {next}"));
        }
        Ok(())
    }

    /// A real publish call published `first..=last` (stamped and announced, as one call).
    pub fn published(&mut self, next: i64, first: i64, last: i64) -> Verdict {
        let verdict = self.claimed(next, first, last);
        if verdict.is_ok() {
            self.stamped = last;
            self.announced = last;
            if last > first {
                self.batches.push((first, last));
            }
        }
        verdict
    }

    /// A claim of up to `want` was refused (the ring is full).
    pub fn refused(&self, want: i64) -> Verdict {
        if self.room_for(want) {
            return violated(
                Oracle::SpuriousBlock,
                format!("claim of {want} refused though every gating consumer released it"),
            );
        }
        Ok(())
    }

    /// Consumer `i` (re)attached and starts at `start`: right after its committed cursor if
    /// it holds an entry, after the announced cursor otherwise.
    pub fn attached(&mut self, i: usize, id: &str, start: i64) -> Verdict {
        let l = &mut self.ledgers[i];
        let expected = if l.in_table {
            l.committed + 1
        } else {
            self.announced + 1
        };
        l.in_table = true;
        l.attached_ever = true;
        l.dead = false;
        l.committed = start - 1;
        l.expected_next = start;
        if start == expected {
            return Ok(());
        }
        let oracle = if start > expected {
            Oracle::Loss
        } else {
            Oracle::Duplicate
        };
        violated(
            oracle,
            format!("{id} attached at {start}, its committed cursor says {expected}"),
        )
    }

    /// Consumer `i` received `seq`, which held exactly what was written for it or not.
    pub fn received(&self, i: usize, seq: i64, exact: bool) -> Verdict {
        let expected = self.ledgers[i].expected_next;
        if seq != expected {
            return violated(Oracle::Order, format!("got {seq}, expected {expected}"));
        }
        if seq > self.stamped {
            return violated(
                Oracle::UnpublishedRead,
                format!("received {seq}, only {} published", self.stamped),
            );
        }
        if !exact {
            return violated(
                Oracle::TornRead,
                format!("slot {seq} did not hold the event written for {seq}"),
            );
        }
        Ok(())
    }

    /// Consumer `i` released everything up to `seq`; `msg` is the framed message whose last
    /// frame `seq` is, if it is one.
    pub fn released(&mut self, i: usize, seq: i64, msg: Option<u32>) {
        let l = &mut self.ledgers[i];
        l.committed = seq;
        l.expected_next = seq + 1;
        if let Some(m) = msg {
            l.committed_msg = i64::from(m);
        }
    }

    /// Consumer `i` found nothing at its next sequence (or a batch stopped before it).
    pub fn found_nothing(&self, i: usize) -> Verdict {
        let expected = self.ledgers[i].expected_next;
        if expected <= self.stamped {
            return violated(
                Oracle::MissedPublish,
                format!("{expected} is published but the consumer sees nothing"),
            );
        }
        Ok(())
    }

    /// Consumer `i`'s receive failed with `e` while the producer's stream is `end`.
    pub fn ended(&self, i: usize, id: &str, e: &MultiProcessError, end: StreamEnd) -> Verdict {
        let expected = self.ledgers[i].expected_next;
        let ok = match e {
            MultiProcessError::Closed => end == StreamEnd::Closed,
            MultiProcessError::ProducerDead => end == StreamEnd::Crashed,
            _ => return violated(Oracle::Corrupt, format!("consumer {id}: {e}")),
        };
        if !ok {
            return violated(
                Oracle::EndOfStream,
                format!("{e} while the producer is {end:?}"),
            );
        }
        if expected <= self.stamped {
            return violated(
                Oracle::Loss,
                format!("{e} at {expected} though {} was published", self.stamped),
            );
        }
        Ok(())
    }

    /// The producer finished (`done`: published everything) after `events` events.
    pub fn finished(&self, done: bool, events: u64) -> Verdict {
        if done && self.stamped + 1 != events as i64 {
            let s = self.stamped;
            return violated(
                Oracle::Loss,
                format!("producer done after publishing up to {s}"),
            );
        }
        Ok(())
    }

    /// What the reference says a managed claim of `want` at `now` must raise (`None`: liveness
    /// is off).
    pub fn expect_liveness(
        &mut self,
        now: u64,
        want: i64,
        specs: &[ConsumerSpec],
    ) -> Option<(Vec<RefAlert>, Option<RefError>)> {
        let free = self.room_for(want);
        let facts = self.facts(specs);
        let claim = (want, self.stamped, self.capacity);
        self.reference
            .as_mut()
            .map(|r| r.on_claim(now, free, claim, &facts))
    }

    /// The upper bound right after a claim of `want`: the required consumers that gate the
    /// blocked producer without progress and have no open `Stalled` alert from it, with since
    /// when (see [`RefLiveness::gating_since`]), and the bound. Empty outside a blocked episode
    /// and once the reference has failed (the producer stops with it).
    pub fn unalerted_stalls<'s>(
        &self,
        want: i64,
        specs: &'s [ConsumerSpec],
    ) -> (Vec<(&'s str, u64)>, u64) {
        let live = |r: &&RefLiveness| r.failed().is_none() && r.next_check().is_some();
        let Some(r) = self.reference.as_ref().filter(live) else {
            return (Vec::new(), 0);
        };
        let facts = self.facts(specs);
        let stalls = r
            .gating_since(want, self.capacity, &facts)
            .into_iter()
            .filter_map(|(id, since)| {
                let i = specs.iter().position(|s| s.id == id)?;
                (!self.ledgers[i].alerted).then_some((specs[i].id.as_str(), since))
            })
            .collect();
        (stalls, r.alert_bound())
    }
}
