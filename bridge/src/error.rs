//! The bridge's errors.

use std::path::PathBuf;

/// Why a bridge could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The configuration file could not be read.
    #[error("reading config {path}: {source}")]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration is not valid TOML of the expected shape, or a value is out of range.
    #[error("invalid config: {0}")]
    Config(String),
    /// The local ring refused an operation.
    #[error("ring {ring}: {source}")]
    Ring {
        /// The ring's name.
        ring: String,
        /// The transport error.
        source: myelon::transport::TransportError,
    },
    /// zenoh refused an operation.
    #[error("zenoh {op}: {message}")]
    Zenoh {
        /// What was attempted.
        op: &'static str,
        /// zenoh's error, rendered (zenoh's error type is a boxed trait object).
        message: String,
    },
    /// The receiver's state file could not be read or written.
    #[error("state file {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The state file exists but is not one this bridge wrote.
    #[error("state file {path}: {why}")]
    StateCorrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: &'static str,
    },
}

impl BridgeError {
    pub(crate) fn zenoh(op: &'static str, e: impl std::fmt::Display) -> Self {
        BridgeError::Zenoh {
            op,
            message: e.to_string(),
        }
    }

    pub(crate) fn ring(ring: &str, source: myelon::transport::TransportError) -> Self {
        BridgeError::Ring {
            ring: ring.to_string(),
            source,
        }
    }
}
