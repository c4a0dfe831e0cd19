//! [`Backup`]: one opened backup folder — detect its format, unlock it, list and read its files.
//!
//! # Formats
//!
//! * `Manifest.db` (iOS 10+): data files in `xx/<fileID>`. Encrypted backups of iOS ≥ 10.2
//!   encrypt the database itself with the `ManifestKey` of `Manifest.plist`; iOS 10.0/10.1
//!   encrypted backups have a plain `Manifest.db` and no `ManifestKey`. Both are handled.
//! * `Manifest.mbdb` (iOS 5–9): data files flat as `<fileID>`; the index itself is never
//!   encrypted, only file contents are.
//! * `Manifest.mbdx` alone (iTunes 9.2–10.4, iOS 3–4): [`Error::Unsupported`].
//!
//! # Missing plists
//!
//! Real folders lack plists more often than one would think (the public mvt fixture has neither
//! `Manifest.plist` nor `Status.plist`). A missing or unreadable plist is a [warning](Backup::warnings),
//! not an error, because the manifest alone is enough to browse a plain backup. The one exception
//! is a backup that needs the keybag to be read at all: an encrypted `Manifest.db` with no
//! `Manifest.plist` fails [`Backup::unlock`] with an error that says so.
//!
//! # Secrets
//!
//! The class keys live in [`ClassKeys`] (zeroized on drop). The decrypted `Manifest.db` is written
//! to a private temporary directory (mode 0700, file 0600) that is deleted when the [`Backup`] is
//! dropped: the plaintext index never lands next to the backup or in a world-readable place.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::crypto::{self, DecryptingReader, Kek};
use crate::entry::Entry;
use crate::error::{Error, IoContext, Result};
use crate::info_plist::InfoPlist;
use crate::keybag::{ClassKeys, Keybag};
use crate::manifest_db::{self, ManifestDb, ManifestRows};
use crate::manifest_plist::ManifestPlist;
use crate::status_plist::StatusPlist;
use crate::{info_plist, manifest_plist, mbdb, status_plist};

/// The SQLite file header: how a plain `Manifest.db` starts.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Which index the folder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestFormat {
    /// `Manifest.db` (iOS 10+), data in `xx/<fileID>`.
    Db,
    /// `Manifest.mbdb` (iOS 5–9), data flat as `<fileID>`.
    Mbdb,
}

/// One opened backup folder. `Sync`, so extraction can read files from many threads.
pub struct Backup {
    dir: PathBuf,
    format: ManifestFormat,
    info: Option<InfoPlist>,
    manifest: Option<ManifestPlist>,
    status: Option<StatusPlist>,
    warnings: Vec<String>,
    encrypted: bool,
    /// Whether `Manifest.db` itself is encrypted (not SQLite on disk).
    db_encrypted: bool,
    class_keys: Option<ClassKeys>,
    /// The decrypted `Manifest.db` (inside `_temp`), once unlocked.
    decrypted_db: Option<PathBuf>,
    /// Private directory holding the decrypted `Manifest.db`; removed on drop.
    _temp: Option<crate::scratch::ScratchDir>,
}

impl std::fmt::Debug for Backup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backup")
            .field("dir", &self.dir)
            .field("format", &self.format)
            .field("encrypted", &self.encrypted)
            .field("unlocked", &self.class_keys.is_some())
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

/// Reads an optional plist: missing → warning, unreadable → warning, never fatal.
fn read_optional<T>(
    dir: &Path,
    name: &str,
    read: impl FnOnce(&Path) -> Result<T>,
    warnings: &mut Vec<String>,
) -> Option<T> {
    let path = dir.join(name);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            warnings.push(format!("{name} is missing"));
            None
        }
        Err(e) => {
            warnings.push(format!("{name} cannot be read: {e}"));
            None
        }
        Ok(_) => match read(&path) {
            Ok(v) => Some(v),
            Err(e) => {
                warnings.push(format!("{name} is unreadable: {e}"));
                None
            }
        },
    }
}

/// Whether the file starts with the SQLite header.
fn is_sqlite(path: &Path) -> Result<bool> {
    let mut f = File::open(path).at(path)?;
    let mut head = [0u8; 16];
    let mut n = 0;
    while n < head.len() {
        let got = f.read(&mut head[n..]).at(path)?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n == head.len() && &head == SQLITE_MAGIC)
}

impl Backup {
    /// Opens a backup folder: detects the index format and reads the plists (see the module docs).
    pub fn open(dir: &Path) -> Result<Backup> {
        let meta = std::fs::metadata(dir).at(dir)?;
        if !meta.is_dir() {
            return Err(Error::NotABackup {
                path: dir.to_path_buf(),
                reason: "not a directory".into(),
            });
        }
        let db = dir.join(manifest_db::FILE_NAME);
        let mbdb_path = dir.join(mbdb::FILE_NAME);
        let format = if db.is_file() {
            ManifestFormat::Db
        } else if mbdb_path.is_file() {
            ManifestFormat::Mbdb
        } else if dir.join("Manifest.mbdx").is_file() {
            return Err(Error::Unsupported {
                path: dir.join("Manifest.mbdx"),
                what: "Manifest.mbdx (iTunes 9.2–10.4, iOS 3–4) is not supported".into(),
            });
        } else {
            return Err(Error::NotABackup {
                path: dir.to_path_buf(),
                reason: "no Manifest.db or Manifest.mbdb".into(),
            });
        };
        let mut warnings = Vec::new();
        let info = read_optional(dir, info_plist::FILE_NAME, InfoPlist::read, &mut warnings);
        let manifest = read_optional(
            dir,
            manifest_plist::FILE_NAME,
            ManifestPlist::read,
            &mut warnings,
        );
        let status = read_optional(
            dir,
            status_plist::FILE_NAME,
            StatusPlist::read,
            &mut warnings,
        );
        let db_encrypted = format == ManifestFormat::Db && !is_sqlite(&db)?;
        let encrypted = db_encrypted || manifest.as_ref().is_some_and(|m| m.is_encrypted);
        if db_encrypted
            && manifest
                .as_ref()
                .and_then(|m| m.backup_keybag.as_ref())
                .is_none()
        {
            warnings.push(
                "Manifest.db is encrypted (or not SQLite) but Manifest.plist has no keybag: \
                 this backup cannot be decrypted"
                    .into(),
            );
        }
        Ok(Backup {
            dir: dir.to_path_buf(),
            format,
            info,
            manifest,
            status,
            warnings,
            encrypted,
            db_encrypted,
            class_keys: None,
            decrypted_db: None,
            _temp: None,
        })
    }

    /// The backup folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Which index format the folder uses.
    pub fn format(&self) -> ManifestFormat {
        self.format
    }

    /// `Info.plist`, if present and readable.
    pub fn info(&self) -> Option<&InfoPlist> {
        self.info.as_ref()
    }

    /// `Manifest.plist`, if present and readable.
    pub fn manifest(&self) -> Option<&ManifestPlist> {
        self.manifest.as_ref()
    }

    /// `Status.plist`, if present and readable.
    pub fn status(&self) -> Option<&StatusPlist> {
        self.status.as_ref()
    }

    /// Non-fatal problems found while opening (e.g. "Status.plist is missing").
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether file contents (and on iOS ≥ 10.2 the manifest) are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// Whether the backup can be read now: plain, or encrypted and unlocked.
    pub fn is_unlocked(&self) -> bool {
        !self.encrypted || self.class_keys.is_some()
    }

    /// The class keys, once unlocked (for callers that decrypt e.g. the keychain themselves).
    pub fn class_keys(&self) -> Option<&ClassKeys> {
        self.class_keys.as_ref()
    }

    /// The keybag of `Manifest.plist`, parsed. Errors name what is missing.
    pub fn keybag(&self) -> Result<Keybag> {
        let mp = self.dir.join(manifest_plist::FILE_NAME);
        let m = self.manifest.as_ref().ok_or_else(|| {
            Error::corrupt(
                &mp,
                "Manifest.plist",
                "missing or unreadable: it holds the keybag needed to decrypt",
            )
        })?;
        let kb = m
            .backup_keybag
            .as_ref()
            .ok_or_else(|| Error::corrupt(&mp, "Manifest.plist", "no BackupKeyBag"))?;
        Keybag::parse(kb)
    }

    /// Unlocks an encrypted backup with its password: keybag → class keys, then decrypts
    /// `Manifest.db` (iOS ≥ 10.2) into a private temporary file. A plain backup needs no
    /// password: calling this on one is a no-op. Errors: [`Error::WrongPassword`], or a
    /// [`Error::Corrupt`] naming `Manifest.plist` when the keybag is missing.
    pub fn unlock(&mut self, password: &[u8]) -> Result<()> {
        if !self.encrypted {
            return Ok(());
        }
        let keys = self.keybag()?.unlock(password)?;
        self.install_keys(keys)
    }

    /// Like [`Backup::unlock`] with an already derived key-encryption key (what mvt calls the
    /// "derived key"), skipping the slow PBKDF2.
    pub fn unlock_with_kek(&mut self, kek: &Kek) -> Result<()> {
        if !self.encrypted {
            return Ok(());
        }
        let keys = self.keybag()?.unlock_with_kek(kek)?;
        self.install_keys(keys)
    }

    fn install_keys(&mut self, keys: ClassKeys) -> Result<()> {
        let db = self.dir.join(manifest_db::FILE_NAME);
        if self.format == ManifestFormat::Db && self.db_encrypted {
            let mk = self
                .manifest
                .as_ref()
                .and_then(|m| m.manifest_key.as_ref())
                .ok_or_else(|| {
                    Error::corrupt(
                        self.dir.join(manifest_plist::FILE_NAME),
                        "Manifest.plist",
                        "Manifest.db is encrypted but Manifest.plist has no ManifestKey",
                    )
                })?;
            let key = keys.unwrap(mk, manifest_db::FILE_NAME)?;
            let temp = private_temp_dir()?;
            let out_path = temp.path().join(manifest_db::FILE_NAME);
            let mut out = create_private_file(&out_path)?;
            crypto::decrypt_file(&db, &mut out, &key)?;
            out.sync_all().at(&out_path)?;
            drop(out);
            if !is_sqlite(&out_path)? {
                return Err(Error::Decrypt {
                    path: db,
                    detail: "decrypted Manifest.db is not an SQLite database".into(),
                });
            }
            self.decrypted_db = Some(out_path);
            self._temp = Some(temp);
        }
        self.class_keys = Some(keys);
        Ok(())
    }

    /// The path of the readable (plain or decrypted) `Manifest.db`, for callers that want to run
    /// their own SQL. `None` for mbdb backups and for encrypted backups not yet unlocked. The
    /// file is deleted when the [`Backup`] is dropped.
    pub fn decrypted_manifest_path(&self) -> Option<PathBuf> {
        match self.format {
            ManifestFormat::Mbdb => None,
            ManifestFormat::Db if self.db_encrypted => self.decrypted_db.clone(),
            ManifestFormat::Db => Some(self.dir.join(manifest_db::FILE_NAME)),
        }
    }

    fn readable_db(&self) -> Result<PathBuf> {
        if self.db_encrypted && self.decrypted_db.is_none() {
            return Err(Error::PasswordRequired);
        }
        Ok(self
            .decrypted_db
            .clone()
            .unwrap_or_else(|| self.dir.join(manifest_db::FILE_NAME)))
    }

    /// All rows of the manifest. Rows whose metadata cannot be decoded are in
    /// [`ManifestRows::skipped`], never silently dropped. [`Error::PasswordRequired`] if the
    /// manifest is encrypted and the backup is locked.
    pub fn entries(&self) -> Result<ManifestRows> {
        match self.format {
            ManifestFormat::Db => ManifestDb::open(&self.readable_db()?)?.entries(),
            ManifestFormat::Mbdb => {
                let path = self.dir.join(mbdb::FILE_NAME);
                let bytes = std::fs::read(&path).at(&path)?;
                Ok(ManifestRows {
                    entries: mbdb::parse(&bytes, &path)?,
                    skipped: Vec::new(),
                })
            }
        }
    }

    /// The entry for `domain` / `relative_path`, or [`Error::NotFound`].
    pub fn find(&self, domain: &str, relative_path: &str) -> Result<Entry> {
        let found = match self.format {
            ManifestFormat::Db => {
                ManifestDb::open(&self.readable_db()?)?.find(domain, relative_path)?
            }
            ManifestFormat::Mbdb => self
                .entries()?
                .entries
                .into_iter()
                .find(|e| e.domain == domain && e.relative_path == relative_path),
        };
        found.ok_or_else(|| Error::NotFound {
            domain: domain.to_string(),
            relative_path: relative_path.to_string(),
        })
    }

    /// Where an entry's data lives: `xx/<fileID>` (Manifest.db) or `<fileID>` (mbdb). The file
    /// id comes from the manifest, so it is only used if it is a well-formed id; otherwise the id
    /// is recomputed from the domain and path (which always yields a safe name).
    pub fn data_path(&self, e: &Entry) -> PathBuf {
        let id = if crate::entry::is_file_id(&e.file_id) {
            e.file_id.clone()
        } else {
            crate::entry::file_id(&e.domain, &e.relative_path)
        };
        match self.format {
            ManifestFormat::Db => self.dir.join(&id[..2]).join(&id),
            ManifestFormat::Mbdb => self.dir.join(&id),
        }
    }

    /// Opens an entry's content as a stream: the file itself for plain backups, a decrypting
    /// stream (bounded memory, PKCS#7 removed, trimmed to `Size` if the padding is bad) for
    /// encrypted ones. Errors: [`Error::NotAFile`], [`Error::PasswordRequired`],
    /// [`Error::KeyUnwrap`], [`Error::Io`] (e.g. the data file is missing).
    pub fn open_file(&self, e: &Entry) -> Result<Box<dyn Read + Send>> {
        if !e.has_data() {
            return Err(Error::NotAFile {
                domain: e.domain.clone(),
                relative_path: e.relative_path.clone(),
            });
        }
        let path = self.data_path(e);
        if !self.encrypted {
            let f = File::open(&path).at(&path)?;
            return Ok(Box::new(f));
        }
        let keys = self.class_keys.as_ref().ok_or(Error::PasswordRequired)?;
        let wk = e.meta.encryption_key.as_ref().ok_or_else(|| {
            Error::corrupt(
                &path,
                "MBFile",
                format!(
                    "{}/{}: encrypted backup row has no EncryptionKey",
                    e.domain, e.relative_path
                ),
            )
        })?;
        let key = keys.unwrap(wk, &format!("{}/{}", e.domain, e.relative_path))?;
        let f = File::open(&path).at(&path)?;
        Ok(Box::new(DecryptingReader::new(
            BufReader::with_capacity(256 * 1024, f),
            &key,
            Some(e.meta.size),
        )))
    }
}

/// A fresh temporary directory only the current user can enter (see [`crate::scratch`]).
pub(crate) fn private_temp_dir() -> Result<crate::scratch::ScratchDir> {
    crate::scratch::new_dir()
}

/// Creates a new file readable only by the current user (fails if it exists).
pub(crate) fn create_private_file(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .at(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Extraction and verification read files from many threads through `&Backup`.
    #[test]
    fn backup_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Backup>();
    }

    #[test]
    fn sqlite_detection_and_private_files() {
        let d = private_temp_dir().expect("temp");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(d.path())
                .expect("md")
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let p = d.path().join("db");
        let mut f = create_private_file(&p).expect("create");
        std::io::Write::write_all(&mut f, b"SQLite format 3\0rest").expect("write");
        drop(f);
        assert_eq!(
            std::fs::metadata(&p).expect("md").permissions().mode() & 0o777,
            0o600
        );
        assert!(is_sqlite(&p).expect("sqlite"));
        assert!(
            create_private_file(&p).is_err(),
            "never opens an existing file"
        );
        std::fs::write(&p, b"SQLite").expect("short");
        assert!(!is_sqlite(&p).expect("short file"));
        std::fs::write(&p, [0u8; 4096]).expect("garbage");
        assert!(!is_sqlite(&p).expect("garbage"));
    }
}
