//! myelon (this tree), Layer 0: `build_shared_single_producer` / `attach_shared_consumer` with
//! fixed-size events of exactly the message size (`Msg<W>`). The producer fills the slot in place
//! (`publish(|slot| ..)`); the consumer reads in place (`try_consume_next_leased`, or
//! `try_consume_batch` for the stream, at most depth/4 per call).
//!
//! Fan-in with one producer (the reference the multi-producer rows are read against): the same
//! workload as `myelon_mp` (`fanin.rs`), the peer building the single-producer ring (consumer `c`
//! reserved, buffering until it attaches), the driver consuming it the same way.

use super::{
    arg, bulk_gbps, fanin, pingpong_depth, retry, spin_until, stream_rate, BulkTally, Ctx, Outcome,
    StreamTally, Work, ATTACH_TIMEOUT,
};
use crate::clock::time_trips;
use crate::msg::{self, Msg};
use crate::proc::{fresh_name, BenchResult, Peer};
use myelon::producer::CoordinationMode;
use myelon::{
    attach_shared_consumer, build_shared_single_producer, SharedConsumer, SharedProducer,
};

const ROLE: &str = "myelon_raw";
const W56: usize = 7;
const W64: usize = 8;
const W1K: usize = 128;
const W64K: usize = 8192;
const W1M: usize = 131072;

fn producer<const W: usize>(
    name: &str,
    depth: usize,
    id: &str,
) -> BenchResult<SharedProducer<Msg<W>>> {
    Ok(build_shared_single_producer::<Msg<W>>(name, depth)
        .with_consumer_id(id)
        .with_coordination(CoordinationMode::BufferUntilConsumers)
        .build_producer(Msg::default)?)
}

fn consumer<const W: usize>(
    name: &str,
    depth: usize,
    id: &str,
) -> BenchResult<SharedConsumer<Msg<W>>> {
    retry(ATTACH_TIMEOUT, || {
        Ok(attach_shared_consumer::<Msg<W>>(name, depth)
            .with_consumer_id(id)
            .with_attach_timeout(ATTACH_TIMEOUT)
            .build_consumer()?)
    })
}

pub fn run(ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
    match work {
        Work::PingPong { size: 56 } => pingpong::<W56>(ctx, work),
        Work::PingPong { size: 64 } => pingpong::<W64>(ctx, work),
        Work::PingPong { size: 1024 } => pingpong::<W1K>(ctx, work),
        Work::PingPong { size: 65536 } => pingpong::<W64K>(ctx, work),
        Work::Stream { depth } => stream(ctx, work, depth),
        Work::Bulk { .. } => bulk(ctx, work),
        Work::FanIn { producers: 1, .. } => fanin_run(ctx, work),
        other => Err(format!("{ROLE}: unsupported {other:?}").into()),
    }
}

pub fn peer(work: Work, args: &[String]) -> BenchResult<()> {
    match work {
        Work::PingPong { size: 56 } => echo::<W56>(args),
        Work::PingPong { size: 64 } => echo::<W64>(args),
        Work::PingPong { size: 1024 } => echo::<W1K>(args),
        Work::PingPong { size: 65536 } => echo::<W64K>(args),
        Work::Stream { depth } => stream_peer(args, depth),
        Work::Bulk { checksum } => bulk_peer(args, checksum),
        Work::FanIn { producers: 1, .. } => fanin_peer(work, args),
        other => Err(format!("{ROLE}: unsupported {other:?}").into()),
    }
}

fn pingpong<const W: usize>(ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
    let (ping, pong) = (fresh_name("p"), fresh_name("q"));
    let depth = pingpong_depth(W * 8);
    let (warmup, iters) = ctx.trips(W * 8);
    let mut p = producer::<W>(&ping, depth, "b")?;
    let mut args = work.args();
    args.extend([ping, pong.clone(), (warmup + iters).to_string()]);
    let mut peer = Peer::spawn(ROLE, ctx.cpus.1, &args)?;
    let mut c = consumer::<W>(&pong, depth, "a")?;
    let src = msg::source(W);
    let ticks = time_trips(&ctx.clock, warmup, iters, |i| {
        p.publish(|e| msg::write(&mut e.words, &src, i));
        spin_until(
            || match c.try_consume_next_leased()? {
                Some(lease) if msg::carries(&lease.words, i) => Ok(Some(())),
                Some(_) => Err(format!("{ROLE}: trip {i} came back wrong").into()),
                None => Ok(None),
            },
            || peer.check_alive(),
        )
    })?;
    peer.finish(ctx.peer_timeout)?;
    Ok(Outcome::Latency(
        ticks.iter().map(|t| ctx.clock.ns(*t)).collect(),
    ))
}

fn echo<const W: usize>(args: &[String]) -> BenchResult<()> {
    let (ping, pong, n): (String, String, u64) = (arg(args, 0)?, arg(args, 1)?, arg(args, 2)?);
    let depth = pingpong_depth(W * 8);
    let mut p = producer::<W>(&pong, depth, "a")?;
    let mut c = consumer::<W>(&ping, depth, "b")?;
    for _ in 0..n {
        spin_until(
            || match c.try_consume_next_leased()? {
                Some(lease) => {
                    p.publish(|slot| *slot = *lease);
                    Ok(Some(()))
                }
                None => Ok(None),
            },
            || Ok(()),
        )?;
    }
    Ok(())
}

/// Waits until the consumer `id` has attached to `p`.
fn wait_attached<E: myelon::ShmEvent>(p: &SharedProducer<E>, peer: &mut Peer) -> BenchResult<()> {
    while p.consumers().iter().any(|c| !c.attached) {
        peer.check_alive()?;
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(())
}

fn stream(ctx: &Ctx, work: Work, depth: usize) -> BenchResult<Outcome> {
    let name = fresh_name("s");
    let mut p = producer::<W64>(&name, depth, "s")?;
    let mut args = work.args();
    args.extend([name, ctx.events.to_string()]);
    let mut peer = Peer::spawn(ROLE, ctx.cpus.1, &args)?;
    wait_attached(&p, &mut peer)?;
    let src = msg::source(W64);
    for i in 0..ctx.events {
        p.publish(|e| msg::write(&mut e.words, &src, i));
    }
    let out = peer.finish(ctx.peer_timeout)?;
    Ok(Outcome::Rate(stream_rate(&out, ctx.events)?))
}

fn stream_peer(args: &[String], depth: usize) -> BenchResult<()> {
    let (name, n): (String, u64) = (arg(args, 0)?, arg(args, 1)?);
    let mut c = consumer::<W64>(&name, depth, "s")?;
    let mut t = StreamTally::new();
    let max = (depth / 4).max(1);
    while t.expected < n {
        c.try_consume_batch(max, |e, _, _| t.check_words(&e.words))?;
    }
    t.print();
    Ok(())
}

fn bulk(ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
    let name = fresh_name("b");
    let mut p = producer::<W1M>(&name, ctx.bulk_depth, "c")?;
    let mut args = work.args();
    args.extend([
        name,
        ctx.bulk_messages.to_string(),
        ctx.bulk_depth.to_string(),
    ]);
    let mut peer = Peer::spawn(ROLE, ctx.cpus.1, &args)?;
    wait_attached(&p, &mut peer)?;
    let src = msg::source(W1M);
    for i in 0..ctx.bulk_messages {
        p.publish(|e| msg::write(&mut e.words, &src, i));
    }
    let out = peer.finish(ctx.peer_timeout)?;
    Ok(Outcome::Bandwidth(bulk_gbps(&out, ctx.bulk_messages)?))
}

fn bulk_peer(args: &[String], checksum: bool) -> BenchResult<()> {
    let (name, n, depth): (String, u64, usize) = (arg(args, 0)?, arg(args, 1)?, arg(args, 2)?);
    let mut c = consumer::<W1M>(&name, depth, "c")?;
    let mut t = BulkTally::new(checksum);
    while t.received < n {
        if let Some(lease) = c.try_consume_next_leased()? {
            t.check_words(&lease.words);
        }
    }
    t.print();
    Ok(())
}

fn fanin_run(ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
    let Work::FanIn { latency, .. } = work else {
        return Err(format!("{ROLE}: unsupported {work:?}").into());
    };
    let name = fresh_name("r");
    let attach = |peers: &mut crate::proc::Peers| -> BenchResult<SharedConsumer<Msg<W64>>> {
        retry(ATTACH_TIMEOUT, || {
            peers.check_alive()?;
            Ok(attach_shared_consumer::<Msg<W64>>(&name, fanin::DEPTH)
                .with_consumer_id("c")
                .with_attach_timeout(ATTACH_TIMEOUT)
                .build_consumer()?)
        })
    };
    if latency {
        fanin::drive(ctx, work, ROLE, &name, attach, |c, t| {
            if let Some(e) = c.try_consume_next_leased()? {
                t.event(None, &e.words);
            }
            Ok(())
        })
    } else {
        let max = fanin::DEPTH / 4;
        fanin::drive(ctx, work, ROLE, &name, attach, |c, t| {
            c.try_consume_batch(max, |e, _, _| t.event(None, &e.words))?;
            Ok(())
        })
    }
}

fn fanin_peer(work: Work, args: &[String]) -> BenchResult<()> {
    let src = fanin::source();
    fanin::produce(
        work,
        args,
        |a| Ok((producer::<W64>(&a.name, fanin::DEPTH, "c")?, a.producer)),
        |(p, k), i, stamp| {
            p.publish(|e| fanin::fill(&mut e.words, &src, *k, i, stamp));
            Ok(true)
        },
    )
}
