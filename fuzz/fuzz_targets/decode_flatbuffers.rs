//! The flatbuffers codec decoding and accessing arbitrary bytes: the verifier (with limits)
//! runs first, so the outcome is a value or a `CodecError`, never a panic or an out-of-bounds
//! read. The message type is what `flatc` would generate for
//! `table Msg { id: ulong; name: string; values: [uint]; children: [Msg]; }`, written by hand.
#![no_main]

use flatbuffers::{FlatBufferBuilder, Follow, Verifiable, Verifier, VerifierOptions, WIPOffset};
use libfuzzer_sys::fuzz_target;
use myelon::codec::{Codec, CodecError, FlatbuffersCodec, FlatbuffersMessage, ZeroCopyCodec};

#[derive(Debug, PartialEq)]
struct Msg {
    id: u64,
    name: String,
    values: Vec<u32>,
    children: usize,
}

#[derive(Clone, Copy)]
struct MsgTable<'a> {
    tab: flatbuffers::Table<'a>,
}

type Children<'a> = flatbuffers::Vector<'a, flatbuffers::ForwardsUOffset<MsgTable<'a>>>;

impl<'a> MsgTable<'a> {
    const VT_ID: flatbuffers::VOffsetT = 4;
    const VT_NAME: flatbuffers::VOffsetT = 6;
    const VT_VALUES: flatbuffers::VOffsetT = 8;
    const VT_CHILDREN: flatbuffers::VOffsetT = 10;

    fn id(&self) -> u64 {
        // SAFETY: the table was verified before any accessor runs.
        unsafe { self.tab.get::<u64>(Self::VT_ID, Some(0)) }.unwrap_or(0)
    }
    fn name(&self) -> Option<&'a str> {
        // SAFETY: as for `id`.
        unsafe { self.tab.get::<flatbuffers::ForwardsUOffset<&str>>(Self::VT_NAME, None) }
    }
    fn values(&self) -> Option<flatbuffers::Vector<'a, u32>> {
        // SAFETY: as for `id`.
        unsafe {
            self.tab
                .get::<flatbuffers::ForwardsUOffset<flatbuffers::Vector<'a, u32>>>(Self::VT_VALUES, None)
        }
    }
    fn children(&self) -> Option<Children<'a>> {
        // SAFETY: as for `id`.
        unsafe { self.tab.get::<flatbuffers::ForwardsUOffset<Children<'a>>>(Self::VT_CHILDREN, None) }
    }
}

impl<'a> Follow<'a> for MsgTable<'a> {
    type Inner = MsgTable<'a>;
    unsafe fn follow(buf: &'a [u8], loc: usize) -> Self::Inner {
        // SAFETY: forwarded contract: `loc` is a verified table position in `buf`.
        let tab = unsafe { flatbuffers::Table::new(buf, loc) };
        MsgTable { tab }
    }
}

impl Verifiable for MsgTable<'_> {
    fn run_verifier(v: &mut Verifier, pos: usize) -> Result<(), flatbuffers::InvalidFlatbuffer> {
        v.visit_table(pos)?
            .visit_field::<u64>("id", Self::VT_ID, false)?
            .visit_field::<flatbuffers::ForwardsUOffset<&str>>("name", Self::VT_NAME, false)?
            .visit_field::<flatbuffers::ForwardsUOffset<flatbuffers::Vector<'_, u32>>>("values", Self::VT_VALUES, false)?
            .visit_field::<flatbuffers::ForwardsUOffset<Children<'_>>>("children", Self::VT_CHILDREN, false)?
            .finish();
        Ok(())
    }
}

impl FlatbuffersMessage for Msg {
    type Root<'a> = MsgTable<'a>;

    fn build<'b>(&self, fbb: &mut FlatBufferBuilder<'b>) -> WIPOffset<MsgTable<'b>> {
        let name = fbb.create_string(&self.name);
        let values = fbb.create_vector(&self.values);
        let start = fbb.start_table();
        fbb.push_slot::<u64>(MsgTable::VT_ID, self.id, 0);
        fbb.push_slot_always(MsgTable::VT_NAME, name);
        fbb.push_slot_always(MsgTable::VT_VALUES, values);
        WIPOffset::new(fbb.end_table(start).value())
    }

    fn from_root(root: MsgTable<'_>) -> Result<Self, CodecError> {
        Ok(Msg {
            id: root.id(),
            name: root.name().unwrap_or_default().to_string(),
            values: root.values().map(|v| v.iter().collect()).unwrap_or_default(),
            children: root.children().map(|c| c.len()).unwrap_or(0),
        })
    }
}

fuzz_target!(|input: &[u8]| {
    let opts = VerifierOptions {
        max_depth: 8,
        max_tables: 1000,
        max_apparent_size: 1 << 20,
        ..VerifierOptions::default()
    };
    let mut codec = FlatbuffersCodec::<Msg>::with_verifier_options(opts);
    let decoded = codec.decode(input);
    let accessed = codec.access(input).map(|t| {
        // Walk the verified graph one level down: in bounds by verification.
        t.children().map(|c| c.iter().map(|m| m.id()).fold(0u64, u64::wrapping_add))
    });
    assert_eq!(decoded.is_ok(), accessed.is_ok());
});
