//! `iosnap location add|list` and `iosnap settings show|set`: where snapshots live and how each
//! device is treated (snapshots on/off, retention period, budget, asking before deleting).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use iosnap_store::{ConfigDir, Locations, SharingMethod};
use serde::Serialize;

use crate::progress::human_bytes;

/// `iosnap location`.
#[derive(Debug, Args)]
pub struct LocationArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: LocationAction,
}

/// `location` sub-verbs.
#[derive(Debug, Subcommand)]
pub enum LocationAction {
    /// Register a disk or folder: snapshots go to PATH/iosnap.Backups/.
    Add {
        /// The disk's mount point or a folder.
        path: PathBuf,
    },
    /// Move a device's snapshots and archives to another location (PATH/iosnap.Backups/, or
    /// PATH itself if it already is a library), keeping the sharing between them; the
    /// device's `location` setting then points there.
    Move {
        /// The device (UDID).
        #[arg(long, short = 'u', value_name = "UDID")]
        device: String,
        /// The destination disk, folder or library.
        path: PathBuf,
        /// The library the snapshots are in now (default: the device's current location).
        #[arg(long, value_name = "DIR")]
        library: Option<PathBuf>,
    },
    /// List the default and registered locations: free space, filesystem, sharing method.
    List {
        /// Print JSON (see docs/json.md).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Serialize)]
struct LocationJson {
    path: PathBuf,
    default: bool,
    exists: bool,
    free_bytes: Option<u64>,
    filesystem: Option<String>,
    sharing: Option<SharingMethod>,
}

fn describe(path: PathBuf, default: bool) -> LocationJson {
    let exists = path.is_dir();
    LocationJson {
        free_bytes: exists
            .then(|| iosnap_store::free_space(&path).ok())
            .flatten(),
        filesystem: exists
            .then(|| iosnap_store::filesystem_name(&path).ok())
            .flatten(),
        sharing: exists
            .then(|| iosnap_store::share::probe(&path).ok())
            .flatten(),
        path,
        default,
        exists,
    }
}

/// Runs `iosnap location`.
pub fn run(args: &LocationArgs) -> Result<ExitCode> {
    let config = ConfigDir::from_env()?;
    match &args.action {
        LocationAction::Add { path } => {
            let root = path.join("iosnap.Backups");
            iosnap_store::share::create_private_dir(&root)
                .with_context(|| format!("creating {}", root.display()))?;
            let root = root
                .canonicalize()
                .with_context(|| format!("{}", root.display()))?;
            let mut l: Locations = config.locations()?;
            if !l.locations.contains(&root) {
                l.locations.push(root.clone());
                config.save_locations(&l)?;
            }
            let d = describe(root.clone(), false);
            println!(
                "Added {} ({}, {} free, sharing: {})",
                root.display(),
                d.filesystem.as_deref().unwrap_or("?"),
                d.free_bytes.map(human_bytes).unwrap_or_else(|| "?".into()),
                d.sharing.map(SharingMethod::name).unwrap_or("?")
            );
            println!("Use it with --library {}", root.display());
        }
        LocationAction::Move {
            device,
            path,
            library,
        } => {
            let src = super::snapshots::LibraryArgs {
                library: library.clone(),
            }
            .open_for(Some(device))?;
            let is_library = path.file_name().is_some_and(|n| n == "iosnap.Backups")
                || path.join(iosnap_store::library::CATALOG_FILE).is_file();
            let root = if is_library {
                path.clone()
            } else {
                path.join("iosnap.Backups")
            };
            let dest = iosnap_store::Library::open(
                &root,
                config.clone(),
                std::sync::Arc::new(iosnap_store::SystemClock),
            )?;
            let root = root
                .canonicalize()
                .with_context(|| format!("{}", root.display()))?;
            let rep = src.move_device(device, &dest)?;
            let mut s = config.device(device)?;
            s.location = Some(root.clone());
            config.save_device(device, &s)?;
            let mut l: Locations = config.locations()?;
            if !l.locations.contains(&root) {
                l.locations.push(root.clone());
                config.save_locations(&l)?;
            }
            println!(
                "Moved {} snapshot(s) and {} archive(s) of {device} to {} ({} files shared, {} \
                 copied; sharing: {})",
                rep.snapshots,
                rep.archives,
                root.display(),
                rep.shared,
                rep.copied,
                dest.sharing_method(device)?.name()
            );
        }
        LocationAction::List { json } => {
            let mut rows = vec![describe(iosnap_store::default_location()?, true)];
            for p in config.locations()?.locations {
                if p != rows[0].path {
                    rows.push(describe(p, false));
                }
            }
            if *json {
                super::print_json(&rows)?;
            } else {
                for r in rows {
                    println!(
                        "{}{}  {}  free {}  sharing {}",
                        r.path.display(),
                        if r.default { " (default)" } else { "" },
                        r.filesystem.as_deref().unwrap_or("-"),
                        r.free_bytes.map(human_bytes).unwrap_or_else(|| "-".into()),
                        r.sharing.map(SharingMethod::name).unwrap_or("-"),
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `iosnap settings`.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: SettingsAction,
}

/// `settings` sub-verbs.
#[derive(Debug, Subcommand)]
pub enum SettingsAction {
    /// Show a device's settings.
    Show {
        /// The device (UDID).
        #[arg(long, short = 'u', value_name = "UDID")]
        device: String,
        /// Print JSON (see docs/json.md).
        #[arg(long)]
        json: bool,
    },
    /// Change one setting: snapshots (on/off), retention-days (N), budget-bytes (N or none),
    /// ask-before-delete (on/off), location (DIR or none), sharing (reflink/hard-link/copy/none),
    /// automatic (on/off), window (HH:MM-HH:MM or any), min-battery (0-100),
    /// charging-overrides (on/off), wifi (on/off), frequency (daily, weekly, "every N hours").
    Set {
        /// The device (UDID).
        #[arg(long, short = 'u', value_name = "UDID")]
        device: String,
        /// The setting.
        key: String,
        /// Its new value.
        value: String,
    },
}

/// Runs `iosnap settings`.
pub fn run_settings(args: &SettingsArgs) -> Result<ExitCode> {
    let config = ConfigDir::from_env()?;
    match &args.action {
        SettingsAction::Show { device, json } => {
            let s = config.device(device)?;
            if *json {
                super::print_json(&s)?;
            } else {
                print!("{}", toml_text(&s));
            }
        }
        SettingsAction::Set { device, key, value } => {
            let mut s = config.device(device)?;
            s.set(key, value)?;
            config.save_device(device, &s)?;
            print!("{}", toml_text(&s));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn toml_text(s: &iosnap_store::DeviceSettings) -> String {
    let mut out = format!(
        "snapshots = {}\nretention-days = {}\nbudget-bytes = {}\nask-before-delete = {}\n",
        s.snapshots,
        s.retention_days,
        s.budget_bytes
            .map(|b| b.to_string())
            .unwrap_or_else(|| "default (half the first backup)".into()),
        s.ask_before_delete
    );
    out.push_str(&format!(
        "location = {}\nsharing = {}\n",
        s.location
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "default".into()),
        s.sharing.map(SharingMethod::name).unwrap_or("probe")
    ));
    out.push_str(&format!(
        "automatic = {}\nwindow = {}\nmin-battery = {}\ncharging-overrides = {}\nwifi = {}\n\
         frequency = {}\n",
        s.automatic,
        s.window.as_deref().unwrap_or("any"),
        s.min_battery,
        s.charging_overrides,
        s.wifi,
        s.frequency
    ));
    out
}
