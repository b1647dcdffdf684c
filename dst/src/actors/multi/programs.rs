//! What the actors of a multi-producer seed do: producers publish their own numbered events
//! through every publish and claim flavour of `MultiProducer`; named consumers read until
//! `Closed`. Programs report to the [`MpLedger`] between calls only, so a crash inside a call
//! leaves the ledger as the process's own memory would be.

use super::oracle::{mp_check, EventId, Intent, MpLedger};
use super::MpPlan;
use crate::actors::coverage::{Coverage, Path};
use crate::actors::oracle::{Failure, Oracle};
use crate::actors::sched::{ActorId, Exit};
use crate::rng::Rng;
use myelon::backend::{RingBackend, SimBackend};
use myelon::{
    AutoWaitStrategy, Consumer, CoordinationMode, MultiProcessError, MultiProducer,
    MultiProducerBuilder, SharedDisruptorBuilder, Sourced,
};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

myelon::shm_event! {
    /// A multi-producer event: its producer incarnation, its index among its source's events,
    /// and a check word of both and the source.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct MpEv {
        /// Producer incarnation (its numbering epoch).
        pub inc: u64,
        /// Index among the source's events.
        pub idx: u64,
        /// `mp_check((source, inc, idx))`.
        pub check: u64,
    }
}

/// State every program of a multi-producer seed shares.
#[derive(Debug, Clone)]
pub struct MpShared {
    /// The ledger.
    pub ledger: Rc<RefCell<MpLedger>>,
    /// Paths reached.
    pub coverage: Rc<RefCell<Coverage>>,
    /// Ring name.
    pub ring: String,
    /// Ring capacity.
    pub capacity: usize,
    /// The seed's plan.
    pub plan: MpPlan,
}

impl MpShared {
    fn cover(&self, p: Path) {
        self.coverage.borrow_mut().hit(p);
    }

    fn fail(&self, oracle: Oracle, detail: String) -> Exit {
        let f = Failure::new(oracle, detail);
        self.ledger.borrow_mut().fail(f.oracle, f.detail.clone());
        Exit::Failed(f.encode())
    }

    fn failed(&self) -> bool {
        self.ledger.borrow().failure.is_some()
    }
}

fn fill(e: &mut MpEv, source: u64, inc: u64, idx: u64) {
    *e = MpEv {
        inc,
        idx,
        check: mp_check((source, inc, idx)),
    };
}

/// Attaches producer `source` (retrying while the ring is being created or the registry lock
/// is busy).
fn build(
    sh: &MpShared,
    source: u64,
    backend: &SimBackend,
) -> Result<MultiProducer<MpEv, SimBackend>, Exit> {
    loop {
        let mut b = MultiProducerBuilder::<MpEv, SimBackend>::with_backend(
            backend.clone(),
            &sh.ring,
            sh.capacity,
        )
        .with_source_id(source)
        .with_attach_timeout(Duration::from_millis(2));
        if sh.plan.reserved {
            b = b
                .with_consumer_ids(sh.plan.consumers.clone())
                .with_coordination(CoordinationMode::BufferUntilConsumers);
        }
        match b.build(MpEv::default) {
            Ok(p) => return Ok(p),
            Err(MultiProcessError::NotReady { .. } | MultiProcessError::RegistryBusy { .. }) => {
                backend.sleep(Duration::from_micros(10));
            }
            Err(e) => {
                return Err(sh.fail(Oracle::UnexpectedError, format!("producer {source}: {e}")))
            }
        }
    }
}

/// Producer `source`: attaches (the first creates the ring), publishes its events from the
/// durable count on (a restart is a new incarnation: a new numbering epoch), waits until every
/// source is done, and detaches (the last one closes the ring).
pub fn producer(sh: MpShared, source: u64, me: ActorId, backend: SimBackend, mut rng: Rng) -> Exit {
    let inc = sh.ledger.borrow_mut().producer_started(me, source);
    let mut p = match build(&sh, source, &backend) {
        Ok(p) => p,
        Err(exit) => return exit,
    };
    sh.ledger.borrow_mut().attached_producer(me, p.ring_epoch());
    let i = (source - 1) as usize;
    let target = sh.plan.events[i];
    loop {
        let done = sh.ledger.borrow().done[i];
        if done >= target || sh.failed() {
            break;
        }
        let k = rng.range(1, sh.plan.max_batch as u64).min(target - done);
        let intent = Intent {
            source,
            inc,
            idx: done,
            n: k as i64,
        };
        if let Err(exit) = one_call(&sh, &mut p, me, &backend, &mut rng, intent) {
            return exit;
        }
    }
    // Detaching before every source is done could close the ring on a dead producer's
    // remaining events: wait for them (a job's producers stay until the job is done).
    while !may_detach(&sh, me) && !sh.failed() {
        backend.sleep(Duration::from_micros(20));
    }
    drop(p);
    sh.ledger.borrow_mut().finished.insert(source);
    Exit::Done
}

/// Whether producer `me` may detach: every source is done (any of them, the creator
/// included, may go first).
fn may_detach(sh: &MpShared, _me: ActorId) -> bool {
    sh.ledger.borrow().all_done()
}

/// One publish or claim call of `intent`, chosen by the seed.
fn one_call(
    sh: &MpShared,
    p: &mut MultiProducer<MpEv, SimBackend>,
    me: ActorId,
    backend: &SimBackend,
    rng: &mut Rng,
    intent: Intent,
) -> Result<(), Exit> {
    let Intent {
        source, inc, idx, ..
    } = intent;
    let flavour = rng.below(6);
    let one = Intent { n: 1, ..intent };
    sh.ledger
        .borrow_mut()
        .intend(me, if flavour < 2 { one } else { intent });
    let r = match flavour {
        0 => p.publish(|e| fill(e, source, inc, idx)).map(Some),
        1 => p.try_publish(|e| fill(e, source, inc, idx)),
        2 => p
            .publish_batch(intent.n as usize, |j, e| {
                fill(e, source, inc, idx + j as u64)
            })
            .map(Some),
        3 | 4 => {
            let t = rng
                .chance(50)
                .then(|| Duration::from_micros(rng.log_range(1, 2_000)));
            match p.claim_batch(intent.n as usize, t) {
                Ok(c) => return finish_claim(sh, c, me, rng, intent),
                Err(MultiProcessError::Timeout { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        }
        _ => match p.try_claim_batch(intent.n as usize) {
            Ok(Some(c)) => return finish_claim(sh, c, me, rng, intent),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        },
    };
    match r {
        Ok(Some(last)) => {
            sh.cover(Path::MultiPublish);
            sh.ledger.borrow_mut().committed(me, last);
            Ok(())
        }
        Ok(None) => {
            sh.cover(Path::MultiFull);
            sh.ledger.borrow_mut().no_claim(me);
            backend.yield_now();
            Ok(())
        }
        Err(e) => Err(sh.fail(Oracle::UnexpectedError, format!("producer {source}: {e}"))),
    }
}

/// Writes a claim and commits it, or (now and then) gives it up, half written.
fn finish_claim(
    sh: &MpShared,
    mut c: myelon::MultiClaim<'_, MpEv, SimBackend>,
    me: ActorId,
    rng: &mut Rng,
    intent: Intent,
) -> Result<(), Exit> {
    sh.ledger.borrow_mut().confirm(me, c.first_sequence());
    let give_up = rng.chance(sh.plan.abort_pct);
    let n = c.len();
    let write = if give_up {
        rng.below(n as u64 + 1) as usize
    } else {
        n
    };
    for j in 0..write {
        fill(
            c.slot_mut(j),
            intent.source,
            intent.inc,
            intent.idx + j as u64,
        );
    }
    if give_up {
        sh.ledger.borrow_mut().aborting(me);
        if rng.chance(50) {
            c.abort();
        } else {
            drop(c);
        }
        sh.cover(Path::MultiAbort);
        sh.ledger.borrow_mut().no_claim(me);
        return Ok(());
    }
    let last = c.commit();
    sh.cover(Path::MultiClaim);
    sh.ledger.borrow_mut().committed(me, last);
    Ok(())
}

/// Attaches consumer `id`: `None` when the ring came and went (every producer detached and
/// the ring is gone) before this attach.
fn attach(
    sh: &MpShared,
    id: &str,
    backend: &SimBackend,
) -> Result<Option<Consumer<Sourced<MpEv>, SimBackend>>, Exit> {
    loop {
        let b = SharedDisruptorBuilder::<Sourced<MpEv>, SimBackend>::with_backend(
            backend.clone(),
            &sh.ring,
            sh.capacity,
        )
        .with_consumer_id(id)
        .with_attach_timeout(Duration::from_millis(2))
        .with_producer_check_interval(Duration::from_micros(200));
        match b.build_consumer() {
            Ok(c) => return Ok(Some(c)),
            Err(MultiProcessError::NotReady { .. }) => {
                if sh.ledger.borrow().finished.len() == sh.plan.events.len() {
                    return Ok(None);
                }
            }
            Err(MultiProcessError::RegistryBusy { .. }) => backend.sleep(Duration::from_micros(5)),
            Err(e) => return Err(sh.fail(Oracle::UnexpectedError, format!("{id} attach: {e}"))),
        }
        if sh.failed() {
            return Err(Exit::Failed("ledger".into()));
        }
    }
}

/// A named consumer: attaches and receives with a seed-chosen mix of flavours until `Closed`;
/// `ProducerDead` (no live producer for now) is not the end.
pub fn consumer(sh: MpShared, id: String, backend: SimBackend, mut rng: Rng) -> Exit {
    let mut c = match attach(&sh, &id, &backend) {
        Ok(Some(c)) => c,
        Ok(None) => return Exit::Done,
        Err(exit) => return exit,
    };
    let k = sh
        .ledger
        .borrow_mut()
        .attached(&id, c.next_sequence(), c.resumed(), c.ring_epoch());
    let mix: Vec<u64> = (0..5).filter(|_| rng.chance(60)).collect();
    let mix = if mix.is_empty() { vec![0] } else { mix };
    loop {
        let how = mix[rng.below(mix.len() as u64) as usize];
        let r = receive(&sh, k, &backend, &mut rng, &mut c, how);
        let (next, abandoned) = (c.next_sequence(), c.abandoned_slots());
        match r {
            Ok(()) => sh.ledger.borrow_mut().after_call(k, next, abandoned),
            Err(MultiProcessError::Closed) => {
                sh.ledger.borrow_mut().closed(k, next, abandoned);
                sh.cover(Path::MultiClosed);
                return Exit::Done;
            }
            Err(MultiProcessError::ProducerDead) => {
                sh.ledger.borrow_mut().after_call(k, next, abandoned);
                sh.cover(Path::MultiSawProducerDead);
                backend.sleep(Duration::from_micros(20));
            }
            Err(e @ MultiProcessError::Corrupt { .. }) => {
                return sh.fail(Oracle::Overwrite, format!("{id}: {e}"))
            }
            Err(e) => return sh.fail(Oracle::UnexpectedError, format!("{id}: {e}")),
        }
        if sh.failed() {
            return Exit::Failed("ledger".into());
        }
    }
}

fn event_id(e: &Sourced<MpEv>) -> EventId {
    (e.source, e.event.inc, e.event.idx)
}

/// One receive call of flavour `how`.
fn receive(
    sh: &MpShared,
    k: usize,
    backend: &SimBackend,
    rng: &mut Rng,
    c: &mut Consumer<Sourced<MpEv>, SimBackend>,
    how: u64,
) -> Result<(), MultiProcessError> {
    let strategy = match how {
        2 | 3 => AutoWaitStrategy::Block,
        4 => AutoWaitStrategy::Yield,
        _ => AutoWaitStrategy::BusySpin,
    };
    if c.wait_strategy() != strategy {
        c.set_wait_strategy(strategy);
    }
    let got = |seq: i64, e: &Sourced<MpEv>| {
        sh.ledger
            .borrow_mut()
            .received(k, seq, event_id(e), e.event.check);
    };
    match how {
        0 => {
            if let Some(l) = c.try_consume_next_leased()? {
                got(l.sequence(), &l);
            } else {
                backend.yield_now();
            }
        }
        1 => {
            let max = rng.range(1, 2 * sh.capacity as u64) as usize;
            if c.try_consume_batch(max, |e, seq, _| got(seq, e))? == 0 {
                backend.yield_now();
            }
        }
        2 => {
            let l = c.consume_next_leased()?;
            got(l.sequence(), &l);
        }
        3 => {
            let t = Duration::from_micros(rng.log_range(1, 5_000));
            match c.consume_next_leased_timeout(t) {
                Ok(l) => got(l.sequence(), &l),
                Err(MultiProcessError::Timeout { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        _ => {
            let max = rng.range(1, sh.capacity as u64) as usize;
            let t = Duration::from_micros(rng.log_range(1, 5_000));
            match c.consume_batch_timeout(max, t, |e, seq, _| got(seq, e)) {
                Ok(_) | Err(MultiProcessError::Timeout { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
