//! The crate's error type: every variant names the thing it is about, so the CLI can print
//! one line that says what went wrong and where.

use std::path::PathBuf;

/// Result alias used by every public function of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading or exporting a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backup has no such database (the manifest has no row for it).
    #[error("this backup has no {dataset} database ({domain}/{relative_path})")]
    Absent {
        /// Human name of the dataset, e.g. "Messages".
        dataset: &'static str,
        /// Backup domain looked in.
        domain: String,
        /// Relative path looked for.
        relative_path: String,
    },

    /// The database exists but lacks a table this dataset cannot do without.
    #[error("{dataset}: unknown schema in {file}: {detail}")]
    UnknownSchema {
        /// Human name of the dataset.
        dataset: &'static str,
        /// The database file name (e.g. `sms.db`).
        file: String,
        /// What is missing.
        detail: String,
    },

    /// The backup library failed (locked backup, missing data file, decryption …).
    #[error("{0}")]
    Backup(#[from] iosnap_format::Error),

    /// SQLite failed on a dataset database.
    #[error("{file}: {source}")]
    Sqlite {
        /// The database file name.
        file: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },

    /// An I/O error on a named file (usually under the export folder).
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The requested export format does not exist for this dataset.
    #[error("{dataset}: unknown format {format:?} (choose one of: {choices})")]
    UnknownFormat {
        /// The dataset.
        dataset: &'static str,
        /// What was asked for.
        format: String,
        /// The formats that exist.
        choices: &'static str,
    },

    /// A per-app file export named an app the backup does not have (neither in Info.plist /
    /// Manifest.plist nor as an `AppDomain-<bundle id>` container).
    #[error("this backup has no app {bundle_id:?} (see `iosnap export apps` for the list)")]
    UnknownApp {
        /// The bundle id asked for.
        bundle_id: String,
    },

    /// A JSON encoding failure while exporting.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Attaches a path to `std::io::Error`s.
pub(crate) trait IoContext<T> {
    /// Wraps the error with the path it concerns.
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Attaches a database file name to rusqlite errors.
pub(crate) trait SqlContext<T> {
    /// Wraps the error with the database file name.
    fn db(self, file: &str) -> Result<T>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn db(self, file: &str) -> Result<T> {
        self.map_err(|source| Error::Sqlite {
            file: file.to_string(),
            source,
        })
    }
}
