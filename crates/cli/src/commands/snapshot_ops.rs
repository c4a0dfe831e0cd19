//! The verbs that act on one snapshot or bring folders in and out of the library: lock,
//! unlock, label, delete, archive, export, import, diff, verify-snapshot.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use super::snapshots::{LibraryArgs, SnapshotJson, open_snapshot, udid_of};
use crate::progress::human_bytes;

/// `iosnap lock` / `iosnap unlock`.
#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub lib: LibraryArgs,
    /// The snapshot: UDID@latest, UDID@2026-11-24T213000Z, or a unique prefix of its name.
    pub snapshot: String,
}

/// Runs `lock` (`locked = true`) or `unlock`.
pub fn run_lock(args: &LockArgs, locked: bool) -> Result<ExitCode> {
    let lib = args.lib.open_for(udid_of(&args.snapshot))?;
    let s = lib.resolve(&args.snapshot)?;
    lib.update_meta(&s, |m| m.locked = locked)?;
    println!(
        "{} {}",
        s.reference(),
        if locked { "locked" } else { "unlocked" }
    );
    Ok(ExitCode::SUCCESS)
}

/// `iosnap label`.
#[derive(Debug, Args)]
pub struct LabelArgs {
    #[command(flatten)]
    pub lib: LibraryArgs,
    /// The snapshot.
    pub snapshot: String,
    /// The label (empty to remove it).
    pub label: String,
}

/// Runs `iosnap label`.
pub fn run_label(args: &LabelArgs) -> Result<ExitCode> {
    let lib = args.lib.open_for(udid_of(&args.snapshot))?;
    let s = lib.resolve(&args.snapshot)?;
    let label = (!args.label.is_empty()).then(|| args.label.clone());
    lib.update_meta(&s, |m| m.label = label)?;
    println!("{} labelled {:?}", s.reference(), args.label);
    Ok(ExitCode::SUCCESS)
}

/// `iosnap delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub lib: LibraryArgs,
    /// The snapshot to delete (not with --all).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub snapshot: Option<String>,
    /// Delete every unlocked snapshot of --device.
    #[arg(long, requires = "device")]
    pub all: bool,
    /// The device, with --all.
    #[arg(long, short = 'u', value_name = "UDID")]
    pub device: Option<String>,
    /// Do not ask for confirmation of --all.
    #[arg(long)]
    pub yes: bool,
}

fn confirm(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && matches!(line.trim(), "y" | "Y" | "yes")
}

/// Runs `iosnap delete`.
pub fn run_delete(args: &DeleteArgs) -> Result<ExitCode> {
    let udid = args
        .device
        .as_deref()
        .or(args.snapshot.as_deref().and_then(udid_of));
    let lib = args.lib.open_for(udid)?;
    if let (true, Some(udid)) = (args.all, &args.device) {
        let n = lib.snapshots(udid)?.len();
        if !args.yes && !confirm(&format!("Delete all {n} snapshot(s) of {udid}?")) {
            bail!("not deleting {n} snapshot(s) of {udid} without confirmation (pass --yes)");
        }
        let kept = lib.delete_all(udid)?;
        println!(
            "Deleted {} snapshot(s) of {udid}",
            n.saturating_sub(kept.len())
        );
        for k in kept {
            println!("  kept {udid}@{k} (locked)");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(reference) = &args.snapshot else {
        bail!("name a snapshot, or use --all --device UDID");
    };
    let s = lib.resolve(reference)?;
    lib.delete(&s)?;
    println!("Deleted {}", s.reference());
    Ok(ExitCode::SUCCESS)
}

/// `iosnap archive`.
#[derive(Debug, Args)]
pub struct ArchiveArgs {
    #[command(flatten)]
    pub lib: LibraryArgs,
    /// The snapshot to archive (a copy retention never touches).
    pub snapshot: String,
}

/// Runs `iosnap archive`.
pub fn run_archive(args: &ArchiveArgs) -> Result<ExitCode> {
    let lib = args.lib.open_for(udid_of(&args.snapshot))?;
    let s = lib.resolve(&args.snapshot)?;
    let dst = lib.archive(&s)?;
    println!("Archived {} to {}", s.reference(), dst.display());
    Ok(ExitCode::SUCCESS)
}

/// `iosnap export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub lib: LibraryArgs,
    /// The snapshot.
    pub snapshot: String,
    /// The new folder to write (must not exist): a standalone standard backup folder.
    pub dest: PathBuf,
}

/// Runs `iosnap export`.
pub fn run_export(args: &ExportArgs) -> Result<ExitCode> {
    let lib = args.lib.open_for(udid_of(&args.snapshot))?;
    let s = lib.resolve(&args.snapshot)?;
    let rep = lib.export(&s, &args.dest)?;
    println!(
        "Exported {} to {} ({} files, {})",
        s.reference(),
        args.dest.display(),
        rep.copied + rep.shared,
        human_bytes(s.usage.size)
    );
    Ok(ExitCode::SUCCESS)
}

/// `iosnap import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub lib: LibraryArgs,
    /// An iTunes / Finder / idevicebackup2 backup folder.
    pub dir: PathBuf,
    /// The device it belongs to (default: from its Info.plist).
    #[arg(long, short = 'u', value_name = "UDID")]
    pub device: Option<String>,
    /// Print JSON (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct ImportJson {
    snapshot: SnapshotJson,
    shared: u64,
    copied: u64,
    copied_bytes: u64,
    removed: u64,
}

/// Runs `iosnap import`.
pub fn run_import(args: &ImportArgs) -> Result<ExitCode> {
    let lib = args.lib.open_for(args.device.as_deref())?;
    let dir = super::resolve_backup_dir(&args.dir)?;
    let (s, rep) = lib.import(&dir, args.device.as_deref())?;
    if args.json {
        super::print_json(&ImportJson {
            snapshot: SnapshotJson::from(&s),
            shared: rep.shared,
            copied: rep.copied,
            copied_bytes: rep.copied_bytes,
            removed: rep.removed,
        })?;
    } else {
        println!(
            "Imported {} as {}: {} files shared with the previous snapshot, {} copied ({})",
            dir.display(),
            s.reference(),
            rep.shared,
            rep.copied,
            human_bytes(rep.copied_bytes)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `iosnap diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub lib: LibraryArgs,
    /// The older snapshot.
    pub a: String,
    /// The newer snapshot.
    pub b: String,
    /// List every path, not just counts per domain.
    #[arg(long, short = 'l')]
    pub long: bool,
    /// Read the backup password from this file (encrypted snapshots).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Print JSON (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// Runs `iosnap diff`.
pub fn run_diff(args: &DiffArgs) -> Result<ExitCode> {
    let lib = args.lib.open_for(udid_of(&args.a))?;
    let a = lib.resolve(&args.a)?;
    let b = lib.resolve(&args.b)?;
    let ba = open_snapshot(&a, args.password_file.as_deref())?;
    let bb = open_snapshot(&b, args.password_file.as_deref())?;
    let d = iosnap_store::diff::diff(&ba, &bb)?;
    if args.json {
        super::print_json(&d)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (added, removed, changed) = d.totals();
    println!(
        "{} → {}: {added} added, {removed} removed, {changed} changed",
        a.reference(),
        b.reference()
    );
    for (domain, dd) in &d.domains {
        println!(
            "  {domain}{}: +{} -{} ~{} ({} new)",
            dd.app
                .as_ref()
                .map(|a| format!(" (app {a})"))
                .unwrap_or_default(),
            dd.added.len(),
            dd.removed.len(),
            dd.changed.len(),
            human_bytes(dd.new_bytes)
        );
        if args.long {
            for p in &dd.added {
                println!("    + {p}");
            }
            for p in &dd.removed {
                println!("    - {p}");
            }
            for p in &dd.changed {
                println!("    ~ {p}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `iosnap forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub lib: LibraryArgs,
    /// The device (UDID).
    pub device: String,
    /// Also delete its snapshots and archives without asking.
    #[arg(long)]
    pub yes: bool,
}

/// Runs `iosnap forget`: removes the device's settings, this computer's pairing record
/// (through usbmuxd, so the next connection has to pair and the user to tap Trust again) and,
/// once confirmed, its backups in the library.
pub fn run_forget(args: &ForgetArgs) -> Result<ExitCode> {
    let lib = args.lib.open_for(Some(&args.device))?;
    let udid = &args.device;
    let n = lib.snapshots(udid)?.len();
    let archives = lib.archives(udid)?.len();
    let has_backups = lib.devices()?.iter().any(|d| d == udid);
    if has_backups {
        let ok = args.yes
            || confirm(&format!(
                "Delete all backups of {udid} in {} ({n} snapshot(s), {archives} archive(s), locked \
                 ones included)?",
                lib.root().display()
            ));
        if !ok {
            bail!(
                "not forgetting {udid}: its backups need confirmation (pass --yes); nothing changed"
            );
        }
        lib.forget_device(udid)?;
        println!("Deleted {n} snapshot(s) and {archives} archive(s) of {udid}");
    }
    lib.config().forget_device(udid)?;
    println!("Forgot the settings of {udid}");
    // A remembered backup password (OS keyring or opted-in file) is part of what we keep about
    // the device: forgetting the device forgets it too. An unreachable keyring is said, not fatal.
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let passwords =
        iosnap_daemon::secrets::PasswordStore::new(lib.config()).unlock_prompt(interactive);
    match passwords.forget(udid) {
        Ok(removed) => {
            for b in removed {
                println!("Removed the backup password of {udid} from {b}");
            }
        }
        Err(e) => {
            eprintln!("iosnap: warning: could not remove a remembered password of {udid}: {e}")
        }
    }
    let mux = iosnap_device::MuxAddr::from_env()?;
    let opts = iosnap_device::SessionOptions::default();
    let gone =
        super::block_on(async { Ok(iosnap_device::forget_pairing(&mux, udid, &opts).await?) })?;
    if gone.usbmuxd_record {
        println!("Deleted the pairing record of {udid} (usbmuxd)");
    }
    if let Some(p) = &gone.file_removed {
        println!("Deleted the pairing record {}", p.display());
    }
    if !gone.usbmuxd_record && gone.file_removed.is_none() {
        println!("No pairing record of {udid} on this computer");
    }
    if gone.phone_unpaired {
        println!("The phone forgot this computer too: it will ask \"Trust This Computer?\" again");
    }
    Ok(ExitCode::SUCCESS)
}
