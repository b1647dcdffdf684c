//! myelon (this tree), the multi-producer ring: each fan-in producer process builds its
//! `MultiProducer` with `build_shared_multi_producer::<Msg<8>>(name, 4096)` (whichever comes
//! first creates the ring, the other attaches; both reserve the consumer `c` and buffer until it
//! attaches) with source id `p + 1`, and publishes one event at a time (`publish(|e| ..)`, the
//! slot written in place). The driver attaches with `attach_shared_multi_consumer` and reads the
//! `Sourced<Msg<8>>` slots in place: `try_consume_batch` of at most depth/4 (throughput) or
//! `try_consume_next_leased` (latency). The consumer also checks `source` against the producer
//! number in the event.

use super::fanin::{self, ProducerArgs, DEPTH};
use super::{retry, Ctx, Outcome, Work, ATTACH_TIMEOUT};
use crate::msg::Msg;
use crate::proc::{fresh_name, BenchResult};
use myelon::producer::CoordinationMode;
use myelon::{
    attach_shared_multi_consumer, build_shared_multi_producer, MultiProducer, SharedConsumer,
    Sourced,
};

const ROLE: &str = "myelon_mp";
type Event = Msg<{ fanin::WORDS }>;

pub fn run(ctx: &Ctx, work: Work) -> BenchResult<Outcome> {
    let Work::FanIn { latency, .. } = work else {
        return Err(format!("{ROLE}: unsupported {work:?}").into());
    };
    let name = fresh_name("m");
    let attach = |peers: &mut crate::proc::Peers| -> BenchResult<SharedConsumer<Sourced<Event>>> {
        retry(ATTACH_TIMEOUT, || {
            peers.check_alive()?;
            Ok(attach_shared_multi_consumer::<Event>(&name, DEPTH)
                .with_consumer_id("c")
                .with_attach_timeout(ATTACH_TIMEOUT)
                .build_consumer()?)
        })
    };
    if latency {
        fanin::drive(ctx, work, ROLE, &name, attach, |c, t| {
            if let Some(e) = c.try_consume_next_leased()? {
                t.event(Some(e.source), &e.event.words);
            }
            Ok(())
        })
    } else {
        let max = DEPTH / 4;
        fanin::drive(ctx, work, ROLE, &name, attach, |c, t| {
            c.try_consume_batch(max, |e, _, _| t.event(Some(e.source), &e.event.words))?;
            Ok(())
        })
    }
}

pub fn peer(work: Work, args: &[String]) -> BenchResult<()> {
    let src = fanin::source();
    fanin::produce(
        work,
        args,
        |a: &ProducerArgs| -> BenchResult<MultiProducer<Event, myelon::backend::ShmBackend>> {
            retry(ATTACH_TIMEOUT, || {
                Ok(build_shared_multi_producer::<Event>(&a.name, DEPTH)
                    .with_source_id(a.producer + 1)
                    .with_consumer_id("c")
                    .with_coordination(CoordinationMode::BufferUntilConsumers)
                    .with_attach_timeout(ATTACH_TIMEOUT)
                    .build(Event::default)?)
            })
        },
        |p, i, stamp| {
            let k = p.source() - 1;
            p.publish(|e| fanin::fill(&mut e.words, &src, k, i, stamp))?;
            Ok(true)
        },
    )
}
