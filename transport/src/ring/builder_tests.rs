//! Unit tests of the builder (coordination defaults, expected ids, deferred path errors).

use super::*;
use crate::backend::SimBackend;

fn builder(p: &SimBackend) -> SharedDisruptorBuilder<u64, SimBackend> {
    SharedDisruptorBuilder::with_backend(p.clone(), "ring", 8)
}

/// What a consumer `id` that attaches after two publishes receives first.
fn first_seen(named: bool, mode: Option<CoordinationMode>) -> Option<u64> {
    let p = SimBackend::new_world();
    let mut b = builder(&p);
    if named {
        b = b.with_consumer_id("c0");
    }
    if let Some(m) = mode {
        b = b.with_coordination(m);
    }
    let mut tx = b.build_producer(|| 0).expect("producer");
    tx.publish(|e| *e = 10);
    tx.publish(|e| *e = 11);
    let mut rx = builder(&p.sibling())
        .with_consumer_id("c0")
        .build_consumer()
        .expect("consumer");
    tx.publish(|e| *e = 12);
    rx.try_consume_next().expect("consume")
}

#[test]
fn named_consumers_are_reserved_unless_immediate_is_chosen() {
    use CoordinationMode::*;
    let cases = [
        (true, None, Some(10)),
        (true, Some(BufferUntilConsumers), Some(10)),
        (true, Some(Immediate), Some(12)),
        (false, None, Some(12)),
    ];
    for (named, mode, want) in cases {
        assert_eq!(
            first_seen(named, mode),
            want,
            "named {named}, mode {mode:?}"
        );
    }
}

/// `["w", "w"]` used to reserve two entries of which only one can ever be claimed: the
/// ring was full forever after `capacity` events. Now it is a typed error at build time.
#[test]
fn duplicate_expected_ids_are_refused() {
    let p = SimBackend::new_world();
    let r = builder(&p)
        .with_consumer_ids(["w", "x"])
        .with_consumer_ids(["w"])
        .build_producer(|| 0);
    match r {
        Err(MultiProcessError::DuplicateConsumerId { id }) => assert_eq!(id, "w"),
        other => panic!("{:?}", other.map(drop)),
    }
    // Nothing was created under the name.
    assert!(matches!(p.open("ring"), Err(BackendError::NotFound { .. })));
}

#[test]
fn a_prefix_is_reserved_by_default() {
    let p = SimBackend::new_world();
    let mut tx = builder(&p)
        .discover_consumer_with_prefix(1, "cp")
        .build_producer(|| 0)
        .expect("producer");
    tx.publish(|e| *e = 5);
    let mut rx = builder(&p.sibling())
        .with_consumer_id("cp_0")
        .build_consumer()
        .expect("consumer");
    assert_eq!(rx.try_consume_next().expect("consume"), Some(5));
}

#[test]
#[cfg(feature = "mmap")] // `with_invalid_name` is the mmap builders' (a path without a file name)
fn a_deferred_name_error_is_reported_by_build() {
    let b = SharedDisruptorBuilder::<u64, _>::with_invalid_name(
        SimBackend::new_world(),
        "bad/".into(),
        "path has no UTF-8 file name",
        8,
    );
    for r in [
        b.clone().build_producer(|| 0).map(drop),
        b.build_consumer().map(drop),
    ] {
        match r {
            Err(MultiProcessError::Backend(BackendError::InvalidName { name, .. })) => {
                assert_eq!(name, "bad/")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn write_prefetch_is_off_unless_asked_for() {
    let p = SimBackend::new_world();
    let lines = |on: Option<bool>| {
        let mut b = SharedDisruptorBuilder::<[u8; 1024], SimBackend>::with_backend(
            p.clone(),
            &format!("wp-{on:?}"),
            8,
        );
        if let Some(on) = on {
            b = b.with_write_prefetch(on);
        }
        let tx = b.build_producer(|| [0; 1024]).expect("producer");
        tx.segment().write_prefetch_lines()
    };
    assert_eq!(lines(None), 0, "off by default");
    assert_eq!(lines(Some(false)), 0);
    // A 1 KiB event and its stamp: 17 lines, all prefetched (bar the stamp's) where the CPU
    // has prefetchw.
    let want = if crate::ring::layout::cpu_has_prefetchw() {
        17
    } else {
        0
    };
    assert_eq!(lines(Some(true)), want);
}
