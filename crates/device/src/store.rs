//! The host side file store used while a phone drives a backup: an undo-journalled transaction
//! over the backup folder.
//!
//! Two guarantees, both required by the snapshot store that hands us a folder of hard links to
//! the previous backup:
//!
//! 1. **No file is ever modified in place.** A file whose destination does not exist yet is
//!    created under its final name with `O_EXCL` (its `Created` intent journalled first, so a
//!    rollback removes it; in a folder the transaction made, that folder's own `CreatedDir`
//!    line does it). A file whose destination exists (possibly a hard link shared with
//!    an older snapshot) is written to a new temporary file in the same directory
//!    (`.iosnap-<name>.XXXXXXXX`), made durable, and renamed over the destination; a hard link
//!    to the old file elsewhere keeps the old content. Data written straight to a new name is
//!    made durable by the one `syncfs` at [`Txn::commit`] (writeback is started as each file
//!    is closed), or earlier if such a file is about to replace an existing one.
//! 2. **A failed operation leaves the folder as it was.** Whatever the phone asks for (writes,
//!    moves, removals, copies, new directories) is applied immediately, so the phone reads back
//!    a consistent view, but everything displaced is first kept aside (hard link, or rename for
//!    directories) in `<root>/.iosnap-txn-XXXXXXXX/`, and every change is journalled. On failure
//!    the journal is replayed backwards; on success the aside directory is deleted.
//! 3. **A crash is undone on the next run.** The journal is also written ahead of every change
//!    to `<root>/.iosnap-txn-XXXXXXXX/journal`; [`recover`] replays any journal a killed
//!    process left behind. Commit deletes the journal first (atomically), so a half-deleted
//!    transaction directory is never mistaken for an unfinished one.
//!
//! Paths from the phone are validated here ([`Txn::resolve`]): relative, no `..`, no NUL, first
//! component must be one of the expected backup identifiers, no symlinked component, and never
//! one of our own temporary names.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::beneath::{self, Kind, Parents};
use crate::error::{Error, Result};

/// Prefix of our temporary files and aside directories; paths from the phone may not use it.
pub(crate) const TMP_MARK: &str = ".iosnap-";

/// Name of the write-ahead journal inside a transaction directory.
const JOURNAL: &str = "journal";

/// One change, as needed to undo it. Every undo is tolerant: it checks that the change really
/// happened (the journal is written before the change, so a crash can leave an intent only).
#[derive(Debug)]
enum Undo {
    /// `path` did not exist before; undo removes it.
    Created(PathBuf),
    /// Directory `path` was created by us; undo removes it (after its content was undone).
    CreatedDir(PathBuf),
    /// A temporary file; undo removes it if it is still there.
    Temp(PathBuf),
    /// What was at `path` now lives at `aside`; undo puts it back.
    Displaced { path: PathBuf, aside: PathBuf },
    /// `from` was renamed to `to`; undo renames back.
    Moved { from: PathBuf, to: PathBuf },
    /// File `from` was moved to `to`, where nothing was, by a hard link then the removal of
    /// `from` (or by a rename where links are not supported). Undo puts it back; when only the
    /// link was made, it removes the second name (only if it is the same file).
    Linked { from: PathBuf, to: PathBuf },
    /// Directory `from` (inode `ino`) took the place of `to`, an empty directory this
    /// transaction had made, and an empty directory is at `from` (the two were swapped, or
    /// `from` was renamed over `to` and made again): the whole-folder form of a batch of moves
    /// (see `whole_folders`). Undo, if the folder really is at `to`, removes the
    /// new empty `from`, renames the folder back and makes the empty `to` again.
    MovedDir {
        from: PathBuf,
        to: PathBuf,
        ino: u64,
    },
}

fn enc(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    hex::encode(p.as_os_str().as_bytes())
}

fn dec(s: &str) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    hex::decode(s)
        .ok()
        .map(|b| PathBuf::from(std::ffi::OsString::from_vec(b)))
}

impl Undo {
    fn to_line(&self) -> String {
        match self {
            Undo::Created(p) => format!("C {}\n", enc(p)),
            Undo::CreatedDir(p) => format!("D {}\n", enc(p)),
            Undo::Temp(p) => format!("T {}\n", enc(p)),
            Undo::Displaced { path, aside } => format!("X {} {}\n", enc(path), enc(aside)),
            Undo::Moved { from, to } => format!("M {} {}\n", enc(from), enc(to)),
            Undo::Linked { from, to } => format!("L {} {}\n", enc(from), enc(to)),
            Undo::MovedDir { from, to, ino } => {
                format!("R {} {} {ino}\n", enc(from), enc(to))
            }
        }
    }

    fn from_line(line: &str) -> Option<Undo> {
        let mut it = line.split(' ');
        let kind = it.next()?;
        let a = dec(it.next()?)?;
        let b = it.next().and_then(dec);
        let c = it.next();
        Some(match (kind, b, c) {
            ("C", None, None) => Undo::Created(a),
            ("D", None, None) => Undo::CreatedDir(a),
            ("T", None, None) => Undo::Temp(a),
            ("X", Some(b), None) => Undo::Displaced { path: a, aside: b },
            ("M", Some(b), None) => Undo::Moved { from: a, to: b },
            ("L", Some(b), None) => Undo::Linked { from: a, to: b },
            ("R", Some(b), Some(ino)) => Undo::MovedDir {
                from: a,
                to: b,
                ino: ino.parse().ok()?,
            },
            _ => return None,
        })
    }

    /// Reverts this change if it happened.
    fn undo(&self) -> io::Result<()> {
        match self {
            Undo::Created(p) | Undo::CreatedDir(p) | Undo::Temp(p) => remove_any(p),
            Undo::Displaced { path, aside } => {
                if exists_nofollow(aside) {
                    remove_any(path)?;
                    fs::rename(aside, path)
                } else {
                    Ok(())
                }
            }
            Undo::Moved { from, to } => {
                if !exists_nofollow(from) && exists_nofollow(to) {
                    fs::rename(to, from)
                } else {
                    Ok(())
                }
            }
            Undo::Linked { from, to } => {
                use std::os::unix::fs::MetadataExt;
                match (fs::symlink_metadata(from), fs::symlink_metadata(to)) {
                    (Err(_), Ok(_)) => fs::rename(to, from),
                    (Ok(f), Ok(t)) if f.dev() == t.dev() && f.ino() == t.ino() => {
                        fs::remove_file(to)
                    }
                    _ => Ok(()),
                }
            }
            Undo::MovedDir { from, to, ino } => {
                use std::os::unix::fs::MetadataExt;
                match fs::symlink_metadata(to) {
                    Ok(m) if m.is_dir() && m.ino() == *ino => {}
                    // The rename never happened (or was undone): nothing to do.
                    _ => return Ok(()),
                }
                match fs::symlink_metadata(from) {
                    // `remove_dir` refuses a folder with anything in it.
                    Ok(m) if m.is_dir() => fs::remove_dir(from)?,
                    Ok(_) => return Err(io::ErrorKind::AlreadyExists.into()),
                    Err(_) => {}
                }
                fs::rename(to, from)?;
                match fs::create_dir(to) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
                    _ => Ok(()),
                }
            }
        }
    }
}

/// An undo-journalled set of changes under `root`.
#[derive(Debug)]
pub struct Txn {
    root: PathBuf,
    allowed_first: Vec<String>,
    txn_dir: PathBuf,
    journal_file: Option<fs::File>,
    journal: Vec<Undo>,
    counter: u64,
    finished: bool,
    read_only: bool,
    /// Directories under `root` already checked to be real directories (not symlinks), so the
    /// per-file path checks do not `lstat` every component again (they were 18 `statx` per
    /// file). Entries are only added after a check or our own `mkdir`, and the whole set is
    /// dropped whenever a directory is moved or removed through this transaction.
    /// Kept by the paths' bytes (`key`), like `fresh_dirs`.
    known_dirs: std::cell::RefCell<std::collections::HashSet<Vec<u8>>>,
    /// Folders whose whole way down from the root was checked that way (each component a real
    /// directory): a path in one of them needs no walk at all. Cleared with `known_dirs`.
    walked: std::cell::RefCell<std::collections::HashSet<Vec<u8>>>,
    /// Directories this transaction made (`mkdir` succeeded) into which nothing was renamed
    /// since: a name in one of them exists only if this transaction created it, which
    /// `made_fresh` (hashes of the file paths it created there) tells without an `lstat`.
    /// A backup uploads every file into such folders (`Snapshot/xx/`). Cleared by every
    /// rename; a hash collision only costs the `lstat` again.
    fresh_dirs: std::collections::HashSet<Vec<u8>>,
    made_fresh: std::collections::HashSet<u64>,
    /// Files were written straight to their (new) destination since the last sync: their data
    /// is made durable by the sync at [`Txn::commit`], or earlier when one of them is about to
    /// replace an existing file (see [`Txn::rename`]).
    unsynced: bool,
    /// Journal lines were written since the journal was last made durable. A change that
    /// moves existing data away (a displacement) waits for its line to be durable first, so a
    /// power loss can never leave an old file in the transaction folder with no line saying
    /// where it belongs (recovery would delete it with that folder).
    journal_dirty: bool,
    /// The journal's own directory entries (transaction folder, journal file) are durable.
    journal_linked: bool,
    /// MoveItems requests answered but not applied yet ([`Txn::defer_moves`]).
    deferred: Option<Deferred>,
}

/// Moves accepted by [`Txn::defer_moves`], applied together by [`Txn::apply_deferred`].
#[derive(Default)]
struct Deferred {
    pairs: Vec<(PathBuf, PathBuf)>,
    /// Every path of `pairs`, and every folder above one (up to the root), by their bytes
    /// (normalised paths): a later request that names one of them waits for these moves.
    paths: std::collections::HashSet<Vec<u8>>,
    folders: std::collections::HashSet<Vec<u8>>,
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred")
            .field("moves", &self.pairs.len())
            .finish_non_exhaustive()
    }
}

/// The purely lexical path rules of a transaction (no file system access), so a path can be
/// checked and normalised on one thread while another one owns the [`Txn`].
#[derive(Debug, Clone)]
pub(crate) struct PathRules {
    root: PathBuf,
    allowed_first: Vec<String>,
}

impl PathRules {
    /// The folder paths are resolved under.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// `root` joined with the normal components of `rel`, or the reason `rel` is unsafe:
    /// empty, NUL, absolute, `..`, not UTF-8, one of our temporary names, or outside the
    /// allowed first components. Symbolic links are checked by [`Txn::resolve`].
    pub(crate) fn lexical(&self, rel: &str) -> Result<PathBuf> {
        lexical(&self.root, &self.allowed_first, rel)
    }
}

/// [`PathRules::lexical`] on borrowed rules.
fn lexical(root: &Path, allowed_first: &[String], rel: &str) -> Result<PathBuf> {
    let reject = |reason: &'static str| Error::UnsafePath {
        path: rel.to_string(),
        reason,
    };
    if rel.is_empty() {
        return Err(reject("empty path"));
    }
    if rel.contains('\0') {
        return Err(reject("contains a NUL byte"));
    }
    if rel.starts_with('/') || rel.starts_with('\\') {
        return Err(reject("absolute path"));
    }
    let mut out = root.to_path_buf();
    let mut first = true;
    for comp in Path::new(rel).components() {
        match comp {
            Component::Normal(c) => {
                let s = c.to_str().ok_or_else(|| reject("not UTF-8"))?;
                if s.starts_with(TMP_MARK) {
                    return Err(reject("uses iosnap's reserved temporary name"));
                }
                if first && !allowed_first.is_empty() && !allowed_first.iter().any(|a| a == s) {
                    return Err(reject("outside this device's backup folder"));
                }
                first = false;
                out.push(c);
            }
            Component::CurDir => {}
            Component::ParentDir => return Err(reject("contains '..'")),
            Component::RootDir | Component::Prefix(_) => return Err(reject("absolute path")),
        }
    }
    if first {
        return Err(reject("names no file"));
    }
    Ok(out)
}

/// A path's hash for [`Txn`]'s set of files made in fresh folders.
fn path_hash(path: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key(path).hash(&mut h);
    h.finish()
}

fn random_suffix() -> String {
    use rand::Rng;
    let n: u32 = rand::thread_rng().r#gen();
    format!("{n:08x}")
}

fn exists_nofollow(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn fsync_dir(dir: &Path) {
    // Best effort: makes the rename durable; not all file systems allow opening directories.
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Flushes the file system holding `root` and waits for it (`syncfs`); where that is refused
/// (cannot open `root`), flushes every file system (`sync`), which Linux also waits for.
fn sync_fs_of(root: &Path) -> Result<()> {
    match fs::File::open(root) {
        Ok(d) => rustix::fs::syncfs(&d).map_err(|e| Error::io(root, e.into())),
        Err(_) => {
            rustix::fs::sync();
            Ok(())
        }
    }
}

/// Undoes every transaction a killed process left in `root` (see the module docs). Returns the
/// problems met; a `root` that does not exist has nothing to recover.
pub fn recover(root: &Path) -> Result<Vec<String>> {
    let rd = match fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(root, e)),
    };
    let mut problems = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&format!("{TMP_MARK}txn-")) {
            continue;
        }
        let dir = entry.path();
        let journal = dir.join(JOURNAL);
        if let Some(bytes) = read_optional(&journal, u64::MAX)? {
            let text = String::from_utf8_lossy(&bytes);
            // A torn last line (no newline) is an intent that never started.
            let complete = text.rsplit_once('\n').map(|(c, _)| c).unwrap_or("");
            let undos: Vec<Undo> = complete.lines().filter_map(Undo::from_line).collect();
            for u in undos.iter().rev() {
                if let Err(e) = u.undo() {
                    problems.push(format!("{u:?}: {e}"));
                }
            }
        }
        if let Err(e) = remove_any(&dir)
            && exists_nofollow(&dir)
        {
            problems.push(format!("removing {}: {e}", dir.display()));
        }
    }
    Ok(problems)
}

impl Txn {
    /// Starts a transaction over `root` (created if missing, journalled). `allowed_first` lists
    /// the first path components the phone may use (the target and source UDIDs).
    pub fn begin(root: &Path, allowed_first: &[&str]) -> Result<Txn> {
        let mut t = Txn {
            root: root.to_path_buf(),
            allowed_first: allowed_first.iter().map(|s| s.to_string()).collect(),
            txn_dir: root.join(format!("{TMP_MARK}txn-{}", random_suffix())),
            journal_file: None,
            journal: Vec::new(),
            counter: 0,
            finished: false,
            read_only: false,
            known_dirs: Default::default(),
            walked: Default::default(),
            fresh_dirs: Default::default(),
            made_fresh: Default::default(),
            unsynced: false,
            journal_dirty: false,
            journal_linked: false,
            deferred: None,
        };
        if !root.exists() {
            t.create_dir_all_abs(root)?;
        }
        fs::create_dir(&t.txn_dir).map_err(|e| Error::io(&t.txn_dir, e))?;
        let jpath = t.txn_dir.join(JOURNAL);
        let f = fs::OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&jpath)
            .map_err(|e| Error::io(&jpath, e))?;
        t.journal_file = Some(f);
        Ok(t)
    }

    /// A transaction that refuses every change and creates nothing: for operations in which
    /// the phone only reads (restore, Info, List), so a read-only snapshot can be used.
    pub fn read_only(root: &Path, allowed_first: &[&str]) -> Txn {
        Txn {
            root: root.to_path_buf(),
            allowed_first: allowed_first.iter().map(|s| s.to_string()).collect(),
            txn_dir: PathBuf::new(),
            journal_file: None,
            journal: Vec::new(),
            counter: 0,
            finished: false,
            read_only: true,
            known_dirs: Default::default(),
            walked: Default::default(),
            fresh_dirs: Default::default(),
            made_fresh: Default::default(),
            unsynced: false,
            journal_dirty: false,
            journal_linked: false,
            deferred: None,
        }
    }

    /// An inert transaction that owns nothing (read-only, already finished): what is left in
    /// a caller's slot while its transaction is lent to the writer threads.
    pub(crate) fn placeholder() -> Txn {
        let mut t = Txn::read_only(Path::new(""), &[]);
        t.finished = true;
        t
    }

    /// Records that a file was closed by [`PendingFile::close_direct`] without a sync.
    pub(crate) fn note_unsynced(&mut self) {
        self.unsynced = true;
    }

    fn refuse_if_read_only(&self, path: &Path) -> Result<()> {
        if self.read_only {
            return Err(Error::io(
                path,
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "the device asked to change the backup folder during a read-only operation",
                ),
            ));
        }
        Ok(())
    }

    /// Writes the intent to the on-disk journal, then remembers it.
    fn record(&mut self, u: Undo) -> Result<()> {
        self.record_many(vec![u])
    }

    /// Writes several intents to the on-disk journal with one `write`, then remembers them.
    /// Every one of them must be recorded before any of the changes they describe is made.
    fn record_many(&mut self, undos: Vec<Undo>) -> Result<()> {
        self.refuse_if_read_only(&self.root)?;
        if let Some(f) = &mut self.journal_file {
            let lines: String = undos.iter().map(Undo::to_line).collect();
            let jpath = self.txn_dir.join(JOURNAL);
            f.write_all(lines.as_bytes())
                .map_err(|e| Error::io(&jpath, e))?;
            self.journal_dirty |= !lines.is_empty();
        }
        self.journal.extend(undos);
        Ok(())
    }

    /// Makes the journal durable up to its last line (its folder entries too, the first time).
    /// Called before existing data is moved aside; [`Txn::sync_data`] covers it as well.
    fn sync_journal(&mut self) -> Result<()> {
        if !self.journal_dirty {
            return Ok(());
        }
        if let Some(f) = &self.journal_file {
            let jpath = self.txn_dir.join(JOURNAL);
            f.sync_data().map_err(|e| Error::io(&jpath, e))?;
            if !self.journal_linked {
                fsync_dir(&self.txn_dir);
                fsync_dir(&self.root);
                self.journal_linked = true;
            }
        }
        self.journal_dirty = false;
        Ok(())
    }

    /// Forgets every checked directory (a directory was moved or removed).
    fn forget_dirs(&self) {
        self.known_dirs.borrow_mut().clear();
        self.walked.borrow_mut().clear();
    }

    /// Forgets which folders hold only what this transaction created (something is renamed).
    fn forget_fresh(&mut self) {
        self.fresh_dirs.clear();
        self.made_fresh.clear();
    }

    /// The folder this transaction works in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The lexical path rules of this transaction (see [`PathRules::lexical`]).
    pub(crate) fn path_rules(&self) -> PathRules {
        PathRules {
            root: self.root.clone(),
            allowed_first: self.allowed_first.clone(),
        }
    }

    /// Turns a path sent by the phone into a path under the root, or rejects it: the lexical
    /// rules of `PathRules::lexical`, then no component may be a symbolic link.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf> {
        self.resolve_checked(rel, true)
    }

    /// [`Txn::resolve`] without the look at the last component, for the operations that never
    /// follow it: renames, removals and the creation of new files (`O_EXCL` replaces nothing
    /// and follows no link; an existing name is replaced through a rename). Saves one `lstat`
    /// of the whole path per file of a backup.
    pub(crate) fn resolve_name(&self, rel: &str) -> Result<PathBuf> {
        self.resolve_checked(rel, false)
    }

    fn resolve_checked(&self, rel: &str, check_last: bool) -> Result<PathBuf> {
        let full = lexical(&self.root, &self.allowed_first, rel)?;
        let reject = |reason: &'static str| Error::UnsafePath {
            path: rel.to_string(),
            reason,
        };
        // Every folder on the way was found to be a real directory before (and none was
        // moved or removed since): only the last component is left to look at.
        if parent_key(key(&full)).is_some_and(|p| self.walked.borrow().contains(p)) {
            if check_last && fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(reject("goes through a symbolic link"));
            }
            return Ok(full);
        }
        let tail = full.strip_prefix(&self.root).unwrap_or(&full);
        let mut out = self.root.clone();
        let mut comps = tail.components().peekable();
        let mut all_dirs = true;
        while let Some(comp) = comps.next() {
            out.push(comp);
            // Intermediate directories checked before need no new `lstat`; the last
            // component is always checked (it may be a file planted since).
            let last = comps.peek().is_none();
            if last && !check_last {
                break;
            }
            if !last && self.known_dirs.borrow().contains(key(&out)) {
                continue;
            }
            match fs::symlink_metadata(&out) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(reject("goes through a symbolic link"));
                }
                Ok(m) if m.is_dir() && !last => {
                    self.known_dirs.borrow_mut().insert(key(&out).to_vec());
                }
                _ => all_dirs &= last,
            }
        }
        if all_dirs
            && full.starts_with(&self.root)
            && let Some(parent) = parent_key(key(&out))
        {
            self.walked.borrow_mut().insert(parent.to_vec());
        }
        Ok(out)
    }

    fn aside_path(&mut self) -> PathBuf {
        self.counter += 1;
        self.txn_dir.join(self.counter.to_string())
    }

    /// Moves whatever is at `path` aside (journalled) so `path` can be replaced.
    /// Files are hard-linked aside (the later rename over `path` stays atomic); directories and
    /// files on link-less file systems are renamed aside.
    fn displace(&mut self, path: &Path, keep_in_place: bool) -> Result<()> {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(path, e)),
        };
        let aside = self.aside_path();
        self.record(Undo::Displaced {
            path: path.to_path_buf(),
            aside: aside.clone(),
        })?;
        self.sync_journal()?;
        self.move_aside(path, &aside, meta.is_dir(), keep_in_place)
    }

    /// The move of a displacement whose `Displaced` line is already durable.
    fn move_aside(
        &mut self,
        path: &Path,
        aside: &Path,
        is_dir: bool,
        keep_in_place: bool,
    ) -> Result<()> {
        if is_dir {
            self.forget_dirs();
        }
        if keep_in_place && !is_dir && fs::hard_link(path, aside).is_ok() {
            return Ok(());
        }
        fs::rename(path, aside).map_err(|e| Error::io(path, e))
    }

    fn create_dir_all_abs(&mut self, dir: &Path) -> Result<()> {
        if self.known_dirs.borrow().contains(key(dir)) {
            return Ok(());
        }
        let mut missing = Vec::new();
        let mut cur = Some(dir);
        while let Some(p) = cur {
            if exists_nofollow(p) {
                break;
            }
            missing.push(p.to_path_buf());
            cur = p.parent();
        }
        if let Some(first) = missing.last() {
            self.refuse_if_read_only(first)?;
        }
        for p in missing.into_iter().rev() {
            // mkdir first, journal second: a crash in between leaves at worst an empty
            // directory, never a journal entry that would delete someone else's directory.
            match fs::create_dir(&p) {
                Ok(()) => {
                    self.record(Undo::CreatedDir(p.clone()))?;
                    self.fresh_dirs.insert(key(&p).to_vec());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io(&p, e)),
            }
        }
        match fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => {
                if dir.starts_with(&self.root) {
                    self.known_dirs.borrow_mut().insert(key(dir).to_vec());
                }
                Ok(())
            }
            Ok(_) => Err(Error::io(
                dir,
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a directory",
                ),
            )),
            Err(e) => Err(Error::io(dir, e)),
        }
    }

    /// `mkdir -p`, journalled.
    pub fn create_dir_all(&mut self, dir: &Path) -> Result<()> {
        self.apply_deferred()?;
        self.create_dir_all_abs(dir)
    }

    /// Starts writing `dst`. When nothing is there yet, the file is created directly under its
    /// final name (its `Created` intent is journalled first, so a rollback or [`recover`]
    /// removes it); otherwise — the destination may be a hard link shared with an older
    /// snapshot — a temp file next to it is written and later renamed over it, so the existing
    /// file is never modified.
    pub fn create_file(&mut self, dst: &Path) -> Result<PendingFile> {
        self.plan_file(dst)?.open()
    }

    /// The journalled half of [`Txn::create_file`]: creates the parent directories, decides
    /// between a direct and a temp file, and journals it. [`NewFile::open`] (no transaction
    /// state needed) creates the file, so a writer thread can do it without holding the
    /// transaction.
    pub(crate) fn plan_file(&mut self, dst: &Path) -> Result<NewFile> {
        self.apply_deferred()?;
        let parent = dst
            .parent()
            .ok_or_else(|| Error::io(dst, io::Error::other("no parent directory")))?
            .to_path_buf();
        self.create_dir_all_abs(&parent)?;
        let fresh =
            self.fresh_dirs.contains(key(&parent)) && self.made_fresh.insert(path_hash(dst));
        if fresh || !exists_nofollow(dst) {
            // In a folder this transaction made, the folder's own `CreatedDir` line (written
            // when it was made, before any file in it) undoes the file with it: no line per
            // file (a backup's 20,000 journal writes under the transaction's lock).
            if !fresh {
                self.record(Undo::Created(dst.to_path_buf()))?;
            }
            return Ok(NewFile {
                path: dst.to_path_buf(),
                dst: dst.to_path_buf(),
                direct: true,
            });
        }
        let name = dst
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!("{TMP_MARK}{name}.{}", random_suffix()));
        self.record(Undo::Temp(tmp.clone()))?;
        Ok(NewFile {
            path: tmp,
            dst: dst.to_path_buf(),
            direct: false,
        })
    }

    /// Makes a finished file final: a direct file is closed (its data becomes durable at the
    /// latest at [`Txn::commit`]); a temp file is fsynced and renamed over its destination.
    pub fn commit_file(&mut self, pending: PendingFile) -> Result<u64> {
        self.apply_deferred()?;
        if pending.direct {
            return Ok(self.finish_direct(pending));
        }
        if let Some(f) = &pending.file {
            f.sync_all().map_err(|e| Error::io(&pending.tmp, e))?;
        }
        self.rename_into_place(pending)
    }

    /// Closes a file written under its final name and remembers that a sync is owed.
    fn finish_direct(&mut self, pending: PendingFile) -> u64 {
        self.unsynced = true;
        pending.close_direct(|f| crate::flush::start_writeback(&f))
    }

    /// Makes every file written so far durable: one `syncfs` of the backup's file system (or
    /// a global `sync` where that is refused), and clears the owed sync.
    fn sync_data(&mut self) -> Result<()> {
        sync_fs_of(&self.root)?;
        self.unsynced = false;
        // syncfs wrote the journal and its folder entries too.
        self.journal_dirty = false;
        self.journal_linked = true;
        Ok(())
    }

    /// Commits many finished files. Direct files are only closed. Temp files must replace
    /// their destination only once their data is durable: one `syncfs` for the whole batch
    /// instead of one fsync each (a backup sends thousands of files), then the renames.
    pub fn commit_files(&mut self, batch: Vec<PendingFile>) -> Result<u64> {
        self.apply_deferred()?;
        let mut bytes = 0;
        let mut temps = Vec::new();
        for p in batch {
            if p.direct {
                bytes += self.finish_direct(p);
            } else {
                temps.push(p);
            }
        }
        if temps.is_empty() {
            return Ok(bytes);
        }
        // Every intent of the batch is journalled first (one write): a `Displaced` line for a
        // destination that exists (moved aside before it is replaced), a `Created` line for one
        // that vanished since the file was planned. Then one syncfs makes the temp files' data
        // and those lines durable together, and only then is anything replaced.
        let mut intents = Vec::with_capacity(temps.len());
        let mut steps = Vec::with_capacity(temps.len());
        for p in temps {
            match fs::symlink_metadata(&p.dst) {
                Ok(m) => {
                    let aside = self.aside_path();
                    intents.push(Undo::Displaced {
                        path: p.dst.clone(),
                        aside: aside.clone(),
                    });
                    steps.push((p, Some((aside, m.is_dir()))));
                }
                Err(_) => {
                    intents.push(Undo::Created(p.dst.clone()));
                    steps.push((p, None));
                }
            }
        }
        self.record_many(intents)?;
        self.sync_data()?;
        for (mut p, displaced) in steps {
            drop(p.file.take());
            if let Some((aside, is_dir)) = displaced {
                let dst = p.dst.clone();
                self.move_aside(&dst, &aside, is_dir, !is_dir)?;
            }
            bytes += self.place(p)?;
        }
        Ok(bytes)
    }

    fn rename_into_place(&mut self, mut pending: PendingFile) -> Result<u64> {
        let file = pending
            .file
            .take()
            .ok_or_else(|| Error::io(&pending.tmp, io::Error::other("already committed")))?;
        drop(file);
        let dst = pending.dst.clone();
        let existed = exists_nofollow(&dst);
        if existed {
            let is_dir = fs::symlink_metadata(&dst)
                .map(|m| m.is_dir())
                .unwrap_or(false);
            self.displace(&dst, !is_dir)?;
        }
        if !existed {
            self.record(Undo::Created(dst.clone()))?;
        }
        self.place(pending)
    }

    /// Renames a finished temp file over its destination, whose undo is already journalled.
    fn place(&mut self, mut pending: PendingFile) -> Result<u64> {
        drop(pending.file.take());
        let dst = pending.dst.clone();
        fs::rename(&pending.tmp, &dst).map_err(|e| Error::io(&dst, e))?;
        pending.tmp = PathBuf::new();
        Ok(pending.bytes)
    }

    /// Writes `data` as the new content of `dst` (see [`Txn::create_file`]).
    pub fn write_file(&mut self, dst: &Path, data: &[u8]) -> Result<()> {
        let mut p = self.create_file(dst)?;
        p.write_all(data)?;
        self.commit_file(p)?;
        Ok(())
    }

    /// Removes `path` (file or directory tree); a missing path is not an error (the phone asks
    /// to remove things that may not exist).
    pub fn remove(&mut self, path: &Path) -> Result<()> {
        self.apply_deferred()?;
        self.displace(path, false)
    }

    /// Removes every path of one request, like [`Txn::remove`] each, but journals all of them
    /// with one write and one sync before the first is moved aside. A path inside a folder the
    /// same request removed earlier is gone by its turn, which is fine.
    pub fn remove_many(&mut self, paths: &[PathBuf]) -> Result<()> {
        self.apply_deferred()?;
        let mut intents = Vec::new();
        let mut steps = Vec::new();
        for path in paths {
            match fs::symlink_metadata(path) {
                Ok(m) => {
                    let aside = self.aside_path();
                    intents.push(Undo::Displaced {
                        path: path.clone(),
                        aside: aside.clone(),
                    });
                    steps.push((path, aside, m.is_dir()));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        if steps.is_empty() {
            return Ok(());
        }
        self.record_many(intents)?;
        self.sync_journal()?;
        for (path, aside, is_dir) in steps {
            match self.move_aside(path, &aside, is_dir, false) {
                Ok(()) => {}
                Err(_) if !exists_nofollow(path) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Renames `from` to `to`, replacing `to` (recursively for a directory) as LIMD does.
    pub fn rename(&mut self, from: &Path, to: &Path) -> Result<()> {
        self.apply_deferred()?;
        self.forget_fresh();
        match fs::symlink_metadata(from) {
            Ok(m) if m.is_dir() => self.forget_dirs(),
            Ok(_) => {}
            Err(_) => return Err(Error::io(from, io::Error::from(io::ErrorKind::NotFound))),
        }
        if from == to {
            return Ok(());
        }
        if let Some(parent) = to.parent() {
            self.create_dir_all_abs(parent)?;
        }
        if exists_nofollow(to) {
            // `from` (or files under it) may have been written directly and not synced yet:
            // it must not replace an existing file before its data is durable.
            if self.unsynced {
                self.sync_data()?;
            }
            self.displace(to, false)?;
        }
        self.record(Undo::Moved {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        })?;
        fs::rename(from, to).map_err(|e| Error::io(to, e))
    }

    /// Renames every pair of one MoveItems request, as [`Txn::rename`] each in order. When all
    /// of them move files between distinct paths (what a backup's final move of `Snapshot/`
    /// is), each file is named relative to its open parent directory (module `beneath`: no
    /// whole-path walks, no symbolic link on the way), their intents are journalled with one
    /// write, the moves to free names run on a few threads (`move_fresh`), and the ones
    /// whose destination exists are replaced after one sync has made the moved data and the
    /// journal durable, instead of one sync per replaced file (which a slow USB disk pays in
    /// milliseconds each). Before that, a folder this transaction made whose every file moves,
    /// under the same name, into another folder it made and left empty is renamed as a whole
    /// (`whole_folders`). Anything else goes pair by pair.
    pub fn rename_many(&mut self, pairs: &[(PathBuf, PathBuf)]) -> Result<()> {
        self.apply_deferred()?;
        self.refuse_if_read_only(&self.root)?;
        let r = self.move_all(pairs);
        // Files were renamed into folders: none of them is known to be fresh any more.
        self.forget_fresh();
        r
    }

    fn move_all(&mut self, pairs: &[(PathBuf, PathBuf)]) -> Result<()> {
        let Ok(mut parents) = Parents::new(&self.root) else {
            return self.rename_each(pairs);
        };
        let whole = self.whole_folders(pairs, &mut parents);
        let mut done = vec![false; if whole.is_empty() { 0 } else { pairs.len() }];
        self.record_many(
            whole
                .iter()
                .map(|w| Undo::MovedDir {
                    from: w.from.clone(),
                    to: w.to.clone(),
                    ino: w.ino,
                })
                .collect(),
        )?;
        for w in &whole {
            if self.move_folder(w)? {
                for &i in &w.moves {
                    if let Some(d) = done.get_mut(i) {
                        *d = true;
                    }
                }
            }
        }
        let rest: std::borrow::Cow<'_, [(PathBuf, PathBuf)]> = if done.contains(&true) {
            pairs
                .iter()
                .zip(&done)
                .filter(|(_, d)| !**d)
                .map(|(p, _)| p.clone())
                .collect::<Vec<_>>()
                .into()
        } else {
            pairs.into()
        };
        if rest.is_empty() {
            return Ok(());
        }
        match self.plan_moves(&rest, &mut parents)? {
            Some(plan) => self.apply_planned(plan),
            None => self.rename_each(&rest),
        }
    }

    fn rename_each(&mut self, pairs: &[(PathBuf, PathBuf)]) -> Result<()> {
        pairs
            .iter()
            .try_for_each(|(from, to)| self.rename(from, to))
    }

    /// Accepts the moves of one MoveItems request, to be applied as [`Txn::rename_many`] with
    /// the next request that is not a MoveItems ([`Txn::apply_deferred`]; every other method
    /// of the transaction applies them first, [`Txn::commit`] too). A backup's final move
    /// comes in requests of 2,000 files, with the files of each `Snapshot/xx/` folder spread
    /// over all of them; gathered, each folder moves at once (`whole_folders`): 256 renames
    /// instead of 20,000 moves. Requests that touch the same paths (or folders above them)
    /// are applied in turn, so the result is the one of applying each request as it comes;
    /// but a move that fails (a missing source, a full disk) is only reported with the next
    /// request, and fails the operation then (rolled back like any other failure).
    pub(crate) fn defer_moves(&mut self, pairs: &[(PathBuf, PathBuf)]) -> Result<()> {
        self.refuse_if_read_only(&self.root)?;
        if self.deferred.as_ref().is_some_and(|d| d.conflicts(pairs)) {
            self.apply_deferred()?;
        }
        self.deferred
            .get_or_insert_with(Deferred::default)
            .add(pairs, &self.root);
        Ok(())
    }

    /// Applies the moves [`Txn::defer_moves`] accepted (nothing when there are none).
    pub(crate) fn apply_deferred(&mut self) -> Result<()> {
        match self.deferred.take() {
            Some(d) => self.rename_many(&d.pairs),
            None => Ok(()),
        }
    }

    /// The moves of [`Txn::rename_many`] when every source is a file (not a directory) and all
    /// paths are distinct, each with its open parents; `None` when they must go one by one.
    /// Missing destination folders are created (journalled).
    fn plan_moves(
        &mut self,
        pairs: &[(PathBuf, PathBuf)],
        dirs: &mut Parents,
    ) -> Result<Option<Vec<PlainMove>>> {
        let mut seen = std::collections::HashSet::with_capacity(pairs.len() * 2);
        let mut plan = Vec::with_capacity(pairs.len());
        for (from, to) in pairs {
            if from == to || !seen.insert(from.as_path()) || !seen.insert(to.as_path()) {
                return Ok(None);
            }
            let Ok((from_dir, from_name)) = dirs.split(from) else {
                return Ok(None);
            };
            // The source must exist before its move is journalled: undoing a move whose
            // source never existed would carry off whatever sits at the destination.
            if beneath::kind(&from_dir, from_name).ok() != Some(Kind::Other) {
                return Ok(None);
            }
            let (to_dir, to_name) = match dirs.split(to) {
                Ok(split) => split,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Some(parent) = to.parent() {
                        self.create_dir_all_abs(parent)?;
                    }
                    match dirs.split(to) {
                        Ok(split) => split,
                        Err(_) => return Ok(None),
                    }
                }
                Err(_) => return Ok(None),
            };
            plan.push(PlainMove {
                from_name: from_name.to_os_string(),
                to_name: to_name.to_os_string(),
                from: from.clone(),
                to: to.clone(),
                from_dir,
                to_dir,
            });
        }
        Ok(Some(plan))
    }

    /// Applies planned file moves: to free names on a few threads, then the replacements.
    fn apply_planned(&mut self, plan: Vec<PlainMove>) -> Result<()> {
        if plan.is_empty() {
            return Ok(());
        }
        let intents = plan
            .iter()
            .map(|m| Undo::Linked {
                from: m.from.clone(),
                to: m.to.clone(),
            })
            .collect();
        self.record_many(intents)?;
        let taken = move_fresh(&plan)?;
        if taken.is_empty() {
            return Ok(());
        }
        // Destinations that exist: each is moved aside, then replaced. (The `Linked` line of
        // such a move undoes nothing: both names stay different files.)
        let mut intents = Vec::with_capacity(2 * taken.len());
        let mut steps = Vec::with_capacity(taken.len());
        for m in taken.iter().filter_map(|&i| plan.get(i)) {
            let is_dir = fs::symlink_metadata(&m.to).is_ok_and(|md| md.is_dir());
            let aside = self.aside_path();
            intents.push(Undo::Displaced {
                path: m.to.clone(),
                aside: aside.clone(),
            });
            intents.push(Undo::Moved {
                from: m.from.clone(),
                to: m.to.clone(),
            });
            steps.push((m, aside, is_dir));
        }
        self.record_many(intents)?;
        // The moved files' data and the journal lines, durable before anything is replaced.
        if self.unsynced {
            self.sync_data()?;
        } else {
            self.sync_journal()?;
        }
        for (m, aside, is_dir) in steps {
            self.move_aside(&m.to, &aside, is_dir, false)?;
            beneath::rename_new(&m.from_dir, &m.from_name, &m.to_dir, &m.to_name)
                .map_err(|e| Error::io(&m.to, e))?;
        }
        Ok(())
    }

    /// The groups of `pairs` that can move as whole folders: every move from folder `D` goes
    /// to folder `T` under the same name, and those files are all that `D` holds (regular
    /// files only); both folders were made by this transaction with nothing renamed in since
    /// (so `D` holds only files it wrote, and `T` is new), neither is the root or inside the
    /// other, no other pair moves anything out of or into either, and none names either.
    /// Swapping `D` with the empty `T` (`RENAME_EXCHANGE`; elsewhere a rename over `T`, which
    /// the kernel allows only while `T` is empty, and a new empty `D`) then does what the moves
    /// do.
    fn whole_folders(
        &self,
        pairs: &[(PathBuf, PathBuf)],
        parents: &mut Parents,
    ) -> Vec<WholeFolder> {
        use std::collections::{HashMap, HashSet};
        use std::os::unix::ffi::OsStrExt;
        if self.fresh_dirs.is_empty() || pairs.len() < 2 {
            return Vec::new();
        }
        // Keyed by bytes: these paths are normalised, and `Path`'s own hash walks components.
        let mut groups: HashMap<(&[u8], &[u8]), Vec<usize>> = HashMap::new();
        // How many groups use a folder, on either side.
        let mut uses: HashMap<&[u8], usize> = HashMap::new();
        let mut renamed = false;
        for (i, (from, to)) in pairs.iter().enumerate() {
            let (Some((d, a)), Some((t, b))) = (split_key(from), split_key(to)) else {
                return Vec::new();
            };
            let g = groups.entry((d, t)).or_default();
            if g.is_empty() {
                *uses.entry(d).or_default() += 1;
                *uses.entry(t).or_default() += 1;
            }
            g.push(i);
            renamed |= a != b;
        }
        let mut candidates: Vec<(&Path, &Path, Vec<usize>)> = Vec::new();
        for ((d, t), moves) in groups {
            let (dp, tp) = (
                Path::new(std::ffi::OsStr::from_bytes(d)),
                Path::new(std::ffi::OsStr::from_bytes(t)),
            );
            let eligible = d != t
                && !dp.starts_with(tp)
                && !tp.starts_with(dp)
                && dp != self.root
                && tp != self.root
                && uses.get(d) == Some(&1)
                && uses.get(t) == Some(&1)
                && self.fresh_dirs.contains(d)
                && self.fresh_dirs.contains(t)
                && (!renamed
                    || moves
                        .iter()
                        .filter_map(|&i| pairs.get(i))
                        .all(|(a, b)| split_key(a).map(|x| x.1) == split_key(b).map(|x| x.1)));
            if eligible {
                candidates.push((dp, tp, moves));
            }
        }
        if candidates.is_empty() {
            return Vec::new();
        }
        // A pair that names one of the folders itself must see it where it is.
        let claimed: HashSet<&[u8]> = candidates
            .iter()
            .flat_map(|(d, t, _)| [key(d), key(t)])
            .collect();
        if pairs
            .iter()
            .any(|(a, b)| claimed.contains(key(a)) || claimed.contains(key(b)))
        {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (d, t, moves) in candidates {
            // The destination must be empty (the kernel checks it for a rename over it, not
            // for the exchange of the two folders).
            let Ok(t_fd) = parents.dir(t) else { continue };
            if !beneath::files(&t_fd).is_ok_and(|f| f.is_some_and(|f| f.is_empty())) {
                continue;
            }
            let Ok(d_fd) = parents.dir(d) else { continue };
            let Ok(entries) = beneath::files(&d_fd) else {
                continue;
            };
            let Some(names) = entries else { continue };
            let moving: HashSet<&[u8]> = moves
                .iter()
                .filter_map(|&i| pairs.get(i))
                .filter_map(|(a, _)| split_key(a).map(|x| x.1))
                .collect();
            if names.len() != moves.len()
                || moving.len() != moves.len()
                || !names.iter().all(|n| moving.contains(n.as_bytes()))
            {
                continue;
            }
            let (Ok((d_parent, d_name)), Ok((t_parent, t_name)), Ok(ino)) =
                (parents.split(d), parents.split(t), beneath::inode(&d_fd))
            else {
                continue;
            };
            out.push(WholeFolder {
                from: d.to_path_buf(),
                to: t.to_path_buf(),
                from_parent: d_parent,
                from_name: d_name.to_os_string(),
                to_parent: t_parent,
                to_name: t_name.to_os_string(),
                ino,
                moves,
            });
        }
        out
    }

    /// Renames one whole folder (journalled first); `Ok(false)` when the kernel refused (the
    /// destination is no longer empty, ...) and its files must move one by one.
    /// Its `R` line must be journalled already.
    fn move_folder(&mut self, w: &WholeFolder) -> Result<bool> {
        // Swapping the two folders leaves the empty one where the full one was: one call.
        match beneath::exchange(&w.from_parent, &w.from_name, &w.to_parent, &w.to_name) {
            Ok(true) => {
                self.forget_dirs();
                return Ok(true);
            }
            Ok(false) => {}
            Err(_) => return Ok(false),
        }
        if beneath::rename_dir_over_empty(&w.from_parent, &w.from_name, &w.to_parent, &w.to_name)
            .is_err()
        {
            return Ok(false);
        }
        self.forget_dirs();
        beneath::make_dir(&w.from_parent, &w.from_name).map_err(|e| Error::io(&w.from, e))?;
        Ok(true)
    }

    /// Copies a file or directory tree from `src` to `dst` (new files, never in place).
    pub fn copy(&mut self, src: &Path, dst: &Path) -> Result<()> {
        self.apply_deferred()?;
        let meta = fs::symlink_metadata(src).map_err(|e| Error::io(src, e))?;
        if meta.is_dir() {
            if exists_nofollow(dst)
                && !fs::symlink_metadata(dst)
                    .map(|m| m.is_dir())
                    .unwrap_or(false)
            {
                self.displace(dst, false)?;
            }
            self.create_dir_all_abs(dst)?;
            let entries = fs::read_dir(src).map_err(|e| Error::io(src, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(src, e))?;
                let name = entry.file_name();
                if name.to_string_lossy().starts_with(TMP_MARK) {
                    continue;
                }
                self.copy(&entry.path(), &dst.join(name))?;
            }
            Ok(())
        } else if meta.is_file() {
            let mut input = fs::File::open(src).map_err(|e| Error::io(src, e))?;
            let mut p = self.create_file(dst)?;
            io::copy(&mut input, &mut p).map_err(|e| Error::io(src, e))?;
            self.commit_file(p)?;
            Ok(())
        } else {
            Err(Error::io(
                src,
                io::Error::other("not a regular file or directory"),
            ))
        }
    }

    /// Keeps every change and drops what was set aside.
    /// If the data cannot be made durable the transaction is rolled back instead.
    pub fn commit(mut self) -> Result<()> {
        if self.read_only {
            self.finished = true;
            return Ok(());
        }
        self.apply_deferred()?;
        // Make every file and rename durable before the aside copies go away. On failure the
        // transaction is dropped unfinished, which rolls it back.
        self.sync_data()?;
        self.finished = true;
        // Deleting the journal is the commit point: without it, recovery only cleans up.
        self.journal_file = None;
        let jpath = self.txn_dir.join(JOURNAL);
        fs::remove_file(&jpath).map_err(|e| Error::io(&jpath, e))?;
        // Make the commit point itself durable: a journal that came back after a power loss
        // would undo a committed backup.
        fsync_dir(&self.txn_dir);
        self.journal.clear();
        fs::remove_dir_all(&self.txn_dir).map_err(|e| Error::io(&self.txn_dir, e))
    }

    /// Undoes every change, newest first. Returns the problems met (empty when the folder is
    /// back to its state at [`Txn::begin`]).
    pub fn rollback(mut self) -> Vec<String> {
        self.finished = true;
        self.undo_all()
    }

    fn undo_all(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        while let Some(u) = self.journal.pop() {
            if let Err(e) = u.undo() {
                problems.push(format!("{u:?}: {e}"));
            }
        }
        self.journal_file = None;
        if self.read_only {
            return problems;
        }
        if let Err(e) = remove_any(&self.txn_dir) {
            problems.push(format!("removing {}: {e}", self.txn_dir.display()));
        }
        problems
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.undo_all();
        }
    }
}

/// A path by its bytes, for hashing: the paths of a transaction are normalised
/// (`PathRules::lexical`), and `Path`'s own hash walks its components.
fn key(p: &Path) -> &[u8] {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes()
}

/// The parent folder and the name of a normalised path's bytes (`Path::parent` and
/// `Path::file_name` parse components, which 40,000 paths feel); `None` for `/` and a bare
/// name.
fn split_bytes(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = b.iter().rposition(|&c| c == b'/')?;
    let (dir, name) = (b.get(..at.max(1))?, b.get(at + 1..)?);
    (!name.is_empty()).then_some((dir, name))
}

/// The parent folder of a normalised path's bytes.
fn parent_key(b: &[u8]) -> Option<&[u8]> {
    split_bytes(b).map(|(dir, _)| dir)
}

/// [`split_bytes`] of a path.
fn split_key(p: &Path) -> Option<(&[u8], &[u8])> {
    split_bytes(key(p))
}

/// Moves files to their new names, spread over a few threads; returns the moves whose
/// destination exists (left for the caller, which must move it aside first). A
/// cross-directory rename takes the file system's rename lock (one at a time, ≈ 20 µs each on
/// ext4: 0.4 s for a backup's 20,000 files); a hard link takes only the new name's directory
/// and the removal only the old one's, so on two cores link-then-remove takes half the time.
/// Where the file system has no hard links, a rename it is.
fn move_fresh(moves: &[PlainMove]) -> Result<Vec<usize>> {
    /// Below this many moves one thread does it all.
    const PER_THREAD: usize = 256;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(moves.len().div_ceil(PER_THREAD))
        .max(1);
    let per = moves.len().div_ceil(threads).max(1);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let run = |first: usize, part: &[PlainMove]| -> Result<Vec<usize>> {
        let mut taken = Vec::new();
        for (i, m) in part.iter().enumerate() {
            if failed.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            match move_one(m) {
                Ok(true) => {}
                Ok(false) => taken.push(first + i),
                Err(e) => {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        Ok(taken)
    };
    if threads == 1 {
        return run(0, moves);
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = moves
            .chunks(per)
            .enumerate()
            .map(|(k, part)| {
                let run = &run;
                scope.spawn(move || run(k * per, part))
            })
            .collect();
        let mut taken = Vec::new();
        for w in workers {
            let part = w.join().unwrap_or_else(|_| {
                Err(Error::io(
                    Path::new("MoveItems"),
                    io::Error::other("a move thread panicked"),
                ))
            })?;
            taken.extend(part);
        }
        Ok(taken)
    })
}

/// One move to a new name: link, then remove the old name (a rename where links fail).
/// `Ok(false)`: something is at the new name; nothing was changed.
fn move_one(m: &PlainMove) -> Result<bool> {
    match beneath::link_new(&m.from_dir, &m.from_name, &m.to_dir, &m.to_name) {
        Ok(true) => beneath::remove_name(&m.from_dir, &m.from_name)
            .map(|()| true)
            .map_err(|e| Error::io(&m.from, e)),
        Ok(false) => beneath::rename_new(&m.from_dir, &m.from_name, &m.to_dir, &m.to_name)
            .map(|()| true)
            .or_else(|e| exists_or(e, &m.to)),
        Err(e) => exists_or(e, &m.to),
    }
}

/// `Ok(false)` for "the destination exists", the error of `path` otherwise.
fn exists_or(e: io::Error, path: &Path) -> Result<bool> {
    if e.kind() == io::ErrorKind::AlreadyExists {
        Ok(false)
    } else {
        Err(Error::io(path, e))
    }
}

/// One move of a [`Txn::rename_many`] batch, with its open parent directories.
struct PlainMove {
    from: PathBuf,
    to: PathBuf,
    from_dir: std::sync::Arc<rustix::fd::OwnedFd>,
    from_name: std::ffi::OsString,
    to_dir: std::sync::Arc<rustix::fd::OwnedFd>,
    to_name: std::ffi::OsString,
}

/// A folder whose files all move, by name, into an empty folder (see `Txn::whole_folders`).
struct WholeFolder {
    from: PathBuf,
    to: PathBuf,
    from_parent: std::sync::Arc<rustix::fd::OwnedFd>,
    from_name: std::ffi::OsString,
    to_parent: std::sync::Arc<rustix::fd::OwnedFd>,
    to_name: std::ffi::OsString,
    /// The inode of `from`, so an undo knows the folder at `to` is this one.
    ino: u64,
    /// Indexes of its moves in the plan.
    moves: Vec<usize>,
}

impl Deferred {
    fn add(&mut self, pairs: &[(PathBuf, PathBuf)], root: &Path) {
        for (from, to) in pairs {
            for p in [from, to] {
                self.paths.insert(key(p).to_vec());
                let mut up = parent_key(key(p));
                while let Some(dir) = up {
                    if dir == key(root) || self.folders.contains(dir) {
                        break;
                    }
                    self.folders.insert(dir.to_vec());
                    up = parent_key(dir);
                }
            }
        }
        self.pairs.extend_from_slice(pairs);
    }

    /// Whether a path of `pairs` is one of the deferred paths, lies under one, or holds one:
    /// then the deferred moves must come first.
    fn conflicts(&self, pairs: &[(PathBuf, PathBuf)]) -> bool {
        // The folders above a path are looked up once per folder, not once per file.
        let mut under: std::collections::HashMap<&[u8], bool> = Default::default();
        pairs.iter().flat_map(|(a, b)| [a, b]).any(|p| {
            let k = key(p);
            if self.paths.contains(k) || self.folders.contains(k) {
                return true;
            }
            parent_key(k).is_some_and(|dir| {
                *under.entry(dir).or_insert_with(|| {
                    let mut up = Some(dir);
                    while let Some(d) = up {
                        if self.paths.contains(d) {
                            return true;
                        }
                        up = parent_key(d);
                    }
                    false
                })
            })
        })
    }
}

/// A file planned and journalled by [`Txn::plan_file`], not created yet.
#[derive(Debug)]
pub(crate) struct NewFile {
    path: PathBuf,
    dst: PathBuf,
    direct: bool,
}

impl NewFile {
    /// Creates the file (never opens an existing one: `O_EXCL`).
    pub(crate) fn open(self) -> Result<PendingFile> {
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(PendingFile {
            tmp: self.path,
            dst: self.dst,
            file: Some(file),
            bytes: 0,
            direct: self.direct,
        })
    }
}

/// A file being written. A direct file (its destination did not exist) is written under its
/// final name; otherwise it is a temp file that becomes the destination on
/// [`Txn::commit_file`]. Either way it disappears when dropped unfinished.
#[derive(Debug)]
pub struct PendingFile {
    tmp: PathBuf,
    dst: PathBuf,
    file: Option<fs::File>,
    bytes: u64,
    direct: bool,
}

impl PendingFile {
    /// Appends bytes.
    pub fn write_all(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.file {
            Some(f) => {
                f.write_all(data).map_err(|e| Error::io(&self.tmp, e))?;
                self.bytes += data.len() as u64;
                Ok(())
            }
            None => Err(Error::io(&self.tmp, io::Error::other("already committed"))),
        }
    }

    /// Where this file will end up.
    pub fn destination(&self) -> &Path {
        &self.dst
    }

    /// Whether the file is written under its final name (its destination did not exist).
    pub(crate) fn is_direct(&self) -> bool {
        self.direct
    }

    /// Finishes a direct file: it stays (its undo is journalled) and is handed to `writeback`,
    /// which starts writing it back to disk and closes it (see [`crate::flush`]). The
    /// transaction must be told ([`Txn::note_unsynced`]) that a sync is owed. Returns its size.
    pub(crate) fn close_direct(mut self, writeback: impl FnOnce(fs::File)) -> u64 {
        if let Some(f) = self.file.take() {
            writeback(f);
        }
        self.tmp = PathBuf::new();
        self.bytes
    }
}

impl Write for PendingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => {
                let n = f.write(buf)?;
                self.bytes += n as u64;
                Ok(n)
            }
            None => Err(io::Error::other("already committed")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if self.file.take().is_some() || !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Reads a whole small file, or `None` when it does not exist.
pub(crate) fn read_optional(path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    match fs::File::open(path) {
        Ok(f) => {
            let mut buf = Vec::new();
            f.take(limit)
                .read_to_end(&mut buf)
                .map_err(|e| Error::io(path, e))?;
            Ok(Some(buf))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;

    /// Relative path → content (None for directories) of everything under `root`.
    fn snapshot(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
        let mut out = BTreeMap::new();
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
            for e in fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let p = e.path();
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if e.file_type().unwrap().is_dir() {
                    out.insert(rel, None);
                    walk(root, &p, out);
                } else {
                    out.insert(rel, Some(fs::read(&p).unwrap()));
                }
            }
        }
        walk(root, root, &mut out);
        out
    }

    /// Rolls `t` back, or forgets it (a killed process) and recovers; the folder must be
    /// `before` again.
    fn undo_and_compare(
        t: Txn,
        kill: bool,
        root: &Path,
        before: &BTreeMap<String, Option<Vec<u8>>>,
    ) {
        if kill {
            std::mem::forget(t);
            assert!(recover(root).unwrap().is_empty());
        } else {
            assert!(t.rollback().is_empty());
        }
        assert_eq!(&snapshot(root), before, "kill: {kill}");
    }

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("bk");
        fs::create_dir_all(root.join("U/00")).unwrap();
        fs::write(root.join("U/Manifest.db"), b"old manifest").unwrap();
        fs::write(root.join("U/00/001"), b"file one").unwrap();
        fs::write(root.join("U/Status.plist"), b"old status").unwrap();
        (d, root)
    }

    #[test]
    fn paths_from_the_device_are_checked() {
        let (_d, root) = setup();
        let t = Txn::begin(&root, &["U"]).unwrap();
        assert_eq!(t.resolve("U/00/001").unwrap(), root.join("U/00/001"));
        assert_eq!(t.resolve("U/./Snapshot/").unwrap(), root.join("U/Snapshot"));
        for bad in [
            "",
            "/etc/passwd",
            "U/../../x",
            "..",
            "U/a\0b",
            "OTHER/Manifest.db",
            "U/.iosnap-txn-1/x",
            ".",
        ] {
            assert!(t.resolve(bad).is_err(), "{bad:?} must be rejected");
        }
        std::os::unix::fs::symlink("/tmp", root.join("U/link")).unwrap();
        assert!(t.resolve("U/link/x").is_err());
        t.commit().unwrap();
    }

    #[test]
    fn writes_never_touch_the_old_inode() {
        let (_d, root) = setup();
        // A "store" hard link to the previous snapshot's file.
        let keep = root.join("keep");
        fs::hard_link(root.join("U/Manifest.db"), &keep).unwrap();
        let ino = fs::metadata(&keep).unwrap().ino();
        let mut t = Txn::begin(&root, &["U"]).unwrap();
        let dst = t.resolve("U/Manifest.db").unwrap();
        t.write_file(&dst, b"new manifest").unwrap();
        t.commit().unwrap();
        assert_eq!(fs::read(&keep).unwrap(), b"old manifest");
        assert_eq!(fs::metadata(&keep).unwrap().ino(), ino);
        assert_eq!(
            fs::read(root.join("U/Manifest.db")).unwrap(),
            b"new manifest"
        );
        // No temp or aside leftovers.
        let names: Vec<_> = snapshot(&root).into_keys().collect();
        assert!(names.iter().all(|n| !n.contains(TMP_MARK)), "{names:?}");
    }

    #[test]
    fn rollback_restores_everything() {
        let (_d, root) = setup();
        let before = snapshot(&root);
        let mut t = Txn::begin(&root, &["U"]).unwrap();
        // Everything a backup does: snapshot dir, uploads, moves over existing, removals, copies.
        let snap = t.resolve("U/Snapshot/00").unwrap();
        t.create_dir_all(&snap).unwrap();
        t.write_file(&t.resolve("U/Snapshot/00/001").unwrap(), b"changed one")
            .unwrap();
        t.write_file(
            &t.resolve("U/Snapshot/Manifest.db").unwrap(),
            b"new manifest",
        )
        .unwrap();
        t.rename(
            &t.resolve("U/Snapshot/00/001").unwrap(),
            &t.resolve("U/00/001").unwrap(),
        )
        .unwrap();
        t.rename(
            &t.resolve("U/Snapshot/Manifest.db").unwrap(),
            &t.resolve("U/Manifest.db").unwrap(),
        )
        .unwrap();
        t.copy(&t.resolve("U/00").unwrap(), &t.resolve("U/01").unwrap())
            .unwrap();
        t.remove(&t.resolve("U/Status.plist").unwrap()).unwrap();
        t.remove(&t.resolve("U/Snapshot").unwrap()).unwrap();
        t.remove(&t.resolve("U/does-not-exist").unwrap()).unwrap();
        let mut p = t.create_file(&t.resolve("U/Info.plist").unwrap()).unwrap();
        p.write_all(b"half").unwrap();
        drop(p); // an interrupted write leaves nothing behind
        assert_ne!(snapshot(&root), before);
        let problems = t.rollback();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(snapshot(&root), before);
    }

    #[test]
    fn dropping_an_unfinished_txn_rolls_back() {
        let (_d, root) = setup();
        let before = snapshot(&root);
        {
            let mut t = Txn::begin(&root, &["U"]).unwrap();
            t.write_file(&t.resolve("U/Status.plist").unwrap(), b"x")
                .unwrap();
            t.write_file(&t.resolve("U/new/deep/file").unwrap(), b"y")
                .unwrap();
        }
        assert_eq!(snapshot(&root), before);
    }

    #[test]
    fn a_killed_transaction_is_undone_by_recover() {
        let (_d, root) = setup();
        let before = snapshot(&root);
        let mut t = Txn::begin(&root, &["U"]).unwrap();
        t.write_file(&t.resolve("U/Snapshot/00/001").unwrap(), b"changed")
            .unwrap();
        t.rename(
            &t.resolve("U/Snapshot/00/001").unwrap(),
            &t.resolve("U/00/001").unwrap(),
        )
        .unwrap();
        t.write_file(&t.resolve("U/Manifest.db").unwrap(), b"new manifest")
            .unwrap();
        t.remove(&t.resolve("U/Status.plist").unwrap()).unwrap();
        t.write_file(&t.resolve("U/brand/new").unwrap(), b"n")
            .unwrap();
        let half = t.create_file(&t.resolve("U/Info.plist").unwrap()).unwrap();
        // The process dies: no Drop, no rollback. A torn journal line is left too.
        let journal = t.txn_dir.join(JOURNAL);
        std::mem::forget(half);
        std::mem::forget(t);
        let mut f = fs::OpenOptions::new().append(true).open(&journal).unwrap();
        f.write_all(b"X 2f746d702f").unwrap();
        assert_ne!(snapshot(&root), before);
        let problems = recover(&root).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(snapshot(&root), before);
        // Nothing left to recover.
        assert!(recover(&root).unwrap().is_empty());
        assert_eq!(snapshot(&root), before);
    }

    #[test]
    fn removing_many_paths_nested_either_way_is_undone() {
        for order in [["U/00/001", "U/00"], ["U/00", "U/00/001"]] {
            let (_d, root) = setup();
            fs::write(root.join("U/00/002"), b"file two").unwrap();
            let before = snapshot(&root);
            let mut t = Txn::begin(&root, &["U"]).unwrap();
            let mut paths: Vec<PathBuf> = order.iter().map(|p| t.resolve(p).unwrap()).collect();
            paths.push(t.resolve("U/not/there").unwrap());
            paths.push(t.resolve("U/Status.plist").unwrap());
            t.remove_many(&paths).unwrap();
            assert!(!root.join("U/00").exists());
            assert!(!root.join("U/Status.plist").exists());
            // Killed right after: the journal on disk alone brings everything back.
            std::mem::forget(t);
            assert!(recover(&root).unwrap().is_empty());
            assert_eq!(snapshot(&root), before, "{order:?}");
            // And a rollback of the same does too.
            let mut t = Txn::begin(&root, &["U"]).unwrap();
            t.remove_many(&paths).unwrap();
            assert!(t.rollback().is_empty());
            assert_eq!(snapshot(&root), before, "{order:?}");
        }
    }

    #[test]
    fn a_killed_batch_of_replacements_is_undone_by_recover() {
        let (_d, root) = setup();
        let before = snapshot(&root);
        let mut t = Txn::begin(&root, &["U"]).unwrap();
        let mut batch = Vec::new();
        for (p, data) in [
            ("U/00/001", &b"new one"[..]),
            ("U/Manifest.db", b"new manifest"),
            ("U/00/fresh", b"fresh"),
        ] {
            let mut f = t.create_file(&t.resolve(p).unwrap()).unwrap();
            f.write_all(data).unwrap();
            batch.push(f);
        }
        t.commit_files(batch).unwrap();
        assert_eq!(fs::read(root.join("U/00/001")).unwrap(), b"new one");
        assert_eq!(
            fs::read(root.join("U/Manifest.db")).unwrap(),
            b"new manifest"
        );
        std::mem::forget(t);
        assert!(recover(&root).unwrap().is_empty());
        assert_eq!(snapshot(&root), before);
    }

    #[test]
    fn a_batch_of_moves_is_undone_by_recover_and_rollback() {
        for kill in [true, false] {
            let (_d, root) = setup();
            let before = snapshot(&root);
            let mut t = Txn::begin(&root, &["U"]).unwrap();
            t.write_file(&t.resolve("U/Snapshot/00/001").unwrap(), b"changed")
                .unwrap();
            t.write_file(&t.resolve("U/Snapshot/11/new").unwrap(), b"new")
                .unwrap();
            let pairs: Vec<(PathBuf, PathBuf)> = [
                ("U/Snapshot/00/001", "U/00/001"),
                ("U/Snapshot/11/new", "U/11/new"),
            ]
            .iter()
            .map(|(a, b)| (t.resolve(a).unwrap(), t.resolve(b).unwrap()))
            .collect();
            t.rename_many(&pairs).unwrap();
            assert_eq!(fs::read(root.join("U/00/001")).unwrap(), b"changed");
            assert_eq!(fs::read(root.join("U/11/new")).unwrap(), b"new");
            if kill {
                std::mem::forget(t);
                assert!(recover(&root).unwrap().is_empty());
            } else {
                assert!(t.rollback().is_empty());
            }
            assert_eq!(snapshot(&root), before, "kill: {kill}");
        }
    }

    /// A backup's final move: hundreds of new files (spread over threads) and a few that
    /// replace existing ones, then commit, rollback or a kill followed by recovery.
    #[test]
    fn a_big_batch_of_moves_is_applied_and_undone_exactly() {
        for end in ["commit", "rollback", "kill"] {
            let (_d, root) = setup();
            let before = snapshot(&root);
            let mut t = Txn::begin(&root, &["U"]).unwrap();
            let mut pairs = Vec::new();
            for i in 0..700u32 {
                let from = t
                    .resolve(&format!("U/Snapshot/{:02x}/f{i}", i % 7))
                    .unwrap();
                t.write_file(&from, format!("new {i}").as_bytes()).unwrap();
                pairs.push((
                    from,
                    t.resolve_name(&format!("U/{:02x}/f{i}", i % 7)).unwrap(),
                ));
            }
            let from = t.resolve("U/Snapshot/00/001").unwrap();
            t.write_file(&from, b"replaced").unwrap();
            pairs.push((from, t.resolve_name("U/00/001").unwrap()));
            t.rename_many(&pairs).unwrap();
            assert_eq!(fs::read(root.join("U/06/f699")).unwrap(), b"new 699");
            assert_eq!(fs::read(root.join("U/00/001")).unwrap(), b"replaced");
            assert!(!root.join("U/Snapshot/00/f0").exists());
            match end {
                "commit" => {
                    t.commit().unwrap();
                    let after = snapshot(&root);
                    for i in 0..700u32 {
                        let at = format!("U/{:02x}/f{i}", i % 7);
                        assert_eq!(after[&at], Some(format!("new {i}").into_bytes()), "{at}");
                    }
                    // Nothing else: the old files, the new folders, the emptied snapshot.
                    assert_eq!(after.len(), before.len() + 700 + 6 + 1 + 7);
                    assert!(after.keys().all(|k| !k.contains(TMP_MARK)));
                }
                _ => undo_and_compare(t, end == "kill", &root, &before),
            }
        }
    }

    /// Killed between the link and the removal of the old name: recovery leaves one name, the
    /// old one, and never removes a file that only happens to sit at the new name.
    #[test]
    fn a_move_killed_half_way_keeps_one_name() {
        let (_d, root) = setup();
        fs::create_dir_all(root.join("U/Snapshot/00")).unwrap();
        fs::write(root.join("U/Snapshot/00/a"), b"a").unwrap();
        fs::hard_link(root.join("U/Snapshot/00/a"), root.join("U/00/a")).unwrap();
        fs::write(root.join("U/Snapshot/00/b"), b"b").unwrap();
        fs::write(root.join("U/00/b"), b"someone else's b").unwrap();
        let txn = root.join(format!("{TMP_MARK}txn-test"));
        fs::create_dir(&txn).unwrap();
        let lines: String = ["a", "b"]
            .iter()
            .map(|n| {
                Undo::Linked {
                    from: root.join("U/Snapshot/00").join(n),
                    to: root.join("U/00").join(n),
                }
                .to_line()
            })
            .collect();
        fs::write(txn.join(JOURNAL), lines).unwrap();
        assert!(recover(&root).unwrap().is_empty());
        assert!(!root.join("U/00/a").exists());
        assert_eq!(fs::read(root.join("U/Snapshot/00/a")).unwrap(), b"a");
        assert_eq!(fs::read(root.join("U/00/b")).unwrap(), b"someone else's b");
        assert_eq!(fs::read(root.join("U/Snapshot/00/b")).unwrap(), b"b");
    }

    /// Files in folders this transaction made skip the existence check, but never where a
    /// file could already be: written twice, or moved in by a rename.
    #[test]
    fn fresh_folders_are_trusted_only_for_names_never_made() {
        let (_d, root) = setup();
        let mut t = Txn::begin(&root, &["U"]).unwrap();
        let x = t.resolve_name("U/Snapshot/ab/x").unwrap();
        t.write_file(&x, b"first").unwrap();
        fs::hard_link(&x, root.join("x-first")).unwrap();
        t.write_file(&x, b"second").unwrap();
        assert_eq!(fs::read(&x).unwrap(), b"second");
        assert_eq!(fs::read(root.join("x-first")).unwrap(), b"first");

        // A rename brings a file into the fresh folder behind the transaction's back.
        let y = t.resolve_name("U/Snapshot/ab/y").unwrap();
        t.rename(&t.resolve("U/Status.plist").unwrap(), &y).unwrap();
        fs::hard_link(&y, root.join("y-old")).unwrap();
        t.write_file(&y, b"new y").unwrap();
        assert_eq!(fs::read(&y).unwrap(), b"new y");
        assert_eq!(fs::read(root.join("y-old")).unwrap(), b"old status");
        assert!(t.rollback().is_empty());
        assert_eq!(
            fs::read(root.join("U/Status.plist")).unwrap(),
            b"old status"
        );
        assert!(!root.join("U/Snapshot").exists());
    }

    #[test]
    fn moves_that_depend_on_each_other_go_one_by_one() {
        let (_d, root) = setup();
        let mut t = Txn::begin(&root, &["U"]).unwrap();
        t.write_file(&t.resolve("U/a").unwrap(), b"a").unwrap();
        // a -> b, then b -> c: must end with c = "a".
        let pairs: Vec<(PathBuf, PathBuf)> = [("U/a", "U/b"), ("U/b", "U/c")]
            .iter()
            .map(|(a, b)| (t.resolve(a).unwrap(), t.resolve(b).unwrap()))
            .collect();
        t.rename_many(&pairs).unwrap();
        t.commit().unwrap();
        assert_eq!(fs::read(root.join("U/c")).unwrap(), b"a");
        assert!(!root.join("U/a").exists() && !root.join("U/b").exists());
    }

    #[test]
    fn a_committed_transaction_is_never_undone() {
        let (_d, root) = setup();
        let mut t = Txn::begin(&root, &["U"]).unwrap();
        t.write_file(&t.resolve("U/Manifest.db").unwrap(), b"new manifest")
            .unwrap();
        t.commit().unwrap();
        let after = snapshot(&root);
        assert!(recover(&root).unwrap().is_empty());
        assert_eq!(snapshot(&root), after);
        // A transaction directory whose journal is gone (commit interrupted while deleting the
        // aside copies) is only cleaned up.
        fs::create_dir(root.join(".iosnap-txn-deadbeef")).unwrap();
        fs::write(root.join(".iosnap-txn-deadbeef/1"), b"old copy").unwrap();
        assert!(recover(&root).unwrap().is_empty());
        assert_eq!(snapshot(&root), after);
    }

    #[test]
    fn read_only_transactions_refuse_changes_and_create_nothing() {
        let (_d, root) = setup();
        let before = snapshot(&root);
        let mut t = Txn::read_only(&root, &["U"]);
        let p = t.resolve("U/Manifest.db").unwrap();
        assert!(t.write_file(&p, b"x").is_err());
        assert!(t.remove(&p).is_err());
        assert!(t.create_dir_all(&t.resolve("U/new/dir").unwrap()).is_err());
        assert!(t.rename(&p, &t.resolve("U/other").unwrap()).is_err());
        t.commit().unwrap();
        assert_eq!(snapshot(&root), before);
    }

    #[test]
    fn journal_lines_round_trip() {
        let u = Undo::Displaced {
            path: PathBuf::from("/a b/c"),
            aside: PathBuf::from("/x"),
        };
        let line = u.to_line();
        match Undo::from_line(line.trim_end()).unwrap() {
            Undo::Displaced { path, aside } => {
                assert_eq!(path, PathBuf::from("/a b/c"));
                assert_eq!(aside, PathBuf::from("/x"));
            }
            other => panic!("{other:?}"),
        }
        let u = Undo::MovedDir {
            from: PathBuf::from("/s/aa"),
            to: PathBuf::from("/aa"),
            ino: 1234567890123,
        };
        match Undo::from_line(u.to_line().trim_end()).unwrap() {
            Undo::MovedDir { from, to, ino } => {
                assert_eq!(
                    (from, to, ino),
                    ("/s/aa".into(), "/aa".into(), 1234567890123)
                );
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            "",
            "Q 00",
            "C zz",
            "X 2f",
            "C",
            "R 2f 2f",
            "R 2f 2f x",
            "L 2f 2f 1",
        ] {
            assert!(Undo::from_line(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn rollback_of_first_backup_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("fresh");
        let mut t = Txn::begin(&root, &["U"]).unwrap();
        t.write_file(&t.resolve("U/Info.plist").unwrap(), b"i")
            .unwrap();
        assert!(t.rollback().is_empty());
        assert!(!root.exists());
    }

    #[test]
    fn checked_directories_are_forgotten_when_moved_or_removed() {
        let (_d, root) = setup();
        let before = snapshot(&root);
        let mut t = Txn::begin(&root, &["U"]).unwrap();
        t.write_file(&t.resolve("U/Snapshot/00/a").unwrap(), b"a")
            .unwrap();
        t.rename(
            &t.resolve("U/Snapshot/00").unwrap(),
            &t.resolve("U/moved").unwrap(),
        )
        .unwrap();
        // The cached "U/Snapshot/00 is a directory" must not survive the move.
        t.write_file(&t.resolve("U/Snapshot/00/b").unwrap(), b"b")
            .unwrap();
        t.remove(&t.resolve("U/Snapshot").unwrap()).unwrap();
        t.write_file(&t.resolve("U/Snapshot/00/c").unwrap(), b"c")
            .unwrap();
        assert_eq!(fs::read(root.join("U/moved/a")).unwrap(), b"a");
        assert!(!root.join("U/Snapshot/00/b").exists());
        assert_eq!(fs::read(root.join("U/Snapshot/00/c")).unwrap(), b"c");
        // Batched commits journal their intents too: rollback removes everything.
        let mut batch = Vec::new();
        for name in ["U/Snapshot/00/c", "U/x/1", "U/x/2"] {
            let mut p = t.create_file(&t.resolve(name).unwrap()).unwrap();
            p.write_all(name.as_bytes()).unwrap();
            batch.push(p);
        }
        t.commit_files(batch).unwrap();
        assert_eq!(fs::read(root.join("U/x/2")).unwrap(), b"U/x/2");
        assert!(t.rollback().is_empty());
        assert_eq!(snapshot(&root), before);
    }

    #[test]
    fn new_files_go_straight_to_their_name_existing_ones_through_a_temp() {
        let (_d, root) = setup();
        let before = snapshot(&root);
        let keep = root.join("keep");
        fs::hard_link(root.join("U/Manifest.db"), &keep).unwrap();
        let mut t = Txn::begin(&root, &["U"]).unwrap();
        let new = t.resolve("U/Snapshot/00/new").unwrap();
        let mut p = t.create_file(&new).unwrap();
        assert!(p.is_direct());
        p.write_all(b"brand new").unwrap();
        // Written under its final name: no temp file next to it.
        let names: Vec<_> = fs::read_dir(root.join("U/Snapshot/00"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("new")]);
        t.commit_file(p).unwrap();
        assert!(t.unsynced);
        let old = t.resolve("U/Manifest.db").unwrap();
        let mut p = t.create_file(&old).unwrap();
        assert!(!p.is_direct());
        p.write_all(b"replaced").unwrap();
        assert_eq!(fs::read(&old).unwrap(), b"old manifest");
        t.commit_file(p).unwrap();
        assert_eq!(fs::read(&old).unwrap(), b"replaced");
        assert_eq!(fs::read(&keep).unwrap(), b"old manifest");
        // A direct file replacing an existing one is synced first (the owed sync is paid).
        t.write_file(&t.resolve("U/Snapshot/00/status").unwrap(), b"new status")
            .unwrap();
        assert!(t.unsynced);
        t.rename(
            &t.resolve("U/Snapshot/00/status").unwrap(),
            &t.resolve("U/Status.plist").unwrap(),
        )
        .unwrap();
        assert!(!t.unsynced);
        assert_eq!(
            fs::read(root.join("U/Status.plist")).unwrap(),
            b"new status"
        );
        // An unfinished direct file disappears when dropped.
        let half = t.resolve("U/half").unwrap();
        let mut p = t.create_file(&half).unwrap();
        p.write_all(b"half").unwrap();
        drop(p);
        assert!(!half.exists());
        assert!(t.rollback().is_empty());
        fs::remove_file(&keep).unwrap();
        assert_eq!(snapshot(&root), before);
    }

    #[test]
    fn moving_a_directory_over_an_existing_one_replaces_it() {
        let (_d, root) = setup();
        let mut t = Txn::begin(&root, &["U"]).unwrap();
        t.write_file(&t.resolve("U/Snapshot/00/002").unwrap(), b"two")
            .unwrap();
        t.rename(
            &t.resolve("U/Snapshot/00").unwrap(),
            &t.resolve("U/00").unwrap(),
        )
        .unwrap();
        t.commit().unwrap();
        assert!(!root.join("U/00/001").exists());
        assert_eq!(fs::read(root.join("U/00/002")).unwrap(), b"two");
    }

    /// A backup's final move as the phone sends it: the files of each `Snapshot/xx/` spread
    /// over several MoveItems requests, plus the manifest next to the folders.
    fn final_move(t: &Txn, folders: &[&str], per: usize) -> Vec<Vec<(PathBuf, PathBuf)>> {
        let mut all = Vec::new();
        for i in 0..per {
            for f in folders {
                all.push((
                    t.resolve_name(&format!("U/Snapshot/{f}/{f}{i}")).unwrap(),
                    t.resolve_name(&format!("U/{f}/{f}{i}")).unwrap(),
                ));
            }
        }
        all.push((
            t.resolve_name("U/Snapshot/Manifest.db").unwrap(),
            t.resolve_name("U/Manifest.db").unwrap(),
        ));
        all.chunks(7).map(<[_]>::to_vec).collect()
    }

    fn upload(t: &mut Txn, folders: &[&str], per: usize) {
        for f in folders {
            t.create_dir_all(&t.resolve(&format!("U/Snapshot/{f}")).unwrap())
                .unwrap();
            for i in 0..per {
                let p = t.resolve_name(&format!("U/Snapshot/{f}/{f}{i}")).unwrap();
                t.write_file(&p, format!("{f} {i}").as_bytes()).unwrap();
            }
        }
        let m = t.resolve_name("U/Snapshot/Manifest.db").unwrap();
        t.write_file(&m, b"new manifest").unwrap();
        for f in folders {
            t.create_dir_all(&t.resolve(&format!("U/{f}")).unwrap())
                .unwrap();
        }
    }

    /// Gathered over the requests, each folder whose every file moves into a new empty folder
    /// is renamed whole (same inode), an empty one is left in its place, and commit, rollback
    /// or a kill followed by recovery end exactly where they must.
    #[test]
    fn deferred_moves_rename_whole_folders_and_undo_exactly() {
        let folders = ["a1", "b2", "c3"];
        for end in ["commit", "rollback", "kill"] {
            let (_d, root) = setup();
            let before = snapshot(&root);
            let mut t = Txn::begin(&root, &["U"]).unwrap();
            upload(&mut t, &folders, 5);
            let ino = fs::metadata(root.join("U/Snapshot/b2")).unwrap().ino();
            for batch in final_move(&t, &folders, 5) {
                t.defer_moves(&batch).unwrap();
            }
            // Nothing has moved yet.
            assert!(root.join("U/Snapshot/b2/b24").exists());
            // The next request (here a removal) applies them first.
            let snap = t.resolve("U/Snapshot").unwrap();
            t.remove_many(std::slice::from_ref(&snap)).unwrap();
            assert_eq!(fs::metadata(root.join("U/b2")).unwrap().ino(), ino);
            assert_eq!(fs::read(root.join("U/c3/c34")).unwrap(), b"c3 4");
            assert_eq!(
                fs::read(root.join("U/Manifest.db")).unwrap(),
                b"new manifest"
            );
            assert!(!root.join("U/Snapshot").exists());
            match end {
                "commit" => {
                    t.commit().unwrap();
                    let after = snapshot(&root);
                    for f in folders {
                        for i in 0..5 {
                            let at = format!("U/{f}/{f}{i}");
                            assert_eq!(after[&at], Some(format!("{f} {i}").into_bytes()));
                        }
                    }
                    // The old files, 3 new folders with 5 files each; the manifest replaced.
                    assert_eq!(after.len(), before.len() + 3 + 15);
                    assert!(after.keys().all(|k| !k.contains(TMP_MARK)));
                }
                _ => undo_and_compare(t, end == "kill", &root, &before),
            }
        }
    }

    /// A folder with a file that does not move, a destination folder that existed before or
    /// already holds a file: those files move one by one, and the rest stays.
    #[test]
    fn folders_that_are_not_whole_move_file_by_file() {
        let (_d, root) = setup();
        fs::create_dir_all(root.join("U/c3")).unwrap();
        let mut t = Txn::begin(&root, &["U"]).unwrap();
        upload(&mut t, &["a1", "b2", "c3"], 4);
        t.write_file(&t.resolve_name("U/Snapshot/a1/stays").unwrap(), b"s")
            .unwrap();
        t.write_file(&t.resolve_name("U/b2/there").unwrap(), b"t")
            .unwrap();
        let inos: Vec<u64> = ["a1", "b2", "c3"]
            .iter()
            .map(|f| fs::metadata(root.join("U/Snapshot").join(f)).unwrap().ino())
            .collect();
        for batch in final_move(&t, &["a1", "b2", "c3"], 4) {
            t.defer_moves(&batch).unwrap();
        }
        t.commit().unwrap();
        for (f, ino) in ["a1", "b2", "c3"].iter().zip(inos) {
            assert_ne!(fs::metadata(root.join("U").join(f)).unwrap().ino(), ino);
            for i in 0..4 {
                let at = root.join(format!("U/{f}/{f}{i}"));
                assert_eq!(fs::read(&at).unwrap(), format!("{f} {i}").as_bytes());
                assert!(!root.join(format!("U/Snapshot/{f}/{f}{i}")).exists());
            }
        }
        assert_eq!(fs::read(root.join("U/Snapshot/a1/stays")).unwrap(), b"s");
        assert_eq!(fs::read(root.join("U/b2/there")).unwrap(), b"t");
    }

    /// Requests that touch the paths of deferred moves see them applied first: the end is
    /// the one of applying each request as it came.
    #[test]
    fn deferred_moves_keep_the_order_of_requests() {
        let (_d, root) = setup();
        let mut t = Txn::begin(&root, &["U"]).unwrap();
        t.write_file(&t.resolve("U/a").unwrap(), b"a").unwrap();
        let pair =
            |t: &Txn, a: &str, b: &str| (t.resolve_name(a).unwrap(), t.resolve_name(b).unwrap());
        t.defer_moves(&[pair(&t, "U/a", "U/b")]).unwrap();
        t.defer_moves(&[pair(&t, "U/b", "U/c")]).unwrap();
        // Into a new folder `d`, then a file over that folder (which replaces it, as in
        // LIMD): the other way round, the first move could not be done.
        t.defer_moves(&[pair(&t, "U/c", "U/d/e")]).unwrap();
        t.defer_moves(&[pair(&t, "U/Status.plist", "U/d")]).unwrap();
        t.commit().unwrap();
        assert_eq!(fs::read(root.join("U/d")).unwrap(), b"old status");
        for gone in ["U/a", "U/b", "U/c", "U/Status.plist"] {
            assert!(!root.join(gone).exists(), "{gone}");
        }
    }

    /// A deferred move that cannot be done fails the next request; rolled back, nothing of the
    /// transaction is left.
    #[test]
    fn a_deferred_move_that_fails_fails_the_next_request() {
        let (_d, root) = setup();
        let before = snapshot(&root);
        let mut t = Txn::begin(&root, &["U"]).unwrap();
        upload(&mut t, &["a1"], 3);
        let mut batch = final_move(&t, &["a1"], 3).concat();
        batch.push((
            t.resolve_name("U/Snapshot/missing").unwrap(),
            t.resolve_name("U/missing").unwrap(),
        ));
        t.defer_moves(&batch).unwrap();
        assert!(t.apply_deferred().is_err());
        assert!(t.rollback().is_empty());
        assert_eq!(snapshot(&root), before);
    }

    /// Killed at any point of a whole-folder move, recovery puts the folder back.
    #[test]
    fn a_folder_move_killed_half_way_is_undone() {
        for stage in ["journalled", "renamed", "remade"] {
            let (_d, root) = setup();
            fs::create_dir_all(root.join("U/Snapshot/aa")).unwrap();
            fs::write(root.join("U/Snapshot/aa/f"), b"f").unwrap();
            fs::create_dir(root.join("U/aa")).unwrap();
            let ino = fs::metadata(root.join("U/Snapshot/aa")).unwrap().ino();
            let txn = root.join(format!("{TMP_MARK}txn-test"));
            fs::create_dir(&txn).unwrap();
            let line = Undo::MovedDir {
                from: root.join("U/Snapshot/aa"),
                to: root.join("U/aa"),
                ino,
            }
            .to_line();
            fs::write(txn.join(JOURNAL), line).unwrap();
            if stage != "journalled" {
                fs::rename(root.join("U/Snapshot/aa"), root.join("U/aa")).unwrap();
            }
            if stage == "remade" {
                fs::create_dir(root.join("U/Snapshot/aa")).unwrap();
            }
            assert!(recover(&root).unwrap().is_empty(), "{stage}");
            assert_eq!(fs::metadata(root.join("U/Snapshot/aa")).unwrap().ino(), ino);
            assert_eq!(fs::read(root.join("U/Snapshot/aa/f")).unwrap(), b"f");
            assert!(
                fs::read_dir(root.join("U/aa")).unwrap().next().is_none(),
                "{stage}"
            );
        }
    }

    #[test]
    fn path_bytes_split_like_path_does() {
        for p in ["/a/b/c", "/a", "/", "a/b", "a", "/a/b.c/d e"] {
            let path = Path::new(p);
            let want = path.parent().map(key).filter(|d| !d.is_empty());
            assert_eq!(parent_key(key(path)), want, "{p}");
            let want = path
                .parent()
                .zip(path.file_name())
                .map(|(d, n)| (key(d), n.as_encoded_bytes()))
                .filter(|(d, _)| !d.is_empty());
            assert_eq!(split_key(path), want, "{p}");
        }
    }
}
