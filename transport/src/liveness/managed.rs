//! The managed publish surface of [`Producer`]: `enable_required_consumer_liveness`,
//! `publish_managed`, `publish_batch_managed`, and the non-blocking claim step they loop over.
//!
//! The fast path of a managed publish is the unmanaged one plus a test of the sticky failure;
//! the table is read and the clock consulted only once a claim has failed.

use super::config::{RequiredConsumerError, RequiredConsumerLivenessConfig};
use super::monitor::{EntryView, LivenessMonitor};
use crate::backend::{ProcessState, RingBackend};
use crate::ring::error::MultiProcessResult;
use crate::ring::event::ShmEvent;
use crate::ring::layout::{Segment, ENTRY_ACTIVE, ENTRY_RESERVED_PREFIX};
use crate::ring::producer::{BatchClaim, Producer};
use crate::ring::registry;
use crate::ring::sync::{spin_hint, Ordering};
use crate::ring::wait::block_on;
use crate::Sequence;
use std::time::Duration;

/// Longest single sleep of a blocked managed publish (bounded further by the next check).
const MANAGED_WAIT_SLICE: Duration = Duration::from_micros(100);
/// Pauses, then yields, before a blocked managed publish sleeps.
const MANAGED_SPIN_ROUNDS: u32 = 256;
const MANAGED_YIELD_ROUNDS: u32 = 64;

/// Outcome of [`Producer::managed_try_claim`].
pub type ManagedClaim = Result<Option<Sequence>, RequiredConsumerError>;

/// The gating entries as the monitor sees them; owner liveness is probed only for non-required
/// entries at or below `threshold` (the only ones the dead-consumer policy looks at).
fn table_view<E: ShmEvent, B: RingBackend>(
    seg: &Segment<E, B>,
    backend: &B,
    monitor: Option<&LivenessMonitor>,
    threshold: Sequence,
) -> Vec<EntryView> {
    seg.entries()
        .filter_map(|e| {
            let st = e.state.load(Ordering::Acquire);
            if !registry::is_gating(st) {
                return None;
            }
            let id = registry::entry_id(e);
            let cursor = e.cursor.value.load(Ordering::Acquire);
            let attached = st == ENTRY_ACTIVE;
            let owner_dead = attached
                && cursor < threshold
                && monitor.is_some_and(|m| !m.is_required(&id))
                && backend.token_state(e.owner_token.load(Ordering::Relaxed)) == ProcessState::Dead;
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

impl<E: ShmEvent, B: RingBackend> Producer<E, B> {
    /// Turns on required-consumer liveness for the managed publish calls (see
    /// [`crate::liveness`]). Reserves an entry for every required id not in the consumer table
    /// yet, so it gates from now on and its consumer resumes here when it attaches. Replaces
    /// any previous configuration (and clears a previous failure).
    pub fn enable_required_consumer_liveness(
        &mut self,
        config: RequiredConsumerLivenessConfig,
    ) -> MultiProcessResult<()> {
        config.validate()?;
        let published = self.next - 1;
        for id in &config.required {
            registry::ensure_entry(&self.seg, &self.backend, id, published)?;
        }
        self.refresh_limit();
        let table = table_view(&self.seg, &self.backend, None, Sequence::MIN);
        let now = self.backend.now();
        tracing::debug!(ring = %self.name, required = ?config.required, "required-consumer liveness enabled");
        self.liveness = Some(Box::new(LivenessMonitor::new(config, now, &table)));
        self.liveness_failed = false;
        Ok(())
    }

    /// Whether required-consumer liveness is enabled.
    pub fn required_consumer_liveness_enabled(&self) -> bool {
        self.liveness.is_some()
    }

    /// The sticky liveness failure, if the producer has failed.
    pub fn required_consumer_failure(&self) -> Option<&RequiredConsumerError> {
        self.liveness.as_ref().and_then(|m| m.failed())
    }

    /// Step (the managed counterpart of [`Producer::try_claim`]): the next sequence if `n` slots
    /// are free at `now`. When they are not, opens or continues a blocked episode and runs a
    /// liveness check if one is due. Without liveness enabled it is a plain claim.
    #[doc(hidden)]
    pub fn managed_try_claim(&mut self, n: usize, now: Duration) -> ManagedClaim {
        let Some(mut m) = self.liveness.take() else {
            return Ok(self.try_claim_n(n as i64));
        };
        let r = self.managed_claim_with(&mut m, n as i64, now);
        self.liveness_failed = m.failed().is_some();
        self.liveness = Some(m);
        r
    }

    fn try_claim_n(&mut self, n: i64) -> Option<Sequence> {
        self.has_room(n).then_some(self.next)
    }

    fn managed_claim_with(
        &mut self,
        m: &mut LivenessMonitor,
        n: i64,
        now: Duration,
    ) -> ManagedClaim {
        if let Some(e) = m.failed() {
            return Err(e.clone());
        }
        let want = self.next + n - 1;
        if let Some(s) = self.try_claim_n(n) {
            if m.in_episode() {
                let table = table_view(&self.seg, &self.backend, None, Sequence::MIN);
                m.end_episode(now, self.next - 1, &table);
                crate::observability::record_alerts(&self.seg, m.take_emitted());
            }
            return Ok(Some(s));
        }
        if !m.in_episode() {
            m.begin_episode(now);
        }
        if m.check_due(now) {
            let threshold = want - self.capacity;
            let table = table_view(&self.seg, &self.backend, Some(m), threshold);
            let checked = m.check(now, want, self.capacity, self.next - 1, &table);
            crate::observability::record_alerts(&self.seg, m.take_emitted());
            checked?;
        }
        Ok(None)
    }

    /// When the blocked managed publish next checks the consumers (`None`: not blocked, or
    /// liveness off). The DST scheduler wakes the producer then.
    #[doc(hidden)]
    pub fn next_liveness_check(&self) -> Option<Duration> {
        self.liveness.as_ref().and_then(|m| m.next_check())
    }

    /// Waits until `n` slots are free, checking liveness while blocked (counted in the ring's
    /// observability counters as a blocked publish).
    fn managed_wait(&mut self, n: usize) -> Result<Sequence, RequiredConsumerError> {
        let start = self.backend.now();
        let r = self.managed_wait_loop(n);
        let waited = self.backend.now().saturating_sub(start);
        crate::observability::record_blocked(self.seg.header(), waited);
        r
    }

    fn managed_wait_loop(&mut self, n: usize) -> Result<Sequence, RequiredConsumerError> {
        let mut idle = 0u32;
        loop {
            let now = self.backend.now();
            if let Some(s) = self.managed_try_claim(n, now)? {
                return Ok(s);
            }
            idle = idle.saturating_add(1);
            if idle < MANAGED_SPIN_ROUNDS {
                spin_hint();
            } else if idle < MANAGED_SPIN_ROUNDS + MANAGED_YIELD_ROUNDS {
                self.backend.yield_now();
            } else {
                let until_check = self
                    .next_liveness_check()
                    .map_or(MANAGED_WAIT_SLICE, |t| t.saturating_sub(now));
                let slice = MANAGED_WAIT_SLICE
                    .min(until_check)
                    .max(Duration::from_micros(1));
                let want = self.next + n as i64 - 1;
                let (next, cap, seg) = (self.next, self.capacity, &self.seg);
                block_on(&self.backend, &seg.header().producer_wake, slice, || {
                    registry::gating_minimum(seg, next - 1) + cap >= want
                });
            }
        }
    }

    #[inline]
    fn managed_precheck(&self) -> Result<(), RequiredConsumerError> {
        if self.liveness_failed {
            return Err(self.sticky_failure());
        }
        Ok(())
    }

    #[cold]
    fn sticky_failure(&self) -> RequiredConsumerError {
        match self.liveness.as_deref().and_then(LivenessMonitor::failed) {
            Some(e) => e.clone(),
            None => unreachable!("liveness_failed is set only with a stored failure"),
        }
    }

    /// [`Producer::publish`] under required-consumer liveness: waits for space like `publish`,
    /// but while blocked checks the required consumers and fails with a
    /// [`RequiredConsumerError`] instead of hanging (see [`crate::liveness`]). Without liveness
    /// enabled it is `publish`.
    #[inline]
    pub fn publish_managed<F: FnOnce(&mut E)>(
        &mut self,
        f: F,
    ) -> Result<Sequence, RequiredConsumerError> {
        if !self.liveness_failed {
            if let Some(s) = self.try_claim() {
                self.write_and_stamp(s, f);
                self.announce(s);
                return Ok(s);
            }
        }
        self.publish_managed_slow(f)
    }

    /// The cold half of [`Self::publish_managed`]: a sticky failure, or no room.
    #[cold]
    #[inline(never)]
    fn publish_managed_slow<F: FnOnce(&mut E)>(
        &mut self,
        f: F,
    ) -> Result<Sequence, RequiredConsumerError> {
        self.managed_precheck()?;
        let s = self.managed_wait(1)?;
        self.write_and_stamp(s, f);
        self.announce(s);
        Ok(s)
    }

    /// [`Producer::publish_batch`] under required-consumer liveness. On an error the events
    /// written before it stay published (the returned error says why the rest were not).
    pub fn publish_batch_managed<F: FnMut(usize, &mut E)>(
        &mut self,
        count: usize,
        mut f: F,
    ) -> Result<Sequence, RequiredConsumerError> {
        self.managed_precheck()?;
        for i in 0..count {
            let s = match self.try_claim() {
                Some(s) => s,
                None => {
                    if i > 0 {
                        self.announce(self.next - 1);
                    }
                    self.managed_wait(1)?
                }
            };
            self.write_and_stamp(s, |e| f(i, e));
        }
        if count > 0 {
            self.announce(self.next - 1);
        }
        Ok(self.next - 1)
    }

    /// [`Producer::claim_batch_timeout`] under required-consumer liveness: waits for `count`
    /// consecutive slots, checking the required consumers while blocked, and returns them to
    /// be written in place and committed as a unit. This is what the framed and typed producers
    /// build their managed publish on. `InvalidClaim` when `count` is 0 or exceeds the
    /// capacity.
    pub fn claim_batch_managed(
        &mut self,
        count: usize,
    ) -> Result<BatchClaim<'_, E, B>, RequiredConsumerError> {
        if count == 0 || count as i64 > self.capacity {
            return Err(RequiredConsumerError::InvalidClaim {
                count,
                capacity: self.capacity as usize,
            });
        }
        self.managed_precheck()?;
        if !self.has_room(count as i64) {
            self.managed_wait(count)?;
        }
        let first = self.next;
        Ok(BatchClaim {
            first,
            count,
            producer: self,
        })
    }
}
