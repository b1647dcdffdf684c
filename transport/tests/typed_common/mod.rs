//! Message types for the typed-transport tests: one per codec, with the same content, and a
//! deterministic generator and checker.
#![allow(dead_code, unused_imports)]

/// The content of message `seq`: its name and `len(seq)` values.
pub fn name_of(seq: u64) -> String {
    format!("msg-{seq}")
}

pub fn values_of(seq: u64) -> Vec<u32> {
    let len = (seq * 37 % 150) as u32;
    (0..len)
        .map(|i| (seq as u32).wrapping_mul(31).wrapping_add(i))
        .collect()
}

/// A value folded over everything a consumer checked (compared across processes).
pub fn digest(seq: u64, values: &[u32]) -> u64 {
    values.iter().fold(seq, |h, v| {
        h.wrapping_mul(0x100_0000_01b3).wrapping_add(u64::from(*v))
    })
}

// --- bincode ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub struct BMsg {
    pub seq: u64,
    pub name: String,
    pub values: Vec<u32>,
}

impl BMsg {
    pub fn new(seq: u64) -> Self {
        BMsg {
            seq,
            name: name_of(seq),
            values: values_of(seq),
        }
    }
}

// --- rkyv ------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct RMsg {
    pub seq: u64,
    pub name: String,
    pub values: Vec<u32>,
}

impl RMsg {
    pub fn new(seq: u64) -> Self {
        RMsg {
            seq,
            name: name_of(seq),
            values: values_of(seq),
        }
    }
}

// --- flatbuffers (what flatc would generate for
//     `table FMsg { seq: ulong; name: string; values: [uint]; }`, written by hand) ------------

#[derive(Debug, Clone, PartialEq)]
pub struct FMsg {
    pub seq: u64,
    pub name: String,
    pub values: Vec<u32>,
}

impl FMsg {
    pub fn new(seq: u64) -> Self {
        FMsg {
            seq,
            name: name_of(seq),
            values: values_of(seq),
        }
    }
}

#[cfg(feature = "flatbuffers")]
pub use fb::FMsgTable;

#[cfg(feature = "flatbuffers")]
mod fb {
    use super::FMsg;
    use myelon::codec::{CodecError, FlatbuffersMessage};
    use myelon::flatbuffers::{self, FlatBufferBuilder, Follow, Verifiable, Verifier, WIPOffset};

    /// The `FMsg` root table, read in place.
    #[derive(Clone, Copy)]
    pub struct FMsgTable<'a> {
        tab: flatbuffers::Table<'a>,
    }

    impl<'a> FMsgTable<'a> {
        const VT_SEQ: flatbuffers::VOffsetT = 4;
        const VT_NAME: flatbuffers::VOffsetT = 6;
        const VT_VALUES: flatbuffers::VOffsetT = 8;

        pub fn seq(&self) -> u64 {
            // SAFETY: the table was verified (`Verifiable` below checks this field's type and
            // bounds) before any accessor can be called.
            unsafe { self.tab.get::<u64>(Self::VT_SEQ, Some(0)) }.unwrap_or(0)
        }

        pub fn name(&self) -> Option<&'a str> {
            // SAFETY: as for `seq`: the string field was verified.
            unsafe {
                self.tab
                    .get::<flatbuffers::ForwardsUOffset<&str>>(Self::VT_NAME, None)
            }
        }

        pub fn values(&self) -> Option<flatbuffers::Vector<'a, u32>> {
            // SAFETY: as for `seq`: the vector field was verified.
            unsafe {
                self.tab
                    .get::<flatbuffers::ForwardsUOffset<flatbuffers::Vector<'a, u32>>>(
                        Self::VT_VALUES,
                        None,
                    )
            }
        }
    }

    impl<'a> Follow<'a> for FMsgTable<'a> {
        type Inner = FMsgTable<'a>;
        unsafe fn follow(buf: &'a [u8], loc: usize) -> Self::Inner {
            // SAFETY: forwarded contract: `loc` is a table position in `buf` (the verifier checked it).
            let tab = unsafe { flatbuffers::Table::new(buf, loc) };
            FMsgTable { tab }
        }
    }

    impl Verifiable for FMsgTable<'_> {
        fn run_verifier(
            v: &mut Verifier,
            pos: usize,
        ) -> Result<(), flatbuffers::InvalidFlatbuffer> {
            v.visit_table(pos)?
                .visit_field::<u64>("seq", Self::VT_SEQ, false)?
                .visit_field::<flatbuffers::ForwardsUOffset<&str>>("name", Self::VT_NAME, false)?
                .visit_field::<flatbuffers::ForwardsUOffset<flatbuffers::Vector<'_, u32>>>(
                    "values",
                    Self::VT_VALUES,
                    false,
                )?
                .finish();
            Ok(())
        }
    }

    impl FlatbuffersMessage for FMsg {
        type Root<'a> = FMsgTable<'a>;

        fn build<'b>(&self, fbb: &mut FlatBufferBuilder<'b>) -> WIPOffset<FMsgTable<'b>> {
            let name = fbb.create_string(&self.name);
            let values = fbb.create_vector(&self.values);
            let start = fbb.start_table();
            fbb.push_slot::<u64>(FMsgTable::VT_SEQ, self.seq, 0);
            fbb.push_slot_always(FMsgTable::VT_NAME, name);
            fbb.push_slot_always(FMsgTable::VT_VALUES, values);
            WIPOffset::new(fbb.end_table(start).value())
        }

        fn from_root(root: FMsgTable<'_>) -> Result<Self, CodecError> {
            Ok(FMsg {
                seq: root.seq(),
                name: root.name().unwrap_or_default().to_string(),
                values: root
                    .values()
                    .map(|v| v.iter().collect())
                    .unwrap_or_default(),
            })
        }
    }
}
