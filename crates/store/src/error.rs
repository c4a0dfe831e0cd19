//! Errors of the snapshot library. Each variant carries the path or the name it is about, so
//! the CLI can say what went wrong and where without extra context.

use std::io;
use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in the library on disk.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed on `path`.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder the operation was about.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The SQLite catalog could not be read or written.
    #[error("catalog {path}: {source}")]
    Catalog {
        /// The catalog file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A settings or metadata TOML file is malformed.
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// What the parser or serializer said.
        message: String,
    },
    /// The backup-folder library reported a problem (opening, verifying a snapshot).
    #[error(transparent)]
    Format(#[from] iosnap_format::Error),
    /// A snapshot reference matched nothing.
    #[error("no snapshot matches {0:?}")]
    NoSuchSnapshot(String),
    /// A snapshot reference matched several snapshots.
    #[error("{reference:?} is ambiguous: it matches {candidates:?}")]
    Ambiguous {
        /// What the user typed.
        reference: String,
        /// What it matched.
        candidates: Vec<String>,
    },
    /// A device has no snapshots where one is needed.
    #[error("device {0} has no snapshots")]
    NoSnapshots(String),
    /// Refused: the snapshot is locked.
    #[error("snapshot {0} is locked; unlock it first")]
    Locked(String),
    /// Another iosnap process holds the device's lock.
    #[error("{0}: another iosnap process is working on this device")]
    Busy(PathBuf),
    /// Something the user gave is not acceptable (a name, a setting, a destination).
    #[error("{0}")]
    Invalid(String),
}

/// Attaches a path to `io::Result`s.
pub(crate) trait IoContext<T> {
    /// Maps an I/O error to [`Error::Io`] about `path`.
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}

impl<T> IoContext<T> for std::result::Result<T, rustix::io::Errno> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::Io {
            path: path.into(),
            source: e.into(),
        })
    }
}
