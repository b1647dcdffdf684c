//! Loom models of publish/consume and gating over the simulated region.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p myelon --no-default-features --test loom --release`
//! Mutant check: add `--cfg myelon_mutant=\"relaxed_stamp\"` to RUSTFLAGS; the models must fail
//! with a loom causality violation.
#![cfg(loom)]

use myelon::backend::SimBackend;
use myelon::SharedDisruptorBuilder;

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
