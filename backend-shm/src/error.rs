//! The one error type of the region layer, shared by `myelon-backend-shm` and `myelon-backend-mmap`.

use std::fmt;
use std::io;

/// Why creating, opening or removing a memory region failed.
///
/// `name` is the POSIX shared-memory name (`/foo`) for shm segments and the displayed path for
/// mapped files.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegionError {
    /// An exclusive create found something already at the name (`EEXIST`, or a fresh object could
    /// not be claimed after several attempts).
    AlreadyExists { name: String },
    /// Nothing is at the name (`ENOENT`).
    NotFound { name: String },
    /// The backing store is full while allocating (`ENOSPC`, `EDQUOT`, `ENOMEM`, `EFBIG`). Nothing is
    /// left behind at the name.
    NoSpace { name: String, requested: usize },
    /// The name is not acceptable to this layer or to the OS.
    InvalidName { name: String, reason: &'static str },
    /// The requested length cannot back a region (zero, or too large for `off_t`/`isize`).
    InvalidLength {
        name: String,
        len: usize,
        reason: &'static str,
    },
    /// The caller may not open or create the object (`EACCES`, `EPERM`).
    PermissionDenied { name: String },
    /// The opened object has length 0: its creator has not allocated it yet, or it is not ours.
    Empty { name: String },
    /// `O_NOFOLLOW` refused a symbolic link at the name (`ELOOP`).
    Symlink { name: String },
    /// The object at the name was not made by this protocol (it carries none of the expected
    /// marks; see [`ownership`](crate::ownership)): it is never removed.
    Foreign { name: String },
    /// A creator asked for permission bits this layer refuses (see
    /// [`ownership::check_final_mode`](crate::ownership::check_final_mode)).
    InvalidMode {
        name: String,
        mode: u32,
        reason: &'static str,
    },
    /// Any other OS error, with the operation that failed.
    Io {
        op: &'static str,
        name: String,
        source: io::Error,
    },
}

impl RegionError {
    /// Classifies an OS error from operation `op` on `name` into the specific variants
    /// (`EEXIST`, `ENOENT`, `EACCES`/`EPERM`, `ELOOP`, `ENAMETOOLONG`), or `Io` otherwise.
    ///
    /// Space errors are *not* mapped to [`RegionError::NoSpace`] here, because that variant carries
    /// the requested length; use [`RegionError::from_alloc_io`] on allocation paths.
    pub fn from_io(op: &'static str, name: &str, source: io::Error) -> Self {
        let name = name.to_owned();
        match source.raw_os_error() {
            Some(libc::EEXIST) => Self::AlreadyExists { name },
            Some(libc::ENOENT) => Self::NotFound { name },
            Some(libc::EACCES | libc::EPERM) => Self::PermissionDenied { name },
            Some(libc::ELOOP) => Self::Symlink { name },
            Some(libc::ENAMETOOLONG) => Self::InvalidName {
                name,
                reason: "name too long for the operating system",
            },
            _ => Self::Io { op, name, source },
        }
    }

    /// Like [`RegionError::from_io`], but `ENOSPC`, `EDQUOT`, `ENOMEM` and `EFBIG` become
    /// [`RegionError::NoSpace`] with `requested` bytes.
    pub fn from_alloc_io(
        op: &'static str,
        name: &str,
        requested: usize,
        source: io::Error,
    ) -> Self {
        if is_no_space(source.raw_os_error()) {
            return Self::NoSpace {
                name: name.to_owned(),
                requested,
            };
        }
        Self::from_io(op, name, source)
    }

    /// The name or path the failed operation was about.
    pub fn name(&self) -> &str {
        match self {
            Self::AlreadyExists { name }
            | Self::NotFound { name }
            | Self::NoSpace { name, .. }
            | Self::InvalidName { name, .. }
            | Self::InvalidLength { name, .. }
            | Self::PermissionDenied { name }
            | Self::Empty { name }
            | Self::Symlink { name }
            | Self::Foreign { name }
            | Self::InvalidMode { name, .. }
            | Self::Io { name, .. } => name,
        }
    }
}

/// True for the errnos that mean "the backing store cannot hold this many bytes".
pub(crate) fn is_no_space(errno: Option<i32>) -> bool {
    matches!(
        errno,
        Some(libc::ENOSPC | libc::EDQUOT | libc::ENOMEM | libc::EFBIG)
    )
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyExists { name } => write!(f, "region {name:?} already exists"),
            Self::NotFound { name } => write!(f, "region {name:?} not found"),
            Self::NoSpace { name, requested } => {
                write!(
                    f,
                    "no space to allocate {requested} bytes for region {name:?}"
                )
            }
            Self::InvalidName { name, reason } => {
                write!(f, "invalid region name {name:?}: {reason}")
            }
            Self::InvalidLength { name, len, reason } => {
                write!(f, "invalid length {len} for region {name:?}: {reason}")
            }
            Self::PermissionDenied { name } => write!(f, "permission denied for region {name:?}"),
            Self::Empty { name } => write!(f, "region {name:?} has length 0"),
            Self::Symlink { name } => write!(
                f,
                "region {name:?} is a symbolic link; refusing to follow it"
            ),
            Self::Foreign { name } => write!(
                f,
                "region {name:?} is held by an object myelon did not create; left intact"
            ),
            Self::InvalidMode { name, mode, reason } => {
                write!(f, "mode {mode:#o} refused for region {name:?}: {reason}")
            }
            Self::Io { op, name, source } => write!(f, "{op} failed for region {name:?}: {source}"),
        }
    }
}

impl std::error::Error for RegionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_map_to_variants() {
        let cases: &[(i32, &str)] = &[
            (libc::EEXIST, "AlreadyExists"),
            (libc::ENOENT, "NotFound"),
            (libc::EACCES, "PermissionDenied"),
            (libc::EPERM, "PermissionDenied"),
            (libc::ELOOP, "Symlink"),
            (libc::ENAMETOOLONG, "InvalidName"),
            (libc::ENOSPC, "Io"),
            (libc::EIO, "Io"),
        ];
        for &(errno, want) in cases {
            let err = RegionError::from_io("op", "/x", io::Error::from_raw_os_error(errno));
            let got = format!("{err:?}");
            assert!(
                got.starts_with(want),
                "errno {errno}: got {got}, want {want}"
            );
        }
    }

    #[test]
    fn alloc_errnos_map_to_no_space() {
        for errno in [libc::ENOSPC, libc::EDQUOT, libc::ENOMEM, libc::EFBIG] {
            let err =
                RegionError::from_alloc_io("op", "/x", 7, io::Error::from_raw_os_error(errno));
            assert!(
                matches!(err, RegionError::NoSpace { requested: 7, .. }),
                "errno {errno}: {err:?}"
            );
        }
        let err =
            RegionError::from_alloc_io("op", "/x", 7, io::Error::from_raw_os_error(libc::EEXIST));
        assert!(matches!(err, RegionError::AlreadyExists { .. }), "{err:?}");
    }

    #[test]
    fn io_error_exposes_source() {
        use std::error::Error as _;
        let err = RegionError::from_io("mmap", "/x", io::Error::from_raw_os_error(libc::EIO));
        assert!(err.source().is_some());
        assert!(err.to_string().contains("mmap"));
        assert_eq!(err.name(), "/x");
        assert!(RegionError::NotFound { name: "/x".into() }
            .source()
            .is_none());
    }
}
