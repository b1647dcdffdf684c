//! Deterministic simulation testing for myelon: two simulations of the real API over the
//! simulated backend.
//!
//! [`actors`] (`dst api`) runs the real public calls as coroutine actors with scheduling points
//! inside them, so an interleaving can land between any two shared-memory operations of a
//! call.
//!
//! [`steps`] (`dst run`) makes one real public call per scheduling step. A seed determines a
//! [`workload::Workload`] (events, ring capacity, consumers, the required set, liveness
//! timeouts) and a fault schedule (stalls, crashes that forget an actor's state without `Drop`,
//! same-id rejoins, late and never attaches, producer crashes); [`steps::run`] drives it with a
//! seeded scheduler that owns virtual time and checks the oracles after every step: no loss, no
//! duplicate, no reorder per consumer incarnation, no overwrite of an unreleased slot, no torn
//! read, and the liveness rules against the independent [`reference`](mod@reference) model,
//! at times the scheduler chooses.
//!
//! A fraction of the seeds ([`workload::Workload::framed`]) run Layer 1 instead of plain
//! events: messages of one to a few `FixedFrame` fragments, published a message (or a part of
//! one) per call, with real frame headers; even-numbered consumers receive them with the real
//! `FramedTransportConsumer::try_recv`, odd-numbered ones receive frames with Layer 0 calls and
//! feed the real `Reassembler`. The framed oracles: every delivered message is whole and
//! byte-exact, message ids advance one by one per incarnation, nothing committed is delivered
//! again, and the only loss is the partial message a consumer (re)joined in the middle of,
//! which `dropped_messages()` must count.

#![warn(missing_docs)]

pub mod actors;
pub mod mutants;
pub mod reference;
pub mod rng;
pub mod shrink;
pub mod steps;
pub mod suite;
pub mod workload;
