//! Command-line definitions (clap). Only parsing lives here; `commands/` does the work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Time-Machine-style backups of iPhones and iPads on Linux.
#[derive(Debug, Parser)]
#[command(name = "iosnap", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// No progress bars or informational messages on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what a backup folder holds: device, iOS version, date, encryption, counts.
    Info(InfoArgs),
    /// List the files of a backup as the phone's tree (domains, then paths).
    Ls(LsArgs),
    /// Write one file of a backup to standard output (decrypted).
    Cat(CatArgs),
    /// Extract files to OUT/<domain>/<relativePath>, decrypted, with dates and permissions.
    Extract(ExtractArgs),
    /// Check that every file in the manifest has its data file with the right size.
    Verify(VerifyArgs),
    /// Start a simulated iPhone, back it up with a progress bar, and show what it got.
    Demo(DemoArgs),
    /// Which people's datasets (messages, contacts, calls …) a backup holds, with counts.
    Datasets(crate::commands::datasets::DatasetsArgs),
    /// List connected devices (USB and Wi-Fi) with name, model, iOS, battery, encryption.
    Devices(crate::commands::devices::DevicesArgs),
    /// Back up a device into a standard backup folder DIR/<UDID>/.
    Backup(crate::commands::backup::BackupArgs),
    /// Restore a backup onto a device.
    Restore(crate::commands::restore::RestoreArgs),
    /// Turn backup encryption on or off, or change the backup password, on a device.
    Encryption(crate::commands::encryption::EncryptionArgs),
    /// Run simulated iPhones behind a usbmuxd-compatible socket on loopback.
    Simulate(crate::commands::simulate::SimulateArgs),
    /// List the snapshots in the library: date, iOS version, files, size, unique bytes.
    Snapshots(crate::commands::snapshots::SnapshotsArgs),
    /// Apply retention: delete old snapshots over the space budget (asks first by default).
    Prune(crate::commands::prune::PruneArgs),
    /// Protect a snapshot from retention and from `delete`.
    Lock(crate::commands::snapshot_ops::LockArgs),
    /// Remove a snapshot's protection.
    Unlock(crate::commands::snapshot_ops::LockArgs),
    /// Give a snapshot a label.
    Label(crate::commands::snapshot_ops::LabelArgs),
    /// Delete a snapshot, or every unlocked snapshot of a device with --all.
    Delete(crate::commands::snapshot_ops::DeleteArgs),
    /// Keep a copy of a snapshot that retention never deletes.
    Archive(crate::commands::snapshot_ops::ArchiveArgs),
    /// Export a dataset (messages, contacts, calls, calendar, notes, photos, Safari, WhatsApp …)
    /// from a backup, or a snapshot as a standalone standard backup folder.
    Export(crate::commands::export::ExportArgs),
    /// Turn any standard backup folder into a snapshot, sharing unchanged files.
    Import(crate::commands::snapshot_ops::ImportArgs),
    /// Files added, removed and changed between two snapshots, by domain and app.
    Diff(crate::commands::snapshot_ops::DiffArgs),
    /// Forget a device: its settings and, after confirmation, its backups in the library.
    Forget(crate::commands::snapshot_ops::ForgetArgs),
    /// Backup locations: add a disk, list free space, filesystem and sharing method.
    Location(crate::commands::location::LocationArgs),
    /// Per-device settings: snapshots on/off, retention period, budget, asking before deleting.
    Settings(crate::commands::location::SettingsArgs),
    /// Automatic backups in the background: run the daemon, show its status, install it.
    Daemon(crate::commands::daemon::DaemonArgs),
    /// Remember or forget a device's backup password (OS keyring; a private file on request).
    Password(crate::commands::password_cmd::PasswordArgs),
}

/// Options shared by every verb that opens a backup folder.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The backup: a folder (the one holding Manifest.db / Manifest.plist, or its parent if it
    /// holds exactly one backup), or a snapshot of the library: `UDID@latest`,
    /// `UDID@2026-11-24T213000Z`, `UDID` (its latest) or `latest`.
    pub dir: PathBuf,

    /// The library that snapshot references are looked up in (default: $IOSNAP_LIBRARY, else
    /// $XDG_DATA_HOME/iosnap).
    #[arg(long, value_name = "DIR")]
    pub library: Option<PathBuf>,

    /// Read the backup password from this file (first line). Otherwise IOSNAP_PASSWORD, or a
    /// prompt on a terminal. There is deliberately no way to pass it as an argument.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

/// `iosnap info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub open: OpenArgs,
    /// Print JSON (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// `iosnap ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub open: OpenArgs,
    /// What to list: `DOMAIN` or `DOMAIN/relative/path` (with --domain: a path inside it).
    /// Without it, the domains are listed.
    pub path: Option<String>,
    /// Domain to list in.
    #[arg(long, short = 'd', value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Long format: kind, size, mode, modification time, file id.
    #[arg(short = 'l', long = "long")]
    pub long: bool,
    /// List subdirectories recursively (with no path: every row of every domain).
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Print JSON (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// `iosnap cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    #[command(flatten)]
    pub open: OpenArgs,
    /// Domain of the file, e.g. HomeDomain.
    pub domain: String,
    /// Path of the file inside the domain, e.g. Library/SMS/sms.db.
    pub path: String,
}

/// `iosnap extract`.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    pub open: OpenArgs,
    /// Output folder (created if missing). Nothing is ever written outside it.
    pub out: PathBuf,
    /// Only these domains (repeatable).
    #[arg(long = "domain", short = 'd', value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// Only paths matching this glob, matched against "DOMAIN/relative/path" (repeatable).
    #[arg(long = "path", short = 'p', value_name = "GLOB")]
    pub paths: Vec<String>,
    /// Print the report as JSON (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// `iosnap verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub open: OpenArgs,
    /// Also decrypt every file of an encrypted backup and check its padding and size.
    #[arg(long)]
    pub deep: bool,
    /// Print the report as JSON (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// `iosnap demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the sample backup (default: a new temporary folder, kept).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
