//! Pre-faulted rings (issue 11, item 3): a consumer faults the ring's pages in at attach, so the
//! first messages after attach take no page fault. Counted with `getrusage(RUSAGE_THREAD)`'s
//! minor faults around a first pass over the ring (a count, not a time).
#![cfg(all(feature = "shm", target_os = "linux"))]

use myelon::{attach_shared_consumer, build_shared_single_producer};
use myelon_test_support::ShmGuard;

myelon::shm_event! {
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub struct Kib {
        pub seq: u64,
        pub pad: [u64; 127],
    }
}

impl Default for Kib {
    fn default() -> Self {
        Kib {
            seq: 0,
            pad: [0; 127],
        }
    }
}

const CAP: usize = 1024; // 1 KiB events + stamp: ~2 MiB of slots, ~540 pages

fn minor_faults() -> i64 {
    // SAFETY: `getrusage` writes one `rusage` we own; all-zero is a valid initial value.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_THREAD counts this thread only.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) }, 0);
    u.ru_minflt
}

/// Faults taken while consuming a full ring's worth of events right after attach.
fn first_pass_faults(prefault: bool) -> i64 {
    let seg = ShmGuard::new("prefault");
    let mut p = build_shared_single_producer::<Kib>(seg.name(), CAP)
        .build_producer(Kib::default)
        .expect("producer");
    let mut c = attach_shared_consumer::<Kib>(seg.name(), CAP)
        .with_prefault(prefault)
        .build_consumer()
        .expect("consumer");
    for s in 0..CAP as u64 {
        p.publish(|e| e.seq = s);
    }
    let before = minor_faults();
    let mut sum = 0u64;
    for _ in 0..CAP {
        let l = c
            .try_consume_next_leased()
            .expect("consume")
            .expect("event");
        sum = sum.wrapping_add(l.seq).wrapping_add(l.pad[126]);
    }
    let faults = minor_faults() - before;
    assert_eq!(sum, (0..CAP as u64).sum::<u64>());
    faults
}

#[test]
fn a_prefaulted_consumer_takes_no_page_faults_on_its_first_pass() {
    let cold = first_pass_faults(false);
    let warm = first_pass_faults(true);
    let pages = (CAP * 1088 / 4096) as i64;
    println!("first pass over {pages} pages: {cold} minor faults without prefault, {warm} with");
    // Read faults on shared memory map up to 16 neighbouring pages at once (the kernel's
    // fault-around), so a cold first pass takes about pages / 16 of them.
    assert!(
        cold >= pages / 32,
        "without prefault the first pass faults ({cold})"
    );
    assert!(warm <= 1, "prefaulted: no faults ({warm})");
}
