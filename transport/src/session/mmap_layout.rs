//! The file-system counterpart of [`MyelonTransportLayout`]: where the ring files of one
//! mmap-backed session live.
//!
//! A session is a directory `root/<session>` holding one file per shared object:
//!
//! | file | what |
//! |---|---|
//! | `root/<session>/<session>-rpc` | dispatch ring (engine → every runner) |
//! | `root/<session>/<session>-rsp<r>` | response ring of runner `r` |
//! | `root/<session>/<session>-cur` | coordination cursor |
//!
//! For a session derived from a [`MyelonTransportLayout`] ([`MmapTransportLayout::from_transport_layout`],
//! [`MyelonTransportLayout::mmap_layout`]) `<session>` is `<prefix>-<tag>`, so every file name is
//! the shared-memory segment name of the same object without its leading `/`.
//!
//! A myelon ring is **one** file (header, consumer table with every cursor, slots), so there are
//! no per-cursor or per-consumer files: the reference's per-cursor paths have no counterpart
//! here, and a consumer needs nothing but the ring's path.
//!
//! Session names are validated like segment labels are: not empty, no `/`, `\`, NUL or `..`
//! ([`MmapLayoutError::InvalidSession`]). [`MmapTransportLayout::ensure_directories`] creates the
//! root and the session directory with mode 0700 and refuses a symlink or a non-directory in
//! their place; the ring files themselves are created exclusively, mode 0600, by the mmap
//! backend.

use super::layout_names::{MyelonTransportLayout, MAX_RUNNERS};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why an mmap session layout is refused or its directories cannot be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum MmapLayoutError {
    /// The session name is empty or is not one safe path component.
    InvalidSession {
        /// The name.
        session: String,
        /// Why.
        reason: &'static str,
    },
    /// A runner count outside `1..=MAX_RUNNERS`.
    RunnerCount {
        /// The count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A symlink where a directory of the layout should be (never followed).
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// Something other than a directory where a directory of the layout should be.
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The file system refused to inspect or create a directory.
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for MmapLayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidSession { session, reason } => {
                write!(f, "invalid mmap session name {session:?}: {reason}")
            }
            Self::RunnerCount { count, max } => {
                write!(f, "runner count {count} is outside 1..={max}")
            }
            Self::Symlink { path } => {
                write!(f, "{} is a symlink; refusing to follow it", path.display())
            }
            Self::NotADirectory { path } => write!(f, "{} is not a directory", path.display()),
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for MmapLayoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Stable file layout for one mmap-backed transport instance: the paths of every ring file of a
/// session (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MmapTransportLayout {
    root: PathBuf,
    session: String,
    dir: PathBuf,
    dispatch: PathBuf,
    responses: Vec<PathBuf>,
    coordination: PathBuf,
}

impl MmapTransportLayout {
    /// The layout of session `session` with `runners` runners under directory `root`.
    pub fn new(
        root: impl Into<PathBuf>,
        session: &str,
        runners: usize,
    ) -> Result<Self, MmapLayoutError> {
        validate_session(session)?;
        if runners == 0 || runners > MAX_RUNNERS {
            return Err(MmapLayoutError::RunnerCount {
                count: runners,
                max: MAX_RUNNERS,
            });
        }
        let root = root.into();
        let dir = root.join(session);
        let file = |role: &str| dir.join(format!("{session}-{role}"));
        Ok(MmapTransportLayout {
            dispatch: file("rpc"),
            responses: (0..runners).map(|r| file(&format!("rsp{r}"))).collect(),
            coordination: file("cur"),
            session: session.to_string(),
            dir,
            root,
        })
    }

    /// The mmap layout of the shared-memory session `layout` under `root`: session
    /// `<prefix>-<tag>`, each file named like its segment without the leading `/`.
    pub fn from_transport_layout(root: impl Into<PathBuf>, layout: &MyelonTransportLayout) -> Self {
        let dispatch = layout.dispatch_segment().trim_start_matches('/');
        let session = dispatch.strip_suffix("-rpc").unwrap_or(dispatch);
        // A `MyelonTransportLayout` only holds validated portable names ([A-Za-z0-9._-], no
        // `..` run is possible in `<prefix>-<tag>`), and at most MAX_RUNNERS runners.
        Self::new(root, session, layout.runners())
            .expect("a MyelonTransportLayout's names are valid session names")
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The session name.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// The session directory, `root/<session>`: the directory of an
    /// [`MmapBackend`](crate::backend::MmapBackend) that reaches every file of the session by
    /// its [`file_name`](Self::file_name).
    pub fn session_dir(&self) -> &Path {
        &self.dir
    }

    /// Number of runners.
    pub fn runners(&self) -> usize {
        self.responses.len()
    }

    /// The dispatch ring's file (engine → runners).
    pub fn dispatch_path(&self) -> &Path {
        &self.dispatch
    }

    /// The response ring file of runner `rank` (runner → engine), `None` if out of range.
    pub fn response_path(&self, rank: usize) -> Option<&Path> {
        self.responses.get(rank).map(PathBuf::as_path)
    }

    /// The coordination cursor's file.
    pub fn coordination_path(&self) -> &Path {
        &self.coordination
    }

    /// Every file of the session: dispatch, responses by rank, coordination cursor.
    pub fn all_paths(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(self.dispatch.as_path())
            .chain(self.responses.iter().map(PathBuf::as_path))
            .chain(std::iter::once(self.coordination.as_path()))
    }

    /// The file name of `path` (one of [`all_paths`](Self::all_paths)) inside the session
    /// directory: the ring name an `MmapBackend` on [`session_dir`](Self::session_dir) takes.
    pub fn file_name(path: &Path) -> Option<&str> {
        path.file_name().and_then(|n| n.to_str())
    }

    /// Creates the root (with its missing parents) and the session directory, each with mode
    /// 0700; an existing directory is kept as it is. A symlink or a non-directory at either path
    /// is refused, never followed. Directories above the root are the caller's to trust.
    pub fn ensure_directories(&self) -> Result<(), MmapLayoutError> {
        ensure_dir(&self.root, true)?;
        ensure_dir(&self.dir, false)
    }
}

impl MyelonTransportLayout {
    /// This session's [`MmapTransportLayout`] under `root` (see
    /// [`MmapTransportLayout::from_transport_layout`]).
    pub fn mmap_layout(&self, root: impl Into<PathBuf>) -> MmapTransportLayout {
        MmapTransportLayout::from_transport_layout(root, self)
    }
}

fn validate_session(session: &str) -> Result<(), MmapLayoutError> {
    let reason = if session.is_empty() {
        "empty"
    } else if session.contains('/') || session.contains('\\') {
        "a session name is one path component: no '/' or '\\'"
    } else if session.contains('\0') {
        "contains NUL"
    } else if session.contains("..") {
        "contains '..'"
    } else if session == "." {
        "'.' is not a session name"
    } else {
        return Ok(());
    };
    Err(MmapLayoutError::InvalidSession {
        session: session.to_string(),
        reason,
    })
}

/// Makes `path` a directory (mode 0700) unless it is one; never follows a symlink at `path`.
fn ensure_dir(path: &Path, parents: bool) -> Result<(), MmapLayoutError> {
    use std::os::unix::fs::DirBuilderExt;
    let io_err = |source| MmapLayoutError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) => return check_dir(path, &m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    match std::fs::DirBuilder::new()
        .recursive(parents)
        .mode(0o700)
        .create(path)
    {
        Ok(()) => {}
        // Another process made it meanwhile: check what it made.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(e)),
    }
    let m = std::fs::symlink_metadata(path).map_err(io_err)?;
    check_dir(path, &m)
}

fn check_dir(path: &Path, m: &std::fs::Metadata) -> Result<(), MmapLayoutError> {
    if m.file_type().is_symlink() {
        Err(MmapLayoutError::Symlink {
            path: path.to_path_buf(),
        })
    } else if !m.is_dir() {
        Err(MmapLayoutError::NotADirectory {
            path: path.to_path_buf(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names() {
        let bad = ["", "a/b", "a\\b", "a\0b", "..", "a..b", "."];
        for s in bad {
            match MmapTransportLayout::new("/r", s, 1) {
                Err(MmapLayoutError::InvalidSession { session, .. }) => assert_eq!(session, s),
                other => panic!("{s:?}: {other:?}"),
            }
        }
        for n in [0, MAX_RUNNERS + 1] {
            assert!(matches!(
                MmapTransportLayout::new("/r", "s", n),
                Err(MmapLayoutError::RunnerCount { .. })
            ));
        }
    }

    #[test]
    fn paths() {
        let l = MmapTransportLayout::new("/r", "s1", 2).unwrap();
        let all: Vec<_> = l.all_paths().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(all, ["/r/s1/s1-rpc", "/r/s1/s1-rsp0", "/r/s1/s1-rsp1", "/r/s1/s1-cur"]);
        assert_eq!(l.response_path(2), None);
        assert_eq!(MmapTransportLayout::file_name(l.dispatch_path()), Some("s1-rpc"));
    }

    #[test]
    fn mirrors_the_segment_names() {
        let t = MyelonTransportLayout::new("llama prod", "myelon", 3).unwrap();
        let m = t.mmap_layout("/var/run/rings");
        for (seg, path) in t.all_segments().zip(m.all_paths()) {
            assert_eq!(MmapTransportLayout::file_name(path), Some(&seg[1..]));
            assert_eq!(path.parent(), Some(m.session_dir()));
        }
        assert_eq!(m.runners(), 3);
    }
}
