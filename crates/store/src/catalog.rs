//! The SQLite catalog: a cache of what the folders say (sizes are expensive to compute on a
//! 200,000-file snapshot). It is never the truth: [`Catalog::rebuild`] recreates it from the
//! folders, and the library rescans a device whenever its rows and folders disagree.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, params};

use crate::error::{Error, Result};
use crate::library::{Library, SnapshotInfo};
use crate::share::TreeUsage;

/// An open catalog file.
#[derive(Debug)]
pub struct Catalog {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS snapshots (
    udid TEXT NOT NULL,
    name TEXT NOT NULL,
    time INTEGER NOT NULL,
    path TEXT NOT NULL,
    device_name TEXT,
    ios_version TEXT,
    encrypted INTEGER NOT NULL,
    files INTEGER NOT NULL,
    size INTEGER NOT NULL,
    uniq INTEGER NOT NULL,
    unique_disk INTEGER NOT NULL,
    locked INTEGER NOT NULL,
    label TEXT,
    PRIMARY KEY (udid, name)
);";

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Catalog {
    /// Opens (creating) the catalog at `path`, private (0600).
    pub fn open(path: &Path) -> Result<Catalog> {
        let err = |source| Error::Catalog {
            path: path.to_path_buf(),
            source,
        };
        let existed = path.exists();
        let conn = Connection::open(path).map_err(err)?;
        if !existed {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Catalog {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Catalog {
            path: self.path.clone(),
            source,
        }
    }

    /// Replaces every row of `udid` with `infos`, in one transaction.
    pub fn replace_device(&mut self, udid: &str, infos: &[SnapshotInfo]) -> Result<()> {
        let tx = self.conn.transaction().map_err(|e| Error::Catalog {
            path: self.path.clone(),
            source: e,
        })?;
        let res = (|| -> rusqlite::Result<()> {
            tx.execute("DELETE FROM snapshots WHERE udid = ?1", params![udid])?;
            for s in infos {
                tx.execute(
                    "INSERT INTO snapshots VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
                    params![
                        s.udid,
                        s.name,
                        s.time,
                        s.path.to_string_lossy(),
                        s.device_name,
                        s.ios_version,
                        s.encrypted,
                        to_i64(s.usage.files),
                        to_i64(s.usage.size),
                        to_i64(s.usage.unique),
                        to_i64(s.usage.unique_disk),
                        s.locked,
                        s.label
                    ],
                )?;
            }
            Ok(())
        })();
        let path = self.path.clone();
        res.and_then(|()| tx.commit())
            .map_err(|source| Error::Catalog { path, source })
    }

    /// Rows of `udid`, oldest first.
    pub fn list(&self, udid: &str) -> Result<Vec<SnapshotInfo>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT udid,name,time,path,device_name,ios_version,encrypted,files,size,uniq,
                        unique_disk,locked,label FROM snapshots WHERE udid = ?1 ORDER BY name",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![udid], |r| {
                Ok(SnapshotInfo {
                    udid: r.get(0)?,
                    name: r.get(1)?,
                    time: r.get(2)?,
                    path: PathBuf::from(r.get::<_, String>(3)?),
                    device_name: r.get(4)?,
                    ios_version: r.get(5)?,
                    encrypted: r.get(6)?,
                    usage: TreeUsage {
                        files: to_u64(r.get(7)?),
                        size: to_u64(r.get(8)?),
                        unique: to_u64(r.get(9)?),
                        unique_disk: to_u64(r.get(10)?),
                    },
                    locked: r.get(11)?,
                    label: r.get(12)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Number of rows (all devices).
    pub fn count(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT COUNT(*) FROM snapshots", [], |r| r.get::<_, i64>(0))
            .map(to_u64)
            .map_err(|e| self.err(e))
    }

    /// Recreates the whole catalog of `lib`'s location from its folders (e.g. after the
    /// file was lost or copied from another machine). Returns the number of snapshots.
    pub fn rebuild(lib: &Library) -> Result<u64> {
        {
            let cat = lib.catalog()?;
            cat.conn
                .execute("DELETE FROM snapshots", [])
                .map_err(|e| cat.err(e))?;
        }
        let mut n = 0;
        for d in lib.devices()? {
            n += lib.refresh(&d)?.len() as u64;
        }
        Ok(n)
    }
}
