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
    let filter = tracing_subscriber::EnvFilter::try_from_env("IOSNAP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
