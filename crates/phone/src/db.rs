//! Deterministic SQLite building: same inputs → byte-identical database files.
//!
//! A database is built into `<name>.tmp-<pid>-<n>` with a fixed page size and rollback journal,
//! filled in one transaction, VACUUMed (which rewrites every page in a canonical order), closed
//! and renamed into place. Nothing depends on the wall clock. Because the final name is derived
//! from a hash of the records, a finished file in the cache is reused as-is.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;

use crate::error::PhoneError;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Builds the database at `path` with `fill` unless it already exists; returns its size.
pub(crate) fn build(
    path: &Path,
    fill: impl FnOnce(&Connection) -> rusqlite::Result<()>,
) -> Result<u64, PhoneError> {
    if let Ok(m) = std::fs::metadata(path) {
        return Ok(m.len());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| PhoneError::io(parent, e))?;
    }
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
    let sql_err = |source| PhoneError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    {
        let _ = std::fs::remove_file(&tmp);
        let conn = Connection::open(&tmp).map_err(sql_err)?;
        conn.execute_batch(
            "PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE; PRAGMA auto_vacuum = NONE;",
        )
        .map_err(sql_err)?;
        conn.execute_batch("BEGIN").map_err(sql_err)?;
        fill(&conn).map_err(sql_err)?;
        conn.execute_batch("COMMIT").map_err(sql_err)?;
        conn.execute_batch("VACUUM").map_err(sql_err)?;
        conn.close().map_err(|(_, e)| sql_err(e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| PhoneError::io(path, e))?;
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| PhoneError::io(path, e))
}

/// The Core Data bookkeeping tables (`Z_PRIMARYKEY`, `Z_METADATA`) every `.storedata`/Core Data
/// store carries; readers such as iLEAPP resolve entity numbers through `Z_PRIMARYKEY`.
pub(crate) fn core_data_tables(
    conn: &Connection,
    entities: &[(i64, &str, i64)],
    uuid: &str,
) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE Z_PRIMARYKEY (Z_ENT INTEGER PRIMARY KEY, Z_NAME VARCHAR, Z_SUPER INTEGER, Z_MAX INTEGER);
         CREATE TABLE Z_METADATA (Z_VERSION INTEGER PRIMARY KEY, Z_UUID VARCHAR(255), Z_PLIST BLOB);
         CREATE TABLE Z_MODELCACHE (Z_CONTENT BLOB);",
    )?;
    for (ent, name, max) in entities {
        conn.execute(
            "INSERT INTO Z_PRIMARYKEY (Z_ENT, Z_NAME, Z_SUPER, Z_MAX) VALUES (?1, ?2, 0, ?3)",
            rusqlite::params![ent, name, max],
        )?;
    }
    let mut d = plist::Dictionary::new();
    d.insert("NSStoreType".into(), plist::Value::String("SQLite".into()));
    d.insert("NSStoreUUID".into(), plist::Value::String(uuid.into()));
    let blob = crate::media::binary_plist(&plist::Value::Dictionary(d));
    conn.execute(
        "INSERT INTO Z_METADATA (Z_VERSION, Z_UUID, Z_PLIST) VALUES (1, ?1, ?2)",
        rusqlite::params![uuid, blob],
    )?;
    Ok(())
}
