//! The liveness oracles: every managed claim's alerts (every field) and error against the
//! reference model's, and the upper bound on a `Stalled` alert.
//!
//! A blocked producer is stepped when the reference says its next check is due (and whenever a
//! release wakes it), never when the producer says, so a producer whose checks run late is
//! compared at the moments it should have checked: the reference raises an alert there that
//! the producer has not ([`Oracle::LivenessLate`]). The upper bound holds the reference to the
//! rules as well, since a check schedule late in both would pass the comparison: a required
//! consumer that has gated the blocked producer without progress for `progress_timeout +
//! progress_check_interval` must already have its `Stalled` alert, checked after every claim
//! and at the instant the bound expires (the harness steps the producer then too).
//!
//! No tolerance anywhere: virtual time is the scheduler's, so the producer's `Duration`s and
//! the reference's microseconds are the same instants, and every field must be equal.

use super::oracles::{violated, Oracle, Verdict};
use crate::reference::{AlertKind, RefAlert, RefError};
use myelon::{RequiredConsumerAlert, RequiredConsumerAlertKind, RequiredConsumerError};

/// A producer alert as the reference writes it.
pub fn ref_alert(a: RequiredConsumerAlert) -> RefAlert {
    RefAlert {
        kind: match a.kind {
            RequiredConsumerAlertKind::Stalled => AlertKind::Stalled,
            RequiredConsumerAlertKind::Recovered => AlertKind::Recovered,
        },
        id: a.consumer_id,
        consumer_cursor: a.consumer_cursor,
        producer_cursor: a.producer_cursor,
        stalled_for: micros(a.stalled_for.as_micros()),
    }
}

/// Microseconds as the reference counts them (saturating: no run reaches `u64::MAX`).
fn micros(us: u128) -> u64 {
    u64::try_from(us).unwrap_or(u64::MAX)
}

/// How the alerts of one claim differ from the reference's.
#[derive(Debug, PartialEq, Eq)]
enum AlertDiff {
    /// Equal, every field.
    Same,
    /// The producer's are the reference's with some left out (by kind and id, in order):
    /// alerts due at this check that the producer has not raised.
    Missing(Vec<RefAlert>),
    /// Anything else: an alert the reference does not raise, another order, or a field.
    Differs(String),
}

fn diff_alerts(want: &[RefAlert], got: &[RefAlert]) -> AlertDiff {
    if want == got {
        return AlertDiff::Same;
    }
    let same = |a: &RefAlert, b: &RefAlert| a.kind == b.kind && a.id == b.id;
    let mut missing = Vec::new();
    let mut rest = got.iter().peekable();
    for w in want {
        match rest.peek() {
            Some(g) if same(w, g) => {
                if w != *g {
                    return AlertDiff::Differs(format!(
                        "fields differ: reference {w:?}, producer {g:?}"
                    ));
                }
                rest.next();
            }
            _ => missing.push(w.clone()),
        }
    }
    if rest.peek().is_some() {
        return AlertDiff::Differs(format!(
            "reference expects {want:?}, producer raised {got:?}"
        ));
    }
    AlertDiff::Missing(missing)
}

/// Whether the producer's outcome is the error (or success) the reference expects, every field.
fn error_matches(want: &Option<RefError>, r: &Result<Option<i64>, RequiredConsumerError>) -> bool {
    match (want, r) {
        (None, Ok(_)) => true,
        (
            Some(RefError::StartupTimeout(m)),
            Err(RequiredConsumerError::StartupTimeout { missing }),
        ) => m == missing,
        (
            Some(RefError::GracefulShutdown(id, us)),
            Err(RequiredConsumerError::GracefulShutdownTriggered {
                consumer_id,
                stalled_for,
            }),
        ) => id == consumer_id && *us == micros(stalled_for.as_micros()),
        (
            Some(RefError::NonRequiredDead(ids)),
            Err(RequiredConsumerError::NonRequiredConsumerDead { consumer_id }),
        ) => ids.contains(consumer_id),
        _ => false,
    }
}

fn error_oracle(want: &Option<RefError>, r: &Result<Option<i64>, RequiredConsumerError>) -> Oracle {
    match (want, r) {
        (Some(RefError::StartupTimeout(_)), _)
        | (_, Err(RequiredConsumerError::StartupTimeout { .. })) => Oracle::LivenessStartup,
        (Some(RefError::GracefulShutdown(..)), _)
        | (_, Err(RequiredConsumerError::GracefulShutdownTriggered { .. })) => {
            Oracle::LivenessShutdown
        }
        _ => Oracle::Liveness,
    }
}

/// Whether a managed claim raised the alerts and the error the reference expects.
///
/// In this order: an alert the reference does not raise (or a field that differs) is
/// [`Oracle::LivenessAlerts`]; then a wrong error (whose check may have stopped before the
/// alerts it would have raised) is the error's oracle; then an alert the reference raises at
/// this check and the producer does not is [`Oracle::LivenessLate`].
pub fn check_liveness(
    expected: Option<(Vec<RefAlert>, Option<RefError>)>,
    got: &[RefAlert],
    r: &Result<Option<i64>, RequiredConsumerError>,
) -> Verdict {
    let Some((want_alerts, want_err)) = expected else {
        if !got.is_empty() || r.is_err() {
            return violated(
                Oracle::Liveness,
                format!("liveness is off, yet {got:?} / {r:?}"),
            );
        }
        return Ok(());
    };
    let diff = diff_alerts(&want_alerts, got);
    if let AlertDiff::Differs(detail) = diff {
        return violated(Oracle::LivenessAlerts, detail);
    }
    if !error_matches(&want_err, r) {
        return violated(
            error_oracle(&want_err, r),
            format!("reference expects {want_err:?}, producer returned {r:?}"),
        );
    }
    match diff {
        AlertDiff::Missing(m) => violated(
            Oracle::LivenessLate,
            format!("due at this check by the reference's clock, not raised: {m:?}"),
        ),
        AlertDiff::Same | AlertDiff::Differs(_) => Ok(()),
    }
}

/// The upper bound at `now`, right after a claim: `unalerted` lists the required consumers
/// (id, since when) that gate the blocked producer without progress and have no open
/// `Stalled` alert; none may have done so for `bound_us = progress_timeout +
/// progress_check_interval`.
pub fn check_upper_bound(now: u64, unalerted: &[(&str, u64)], bound_us: u64) -> Verdict {
    match unalerted
        .iter()
        .find(|&&(_, since)| now - since >= bound_us)
    {
        None => Ok(()),
        Some((id, since)) => violated(
            Oracle::LivenessLate,
            format!(
                "{id} has gated without progress for {}us >= progress_timeout + \
                 progress_check_interval = {bound_us}us and has no Stalled alert",
                now - since
            ),
        ),
    }
}

/// When the upper bound next expires for one of `unalerted` (`None`: for none). The harness
/// steps the blocked producer then too: without a bug it has checked before (its checks are
/// due at most one interval apart), but a check schedule late in the reference as well as in
/// the producer is caught there.
pub fn bound_expiry(unalerted: &[(&str, u64)], bound_us: u64) -> Option<u64> {
    unalerted.iter().map(|&(_, since)| since + bound_us).min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn alert(kind: AlertKind, id: &str, stalled_for: u64) -> RefAlert {
        RefAlert {
            kind,
            id: id.into(),
            consumer_cursor: 3,
            producer_cursor: 9,
            stalled_for,
        }
    }

    #[test]
    fn alerts_compare_every_field_and_name_what_is_late() {
        let s = |id, us| alert(AlertKind::Stalled, id, us);
        let r = |id, us| alert(AlertKind::Recovered, id, us);
        let missing = |v: &[RefAlert]| AlertDiff::Missing(v.to_vec());
        assert_eq!(diff_alerts(&[s("a", 5)], &[s("a", 5)]), AlertDiff::Same);
        assert_eq!(diff_alerts(&[s("a", 5)], &[]), missing(&[s("a", 5)]));
        assert_eq!(
            diff_alerts(&[r("a", 7), s("b", 5)], &[r("a", 7)]),
            missing(&[s("b", 5)])
        );
        for got in [
            vec![s("a", 6)],            // stalled_for
            vec![s("b", 5)],            // id
            vec![r("a", 5)],            // kind
            vec![s("a", 5), s("a", 5)], // one too many
        ] {
            assert!(
                matches!(diff_alerts(&[s("a", 5)], &got), AlertDiff::Differs(_)),
                "{got:?}"
            );
        }
        let mut cursor = s("a", 5);
        cursor.consumer_cursor = 4;
        assert!(matches!(
            diff_alerts(&[s("a", 5)], &[cursor]),
            AlertDiff::Differs(_)
        ));
    }

    #[test]
    fn a_missing_alert_is_late_unless_the_error_explains_it() {
        let want = Some((vec![alert(AlertKind::Stalled, "a", 5)], None));
        let v = check_liveness(want.clone(), &[], &Ok(None));
        assert_eq!(v.map_err(|v| v.oracle), Err(Oracle::LivenessLate));
        let shutdown = Err(RequiredConsumerError::GracefulShutdownTriggered {
            consumer_id: "b".into(),
            stalled_for: Duration::from_micros(5),
        });
        let v = check_liveness(want, &[], &shutdown);
        assert_eq!(v.map_err(|v| v.oracle), Err(Oracle::LivenessShutdown));
        let want = Some((vec![], Some(RefError::GracefulShutdown("b".into(), 6))));
        let v = check_liveness(want, &[], &shutdown);
        assert_eq!(v.map_err(|v| v.oracle), Err(Oracle::LivenessShutdown));
    }

    #[test]
    fn the_upper_bound_holds_until_progress_timeout_plus_one_interval() {
        let stalls = [("r0", 100), ("r1", 95)];
        assert!(check_upper_bound(104, &stalls, 10).is_ok());
        let v = check_upper_bound(105, &stalls, 10).unwrap_err();
        assert_eq!(v.oracle, Oracle::LivenessLate);
        assert!(
            v.detail.contains("r1") && v.detail.contains("10us"),
            "{}",
            v.detail
        );
        assert!(check_upper_bound(1_000, &[], 10).is_ok());
        assert_eq!(bound_expiry(&stalls, 10), Some(105));
        assert_eq!(bound_expiry(&[], 10), None);
    }
}
