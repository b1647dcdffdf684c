//! Layer 3 vs Layer 2: validated in-place access of one small rkyv message
//! (`ZeroCopyCodec::access`: bytecheck validation, no allocation) versus a full decode
//! (`Codec::decode`: the same validation, then deserialization into owned `String`/`Vec`s).
//! Both through the shipped `RkyvCodec`, on the same 16-byte-aligned bytes.

use myelon::codec::{Codec, RkyvCodec, ZeroCopyCodec};
use myelon::rkyv;
use rkyv::util::AlignedVec;
use std::hint::black_box;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(crate = myelon::rkyv)]
pub struct Small {
    pub id: u64,
    pub timestamp_ns: u64,
    pub name: String,
    pub values: Vec<u32>,
}

/// ns per access and ns per decode (best of five passes of `iters`), and the message size.
pub fn run(iters: u64) -> (f64, f64, usize) {
    let msg = Small {
        id: 42,
        timestamp_ns: 1_700_000_000_000,
        name: "sensor-0042/temperature".to_string(),
        values: (0..16).collect(),
    };
    let mut codec = RkyvCodec::new();
    let mut out = Vec::new();
    codec.encode(&msg, &mut out).expect("encode");
    let mut bytes = AlignedVec::<16>::new();
    bytes.extend_from_slice(&out);
    let access = best_of(5, iters, || {
        let v = ZeroCopyCodec::<Small>::access(&codec, black_box(&bytes)).expect("access");
        black_box(
            v.id.to_native()
                .wrapping_add(u64::from(v.values.len() as u32)),
        )
    });
    let decode = best_of(5, iters, || {
        let v: Small = codec.decode(black_box(&bytes)).expect("decode");
        black_box(v.id.wrapping_add(v.values.len() as u64))
    });
    (access, decode, bytes.len())
}

fn best_of(passes: usize, iters: u64, mut f: impl FnMut() -> u64) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..passes {
        let t0 = Instant::now();
        let mut sink = 0u64;
        for _ in 0..iters {
            sink = sink.wrapping_add(f());
        }
        black_box(sink);
        best = best.min(t0.elapsed().as_nanos() as f64 / iters as f64);
    }
    best
}
