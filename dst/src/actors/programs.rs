//! What actors do: sequences of real public API calls chosen by the seed. Programs report to
//! the [`Ledger`] between calls (never while a call is in progress, so a crash inside a call
//! leaves the ledger as the process's own memory would be: the last completed call).

use super::coverage::{Coverage, Path};
use super::oracle::{check_word, Failure, Ledger, Oracle};
use super::sched::{ActorId, Exit};
use crate::rng::Rng;
use myelon::backend::{RingBackend, SimBackend};
use myelon::{AutoWaitStrategy, CoordinationMode, MultiProcessError, SharedDisruptorBuilder};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

myelon::shm_event! {
    /// The simulated event: its sequence and a check word derived from it.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Ev {
        /// The sequence it was published as.
        pub value: u64,
        /// `check_word(value)`.
        pub check: u64,
    }
}

/// Writes event `seq`.
fn fill(e: &mut Ev, seq: i64) {
    e.value = seq as u64;
    e.check = check_word(seq as u64);
}

/// State every program of a seed shares (single-threaded: one actor runs at a time).
#[derive(Debug, Clone)]
pub struct Shared {
    /// The ledger the oracles check.
    pub ledger: Rc<RefCell<Ledger>>,
    /// Which public paths ran.
    pub coverage: Rc<RefCell<Coverage>>,
    /// Ring name.
    pub ring: String,
    /// Ring capacity.
    pub capacity: usize,
}

impl Shared {
    fn cover(&self, p: Path) {
        self.coverage.borrow_mut().hit(p);
    }

    fn fail(&self, oracle: Oracle, detail: String) -> Exit {
        let f = Failure::new(oracle, detail);
        self.ledger.borrow_mut().fail(f.clone());
        Exit::Failed(f.encode())
    }

    fn builder(&self, b: SimBackend) -> SharedDisruptorBuilder<Ev, SimBackend> {
        SharedDisruptorBuilder::with_backend(b, &self.ring, self.capacity)
    }
}

/// The producer's plan.
#[derive(Debug, Clone)]
pub struct ProducerPlan {
    /// Events to publish.
    pub events: i64,
    /// Coordination mode.
    pub coordination: CoordinationMode,
    /// Expected consumer ids (reserved unless `Immediate`).
    pub expected: Vec<String>,
    /// Largest batch.
    pub max_batch: usize,
}

/// The producer: creates the ring, publishes `events` events through a seed-chosen mix of
/// every publish and claim flavour, then closes the ring by dropping the producer.
pub fn producer(sh: Shared, plan: ProducerPlan, backend: SimBackend, mut rng: Rng) -> Exit {
    let mut b = sh
        .builder(backend.clone())
        .with_coordination(plan.coordination);
    if !plan.expected.is_empty() {
        b = b.with_consumer_ids(plan.expected.clone());
    }
    let mut p = match b.build_producer(Ev::default) {
        Ok(p) => p,
        Err(e) => return sh.fail(Oracle::UnexpectedError, format!("build_producer: {e}")),
    };
    sh.cover(Path::BuildProducer);
    let cap = sh.capacity;
    while p.cursor() + 1 < plan.events {
        let next = p.cursor() + 1;
        let left = (plan.events - next) as usize;
        let k = (rng.range(1, plan.max_batch as u64) as usize).min(left);
        let last = match rng.below(9) {
            0 => {
                sh.cover(Path::Publish);
                p.publish(|e| fill(e, next))
            }
            1 => {
                sh.cover(Path::TryPublish);
                match p.try_publish(|e| fill(e, next)) {
                    Ok(s) => s,
                    Err(_) => {
                        sh.cover(Path::TryPublishFull);
                        backend.yield_now();
                        continue;
                    }
                }
            }
            2 => {
                let t = if rng.chance(30) {
                    Duration::MAX
                } else {
                    Duration::from_micros(rng.log_range(1, 2_000))
                };
                sh.cover(Path::PublishTimeout);
                match p.publish_timeout(t, |e| fill(e, next)) {
                    Ok(s) => s,
                    Err(MultiProcessError::Timeout { .. }) => {
                        sh.cover(Path::PublishTimedOut);
                        continue;
                    }
                    Err(e) => {
                        return sh.fail(Oracle::UnexpectedError, format!("publish_timeout: {e}"))
                    }
                }
            }
            3 | 4 => {
                sh.cover(Path::PublishBatch);
                p.publish_batch(k, |i, e| fill(e, next + i as i64))
            }
            5 => {
                sh.cover(Path::TryPublishBatch);
                match p.try_publish_batch(k, |i, e| fill(e, next + i as i64)) {
                    Ok(s) => s,
                    Err(_) => {
                        sh.cover(Path::TryPublishBatchFull);
                        backend.yield_now();
                        continue;
                    }
                }
            }
            6 => {
                let k = k.min(cap);
                match p.try_claim_batch(k) {
                    Ok(mut claim) => {
                        for i in 0..k {
                            fill(claim.slot_mut(i), next + i as i64);
                        }
                        if rng.chance(15) {
                            sh.cover(Path::ClaimAbort);
                            claim.abort();
                            continue;
                        }
                        sh.cover(Path::ClaimCommit);
                        claim.commit()
                    }
                    Err(_) => {
                        sh.cover(Path::TryClaimFull);
                        backend.yield_now();
                        continue;
                    }
                }
            }
            _ => {
                let k = k.min(cap);
                let t = if rng.chance(50) {
                    None
                } else {
                    Some(Duration::from_micros(rng.log_range(1, 2_000)))
                };
                match p.claim_batch_timeout(k, t) {
                    Ok(mut claim) => {
                        for i in 0..k {
                            fill(claim.slot_mut(i), next + i as i64);
                        }
                        sh.cover(Path::ClaimBatchTimeout);
                        claim.commit()
                    }
                    Err(MultiProcessError::Timeout { .. }) => {
                        sh.cover(Path::ClaimTimedOut);
                        continue;
                    }
                    Err(e) => {
                        return sh
                            .fail(Oracle::UnexpectedError, format!("claim_batch_timeout: {e}"))
                    }
                }
            }
        };
        sh.ledger.borrow_mut().published = last;
    }
    drop(p);
    sh.cover(Path::ProducerClose);
    Exit::Done
}

/// How a consumer receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receive {
    /// `try_consume_next_leased`, yielding when empty.
    TryLeased,
    /// `try_consume_batch`.
    TryBatch,
    /// `consume_next_leased` with the `Block` strategy (a simulated futex).
    BlockLeased,
    /// `consume_next_timeout` with the `Block` strategy.
    BlockTimeout,
    /// `consume_batch_timeout` with the `Yield` strategy.
    YieldBatch,
}

const RECEIVES: [Receive; 5] = [
    Receive::TryLeased,
    Receive::TryBatch,
    Receive::BlockLeased,
    Receive::BlockTimeout,
    Receive::YieldBatch,
];

/// A consumer: attaches under `id` and receives until the end of the stream, every call a
/// seed-chosen receive flavour; each event is checked against its sequence.
pub fn consumer(sh: Shared, id: String, me: ActorId, backend: SimBackend, mut rng: Rng) -> Exit {
    let mut c = loop {
        let attach = sh
            .builder(backend.clone())
            .with_consumer_id(id.clone())
            .with_attach_timeout(Duration::from_millis(2));
        match attach.build_consumer() {
            Ok(c) => break c,
            // The ring is not there: not created yet, or created, closed and unlinked before
            // this consumer came (it then missed the whole stream, which is legitimate only
            // for a consumer nobody reserved).
            Err(MultiProcessError::NotReady { .. }) => {
                let l = sh.ledger.borrow();
                if l.producer_done {
                    let reserved = l.reserved.contains(&id);
                    drop(l);
                    sh.cover(Path::MissedClosedRing);
                    if reserved && !sh.ledger.borrow().released.contains_key(&id) {
                        sh.cover(Path::ReservedMissedClose);
                    }
                    return Exit::Done;
                }
            }
            // A resumed cursor a lap behind the producer: it ran past a gating consumer.
            Err(e @ MultiProcessError::Corrupt { .. }) => {
                return sh.fail(Oracle::Overwrite, format!("{id} attach: {e}"))
            }
            Err(e) => return sh.fail(Oracle::UnexpectedError, format!("{id} attach: {e}")),
        }
    };
    sh.cover(if c.resumed() {
        Path::AttachResumed
    } else {
        Path::AttachFresh
    });
    let k = sh
        .ledger
        .borrow_mut()
        .attached(&id, me, c.next_sequence(), c.resumed());
    let mix: Vec<Receive> = RECEIVES.into_iter().filter(|_| rng.chance(60)).collect();
    let mix = if mix.is_empty() {
        vec![Receive::TryLeased]
    } else {
        mix
    };
    loop {
        let how = mix[rng.below(mix.len() as u64) as usize];
        let strategy = match how {
            Receive::BlockLeased | Receive::BlockTimeout => AutoWaitStrategy::Block,
            Receive::YieldBatch => AutoWaitStrategy::Yield,
            _ => AutoWaitStrategy::BusySpin,
        };
        if c.wait_strategy() != strategy {
            c.set_wait_strategy(strategy);
        }
        let r = match how {
            Receive::TryLeased => match c.try_consume_next_leased() {
                Ok(Some(lease)) => {
                    let (seq, e) = (lease.sequence(), *lease);
                    sh.ledger.borrow_mut().received(k, seq, e.value, e.check);
                    drop(lease);
                    sh.cover(Path::TryLeased);
                    Ok(1)
                }
                Ok(None) => {
                    backend.yield_now();
                    Ok(0)
                }
                Err(e) => Err(e),
            },
            Receive::TryBatch => {
                let max = rng.range(1, 2 * sh.capacity as u64) as usize;
                let r = c.try_consume_batch(max, |e, seq, _| {
                    sh.ledger.borrow_mut().received(k, seq, e.value, e.check);
                });
                if matches!(r, Ok(0)) {
                    backend.yield_now();
                } else {
                    sh.cover(Path::TryBatch);
                }
                r
            }
            Receive::BlockLeased | Receive::BlockTimeout => {
                sh.ledger.borrow_mut().waiting.insert(me, c.next_sequence());
                let r = if how == Receive::BlockLeased {
                    c.consume_next_leased().map(|lease| {
                        let (seq, e) = (lease.sequence(), *lease);
                        sh.ledger.borrow_mut().received(k, seq, e.value, e.check);
                    })
                } else {
                    let seq = c.next_sequence();
                    let t = Duration::from_micros(rng.log_range(1, 5_000));
                    match c.consume_next_timeout(t) {
                        Ok(e) => {
                            sh.ledger.borrow_mut().received(k, seq, e.value, e.check);
                            Ok(())
                        }
                        Err(MultiProcessError::Timeout { .. }) => {
                            sh.cover(Path::ConsumeTimedOut);
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                };
                sh.ledger.borrow_mut().waiting.remove(&me);
                sh.cover(if how == Receive::BlockLeased {
                    Path::BlockLeased
                } else {
                    Path::BlockTimeout
                });
                r.map(|()| 1)
            }
            Receive::YieldBatch => {
                let max = rng.range(1, sh.capacity as u64) as usize;
                let t = Duration::from_micros(rng.log_range(1, 5_000));
                let r = c.consume_batch_timeout(max, t, |e, seq, _| {
                    sh.ledger.borrow_mut().received(k, seq, e.value, e.check);
                });
                sh.cover(Path::YieldBatch);
                match r {
                    Err(MultiProcessError::Timeout { .. }) => Ok(0),
                    r => r,
                }
            }
        };
        match r {
            Ok(_) => sh.ledger.borrow_mut().released_through(k),
            Err(MultiProcessError::Closed) => {
                sh.cover(Path::SawClosed);
                sh.ledger.borrow_mut().closed(k);
                return Exit::Done;
            }
            Err(e @ MultiProcessError::Corrupt { .. }) => {
                return sh.fail(Oracle::Overwrite, format!("{id}: {e}"))
            }
            Err(e) => return sh.fail(Oracle::UnexpectedError, format!("{id}: {e}")),
        }
        if sh.ledger.borrow().failure.is_some() {
            return Exit::Failed("ledger".into());
        }
    }
}
