//! The independent reference model of the liveness rules.
//!
//! It is fed only what the harness itself observed: the committed cursor of every consumer id
//! (from the consumers' own release steps), which ids ever attached, which consumer processes
//! the harness killed, and when the producer's claims succeeded or failed. It never reads the
//! ring or the producer's liveness state. From that it says which alerts and which error a
//! correct producer raises at each claim step, field by field, and when its next check is due
//! (the harness runs the producer's checks then, not when the producer asks); the harness
//! compares with what the producer did.

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

/// The kind of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// `RequiredConsumerAlertKind::Stalled`.
    Stalled,
    /// `RequiredConsumerAlertKind::Recovered`.
    Recovered,
}

/// An alert, every field of `RequiredConsumerAlert` (times in virtual microseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefAlert {
    /// Stalled or recovered.
    pub kind: AlertKind,
    /// The required consumer's id.
    pub id: String,
    /// Its released cursor as the check saw it.
    pub consumer_cursor: i64,
    /// The producer's last published sequence.
    pub producer_cursor: i64,
    /// `Stalled`: how long it had not advanced while gating the blocked producer (since the
    /// later of the episode start and the check that last saw it move). `Recovered`: how long
    /// the stall lasted, from that same start to the check that saw it move again.
    pub stalled_for: u64,
}

/// An error the reference expects from a managed claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefError {
    /// `StartupTimeout { missing }`.
    StartupTimeout(Vec<String>),
    /// `GracefulShutdownTriggered { consumer_id, stalled_for }` (µs).
    GracefulShutdown(String, u64),
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
    /// When the stall that the open alert reports began.
    stalled_since: u64,
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
                stalled_since: now,
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

    /// One managed claim of `want` at `now` by a producer that has published up to
    /// `published`; `free` says whether the harness's own cursor ledger has room. Returns the
    /// alerts and the error a correct producer raises.
    pub fn on_claim(
        &mut self,
        now: u64,
        free: bool,
        (want, published, capacity): (i64, i64, i64),
        facts: &[Fact],
    ) -> (Vec<RefAlert>, Option<RefError>) {
        let mut alerts = Vec::new();
        if let Some(e) = &self.failed {
            return (alerts, Some(e.clone()));
        }
        if free {
            if self.episode_start.take().is_some() {
                self.last_check = None;
                self.observe(now, published, facts, &mut alerts);
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
        self.observe(now, published, facts, &mut alerts);
        let threshold = want - capacity;
        let err = self
            .startup(now)
            .or_else(|| self.stalls(now, (threshold, published), facts, &mut alerts))
            .or_else(|| dead_non_required(threshold, facts));
        if let Some(RefError::NonRequiredDead(_)) = err {
            self.episode_start = None;
            self.last_check = None;
        } else if err.is_some() {
            self.failed = err.clone();
        }
        (alerts, err)
    }

    fn observe(&mut self, now: u64, published: i64, facts: &[Fact], alerts: &mut Vec<RefAlert>) {
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
                    alerts.push(RefAlert {
                        kind: AlertKind::Recovered,
                        id: t.id.clone(),
                        consumer_cursor: t.cursor,
                        producer_cursor: published,
                        stalled_for: now - t.stalled_since,
                    });
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
        (threshold, published): (i64, i64),
        facts: &[Fact],
        alerts: &mut Vec<RefAlert>,
    ) -> Option<RefError> {
        let episode_start = self.episode_start.unwrap_or(now);
        for t in &mut self.tracked {
            if !blocking(t, threshold, facts) {
                continue;
            }
            let stalled_for = now - t.last_progress.max(episode_start);
            if t.alerted_at.is_none() && stalled_for >= self.spec.progress_us {
                t.alerted_at = Some(now);
                t.stalled_since = now - stalled_for;
                alerts.push(RefAlert {
                    kind: AlertKind::Stalled,
                    id: t.id.clone(),
                    consumer_cursor: t.cursor,
                    producer_cursor: published,
                    stalled_for,
                });
            }
            if let Some(at) = t.alerted_at {
                if !self.spec.alert_only && now - at >= self.spec.grace_us {
                    return Some(RefError::GracefulShutdown(t.id.clone(), stalled_for));
                }
            }
        }
        None
    }

    /// The stall clocks the upper bound reads: for every required consumer gating the blocked
    /// producer that wants `want`, since when it has done so without progress, as the
    /// producer's checks see it (the later of the episode start and the check that last saw
    /// its cursor move). Empty outside a blocked episode.
    ///
    /// The bound: right after any claim at `now`, one with `now - since >= progress_timeout +
    /// progress_check_interval` has its `Stalled` alert, whatever the scheduler did. A claim
    /// at least one interval after the last check runs a check, so the last check ran at most
    /// one interval before `now` (or at this claim); by then the consumer had gated without
    /// progress for `progress_timeout`, and that check raised the alert.
    pub fn gating_since(&self, want: i64, capacity: i64, facts: &[Fact]) -> Vec<(&str, u64)> {
        let Some(episode_start) = self.episode_start else {
            return Vec::new();
        };
        self.tracked
            .iter()
            .filter(|t| blocking(t, want - capacity, facts))
            .map(|t| (t.id.as_str(), t.last_progress.max(episode_start)))
            .collect()
    }

    /// `progress_timeout + progress_check_interval`: the upper bound on a `Stalled` alert.
    pub fn alert_bound(&self) -> u64 {
        self.spec.progress_us + self.spec.check_us
    }
}

/// Whether `t` has appeared and gates a producer that needs every cursor at `threshold`.
fn blocking(t: &Tracked, threshold: i64, facts: &[Fact]) -> bool {
    t.appeared
        && facts
            .iter()
            .any(|f| f.id == t.id && f.in_table && f.committed < threshold)
}

fn dead_non_required(threshold: i64, facts: &[Fact]) -> Option<RefError> {
    let ids: Vec<String> = facts
        .iter()
        .filter(|f| f.in_table && !f.required && f.dead && f.committed < threshold)
        .map(|f| f.id.clone())
        .collect();
    (!ids.is_empty()).then_some(RefError::NonRequiredDead(ids))
}
