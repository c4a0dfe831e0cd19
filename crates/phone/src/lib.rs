//! # iosnap-phone — a synthetic iPhone, deterministic from a seed
//!
//! The device simulator serves this phone over the real protocols, and tests back it up, churn it
//! and restore it. Everything is a pure function of the [`PhoneSpec`] (plus the recorded history
//! of churns and restores), so the same seed gives the same phone on every machine and every run:
//! same listing, same bytes, byte-identical SQLite databases.
//!
//! * **Listing** ([`Phone::files`]): the usual domains (HomeDomain, MediaDomain, CameraRollDomain,
//!   KeychainDomain, WirelessDomain, SystemPreferencesDomain, RootDomain, DatabaseDomain …), 10–26
//!   apps with `AppDomain-`/`AppDomainGroup-`/`AppDomainPlugin-` containers, a directory row for
//!   every intermediate folder and each domain root (`""`), a few symlinks, realistic modes, owners,
//!   times, inodes and protection classes. Metadata only: ≥200,000 rows are fine.
//! * **Content** ([`Phone::open`]): bulk files and media payloads are streamed from a keyed
//!   pseudo-random generator (never held in memory); databases are built once into a cache folder;
//!   small files (plists, real JPEGs) are kept in memory. The generator is recorded in the saved
//!   state: phones saved before 2026-12 keep xoshiro256** (and so their bytes); new phones read a
//!   shared 1 MiB pool XOR a per-file sequence, about ten times cheaper, which matters when the
//!   simulator shares the cores of the host it is benchmarking.
//! * **Datasets** ([`Phone::datasets`]): the typed records behind each database, for checking an
//!   exporter record by record. See [`datasets`] for where each database lives.
//! * **Time** ([`Phone::churn`]): each churn is the next generation — files modified, added and
//!   removed, databases gaining rows.
//! * **Persistence** ([`Phone::save`], [`Phone::load`]): the spec and the history of operations;
//!   contents written by a restore ([`Phone::set_file`]) are stored in the state folder.
//!
//! ## Differences from the DEVICE_API.md sketch
//!
//! * [`Phone::generate`] and [`Phone::churn`] return `Result<_, PhoneError>`: both build SQLite
//!   files into a cache folder, which can fail (disk full, permissions).
//! * [`Phone::set_file`] takes the kind from `meta.mode` (file, directory or symlink) instead of a
//!   separate argument; [`Phone::remove_file`] removes a directory with everything below it.
//! * [`Phone::generate_in`] chooses the cache folder; [`Phone::load`] uses `<state>/cache`.
//!
//! ## Where each database lives
//!
//! | dataset | domain / relative path |
//! |---|---|
//! | [`datasets::Messages`] | `HomeDomain/Library/SMS/sms.db`, attachments `MediaDomain/Library/SMS/Attachments/…` |
//! | [`datasets::Contacts`] | `HomeDomain/Library/AddressBook/AddressBook.sqlitedb` + `AddressBookImages.sqlitedb` |
//! | [`datasets::Calls`] | `HomeDomain/Library/CallHistoryDB/CallHistory.storedata` |
//! | [`datasets::Notes`] | `AppDomainGroup-group.com.apple.notes/NoteStore.sqlite` |
//! | [`datasets::Calendar`] | `HomeDomain/Library/Calendar/Calendar.sqlitedb` |
//! | [`datasets::Safari`] | `HomeDomain/Library/Safari/History.db` and `Bookmarks.db` |
//! | [`datasets::Photos`] | `CameraRollDomain/Media/PhotoData/Photos.sqlite`, files `Media/DCIM/1xxAPPLE/…` |
//! | [`datasets::VoiceMemos`] | `MediaDomain/Media/Recordings/CloudRecordings.db` (`Recordings.db` before iOS 12) + `.m4a` |
//! | [`datasets::Voicemail`] | `HomeDomain/Library/Voicemail/voicemail.db` + `<ROWID>.amr` |
//! | [`keychain::Keychain`] | `KeychainDomain/keychain-backup.plist`, exported per backup by [`Phone::export_keychain`] |
//! | [`datasets::WhatsApp`] | `AppDomainGroup-group.net.whatsapp.WhatsApp.shared/ChatStorage.sqlite` + `Message/Media/…` |

pub mod datasets;

mod bulk;
mod content;
mod db;
mod error;
pub mod jpeg;
pub mod keychain;
mod media;
mod rng;
mod state;
mod tree;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iosnap_format::{Entry, EntryKind, FileMeta, file_id};
use serde::{Deserialize, Serialize};

pub use datasets::{BuiltDb, Datasets, IosVersion, Levels};
pub use error::PhoneError;
pub use tree::{App, MAX_APPS};

use content::{Source, StreamReader};
use datasets::Ctx;

/// What phone to make. `Default` is a realistic small phone (fast to generate in tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneSpec {
    /// The seed every random choice derives from.
    pub seed: u64,
    /// Number of extra bulk files (documents, music …) on top of the fixed tree and datasets.
    pub files: u64,
    /// Approximate total size of the bulk files, in bytes.
    pub bytes: u64,
    /// iOS version, e.g. "17.5"; decides database schema generations (sms.db before/after 16,
    /// Photos ZGENERICASSET/ZASSET at 14, Notes account column …).
    pub product_version: String,
    /// Number of installed apps (capped at [`MAX_APPS`]).
    pub apps: usize,
    /// Starting record counts of the datasets.
    pub data: Levels,
    /// Unix time of generation 0 ("now" when the phone is made); generation *g* is `epoch + g` days.
    pub epoch: i64,
}

impl Default for PhoneSpec {
    fn default() -> Self {
        PhoneSpec {
            seed: 1,
            files: 1000,
            bytes: 64 << 20,
            product_version: "17.5".into(),
            apps: 20,
            data: Levels::default(),
            epoch: 1_732_000_000,
        }
    }
}

/// One row of the phone's listing: a file, directory or symlink with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneFile {
    /// Backup domain, e.g. `HomeDomain`.
    pub domain: String,
    /// Path inside the domain ("" for the domain root).
    pub relative_path: String,
    /// File, directory or symlink.
    pub kind: EntryKind,
    /// Metadata as the phone reports it (no encryption key; `target` set on symlinks).
    pub meta: FileMeta,
    source: Source,
}

impl PhoneFile {
    /// The backup file id (SHA-1 of `domain-relative_path`).
    pub fn file_id(&self) -> String {
        file_id(&self.domain, &self.relative_path)
    }

    /// The manifest entry a backup of this file would carry.
    pub fn to_entry(&self) -> Entry {
        Entry {
            file_id: self.file_id(),
            domain: self.domain.clone(),
            relative_path: self.relative_path.clone(),
            kind: self.kind,
            meta: self.meta.clone(),
        }
    }

    fn key(&self) -> (&str, &str) {
        (&self.domain, &self.relative_path)
    }
}

/// One recorded change, replayed by [`Phone::load`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Op {
    Churn {
        share: f64,
    },
    Set {
        domain: String,
        path: String,
        meta: state::MetaRecord,
        blob: Option<String>,
    },
    Remove {
        domain: String,
        path: String,
    },
}

/// The synthetic phone: its listing, generation counter and datasets. See the crate docs.
#[derive(Debug, Clone)]
pub struct Phone {
    spec: PhoneSpec,
    ctx: Ctx,
    generation: u64,
    files: Vec<PhoneFile>,
    apps: Vec<App>,
    layout: bulk::Layout,
    levels: Levels,
    datasets: Datasets,
    dbs: Vec<BuiltDb>,
    next_bulk: u64,
    next_inode: u64,
    ops: Vec<Op>,
    tombstones: BTreeSet<(String, String)>,
    cache_dir: PathBuf,
    blob_dir: PathBuf,
    /// Whether the cache folder belongs to this phone alone (its state folder's `cache/`), so
    /// databases of past generations may be deleted from it.
    owns_cache: bool,
    /// The content generator of its streamed files ([`content::CONTENT_V2`] for new phones; a
    /// phone saved before it existed keeps [`content::CONTENT_V1`] and so its bytes).
    content: u32,
}

const DAY: i64 = 86_400;

impl Phone {
    /// Generates the phone of `spec`, building its databases into a shared cache under the
    /// system temp folder (`$TMPDIR/iosnap-phone-cache`). Fails if the spec's version is not
    /// supported or the cache cannot be written.
    pub fn generate(spec: &PhoneSpec) -> Result<Phone, PhoneError> {
        Self::generate_in(spec, &std::env::temp_dir().join("iosnap-phone-cache"))
    }

    /// Like [`Phone::generate`], with the database cache (and restored contents) in `cache_dir`.
    pub fn generate_in(spec: &PhoneSpec, cache_dir: &Path) -> Result<Phone, PhoneError> {
        let mut p = Self::skeleton(spec, cache_dir)?;
        p.refresh_databases()?;
        Ok(p)
    }

    /// Builds everything but the databases (so replays don't rebuild them at each step).
    fn skeleton(spec: &PhoneSpec, cache_dir: &Path) -> Result<Phone, PhoneError> {
        let ios = IosVersion::parse(&spec.product_version)
            .ok_or_else(|| PhoneError::Version(spec.product_version.clone()))?;
        // 2001-01-01 … 2100-01-01: keeps every date computation far from overflow.
        if !(datasets::COCOA_EPOCH..=4_102_444_800).contains(&spec.epoch) {
            return Err(PhoneError::Epoch(spec.epoch));
        }
        let ctx = Ctx {
            seed: spec.seed,
            ios,
            epoch: spec.epoch,
            base: spec.data.clone(),
        };
        let apps = tree::apps(spec.apps.min(MAX_APPS));
        let layout = bulk::Layout::new(spec.seed, &apps, spec.files, spec.bytes);
        let datasets = Datasets::generate(&ctx, &spec.data);
        let mut p = Phone {
            spec: spec.clone(),
            ctx,
            generation: 0,
            files: Vec::new(),
            apps,
            layout,
            levels: spec.data.clone(),
            datasets,
            dbs: Vec::new(),
            next_bulk: spec.files,
            next_inode: 0,
            ops: Vec::new(),
            tombstones: BTreeSet::new(),
            cache_dir: cache_dir.to_path_buf(),
            blob_dir: cache_dir.join("restored"),
            owns_cache: false,
            content: content::CONTENT_V2,
        };
        let mut files = Vec::new();
        for it in tree::items(spec.seed, &p.apps, spec.epoch) {
            let kind = if it.target.is_some() {
                EntryKind::Symlink
            } else if matches!(it.source, Source::None) {
                EntryKind::Directory
            } else {
                EntryKind::File
            };
            let mut f = p.make(&it.domain, &it.path, kind, it.source, it.size, None);
            f.meta.target = it.target;
            files.push(f);
        }
        for df in p.datasets.files(&p.ctx) {
            let f = p.make(
                df.domain,
                &df.path,
                EntryKind::File,
                df.source,
                df.size,
                Some(df.mtime.min(spec.epoch)),
            );
            files.push(f);
        }
        for i in 0..spec.files {
            files.push(p.bulk_file(i, 0, None));
        }
        // Database placeholders (sizes filled by refresh_databases); mtime = newest record.
        for (i, (domain, path)) in DB_PATHS.iter().map(|(d, p)| (*d, p(ios))).enumerate() {
            let mtime = db_last_change(&p.datasets, i).min(spec.epoch);
            files.push(p.make(
                domain,
                path,
                EntryKind::File,
                Source::Database(usize::MAX),
                0,
                Some(mtime),
            ));
        }
        p.files = files;
        p.add_missing_dirs();
        p.sort();
        // Inodes in listing order for the initial tree.
        for f in &mut p.files {
            f.meta.inode = 100_000 + p.next_inode;
            p.next_inode += 1;
        }
        Ok(p)
    }

    /// The spec this phone was made from.
    pub fn spec(&self) -> &PhoneSpec {
        &self.spec
    }

    /// How many churns this phone has been through.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Unix time "now" on the phone: the epoch plus one day per generation.
    pub fn now(&self) -> i64 {
        self.spec.epoch + self.generation as i64 * DAY
    }

    /// The listing, sorted by (domain, relative_path): directories, files and symlinks.
    pub fn files(&self) -> impl Iterator<Item = &PhoneFile> {
        self.files.iter()
    }

    /// Number of listing rows of every kind.
    pub fn entry_count(&self) -> usize {
        self.files.len()
    }

    /// Number of regular files.
    pub fn file_count(&self) -> usize {
        self.files
            .iter()
            .filter(|f| f.kind == EntryKind::File)
            .count()
    }

    /// Total size of the regular files, in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.files
            .iter()
            .filter(|f| f.kind == EntryKind::File)
            .map(|f| f.meta.size)
            .sum()
    }

    /// The row at (domain, relative_path), if present.
    pub fn find(&self, domain: &str, relative_path: &str) -> Option<&PhoneFile> {
        self.position(domain, relative_path)
            .ok()
            .and_then(|i| self.files.get(i))
    }

    /// The installed apps.
    pub fn apps(&self) -> &[App] {
        &self.apps
    }

    /// The typed records behind the databases at the current generation.
    pub fn datasets(&self) -> &Datasets {
        &self.datasets
    }

    /// The phone's keychain (passwords, Wi-Fi networks, keys), a pure function of the spec.
    pub fn keychain(&self) -> keychain::Keychain {
        keychain::Keychain::generate(self.spec.seed, self.spec.epoch)
    }

    /// Exports the keychain into `KeychainDomain/keychain-backup.plist` for a backup made with
    /// `keys`, as iOS does when a backup starts: items encrypted for that backup's keybag when
    /// it is encrypted, empty tables for a plain backup. The row's size and mtime change only
    /// when its bytes do (same keybag → same bytes, so an incremental backup skips it). A file
    /// put there by a restore is left alone. Returns whether the content changed.
    pub fn export_keychain(
        &mut self,
        keys: &iosnap_format::BackupKeys,
    ) -> Result<bool, PhoneError> {
        let Ok(pos) = self.position(keychain::DOMAIN, keychain::RELATIVE_PATH) else {
            return Ok(false);
        };
        let bytes = self
            .keychain()
            .backup_plist(self.spec.seed, keys)
            .map_err(PhoneError::Keychain)?;
        let now = self.now();
        let Some(f) = self.files.get_mut(pos) else {
            return Ok(false);
        };
        match &f.source {
            Source::Small(old) if old.as_ref() == bytes.as_slice() => Ok(false),
            Source::Small(_) => {
                f.meta.size = bytes.len() as u64;
                f.meta.mtime = now.max(f.meta.mtime);
                f.meta.ctime = f.meta.mtime;
                f.source = Source::Small(Arc::from(bytes));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The current record counts.
    pub fn levels(&self) -> &Levels {
        &self.levels
    }

    /// The databases of the phone, where they live and the cache files they were built into.
    pub fn databases(&self) -> &[BuiltDb] {
        &self.dbs
    }

    /// Streams the content of `f` (same bytes on every call). Directories and symlinks are empty.
    /// Fails only when a database or restored file of the cache/state folder cannot be opened.
    pub fn open(&self, f: &PhoneFile) -> io::Result<Box<dyn Read + Send>> {
        Ok(match &f.source {
            Source::None => Box::new(io::empty()),
            Source::Small(b) => Box::new(io::Cursor::new(SharedBytes(b.clone()))),
            Source::Stream { header, key, len } => {
                Box::new(StreamReader::new(header.clone(), *key, *len, self.content))
            }
            Source::Bulk { index, version } => {
                let plan = self.layout.plan(*index, *version);
                let header = media::bulk_header(plan.ext, *index, *version);
                Box::new(StreamReader::new(
                    Arc::from(header),
                    self.layout.content_key(*index, *version),
                    f.meta.size,
                    self.content,
                ))
            }
            Source::Database(i) => {
                let db = self
                    .dbs
                    .get(*i)
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "database not built"))?;
                let file = File::open(&db.file)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", db.file.display())))?;
                Box::new(file)
            }
            Source::Restored { blob } => {
                let path = self.blob_dir.join(blob);
                let file = File::open(&path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                Box::new(file)
            }
        })
    }

    /// Reads the whole content of `f` into memory (convenience for small files and tests).
    pub fn read(&self, f: &PhoneFile) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(f.meta.size).unwrap_or(0).min(64 << 20));
        self.open(f)?.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Moves the phone to the next generation: about `share` (0–1) of the regular files change —
    /// 60% of them modified (new content, size and mtime), 20% removed, 20% new files added, so
    /// the count stays roughly stable — and the databases gain rows (new messages, calls, visits,
    /// WhatsApp messages, photos). Deterministic: the same phone churned with the same shares is
    /// the same phone. Fails only when the new databases cannot be written to the cache.
    pub fn churn(&mut self, share: f64) -> Result<(), PhoneError> {
        self.churn_inner(share);
        self.ops.push(Op::Churn { share });
        self.refresh_databases()
    }

    fn churn_inner(&mut self, share: f64) {
        use rand::Rng;
        let share = if share.is_finite() {
            share.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.generation += 1;
        let now = self.now();
        let mut r = rng::rng(self.spec.seed, "churn", self.generation);
        let regular = self.file_count();
        let k = (share * regular as f64).round() as usize;
        let adds = k / 5;
        let bulk_idx: Vec<usize> = self
            .files
            .iter()
            .enumerate()
            .filter(|(_, f)| matches!(f.source, Source::Bulk { .. }))
            .map(|(i, _)| i)
            .collect();
        let removes = (k / 5).min(bulk_idx.len());
        let mods = (k - adds - k / 5).min(bulk_idx.len() - removes);
        let picked = rand::seq::index::sample(&mut r, bulk_idx.len(), removes + mods).into_vec();
        let mut remove_set = vec![false; self.files.len()];
        for (n, &pi) in picked.iter().enumerate() {
            let fi = bulk_idx[pi];
            if n < removes {
                remove_set[fi] = true;
                continue;
            }
            if let Some(f) = self.files.get_mut(fi)
                && let Source::Bulk { index, version } = f.source
            {
                let v = version + 1;
                f.source = Source::Bulk { index, version: v };
                f.meta.size = self.layout.size(index, v);
                f.meta.mtime = now - r.gen_range(0..DAY);
                f.meta.ctime = f.meta.mtime;
            }
        }
        let mut i = 0;
        self.files.retain(|_| {
            let keep = !remove_set[i];
            i += 1;
            keep
        });
        for _ in 0..adds {
            let idx = self.next_bulk;
            self.next_bulk += 1;
            let birth = now - r.gen_range(0..DAY);
            let mut f = self.bulk_file(idx, 0, Some(birth));
            f.meta.inode = self.alloc_inode();
            self.files.push(f);
        }
        // Datasets grow.
        let grow = |n: u32, rate: f64| {
            n.saturating_add(
                ((f64::from(n) * share * rate).ceil() as u32).max(u32::from(share > 0.0)),
            )
        };
        self.levels.messages = grow(self.levels.messages, 0.5);
        self.levels.calls = grow(self.levels.calls, 0.3);
        self.levels.history_visits = grow(self.levels.history_visits, 0.5);
        self.levels.whatsapp_messages = grow(self.levels.whatsapp_messages, 0.5);
        self.levels.photos = grow(self.levels.photos, 0.2);
        let old = std::mem::replace(
            &mut self.datasets,
            Datasets::generate(&self.ctx, &self.levels),
        );
        // Databases whose records changed were written "now".
        for (i, (domain, path)) in DB_PATHS
            .iter()
            .map(|(d, p)| (*d, p(self.ctx.ios)))
            .enumerate()
        {
            if !db_changed(&old, &self.datasets, i) {
                continue;
            }
            let Ok(pos) = self.position(domain, path) else {
                continue;
            };
            if let Some(f) = self
                .files
                .get_mut(pos)
                .filter(|f| matches!(f.source, Source::Database(_)))
            {
                f.meta.mtime = now;
                f.meta.ctime = now;
            }
        }
        let mut added = Vec::new();
        for df in self.datasets.files(&self.ctx) {
            if self
                .tombstones
                .contains(&(df.domain.to_string(), df.path.clone()))
            {
                continue;
            }
            if self.position(df.domain, &df.path).is_err() {
                let mut f = self.make(
                    df.domain,
                    &df.path,
                    EntryKind::File,
                    df.source,
                    df.size,
                    Some(df.mtime.min(now)),
                );
                f.meta.inode = self.alloc_inode();
                added.push(f);
            }
        }
        self.files.extend(added);
        self.add_missing_dirs();
        self.sort();
    }

    /// Builds/reuses every database and points the listing's database rows at them.
    fn refresh_databases(&mut self) -> Result<(), PhoneError> {
        let built = self.datasets.build(&self.ctx, &self.cache_dir)?;
        for (i, db) in built.iter().enumerate() {
            let Ok(pos) = self.position(db.domain, db.relative_path) else {
                continue;
            };
            let Some(f) = self.files.get_mut(pos) else {
                continue;
            };
            if !matches!(f.source, Source::Database(_)) {
                continue; // replaced by a restore: leave it alone
            }
            f.meta.size = db.size;
            f.source = Source::Database(i);
        }
        self.dbs = built;
        if self.owns_cache {
            self.prune_cache();
        }
        Ok(())
    }

    /// Deletes cached databases of past generations (only in a cache this phone owns). Failures
    /// are ignored: a stale cache file costs disk space, never correctness.
    fn prune_cache(&self) {
        let keep: BTreeSet<&Path> = self.dbs.iter().filter_map(|d| d.file.parent()).collect();
        let Ok(dir) = std::fs::read_dir(self.cache_dir.join("db")) else {
            return;
        };
        for e in dir.flatten() {
            let path = e.path();
            if path.is_dir() && !keep.contains(path.as_path()) {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }

    /// Replaces or creates the row (domain, relative_path) with `meta` and `content`, as a restore
    /// does. The kind comes from `meta.mode` (file when the mode has no type bits); `meta.size`
    /// is set to the content length. File content is stored in the state folder (or the cache
    /// folder before the first [`Phone::save`]). Missing parent directories are created.
    pub fn set_file(
        &mut self,
        domain: &str,
        relative_path: &str,
        meta: FileMeta,
        mut content: impl Read,
    ) -> io::Result<()> {
        validate(domain, relative_path)?;
        let kind = match EntryKind::from_mode(meta.mode) {
            EntryKind::Other(0) => EntryKind::File,
            k => k,
        };
        let (blob, size) = if kind == EntryKind::File {
            let (blob, size) = state::store_blob(&self.blob_dir, &mut content)?;
            (Some(blob), size)
        } else {
            (None, 0)
        };
        let mut meta = meta;
        meta.size = size;
        meta.encryption_key = None;
        let record = state::MetaRecord::from_meta(&meta, kind);
        self.apply_set(domain, relative_path, &record, blob.clone());
        self.ops.push(Op::Set {
            domain: domain.into(),
            path: relative_path.into(),
            meta: record,
            blob,
        });
        Ok(())
    }

    fn apply_set(
        &mut self,
        domain: &str,
        path: &str,
        rec: &state::MetaRecord,
        blob: Option<String>,
    ) {
        let (kind, meta) = rec.to_meta();
        let source = match blob {
            Some(b) => Source::Restored { blob: b },
            None => Source::None,
        };
        self.tombstones
            .remove(&(domain.to_string(), path.to_string()));
        let f = PhoneFile {
            domain: domain.into(),
            relative_path: path.into(),
            kind,
            meta,
            source,
        };
        match self.position(domain, path) {
            Ok(i) => {
                if let Some(slot) = self.files.get_mut(i) {
                    *slot = f;
                }
            }
            Err(i) => {
                self.files.insert(i, f);
                let mut need = Vec::new();
                parents(path, |p| need.push(p.to_string()));
                need.push(String::new());
                for p in need {
                    if let Err(j) = self.position(domain, &p) {
                        let mut d =
                            self.make(domain, &p, EntryKind::Directory, Source::None, 0, None);
                        d.meta.inode = self.alloc_inode();
                        self.files.insert(j, d);
                    }
                }
            }
        }
    }

    /// Removes the row (domain, relative_path) and, for a directory, everything below it, as a
    /// restore with "remove items not restored" does. Returns how many rows were removed.
    pub fn remove_file(&mut self, domain: &str, relative_path: &str) -> usize {
        let n = self.apply_remove(domain, relative_path);
        self.ops.push(Op::Remove {
            domain: domain.into(),
            path: relative_path.into(),
        });
        n
    }

    fn apply_remove(&mut self, domain: &str, path: &str) -> usize {
        let before = self.files.len();
        let prefix = format!("{path}/");
        let mut gone = Vec::new();
        self.files.retain(|f| {
            let hit = f.domain == domain
                && (f.relative_path == path
                    || path.is_empty()
                    || f.relative_path.starts_with(&prefix));
            if hit {
                gone.push((f.domain.clone(), f.relative_path.clone()));
            }
            !hit
        });
        self.tombstones.extend(gone);
        before - self.files.len()
    }

    /// Saves the phone's state (spec, generation history, restored contents) into `dir`, so that
    /// [`Phone::load`] gives back the same phone. Databases are rebuilt from the records on load.
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        state::save(self, dir).map_err(io::Error::from)
    }

    /// Loads a phone saved with [`Phone::save`]: regenerates it from the spec and replays the
    /// recorded churns and restores. Databases are cached in `dir/cache`.
    pub fn load(dir: &Path) -> io::Result<Phone> {
        state::load(dir).map_err(io::Error::from)
    }

    // ---- internals ----

    fn position(&self, domain: &str, path: &str) -> Result<usize, usize> {
        self.files
            .binary_search_by(|f| f.key().cmp(&(domain, path)))
    }

    fn sort(&mut self) {
        self.files.sort_unstable_by(|a, b| a.key().cmp(&b.key()));
        self.files.dedup_by(|a, b| a.key() == b.key());
    }

    fn alloc_inode(&mut self) -> u64 {
        let i = 100_000 + self.next_inode;
        self.next_inode += 1;
        i
    }

    fn bulk_file(&self, index: u64, version: u32, birth: Option<i64>) -> PhoneFile {
        let plan = self.layout.plan(index, version);
        let mut f = self.make(
            &plan.domain,
            &plan.path,
            EntryKind::File,
            Source::Bulk { index, version },
            plan.size,
            birth,
        );
        if let Some(b) = birth {
            f.meta.birth = b;
            f.meta.mtime = b;
            f.meta.ctime = b;
        }
        f
    }

    /// A row with metadata drawn deterministically from (seed, domain, path).
    fn make(
        &self,
        domain: &str,
        path: &str,
        kind: EntryKind,
        source: Source,
        size: u64,
        mtime: Option<i64>,
    ) -> PhoneFile {
        let k = rng::key(self.spec.seed, domain, rng::key(0, path, 0));
        let epoch = self.spec.epoch;
        let age = (rng::unit(k) * 700.0 * DAY as f64) as i64;
        let birth = mtime.map_or(epoch - age - 30 * DAY, |m| m - (k % 3600) as i64);
        let mtime = mtime.unwrap_or(birth + (rng::unit(k ^ 1) * (age as f64)) as i64);
        let system = matches!(
            domain,
            "RootDomain"
                | "DatabaseDomain"
                | "SystemPreferencesDomain"
                | "WirelessDomain"
                | "KeychainDomain"
        );
        let (uid, gid) = if system && k & 3 != 0 {
            (0, 0)
        } else {
            (501, 501)
        };
        let (mode, protection_class) = match kind {
            EntryKind::Directory => (if k & 15 == 0 { 0o40700 } else { 0o40755 }, 0),
            EntryKind::Symlink => (0o120755, 0),
            _ => {
                let pc = match (k >> 8) % 20 {
                    0..=8 => 3,
                    9..=16 => 4,
                    17 | 18 => 1,
                    _ => 2,
                };
                let pc = if matches!(source, Source::Database(_)) {
                    3
                } else {
                    pc
                };
                (
                    if (k >> 16) & 1 == 0 {
                        0o100644
                    } else {
                        0o100600
                    },
                    pc,
                )
            }
        };
        // The keychain export is listed read-only with class 1 (NSFileProtectionComplete),
        // owned by root, as in the real iOS 14.3 Manifest.db under shared/fixtures.
        let (mode, protection_class, uid, gid) =
            if domain == keychain::DOMAIN && path == keychain::RELATIVE_PATH {
                (0o100400, 1, 0, 0)
            } else {
                (mode, protection_class, uid, gid)
            };
        PhoneFile {
            domain: domain.into(),
            relative_path: path.into(),
            kind,
            meta: FileMeta {
                size: if kind == EntryKind::File { size } else { 0 },
                mode,
                uid,
                gid,
                mtime,
                ctime: mtime,
                birth,
                inode: 0,
                protection_class,
                ..FileMeta::default()
            },
            source,
        }
    }

    /// Adds a directory row for every missing ancestor and domain root (unsorted append).
    fn add_missing_dirs(&mut self) {
        self.sort();
        let mut need: BTreeSet<(String, String)> = BTreeSet::new();
        for f in &self.files {
            need.insert((f.domain.clone(), String::new()));
            parents(&f.relative_path, |p| {
                need.insert((f.domain.clone(), p.to_string()));
            });
        }
        let mut new = Vec::new();
        for (d, p) in need {
            if self.position(&d, &p).is_err() {
                let mut f = self.make(&d, &p, EntryKind::Directory, Source::None, 0, None);
                if self.next_inode > 0 {
                    f.meta.inode = 100_000 + self.next_inode;
                    self.next_inode += 1;
                }
                new.push(f);
            }
        }
        self.files.extend(new);
    }
}

/// Calls `f` with every proper ancestor of `path` ("a/b/c" → "a", "a/b").
fn parents(path: &str, mut f: impl FnMut(&str)) {
    for (i, c) in path.char_indices() {
        if c == '/' && i > 0 {
            f(&path[..i]);
        }
    }
}

fn validate(domain: &str, path: &str) -> Result<(), PhoneError> {
    let bad = |reason| {
        Err(PhoneError::Path {
            domain: domain.into(),
            relative_path: path.into(),
            reason,
        })
    };
    if domain.is_empty() || domain.contains('/') || domain.contains('\0') {
        return bad("domain must be a non-empty name without '/' or NUL");
    }
    if path.starts_with('/') || path.ends_with('/') || path.contains('\0') {
        return bad("relative path must not start or end with '/' or contain NUL");
    }
    if path
        .split('/')
        .any(|c| c == ".." || c == "." || (c.is_empty() && !path.is_empty()))
    {
        return bad("relative path must not contain '.', '..' or empty components");
    }
    Ok(())
}

/// Where each database lives: (domain, relative path for this iOS version).
type DbPath = (&'static str, fn(IosVersion) -> &'static str);
const DB_PATHS: &[DbPath] = &[
    ("HomeDomain", |_| "Library/SMS/sms.db"),
    ("HomeDomain", |_| "Library/AddressBook/AddressBook.sqlitedb"),
    (
        "HomeDomain",
        |_| "Library/AddressBook/AddressBookImages.sqlitedb",
    ),
    (
        "HomeDomain",
        |_| "Library/CallHistoryDB/CallHistory.storedata",
    ),
    (
        "AppDomainGroup-group.com.apple.notes",
        |_| "NoteStore.sqlite",
    ),
    ("HomeDomain", |_| "Library/Calendar/Calendar.sqlitedb"),
    ("HomeDomain", |_| "Library/Safari/History.db"),
    ("HomeDomain", |_| "Library/Safari/Bookmarks.db"),
    ("CameraRollDomain", |_| "Media/PhotoData/Photos.sqlite"),
    ("MediaDomain", |v| {
        if v.major >= 12 {
            "Media/Recordings/CloudRecordings.db"
        } else {
            "Media/Recordings/Recordings.db"
        }
    }),
    ("HomeDomain", |_| "Library/Voicemail/voicemail.db"),
    (
        "AppDomainGroup-group.net.whatsapp.WhatsApp.shared",
        |_| "ChatStorage.sqlite",
    ),
];

/// Newest record time of the dataset behind `DB_PATHS[i]`.
fn db_last_change(d: &Datasets, i: usize) -> i64 {
    match i {
        0 => d.messages.last_change(),
        1 | 2 => d.contacts.last_change(),
        3 => d.calls.last_change(),
        4 => d.notes.last_change(),
        5 => d.calendar.last_change(),
        6 | 7 => d.safari.last_change(),
        8 => d.photos.last_change(),
        9 => d.voice_memos.last_change(),
        10 => d.voicemail.last_change(),
        _ => d.whatsapp.last_change(),
    }
}

/// Whether the records behind `DB_PATHS[i]` differ between `a` and `b`.
fn db_changed(a: &Datasets, b: &Datasets, i: usize) -> bool {
    match i {
        0 => a.messages != b.messages,
        1 | 2 => a.contacts != b.contacts,
        3 => a.calls != b.calls,
        4 => a.notes != b.notes,
        5 => a.calendar != b.calendar,
        6 | 7 => a.safari != b.safari,
        8 => a.photos != b.photos,
        9 => a.voice_memos != b.voice_memos,
        10 => a.voicemail != b.voicemail,
        _ => a.whatsapp != b.whatsapp,
    }
}

/// `Arc<[u8]>` as `AsRef<[u8]>` for a `Cursor` (no copy per open).
struct SharedBytes(Arc<[u8]>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests;
