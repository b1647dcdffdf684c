//! Framed ping-pong: the Layer 0 ping-pong with framed messages. A claims a `size`-byte message
//! in the `ping` ring, writes every byte in place (word 0 = trip number), commits it and spins on
//! `pong` until the echo arrives, then checks its length, first word and last byte. B receives
//! each message (in place when it fits one frame, reassembled otherwise) and publishes a copy
//! on `pong` while still holding it.

use crate::clock::{time_trips, Clock, Stats};
use crate::proc::{BenchResult, Names, Peer};
use crate::spin::spin_until;
use crate::Plan;
use myelon::producer::CoordinationMode;
use myelon::transport::{
    FramedTransportConsumer, FramedTransportFrame, FramedTransportProducer, TransportError,
};
use myelon::{attach_shared_consumer, build_shared_single_producer, MultiProcessError};
use std::time::Duration;

const ATTACH_TIMEOUT: Duration = Duration::from_secs(20);

/// Peer role for `size`-byte messages.
pub fn role(size: usize) -> String {
    format!("framed-pingpong-{size}")
}

fn fill(claim_fragment: &mut [u8], offset: usize, trip: u64) {
    claim_fragment.fill(trip as u8);
    if offset == 0 {
        let n = claim_fragment.len().min(8);
        claim_fragment[..n].copy_from_slice(&trip.to_le_bytes()[..n]);
    }
}

fn carries(m: &[u8], size: usize, trip: u64) -> bool {
    m.len() == size
        && m[..8.min(size)] == trip.to_le_bytes()[..8.min(size)]
        && (size <= 8 || m[size - 1] == trip as u8)
}

/// Parent side (A).
pub fn run<F: FramedTransportFrame>(
    clock: &Clock,
    plan: &Plan,
    names: &mut Names,
    size: usize,
) -> BenchResult<Stats> {
    let (ping, pong) = (names.fresh("fping"), names.fresh("fpong"));
    let cap = plan.pingpong_capacity;
    let mut producer = FramedTransportProducer::from_builder(
        build_shared_single_producer::<F>(&ping, cap)
            .with_consumer_id("b")
            .with_coordination(CoordinationMode::BufferUntilConsumers),
    )?;
    let args = [ping, pong.clone(), cap.to_string(), size.to_string()];
    let mut peer = Peer::spawn(&role(size), plan.cpus.1, &args)?;
    let mut consumer = FramedTransportConsumer::from_builder(
        attach_shared_consumer::<F>(&pong, cap)
            .with_consumer_id("a")
            .with_attach_timeout(ATTACH_TIMEOUT),
    )?;
    let ticks = time_trips(clock, plan.warmup, plan.iters, |i| {
        let mut claim = producer.claim_timeout(size, None)?;
        for k in 0..claim.fragments() {
            fill(claim.fragment_mut(k), k, i);
        }
        claim.commit();
        spin_until(
            || match consumer.try_recv()? {
                Some(m) => {
                    if !carries(std::hint::black_box(&m), size, i) {
                        return Err(format!("framed ping-pong: trip {i} came back wrong").into());
                    }
                    Ok(Some(()))
                }
                None => Ok(None),
            },
            || peer.check_alive(),
        )
    })?;
    drop(producer);
    peer.finish(plan.peer_timeout)?;
    Ok(Stats::from_ticks(clock, &ticks))
}

/// Peer side (B): echoes every message until `ping` closes.
pub fn peer<F: FramedTransportFrame>(args: &[String]) -> BenchResult<()> {
    let [ping, pong, cap, _size] = args else {
        return Err("framed ping-pong peer: expected <ping> <pong> <capacity> <size>".into());
    };
    let cap: usize = cap.parse()?;
    let mut producer = FramedTransportProducer::from_builder(
        build_shared_single_producer::<F>(pong, cap)
            .with_consumer_id("a")
            .with_coordination(CoordinationMode::BufferUntilConsumers),
    )?;
    let mut consumer = FramedTransportConsumer::from_builder(
        attach_shared_consumer::<F>(ping, cap)
            .with_consumer_id("b")
            .with_attach_timeout(ATTACH_TIMEOUT),
    )?;
    loop {
        match consumer.try_recv() {
            Ok(Some(m)) => {
                producer.publish(&m)?;
            }
            Ok(None) => {}
            Err(TransportError::Ring(MultiProcessError::Closed)) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}
