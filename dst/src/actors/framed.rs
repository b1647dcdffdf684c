//! Layers 1 and 2 under the actor scheduler: the real `FramedTransportProducer` /
//! `FramedTransportConsumer` (fragmentation, `try_claim` + `MessageClaim::commit`, reassembly,
//! joins mid-message) and the real `TypedProducer` / `TypedConsumer` (bincode) over them.
//!
//! Every message's length and bytes are a function of its id, so a consumer checks each one
//! whole; ids advance one by one per incarnation; a rejoin resumes at most one message past the
//! last one delivered (plus the partial message it may drop, which it must count).

use super::coverage::Path;
use super::oracle::{Failure, Oracle};
use super::programs::{note_reaped, Shared, Who};
use super::sched::{ActorId, Exit};
use crate::rng::{mix, Rng};
use myelon::backend::{RingBackend, SimBackend};
use myelon::codec::BincodeCodec;
use myelon::transport::{FixedFrame, FramedTransportConsumer, FramedTransportProducer};
use myelon::{
    AutoWaitStrategy, CoordinationMode, MultiProcessError, SharedDisruptorBuilder, TransportError,
    TypedConsumer, TypedProducer, TypedPublishError,
};
use std::time::Duration;

/// The frame of the simulated framed rings: 8 payload bytes, so messages fragment often.
pub type Frame = FixedFrame<8>;
type Codec = BincodeCodec<{ 1 << 16 }>;

/// The typed message.
#[derive(Debug, Clone, PartialEq, Eq, myelon::bincode::Encode, myelon::bincode::Decode)]
#[bincode(crate = "myelon::bincode")]
pub struct Msg {
    /// Message number (the producer's count).
    pub n: u64,
    /// Bytes derived from `n`.
    pub body: Vec<u8>,
}

/// Which layer a seed runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Fixed events (Layer 0).
    Raw,
    /// Byte messages over frames (Layer 1).
    Framed,
    /// Bincode values over frames (Layer 2).
    Typed,
}

/// The length of message `id` (at most `max`).
pub fn msg_len(id: u64, max: usize) -> usize {
    (mix(id ^ 0x006c_656e) % (max as u64 + 1)) as usize
}

/// Byte `i` of message `id`.
pub fn msg_byte(id: u64, i: usize) -> u8 {
    (mix(id.wrapping_mul(0x1_0000) ^ i as u64) >> 24) as u8
}

fn body(id: u64, max: usize) -> Vec<u8> {
    (0..msg_len(id, max)).map(|i| msg_byte(id, i)).collect()
}

fn body_ok(id: u64, max: usize, bytes: &[u8]) -> bool {
    bytes.len() == msg_len(id, max) && bytes.iter().enumerate().all(|(i, b)| *b == msg_byte(id, i))
}

/// The framed producer's plan.
#[derive(Debug, Clone)]
pub struct MsgPlan {
    /// Messages to publish.
    pub messages: u64,
    /// Longest message.
    pub max_len: usize,
    /// Coordination mode.
    pub coordination: CoordinationMode,
    /// Expected (reserved) consumer ids.
    pub expected: Vec<String>,
}

fn builder(sh: &Shared, b: SimBackend) -> SharedDisruptorBuilder<Frame, SimBackend> {
    SharedDisruptorBuilder::with_backend(b, &sh.ring, sh.capacity)
}

fn fail(sh: &Shared, oracle: Oracle, detail: String) -> Exit {
    let f = Failure::new(oracle, detail);
    sh.ledger.borrow_mut().fail(f.clone());
    Exit::Failed(f.encode())
}

/// The framed (or typed) producer: every publish and claim flavour, then close.
pub fn producer(
    sh: Shared,
    plan: MsgPlan,
    layer: Layer,
    backend: SimBackend,
    mut rng: Rng,
) -> Exit {
    let mut b = builder(&sh, backend.clone()).with_coordination(plan.coordination);
    if !plan.expected.is_empty() {
        b = b.with_consumer_ids(plan.expected.clone());
    }
    if layer == Layer::Typed {
        let mut p =
            match TypedProducer::<Msg, Codec, Frame, SimBackend>::from_builder(b, Codec::new()) {
                Ok(p) => p,
                Err(e) => {
                    return fail(&sh, Oracle::UnexpectedError, format!("typed producer: {e}"))
                }
            };
        sh.coverage.borrow_mut().hit(Path::TypedPublish);
        for n in 0..plan.messages {
            let m = Msg {
                n,
                body: body(n, plan.max_len),
            };
            let first = p.framed().cursor() + 1;
            sh.ledger.borrow_mut().msg_begin(n, first);
            let r = match rng.below(3) {
                0 => p.publish(&m),
                1 => loop {
                    match p.try_publish(&m) {
                        Err(TypedPublishError::Transport(TransportError::Full { .. })) => {
                            backend.yield_now()
                        }
                        r => break r,
                    }
                },
                _ => p.publish_timeout(&m, Duration::MAX),
            };
            // `try_publish` and `publish_timeout` refuse a message larger than the ring;
            // `publish` streams it.
            let r = match r {
                Err(TypedPublishError::Transport(TransportError::ExceedsCapacity { .. })) => {
                    sh.coverage.borrow_mut().hit(Path::ExceedsCapacity);
                    p.publish(&m)
                }
                r => r,
            };
            if let Err(e) = r {
                return fail(
                    &sh,
                    Oracle::UnexpectedError,
                    format!("typed publish {n}: {e}"),
                );
            }
            sh.ledger.borrow_mut().msg_published(n);
            note_reaped(&sh, || p.framed().inner().consumers());
        }
        return Exit::Done;
    }
    let mut p = match FramedTransportProducer::from_builder(b) {
        Ok(p) => p,
        Err(e) => {
            return fail(
                &sh,
                Oracle::UnexpectedError,
                format!("framed producer: {e}"),
            )
        }
    };
    let cap_bytes = sh.capacity * 8;
    let mut n = 0u64;
    while n < plan.messages {
        let m = body(n, plan.max_len);
        let first = p.cursor() + 1;
        sh.ledger.borrow_mut().msg_begin(n, first);
        let fits = FramedTransportProducer::<Frame, SimBackend>::frames_for(m.len()) <= sh.capacity;
        let r = match rng.below(5) {
            0 => {
                sh.coverage.borrow_mut().hit(Path::FramedPublish);
                p.publish(&m)
            }
            1 if fits => match p.try_publish(&m) {
                Err(TransportError::Full { .. }) => {
                    backend.yield_now();
                    continue;
                }
                r => r,
            },
            2 if fits => p.publish_timeout(&m, Duration::from_micros(rng.log_range(1, 3_000))),
            3 | 4 if m.len() <= cap_bytes && fits => {
                let claimed = if rng.chance(50) {
                    p.try_claim(m.len())
                } else {
                    p.claim_timeout(m.len(), None)
                };
                match claimed {
                    Ok(mut c) => {
                        let mut off = 0;
                        for i in 0..c.fragments() {
                            let f = c.fragment_mut(i);
                            let k = f.len().min(m.len() - off);
                            f[..k].copy_from_slice(&m[off..off + k]);
                            off += k;
                        }
                        if rng.chance(10) {
                            sh.coverage.borrow_mut().hit(Path::MessageClaimAbort);
                            c.abort();
                            continue;
                        }
                        sh.coverage.borrow_mut().hit(Path::MessageClaimCommit);
                        Ok(c.commit())
                    }
                    Err(TransportError::Full { .. })
                    | Err(TransportError::Ring(MultiProcessError::Timeout { .. })) => {
                        backend.yield_now();
                        continue;
                    }
                    Err(e) => Err(e),
                }
            }
            _ => p.publish(&m),
        };
        match r {
            Ok(id) if u64::from(id) == n => {
                if FramedTransportProducer::<Frame, SimBackend>::frames_for(m.len()) > 1 {
                    sh.coverage.borrow_mut().hit(Path::Fragmented);
                }
                sh.ledger.borrow_mut().msg_published(n);
                note_reaped(&sh, || p.inner().consumers());
                n += 1;
            }
            Ok(id) => {
                return fail(
                    &sh,
                    Oracle::UnexpectedError,
                    format!("message {n} got id {id}"),
                );
            }
            Err(TransportError::Ring(MultiProcessError::Timeout { .. }))
            | Err(TransportError::Full { .. }) => continue,
            Err(e) => {
                return fail(
                    &sh,
                    Oracle::UnexpectedError,
                    format!("framed publish {n}: {e}"),
                )
            }
        }
    }
    Exit::Done
}

/// What a framed or typed consumer got from one receive.
enum Got {
    Msg(u64, bool),
    Nothing,
    Closed,
    Err(Oracle, String),
}

/// The oracle a receive error falls under: a corrupt stamp or cursor means the producer ran
/// past a gating consumer.
fn oracle_of(e: &TransportError) -> Oracle {
    match e {
        TransportError::Ring(MultiProcessError::Corrupt { .. }) => Oracle::Overwrite,
        _ => Oracle::UnexpectedError,
    }
}

/// The framed (or typed) consumer: attaches (under its id, or anonymously), then receives until
/// the end of the stream, checking every message whole.
pub fn consumer(
    sh: Shared,
    who: Who,
    me: ActorId,
    layer: Layer,
    max_len: usize,
    backend: SimBackend,
    mut rng: Rng,
) -> Exit {
    let strategy = if rng.chance(50) {
        AutoWaitStrategy::Block
    } else {
        AutoWaitStrategy::BusySpin
    };
    let id = who.key(me, 0);
    let b = || {
        let b = builder(&sh, backend.clone())
            .with_attach_timeout(Duration::from_millis(2))
            .with_wait_strategy(strategy);
        match who.id() {
            Some(id) => b.with_consumer_id(id),
            None => b,
        }
    };
    // An anonymous consumer's entry is dead once its actor crashes (the producer must free
    // it); once it leaves by `Drop`, it is gone.
    let attached = |sh: &Shared, label: &str| {
        if who == Who::Anonymous {
            sh.coverage.borrow_mut().hit(Path::AnonymousAttach);
            let gen = sh.ledger.borrow().gen;
            sh.ledger.borrow_mut().anonymous_label(me, gen, label);
        }
    };
    let leaving = |sh: &Shared, exit: Exit| {
        sh.ledger.borrow_mut().anonymous_leaving(me);
        exit
    };
    let closed_ring = |sh: &Shared| {
        let done = sh.ledger.borrow().producer_done;
        if done {
            sh.coverage.borrow_mut().hit(Path::MissedClosedRing);
        }
        done
    };
    if layer == Layer::Typed {
        let mut c = loop {
            match TypedConsumer::<Msg, Codec, Frame, SimBackend>::from_builder(b(), Codec::new()) {
                Ok(c) => break c,
                Err(TransportError::Ring(MultiProcessError::NotReady { .. }))
                    if closed_ring(&sh) =>
                {
                    return Exit::Done
                }
                Err(TransportError::Ring(
                    MultiProcessError::NotReady { .. } | MultiProcessError::RegistryBusy { .. },
                )) => {}
                Err(e) => return fail(&sh, oracle_of(&e), format!("{id} attach: {e}")),
            }
        };
        attached(&sh, c.framed().inner().consumer_id());
        let k = sh
            .ledger
            .borrow_mut()
            .msg_attached(&id, me, c.framed().inner().next_sequence());
        loop {
            let got = match c.recv_timeout(Duration::from_micros(rng.log_range(1, 4_000))) {
                Ok(m) => Got::Msg(m.n, body_ok(m.n, max_len, &m.body)),
                Err(TransportError::Ring(MultiProcessError::Timeout { .. })) => Got::Nothing,
                Err(TransportError::Ring(MultiProcessError::Closed)) => Got::Closed,
                Err(e) => Got::Err(oracle_of(&e), e.to_string()),
            };
            let dropped = c.framed().dropped_messages();
            if let Some(exit) = handle(&sh, &id, k, got, dropped) {
                return leaving(&sh, exit);
            }
        }
    }
    let mut c = loop {
        match FramedTransportConsumer::from_builder(b()) {
            Ok(c) => break c,
            Err(TransportError::Ring(MultiProcessError::NotReady { .. })) if closed_ring(&sh) => {
                return Exit::Done
            }
            Err(TransportError::Ring(
                MultiProcessError::NotReady { .. } | MultiProcessError::RegistryBusy { .. },
            )) => {}
            Err(e) => return fail(&sh, oracle_of(&e), format!("{id} attach: {e}")),
        }
    };
    attached(&sh, c.inner().consumer_id());
    let k = sh
        .ledger
        .borrow_mut()
        .msg_attached(&id, me, c.inner().next_sequence());
    loop {
        let r = if rng.chance(50) {
            c.try_recv().map(|m| {
                m.map(|m| {
                    (
                        u64::from(m.message_id()),
                        body_ok(u64::from(m.message_id()), max_len, &m),
                    )
                })
            })
        } else {
            match c.recv_timeout(Duration::from_micros(rng.log_range(1, 4_000))) {
                Ok(m) => Ok(Some((
                    u64::from(m.message_id()),
                    body_ok(u64::from(m.message_id()), max_len, &m),
                ))),
                Err(TransportError::Ring(MultiProcessError::Timeout { .. })) => Ok(None),
                Err(e) => Err(e),
            }
        };
        let got = match r {
            Ok(Some((n, ok))) => Got::Msg(n, ok),
            Ok(None) => {
                backend.yield_now();
                Got::Nothing
            }
            Err(TransportError::Ring(MultiProcessError::Closed)) => Got::Closed,
            Err(e) => Got::Err(oracle_of(&e), e.to_string()),
        };
        let dropped = c.dropped_messages();
        if let Some(exit) = handle(&sh, &id, k, got, dropped) {
            return leaving(&sh, exit);
        }
    }
}

fn handle(sh: &Shared, id: &str, k: usize, got: Got, dropped: u64) -> Option<Exit> {
    match got {
        Got::Msg(n, ok) => {
            sh.coverage.borrow_mut().hit(Path::MessageReceived);
            if !ok {
                return Some(fail(
                    sh,
                    Oracle::TornRead,
                    format!("{id}: message {n} is not whole"),
                ));
            }
            sh.ledger.borrow_mut().msg_received(k, n, dropped);
        }
        Got::Nothing => {}
        Got::Closed => {
            sh.coverage.borrow_mut().hit(Path::SawClosed);
            sh.ledger.borrow_mut().msg_closed(k);
            return Some(Exit::Done);
        }
        Got::Err(o, e) => return Some(fail(sh, o, format!("{id}: {e}"))),
    }
    if dropped > 0 {
        sh.coverage.borrow_mut().hit(Path::DroppedPartial);
    }
    if sh.ledger.borrow().failure.is_some() {
        return Some(Exit::Failed("ledger".into()));
    }
    None
}
