//! Counts of the situations a run reached (`dst coverage`; the suite asserts each is reached).

/// Counts of interesting situations a run reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// The producer published past the capacity (the ring wrapped).
    pub ring_wrapped: u64,
    /// A stall alert followed by a same-id recovery.
    pub alert_then_recovery: u64,
    /// A stall alert followed by the graceful shutdown.
    pub alert_then_shutdown: u64,
    /// A framed consumer rejoined (same id) with its first slot inside a fragmented message,
    /// so it must skip that message's remaining frames and count it as dropped.
    pub rejoin_mid_message: u64,
    /// Of those, the ones where the consumer is the real `FramedTransportConsumer::try_recv`.
    pub rejoin_mid_message_try_recv: u64,
    /// A framed message of several frames delivered whole.
    pub framed_multi_frame: u64,
    /// `StartupTimeout`.
    pub startup_timeout: u64,
    /// A consumer crashed holding a lease, and the event was delivered again after its rejoin.
    pub redelivery_after_crash: u64,
    /// A same-id rejoin.
    pub same_id_rejoin: u64,
    /// `NonRequiredConsumerDead`.
    pub non_required_dead: u64,
    /// A producer crash.
    pub producer_crash: u64,
    /// A multi-slot claim.
    pub batch_claim: u64,
    /// A same-id rejoin that resumed inside a multi-slot claim (the Layer 0 stand-in for a
    /// rejoin mid-message).
    pub rejoin_mid_batch: u64,
    /// A consumer leased an event and kept it (released by a later step).
    pub lease_kept: u64,
    /// A `try_consume_batch` that handled more than one event.
    pub batch_receive: u64,
}

impl Coverage {
    /// Adds another run's counts.
    pub fn add(&mut self, o: &Coverage) {
        for ((_, a), (_, b)) in self.rows_mut().into_iter().zip(o.rows()) {
            *a += b;
        }
    }

    /// (name, count) rows.
    pub fn rows(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("ring wrapped", self.ring_wrapped),
            ("alert then recovery", self.alert_then_recovery),
            ("alert then shutdown", self.alert_then_shutdown),
            ("rejoin mid-message", self.rejoin_mid_message),
            (
                "rejoin mid-message (try_recv consumer)",
                self.rejoin_mid_message_try_recv,
            ),
            ("framed multi-frame message", self.framed_multi_frame),
            ("startup timeout", self.startup_timeout),
            ("redelivery after crash", self.redelivery_after_crash),
            ("same-id rejoin", self.same_id_rejoin),
            ("dead non-required consumer", self.non_required_dead),
            ("producer crash", self.producer_crash),
            ("batch claim", self.batch_claim),
            ("rejoin mid-batch", self.rejoin_mid_batch),
            ("lease kept across steps", self.lease_kept),
            ("batch receive", self.batch_receive),
        ]
    }

    fn rows_mut(&mut self) -> Vec<(&'static str, &mut u64)> {
        vec![
            ("", &mut self.ring_wrapped),
            ("", &mut self.alert_then_recovery),
            ("", &mut self.alert_then_shutdown),
            ("", &mut self.rejoin_mid_message),
            ("", &mut self.rejoin_mid_message_try_recv),
            ("", &mut self.framed_multi_frame),
            ("", &mut self.startup_timeout),
            ("", &mut self.redelivery_after_crash),
            ("", &mut self.same_id_rejoin),
            ("", &mut self.non_required_dead),
            ("", &mut self.producer_crash),
            ("", &mut self.batch_claim),
            ("", &mut self.rejoin_mid_batch),
            ("", &mut self.lease_kept),
            ("", &mut self.batch_receive),
        ]
    }
}
