//! Integrity check of a backup folder: every file row has its data file, of the right size.
//!
//! # Why sizes are enough for the quick check
//!
//! A backup has no per-file checksum readers can rely on (`Digest` is present on a subset of rows
//! and its meaning is unconfirmed), so the cheap, always-valid check is the length: a plain data
//! file is exactly `Size` bytes, an encrypted one exactly [`encrypted_len`]`(Size)` (AES-CBC with
//! PKCS#7 padding). That catches missing, truncated and half-copied files without decrypting
//! anything. `deep` additionally decrypts every file (needs an unlocked backup) and checks that the
//! padding is valid and the plaintext has exactly `Size` bytes — i.e. that the key unwraps and the
//! data is not garbage.
//!
//! The report also lists data files no row references ("extra", e.g. left from an interrupted
//! backup) and rows the manifest reader could not decode ("unreadable").

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;

use rayon::prelude::*;

use crate::backup::{Backup, ManifestFormat};
use crate::crypto::{DecryptingReader, encrypted_len};
use crate::entry::{Entry, is_file_id};
use crate::error::{Error, IoContext, Result};
use crate::manifest_db::RowProblem;

/// A problem with one row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowIssue {
    /// Domain of the row.
    pub domain: String,
    /// Relative path of the row.
    pub relative_path: String,
    /// File id of the row (names the data file).
    pub file_id: String,
    /// The data file looked at.
    pub data_path: PathBuf,
    /// Expected length on disk (or plaintext length for deep errors).
    pub expected: u64,
    /// Actual length (0 when not applicable).
    pub actual: u64,
    /// Human-readable detail.
    pub detail: String,
}

/// A row the manifest reader could not decode.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unreadable {
    /// File id column.
    pub file_id: String,
    /// Domain column.
    pub domain: String,
    /// Relative path column.
    pub relative_path: String,
    /// What was wrong.
    pub reason: String,
}

impl From<&RowProblem> for Unreadable {
    fn from(p: &RowProblem) -> Self {
        Unreadable {
            file_id: p.file_id.clone(),
            domain: p.domain.clone(),
            relative_path: p.relative_path.clone(),
            reason: p.reason.clone(),
        }
    }
}

/// The result of [`verify`]. Serializable for `--json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// File rows checked.
    pub files_checked: u64,
    /// Sum of the checked rows' `Size`.
    pub bytes_checked: u64,
    /// Whether the deep (decrypting) check ran.
    pub deep: bool,
    /// File rows without a data file.
    pub missing: Vec<RowIssue>,
    /// Data files whose length is not what `Size` implies.
    pub size_mismatch: Vec<RowIssue>,
    /// Deep check failures (key unwrap, bad padding, plaintext length ≠ `Size`, read errors).
    pub decrypt_errors: Vec<RowIssue>,
    /// Data files present in the folder but referenced by no row.
    pub extra: Vec<PathBuf>,
    /// Rows whose metadata could not be decoded.
    pub unreadable: Vec<Unreadable>,
}

impl VerifyReport {
    /// True if nothing at all was found wrong.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.size_mismatch.is_empty()
            && self.decrypt_errors.is_empty()
            && self.extra.is_empty()
            && self.unreadable.is_empty()
    }
}

enum Outcome {
    Ok,
    Missing(RowIssue),
    Size(RowIssue),
    Decrypt(RowIssue),
}

fn issue(b: &Backup, e: &Entry, expected: u64, actual: u64, detail: impl Into<String>) -> RowIssue {
    RowIssue {
        domain: e.domain.clone(),
        relative_path: e.relative_path.clone(),
        file_id: e.file_id.clone(),
        data_path: b.data_path(e),
        expected,
        actual,
        detail: detail.into(),
    }
}

fn check_one(b: &Backup, e: &Entry, deep: bool) -> Outcome {
    let path = b.data_path(e);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Outcome::Missing(issue(b, e, 0, 0, "data file is missing"));
        }
        Err(err) => {
            return Outcome::Missing(issue(b, e, 0, 0, format!("cannot stat data file: {err}")));
        }
    };
    if !meta.is_file() {
        return Outcome::Missing(issue(b, e, 0, 0, "data path is not a regular file"));
    }
    let expected = if b.is_encrypted() {
        encrypted_len(e.meta.size)
    } else {
        e.meta.size
    };
    if meta.len() != expected {
        let detail = if meta.len() < expected {
            "data file is short"
        } else {
            "data file is too long"
        };
        return Outcome::Size(issue(b, e, expected, meta.len(), detail));
    }
    if deep && b.is_encrypted() {
        return match deep_check(b, e) {
            Ok(()) => Outcome::Ok,
            Err(detail) => Outcome::Decrypt(issue(b, e, e.meta.size, 0, detail)),
        };
    }
    Outcome::Ok
}

/// Decrypts a whole file; returns an error text unless the padding is valid and the plaintext
/// has exactly `Size` bytes.
fn deep_check(b: &Backup, e: &Entry) -> std::result::Result<(), String> {
    let keys = b
        .class_keys()
        .ok_or_else(|| Error::PasswordRequired.to_string())?;
    let path = b.data_path(e);
    let wk = e
        .meta
        .encryption_key
        .as_ref()
        .ok_or("row has no EncryptionKey")?;
    let key = keys
        .unwrap(wk, &format!("{}/{}", e.domain, e.relative_path))
        .map_err(|e| e.to_string())?;
    let f = std::fs::File::open(&path).map_err(|e| e.to_string())?;
    let mut r = DecryptingReader::new(
        std::io::BufReader::with_capacity(256 * 1024, f),
        &key,
        Some(e.meta.size),
    );
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(format!("decryption failed: {err}")),
        }
    }
    if r.padding_valid() != Some(true) {
        return Err("invalid PKCS#7 padding (wrong key or damaged data)".into());
    }
    if let Some((expected, actual)) = r.size_mismatch() {
        return Err(format!("decrypted {actual} bytes, Size says {expected}"));
    }
    Ok(())
}

/// Verifies a backup. `deep` needs an unlocked encrypted backup ([`Error::PasswordRequired`]
/// otherwise) and is a no-op extra for plain ones. Problems go into the report; errors are only
/// returned when the manifest itself cannot be read.
pub fn verify(backup: &Backup, deep: bool) -> Result<VerifyReport> {
    if deep && backup.is_encrypted() && backup.class_keys().is_none() {
        return Err(Error::PasswordRequired);
    }
    let rows = backup.entries()?;
    let files: Vec<&Entry> = rows.entries.iter().filter(|e| e.has_data()).collect();
    let mut report = VerifyReport {
        files_checked: files.len() as u64,
        bytes_checked: files.iter().map(|e| e.meta.size).sum(),
        deep: deep && backup.is_encrypted(),
        unreadable: rows.skipped.iter().map(Unreadable::from).collect(),
        ..VerifyReport::default()
    };
    let outcomes: Vec<Outcome> = files
        .par_iter()
        .map(|e| check_one(backup, e, deep))
        .collect();
    for o in outcomes {
        match o {
            Outcome::Ok => {}
            Outcome::Missing(i) => report.missing.push(i),
            Outcome::Size(i) => report.size_mismatch.push(i),
            Outcome::Decrypt(i) => report.decrypt_errors.push(i),
        }
    }
    // Rows that failed to decode still own their data file: don't call those "extra".
    let referenced: HashSet<String> = files
        .iter()
        .map(|e| backup.data_path(e))
        .chain(
            rows.skipped
                .iter()
                .filter(|p| is_file_id(&p.file_id))
                .map(|p| data_path_for_id(backup, &p.file_id)),
        )
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .collect();
    report.extra = find_extra(backup, &referenced)?;
    report.missing.sort_by(|a, b| a.data_path.cmp(&b.data_path));
    report
        .size_mismatch
        .sort_by(|a, b| a.data_path.cmp(&b.data_path));
    report
        .decrypt_errors
        .sort_by(|a, b| a.data_path.cmp(&b.data_path));
    Ok(report)
}

fn data_path_for_id(b: &Backup, id: &str) -> PathBuf {
    match b.format() {
        ManifestFormat::Db => b.dir().join(id.get(..2).unwrap_or(id)).join(id),
        ManifestFormat::Mbdb => b.dir().join(id),
    }
}

/// Data-file-looking names (40 hex) not referenced. Manifest.db era: every file inside the
/// two-hex-digit subfolders counts (anything there is backup data); mbdb era: 40-hex names in
/// the root.
fn find_extra(b: &Backup, referenced: &HashSet<String>) -> Result<Vec<PathBuf>> {
    let mut extra = Vec::new();
    let dir = b.dir();
    match b.format() {
        ManifestFormat::Db => {
            for d in std::fs::read_dir(dir).at(dir)? {
                let d = d.at(dir)?;
                let name = d.file_name();
                let Some(name) = name.to_str() else { continue };
                let is_bucket = name.len() == 2 && name.bytes().all(|c| c.is_ascii_hexdigit());
                if !is_bucket || !d.file_type().at(d.path())?.is_dir() {
                    continue;
                }
                let sub = d.path();
                for f in std::fs::read_dir(&sub).at(&sub)? {
                    let f = f.at(&sub)?;
                    let fname = f.file_name();
                    let known = fname
                        .to_str()
                        .is_some_and(|n| referenced.contains(n) && n.starts_with(name));
                    if !known {
                        extra.push(f.path());
                    }
                }
            }
        }
        ManifestFormat::Mbdb => {
            for f in std::fs::read_dir(dir).at(dir)? {
                let f = f.at(dir)?;
                let fname = f.file_name();
                let Some(n) = fname.to_str() else { continue };
                if is_file_id(n) && !referenced.contains(n) {
                    extra.push(f.path());
                }
            }
        }
    }
    extra.sort();
    Ok(extra)
}
