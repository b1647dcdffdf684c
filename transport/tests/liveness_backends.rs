//! Required-consumer liveness on the real backends (SHM and mmap), in one process with real
//! time: the same `Producer<E, B>` code as the simulator. A stalled required consumer raises one
//! alert; the same id coming back (its entry was kept) and advancing recovers with nothing lost;
//! a stall past the grace period ends in `GracefulShutdownTriggered`.

mod common;

use common::{Fixture, MmapFixture, ShmFixture};
use myelon::{
    RequiredConsumerAlert, RequiredConsumerAlertKind, RequiredConsumerError,
    RequiredConsumerLivenessConfig, SharedDisruptorBuilder,
};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CAP: usize = 16;
const LONG: Duration = Duration::from_secs(30);

fn config(
    progress: Duration,
    grace: Duration,
) -> (
    RequiredConsumerLivenessConfig,
    Receiver<RequiredConsumerAlert>,
) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let cfg = RequiredConsumerLivenessConfig::new(["r0"])
        .unwrap()
        .with_progress_timeout(progress)
        .unwrap()
        .with_progress_check_interval(progress / 10)
        .unwrap()
        .with_shutdown_grace_period(grace)
        .unwrap()
        .with_alert_hook(Arc::new(move |a| {
            let _ = tx.lock().unwrap().send(a.clone());
        }));
    (cfg, rx)
}

fn kind(rx: &Receiver<RequiredConsumerAlert>) -> RequiredConsumerAlertKind {
    rx.recv_timeout(LONG).expect("an alert").kind
}

fn stall_then_same_id_return_recovers<F: Fixture>() {
    let fx = F::new();
    let mut p = SharedDisruptorBuilder::with_backend(fx.producer(), fx.name(), CAP)
        .build_producer(|| 0u64)
        .unwrap();
    let (cfg, rx) = config(Duration::from_millis(50), LONG);
    p.enable_required_consumer_liveness(cfg).unwrap();
    let attach = || {
        SharedDisruptorBuilder::<u64, _>::with_backend(fx.consumer(), fx.name(), CAP)
            .with_consumer_id("r0")
            .build_consumer()
            .unwrap()
    };
    let mut c = attach();
    c.keep_registration_on_drop();
    drop(c); // The entry stays, gating, for the same id.
    let total = 4 * CAP as u64;
    let publisher = std::thread::spawn(move || {
        for i in 0..total {
            p.publish_managed(|e| *e = i)?;
        }
        Ok::<_, RequiredConsumerError>(p)
    });
    assert_eq!(kind(&rx), RequiredConsumerAlertKind::Stalled);
    let mut c = attach();
    assert!(c.resumed());
    let got: Vec<u64> = (0..total)
        .map(|_| c.consume_next_timeout(LONG).expect("event"))
        .collect();
    assert_eq!(got, (0..total).collect::<Vec<_>>(), "nothing lost");
    assert_eq!(kind(&rx), RequiredConsumerAlertKind::Recovered);
    publisher.join().unwrap().expect("all published");
}

fn stall_past_grace_shuts_down<F: Fixture>() {
    let fx = F::new();
    let mut p = SharedDisruptorBuilder::with_backend(fx.producer(), fx.name(), CAP)
        .build_producer(|| 0u64)
        .unwrap();
    let (cfg, rx) = config(Duration::from_millis(20), Duration::from_millis(20));
    p.enable_required_consumer_liveness(cfg).unwrap();
    let _c = SharedDisruptorBuilder::<u64, _>::with_backend(fx.consumer(), fx.name(), CAP)
        .with_consumer_id("r0")
        .build_consumer()
        .unwrap();
    for i in 0..CAP as u64 {
        p.publish_managed(|e| *e = i).unwrap();
    }
    let err = p.publish_managed(|e| *e = 0).unwrap_err();
    assert!(
        matches!(&err, RequiredConsumerError::GracefulShutdownTriggered { consumer_id, .. } if consumer_id == "r0")
    );
    assert_eq!(p.publish_managed(|e| *e = 0), Err(err));
    assert_eq!(kind(&rx), RequiredConsumerAlertKind::Stalled);
    assert!(rx.try_recv().is_err(), "exactly one alert");
}

#[test]
fn shm_stall_then_same_id_return_recovers() {
    stall_then_same_id_return_recovers::<ShmFixture>();
}

#[test]
fn mmap_stall_then_same_id_return_recovers() {
    stall_then_same_id_return_recovers::<MmapFixture>();
}

#[test]
fn shm_stall_past_grace_shuts_down() {
    stall_past_grace_shuts_down::<ShmFixture>();
}

#[test]
fn mmap_stall_past_grace_shuts_down() {
    stall_past_grace_shuts_down::<MmapFixture>();
}
