//! The receiving bridge's accounting kept across its restarts.
//!
//! A small file of fixed slots, one per source:
//!
//! ```text
//! 0        8      16        24     32           40          48               56         64
//! | source | next | pending | gaps | duplicates | delivered | pending_cursor | reserved |
//! ```
//! (little-endian u64s, after an 8-byte magic). Before a message is published into the ring,
//! its sequence is written as `pending` with the ring's producer cursor as `pending_cursor` (the
//! intent); after, the slot is rewritten with the new `next` and `pending = NONE` (the record).
//! Both are positioned writes to the page cache: they survive the bridge being killed (not the
//! machine crashing: there is no fsync).
//!
//! A bridge killed between the two leaves a `pending` message: it may or may not be in the
//! ring. The restarted bridge settles that before it replaces the ring: the dead incarnation's
//! segment is still there, and its producer cursor past `pending_cursor` means the message was
//! committed. Only if that segment is gone (removed by hand) is the message counted as
//! `uncertain` (and as missing: the accounting then errs by at most one message per source and
//! restart, and says so).

use crate::accounting::SourceState;
use crate::error::BridgeError;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"MYBRST01";
const SLOT: usize = 64;
const NONE: u64 = u64::MAX;

/// What the file says of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedSource {
    /// The source id.
    pub source: u64,
    /// Sequence expected next.
    pub next: u64,
    /// A sequence being published when the previous incarnation stopped, if any.
    pub pending: Option<u64>,
    /// Messages counted missing so far.
    pub gaps: u64,
    /// Messages received again so far.
    pub duplicates: u64,
    /// Messages published into the ring so far.
    pub delivered: u64,
    /// The ring's producer cursor when `pending` was about to be published.
    pub pending_cursor: i64,
}

/// The open state file and the slot of each source.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    file: File,
    slots: Vec<u64>,
}

impl StateFile {
    /// Opens (creating if missing) the file and returns it with what it holds.
    pub fn open(path: &Path) -> Result<(StateFile, Vec<SavedSource>), BridgeError> {
        let io = |source| BridgeError::State {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        if bytes.is_empty() {
            file.write_all_at(MAGIC, 0).map_err(io)?;
            bytes.extend_from_slice(MAGIC);
        }
        let corrupt = |why| BridgeError::StateCorrupt {
            path: path.to_path_buf(),
            why,
        };
        let body = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| corrupt("not a myelon-bridge state file (bad magic)"))?;
        // A slot cut short by a kill during its first write is dropped (its source restarts
        // from 0, counted as a gap if it was not at 0).
        let saved: Vec<SavedSource> = body.chunks_exact(SLOT).map(decode).collect();
        let state = StateFile {
            path: path.to_path_buf(),
            file,
            slots: saved.iter().map(|s| s.source).collect(),
        };
        Ok((state, saved))
    }

    fn slot_of(&mut self, source: u64) -> u64 {
        let i = match self.slots.iter().position(|&s| s == source) {
            Some(i) => i,
            None => {
                self.slots.push(source);
                self.slots.len() - 1
            }
        };
        (MAGIC.len() + i * SLOT) as u64
    }

    fn io(&self, source: std::io::Error) -> BridgeError {
        BridgeError::State {
            path: self.path.clone(),
            source,
        }
    }

    /// Writes the intent: `seq` of `source` is about to be published (the rest of the slot as
    /// in `current`).
    pub fn intent(
        &mut self,
        current: &SavedSource,
        seq: u64,
        cursor: i64,
    ) -> Result<(), BridgeError> {
        let at = self.slot_of(current.source);
        let slot = encode(&SavedSource {
            pending: Some(seq),
            pending_cursor: cursor,
            ..*current
        });
        self.file.write_all_at(&slot, at).map_err(|e| self.io(e))
    }

    /// Writes the record: the slot as `now` (no pending message).
    pub fn record(&mut self, now: &SavedSource) -> Result<(), BridgeError> {
        let at = self.slot_of(now.source);
        let slot = encode(&SavedSource {
            pending: None,
            ..*now
        });
        self.file.write_all_at(&slot, at).map_err(|e| self.io(e))
    }
}

impl SavedSource {
    /// A source never seen.
    pub fn fresh(source: u64) -> Self {
        SavedSource {
            source,
            next: 0,
            pending: None,
            gaps: 0,
            duplicates: 0,
            delivered: 0,
            pending_cursor: -1,
        }
    }

    /// The tracker state this resumes from.
    pub fn tracker_state(&self) -> SourceState {
        SourceState { next: self.next }
    }
}

fn encode(s: &SavedSource) -> [u8; SLOT] {
    let mut out = [0u8; SLOT];
    let words = [
        s.source,
        s.next,
        s.pending.unwrap_or(NONE),
        s.gaps,
        s.duplicates,
        s.delivered,
        s.pending_cursor as u64,
        0,
    ];
    for (chunk, w) in out.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    out
}

fn decode(slot: &[u8]) -> SavedSource {
    let mut w = [0u64; SLOT / 8];
    for (v, chunk) in w.iter_mut().zip(slot.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *v = u64::from_le_bytes(b);
    }
    SavedSource {
        source: w[0],
        next: w[1],
        pending: (w[2] != NONE).then_some(w[2]),
        gaps: w[3],
        duplicates: w[4],
        delivered: w[5],
        pending_cursor: w[6] as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intent_and_record_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("myelon-bridge-state-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let (mut f, saved) = StateFile::open(&dir).expect("create");
        assert!(saved.is_empty());
        let mut a = SavedSource::fresh(7);
        f.intent(&a, 0, -1).expect("intent");
        a.next = 1;
        a.delivered = 1;
        f.record(&a).expect("record");
        let b = SavedSource::fresh(9);
        f.intent(&b, 4, 17).expect("intent b"); // killed before its record
        drop(f);
        let (_, saved) = StateFile::open(&dir).expect("reopen");
        let b_pending = SavedSource {
            pending: Some(4),
            pending_cursor: 17,
            ..b
        };
        assert_eq!(saved, vec![a, b_pending]);
        std::fs::write(&dir, b"garbage!").expect("overwrite");
        assert!(matches!(
            StateFile::open(&dir),
            Err(BridgeError::StateCorrupt { .. })
        ));
        let _ = std::fs::remove_file(&dir);
    }
}
