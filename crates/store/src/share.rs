//! How snapshots share unchanged files: reflink (copy-on-write extents), hard link, or plain
//! copy, probed with real files in the location (filesystem-type tables lie: NAS shares, FUSE,
//! loop mounts). Cloning is parallel (rayon); the clone of a directory tree never writes into
//! an existing file, so the source snapshot cannot change.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// How a new snapshot shares the files of the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SharingMethod {
    /// Copy-on-write clone (FICLONE on XFS/btrfs): shared extents, independent inodes.
    Reflink,
    /// Hard links: the same inode in every snapshot; safe because nothing is written in place.
    HardLink,
    /// Full copies: no sharing at all (filesystems without links).
    Copy,
}

impl SharingMethod {
    /// The name shown to users and accepted in settings / `IOSNAP_SHARING`.
    pub fn name(self) -> &'static str {
        match self {
            SharingMethod::Reflink => "reflink",
            SharingMethod::HardLink => "hard-link",
            SharingMethod::Copy => "copy",
        }
    }

    /// Parses [`name`](Self::name) (also `hardlink`).
    pub fn parse(s: &str) -> Option<SharingMethod> {
        match s {
            "reflink" => Some(SharingMethod::Reflink),
            "hard-link" | "hardlink" => Some(SharingMethod::HardLink),
            "copy" => Some(SharingMethod::Copy),
            _ => None,
        }
    }
}

/// Finds the best sharing method in `dir` by trying it: a probe file is reflinked, then hard
/// linked (checking the link count and inode really match); the probe files are removed.
pub fn probe(dir: &Path) -> Result<SharingMethod> {
    let stamp = format!("{}-{}", std::process::id(), unique_suffix());
    let a = dir.join(format!(".probe-{stamp}.a"));
    let b = dir.join(format!(".probe-{stamp}.b"));
    let c = dir.join(format!(".probe-{stamp}.c"));
    fs::write(&a, b"iosnap sharing probe").at(&a)?;
    let result = (|| {
        if reflink_copy::reflink(&a, &c).is_ok() {
            return SharingMethod::Reflink;
        }
        if fs::hard_link(&a, &b).is_ok() {
            let ok = match (fs::metadata(&a), fs::metadata(&b)) {
                (Ok(ma), Ok(mb)) => ma.ino() == mb.ino() && ma.dev() == mb.dev() && ma.nlink() == 2,
                _ => false,
            };
            if ok {
                return SharingMethod::HardLink;
            }
        }
        SharingMethod::Copy
    })();
    for p in [&a, &b, &c] {
        let _ = fs::remove_file(p);
    }
    Ok(result)
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Creates `dir` (and missing parents) with mode 0700, and forces 0700 on `dir` itself.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .at(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).at(dir)
}

/// The files and folders of a tree, relative to its root (folders parents-first).
struct TreeList {
    dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
    symlinks: Vec<PathBuf>,
}

fn list_tree(root: &Path) -> Result<TreeList> {
    let mut t = TreeList {
        dirs: Vec::new(),
        files: Vec::new(),
        symlinks: Vec::new(),
    };
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e.map_err(|err| {
            let path = err.path().unwrap_or(root).to_path_buf();
            Error::Io {
                path,
                source: err
                    .into_io_error()
                    .unwrap_or_else(|| io::Error::other("walk error")),
            }
        })?;
        let rel = e
            .path()
            .strip_prefix(root)
            .map_err(|_| {
                Error::Invalid(format!("{} escapes {}", e.path().display(), root.display()))
            })?
            .to_path_buf();
        let ft = e.file_type();
        if ft.is_dir() {
            t.dirs.push(rel);
        } else if ft.is_file() {
            t.files.push(rel);
        } else if ft.is_symlink() {
            t.symlinks.push(rel);
        }
    }
    Ok(t)
}

/// What a clone did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloneReport {
    /// Files now sharing storage with the source.
    pub shared: u64,
    /// Files that had to be copied (method `Copy`, or a per-file fallback such as `EMLINK`).
    pub copied: u64,
    /// Folders created.
    pub dirs: u64,
}

/// Clones the tree `src` into the new folder `dst` (which must not exist) with `method`,
/// files in parallel. A file whose link or reflink fails (e.g. too many links) is copied.
pub fn clone_tree(src: &Path, dst: &Path, method: SharingMethod) -> Result<CloneReport> {
    if fs::symlink_metadata(dst).is_ok() {
        return Err(Error::Invalid(format!("{} already exists", dst.display())));
    }
    create_private_dir(dst)?;
    let tree = list_tree(src)?;
    for d in &tree.dirs {
        let p = dst.join(d);
        fs::DirBuilder::new().mode(0o700).create(&p).at(&p)?;
    }
    for l in &tree.symlinks {
        let target = fs::read_link(src.join(l)).at(src.join(l))?;
        std::os::unix::fs::symlink(&target, dst.join(l)).at(dst.join(l))?;
    }
    let results: Vec<Result<bool>> = tree
        .files
        .par_iter()
        .map(|rel| share_file(&src.join(rel), &dst.join(rel), method))
        .collect();
    let mut rep = CloneReport {
        dirs: tree.dirs.len() as u64,
        ..CloneReport::default()
    };
    for r in results {
        if r? {
            rep.shared += 1;
        } else {
            rep.copied += 1;
        }
    }
    Ok(rep)
}

/// Makes `dst` (which must not exist) a file with `src`'s content, sharing storage when
/// `method` allows; returns whether it is shared. Copies keep 0600 (backup data is private).
pub fn share_file(src: &Path, dst: &Path, method: SharingMethod) -> Result<bool> {
    match method {
        SharingMethod::HardLink => {
            if fs::hard_link(src, dst).is_ok() {
                return Ok(true);
            }
        }
        SharingMethod::Reflink => {
            if reflink_copy::reflink(src, dst).is_ok() {
                return Ok(true);
            }
            let _ = fs::remove_file(dst);
        }
        SharingMethod::Copy => {}
    }
    copy_private(src, dst)?;
    Ok(false)
}

/// Copies `src` to the new file `dst` with mode 0600, byte for byte (no reflink).
pub fn copy_private(src: &Path, dst: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut input = fs::File::open(src).at(src)?;
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .at(dst)?;
    io::copy(&mut input, &mut out).at(dst)?;
    Ok(())
}

/// Flushes every file and folder of `root` to stable storage (files in parallel), folders
/// after their files, so a rename published afterwards cannot expose unwritten data. A file
/// with more than one link is a hard link into a committed (already flushed) snapshot: only
/// its directory entry is new, and the folder fsync covers that.
pub fn fsync_tree(root: &Path) -> Result<()> {
    let tree = list_tree(root)?;
    tree.files
        .par_iter()
        .map(|rel| {
            let p = root.join(rel);
            if fs::symlink_metadata(&p).at(&p)?.nlink() > 1 {
                return Ok(());
            }
            fs::File::open(&p).and_then(|f| f.sync_all()).at(&p)
        })
        .collect::<Result<Vec<()>>>()?;
    for d in tree.dirs.iter().rev() {
        fsync_dir(&root.join(d))?;
    }
    fsync_dir(root)
}

/// Flushes a folder's entries (a rename or create in it becomes durable).
pub fn fsync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|f| f.sync_all()).at(dir)
}

/// Sizes of one tree, counting by inode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeUsage {
    /// Regular files.
    pub files: u64,
    /// Apparent size: the sum of file lengths (what a standalone copy would need).
    pub size: u64,
    /// Bytes of files only this tree holds (link count 1). With reflinks this is an upper
    /// bound: shared extents are not detected.
    pub unique: u64,
    /// Disk blocks (st_blocks × 512) of those unique files: the disk this tree alone uses.
    pub unique_disk: u64,
}

/// Measures `root` (see [`TreeUsage`]).
pub fn usage(root: &Path) -> Result<TreeUsage> {
    let mut u = TreeUsage::default();
    for rel in list_tree(root)?.files {
        let p = root.join(&rel);
        let m = fs::symlink_metadata(&p).at(&p)?;
        u.files += 1;
        u.size += m.len();
        if m.nlink() == 1 {
            u.unique += m.len();
            u.unique_disk += m.blocks() * 512;
        }
    }
    Ok(u)
}

/// Bytes held by the distinct inodes of all `roots` together (a file linked into several
/// snapshots counts once): the disk a device's snapshots really occupy.
pub fn distinct_bytes(roots: &[PathBuf]) -> Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    for root in roots {
        for rel in list_tree(root)?.files {
            let p = root.join(&rel);
            let m = fs::symlink_metadata(&p).at(&p)?;
            if seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    Ok(total)
}

/// Relative paths of the regular files of `root` (used by import to find what to replace).
pub fn files_of(root: &Path) -> Result<Vec<PathBuf>> {
    Ok(list_tree(root)?.files)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn probe_finds_links_and_cleans_up() {
        let d = tempfile::tempdir().unwrap();
        let m = probe(d.path()).unwrap();
        // /tmp is ext4 or tmpfs here: both have hard links, neither reflinks.
        assert_ne!(m, SharingMethod::Copy);
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn clone_each_method() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("ab")).unwrap();
        fs::write(src.join("ab/abcd"), b"hello").unwrap();
        fs::write(src.join("Manifest.db"), b"db").unwrap();
        for (i, m) in [
            SharingMethod::HardLink,
            SharingMethod::Copy,
            SharingMethod::Reflink,
        ]
        .into_iter()
        .enumerate()
        {
            let dst = d.path().join(format!("dst{i}"));
            let rep = clone_tree(&src, &dst, m).unwrap();
            assert_eq!(rep.shared + rep.copied, 2);
            assert_eq!(fs::read(dst.join("ab/abcd")).unwrap(), b"hello");
            let same = fs::metadata(src.join("ab/abcd")).unwrap().ino()
                == fs::metadata(dst.join("ab/abcd")).unwrap().ino();
            assert_eq!(same, m == SharingMethod::HardLink, "{m:?}");
            assert_eq!(
                fs::metadata(&dst).unwrap().mode() & 0o777,
                0o700,
                "private folder"
            );
        }
        assert!(clone_tree(&src, &d.path().join("dst0"), SharingMethod::Copy).is_err());
    }

    #[test]
    fn usage_counts_links_once() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        fs::create_dir_all(&a).unwrap();
        fs::write(a.join("x"), vec![1u8; 1000]).unwrap();
        fs::write(a.join("y"), vec![2u8; 500]).unwrap();
        let b = d.path().join("b");
        clone_tree(&a, &b, SharingMethod::HardLink).unwrap();
        fs::remove_file(b.join("y")).unwrap();
        fs::write(b.join("y"), vec![3u8; 700]).unwrap();
        let ua = usage(&a).unwrap();
        assert_eq!((ua.files, ua.size, ua.unique), (2, 1500, 500));
        let ub = usage(&b).unwrap();
        assert_eq!((ub.size, ub.unique), (1700, 700));
        assert_eq!(distinct_bytes(&[a, b]).unwrap(), 2200);
    }
}
