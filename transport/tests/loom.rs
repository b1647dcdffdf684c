//! Loom models of the fence and release/acquire pairings of the ring, over the simulated region.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p myelon --no-default-features --test loom --release`
//!
//! Each model has planted bugs it must catch (`.ci/run` checks every one; `MYELON_MUTANT=<name>`
//! builds one, see CONTRIBUTING):
//!
//! | model | pairing | mutants |
//! |---|---|---|
//! | `publish_consume_and_gating` | stamp `Release` / `Acquire` (I3) | `relaxed_stamp` |
//! | `late_join_while_wrapping`, `late_join_inside_a_batch` | `claim_free` / `gating_minimum` fences; announce before rescan | `join_no_fence`, `batch_late_announce` |
//! | `block_wakes_after_publish` | `block_on` / `notify_now` fences, the re-check | `wake_no_fence`, `lost_wake` |
//! | `two_consumers_gate_the_wrap` | cursor release / gating scan `Acquire` | `gating_relaxed_cursor`, `wrap_off_by_one` |
//! | `async_recv_wakes_after_publish` (feature `tokio`) | the async doorbell's arm / re-check / helper sleep against `notify_now` | `async_no_recheck`, `wake_no_fence` |
//! | `async_publish_wakes_after_release` (feature `tokio`) | the same for an async producer on a full ring against a consumer's release | `async_no_recheck`, `release_unfenced` |
#![cfg(loom)]

use myelon::backend::SimBackend;
use myelon::{AutoWaitStrategy, SharedDisruptorBuilder};

fn builder(b: SimBackend, cap: usize) -> SharedDisruptorBuilder<u64, SimBackend> {
    SharedDisruptorBuilder::with_backend(b, "loom", cap)
}

/// Three events through a ring of two slots: the producer must wait for the consumer to
/// release (gating), every event arrives in order with the value written for it, and no slot
/// is read before it was written (loom checks the slot cell accesses for causality).
#[test]
fn publish_consume_and_gating() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let b = SimBackend::new_world();
        let mut p = builder(b.clone(), 2).build_producer(|| 0).unwrap();
        let mut c = builder(b.sibling(), 2)
            .with_consumer_id("c")
            .build_consumer()
            .unwrap();
        let t = loom::thread::spawn(move || {
            for i in 0..3u64 {
                p.publish(|e| *e = 100 + i);
            }
            p
        });
        let mut got = Vec::new();
        while got.len() < 3 {
            let n = c
                .try_consume_batch(1, |e, s, _| {
                    assert_eq!(*e, 100 + s as u64, "slot value does not match its stamp");
                    got.push(s);
                })
                .unwrap();
            if n == 0 {
                loom::thread::yield_now();
            }
        }
        assert_eq!(got, vec![0, 1, 2]);
        drop(t.join().unwrap());
    });
}

/// A leased slot is never overwritten while the lease lives.
#[test]
fn lease_blocks_overwrite() {
    loom::model(|| {
        let b = SimBackend::new_world();
        let mut p = builder(b.clone(), 1).build_producer(|| 0).unwrap();
        let mut c = builder(b.sibling(), 1)
            .with_consumer_id("c")
            .build_consumer()
            .unwrap();
        p.publish(|e| *e = 7);
        let t = loom::thread::spawn(move || {
            p.publish(|e| *e = 8);
            p
        });
        {
            let lease = c.try_consume_next_leased().unwrap().expect("published");
            assert_eq!(lease.sequence(), 0);
            assert_eq!(*lease, 7);
        }
        loop {
            match c.try_consume_next().unwrap() {
                Some(v) => {
                    assert_eq!(v, 8);
                    break;
                }
                None => loom::thread::yield_now(),
            }
        }
        drop(t.join().unwrap());
    });
}

/// Publishes `100 + seq` for sequences 0, 1, 2: one `publish` each, or one `publish_batch`.
fn publish_three(p: &mut myelon::Producer<u64, SimBackend>, batch: bool) {
    if batch {
        p.publish_batch(3, |i, e| *e = 100 + i as u64);
    } else {
        for i in 0..3u64 {
            p.publish(|e| *e = 100 + i);
        }
    }
}

/// Reads until sequence `last` was consumed, checking every value against its sequence (a slot
/// overwritten behind the consumer shows as `Corrupt`, a wrong value, or a loom causality
/// violation on the slot cell).
fn drain_to(c: &mut myelon::Consumer<u64, SimBackend>, last: i64) {
    while c.next_sequence() <= last {
        let n = c
            .try_consume_batch(1, |e, s, _| {
                assert_eq!(*e, 100 + s as u64, "slot value does not match its stamp");
            })
            .expect("a slot was overwritten behind a gating consumer");
        if n == 0 {
            loom::thread::yield_now();
        }
    }
}

/// A consumer registers through the real `build_consumer` (`registry::claim_free`: entry
/// `JOINING`, `SeqCst` fence, re-read the producer cursor, start after it) while the producer
/// publishes three events through two slots and so rescans the table
/// (`registry::gating_minimum`: `SeqCst` fence, then the entry scan) to wrap. Either the scan
/// sees the joining entry and gates on it, or the joiner's cursor read covers everything that
/// scan let the producer overwrite: it never reads a slot overwritten behind it.
fn late_join(batch: bool) {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(move || {
        let b = SimBackend::new_world();
        let mut p = builder(b.clone(), 2).build_producer(|| 0).unwrap();
        let joiner = builder(b.sibling(), 2).with_consumer_id("late");
        let t = loom::thread::spawn(move || {
            publish_three(&mut p, batch);
            p
        });
        let mut c = joiner.build_consumer().unwrap();
        drain_to(&mut c, 2);
        drop(c);
        drop(t.join().unwrap());
    });
}

/// [`late_join`] with three `publish` calls. Mutant `join_no_fence` (no fence before the scan).
#[test]
fn late_join_while_wrapping() {
    late_join(false);
}

/// [`late_join`] with one `publish_batch(3)`: its rescan must announce the stamped slots
/// first. Mutants `join_no_fence` and `batch_late_announce` (the batch's cursor stays behind
/// its stamps across the rescan, so the joiner starts on a slot the batch overwrites).
#[test]
fn late_join_inside_a_batch() {
    late_join(true);
}

/// A ring handle that is dropped normally, but leaked while the thread unwinds: a handle's drop
/// runs loom operations, which panic again once loom stopped the execution (a deadlock), and a
/// panic while panicking aborts the whole test binary instead of failing one test.
struct KeepAlive<T>(Option<T>);

impl<T> Drop for KeepAlive<T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::mem::forget(self.0.take());
        }
    }
}

/// A consumer blocks (`AutoWaitStrategy::Block`, the real `consume_next`) while the producer
/// publishes once. The consumer's process has a strict simulated futex
/// (`SimBackend::with_strict_futex`): a wait parks until a wake, with no timeout, so a wake-up
/// the `block_on` / `notify_now` protocol loses (the waiter re-checked too early and the waker
/// saw no waiter) parks the consumer for ever, which loom reports as a deadlock. The producer
/// is kept alive until the end: its drop wakes every sleeper and would hide a lost wake-up.
/// Mutants `wake_no_fence` (no fence in `notify_now`) and `lost_wake` (no re-check).
#[test]
fn block_wakes_after_publish() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let b = SimBackend::new_world();
        let mut p = builder(b.clone(), 2).build_producer(|| 0).unwrap();
        let c = builder(b.sibling().with_strict_futex(), 2)
            .with_consumer_id("c")
            .with_wait_strategy(AutoWaitStrategy::Block)
            .build_consumer()
            .unwrap();
        let mut c = KeepAlive(Some(c));
        let t = loom::thread::spawn(move || {
            // Other work first. Loom runs the other thread whenever one yields and counts
            // only switches away from a running thread against the bound; the consumer polls
            // and yields three times (the sim's spin rounds) before it blocks, so without these
            // yields a publish landing just before or after its arm would need more
            // preemptions than the bound allows, and neither mutant would be reached.
            for _ in 0..3 {
                loom::thread::yield_now();
            }
            p.publish(|e| *e = 42);
            KeepAlive(Some(p))
        });
        let got = c.0.as_mut().map(|c| c.consume_next().unwrap());
        assert_eq!(got, Some(42));
        drop(c);
        drop(t.join().unwrap());
    });
}

/// Two consumers release (cursor store `Release`) while the producer rescans the table
/// (`Acquire` cursor loads) to wrap a one-slot ring: sequence 0 is published before the
/// consumer threads start, each reads it and releases it, and meanwhile the producer publishes
/// sequence 1 into the same slot. It may overwrite the slot only after both released it, and
/// each release must order that consumer's read of the slot before the overwrite (loom tracks
/// the slot cell). Only the producer spins, so no schedule starves a thread. Mutants
/// `gating_relaxed_cursor` and `wrap_off_by_one` (each a causality violation on the slot).
#[test]
fn two_consumers_gate_the_wrap() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let b = SimBackend::new_world();
        let mut p = builder(b.clone(), 1).build_producer(|| 0).unwrap();
        let consumers = ["a", "b"].map(|id| {
            builder(b.sibling(), 1)
                .with_consumer_id(id)
                .build_consumer()
                .unwrap()
        });
        p.publish(|e| *e = 100);
        let threads = consumers.map(|mut c| {
            loom::thread::spawn(move || {
                let n = c
                    .try_consume_batch(1, |e, s, _| assert_eq!((*e, s), (100, 0)))
                    .unwrap();
                assert_eq!(n, 1, "sequence 0 was published before the thread started");
                c
            })
        });
        p.publish(|e| *e = 101);
        for t in threads {
            let mut c = t.join().unwrap();
            assert_eq!(c.try_consume_next().unwrap(), Some(101));
        }
        drop(p);
    });
}

/// An async consumer (`Consumer::into_async`, the real `recv()` future driven by loom's
/// executor) against one publish. When `recv` finds the ring empty its doorbell arms (read the
/// wake word, count a waiter, fence), re-checks the slot, and hands the wait to its helper
/// thread, which sleeps in the consumer process's strict simulated futex until a wake; the
/// producer's `notify` rings only if it sees the waiter. Three threads: the task (loom's
/// `block_on` parks it until its `Waker` is woken), the helper, the producer. A wake-up the
/// protocol loses leaves the helper in the futex and the task parked for ever: a loom deadlock.
/// Mutants `async_no_recheck` (the re-check after arming skipped) and `wake_no_fence`.
#[cfg(feature = "tokio")]
#[test]
fn async_recv_wakes_after_publish() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let b = SimBackend::new_world();
        let mut p = builder(b.clone(), 2).build_producer(|| 0).unwrap();
        let c = builder(b.sibling().with_strict_futex(), 2)
            .with_consumer_id("c")
            .build_consumer()
            .unwrap()
            .into_async();
        let mut c = KeepAlive(Some(c));
        let t = loom::thread::spawn(move || {
            // Other work first (see `block_wakes_after_publish`): lets the publish land
            // between the task's first look and its arm within the preemption bound.
            loom::thread::yield_now();
            p.publish(|e| *e = 42);
            KeepAlive(Some(p))
        });
        let got = c.0.as_mut().map(|c| {
            // The future disarms the doorbell when dropped (loom operations): keep it alive
            // while a deadlock unwinds, like the handles.
            let mut recv = KeepAlive(Some(Box::pin(c.recv())));
            let fut = recv.0.as_mut().expect("future").as_mut();
            loom::future::block_on(fut).unwrap()
        });
        assert_eq!(got, Some(42));
        drop(c);
        drop(t.join().unwrap());
    });
}

/// An async producer (`Producer::into_async`, the real `publish()` future) on a full one-slot
/// ring against a consumer thread that releases the slot. The producer's doorbell counts itself
/// in `producer_wake.sleepers_registered`, which turns the consumer's release check into the
/// fenced one (`notify_now`); the producer's process has a strict futex, so a lost wake-up is
/// a deadlock. Mutants `async_no_recheck` and `release_unfenced` (the release path ignores the
/// registration and keeps its unfenced check, which a sync producer survives by sleeping in
/// slices).
#[cfg(feature = "tokio")]
#[test]
fn async_publish_wakes_after_release() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let b = SimBackend::new_world();
        let mut p = builder(b.clone().with_strict_futex(), 1)
            .build_producer(|| 0)
            .unwrap();
        let mut c = builder(b.sibling(), 1)
            .with_consumer_id("c")
            .build_consumer()
            .unwrap();
        p.publish(|e| *e = 100);
        let p = KeepAlive(Some(p.into_async()));
        let t = loom::thread::spawn(move || {
            loom::thread::yield_now();
            assert_eq!(c.try_consume_next().unwrap(), Some(100));
            KeepAlive(Some(c))
        });
        let mut p = p;
        let got = p.0.as_mut().map(|p| {
            let mut publish = KeepAlive(Some(Box::pin(p.publish(|e| *e = 101))));
            let fut = publish.0.as_mut().expect("future").as_mut();
            loom::future::block_on(fut)
        });
        assert_eq!(got, Some(1));
        let mut c = t.join().unwrap();
        assert_eq!(
            c.0.as_mut().map(|c| c.try_consume_next().unwrap()),
            Some(Some(101))
        );
        drop(c);
        drop(p);
    });
}
