//! The quick start of the API reference with a consumer added (the reference imports the raw
//! substrate under its original crate name `disruptor_mp`; here that name is an alias of
//! `myelon`, so the types are identical across the two paths). The snippet exactly as printed,
//! with the `disruptor-mp` re-export crate as its second dependency, is
//! `disruptor-mp/tests/quickstart.rs`.

extern crate myelon as disruptor_mp;

use disruptor_mp::portable_shm_segment_name;
use myelon::producer::CoordinationMode;
use myelon::{attach_shared_consumer, build_shared_single_producer};

myelon::shm_event! {
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Event {
        pub sequence: u64,
    }
}

#[test]
fn quick_start_as_written() {
    // Unique per process so concurrent test runs do not collide; the reference uses "demo".
    let segment = portable_shm_segment_name(&format!("demo-{}", std::process::id()));
    let mut producer = build_shared_single_producer::<Event>(&segment, 4096)
        .discover_consumer_with_prefix(1, "cp")
        .with_coordination(CoordinationMode::Immediate)
        .build_producer(Event::default)
        .expect("build producer");

    let mut consumer = attach_shared_consumer::<Event>(&segment, 4096)
        .with_consumer_id("cp_0")
        .build_consumer()
        .expect("attach consumer");

    producer.publish(|slot| slot.sequence = 1);

    let event = consumer
        .consume_next_leased_timeout(std::time::Duration::from_secs(10))
        .expect("event");
    assert_eq!(event.sequence, 1);
}

#[test]
fn type_identity_across_the_alias() {
    fn takes_myelon(_: Option<myelon::SharedConsumer<Event>>) {}
    let from_alias: Option<disruptor_mp::SharedConsumer<Event>> = None;
    takes_myelon(from_alias);
}
