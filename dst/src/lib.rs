//! Deterministic simulation testing for myelon.
//!
//! A seed determines a [`workload::Workload`] (events, ring capacity, consumers, the required
//! set, liveness timeouts) and a fault schedule (stalls, crashes that forget an actor's state
//! without `Drop`, same-id rejoins, late and never attaches, producer crashes). [`sim::run`]
//! drives the real `myelon` producer and consumers over the simulated backend, one
//! shared-memory-visible step at a time, with a seeded scheduler that owns virtual time, and
//! checks the oracles after every step: no loss, no duplicate, no reorder per consumer
//! incarnation, no overwrite of an unreleased slot, no torn read, and the liveness rules
//! against the independent [`reference`](mod@reference) model.
//!
//! A fraction of the seeds ([`workload::Workload::framed`]) run Layer 1 instead of plain
//! events: messages of one to a few `FixedFrame` fragments, one message per batch claim, with
//! real frame headers; even-numbered consumers receive them with the real
//! `FramedTransportConsumer::try_recv`, odd-numbered ones step the Layer 0 consumer slot by
//! slot and feed the real `Reassembler`. The framed oracles: every delivered message is whole
//! and byte-exact, message ids advance one by one per incarnation, nothing committed is
//! delivered again, and the only loss is the partial message a consumer (re)joined in the
//! middle of, which `dropped_messages()` must count.

#![warn(missing_docs)]

pub mod actors;
pub mod mutants;
pub mod reference;
pub mod rng;
pub mod shrink;
pub mod steps;
pub mod suite;
pub mod workload;
