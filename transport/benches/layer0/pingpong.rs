//! Ring ping-pong: two rings, A→B (`ping`) and B→A (`pong`), one event in flight.
//!
//! A fills a whole event (word `k` = `i + k`), publishes it on `ping`, then spins on
//! `try_consume_next_leased` of `pong` until the echo arrives, copies it out and checks its
//! first and last words. B spins on `try_consume_next_leased` of `ping` and, holding the lease,
//! publishes a copy of the event on `pong` (the lease is released after the publish, as
//! `if let Some(e) = c.try_consume_next_leased()? { p.publish(|s| *s = *e) }` does).

use crate::clock::{time_trips, Clock, Stats};
use crate::events::Payload;
use crate::proc::{BenchResult, Names, Peer};
use crate::spin::spin_until;
use crate::Plan;
use myelon::producer::CoordinationMode;
use myelon::{attach_shared_consumer, build_shared_single_producer, MultiProcessError};
use std::time::Duration;

/// How long either side waits for the other's ring to appear.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(20);
/// Consumer id of A on `pong` and of B on `ping`.
const ID_A: &str = "a";
const ID_B: &str = "b";

/// The role name of the peer for events of `E`.
pub fn role<E: Payload>() -> String {
    format!("pingpong-{}", E::BYTES)
}

/// Parent side (A): returns the round-trip statistics.
pub fn run<E: Payload>(clock: &Clock, plan: &Plan, names: &mut Names) -> BenchResult<Stats> {
    let (ping, pong) = (names.fresh("ping"), names.fresh("pong"));
    let cap = plan.pingpong_capacity;
    let mut producer = build_shared_single_producer::<E>(&ping, cap)
        .with_consumer_id(ID_B)
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .build_producer(E::default)?;
    let args = [ping, pong.clone(), cap.to_string()];
    let mut peer = Peer::spawn(&role::<E>(), plan.cpus.1, &args)?;
    let mut consumer = attach_shared_consumer::<E>(&pong, cap)
        .with_consumer_id(ID_A)
        .with_attach_timeout(ATTACH_TIMEOUT)
        .build_consumer()?;
    let ticks = time_trips(clock, plan.warmup, plan.iters, |i| {
        producer.publish(|e| e.fill(i));
        spin_until(
            || match consumer.try_consume_next_leased()? {
                Some(lease) => {
                    let e = std::hint::black_box(*lease);
                    if !e.carries(i) {
                        return Err(format!("ping-pong: round trip {i} came back wrong").into());
                    }
                    Ok(Some(()))
                }
                None => Ok(None),
            },
            || peer.check_alive(),
        )
    })?;
    drop(producer); // Closes `ping`: B drains it and exits.
    peer.finish(plan.peer_timeout)?;
    Ok(Stats::from_ticks(clock, &ticks))
}

/// Peer side (B): echoes every `ping` event on `pong` until `ping` is closed.
pub fn peer<E: Payload>(args: &[String]) -> BenchResult<()> {
    let [ping, pong, cap] = args else {
        return Err("ping-pong peer: expected <ping> <pong> <capacity>".into());
    };
    let cap: usize = cap.parse()?;
    let mut producer = build_shared_single_producer::<E>(pong, cap)
        .with_consumer_id(ID_A)
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .build_producer(E::default)?;
    let mut consumer = attach_shared_consumer::<E>(ping, cap)
        .with_consumer_id(ID_B)
        .with_attach_timeout(ATTACH_TIMEOUT)
        .build_consumer()?;
    let pause = crate::spin::pause();
    loop {
        match consumer.try_consume_next_leased() {
            Ok(Some(lease)) => {
                producer.publish(|slot| *slot = *lease);
            }
            Ok(None) if pause => std::hint::spin_loop(),
            Ok(None) => {}
            Err(MultiProcessError::Closed) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}
