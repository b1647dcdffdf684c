//! myelon (this tree), Layer 1: `FramedTransportProducer` / `FramedTransportConsumer` over
//! `FixedFrame<N>` with `N` = the message size, so every message is one frame. The producer
//! copies the message in (`publish(&[u8])`); the consumer reads it in place (`try_recv`).

use super::{
    arg, bulk_gbps, pingpong_depth, retry, spin_until, stream_rate, BulkTally, Ctx, Outcome,
    StreamTally, Work, ATTACH_TIMEOUT, BULK_BYTES,
};
use crate::clock::time_trips;
use crate::msg;
use crate::proc::{fresh_name, BenchResult, Peer};
use myelon::backend::ShmBackend;
use myelon::producer::CoordinationMode;
use myelon::transport::{
    FixedFrame, FramedTransportConsumer, FramedTransportFrame, FramedTransportProducer,
};
use myelon::{attach_shared_consumer, build_shared_single_producer};

const ROLE: &str = "myelon_framed";

type Producer<F> = FramedTransportProducer<F, ShmBackend>;
type Consumer<F> = FramedTransportConsumer<F, ShmBackend>;

fn producer<F: FramedTransportFrame>(
    name: &str,
    depth: usize,
    id: &str,
) -> BenchResult<Producer<F>> {
    Ok(FramedTransportProducer::from_builder(
        build_shared_single_producer::<F>(name, depth)
            .with_consumer_id(id)
            .with_coordination(CoordinationMode::BufferUntilConsumers),
    )?
    .with_max_message_size(F::DATA_BYTES))
}

fn consumer<F: FramedTransportFrame>(
    name: &str,
    depth: usize,
    id: &str,
) -> BenchResult<Consumer<F>> {
    retry(ATTACH_TIMEOUT, || {
        Ok(FramedTransportConsumer::from_builder(
            attach_shared_consumer::<F>(name, depth)
                .with_consumer_id(id)
                .with_attach_timeout(ATTACH_TIMEOUT),
        )?
        .with_max_message_size(F::DATA_BYTES))
    })
}

pub fn run(ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
    match work {
        Work::PingPong { size: 64 } => pingpong::<FixedFrame<64>>(ctx, work),
        Work::PingPong { size: 1024 } => pingpong::<FixedFrame<1024>>(ctx, work),
        Work::PingPong { size: 65536 } => pingpong::<FixedFrame<65536>>(ctx, work),
        Work::Stream { depth } => stream(ctx, work, depth),
        Work::Bulk { .. } => bulk(ctx, work),
        other => Err(format!("{ROLE}: unsupported {other:?}").into()),
    }
}

pub fn peer(work: Work, args: &[String]) -> BenchResult<()> {
    match work {
        Work::PingPong { size: 64 } => echo::<FixedFrame<64>>(args),
        Work::PingPong { size: 1024 } => echo::<FixedFrame<1024>>(args),
        Work::PingPong { size: 65536 } => echo::<FixedFrame<65536>>(args),
        Work::Stream { depth } => stream_peer(args, depth),
        Work::Bulk { checksum } => bulk_peer(args, checksum),
        other => Err(format!("{ROLE}: unsupported {other:?}").into()),
    }
}

fn pingpong<F: FramedTransportFrame>(ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
    let size = F::DATA_BYTES;
    let (ping, pong) = (fresh_name("p"), fresh_name("q"));
    let depth = pingpong_depth(size);
    let (warmup, iters) = ctx.trips(size);
    let mut p = producer::<F>(&ping, depth, "b")?;
    let mut args = work.args();
    args.extend([ping, pong.clone(), (warmup + iters).to_string()]);
    let mut peer = Peer::spawn(ROLE, ctx.cpus.1, &args)?;
    let mut c = consumer::<F>(&pong, depth, "a")?;
    let mut src = msg::source(size / 8);
    let ticks = time_trips(&ctx.clock, warmup, iters, |i| {
        msg::stamp(&mut src, i);
        p.publish(msg::as_bytes(&src))?;
        spin_until(
            || match c.try_recv()? {
                Some(m) if msg::carries_bytes(&m, i) => Ok(Some(())),
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

fn echo<F: FramedTransportFrame>(args: &[String]) -> BenchResult<()> {
    let (ping, pong, n): (String, String, u64) = (arg(args, 0)?, arg(args, 1)?, arg(args, 2)?);
    let depth = pingpong_depth(F::DATA_BYTES);
    let mut p = producer::<F>(&pong, depth, "a")?;
    let mut c = consumer::<F>(&ping, depth, "b")?;
    for _ in 0..n {
        spin_until(
            || match c.try_recv()? {
                Some(m) => {
                    p.publish(&m)?;
                    Ok(Some(()))
                }
                None => Ok(None),
            },
            || Ok(()),
        )?;
    }
    Ok(())
}

fn wait_attached<F: FramedTransportFrame>(p: &Producer<F>, peer: &mut Peer) -> BenchResult<()> {
    while p.inner().consumers().iter().any(|c| !c.attached) {
        peer.check_alive()?;
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(())
}

fn stream(ctx: &Ctx, work: Work, depth: usize) -> BenchResult<Outcome> {
    let name = fresh_name("s");
    let mut p = producer::<FixedFrame<64>>(&name, depth, "s")?;
    let mut args = work.args();
    args.extend([name, ctx.events.to_string()]);
    let mut peer = Peer::spawn(ROLE, ctx.cpus.1, &args)?;
    wait_attached(&p, &mut peer)?;
    let mut src = msg::source(8);
    for i in 0..ctx.events {
        msg::stamp(&mut src, i);
        p.publish(msg::as_bytes(&src))?;
    }
    let out = peer.finish(ctx.peer_timeout)?;
    Ok(Outcome::Rate(stream_rate(&out, ctx.events)?))
}

fn stream_peer(args: &[String], depth: usize) -> BenchResult<()> {
    let (name, n): (String, u64) = (arg(args, 0)?, arg(args, 1)?);
    let mut c = consumer::<FixedFrame<64>>(&name, depth, "s")?;
    let mut t = StreamTally::new();
    while t.expected < n {
        if let Some(m) = c.try_recv()? {
            t.check_bytes(&m);
        }
    }
    t.print();
    Ok(())
}

type F1M = FixedFrame<BULK_BYTES>;

fn bulk(ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
    let name = fresh_name("b");
    let mut p = producer::<F1M>(&name, ctx.bulk_depth, "c")?;
    let mut args = work.args();
    args.extend([
        name,
        ctx.bulk_messages.to_string(),
        ctx.bulk_depth.to_string(),
    ]);
    let mut peer = Peer::spawn(ROLE, ctx.cpus.1, &args)?;
    wait_attached(&p, &mut peer)?;
    let mut src = msg::source(BULK_BYTES / 8);
    for i in 0..ctx.bulk_messages {
        msg::stamp(&mut src, i);
        p.publish(msg::as_bytes(&src))?;
    }
    let out = peer.finish(ctx.peer_timeout)?;
    Ok(Outcome::Bandwidth(bulk_gbps(&out, ctx.bulk_messages)?))
}

fn bulk_peer(args: &[String], checksum: bool) -> BenchResult<()> {
    let (name, n, depth): (String, u64, usize) = (arg(args, 0)?, arg(args, 1)?, arg(args, 2)?);
    let mut c = consumer::<F1M>(&name, depth, "c")?;
    let mut t = BulkTally::new(checksum);
    while t.received < n {
        if let Some(m) = c.try_recv()? {
            t.check_bytes(&m);
        }
    }
    t.print();
    Ok(())
}
