//! The bincode codec decoding arbitrary bytes: a value or a `CodecError`, never a panic or an
//! unbounded allocation (the decode limit bounds every length prefix).
#![no_main]

use libfuzzer_sys::fuzz_target;
use myelon::codec::{BincodeCodec, Codec};

#[derive(Debug, PartialEq, bincode::Encode, bincode::Decode)]
struct Msg {
    id: u64,
    name: String,
    values: Vec<u32>,
    nested: Vec<Vec<u8>>,
    tag: Option<u16>,
}

fuzz_target!(|input: &[u8]| {
    let mut codec = BincodeCodec::<{ 1 << 20 }>::new();
    if let Ok(m) = Codec::<Msg>::decode(&mut codec, input) {
        // A decoded value round-trips (bincode accepts non-minimal varints, so the bytes may
        // differ from the input).
        let mut out = Vec::new();
        codec.encode(&m, &mut out).expect("re-encode");
        assert_eq!(Codec::<Msg>::decode(&mut codec, &out).expect("decode again"), m);
    }
});
