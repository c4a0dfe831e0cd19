//! Reflinks on a real copy-on-write filesystem: a loop-mounted XFS image (needs root and
//! mkfs.xfs from xfsprogs; scripts/debian-packages.txt lists it). The probe must find
//! reflinks there, and `move_device` into it must keep snapshots and archives sharing data:
//! checked per file with FIEMAP's "shared" extent flag (`filefrag -v`) and as a whole with
//! the filesystem's used blocks, which grow by about one copy of the data, not four.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, UDID, files, snapshot_files};
use iosnap_store::SharingMethod;

struct Mount {
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

/// A fresh 320 MiB XFS (its minimum size) loop-mounted in a temp folder (in RAM when
/// /dev/shm exists), or `None` when this is not root or xfsprogs is missing.
fn xfs() -> Option<Mount> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let mkfs = Command::new("mkfs.xfs").arg("-V").output().is_ok();
    if !root || !mkfs {
        eprintln!("SKIPPED: needs root and mkfs.xfs (root: {root}, mkfs.xfs: {mkfs})");
        return None;
    }
    let tmp = if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let img = tmp.path().join("xfs.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(320 << 20)
        .unwrap();
    assert!(
        Command::new("mkfs.xfs")
            .args(["-q", "-f"])
            .arg(&img)
            .status()
            .unwrap()
            .success()
    );
    let dir = tmp.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    assert!(
        Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&dir)
            .status()
            .unwrap()
            .success()
    );
    Some(Mount { dir, _tmp: tmp })
}

fn used(p: &Path) -> u64 {
    let s = rustix::fs::statvfs(p).unwrap();
    (s.f_blocks - s.f_bfree) * s.f_frsize
}

/// Whether every extent of `file` is marked shared (FIEMAP via `filefrag -v`).
fn all_extents_shared(file: &Path) -> bool {
    let out = Command::new("filefrag")
        .arg("-v")
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let extents: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.trim_start()
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .collect();
    !extents.is_empty() && extents.iter().all(|l| l.contains("shared"))
}

#[test]
fn move_into_xfs_keeps_snapshots_and_archives_reflinked() {
    let Some(mnt) = xfs() else { return };
    assert_eq!(
        iosnap_store::share::probe(&mnt.dir).unwrap(),
        SharingMethod::Reflink,
        "the probe must find reflinks on XFS"
    );
    // Source: hard links on the ordinary temp filesystem. 40 files of 256 KiB; each version
    // changes every 10th file.
    let env = Env::new(Some(SharingMethod::HardLink));
    for v in 1..=3u8 {
        env.lib
            .import(
                &env.backup(&format!("v{v}"), &files(40, 256 << 10, v, 10)),
                None,
            )
            .unwrap();
        env.days(1);
    }
    let snaps = env.lib.snapshots(UDID).unwrap();
    env.lib.archive(&snaps[2]).unwrap();
    let one = snaps[0].usage.size;

    // Destination: a library on XFS, sharing method probed (not forced).
    let dest = iosnap_store::Library::open(
        &mnt.dir.join("iosnap.Backups"),
        iosnap_store::ConfigDir::at(env.tmp.path().join("config")),
        env.clock.clone(),
    )
    .unwrap();
    let before = used(&mnt.dir);
    let rep = env.lib.move_device(UDID, &dest).unwrap();
    rustix::fs::sync();
    let added = used(&mnt.dir) - before;
    assert_eq!((rep.snapshots, rep.archives), (3, 1), "{rep:?}");
    assert_eq!(dest.sharing_method(UDID).unwrap(), SharingMethod::Reflink);
    // Four trees of `one` bytes each; shared, they need one copy plus the changed files
    // (2 × 4 files) plus Manifest.db files and metadata.
    assert!(
        added < one + one / 2,
        "{added} B added for trees of {one} B each: extents not shared ({rep:?})"
    );
    let moved = dest.snapshots(UDID).unwrap();
    let archive = dest.archives(UDID).unwrap().remove(0);
    // Every data file left unchanged by all versions (36 of 40) is reflinked in all four trees.
    let first = snapshot_files(&moved[0].path);
    let last = snapshot_files(&moved[2].path);
    let unchanged: Vec<&PathBuf> = first
        .iter()
        .filter(|(k, v)| v.1.len() == 256 << 10 && last.get(*k).is_some_and(|l| l.1 == v.1))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(unchanged.len(), 36);
    for tree in [&moved[0].path, &moved[1].path, &moved[2].path, &archive] {
        for rel in &unchanged {
            assert!(
                all_extents_shared(&tree.join(rel)),
                "{} is not reflinked",
                tree.join(rel).display()
            );
        }
    }
    // Contents are exactly the originals'.
    let arch_files = snapshot_files(&archive);
    let last_files = snapshot_files(&moved[2].path);
    assert_eq!(
        arch_files.values().map(|v| &v.1).collect::<Vec<_>>(),
        last_files.values().map(|v| &v.1).collect::<Vec<_>>()
    );
    drop(dest);
    drop(env);
    drop(mnt);
}
