//! A Unix-domain stream socket (Linux abstract address, so nothing is left on disk), each
//! message preceded by a 4-byte little-endian length. Both ends are non-blocking and busy-spin
//! on `WouldBlock`, as the shared-memory contenders spin. The sender copies the message into a
//! send buffer (length + bytes) and writes it with one `write` when it fits; the receiver reads
//! into its own buffer. A socket has no ring depth: the kernel's default socket buffers apply,
//! and the stream row runs once.

use super::{
    arg, bulk_gbps, spin_until, stream_rate, BulkTally, Ctx, Outcome, StreamTally, Work,
    ATTACH_TIMEOUT, BULK_BYTES, EVENT_BYTES,
};
use crate::clock::time_trips;
use crate::msg;
use crate::proc::{fresh_name, BenchResult, Peer};
use std::io::{ErrorKind, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::time::Instant;

const ROLE: &str = "uds";

fn addr(name: &str) -> BenchResult<SocketAddr> {
    Ok(SocketAddr::from_abstract_name(name.as_bytes())?)
}

/// Accepts the peer's connection (waiting at most [`ATTACH_TIMEOUT`]).
fn accept(l: &UnixListener, peer: &mut Peer) -> BenchResult<UnixStream> {
    l.set_nonblocking(true)?;
    let deadline = Instant::now() + ATTACH_TIMEOUT;
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(true)?;
                return Ok(s);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                peer.check_alive()?;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn connect(name: &str) -> BenchResult<UnixStream> {
    let s = super::retry(ATTACH_TIMEOUT, || {
        Ok(UnixStream::connect_addr(&addr(name)?)?)
    })?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Writes all of `b`, spinning on `WouldBlock`.
#[inline(always)]
fn write_all(s: &mut UnixStream, mut b: &[u8]) -> BenchResult<()> {
    while !b.is_empty() {
        match s.write(b) {
            Ok(0) => return Err("uds: peer closed".into()),
            Ok(k) => b = &b[k..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Fills all of `b`, spinning on `WouldBlock`.
#[inline(always)]
fn read_exact(s: &mut UnixStream, mut b: &mut [u8]) -> BenchResult<()> {
    while !b.is_empty() {
        match s.read(b) {
            Ok(0) => return Err("uds: peer closed".into()),
            Ok(k) => b = &mut b[k..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A send buffer: 4-byte length, then the message (as words, so it can be stamped).
struct Frame {
    buf: Vec<u8>,
}

impl Frame {
    fn new(size: usize) -> Frame {
        let mut buf = vec![0u8; 4 + size];
        buf[..4].copy_from_slice(&(size as u32).to_le_bytes());
        Frame { buf }
    }

    /// Copies message `i` (the source, stamped) into the buffer.
    #[inline(always)]
    fn fill(&mut self, src: &[u64], i: u64) {
        let body = &mut self.buf[4..];
        for (d, w) in body.chunks_exact_mut(8).zip(src) {
            d.copy_from_slice(&w.to_le_bytes());
        }
        let n = body.len();
        body[..8].copy_from_slice(&i.to_le_bytes());
        body[n - 8..].copy_from_slice(&msg::tail_of(i).to_le_bytes());
    }
}

/// Reads one length-prefixed message into `buf` (resized to the message).
fn read_msg(s: &mut UnixStream, buf: &mut Vec<u8>) -> BenchResult<()> {
    let mut len = [0u8; 4];
    read_exact(s, &mut len)?;
    buf.resize(u32::from_le_bytes(len) as usize, 0);
    read_exact(s, buf)
}

pub fn run(ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
    if let Work::FanIn { .. } = work {
        return Err(format!("{ROLE}: unsupported {work:?}").into());
    }
    let name = fresh_name("u");
    let l = UnixListener::bind_addr(&addr(&name)?)?;
    let mut args = work.args();
    let n = match work {
        Work::PingPong { size } => {
            let (w, i) = ctx.trips(size);
            w + i
        }
        Work::Stream { .. } => ctx.events,
        Work::Bulk { .. } | Work::FanIn { .. } => ctx.bulk_messages,
    };
    args.extend([name, n.to_string()]);
    let mut peer = Peer::spawn(ROLE, ctx.cpus.1, &args)?;
    let mut s = accept(&l, &mut peer)?;
    match work {
        Work::PingPong { size } => {
            let (warmup, iters) = ctx.trips(size);
            let src = msg::source(size / 8);
            let mut out = Frame::new(size);
            let mut back = vec![0u8; size];
            let ticks = time_trips(&ctx.clock, warmup, iters, |i| {
                out.fill(&src, i);
                write_all(&mut s, &out.buf)?;
                read_msg(&mut s, &mut back)?;
                if !msg::carries_bytes(&back, i) {
                    return Err(format!("{ROLE}: trip {i} came back wrong").into());
                }
                Ok(())
            })?;
            peer.finish(ctx.peer_timeout)?;
            Ok(Outcome::Latency(
                ticks.iter().map(|t| ctx.clock.ns(*t)).collect(),
            ))
        }
        Work::Stream { .. } | Work::Bulk { .. } | Work::FanIn { .. } => {
            let size = if matches!(work, Work::Bulk { .. }) {
                BULK_BYTES
            } else {
                EVENT_BYTES
            };
            let src = msg::source(size / 8);
            let mut out = Frame::new(size);
            for i in 0..n {
                out.fill(&src, i);
                write_all(&mut s, &out.buf)?;
            }
            let report = peer.finish(ctx.peer_timeout)?;
            Ok(match work {
                Work::Bulk { .. } => Outcome::Bandwidth(bulk_gbps(&report, n)?),
                _ => Outcome::Rate(stream_rate(&report, n)?),
            })
        }
    }
}

pub fn peer(work: Work, args: &[String]) -> BenchResult<()> {
    let (name, n): (String, u64) = (arg(args, 0)?, arg(args, 1)?);
    let mut s = connect(&name)?;
    match work {
        Work::PingPong { size } => {
            let mut buf = vec![0u8; 4 + size];
            for _ in 0..n {
                read_exact(&mut s, &mut buf)?;
                write_all(&mut s, &buf)?;
            }
        }
        Work::Stream { .. } => stream_peer(&mut s, n)?,
        Work::Bulk { checksum } => {
            let mut t = BulkTally::new(checksum);
            let mut buf = Vec::with_capacity(BULK_BYTES);
            while t.received < n {
                read_msg(&mut s, &mut buf)?;
                t.check_bytes(&buf);
            }
            t.print();
        }
        Work::FanIn { .. } => return Err(format!("{ROLE}: unsupported {work:?}").into()),
    }
    Ok(())
}

/// Reads the 64-byte events in large chunks and parses them out of the buffer.
fn stream_peer(s: &mut UnixStream, n: u64) -> BenchResult<()> {
    const REC: usize = 4 + EVENT_BYTES;
    let mut buf = vec![0u8; 64 * 1024];
    let (mut have, mut t) = (0usize, StreamTally::new());
    while t.expected < n {
        let k = spin_until(
            || match s.read(&mut buf[have..]) {
                Ok(0) => Err("uds: peer closed".into()),
                Ok(k) => Ok(Some(k)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e.into()),
            },
            || Ok(()),
        )?;
        have += k;
        let whole = have / REC * REC;
        for rec in buf[..whole].chunks_exact(REC) {
            if u32::from_le_bytes(rec[..4].try_into()?) as usize != EVENT_BYTES {
                return Err("uds: bad length prefix".into());
            }
            t.check_bytes(&rec[4..]);
        }
        buf.copy_within(whole..have, 0);
        have -= whole;
    }
    t.print();
    Ok(())
}
