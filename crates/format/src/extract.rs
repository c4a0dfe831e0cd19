//! Safe extraction of a backup to `OUT/<domain>/<relativePath>`.
//!
//! # Guarantees
//!
//! * **Nothing is written outside `OUT`.** Every domain and path goes through
//!   [`path_safety::validate`]; rejected rows are counted in the report with their reason.
//! * **Pre-existing symlinks in `OUT` are never followed.** Each directory on the way is created
//!   by us or checked with `symlink_metadata` to be a real directory (not a link to one).
//!   Files are written to a fresh temporary name (`O_EXCL`, so an existing name, link or not,
//!   is never opened) in the checked parent and then renamed over the final name; `rename`
//!   replaces a link, it does not write through it. (A *concurrent* attacker who swaps a checked
//!   directory for a link between the check and the write is outside this model; `OUT` should
//!   be a folder the examiner controls.)
//! * **Symlinks** from the backup are recreated only if their target passes
//!   [`path_safety::link_target_inside`] (relative, and inside `OUT` when resolved from the
//!   link's directory); absolute and escaping targets are skipped and reported.
//! * **Streaming, bounded memory.** Files are copied through a fixed buffer per worker thread,
//!   whatever their size; files are processed in parallel with rayon.
//! * **Metadata.** Modification times are restored (files, directories, and — without following
//!   them — symlinks). Permission bits are `mode & 0o777` and never setuid/setgid/sticky; the owner
//!   always gets read+write on files and read+write+execute on directories, so an extraction can
//!   never produce a tree the examiner cannot read or delete (a phone's `0o000` file would).
//!   Ownership (uid/gid) is not restored: the phone's 501/501 means nothing here.
//! * Directories are created `0o700` while files are written into them and get their final
//!   permissions and times at the end, deepest first. A directory that already exists in `OUT`
//!   and lacks owner `rwx` gets it added (otherwise nothing could be written into it); nothing
//!   else about pre-existing content is changed, and existing files are only replaced with
//!   [`Overwrite::Replace`].
//! * Missing data files (partial backups) are reported as [`SkipReason::MissingData`], distinct
//!   from real failures ([`ExtractReport::failures`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use globset::GlobMatcher;
use rayon::prelude::*;

use crate::backup::Backup;
use crate::entry::{Entry, EntryKind};
use crate::error::{Error, IoContext, Result};
use crate::path_safety::{self, SafePath, UnsafeLink, UnsafePath};

/// Copy buffer per worker thread.
const BUF_SIZE: usize = 256 * 1024;

/// What to do when the output path already exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overwrite {
    /// Leave the existing file alone and report the entry as skipped (the safe default).
    #[default]
    Skip,
    /// Replace it (a directory is never replaced).
    Replace,
}

/// Progress of a running extraction, for a progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Files finished (written, skipped or failed).
    pub files_done: u64,
    /// Files to process.
    pub files_total: u64,
    /// Plaintext bytes written so far.
    pub bytes_done: u64,
    /// Sum of the `Size` of the files to process.
    pub bytes_total: u64,
}

/// Why an entry was not extracted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SkipReason {
    /// The domain or path is unsafe.
    UnsafePath {
        /// Which rule it broke.
        #[serde(flatten)]
        reason: UnsafePath,
    },
    /// A symlink whose target is not recreated.
    UnsafeLink {
        /// The target as stored.
        target: Option<String>,
        /// Which rule it broke.
        #[serde(flatten)]
        reason: UnsafeLink,
    },
    /// The output path exists and the policy is [`Overwrite::Skip`].
    Exists,
    /// A parent on the way is not a real directory (a file, or a symlink planted in `OUT`).
    ParentNotDirectory {
        /// The offending path.
        path: PathBuf,
    },
    /// A row of unknown kind (flags not 1/2/4).
    UnknownKind {
        /// The flags value.
        flags: u32,
    },
    /// The row's data file is not in the backup (common in partial backups and in the public
    /// mvt fixture); nothing was written.
    MissingData {
        /// The data file that was looked for.
        path: PathBuf,
    },
    /// Reading or writing failed (wrong key, damaged data, disk full …).
    Failed {
        /// The error, as text.
        error: String,
    },
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::UnsafePath { reason } => write!(f, "unsafe path: {reason}"),
            SkipReason::UnsafeLink { target, reason } => {
                write!(f, "{reason} ({})", target.as_deref().unwrap_or("-"))
            }
            SkipReason::Exists => f.write_str("already exists"),
            SkipReason::ParentNotDirectory { path } => {
                write!(f, "{} is not a real directory", path.display())
            }
            SkipReason::UnknownKind { flags } => write!(f, "unknown entry kind (flags {flags})"),
            SkipReason::MissingData { path } => write!(f, "data file missing: {}", path.display()),
            SkipReason::Failed { error } => write!(f, "failed: {error}"),
        }
    }
}

/// One entry that was not extracted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// The row's domain, as stored.
    pub domain: String,
    /// The row's relative path, as stored.
    pub relative_path: String,
    /// Why.
    pub reason: SkipReason,
}

/// What an extraction did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExtractReport {
    /// Regular files written.
    pub files: u64,
    /// Directories created or reused (rows and implied parents).
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Plaintext bytes written.
    pub bytes: u64,
    /// Files whose written length differs from the manifest `Size` (written anyway), with
    /// (domain/path, expected, written).
    pub size_mismatches: Vec<(String, u64, u64)>,
    /// Everything not extracted, with the reason. Entries excluded by filters are not listed.
    pub skipped: Vec<Skipped>,
}

impl ExtractReport {
    /// Entries skipped because extraction failed (as opposed to refused by policy or missing
    /// from the backup).
    pub fn failures(&self) -> impl Iterator<Item = &Skipped> {
        self.skipped
            .iter()
            .filter(|s| matches!(s.reason, SkipReason::Failed { .. }))
    }

    /// File rows whose data file is not in the backup.
    pub fn missing_data(&self) -> impl Iterator<Item = &Skipped> {
        self.skipped
            .iter()
            .filter(|s| matches!(s.reason, SkipReason::MissingData { .. }))
    }
}

/// Configured extraction. Build with [`Extractor::new`], adjust the public fields, then [`run`](Extractor::run).
#[derive(Debug, Clone)]
pub struct Extractor {
    /// Output folder; created if missing.
    pub out: PathBuf,
    /// Only these domains (exact names); empty = all.
    pub domains: BTreeSet<String>,
    /// Only entries whose `domain/relativePath` matches (see [`crate::tree::compile_glob`]).
    /// Directories are still created when a file below them matches.
    pub path_glob: Option<GlobMatcher>,
    /// Existing output files.
    pub overwrite: Overwrite,
    /// Worker threads for files. `None`: twice the CPU count (at least 4, at most 32), because
    /// extraction waits on the filesystem as much as it decrypts, and extra threads overlap the
    /// waits. Memory per thread is one 256 KiB buffer plus the decryptor's ~128 KiB.
    pub threads: Option<usize>,
}

/// A validated, filtered entry ready to extract.
struct Job<'a> {
    entry: &'a Entry,
    safe: SafePath<'a>,
    dest: PathBuf,
}

impl Extractor {
    /// An extractor writing everything to `out`, never overwriting.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        Extractor {
            out: out.into(),
            domains: BTreeSet::new(),
            path_glob: None,
            overwrite: Overwrite::Skip,
            threads: None,
        }
    }

    /// Sets the path glob from a pattern string.
    pub fn with_glob(mut self, pattern: &str) -> Result<Self> {
        self.path_glob = Some(crate::tree::compile_glob(pattern)?);
        Ok(self)
    }

    fn selected(&self, e: &Entry) -> bool {
        if !self.domains.is_empty() && !self.domains.contains(&e.domain) {
            return false;
        }
        match &self.path_glob {
            None => true,
            // Directories are created on demand for matching files; listing them alone only
            // when they match themselves.
            Some(g) => g.is_match(format!("{}/{}", e.domain, e.relative_path)),
        }
    }

    /// Extracts `entries` (usually `backup.entries()?.entries`) from `backup`. Per-entry problems
    /// go into the report; only a failure to create `OUT` itself is an error.
    pub fn run(
        &self,
        backup: &Backup,
        entries: &[Entry],
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<ExtractReport> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.out)
            .at(&self.out)?;
        let out_meta = fs::symlink_metadata(&self.out).at(&self.out)?;
        if !out_meta.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "{} is not a directory",
                self.out.display()
            )));
        }
        let mut report = ExtractReport::default();
        let mut dirs: Vec<Job<'_>> = Vec::new();
        let mut files: Vec<Job<'_>> = Vec::new();
        let mut links: Vec<Job<'_>> = Vec::new();
        for e in entries.iter().filter(|e| self.selected(e)) {
            let safe = match path_safety::validate(&e.domain, &e.relative_path) {
                Ok(s) => s,
                Err(reason) => {
                    report
                        .skipped
                        .push(skip(e, SkipReason::UnsafePath { reason }));
                    continue;
                }
            };
            let dest = safe.under(&self.out);
            let job = Job {
                entry: e,
                safe,
                dest,
            };
            match e.kind {
                EntryKind::File => files.push(job),
                EntryKind::Directory => dirs.push(job),
                EntryKind::Symlink => links.push(job),
                EntryKind::Other(flags) => report
                    .skipped
                    .push(skip(e, SkipReason::UnknownKind { flags })),
            }
        }

        // 1. Directories: rows and every parent of a file/link, shallowest first, serially.
        let mut dir_state = DirState::new(&self.out);
        let mut dir_times: BTreeMap<PathBuf, (u32, i64)> = BTreeMap::new();
        for j in &dirs {
            match dir_state.ensure(&j.dest) {
                Ok(()) => {
                    dir_times.insert(j.dest.clone(), (j.entry.meta.mode, j.entry.meta.mtime));
                }
                Err(reason) => report.skipped.push(skip(j.entry, reason)),
            }
        }
        let mut ready_files = Vec::with_capacity(files.len());
        for j in files {
            match j.dest.parent().map(|p| dir_state.ensure(p)) {
                Some(Ok(())) => ready_files.push(j),
                Some(Err(reason)) => report.skipped.push(skip(j.entry, reason)),
                None => report
                    .skipped
                    .push(skip(j.entry, failed("no parent directory"))),
            }
        }

        // 2. Files, in parallel.
        let files_total = ready_files.len() as u64;
        let bytes_total = ready_files.iter().map(|j| j.entry.meta.size).sum();
        let files_done = AtomicU64::new(0);
        let bytes_done = AtomicU64::new(0);
        let tick = |bytes: u64, file_finished: bool| {
            let b = bytes_done.fetch_add(bytes, Ordering::Relaxed) + bytes;
            let f = files_done.fetch_add(u64::from(file_finished), Ordering::Relaxed)
                + u64::from(file_finished);
            progress(Progress {
                files_done: f,
                files_total,
                bytes_done: b,
                bytes_total,
            });
        };
        let threads = self.threads.unwrap_or_else(|| {
            let cpus = std::thread::available_parallelism().map_or(2, usize::from);
            (cpus * 2).clamp(4, 32)
        });
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("iosnap-extract-{i}"))
            .build()
            .map_err(|e| {
                Error::InvalidArgument(format!("cannot start {threads} extraction threads: {e}"))
            })?;
        let outcomes: Vec<(usize, std::result::Result<u64, SkipReason>)> = pool.install(|| {
            ready_files
                .par_iter()
                .enumerate()
                .map_init(
                    || vec![0u8; BUF_SIZE],
                    |buf, (i, j)| {
                        let r = self.write_file(backup, j, buf, &tick);
                        tick(0, true);
                        (i, r)
                    },
                )
                .collect()
        });
        for (i, r) in outcomes {
            let Some(j) = ready_files.get(i) else {
                continue;
            };
            match r {
                Ok(n) => {
                    report.files += 1;
                    report.bytes += n;
                    if n != j.entry.meta.size {
                        report.size_mismatches.push((
                            format!("{}/{}", j.entry.domain, j.entry.relative_path),
                            j.entry.meta.size,
                            n,
                        ));
                    }
                }
                Err(reason) => report.skipped.push(skip(j.entry, reason)),
            }
        }

        // 3. Symlinks, after files so a link never redirects a file write.
        for j in &links {
            match self.make_link(j, &mut dir_state) {
                Ok(()) => report.symlinks += 1,
                Err(reason) => report.skipped.push(skip(j.entry, reason)),
            }
        }

        // 4. Directory permissions and times, deepest first (writing into a directory changes
        //    its mtime, changing permissions first could lock us out).
        report.dirs = dir_state.created.len() as u64;
        for (path, (mode, mtime)) in dir_times.iter().rev() {
            let perm = (mode & 0o777) | 0o700;
            if let Err(e) = fs::set_permissions(path, fs::Permissions::from_mode(perm)) {
                report.skipped.push(Skipped {
                    domain: String::new(),
                    relative_path: path.display().to_string(),
                    reason: failed(e),
                });
                continue;
            }
            let t = filetime::FileTime::from_unix_time(*mtime, 0);
            // Best effort: a failure to set a directory time is not worth a report line per dir.
            let _ = filetime::set_file_mtime(path, t);
        }
        report
            .skipped
            .sort_by(|a, b| (&a.domain, &a.relative_path).cmp(&(&b.domain, &b.relative_path)));
        Ok(report)
    }

    /// Streams one file to a temp name in its (checked) parent, then renames it into place.
    fn write_file(
        &self,
        backup: &Backup,
        j: &Job<'_>,
        buf: &mut [u8],
        tick: &(dyn Fn(u64, bool) + Sync),
    ) -> std::result::Result<u64, SkipReason> {
        match fs::symlink_metadata(&j.dest) {
            Ok(m) if m.is_dir() => return Err(failed("a directory exists at this path")),
            Ok(_) if self.overwrite == Overwrite::Skip => return Err(SkipReason::Exists),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed(e)),
        }
        let parent = j
            .dest
            .parent()
            .ok_or_else(|| failed("no parent directory"))?;
        let mut reader = backup.open_file(j.entry).map_err(|e| match e {
            Error::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
                SkipReason::MissingData { path }
            }
            e => failed(e),
        })?;
        let (tmp_path, mut tmp) = create_temp_in(parent, j.safe.components().last().copied())?;
        let result = (|| -> std::result::Result<u64, SkipReason> {
            let mut written = 0u64;
            loop {
                let n = match reader.read(buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(failed(Error::io(backup.data_path(j.entry), e))),
                };
                let chunk = buf
                    .get(..n)
                    .ok_or_else(|| failed("reader returned too many bytes"))?;
                tmp.write_all(chunk)
                    .map_err(|e| failed(Error::io(&tmp_path, e)))?;
                written += n as u64;
                tick(n as u64, false);
            }
            let perm = (j.entry.meta.mode & 0o777) | 0o600;
            tmp.set_permissions(fs::Permissions::from_mode(perm))
                .map_err(failed)?;
            let t = filetime::FileTime::from_unix_time(j.entry.meta.mtime, 0);
            filetime::set_file_handle_times(&tmp, None, Some(t)).map_err(failed)?;
            drop(tmp);
            fs::rename(&tmp_path, &j.dest).map_err(|e| failed(Error::io(&j.dest, e)))?;
            Ok(written)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp_path);
        }
        result
    }

    fn make_link(&self, j: &Job<'_>, dirs: &mut DirState) -> std::result::Result<(), SkipReason> {
        let target = j.entry.meta.target.as_deref();
        let checked = match target {
            None => Err(UnsafeLink::NoTarget),
            Some(t) => path_safety::link_target_inside(&j.safe, t),
        };
        if let Err(reason) = checked {
            return Err(SkipReason::UnsafeLink {
                target: target.map(str::to_string),
                reason,
            });
        }
        let target = target.ok_or(SkipReason::UnsafeLink {
            target: None,
            reason: UnsafeLink::NoTarget,
        })?;
        let parent = j
            .dest
            .parent()
            .ok_or_else(|| failed("no parent directory"))?;
        dirs.ensure(parent)?;
        match fs::symlink_metadata(&j.dest) {
            Ok(m) if m.is_dir() => return Err(failed("a directory exists at this path")),
            Ok(_) if self.overwrite == Overwrite::Skip => return Err(SkipReason::Exists),
            Ok(_) => {
                // Create under a temp name and rename over the existing entry.
                let tmp = parent.join(format!(".iosnap-link-{}", rand::random::<u64>()));
                std::os::unix::fs::symlink(target, &tmp).map_err(failed)?;
                if let Err(e) = fs::rename(&tmp, &j.dest) {
                    let _ = fs::remove_file(&tmp);
                    return Err(failed(e));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::os::unix::fs::symlink(target, &j.dest).map_err(failed)?;
            }
            Err(e) => return Err(failed(e)),
        }
        let t = filetime::FileTime::from_unix_time(j.entry.meta.mtime, 0);
        let _ = filetime::set_symlink_file_times(&j.dest, t, t);
        Ok(())
    }
}

/// Creates `parent/.<name>.iosnap-<random>` exclusively (never opens an existing name).
fn create_temp_in(
    parent: &Path,
    name: Option<&str>,
) -> std::result::Result<(PathBuf, File), SkipReason> {
    // Keep the temp name short so long phone names still fit in NAME_MAX.
    let stem: String = name.unwrap_or("f").chars().take(32).collect();
    for _ in 0..8 {
        let p = parent.join(format!(".{stem}.iosnap-{:016x}", rand::random::<u64>()));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
        {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(failed(Error::io(&p, e))),
        }
    }
    Err(failed("could not create a temporary file"))
}

fn skip(e: &Entry, reason: SkipReason) -> Skipped {
    Skipped {
        domain: e.domain.clone(),
        relative_path: e.relative_path.clone(),
        reason,
    }
}

fn failed(e: impl std::fmt::Display) -> SkipReason {
    SkipReason::Failed {
        error: e.to_string(),
    }
}

/// Directories known to be real (created or checked) under `OUT`.
struct DirState {
    out: PathBuf,
    created: BTreeSet<PathBuf>,
    bad: BTreeMap<PathBuf, SkipReason>,
}

impl DirState {
    fn new(out: &Path) -> Self {
        DirState {
            out: out.to_path_buf(),
            created: BTreeSet::new(),
            bad: BTreeMap::new(),
        }
    }

    /// Makes sure `dir` (inside `OUT`) and all its parents up to `OUT` are real directories,
    /// creating missing ones with mode 0700. Never follows a symlink.
    fn ensure(&mut self, dir: &Path) -> std::result::Result<(), SkipReason> {
        if dir == self.out || self.created.contains(dir) {
            return Ok(());
        }
        if let Some(r) = self.bad.get(dir) {
            return Err(r.clone());
        }
        let rel = dir
            .strip_prefix(&self.out)
            .map_err(|_| failed("path outside the output folder"))?;
        let mut cur = self.out.clone();
        for c in rel.components() {
            let std::path::Component::Normal(name) = c else {
                return Err(failed("unexpected path component"));
            };
            cur.push(name);
            if self.created.contains(&cur) {
                continue;
            }
            if let Some(r) = self.bad.get(&cur) {
                return Err(r.clone());
            }
            match fs::DirBuilder::new().mode(0o700).create(&cur) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let m = fs::symlink_metadata(&cur).map_err(failed)?;
                    if !m.is_dir() {
                        let r = SkipReason::ParentNotDirectory { path: cur.clone() };
                        self.bad.insert(cur.clone(), r.clone());
                        return Err(r);
                    }
                    // An existing directory we did not create: make sure we can write into it.
                    let mode = m.permissions().mode();
                    if mode & 0o700 != 0o700 {
                        fs::set_permissions(&cur, fs::Permissions::from_mode(mode | 0o700))
                            .map_err(failed)?;
                    }
                }
                Err(e) => return Err(failed(Error::io(&cur, e))),
            }
            self.created.insert(cur.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_state_refuses_planted_links_and_files() {
        let tmp = tempfile::tempdir().expect("tmp");
        let out = tmp.path().join("out");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(out.join("D")).expect("mkdir");
        fs::create_dir_all(&outside).expect("mkdir");
        std::os::unix::fs::symlink(&outside, out.join("D/link")).expect("symlink");
        fs::write(out.join("D/file"), b"x").expect("file");
        let mut s = DirState::new(&out);
        assert!(s.ensure(&out.join("D/ok/deeper")).is_ok());
        assert!(out.join("D/ok/deeper").is_dir());
        let r = s.ensure(&out.join("D/link/x"));
        assert_eq!(
            r,
            Err(SkipReason::ParentNotDirectory {
                path: out.join("D/link")
            })
        );
        assert!(matches!(
            s.ensure(&out.join("D/file/x")),
            Err(SkipReason::ParentNotDirectory { .. })
        ));
        assert!(
            fs::read_dir(&outside).expect("ls").next().is_none(),
            "nothing created outside"
        );
        assert!(
            s.ensure(&tmp.path().join("elsewhere")).is_err(),
            "paths outside OUT are refused"
        );
    }

    #[test]
    fn temp_names_are_exclusive_and_short() {
        let tmp = tempfile::tempdir().expect("tmp");
        let long = "n".repeat(255);
        let (p, _f) = create_temp_in(tmp.path(), Some(&long)).expect("temp");
        let name = p.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(name.len() < 80 && name.starts_with('.'));
        let mode = fs::metadata(&p).expect("md").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
