//! The managed publish surface of [`Producer`] (`enable_required_consumer_liveness`,
//! `publish_managed`, `publish_batch_managed`, `claim_batch_managed`): the plain paths with the
//! liveness module's [`ManagedHook`] as the wait policy. The fast path of a managed publish is
//! the unmanaged one plus a test of the sticky failure.

use super::{BatchClaim, Producer};
use crate::backend::RingBackend;
use crate::liveness::{
    LivenessMonitor, ManagedClaim, ManagedHook, RequiredConsumerError,
    RequiredConsumerLivenessConfig,
};
use crate::ring::error::MultiProcessResult;
use crate::ring::event::ShmEvent;
use crate::ring::producer::SpaceHook;
use crate::ring::registry;
use crate::Sequence;
use std::time::Duration;

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
        let monitor = LivenessMonitor::enable(config, &self.view());
        tracing::debug!(ring = %self.name, required = ?monitor.config().required, "required-consumer liveness enabled");
        self.liveness = Some(Box::new(monitor));
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

    /// When the blocked managed publish next checks the consumers (`None`: not blocked, or
    /// liveness off). For virtual-time tests; the DST does not ask: it steps the producer when
    /// its reference model says a check is due.
    #[doc(hidden)]
    pub fn next_liveness_check(&self) -> Option<Duration> {
        self.liveness.as_ref().and_then(|m| m.next_check())
    }

    /// Runs `body` with the liveness hook (or `None` when liveness is off), keeping the sticky
    /// failure flag in step with the monitor.
    fn with_hook<R>(&mut self, body: impl FnOnce(&mut Self, Option<&mut ManagedHook>) -> R) -> R {
        let Some(monitor) = self.liveness.take() else {
            return body(self, None);
        };
        let mut hook = ManagedHook::new(monitor);
        let r = body(self, Some(&mut hook));
        let monitor = hook.into_monitor();
        self.liveness_failed = monitor.failed().is_some();
        self.liveness = Some(monitor);
        r
    }

    /// One non-blocking round of a managed claim at `now`: the next sequence if `n` slots are
    /// free (closing a blocked episode). When they are not, opens or continues a blocked
    /// episode and runs a liveness check if one is due. Without liveness enabled it is a plain
    /// room check. Nothing is claimed: the caller publishes with a plain call next.
    ///
    /// For the step simulation (`dst run`) and virtual-time tests, which must own the time of
    /// every liveness check: the managed publish calls block while the ring is full, and a
    /// blocked call advances the simulated clock itself.
    #[doc(hidden)]
    pub fn managed_try_claim(&mut self, n: usize, now: Duration) -> ManagedClaim {
        self.with_hook(|p, hook| {
            let room = p.has_room(n as i64);
            let Some(hook) = hook else {
                return Ok(room.then_some(p.next));
            };
            hook.precheck()?;
            if room {
                hook.on_room(&p.view(), now);
                return Ok(Some(p.next));
            }
            let want = p.next + n as i64 - 1;
            hook.on_full(&p.view(), now, want).map(|_| None)
        })
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
        self.with_hook(|p, hook| match hook {
            Some(hook) => p.publish_with(hook, f),
            None => Ok(p.publish(f)),
        })
    }

    /// [`Producer::publish_batch`] under required-consumer liveness. On an error the events
    /// written before it stay published (the returned error says why the rest were not).
    pub fn publish_batch_managed<F: FnMut(usize, &mut E)>(
        &mut self,
        count: usize,
        f: F,
    ) -> Result<Sequence, RequiredConsumerError> {
        self.managed_precheck()?;
        self.with_hook(|p, hook| match hook {
            Some(hook) => p.publish_batch_with(hook, count, f),
            None => Ok(p.publish_batch(count, f)),
        })
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
            self.with_hook(|p, hook| match hook {
                Some(hook) => p.wait_for_space(count as i64, hook).map(drop),
                None => match p.wait_for_space(count as i64, &mut super::NoDeadline) {
                    Ok(_) => Ok(()),
                    Err(never) => match never {},
                },
            })?;
        }
        Ok(BatchClaim::new(self, count))
    }
}
