//! ring → zenoh: consume a local framed ring under a fixed consumer id, `put` every message.
//!
//! Order of operations per message, which the restart guarantee rests on:
//!
//! 1. receive the next whole message (a single-frame message stays leased in its slot);
//! 2. `put` header (with the message's checksum) + bytes on zenoh, and wait for the put to return (lossless: it blocks while
//!    zenoh's queues are full, which is how a slow remote side stops this loop);
//! 3. release the message (drop it), which advances the bridge's committed cursor.
//!
//! So a bridge killed before 3 rejoins under its id at a cursor before that message and sends
//! it again: at-least-once, the receiver sees a duplicate `(source, seq)`. One exception: the
//! framed consumer releases the slots of a *multi-frame* message as it copies them (it must, a
//! message may be larger than the ring), so a bridge killed between its last fragment and
//! its put rejoins after that message: it is lost, and the receiver counts it as a gap.
//!
//! The source id is the ring's epoch (one per producer incarnation, the same for every
//! consumer of that incarnation): a restarted bridge on the same ring sends under the same
//! source, so its resends are recognisable as duplicates, and a restarted producer (a new ring,
//! message ids from 0 again) is a new source. The sequence number is the producer's framed
//! message id, widened to 64 bits in memory (see [`crate::SourceTracker`] for the wrap).

use crate::accounting::Counters;
use crate::config::{BridgeConfig, Reliability};
use crate::error::BridgeError;
use crate::frames::with_frame;
use crate::header::{Header, HEADER_LEN};
use myelon::asynch::AsyncFramedConsumer;
use myelon::transport::{FramedTransportConsumer, FramedTransportFrame, TransportError};
use myelon::{attach_shared_consumer, MultiProcessError};
use std::sync::Arc;
use tokio::sync::watch;
use zenoh::qos::CongestionControl;

/// Runs the ring → zenoh direction of `config` (see the module docs).
pub async fn run_ring_to_zenoh(
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

/// Widens the producer's 32-bit message ids to a 64-bit sequence, counting wraps seen by this
/// bridge incarnation.
#[derive(Debug, Default)]
struct Widen {
    last: Option<u32>,
    high: u64,
}

impl Widen {
    fn seq(&mut self, id: u32) -> u64 {
        if let Some(last) = self.last {
            if id < last && (id.wrapping_sub(last) as i32) > 0 {
                self.high += 1 << 32;
            }
        }
        self.last = Some(id);
        self.high | u64::from(id)
    }
}

fn attach<F: FramedTransportFrame>(
    config: &BridgeConfig,
) -> Result<FramedTransportConsumer<F>, BridgeError> {
    let builder = attach_shared_consumer::<F>(&config.ring, config.capacity)
        .with_consumer_id(config.consumer_id.clone());
    let consumer = FramedTransportConsumer::<F>::from_builder(builder)
        .map_err(|e| BridgeError::ring(&config.ring, e))?
        .with_max_message_size(config.max_message_size);
    // Stopping keeps the id's place: the ring keeps gating on it (its producer waits rather
    // than the bridge missing messages), and a restart resumes at the committed cursor.
    let mut inner = consumer.into_inner();
    inner.keep_registration_on_drop();
    Ok(FramedTransportConsumer::new(inner).with_max_message_size(config.max_message_size))
}

async fn run_frames<F: FramedTransportFrame>(
    config: &BridgeConfig,
    counters: Arc<Counters>,
    ready: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), BridgeError> {
    let consumer = attach::<F>(config)?;
    let source = consumer.inner().ring_epoch();
    tracing::info!(
        ring = %config.ring,
        consumer_id = %config.consumer_id,
        resumed = consumer.inner().resumed(),
        next_sequence = consumer.inner().next_sequence(),
        source,
        "attached to the ring"
    );
    let mut consumer: AsyncFramedConsumer<F> = consumer.into_async();
    let session = zenoh::open(config.zenoh_config()?)
        .await
        .map_err(|e| BridgeError::zenoh("open session", e))?;
    let lossless = config.reliability == Reliability::Lossless;
    let out = Outbound::declare(&session, config, lossless).await?;
    let mut matching = out.matching.clone();

    let mut widen = Widen::default();
    loop {
        if lossless && !wait_for_subscriber(&mut matching, &mut shutdown).await {
            break;
        }
        ready.send_if_modified(|r| !std::mem::replace(r, true));
        let msg = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            m = consumer.recv() => m,
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => match ring_error(config, &counters, e) {
                Ok(Flow::Continue) => continue,
                Ok(Flow::Stop) => break,
                Err(e) => return Err(e),
            },
        };
        let header = Header {
            source,
            seq: widen.seq(msg.message_id()),
        };
        out.put(header, &msg).await?;
        // Released only now: a bridge killed before this line sends the message again.
        drop(msg);
        Counters::add(&counters.sent, 1);
    }
    let sent = counters.snapshot().sent;
    tracing::info!(ring = %config.ring, sent, "ring → zenoh bridge stopped");
    Ok(())
}

/// Whether to go on after a receive error.
enum Flow {
    Continue,
    Stop,
}

/// What a failed ring receive means: the end (closed), an error (the producer died), or a
/// message the framed consumer dropped (partial at a rejoin, a bad frame, too large), which
/// the far side sees as a gap in the message ids.
fn ring_error(
    config: &BridgeConfig,
    counters: &Counters,
    e: TransportError,
) -> Result<Flow, BridgeError> {
    match e {
        TransportError::Ring(MultiProcessError::Closed) => {
            tracing::info!(ring = %config.ring, "ring closed by its producer: stopping");
            Ok(Flow::Stop)
        }
        e @ TransportError::Ring(MultiProcessError::ProducerDead) => {
            tracing::warn!(ring = %config.ring, "the ring's producer died: stopping");
            Err(BridgeError::ring(&config.ring, e))
        }
        e => {
            Counters::add(&counters.ring_dropped, 1);
            tracing::warn!(ring = %config.ring, error = %e, "ring message dropped");
            Ok(Flow::Continue)
        }
    }
}

/// The zenoh side: the publisher and whether a subscriber matches it.
struct Outbound<'s> {
    // Dropped first (fields drop in order): the listener is undeclared while its publisher is
    // still there (the other way round zenoh logs an error).
    _listener: zenoh::matching::MatchingListener<()>,
    publisher: zenoh::pubsub::Publisher<'s>,
    matching: watch::Receiver<bool>,
}

impl<'s> Outbound<'s> {
    async fn declare(
        session: &'s zenoh::Session,
        config: &BridgeConfig,
        lossless: bool,
    ) -> Result<Outbound<'s>, BridgeError> {
        let publisher = session
            .declare_publisher(config.key.clone())
            .congestion_control(if lossless {
                CongestionControl::Block
            } else {
                CongestionControl::Drop
            })
            .reliability(zenoh::qos::Reliability::Reliable)
            .await
            .map_err(|e| BridgeError::zenoh("declare publisher", e))?;
        let (matching_tx, matching) = watch::channel(false);
        let matching_tx = Arc::new(matching_tx);
        let listener_tx = Arc::clone(&matching_tx);
        let listener = publisher
            .matching_listener()
            .callback(move |s| {
                listener_tx.send_replace(s.matching());
            })
            .await
            .map_err(|e| BridgeError::zenoh("declare matching listener", e))?;
        // The listener reports changes; the status now covers a subscriber matched before it.
        let now = publisher
            .matching_status()
            .await
            .map_err(|e| BridgeError::zenoh("matching status", e))?;
        if now.matching() {
            matching_tx.send_replace(true);
        }
        Ok(Outbound {
            _listener: listener,
            publisher,
            matching,
        })
    }

    /// Puts header + message and returns once zenoh took it (lossless: blocks while zenoh's
    /// queues are full).
    async fn put(&self, header: Header, msg: &[u8]) -> Result<(), BridgeError> {
        let mut payload = Vec::with_capacity(HEADER_LEN + msg.len());
        header.write_to(msg, &mut payload);
        payload.extend_from_slice(msg);
        self.publisher
            .put(payload)
            .await
            .map_err(|e| BridgeError::zenoh("put", e))
    }
}

/// Waits until a subscriber matches the publisher; false if shut down first.
async fn wait_for_subscriber(
    matching: &mut watch::Receiver<bool>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    if *matching.borrow_and_update() {
        return true;
    }
    tracing::info!("no subscriber matches the key: waiting (lossless)");
    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => return false,
            r = matching.changed() => {
                if r.is_err() {
                    return false;
                }
                if *matching.borrow_and_update() {
                    tracing::info!("a subscriber matches the key: sending");
                    return true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Widen;

    #[test]
    fn widens_message_ids_across_the_wrap() {
        let mut w = Widen::default();
        let ids = [u32::MAX - 1, u32::MAX, 0, 1];
        let seqs: Vec<u64> = ids.iter().map(|&i| w.seq(i)).collect();
        let base = u64::from(u32::MAX) - 1;
        assert_eq!(seqs, vec![base, base + 1, base + 2, base + 3]);
        // A resend of an older id (a rejoin) does not count as a wrap.
        assert_eq!(w.seq(0), base + 2);
    }
}
