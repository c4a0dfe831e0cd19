//! Shared helpers of the integration tests: a library in a temp folder with a manual clock,
//! and small plaintext backup folders written with the format crate's writer.
#![allow(dead_code, clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use iosnap_format::FileMeta;
use iosnap_format::writer::{BackupWriter, DeviceInfo, WriterOptions};
use iosnap_store::{ConfigDir, Library, ManualClock, SharingMethod};

pub const UDID: &str = "00008030-0000000000000001";
pub const T0: u64 = 1_795_555_800; // 2026-11-24T21:30:00Z

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub lib: Library,
}

impl Env {
    pub fn new(method: Option<SharingMethod>) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at_unix(T0));
        let mut lib = Library::open(
            &tmp.path().join("lib"),
            ConfigDir::at(tmp.path().join("config")),
            clock.clone(),
        )
        .unwrap();
        lib.force_sharing(method);
        Env { tmp, clock, lib }
    }

    pub fn days(&self, d: u64) {
        self.clock.advance(Duration::from_secs(d * 86_400));
    }

    /// Writes a backup folder `name` (under the temp dir, outside the library) from `files`.
    pub fn backup(&self, name: &str, files: &[(String, Vec<u8>)]) -> PathBuf {
        let dir = self.tmp.path().join("src").join(name);
        write_backup(&dir, files);
        dir
    }
}

pub fn write_backup(dir: &Path, files: &[(String, Vec<u8>)]) {
    let opts = WriterOptions {
        device: DeviceInfo {
            udid: UDID.into(),
            ..DeviceInfo::default()
        },
        date: UNIX_EPOCH + Duration::from_secs(T0),
        ..WriterOptions::default()
    };
    let mut w = BackupWriter::create(dir, opts).unwrap();
    for (path, bytes) in files {
        let meta = FileMeta {
            size: bytes.len() as u64,
            mode: 0o100644,
            mtime: 1_700_000_000,
            ..FileMeta::default()
        };
        w.add_file("HomeDomain", path, meta, &bytes[..]).unwrap();
    }
    w.finish().unwrap();
}

/// `n` files of `size` bytes; `version` changes the content of every `every`-th file.
pub fn files(n: usize, size: usize, version: u8, every: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let v = if every > 0 && i % every == 0 {
                version
            } else {
                0
            };
            let byte = (i as u8).wrapping_mul(31).wrapping_add(v.wrapping_mul(7));
            let mut bytes = vec![byte; size];
            bytes[0] = v;
            (format!("Library/f{i:04}.bin"), bytes)
        })
        .collect()
}

/// (relative path → (inode, content)) of every file under `root`.
pub fn snapshot_files(root: &Path) -> std::collections::BTreeMap<PathBuf, (u64, Vec<u8>)> {
    let mut m = std::collections::BTreeMap::new();
    for e in walkdir::WalkDir::new(root) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let md = fs::metadata(e.path()).unwrap();
            m.insert(
                e.path().strip_prefix(root).unwrap().to_path_buf(),
                (md.ino(), fs::read(e.path()).unwrap()),
            );
        }
    }
    m
}

/// Asserts every listed snapshot opens and verifies clean, and nothing staged is listed.
pub fn check_library(lib: &Library) -> usize {
    let snaps = lib.all_snapshots().unwrap();
    for s in &snaps {
        assert!(!s.name.starts_with('.'), "{} listed", s.name);
        let b = iosnap_format::Backup::open(&s.path).unwrap();
        let r = iosnap_format::verify::verify(&b, true).unwrap();
        assert!(r.is_clean(), "{} does not verify: {r:?}", s.reference());
    }
    snaps.len()
}
