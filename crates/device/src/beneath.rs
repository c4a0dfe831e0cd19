//! Directory handles opened beneath a backup folder, so that a batch of file operations names
//! each file relative to its already-open parent.
//!
//! The last step of every backup is a `MoveItems` of every uploaded file (`Snapshot/xx/<id>` →
//! `xx/<id>`, tens of thousands of them). Done with whole paths, each move walked both paths
//! three times (a check of each side, then the rename itself); with the ≈ 500 parent
//! directories held open, each move is two lookups of a name in an open directory and one
//! `renameat2`.
//!
//! Parents are opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from the folder's
//! root, so the kernel itself refuses a path that leaves the folder or goes through a symbolic
//! link, even one planted after the path was checked. Kernels without `openat2` (before 5.6)
//! get `openat(O_NOFOLLOW)` on a path whose directories [`crate::store::Txn`] already checked.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::io::Errno;

/// More open directories than this and the cache starts over (a backup uses ≈ 513).
const MAX_OPEN: usize = 4096;

/// What is at a name inside an open directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Missing,
    Directory,
    /// A regular file, a symbolic link (never followed) or anything else that is not a
    /// directory.
    Other,
}

/// Open directories under one root, by path.
pub(crate) struct Parents {
    root: PathBuf,
    root_fd: Arc<OwnedFd>,
    open: HashMap<PathBuf, Arc<OwnedFd>>,
    /// `openat2` is refused here (old kernel, seccomp): plain `openat` from then on.
    no_openat2: bool,
}

fn dir_flags() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW
}

impl Parents {
    /// Opens `root` (which must be a directory, not a symbolic link).
    pub(crate) fn new(root: &Path) -> io::Result<Parents> {
        let fd = rustix::fs::openat(CWD, root, dir_flags(), Mode::empty())?;
        Ok(Parents {
            root: root.to_path_buf(),
            root_fd: Arc::new(fd),
            open: HashMap::new(),
            no_openat2: false,
        })
    }

    /// The open parent directory of `path` and its last component. `path` must lie under the
    /// root; a missing parent is `NotFound`.
    pub(crate) fn split<'p>(&mut self, path: &'p Path) -> io::Result<(Arc<OwnedFd>, &'p OsStr)> {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path names no file"))?;
        let parent = path.parent().unwrap_or(Path::new(""));
        Ok((self.dir(parent)?, name))
    }

    /// The open directory `dir` (which must lie under the root, or be it).
    pub(crate) fn dir(&mut self, dir: &Path) -> io::Result<Arc<OwnedFd>> {
        if let Some(fd) = self.open.get(dir) {
            return Ok(fd.clone());
        }
        let rel = dir.strip_prefix(&self.root).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "directory outside the backup folder",
            )
        })?;
        let fd = if rel.as_os_str().is_empty() {
            self.root_fd.clone()
        } else {
            Arc::new(self.open_beneath(rel)?)
        };
        if self.open.len() >= MAX_OPEN {
            self.open.clear();
        }
        self.open.insert(dir.to_path_buf(), fd.clone());
        Ok(fd)
    }

    fn open_beneath(&mut self, rel: &Path) -> io::Result<OwnedFd> {
        if !self.no_openat2 {
            let resolve =
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(&*self.root_fd, rel, dir_flags(), Mode::empty(), resolve) {
                Ok(fd) => return Ok(fd),
                Err(Errno::NOSYS | Errno::PERM) => self.no_openat2 = true,
                // EXDEV: the path would leave the folder; ELOOP: it crosses a symbolic link.
                Err(Errno::XDEV | Errno::LOOP) => {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        "path goes through a symbolic link or out of the backup folder",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(rustix::fs::openat(
            &*self.root_fd,
            rel,
            dir_flags(),
            Mode::empty(),
        )?)
    }
}

/// What is at `name` in `dir`, without following a symbolic link.
pub(crate) fn kind(dir: &OwnedFd, name: &OsStr) -> io::Result<Kind> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => Ok(Kind::Directory),
        Ok(_) => Ok(Kind::Other),
        Err(Errno::NOENT) => Ok(Kind::Missing),
        Err(e) => Err(e.into()),
    }
}

/// Renames `from_name` in `from_dir` to `to_name` in `to_dir`, never replacing anything: an
/// existing destination is `AlreadyExists`. The kernel checks it (`RENAME_NOREPLACE`) where the
/// file system can; elsewhere [`rename_if_free`] looks first.
pub(crate) fn rename_new(
    from_dir: &OwnedFd,
    from_name: &OsStr,
    to_dir: &OwnedFd,
    to_name: &OsStr,
) -> io::Result<()> {
    match rustix::fs::renameat_with(from_dir, from_name, to_dir, to_name, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            rename_if_free(from_dir, from_name, to_dir, to_name)
        }
        Err(e) => Err(e.into()),
    }
}

/// A plain rename after checking that nothing is at the destination (only this process
/// changes a backup folder while it runs), for file systems without `RENAME_NOREPLACE`.
fn rename_if_free(
    from_dir: &OwnedFd,
    from_name: &OsStr,
    to_dir: &OwnedFd,
    to_name: &OsStr,
) -> io::Result<()> {
    if kind(to_dir, to_name)? != Kind::Missing {
        return Err(io::ErrorKind::AlreadyExists.into());
    }
    Ok(rustix::fs::renameat(from_dir, from_name, to_dir, to_name)?)
}

/// Makes `to_name` in `to_dir` a second name of file `from_name` in `from_dir` (never replacing
/// anything). `Ok(false)` when this file system has no hard links for it (FAT, exFAT, some
/// network and FUSE file systems), so the caller renames instead.
pub(crate) fn link_new(
    from_dir: &OwnedFd,
    from_name: &OsStr,
    to_dir: &OwnedFd,
    to_name: &OsStr,
) -> io::Result<bool> {
    match rustix::fs::linkat(from_dir, from_name, to_dir, to_name, AtFlags::empty()) {
        Ok(()) => Ok(true),
        Err(Errno::PERM | Errno::OPNOTSUPP | Errno::MLINK | Errno::NOSYS | Errno::XDEV) => {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// The names in directory `dir` (an open handle from [`Parents`]) when all of them are
/// regular files (`.` and `..` aside); `None` when anything else is there, or the file system
/// does not say the type in its listing.
pub(crate) fn files(dir: &OwnedFd) -> io::Result<Option<Vec<std::ffi::OsString>>> {
    use std::os::unix::ffi::OsStrExt;
    let fd = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::new(fd)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        if entry.file_type() != FileType::RegularFile {
            return Ok(None);
        }
        out.push(OsStr::from_bytes(name).to_os_string());
    }
    Ok(Some(out))
}

/// The inode number of an open file or directory.
pub(crate) fn inode(fd: &OwnedFd) -> io::Result<u64> {
    Ok(rustix::fs::fstat(fd)?.st_ino)
}

/// Renames directory `from_name` in `from_dir` over `to_name` in `to_dir`, which the kernel
/// allows only when that is an empty directory (or nothing): a directory with anything in it
/// is an error, never replaced.
pub(crate) fn rename_dir_over_empty(
    from_dir: &OwnedFd,
    from_name: &OsStr,
    to_dir: &OwnedFd,
    to_name: &OsStr,
) -> io::Result<()> {
    Ok(rustix::fs::renameat(from_dir, from_name, to_dir, to_name)?)
}

/// Swaps the two names atomically (`RENAME_EXCHANGE`). `Ok(false)` where the file system (or
/// kernel, before 3.15) cannot, so the caller does it another way.
pub(crate) fn exchange(
    a_dir: &OwnedFd,
    a_name: &OsStr,
    b_dir: &OwnedFd,
    b_name: &OsStr,
) -> io::Result<bool> {
    match rustix::fs::renameat_with(a_dir, a_name, b_dir, b_name, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Makes a new directory `name` in `dir` (permissions from the umask, like `mkdir`).
pub(crate) fn make_dir(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o777))?)
}

/// Removes the name `name` (not a directory) from `dir`.
pub(crate) fn remove_name(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn parents_are_opened_once_and_never_through_a_link() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/f"), b"x").unwrap();
        let outside = d.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("a/link")).unwrap();

        let mut p = Parents::new(&root).unwrap();
        let f = root.join("a/b/f");
        let (dir, name) = p.split(&f).unwrap();
        assert_eq!(name, "f");
        assert_eq!(kind(&dir, name).unwrap(), Kind::Other);
        assert_eq!(kind(&dir, OsStr::new("nope")).unwrap(), Kind::Missing);
        let ab = root.join("a/b");
        let (top, b) = p.split(&ab).unwrap();
        assert_eq!(kind(&top, b).unwrap(), Kind::Directory);
        assert_eq!(p.open.len(), 2);

        // A link as a directory on the way is refused; as a last component it is a name.
        assert!(p.split(&root.join("a/link/secret")).is_err());
        let a_link = root.join("a/link");
        let (a, link) = p.split(&a_link).unwrap();
        assert_eq!(kind(&a, link).unwrap(), Kind::Other);
        assert!(p.split(&d.path().join("elsewhere/x")).is_err());
        assert!(p.split(&root.join("a/missing/x")).is_err());

        // Renames never replace.
        fs::write(root.join("a/b/g"), b"g").unwrap();
        let (bdir, _) = p.split(&f).unwrap();
        let err = rename_new(&bdir, OsStr::new("f"), &bdir, OsStr::new("g")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        let err = rename_if_free(&bdir, OsStr::new("f"), &bdir, OsStr::new("g")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(root.join("a/b/g")).unwrap(), b"g");
        rename_new(&bdir, OsStr::new("f"), &a, OsStr::new("moved")).unwrap();
        assert_eq!(fs::read(root.join("a/moved")).unwrap(), b"x");
        assert_eq!(fs::read(outside.join("secret")).unwrap(), b"s");
    }
}
