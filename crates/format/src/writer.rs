//! Writing a standard backup folder (plain or encrypted) that other tools open.
//!
//! [`BackupWriter`] is the simple way: create a folder, add directories, files (streamed from any
//! `Read`, never held in memory) and symlinks, then [`finish`](BackupWriter::finish). It follows
//! the recipe third-party readers were checked against (research notes, format.md §3): data in
//! `xx/<fileID>`, `Manifest.db` with NSKeyedArchiver `MBFile` blobs, and for encrypted backups a
//! fresh keybag, a random per-file key wrapped with the file's protection class key, PKCS#7
//! padded AES-256-CBC data, and a whole-file encrypted `Manifest.db` whose key is wrapped with
//! class 4 (`ManifestKey`). `Manifest.plist`, `Status.plist` (finished) and `Info.plist` are
//! always written, because iOSbackup and pyiosbackup refuse folders without them.
//!
//! # Building blocks for streaming (device simulator)
//!
//! A simulated phone sends files over the network and must not first build a folder. It uses:
//!
//! * [`BackupKeys::generate`] once per backup (keybag + class keys);
//! * [`EntryEncoder`] per entry: [`EntryEncoder::file`] gives the manifest [`Entry`] (with its
//!   `EncryptionKey`) and an [`EncodedContent`] reader producing exactly the bytes of the data
//!   file (ciphertext for encrypted backups); after streaming it, [`EncodedContent::plain_len`]
//!   is the `Size` to record;
//! * [`complete_directories`] to add the domain-root and parent rows a manifest must have, and
//!   [`write_manifest_files`] to produce `Manifest.db`, `Manifest.plist`, `Status.plist` and
//!   `Info.plist` from the collected entries into any folder.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use zeroize::Zeroizing;

use crate::backup::{create_private_file, private_temp_dir};
use crate::crypto::{self, EncryptingReader, FileKey};
use crate::entry::{Entry, EntryKind, FileMeta, WrappedKey, file_id};
use crate::error::{Error, IoContext, Result};
use crate::info_plist::InfoPlist;
use crate::keybag::{ClassKeys, KdfParams, Keybag};
use crate::manifest_db::{self, ManifestDbWriter};
use crate::manifest_plist::{self, ManifestPlist};
use crate::path_safety;
use crate::status_plist::{self, StatusPlist};

/// Protection class of the `Manifest.db` key (class 4, as real phones do).
const MANIFEST_CLASS: u32 = 4;
/// Protection class given to a file whose caller left it 0 (NSFileProtectionNone).
const DEFAULT_FILE_CLASS: u32 = 4;

/// Who the backup claims to come from. Written to `Info.plist` and `Manifest.plist`'s
/// `Lockdown`. The defaults describe an obviously synthetic device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `DeviceName` / `Device Name`.
    pub device_name: String,
    /// `ProductType`, e.g. `iPhone12,1`.
    pub product_type: String,
    /// `ProductVersion`; must parse as a version > 10.2 for pyiosbackup's modern path.
    pub product_version: String,
    /// `BuildVersion`, e.g. `21F90`.
    pub build_version: String,
    /// `SerialNumber`.
    pub serial_number: String,
    /// `UniqueDeviceID` (written uppercase as `Unique Identifier`, lowercase as `Target Identifier`).
    pub udid: String,
}

impl Default for DeviceInfo {
    fn default() -> Self {
        DeviceInfo {
            device_name: "iosnap simulated iPhone".into(),
            product_type: "iPhone12,1".into(),
            product_version: "17.5".into(),
            build_version: "21F90".into(),
            serial_number: "IOSNAPSIM001".into(),
            udid: "00008030-0000000000000001".into(),
        }
    }
}

/// Password and key-derivation cost of an encrypted backup. The password is zeroized on drop.
#[derive(Clone)]
pub struct Encryption {
    /// The backup password (UTF-8 bytes, as iTunes uses).
    pub password: Zeroizing<Vec<u8>>,
    /// PBKDF2 iteration counts (defaults: the real 10,000,000 / 10,000; tests use ~1,000).
    pub kdf: KdfParams,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryption")
            .field("kdf", &self.kdf)
            .finish_non_exhaustive()
    }
}

impl Encryption {
    /// Encryption with `password` and the given KDF cost.
    pub fn new(password: &[u8], kdf: KdfParams) -> Self {
        Encryption {
            password: Zeroizing::new(password.to_vec()),
            kdf,
        }
    }
}

/// Options of [`BackupWriter::create`] and [`write_manifest_files`].
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// `Some` for an encrypted backup.
    pub encryption: Option<Encryption>,
    /// Device identity.
    pub device: DeviceInfo,
    /// Accept an existing non-empty folder (files with the same names are replaced).
    pub allow_non_empty: bool,
    /// `WasPasscodeSet` of `Manifest.plist`.
    pub was_passcode_set: bool,
    /// Backup date (`Date` in the plists, `Last Backup Date`).
    pub date: SystemTime,
    /// Bundle ids for `Installed Applications` (Info.plist).
    pub installed_applications: Vec<String>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            encryption: None,
            device: DeviceInfo::default(),
            allow_non_empty: false,
            was_passcode_set: false,
            date: SystemTime::now(),
            installed_applications: Vec::new(),
        }
    }
}

/// The keybag and class keys of one backup being written.
#[derive(Clone)]
pub struct BackupKeys {
    /// The keybag stored in `Manifest.plist` (`BackupKeyBag`).
    pub keybag: Keybag,
    /// Its unwrapped class keys (zeroized on drop).
    pub class_keys: ClassKeys,
    /// Whether file contents and `Manifest.db` are encrypted.
    pub encrypted: bool,
}

impl std::fmt::Debug for BackupKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupKeys")
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

impl BackupKeys {
    /// A fresh keybag: password-protected for an encrypted backup (runs the KDF once), else
    /// an unencrypted-style keybag (plain backups carry one too).
    pub fn generate(encryption: Option<&Encryption>) -> Result<BackupKeys> {
        let (keybag, class_keys) = match encryption {
            Some(enc) => Keybag::generate(Some(&enc.password), enc.kdf)?,
            None => Keybag::generate(None, KdfParams::default())?,
        };
        Ok(BackupKeys {
            keybag,
            class_keys,
            encrypted: encryption.is_some(),
        })
    }

    /// The encoder producing entries for this backup.
    pub fn encoder(&self) -> EntryEncoder<'_> {
        EntryEncoder {
            keys: self.encrypted.then_some(&self.class_keys),
        }
    }
}

/// Turns (domain, path, metadata, content) into manifest [`Entry`]s and data-file bytes.
/// With class keys it encrypts; without, it passes content through.
#[derive(Debug, Clone, Copy)]
pub struct EntryEncoder<'k> {
    keys: Option<&'k ClassKeys>,
}

/// A reader counting the plaintext bytes that pass through it.
#[derive(Debug)]
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

enum ContentInner<R: Read> {
    Plain(Counting<R>),
    Encrypted(Box<EncryptingReader<Counting<R>>>),
}

/// The bytes of one data file, as stored in the backup folder (ciphertext when encrypted).
pub struct EncodedContent<R: Read> {
    inner: ContentInner<R>,
    count: Arc<AtomicU64>,
}

impl<R: Read> std::fmt::Debug for EncodedContent<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedContent")
            .field("plain_len", &self.plain_len())
            .finish_non_exhaustive()
    }
}

impl<R: Read> EncodedContent<R> {
    /// Plaintext bytes consumed so far; after reading to the end, the entry's `Size`.
    pub fn plain_len(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl<R: Read> Read for EncodedContent<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            ContentInner::Plain(r) => r.read(buf),
            ContentInner::Encrypted(r) => r.read(buf),
        }
    }
}

fn validate(domain: &str, relative_path: &str) -> Result<()> {
    path_safety::validate(domain, relative_path)
        .map(|_| ())
        .map_err(|reason| {
            Error::InvalidArgument(format!(
                "refusing to write unsafe path {domain}/{relative_path}: {reason}"
            ))
        })
}

fn with_type(mode: u32, type_bits: u32, default_perm: u32) -> u32 {
    let perm = if mode & 0o7777 == 0 {
        default_perm
    } else {
        mode & 0o7777
    };
    type_bits | perm
}

impl<'k> EntryEncoder<'k> {
    /// An encoder; `keys` `Some` encrypts (class keys of the backup), `None` writes plain.
    pub fn new(keys: Option<&'k ClassKeys>) -> Self {
        EntryEncoder { keys }
    }

    /// A directory row (`flags` 2). Mode type bits are forced to directory.
    pub fn directory(
        &self,
        domain: &str,
        relative_path: &str,
        mut meta: FileMeta,
    ) -> Result<Entry> {
        validate(domain, relative_path)?;
        meta.mode = with_type(meta.mode, 0o040000, 0o755);
        meta.size = 0;
        meta.protection_class = 0;
        meta.encryption_key = None;
        meta.target = None;
        Ok(entry(domain, relative_path, EntryKind::Directory, meta))
    }

    /// A symlink row (`flags` 4) pointing at `target` (stored as is; real phones use absolute
    /// targets).
    pub fn symlink(
        &self,
        domain: &str,
        relative_path: &str,
        target: &str,
        mut meta: FileMeta,
    ) -> Result<Entry> {
        validate(domain, relative_path)?;
        if relative_path.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{domain}: a domain root cannot be a symlink"
            )));
        }
        meta.mode = with_type(meta.mode, 0o120000, 0o755);
        meta.size = 0;
        meta.protection_class = 0;
        meta.encryption_key = None;
        meta.target = Some(target.to_string());
        Ok(entry(domain, relative_path, EntryKind::Symlink, meta))
    }

    /// A regular file row (`flags` 1) and a reader producing its data file. A protection class
    /// of 0 becomes 4. When encrypting, a random per-file key is wrapped with the class key
    /// (`EncryptionKey`). The entry's `Size` is whatever the caller put in `meta`; set it to
    /// [`EncodedContent::plain_len`] after reading the content to the end.
    pub fn file<R: Read>(
        &self,
        domain: &str,
        relative_path: &str,
        mut meta: FileMeta,
        content: R,
    ) -> Result<(Entry, EncodedContent<R>)> {
        validate(domain, relative_path)?;
        if relative_path.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{domain}: a domain root cannot be a file"
            )));
        }
        meta.mode = with_type(meta.mode, 0o100000, 0o644);
        meta.target = None;
        if meta.protection_class == 0 {
            meta.protection_class = DEFAULT_FILE_CLASS;
        }
        let count = Arc::new(AtomicU64::new(0));
        let counting = Counting {
            inner: content,
            count: Arc::clone(&count),
        };
        let inner = match self.keys {
            None => {
                meta.encryption_key = None;
                ContentInner::Plain(counting)
            }
            Some(keys) => {
                if !keys.has_class(meta.protection_class) {
                    return Err(Error::InvalidArgument(format!(
                        "{domain}/{relative_path}: protection class {} is not in the keybag",
                        meta.protection_class
                    )));
                }
                let key = FileKey::random();
                meta.encryption_key = Some(keys.wrap(meta.protection_class, &key)?);
                ContentInner::Encrypted(Box::new(EncryptingReader::new(counting, &key)))
            }
        };
        Ok((
            entry(domain, relative_path, EntryKind::File, meta),
            EncodedContent { inner, count },
        ))
    }
}

fn entry(domain: &str, relative_path: &str, kind: EntryKind, meta: FileMeta) -> Entry {
    Entry {
        file_id: file_id(domain, relative_path),
        domain: domain.to_string(),
        relative_path: relative_path.to_string(),
        kind,
        meta,
    }
}

/// Adds the rows a manifest must have but `entries` lacks: each domain's root (relative path
/// "") and every intermediate directory, as directories with mode 0o40755 and the given mtime.
/// Existing rows are kept as they are; the added rows are appended.
pub fn complete_directories(entries: &mut Vec<Entry>, mtime: i64) {
    // Borrowed keys: only the missing folders are ever copied (20,000 files name ≈ 100,000
    // folders on their way, nearly all of them the same few hundred).
    let missing: Vec<(String, String)> = {
        let present: HashSet<(&str, &str)> = entries
            .iter()
            .map(|e| (e.domain.as_str(), e.relative_path.as_str()))
            .collect();
        let mut wanted: BTreeSet<(&str, &str)> = BTreeSet::new();
        for e in entries.iter() {
            let domain = e.domain.as_str();
            wanted.insert((domain, ""));
            let rel = e.relative_path.as_str();
            let mut prefix_end = 0;
            while let Some(pos) = rel.get(prefix_end..).and_then(|r| r.find('/')) {
                let end = prefix_end + pos;
                if let Some(dir) = rel.get(..end) {
                    wanted.insert((domain, dir));
                }
                prefix_end = end + 1;
            }
        }
        wanted
            .into_iter()
            .filter(|k| !present.contains(k))
            .map(|(d, r)| (d.to_string(), r.to_string()))
            .collect()
    };
    for (domain, rel) in missing {
        let meta = FileMeta {
            mode: 0o040755,
            uid: 501,
            gid: 501,
            mtime,
            ctime: mtime,
            birth: mtime,
            ..FileMeta::default()
        };
        entries.push(entry(&domain, &rel, EntryKind::Directory, meta));
    }
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Writes `Manifest.db` (encrypted with a fresh key wrapped as class-4 `ManifestKey` when
/// `keys.encrypted`), `Manifest.plist`, `Status.plist` and `Info.plist` into `dir`, from
/// `entries` (call [`complete_directories`] first). Each file is written under a temporary name
/// and renamed, so a crash leaves either the old or the new file. The plaintext database of an
/// encrypted backup only ever exists in a private (0700) temporary directory.
pub fn write_manifest_files(
    dir: &Path,
    entries: &[Entry],
    keys: &BackupKeys,
    opts: &WriterOptions,
) -> Result<()> {
    let tmp_db = fresh_tmp_db(dir)?;
    let manifest_key = if keys.encrypted {
        let temp = private_temp_dir()?;
        let plain = temp.path().join(manifest_db::FILE_NAME);
        write_db(&plain, entries)?;
        Some(encrypt_db(&plain, &tmp_db, keys)?)
    } else {
        write_db(&tmp_db, entries)?;
        None
    };
    finish_manifest_files(dir, &tmp_db, manifest_key, keys, opts)
}

/// [`write_manifest_files`] for a `Manifest.db` that is already written: the plaintext
/// database at `plain_db` (finished, e.g. built row by row with [`ManifestDbWriter`] while the
/// files were produced, as a phone does) is moved into `dir`, or encrypted into it when
/// `keys.encrypted` (then `plain_db` should live in a private folder; it is left in place).
pub fn install_manifest_files(
    dir: &Path,
    plain_db: &Path,
    keys: &BackupKeys,
    opts: &WriterOptions,
) -> Result<()> {
    let tmp_db = fresh_tmp_db(dir)?;
    let manifest_key = if keys.encrypted {
        Some(encrypt_db(plain_db, &tmp_db, keys)?)
    } else {
        match fs::rename(plain_db, &tmp_db) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                fs::copy(plain_db, &tmp_db).at(&tmp_db)?;
            }
            Err(e) => return Err(Error::io(&tmp_db, e)),
        }
        None
    };
    finish_manifest_files(dir, &tmp_db, manifest_key, keys, opts)
}

/// The temporary name `Manifest.db` is written under in `dir`, cleared of a crashed run's file.
fn fresh_tmp_db(dir: &Path) -> Result<PathBuf> {
    let tmp_db = dir.join(".Manifest.db.iosnap-tmp");
    remove_if_exists(&tmp_db)?;
    Ok(tmp_db)
}

/// Encrypts the plaintext database `plain` into a new private file `out` with a fresh key;
/// returns that key wrapped for `Manifest.plist`.
fn encrypt_db(plain: &Path, out_path: &Path, keys: &BackupKeys) -> Result<WrappedKey> {
    let key = FileKey::random();
    let mut out = create_private_file(out_path)?;
    crypto::encrypt_file(plain, &mut out, &key)?;
    out.sync_all().at(out_path)?;
    keys.class_keys.wrap(MANIFEST_CLASS, &key)
}

/// The rest of [`write_manifest_files`] once the database is at `tmp_db`.
fn finish_manifest_files(
    dir: &Path,
    tmp_db: &Path,
    manifest_key: Option<WrappedKey>,
    keys: &BackupKeys,
    opts: &WriterOptions,
) -> Result<()> {
    let final_db = dir.join(manifest_db::FILE_NAME);
    fs::rename(tmp_db, &final_db).at(&final_db)?;

    let d = &opts.device;
    let mut lockdown = plist::Dictionary::new();
    for (k, v) in [
        ("DeviceName", &d.device_name),
        ("ProductVersion", &d.product_version),
        ("BuildVersion", &d.build_version),
        ("ProductType", &d.product_type),
        ("SerialNumber", &d.serial_number),
        ("UniqueDeviceID", &d.udid),
    ] {
        lockdown.insert(k.to_string(), plist::Value::String(v.clone()));
    }
    let manifest = ManifestPlist {
        backup_keybag: Some(keys.keybag.to_bytes()),
        manifest_key,
        is_encrypted: keys.encrypted,
        was_passcode_set: Some(opts.was_passcode_set),
        version: Some("10.0".into()),
        date: Some(opts.date),
        system_domains_version: Some("24.0".into()),
        lockdown,
        applications: plist::Dictionary::new(),
        extra: plist::Dictionary::new(),
    };
    write_atomically(dir, manifest_plist::FILE_NAME, |p| manifest.write(p))?;

    let status = StatusPlist {
        backup_state: Some("new".into()),
        snapshot_state: Some("finished".into()),
        uuid: Some(random_uuid()),
        version: Some("3.3".into()),
        date: Some(opts.date),
        is_full_backup: Some(true),
        extra: plist::Dictionary::new(),
    };
    write_atomically(dir, status_plist::FILE_NAME, |p| status.write(p))?;

    let mut extra = plist::Dictionary::new();
    extra.insert("Target Type".into(), plist::Value::String("Device".into()));
    let info = InfoPlist {
        device_name: Some(d.device_name.clone()),
        display_name: Some(d.device_name.clone()),
        product_type: Some(d.product_type.clone()),
        product_version: Some(d.product_version.clone()),
        build_version: Some(d.build_version.clone()),
        serial_number: Some(d.serial_number.clone()),
        unique_identifier: Some(d.udid.to_uppercase()),
        target_identifier: Some(d.udid.to_lowercase()),
        itunes_version: Some("12.13.0".into()),
        last_backup_date: Some(opts.date),
        installed_applications: opts.installed_applications.clone(),
        extra,
        ..InfoPlist::default()
    };
    write_atomically(dir, crate::info_plist::FILE_NAME, |p| info.write(p))?;
    Ok(())
}

fn write_db(path: &Path, entries: &[Entry]) -> Result<()> {
    remove_if_exists(path)?;
    let mut w = ManifestDbWriter::create(path)?;
    for e in entries {
        w.add(e)?;
    }
    w.finish()
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

fn write_atomically(dir: &Path, name: &str, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = dir.join(format!(".{name}.iosnap-tmp"));
    remove_if_exists(&tmp)?;
    write(&tmp)?;
    let dst = dir.join(name);
    fs::rename(&tmp, &dst).at(&dst)
}

fn random_uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode_upper(b);
    format!(
        "{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or_default(),
        h.get(8..12).unwrap_or_default(),
        h.get(12..16).unwrap_or_default(),
        h.get(16..20).unwrap_or_default(),
        h.get(20..32).unwrap_or_default()
    )
}

/// Counters returned by [`BackupWriter::finish`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriteSummary {
    /// Regular files (data files written).
    pub files: u64,
    /// Directory rows, including the ones added automatically.
    pub dirs: u64,
    /// Symlink rows.
    pub symlinks: u64,
    /// Plaintext bytes of all files.
    pub bytes: u64,
}

/// Creates a backup folder entry by entry. See the module docs.
#[derive(Debug)]
pub struct BackupWriter {
    dir: PathBuf,
    opts: WriterOptions,
    keys: BackupKeys,
    entries: Vec<Entry>,
    seen: HashSet<String>,
    buckets: HashSet<String>,
    buf: Vec<u8>,
}

impl BackupWriter {
    /// Creates (mode 0700) or takes `dir`, generates the keybag (runs the KDF once when
    /// encrypted). A non-empty existing folder is refused unless `opts.allow_non_empty`.
    pub fn create(dir: &Path, opts: WriterOptions) -> Result<BackupWriter> {
        match fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => {
                let non_empty = fs::read_dir(dir).at(dir)?.next().is_some();
                if non_empty && !opts.allow_non_empty {
                    return Err(Error::InvalidArgument(format!(
                        "{} is not empty; refusing to write a backup into it",
                        dir.display()
                    )));
                }
            }
            Ok(_) => {
                return Err(Error::InvalidArgument(format!(
                    "{} exists and is not a directory",
                    dir.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .at(dir)?;
            }
            Err(e) => return Err(Error::io(dir, e)),
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).at(dir)?;
        let keys = BackupKeys::generate(opts.encryption.as_ref())?;
        Ok(BackupWriter {
            dir: dir.to_path_buf(),
            opts,
            keys,
            entries: Vec::new(),
            seen: HashSet::new(),
            buckets: HashSet::new(),
            buf: vec![0u8; 256 * 1024],
        })
    }

    /// The keys of the backup being written (e.g. to check a test decrypts with them).
    pub fn keys(&self) -> &BackupKeys {
        &self.keys
    }

    fn claim(&mut self, e: &Entry) -> Result<()> {
        if !self.seen.insert(e.file_id.clone()) {
            return Err(Error::InvalidArgument(format!(
                "{}/{} was already added",
                e.domain, e.relative_path
            )));
        }
        Ok(())
    }

    /// Adds a directory row.
    pub fn add_directory(
        &mut self,
        domain: &str,
        relative_path: &str,
        meta: FileMeta,
    ) -> Result<&Entry> {
        let e = self.keys.encoder().directory(domain, relative_path, meta)?;
        self.push(e)
    }

    /// Adds a symlink row with `target` (no data file).
    pub fn add_symlink(
        &mut self,
        domain: &str,
        relative_path: &str,
        target: &str,
        meta: FileMeta,
    ) -> Result<&Entry> {
        let e = self
            .keys
            .encoder()
            .symlink(domain, relative_path, target, meta)?;
        self.push(e)
    }

    fn push(&mut self, e: Entry) -> Result<&Entry> {
        self.claim(&e)?;
        self.entries.push(e);
        self.entries
            .last()
            .ok_or_else(|| Error::InvalidArgument("internal: entry vanished".into()))
    }

    /// Adds a regular file, streaming `content` to its data file (encrypted when the backup is).
    /// `Size` is set to the number of bytes actually read, whatever `meta.size` said, so it is
    /// always exact (iOSbackup truncates to it).
    pub fn add_file(
        &mut self,
        domain: &str,
        relative_path: &str,
        meta: FileMeta,
        content: impl Read,
    ) -> Result<&Entry> {
        let (mut e, mut enc) = self
            .keys
            .encoder()
            .file(domain, relative_path, meta, content)?;
        self.claim(&e)?;
        let bucket = e.file_id.get(..2).unwrap_or("00").to_string();
        let bucket_dir = self.dir.join(&bucket);
        if !self.buckets.contains(&bucket) {
            match fs::DirBuilder::new().mode(0o700).create(&bucket_dir) {
                Err(err) if err.kind() != io::ErrorKind::AlreadyExists => {
                    return Err(Error::io(&bucket_dir, err));
                }
                _ => {}
            }
            self.buckets.insert(bucket);
        }
        let dst = bucket_dir.join(&e.file_id);
        let tmp = bucket_dir.join(format!(".{}.tmp", e.file_id));
        remove_if_exists(&tmp)?;
        let mut out = create_private_file(&tmp)?;
        let res = (|| -> Result<()> {
            loop {
                let n = match enc.read(&mut self.buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => {
                        return Err(Error::io(
                            format!("{domain}/{relative_path} (content)"),
                            err,
                        ));
                    }
                };
                let chunk = self
                    .buf
                    .get(..n)
                    .ok_or_else(|| Error::InvalidArgument("reader overran its buffer".into()))?;
                out.write_all(chunk).at(&tmp)?;
            }
            out.flush().at(&tmp)?;
            Ok(())
        })();
        drop(out);
        if let Err(err) = res {
            let _ = fs::remove_file(&tmp);
            self.seen.remove(&e.file_id);
            return Err(err);
        }
        fs::rename(&tmp, &dst).at(&dst)?;
        e.meta.size = enc.plain_len();
        self.push_claimed(e)
    }

    fn push_claimed(&mut self, e: Entry) -> Result<&Entry> {
        self.entries.push(e);
        self.entries
            .last()
            .ok_or_else(|| Error::InvalidArgument("internal: entry vanished".into()))
    }

    /// Adds missing domain-root and parent directory rows, then writes `Manifest.db` and the
    /// three plists. Data files are already in place.
    pub fn finish(mut self) -> Result<WriteSummary> {
        complete_directories(&mut self.entries, unix_seconds(self.opts.date));
        let mut s = WriteSummary::default();
        for e in &self.entries {
            match e.kind {
                EntryKind::File => {
                    s.files += 1;
                    s.bytes += e.meta.size;
                }
                EntryKind::Directory => s.dirs += 1,
                EntryKind::Symlink => s.symlinks += 1,
                EntryKind::Other(_) => {}
            }
        }
        write_manifest_files(&self.dir, &self.entries, &self.keys, &self.opts)?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(domain: &str, rel: &str, kind: EntryKind) -> Entry {
        entry(domain, rel, kind, FileMeta::default())
    }

    #[test]
    fn complete_directories_adds_roots_and_parents_once() {
        let mut v = vec![
            e("HomeDomain", "a/b/c.txt", EntryKind::File),
            e("HomeDomain", "a", EntryKind::Directory),
            e("MediaDomain", "x.txt", EntryKind::File),
        ];
        complete_directories(&mut v, 5);
        let mut added: Vec<(String, String)> = v
            .iter()
            .skip(3)
            .map(|e| (e.domain.clone(), e.relative_path.clone()))
            .collect();
        added.sort();
        let want: Vec<(String, String)> = [
            ("HomeDomain", ""),
            ("HomeDomain", "a/b"),
            ("MediaDomain", ""),
        ]
        .iter()
        .map(|(d, r)| (d.to_string(), r.to_string()))
        .collect();
        assert_eq!(added, want);
        assert!(
            v.iter()
                .skip(3)
                .all(|e| e.kind == EntryKind::Directory && e.meta.mode == 0o040755)
        );
        assert_eq!(v[3].file_id, file_id(&v[3].domain, &v[3].relative_path));
    }

    #[test]
    fn encoder_sets_types_classes_and_keys() {
        let (_, keys) = Keybag::generate(None, KdfParams { dpic: 1, iter: 1 }).expect("keys");
        let plain = EntryEncoder::new(None);
        let (fe, mut c) = plain
            .file("D", "f", FileMeta::default(), &b"abc"[..])
            .expect("file");
        assert_eq!((fe.meta.mode, fe.meta.protection_class), (0o100644, 4));
        assert!(fe.meta.encryption_key.is_none());
        let mut out = Vec::new();
        c.read_to_end(&mut out).expect("read");
        assert_eq!((out.as_slice(), c.plain_len()), (&b"abc"[..], 3));

        let enc = EntryEncoder::new(Some(&keys));
        let meta = FileMeta {
            protection_class: 2,
            mode: 0o600,
            ..FileMeta::default()
        };
        let (fe, mut c) = enc.file("D", "f", meta, &b"abc"[..]).expect("file");
        assert_eq!(fe.meta.mode, 0o100600);
        assert_eq!(fe.meta.encryption_key.as_ref().map(|k| k.class), Some(2));
        let mut out = Vec::new();
        c.read_to_end(&mut out).expect("read");
        assert_eq!((out.len(), c.plain_len()), (16, 3));
        let key = keys
            .unwrap(fe.meta.encryption_key.as_ref().expect("key"), "f")
            .expect("unwrap");
        let mut back = Vec::new();
        crypto::DecryptingReader::new(out.as_slice(), &key, Some(3))
            .read_to_end(&mut back)
            .expect("dec");
        assert_eq!(back, b"abc");

        assert!(
            enc.file("D", "", FileMeta::default(), &b""[..]).is_err(),
            "root cannot be a file"
        );
        assert!(
            enc.file("D", "../x", FileMeta::default(), &b""[..])
                .is_err(),
            "unsafe path"
        );
        let bad = FileMeta {
            protection_class: 99,
            ..FileMeta::default()
        };
        assert!(enc.file("D", "x", bad, &b""[..]).is_err(), "unknown class");
        let d = enc
            .directory(
                "D",
                "dir",
                FileMeta {
                    mode: 0o700,
                    size: 9,
                    ..FileMeta::default()
                },
            )
            .expect("dir");
        assert_eq!(
            (d.meta.mode, d.meta.size, d.kind),
            (0o040700, 0, EntryKind::Directory)
        );
        let l = enc
            .symlink("D", "l", "/var/x", FileMeta::default())
            .expect("link");
        assert_eq!(
            (l.meta.mode, l.meta.target.as_deref()),
            (0o120755, Some("/var/x"))
        );
    }

    #[test]
    fn uuid_shape() {
        let u = random_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.matches('-').count(), 4);
        assert!(
            u.chars()
                .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
    }
}
