//! Wake-up latency of a consumer that sleeps: A publishes one event after an idle gap long
//! enough for B to have gone to sleep, B wakes, receives it and echoes it on a second ring, A
//! spins on the echo. The round trip is B's wake-up plus one spinning one-way trip (a fraction
//! of a microsecond: see `pingpong_64`).
//!
//! * `wake_block`: B is a sync consumer with `AutoWaitStrategy::Block` (`consume_next_leased`:
//!   it spins briefly, then sleeps in the futex; the producer's publish wakes it directly).
//! * `wake_async` (feature `tokio`): B is an `AsyncConsumer` on a current-thread tokio runtime
//!   (`recv_leased().await`: its doorbell's helper thread sleeps in the futex and wakes the
//!   task, then the runtime polls it — one hop more than `wake_block`).

use crate::clock::{Clock, Stats};
use crate::events::Payload;
use crate::proc::{BenchResult, Names, Peer};
use crate::spin::spin_until;
use crate::Plan;
use myelon::producer::CoordinationMode;
use myelon::{attach_shared_consumer, build_shared_single_producer, AutoWaitStrategy};
use std::time::Duration;

const ATTACH_TIMEOUT: Duration = Duration::from_secs(20);
const ID_A: &str = "a";
const ID_B: &str = "b";
/// Idle time before each ping: B has long finished spinning and sleeps.
const GAP: Duration = Duration::from_micros(300);
const CAP: usize = 64;

/// How B waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiter {
    Block,
    #[cfg(feature = "tokio")]
    Async,
}

impl Waiter {
    pub fn role(self) -> &'static str {
        match self {
            Waiter::Block => "wake-block",
            #[cfg(feature = "tokio")]
            Waiter::Async => "wake-async",
        }
    }
}

/// Round trips per row: each costs a gap, so fewer than the spinning rows.
fn trips(plan: &Plan) -> u64 {
    (plan.iters / 50).clamp(1_000, 20_000)
}

/// Parent side (A).
pub fn run<E: Payload>(
    clock: &Clock,
    plan: &Plan,
    names: &mut Names,
    waiter: Waiter,
) -> BenchResult<Stats> {
    let (ping, pong) = (names.fresh("wping"), names.fresh("wpong"));
    let mut producer = build_shared_single_producer::<E>(&ping, CAP)
        .with_consumer_id(ID_B)
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .build_producer(E::default)?;
    let mut peer = Peer::spawn(waiter.role(), plan.cpus.1, &[ping, pong.clone()])?;
    let mut consumer = attach_shared_consumer::<E>(&pong, CAP)
        .with_consumer_id(ID_A)
        .with_attach_timeout(ATTACH_TIMEOUT)
        .build_consumer()?;
    let n = trips(plan);
    let mut ticks = Vec::with_capacity(n as usize);
    for i in 0..n + n / 10 {
        std::thread::sleep(GAP);
        let t0 = clock.now();
        producer.publish(|e| e.fill(i));
        spin_until(
            || match consumer.try_consume_next_leased()? {
                Some(lease) if lease.carries(i) => Ok(Some(())),
                Some(_) => Err(format!("wake-up: trip {i} came back wrong").into()),
                None => Ok(None),
            },
            || peer.check_alive(),
        )?;
        let t1 = clock.now();
        if i >= n / 10 {
            ticks.push(t1.wrapping_sub(t0));
        }
    }
    drop(producer);
    peer.finish(plan.peer_timeout)?;
    Ok(Stats::from_ticks(clock, &ticks))
}

/// Peer side (B): echoes every `ping` event on `pong`, sleeping in between, until closed.
pub fn peer<E: Payload>(args: &[String], waiter: Waiter) -> BenchResult<()> {
    let [ping, pong] = args else {
        return Err("wake-up peer: expected <ping> <pong>".into());
    };
    let mut producer = build_shared_single_producer::<E>(pong, CAP)
        .with_consumer_id(ID_A)
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .build_producer(E::default)?;
    let consumer = attach_shared_consumer::<E>(ping, CAP)
        .with_consumer_id(ID_B)
        .with_attach_timeout(ATTACH_TIMEOUT)
        .with_wait_strategy(AutoWaitStrategy::Block)
        .build_consumer()?;
    match waiter {
        Waiter::Block => {
            let mut consumer = consumer;
            loop {
                match consumer.consume_next_leased() {
                    Ok(lease) => {
                        producer.publish(|slot| *slot = *lease);
                    }
                    Err(myelon::MultiProcessError::Closed) => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        #[cfg(feature = "tokio")]
        Waiter::Async => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let mut consumer = consumer.into_async();
            rt.block_on(async {
                loop {
                    match consumer.recv_leased().await {
                        Ok(lease) => {
                            producer.publish(|slot| *slot = *lease);
                        }
                        Err(myelon::MultiProcessError::Closed) => return Ok(()),
                        Err(e) => return Err(e.into()),
                    }
                }
            })
        }
    }
}

/// The floor of a wake-up: the same trip with no ring at all. B sleeps in a bare futex wait on a
/// word of a shared page (the backend's `wait`, the very call a `Block` consumer ends in); A,
/// after the gap, stores the trip number there and wakes it (`wake_all`); B stores the number
/// into an acknowledgement word, on which A spins. What a futex wake-up costs on this machine,
/// measured in the same run as `wake_block` and `wake_async`.
pub mod futex_floor {
    use super::{trips, GAP};
    use crate::clock::{Clock, Stats};
    use crate::proc::{BenchResult, Names, Peer};
    use crate::spin::spin_until;
    use crate::Plan;
    use myelon::backend::{AtomicU32, Region, RingBackend, ShmBackend, ShmRegion};
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    /// Peer role.
    pub const ROLE: &str = "wake-futex";
    /// Tells the peer to exit.
    const STOP: u32 = u32::MAX;
    /// The acknowledgement word sits on its own 128-byte line.
    const ACK_OFFSET: usize = 128;

    fn words(region: &ShmRegion) -> BenchResult<(&AtomicU32, &AtomicU32)> {
        if region.len() < ACK_OFFSET + 4 {
            return Err("futex floor region too small".into());
        }
        // SAFETY: both offsets are in bounds (checked) and 4-aligned (page base + 0 / + 128);
        // zero-filled bytes are a valid `AtomicU32` (a transparent wrapper of std's), only
        // ever accessed atomically; the references live no longer than the region borrow.
        Ok(unsafe {
            (
                &*(region.as_ptr() as *const AtomicU32),
                &*(region.as_ptr().add(ACK_OFFSET) as *const AtomicU32),
            )
        })
    }

    /// Parent side (A).
    pub fn run(clock: &Clock, plan: &Plan, names: &mut Names) -> BenchResult<Stats> {
        let name = names.fresh("wfutex");
        let region = ShmBackend.create(&name, 4096)?;
        region.finish(0o600)?;
        let (word, ack) = words(&region)?;
        let mut peer = Peer::spawn(ROLE, plan.cpus.1, &[name])?;
        let n = trips(plan);
        let mut ticks = Vec::with_capacity(n as usize);
        for i in 1..=(n + n / 10) as u32 {
            std::thread::sleep(GAP);
            let t0 = clock.now();
            word.store(i, Ordering::Release);
            ShmBackend.wake_all(word);
            spin_until(
                || Ok((ack.load(Ordering::Acquire) == i).then_some(())),
                || peer.check_alive(),
            )?;
            let t1 = clock.now();
            if u64::from(i) > n / 10 {
                ticks.push(t1.wrapping_sub(t0));
            }
        }
        word.store(STOP, Ordering::Release);
        ShmBackend.wake_all(word);
        peer.finish(plan.peer_timeout)?;
        Ok(Stats::from_ticks(clock, &ticks))
    }

    /// Peer side (B): sleeps in the futex until the word moves, acknowledges, until `STOP`.
    pub fn peer(args: &[String]) -> BenchResult<()> {
        let [name] = args else {
            return Err("futex floor peer: expected <name>".into());
        };
        let region = ShmBackend.open(name)?;
        let (word, ack) = words(&region)?;
        let mut seen = 0u32;
        loop {
            let now = word.load(Ordering::Acquire);
            if now == STOP {
                return Ok(());
            }
            if now != seen {
                seen = now;
                ack.store(now, Ordering::Release);
                continue;
            }
            ShmBackend.wait(word, seen, Duration::from_millis(100));
        }
    }
}
