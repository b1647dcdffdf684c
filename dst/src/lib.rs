//! Deterministic simulation testing for myelon.
//!
//! Status: the harness (seeded schedules, oracles, replay, shrink, mutants) is tracked by the
//! liveness/DST issue and is not built yet. What exists today is the simulated backend in
//! `myelon-backend-sim` and the `SimBackend` implementation of `RingBackend` in `myelon`, which
//! the harness will drive.
