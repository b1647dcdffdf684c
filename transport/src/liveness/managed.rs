//! The liveness policy of a blocked managed publish, as a [`SpaceHook`] for the producer's one
//! wait loop: it reads the consumer table and the clock the loop hands it and drives the
//! [`LivenessMonitor`]; it never touches the producer's state.

use super::config::{RequiredConsumerError, RequiredConsumerLivenessConfig};
use super::monitor::{EntryView, LivenessMonitor};
use crate::backend::RingBackend;
use crate::ring::event::ShmEvent;
use crate::ring::layout::{Segment, ENTRY_ACTIVE, ENTRY_RESERVED_PREFIX, FLAG_ANONYMOUS};
use crate::ring::producer::{RingView, SpaceHook};
use crate::ring::registry;
use crate::ring::sync::Ordering;
use crate::Sequence;
use std::time::Duration;

/// Outcome of [`crate::Producer::managed_try_claim`].
pub type ManagedClaim = Result<Option<Sequence>, RequiredConsumerError>;

/// The gating entries as the monitor sees them; owner liveness is probed only for non-required
/// entries at or below `threshold` (the only ones the dead-consumer policy looks at), and never
/// for anonymous ones: a dead anonymous consumer is not reported, the wait frees its entry
/// (`registry::reap_dead_anonymous`).
fn table_view<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    monitor: Option<&LivenessMonitor>,
    threshold: Sequence,
) -> Vec<EntryView> {
    seg.entries()
        .enumerate()
        .filter_map(|(index, e)| {
            let st = e.state.load(Ordering::Acquire);
            if !registry::is_gating(st) {
                return None;
            }
            let id = registry::entry_id(e);
            let cursor = e.cursor.value.load(Ordering::Acquire);
            let attached = st == ENTRY_ACTIVE;
            let owner_dead = attached
                && cursor < threshold
                && e.flags.load(Ordering::Relaxed) & FLAG_ANONYMOUS == 0
                && monitor.is_some_and(|m| !m.is_required(&id))
                && registry::holder_dead(seg, index);
            Some(EntryView {
                id,
                attached,
                cursor,
                incarnation: e.incarnation.load(Ordering::Relaxed),
                owner_dead,
                prefix: st == ENTRY_RESERVED_PREFIX,
            })
        })
        .collect()
}

impl LivenessMonitor {
    /// A monitor enabled now, with the ring's table as it is.
    pub(crate) fn enable<E: ShmEvent, B: RingBackend>(
        config: RequiredConsumerLivenessConfig,
        ring: &RingView<'_, E, B>,
    ) -> Self {
        let table = table_view(ring.seg, None, Sequence::MIN);
        LivenessMonitor::new(config, ring.backend.now(), &table)
    }
}

/// The wait policy of a managed publish: an episode opens when the producer first finds the
/// ring full, a check runs whenever one is due, and the episode closes when room appears.
#[derive(Debug)]
pub(crate) struct ManagedHook {
    monitor: Box<LivenessMonitor>,
}

impl ManagedHook {
    pub(crate) fn new(monitor: Box<LivenessMonitor>) -> Self {
        ManagedHook { monitor }
    }

    pub(crate) fn into_monitor(self) -> Box<LivenessMonitor> {
        self.monitor
    }

    /// Whether a blocked episode is open (room found later must close it through `on_room`).
    pub(crate) fn in_episode(&self) -> bool {
        self.monitor.in_episode()
    }

    /// The sticky failure, if the monitor has failed.
    pub(crate) fn precheck(&self) -> Result<(), RequiredConsumerError> {
        match self.monitor.failed() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

impl<E: ShmEvent, B: RingBackend> SpaceHook<E, B> for ManagedHook {
    type Error = RequiredConsumerError;

    fn on_room(&mut self, ring: &RingView<'_, E, B>, now: Duration) {
        let m = &mut self.monitor;
        if m.in_episode() {
            let table = table_view(ring.seg, None, Sequence::MIN);
            m.end_episode(now, ring.published, &table);
            crate::observability::record_alerts(ring.seg, m.take_emitted());
        }
    }

    fn on_full(
        &mut self,
        ring: &RingView<'_, E, B>,
        now: Duration,
        want: i64,
    ) -> Result<Duration, RequiredConsumerError> {
        let m = &mut self.monitor;
        if let Some(e) = m.failed() {
            return Err(e.clone());
        }
        if !m.in_episode() {
            m.begin_episode(now);
        }
        if m.check_due(now) {
            let threshold = want - ring.capacity;
            let table = table_view(ring.seg, Some(m), threshold);
            let checked = m.check(now, want, ring.capacity, ring.published, &table);
            crate::observability::record_alerts(ring.seg, m.take_emitted());
            checked?;
        }
        Ok(m.next_check()
            .map_or(Duration::MAX, |t| t.saturating_sub(now)))
    }
}
