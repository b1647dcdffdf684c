//! CPU placement from the builder (issue 11, item 4): `with_process_core`,
//! `with_consumer_core` and the `MYELON_PROCESS_CORE` / `MYELON_CONSUMER_CORE` variables pin the
//! building thread (and an `AutoConsumer`'s thread); a core the process may not use is a typed
//! error naming the allowed ones.
#![cfg(all(feature = "shm", target_os = "linux"))]

use myelon::backend::SimBackend;
use myelon::{AutoConsumer, AutoWaitStrategy, MultiProcessError, SharedDisruptorBuilder};
use myelon_backend_shm::affinity::allowed_cpus;
use std::sync::{Arc, Mutex};

fn builder(b: &SimBackend) -> SharedDisruptorBuilder<u64, SimBackend> {
    SharedDisruptorBuilder::with_backend(b.clone(), "pin", 8)
}

/// Runs `f` on a fresh thread (pinning it does not touch the test harness's threads).
fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("thread")
}

#[test]
fn the_building_thread_is_pinned_to_the_process_core() {
    let cores = allowed_cpus().expect("affinity");
    let core = *cores.last().unwrap();
    let after = on_thread(move || {
        let b = SimBackend::new_world();
        let _p = builder(&b)
            .with_process_core(core)
            .build_producer(|| 0)
            .unwrap();
        allowed_cpus().unwrap()
    });
    assert_eq!(after, vec![core]);
}

#[test]
fn a_core_the_process_may_not_use_is_a_typed_error() {
    let cores = allowed_cpus().expect("affinity");
    let err = on_thread(|| {
        let b = SimBackend::new_world();
        builder(&b)
            .with_process_core(100_000)
            .build_producer(|| 0)
            .unwrap_err()
    });
    match err {
        MultiProcessError::InvalidCore { core, allowed } => {
            assert_eq!((core, allowed), (100_000, cores));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn the_consumer_core_pins_the_consumer_and_its_auto_thread() {
    let cores = allowed_cpus().expect("affinity");
    let (first, last) = (cores[0], *cores.last().unwrap());
    let (built_on, auto_on) = on_thread(move || {
        let b = SimBackend::new_world();
        let mut p = builder(&b).build_producer(|| 0).unwrap();
        let c = builder(&b.sibling())
            .with_process_core(first)
            .with_consumer_core(last)
            .build_consumer()
            .unwrap();
        let built_on = allowed_cpus().unwrap();
        assert_eq!(c.core(), Some(last));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        let auto = AutoConsumer::spawn(c, AutoWaitStrategy::Yield, move |_, _, _| {
            *seen2.lock().unwrap() = allowed_cpus().unwrap();
        });
        p.publish(|e| *e = 1);
        drop(p);
        let (_, r) = auto.join();
        r.unwrap_or_else(|e| assert!(matches!(e, MultiProcessError::Closed), "{e}"));
        let auto_on = seen.lock().unwrap().clone();
        (built_on, auto_on)
    });
    assert_eq!(built_on, vec![last], "consumer core wins over process core");
    assert_eq!(
        auto_on,
        vec![last],
        "the AutoConsumer thread runs there too"
    );
}

#[test]
fn the_environment_names_cores_when_the_builder_does_not() {
    let cores = allowed_cpus().expect("affinity");
    let core = *cores.last().unwrap();
    // The only test of this binary that reads these variables.
    std::env::set_var(myelon::CONSUMER_CORE_ENV, core.to_string());
    let after = on_thread(|| {
        let b = SimBackend::new_world();
        let _p = builder(&b).build_producer(|| 0).unwrap();
        let _c = builder(&b.sibling()).build_consumer().unwrap();
        allowed_cpus().unwrap()
    });
    std::env::set_var(myelon::CONSUMER_CORE_ENV, "not-a-core");
    let err = on_thread(|| {
        let b = SimBackend::new_world();
        let _p = builder(&b).build_producer(|| 0).unwrap();
        builder(&b.sibling()).build_consumer().unwrap_err()
    });
    std::env::remove_var(myelon::CONSUMER_CORE_ENV);
    assert_eq!(after, vec![core]);
    assert!(
        matches!(err, MultiProcessError::InvalidConfig { .. }),
        "{err}"
    );
}
