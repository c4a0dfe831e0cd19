//! Errors of the format crate.
//!
//! # Policy
//!
//! * Every `pub fn` in this crate returns [`Result<T>`] with this crate's [`Error`].
//! * An error carries the thing it concerns as data (a path, a domain and relative path, a tag),
//!   so the CLI can print one line that says *what* went wrong and *where*.
//! * Bytes from a backup folder are untrusted: a parser never panics on them, it returns
//!   [`Error::Corrupt`] (or a more specific variant) naming the file and the problem.
//! * A wrong password is always [`Error::WrongPassword`], detected by the RFC 3394 integrity
//!   check, never garbage output.
//! * `anyhow` is not used here; it belongs to the binary.

use std::path::{Path, PathBuf};

/// Result alias used by every public function of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading or writing a backup folder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a named file or folder.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder the operation was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The folder is not a backup at all (no Manifest.db, Manifest.mbdb, Manifest.plist …).
    #[error("{path}: not an iOS backup folder ({reason})")]
    NotABackup {
        /// The folder that was opened.
        path: PathBuf,
        /// What was looked for and not found.
        reason: String,
    },

    /// A backup in a format this crate knows but does not read (e.g. `Manifest.mbdx`, iOS 3–4).
    #[error("{path}: unsupported backup format: {what}")]
    Unsupported {
        /// The file that showed the format.
        path: PathBuf,
        /// Which format it is.
        what: String,
    },

    /// A file of the backup is malformed: truncated, garbage, wrong types, lying lengths.
    #[error("{path}: corrupt {what}: {detail}")]
    Corrupt {
        /// The file (or pseudo-path such as `Manifest.plist:BackupKeyBag`) that is corrupt.
        path: PathBuf,
        /// Which artifact it is (e.g. "keybag", "MBFile", "plist").
        what: &'static str,
        /// What exactly is wrong.
        detail: String,
    },

    /// A plist could not be parsed.
    #[error("{path}: invalid plist: {source}")]
    Plist {
        /// The plist file (or blob) that failed.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: plist::Error,
    },

    /// SQLite failed on a manifest database.
    #[error("{path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },

    /// The backup is encrypted and no password was given.
    #[error("the backup is encrypted: a password is needed")]
    PasswordRequired,

    /// The password does not unlock the keybag (RFC 3394 integrity check failed).
    #[error("wrong backup password")]
    WrongPassword,

    /// A key could not be unwrapped although the keybag was unlocked.
    #[error("{what}: key unwrap failed (class {class}): the backup is damaged")]
    KeyUnwrap {
        /// What the key was for (a file path, "Manifest.db" …).
        what: String,
        /// Protection class of the wrapping key.
        class: u32,
    },

    /// A file's data could not be decrypted (bad length, bad padding).
    #[error("{path}: decryption failed: {detail}")]
    Decrypt {
        /// The data file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },

    /// No entry with that domain and relative path exists in the manifest.
    #[error("no such file in the backup: {domain}/{relative_path}")]
    NotFound {
        /// Domain asked for.
        domain: String,
        /// Relative path asked for.
        relative_path: String,
    },

    /// An entry exists but is not a regular file (it has no data to read).
    #[error("{domain}/{relative_path} is not a regular file")]
    NotAFile {
        /// Domain of the entry.
        domain: String,
        /// Relative path of the entry.
        relative_path: String,
    },

    /// The keychain was asked of a backup that is not encrypted. iOS protects a plain backup's
    /// keychain with the phone's hardware key (or leaves it out), so passwords and Wi-Fi
    /// networks are only recoverable from an encrypted backup.
    #[error(
        "{path}: this backup is not encrypted, so it holds no readable keychain: passwords and \
         Wi-Fi networks are only in encrypted backups (turn on backup encryption and back up again)"
    )]
    KeychainNeedsEncryption {
        /// The backup folder.
        path: PathBuf,
    },

    /// An invalid argument given by the caller (a bad glob, a bad option value).
    #[error("{0}")]
    InvalidArgument(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A corrupt-artifact error.
    pub fn corrupt(path: impl AsRef<Path>, what: &'static str, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.as_ref().to_path_buf(),
            what,
            detail: detail.into(),
        }
    }

    /// Wraps a plist error with the file it came from.
    pub fn plist(path: impl AsRef<Path>, source: plist::Error) -> Self {
        Error::Plist {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// Wraps a SQLite error with the database it came from.
    pub fn sqlite(path: impl AsRef<Path>, source: rusqlite::Error) -> Self {
        Error::Sqlite {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

/// Adds a path to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    /// Maps the error to [`Error::Io`] naming `path`.
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
