//! What the producer writes: the Layer 0 check pair, or the frames of framed messages laid
//! out by a seeded [`Plan`], and how the harness tells a slot's content is the one expected.

use crate::rng::{mix, Rng};
use crate::workload::Workload;
use myelon::backend::SimBackend;
use myelon::transport::{
    FixedFrame, FrameMeta, FramedTransportConsumer, FramedTransportFrame, TransportError,
};
use myelon::{Consumer, ShmEvent};

/// The event type: the sequence and a check word derived from it (a torn or stale slot shows).
pub type Ev = [u64; 2];

/// The frame type of framed runs ([`Workload::framed`]): 8 payload bytes, so a message of a
/// few dozen bytes spans several slots.
pub type Frame = FixedFrame<FRAME_DATA>;
pub(super) const FRAME_DATA: usize = 8;

/// The event the producer writes for `seq` in run `seed`.
pub fn payload(seed: u64, seq: i64) -> Ev {
    [seq as u64, mix(seq as u64 ^ seed)]
}

/// Byte `j` of framed message `m` in run `seed`.
pub fn message_byte(seed: u64, m: u32, j: usize) -> u8 {
    let h = mix(seed ^ (u64::from(m) << 24) ^ 0x6d65_7373);
    ((h >> ((j % 8) * 8)) as u8) ^ ((j / 8) as u8).wrapping_mul(31)
}

/// How a framed run lays its messages over the frames: message `m` takes `frames[m]`
/// consecutive slots from `start[m]` and holds `len[m]` bytes.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Per slot: its message.
    pub(super) msg: Vec<u32>,
    /// Per slot: its fragment index.
    pub(super) idx: Vec<u16>,
    /// Per message: frames.
    pub(super) frames: Vec<u16>,
    /// Per message: bytes.
    pub(super) len: Vec<u32>,
}

impl Plan {
    pub(super) fn new(w: &Workload) -> Plan {
        let mut p = Plan::default();
        if w.framed == 0 {
            return p;
        }
        let mut rng = Rng::fork(w.seed, 3);
        let mut seq = 0u64;
        while seq < w.events {
            let k = rng.range(1, w.framed).min(w.events - seq);
            let m = p.frames.len() as u32;
            let last = rng.range(1, FRAME_DATA as u64);
            p.frames.push(k as u16);
            p.len.push(((k - 1) * FRAME_DATA as u64 + last) as u32);
            for i in 0..k {
                p.msg.push(m);
                p.idx.push(i as u16);
            }
            seq += k;
        }
        p
    }

    pub(super) fn is_last(&self, seq: usize) -> bool {
        self.idx[seq] + 1 == self.frames[self.msg[seq] as usize]
    }

    /// Whether `bytes` are exactly message `m`.
    pub(super) fn check(&self, seed: u64, m: u32, bytes: &[u8]) -> bool {
        bytes.len() == self.len[m as usize] as usize
            && bytes
                .iter()
                .enumerate()
                .all(|(j, &b)| b == message_byte(seed, m, j))
    }
}

/// An event type the harness drives: the Layer 0 check pair, or a frame of a framed message.
pub(super) trait SimEv: ShmEvent {
    /// The real framed consumer over this event type (only used for frames).
    type Fc;
    fn wrap(c: Consumer<Self, SimBackend>) -> Self::Fc;
    fn fc_next(fc: &Self::Fc) -> i64;
    fn fc_dropped(fc: &Self::Fc) -> u64;
    /// `try_recv`; a message comes back as its id and whether it is byte-exact.
    fn fc_recv(
        fc: &mut Self::Fc,
        seed: u64,
        plan: &Plan,
    ) -> Result<Option<(u32, bool)>, TransportError>;
    fn blank() -> Self;
    fn make(seed: u64, plan: &Plan, seq: i64) -> Self;
    fn same(&self, o: &Self) -> bool;
    fn frame(&self) -> Option<(FrameMeta, &[u8])>;
}

impl SimEv for Ev {
    type Fc = Consumer<Ev, SimBackend>;
    fn wrap(c: Consumer<Self, SimBackend>) -> Self::Fc {
        c
    }
    fn fc_next(fc: &Self::Fc) -> i64 {
        fc.next_sequence()
    }
    fn fc_dropped(_: &Self::Fc) -> u64 {
        0
    }
    fn fc_recv(_: &mut Self::Fc, _: u64, _: &Plan) -> Result<Option<(u32, bool)>, TransportError> {
        Ok(None)
    }
    fn blank() -> Self {
        [0, 0]
    }
    fn make(seed: u64, _: &Plan, seq: i64) -> Self {
        payload(seed, seq)
    }
    fn same(&self, o: &Self) -> bool {
        self == o
    }
    fn frame(&self) -> Option<(FrameMeta, &[u8])> {
        None
    }
}

impl SimEv for Frame {
    type Fc = FramedTransportConsumer<Frame, SimBackend>;
    fn wrap(c: Consumer<Self, SimBackend>) -> Self::Fc {
        FramedTransportConsumer::new(c)
    }
    fn fc_next(fc: &Self::Fc) -> i64 {
        fc.inner().next_sequence()
    }
    fn fc_dropped(fc: &Self::Fc) -> u64 {
        fc.dropped_messages()
    }
    fn fc_recv(
        fc: &mut Self::Fc,
        seed: u64,
        plan: &Plan,
    ) -> Result<Option<(u32, bool)>, TransportError> {
        fc.try_recv().map(|m| {
            m.map(|m| {
                let id = m.message_id();
                let whole = (id as usize) < plan.len.len() && plan.check(seed, id, &m);
                (id, whole)
            })
        })
    }
    fn blank() -> Self {
        Frame::empty()
    }
    fn make(seed: u64, plan: &Plan, seq: i64) -> Self {
        let s = seq as usize;
        let m = plan.msg[s];
        let k = plan.idx[s] as usize;
        let from = k * FRAME_DATA;
        let len = (plan.len[m as usize] as usize - from).min(FRAME_DATA);
        let mut flags = 0;
        if k == 0 {
            flags |= myelon::transport::frame_flags::FIRST;
        }
        if plan.is_last(s) {
            flags |= myelon::transport::frame_flags::LAST;
        }
        let mut f = Frame::empty();
        f.set_meta(&FrameMeta {
            message_id: m,
            len: len as u32,
            flags,
            fragment_index: k as u32,
        });
        for (j, b) in f.data_mut()[..len].iter_mut().enumerate() {
            *b = message_byte(seed, m, from + j);
        }
        f
    }
    fn same(&self, o: &Self) -> bool {
        self.meta() == o.meta() && self.data() == o.data()
    }
    fn frame(&self) -> Option<(FrameMeta, &[u8])> {
        Some((self.meta(), self.data()))
    }
}
