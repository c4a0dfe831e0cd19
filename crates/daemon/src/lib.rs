//! # iosnap-daemon — automatic backups in the background
//!
//! Set once and forget: the daemon backs every device with automatic backups on up when it is
//! due (daily by default, inside its time window, above its battery threshold), over USB or
//! Wi-Fi, never two backups of one device at once, and stops cleanly on SIGTERM.
//!
//! - [`schedule`]: the decision as a pure function ([`schedule::decide`]), fully tested.
//! - [`lock`]: the per-device backup lock `iosnap backup` honours too.
//! - [`backup`]: "back one device up into a snapshot", the path both front ends use.
//! - [`daemon`]: the loop (usbmuxd events + periodic re-check, cancellation, backoff).
//! - [`install`]: the systemd user unit and the launchd plist.
//! - [`secrets`]: remembered backup passwords (OS keyring; an owner-only file on request).
//! - [`state`]: what the daemon remembers across restarts (failures in a row, for backoff).

pub mod backup;
pub mod daemon;
pub mod install;
pub mod lock;
pub mod schedule;
pub mod secrets;
pub mod state;

pub use backup::{
    BackupError, PasswordCheck, SnapshotBackup, backup_to_snapshot, check_remembered_password,
    last_success,
};
pub use daemon::{
    Daemon, DaemonConfig, DeviceStatus, LocalZone, Outcome, run_until_signal, status,
};
pub use lock::{BackupLock, LockError};
pub use schedule::{Decision, Inputs, Waiting, backoff_delay, decide, next_due};

/// Sets up `tracing` output on stderr (the journal captures it under systemd), filtered by
/// `IOSNAP_LOG` (e.g. `debug`, default `info`). Safe to call more than once.
pub fn init_logging() {
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Like [`init_logging`], but appends to `path` (created 0600) instead of stderr: for a daemon
/// run outside systemd, where nothing collects stderr.
pub fn init_logging_to_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::sync::Mutex::new(file))
        .with_target(false)
        .with_ansi(false)
        .try_init();
    Ok(())
}

/// `IOSNAP_LOG`, else `info` — with the `idevice` crate held to errors, whose warnings (e.g.
/// "browse didn't contain current list" on every backup) say nothing a user can act on.
fn log_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_env("IOSNAP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,idevice=error"))
}
