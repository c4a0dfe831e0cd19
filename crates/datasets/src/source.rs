//! [`Source`]: one dataset database taken out of a backup into a private temporary file.

use std::io::Write;
use std::path::{Path, PathBuf};

use iosnap_format::Backup;
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, IoContext, Result, SqlContext};
use crate::schema::Schema;

/// Where a dataset's database lives in a backup, and what people call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbLocation {
    /// Human name used in messages ("Messages", "Contacts" …).
    pub dataset: &'static str,
    /// Backup domain, e.g. `HomeDomain`.
    pub domain: &'static str,
    /// Path inside the domain, e.g. `Library/SMS/sms.db`.
    pub relative_path: &'static str,
}

impl DbLocation {
    /// The file name (last path component), used in error messages.
    pub fn file_name(&self) -> &'static str {
        self.relative_path
            .rsplit('/')
            .next()
            .unwrap_or(self.relative_path)
    }
}

/// One database, readable with SQL: a decrypted private copy of a backup's file (SQLite needs a
/// real file; the backup may be encrypted), its schema probed once. The copy and its folder
/// (mode 0700) are deleted when the `Source` is dropped.
pub struct Source {
    conn: Connection,
    schema: Schema,
    file: String,
    dataset: &'static str,
    path: PathBuf,
    _temp: Option<iosnap_format::scratch::ScratchDir>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("dataset", &self.dataset)
            .field("file", &self.file)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A private temporary folder (0700) for decrypted copies, removed on drop and — through
/// [`iosnap_format::scratch`] — also when the process is stopped by a signal or killed.
fn private_temp_dir() -> Result<iosnap_format::scratch::ScratchDir> {
    Ok(iosnap_format::scratch::new_dir()?)
}

/// Copies one backup entry (decrypting it) to `dest`, created 0600.
fn copy_entry(backup: &Backup, entry: &iosnap_format::Entry, dest: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut input = backup.open_file(entry)?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .at(dest)?;
    std::io::copy(&mut input, &mut out).at(dest)?;
    out.flush().at(dest)?;
    Ok(())
}

impl Source {
    /// Takes `loc` out of `backup` (decrypting it if needed, with its `-wal` and `-shm`
    /// companions when the backup has them) and opens it. Errors: [`Error::Absent`] when the
    /// manifest has no such file, [`Error::Backup`] when it cannot be read.
    pub fn open(backup: &Backup, loc: DbLocation) -> Result<Source> {
        let entry = match backup.find(loc.domain, loc.relative_path) {
            Ok(e) if e.has_data() => e,
            Ok(_) | Err(iosnap_format::Error::NotFound { .. }) => {
                return Err(Error::Absent {
                    dataset: loc.dataset,
                    domain: loc.domain.to_string(),
                    relative_path: loc.relative_path.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        // A plain backup without a -wal companion: SQLite reads the data file where it is,
        // read-only and immutable (no copy of a 100 MB sms.db, no lock, nothing ever written
        // into the backup or a hard-linked snapshot).
        let has_wal = backup
            .find(loc.domain, &format!("{}-wal", loc.relative_path))
            .is_ok_and(|e| e.has_data() && e.meta.size > 0);
        if !backup.is_encrypted() && !has_wal {
            return Self::open_immutable(&backup.data_path(&entry), loc);
        }
        let temp = private_temp_dir()?;
        let name = loc.file_name();
        let path = temp.path().join(name);
        copy_entry(backup, &entry, &path)?;
        for suffix in ["-wal", "-shm"] {
            let rel = format!("{}{suffix}", loc.relative_path);
            if let Ok(e) = backup.find(loc.domain, &rel)
                && e.has_data()
            {
                copy_entry(backup, &e, &temp.path().join(format!("{name}{suffix}")))?;
            }
        }
        let mut s = Self::open_path(&path, loc)?;
        s._temp = Some(temp);
        Ok(s)
    }

    /// Like [`Source::open`] for the first of several locations the backup has (a database that
    /// moved between iOS versions). [`Error::Absent`] names the first location.
    pub fn open_any(backup: &Backup, locs: &[DbLocation]) -> Result<Source> {
        let mut first_err = None;
        for loc in locs {
            match Self::open(backup, *loc) {
                Ok(s) => return Ok(s),
                Err(e @ Error::Absent { .. }) => {
                    first_err.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(first_err.unwrap_or(Error::UnknownSchema {
            dataset: "dataset",
            file: String::new(),
            detail: "no location given".into(),
        }))
    }

    /// Opens a database file that is already on disk (a decrypted copy, or a test fixture). The
    /// file is not copied, so it must not be shared with a writer.
    pub fn open_path(path: &Path, loc: DbLocation) -> Result<Source> {
        let file = loc.file_name().to_string();
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .db(&file)?;
        Self::with_conn(conn, path, loc)
    }

    /// Opens a data file of a plain backup in place: read-only, `immutable=1` (SQLite takes
    /// no lock and never creates a `-journal`/`-shm` beside it, so a read-only or hard-linked
    /// snapshot is never touched). Only for files nothing writes to while we read.
    fn open_immutable(path: &Path, loc: DbLocation) -> Result<Source> {
        use std::os::unix::ffi::OsStrExt;
        let file = loc.file_name().to_string();
        let mut uri = String::from("file:");
        for &b in path.as_os_str().as_bytes() {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                uri.push(char::from(b));
            } else {
                uri.push_str(&format!("%{b:02X}"));
            }
        }
        uri.push_str("?immutable=1");
        let conn = Connection::open_with_flags(
            &uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .db(&file)?;
        Self::with_conn(conn, path, loc)
    }

    /// Probes the schema of an opened connection (made query-only).
    fn with_conn(conn: Connection, path: &Path, loc: DbLocation) -> Result<Source> {
        let file = loc.file_name().to_string();
        conn.execute_batch("PRAGMA query_only = 1;").db(&file)?;
        let schema = Schema::probe(&conn).map_err(|e| match e {
            // "file is not a database" and friends: say which dataset it was.
            Error::Sqlite { source, .. } => Error::UnknownSchema {
                dataset: loc.dataset,
                file: file.clone(),
                detail: format!("not a readable SQLite database ({source})"),
            },
            other => other,
        })?;
        Ok(Source {
            conn,
            schema,
            file,
            dataset: loc.dataset,
            path: path.to_path_buf(),
            _temp: None,
        })
    }

    /// The open connection (read-only: `PRAGMA query_only`).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The probed schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The database file name, for messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The dataset's human name.
    pub fn dataset(&self) -> &'static str {
        self.dataset
    }

    /// [`Error::UnknownSchema`] unless `table` exists: for the tables a dataset cannot do without.
    pub fn require_table(&self, table: &str) -> Result<()> {
        if self.schema.has_table(table) {
            Ok(())
        } else {
            Err(Error::UnknownSchema {
                dataset: self.dataset,
                file: self.file.clone(),
                detail: format!("no table {table}"),
            })
        }
    }

    /// `SELECT COUNT(*)` of a table, `None` if the table is absent.
    pub fn count(&self, table: &str) -> Result<Option<u64>> {
        if !self.schema.has_table(table) {
            return Ok(None);
        }
        let sql = format!("SELECT COUNT(*) FROM {}", crate::schema::quote(table));
        let n: i64 = self.conn.query_row(&sql, [], |r| r.get(0)).db(&self.file)?;
        Ok(Some(u64::try_from(n).unwrap_or(0)))
    }
}
