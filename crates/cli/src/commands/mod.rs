//! One module per verb. Each takes its parsed arguments, calls the libraries, and renders text
//! or `--json` (shapes documented in docs/json.md).

pub mod backup;
mod cat;
pub mod daemon;
pub mod datasets;
mod demo;
pub mod devices;
pub mod encryption;
pub mod export;
mod extract;
mod info;
pub mod location;
mod ls;
#[path = "password.rs"]
pub mod password_cmd;
pub mod prune;
pub mod restore;
pub mod simulate;
pub mod snapshot_backup;
pub mod snapshot_ops;
pub mod snapshots;
mod verify;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use iosnap_format::backup::Backup;

use crate::cli::{Cli, Command, OpenArgs};
use crate::password;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Info(a) => info::run(&a),
        Command::Ls(a) => ls::run(&a),
        Command::Cat(a) => cat::run(&a),
        Command::Datasets(a) => datasets::run(&a),
        Command::Extract(a) => extract::run(&a, cli.quiet),
        Command::Verify(a) => verify::run(&a),
        Command::Demo(a) => demo::run(&a, cli.quiet),
        Command::Devices(a) => devices::run(&a),
        Command::Backup(a) => backup::run(&a, cli.quiet),
        Command::Restore(a) => restore::run(&a, cli.quiet),
        Command::Encryption(a) => encryption::run(&a),
        Command::Simulate(a) => simulate::run(&a),
        Command::Snapshots(a) => snapshots::run(&a),
        Command::Prune(a) => prune::run(&a),
        Command::Lock(a) => snapshot_ops::run_lock(&a, true),
        Command::Unlock(a) => snapshot_ops::run_lock(&a, false),
        Command::Label(a) => snapshot_ops::run_label(&a),
        Command::Delete(a) => snapshot_ops::run_delete(&a),
        Command::Archive(a) => snapshot_ops::run_archive(&a),
        Command::Export(a) => export::run(&a, cli.quiet),
        Command::Import(a) => snapshot_ops::run_import(&a),
        Command::Diff(a) => snapshot_ops::run_diff(&a),
        Command::Forget(a) => snapshot_ops::run_forget(&a),
        Command::Location(a) => location::run(&a),
        Command::Settings(a) => location::run_settings(&a),
        Command::Daemon(a) => daemon::run(&a),
        Command::Password(a) => password_cmd::run(&a),
    }
}

/// Runs device work on a tokio runtime (the device and simulator layers are async; the
/// format layer and the rest of the CLI are not).
pub fn block_on<T>(fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    run_on(tokio::runtime::Builder::new_multi_thread(), fut)
}

/// [`block_on`] for a backup: a runtime on this thread alone, so the thread that runs the
/// DeviceLink loop also waits for the socket (`epoll`) itself. On the multi-threaded runtime a
/// worker thread waited for it and woke this one: two thread switches each time the socket ran
/// dry, ≈ 14,000 times in a 2 GB backup. The backup's other work has its own threads
/// (writers, writeback, blocking pool).
pub fn block_on_here<T>(fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    run_on(tokio::runtime::Builder::new_current_thread(), fut)
}

fn run_on<T>(
    mut builder: tokio::runtime::Builder,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let rt = builder
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(fut)
}

/// Finds the backup folder: `dir` itself, or its only child that looks like a backup
/// (people often point at `…/Backup/` rather than `…/Backup/<UDID>/`).
pub fn resolve_backup_dir(dir: &Path) -> Result<PathBuf> {
    let meta = std::fs::metadata(dir).with_context(|| format!("{}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{}: not a folder", dir.display());
    }
    let marker = |d: &Path| {
        [
            "Manifest.db",
            "Manifest.mbdb",
            "Manifest.plist",
            "Manifest.mbdx",
        ]
        .iter()
        .any(|m| d.join(m).exists())
    };
    if marker(dir) {
        return Ok(dir.to_path_buf());
    }
    let mut found = Vec::new();
    for child in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let child = child.with_context(|| format!("{}", dir.display()))?;
        let path = child.path();
        if child.file_type().map(|t| t.is_dir()).unwrap_or(false) && marker(&path) {
            found.push(path);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Ok(dir.to_path_buf()), // let the library say what is missing
        n => bail!(
            "{}: holds {n} backups; name one of them (e.g. {})",
            dir.display(),
            found[0].display()
        ),
    }
}

/// Finds what `args.dir` names: an existing folder, else a snapshot reference of the library.
fn locate(args: &OpenArgs) -> Result<PathBuf> {
    if args.dir.exists() {
        return resolve_backup_dir(&args.dir);
    }
    let reference = args.dir.to_string_lossy().into_owned();
    let lib = snapshots::LibraryArgs {
        library: args.library.clone(),
    };
    let library = lib.open_for(snapshots::udid_of(&reference))?;
    let snap = if reference == "latest" {
        library
            .all_snapshots()?
            .into_iter()
            .max_by(|a, b| a.name.cmp(&b.name))
            .with_context(|| {
                format!(
                    "the library in {} has no snapshots",
                    library.root().display()
                )
            })?
    } else {
        library.resolve(&reference).with_context(|| {
            format!(
                "{reference} is neither a folder nor a snapshot of the library in {}",
                library.root().display()
            )
        })?
    };
    Ok(snap.path)
}

/// Opens a backup and, when it is encrypted, unlocks it with the password from the usual
/// sources (never argv).
pub fn open_unlocked(args: &OpenArgs) -> Result<Backup> {
    let dir = locate(args)?;
    let mut backup = Backup::open(&dir)?;
    if backup.is_encrypted() && !backup.is_unlocked() {
        let what = format!("the backup in {}", dir.display());
        let udid = password::backup_udid(&backup);
        let pw = password::require_for(args.password_file.as_deref(), udid.as_deref(), &what)?;
        backup.unlock(pw.as_bytes())?;
    }
    Ok(backup)
}

/// Opens a backup, unlocking it only when a password is available without asking for one on
/// a non-terminal (used by `info`, which shows what it can of a locked backup).
pub fn open_maybe_unlocked(args: &OpenArgs) -> Result<Backup> {
    let dir = locate(args)?;
    let mut backup = Backup::open(&dir)?;
    if backup.is_encrypted() && !backup.is_unlocked() {
        let what = format!("the backup in {}", dir.display());
        let udid = password::backup_udid(&backup);
        if let Some(pw) =
            password::obtain_for(args.password_file.as_deref(), udid.as_deref(), &what)?
        {
            backup.unlock(pw.as_bytes())?;
        }
    }
    Ok(backup)
}

/// Writes pretty JSON and a newline to stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Unix seconds → RFC 3339 UTC, or `None` for 0 / out of range.
pub fn rfc3339(secs: i64) -> Option<String> {
    if secs == 0 {
        return None;
    }
    chrono::DateTime::from_timestamp(secs, 0).map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// A `SystemTime` → RFC 3339 UTC.
pub fn rfc3339_system(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
