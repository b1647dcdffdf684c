//! The steady-state hot paths allocate nothing: publish, try_publish, publish_batch,
//! leased and batch consumption. Counted per thread by a wrapping global allocator.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

mod common;
use common::{fill, unique, Event};

#[test]
fn steady_state_hot_paths_do_not_allocate() {
    let name = unique("noalloc");
    let mut p = myelon::build_shared_single_producer::<Event>(&name, 1024)
        .build_producer(Event::default)
        .expect("producer");
    let mut c = myelon::attach_shared_consumer::<Event>(&name, 1024)
        .with_consumer_id("c")
        .build_consumer()
        .expect("consumer");
    let round = |p: &mut myelon::SharedProducer<Event>,
                 c: &mut myelon::SharedConsumer<Event>,
                 base: u64| {
        let mut seen = 0u64;
        for i in 0..300 {
            p.publish(|e| fill(e, base + i));
        }
        for i in 300..600 {
            p.try_publish(|e| fill(e, base + i)).expect("space");
        }
        p.publish_batch(300, |i, e| fill(e, base + 600 + i as u64));
        for _ in 0..450 {
            let lease = c.try_consume_next_leased().unwrap().expect("event");
            seen += u64::from(lease.sequence == base + seen);
        }
        while c
            .try_consume_batch(64, |e, _, _| seen += u64::from(e.sequence == base + seen))
            .unwrap()
            > 0
        {}
        seen
    };
    // Warm up: first scans, lazily initialised statics.
    assert_eq!(round(&mut p, &mut c, 0), 900);
    let before = allocations();
    for r in 1..200u64 {
        assert_eq!(round(&mut p, &mut c, r * 900), 900);
    }
    assert_eq!(allocations() - before, 0, "the hot paths allocated");
}
