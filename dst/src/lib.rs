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

#![warn(missing_docs)]

pub mod mutants;
pub mod reference;
pub mod rng;
pub mod shrink;
pub mod sim;
pub mod suite;
pub mod workload;
