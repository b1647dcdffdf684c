//! An async pipeline over myelon, written the way a user writes one: a **scheduler** and `N`
//! **workers**, each its own process (a task on tokio, a node under madsim), over typed rings.
//!
//! ```text
//!              request ring  "<session>-req"   (broadcast; worker w answers ids with id % N == w)
//!  scheduler ───────────────────────────────────────────────▶ worker 0 .. worker N-1
//!      ▲        response ring "<session>-rsp-<w>" (one per worker, the worker publishes)  │
//!      └─────────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! * The scheduler publishes with required-consumer liveness (`publish_managed`): every worker
//!   is a required consumer of the request ring, so a worker that stops is an alert and, past
//!   the grace period, a `GracefulShutdownTriggered` error — never a silent hang.
//! * A worker that dies (SIGKILL, a madsim node kill) and restarts attaches again under its id
//!   (a same-id rejoin: it resumes at the last request it released) and re-creates its response
//!   ring (reclaiming the dead one). The scheduler drains the dead ring (`ProducerDead` comes
//!   only after everything the dead worker published), then follows the worker to its new ring
//!   (a different ring epoch).
//! * A request answered just before a crash but not yet released is answered again after the
//!   restart: delivery is at least once, and the scheduler keeps the first answer (checking
//!   that a repeat is identical).
//!
//! The same code runs over POSIX shared memory (`examples/async_pipeline.rs`) and, unchanged,
//! over the simulator on madsim (`tests/sim_pipeline.rs`, `--cfg madsim`): everything it calls
//! is generic over the backend, and every wait is an `.await`.
//!
//! The planted bug ([`Config::planted_bug`]) is a user bug, not a myelon one: a restarted
//! worker drops the first request it would have answered. The seeded simulation finds it.

use myelon::asynch::{AsyncTypedConsumer, AsyncTypedProducer};
use myelon::backend::RingBackend;
use myelon::codec::BincodeCodec;
use myelon::{
    CoordinationMode, FixedFrame, MultiProcessError, RequiredConsumerLivenessConfig,
    SharedDisruptorBuilder, TransportError, TypedConsumer, TypedProducer,
};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// 128-byte frames: a request or a response fits in one.
pub type Frame = FixedFrame<116>;
type Bin = BincodeCodec;

/// What the scheduler asks.
#[derive(bincode::Encode, bincode::Decode, Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Request id, 0..`Config::requests`.
    pub id: u64,
    /// The input.
    pub prompt: u64,
}

/// What a worker answers.
#[derive(bincode::Encode, bincode::Decode, Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The request's id.
    pub id: u64,
    /// The worker that answered.
    pub worker: u32,
    /// [`answer`] of the prompt.
    pub value: u64,
}

/// The work: any deterministic function of the prompt.
pub fn answer(prompt: u64) -> u64 {
    prompt.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ 0x5bd1_e995
}

/// The prompt of request `id`.
pub fn prompt(id: u64) -> u64 {
    id.wrapping_mul(31).wrapping_add(7)
}

/// The pipeline's parameters.
#[derive(Debug, Clone)]
pub struct Config {
    /// Prefix of the ring names.
    pub session: String,
    /// Number of workers.
    pub workers: usize,
    /// Requests the scheduler publishes.
    pub requests: u64,
    /// Slots of every ring.
    pub capacity: usize,
    /// A required worker that does not advance for this long is alerted.
    pub progress_timeout: Duration,
    /// ... and if it has not recovered this long later, the scheduler gives up.
    pub shutdown_grace: Duration,
    /// How long the scheduler waits for all answers.
    pub deadline: Duration,
    /// The user bug the simulation must find: a restarted worker skips its first request.
    pub planted_bug: bool,
}

impl Config {
    /// A small pipeline named `session`.
    pub fn new(session: &str, workers: usize, requests: u64) -> Config {
        Config {
            session: session.to_string(),
            workers,
            requests,
            capacity: 16,
            progress_timeout: Duration::from_millis(200),
            shutdown_grace: Duration::from_secs(2),
            deadline: Duration::from_secs(60),
            planted_bug: false,
        }
    }

    /// The request ring's name.
    pub fn request_ring(&self) -> String {
        format!("{}-req", self.session)
    }

    /// The response ring of incarnation `k` of worker `w` (a restarted worker publishes on a
    /// new ring, so the scheduler can drain the dead one first, whenever it gets to it).
    pub fn response_ring(&self, w: usize, k: u32) -> String {
        format!("{}-rsp-{w}-{k}", self.session)
    }

    /// Worker `w`'s consumer id on the request ring.
    pub fn worker_id(w: usize) -> String {
        format!("worker-{w}")
    }
}

/// Why the pipeline failed.
#[derive(Debug)]
pub enum PipelineError {
    /// A ring or codec error.
    Transport(TransportError),
    /// The value could not be published.
    Publish(myelon::TypedPublishError),
    /// A worker answered wrongly (the oracle).
    WrongAnswer {
        /// The response.
        response: Response,
        /// What it should be.
        expected: u64,
    },
    /// Requests without an answer when the deadline passed.
    Missing {
        /// Their ids (at most 16 shown).
        ids: Vec<u64>,
        /// How many.
        count: usize,
    },
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineError::Transport(e) => write!(f, "transport: {e}"),
            PipelineError::Publish(e) => write!(f, "publish: {e}"),
            PipelineError::WrongAnswer { response, expected } => {
                write!(f, "wrong answer {response:?}, expected value {expected}")
            }
            PipelineError::Missing { ids, count } => {
                write!(f, "{count} requests never answered, e.g. {ids:?}")
            }
        }
    }
}

impl std::error::Error for PipelineError {}

impl From<TransportError> for PipelineError {
    fn from(e: TransportError) -> Self {
        PipelineError::Transport(e)
    }
}

impl From<myelon::TypedPublishError> for PipelineError {
    fn from(e: myelon::TypedPublishError) -> Self {
        PipelineError::Publish(e)
    }
}

/// What the scheduler saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Distinct requests answered.
    pub answered: u64,
    /// Answers received twice (a worker crashed after answering, before releasing).
    pub repeats: u64,
}

fn is_absent(e: &TransportError) -> bool {
    matches!(e, TransportError::Ring(MultiProcessError::NotReady { .. }))
}

/// One attach attempt: `Ok(None)` if the ring is not there (yet).
fn try_attach<B: RingBackend, T>(
    backend: &B,
    name: &str,
    cap: usize,
    id: &str,
) -> Result<Option<TypedConsumer<T, Bin, Frame, B>>, PipelineError>
where
    Bin: myelon::Codec<T>,
{
    let builder = SharedDisruptorBuilder::<Frame, _>::with_backend(backend.clone(), name, cap)
        .with_consumer_id(id)
        .with_attach_timeout(Duration::ZERO);
    match TypedConsumer::from_builder(builder, Bin::new()) {
        Ok(c) => Ok(Some(c)),
        Err(e) if is_absent(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Attaches without blocking the executor: one attempt at a time, an `.await`ed pause between.
async fn attach<B: RingBackend, T>(
    backend: &B,
    name: &str,
    cap: usize,
    id: &str,
) -> Result<TypedConsumer<T, Bin, Frame, B>, PipelineError>
where
    Bin: myelon::Codec<T>,
{
    loop {
        if let Some(c) = try_attach(backend, name, cap, id)? {
            return Ok(c);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Worker `w`, incarnation `k` (0 at the first start, one more at each restart): answers the
/// requests `id % workers == w` until the scheduler closes the request ring. A restarted worker
/// resumes where its previous incarnation released.
pub async fn worker<B: RingBackend>(
    backend: B,
    cfg: Config,
    w: usize,
    k: u32,
) -> Result<u64, PipelineError> {
    let requests = attach::<B, Request>(
        &backend,
        &cfg.request_ring(),
        cfg.capacity,
        &Config::worker_id(w),
    )
    .await?;
    let mut requests: AsyncTypedConsumer<Request, Bin, Frame, B> = requests.into_async();
    let mut responses: AsyncTypedProducer<Response, Bin, Frame, B> = TypedProducer::from_builder(
        SharedDisruptorBuilder::<Frame, _>::with_backend(
            backend,
            &cfg.response_ring(w, k),
            cfg.capacity,
        )
        .with_consumer_id("scheduler")
        .with_coordination(CoordinationMode::BufferUntilConsumers),
        Bin::new(),
    )?
    .into_async();
    let mut skip_next = cfg.planted_bug && k > 0;
    let mut answered = 0;
    loop {
        // Leased: the request's slot is released only when `req` is dropped, after the answer
        // is published, so a crash in between re-delivers it to the restarted worker.
        let req = match requests.recv_leased().await {
            Ok(r) => r,
            Err(TransportError::Ring(MultiProcessError::Closed)) => return Ok(answered),
            Err(e) => return Err(e.into()),
        };
        if req.id % cfg.workers as u64 != w as u64 {
            continue;
        }
        // The planted bug: after a restart, the first request of ours is dropped.
        if std::mem::take(&mut skip_next) {
            tracing::debug!(worker = w, id = req.id, "planted bug: request skipped");
            continue;
        }
        let value = answer(req.prompt);
        responses
            .publish(&Response {
                id: req.id,
                worker: w as u32,
                value,
            })
            .await?;
        drop(req);
        answered += 1;
    }
}

/// Follows worker `w`'s response rings, incarnation after incarnation, and forwards every
/// response. A ring is drained to `ProducerDead` (everything its dead worker published) before
/// the next one; an incarnation that died before it created its ring is skipped once a later
/// one's ring exists. Drained dead rings are removed.
async fn collect<B: RingBackend>(
    backend: B,
    cfg: Config,
    w: usize,
    tx: tokio::sync::mpsc::UnboundedSender<Result<Response, PipelineError>>,
) {
    const LOOKAHEAD: u32 = 4;
    let mut k = 0u32;
    loop {
        let c = loop {
            let found = (k..k + LOOKAHEAD).find_map(|j| {
                try_attach::<B, Response>(
                    &backend,
                    &cfg.response_ring(w, j),
                    cfg.capacity,
                    "scheduler",
                )
                .map(|c| c.map(|c| (j, c)))
                .transpose()
            });
            match found {
                Some(Ok((j, c))) => {
                    k = j;
                    break c;
                }
                Some(Err(e)) => {
                    let _ = tx.send(Err(e));
                    return;
                }
                None => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        };
        let mut c = c.into_async();
        loop {
            match c.recv().await {
                Ok(r) => {
                    if tx.send(Ok(r)).is_err() {
                        return;
                    }
                }
                Err(TransportError::Ring(MultiProcessError::Closed)) => return,
                Err(TransportError::Ring(MultiProcessError::ProducerDead)) => break,
                Err(e) => {
                    let _ = tx.send(Err(e.into()));
                    return;
                }
            }
        }
        drop(c);
        let _ = backend.remove_if_abandoned(
            &cfg.response_ring(w, k),
            &[myelon::MAGIC],
            myelon::backend::RemovalGuard::NONE,
        );
        k += 1;
    }
}

/// The scheduler: creates the request ring with every worker required, publishes the requests
/// under liveness, and checks that every request is answered, correctly, before the deadline.
pub async fn scheduler<B: RingBackend>(backend: B, cfg: Config) -> Result<Report, PipelineError> {
    let required: Vec<String> = (0..cfg.workers).map(Config::worker_id).collect();
    let mut requests: TypedProducer<Request, Bin, Frame, B> = TypedProducer::from_builder(
        SharedDisruptorBuilder::<Frame, _>::with_backend(
            backend.clone(),
            &cfg.request_ring(),
            cfg.capacity,
        )
        .with_consumer_ids(required.iter().cloned())
        .with_coordination(CoordinationMode::BufferUntilConsumers),
        Bin::new(),
    )?;
    let liveness = RequiredConsumerLivenessConfig::new(required)
        .and_then(|c| c.with_startup_wait_timeout(cfg.deadline))
        .and_then(|c| c.with_progress_timeout(cfg.progress_timeout))
        .and_then(|c| c.with_shutdown_grace_period(cfg.shutdown_grace))
        .map_err(|e| PipelineError::Transport(e.into()))?;
    requests.enable_required_consumer_liveness(liveness)?;
    let mut requests = requests.into_async();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let collectors: Vec<_> = (0..cfg.workers)
        .map(|w| tokio::spawn(collect(backend.clone(), cfg.clone(), w, tx.clone())))
        .collect();
    drop(tx);

    let publish = async {
        for id in 0..cfg.requests {
            requests
                .publish_managed(&Request {
                    id,
                    prompt: prompt(id),
                })
                .await?;
        }
        Ok::<_, PipelineError>(())
    };
    let mut answers: BTreeMap<u64, u64> = BTreeMap::new();
    let mut report = Report::default();
    let gather = async {
        while (answers.len() as u64) < cfg.requests {
            let Some(r) = rx.recv().await else { break };
            let r = r?;
            let expected = answer(prompt(r.id));
            if r.value != expected || r.id >= cfg.requests {
                return Err(PipelineError::WrongAnswer {
                    response: r,
                    expected,
                });
            }
            if answers.insert(r.id, r.value).is_some() {
                report.repeats += 1;
            }
        }
        Ok(())
    };
    // The first error ends both (a failed publish must not wait for the deadline behind a
    // `gather` that waits for answers the stalled ring will never carry, and the reverse).
    let both = async { tokio::try_join!(publish, gather).map(|_| ()) };
    let outcome = tokio::time::timeout(cfg.deadline, both).await;
    for c in collectors {
        c.abort();
    }
    if let Ok(r) = outcome {
        r?;
    }
    report.answered = answers.len() as u64;
    if report.answered < cfg.requests {
        let missing: Vec<u64> = (0..cfg.requests)
            .filter(|id| !answers.contains_key(id))
            .collect();
        return Err(PipelineError::Missing {
            count: missing.len(),
            ids: missing.into_iter().take(16).collect(),
        });
    }
    Ok(report)
}
