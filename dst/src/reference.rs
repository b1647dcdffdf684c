//! The independent reference model of the liveness rules.
//!
//! It is fed only what the harness itself observed: the committed cursor of every consumer id
//! (from the consumers' own release steps), which ids ever attached, which consumer processes
//! the harness killed, and when the producer's claims succeeded or failed. It never reads the
//! ring or the producer's liveness state. From that it says which alerts and which error a
//! correct producer raises at each claim step; the harness compares with what the producer did.

use crate::workload::LivenessSpec;

/// What the harness knows about one consumer id at an instant.
#[derive(Debug, Clone)]
pub struct Fact {
    /// The id.
    pub id: String,
    /// Whether it is in the required set.
    pub required: bool,
    /// Whether it holds an entry in the consumer table (required ids: from the start).
    pub in_table: bool,
    /// Whether a consumer with this id ever attached.
    pub attached_ever: bool,
    /// Last sequence it released.
    pub committed: i64,
    /// Whether its current process was killed and not restarted.
    pub dead: bool,
}

/// An alert the reference expects, as (kind, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefAlert {
    /// `RequiredConsumerAlertKind::Stalled`.
    Stalled(String),
    /// `RequiredConsumerAlertKind::Recovered`.
    Recovered(String),
}

/// An error the reference expects from a managed claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefError {
    /// `StartupTimeout { missing }`.
    StartupTimeout(Vec<String>),
    /// `GracefulShutdownTriggered { consumer_id }`.
    GracefulShutdown(String),
    /// `NonRequiredConsumerDead { consumer_id }`, `consumer_id` any of these (the producer
    /// reports the first in table order, which the harness does not model).
    NonRequiredDead(Vec<String>),
}

#[derive(Debug, Clone)]
struct Tracked {
    id: String,
    appeared: bool,
    cursor: i64,
    last_progress: u64,
    alerted_at: Option<u64>,
}

/// The reference model (times in virtual microseconds).
#[derive(Debug, Clone)]
pub struct RefLiveness {
    spec: LivenessSpec,
    enabled_at: u64,
    tracked: Vec<Tracked>,
    episode_start: Option<u64>,
    last_check: Option<u64>,
    failed: Option<RefError>,
}

impl RefLiveness {
    /// Liveness enabled at `now` for the required ids among `facts`.
    pub fn new(spec: LivenessSpec, now: u64, facts: &[Fact]) -> RefLiveness {
        let mut tracked: Vec<Tracked> = facts
            .iter()
            .filter(|f| f.required)
            .map(|f| Tracked {
                id: f.id.clone(),
                appeared: f.attached_ever,
                cursor: f.committed,
                last_progress: now,
                alerted_at: None,
            })
            .collect();
        tracked.sort_by(|a, b| a.id.cmp(&b.id));
        RefLiveness {
            spec,
            enabled_at: now,
            tracked,
            episode_start: None,
            last_check: None,
            failed: None,
        }
    }

    /// The sticky failure, if any.
    pub fn failed(&self) -> Option<&RefError> {
        self.failed.as_ref()
    }

    /// When a blocked producer must next be given a chance to check.
    pub fn next_check(&self) -> Option<u64> {
        self.episode_start?;
        Some(self.last_check.map_or(0, |t| t + self.spec.check_us))
    }

    /// One managed claim of `want` at `now`; `free` says whether the harness's own cursor
    /// ledger has room. Returns the alerts and the error a correct producer raises.
    pub fn on_claim(
        &mut self,
        now: u64,
        free: bool,
        want: i64,
        capacity: i64,
        facts: &[Fact],
    ) -> (Vec<RefAlert>, Option<RefError>) {
        let mut alerts = Vec::new();
        if let Some(e) = &self.failed {
            return (alerts, Some(e.clone()));
        }
        if free {
            if self.episode_start.take().is_some() {
                self.last_check = None;
                self.observe(now, facts, &mut alerts);
            }
            return (alerts, None);
        }
        if self.episode_start.is_none() {
            self.episode_start = Some(now);
            self.last_check = None;
        }
        if self
            .last_check
            .is_some_and(|t| now < t + self.spec.check_us)
        {
            return (alerts, None);
        }
        self.last_check = Some(now);
        self.observe(now, facts, &mut alerts);
        let threshold = want - capacity;
        let err = self
            .startup(now)
            .or_else(|| self.stalls(now, threshold, facts, &mut alerts))
            .or_else(|| dead_non_required(threshold, facts));
        if let Some(RefError::NonRequiredDead(_)) = err {
            self.episode_start = None;
            self.last_check = None;
        } else if err.is_some() {
            self.failed = err.clone();
        }
        (alerts, err)
    }

    fn observe(&mut self, now: u64, facts: &[Fact], alerts: &mut Vec<RefAlert>) {
        for t in &mut self.tracked {
            let Some(f) = facts.iter().find(|f| f.id == t.id && f.in_table) else {
                continue;
            };
            if !t.appeared {
                if f.attached_ever {
                    t.appeared = true;
                    t.cursor = f.committed;
                    t.last_progress = now;
                }
                continue;
            }
            if f.committed != t.cursor {
                t.cursor = f.committed;
                t.last_progress = now;
                if t.alerted_at.take().is_some() {
                    alerts.push(RefAlert::Recovered(t.id.clone()));
                }
            }
        }
    }

    fn startup(&self, now: u64) -> Option<RefError> {
        if now - self.enabled_at < self.spec.startup_us {
            return None;
        }
        let missing: Vec<String> = self
            .tracked
            .iter()
            .filter(|t| !t.appeared)
            .map(|t| t.id.clone())
            .collect();
        (!missing.is_empty()).then_some(RefError::StartupTimeout(missing))
    }

    fn stalls(
        &mut self,
        now: u64,
        threshold: i64,
        facts: &[Fact],
        alerts: &mut Vec<RefAlert>,
    ) -> Option<RefError> {
        let episode_start = self.episode_start.unwrap_or(now);
        for t in &mut self.tracked {
            let blocking = t.appeared
                && facts
                    .iter()
                    .any(|f| f.id == t.id && f.in_table && f.committed < threshold);
            if !blocking {
                continue;
            }
            let stalled_for = now - t.last_progress.max(episode_start);
            if t.alerted_at.is_none() && stalled_for >= self.spec.progress_us {
                t.alerted_at = Some(now);
                alerts.push(RefAlert::Stalled(t.id.clone()));
            }
            if let Some(at) = t.alerted_at {
                if !self.spec.alert_only && now - at >= self.spec.grace_us {
                    return Some(RefError::GracefulShutdown(t.id.clone()));
                }
            }
        }
        None
    }
}

fn dead_non_required(threshold: i64, facts: &[Fact]) -> Option<RefError> {
    let ids: Vec<String> = facts
        .iter()
        .filter(|f| f.in_table && !f.required && f.dead && f.committed < threshold)
        .map(|f| f.id.clone())
        .collect();
    (!ids.is_empty()).then_some(RefError::NonRequiredDead(ids))
}
