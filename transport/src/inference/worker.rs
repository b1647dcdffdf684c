//! The worker side of a [`FixedTopology`]: receives broadcast requests, publishes responses on
//! its own ring.

use super::{left, FixedTopology, InferenceTopologyError, InferenceTopologyResult, TopologyFrame};
use crate::backend::{ProcessState, RingBackend};
use crate::typed::codec::Codec;
use crate::ring::error::MultiProcessError;
use crate::transport::{CoordinationCursor, FramedTransportProducer, MyelonTransportLayout};
use crate::typed::TypedConsumer;
use crate::{CoordinationMode, SharedDisruptorBuilder};
use std::marker::PhantomData;
use std::time::Duration;

/// Worker `rank`: consumes the dispatch ring as [`FixedTopology::worker_id`]`(rank)`, owns
/// response ring `rank`.
pub struct Worker<Req, Resp, C, B: RingBackend> {
    rank: usize,
    dispatch: TypedConsumer<Req, C, TopologyFrame, B>,
    response: FramedTransportProducer<TopologyFrame, B>,
    incarnation: u64,
    codec: C,
    buf: Vec<u8>,
    _resp: PhantomData<fn(&Resp)>,
}

impl<Req, Resp, C, B: RingBackend> std::fmt::Debug for Worker<Req, Resp, C, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("rank", &self.rank)
            .field("incarnation", &self.incarnation)
            .finish_non_exhaustive()
    }
}

/// Opens the session's coordination cursor once a live scheduler owns it.
fn open_live_cursor<B: RingBackend>(
    topo: &FixedTopology,
    backend: &B,
    side: &str,
    start: Duration,
) -> InferenceTopologyResult<CoordinationCursor<B>> {
    let name = topo.layout().coordination_segment();
    loop {
        let wait = left(backend, start, topo.rendezvous_timeout(), side, || {
            vec![format!("coordination cursor {name} (scheduler)")]
        })?;
        match CoordinationCursor::open_with(backend.clone(), super::ring_name(name), wait) {
            Ok(c) if c.owner_state() != ProcessState::Dead => return Ok(c),
            // A dead scheduler's cursor: wait for the next scheduler to replace it.
            Ok(_) | Err(crate::transport::CoordinationCursorError::NotReady { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        backend.sleep(crate::default_discovery_poll_duration());
    }
}

impl<Req, Resp, C, B> Worker<Req, Resp, C, B>
where
    C: Codec<Req> + Codec<Resp> + Clone,
    B: RingBackend,
{
    pub(super) fn connect(
        topo: &FixedTopology,
        backend: B,
        rank: usize,
        codec: C,
    ) -> InferenceTopologyResult<Self> {
        let start = backend.now();
        let side = format!("worker {rank}");
        let cfg = topo.config();
        let layout = cfg.layout();
        let cursor = open_live_cursor(topo, &backend, &side, start)?;
        let restart = cursor.rank_value(rank) > 0;
        let response = FramedTransportProducer::from_builder(
            SharedDisruptorBuilder::with_backend(
                backend.clone(),
                super::ring_name(layout.response_segment(rank).expect("rank checked")),
                cfg.response_depth(),
            )
            .with_consumer_id(MyelonTransportLayout::RESPONSE_CONSUMER_ID)
            .with_coordination(CoordinationMode::BufferUntilConsumers),
        )?;
        let wait = left(&backend, start, topo.rendezvous_timeout(), &side, || {
            vec![layout.dispatch_segment().to_string()]
        })?;
        let dispatch = TypedConsumer::from_builder(
            SharedDisruptorBuilder::with_backend(
                backend.clone(),
                super::ring_name(layout.dispatch_segment()),
                cfg.rpc_depth(),
            )
            .with_consumer_id(FixedTopology::worker_id(rank))
            .with_attach_timeout(wait)
            .with_wait_strategy(cfg.wait_strategy().to_auto()),
            codec.clone(),
        )
        .map_err(|e| match e {
            crate::transport::TransportError::Ring(MultiProcessError::NotReady {
                waited,
                name,
            }) => InferenceTopologyError::RendezvousTimeout {
                side: side.clone(),
                missing: vec![name],
                waited,
            },
            e => e.into(),
        })?;
        let incarnation = cursor.announce_rank(rank);
        if !restart {
            let wait = left(&backend, start, topo.rendezvous_timeout(), &side, Vec::new)?;
            match response.inner().wait_for_consumers(wait) {
                Ok(()) => {}
                Err(MultiProcessError::ConsumersNotAttached { missing, waited }) => {
                    return Err(InferenceTopologyError::RendezvousTimeout {
                        side,
                        missing,
                        waited,
                    })
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Worker {
            rank,
            dispatch,
            response,
            incarnation,
            codec,
            buf: Vec::new(),
            _resp: PhantomData,
        })
    }

    /// This worker's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// How many times this rank has started in the session (1 for the first start).
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Whether this incarnation resumed the dispatch ring where a previous one left it.
    pub fn resumed(&self) -> bool {
        self.dispatch.framed().inner().resumed()
    }

    /// The next request if one is there (`Ok(None)`: nothing yet).
    pub fn try_recv(&mut self) -> InferenceTopologyResult<Option<Req>> {
        Ok(self.dispatch.try_recv()?)
    }

    /// The next request, waiting at most `timeout`. The scheduler closing the session is
    /// `Transport(Ring(Closed))`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> InferenceTopologyResult<Req> {
        Ok(self.dispatch.recv_timeout(timeout)?)
    }

    /// Publishes `response` to the scheduler; returns its message id.
    pub fn respond(&mut self, response: &Resp) -> InferenceTopologyResult<u32> {
        Codec::<Resp>::encode(&mut self.codec, response, &mut self.buf)?;
        Ok(self.response.publish(&self.buf)?)
    }
}
