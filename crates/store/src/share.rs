//! How snapshots share unchanged files: reflink (copy-on-write extents), hard link, or plain
//! copy, probed with real files in the location (filesystem-type tables lie: NAS shares, FUSE,
//! loop mounts). Cloning is parallel by folder (a bounded pool of threads, each taking whole
//! `xx/` folders and linking names relative to open folder handles); the clone of a tree
//! never writes into an existing file, so the source snapshot cannot change. The fsync before
//! a commit and the size scan walk trees the same way.

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rustix::fs::{self as rfs, AtFlags, CWD, FileType, Mode, OFlags};

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
        // The same call the clone makes, so the probe cannot promise what the clone lacks.
        if share_paths(&a, &c, SharingMethod::Reflink).unwrap_or(false) {
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

impl CloneReport {
    fn add(&mut self, o: CloneReport) {
        self.shared += o.shared;
        self.copied += o.copied;
        self.dirs += o.dirs;
    }
}

/// Threads a clone uses by default: twice the CPUs, at least 2, at most 16. Linking is
/// kernel work that waits on directory locks and (cold cache) on reads of the source folders,
/// so a few more threads than CPUs keep the disk busy; each thread owns whole folders, so
/// they never contend for the same directory. `IOSNAP_CLONE_THREADS` overrides it.
pub fn default_clone_threads() -> usize {
    if let Some(n) = std::env::var("IOSNAP_CLONE_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return n.min(64);
    }
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
        .clamp(2, 16)
}

/// Clones the tree `src` into the new folder `dst` (which must not exist) with `method`, on
/// [`default_clone_threads`] threads. A file whose link or reflink fails (e.g. too many
/// links) is copied.
pub fn clone_tree(src: &Path, dst: &Path, method: SharingMethod) -> Result<CloneReport> {
    clone_tree_with(src, dst, method, default_clone_threads())
}

/// [`clone_tree`] on `threads` threads. Why by folder: a backup keeps its files in 256 `xx/`
/// folders, so giving each thread whole folders (taken from a shared counter, biggest
/// first) spreads the work evenly with no two threads writing the same directory; inside a
/// folder, names are linked relative to open directory handles (`linkat`), so the kernel
/// does not walk the full path for every file as `cp -al` does.
pub fn clone_tree_with(
    src: &Path,
    dst: &Path,
    method: SharingMethod,
    threads: usize,
) -> Result<CloneReport> {
    if fs::symlink_metadata(dst).is_ok() {
        return Err(Error::Invalid(format!("{} already exists", dst.display())));
    }
    create_private_dir(dst)?;
    let src_fd = open_dir_at(CWD, src, src)?;
    let dst_fd = open_dir_at(CWD, dst, dst)?;
    let mut rep = CloneReport::default();
    let mut subdirs = Vec::new();
    for (name, kind) in read_entries(&src_fd, src)? {
        match kind {
            EntryKind::Dir => {
                let to = dst.join(os(&name));
                rfs::mkdirat(&dst_fd, name.as_c_str(), Mode::from_raw_mode(0o700)).at(&to)?;
                rep.dirs += 1;
                subdirs.push(name);
            }
            other => rep.add(clone_entry(&src_fd, &dst_fd, &name, other, src, method)?),
        }
    }
    let reports = per_subdir(&subdirs, threads, src, "a clone thread", |r, name| {
        clone_dir(&src_fd, &dst_fd, name, src, dst, method, r)
    })?;
    for r in reports {
        rep.add(r);
    }
    Ok(rep)
}

/// The type of a directory entry, as far as cloning cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Dir,
    File,
    Symlink,
    Other,
}

fn os(name: &CStr) -> &std::ffi::OsStr {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(name.to_bytes())
}

fn open_dir_at(at: impl AsFd, name: impl rustix::path::Arg, shown: &Path) -> Result<OwnedFd> {
    rfs::openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .at(shown)
}

/// The entries of the open folder `dir` (without `.` and `..`), sorted by name so a clone
/// walks the disk in a repeatable order.
fn read_entries(dir: &OwnedFd, shown: &Path) -> Result<Vec<(CString, EntryKind)>> {
    let fd = rustix::io::dup(dir).at(shown)?;
    let mut d = rfs::Dir::new(fd).at(shown)?;
    let mut v = Vec::new();
    while let Some(e) = d.read() {
        let e = e.at(shown)?;
        let name = e.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let kind = match e.file_type() {
            FileType::Directory => EntryKind::Dir,
            FileType::RegularFile => EntryKind::File,
            FileType::Symlink => EntryKind::Symlink,
            FileType::Unknown => {
                // Some filesystems do not fill d_type: ask the inode.
                let st =
                    rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).at(shown.join(os(name)))?;
                match FileType::from_raw_mode(st.st_mode) {
                    FileType::Directory => EntryKind::Dir,
                    FileType::RegularFile => EntryKind::File,
                    FileType::Symlink => EntryKind::Symlink,
                    _ => EntryKind::Other,
                }
            }
            _ => EntryKind::Other,
        };
        v.push((name.to_owned(), kind));
    }
    v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

/// Clones the sub-folder `name` of `src_parent` (already created in `dst_parent`) and
/// everything below it.
fn clone_dir(
    src_parent: &OwnedFd,
    dst_parent: &OwnedFd,
    name: &CStr,
    src_path: &Path,
    dst_path: &Path,
    method: SharingMethod,
    rep: &mut CloneReport,
) -> Result<()> {
    let src_path = src_path.join(os(name));
    let dst_path = dst_path.join(os(name));
    let s = open_dir_at(src_parent, name, &src_path)?;
    let d = open_dir_at(dst_parent, name, &dst_path)?;
    for (child, kind) in read_entries(&s, &src_path)? {
        if kind == EntryKind::Dir {
            rfs::mkdirat(&d, child.as_c_str(), Mode::from_raw_mode(0o700))
                .at(dst_path.join(os(&child)))?;
            rep.dirs += 1;
            clone_dir(&s, &d, &child, &src_path, &dst_path, method, rep)?;
        } else {
            rep.add(clone_entry(&s, &d, &child, kind, &src_path, method)?);
        }
    }
    Ok(())
}

/// Clones one non-folder entry `name` from the open folder `s` into `d`.
fn clone_entry(
    s: &OwnedFd,
    d: &OwnedFd,
    name: &CStr,
    kind: EntryKind,
    src_dir: &Path,
    method: SharingMethod,
) -> Result<CloneReport> {
    let mut r = CloneReport::default();
    match kind {
        EntryKind::File => {
            if share_at(s, d, name, method, &src_dir.join(os(name)))? {
                r.shared += 1;
            } else {
                r.copied += 1;
            }
        }
        EntryKind::Symlink => {
            let shown = src_dir.join(os(name));
            let target = rfs::readlinkat(s, name, Vec::new()).at(&shown)?;
            rfs::symlinkat(target.as_c_str(), d, name).at(&shown)?;
        }
        // Sockets, fifos, devices have no place in a backup: leave them out.
        EntryKind::Dir | EntryKind::Other => {}
    }
    Ok(r)
}

/// Makes `name` in the open folder `d` (it must not exist) a file with the content of `name`
/// in `s`, sharing storage when `method` allows; returns whether it is shared. Copies and
/// reflinks are created 0600 (backup data is private). `shown` names the source in errors.
fn share_at(
    s: &OwnedFd,
    d: &OwnedFd,
    name: &CStr,
    method: SharingMethod,
    shown: &Path,
) -> Result<bool> {
    if method == SharingMethod::HardLink && rfs::linkat(s, name, d, name, AtFlags::empty()).is_ok()
    {
        return Ok(true);
    }
    let input = rfs::openat(
        s,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .at(shown)?;
    let output = rfs::openat(
        d,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o600),
    )
    .at(shown)?;
    if method == SharingMethod::Reflink && rfs::ioctl_ficlone(&output, &input).is_ok() {
        return Ok(true);
    }
    // A failed clone leaves the new file empty: copy into it.
    let mut input = fs::File::from(input);
    let mut output = fs::File::from(output);
    io::copy(&mut input, &mut output).at(shown)?;
    Ok(false)
}

/// Makes `dst` (which must not exist) a file with `src`'s content, sharing storage when
/// `method` allows; returns whether it is shared. Copies and reflinks are created 0600
/// (backup data is private). A failed link or reflink falls back to a copy.
pub fn share_file(src: &Path, dst: &Path, method: SharingMethod) -> Result<bool> {
    share_paths(src, dst, method)
}

fn share_paths(src: &Path, dst: &Path, method: SharingMethod) -> Result<bool> {
    if method == SharingMethod::HardLink && fs::hard_link(src, dst).is_ok() {
        return Ok(true);
    }
    let input = fs::File::open(src).at(src)?;
    let output = {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dst)
            .at(dst)?
    };
    if method == SharingMethod::Reflink && rfs::ioctl_ficlone(&output, &input).is_ok() {
        return Ok(true);
    }
    let (mut input, mut output) = (input, output);
    io::copy(&mut input, &mut output).at(dst)?;
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

/// Runs `work(acc, name)` for every folder name in `subdirs` on up to `threads` threads, each
/// taking the next name from a shared counter and accumulating into its own `A`; the first
/// error stops the other threads at their next name and is returned. `who` and `root` name the
/// threads in the error a panicking one becomes.
fn per_subdir<A, W>(
    subdirs: &[CString],
    threads: usize,
    root: &Path,
    who: &str,
    work: W,
) -> Result<Vec<A>>
where
    A: Default + Send,
    W: Fn(&mut A, &CStr) -> Result<()> + Sync,
{
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let workers = threads.clamp(1, subdirs.len().max(1));
    let results: Vec<Result<A>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| -> Result<A> {
                    let mut acc = A::default();
                    while !failed.load(Ordering::Relaxed) {
                        let Some(name) = subdirs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            break;
                        };
                        if let Err(e) = work(&mut acc, name) {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                    }
                    Ok(acc)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Invalid(format!(
                        "{who} of {} panicked",
                        root.display()
                    )))
                })
            })
            .collect()
    });
    results.into_iter().collect()
}

/// Visits every regular file of the tree `root` with `file(acc, dir, name, dir_path)` on
/// [`default_clone_threads`] threads (whole top-level folders per thread, names resolved
/// relative to open folder handles, like [`clone_tree_with`]), then calls `dir_done(dir,
/// dir_path)` for each folder after its files and sub-folders, `root` last. Each thread
/// accumulates into its own `A`; the results are merged with `merge`.
fn par_walk<A, F, D>(root: &Path, file: F, dir_done: D, merge: fn(&mut A, A)) -> Result<A>
where
    A: Default + Send,
    F: Fn(&mut A, &OwnedFd, &CStr, &Path) -> Result<()> + Sync,
    D: Fn(&OwnedFd, &Path) -> Result<()> + Sync,
{
    fn walk_dir<A>(
        acc: &mut A,
        fd: &OwnedFd,
        path: &Path,
        file: &(dyn Fn(&mut A, &OwnedFd, &CStr, &Path) -> Result<()> + Sync),
        dir_done: &(dyn Fn(&OwnedFd, &Path) -> Result<()> + Sync),
    ) -> Result<()> {
        for (name, kind) in read_entries(fd, path)? {
            match kind {
                EntryKind::File => file(acc, fd, &name, path)?,
                EntryKind::Dir => {
                    let sub_path = path.join(os(&name));
                    let sub = open_dir_at(fd, name.as_c_str(), &sub_path)?;
                    walk_dir(acc, &sub, &sub_path, file, dir_done)?;
                }
                EntryKind::Symlink | EntryKind::Other => {}
            }
        }
        dir_done(fd, path)
    }
    let root_fd = open_dir_at(CWD, root, root)?;
    let mut total = A::default();
    let mut subdirs = Vec::new();
    for (name, kind) in read_entries(&root_fd, root)? {
        match kind {
            EntryKind::File => file(&mut total, &root_fd, &name, root)?,
            EntryKind::Dir => subdirs.push(name),
            EntryKind::Symlink | EntryKind::Other => {}
        }
    }
    let (file, dir_done) = (&file, &dir_done);
    let accs = per_subdir(
        &subdirs,
        default_clone_threads(),
        root,
        "a walking thread",
        |acc, name| {
            let path = root.join(os(name));
            open_dir_at(&root_fd, name, &path)
                .and_then(|fd| walk_dir(acc, &fd, &path, file, dir_done))
        },
    )?;
    for a in accs {
        merge(&mut total, a);
    }
    dir_done(&root_fd, root)?;
    Ok(total)
}

fn stat_at(dir: &OwnedFd, name: &CStr, dir_path: &Path) -> Result<rfs::Stat> {
    rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).at(dir_path.join(os(name)))
}

/// Flushes every file and folder of `root` to stable storage (files in parallel), folders
/// after their files, so a rename published afterwards cannot expose unwritten data. A file
/// with more than one link is a hard link into a committed (already flushed) snapshot: only
/// its directory entry is new, and the folder fsync covers that.
pub fn fsync_tree(root: &Path) -> Result<()> {
    par_walk(
        root,
        |_: &mut (), dir, name, dir_path| {
            if stat_at(dir, name, dir_path)?.st_nlink > 1 {
                return Ok(());
            }
            let shown = dir_path.join(os(name));
            let f = rfs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
            )
            .at(&shown)?;
            rfs::fsync(&f).at(&shown)
        },
        |dir, dir_path| rfs::fsync(dir).at(dir_path),
        |_, _| {},
    )
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

/// Measures `root` (see [`TreeUsage`]), folders in parallel.
pub fn usage(root: &Path) -> Result<TreeUsage> {
    par_walk(
        root,
        |u: &mut TreeUsage, dir, name, dir_path| {
            let m = stat_at(dir, name, dir_path)?;
            let len = u64::try_from(m.st_size).unwrap_or(0);
            u.files += 1;
            u.size += len;
            if m.st_nlink == 1 {
                u.unique += len;
                u.unique_disk += u64::try_from(m.st_blocks).unwrap_or(0) * 512;
            }
            Ok(())
        },
        |_, _| Ok(()),
        |a, b| {
            a.files += b.files;
            a.size += b.size;
            a.unique += b.unique;
            a.unique_disk += b.unique_disk;
        },
    )
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
