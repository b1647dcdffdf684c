//! Required-consumer liveness on the framed and typed producers (sim backend, virtual time): a
//! required consumer that never appears turns a managed publish into a typed error instead of
//! a hang, and messages keep flowing while the required consumers keep up.

mod common;

use myelon::backend::SimBackend;
use myelon::transport::{FixedFrame, FramedTransportConsumer, FramedTransportProducer};
use myelon::{
    RequiredConsumerError, RequiredConsumerLivenessConfig, SharedDisruptorBuilder, TransportError,
};
use std::sync::mpsc;
use std::time::Duration;

type Frame = FixedFrame<52>;
const CAP: usize = 8;

fn config(ids: &[&str]) -> RequiredConsumerLivenessConfig {
    common::fast_liveness(ids)
}

/// Runs `f` on a thread and fails (instead of hanging) if it does not return in a generous
/// real-time bound; virtual time is what the code under test measures.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("a managed publish must end with a message or an error")
}

#[test]
fn framed_publish_managed_fails_on_a_missing_required_consumer() {
    let r = bounded(|| {
        let b = SimBackend::new_world();
        let name = common::unique("flive");
        let mut p = FramedTransportProducer::<Frame, SimBackend>::from_builder(
            SharedDisruptorBuilder::with_backend(b.clone(), &name, CAP),
        )
        .expect("producer");
        p.enable_required_consumer_liveness(config(&["r0"]))
            .expect("enable");
        // Room for two 4-frame messages before the missing consumer's reservation gates.
        for _ in 0..2 {
            p.publish_managed(&[1u8; 4 * 52]).expect("room");
        }
        p.publish_managed(&[2u8; 52])
    });
    match r {
        Err(TransportError::Liveness(RequiredConsumerError::StartupTimeout { missing })) => {
            assert_eq!(missing, vec!["r0".to_string()]);
        }
        other => panic!("expected a startup timeout, got {other:?}"),
    }
}

#[test]
fn framed_publish_managed_flows_while_consumers_keep_up() {
    let b = SimBackend::new_world();
    let name = common::unique("flive2");
    let mut p = FramedTransportProducer::<Frame, SimBackend>::from_builder(
        SharedDisruptorBuilder::with_backend(b.clone(), &name, CAP),
    )
    .expect("producer");
    let mut c = FramedTransportConsumer::<Frame, SimBackend>::from_builder(
        SharedDisruptorBuilder::with_backend(b.sibling(), &name, CAP).with_consumer_id("r0"),
    )
    .expect("consumer");
    p.enable_required_consumer_liveness(config(&["r0"]))
        .expect("enable");
    for i in 0..50u8 {
        let len = usize::from(i) * 7 % (3 * 52);
        p.publish_managed(&vec![i; len]).expect("publish");
        let m = c.try_recv().expect("recv").expect("message");
        assert_eq!(&*m, &vec![i; len][..]);
    }
}

#[cfg(feature = "bincode")]
#[test]
fn typed_publish_managed_reports_liveness() {
    use myelon::codec::BincodeCodec;
    use myelon::{TypedProducer, TypedPublishError};
    let r = bounded(|| {
        let b = SimBackend::new_world();
        let name = common::unique("tlive");
        let mut p = TypedProducer::<u64, BincodeCodec, Frame, SimBackend>::from_builder(
            SharedDisruptorBuilder::with_backend(b.clone(), &name, CAP),
            BincodeCodec::new(),
        )
        .expect("producer");
        p.enable_required_consumer_liveness(config(&["r0"]))
            .expect("enable");
        for i in 0..CAP as u64 {
            p.publish_managed(&i).expect("room");
        }
        p.publish_managed(&99)
    });
    assert!(
        matches!(
            r,
            Err(TypedPublishError::Transport(TransportError::Liveness(
                RequiredConsumerError::StartupTimeout { .. }
            )))
        ),
        "{r:?}"
    );
}
