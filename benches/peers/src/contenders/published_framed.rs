//! The published `myelon` 0.1.0-alpha.2, its Layer 1: `FramedTransportProducer::create` /
//! `FramedTransportConsumer::attach_with_consumer_id` over its `FixedFrame<N>` with `N` = the
//! message size (one frame per message). The producer copies the message in (`publish`) after
//! finding its consumer (`discover_consumer_id`); the consumer polls
//! `process_available_messages` (its non-blocking receive; the blocking ones cannot notice a
//! dead peer).

use super::{
    arg, bulk_gbps, pingpong_depth, spin_until, stream_rate, BulkTally, Ctx, Outcome, StreamTally,
    Work, ATTACH_TIMEOUT, BULK_BYTES,
};
use crate::clock::time_trips;
use crate::msg;
use crate::proc::{fresh_name, BenchResult, Peer};
use myelon_published::transport::{
    FixedFrame, FramedTransportConsumer, FramedTransportFrame, FramedTransportProducer,
    MyelonWaitStrategy, ReassemblyBuffer,
};

const ROLE: &str = "published_framed";

fn producer<F: FramedTransportFrame>(
    name: &str,
    depth: usize,
) -> BenchResult<FramedTransportProducer<F>> {
    Ok(FramedTransportProducer::<F>::create(name, depth)?)
}

fn consumer<F: FramedTransportFrame>(
    name: &str,
    depth: usize,
    id: &str,
) -> BenchResult<FramedTransportConsumer<F>> {
    super::retry(ATTACH_TIMEOUT, || {
        Ok(FramedTransportConsumer::<F>::attach_with_consumer_id(
            name,
            depth,
            id,
            MyelonWaitStrategy::BusySpin,
        )?)
    })
}

fn gate<F: FramedTransportFrame>(p: &mut FramedTransportProducer<F>, id: &str) -> BenchResult<()> {
    if p.discover_consumer_id(id, ATTACH_TIMEOUT) {
        Ok(())
    } else {
        Err(format!("{ROLE}: consumer {id:?} never attached").into())
    }
}

pub fn run(ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
    match work {
        Work::PingPong { size: 64 } => pingpong::<FixedFrame<64>>(ctx, work, 64),
        Work::PingPong { size: 1024 } => pingpong::<FixedFrame<1024>>(ctx, work, 1024),
        Work::PingPong { size: 65536 } => pingpong::<FixedFrame<65536>>(ctx, work, 65536),
        Work::Stream { depth } => stream(ctx, work, depth),
        Work::Bulk { .. } => bulk(ctx, work),
        other => Err(format!("{ROLE}: unsupported {other:?}").into()),
    }
}

pub fn peer(work: Work, args: &[String]) -> BenchResult<()> {
    match work {
        Work::PingPong { size: 64 } => echo::<FixedFrame<64>>(args, 64),
        Work::PingPong { size: 1024 } => echo::<FixedFrame<1024>>(args, 1024),
        Work::PingPong { size: 65536 } => echo::<FixedFrame<65536>>(args, 65536),
        Work::Stream { depth } => stream_peer(args, depth),
        Work::Bulk { checksum } => bulk_peer(args, checksum),
        other => Err(format!("{ROLE}: unsupported {other:?}").into()),
    }
}

fn pingpong<F: FramedTransportFrame>(ctx: &Ctx, work: Work, size: usize) -> BenchResult<Outcome> {
    let (ping, pong) = (fresh_name("p"), fresh_name("q"));
    let depth = pingpong_depth(size);
    let (warmup, iters) = ctx.trips(size);
    let mut p = producer::<F>(&ping, depth)?;
    let mut args = work.args();
    args.extend([ping, pong.clone(), (warmup + iters).to_string()]);
    let mut peer = Peer::spawn(ROLE, ctx.cpus.1, &args)?;
    let mut c = consumer::<F>(&pong, depth, "a")?;
    gate(&mut p, "b")?;
    let mut buf = ReassemblyBuffer::new(size);
    let mut src = msg::source(size / 8);
    let ticks = time_trips(&ctx.clock, warmup, iters, |i| {
        msg::stamp(&mut src, i);
        p.publish(msg::as_bytes(&src), 0);
        let mut ok = true;
        spin_until(
            || {
                let got = c.process_available_messages(&mut buf, |_, m| {
                    ok &= msg::carries_bytes(m, i);
                });
                match got {
                    0 => Ok(None),
                    1 if ok => Ok(Some(())),
                    _ => Err(format!("{ROLE}: trip {i} came back wrong").into()),
                }
            },
            || peer.check_alive(),
        )
    })?;
    peer.finish(ctx.peer_timeout)?;
    Ok(Outcome::Latency(
        ticks.iter().map(|t| ctx.clock.ns(*t)).collect(),
    ))
}

fn echo<F: FramedTransportFrame>(args: &[String], size: usize) -> BenchResult<()> {
    let (ping, pong, n): (String, String, u64) = (arg(args, 0)?, arg(args, 1)?, arg(args, 2)?);
    let depth = pingpong_depth(size);
    let mut p = producer::<F>(&pong, depth)?;
    let mut c = consumer::<F>(&ping, depth, "b")?;
    gate(&mut p, "a")?;
    let mut buf = ReassemblyBuffer::new(size);
    let mut echoed = 0u64;
    while echoed < n {
        echoed += c.process_available_messages(&mut buf, |kind, m| p.publish(m, kind)) as u64;
    }
    Ok(())
}

fn stream(ctx: &Ctx, work: Work, depth: usize) -> BenchResult<Outcome> {
    let name = fresh_name("s");
    let mut p = producer::<FixedFrame<64>>(&name, depth)?;
    let mut args = work.args();
    args.extend([name, ctx.events.to_string()]);
    let peer = Peer::spawn(ROLE, ctx.cpus.1, &args)?;
    gate(&mut p, "s")?;
    let mut src = msg::source(8);
    for i in 0..ctx.events {
        msg::stamp(&mut src, i);
        p.publish(msg::as_bytes(&src), 0);
    }
    let out = peer.finish(ctx.peer_timeout)?;
    Ok(Outcome::Rate(stream_rate(&out, ctx.events)?))
}

fn stream_peer(args: &[String], depth: usize) -> BenchResult<()> {
    let (name, n): (String, u64) = (arg(args, 0)?, arg(args, 1)?);
    let mut c = consumer::<FixedFrame<64>>(&name, depth, "s")?;
    let mut buf = ReassemblyBuffer::new(64);
    let mut t = StreamTally::new();
    while t.expected < n {
        c.process_available_messages(&mut buf, |_, m| t.check_bytes(m));
    }
    t.print();
    Ok(())
}

type F1M = FixedFrame<BULK_BYTES>;

fn bulk(ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
    let name = fresh_name("b");
    let mut p = producer::<F1M>(&name, ctx.bulk_depth)?;
    let mut args = work.args();
    args.extend([
        name,
        ctx.bulk_messages.to_string(),
        ctx.bulk_depth.to_string(),
    ]);
    let peer = Peer::spawn(ROLE, ctx.cpus.1, &args)?;
    gate(&mut p, "c")?;
    let mut src = msg::source(BULK_BYTES / 8);
    for i in 0..ctx.bulk_messages {
        msg::stamp(&mut src, i);
        p.publish(msg::as_bytes(&src), 0);
    }
    let out = peer.finish(ctx.peer_timeout)?;
    Ok(Outcome::Bandwidth(bulk_gbps(&out, ctx.bulk_messages)?))
}

fn bulk_peer(args: &[String], checksum: bool) -> BenchResult<()> {
    let (name, n, depth): (String, u64, usize) = (arg(args, 0)?, arg(args, 1)?, arg(args, 2)?);
    let mut c = consumer::<F1M>(&name, depth, "c")?;
    let mut buf = ReassemblyBuffer::new(BULK_BYTES);
    let mut t = BulkTally::new(checksum);
    while t.received < n {
        c.process_available_messages(&mut buf, |_, m| t.check_bytes(m));
    }
    t.print();
    Ok(())
}
