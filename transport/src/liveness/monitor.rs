//! The liveness state machine: a pure step function over what the producer observed in the
//! consumer table at one instant. It reads no shared memory and no clock itself, so the same
//! code runs in a blocked `publish_managed`, under the DST scheduler and in unit tests.

use super::config::{
    RequiredConsumerAlert, RequiredConsumerAlertKind, RequiredConsumerError,
    RequiredConsumerFailureAction, RequiredConsumerLivenessConfig,
};
use crate::Sequence;
use std::time::Duration;

/// One gating entry of the consumer table as the producer saw it during a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryView {
    /// The entry's consumer id.
    pub id: String,
    /// A consumer holds the entry (false: a reservation).
    pub attached: bool,
    /// Its last released sequence.
    pub cursor: Sequence,
    /// Attach count of the entry.
    pub incarnation: u64,
    /// Its owner process is known dead (only probed for non-required blocking entries).
    pub owner_dead: bool,
    /// An unclaimed discovery-prefix reservation (`id` is the prefix).
    pub prefix: bool,
}

/// What one check decided, besides the alerts it raised.
pub type LivenessOutcome = Result<(), RequiredConsumerError>;

#[derive(Debug, Clone)]
struct Tracked {
    id: String,
    /// Incarnation of the id's entry when liveness was enabled (`None`: no entry then).
    base_incarnation: Option<u64>,
    appeared: bool,
    cursor: Sequence,
    last_progress: Duration,
    alerted_at: Option<Duration>,
    /// When the stall the open alert reports began (its `Recovered` says how long it lasted).
    stalled_since: Duration,
}

/// Per-producer liveness state (see the module docs of `liveness` for the rules).
#[derive(Debug)]
pub struct LivenessMonitor {
    cfg: RequiredConsumerLivenessConfig,
    enabled_at: Duration,
    tracked: Vec<Tracked>,
    episode_start: Option<Duration>,
    last_check: Option<Duration>,
    failed: Option<RequiredConsumerError>,
    /// Alerts raised since the producer last took them (for the observability counters).
    emitted: Vec<(String, RequiredConsumerAlertKind)>,
    #[cfg(myelon_mutant = "rejoin_any_id")]
    cursor_sum: i64,
}

impl LivenessMonitor {
    /// A monitor enabled at `now`, with the table as it was then.
    pub fn new(cfg: RequiredConsumerLivenessConfig, now: Duration, table: &[EntryView]) -> Self {
        let tracked = cfg
            .required
            .iter()
            .map(|id| {
                let e = table.iter().find(|e| &e.id == id);
                Tracked {
                    id: id.clone(),
                    base_incarnation: e.map(|e| e.incarnation),
                    appeared: e.is_some_and(|e| e.attached),
                    cursor: e.map_or(-1, |e| e.cursor),
                    last_progress: now,
                    alerted_at: None,
                    stalled_since: now,
                }
            })
            .collect();
        LivenessMonitor {
            cfg,
            enabled_at: now,
            tracked,
            episode_start: None,
            last_check: None,
            failed: None,
            emitted: Vec::new(),
            #[cfg(myelon_mutant = "rejoin_any_id")]
            cursor_sum: table.iter().map(|e| e.cursor).sum(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RequiredConsumerLivenessConfig {
        &self.cfg
    }

    /// The sticky failure, if the producer has failed.
    pub fn failed(&self) -> Option<&RequiredConsumerError> {
        self.failed.as_ref()
    }

    /// Whether `id` is a required consumer.
    pub fn is_required(&self, id: &str) -> bool {
        self.cfg
            .required
            .binary_search_by(|r| r.as_str().cmp(id))
            .is_ok()
    }

    /// Whether a blocked episode is open.
    pub fn in_episode(&self) -> bool {
        self.episode_start.is_some()
    }

    /// Opens a blocked episode (the producer could not claim) at `now`; the first check is due
    /// at once.
    pub fn begin_episode(&mut self, now: Duration) {
        self.episode_start = Some(now);
        self.last_check = None;
    }

    /// When the next check is due (`None` outside an episode).
    pub fn next_check(&self) -> Option<Duration> {
        self.episode_start?;
        let interval = self.cfg.progress_check_interval;
        // Mutant: while the producer looks healthy (every required id appeared, no alert open)
        // it checks every other interval, so a stall's first alert can come up to
        // `progress_timeout + 2 * progress_check_interval` after the stall began.
        #[cfg(myelon_mutant = "healthy_check_late")]
        let interval = if self
            .tracked
            .iter()
            .all(|t| t.appeared && t.alerted_at.is_none())
        {
            interval.saturating_add(interval)
        } else {
            interval
        };
        Some(match self.last_check {
            None => Duration::ZERO,
            // Saturating: `Duration::MAX` as the interval means "never again".
            Some(t) => t.saturating_add(interval),
        })
    }

    /// Whether a check is due at `now`.
    pub fn check_due(&self, now: Duration) -> bool {
        self.next_check().is_some_and(|t| now >= t)
    }

    /// Closes the episode after the producer could claim again: observes progress once more
    /// (raising `Recovered` alerts) and forgets the episode.
    pub fn end_episode(&mut self, now: Duration, producer_cursor: Sequence, table: &[EntryView]) {
        self.observe(now, producer_cursor, table);
        self.episode_start = None;
        self.last_check = None;
    }

    /// Closes the episode without observing (the publish gave up with an error).
    pub fn abort_episode(&mut self) {
        self.episode_start = None;
        self.last_check = None;
    }

    /// One check while blocked waiting to publish sequence `want` on a ring of `capacity`.
    pub fn check(
        &mut self,
        now: Duration,
        want: Sequence,
        capacity: i64,
        producer_cursor: Sequence,
        table: &[EntryView],
    ) -> LivenessOutcome {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.last_check = Some(now);
        self.observe(now, producer_cursor, table);
        let threshold = want - capacity;
        self.check_startup(now, threshold, table)?;
        self.check_stalls(now, threshold, producer_cursor, table)?;
        self.check_dead_non_required(threshold, table)
    }

    fn observe(&mut self, now: Duration, producer_cursor: Sequence, table: &[EntryView]) {
        #[cfg(myelon_mutant = "rejoin_any_id")]
        let any_moved = {
            let sum: i64 = table.iter().map(|e| e.cursor).sum();
            let moved = sum != self.cursor_sum;
            self.cursor_sum = sum;
            moved
        };
        for i in 0..self.tracked.len() {
            let Some(e) = table.iter().find(|e| e.id == self.tracked[i].id) else {
                continue;
            };
            let t = &mut self.tracked[i];
            if !t.appeared {
                if e.attached || Some(e.incarnation) != t.base_incarnation {
                    t.appeared = true;
                    t.cursor = e.cursor;
                    t.last_progress = now;
                }
                continue;
            }
            #[cfg(not(myelon_mutant = "rejoin_any_id"))]
            let progressed = e.cursor != t.cursor;
            #[cfg(myelon_mutant = "rejoin_any_id")]
            let progressed = e.cursor != t.cursor || (t.alerted_at.is_some() && any_moved);
            if progressed {
                t.cursor = e.cursor;
                #[cfg(not(myelon_mutant = "alert_timer_not_reset"))]
                {
                    t.last_progress = now;
                }
                if t.alerted_at.take().is_some() {
                    let alert = RequiredConsumerAlert {
                        kind: RequiredConsumerAlertKind::Recovered,
                        consumer_id: t.id.clone(),
                        consumer_cursor: e.cursor,
                        producer_cursor,
                        stalled_for: now.saturating_sub(t.stalled_since),
                    };
                    tracing::info!(consumer = %alert.consumer_id, cursor = alert.consumer_cursor, "required consumer recovered");
                    self.emit(&alert);
                }
            }
        }
    }

    /// Required ids that never appeared, and (so that no reservation can hang the producer
    /// silently) unclaimed reservations of other ids that gate the blocked producer.
    fn check_startup(
        &mut self,
        now: Duration,
        threshold: Sequence,
        table: &[EntryView],
    ) -> LivenessOutcome {
        #[cfg(myelon_mutant = "startup_never_fires")]
        return Ok(());
        #[allow(unreachable_code)]
        if now.saturating_sub(self.enabled_at) < self.cfg.startup_wait_timeout {
            return Ok(());
        }
        let mut missing: Vec<String> = self
            .tracked
            .iter()
            .filter(|t| !t.appeared)
            .map(|t| t.id.clone())
            .collect();
        missing.extend(
            table
                .iter()
                .filter(|e| !e.attached && e.cursor < threshold && !self.is_required(&e.id))
                .map(|e| {
                    if e.prefix {
                        format!("{}*", e.id)
                    } else {
                        e.id.clone()
                    }
                }),
        );
        if missing.is_empty() {
            return Ok(());
        }
        tracing::error!(?missing, "required consumers never appeared");
        self.fail(RequiredConsumerError::StartupTimeout { missing })
    }

    fn check_stalls(
        &mut self,
        now: Duration,
        threshold: Sequence,
        producer_cursor: Sequence,
        table: &[EntryView],
    ) -> LivenessOutcome {
        let episode_start = self.episode_start.unwrap_or(now);
        for i in 0..self.tracked.len() {
            let t = &self.tracked[i];
            let blocking = t.appeared && table.iter().any(|e| e.id == t.id && e.cursor < threshold);
            if !blocking {
                continue;
            }
            let stall_start = t.last_progress.max(episode_start);
            let stalled_for = now.saturating_sub(stall_start);
            #[cfg(not(myelon_mutant = "alert_repeats"))]
            let alert_due = t.alerted_at.is_none() && stalled_for >= self.cfg.progress_timeout;
            #[cfg(myelon_mutant = "alert_repeats")]
            let alert_due = stalled_for >= self.cfg.progress_timeout;
            if alert_due {
                let alert = RequiredConsumerAlert {
                    kind: RequiredConsumerAlertKind::Stalled,
                    consumer_id: t.id.clone(),
                    consumer_cursor: t.cursor,
                    producer_cursor,
                    stalled_for,
                };
                tracing::warn!(consumer = %alert.consumer_id, cursor = alert.consumer_cursor, producer = producer_cursor, ?stalled_for, "required consumer stalled while gating the producer");
                self.tracked[i].alerted_at = Some(now);
                self.tracked[i].stalled_since = stall_start;
                self.emit(&alert);
            }
            let t = &self.tracked[i];
            let Some(alerted_at) = t.alerted_at else {
                continue;
            };
            #[cfg(not(myelon_mutant = "grace_from_stall_start"))]
            let grace_from = alerted_at;
            #[cfg(myelon_mutant = "grace_from_stall_start")]
            let grace_from = {
                let _ = alerted_at;
                stall_start
            };
            if self.cfg.failure_action == RequiredConsumerFailureAction::GracefulShutdown
                && now.saturating_sub(grace_from) >= self.cfg.shutdown_grace_period
            {
                tracing::error!(consumer = %t.id, ?stalled_for, "required consumer stalled past the grace period: graceful shutdown");
                return self.fail(RequiredConsumerError::GracefulShutdownTriggered {
                    consumer_id: t.id.clone(),
                    stalled_for,
                });
            }
        }
        Ok(())
    }

    fn check_dead_non_required(
        &mut self,
        threshold: Sequence,
        table: &[EntryView],
    ) -> LivenessOutcome {
        let dead = table
            .iter()
            .find(|e| e.owner_dead && e.cursor < threshold && !self.is_required(&e.id));
        match dead {
            Some(e) => {
                tracing::warn!(consumer = %e.id, "a dead non-required consumer gates the producer");
                self.abort_episode();
                Err(RequiredConsumerError::NonRequiredConsumerDead {
                    consumer_id: e.id.clone(),
                })
            }
            None => Ok(()),
        }
    }

    fn fail(&mut self, e: RequiredConsumerError) -> LivenessOutcome {
        self.failed = Some(e.clone());
        Err(e)
    }

    /// The alerts (consumer id, kind) raised since the last call; for the observability
    /// counters. Allocates nothing when there were none.
    pub(crate) fn take_emitted(&mut self) -> Vec<(String, RequiredConsumerAlertKind)> {
        std::mem::take(&mut self.emitted)
    }

    fn emit(&mut self, alert: &RequiredConsumerAlert) {
        self.emitted.push((alert.consumer_id.clone(), alert.kind));
        if let Some(hook) = &self.cfg.alert_hook {
            hook(alert);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    const MS: Duration = Duration::from_millis(1);
    const CAP: i64 = 4;

    type Log = Arc<Mutex<Vec<(RequiredConsumerAlertKind, String)>>>;

    fn view(id: &str, attached: bool, cursor: i64) -> EntryView {
        EntryView {
            id: id.into(),
            attached,
            cursor,
            incarnation: u64::from(attached),
            owner_dead: false,
            prefix: false,
        }
    }

    /// Progress 10 ms, grace 5 ms, startup 50 ms; returns the monitor and its alert log.
    fn monitor(table: &[EntryView]) -> (LivenessMonitor, Log) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let cfg = RequiredConsumerLivenessConfig::new(["a", "b"])
            .unwrap()
            .with_progress_timeout(10 * MS)
            .unwrap()
            .with_progress_check_interval(MS)
            .unwrap()
            .with_shutdown_grace_period(5 * MS)
            .unwrap()
            .with_startup_wait_timeout(50 * MS)
            .unwrap()
            .with_alert_hook(Arc::new(move |a| {
                sink.lock().unwrap().push((a.kind, a.consumer_id.clone()))
            }));
        (LivenessMonitor::new(cfg, Duration::ZERO, table), log)
    }

    /// Each row: (time in ms, cursor of `a`, cursor of `b`) → expected outcome, with the
    /// producer blocked wanting sequence 4 (so a cursor below 0 gates).
    #[test]
    fn stall_window_table() {
        let t0 = [view("a", true, -1), view("b", true, 3)];
        let (mut m, log) = monitor(&t0);
        m.begin_episode(Duration::ZERO);
        let rows: &[(u32, i64, i64, Option<&str>, usize)] = &[
            // ms, a, b, error, alerts so far
            (0, -1, 3, None, 0),
            (9, -1, 3, None, 0),
            (10, -1, 3, None, 1), // stalled 10 ms: one alert
            (12, -1, 3, None, 1), // still one
            (13, -1, 9, None, 1), // another id advancing is not a recovery
            (14, -1, 9, None, 1),
            (15, -1, 9, Some("a"), 1), // 5 ms of grace after the alert
            (16, 0, 9, Some("a"), 1),  // sticky
        ];
        for &(ms, a, b, err, alerts) in rows {
            let r = m.check(
                ms * MS,
                4,
                CAP,
                3,
                &[view("a", true, a), view("b", true, b)],
            );
            match err {
                None => assert_eq!(r, Ok(()), "at {ms} ms"),
                Some(id) => assert!(
                    matches!(&r, Err(RequiredConsumerError::GracefulShutdownTriggered { consumer_id, .. }) if consumer_id == id),
                    "at {ms} ms: {r:?}"
                ),
            }
            assert_eq!(log.lock().unwrap().len(), alerts, "at {ms} ms");
        }
    }

    #[test]
    fn progress_resets_the_window_and_recovers() {
        let (mut m, log) = monitor(&[view("a", true, -5), view("b", true, 3)]);
        m.begin_episode(Duration::ZERO);
        let check = |m: &mut LivenessMonitor, ms: u32, a: i64| {
            m.check(
                ms * MS,
                4,
                CAP,
                3,
                &[view("a", true, a), view("b", true, 3)],
            )
        };
        assert_eq!(check(&mut m, 8, -5), Ok(()));
        assert_eq!(check(&mut m, 9, -4), Ok(())); // progress at 9 ms: a new window
        assert_eq!(check(&mut m, 18, -4), Ok(()));
        assert!(log.lock().unwrap().is_empty());
        assert_eq!(check(&mut m, 19, -4), Ok(()));
        assert_eq!(check(&mut m, 20, -3), Ok(()));
        assert_eq!(
            *log.lock().unwrap(),
            [
                (RequiredConsumerAlertKind::Stalled, "a".to_string()),
                (RequiredConsumerAlertKind::Recovered, "a".to_string())
            ]
        );
    }

    #[test]
    fn startup_counts_from_enabling_and_lists_the_missing() {
        let (mut m, log) = monitor(&[view("a", false, -1), view("b", true, -1)]);
        m.begin_episode(40 * MS);
        let t = [view("a", false, -1), view("b", true, 3)];
        assert_eq!(m.check(49 * MS, 4, CAP, 3, &t), Ok(()));
        assert_eq!(
            m.check(50 * MS, 4, CAP, 3, &t),
            Err(RequiredConsumerError::StartupTimeout {
                missing: vec!["a".into()]
            })
        );
        // A reservation that never appeared is never "stalled".
        assert!(log.lock().unwrap().is_empty());
    }

    #[test]
    fn the_stall_clock_starts_when_the_producer_blocks() {
        // Idle for an hour, then blocked: the window starts at the block.
        let (mut m, log) = monitor(&[view("a", true, -1), view("b", true, 3)]);
        let hour = Duration::from_secs(3600);
        m.begin_episode(hour);
        let t = [view("a", true, -1), view("b", true, 3)];
        assert_eq!(m.check(hour, 4, CAP, 3, &t), Ok(()));
        assert_eq!(m.check(hour + 9 * MS, 4, CAP, 3, &t), Ok(()));
        assert!(log.lock().unwrap().is_empty());
        assert_eq!(m.check(hour + 10 * MS, 4, CAP, 3, &t), Ok(()));
        assert_eq!(log.lock().unwrap().len(), 1);
    }

    /// `Recovered` says how long the stall lasted, from where `Stalled` measured it, not from
    /// the alert (found by the DST's field-by-field alert oracle, seed 0x1f).
    #[test]
    fn alerts_report_how_long_the_stall_lasted() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let cfg = RequiredConsumerLivenessConfig::new(["a"])
            .unwrap()
            .with_progress_timeout(10 * MS)
            .unwrap()
            .with_progress_check_interval(MS)
            .unwrap()
            .with_alert_hook(Arc::new(move |a| sink.lock().unwrap().push(a.clone())));
        let mut m = LivenessMonitor::new(cfg, Duration::ZERO, &[view("a", true, -1)]);
        m.begin_episode(2 * MS);
        for ms in 2..=15 {
            let a = if ms < 15 { -1 } else { 0 };
            assert_eq!(m.check(ms * MS, 4, CAP, 3, &[view("a", true, a)]), Ok(()));
        }
        let alert = |kind, consumer_cursor, stalled_for| RequiredConsumerAlert {
            kind,
            consumer_id: "a".into(),
            consumer_cursor,
            producer_cursor: 3,
            stalled_for,
        };
        assert_eq!(
            *log.lock().unwrap(),
            [
                alert(RequiredConsumerAlertKind::Stalled, -1, 10 * MS),
                alert(RequiredConsumerAlertKind::Recovered, 0, 13 * MS),
            ]
        );
    }
}
