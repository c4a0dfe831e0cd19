//! `iosnap demo`: the README's "run it" command. It starts a simulated iPhone in this process
//! (a real usbmuxd/lockdownd/mobilebackup2 server on loopback, with an encrypted-backup
//! password set), backs it up over those protocols with a progress bar, then browses what it
//! got as a user would: unlock (10,000,000 PBKDF2 rounds, like a real phone's keybag), look at a
//! directory, read a database, verify every file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use iosnap_device::{BackupOptions, DeviceSession, MuxAddr, backup};
use iosnap_format::backup::Backup;
use iosnap_format::tree::Tree;
use iosnap_format::verify::verify;
use iosnap_simulator::{DeviceConfig, IdentityOverrides, PhoneSpec, Simulator, SimulatorConfig};

use crate::cli::DemoArgs;
use crate::progress::{PercentProgress, human_bytes};

/// The demo phone's backup password (printed; it protects nothing real).
const DEMO_PASSWORD: &str = "iosnap-demo";

pub fn run(args: &DemoArgs, quiet: bool) -> Result<ExitCode> {
    let base = match &args.dir {
        Some(d) => d.clone(),
        None => tempfile::Builder::new()
            .prefix("iosnap-demo-")
            .tempdir()
            .context("creating a temporary folder")?
            .keep(),
    };
    let backups: PathBuf = base.join("backups");
    std::fs::create_dir_all(&backups).with_context(|| format!("creating {}", backups.display()))?;

    let folder = super::block_on(async {
        let mut device = DeviceConfig::new(base.join("simulated-phone"), PhoneSpec::default());
        device.backup_password = Some(DEMO_PASSWORD.into());
        device.identity = IdentityOverrides {
            device_name: Some("Demo iPhone".into()),
            ..IdentityOverrides::default()
        };
        let cfg = SimulatorConfig {
            listen: Some("127.0.0.1:0".parse().context("loopback address")?),
            unix: None,
            devices: vec![device],
        };
        eprintln!("Starting a simulated iPhone on loopback (first start generates its content) …");
        let sim = Simulator::start(cfg)
            .await
            .context("starting the simulator")?;
        let mux = MuxAddr::parse(&sim.addr().to_string())?;
        let udid = sim
            .udids()
            .into_iter()
            .next()
            .context("the simulator has no device")?;
        eprintln!("usbmuxd (simulated) at {}, device {udid}", sim.addr());

        let session = DeviceSession::connect(&mux, &udid).await?;
        let values = session.values().await?;
        eprintln!(
            "{} ({}, iOS {}), battery {}%, backup encryption {}",
            values.device_name,
            values.product_type,
            values.product_version,
            values
                .battery_level
                .map(|b| b.to_string())
                .unwrap_or("?".into()),
            if values.will_encrypt { "on" } else { "off" }
        );
        let bar = PercentProgress::new("backing up", quiet);
        let summary = backup(&session, &backups, &BackupOptions::default(), |p| {
            bar.set(p.percent, p.bytes, p.files)
        })
        .await;
        bar.finish();
        let summary = summary?;
        println!(
            "Backed up {} files ({}) from \"{}\" in {:.1} s over usbmuxd → lockdownd (TLS) → mobilebackup2",
            summary.files_received,
            human_bytes(summary.bytes_received),
            values.device_name,
            summary.duration.as_secs_f64()
        );
        sim.shutdown().await;
        Ok(summary.folder)
    })?;

    // Browse it back as a user would: unlock with the password, look around, verify.
    let mut backup = Backup::open(&folder)?;
    eprintln!("Unlocking the encrypted backup (10,000,000 PBKDF2-SHA256 rounds) …");
    backup.unlock(DEMO_PASSWORD.as_bytes())?;
    let rows = backup.entries()?;
    let tree = Tree::build(&rows.entries);
    let (mut files, mut bytes) = (0u64, 0u64);
    for s in tree.stats().values() {
        files += s.files;
        bytes += s.bytes;
    }
    let apps = tree
        .domains()
        .filter(|d| d.starts_with("AppDomain-"))
        .count();
    println!();
    println!("Backup folder: {}", folder.display());
    println!(
        "  {files} files ({}) in {} domains ({apps} apps); encrypted: {}",
        human_bytes(bytes),
        tree.domains().count(),
        if backup.is_encrypted() { "yes" } else { "no" }
    );
    println!();
    println!("HomeDomain/Library/SMS:");
    for c in tree.list("HomeDomain", "Library/SMS").unwrap_or_default() {
        println!(
            "  {:<8} {:>10}  {}",
            c.kind.name(),
            human_bytes(c.size),
            c.name
        );
    }
    let sms = backup.find("HomeDomain", "Library/SMS/sms.db")?;
    let mut head = [0u8; 16];
    std::io::Read::read_exact(&mut backup.open_file(&sms)?, &mut head)
        .context("reading sms.db from the backup")?;
    println!();
    println!(
        "sms.db decrypts to a SQLite database: {}",
        if &head == b"SQLite format 3\0" {
            "yes"
        } else {
            "NO"
        }
    );
    let report = verify(&backup, false)?;
    println!(
        "verify: {} files checked, {}",
        report.files_checked,
        if report.is_clean() {
            "no problems"
        } else {
            "PROBLEMS FOUND"
        }
    );
    println!();
    println!("Try it yourself (the demo password is {DEMO_PASSWORD:?}):");
    println!("  export IOSNAP_PASSWORD={DEMO_PASSWORD}");
    println!("  iosnap info {}", folder.display());
    println!("  iosnap ls {} HomeDomain/Library -l", folder.display());
    println!(
        "  iosnap extract {} out --domain HomeDomain",
        folder.display()
    );
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::PROBLEMS)
    })
}
