//! `iosnap backup` (without `--to`): back a connected device up into a new snapshot of the
//! library.
//!
//! The staging folder starts as a clone of the device's latest snapshot (reflink, hard link or
//! copy, per location), the device layer writes into it (every file through temp + rename, so
//! shared files are never modified in place), then the store commits it atomically and runs
//! retention. A failed or killed backup leaves the earlier snapshots untouched; its staging
//! folder is removed by the next run.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use iosnap_device::{BackupOptions, DeviceSession, MuxAddr, backup};
use iosnap_store::{PruneMode, PruneOutcome};

use super::snapshots::{LibraryArgs, SnapshotJson};
use crate::progress::{PercentProgress, human_bytes};

/// What `iosnap backup` into the library needs (filled from `BackupArgs`).
#[derive(Debug)]
pub struct SnapshotBackupArgs<'a> {
    /// Where the library is.
    pub lib: &'a LibraryArgs,
    /// The device (UDID). May be left out when exactly one device is connected.
    pub device: Option<String>,
    /// Ask the device for a full backup.
    pub full: bool,
    /// Delete snapshots retention selects without asking.
    pub yes: bool,
    /// Print the new snapshot as JSON (see docs/json.md).
    pub json: bool,
}

/// Runs `iosnap backup` into a new snapshot.
pub fn run(args: &SnapshotBackupArgs<'_>, quiet: bool) -> Result<ExitCode> {
    // One runtime for the whole session (its sockets belong to it); the store's work is
    // synchronous and runs in between, on this thread.
    super::block_on_here(async {
        let mux = MuxAddr::from_env()?;
        let wanted = super::backup::pick_device(&mux, args.device.as_deref()).await?;
        let session = DeviceSession::connect(&mux, &wanted).await?;
        let udid = session.udid().to_string();
        let lib = args.lib.open_for(Some(&udid))?;
        // One backup per device at a time, shared with `iosnap daemon` (held until the end).
        let _backup_lock = iosnap_daemon::BackupLock::acquire(&lib.device_dir(&udid)?, &udid)?;
        let used = session.values().await.ok().and_then(|v| v.used_capacity);
        preflight(&lib, &udid, used, quiet)?;
        let staging = lib.begin(&udid)?;
        if !quiet {
            let c = staging.clone_report();
            eprintln!(
                "Snapshot of {udid} in {} (sharing: {}; {} files cloned from {})",
                lib.root().display(),
                staging.method().name(),
                c.shared + c.copied,
                staging.base().unwrap_or("nothing")
            );
        }
        let target = staging.device_target().to_path_buf();
        let bar = PercentProgress::new(&format!("backing up {udid}"), quiet || args.json);
        let opts = BackupOptions {
            full: args.full,
            ..BackupOptions::default()
        };
        let mut notice = super::backup::passcode_notice();
        let summary = backup(&session, &target, &opts, |p| {
            notice(p.passcode_prompt);
            bar.set(p.percent, p.bytes, p.files)
        })
        .await;
        bar.finish();
        let summary = summary
            .with_context(|| format!("backing up {udid}; earlier snapshots are untouched"))?;
        finish(&lib, args, staging, &summary)
    })
}

/// Compares the space the backup is likely to need with the free space
/// ([`iosnap_store::Library::check_space`]): stops before anything is written when it cannot
/// fit, warns when it is tight. A first backup needs about the phone's used capacity; a later
/// one about what the last snapshot added (at least 5 % of its size).
fn preflight(
    lib: &iosnap_store::Library,
    udid: &str,
    used_capacity: Option<u64>,
    quiet: bool,
) -> Result<()> {
    use iosnap_store::SpaceVerdict;
    let c = lib.check_space(udid, used_capacity)?;
    let why = c.basis.describe();
    match c.verdict {
        SpaceVerdict::WontFit => bail!(
            "{}: only {} free, a backup of {udid} is likely to need about {} ({why}); free \
             space or choose another --library",
            lib.root().display(),
            human_bytes(c.free),
            human_bytes(c.need)
        ),
        SpaceVerdict::Tight if !quiet => eprintln!(
            "warning: space is tight in {}: {} free, about {} needed ({why})",
            lib.root().display(),
            human_bytes(c.free),
            human_bytes(c.need)
        ),
        _ => {}
    }
    Ok(())
}

/// Commits the staging folder, runs retention, prints the result.
fn finish(
    lib: &iosnap_store::Library,
    args: &SnapshotBackupArgs<'_>,
    staging: iosnap_store::Staging<'_>,
    summary: &iosnap_device::BackupSummary,
) -> Result<ExitCode> {
    let udid = staging.udid().to_string();
    let snap = staging.commit()?;
    let info = snap.info()?;

    let mode = if args.yes {
        PruneMode::Yes
    } else if std::io::stdin().is_terminal() && !args.json {
        PruneMode::Interactive
    } else {
        PruneMode::NonInteractive
    };
    let (plan, outcome) = iosnap_store::prune(lib, &udid, mode, &mut |p| {
        eprint!(
            "Retention: delete {} old snapshot(s) of {udid} (extra space {} over budget {})? [y/N] ",
            p.delete.len(),
            human_bytes(p.extra_bytes),
            human_bytes(p.budget_bytes)
        );
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).is_ok() && matches!(line.trim(), "y" | "Y" | "yes")
    })?;
    if args.json {
        super::print_json(&serde_json::json!({
            "snapshot": SnapshotJson::from(&info),
            "files_received": summary.files_received,
            "bytes_received": summary.bytes_received,
            "full": summary.full,
            "retention": outcome,
            "retention_delete": plan.delete.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        }))?;
    } else {
        println!(
            "{} ({} backup): {} files received ({}); {} in the snapshot, {} only in it",
            info.reference(),
            if summary.full { "full" } else { "incremental" },
            summary.files_received,
            human_bytes(summary.bytes_received),
            human_bytes(info.usage.size),
            human_bytes(info.usage.unique)
        );
        match outcome {
            PruneOutcome::Deleted => {
                println!("retention deleted {} old snapshot(s)", plan.delete.len())
            }
            PruneOutcome::NeedsConfirmation => println!(
                "retention would delete {} old snapshot(s); run `iosnap prune --yes` to do it",
                plan.delete.len()
            ),
            _ => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}
