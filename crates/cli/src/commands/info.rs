//! `iosnap info DIR`: device, iOS version, date, encryption, counts.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::Result;
use iosnap_format::EntryKind;
use iosnap_format::domain::DomainGroup;
use serde::Serialize;

use crate::cli::InfoArgs;
use crate::progress::human_bytes;
use crate::sanitize::for_terminal;

/// `--json` shape of `iosnap info` (docs/json.md).
#[derive(Debug, Serialize)]
struct InfoJson {
    path: String,
    format: &'static str,
    encrypted: bool,
    unlocked: bool,
    device: DeviceJson,
    date: Option<String>,
    last_backup_date: Option<String>,
    passcode_set: Option<bool>,
    snapshot_state: Option<String>,
    full_backup: Option<bool>,
    counts: Option<CountsJson>,
    warnings: Vec<String>,
}

#[derive(Debug, Serialize, Default)]
struct DeviceJson {
    name: Option<String>,
    product_type: Option<String>,
    product_version: Option<String>,
    build_version: Option<String>,
    serial_number: Option<String>,
    udid: Option<String>,
    imei: Option<String>,
    phone_number: Option<String>,
}

#[derive(Debug, Serialize, Default)]
struct CountsJson {
    files: u64,
    directories: u64,
    symlinks: u64,
    other: u64,
    bytes: u64,
    domains: u64,
    apps: u64,
    unreadable_rows: u64,
}

pub fn run(args: &InfoArgs) -> Result<ExitCode> {
    let backup = super::open_maybe_unlocked(&args.open)?;
    let info = backup.info();
    let manifest = backup.manifest();
    let status = backup.status();

    let lockdown = |key: &str| {
        manifest
            .and_then(|m| m.lockdown.get(key))
            .and_then(|v| v.as_string())
            .map(str::to_owned)
    };
    let pick =
        |a: Option<&Option<String>>, key: &str| a.cloned().flatten().or_else(|| lockdown(key));
    let device = DeviceJson {
        name: pick(info.map(|i| &i.device_name), "DeviceName"),
        product_type: pick(info.map(|i| &i.product_type), "ProductType"),
        product_version: pick(info.map(|i| &i.product_version), "ProductVersion"),
        build_version: pick(info.map(|i| &i.build_version), "BuildVersion"),
        serial_number: pick(info.map(|i| &i.serial_number), "SerialNumber"),
        udid: pick(info.map(|i| &i.unique_identifier), "UniqueDeviceID"),
        imei: info.and_then(|i| i.imei.clone()),
        phone_number: info.and_then(|i| i.phone_number.clone()),
    };

    let mut warnings: Vec<String> = backup.warnings().to_vec();
    let counts = if backup.is_encrypted() && !backup.is_unlocked() {
        warnings.push(
            "encrypted and locked: give IOSNAP_PASSWORD or --password-file to count files".into(),
        );
        None
    } else {
        let rows = backup.entries()?;
        let mut c = CountsJson {
            unreadable_rows: rows.skipped.len() as u64,
            ..Default::default()
        };
        let mut domains = BTreeSet::new();
        let mut apps = BTreeSet::new();
        for e in &rows.entries {
            match e.kind {
                EntryKind::File => {
                    c.files += 1;
                    c.bytes += e.meta.size;
                }
                EntryKind::Directory => c.directories += 1,
                EntryKind::Symlink => c.symlinks += 1,
                EntryKind::Other(_) => c.other += 1,
            }
            if domains.insert(e.domain.as_str())
                && let DomainGroup::App { bundle_id } = DomainGroup::classify(&e.domain)
            {
                apps.insert(bundle_id);
            }
        }
        c.domains = domains.len() as u64;
        c.apps = apps.len() as u64;
        Some(c)
    };

    let out = InfoJson {
        path: backup.dir().display().to_string(),
        format: match backup.format() {
            iosnap_format::backup::ManifestFormat::Db => "Manifest.db",
            iosnap_format::backup::ManifestFormat::Mbdb => "Manifest.mbdb",
        },
        encrypted: backup.is_encrypted(),
        unlocked: backup.is_unlocked(),
        device,
        date: manifest
            .and_then(|m| m.date)
            .or_else(|| status.and_then(|s| s.date))
            .map(super::rfc3339_system),
        last_backup_date: info
            .and_then(|i| i.last_backup_date)
            .map(super::rfc3339_system),
        passcode_set: manifest.and_then(|m| m.was_passcode_set),
        snapshot_state: status.and_then(|s| s.snapshot_state.clone()),
        full_backup: status.and_then(|s| s.is_full_backup),
        counts,
        warnings,
    };

    if args.json {
        super::print_json(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let show = |v: &Option<String>| {
        v.as_deref()
            .map(for_terminal)
            .unwrap_or("-".into())
            .into_owned()
    };
    println!("Backup:        {}", for_terminal(&out.path));
    println!(
        "Device:        {} ({})",
        show(&out.device.name),
        show(&out.device.product_type)
    );
    println!(
        "iOS:           {} ({})",
        show(&out.device.product_version),
        show(&out.device.build_version)
    );
    println!("UDID:          {}", show(&out.device.udid));
    println!("Serial:        {}", show(&out.device.serial_number));
    if out.device.imei.is_some() || out.device.phone_number.is_some() {
        println!(
            "IMEI / phone:  {} / {}",
            show(&out.device.imei),
            show(&out.device.phone_number)
        );
    }
    println!("Date:          {}", show(&out.date));
    println!("Index:         {}", out.format);
    println!(
        "Encrypted:     {}",
        match (out.encrypted, out.unlocked) {
            (false, _) => "no",
            (true, true) => "yes (unlocked)",
            (true, false) => "yes (locked)",
        }
    );
    if let Some(state) = &out.snapshot_state {
        println!("State:         {}", for_terminal(state));
    }
    if let Some(c) = &out.counts {
        println!(
            "Contents:      {} files ({}), {} directories, {} symlinks",
            c.files,
            human_bytes(c.bytes),
            c.directories,
            c.symlinks
        );
        println!("Domains:       {} ({} apps)", c.domains, c.apps);
        if c.unreadable_rows > 0 {
            println!(
                "Unreadable:    {} manifest rows could not be decoded",
                c.unreadable_rows
            );
        }
    }
    for w in &out.warnings {
        println!("Warning:       {}", for_terminal(w));
    }
    Ok(ExitCode::SUCCESS)
}
