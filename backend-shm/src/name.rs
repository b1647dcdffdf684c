//! POSIX shared-memory object names: validation and conversion.

use std::ffi::CString;
use std::path::PathBuf;

use crate::error::RegionError;

/// Longest accepted name in bytes, leading `/` included (the component under `/dev/shm` is then at
/// most 254 bytes, within `NAME_MAX`).
pub const MAX_OS_NAME_LEN: usize = 255;

/// Checks that `name` is a portable POSIX shared-memory name: it starts with `/`, is 2 to 255 bytes
/// long in total, holds no further `/` and no NUL, and is not `/.` or `/..`.
pub fn validate_os_name(name: &str) -> Result<(), RegionError> {
    match name_problem(name) {
        None => Ok(()),
        Some(reason) => Err(RegionError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
    }
}

fn name_problem(name: &str) -> Option<&'static str> {
    let Some(rest) = name.strip_prefix('/') else {
        return Some("must start with '/'");
    };
    if rest.is_empty() {
        return Some("must have at least one character after '/'");
    }
    if name.len() > MAX_OS_NAME_LEN {
        return Some("longer than 255 bytes");
    }
    if rest.contains('/') {
        return Some("must not contain '/' after the first character");
    }
    if rest.contains('\0') {
        return Some("must not contain NUL");
    }
    if rest == "." || rest == ".." {
        return Some("must not be \"/.\" or \"/..\"");
    }
    None
}

/// `name` as a C string, after validation.
pub(crate) fn to_cstring(name: &str) -> Result<CString, RegionError> {
    validate_os_name(name)?;
    CString::new(name).map_err(|_| RegionError::InvalidName {
        name: name.to_owned(),
        reason: "must not contain NUL",
    })
}

/// Where the object named `name` (already validated) appears in the file system, if this platform
/// exposes shared memory as files (Linux: `/dev/shm/<name without the slash>`).
pub(crate) fn fs_path(name: &str) -> Option<PathBuf> {
    if cfg!(target_os = "linux") {
        Some(PathBuf::from(SHM_DIR).join(name.trim_start_matches('/')))
    } else {
        None
    }
}

/// The directory glibc and musl create POSIX shared-memory objects in on Linux.
pub(crate) const SHM_DIR: &str = "/dev/shm";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        let longest = format!("/{}", "a".repeat(254));
        for name in [
            "/a",
            "/myelon-ring.0",
            "/...",
            "/a.b",
            "/ spaces ok",
            longest.as_str(),
        ] {
            assert!(validate_os_name(name).is_ok(), "{name:?} should be valid");
        }
    }

    #[test]
    fn invalid_names() {
        let too_long = format!("/{}", "a".repeat(255));
        let cases = [
            "",
            "a",
            "noslash",
            "/",
            "//",
            "/a/b",
            "/a/",
            "/.",
            "/..",
            "/a\0b",
            too_long.as_str(),
        ];
        for name in cases {
            match validate_os_name(name) {
                Err(RegionError::InvalidName { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{name:?}: expected InvalidName, got {other:?}"),
            }
        }
    }

    #[test]
    fn fs_path_strips_the_slash() {
        if cfg!(target_os = "linux") {
            assert_eq!(fs_path("/ring"), Some(PathBuf::from("/dev/shm/ring")));
        }
    }
}
