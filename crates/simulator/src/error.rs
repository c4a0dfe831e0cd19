//! The simulator's error type: start-up and state problems carry the path they concern.

use std::path::{Path, PathBuf};

/// Why the simulator could not start or persist its state.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a state file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A state file exists but cannot be used.
    #[error("{path}: {reason}")]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Binding a listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address or socket path.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is unusable (e.g. an unknown fault, no listener).
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    /// TLS setup failed.
    #[error("TLS setup for device {udid}: {reason}")]
    Tls {
        /// The device.
        udid: String,
        /// The rustls error text.
        reason: String,
    },
    /// The synthetic phone failed.
    #[error("phone state in {path}: {source}")]
    Phone {
        /// The state directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// An I/O error at `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The simulator's result type.
pub type Result<T> = std::result::Result<T, Error>;
