//! The library on disk (DESIGN.md, "The library on disk"):
//!
//! ```text
//! <location>/catalog.sqlite
//! <location>/<UDID>/snapshots/<YYYY-MM-DDTHHMMSSZ>/   complete standard folders, immutable
//! <location>/<UDID>/.staging-<id>/                     a backup in progress, never listed
//! <location>/<UDID>/meta/<snapshot>.toml               lock flag and label (outside the folder,
//!                                                      so the folder stays a clean backup)
//! <location>/<UDID>/archives/<snapshot>/               archived copies retention never touches
//! ```
//!
//! The folders are the truth; the catalog is a cache rebuilt from them whenever they disagree.
//! A [`Staging`] becomes a [`Snapshot`] only through [`Staging::commit`]: fsync everything,
//! rename into `snapshots/`, fsync the parent, then record it in the catalog. Every mutation
//! holds the device's advisory lock; taking it first removes leftovers of interrupted runs.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use iosnap_format::backup::Backup;
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::clock::{Clock, parse_snapshot_name, snapshot_name};
use crate::error::{Error, IoContext, Result};
use crate::settings::{ConfigDir, DeviceSettings, read_toml, write_toml};
use crate::share::{
    self, CloneReport, SharingMethod, TreeUsage, clone_tree, create_private_dir, fsync_dir,
    fsync_tree,
};

/// Name of the catalog file in a location.
pub const CATALOG_FILE: &str = "catalog.sqlite";
const STAGING_PREFIX: &str = ".staging-";
const DELETING_PREFIX: &str = ".deleting-";

/// Checks that `udid` is usable as a folder name (letters, digits, `-`; at most 64): a UDID
/// comes from a device or a backup's Info.plist, so it must not smuggle `/` or `..`.
pub fn check_udid(udid: &str) -> Result<()> {
    let ok = !udid.is_empty()
        && udid.len() <= 64
        && udid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{udid:?} is not a device identifier"
        )))
    }
}

/// What the library knows about one snapshot (the `snapshots` listing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Device identifier.
    pub udid: String,
    /// Folder name, `YYYY-MM-DDTHHMMSSZ`.
    pub name: String,
    /// When it was committed (seconds since the Unix epoch, from the name).
    pub time: i64,
    /// Full path of the folder.
    pub path: PathBuf,
    /// Device name from Info.plist.
    pub device_name: Option<String>,
    /// iOS version from Info.plist.
    pub ios_version: Option<String>,
    /// Whether the backup is encrypted.
    pub encrypted: bool,
    /// Sizes (files, apparent size, bytes only this snapshot holds).
    pub usage: TreeUsage,
    /// Locked snapshots are never deleted by retention or `delete`.
    pub locked: bool,
    /// Free-text label.
    pub label: Option<String>,
}

impl SnapshotInfo {
    /// `UDID@name`, the reference that always resolves to this snapshot.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.udid, self.name)
    }
    /// The commit time.
    pub fn system_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(self.time).unwrap_or(0))
    }
}

/// Lock flag and label of one snapshot, kept beside (not inside) its folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Protected from deletion.
    #[serde(default)]
    pub locked: bool,
    /// Free-text label.
    #[serde(default)]
    pub label: Option<String>,
}

/// Facts about a device that outlive its snapshots (the retention budget's base).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMeta {
    /// Apparent size of the first snapshot ever committed for the device.
    #[serde(default)]
    pub first_backup_bytes: Option<u64>,
}

/// One backup location with its settings source and clock.
pub struct Library {
    root: PathBuf,
    config: ConfigDir,
    clock: Arc<dyn Clock>,
    forced: Option<SharingMethod>,
    free_override: Option<u64>,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("root", &self.root)
            .field("config", &self.config)
            .field("forced", &self.forced)
            .finish_non_exhaustive()
    }
}

/// The default location: `$IOSNAP_LIBRARY`, else `$XDG_DATA_HOME/iosnap`, else
/// `~/.local/share/iosnap`.
pub fn default_location() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("IOSNAP_LIBRARY").filter(|d| !d.is_empty()) {
        return Ok(d.into());
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("iosnap"));
    }
    let home = std::env::var_os("HOME")
        .ok_or_else(|| Error::Invalid("neither XDG_DATA_HOME nor HOME is set".into()))?;
    Ok(PathBuf::from(home).join(".local/share/iosnap"))
}

/// An exclusive advisory lock on one device of one location, held while mutating it.
#[derive(Debug)]
pub struct DeviceLock {
    _file: fs::File,
    udid: String,
}

impl Library {
    /// Opens (creating, mode 0700) the location `root`.
    pub fn open(root: &Path, config: ConfigDir, clock: Arc<dyn Clock>) -> Result<Library> {
        create_private_dir(root)?;
        // Leftovers of a killed `forget_device` (renamed away, so never listed).
        if let Ok(rd) = fs::read_dir(root) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(DELETING_PREFIX) {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        let forced = match std::env::var("IOSNAP_SHARING") {
            Ok(v) if !v.is_empty() => Some(SharingMethod::parse(&v).ok_or_else(|| {
                Error::Invalid(format!(
                    "IOSNAP_SHARING={v:?}: expected reflink, hard-link or copy"
                ))
            })?),
            _ => None,
        };
        Ok(Library {
            root: root.to_path_buf(),
            config,
            clock,
            forced,
            free_override: None,
        })
    }

    /// Makes [`check_space`](Self::check_space) see `bytes` free instead of asking the
    /// filesystem (tests of the space rules without filling a disk).
    pub fn override_free_space(&mut self, bytes: Option<u64>) {
        self.free_override = bytes;
    }

    /// Compares the space a new backup of `udid` is likely to need with the free space of
    /// the location, before any work starts (Time Machine's "sizing" phase): a later backup
    /// needs about what the last snapshot added (at least 5 % of its size: the new
    /// Manifest.db and changed files), a first one about the space in use on the device
    /// (`used_capacity`, from lockdown). It is "tight" when less than a tenth of the need or
    /// 1 GiB would be left afterwards.
    pub fn check_space(&self, udid: &str, used_capacity: Option<u64>) -> Result<SpaceCheck> {
        let free = match self.free_override {
            Some(b) => b,
            None => free_space(&self.root)?,
        };
        let last = self.snapshots(udid)?.pop();
        let (need, basis) = match (last, used_capacity) {
            (Some(l), _) => (
                l.usage.unique.max(l.usage.size / 20),
                SpaceBasis::LastSnapshot,
            ),
            (None, Some(u)) => (u, SpaceBasis::DeviceUsedCapacity),
            (None, None) => (0, SpaceBasis::Unknown),
        };
        let verdict = if basis == SpaceBasis::Unknown {
            SpaceVerdict::Unknown
        } else if need > free {
            SpaceVerdict::WontFit
        } else if free - need < (need / 10).max(TIGHT_MARGIN) {
            SpaceVerdict::Tight
        } else {
            SpaceVerdict::Fits
        };
        Ok(SpaceCheck {
            need,
            free,
            basis,
            verdict,
        })
    }

    /// Forces the sharing method for every device (tests; `IOSNAP_SHARING`).
    pub fn force_sharing(&mut self, m: Option<SharingMethod>) {
        self.forced = m;
    }

    /// The location's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The settings store.
    pub fn config(&self) -> &ConfigDir {
        &self.config
    }

    /// The clock.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// `<root>/<udid>`.
    pub fn device_dir(&self, udid: &str) -> Result<PathBuf> {
        check_udid(udid)?;
        Ok(self.root.join(udid))
    }

    fn snapshots_dir(&self, udid: &str) -> Result<PathBuf> {
        Ok(self.device_dir(udid)?.join("snapshots"))
    }

    fn meta_file(&self, udid: &str, name: &str) -> Result<PathBuf> {
        Ok(self
            .device_dir(udid)?
            .join("meta")
            .join(format!("{name}.toml")))
    }

    /// The catalog of this location.
    pub fn catalog(&self) -> Result<Catalog> {
        Catalog::open(&self.root.join(CATALOG_FILE))
    }

    /// The sharing method used for `udid`: forced, else the device setting, else probed in
    /// the device folder.
    pub fn sharing_method(&self, udid: &str) -> Result<SharingMethod> {
        if let Some(m) = self.forced {
            return Ok(m);
        }
        if let Some(m) = self.config.device(udid)?.sharing {
            return Ok(m);
        }
        let dir = self.device_dir(udid)?;
        create_private_dir(&dir)?;
        share::probe(&dir)
    }

    /// Devices that have a folder in this location.
    pub fn devices(&self) -> Result<Vec<String>> {
        let mut v = Vec::new();
        for e in fs::read_dir(&self.root).at(&self.root)? {
            let e = e.at(&self.root)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) && check_udid(&name).is_ok() {
                v.push(name);
            }
        }
        v.sort();
        Ok(v)
    }

    /// Names of the committed snapshots of `udid`, oldest first (folder scan; only names that
    /// parse as snapshot times count, so a staging folder is never one).
    pub fn snapshot_names(&self, udid: &str) -> Result<Vec<String>> {
        let dir = self.snapshots_dir(udid)?;
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::Io {
                    path: dir,
                    source: e,
                });
            }
        };
        let mut v = Vec::new();
        for e in rd {
            let e = e.at(&dir)?;
            let name = e.file_name().to_string_lossy().into_owned();
            if parse_snapshot_name(&name).is_some()
                && e.file_type().map(|t| t.is_dir()).unwrap_or(false)
            {
                v.push(name);
            }
        }
        v.sort();
        Ok(v)
    }

    /// Reads a snapshot's facts from its folder (the catalog's source of truth).
    pub fn scan_snapshot(&self, udid: &str, name: &str) -> Result<SnapshotInfo> {
        let path = self.snapshots_dir(udid)?.join(name);
        let time = parse_snapshot_name(name)
            .ok_or_else(|| Error::NoSuchSnapshot(format!("{udid}@{name}")))?;
        let usage = share::usage(&path)?;
        let (device_name, ios_version, encrypted) = match Backup::open(&path) {
            Ok(b) => (
                b.info().and_then(|i| i.device_name.clone()),
                b.info().and_then(|i| i.product_version.clone()),
                b.is_encrypted(),
            ),
            Err(_) => (None, None, false),
        };
        let meta = self.meta(udid, name)?;
        Ok(SnapshotInfo {
            udid: udid.to_string(),
            name: name.to_string(),
            time: time
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0),
            path,
            device_name,
            ios_version,
            encrypted,
            usage,
            locked: meta.locked,
            label: meta.label,
        })
    }

    /// Rescans every snapshot of `udid` and replaces its catalog rows (sizes change when a
    /// neighbour is added or deleted, since "unique" depends on the others).
    pub fn refresh(&self, udid: &str) -> Result<Vec<SnapshotInfo>> {
        let mut infos = Vec::new();
        for n in self.snapshot_names(udid)? {
            infos.extend(self.scan_if_present(udid, &n)?);
        }
        self.catalog()?.replace_device(udid, &infos)?;
        Ok(infos)
    }

    /// Scans a snapshot, or `None` if it vanished meanwhile (another process deleting it:
    /// the folder is renamed away before it is removed, so it is gone, not half there).
    fn scan_if_present(&self, udid: &str, name: &str) -> Result<Option<SnapshotInfo>> {
        match self.scan_snapshot(udid, name) {
            Ok(i) => Ok(Some(i)),
            Err(_) if !self.snapshots_dir(udid)?.join(name).exists() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Updates the catalog after snapshots were added or deleted, rescanning only what can
    /// have changed: snapshots missing from the catalog and the neighbours (in time) of each
    /// name in `touched`. Why neighbours suffice: a new snapshot shares only with the one it
    /// was cloned from, and a file becomes unique to a snapshot only when the one other
    /// snapshot linking it goes away, which (clones being made from the latest) is adjacent.
    pub fn refresh_around(&self, udid: &str, touched: &[String]) -> Result<Vec<SnapshotInfo>> {
        let names = self.snapshot_names(udid)?;
        let cached: std::collections::HashMap<String, SnapshotInfo> = self
            .catalog()?
            .list(udid)?
            .into_iter()
            .map(|c| (c.name.clone(), c))
            .collect();
        let mut rescan: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for t in touched {
            // Nearest existing names before and after `t` (and `t` itself if it exists).
            let pos = names.partition_point(|n| n.as_str() < t.as_str());
            for i in [pos.checked_sub(1), Some(pos), Some(pos + 1)]
                .into_iter()
                .flatten()
            {
                if let Some(n) = names.get(i) {
                    rescan.insert(n);
                }
            }
        }
        let mut infos = Vec::new();
        for n in &names {
            match cached.get(n) {
                Some(c) if !rescan.contains(n.as_str()) => {
                    let mut c = c.clone();
                    let m = self.meta(udid, n)?;
                    c.locked = m.locked;
                    c.label = m.label;
                    c.path = self.snapshots_dir(udid)?.join(n);
                    infos.push(c);
                }
                _ => infos.extend(self.scan_if_present(udid, n)?),
            }
        }
        self.catalog()?.replace_device(udid, &infos)?;
        Ok(infos)
    }

    /// The snapshots of `udid`, oldest first: catalog rows when they match the folders,
    /// otherwise a rescan (which also repairs the catalog). Lock and label come from the meta
    /// files, so they are always current.
    pub fn snapshots(&self, udid: &str) -> Result<Vec<SnapshotInfo>> {
        let names = self.snapshot_names(udid)?;
        let cached = self.catalog()?.list(udid)?;
        let same =
            cached.len() == names.len() && cached.iter().zip(&names).all(|(c, n)| &c.name == n);
        if !same {
            return self.refresh(udid);
        }
        let dir = self.snapshots_dir(udid)?;
        cached
            .into_iter()
            .map(|mut c| {
                // The location may have been moved or mounted elsewhere since it was cached.
                c.path = dir.join(&c.name);
                let m = self.meta(udid, &c.name)?;
                c.locked = m.locked;
                c.label = m.label;
                Ok(c)
            })
            .collect()
    }

    /// All snapshots of all devices.
    pub fn all_snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        let mut v = Vec::new();
        for d in self.devices()? {
            v.extend(self.snapshots(&d)?);
        }
        Ok(v)
    }

    /// Resolves `UDID@latest`, `UDID@<name>`, `UDID@<name prefix>`, `UDID` (its latest) or a
    /// name prefix unique across devices.
    pub fn resolve(&self, reference: &str) -> Result<SnapshotInfo> {
        let all = match reference.split_once('@') {
            Some((udid, _)) => self.snapshots(udid)?,
            None if self.devices()?.iter().any(|d| d == reference) => {
                return self
                    .snapshots(reference)?
                    .pop()
                    .ok_or_else(|| Error::NoSnapshots(reference.to_string()));
            }
            None => self.all_snapshots()?,
        };
        let spec = reference
            .split_once('@')
            .map(|(_, s)| s)
            .unwrap_or(reference);
        if spec == "latest" {
            let udid = reference.split_once('@').map(|(u, _)| u).unwrap_or("");
            return all
                .into_iter()
                .last()
                .ok_or_else(|| Error::NoSnapshots(udid.to_string()));
        }
        let mut hits: Vec<SnapshotInfo> = all
            .into_iter()
            .filter(|s| s.name.starts_with(spec))
            .collect();
        if let Some(exact) = hits.iter().position(|s| s.name == spec) {
            return Ok(hits.swap_remove(exact));
        }
        match hits.len() {
            0 => Err(Error::NoSuchSnapshot(reference.to_string())),
            1 => Ok(hits.remove(0)),
            _ => Err(Error::Ambiguous {
                reference: reference.to_string(),
                candidates: hits.iter().map(SnapshotInfo::reference).collect(),
            }),
        }
    }

    /// Takes the device's lock (fails fast with [`Error::Busy`] when another process has it),
    /// then removes leftovers of interrupted runs: `.staging-*`, `.deleting-*`, temp files.
    pub fn lock(&self, udid: &str) -> Result<DeviceLock> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = self.device_dir(udid)?;
        create_private_dir(&dir)?;
        let path = dir.join(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .at(&path)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(|_| Error::Busy(dir.clone()))?;
        let lock = DeviceLock {
            _file: file,
            udid: udid.to_string(),
        };
        self.recover(&lock)?;
        Ok(lock)
    }

    fn recover(&self, lock: &DeviceLock) -> Result<()> {
        let dir = self.device_dir(&lock.udid)?;
        let mut cleaned = false;
        for sub in [dir.clone(), dir.join("meta"), dir.join("archives")] {
            let rd = match fs::read_dir(&sub) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::Io {
                        path: sub,
                        source: e,
                    });
                }
            };
            for e in rd {
                let e = e.at(&sub)?;
                let name = e.file_name().to_string_lossy().into_owned();
                let p = e.path();
                if name.starts_with(STAGING_PREFIX) || name.starts_with(DELETING_PREFIX) {
                    remove_any(&p)?;
                    cleaned = true;
                } else if name.starts_with('.') && name.ends_with(".tmp") {
                    remove_any(&p)?;
                }
            }
        }
        if cleaned {
            fsync_dir(&dir)?;
        }
        Ok(())
    }

    /// Starts a new snapshot of `udid`: takes the device lock, cleans leftovers, and clones
    /// the latest snapshot (if any) into a fresh staging folder with the device's sharing
    /// method. The device (or an import) then replaces files in it by temp file + rename.
    pub fn begin(&self, udid: &str) -> Result<Staging<'_>> {
        let lock = self.lock(udid)?;
        let method = self.sharing_method(udid)?;
        let dev = self.device_dir(udid)?;
        let outer = dev.join(format!(
            "{STAGING_PREFIX}{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        create_private_dir(&outer)?;
        let dir = outer.join(udid);
        let base = self.snapshot_names(udid)?.pop();
        let report = match &base {
            Some(b) => clone_tree(&self.snapshots_dir(udid)?.join(b), &dir, method)?,
            None => {
                create_private_dir(&dir)?;
                CloneReport::default()
            }
        };
        Ok(Staging {
            lib: self,
            lock,
            outer,
            dir,
            base,
            method,
            report,
            done: false,
        })
    }

    /// Lock flag and label of a snapshot.
    pub fn meta(&self, udid: &str, name: &str) -> Result<SnapshotMeta> {
        read_toml(&self.meta_file(udid, name)?)
    }

    /// Changes lock flag / label of a snapshot (atomic write of its meta file).
    pub fn update_meta(
        &self,
        s: &SnapshotInfo,
        f: impl FnOnce(&mut SnapshotMeta),
    ) -> Result<SnapshotMeta> {
        let _lock = self.lock(&s.udid)?;
        let mut m = self.meta(&s.udid, &s.name)?;
        f(&mut m);
        write_toml(&self.meta_file(&s.udid, &s.name)?, &m)?;
        Ok(m)
    }

    /// Device facts (first backup size).
    pub fn device_meta(&self, udid: &str) -> Result<DeviceMeta> {
        read_toml(&self.device_dir(udid)?.join("device.toml"))
    }

    /// Deletes a snapshot. Refuses a locked one. Atomic for readers: the folder is first
    /// renamed out of `snapshots/` (so it is never listed half-deleted), then removed.
    pub fn delete(&self, s: &SnapshotInfo) -> Result<()> {
        let lock = self.lock(&s.udid)?;
        self.delete_locked(&lock, &s.name)?;
        self.refresh_around(&s.udid, std::slice::from_ref(&s.name))?;
        Ok(())
    }

    pub(crate) fn delete_locked(&self, lock: &DeviceLock, name: &str) -> Result<()> {
        let udid = &lock.udid;
        if self.meta(udid, name)?.locked {
            return Err(Error::Locked(format!("{udid}@{name}")));
        }
        let src = self.snapshots_dir(udid)?.join(name);
        let dev = self.device_dir(udid)?;
        let doomed = dev.join(format!("{DELETING_PREFIX}{name}"));
        fs::rename(&src, &doomed).at(&src)?;
        fsync_dir(&self.snapshots_dir(udid)?)?;
        fsync_dir(&dev)?;
        fs::remove_dir_all(&doomed).at(&doomed)?;
        let meta = self.meta_file(udid, name)?;
        match fs::remove_file(&meta) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(Error::Io {
                    path: meta,
                    source: e,
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Deletes every unlocked snapshot of `udid`; returns the names kept because locked.
    pub fn delete_all(&self, udid: &str) -> Result<Vec<String>> {
        let lock = self.lock(udid)?;
        let mut kept = Vec::new();
        for n in self.snapshot_names(udid)? {
            match self.delete_locked(&lock, &n) {
                Ok(()) => {}
                Err(Error::Locked(_)) => kept.push(n),
                Err(e) => return Err(e),
            }
        }
        self.refresh(udid)?;
        Ok(kept)
    }

    /// Copies a snapshot to `<UDID>/archives/<name>/`, sharing files; retention never looks
    /// there. Returns the archive folder.
    pub fn archive(&self, s: &SnapshotInfo) -> Result<PathBuf> {
        let _lock = self.lock(&s.udid)?;
        let dir = self.device_dir(&s.udid)?.join("archives");
        create_private_dir(&dir)?;
        let dst = dir.join(&s.name);
        if dst.exists() {
            return Err(Error::Invalid(format!(
                "{} is already archived at {}",
                s.reference(),
                dst.display()
            )));
        }
        let tmp = dir.join(format!("{STAGING_PREFIX}{}", s.name));
        clone_tree(&s.path, &tmp, self.sharing_method(&s.udid)?)?;
        fsync_tree(&tmp)?;
        fs::rename(&tmp, &dst).at(&dst)?;
        fsync_dir(&dir)?;
        Ok(dst)
    }

    /// Archived copies of `udid` (folder paths), oldest first.
    pub fn archives(&self, udid: &str) -> Result<Vec<PathBuf>> {
        let dir = self.device_dir(udid)?.join("archives");
        let mut v = Vec::new();
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd {
                let e = e.at(&dir)?;
                if parse_snapshot_name(&e.file_name().to_string_lossy()).is_some() {
                    v.push(e.path());
                }
            }
        }
        v.sort();
        Ok(v)
    }

    /// Writes a standalone copy of a snapshot (no links into the library) to `dest`, which
    /// must not exist yet. Nothing is written outside `dest`.
    pub fn export(&self, s: &SnapshotInfo, dest: &Path) -> Result<CloneReport> {
        if fs::symlink_metadata(dest).is_ok() {
            return Err(Error::Invalid(format!(
                "{} already exists; choose a new folder",
                dest.display()
            )));
        }
        let rep = clone_tree(&s.path, dest, SharingMethod::Copy)?;
        fsync_tree(dest)?;
        Ok(rep)
    }

    /// Imports any standard backup folder as a new snapshot of its device, sharing every file
    /// whose path, size and bytes equal the latest snapshot's. `udid` overrides the one in
    /// the folder's Info.plist.
    pub fn import(&self, src: &Path, udid: Option<&str>) -> Result<(SnapshotInfo, ImportReport)> {
        let backup = Backup::open(src)?;
        let udid = match udid {
            Some(u) => u.to_string(),
            None => backup
                .info()
                .and_then(|i| {
                    i.unique_identifier
                        .clone()
                        .or_else(|| i.target_identifier.clone())
                })
                .or_else(|| src.file_name().map(|n| n.to_string_lossy().into_owned()))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "{}: no device identifier; pass --device",
                        src.display()
                    ))
                })?,
        };
        check_udid(&udid)?;
        let staging = self.begin(&udid)?;
        let report = staging.sync_from(src)?;
        let snap = staging.commit()?;
        Ok((snap.info()?, report))
    }
}

impl Library {
    /// Removes everything this location holds for `udid`: snapshots (locked ones too),
    /// archives, metadata, and its catalog rows. The folder is renamed away first, so a
    /// crash never leaves a half-removed device listed; the leftover is removed on the next
    /// [`Library::open`]. Settings are separate ([`ConfigDir::forget_device`]).
    pub fn forget_device(&self, udid: &str) -> Result<u64> {
        let lock = self.lock(udid)?;
        let n = self.snapshot_names(udid)?.len() as u64;
        let dir = self.device_dir(udid)?;
        let doomed = self
            .root
            .join(format!("{DELETING_PREFIX}{udid}-{}", std::process::id()));
        fs::rename(&dir, &doomed).at(&dir)?;
        fsync_dir(&self.root)?;
        drop(lock);
        match fs::remove_dir_all(&doomed) {
            // Another process opening the library may be removing the leftover too.
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(Error::Io {
                    path: doomed,
                    source: e,
                });
            }
            _ => {}
        }
        self.catalog()?.replace_device(udid, &[])?;
        Ok(n)
    }
}

/// Free space below which, after a backup, a location counts as tight (1 GiB).
pub const TIGHT_MARGIN: u64 = 1 << 30;

/// What [`Library::check_space`] estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SpaceCheck {
    /// Bytes the backup is likely to write.
    pub need: u64,
    /// Bytes free for this user in the location.
    pub free: u64,
    /// Where `need` comes from.
    pub basis: SpaceBasis,
    /// The outcome.
    pub verdict: SpaceVerdict,
}

/// Where a [`SpaceCheck`]'s estimate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpaceBasis {
    /// What the device's last snapshot added (at least 5 % of its size).
    LastSnapshot,
    /// The space in use on the device (first backup).
    DeviceUsedCapacity,
    /// Nothing to go by (first backup, device did not say).
    Unknown,
}

impl SpaceBasis {
    /// Words for messages.
    pub fn describe(self) -> &'static str {
        match self {
            SpaceBasis::LastSnapshot => "what the last snapshot added",
            SpaceBasis::DeviceUsedCapacity => "the space in use on the device",
            SpaceBasis::Unknown => "no estimate",
        }
    }
}

/// Whether a backup fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpaceVerdict {
    /// Room to spare.
    Fits,
    /// Fits, but less than a tenth of the need or [`TIGHT_MARGIN`] would be left: warn.
    Tight,
    /// Needs more than is free: do not start.
    WontFit,
    /// No estimate: nothing to say.
    Unknown,
}

/// What [`Library::move_device`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MoveReport {
    /// Snapshots moved.
    pub snapshots: u64,
    /// Archived copies moved.
    pub archives: u64,
    /// Snapshots and archives that were already at the destination (an interrupted move
    /// resumed).
    pub already_there: u64,
    /// Files shared with a file already moved (same inode at the source, or the same bytes
    /// at the same path as the previous tree when the source shares by reflink or not at all).
    pub shared: u64,
    /// Files copied.
    pub copied: u64,
}

/// Where the files of the moved trees went: source inode → destination file. Any file that
/// was one inode in several snapshots or archives at the source becomes one shared file
/// again at the destination, whichever trees it was in.
type MovedInodes = std::collections::HashMap<(u64, u64), PathBuf>;

impl Library {
    /// Moves every snapshot and archive of `udid` to the location `dest`, keeping the
    /// sharing between them: a file that was one inode in several trees is shared again at
    /// the destination (with its sharing method), and a file equal to the same path of the
    /// previous tree is shared too (so reflinked or copied sources gain sharing). Each tree is
    /// staged and renamed into place like a backup, so an interrupted move leaves complete
    /// trees on both sides and can simply be run again; the originals are removed only once
    /// everything is durable at the destination.
    pub fn move_device(&self, udid: &str, dest: &Library) -> Result<MoveReport> {
        if dest.root == self.root {
            return Err(Error::Invalid(format!(
                "{} is already the location of {udid}",
                self.root.display()
            )));
        }
        let src_lock = self.lock(udid)?;
        let dst_lock = dest.lock(udid)?;
        let method = dest.sharing_method(udid)?;
        let names = self.snapshot_names(udid)?;
        let existing: std::collections::HashSet<String> =
            dest.snapshot_names(udid)?.into_iter().collect();
        let dst_snaps = dest.snapshots_dir(udid)?;
        create_private_dir(&dst_snaps)?;
        let mut rep = MoveReport::default();
        let mut moved = MovedInodes::new();
        let mut prev: Option<(PathBuf, PathBuf)> = None;
        for name in &names {
            let src = self.snapshots_dir(udid)?.join(name);
            let dst = dst_snaps.join(name);
            if existing.contains(name) {
                rep.already_there += 1;
                remember_moved(&src, &dst, &mut moved)?;
            } else {
                let stage = dest
                    .device_dir(udid)?
                    .join(format!("{STAGING_PREFIX}move-{name}"));
                move_tree(
                    &src,
                    &stage,
                    &dst,
                    prev.as_ref(),
                    method,
                    &mut moved,
                    &mut rep,
                )?;
                let meta = self.meta(udid, name)?;
                if meta != SnapshotMeta::default() {
                    write_toml(&dest.meta_file(udid, name)?, &meta)?;
                }
                rep.snapshots += 1;
            }
            prev = Some((src, dst));
        }
        // Archives: each is a copy of the snapshot of the same name (compared with it when
        // that snapshot still exists, else with the latest snapshot before it).
        let archives = self.archives(udid)?;
        if !archives.is_empty() {
            let dst_arch = dest.device_dir(udid)?.join("archives");
            create_private_dir(&dst_arch)?;
            for src in &archives {
                let Some(name) = src.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                    continue;
                };
                let dst = dst_arch.join(&name);
                if dst.exists() {
                    rep.already_there += 1;
                    remember_moved(src, &dst, &mut moved)?;
                    continue;
                }
                let base = names
                    .iter()
                    .rev()
                    .find(|n| n.as_str() <= name.as_str())
                    .map(|n| -> Result<(PathBuf, PathBuf)> {
                        Ok((self.snapshots_dir(udid)?.join(n), dst_snaps.join(n)))
                    })
                    .transpose()?;
                let stage = dst_arch.join(format!("{STAGING_PREFIX}{name}"));
                move_tree(
                    src,
                    &stage,
                    &dst,
                    base.as_ref(),
                    method,
                    &mut moved,
                    &mut rep,
                )?;
                rep.archives += 1;
            }
        }
        let dm = self.device_meta(udid)?;
        if dm != DeviceMeta::default() {
            write_toml(&dest.device_dir(udid)?.join("device.toml"), &dm)?;
        }
        dest.refresh(udid)?;
        // Everything is durable at the destination: remove the originals (locked ones too —
        // they were moved, not deleted).
        for name in &names {
            let meta = self.meta_file(udid, name)?;
            if meta.exists() {
                fs::remove_file(&meta).at(&meta)?;
            }
            self.delete_locked(&src_lock, name)?;
        }
        if !archives.is_empty() {
            let dev = self.device_dir(udid)?;
            for src in &archives {
                let Some(name) = src.file_name() else {
                    continue;
                };
                let doomed = dev.join(format!(
                    "{DELETING_PREFIX}archive-{}",
                    name.to_string_lossy()
                ));
                fs::rename(src, &doomed).at(src)?;
                fsync_dir(&dev.join("archives"))?;
                fs::remove_dir_all(&doomed).at(&doomed)?;
            }
        }
        self.refresh(udid)?;
        drop(dst_lock);
        Ok(rep)
    }
}

/// Records, for a tree already at the destination (a resumed move), which source inode each
/// destination file stands for.
fn remember_moved(src: &Path, dst: &Path, moved: &mut MovedInodes) -> Result<()> {
    for rel in share::files_of(src)? {
        let from = src.join(&rel);
        let to = dst.join(&rel);
        let m = fs::symlink_metadata(&from).at(&from)?;
        if to.is_file() {
            moved.entry((m.dev(), m.ino())).or_insert(to);
        }
    }
    Ok(())
}

/// Builds the copy of the tree `src` in `stage` (sharing with already moved files where it
/// can), flushes it and renames it to `dst`. `prev` is the (source, destination) pair of the
/// tree to compare same-path files with.
fn move_tree(
    src: &Path,
    stage: &Path,
    dst: &Path,
    prev: Option<&(PathBuf, PathBuf)>,
    method: SharingMethod,
    moved: &mut MovedInodes,
    rep: &mut MoveReport,
) -> Result<()> {
    let _ = fs::remove_dir_all(stage);
    create_private_dir(stage)?;
    for rel in share::files_of(src)? {
        let from = src.join(&rel);
        let to = stage.join(&rel);
        if let Some(parent) = to.parent() {
            create_private_dir(parent)?;
        }
        let m = fs::symlink_metadata(&from).at(&from)?;
        let key = (m.dev(), m.ino());
        let base = match moved.get(&key) {
            Some(p) => Some(p.clone()),
            None if method != SharingMethod::Copy => prev
                .map(|(ps, pd)| (ps.join(&rel), pd.join(&rel)))
                .filter(|(ps, pd)| pd.is_file() && same_content(&from, ps).unwrap_or(false))
                .map(|(_, pd)| pd),
            None => None,
        };
        let shared = match base {
            Some(b) => share::share_file(&b, &to, method)?,
            None => {
                share::copy_private(&from, &to)?;
                false
            }
        };
        if shared {
            rep.shared += 1;
        } else {
            rep.copied += 1;
        }
        moved.entry(key).or_insert_with(|| dst.join(&rel));
    }
    fsync_tree(stage)?;
    fs::rename(stage, dst).at(dst)?;
    if let Some(parent) = dst.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

fn remove_any(p: &Path) -> Result<()> {
    let m = fs::symlink_metadata(p).at(p)?;
    if m.is_dir() {
        fs::remove_dir_all(p).at(p)
    } else {
        fs::remove_file(p).at(p)
    }
}

/// What an import did with the files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Files identical to the previous snapshot's, kept shared.
    pub shared: u64,
    /// Files copied in (new or changed).
    pub copied: u64,
    /// Bytes copied in.
    pub copied_bytes: u64,
    /// Files of the previous snapshot absent from the imported folder, dropped.
    pub removed: u64,
}

/// A snapshot being built: a private folder `.staging-*` nobody lists, holding the device
/// lock. Only [`commit`](Staging::commit) turns it into a [`Snapshot`]; dropping it removes it.
#[derive(Debug)]
pub struct Staging<'l> {
    lib: &'l Library,
    lock: DeviceLock,
    outer: PathBuf,
    dir: PathBuf,
    base: Option<String>,
    method: SharingMethod,
    report: CloneReport,
    done: bool,
}

impl<'l> Staging<'l> {
    /// The folder to write the backup into (a complete clone of the base snapshot). It is
    /// named after the device, so `device_target()/<UDID>/` is this folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }
    /// The folder to give the device layer as its target: it writes `<target>/<UDID>/`,
    /// which is [`path`](Self::path).
    pub fn device_target(&self) -> &Path {
        &self.outer
    }
    /// The device.
    pub fn udid(&self) -> &str {
        &self.lock.udid
    }
    /// The snapshot it was cloned from.
    pub fn base(&self) -> Option<&str> {
        self.base.as_deref()
    }
    /// How files are shared with the base.
    pub fn method(&self) -> SharingMethod {
        self.method
    }
    /// What the initial clone did.
    pub fn clone_report(&self) -> CloneReport {
        self.report
    }

    /// Replaces (or creates) the file `rel` with `bytes` through a temp file and a rename, so
    /// a file shared with an older snapshot is never modified in place.
    pub fn write_file(&self, rel: &Path, bytes: &[u8]) -> Result<()> {
        let dst = self.checked(rel)?;
        if let Some(parent) = dst.parent() {
            create_private_dir(parent)?;
        }
        crate::settings::write_atomic(&dst, bytes)
    }

    /// Removes the file `rel` (its older snapshot's link stays).
    pub fn remove_file(&self, rel: &Path) -> Result<()> {
        let p = self.checked(rel)?;
        fs::remove_file(&p).at(p)
    }

    fn checked(&self, rel: &Path) -> Result<PathBuf> {
        use std::path::Component;
        if rel.as_os_str().is_empty()
            || !rel.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(Error::Invalid(format!(
                "{} is not a relative path inside the backup",
                rel.display()
            )));
        }
        Ok(self.dir.join(rel))
    }

    /// Makes the staging folder equal to the backup folder `src`: identical files (same
    /// path, size and bytes) stay shared, others are copied in by temp + rename, files
    /// missing from `src` are removed.
    pub fn sync_from(&self, src: &Path) -> Result<ImportReport> {
        use rayon::prelude::*;
        let src_files = share::files_of(src)?;
        let wanted: std::collections::HashSet<&PathBuf> = src_files.iter().collect();
        let outcomes = src_files
            .par_iter()
            .map(|rel| -> Result<Option<u64>> {
                let from = src.join(rel);
                let to = self.dir.join(rel);
                if same_content(&from, &to)? {
                    return Ok(None);
                }
                if let Some(parent) = to.parent() {
                    create_private_dir(parent)?;
                }
                let name = to
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let tmp = to.with_file_name(format!(".{name}.import.tmp"));
                let _ = fs::remove_file(&tmp);
                share::copy_private(&from, &tmp)?;
                fs::rename(&tmp, &to).at(&to)?;
                Ok(Some(fs::metadata(&to).at(&to)?.len()))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut rep = ImportReport::default();
        for o in outcomes {
            match o {
                None => rep.shared += 1,
                Some(n) => {
                    rep.copied += 1;
                    rep.copied_bytes += n;
                }
            }
        }
        for rel in share::files_of(&self.dir)? {
            if !wanted.contains(&rel) {
                let p = self.dir.join(&rel);
                fs::remove_file(&p).at(&p)?;
                rep.removed += 1;
            }
        }
        Ok(rep)
    }

    /// Publishes the staging folder as a snapshot: checks it opens as a backup, fsyncs every
    /// file and folder, renames it to `snapshots/<time>/`, fsyncs the parents, records it in
    /// the catalog. With snapshots turned off for the device, older unlocked snapshots are
    /// then deleted (the new one is already durable).
    pub fn commit(mut self) -> Result<Snapshot<'l>> {
        Backup::open(&self.dir)?;
        fsync_tree(&self.dir)?;
        let lib = self.lib;
        let udid = self.lock.udid.clone();
        let snaps = lib.snapshots_dir(&udid)?;
        create_private_dir(&snaps)?;
        let mut t = lib.clock.now();
        let mut name = snapshot_name(t);
        while snaps.join(&name).exists() || self.base.as_deref().is_some_and(|b| b >= name.as_str())
        {
            t += Duration::from_secs(1);
            name = snapshot_name(t);
        }
        let dst = snaps.join(&name);
        fs::rename(&self.dir, &dst).at(&dst)?;
        self.done = true;
        fsync_dir(&snaps)?;
        // The now-empty staging wrapper; a crash before this leaves it for `recover`.
        let _ = fs::remove_dir_all(&self.outer);
        fsync_dir(&lib.device_dir(&udid)?)?;
        let dev_meta_path = lib.device_dir(&udid)?.join("device.toml");
        let mut dm: DeviceMeta = read_toml(&dev_meta_path)?;
        if dm.first_backup_bytes.is_none() {
            dm.first_backup_bytes = Some(share::usage(&dst)?.size);
            write_toml(&dev_meta_path, &dm)?;
        }
        let settings: DeviceSettings = lib.config.device(&udid)?;
        let mut touched = vec![name.clone()];
        if !settings.snapshots {
            for old in lib.snapshot_names(&udid)? {
                if old != name && !lib.meta(&udid, &old)?.locked {
                    lib.delete_locked(&self.lock, &old)?;
                    touched.push(old);
                }
            }
        }
        lib.refresh_around(&udid, &touched)?;
        Ok(Snapshot {
            lib,
            udid,
            name,
            path: dst,
        })
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.outer);
        }
    }
}

fn same_content(a: &Path, b: &Path) -> Result<bool> {
    use std::io::Read;
    let mb = match fs::symlink_metadata(b) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(Error::Io {
                path: b.to_path_buf(),
                source: e,
            });
        }
    };
    let ma = fs::metadata(a).at(a)?;
    if ma.len() != mb.len() {
        return Ok(false);
    }
    if ma.dev() == mb.dev() && ma.ino() == mb.ino() {
        return Ok(true);
    }
    let mut fa = io::BufReader::new(fs::File::open(a).at(a)?);
    let mut fb = io::BufReader::new(fs::File::open(b).at(b)?);
    let mut ba = vec![0u8; 64 * 1024];
    let mut bb = vec![0u8; 64 * 1024];
    loop {
        let n = fa.read(&mut ba).at(a)?;
        if n == 0 {
            return Ok(true);
        }
        let (Some(ca), Some(cb)) = (ba.get(..n), bb.get_mut(..n)) else {
            return Ok(false);
        };
        if fb.read_exact(cb).is_err() || ca != &*cb {
            return Ok(false);
        }
    }
}

/// A committed snapshot: immutable from here on.
#[derive(Debug)]
pub struct Snapshot<'l> {
    lib: &'l Library,
    udid: String,
    name: String,
    path: PathBuf,
}

impl Snapshot<'_> {
    /// The device.
    pub fn udid(&self) -> &str {
        &self.udid
    }
    /// The folder name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Its current listing entry.
    pub fn info(&self) -> Result<SnapshotInfo> {
        self.lib.scan_snapshot(&self.udid, &self.name)
    }
}

/// Free space for an unprivileged user in `dir` (statvfs `f_bavail × f_frsize`).
pub fn free_space(dir: &Path) -> Result<u64> {
    let s = rustix::fs::statvfs(dir).map_err(|e| Error::Io {
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// A display name of the filesystem holding `dir` (from statfs's magic number; only shown to
/// the user, never used to decide how to share files).
pub fn filesystem_name(dir: &Path) -> Result<String> {
    let s = rustix::fs::statfs(dir).map_err(|e| Error::Io {
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    #[allow(clippy::unnecessary_cast)]
    let magic = s.f_type as i64;
    Ok(match magic {
        0xEF53 => "ext4".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x0102_1994 => "tmpfs".into(),
        0x6969 => "nfs".into(),
        0xFF53_4D42 | 0xFE53_4D42 => "smb".into(),
        0x4d44 => "vfat".into(),
        0x2011_BAB0 => "exfat".into(),
        0x794C_7630 => "overlayfs".into(),
        0x6573_5546 => "fuse".into(),
        0x2FC1_2FC1 => "zfs".into(),
        other => format!("unknown (0x{other:x})"),
    })
}
