//! `iosnap restore DIR --device UDID [options]`: put a backup back onto a device.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use iosnap_device::{DeviceSession, MuxAddr, RestoreOptions, restore};
use iosnap_format::backup::Backup;

use crate::password;
use crate::progress::PercentProgress;

/// `iosnap restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup folder (DIR/<UDID>/ or DIR holding it).
    pub dir: PathBuf,
    /// The device to restore to (UDID); may be left out when exactly one is connected.
    #[arg(long, short = 'u', value_name = "UDID")]
    pub device: Option<String>,
    /// Restore the backup of this UDID when DIR holds several (default: the device's own).
    #[arg(long, value_name = "UDID")]
    pub source: Option<String>,
    /// Also restore system files.
    #[arg(long)]
    pub system: bool,
    /// Do not reboot the device afterwards.
    #[arg(long)]
    pub no_reboot: bool,
    /// Let the device keep a copy of the backup before restoring.
    #[arg(long)]
    pub copy: bool,
    /// Restore the device's settings too (by default they are kept as they are).
    #[arg(long)]
    pub settings: bool,
    /// Remove items on the device that are not in the backup.
    #[arg(long)]
    pub remove: bool,
    /// Do not reinstall apps.
    #[arg(long)]
    pub skip_apps: bool,
    /// Password of an encrypted backup, from this file (else IOSNAP_PASSWORD, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

pub fn run(args: &RestoreArgs, quiet: bool) -> Result<ExitCode> {
    super::block_on(async {
        let mux = MuxAddr::from_env()?;
        let udid = super::backup::pick_device(&mux, args.device.as_deref()).await?;
        let source = args.source.clone().unwrap_or_else(|| udid.clone());
        let folder = if args.dir.join(&source).join("Manifest.plist").exists() {
            args.dir.join(&source)
        } else {
            super::resolve_backup_dir(&args.dir)?
        };
        let encrypted = Backup::open(&folder)?.is_encrypted();
        let pw = if encrypted {
            Some(password::require_for(
                args.password_file.as_deref(),
                Some(&source),
                &format!("the backup in {}", folder.display()),
            )?)
        } else {
            None
        };
        let opts = RestoreOptions {
            system: args.system,
            reboot: !args.no_reboot,
            copy: args.copy,
            preserve_settings: !args.settings,
            remove_not_restored: args.remove,
            skip_apps: args.skip_apps,
            password: pw.as_ref().map(|p| p.to_string()),
            source: args.source.clone(),
        };
        let session = DeviceSession::connect(&mux, &udid).await?;
        let bar = PercentProgress::new(&format!("restoring to {udid}"), quiet);
        let r = restore(&session, &args.dir, &opts, |p| {
            bar.set(p.percent, p.bytes, p.files)
        })
        .await;
        bar.finish();
        r?;
        println!("restored {} onto {udid}", folder.display());
        Ok(ExitCode::SUCCESS)
    })
}
