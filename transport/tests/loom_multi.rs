//! Loom models of the multi-producer ring (`ring::multi`): claim, publish, give up, die, join.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p myelon --no-default-features --test loom_multi --release`
//!
//! Under loom a ring has 2 producer entries and 2 consumer entries. Every model runs the real
//! `MultiProducer` and `Consumer` over the simulated region; a producer's death is its
//! simulated process killed (`SimBackend::kill`, on its own thread), which frees its lock slot
//! as the kernel frees a dead process's lock, makes its handles run no more ring code (no skip
//! markers, no detach), as after `SIGKILL`, and, as a death learnt from the kernel does, makes
//! everything it did before visible to whoever sees it dead (`loom_deaths` in
//! `backend/sim.rs`).
//!
//! Consumers here poll with `consume_next_leased_timeout(Duration::ZERO)` and a producer-check
//! interval of zero: one look at the slot, one producer check (skip markers, dead claimers),
//! one more look. The producer threads count themselves done when they are; a consumer that
//! finds nothing after every producer is done stops, so a lost event is an assertion failure
//! (with the events it did see) rather than a spin loom gives up on.
//!
//! | model | property | mutants (`.ci/run` checks each) |
//! |---|---|---|
//! | `two_producers_publish_one_each`, `two_producers_publish_a_batch_each` | claims never overlap (the slot cell would be written twice: a causality violation), each event read once, untorn, a batch contiguous | `mp_double_claim` |
//! | `an_aborted_claim_is_skipped_not_its_neighbour` | exactly the given-up slots are skipped, the other producer's event is read | `mp_skip_over_published` |
//! | `a_live_claimer_is_waited_for`, `a_claimer_that_published_then_died_is_read`, `a_dead_claimers_hole_is_skipped` | a hole is skipped only once its claimer is dead, never a slot a live producer publishes (nor one published just before death) | `mp_intent_after_cas` |
//! | `late_join_while_a_producer_claims` | a consumer registering while a producer claims (and rescans with the cursor RMW) never reads a slot overwritten behind it | `join_no_fence` |
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use myelon::backend::SimBackend;
use myelon::{
    Consumer, MultiProcessError, MultiProducer, MultiProducerBuilder, SharedDisruptorBuilder,
    Sourced,
};
use std::time::Duration;

const NAME: &str = "loom-mp";

/// The event producer `source` writes as its `idx`-th: both halves of `Sourced` say who wrote
/// it, so a value mixing two writes (a torn slot) shows.
fn value(source: u64, idx: u64) -> u64 {
    source * 1000 + idx
}

fn producer(b: SimBackend, cap: usize, source: u64) -> MultiProducer<u64, SimBackend> {
    MultiProducerBuilder::with_backend(b, NAME, cap)
        .with_source_id(source)
        .build(|| 0)
        .unwrap()
}

fn consumer(b: SimBackend, cap: usize, id: &str) -> Consumer<Sourced<u64>, SimBackend> {
    SharedDisruptorBuilder::with_backend(b, NAME, cap)
        .with_consumer_id(id)
        .with_producer_check_interval(Duration::ZERO)
        .build_consumer()
        .unwrap()
}

fn model(preemptions: usize) -> loom::model::Builder {
    let mut m = loom::model::Builder::new();
    m.preemption_bound = Some(preemptions);
    // A producer waiting for room pauses (loom yields) and rescans between claim attempts:
    // a long but finite execution when it waits for the joiner of the late-join model.
    m.max_branches = 20_000;
    m
}

/// One event as a consumer read it: (sequence, source, value).
type Read = (i64, u64, u64);

/// Reads until the consumer's next sequence is past `last`, or until nothing more is there
/// once all `producers` counted themselves in `done` (every stamp they stored happens-before
/// that count, so one look then finds whatever they published).
fn read_through(
    c: &mut Consumer<Sourced<u64>, SimBackend>,
    last: i64,
    done: &AtomicUsize,
    producers: usize,
) -> Vec<Read> {
    let mut got = Vec::new();
    while c.next_sequence() <= last {
        let finished = done.load(Ordering::SeqCst) == producers;
        match c.consume_next_leased_timeout(Duration::ZERO) {
            Ok(e) => {
                assert_eq!(e.event / 1000, e.source, "torn slot {e:?}");
                got.push((e.sequence(), e.source, e.event));
            }
            Err(MultiProcessError::Timeout { .. }) if finished => break,
            Err(MultiProcessError::Timeout { .. }) => loom::thread::yield_now(),
            Err(e) => panic!("consume: {e}"),
        }
    }
    got
}

/// Two producers publish `batch` events each (one claim) while a consumer reads: each event
/// once, in its producer's order, a batch on consecutive sequences, nothing skipped, and the
/// two claims disjoint.
fn two_producers(batch: usize, preemptions: usize) {
    model(preemptions).check(move || {
        let b = SimBackend::new_world();
        let cap = 2 * batch;
        let producers = [1, 2].map(|s| producer(b.sibling(), cap, s));
        let mut c = consumer(b.sibling(), cap, "c");
        let done = Arc::new(AtomicUsize::new(0));
        let threads = producers.map(|mut p| {
            let done = done.clone();
            loom::thread::spawn(move || {
                let s = p.source();
                let last = p
                    .publish_batch(batch, |i, e| *e = value(s, i as u64))
                    .unwrap();
                done.fetch_add(1, Ordering::SeqCst);
                (p, last)
            })
        });
        let got = read_through(&mut c, 2 * batch as i64 - 1, &done, 2);
        let [(pa, la), (pb, lb)] = threads.map(|t| t.join().unwrap());
        let (fa, fb) = (la + 1 - batch as i64, lb + 1 - batch as i64);
        assert!(
            la < fb || lb < fa,
            "two claims overlap: {fa}..={la} and {fb}..={lb}"
        );
        assert_eq!(got.len(), 2 * batch, "events lost: read {got:?}");
        for (source, first) in [(1, fa), (2, fb)] {
            let mine: Vec<Read> = got.iter().copied().filter(|r| r.1 == source).collect();
            let want: Vec<Read> = (0..batch as u64)
                .map(|i| (first + i as i64, source, value(source, i)))
                .collect();
            assert_eq!(mine, want, "producer {source}'s events");
        }
        assert_eq!(c.abandoned_slots(), 0);
        drop(c);
        drop((pa, pb));
    });
}

/// [`two_producers`] with one event each. Mutant `mp_double_claim` (the claim is a load
/// and a store: both producers claim sequence 0 and write its slot).
#[test]
fn two_producers_publish_one_each() {
    two_producers(1, 2);
}

/// [`two_producers`] with a claim of two each (four slots).
#[test]
fn two_producers_publish_a_batch_each() {
    two_producers(2, 1);
}

/// Producer 1 claims two slots and gives them up (`abort`) while producer 2 publishes one
/// event, before or behind that claim: the consumer skips exactly the two given-up slots and
/// reads producer 2's event. Mutant `mp_skip_over_published` (the abort stamps a skip marker
/// on the slot after its claim, over producer 2's event or on a slot that maps onto it).
#[test]
fn an_aborted_claim_is_skipped_not_its_neighbour() {
    model(2).check(|| {
        let b = SimBackend::new_world();
        let (cap, given_up) = (4, 2);
        let mut pa = producer(b.sibling(), cap, 1);
        let mut pb = producer(b.sibling(), cap, 2);
        let mut c = consumer(b.sibling(), cap, "c");
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let ta = loom::thread::spawn(move || {
            let claim = pa.try_claim_batch(given_up).unwrap().expect("room");
            let first = claim.first_sequence();
            claim.abort();
            d.fetch_add(1, Ordering::SeqCst);
            (pa, first)
        });
        let d = done.clone();
        let tb = loom::thread::spawn(move || {
            let s = pb.publish(|e| *e = value(2, 0)).unwrap();
            d.fetch_add(1, Ordering::SeqCst);
            (pb, s)
        });
        let got = read_through(&mut c, given_up as i64, &done, 2);
        let (pa, first) = ta.join().unwrap();
        let (pb, s) = tb.join().unwrap();
        assert_eq!(
            got,
            vec![(s, 2, value(2, 0))],
            "wrong events read (given up: {first}..+{given_up})"
        );
        assert_eq!(c.abandoned_slots(), given_up as u64);
        drop(c);
        drop((pa, pb));
    });
}

/// What producer 1 does with its one-slot claim in [`claimer_fate`].
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fate {
    /// Writes and publishes it (a live producer: waited for however slow).
    Publish,
    /// Publishes it, then dies: the consumer's look at the producers finds no live claimer,
    /// and its re-read of the stamp must find the event.
    PublishThenDie,
    /// Dies right after its compare-and-swap: never writes, never stamps.
    ClaimThenDie,
}

/// Producer 1 claims one slot and meets `fate` while producer 2 (alive throughout) publishes
/// one event and a consumer reads. The consumer skips producer 1's slot exactly when
/// producer 1 died before stamping it, and reads every event that was published.
fn claimer_fate(fate: Fate) {
    model(2).check(move || {
        let b = SimBackend::new_world();
        let cap = 2;
        let pa_process = b.sibling();
        let mut pa = producer(pa_process.clone(), cap, 1);
        let mut pb = producer(b.sibling(), cap, 2);
        let mut c = consumer(b.sibling(), cap, "c");
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let ta = loom::thread::spawn(move || {
            let first = match fate {
                Fate::Publish => pa.publish(|e| *e = value(1, 0)).unwrap(),
                Fate::PublishThenDie => {
                    let s = pa.publish(|e| *e = value(1, 0)).unwrap();
                    pa_process.kill();
                    s
                }
                Fate::ClaimThenDie => {
                    let claim = pa.try_claim_batch(1).unwrap().expect("room");
                    let s = claim.first_sequence();
                    pa_process.kill();
                    // A killed process runs no more ring code: no skip marker on drop.
                    drop(claim);
                    s
                }
            };
            d.fetch_add(1, Ordering::SeqCst);
            (pa, first)
        });
        let d = done.clone();
        let tb = loom::thread::spawn(move || {
            let s = pb.publish(|e| *e = value(2, 0)).unwrap();
            d.fetch_add(1, Ordering::SeqCst);
            (pb, s)
        });
        let got = read_through(&mut c, 1, &done, 2);
        let (pa, sa) = ta.join().unwrap();
        let (pb, sb) = tb.join().unwrap();
        let mut want = vec![(sb, 2, value(2, 0))];
        if fate != Fate::ClaimThenDie {
            want.push((sa, 1, value(1, 0)));
        }
        want.sort();
        assert_eq!(got, want, "{fate:?}: producer 1 had sequence {sa}");
        let skipped = u64::from(fate == Fate::ClaimThenDie);
        assert_eq!(c.abandoned_slots(), skipped, "{fate:?}");
        drop(c);
        drop((pa, pb));
    });
}

/// A live producer's claim is waited for: never skipped, whatever the consumer's producer
/// checks see of its intent and its compare-and-swap. Mutant `mp_intent_after_cas` (the
/// intent is stored after the claim: a consumer sees the slot claimed and no live producer
/// covering it).
#[test]
fn a_live_claimer_is_waited_for() {
    claimer_fate(Fate::Publish);
}

/// A producer that published and then died: its event is delivered (the consumer re-reads the
/// stamp after finding no live claimer).
#[test]
fn a_claimer_that_published_then_died_is_read() {
    claimer_fate(Fate::PublishThenDie);
}

/// A producer that died between its claim and its stamp: its slot is skipped (once it is
/// dead), producer 2's event read.
#[test]
fn a_dead_claimers_hole_is_skipped() {
    claimer_fate(Fate::ClaimThenDie);
}

/// A consumer registers (the real `build_consumer`: entry `JOINING`, fence, read the claim
/// cursor, start after it) while a producer publishes three events through two slots, and so
/// rescans the consumer table to wrap (`refresh_limit`: the claim cursor read with a
/// read-modify-write, then `gating_minimum`'s fence and scan). Either the scan sees the joiner
/// and gates on it, or the joiner starts after every sequence that scan let the producer
/// overwrite: it never reads a slot overwritten behind it (a wrong value, a `Corrupt` stamp or
/// a causality violation on the slot cell). Mutant `join_no_fence`.
#[test]
fn late_join_while_a_producer_claims() {
    model(2).check(|| {
        let b = SimBackend::new_world();
        let mut p = producer(b.sibling(), 2, 1);
        let joiner =
            SharedDisruptorBuilder::<Sourced<u64>, SimBackend>::with_backend(b.sibling(), NAME, 2)
                .with_consumer_id("late")
                .with_producer_check_interval(Duration::ZERO);
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        let t = loom::thread::spawn(move || {
            for i in 0..3 {
                p.publish(|e| *e = value(1, i)).unwrap();
            }
            d.fetch_add(1, Ordering::SeqCst);
            p
        });
        let mut c = joiner.build_consumer().unwrap();
        let start = c.next_sequence();
        let got = read_through(&mut c, 2, &done, 1);
        let want: Vec<Read> = (start..=2).map(|s| (s, 1, value(1, s as u64))).collect();
        assert_eq!(got, want, "joined at {start}");
        drop(c);
        drop(t.join().unwrap());
    });
}
