//! The oracles of the actor simulation, kept apart from the scheduler: what every actor's
//! program reports (what it published, received, released) and what the scheduler sees
//! (stamps, parks, crashes), checked as it happens.

use super::sched::ActorId;
use std::collections::BTreeMap;
use std::fmt;

/// What a failure violated. Planted bugs name the one that must catch them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Oracle {
    /// A consumer incarnation skipped a sequence.
    Gap,
    /// A consumer incarnation received a sequence twice, or went backwards.
    Duplicate,
    /// An event's payload does not match its sequence (a torn or half-written slot).
    TornRead,
    /// A slot held another lap's event under a consumer that had not released it.
    Overwrite,
    /// A same-id rejoin did not resume right after the committed cursor (or a reserved
    /// consumer did not start at 0).
    RejoinStart,
    /// A consumer saw the end of the stream before receiving everything published.
    Loss,
    /// A public call returned an error the scenario cannot produce.
    UnexpectedError,
    /// A blocked receive parked although its event was already published.
    LostWakeup,
    /// Two live consumers held one id.
    IdInUse,
    /// Every live actor parked with no timer: nobody can ever run.
    Deadlock,
    /// The budget ran out: the producer or a consumer never got through.
    Wedge,
    /// An actor panicked.
    Panic,
    /// Multi-producer: two producers claimed (and wrote) one sequence.
    DoubleClaim,
    /// Multi-producer: a consumer received a source's events out of its order.
    SourceOrder,
    /// Multi-producer: two consumers received different events at one sequence.
    TotalOrder,
    /// Multi-producer: a consumer skipped a sequence that is no hole (unclaimed, or claimed by
    /// a live producer that did not give it up), or `abandoned_slots` miscounts its skips.
    BadHole,
}

impl Oracle {
    /// Every oracle, for listings.
    pub const ALL: [Oracle; 16] = [
        Oracle::Gap,
        Oracle::Duplicate,
        Oracle::TornRead,
        Oracle::Overwrite,
        Oracle::RejoinStart,
        Oracle::Loss,
        Oracle::UnexpectedError,
        Oracle::LostWakeup,
        Oracle::IdInUse,
        Oracle::Deadlock,
        Oracle::Wedge,
        Oracle::Panic,
        Oracle::DoubleClaim,
        Oracle::SourceOrder,
        Oracle::TotalOrder,
        Oracle::BadHole,
    ];

    /// Short name (as printed, and as mutants name them).
    pub fn name(self) -> &'static str {
        match self {
            Oracle::Gap => "gap",
            Oracle::Duplicate => "duplicate",
            Oracle::TornRead => "torn-read",
            Oracle::Overwrite => "overwrite",
            Oracle::RejoinStart => "rejoin-start",
            Oracle::Loss => "loss",
            Oracle::UnexpectedError => "unexpected-error",
            Oracle::LostWakeup => "lost-wakeup",
            Oracle::IdInUse => "id-in-use",
            Oracle::Deadlock => "deadlock",
            Oracle::Wedge => "wedge",
            Oracle::Panic => "panic",
            Oracle::DoubleClaim => "double-claim",
            Oracle::SourceOrder => "source-order",
            Oracle::TotalOrder => "total-order",
            Oracle::BadHole => "hole",
        }
    }

    /// The oracle of a printed name.
    pub fn parse(s: &str) -> Option<Oracle> {
        Oracle::ALL.into_iter().find(|o| o.name() == s)
    }
}

impl fmt::Display for Oracle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One oracle failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What was violated.
    pub oracle: Oracle,
    /// What was seen.
    pub detail: String,
}

impl Failure {
    /// A failure of `oracle`.
    pub fn new(oracle: Oracle, detail: impl Into<String>) -> Failure {
        Failure {
            oracle,
            detail: detail.into(),
        }
    }

    /// Encodes the failure as one string (the scheduler's error channel).
    pub fn encode(&self) -> String {
        format!("{}|{}", self.oracle.name(), self.detail)
    }

    /// Decodes [`Failure::encode`]'s string (anything else is a harness panic).
    pub fn decode(s: &str) -> Failure {
        match s
            .split_once('|')
            .and_then(|(o, d)| Oracle::parse(o).map(|o| (o, d)))
        {
            Some((oracle, d)) => Failure::new(oracle, d),
            None => Failure::new(Oracle::Panic, s),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.oracle, self.detail)
    }
}

/// The payload check word of event `seq`.
pub fn check_word(seq: u64) -> u64 {
    crate::rng::mix(seq ^ 0x6d79_656c_6f6e)
}

/// One attach of a consumer id: where it started and what it received.
#[derive(Debug, Clone)]
pub struct Incarnation {
    /// Consumer id.
    pub id: String,
    /// Ring generation it attached to.
    pub gen: usize,
    /// The actor running it.
    pub actor: ActorId,
    /// First sequence it was due to read.
    pub start: i64,
    /// Next sequence it expects (one past the last received).
    pub next: i64,
    /// Whether its program saw the end of the stream.
    pub closed: bool,
}

/// Everything the programs and the scheduler report, and the checks on it.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Last sequence the producer's calls returned as published.
    pub published: i64,
    /// Highest sequence whose stamp store has executed.
    pub stamped: i64,
    /// A stamp point seen but not yet executed (the producer's next suspension executes it).
    pub pending_stamp: Option<(ActorId, i64)>,
    /// The producer actor.
    pub producer: Option<ActorId>,
    /// The producer finished (closed the ring).
    pub producer_done: bool,
    /// Ring generation: 0, then one more each time a crashed producer is restarted (the
    /// restart reclaims the name and creates a new ring). `published`/`stamped` are the
    /// current generation's; earlier ones are archived in `gens`.
    pub gen: usize,
    /// Archived generations: (epoch, published, stamped) of each crashed producer's ring.
    pub gens: Vec<(Option<u64>, i64, i64)>,
    /// Epoch of the current generation's ring, once its producer built it.
    pub epoch: Option<u64>,
    /// Every incarnation, in attach order.
    pub incarnations: Vec<Incarnation>,
    /// Committed cursor per (generation, id) (last sequence a program saw released).
    pub released: BTreeMap<(usize, String), i64>,
    /// Ids the current generation's producer reserved (they start at 0 on first attach).
    pub reserved: Vec<String>,
    /// Reservations of archived generations.
    pub old_reserved: BTreeMap<usize, Vec<String>>,
    /// Unclaimed discovery-prefix reservations per generation (prefix seeds): any consumer of
    /// the prefix may claim one (it starts at 0), whatever its id.
    pub prefix_slots: BTreeMap<usize, usize>,
    /// Consumers that died while attaching, per generation: each may have half-claimed a prefix
    /// slot, which then waits for its id's rejoin and no other consumer can take.
    pub attach_crashes: BTreeMap<usize, usize>,
    /// Ids required by liveness: enabling it (before anything is published) reserves them at
    /// 0 unless they are attached, so a resumed attach of one may start at 0 at any time.
    pub liveness_required: Vec<String>,
    /// Blocked receives in progress: actor → (the sequence it waits for, its generation).
    pub waiting: BTreeMap<ActorId, (i64, usize)>,
    /// The first failure a program reported.
    pub failure: Option<Failure>,
    /// (Generation, id) of each live (attached, not crashed, not left) incarnation, and its
    /// actor.
    pub live: BTreeMap<(usize, String), ActorId>,
    /// Layers 1–2: first frame of each message (index: message number), recorded before the
    /// producer starts publishing it.
    pub msg_first_frame: Vec<i64>,
    /// Layers 1–2: messages whose publish call returned.
    pub msg_published: u64,
    /// Layers 1–2: every incarnation.
    pub msg_incarnations: Vec<MsgIncarnation>,
    /// Layers 1–2: last message delivered to any incarnation of an id.
    pub msg_last: BTreeMap<String, u64>,
    /// Anonymous consumers attached now, per actor: (generation, generated label). The ledger
    /// keys them by actor and attach (`~a3.0`), never by label: the label embeds a
    /// process-wide counter that differs between runs sharing a process; it is used only to
    /// find the consumer's entry in `Producer::consumers()`.
    pub anon_labels: BTreeMap<ActorId, (usize, String)>,
    /// Labels of anonymous consumers of the current generation that died attached and whose
    /// entry the producer has not been seen to free yet.
    pub dead_anonymous: Vec<String>,
}

/// One attach of a framed or typed consumer.
#[derive(Debug, Clone)]
pub struct MsgIncarnation {
    /// Consumer id.
    pub id: String,
    /// The actor running it.
    pub actor: ActorId,
    /// First frame it was due to read.
    pub start_frame: i64,
    /// Last message it received.
    pub last: Option<u64>,
}

impl Ledger {
    /// A ledger before anything happened.
    pub fn new() -> Ledger {
        Ledger {
            published: -1,
            stamped: -1,
            ..Ledger::default()
        }
    }

    /// Records a failure (the first one wins).
    pub fn fail(&mut self, f: Failure) {
        if self.failure.is_none() {
            self.failure = Some(f);
        }
    }

    /// A consumer attached: checks where it starts against its id's history.
    pub fn attached(
        &mut self,
        id: &str,
        actor: ActorId,
        start: i64,
        resumed: bool,
        gen: usize,
    ) -> usize {
        let key = (gen, id.to_string());
        let reserved = if gen == self.gen {
            self.reserved.iter().any(|r| r == id)
        } else {
            self.old_reserved
                .get(&gen)
                .is_some_and(|v| v.iter().any(|r| r == id))
        };
        let slots = self.prefix_slots.get(&gen).copied();
        let expected = if let Some(&c) = self.released.get(&key) {
            Some(c + 1)
        } else if let Some(free) = slots {
            // Prefix reservations go to whichever consumers of the prefix come first: a
            // resumed attach at 0 took one; a fresh one found them all taken.
            if resumed && start == 0 && free > 0 {
                self.prefix_slots.insert(gen, free - 1);
                Some(0)
            } else if !resumed
                && (free == 0 || free <= self.attach_crashes.get(&gen).copied().unwrap_or(0))
            {
                None
            } else {
                Some(0)
            }
        } else if reserved {
            Some(0)
        } else {
            None
        };
        let liveness_reservation = self.liveness_required.iter().any(|r| r == id) && start == 0;
        if resumed && expected.is_none() && !liveness_reservation {
            self.fail(Failure::new(
                Oracle::RejoinStart,
                format!("{id} resumed an entry at {start} that no incarnation of it ever attached"),
            ));
        }
        // The committed cursor of a fresh attach is the one before its start.
        self.released.insert(key, start - 1);
        if let Some(want) = expected {
            if start != want {
                self.fail(Failure::new(
                    Oracle::RejoinStart,
                    format!("{id} attached at {start}, its committed cursor says {want} (resumed={resumed})"),
                ));
            }
        }
        if gen == self.gen {
            self.reserved.retain(|r| r != id);
        } else if let Some(v) = self.old_reserved.get_mut(&gen) {
            v.retain(|r| r != id);
        }
        self.live.insert((gen, id.to_string()), actor);
        self.incarnations.push(Incarnation {
            id: id.to_string(),
            gen,
            actor,
            start,
            next: start,
            closed: false,
        });
        self.incarnations.len() - 1
    }

    /// An anonymous consumer attached (key `key`, generated label `label`): it must be a fresh
    /// registration at the live tail of its ring: after everything announced when its attach
    /// began (`floor`: the generation and last published sequence then), and not past
    /// anything stamped. Its stream is then checked like any incarnation's.
    #[allow(clippy::too_many_arguments)]
    pub fn attached_anonymous(
        &mut self,
        key: &str,
        label: &str,
        actor: ActorId,
        start: i64,
        resumed: bool,
        gen: usize,
        floor: (usize, i64),
    ) -> usize {
        let stamped = self.gen_counts(gen).1;
        if resumed {
            self.fail(Failure::new(
                Oracle::RejoinStart,
                format!("anonymous {key} ({label}) resumed an entry at {start}"),
            ));
        } else if floor.0 == gen && start <= floor.1 {
            self.fail(Failure::new(
                Oracle::RejoinStart,
                format!(
                    "anonymous {key} attached at {start}, behind the live tail ({} was published before it attached)",
                    floor.1
                ),
            ));
        } else if start > stamped + 1 {
            self.fail(Failure::new(
                Oracle::Loss,
                format!("anonymous {key} attached at {start}, past everything stamped ({stamped})"),
            ));
        }
        self.anonymous_label(actor, gen, label);
        self.released.insert((gen, key.to_string()), start - 1);
        self.live.insert((gen, key.to_string()), actor);
        self.incarnations.push(Incarnation {
            id: key.to_string(),
            gen,
            actor,
            start,
            next: start,
            closed: false,
        });
        self.incarnations.len() - 1
    }

    /// `actor` attached anonymously to generation `gen`'s ring under the generated `label`
    /// (kept only for the current ring: a dead ring's entries go with it).
    pub fn anonymous_label(&mut self, actor: ActorId, gen: usize, label: &str) {
        if gen == self.gen {
            self.anon_labels.insert(actor, (gen, label.to_string()));
        }
    }

    /// The anonymous consumer of `actor` is about to leave by `Drop` (its entry goes with it,
    /// so a crash inside the drop is not a death that leaves an entry behind).
    pub fn anonymous_leaving(&mut self, actor: ActorId) {
        self.anon_labels.remove(&actor);
    }

    /// `actor` crashed: if it held an anonymous consumer of the current ring, that entry is
    /// now dead and owed nothing; the producer must free it. Returns whether it did hold one.
    pub fn anonymous_died(&mut self, actor: ActorId) -> bool {
        match self.anon_labels.remove(&actor) {
            Some((gen, label)) => {
                if gen == self.gen {
                    self.dead_anonymous.push(label);
                }
                true
            }
            None => false,
        }
    }

    /// The producer's table (`Producer::consumers()`, ids only) lacks these dead anonymous
    /// labels: it freed their entries. Returns how many.
    pub fn reaped(&mut self, table: &[String]) -> usize {
        let before = self.dead_anonymous.len();
        self.dead_anonymous.retain(|l| table.contains(l));
        before - self.dead_anonymous.len()
    }

    /// The generation of the ring with `epoch` (the current one if its producer has not
    /// recorded its epoch yet: only the newest ring can be that young).
    pub fn gen_of(&self, epoch: u64) -> usize {
        self.gens
            .iter()
            .position(|(e, _, _)| *e == Some(epoch))
            .unwrap_or(self.gen)
    }

    /// The producer of the current generation crashed; a new one will create a new ring.
    pub fn producer_restarted(&mut self, reserved: Vec<String>) {
        self.gens
            .push((self.epoch.take(), self.published, self.stamped));
        self.old_reserved
            .insert(self.gen, std::mem::replace(&mut self.reserved, reserved));
        self.gen += 1;
        self.published = -1;
        self.stamped = -1;
        self.pending_stamp = None;
        // The dead ring's entries went with it.
        self.dead_anonymous.clear();
    }

    /// (published, stamped) of generation `gen`.
    pub fn gen_counts(&self, gen: usize) -> (i64, i64) {
        if gen == self.gen {
            (self.published, self.stamped)
        } else {
            (self.gens[gen].1, self.gens[gen].2)
        }
    }

    /// Incarnation `k` got `ProducerDead`: its generation's producer must have crashed, and it
    /// must have received everything that producer stamped.
    pub fn producer_dead(&mut self, k: usize) {
        let inc = &self.incarnations[k];
        let (gen, next, start, id) = (inc.gen, inc.next, inc.start, inc.id.clone());
        if gen == self.gen {
            self.fail(Failure::new(
                Oracle::UnexpectedError,
                format!("{id}: ProducerDead from a live producer"),
            ));
            return;
        }
        let stamped = self.gens[gen].2;
        if start <= stamped && next <= stamped {
            self.fail(Failure::new(
                Oracle::Loss,
                format!("{id}: ProducerDead at {next}, its producer had stamped {stamped}"),
            ));
        }
        self.live.remove(&(gen, id));
    }

    /// Consumer `id` left normally: it detached (its next attach is a fresh one at the live
    /// tail) or kept its registration (its next attach resumes after its committed cursor).
    pub fn left(&mut self, id: &str, kept: bool) {
        let gen = self
            .incarnations
            .iter()
            .rev()
            .find(|i| i.id == id)
            .map_or(self.gen, |i| i.gen);
        self.live.remove(&(gen, id.to_string()));
        if !kept {
            self.released.remove(&(gen, id.to_string()));
        }
    }

    /// Someone registered `id` afresh and detached: no reservation or cursor is left for it.
    pub fn forget_id(&mut self, id: &str) {
        self.reserved.retain(|r| r != id);
        self.liveness_required.retain(|r| r != id);
        self.released.remove(&(self.gen, id.to_string()));
    }

    /// A consumer actor that had not attached yet crashed (it may have been inside `register`).
    pub fn crashed_attaching(&mut self) {
        // It may have been attaching to any ring still under the name — the current one, or an
        // older one whose producer died and whose segment is not reclaimed yet (found at seed
        // 0x50823d7: a crash half-claimed a prefix slot of the dead ring while the ledger had
        // moved on to the restarted one). Count it against every generation.
        for g in 0..=self.gen {
            *self.attach_crashes.entry(g).or_insert(0) += 1;
        }
    }

    /// The actor of a live incarnation crashed or exited.
    pub fn gone(&mut self, actor: ActorId) {
        self.live.retain(|_, a| *a != actor);
    }

    /// Incarnation `k` received event (`seq`, payload `value`/`check`).
    pub fn received(&mut self, k: usize, seq: i64, value: u64, check: u64) {
        let inc = &mut self.incarnations[k];
        let id = inc.id.clone();
        let f = if value != seq as u64 {
            Some(Failure::new(
                Oracle::Overwrite,
                format!("{id} read sequence {seq} from a slot holding event {value}"),
            ))
        } else if check != check_word(value) {
            Some(Failure::new(
                Oracle::TornRead,
                format!("{id} read a torn event at {seq}"),
            ))
        } else if seq > inc.next {
            Some(Failure::new(
                Oracle::Gap,
                format!("{id} expected {} and received {seq}", inc.next),
            ))
        } else if seq < inc.next {
            Some(Failure::new(
                Oracle::Duplicate,
                format!("{id} expected {} and received {seq} again", inc.next),
            ))
        } else {
            inc.next = seq + 1;
            None
        };
        if let Some(f) = f {
            self.fail(f);
        }
    }

    /// Incarnation `k`'s program saw its release of everything below `next` complete.
    pub fn released_through(&mut self, k: usize) {
        let inc = &self.incarnations[k];
        self.released
            .insert((inc.gen, inc.id.clone()), inc.next - 1);
    }

    /// Incarnation `k` saw the end of the stream: it must have received everything.
    pub fn closed(&mut self, k: usize) {
        let published = self.gen_counts(self.incarnations[k].gen).0;
        let inc = &mut self.incarnations[k];
        inc.closed = true;
        if inc.next <= published && inc.start <= published {
            let f = Failure::new(
                Oracle::Loss,
                format!(
                    "{} got Closed at {} but {} were published",
                    inc.id,
                    inc.next,
                    published + 1
                ),
            );
            self.fail(f);
        }
    }

    /// Layers 1–2: the producer is about to publish message `n` from frame `first`.
    pub fn msg_begin(&mut self, n: u64, first: i64) {
        let n = n as usize;
        if n == self.msg_first_frame.len() {
            self.msg_first_frame.push(first);
        } else if n < self.msg_first_frame.len() {
            // A retry (an aborted claim or a timed-out publish) starts where the first try did.
            self.msg_first_frame[n] = first;
        }
    }

    /// Layers 1–2: the publish call of message `n` returned.
    pub fn msg_published(&mut self, n: u64) {
        self.msg_published = self.msg_published.max(n + 1);
    }

    /// The first message starting at or after frame `f`.
    fn first_message_from(&self, f: i64) -> u64 {
        self.msg_first_frame.partition_point(|&x| x < f) as u64
    }

    /// Layers 1–2: a consumer attached, due to read frame `start_frame` first.
    pub fn msg_attached(&mut self, id: &str, actor: ActorId, start_frame: i64) -> usize {
        self.msg_incarnations.push(MsgIncarnation {
            id: id.to_string(),
            actor,
            start_frame,
            last: None,
        });
        self.msg_incarnations.len() - 1
    }

    /// Layers 1–2: incarnation `k` received message `n`. The first message of an incarnation
    /// is the first one that starts at or after the frame it attached at (a join or rejoin in
    /// the middle of a message skips the rest of it; one that resumes on an unreleased message
    /// gets it again); then one by one.
    pub fn msg_received(&mut self, k: usize, n: u64, dropped: u64) {
        let inc = &self.msg_incarnations[k];
        let id = inc.id.clone();
        let want = match inc.last {
            Some(l) => l + 1,
            None => self.first_message_from(inc.start_frame),
        };
        if n != want {
            let oracle = if n > want {
                Oracle::Gap
            } else {
                Oracle::Duplicate
            };
            let f = Failure::new(
                oracle,
                format!(
                    "{id} received message {n}, expected {want} (attached at frame {}, last {:?}, {dropped} dropped)",
                    inc.start_frame, inc.last
                ),
            );
            self.fail(f);
            return;
        }
        self.msg_incarnations[k].last = Some(n);
        self.msg_last.insert(id, n);
    }

    /// Layers 1–2: incarnation `k` saw the end of the stream: it must have received up to the
    /// last message published, unless it attached after that message began.
    pub fn msg_closed(&mut self, k: usize) {
        let Some(last_pub) = self.msg_published.checked_sub(1) else {
            return;
        };
        let first_frame_of_last = self.msg_first_frame[last_pub as usize];
        let inc = &self.msg_incarnations[k];
        let lost = match inc.last {
            Some(l) => l < last_pub,
            None => inc.start_frame <= first_frame_of_last,
        };
        if lost {
            let f = Failure::new(
                Oracle::Loss,
                format!(
                    "{} got Closed after message {:?} of {} (attached at frame {})",
                    inc.id,
                    inc.last,
                    last_pub + 1,
                    inc.start_frame
                ),
            );
            self.fail(f);
        }
    }
}
