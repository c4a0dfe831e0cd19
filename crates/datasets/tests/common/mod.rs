//! Small real backups for the integration tests: SQLite databases built from SQL and plain
//! backup folders written with the format crate's writer.
#![allow(clippy::unwrap_used, dead_code)] // tests may panic; not every test uses every helper

use std::path::{Path, PathBuf};

use iosnap_format::FileMeta;
use iosnap_format::writer::{BackupWriter, WriterOptions};

/// The metadata of a regular file modified at `mtime` (Unix seconds).
pub fn file_meta(mtime: i64) -> FileMeta {
    FileMeta {
        mode: 0o100644,
        mtime,
        protection_class: 3,
        ..FileMeta::default()
    }
}

/// A SQLite database built from `sql`, then `fill`, as bytes (written under `dir/name`).
pub fn sqlite_bytes(
    dir: &Path,
    name: &str,
    sql: &str,
    fill: impl FnOnce(&rusqlite::Connection),
) -> Vec<u8> {
    let p = dir.join(name);
    let c = rusqlite::Connection::open(&p).unwrap();
    c.execute_batch(sql).unwrap();
    fill(&c);
    drop(c);
    std::fs::read(&p).unwrap()
}

/// A plain backup at `root/backup` holding `files` (domain, relative path, bytes), each
/// modified at `mtime`.
pub fn plain_backup(root: &Path, files: &[(&str, &str, Vec<u8>)], mtime: i64) -> PathBuf {
    let dir = root.join("backup");
    let mut w = BackupWriter::create(&dir, WriterOptions::default()).unwrap();
    for (d, p, b) in files {
        w.add_file(d, p, file_meta(mtime), &b[..]).unwrap();
    }
    w.finish().unwrap();
    dir
}
