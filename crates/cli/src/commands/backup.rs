//! `iosnap backup --device UDID --to DIR [--full]`: a standard backup folder `DIR/<UDID>/`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use iosnap_device::{BackupOptions, DeviceSession, MuxAddr, backup, list_devices};

use crate::progress::{PercentProgress, human_bytes};

/// `iosnap backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The device (UDID). May be left out when exactly one device is connected.
    #[arg(long, short = 'u', value_name = "UDID")]
    pub device: Option<String>,
    /// Write the standard backup folder DIR/<UDID>/ (an earlier backup there is updated
    /// incrementally, and left untouched if this one fails). Without it, the backup becomes a
    /// new snapshot in the library (sharing unchanged files with the previous one).
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    #[command(flatten)]
    pub lib: super::snapshots::LibraryArgs,
    /// Snapshots: delete the snapshots retention selects without asking.
    #[arg(long)]
    pub yes: bool,
    /// Ask the device for a full backup even if an earlier one exists.
    #[arg(long)]
    pub full: bool,
    /// Print the summary as JSON (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// Tells the user, once per change, that the phone is waiting for its passcode (iOS ≥ 16.1
/// asks before a backup) or that it no longer is. Returns a progress filter that remembers
/// the last state.
pub fn passcode_notice() -> impl FnMut(bool) {
    let mut shown = false;
    move |up| {
        if up != shown {
            shown = up;
            if up {
                eprintln!("Unlock your iPhone and enter its passcode to allow the backup…");
            } else {
                eprintln!("Passcode prompt closed on the iPhone; the backup goes on.");
            }
        }
    }
}

/// Picks the device: the one named, or the only one connected.
pub async fn pick_device(mux: &MuxAddr, wanted: Option<&str>) -> Result<String> {
    let devices = list_devices(mux).await?;
    if let Some(w) = wanted {
        if devices.iter().any(|d| d.udid.eq_ignore_ascii_case(w)) {
            return Ok(w.to_owned());
        }
        bail!("device {w} is not connected (see `iosnap devices`)");
    }
    match devices.as_slice() {
        [] => bail!("no device connected (see `iosnap devices`)"),
        [one] => Ok(one.udid.clone()),
        _ => bail!(
            "{} devices are connected: choose one with --device UDID",
            devices.len()
        ),
    }
}

pub fn run(args: &BackupArgs, quiet: bool) -> Result<ExitCode> {
    let Some(to) = &args.to else {
        let snap = super::snapshot_backup::SnapshotBackupArgs {
            lib: &args.lib,
            device: args.device.clone(),
            full: args.full,
            yes: args.yes,
            json: args.json,
        };
        return super::snapshot_backup::run(&snap, quiet);
    };
    if args.lib.library.is_some() {
        bail!("--library is for snapshots; with --to the backup goes to that folder");
    }
    super::block_on_here(async {
        let mux = MuxAddr::from_env()?;
        let udid = pick_device(&mux, args.device.as_deref()).await?;
        let session = DeviceSession::connect(&mux, &udid).await?;
        // One backup per device at a time, shared with `iosnap daemon` and snapshot backups:
        // the lock lives in the device's folder of the library.
        let lib = args.lib.open_for(Some(&udid))?;
        let _backup_lock = iosnap_daemon::BackupLock::acquire(&lib.device_dir(&udid)?, &udid)?;
        std::fs::create_dir_all(to)?;
        let bar = PercentProgress::new(&format!("backing up {udid}"), quiet || args.json);
        let opts = BackupOptions {
            full: args.full,
            ..BackupOptions::default()
        };
        let mut notice = passcode_notice();
        let summary = backup(&session, to, &opts, |p| {
            notice(p.passcode_prompt);
            bar.set(p.percent, p.bytes, p.files)
        })
        .await;
        bar.finish();
        let summary = summary?;
        if args.json {
            super::print_json(&serde_json::json!({
                "udid": summary.udid,
                "folder": summary.folder,
                "files_received": summary.files_received,
                "bytes_received": summary.bytes_received,
                "full": summary.full,
                "encrypted": summary.encrypted,
                "seconds": summary.duration.as_secs_f64(),
            }))?;
        } else {
            println!(
                "{} backup of {} into {}: {} files ({}) received in {:.1} s{}",
                if summary.full { "full" } else { "incremental" },
                summary.udid,
                summary.folder.display(),
                summary.files_received,
                human_bytes(summary.bytes_received),
                summary.duration.as_secs_f64(),
                if summary.encrypted { ", encrypted" } else { "" }
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}
