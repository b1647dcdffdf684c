//! The scheduler side of a [`FixedTopology`]: broadcasts typed requests, receives typed
//! responses per worker rank.

use super::{left, FixedTopology, InferenceTopologyError, InferenceTopologyResult, TopologyFrame};
use crate::backend::RingBackend;
use crate::typed::codec::Codec;
use crate::ring::error::MultiProcessError;
use crate::transport::{
    CoordinationCursor, FramedTransportProducer, MyelonTransportLayout, TransportError,
};
use crate::typed::TypedConsumer;
use crate::{CoordinationMode, RequiredConsumerLivenessConfig, SharedDisruptorBuilder};
use std::marker::PhantomData;
use std::time::Duration;

type ResponseConsumer<Resp, C, B> = TypedConsumer<Resp, C, TopologyFrame, B>;
/// A response ring attached during the rendezvous, with the rank word it was announced under.
type Attached<Resp, C, B> = Option<(ResponseConsumer<Resp, C, B>, u64)>;

/// The scheduler: owns the dispatch ring and the coordination cursor, consumes every response
/// ring (as consumer [`MyelonTransportLayout::RESPONSE_CONSUMER_ID`]).
pub struct Scheduler<Req, Resp, C, B: RingBackend> {
    topology: FixedTopology,
    backend: B,
    dispatch: FramedTransportProducer<TopologyFrame, B>,
    responses: Vec<ResponseConsumer<Resp, C, B>>,
    /// Rank word of each worker when its response ring was attached.
    seen: Vec<u64>,
    cursor: CoordinationCursor<B>,
    codec: C,
    buf: Vec<u8>,
    _req: PhantomData<fn(&Req)>,
}

impl<Req, Resp, C, B: RingBackend> std::fmt::Debug for Scheduler<Req, Resp, C, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("topology", &self.topology)
            .field("dispatch", &self.dispatch)
            .finish_non_exhaustive()
    }
}

impl<Req, Resp, C, B> Scheduler<Req, Resp, C, B>
where
    C: Codec<Req> + Codec<Resp> + Clone,
    B: RingBackend,
{
    pub(super) fn connect(
        topo: &FixedTopology,
        backend: B,
        codec: C,
    ) -> InferenceTopologyResult<Self> {
        let start = backend.now();
        let cfg = topo.config();
        let layout = cfg.layout();
        // The dispatch ring before the cursor: a worker that sees a live cursor finds this
        // session's dispatch ring, never a dead scheduler's.
        let dispatch = FramedTransportProducer::from_builder(
            SharedDisruptorBuilder::with_backend(
                backend.clone(),
                super::ring_name(layout.dispatch_segment()),
                cfg.rpc_depth(),
            )
            .with_consumer_ids(topo.worker_ids())
            .with_coordination(CoordinationMode::BufferUntilConsumers),
        )?;
        let cursor =
            CoordinationCursor::ensure_with(backend.clone(), super::ring_name(layout.coordination_segment()))?;
        cursor.advance_generation();
        let mut s = Scheduler {
            topology: topo.clone(),
            backend,
            dispatch,
            responses: Vec::new(),
            seen: Vec::new(),
            cursor,
            codec,
            buf: Vec::new(),
            _req: PhantomData,
        };
        s.attach_all_responses(start)?;
        let wait = left(
            &s.backend,
            start,
            topo.rendezvous_timeout(),
            "scheduler",
            Vec::new,
        )?;
        match s.dispatch.inner().wait_for_consumers(wait) {
            Ok(()) => Ok(s),
            Err(MultiProcessError::ConsumersNotAttached { missing, .. }) => {
                Err(InferenceTopologyError::RendezvousTimeout {
                    side: "scheduler".into(),
                    missing,
                    waited: s.backend.now().saturating_sub(start),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    fn response_builder(
        &self,
        rank: usize,
        attach: Duration,
    ) -> SharedDisruptorBuilder<TopologyFrame, B> {
        let cfg = self.topology.config();
        let name = super::ring_name(cfg.layout().response_segment(rank).expect("rank checked"));
        SharedDisruptorBuilder::with_backend(self.backend.clone(), name, cfg.response_depth())
            .with_consumer_id(MyelonTransportLayout::RESPONSE_CONSUMER_ID)
            .with_attach_timeout(attach)
            .with_wait_strategy(cfg.wait_strategy().to_auto())
    }

    /// Attaches to every response ring once its worker has announced it in the cursor.
    fn attach_all_responses(&mut self, start: Duration) -> InferenceTopologyResult<()> {
        let n = self.topology.workers().get();
        let mut attached: Vec<Attached<Resp, C, B>> = (0..n).map(|_| None).collect();
        loop {
            for (rank, slot) in attached.iter_mut().enumerate() {
                let word = self.cursor.rank_value(rank);
                if slot.is_some() || word == 0 {
                    continue;
                }
                let c = TypedConsumer::from_builder(
                    self.response_builder(rank, self.topology.rendezvous_timeout()),
                    self.codec.clone(),
                )?;
                *slot = Some((c, word));
            }
            if attached.iter().all(Option::is_some) {
                break;
            }
            let layout = self.topology.layout();
            left(
                &self.backend,
                start,
                self.topology.rendezvous_timeout(),
                "scheduler",
                || {
                    attached
                        .iter()
                        .enumerate()
                        .filter(|(_, a)| a.is_none())
                        .map(|(r, _)| layout.response_segment(r).unwrap_or("?").to_string())
                        .collect()
                },
            )?;
            self.backend.sleep(crate::default_discovery_poll_duration());
        }
        for (c, word) in attached.into_iter().flatten() {
            self.responses.push(c);
            self.seen.push(word);
        }
        Ok(())
    }

    /// The topology.
    pub fn topology(&self) -> &FixedTopology {
        &self.topology
    }

    /// The dispatch ring's framed producer (counters, cursor).
    pub fn dispatch(&self) -> &FramedTransportProducer<TopologyFrame, B> {
        &self.dispatch
    }

    /// Makes every worker a required consumer of the dispatch ring (see
    /// [`crate::liveness`]): `configure` receives the default configuration for the worker ids
    /// and may set timeouts, the failure action and an alert hook.
    pub fn enable_required_worker_liveness(
        &mut self,
        configure: impl FnOnce(
            RequiredConsumerLivenessConfig,
        ) -> crate::MultiProcessResult<RequiredConsumerLivenessConfig>,
    ) -> InferenceTopologyResult<()> {
        let cfg = configure(RequiredConsumerLivenessConfig::new(
            self.topology.worker_ids(),
        )?)?;
        self.dispatch.enable_required_consumer_liveness(cfg)?;
        Ok(())
    }

    /// Broadcasts `request` to every worker; returns its message id. Waits for room as long as
    /// the slowest worker takes, unless required-worker liveness is enabled: then a stalled
    /// worker raises an alert and, past the grace period, the broadcast fails with
    /// [`InferenceTopologyError::Liveness`].
    pub fn broadcast(&mut self, request: &Req) -> InferenceTopologyResult<u32> {
        Codec::<Req>::encode(&mut self.codec, request, &mut self.buf)?;
        if self.dispatch.inner().required_consumer_liveness_enabled() {
            Ok(self.dispatch.publish_managed(&self.buf)?)
        } else {
            Ok(self.dispatch.publish(&self.buf)?)
        }
    }

    /// The next response of worker `rank` if one is there (`Ok(None)`: nothing yet). A dead
    /// worker's ring is drained first; then, once the worker was restarted, its new ring is
    /// attached (without waiting; until then this keeps returning `Ok(None)`: use
    /// [`Self::recv_from`] for a deadline, or the dispatch ring's liveness for an alert).
    pub fn try_recv_from(&mut self, rank: usize) -> InferenceTopologyResult<Option<Resp>> {
        self.check_rank(rank)?;
        match self.responses[rank].try_recv() {
            Err(TransportError::Ring(MultiProcessError::ProducerDead)) => {
                if self.cursor.rank_value(rank) != self.seen[rank] {
                    self.reattach(rank, Duration::ZERO)?;
                }
                Ok(None)
            }
            r => Ok(r?),
        }
    }

    /// The next response of worker `rank`, waiting at most `timeout`. If the worker died, its
    /// remaining responses are delivered, then the scheduler waits (within `timeout`) for the
    /// restarted worker's ring and carries on there; `WorkerLost` if none appears.
    pub fn recv_from(&mut self, rank: usize, timeout: Duration) -> InferenceTopologyResult<Resp> {
        self.check_rank(rank)?;
        let start = self.backend.now();
        loop {
            let rest = timeout.saturating_sub(self.backend.now().saturating_sub(start));
            match self.responses[rank].recv_timeout(rest) {
                Err(TransportError::Ring(MultiProcessError::ProducerDead)) => {
                    self.reattach(rank, rest)?;
                }
                r => return Ok(r?),
            }
        }
    }

    fn reattach(&mut self, rank: usize, timeout: Duration) -> InferenceTopologyResult<()> {
        let word = self
            .cursor
            .wait_rank_change(rank, self.seen[rank], timeout)
            .ok_or(InferenceTopologyError::WorkerLost { rank })?;
        let c = TypedConsumer::from_builder(
            self.response_builder(rank, timeout.max(Duration::from_millis(1))),
            self.codec.clone(),
        )?;
        tracing::info!(
            rank,
            incarnation = word,
            "scheduler re-attached to a restarted worker"
        );
        self.responses[rank] = c;
        self.seen[rank] = word;
        Ok(())
    }

    fn check_rank(&self, rank: usize) -> InferenceTopologyResult<()> {
        self.topology.check_rank(rank)
    }

    /// How many times worker `rank` announced a new incarnation (1 after its first start).
    pub fn worker_incarnation(&self, rank: usize) -> u64 {
        self.cursor.rank_value(rank)
    }
}
