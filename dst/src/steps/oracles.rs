//! What the step simulation checks, by name: the [`Oracle`] a failure violated and the
//! [`Failure`] a run reports. The checks themselves live in `checker.rs` (Layer 0 and
//! liveness) and `framed.rs` (Layer 1), apart from the scheduler.

use std::fmt;

/// What a failure violated. The names are stable: `dst run` prints them in brackets, shrinking
/// keeps the oracle, and planted bugs name the one that must catch them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Oracle {
    /// The producer claimed or published past a gating consumer's released cursor.
    Overwrite,
    /// A claim was refused though every gating consumer had released the slots.
    SpuriousBlock,
    /// A claim started somewhere else than the producer's next sequence, or a publish call
    /// published another range than the one it was asked to.
    Claim,
    /// A consumer (re)joined past its committed cursor, or an event was never delivered.
    Loss,
    /// A consumer (re)joined before its committed cursor.
    Duplicate,
    /// A consumer received another sequence than its next one.
    Order,
    /// A consumer received a sequence the producer had not published.
    UnpublishedRead,
    /// A consumer found nothing although its next sequence was published.
    MissedPublish,
    /// A slot held another event than the one written for its sequence.
    TornRead,
    /// A consumer reported corruption (a typed error the scenario cannot produce).
    Corrupt,
    /// `Closed` / `ProducerDead` while the producer was in another state.
    EndOfStream,
    /// A consumer could not attach.
    Attach,
    /// The ring could not be built or liveness not enabled.
    Setup,
    /// Nothing can run and nothing is scheduled, or the run did not end within its budget.
    Hang,
    /// The library or the harness panicked.
    Panic,
    /// Liveness raised something while off, or an error the rules do not know.
    Liveness,
    /// The alerts differ from the reference model's (an alert it does not raise, or a field).
    LivenessAlerts,
    /// An alert is late: the reference raises it at a check due by its clock and the producer
    /// has not, or a required consumer has gated without progress for `progress_timeout +
    /// progress_check_interval` without a `Stalled` alert (the upper bound).
    LivenessLate,
    /// The graceful shutdown differs from the reference model's.
    LivenessShutdown,
    /// The startup timeout differs from the reference model's.
    LivenessStartup,
    /// The reassembler (or the framed consumer) did not deliver the plan's next message.
    Framing,
    /// A message was lost other than the partial one a consumer joined in the middle of.
    FramedLoss,
    /// A message was not delivered byte-exact.
    FramedTornMessage,
    /// A committed message was delivered again.
    FramedDuplicate,
    /// `dropped_messages()` differs from the partial messages the consumer skipped.
    FramedDroppedCount,
}

impl Oracle {
    /// Every oracle, for listings.
    pub const ALL: [Oracle; 25] = [
        Oracle::Overwrite,
        Oracle::SpuriousBlock,
        Oracle::Claim,
        Oracle::Loss,
        Oracle::Duplicate,
        Oracle::Order,
        Oracle::UnpublishedRead,
        Oracle::MissedPublish,
        Oracle::TornRead,
        Oracle::Corrupt,
        Oracle::EndOfStream,
        Oracle::Attach,
        Oracle::Setup,
        Oracle::Hang,
        Oracle::Panic,
        Oracle::Liveness,
        Oracle::LivenessAlerts,
        Oracle::LivenessLate,
        Oracle::LivenessShutdown,
        Oracle::LivenessStartup,
        Oracle::Framing,
        Oracle::FramedLoss,
        Oracle::FramedTornMessage,
        Oracle::FramedDuplicate,
        Oracle::FramedDroppedCount,
    ];

    /// The name printed in brackets (`FAIL seed 0x.. [name]`) and named by mutants.
    pub fn name(self) -> &'static str {
        match self {
            Oracle::Overwrite => "overwrite",
            Oracle::SpuriousBlock => "spurious block",
            Oracle::Claim => "claim",
            Oracle::Loss => "loss",
            Oracle::Duplicate => "duplicate",
            Oracle::Order => "order",
            Oracle::UnpublishedRead => "unpublished read",
            Oracle::MissedPublish => "missed publish",
            Oracle::TornRead => "torn read",
            Oracle::Corrupt => "corrupt",
            Oracle::EndOfStream => "end of stream",
            Oracle::Attach => "attach",
            Oracle::Setup => "setup",
            Oracle::Hang => "hang",
            Oracle::Panic => "panic",
            Oracle::Liveness => "liveness",
            Oracle::LivenessAlerts => "liveness alerts",
            Oracle::LivenessLate => "liveness late",
            Oracle::LivenessShutdown => "liveness shutdown",
            Oracle::LivenessStartup => "liveness startup",
            Oracle::Framing => "framing",
            Oracle::FramedLoss => "framed loss",
            Oracle::FramedTornMessage => "framed torn message",
            Oracle::FramedDuplicate => "framed duplicate",
            Oracle::FramedDroppedCount => "framed dropped count",
        }
    }

    /// The oracle of a printed name.
    pub fn parse(s: &str) -> Option<Oracle> {
        Oracle::ALL.into_iter().find(|o| o.name() == s)
    }
}

impl fmt::Display for Oracle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A violated oracle and what happened, before the scheduler stamps it with time and step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which oracle.
    pub oracle: Oracle,
    /// What happened.
    pub detail: String,
}

/// The outcome of one check.
pub type Verdict = Result<(), Violation>;

/// A failed check.
pub fn violated(oracle: Oracle, detail: String) -> Verdict {
    Err(Violation { oracle, detail })
}

/// An oracle violation of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Which oracle (shrinking keeps it).
    pub oracle: Oracle,
    /// What happened.
    pub detail: String,
    /// Virtual time of the failing step (µs).
    pub at_us: u64,
    /// Step number.
    pub step: u64,
}

#[cfg(test)]
mod tests {
    use super::Oracle;

    #[test]
    fn names_are_unique_and_parse_back() {
        for o in Oracle::ALL {
            assert_eq!(Oracle::parse(o.name()), Some(o));
        }
        let mut names: Vec<_> = Oracle::ALL.iter().map(|o| o.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Oracle::ALL.len());
    }
}
