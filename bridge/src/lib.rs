//! Bridges myelon framed rings over zenoh, so that a ring's messages reach consumers on other
//! machines.
//!
//! Two directions, each one task ([`run`] picks it from a [`BridgeConfig`]):
//!
//! * **ring → zenoh** ([`run_ring_to_zenoh`]): attaches to a local framed ring as a consumer
//!   under a fixed consumer id, and `put`s every message on a key expression, in ring order,
//!   prefixed with a 24-byte [`Header`] (source id, sequence, checksum, version). A message is
//!   released from the ring only after its `put` returned, so a restarted bridge rejoins under
//!   its id at its committed cursor and sends again what it had not finished sending.
//! * **zenoh → ring** ([`run_zenoh_to_ring`]): subscribes to the key expression, strips the
//!   header, accounts for it ([`SourceTracker`]: in order, gap, duplicate) and publishes the
//!   payload bytes, unchanged, into a local framed ring of which it is the producer.
//!
//! Typed rings (Layer 2/3) are framed rings whose messages are codec bytes: the bridge passes
//! those bytes through, so a typed consumer on the far side decodes them as it would locally.
//!
//! The library never prints: it emits `tracing` events and exposes [`Counters`]. The crate's
//! README states the delivery guarantees (what survives which restart) and how they are tested.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

mod accounting;
mod config;
mod error;
mod frames;
mod header;
mod ring_to_zenoh;
mod state;
mod zenoh_to_ring;

pub use accounting::{Counters, CountersSnapshot, Delivery, SourceTracker};
pub use config::{BridgeConfig, Direction, Layer, Mode, Reliability, SlotSize};
pub use error::BridgeError;
pub use header::{Header, Rejected, HEADER_LEN, WIRE_VERSION};
pub use ring_to_zenoh::run_ring_to_zenoh;
pub use state::StateFile;
pub use zenoh_to_ring::run_zenoh_to_ring;

/// Ready signal and shutdown request shared by a running bridge and its caller.
pub use tokio::sync::watch;

/// Runs the bridge `config` describes until `shutdown` turns true (or the ring ends); `ready`
/// is sent `true` once the bridge is attached, declared on zenoh and (ring → zenoh, lossless)
/// has seen a matching subscriber.
pub async fn run(
    config: &BridgeConfig,
    counters: std::sync::Arc<Counters>,
    ready: watch::Sender<bool>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), BridgeError> {
    match config.direction {
        Direction::RingToZenoh => run_ring_to_zenoh(config, counters, ready, shutdown).await,
        Direction::ZenohToRing => run_zenoh_to_ring(config, counters, ready, shutdown).await,
    }
}
