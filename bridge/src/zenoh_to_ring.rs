//! zenoh → ring: subscribe to the key expression, account for each message's `(source, seq)`,
//! publish its bytes into a local framed ring this bridge creates and produces.
//!
//! The ring is created when the bridge starts (reclaiming the segment of a dead previous
//! incarnation: its consumers drain it, get `ProducerDead`, and attach to the new one), with
//! the configured consumer ids reserved. Publishing awaits room: a full ring stops this loop,
//! which stops reading zenoh's channel, which (lossless) stops the sending bridge.
//!
//! With a state file the per-source accounting survives a restart (see [`crate::StateFile`]):
//! what the previous incarnation received but had not published, and what was on the network
//! when it died, shows up as a gap when the next message of that source arrives.

use crate::accounting::{Counters, Delivery, SourceTracker};
use crate::config::BridgeConfig;
use crate::error::BridgeError;
use crate::frames::with_frame;
use crate::header::{Header, Rejected};
use crate::state::{SavedSource, StateFile};
use myelon::asynch::AsyncFramedProducer;
use myelon::backend::ShmBackend;
use myelon::build_shared_single_producer;
use myelon::observability::RingInspector;
use myelon::transport::{FramedTransportFrame, FramedTransportProducer};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;
use zenoh::handlers::FifoChannel;

/// Runs the zenoh → ring direction of `config` (see the module docs).
pub async fn run_zenoh_to_ring(
    config: &BridgeConfig,
    counters: Arc<Counters>,
    ready: watch::Sender<bool>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), BridgeError> {
    config.validate()?;
    with_frame!(
        config.slot_bytes,
        run_frames(config, counters, ready, shutdown)
    )
}

/// The accounting: tracker, per-source saved totals, and the optional file.
struct Books {
    tracker: SourceTracker,
    saved: HashMap<u64, SavedSource>,
    file: Option<StateFile>,
}

impl Books {
    fn open(config: &BridgeConfig, counters: &Counters) -> Result<Books, BridgeError> {
        let Some(path) = &config.state_file else {
            return Ok(Books {
                tracker: SourceTracker::new(),
                saved: HashMap::new(),
                file: None,
            });
        };
        let (file, saved) = StateFile::open(path)?;
        let mut books = HashMap::new();
        for mut s in saved {
            if let Some(pending) = s.pending.take() {
                settle(&config.ring, &mut s, pending, counters);
            }
            Counters::add(&counters.gaps, s.gaps);
            Counters::add(&counters.duplicates, s.duplicates);
            Counters::add(&counters.delivered, s.delivered);
            tracing::info!(
                source = s.source,
                next = s.next,
                gaps = s.gaps,
                "restart: resuming source"
            );
            books.insert(s.source, s);
        }
        Ok(Books {
            tracker: SourceTracker::with_states(
                books.values().map(|s| (s.source, s.tracker_state())),
            ),
            saved: books,
            file: Some(file),
        })
    }

    fn current(&self, source: u64) -> SavedSource {
        self.saved
            .get(&source)
            .copied()
            .unwrap_or(SavedSource::fresh(source))
    }
}

/// Adds one message that was handled (published, or dropped as a duplicate) to the counters.
fn count(counters: &Counters, delivery: Delivery, published: bool) {
    match delivery {
        Delivery::InOrder => {}
        Delivery::Gap { missing } => Counters::add(&counters.gaps, missing),
        Delivery::Duplicate => Counters::add(&counters.duplicates, 1),
    }
    if published {
        Counters::add(&counters.delivered, 1);
    } else {
        Counters::add(&counters.duplicates_dropped, 1);
    }
}

/// Settles a message the previous incarnation was publishing when it died: committed if the
/// dead ring's producer cursor moved past the one recorded with the intent (the segment is
/// still there: this runs before the ring is replaced), not committed if it did not, uncertain
/// if the segment cannot be read.
fn settle(ring: &str, s: &mut SavedSource, pending: u64, counters: &Counters) {
    let cursor = RingInspector::open(ShmBackend, ring).map(|r| r.snapshot().producer_cursor);
    match cursor {
        Ok(c) if c > s.pending_cursor => {
            let mut t = SourceTracker::with_states([(s.source, s.tracker_state())]);
            let (delivery, state) = t.observe(s.source, pending);
            match delivery {
                Delivery::InOrder => {}
                Delivery::Gap { missing } => s.gaps += missing,
                Delivery::Duplicate => s.duplicates += 1,
            }
            s.next = state.next;
            s.delivered += 1;
            tracing::info!(
                source = s.source,
                seq = pending,
                "restart: the pending message was committed"
            );
        }
        Ok(_) => {
            tracing::info!(
                source = s.source,
                seq = pending,
                "restart: the pending message was not committed"
            );
        }
        Err(e) => {
            tracing::warn!(source = s.source, seq = pending, error = %e, "restart: cannot tell whether the pending message was committed");
            Counters::add(&counters.uncertain, 1);
        }
    }
}

async fn run_frames<F: FramedTransportFrame>(
    config: &BridgeConfig,
    counters: Arc<Counters>,
    ready: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), BridgeError> {
    let books = Books::open(config, &counters)?;
    let builder = build_shared_single_producer::<F>(&config.ring, config.capacity)
        .with_consumer_ids(config.reserve.iter().cloned());
    let producer = FramedTransportProducer::<F>::from_builder(builder)
        .map_err(|e| BridgeError::ring(&config.ring, e))?
        .into_async();
    tracing::info!(ring = %config.ring, reserve = ?config.reserve, "ring created");
    let mut inbound = Inbound {
        config,
        counters: &counters,
        books,
        producer,
    };

    let session = zenoh::open(config.zenoh_config()?)
        .await
        .map_err(|e| BridgeError::zenoh("open session", e))?;
    let subscriber = session
        .declare_subscriber(config.key.clone())
        .with(FifoChannel::new(config.channel))
        .await
        .map_err(|e| BridgeError::zenoh("declare subscriber", e))?;
    ready.send_replace(true);

    loop {
        let sample = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            s = subscriber.recv_async() => s.map_err(|e| BridgeError::zenoh("receive", e))?,
        };
        Counters::add(&counters.received, 1);
        if inbound
            .handle(&sample.payload().to_bytes(), &mut shutdown)
            .await?
            == Flow::Stop
        {
            break;
        }
    }
    tracing::info!(ring = %config.ring, counters = %counters.snapshot(), "zenoh → ring bridge stopped");
    Ok(())
}

/// Whether to go on after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// The receiving side's state: accounting and the ring it produces.
struct Inbound<'a, F: FramedTransportFrame> {
    config: &'a BridgeConfig,
    counters: &'a Counters,
    books: Books,
    producer: AsyncFramedProducer<F>,
}

impl<F: FramedTransportFrame> Inbound<'_, F> {
    /// Accounts for one zenoh payload and publishes its message (unless it is a duplicate to
    /// drop). `Stop` if shutdown was asked for while waiting for room in the ring.
    async fn handle(
        &mut self,
        bytes: &[u8],
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Flow, BridgeError> {
        let (header, body) = match Header::parse(bytes) {
            Ok(parsed) => parsed,
            Err(Rejected::Checksum) => {
                // Not even its header is trusted: the next good message of its source shows
                // it as a gap.
                Counters::add(&self.counters.corrupt, 1);
                tracing::warn!(
                    len = bytes.len(),
                    "sample damaged on the way (checksum mismatch): dropped"
                );
                return Ok(Flow::Continue);
            }
            Err(why) => {
                Counters::add(&self.counters.malformed, 1);
                tracing::warn!(len = bytes.len(), ?why, "malformed sample: dropped");
                return Ok(Flow::Continue);
            }
        };
        let before = self.books.current(header.source);
        let delivery = self.books.tracker.classify(header.source, header.seq);
        let mut now = before;
        match delivery {
            Delivery::InOrder => {}
            Delivery::Gap { missing } => {
                now.gaps += missing;
                tracing::warn!(source = header.source, seq = header.seq, missing, "gap");
            }
            Delivery::Duplicate => {
                now.duplicates += 1;
                tracing::debug!(source = header.source, seq = header.seq, "duplicate");
            }
        }
        let publish = !(delivery == Delivery::Duplicate && self.config.drop_duplicates);
        if publish {
            if self.publish(&before, header.seq, body, shutdown).await? == Flow::Stop {
                return Ok(Flow::Stop);
            }
            now.delivered += 1;
        }
        let (_, state) = self.books.tracker.observe(header.source, header.seq);
        now.next = state.next;
        if let Some(f) = &mut self.books.file {
            f.record(&now)?;
        }
        self.books.saved.insert(header.source, now);
        count(self.counters, delivery, publish);
        Ok(Flow::Continue)
    }

    /// Publishes `body` into the ring between the intent and (by the caller) the record.
    async fn publish(
        &mut self,
        before: &SavedSource,
        seq: u64,
        body: &[u8],
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Flow, BridgeError> {
        if let Some(f) = &mut self.books.file {
            let cursor = self.producer.get_ref().get_ref().cursor();
            f.intent(before, seq, cursor)?;
        }
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                // Not published (the publish future is cancellation-safe): nothing of this
                // message is recorded, and no intent stays pending.
                if let Some(f) = &mut self.books.file {
                    f.record(before)?;
                }
                Ok(Flow::Stop)
            }
            r = self.producer.publish(body) => {
                r.map_err(|e| BridgeError::ring(&self.config.ring, e))?;
                Ok(Flow::Continue)
            }
        }
    }
}
