//! `iosnap snapshots`: the snapshots of the library (one location), and the helpers the other
//! snapshot verbs share (opening the library, resolving a snapshot reference).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use iosnap_format::backup::Backup;
use iosnap_store::{ConfigDir, Library, SnapshotInfo, SystemClock};
use serde::Serialize;

use crate::progress::human_bytes;

/// Where the library is: `--library DIR`, else `IOSNAP_LIBRARY`, else `$XDG_DATA_HOME/iosnap`.
#[derive(Debug, Args)]
pub struct LibraryArgs {
    /// The library location (default: $IOSNAP_LIBRARY, else $XDG_DATA_HOME/iosnap).
    #[arg(long, value_name = "DIR")]
    pub library: Option<PathBuf>,
}

impl LibraryArgs {
    /// Opens the library of `udid`: `--library`, else `IOSNAP_LIBRARY`, else the device's
    /// `location` setting, else the default location.
    pub fn open_for(&self, udid: Option<&str>) -> Result<Library> {
        let config = ConfigDir::from_env()?;
        let env = std::env::var_os("IOSNAP_LIBRARY").filter(|e| !e.is_empty());
        let root = match (&self.library, env) {
            (Some(d), _) => d.clone(),
            (None, Some(e)) => PathBuf::from(e),
            (None, None) => {
                let per_device = match udid {
                    Some(u) => config.device(u)?.location,
                    None => None,
                };
                match per_device {
                    Some(l) => l,
                    None => iosnap_store::default_location()?,
                }
            }
        };
        Library::open(&root, config, Arc::new(SystemClock))
            .with_context(|| format!("opening the library in {}", root.display()))
    }
}

/// The device part of a snapshot reference (`UDID@…`), if it has one.
pub fn udid_of(reference: &str) -> Option<&str> {
    reference.split_once('@').map(|(u, _)| u)
}

/// `iosnap snapshots`.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub lib: LibraryArgs,
    /// Only this device (UDID).
    #[arg(long, short = 'u', value_name = "UDID")]
    pub device: Option<String>,
    /// Print JSON (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// One row of `snapshots --json`.
#[derive(Debug, Serialize)]
pub struct SnapshotJson {
    /// `UDID@name`.
    pub reference: String,
    /// Device.
    pub udid: String,
    /// Folder name.
    pub name: String,
    /// Commit time, RFC 3339.
    pub date: Option<String>,
    /// Folder.
    pub path: PathBuf,
    /// Device name.
    pub device_name: Option<String>,
    /// iOS version.
    pub ios_version: Option<String>,
    /// Encrypted backup.
    pub encrypted: bool,
    /// Regular files in the folder.
    pub files: u64,
    /// Apparent size.
    pub size: u64,
    /// Bytes only this snapshot holds.
    pub unique: u64,
    /// Locked against deletion.
    pub locked: bool,
    /// Label.
    pub label: Option<String>,
}

impl From<&SnapshotInfo> for SnapshotJson {
    fn from(s: &SnapshotInfo) -> Self {
        SnapshotJson {
            reference: s.reference(),
            udid: s.udid.clone(),
            name: s.name.clone(),
            date: super::rfc3339(s.time),
            path: s.path.clone(),
            device_name: s.device_name.clone(),
            ios_version: s.ios_version.clone(),
            encrypted: s.encrypted,
            files: s.usage.files,
            size: s.usage.size,
            unique: s.usage.unique,
            locked: s.locked,
            label: s.label.clone(),
        }
    }
}

/// Runs `iosnap snapshots`.
pub fn run(args: &SnapshotsArgs) -> Result<ExitCode> {
    let lib = args.lib.open_for(args.device.as_deref())?;
    let snaps = match &args.device {
        Some(d) => lib.snapshots(d)?,
        None => lib.all_snapshots()?,
    };
    if args.json {
        let rows: Vec<SnapshotJson> = snaps.iter().map(SnapshotJson::from).collect();
        super::print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if snaps.is_empty() {
        println!("No snapshots in {}", lib.root().display());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<46} {:<8} {:>7} {:>10} {:>10}  {:<5} {:<6} LABEL",
        "SNAPSHOT", "IOS", "FILES", "SIZE", "UNIQUE", "ENC", "LOCKED"
    );
    for s in &snaps {
        println!(
            "{:<46} {:<8} {:>7} {:>10} {:>10}  {:<5} {:<6} {}",
            s.reference(),
            s.ios_version.as_deref().unwrap_or("?"),
            s.usage.files,
            human_bytes(s.usage.size),
            human_bytes(s.usage.unique),
            if s.encrypted { "yes" } else { "no" },
            if s.locked { "yes" } else { "" },
            s.label.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens a snapshot as a backup, unlocking an encrypted one with the usual password sources.
pub fn open_snapshot(s: &SnapshotInfo, password_file: Option<&std::path::Path>) -> Result<Backup> {
    let mut b = Backup::open(&s.path)?;
    if b.is_encrypted() && !b.is_unlocked() {
        let what = format!("snapshot {}", s.reference());
        let pw = crate::password::require_for(password_file, Some(&s.udid), &what)?;
        b.unlock(pw.as_bytes())?;
    }
    Ok(b)
}
