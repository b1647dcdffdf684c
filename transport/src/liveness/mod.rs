//! Required-consumer liveness: turns a stalled or crashed required consumer into a
//! producer-visible, time-bounded event instead of a silent hang.
//!
//! Opt in with [`Producer::enable_required_consumer_liveness`](crate::Producer) and publish
//! through `publish_managed` / `publish_batch_managed`. The unmanaged calls (`publish`,
//! `try_publish`, `publish_batch`) keep their semantics and cost.
//!
//! # Rules
//!
//! Checks run only while a managed publish is blocked on a gating consumer (the cold path), at
//! most every [`progress_check_interval`](RequiredConsumerLivenessConfig::with_progress_check_interval),
//! plus once when a blocked episode ends. Progress is read from the consumer cursors the
//! producer already scans for gating; there is no consumer heartbeat.
//!
//! * A required id that has not appeared (attached) within `startup_wait_timeout` of enabling →
//!   [`RequiredConsumerError::StartupTimeout`]. Enabling reserves an entry for every required id
//!   not yet in the table (taking over a matching unclaimed discovery-prefix reservation), so a
//!   required consumer gates the producer from the start and sees every event published after
//!   enabling. An unclaimed reservation of a non-required id (an expected consumer from the
//!   builder) that gates the blocked producer past `startup_wait_timeout` is reported in
//!   `missing` too (`prefix*` for a discovery reservation): no reservation hangs it silently.
//! * A required consumer that has appeared and does not advance for `progress_timeout` while
//!   it gates the blocked producer → exactly one [`RequiredConsumerAlertKind::Stalled`] alert for
//!   that stall window: a `tracing` warning and the optional [`RequiredConsumerAlertHook`].
//! * The same id advancing again (after a same-id rejoin, which resumes at its committed
//!   cursor) → [`RequiredConsumerAlertKind::Recovered`]; the alert state clears and publishing
//!   resumes with nothing lost. Another id advancing does not count.
//! * Still stalled `shutdown_grace_period` after the alert, with
//!   [`RequiredConsumerFailureAction::GracefulShutdown`] →
//!   [`RequiredConsumerError::GracefulShutdownTriggered`], and every later managed publish
//!   returns it too (the producer stays failed).
//! * An idle producer never trips anything: nothing is checked unless a publish is blocked.
//!
//! **Dead non-required consumers.** The topology stays strict broadcast: the liveness layer
//! never evicts anyone. A *non-required* consumer whose process is seen dead while it gates the
//! blocked producer makes the managed publish return
//! [`RequiredConsumerError::NonRequiredConsumerDead`] at the next check instead of hanging
//! silently. That error is not sticky: nothing was published, and a later call succeeds once
//! the consumer rejoins under its id (or is otherwise gone from the table). A dead *anonymous*
//! consumer (attached without an id) is not reported: nobody can rejoin it, so the waiting
//! publish frees its entry itself, as every blocked publish does.

mod config;
mod managed;
mod monitor;

pub use config::{
    RequiredConsumerAlert, RequiredConsumerAlertHook, RequiredConsumerAlertKind,
    RequiredConsumerError, RequiredConsumerFailureAction, RequiredConsumerLivenessConfig,
};
#[doc(hidden)]
pub use managed::ManagedClaim;
pub(crate) use managed::ManagedHook;
#[doc(hidden)]
pub use monitor::{EntryView, LivenessMonitor, LivenessOutcome};
