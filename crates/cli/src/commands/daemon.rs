//! `iosnap daemon [run|status|install]`: automatic backups in the background (the work is in
//! the iosnap-daemon crate; this module parses, wires the environment in, and renders).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use iosnap_daemon::secrets::PasswordStore;
use iosnap_daemon::{Daemon, DaemonConfig, LocalZone};
use iosnap_device::{MuxAddr, SessionOptions};
use iosnap_store::{ConfigDir, SystemClock};

/// `iosnap daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<DaemonCommand>,
}

/// The daemon's verbs.
#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Run in the foreground: back up every device with `automatic` on when it is due
    /// (SIGTERM/SIGINT stop it cleanly, rolling back a running backup).
    Run(RunArgs),
    /// Per device: last backup, next due, why it is waiting.
    Status(StatusArgs),
    /// Write (and enable) the systemd user unit; `--launchd` prints the macOS agent plist.
    Install(InstallArgs),
}

/// `iosnap daemon run`.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub lib: OptLibrary,
    /// Seconds between re-checks of connected devices (besides usbmuxd events).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub recheck: u64,
    /// Seconds a backup waits while the phone shows its passcode prompt (iOS 16.1 and later)
    /// before giving up; it is retried later with backoff.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub passcode_timeout: u64,
    /// Append the log to this file (created 0600) instead of stderr, which systemd's journal
    /// collects; `IOSNAP_LOG` sets the level (e.g. `debug`).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
}

/// The library override shared by `run` and `status`.
#[derive(Debug, Args, Default)]
pub struct OptLibrary {
    /// The library location for every device (default: $IOSNAP_LIBRARY, else each device's
    /// `location` setting, else $XDG_DATA_HOME/iosnap).
    #[arg(long, value_name = "DIR")]
    pub library: Option<PathBuf>,
}

/// `iosnap daemon status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub lib: OptLibrary,
    /// Print JSON (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// `iosnap daemon install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Only write the unit; do not run `systemctl --user enable --now`.
    #[arg(long)]
    pub no_enable: bool,
    /// Print the launchd agent plist (macOS) instead of writing a systemd unit.
    #[arg(long)]
    pub launchd: bool,
}

fn daemon_config(lib: &OptLibrary, recheck: u64, passcode_timeout: u64) -> Result<DaemonConfig> {
    let library = lib.library.clone().or_else(|| {
        std::env::var_os("IOSNAP_LIBRARY")
            .filter(|e| !e.is_empty())
            .map(PathBuf::from)
    });
    Ok(DaemonConfig {
        mux: MuxAddr::from_env()?,
        config: ConfigDir::from_env()?,
        library,
        clock: Arc::new(SystemClock),
        zone: LocalZone::System,
        session: SessionOptions {
            // Nobody is there to tap Trust: only already-paired devices are backed up.
            allow_pairing: false,
            ..SessionOptions::default()
        },
        recheck: Duration::from_secs(recheck.max(1)),
        // Never an unlock prompt from a background service.
        passwords: Some(PasswordStore::new(&ConfigDir::from_env()?).unlock_prompt(false)),
        passcode_timeout: Duration::from_secs(passcode_timeout.max(1)),
    })
}

/// Runs `iosnap daemon …`.
pub fn run(args: &DaemonArgs) -> Result<ExitCode> {
    match &args.command {
        None => run_daemon(&RunArgs {
            lib: OptLibrary::default(),
            recheck: 60,
            passcode_timeout: 300,
            log_file: None,
        }),
        Some(DaemonCommand::Run(a)) => run_daemon(a),
        Some(DaemonCommand::Status(a)) => run_status(a),
        Some(DaemonCommand::Install(a)) => run_install(a),
    }
}

fn run_daemon(a: &RunArgs) -> Result<ExitCode> {
    match &a.log_file {
        Some(path) => iosnap_daemon::init_logging_to_file(path)
            .with_context(|| format!("opening the log file {}", path.display()))?,
        None => iosnap_daemon::init_logging(),
    }
    let cfg = daemon_config(&a.lib, a.recheck, a.passcode_timeout)?;
    super::block_on(async move {
        iosnap_daemon::run_until_signal(Daemon::new(cfg))
            .await
            .context("installing the signal handlers")
    })?;
    Ok(ExitCode::SUCCESS)
}

fn run_status(a: &StatusArgs) -> Result<ExitCode> {
    let cfg = daemon_config(&a.lib, 60, 300)?;
    let d = Daemon::new(cfg);
    // Devices with settings or snapshots in the library the daemon would use.
    let mut known = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d.config().config.path().join("devices")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(u) = name.strip_suffix(".toml") {
                known.push(u.to_string());
            }
        }
    }
    let default_root = match &d.config().library {
        Some(r) => Some(r.clone()),
        None => iosnap_store::default_location().ok(),
    };
    if let Some(root) = default_root.filter(|r| r.exists())
        && let Ok(lib) =
            iosnap_store::Library::open(&root, d.config().config.clone(), Arc::new(SystemClock))
        && let Ok(devs) = lib.devices()
    {
        for u in devs {
            if !known.contains(&u) {
                known.push(u);
            }
        }
    }
    let rows = super::block_on(async { Ok(iosnap_daemon::status(&d, &known).await) })?;
    if a.json {
        super::print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!(
            "no devices known; turn automatic backups on with `iosnap settings set --device UDID automatic on`"
        );
    }
    for r in rows {
        println!(
            "{}  {}  automatic {}  last backup {}  next due {}  — {}",
            r.udid,
            r.connection.as_deref().unwrap_or("not connected"),
            if r.automatic { "on" } else { "off" },
            r.last_backup.as_deref().unwrap_or("never"),
            r.next_due
                .as_deref()
                .unwrap_or(if r.automatic { "now" } else { "-" }),
            r.state
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_install(a: &InstallArgs) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the iosnap binary")?;
    if a.launchd {
        print!("{}", iosnap_daemon::install::launchd_plist(&exe));
        eprintln!(
            "save it as ~/Library/LaunchAgents/org.iosnap.daemon.plist, then run: \
             launchctl load ~/Library/LaunchAgents/org.iosnap.daemon.plist"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let path = iosnap_daemon::install::unit_path()
        .context("neither XDG_CONFIG_HOME nor HOME is set: cannot place the systemd unit")?;
    iosnap_daemon::install::write_unit(&path, &iosnap_daemon::install::systemd_unit(&exe))
        .with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    let enable = "systemctl --user daemon-reload && systemctl --user enable --now iosnap.service";
    if a.no_enable {
        println!("to start it now and at every login, run: {enable}");
        return Ok(ExitCode::SUCCESS);
    }
    if !user_bus_available() {
        println!("no systemd user session here; when there is one, run: {enable}");
        return Ok(ExitCode::SUCCESS);
    }
    for args in [
        &["--user", "daemon-reload"][..],
        &["--user", "enable", "--now", "iosnap.service"][..],
    ] {
        let st = std::process::Command::new("systemctl")
            .args(args)
            .status()
            .context("running systemctl")?;
        if !st.success() {
            anyhow::bail!(
                "systemctl {} failed ({st}); run it yourself: {enable}",
                args.join(" ")
            );
        }
    }
    println!("enabled and started iosnap.service (logs: journalctl --user -u iosnap)");
    Ok(ExitCode::SUCCESS)
}

/// `systemctl` is installed and a user manager's bus is reachable.
fn user_bus_available() -> bool {
    let has_systemctl = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("systemctl").is_file()));
    let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
        || std::env::var_os("XDG_RUNTIME_DIR")
            .is_some_and(|d| PathBuf::from(d).join("bus").exists());
    has_systemctl && bus
}
