//! The oracles of the multi-producer seeds. Two sources of truth, kept apart from the
//! scheduler:
//!
//! * the producers' programs note what each call is about to claim (source, producer
//!   incarnation, first event index, slot count) and when it committed or gave the claim up;
//! * the scheduler's view of each producer's scheduling points tells *which* sequences a claim
//!   got (the next `SlotWrite`/`SlotStamp` after a `ClaimCas` at `s` is at `s` exactly when
//!   that compare-and-swap won) and when a real stamp (not a skip marker) executed (at the
//!   producer's next suspension after its `SlotStamp` point).
//!
//! From these: every delivered event must be the one its sequence's claim wrote, in each
//! source's order, the same at each sequence for every consumer; every skipped sequence must be
//! unstamped and claimed by a producer that gave it up or died, and `abandoned_slots` must count
//! each skip once; at `Closed` every stamped sequence after a consumer's start was delivered.

use super::super::oracle::{Failure, Oracle};
use super::super::sched::ActorId;
use std::collections::{BTreeMap, BTreeSet};

/// An event's identity: (source, producer incarnation, index among the source's events).
pub type EventId = (u64, u64, u64);

/// The check word of an event.
pub fn mp_check(id: EventId) -> u64 {
    let (s, inc, idx) = id;
    crate::rng::mix(s.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ inc.rotate_left(40) ^ idx ^ 0x6d70)
}

/// A claim a producer program is about to make (noted before the call).
#[derive(Debug, Clone, Copy)]
pub struct Intent {
    /// Producer id.
    pub source: u64,
    /// Producer incarnation (a new numbering epoch per restart).
    pub inc: u64,
    /// Index of the first event.
    pub idx: u64,
    /// Slots.
    pub n: i64,
}

/// A claim whose sequences are known.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The producer actor.
    pub actor: ActorId,
    /// First sequence.
    pub first: i64,
    /// What it carries.
    pub intent: Intent,
    /// Given up (`abort` or a dropped claim): its slots hold skip markers.
    pub aborted: bool,
    /// Its commit returned.
    pub committed: bool,
}

/// The scheduler's view of one producer actor.
#[derive(Debug, Default)]
struct ProducerView {
    source: u64,
    /// Its build returned (from then on it may be crashed).
    attached: bool,
    intent: Option<Intent>,
    /// The sequence of its last `ClaimCas` point not yet resolved.
    cas_at: Option<i64>,
    /// Index in `claims` of its unresolved claim.
    claim: Option<usize>,
    /// A real stamp point reached, executed at its next suspension.
    pending_stamp: Option<i64>,
}

/// One attach of a consumer.
#[derive(Debug, Clone)]
pub struct ConsumerInc {
    /// Consumer id.
    pub id: String,
    /// Attached to the ring the producers publish into (not one created after it closed).
    pub main: bool,
    /// First sequence it was due to read.
    pub start: i64,
    /// Every sequence below this one is validated (delivered or an allowed skip).
    pub checked: i64,
    /// Last delivered sequence.
    pub last: i64,
    /// Events delivered.
    pub delivered: u64,
    /// Last (incarnation, index) delivered per source.
    pub per_source: BTreeMap<u64, (u64, u64)>,
}

/// What kind of hole a consumer skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hole {
    /// A claim its producer gave up (skip markers).
    Marker,
    /// A claim whose producer died before stamping it.
    Dead,
}

/// The multi-producer ledger.
#[derive(Debug, Default)]
pub struct MpLedger {
    /// The first failure.
    pub failure: Option<Failure>,
    /// Epoch of the ring the producers publish into (the first one built).
    pub main_epoch: Option<u64>,
    /// Events published (commit returned) per source (index `source - 1`): the durable log a
    /// restarted producer continues from.
    pub done: Vec<u64>,
    /// Events each source must publish.
    pub targets: Vec<u64>,
    /// Incarnations started per source.
    pub incarnations: Vec<u64>,
    /// Every claim with known sequences.
    pub claims: Vec<Claim>,
    by_seq: BTreeMap<i64, usize>,
    /// Sequences whose real stamp executed.
    pub stamped: BTreeSet<i64>,
    producers: BTreeMap<ActorId, ProducerView>,
    /// Crashed actors.
    pub dead: BTreeSet<ActorId>,
    /// First delivery at each sequence.
    pub(super) order: BTreeMap<i64, EventId>,
    /// Every consumer attach.
    pub incs: Vec<ConsumerInc>,
    /// Committed cursor per id (main ring).
    pub(super) committed: BTreeMap<String, i64>,
    /// Sequences delivered per id (main ring).
    pub(super) delivered_by_id: BTreeMap<String, BTreeSet<i64>>,
    /// Ids that attached to the main ring.
    pub(super) seen: BTreeSet<String>,
    /// Ids reserved by the ring's creator.
    pub reserved: Vec<String>,
    /// The producer actor that created the main ring (its region handle owns the name).
    pub creator: Option<ActorId>,
    /// Sources whose producer detached after every source was done.
    pub finished: BTreeSet<u64>,
    /// Holes skipped so far, by kind (coverage).
    pub holes: [u64; 2],
}

impl MpLedger {
    /// A ledger for sources `1..=targets.len()`.
    pub fn new(targets: Vec<u64>, reserved: Vec<String>) -> MpLedger {
        MpLedger {
            done: vec![0; targets.len()],
            incarnations: vec![0; targets.len()],
            targets,
            reserved,
            ..MpLedger::default()
        }
    }

    /// Records a failure (the first one wins).
    pub fn fail(&mut self, oracle: Oracle, detail: String) {
        if self.failure.is_none() {
            self.failure = Some(Failure::new(oracle, detail));
        }
    }

    /// Whether every source published all its events.
    pub fn all_done(&self) -> bool {
        self.done.iter().zip(&self.targets).all(|(d, t)| d >= t)
    }

    /// Producer actor `actor` of `source` starts: returns its incarnation.
    pub fn producer_started(&mut self, actor: ActorId, source: u64) -> u64 {
        let i = (source - 1) as usize;
        self.incarnations[i] += 1;
        self.producers.insert(
            actor,
            ProducerView {
                source,
                ..ProducerView::default()
            },
        );
        self.incarnations[i] - 1
    }

    /// Whether `actor` is a producer.
    pub fn is_producer(&self, actor: ActorId) -> bool {
        self.producers.contains_key(&actor)
    }

    /// Whether producer `actor`'s build returned.
    pub fn producer_attached(&self, actor: ActorId) -> bool {
        self.producers.get(&actor).is_some_and(|p| p.attached)
    }

    /// The epoch a producer or consumer found: whether it is the main ring's.
    pub(super) fn is_main_epoch(&mut self, epoch: u64) -> bool {
        *self.main_epoch.get_or_insert(epoch) == epoch
    }

    /// Producer `actor`'s build returned a ring of `epoch`. A ring created after the main one
    /// closed is legitimate only once every source is done.
    pub fn attached_producer(&mut self, actor: ActorId, epoch: u64) -> bool {
        let main = self.is_main_epoch(epoch);
        let source = self.producers.get(&actor).map_or(0, |p| p.source);
        if !main && !self.all_done() {
            self.fail(
                Oracle::Loss,
                format!("producer {source} found the ring closed with events left to publish"),
            );
        }
        if let Some(p) = self.producers.get_mut(&actor) {
            p.attached = true;
        }
        main
    }

    /// The claim of `seq`, if any.
    pub(super) fn claim_of(&self, seq: i64) -> Option<Claim> {
        self.by_seq.get(&seq).map(|&c| self.claims[c].clone())
    }

    /// Producer `actor` is about to call a claim or publish of `intent`.
    pub fn intend(&mut self, actor: ActorId, intent: Intent) {
        if let Some(p) = self.producers.get_mut(&actor) {
            p.intent = Some(intent);
            p.claim = None;
            p.cas_at = None;
        }
    }

    /// The call of producer `actor` returned without a claim (full, timed out).
    pub fn no_claim(&mut self, actor: ActorId) {
        if let Some(p) = self.producers.get_mut(&actor) {
            p.intent = None;
            p.cas_at = None;
        }
    }

    /// Producer `actor`'s pending claim got sequences from `first` (seen by the scheduler or
    /// returned by `first_sequence`; idempotent).
    pub fn confirm(&mut self, actor: ActorId, first: i64) {
        let Some(p) = self.producers.get_mut(&actor) else {
            return;
        };
        if p.claim.is_some_and(|c| self.claims[c].first == first) {
            return;
        }
        let Some(intent) = p.intent else {
            return;
        };
        p.claim = Some(self.claims.len());
        p.cas_at = None;
        for s in first..first + intent.n {
            if let Some(&other) = self.by_seq.get(&s) {
                let o = &self.claims[other];
                let detail = format!(
                    "sequence {s} claimed by source {} (incarnation {}) and again by source {}",
                    o.intent.source, o.intent.inc, intent.source
                );
                self.fail(Oracle::DoubleClaim, detail);
            }
            self.by_seq.insert(s, self.claims.len());
        }
        self.claims.push(Claim {
            actor,
            first,
            intent,
            aborted: false,
            committed: false,
        });
    }

    /// Producer `actor` is about to give its claim up (abort or drop).
    pub fn aborting(&mut self, actor: ActorId) {
        if let Some(c) = self.producers.get(&actor).and_then(|p| p.claim) {
            self.claims[c].aborted = true;
        }
    }

    /// Producer `actor`'s publish or commit returned `last`: its events are published.
    pub fn committed(&mut self, actor: ActorId, last: i64) {
        let Some(p) = self.producers.get_mut(&actor) else {
            return;
        };
        let (claim, intent) = (p.claim.take(), p.intent.take());
        p.cas_at = None;
        let (Some(c), Some(intent)) = (claim, intent) else {
            self.fail(
                Oracle::UnexpectedError,
                format!("a publish returned {last} but no claim of it was seen"),
            );
            return;
        };
        self.claims[c].committed = true;
        let want = self.claims[c].first + intent.n - 1;
        if last != want {
            self.fail(
                Oracle::UnexpectedError,
                format!(
                    "a publish of {} returned {last}, its claim ends at {want}",
                    intent.n
                ),
            );
        }
        self.done[(intent.source - 1) as usize] = intent.idx + intent.n as u64;
    }

    /// Producer `actor` suspended at scheduling point `point` with `data` (`None`: another
    /// kind of suspension).
    pub fn producer_point(&mut self, actor: ActorId, point: Option<(u16, i64)>) {
        use myelon::backend::SchedPoint as P;
        let Some(p) = self.producers.get_mut(&actor) else {
            return;
        };
        if let Some(s) = p.pending_stamp.take() {
            self.stamped.insert(s);
        }
        let Some((code, data)) = point else {
            return;
        };
        if code == P::SegmentInit as u16 && self.creator.is_none() {
            self.creator = Some(actor);
        }
        if code == P::ClaimCas as u16 {
            p.cas_at = Some(data);
            return;
        }
        let slot_point = code == P::SlotWrite as u16 || code == P::SlotStamp as u16;
        if slot_point && p.cas_at == Some(data) {
            self.confirm(actor, data);
        }
        if code != P::SlotStamp as u16 {
            return;
        }
        let Some(p) = self.producers.get_mut(&actor) else {
            return;
        };
        if let Some(c) = p.claim.map(|c| &self.claims[c]) {
            if !c.aborted && data >= c.first && data < c.first + c.intent.n {
                p.pending_stamp = Some(data);
            }
        }
    }

    /// Producer `actor` crashed; returns whether it was inside a claim (claimed, or calling).
    pub fn producer_crashed(&mut self, actor: ActorId) -> bool {
        self.dead.insert(actor);
        self.producers.get_mut(&actor).is_some_and(|p| {
            p.pending_stamp = None;
            p.intent.is_some()
        })
    }

    /// Producer `actor` exited.
    pub fn producer_exited(&mut self, actor: ActorId) {
        self.producer_point(actor, None);
    }
}
