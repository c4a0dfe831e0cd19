//! The phone crate's error type: every variant names the file or folder it is about.

use std::path::PathBuf;

/// Errors of building, saving, loading and changing a synthetic phone.
#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    /// Reading or writing a file of the cache or state folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Building one of the phone's SQLite databases failed.
    #[error("building database {path}: {source}")]
    Sqlite {
        /// The database being built.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
    /// The saved state of a phone could not be understood.
    #[error("phone state {path}: {message}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// `product_version` is not "major[.minor[.patch]]" with major ≥ 10.
    #[error("unsupported product version {0:?} (need e.g. \"17.5\", iOS 10 or later)")]
    Version(String),
    /// `PhoneSpec::epoch` is outside 2001-01-01 … 2100-01-01 (Unix seconds).
    #[error("phone epoch {0} is outside 2001…2100 (Unix seconds)")]
    Epoch(i64),
    /// A path given to `set_file`/`remove_file` is not a valid relative path.
    #[error("invalid path {domain}/{relative_path}: {reason}")]
    Path {
        /// Domain of the rejected path.
        domain: String,
        /// The rejected relative path.
        relative_path: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Exporting the keychain for a backup failed (encrypting an item with the backup keys).
    #[error("exporting the keychain: {0}")]
    Keychain(#[source] iosnap_format::Error),
}

impl PhoneError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PhoneError::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<PhoneError> for std::io::Error {
    fn from(e: PhoneError) -> Self {
        match e {
            PhoneError::Io { source, .. } => source,
            other => std::io::Error::other(other),
        }
    }
}
