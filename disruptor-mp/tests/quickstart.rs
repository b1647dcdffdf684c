//! The API reference's quick start, compiled and run exactly as printed there, with the two
//! dependency lines this crate's docs give (`myelon` and `disruptor-mp`). `Event` is defined with
//! `myelon::shm_event!` around it, as the reference implies.
//!
//! The snippet names its segment `"demo"`, a fixed name in `/dev/shm`; the test holds an
//! exclusive `flock` on the `/dev/shm` directory while it runs so that two runs of it (another
//! checkout's test suite) never meet on that name.

use std::os::fd::AsRawFd;

myelon::shm_event! {
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Event {
        pub sequence: u64,
    }
}

/// The quick start, verbatim (the README's "Coming from the published myelon" section points
/// here). Not formatted, so it stays byte for byte as printed; the reference imports
/// `attach_shared_consumer` for the consumer half it does not show.
#[rustfmt::skip]
#[allow(unused_imports)]
fn quick_start() {
use myelon::{
attach_shared_consumer, build_shared_single_producer,
};
use myelon::producer::CoordinationMode;
use disruptor_mp::portable_shm_segment_name;
let segment = portable_shm_segment_name("demo");
let mut producer = build_shared_single_producer::<Event>(&segment, 4096)
.discover_consumer_with_prefix(1, "cp")
.with_coordination(CoordinationMode::Immediate)
.build_producer(Event::default)
.expect("build producer");
producer.publish(|slot| slot.sequence = 1);
}

/// Holds an exclusive lock on the `/dev/shm` directory while alive.
struct ShmDirLock {
    _dir: std::fs::File,
}

impl ShmDirLock {
    fn take() -> ShmDirLock {
        let dir = std::fs::File::open("/dev/shm").expect("open /dev/shm");
        // SAFETY: `dir` is an open descriptor for the duration of the call; flock only
        // operates on it.
        let rc = unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock /dev/shm: {}", std::io::Error::last_os_error());
        ShmDirLock { _dir: dir }
    }
}

#[test]
fn quick_start_as_printed() {
    let _lock = ShmDirLock::take();
    quick_start();
    // The producer was dropped at the end of the snippet: its segment is gone.
    assert!(!std::path::Path::new("/dev/shm/demo").exists());
}

#[test]
fn type_identity_across_the_two_crates() {
    fn takes_myelon(_: Option<myelon::SharedConsumer<Event>>) {}
    let from_disruptor_mp: Option<disruptor_mp::SharedConsumer<Event>> = None;
    takes_myelon(from_disruptor_mp);
    let _: fn(&str) -> String = disruptor_mp::portable_shm_segment_name;
}
