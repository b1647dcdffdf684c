//! Required-consumer liveness: a consumer the producer cannot do without stalls; instead of
//! waiting forever, the blocked `publish_managed` raises a `Stalled` alert, then either a
//! `Recovered` one when the consumer moves again, or `GracefulShutdownTriggered` after a grace
//! period.
//!
//! ```text
//! cargo run -p myelon --example liveness               # stall, alert, resume, recovery
//! cargo run -p myelon --example liveness -- --shutdown # stall, alert, never resumes: shutdown
//! ```
//!
//! The consumer process reads `STALL_AT` events and then stops reading until a line arrives on
//! its stdin. The ring (16 slots) fills; the producer's managed publish checks progress while it
//! is blocked, and the alert hook tells the parent, which (unless `--shutdown`) writes that line.

use myelon::producer::CoordinationMode;
use myelon::{
    attach_shared_consumer, build_shared_single_producer, portable_shm_segment_name,
    MultiProcessError, RequiredConsumerAlertKind, RequiredConsumerError,
    RequiredConsumerLivenessConfig,
};
use myelon_test_support::{ReExec, ShmGuard, ROLE_ARG};
use std::io::{BufRead, Write};
use std::process::Stdio;
use std::sync::{mpsc, Arc};
use std::time::Duration;

const EVENTS: u64 = 200;
const STALL_AT: u64 = 50;
const CAPACITY: usize = 16;
const ID: &str = "worker";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => producer(false),
        [flag] if flag == "--shutdown" => producer(true),
        [flag, role, segment] if flag == ROLE_ARG && role == "consumer" => consumer(segment),
        other => panic!("unexpected arguments {other:?}"),
    }
}

fn liveness(
    shutdown: bool,
    hook: mpsc::Sender<RequiredConsumerAlertKind>,
) -> RequiredConsumerLivenessConfig {
    let ms = Duration::from_millis;
    let grace = if shutdown { ms(300) } else { ms(30_000) };
    RequiredConsumerLivenessConfig::new([ID])
        .and_then(|c| c.with_progress_timeout(ms(100))) // no progress this long: Stalled
        .and_then(|c| c.with_progress_check_interval(ms(10)))
        .and_then(|c| c.with_shutdown_grace_period(grace)) // then: GracefulShutdownTriggered
        .expect("valid liveness settings")
        .with_alert_hook(Arc::new(move |alert: &myelon::RequiredConsumerAlert| {
            println!(
                "producer: alert {:?} for {:?} (consumer at {}, producer at {})",
                alert.kind, alert.consumer_id, alert.consumer_cursor, alert.producer_cursor
            );
            let _ = hook.send(alert.kind);
        }))
}

fn producer(shutdown: bool) {
    let segment = portable_shm_segment_name(&format!("myelon-ex-live-{}", std::process::id()));
    let _cleanup = ShmGuard(segment.clone());
    let mut exec = ReExec::with_role_arg("consumer").arg(&segment);
    exec.command().stdin(Stdio::piped());
    let mut child = exec.spawn().expect("start the consumer process");
    let mut stdin = child.child().stdin.take().expect("piped stdin");
    let mut producer = build_shared_single_producer::<u64>(&segment, CAPACITY)
        .with_consumer_ids([ID])
        .with_coordination(CoordinationMode::WaitForConsumers)
        .build_producer(|| 0)
        .expect("create the ring");
    let (alerts_tx, alerts) = mpsc::channel();
    producer
        .enable_required_consumer_liveness(liveness(shutdown, alerts_tx))
        .expect("enable liveness");
    // The operator: on the first alert, un-stall the consumer (unless told not to).
    let operator = std::thread::spawn(move || {
        let first = alerts.recv_timeout(Duration::from_secs(60));
        if first == Ok(RequiredConsumerAlertKind::Stalled) && !shutdown {
            println!("producer: telling the consumer to resume");
            writeln!(stdin, "resume").expect("wake the consumer");
        }
        alerts.iter().collect::<Vec<_>>() // the alerts after the first, until the hook is gone
    });
    for n in 0..EVENTS {
        match producer.publish_managed(|e| *e = n) {
            Ok(_) => {}
            Err(RequiredConsumerError::GracefulShutdownTriggered { consumer_id, .. }) => {
                println!(
                    "producer: {consumer_id:?} never recovered: graceful shutdown at event {n}"
                );
                child.kill(); // stop the stalled process (it would wait on its stdin forever)
                break;
            }
            Err(e) => panic!("producer: {e}"),
        }
    }
    drop(producer); // closes the stream, removes the segment, drops the hook (ends `operator`)
    let later = operator.join().expect("operator thread");
    if shutdown {
        println!("producer: consumer stopped, ring removed: shut down cleanly");
    } else {
        assert!(
            later.contains(&RequiredConsumerAlertKind::Recovered),
            "{later:?}"
        );
        assert!(child.wait().expect("wait for the consumer").success());
        println!("producer: published {EVENTS} events; the consumer recovered and read them all");
    }
}

fn consumer(segment: &str) {
    let mut consumer = attach_shared_consumer::<u64>(segment, CAPACITY)
        .with_consumer_id(ID)
        .build_consumer()
        .expect("attach to the ring");
    let mut next = 0u64;
    loop {
        if next == STALL_AT {
            println!("consumer: stalling after {next} events");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).expect("stdin");
            println!("consumer: resuming");
        }
        match consumer.consume_next_timeout(Duration::from_millis(100)) {
            Ok(e) => {
                assert_eq!(e, next, "nothing lost, nothing reordered");
                next += 1;
            }
            Err(MultiProcessError::Timeout { .. }) => {}
            Err(MultiProcessError::Closed) => break,
            Err(e) => panic!("consumer: {e}"),
        }
    }
    println!("consumer: read {next} events in order");
}
