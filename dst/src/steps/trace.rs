//! The run's trace: every step's record is hashed (a seed's hash must be the same in every
//! process, `check-determinism`), and kept as a readable line when `--trace` asks for it.

use super::scheduler::ActorId;
use crate::workload::ConsumerSpec;

/// What a trace record says happened. The discriminant is the word hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum TraceCode {
    /// The producer built the ring.
    RingCreated = 1,
    /// The producer published everything and closed the stream.
    Done = 2,
    /// A managed claim found room (`managed_try_claim`).
    Claimed = 3,
    /// A claim or publish found the ring full.
    Blocked = 4,
    /// The producer raised a `Stalled` alert.
    AlertStalled = 5,
    /// The producer raised a `Recovered` alert.
    AlertRecovered = 6,
    /// A managed claim failed with an error the producer retries after.
    RetryError = 7,
    /// A managed claim failed for good (startup timeout, graceful shutdown).
    FatalError = 8,
    /// An oracle failed.
    Fail = 9,
    /// A real publish call published a range of sequences.
    Published = 10,
    /// Fault: an actor is stalled.
    Stall = 20,
    /// Fault: a consumer process is killed.
    CrashConsumer = 21,
    /// Fault: a crashed consumer restarts under its id.
    Restart = 22,
    /// Fault: the producer process is killed.
    CrashProducer = 23,
    /// The heal point: stalls end, crashed consumers rejoin.
    Heal = 24,
    /// A consumer does not attach to a closed stream.
    NotAttaching = 30,
    /// A consumer attached (or rejoined).
    Attached = 31,
    /// A consumer leased its next event and kept it (not released).
    Peeked = 32,
    /// A consumer found nothing.
    Empty = 33,
    /// A consumer's stream ended.
    End = 34,
    /// A consumer copied out and released its next event (`try_consume_next`).
    Consumed = 35,
    /// A consumer released the event it kept (a second lease, dropped).
    Released = 36,
    /// A consumer handled and released a batch (`try_consume_batch`).
    ConsumedBatch = 37,
    /// A framed consumer rejoined in the middle of a message.
    RejoinMidMessage = 40,
    /// A framed message was delivered.
    Delivered = 41,
    /// One `try_recv` of a framed consumer.
    TryRecv = 42,
}

/// The trace hash and, when asked for, the readable lines.
#[derive(Debug)]
pub struct Trace {
    hash: u64,
    lines: Option<Vec<String>>,
}

impl Trace {
    /// An empty trace; `readable` keeps a line per record.
    pub fn new(readable: bool) -> Trace {
        Trace {
            hash: 0xcbf2_9ce4_8422_2325,
            lines: readable.then(Vec::new),
        }
    }

    /// Hashes one record (FNV-1a over its words); keeps its text when tracing.
    #[allow(clippy::too_many_arguments)] // one record: when, who, what and two operands
    pub fn note(
        &mut self,
        (now, step): (u64, u64),
        who: ActorId,
        consumers: &[ConsumerSpec],
        code: TraceCode,
        a: i64,
        b: i64,
        text: impl FnOnce() -> String,
    ) {
        for word in [now, who.word(), code as u64, a as u64, b as u64] {
            self.hash = (self.hash ^ word).wrapping_mul(0x0000_0100_0000_01b3);
        }
        if let Some(t) = &mut self.lines {
            let name = match who {
                ActorId::Producer => "producer",
                ActorId::Harness => "harness",
                ActorId::Consumer(i) => consumers[i].id.as_str(),
            };
            t.push(format!("{now:>10}us #{step:<7} {name:>8}: {}", text()));
        }
    }

    /// The hash so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The readable lines (empty unless asked for).
    pub fn take_lines(&mut self) -> Vec<String> {
        self.lines.take().unwrap_or_default()
    }
}
