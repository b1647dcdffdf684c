//! Every example of README.md (and of the crate docs) that shows two processes, run in two (or
//! more) real processes exactly as written, checking what the text says it prints.
//!
//! Each example's code is kept here between `// README BEGIN <part>` and `// README END` lines:
//! the shared part (imports, types) at module level and each process's half as the body of a
//! function. [`readme_holds_this_code_verbatim`] checks that README.md holds every example as the
//! concatenation of its parts (so the README and this file cannot drift apart), and the Layer 0
//! example also in the crate docs of `src/lib.rs`. Lines after `// README END` in a function are
//! the harness: they keep a producer process alive until its consumer has finished (a producer
//! that exits removes its ring) and turn the README's hidden `# Ok(())` into the function's.
//!
//! The producer half runs first and reports `PUBLISHED`; only then does the consumer process
//! start. The README uses fixed ring names (`/readme-l0`, ...); the test holds an exclusive
//! `flock` on `/dev/shm` while it runs so that two checkouts' test runs never meet on them.

use myelon_test_support::{report, ChildProc, Spawn, CHILD_OK, DEADLINE};
use std::error::Error;
use std::os::fd::AsRawFd;

type Result<T = ()> = std::result::Result<T, Box<dyn Error>>;

const ENTRY: &str = "child_role";

#[rustfmt::skip]
#[allow(clippy::all, dead_code)]
mod layer0 {
    // README BEGIN layer0-prelude
    use myelon::{attach_shared_consumer, build_shared_single_producer, portable_shm_segment_name};

    myelon::shm_event! {                       // #[repr(C)] + a compile-time check that every field
        #[derive(Clone, Copy, Debug, Default)] // is valid for any bit pattern and holds no pointer
        pub struct Event { pub sequence: u64, pub checksum: u64 }
    }
    // README END

    pub fn producer() -> crate::Result {
        // README BEGIN layer0-producer
        let segment = portable_shm_segment_name("readme-l0");       // "/readme-l0", fits macOS's 31 bytes
        let mut producer = build_shared_single_producer::<Event>(&segment, 4096)
            .discover_consumer_with_prefix(1, "cp")                 // one consumer "cp…": reserved, so it
            .build_producer(Event::default)                         // gets every event however late it comes
            .expect("build producer");
        producer.publish(|slot| slot.sequence = 1);
        producer.publish(|slot| slot.sequence = 2);
        // README END
        crate::hold(producer);
        Ok(())
    }

    pub fn consumer() -> crate::Result {
        let segment = portable_shm_segment_name("readme-l0");
        // README BEGIN layer0-consumer
        // another process
        let mut consumer = attach_shared_consumer::<Event>(&segment, 4096)
            .with_consumer_id("cp_0")
            .build_consumer()
            .expect("attach");
        while let Some(event) = consumer.try_consume_next_leased().expect("ring") {
            println!("received sequence {}", event.sequence);      // read in place; released on drop
        }
        // README END
        Ok(())
    }
}

#[rustfmt::skip]
#[allow(clippy::all, dead_code)]
mod framed {
    // README BEGIN framed-prelude
    use myelon::transport::{FixedFrame, FramedTransportConsumer, FramedTransportProducer};
    use myelon::{attach_shared_consumer, build_shared_single_producer};

    type Frame = FixedFrame<{ 4096 - 12 }>;       // 4 KiB slots: 12-byte header + 4084 payload bytes
    // README END

    pub fn producer() -> crate::Result {
        // README BEGIN framed-producer
        let mut producer = FramedTransportProducer::from_builder(
            build_shared_single_producer::<Frame>("/readme-frames", 1024).with_consumer_id("c0"),
        )?;
        producer.publish(b"small")?;                       // one frame
        producer.publish(&vec![7u8; 100_000])?;            // 25 frames, committed as one unit

        let mut claim = producer.try_claim(8192)?;         // write a message in place (no staging buffer)
        std::io::Write::write_all(&mut claim, &[1u8; 8192])?;
        claim.commit();                                    // (dropping the claim publishes nothing)
        // README END
        crate::hold(producer);
        Ok(())
    }

    pub fn consumer() -> crate::Result {
        // README BEGIN framed-consumer
        // another process
        let mut consumer = FramedTransportConsumer::from_builder(
            attach_shared_consumer::<Frame>("/readme-frames", 1024).with_consumer_id("c0"),
        )?;
        while let Some(msg) = consumer.try_recv()? {
            println!("message {} of {} bytes, in place: {}", msg.message_id(), msg.len(), msg.is_in_place());
        }
        // README END
        Ok(())
    }
}

#[rustfmt::skip]
#[allow(clippy::all, dead_code)]
mod typed {
    // README BEGIN typed-prelude
    use myelon::bincode::{Decode, Encode};
    use myelon::codec::BincodeCodec;
    use myelon::transport::FixedFrame;
    use myelon::{attach_shared_consumer, build_shared_single_producer, TypedConsumer, TypedProducer};

    #[derive(Debug, Encode, Decode)]
    #[bincode(crate = "myelon::bincode")]            // the derive finds bincode through myelon
    struct Request { id: u64, prompt: String }

    type Frame = FixedFrame<1012>;
    // README END

    pub fn producer() -> crate::Result {
        // README BEGIN typed-producer
        let mut tx = TypedProducer::<Request, _, Frame>::from_builder(
            build_shared_single_producer("/readme-requests", 256).with_consumer_id("worker"),
            BincodeCodec::<{ 1 << 20 }>::new(),          // decode limit: 1 MiB
        )?;
        tx.publish(&Request { id: 1, prompt: "hello".into() })?;
        // README END
        crate::hold(tx);
        Ok(())
    }

    pub fn consumer() -> crate::Result {
        // README BEGIN typed-consumer
        // another process
        let mut rx = TypedConsumer::<Request, _, Frame>::from_builder(
            attach_shared_consumer("/readme-requests", 256).with_consumer_id("worker"),
            BincodeCodec::<{ 1 << 20 }>::new(),
        )?;
        let request: Request = rx.recv_timeout(std::time::Duration::from_secs(10))?;
        println!("{request:?}");                         // Request { id: 1, prompt: "hello" }
        // README END
        Ok(())
    }
}

#[rustfmt::skip]
#[allow(clippy::all, dead_code)]
mod topology {
    // README BEGIN topology-prelude
    use myelon::bincode::{Decode, Encode};
    use myelon::codec::BincodeCodec;
    use myelon::{FixedTopology, WorkerCount};
    use std::time::Duration;

    #[derive(Debug, Encode, Decode)]
    #[bincode(crate = "myelon::bincode")]
    struct Request { id: u64, tokens: Vec<u32> }
    #[derive(Debug, Encode, Decode)]
    #[bincode(crate = "myelon::bincode")]
    struct Response { id: u64, logit: f32 }
    // README END

    fn topo() -> crate::Result<FixedTopology> {
        // README BEGIN topology-common
        let topo = FixedTopology::new("llama-prod-1", WorkerCount::new(4)?)?
            .with_rendezvous_timeout(Duration::from_secs(30));
        // README END
        Ok(topo)
    }

    pub fn scheduler() -> crate::Result {
        let topo = topo()?;
        // README BEGIN topology-scheduler
        // scheduler process
        let mut sched = topo.scheduler::<Request, Response, _>(BincodeCodec::<{ 1 << 20 }>)?;
        sched.broadcast(&Request { id: 1, tokens: vec![1, 2, 3] })?;
        let answer = sched.recv_from(2, Duration::from_secs(10))?;     // worker rank 2's response
        println!("{answer:?}");                                         // Response { id: 1, logit: 0.5 }
        // README END
        crate::hold(sched);
        Ok(())
    }

    pub fn worker() -> crate::Result {
        let topo = topo()?;
        // README BEGIN topology-worker
        // worker processes, RANK=0..=3 in their environment (as torchrun sets it)
        let rank: usize = std::env::var("RANK")?.parse()?;
        let mut worker = topo.worker::<Request, Response, _>(rank, BincodeCodec::<{ 1 << 20 }>)?;
        let req = worker.recv_timeout(Duration::from_secs(10))?;
        worker.respond(&Response { id: req.id, logit: rank as f32 / 4.0 })?;
        // README END
        crate::hold(worker);
        Ok(())
    }
}

/// Keeps a process's endpoint (and so its ring) alive: reports `PUBLISHED`, then waits until the
/// parent closes this child's stdin.
fn hold<T>(endpoint: T) {
    report("PUBLISHED", 1);
    while myelon_test_support::read_command().is_some() {}
    drop(endpoint);
}

#[test]
fn child_role() {
    let Some(role) = myelon_test_support::role() else {
        return;
    };
    let run = match role.as_str() {
        "layer0-producer" => layer0::producer,
        "layer0-consumer" => layer0::consumer,
        "framed-producer" => framed::producer,
        "framed-consumer" => framed::consumer,
        "typed-producer" => typed::producer,
        "typed-consumer" => typed::consumer,
        "topology-scheduler" => topology::scheduler,
        "topology-worker" => topology::worker,
        other => panic!("unknown child role {other:?}"),
    };
    run().unwrap_or_else(|e| panic!("{role}: {e}"));
    report(CHILD_OK, role);
}

// ---------------------------------------------------------------------------------------------
// The README text.

const README: &str = include_str!("../../README.md");
const LIB_RS: &str = include_str!("../src/lib.rs");
const THIS_FILE: &str = include_str!("readme_examples.rs");

/// The lines between `// README BEGIN <part>` and the next `// README END` of this file,
/// dedented by the marker's indentation.
fn part(name: &str) -> String {
    let begin = format!("// README BEGIN {name}");
    let mut lines = THIS_FILE.lines();
    let marker = lines
        .find(|l| l.trim() == begin)
        .unwrap_or_else(|| panic!("no {begin:?}"));
    let indent = marker.len() - marker.trim_start().len();
    let mut out = String::new();
    for l in lines.take_while(|l| l.trim() != "// README END") {
        out.push_str(l.get(indent..).unwrap_or(l.trim_start()));
        out.push('\n');
    }
    out
}

/// An example as the README prints it: its parts, one blank line between two.
fn example(parts: &[&str]) -> String {
    let parts: Vec<String> = parts.iter().map(|p| part(p)).collect();
    parts.join("\n")
}

/// The crate docs of lib.rs with their `//! ` prefix removed.
fn crate_docs() -> String {
    LIB_RS
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| format!("{}\n", l.strip_prefix(' ').unwrap_or(l)))
        .collect()
}

const EXAMPLES: [&[&str]; 4] = [
    &["layer0-prelude", "layer0-producer", "layer0-consumer"],
    &["framed-prelude", "framed-producer", "framed-consumer"],
    &["typed-prelude", "typed-producer", "typed-consumer"],
    &[
        "topology-prelude",
        "topology-common",
        "topology-scheduler",
        "topology-worker",
    ],
];

#[test]
fn readme_holds_this_code_verbatim() {
    for parts in EXAMPLES {
        let text = example(parts);
        assert!(
            README.contains(&format!("```rust,no_run\n{text}")),
            "README.md does not hold this example as tests/readme_examples.rs runs it:\n{text}"
        );
    }
    let layer0 = example(EXAMPLES[0]);
    assert!(
        crate_docs().contains(&format!("```no_run\n{layer0}```")),
        "the crate docs (src/lib.rs) do not hold the README's Layer 0 example:\n{layer0}"
    );
}

// ---------------------------------------------------------------------------------------------
// Running them.

/// Holds an exclusive lock on the `/dev/shm` directory while alive (the README's ring names are
/// fixed, so two runs of this test must not overlap).
struct ShmDirLock {
    _dir: std::fs::File,
}

impl ShmDirLock {
    fn take() -> ShmDirLock {
        let dir = std::fs::File::open("/dev/shm").expect("open /dev/shm");
        // SAFETY: `dir` is an open descriptor for the duration of the call; flock only operates
        // on it.
        let rc = unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock /dev/shm: {}", std::io::Error::last_os_error());
        ShmDirLock { _dir: dir }
    }
}

/// What a finished child printed on stdout (its transcript, without stderr lines).
fn printed(child: &mut ChildProc) -> Vec<String> {
    child.finish(DEADLINE);
    child
        .transcript()
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("[stderr]"))
        .map(|l| l.trim_start_matches("test child_role ... ").to_string())
        .collect()
}

/// Runs `<name>-producer`, waits until it has published, then runs `<name>-consumer` and
/// returns what the consumer printed.
fn producer_then_consumer(name: &str) -> Vec<String> {
    let mut producer = Spawn::new(ENTRY, &format!("{name}-producer")).spawn();
    producer.expect("PUBLISHED", DEADLINE);
    let mut consumer = Spawn::new(ENTRY, &format!("{name}-consumer")).spawn();
    let out = printed(&mut consumer);
    producer.close_stdin();
    producer.finish(DEADLINE);
    out
}

fn lines_with(out: &[String], pat: &str) -> Vec<String> {
    out.iter().filter(|l| l.contains(pat)).cloned().collect()
}

#[test]
fn readme_examples_run_in_two_processes() {
    let _lock = ShmDirLock::take();

    let out = producer_then_consumer("layer0");
    assert_eq!(
        lines_with(&out, "received sequence"),
        ["received sequence 1", "received sequence 2"],
        "{out:?}"
    );

    let out = producer_then_consumer("framed");
    assert_eq!(
        lines_with(&out, "message "),
        [
            "message 0 of 5 bytes, in place: true",
            "message 1 of 100000 bytes, in place: false",
            "message 2 of 8192 bytes, in place: false",
        ],
        "{out:?}"
    );

    let out = producer_then_consumer("typed");
    assert_eq!(
        lines_with(&out, "Request"),
        [r#"Request { id: 1, prompt: "hello" }"#],
        "{out:?}"
    );

    // The topology: a scheduler and four workers, started together (they rendezvous).
    let mut scheduler = Spawn::new(ENTRY, "topology-scheduler").spawn();
    let mut workers: Vec<ChildProc> = (0..4)
        .map(|rank| {
            Spawn::new(ENTRY, "topology-worker")
                .env("RANK", rank)
                .spawn()
        })
        .collect();
    scheduler.expect("PUBLISHED", DEADLINE);
    for w in &mut workers {
        w.expect("PUBLISHED", DEADLINE);
    }
    for w in &mut workers {
        w.close_stdin();
    }
    scheduler.close_stdin();
    let out = printed(&mut scheduler);
    for w in &mut workers {
        w.finish(DEADLINE);
    }
    assert_eq!(
        lines_with(&out, "Response"),
        ["Response { id: 1, logit: 0.5 }"],
        "{out:?}"
    );
}
