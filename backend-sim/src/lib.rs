//! Simulated platform for myelon's deterministic simulation testing.
//!
//! Everything a real platform provides to a ring — named regions of memory, a monotonic clock,
//! process identities and their liveness — is modelled here in-process so that a seeded
//! scheduler can own all of it:
//!
//! * [`SimWorld`] holds the named regions, the virtual clock and the process table.
//! * [`SimRegion`] is a zero-filled, page-aligned ([`REGION_ALIGN`]) heap allocation that
//!   several simulated processes map at once (they share the `Arc`).
//! * A simulated process is just a `u32` pid in the world's table; "killing" it marks it dead so
//!   that liveness probes see what they would see after `SIGKILL`, while the memory it wrote
//!   stays exactly as it was.
//!
//! * [`actor`] is the hand-off between code running over the simulator and a deterministic
//!   scheduler that runs it as actors.
//!
//! This crate knows nothing about rings; `myelon` implements its `RingBackend` trait on top.

#![warn(missing_docs)]

pub mod actor;
mod region;
mod world;

pub use region::{SimRegion, REGION_ALIGN};
pub use world::{SimError, SimProcessState, SimWorld, DEFAULT_TICK_NANOS};
