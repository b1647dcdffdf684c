//! Layer 0 — the ring: fixed-size [`ShmEvent`](event::ShmEvent) values broadcast from one
//! producer to every gating consumer, in one shared object per ring.
//!
//! | module | owns |
//! |---|---|
//! | [`layout`] | the segment's bytes: header, consumer table, slots; invariants I1–I4 |
//! | [`registry`] | the consumer table: register, rejoin, reserve, detach, the gating minimum |
//! | [`producer`] | claim, write, stamp, announce; the one wait-for-space loop |
//! | [`consumer`] | leases, batch consume, blocking receives, producer-death detection |
//! | [`multi`] | many producers into one ring: claim cursor, producer table, holes |
//! | [`builder`] | create / attach, coordination, attach checks, stale-segment reclaim |
//! | [`wait`] | wait strategies and the futex doorbell |
//! | [`sync`] | the only source of atomics (loom swaps them) |

#[cfg(not(loom))]
pub(crate) mod api;
pub(crate) mod auto;
pub(crate) mod builder;
pub mod consumer;
pub(crate) mod error;
pub(crate) mod event;
pub(crate) mod layout;
pub mod multi;
pub(crate) mod pinning;
pub mod producer;
pub(crate) mod registry;
pub(crate) mod sync;
pub(crate) mod wait;

#[cfg(all(test, not(loom)))]
mod hostile_tests;
