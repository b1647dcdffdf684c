//! The `dst` feature, used as a user would (`cargo test -p myelon --features dst --test
//! dst_feature`): a producer and two consumers of the user's own event type over the simulated
//! backend, interleaved by a seed, consumer 1 crashed (no `Drop`) and rejoined under its id,
//! nothing lost, and the same seed replayed to the same trace hash.
#![cfg(feature = "dst")]

use myelon::backend::SimBackend;
use myelon::dst::{crash, replay_line, seed_from_env, SeedRng, TraceHash};
use myelon::{Consumer, Producer, SharedDisruptorBuilder};

myelon::shm_event! {
    /// The user's own event type.
    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    pub struct Order { pub id: u64, pub price_cents: u64, pub qty: u32, pub side: u8 }
}

const RING: &str = "orders";
const CAP: usize = 16;
const EVENTS: u64 = 500;

fn order(id: u64) -> Order {
    Order {
        id,
        price_cents: 10_000 + id * 7,
        qty: (id % 13) as u32 + 1,
        side: (id % 2) as u8,
    }
}

fn consumer(process: &SimBackend, id: &str) -> Consumer<Order, SimBackend> {
    SharedDisruptorBuilder::with_backend(process.clone(), RING, CAP)
        .with_consumer_id(id)
        .build_consumer()
        .expect("attach")
}

/// What one seeded run saw: every id each consumer received (across incarnations) and the
/// trace hash of the whole interleaving.
#[derive(Debug, PartialEq)]
struct Outcome {
    received: [Vec<u64>; 2],
    hash: u64,
    crashed_at: Option<u64>,
}

fn run(seed: u64) -> Outcome {
    let mut rng = SeedRng::new(seed);
    let producer_process = SimBackend::new_world();
    // Both consumers are named: the producer reserves them, so neither misses an event however
    // late it attaches.
    let mut tx: Producer<Order, SimBackend> =
        SharedDisruptorBuilder::with_backend(producer_process.clone(), RING, CAP)
            .with_consumer_ids(["c0", "c1"])
            .build_producer(Order::default)
            .expect("producer");
    let mut processes = [producer_process.sibling(), producer_process.sibling()];
    let mut rx: [Option<Consumer<Order, SimBackend>>; 2] = [None, None];
    let mut received: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    let mut hash = TraceHash::new();
    let crash_after = rng.below(EVENTS); // consumer 1 crashes once it has received this many
    let mut crashed_at = None;
    let mut next = 0u64;
    while received.iter().any(|r| r.len() < EVENTS as usize) {
        let actor = rng.below(3);
        hash.record(actor);
        match actor {
            0 if next < EVENTS => {
                if tx.try_publish(|o| *o = order(next)).is_ok() {
                    hash.record(next);
                    next += 1;
                }
            }
            0 => {}
            i => {
                let i = (i - 1) as usize;
                // Late attach: a consumer appears when the seed says so.
                let c = match &mut rx[i] {
                    Some(c) => c,
                    None if rng.chance(30) => {
                        rx[i].insert(consumer(&processes[i], &format!("c{i}")))
                    }
                    None => continue,
                };
                if let Some(o) = c.try_consume_next().expect("consume") {
                    assert_eq!(o, order(o.id), "torn or foreign event");
                    hash.record(o.id);
                    received[i].push(o.id);
                }
                if i == 1 && crashed_at.is_none() && received[1].len() as u64 == crash_after {
                    // SIGKILL: no Drop, the entry stays and keeps gating; then a new process
                    // rejoins under the same id.
                    crash(&processes[1], rx[1].take());
                    processes[1] = producer_process.sibling();
                    crashed_at = Some(crash_after);
                    hash.record(u64::MAX);
                }
            }
        }
    }
    Outcome {
        received,
        hash: hash.value(),
        crashed_at,
    }
}

#[test]
fn seeded_crash_and_rejoin_loses_nothing_and_replays() {
    let first = seed_from_env(0);
    for seed in first..first + 20 {
        let replay = replay_line(seed, "seeded_crash_and_rejoin_loses_nothing_and_replays");
        let out = run(seed);
        for (i, r) in out.received.iter().enumerate() {
            let want: Vec<u64> = (0..EVENTS).collect();
            assert_eq!(
                r, &want,
                "consumer {i}: loss, duplicate or reorder\n  {replay}"
            );
        }
        assert!(out.crashed_at.is_some(), "{replay}");
        assert_eq!(run(seed), out, "not deterministic\n  {replay}");
    }
}

/// The scheduling hooks: with a hook installed on the thread, every shared-memory-visible step
/// of a real call reports a `SchedPoint` (here counted, to show a user's scheduler gets them).
#[test]
fn scheduling_hooks_see_the_steps_of_real_calls() {
    use myelon::dst::{actor, SchedPoint};
    use std::cell::RefCell;

    thread_local! {
        static SEEN: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
    }
    fn count(s: actor::Suspend) -> Option<actor::Resumed> {
        if let actor::Suspend::Point { code, .. } = s {
            SEEN.with(|v| v.borrow_mut().push(code));
        }
        Some(actor::Resumed::Go)
    }

    myelon::shm_event! {
        #[derive(Clone, Copy, Debug, Default)]
        struct Step { n: u64 }
    }
    let p = myelon::backend::SimBackend::new_world();
    let mut tx = myelon::SharedDisruptorBuilder::<Step, _>::with_backend(p.clone(), "hooks", 4)
        .with_consumer_id("c")
        .build_producer(Step::default)
        .expect("producer");
    let mut rx = myelon::SharedDisruptorBuilder::<Step, _>::with_backend(p.sibling(), "hooks", 4)
        .with_consumer_id("c")
        .build_consumer()
        .expect("consumer");
    actor::set_hook(Some(count));
    tx.publish(|e| e.n = 7);
    let got = rx.try_consume_next().expect("consume").expect("an event");
    actor::set_hook(None);
    assert_eq!(got.n, 7);
    let seen = SEEN.with(|v| v.borrow().clone());
    for p in [
        SchedPoint::SlotWrite,
        SchedPoint::SlotStamp,
        SchedPoint::CursorAnnounce,
        SchedPoint::StampLoad,
        SchedPoint::SlotRead,
        SchedPoint::CursorRelease,
    ] {
        assert!(seen.contains(&(p as u16)), "{p:?} not reported: {seen:?}");
    }
}
