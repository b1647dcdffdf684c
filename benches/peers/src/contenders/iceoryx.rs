//! iceoryx2 0.10, inter-process publish-subscribe (`ipc::Service`) with `[u64]` slice payloads
//! of the message size. The sender loans a sample from shared memory, writes the message into it
//! (`loan_slice_uninit` + `write_from_slice`, then the stamps) and sends it (zero-copy); the
//! receiver reads the sample in place. The subscriber buffer holds `depth` samples, history is
//! off, overflow is off and the publisher retries until delivered, so nothing is lost.
//!
//! Fan-in (`fanin.rs`): an n:m service (`max_publishers(2)`, one subscriber, the same settings:
//! buffer = 4096, history 0, no overflow, `RetryUntilDelivered`) created by the driver with its
//! subscriber; each producer process opens it and creates its own publisher. The subscriber
//! reads the samples in place (`receive`), from whichever publisher iceoryx2 gives it next.
//!
//! Every file iceoryx2 creates carries the run prefix (its `global.prefix` setting, in
//! `/dev/shm`) or lives under the run's own root directory (`global.root_path`), both of which
//! the supervisor removes.

use super::{
    arg, bulk_gbps, fanin, pingpong_depth, spin_until, stream_rate, BulkTally, Ctx, Outcome,
    StreamTally, Work, ATTACH_TIMEOUT, BULK_BYTES, EVENT_BYTES,
};
use crate::clock::time_trips;
use crate::msg;
use crate::proc::{fresh_name, iceoryx_root, prefix, BenchResult, Peer};
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use std::time::{Duration, Instant};

const ROLE: &str = "iceoryx2";

type Pub = Publisher<ipc::Service, [u64], ()>;
type Sub = Subscriber<ipc::Service, [u64], ()>;
type Factory =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u64], ()>;

/// A node whose files all carry the run prefix / live under the run's root.
fn node() -> BenchResult<Node<ipc::Service>> {
    set_log_level(LogLevel::Error);
    let mut config = Config::default();
    config.global.prefix = FileName::new(format!("{}i_", prefix()).as_bytes())?;
    config
        .global
        .set_root_path(&Path::new(iceoryx_root().to_string_lossy().as_bytes())?);
    Ok(NodeBuilder::new()
        .config(&config)
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<ipc::Service>()?)
}

fn service(node: &Node<ipc::Service>, name: &str, depth: usize) -> BenchResult<Factory> {
    let name: ServiceName = name.try_into()?;
    Ok(node
        .service_builder(&name)
        .publish_subscribe::<[u64]>()
        .max_publishers(1)
        .max_subscribers(1)
        .history_size(0)
        .subscriber_max_buffer_size(depth)
        .enable_safe_overflow(false)
        .open_or_create()?)
}

fn publisher(s: &Factory, words: usize) -> BenchResult<Pub> {
    Ok(s.publisher_builder()
        .initial_max_slice_len(words)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()?)
}

fn subscriber(s: &Factory, depth: usize) -> BenchResult<Sub> {
    Ok(s.subscriber_builder().buffer_size(depth).create()?)
}

/// Waits until `s` has one publisher and one subscriber.
fn connected(s: &Factory) -> BenchResult<()> {
    let deadline = Instant::now() + ATTACH_TIMEOUT;
    loop {
        let d = s.dynamic_config();
        if d.number_of_publishers() >= 1 && d.number_of_subscribers() >= 1 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("{ROLE}: peer never connected").into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Loans a sample, writes message `i` (a copy of `src`, stamped) and sends it.
#[inline(always)]
fn send(p: &Pub, src: &[u64], i: u64) -> BenchResult<usize> {
    let mut s = p.loan_slice_uninit(src.len())?.write_from_slice(src);
    msg::stamp(s.payload_mut(), i);
    Ok(s.send()?)
}

/// Sends message 0 until it is delivered (the subscriber may not be connected yet).
fn send_first(p: &Pub, src: &[u64]) -> BenchResult<()> {
    let deadline = Instant::now() + ATTACH_TIMEOUT;
    while send(p, src, 0)? == 0 {
        if Instant::now() >= deadline {
            return Err(format!("{ROLE}: first message never delivered").into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

pub fn run(ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
    match work {
        Work::PingPong { size } => pingpong(ctx, work, size),
        Work::Stream { depth } => oneway(ctx, work, depth, EVENT_BYTES, ctx.events),
        Work::Bulk { .. } => oneway(ctx, work, ctx.bulk_depth, BULK_BYTES, ctx.bulk_messages),
        Work::FanIn { .. } => fanin_run(ctx, work),
    }
}

pub fn peer(work: Work, args: &[String]) -> BenchResult<()> {
    match work {
        Work::PingPong { size } => echo(args, size),
        Work::Stream { .. } | Work::Bulk { .. } => receive(work, args),
        Work::FanIn { .. } => fanin_peer(work, args),
    }
}

fn pingpong(ctx: &Ctx, work: Work, size: usize) -> BenchResult<Outcome> {
    let node = node()?;
    let (ping, pong) = (fresh_name("/p"), fresh_name("/q"));
    let depth = pingpong_depth(size);
    let (warmup, iters) = ctx.trips(size);
    let (sping, spong) = (service(&node, &ping, depth)?, service(&node, &pong, depth)?);
    let p = publisher(&sping, size / 8)?;
    let c = subscriber(&spong, depth)?;
    let mut args = work.args();
    args.extend([ping, pong, (warmup + iters).to_string()]);
    let mut peer = Peer::spawn(ROLE, ctx.cpus.1, &args)?;
    connected(&sping)?;
    connected(&spong)?;
    let src = msg::source(size / 8);
    let ticks = time_trips(&ctx.clock, warmup, iters, |i| {
        if send(&p, &src, i)? == 0 {
            return Err(format!("{ROLE}: trip {i} not delivered").into());
        }
        spin_until(
            || match c.receive()? {
                Some(s) if msg::carries(s.payload(), i) => Ok(Some(())),
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

fn echo(args: &[String], size: usize) -> BenchResult<()> {
    let (ping, pong, n): (String, String, u64) = (arg(args, 0)?, arg(args, 1)?, arg(args, 2)?);
    let node = node()?;
    let depth = pingpong_depth(size);
    let (sping, spong) = (service(&node, &ping, depth)?, service(&node, &pong, depth)?);
    let c = subscriber(&sping, depth)?;
    let p = publisher(&spong, size / 8)?;
    connected(&spong)?;
    for _ in 0..n {
        spin_until(
            || match c.receive()? {
                Some(s) => {
                    let out = p.loan_slice_uninit(s.payload().len())?;
                    out.write_from_slice(s.payload()).send()?;
                    Ok(Some(()))
                }
                None => Ok(None),
            },
            || Ok(()),
        )?;
    }
    Ok(())
}

/// Stream (64 B events) and bulk (1 MiB messages): the driver publishes `n` messages.
fn oneway(ctx: &Ctx, work: Work, depth: usize, size: usize, n: u64) -> BenchResult<Outcome> {
    let node = node()?;
    let name = fresh_name("/s");
    let s = service(&node, &name, depth)?;
    let p = publisher(&s, size / 8)?;
    let mut args = work.args();
    args.extend([name, n.to_string(), depth.to_string()]);
    let _peer = Peer::spawn(ROLE, ctx.cpus.1, &args)?;
    connected(&s)?;
    let src = msg::source(size / 8);
    send_first(&p, &src)?;
    for i in 1..n {
        send(&p, &src, i)?;
    }
    let out = _peer.finish(ctx.peer_timeout)?;
    Ok(match work {
        Work::Bulk { .. } => Outcome::Bandwidth(bulk_gbps(&out, n)?),
        _ => Outcome::Rate(stream_rate(&out, n)?),
    })
}

fn receive(work: Work, args: &[String]) -> BenchResult<()> {
    let (name, n, depth): (String, u64, usize) = (arg(args, 0)?, arg(args, 1)?, arg(args, 2)?);
    let node = node()?;
    let s = service(&node, &name, depth)?;
    let c = subscriber(&s, depth)?;
    match work {
        Work::Bulk { checksum } => {
            let mut t = BulkTally::new(checksum);
            while t.received < n {
                if let Some(m) = c.receive()? {
                    t.check_words(m.payload());
                }
            }
            t.print();
        }
        _ => {
            let mut t = StreamTally::new();
            while t.expected < n {
                if let Some(m) = c.receive()? {
                    t.check_words(m.payload());
                }
            }
            t.print();
        }
    }
    Ok(())
}

/// Publishers a fan-in service admits (n:m; the one-producer reference row uses one of them).
const FANIN_PUBLISHERS: usize = 2;

fn fanin_service(node: &Node<ipc::Service>, name: &str) -> BenchResult<Factory> {
    let name: ServiceName = name.try_into()?;
    Ok(node
        .service_builder(&name)
        .publish_subscribe::<[u64]>()
        .max_publishers(FANIN_PUBLISHERS)
        .max_subscribers(1)
        .history_size(0)
        .subscriber_max_buffer_size(fanin::DEPTH)
        .enable_safe_overflow(false)
        .open_or_create()?)
}

fn fanin_run(ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
    let Work::FanIn { producers, .. } = work else {
        return Err(format!("{ROLE}: unsupported {work:?}").into());
    };
    if producers > FANIN_PUBLISHERS {
        return Err(
            format!("{ROLE}: the fan-in service admits {FANIN_PUBLISHERS} publishers").into(),
        );
    }
    let node = node()?;
    let name = fresh_name("/n");
    let s = fanin_service(&node, &name)?;
    let sub = subscriber(&s, fanin::DEPTH)?;
    let attach = |peers: &mut crate::proc::Peers| -> BenchResult<Sub> {
        // The subscriber exists; wait until every producer has its publisher.
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        while s.dynamic_config().number_of_publishers() < producers {
            peers.check_alive()?;
            if Instant::now() >= deadline {
                return Err(format!("{ROLE}: the publishers never connected").into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(sub)
    };
    fanin::drive(ctx, work, ROLE, &name, attach, |c, t| {
        if let Some(m) = c.receive()? {
            t.event(None, m.payload());
        }
        Ok(())
    })
}

fn fanin_peer(work: Work, args: &[String]) -> BenchResult<()> {
    let src = fanin::source();
    fanin::produce(
        work,
        args,
        |a| {
            let node = node()?;
            let s = fanin_service(&node, &a.name)?;
            let p = publisher(&s, fanin::WORDS)?;
            Ok((node, s, p, a.producer))
        },
        |(_, _, p, k), i, stamp| {
            let mut s = p.loan_slice_uninit(fanin::WORDS)?.write_from_slice(&src);
            fanin::fill(s.payload_mut(), &src, *k, i, stamp);
            Ok(s.send()? > 0)
        },
    )
}
