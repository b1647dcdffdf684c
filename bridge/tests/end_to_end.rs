//! ring A → bridge → zenoh (loopback TCP, no scouting) → bridge → ring B, across real processes.
//!
//! * `hundred_thousand_messages_end_to_end`: a producer process publishes 100,000 seeded
//!   messages of random sizes (8 B to 3 KiB: one to three frames) on ring A; a consumer process
//!   on ring B checks every one (content and order).
//! * `receiving_bridge_killed_and_restarted`: the zenoh → ring bridge is SIGKILLed a third of
//!   the way through and started again (same state file); the consumer reattaches to the new
//!   ring B and counts what it missed and got twice; the bridge's (source, seq) accounting must
//!   explain exactly that difference (sent - gaps + duplicates = received).
//! * `sending_bridge_killed_and_restarted`: the same for the ring → zenoh bridge (it rejoins
//!   ring A under its consumer id); accounting exact.
//! * `lossy_mode_counts_what_zenoh_drops`: lossy mode against a stalled consumer: zenoh drops,
//!   and the gaps the receiving bridge counts are exactly the messages the consumer missed
//!   (up to the last one it received: a drop at the very end has no later message to reveal it).
//!   Every message the consumer gets is checked byte for byte: a sample zenoh damaged on the
//!   way (seen under this load) is dropped by the header's checksum and shows up as a gap.
//! * `stalled_consumer_stops_the_producer_then_nothing_is_lost`: lossless mode; the final
//!   consumer does not read until the original producer reports that its ring stayed full
//!   (a publish timed out); then every message arrives, in order.
//!
//! zenoh runs in peer mode with multicast scouting and gossip off, and every endpoint is an
//! explicit `tcp/127.0.0.1:<port>`. Every ring name is behind a guard that unlinks it; every
//! child is behind a guard that kills it.

mod support;

use myelon::transport::{FramedTransportConsumer, FramedTransportProducer, TransportError};
use myelon::{attach_shared_consumer, build_shared_single_producer, MultiProcessError};
use myelon_test_support::{
    env_str, env_u64, read_command, report, role, ChildProc, ShmGuard, Spawn, CHILD_OK,
};
use std::time::Duration;
use support::*;

const ENTRY: &str = "child_role";
const MAX_LEN: usize = 3000;

#[test]
fn child_role() {
    let Some(role) = role() else {
        return; // run as a plain test: nothing to do
    };
    match role.as_str() {
        "producer" => producer_role(),
        "consumer" => consumer_role(),
        other => panic!("unknown role {other}"),
    }
    report(CHILD_OK, role);
}

/// Creates ring A (reserving the bridge's id), publishes COUNT messages, then waits for CLOSE.
/// With STALL_PROBE=1 it first publishes until a publish times out (the ring stayed full for
/// 2 s), reports `STUCK <published>` and waits for GO. With PHASE1=k it reports `PHASE1 k`
/// after k messages and waits for GO.
fn producer_role() {
    let ring = env_str("RING");
    let (count, seed) = (env_u64("COUNT"), env_u64("SEED"));
    let builder = build_shared_single_producer::<Frame>(&ring, env_u64("CAP") as usize)
        .with_consumer_id("bridge-out");
    let mut p = FramedTransportProducer::<Frame>::from_builder(builder).expect("create ring A");
    report("CREATED", 1);
    let mut i = 0;
    if env_u64("STALL_PROBE") == 1 {
        let mut full_seen = 0u64;
        while i < count {
            let m = message(seed, i, MAX_LEN);
            match p.try_publish(&m) {
                Ok(_) => i += 1,
                Err(TransportError::Full { .. }) => {
                    full_seen += 1;
                    match p.publish_timeout(&m, Duration::from_secs(2)) {
                        Ok(_) => i += 1,
                        Err(TransportError::Ring(MultiProcessError::Timeout { .. })) => break,
                        Err(e) => panic!("publish_timeout: {e}"),
                    }
                }
                Err(e) => panic!("try_publish: {e}"),
            }
        }
        assert!(
            i < count,
            "the ring never stayed full: all {count} published"
        );
        assert!(full_seen > 0);
        report("STUCK", i);
        assert_eq!(read_command().as_deref(), Some("GO"));
    }
    let phase1 = std::env::var("PHASE1")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    while i < count {
        if Some(i) == phase1 {
            report("PHASE1", i);
            assert_eq!(read_command().as_deref(), Some("GO"));
        }
        p.publish(&message(seed, i, MAX_LEN)).expect("publish");
        i += 1;
    }
    report("PUBLISHED", i);
    assert_eq!(read_command().as_deref(), Some("CLOSE"));
}

fn attach_b(ring: &str, cap: usize) -> FramedTransportConsumer<Frame> {
    let b = attach_shared_consumer::<Frame>(ring, cap)
        .with_consumer_id("final")
        .with_attach_timeout(LONG);
    FramedTransportConsumer::<Frame>::from_builder(b).expect("attach ring B")
}

/// Receives from ring B until message COUNT-1. STRICT=1: every message must be the next one.
/// Otherwise (a bridge restart in the middle) it counts missing and repeated indices, follows
/// ring B to its next incarnation when its producer dies, and reports `REACHED` once a third
/// has arrived. STALL=1: reports `ATTACHED` and waits for GO before reading. UNTIL_CLOSED=1:
/// reads until ring B is closed instead (the last messages may never come).
fn consumer_role() {
    let ring = env_str("RING");
    let cap = env_u64("CAP") as usize;
    let (count, seed, strict) = (env_u64("COUNT"), env_u64("SEED"), env_u64("STRICT") == 1);
    let until_closed = std::env::var("UNTIL_CLOSED").is_ok_and(|v| v == "1");
    let mut c = attach_b(&ring, cap);
    if env_u64("STALL") == 1 {
        report("ATTACHED", 1);
        assert_eq!(read_command().as_deref(), Some("GO"));
    }
    let (mut next, mut received, mut missing, mut repeated, mut rings) =
        (0u64, 0u64, 0u64, 0u64, 1u64);
    let mut reached = false;
    loop {
        let got = c.recv_timeout(LONG).map(|m| {
            let idx = index_of(&m).expect("message shorter than its index");
            assert!(idx < count, "index {idx} out of range");
            let want = message(seed, idx, MAX_LEN);
            if *m != *want {
                let at = m.iter().zip(want.iter()).position(|(a, b)| a != b);
                panic!(
                    "message {idx}: content differs: {} bytes received, {} expected, first \
                     difference at byte {at:?}, in place {}",
                    m.len(),
                    want.len(),
                    m.is_in_place()
                );
            }
            idx
        });
        let idx = match got {
            Ok(idx) => idx,
            Err(TransportError::Ring(MultiProcessError::ProducerDead)) if !strict => {
                let old = c.inner().ring_epoch();
                drop(c);
                c = loop {
                    let n = attach_b(&ring, cap);
                    if n.inner().ring_epoch() != old {
                        break n;
                    }
                    // The dead ring is still there until the restarted bridge reclaims it.
                    drop(n);
                    std::thread::yield_now();
                };
                rings += 1;
                continue;
            }
            Err(TransportError::Ring(MultiProcessError::Closed)) if until_closed => break,
            Err(e) => panic!("recv after {received} messages (next {next}): {e}"),
        };
        received += 1;
        if strict {
            assert_eq!(idx, next, "out of order");
        }
        if idx >= next {
            missing += idx - next;
            next = idx + 1;
        } else {
            repeated += 1;
        }
        if !reached && next >= count / 3 {
            reached = true;
            report("REACHED", next);
        }
        if next == count && !until_closed {
            break;
        }
    }
    report("NEXT", next);
    report("RECEIVED", received);
    report("MISSING", missing);
    report("REPEATED", repeated);
    report("RINGS", rings);
}

struct Rig {
    ring_a: ShmGuard,
    ring_b: ShmGuard,
    key: String,
    sender_port: u16,
    seed: u64,
}

impl Rig {
    fn new(tag: &str, seed: u64) -> Rig {
        let ring_a = ShmGuard::new(&format!("{tag}-a"));
        let key = format!("myelon/test/{}", ring_a.name());
        Rig {
            ring_b: ShmGuard::new(&format!("{tag}-b")),
            ring_a,
            key,
            sender_port: free_port(),
            seed,
        }
    }

    fn producer(&self, cap: usize, count: u64, stall_probe: bool) -> ChildProc {
        self.producer_with(cap, count, stall_probe, count)
    }

    fn producer_with(&self, cap: usize, count: u64, stall_probe: bool, phase1: u64) -> ChildProc {
        let mut p = Spawn::new(ENTRY, "producer")
            .env("PHASE1", phase1)
            .env("RING", self.ring_a.name())
            .env("CAP", cap)
            .env("COUNT", count)
            .env("SEED", self.seed)
            .env("STALL_PROBE", u64::from(stall_probe))
            .spawn();
        p.expect("CREATED", LONG);
        p
    }

    fn consumer(&self, cap: usize, count: u64, strict: bool, stall: bool) -> ChildProc {
        self.consumer_with(cap, count, strict, stall, false)
    }

    fn consumer_with(
        &self,
        cap: usize,
        count: u64,
        strict: bool,
        stall: bool,
        until_closed: bool,
    ) -> ChildProc {
        Spawn::new(ENTRY, "consumer")
            .env("UNTIL_CLOSED", u64::from(until_closed))
            .env("RING", self.ring_b.name())
            .env("CAP", cap)
            .env("COUNT", count)
            .env("SEED", self.seed)
            .env("STRICT", u64::from(strict))
            .env("STALL", u64::from(stall))
            .spawn()
    }

    fn sender(&self, cap: usize, reliability: &str) -> BridgeProc {
        BridgeProc::spawn(
            "ring-to-zenoh",
            &sender_args(
                self.ring_a.name(),
                cap,
                &self.key,
                self.sender_port,
                reliability,
            ),
        )
    }

    fn receiver(&self, cap: usize, extra: &[String]) -> BridgeProc {
        let mut args = receiver_args(
            self.ring_b.name(),
            cap,
            &self.key,
            free_port(),
            self.sender_port,
        );
        args.extend_from_slice(extra);
        let mut r = BridgeProc::spawn("zenoh-to-ring", &args);
        r.expect("READY", LONG);
        r
    }
}

fn num(s: String) -> u64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

#[test]
fn hundred_thousand_messages_end_to_end() {
    const N: u64 = 100_000;
    let rig = Rig::new("e2e", 0x5EED_0001);
    let mut producer = rig.producer(1024, N, false);
    let mut sender = rig.sender(1024, "lossless");
    let mut receiver = rig.receiver(1024, &[]);
    sender.expect("READY", LONG);
    let mut consumer = rig.consumer(1024, N, true, false);
    assert_eq!(num(producer.expect("PUBLISHED", LONG)), N);
    assert_eq!(num(consumer.expect("RECEIVED", LONG)), N);
    consumer.finish(LONG);
    producer.send("CLOSE");
    producer.finish(LONG);
    // The producer closed ring A: the sending bridge drains it and stops by itself.
    let sent = sender.counters();
    let got = receiver.terminate();
    assert_eq!(sent["sent"], N);
    assert_eq!(got["received"], N);
    assert_eq!(got["delivered"], N);
    assert_eq!(
        (got["gaps"], got["duplicates"], got["malformed"]),
        (0, 0, 0)
    );
}

#[test]
fn receiving_bridge_killed_and_restarted() {
    const N: u64 = 60_000;
    let rig = Rig::new("kill", 0x5EED_0002);
    let state = std::env::temp_dir().join(format!("{}.state", rig.ring_b.name()));
    let _state_guard = RemoveOnDrop(state.clone());
    let extra = vec!["--state-file".to_string(), state.display().to_string()];
    let mut producer = rig.producer(1024, N, false);
    let mut sender = rig.sender(1024, "lossless");
    let mut receiver = rig.receiver(1024, &extra);
    sender.expect("READY", LONG);
    let mut consumer = rig.consumer(1024, N, false, false);
    consumer.expect("REACHED", LONG);
    receiver.kill();
    let mut receiver = rig.receiver(1024, &extra);
    assert_eq!(num(producer.expect("PUBLISHED", LONG)), N);
    let received = num(consumer.expect("RECEIVED", LONG));
    let missing = num(consumer.expect("MISSING", LONG));
    let repeated = num(consumer.expect("REPEATED", LONG));
    assert_eq!(
        num(consumer.expect("RINGS", LONG)),
        2,
        "the consumer followed ring B's restart"
    );
    consumer.finish(LONG);
    producer.send("CLOSE");
    producer.finish(LONG);
    let sent = sender.counters();
    let got = receiver.terminate();
    println!(
        "receiver restart: sent {} received {received} missing {missing} repeated {repeated}; \
         bridge counted gaps {} duplicates {} uncertain {} delivered {}",
        sent["sent"], got["gaps"], got["duplicates"], got["uncertain"], got["delivered"]
    );
    assert_eq!(
        sent["sent"], N,
        "the sender put every message once (it did not restart)"
    );
    assert_eq!(
        received + missing - repeated,
        N,
        "the consumer's own books balance"
    );
    // The bridge's (source, seq) accounting explains the difference exactly: the restarted
    // bridge settled the message its predecessor was publishing from the dead ring's cursor, so
    // nothing is left uncertain.
    assert_eq!(
        got["uncertain"], 0,
        "the dead ring B was there to settle the pending message"
    );
    assert_eq!(got["duplicates"], repeated);
    assert_eq!(
        got["gaps"], missing,
        "every message lost is counted, and only those"
    );
    assert_eq!(got["delivered"], received);
    assert_eq!(sent["sent"] - got["gaps"] + got["duplicates"], received);
    assert_eq!(got["malformed"], 0);
}

#[test]
fn sending_bridge_killed_and_restarted() {
    const N: u64 = 60_000;
    let rig = Rig::new("skill", 0x5EED_0004);
    let mut producer = rig.producer(1024, N, false);
    let mut sender = rig.sender(1024, "lossless");
    let mut receiver = rig.receiver(1024, &[]);
    sender.expect("READY", LONG);
    let mut consumer = rig.consumer(1024, N, false, false);
    consumer.expect("REACHED", LONG);
    sender.kill();
    // Same consumer id: it rejoins ring A at its committed cursor; same listen port.
    let mut sender = rig.sender(1024, "lossless");
    assert_eq!(num(producer.expect("PUBLISHED", LONG)), N);
    let received = num(consumer.expect("RECEIVED", LONG));
    let missing = num(consumer.expect("MISSING", LONG));
    let repeated = num(consumer.expect("REPEATED", LONG));
    assert_eq!(num(consumer.expect("RINGS", LONG)), 1);
    consumer.finish(LONG);
    producer.send("CLOSE");
    producer.finish(LONG);
    let sent = sender.counters();
    let got = receiver.terminate();
    println!(
        "sender restart: received {received} missing {missing} repeated {repeated}; second \
         sender sent {}; receiver counted gaps {} duplicates {} delivered {}",
        sent["sent"], got["gaps"], got["duplicates"], got["delivered"]
    );
    assert_eq!(
        received + missing - repeated,
        N,
        "the consumer's own books balance"
    );
    // The same source id across the restart (the ring's epoch), so the receiver's accounting
    // sees the resent messages as duplicates and what the dead sender had queued as gaps.
    assert_eq!(got["duplicates"], repeated);
    assert_eq!(got["gaps"], missing);
    assert_eq!(got["delivered"], received);
    assert_eq!(got["uncertain"], 0);
}

#[test]
fn stalled_consumer_stops_the_producer_then_nothing_is_lost() {
    const N: u64 = 100_000;
    const CAP: usize = 64;
    let rig = Rig::new("stall", 0x5EED_0003);
    let mut producer = rig.producer(CAP, N, true);
    let mut sender = rig.sender(CAP, "lossless");
    let mut receiver = rig.receiver(CAP, &["--channel".to_string(), "16".to_string()]);
    sender.expect("READY", LONG);
    let mut consumer = rig.consumer(CAP, N, true, true);
    consumer.expect("ATTACHED", LONG);
    // The final consumer reads nothing: the producer must come to a stop with messages left.
    let stuck_at = num(producer.expect("STUCK", LONG));
    assert!(stuck_at < N);
    println!("backpressure: the producer stopped after {stuck_at} of {N} messages (rings of {CAP} slots)");
    consumer.send("GO");
    producer.send("GO");
    assert_eq!(num(producer.expect("PUBLISHED", LONG)), N);
    assert_eq!(num(consumer.expect("RECEIVED", LONG)), N);
    consumer.finish(LONG);
    producer.send("CLOSE");
    producer.finish(LONG);
    let sent = sender.counters();
    let got = receiver.terminate();
    assert_eq!(sent["sent"], N);
    assert_eq!(
        (got["delivered"], got["gaps"], got["duplicates"]),
        (N, 0, 0)
    );
}

#[test]
fn lossy_mode_counts_what_zenoh_drops() {
    const N: u64 = 60_000;
    const PHASE1: u64 = 40_000;
    const CAP: usize = 64;
    let rig = Rig::new("lossy", 0x5EED_0005);
    let mut producer = rig.producer_with(CAP, N, false, PHASE1);
    let mut sender = rig.sender(CAP, "lossy");
    let mut receiver = rig.receiver(CAP, &["--channel".to_string(), "16".to_string()]);
    sender.expect("READY", LONG);
    let mut consumer = rig.consumer_with(CAP, N, false, true, true);
    consumer.expect("ATTACHED", LONG);
    // Phase 1 against a stalled consumer: far more than the path can hold, and a lossy sender
    // does not wait, so zenoh must drop. Phase 2 after the consumer resumes: the messages that
    // arrive after the dropped ones make the drops visible as gaps.
    assert_eq!(num(producer.expect("PHASE1", LONG)), PHASE1);
    consumer.send("GO");
    producer.send("GO");
    assert_eq!(num(producer.expect("PUBLISHED", LONG)), N);
    producer.send("CLOSE");
    producer.finish(LONG);
    let sent = sender.counters();
    // Stopping the receiving bridge closes ring B: the consumer drains it and stops.
    let got = receiver.terminate();
    let received = num(consumer.expect("RECEIVED", LONG));
    let missing = num(consumer.expect("MISSING", LONG));
    let repeated = num(consumer.expect("REPEATED", LONG));
    let next = num(consumer.expect("NEXT", LONG));
    consumer.finish(LONG);
    println!(
        "lossy: sent {} received {received}, gaps counted {} (consumer: missing {missing}), \
         damaged samples dropped {}, tail after the last message received {}",
        sent["sent"],
        got["gaps"],
        got["corrupt"],
        N - next
    );
    assert_eq!(
        sent["sent"], N,
        "a lossy sender puts everything (zenoh drops)"
    );
    assert!(
        got["gaps"] > 0,
        "nothing dropped: the stall did not congest zenoh"
    );
    assert_eq!(
        got["gaps"], missing,
        "every drop before the last message received is counted"
    );
    assert_eq!((got["duplicates"], repeated), (0, 0));
    assert_eq!(got["delivered"], received);
    assert_eq!(received + missing, next);
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
