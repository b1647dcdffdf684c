//! The rkyv codec decoding and accessing arbitrary bytes (copied to 16-byte alignment, as they
//! are in a slot or the reassembly buffer): a value or a `CodecError` — bytecheck validates every
//! pointer and length first — never a panic or undefined behaviour.
#![no_main]

use libfuzzer_sys::fuzz_target;
use myelon::codec::{Codec, RkyvCodec, ZeroCopyCodec};
use rkyv::util::AlignedVec;

#[derive(Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct Msg {
    id: u64,
    name: String,
    values: Vec<u32>,
    nested: Vec<Vec<u8>>,
    tag: Option<u16>,
}

fuzz_target!(|input: &[u8]| {
    let mut bytes = AlignedVec::<16>::new();
    bytes.extend_from_slice(input);
    let mut codec = RkyvCodec::new();
    let decoded = Codec::<Msg>::decode(&mut codec, &bytes);
    let accessed = ZeroCopyCodec::<Msg>::access(&codec, &bytes);
    assert_eq!(decoded.is_ok(), accessed.is_ok());
    if let (Ok(m), Ok(a)) = (decoded, accessed) {
        assert_eq!(m.id, a.id.to_native());
        assert_eq!(m.name.as_str(), a.name.as_str());
        assert_eq!(m.values.len(), a.values.len());
    }
    // Misaligned input: decode copies, access refuses; neither panics.
    if input.len() > 1 {
        let _ = Codec::<Msg>::decode(&mut codec, &bytes[1..]);
        let _ = ZeroCopyCodec::<Msg>::access(&codec, &bytes[1..]);
    }
});
