//! Sessions: the names every process of a one-engine / N-runner deployment derives on its own
//! (portable segment names, [`MyelonTransportLayout`], and its file-system counterpart
//! [`MmapTransportLayout`]), and the coordination cursor that tells
//! which incarnation of each peer is current.
//!
//! Nothing here touches a ring's slots; the framed and typed layers never depend on it. The
//! topology helpers ([`crate::inference`]) are its main user.

pub mod coordination_cursor;
pub mod layout_names;
pub mod mmap_layout;
pub(crate) mod names;

#[cfg(all(feature = "shm", not(loom)))]
pub use coordination_cursor::ensure_coordination_cursor;
pub use coordination_cursor::{CoordinationCursor, CoordinationCursorError};
pub use layout_names::{
    compact_session_tag, coordination_cursor_name, validate_segment_name, MyelonLayoutError,
    MyelonTransportConfig, MyelonTransportLayout, MyelonWaitStrategy, RunnerMyelonTransportConfig,
    SegmentNameError, DEFAULT_MYELON_RESPONSE_DEPTH, DEFAULT_MYELON_RPC_DEPTH,
    DEFAULT_TRANSPORT_PREFIX, MAX_RUNNERS, SEGMENT_NAME_LIMIT_MACOS,
};
pub use mmap_layout::{MmapLayoutError, MmapTransportLayout};
pub use names::{portable_shm_segment_name, PORTABLE_SHM_SEGMENT_NAME_MAX_LEN};
