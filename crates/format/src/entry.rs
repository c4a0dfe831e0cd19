//! One row of a backup's manifest: a file, directory or symlink of the phone.
//!
//! The same types describe rows read from `Manifest.db` (iOS 10+) and records read from
//! `Manifest.mbdb` (iOS 5–9), and rows the [writer](crate::writer) puts into a new backup.

use std::collections::BTreeMap;

use sha1::{Digest, Sha1};
use zeroize::Zeroize;

/// What kind of filesystem object an entry is (the `flags` column of `Manifest.db`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file (flags 1); the only kind with a data file in the backup folder.
    File,
    /// A directory (flags 2).
    Directory,
    /// A symbolic link (flags 4); its target is in [`FileMeta::target`].
    Symlink,
    /// A flags value this crate does not know (e.g. 16); kept so nothing is silently dropped.
    Other(u32),
}

impl EntryKind {
    /// Maps the `flags` column of `Manifest.db` to a kind.
    pub fn from_flags(flags: i64) -> Self {
        match flags {
            1 => EntryKind::File,
            2 => EntryKind::Directory,
            4 => EntryKind::Symlink,
            other => EntryKind::Other(u32::try_from(other).unwrap_or(u32::MAX)),
        }
    }

    /// The `flags` column value for this kind.
    pub fn flags(self) -> i64 {
        match self {
            EntryKind::File => 1,
            EntryKind::Directory => 2,
            EntryKind::Symlink => 4,
            EntryKind::Other(f) => i64::from(f),
        }
    }

    /// Derives the kind from the file-type bits of `st_mode` (used for `Manifest.mbdb`).
    pub fn from_mode(mode: u32) -> Self {
        match mode & 0o170000 {
            0o100000 => EntryKind::File,
            0o040000 => EntryKind::Directory,
            0o120000 => EntryKind::Symlink,
            other => EntryKind::Other(other),
        }
    }

    /// A short lowercase name ("file", "dir", "symlink", "other").
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Directory => "dir",
            EntryKind::Symlink => "symlink",
            EntryKind::Other(_) => "other",
        }
    }
}

/// A per-file (or Manifest.db) key as stored in a backup: the protection class of the key that
/// wraps it, and the 40-byte RFC 3394 wrapped 32-byte key.
///
/// On disk this is 44 bytes: a little-endian `u32` class followed by the wrapped key.
#[derive(Clone, PartialEq, Eq, Zeroize)]
#[zeroize(drop)]
pub struct WrappedKey {
    /// Protection class whose class key wraps this key (1–11; files use 1–4).
    pub class: u32,
    /// The RFC 3394 wrapped key (40 bytes for a 32-byte key).
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappedKey")
            .field("class", &self.class)
            .field("wrapped_len", &self.wrapped.len())
            .finish()
    }
}

impl WrappedKey {
    /// Parses the 44-byte on-disk form (`u32` LE class + 40-byte wrapped key).
    ///
    /// Returns `None` when the blob is shorter than 4 + 24 bytes or the wrapped part is not a
    /// multiple of 8 (RFC 3394 works on 64-bit blocks).
    pub fn from_bytes(blob: &[u8]) -> Option<Self> {
        if blob.len() < 4 + 24 || !(blob.len() - 4).is_multiple_of(8) {
            return None;
        }
        let class = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]);
        Some(WrappedKey {
            class,
            wrapped: blob[4..].to_vec(),
        })
    }

    /// The on-disk form: `u32` LE class followed by the wrapped key.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.wrapped.len());
        out.extend_from_slice(&self.class.to_le_bytes());
        out.extend_from_slice(&self.wrapped);
        out
    }
}

/// The metadata of an entry: the decoded NSKeyedArchiver `MBFile` (Manifest.db) or the fixed
/// fields of an mbdb record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileMeta {
    /// Logical (plaintext) size in bytes; 0 for directories and symlinks.
    pub size: u64,
    /// `st_mode`, including the file-type bits (0o100644, 0o040755, 0o120755 …).
    pub mode: u32,
    /// Owner user id on the phone (501 = mobile, 0 = root).
    pub uid: u32,
    /// Owner group id on the phone.
    pub gid: u32,
    /// Last modification time, Unix seconds.
    pub mtime: i64,
    /// Last status change time, Unix seconds.
    pub ctime: i64,
    /// Creation time, Unix seconds.
    pub birth: i64,
    /// Inode number on the phone.
    pub inode: u64,
    /// Data-protection class (1–4 for files, 0 for directories and symlinks).
    pub protection_class: u32,
    /// The MBFile `Flags` field (0 in every backup seen so far).
    pub flags: u64,
    /// Per-file key of an encrypted backup (present on every regular file of one).
    pub encryption_key: Option<WrappedKey>,
    /// The MBFile `Digest` (20 bytes where present; meaning not confirmed).
    pub digest: Option<Vec<u8>>,
    /// Symlink target (absolute path on the phone), for symlinks.
    pub target: Option<String>,
    /// Extended attributes, name → value.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// One row of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Lowercase 40-hex SHA-1 of `domain + "-" + relative_path`; names the data file.
    pub file_id: String,
    /// Backup domain, e.g. `HomeDomain`, `AppDomain-com.apple.mobilesafari`.
    pub domain: String,
    /// Path inside the domain, `/`-separated, "" for the domain root. Untrusted.
    pub relative_path: String,
    /// File, directory, symlink or other.
    pub kind: EntryKind,
    /// Decoded metadata.
    pub meta: FileMeta,
}

impl Entry {
    /// Whether this entry has a data file in the backup folder.
    pub fn has_data(&self) -> bool {
        self.kind == EntryKind::File
    }
}

/// The file id of `domain` + `relative_path`: lowercase hex SHA-1 of `"<domain>-<relative_path>"`.
pub fn file_id(domain: &str, relative_path: &str) -> String {
    let mut h = Sha1::new();
    h.update(domain.as_bytes());
    h.update(b"-");
    h.update(relative_path.as_bytes());
    hex::encode(h.finalize())
}

/// Whether `s` looks like a file id: exactly 40 lowercase hex digits.
pub fn is_file_id(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_id_matches_known_value() {
        // From the real iOS 14.3 manifest (mvt fixture).
        assert_eq!(
            file_id("HomeDomain", "Library/SMS/sms.db"),
            "3d0d7e5fb2ce288813306e4d4636395e047a3d28"
        );
    }

    #[test]
    fn wrapped_key_round_trip() {
        let mut blob = vec![3, 0, 0, 0];
        blob.extend(0u8..40);
        let k = WrappedKey::from_bytes(&blob).expect("valid");
        assert_eq!(k.class, 3);
        assert_eq!(k.to_bytes(), blob);
        assert!(WrappedKey::from_bytes(&blob[..20]).is_none());
        assert!(WrappedKey::from_bytes(&blob[..43]).is_none());
    }

    #[test]
    fn kinds() {
        assert_eq!(EntryKind::from_flags(1), EntryKind::File);
        assert_eq!(EntryKind::from_flags(16), EntryKind::Other(16));
        assert_eq!(EntryKind::from_mode(0o120755), EntryKind::Symlink);
        assert_eq!(EntryKind::from_mode(0o040755), EntryKind::Directory);
    }
}
