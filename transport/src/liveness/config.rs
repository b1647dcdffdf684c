//! The liveness configuration, its alert and error types.

use crate::ring::error::{MultiProcessError, MultiProcessResult};
use crate::ring::registry::validate_id;
use crate::Sequence;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Action to take when a required consumer stops making progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequiredConsumerFailureAction {
    /// Alert, then fail the managed publish with
    /// [`RequiredConsumerError::GracefulShutdownTriggered`] once the grace period has passed.
    #[default]
    GracefulShutdown,
    /// Alert only; keep waiting for the consumer indefinitely (strict broadcast).
    AlertOnly,
}

/// What an alert reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequiredConsumerAlertKind {
    /// The consumer gated the blocked producer without advancing for `progress_timeout`
    /// (raised once per stall window).
    Stalled,
    /// A consumer that was alerted advanced again (same id); the alert state is cleared.
    Recovered,
}

/// A producer-side liveness alert, passed to the [`RequiredConsumerAlertHook`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredConsumerAlert {
    /// Stalled or recovered.
    pub kind: RequiredConsumerAlertKind,
    /// The required consumer's id.
    pub consumer_id: String,
    /// Its last released sequence when the alert fired.
    pub consumer_cursor: Sequence,
    /// The producer's last published sequence.
    pub producer_cursor: Sequence,
    /// How long the consumer had not advanced while gating (for `Recovered`: how long the stall
    /// lasted, from where its `Stalled` alert measured it to the check that saw it advance).
    pub stalled_for: Duration,
}

/// Optional embedding hook invoked when producer-side stall alerting fires (and on recovery).
/// Runs on the producer's thread, inside the blocked managed publish: keep it short.
pub type RequiredConsumerAlertHook = Arc<dyn Fn(&RequiredConsumerAlert) + Send + Sync>;

/// Producer-visible failure when required-consumer liveness cannot be maintained.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequiredConsumerError {
    /// Required consumers that had not appeared within `startup_wait_timeout` (sorted).
    /// Sticky: the producer stays failed.
    StartupTimeout {
        /// The missing ids.
        missing: Vec<String>,
    },
    /// A required consumer stayed stalled past the shutdown grace period. Sticky.
    GracefulShutdownTriggered {
        /// The stalled consumer.
        consumer_id: String,
        /// How long it had not advanced while gating.
        stalled_for: Duration,
    },
    /// A non-required consumer whose process died gates the producer (see the module docs for
    /// the policy). Not sticky: nothing was published; retry after it rejoins.
    NonRequiredConsumerDead {
        /// Its id.
        consumer_id: String,
    },
    /// A managed claim of `count` slots that can never be satisfied (0, or more than the
    /// capacity).
    InvalidClaim {
        /// Slots asked for.
        count: usize,
        /// Ring capacity.
        capacity: usize,
    },
}

impl fmt::Display for RequiredConsumerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StartupTimeout { missing } => {
                write!(f, "required consumers never appeared: {missing:?}")
            }
            Self::GracefulShutdownTriggered {
                consumer_id,
                stalled_for,
            } => write!(
                f,
                "required consumer {consumer_id:?} stalled for {stalled_for:?}: graceful shutdown"
            ),
            Self::NonRequiredConsumerDead { consumer_id } => write!(
                f,
                "non-required consumer {consumer_id:?} died while gating the producer"
            ),
            Self::InvalidClaim { count, capacity } => write!(
                f,
                "a claim of {count} slots can never fit a ring of {capacity}"
            ),
        }
    }
}

impl std::error::Error for RequiredConsumerError {}

/// Configuration of required-consumer liveness. Build with [`Self::new`] and the `with_*`
/// setters, each of which rejects nonsense with `MultiProcessError::InvalidConfig`.
#[derive(Clone)]
pub struct RequiredConsumerLivenessConfig {
    pub(crate) required: Vec<String>,
    pub(crate) startup_wait_timeout: Duration,
    pub(crate) progress_timeout: Duration,
    pub(crate) progress_check_interval: Duration,
    pub(crate) shutdown_grace_period: Duration,
    pub(crate) failure_action: RequiredConsumerFailureAction,
    pub(crate) alert_hook: Option<RequiredConsumerAlertHook>,
}

impl fmt::Debug for RequiredConsumerLivenessConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequiredConsumerLivenessConfig")
            .field("required", &self.required)
            .field("startup_wait_timeout", &self.startup_wait_timeout)
            .field("progress_timeout", &self.progress_timeout)
            .field("progress_check_interval", &self.progress_check_interval)
            .field("shutdown_grace_period", &self.shutdown_grace_period)
            .field("failure_action", &self.failure_action)
            .field("alert_hook", &self.alert_hook.is_some())
            .finish()
    }
}

fn invalid(reason: &'static str) -> MultiProcessError {
    MultiProcessError::InvalidConfig { reason }
}

fn positive(d: Duration, what: &'static str) -> MultiProcessResult<Duration> {
    if d.is_zero() {
        return Err(invalid(what));
    }
    Ok(d)
}

impl RequiredConsumerLivenessConfig {
    /// Default `startup_wait_timeout`.
    pub const DEFAULT_STARTUP_WAIT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default `progress_timeout`.
    pub const DEFAULT_PROGRESS_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default `progress_check_interval`.
    pub const DEFAULT_PROGRESS_CHECK_INTERVAL: Duration = Duration::from_millis(100);
    /// Default `shutdown_grace_period`.
    pub const DEFAULT_SHUTDOWN_GRACE_PERIOD: Duration = Duration::from_secs(30);

    /// Liveness for the consumers `required_ids` (at least one, each a valid consumer id, no
    /// duplicates) with the default timeouts and [`RequiredConsumerFailureAction::GracefulShutdown`].
    pub fn new<I, S>(required_ids: I) -> MultiProcessResult<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut required: Vec<String> = required_ids.into_iter().map(Into::into).collect();
        if required.is_empty() {
            return Err(invalid("liveness needs at least one required consumer id"));
        }
        for id in &required {
            validate_id(id)?;
        }
        required.sort();
        if required.windows(2).any(|w| w[0] == w[1]) {
            return Err(invalid("duplicate required consumer id"));
        }
        Ok(Self {
            required,
            startup_wait_timeout: Self::DEFAULT_STARTUP_WAIT_TIMEOUT,
            progress_timeout: Self::DEFAULT_PROGRESS_TIMEOUT,
            progress_check_interval: Self::DEFAULT_PROGRESS_CHECK_INTERVAL,
            shutdown_grace_period: Self::DEFAULT_SHUTDOWN_GRACE_PERIOD,
            failure_action: RequiredConsumerFailureAction::default(),
            alert_hook: None,
        })
    }

    /// How long after enabling every required consumer must have appeared (non-zero). Every
    /// duration of this configuration accepts any value; `Duration::MAX` means "never" (the
    /// monitor's arithmetic saturates).
    pub fn with_startup_wait_timeout(mut self, d: Duration) -> MultiProcessResult<Self> {
        self.startup_wait_timeout = positive(d, "startup_wait_timeout must be non-zero")?;
        Ok(self)
    }

    /// How long a gating required consumer may go without advancing before the alert (non-zero).
    pub fn with_progress_timeout(mut self, d: Duration) -> MultiProcessResult<Self> {
        self.progress_timeout = positive(d, "progress_timeout must be non-zero")?;
        Ok(self)
    }

    /// How often a blocked managed publish re-checks the consumers (non-zero; must not exceed
    /// `progress_timeout`, checked when liveness is enabled).
    pub fn with_progress_check_interval(mut self, d: Duration) -> MultiProcessResult<Self> {
        self.progress_check_interval = positive(d, "progress_check_interval must be non-zero")?;
        Ok(self)
    }

    /// How long after the alert a still-stalled consumer is waited for before the graceful
    /// shutdown (zero: fail at the alert).
    pub fn with_shutdown_grace_period(mut self, d: Duration) -> MultiProcessResult<Self> {
        self.shutdown_grace_period = d;
        Ok(self)
    }

    /// What to do once the grace period has passed.
    pub fn with_failure_action(mut self, action: RequiredConsumerFailureAction) -> Self {
        self.failure_action = action;
        self
    }

    /// Hook called with every alert (in addition to the `tracing` event).
    pub fn with_alert_hook(mut self, hook: RequiredConsumerAlertHook) -> Self {
        self.alert_hook = Some(hook);
        self
    }

    /// Checks the settings against each other.
    pub(crate) fn validate(&self) -> MultiProcessResult<()> {
        if self.progress_check_interval > self.progress_timeout {
            return Err(invalid(
                "progress_check_interval must not exceed progress_timeout",
            ));
        }
        Ok(())
    }

    /// The required consumer ids, sorted.
    pub fn required_ids(&self) -> &[String] {
        &self.required
    }
    /// The startup wait timeout.
    pub fn startup_wait_timeout(&self) -> Duration {
        self.startup_wait_timeout
    }
    /// The progress timeout.
    pub fn progress_timeout(&self) -> Duration {
        self.progress_timeout
    }
    /// The progress check interval.
    pub fn progress_check_interval(&self) -> Duration {
        self.progress_check_interval
    }
    /// The shutdown grace period.
    pub fn shutdown_grace_period(&self) -> Duration {
        self.shutdown_grace_period
    }
    /// The failure action.
    pub fn failure_action(&self) -> RequiredConsumerFailureAction {
        self.failure_action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_sane_and_valid() {
        let c = RequiredConsumerLivenessConfig::new(["b", "a"]).unwrap();
        assert_eq!(c.required_ids(), ["a", "b"]);
        assert!(c.progress_check_interval() <= c.progress_timeout());
        assert!(c.validate().is_ok());
        assert_eq!(
            c.failure_action(),
            RequiredConsumerFailureAction::GracefulShutdown
        );
    }

    #[test]
    fn nonsense_is_rejected() {
        let none: [&str; 0] = [];
        assert!(RequiredConsumerLivenessConfig::new(none).is_err());
        assert!(RequiredConsumerLivenessConfig::new(["a", "a"]).is_err());
        assert!(RequiredConsumerLivenessConfig::new([""]).is_err());
        let c = || RequiredConsumerLivenessConfig::new(["a"]).unwrap();
        assert!(c().with_progress_timeout(Duration::ZERO).is_err());
        assert!(c().with_startup_wait_timeout(Duration::ZERO).is_err());
        assert!(c().with_progress_check_interval(Duration::ZERO).is_err());
        // Long is not nonsense: `Duration::MAX` means "never" (issue 10, input hygiene).
        assert!(c().with_shutdown_grace_period(Duration::MAX).is_ok());
        assert!(c().with_progress_timeout(Duration::MAX).is_ok());
        assert!(c().with_shutdown_grace_period(Duration::ZERO).is_ok());
        let cross = c()
            .with_progress_timeout(Duration::from_millis(10))
            .unwrap();
        assert!(cross.validate().is_err());
        assert!(cross
            .with_progress_check_interval(Duration::from_millis(1))
            .unwrap()
            .validate()
            .is_ok());
    }
}
