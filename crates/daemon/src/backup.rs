//! "Back one device up into a new snapshot", shared by the daemon and usable by any front end:
//! take the backup lock, clone the latest snapshot into staging, let the device write into it,
//! commit. Any failure (or the future being dropped, e.g. on SIGTERM) drops the staging folder,
//! so earlier snapshots are untouched and no partial snapshot is ever listed.

use std::time::SystemTime;

use iosnap_device::{BackupOptions, BackupSummary, DeviceSession, Progress, backup};
use iosnap_store::{Library, SnapshotInfo};

use crate::lock::{BackupLock, LockError};

/// Why a snapshot backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Another backup of the device holds the lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The library refused (space, permissions, a broken catalog …).
    #[error(transparent)]
    Store(#[from] iosnap_store::Error),
    /// The device or the connection failed (unplugged, refused, timed out …).
    #[error(transparent)]
    Device(#[from] iosnap_device::Error),
}

/// What a successful snapshot backup produced.
#[derive(Debug, Clone)]
pub struct SnapshotBackup {
    /// The new snapshot.
    pub snapshot: SnapshotInfo,
    /// What the device sent.
    pub summary: BackupSummary,
    /// The snapshot it was cloned from.
    pub base: Option<String>,
    /// For an encrypted backup made by the daemon: whether the device's remembered password
    /// still opens it (`None`: not checked — unencrypted, or not made by the daemon).
    pub password: Option<PasswordCheck>,
}

/// Whether a remembered backup password opens a new encrypted snapshot. The daemon does not
/// need the password to back up (the phone encrypts), but a phone whose backup password was
/// changed without `iosnap password remember` would leave every later `ls`/`extract` failing;
/// checking right after each automatic backup turns that into one clear log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordCheck {
    /// The remembered password unlocks the snapshot.
    Opens,
    /// The remembered password does not unlock it (changed on the phone).
    Wrong,
    /// No password is remembered for the device (or the keyring cannot be reached).
    NotRemembered,
    /// The check itself failed (unreadable keybag, keyring error …).
    Failed(String),
}

/// Checks the password remembered in `store` for `info.udid` against the snapshot `info`.
pub fn check_remembered_password(
    store: &crate::secrets::PasswordStore,
    info: &SnapshotInfo,
) -> PasswordCheck {
    let pw = match store.lookup(&info.udid) {
        Ok(Some((pw, _))) => pw,
        Ok(None) => return PasswordCheck::NotRemembered,
        Err(e) => return PasswordCheck::Failed(e.to_string()),
    };
    let mut backup = match iosnap_format::backup::Backup::open(&info.path) {
        Ok(b) => b,
        Err(e) => return PasswordCheck::Failed(e.to_string()),
    };
    match backup.unlock(pw.as_bytes()) {
        Ok(()) => PasswordCheck::Opens,
        Err(iosnap_format::Error::WrongPassword) => PasswordCheck::Wrong,
        Err(e) => PasswordCheck::Failed(e.to_string()),
    }
}

/// The time of the newest snapshot of `udid` (any snapshot: a manual backup counts as much as
/// an automatic one), `None` when it has none.
pub fn last_success(lib: &Library, udid: &str) -> Result<Option<SystemTime>, iosnap_store::Error> {
    Ok(lib.snapshots(udid)?.last().map(SnapshotInfo::system_time))
}

/// Backs the device of `session` up into a new snapshot of `lib`, holding its backup lock
/// throughout. Retention is left to the caller (interactive or not is its choice).
pub async fn backup_to_snapshot(
    lib: &Library,
    session: &DeviceSession,
    opts: &BackupOptions,
    progress: impl FnMut(Progress) + Send,
) -> Result<SnapshotBackup, BackupError> {
    let udid = session.udid().to_string();
    let _lock = BackupLock::acquire(&lib.device_dir(&udid)?, &udid)?;
    let staging = lib.begin(&udid)?;
    let base = staging.base().map(str::to_string);
    let target = staging.device_target().to_path_buf();
    let summary = backup(session, &target, opts, progress).await?;
    let snap = staging.commit()?;
    Ok(SnapshotBackup {
        snapshot: snap.info()?,
        summary,
        base,
        password: None,
    })
}
