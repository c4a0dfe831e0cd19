//! The per-device backup lock: never two backups of one device at once, whether they come from
//! the daemon or from `iosnap backup`. A file `<location>/<UDID>/.backup.lock` held with
//! `flock` (released by the kernel when the process dies, so a crash never leaves it stuck),
//! holding the owner's pid so the second one can say who has it.

use std::fs;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Name of the lock file in the device's folder of the library.
pub const LOCK_FILE: &str = ".backup.lock";

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another backup of the device is running (in this or another process).
    #[error("a backup of {udid} is already running{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Busy {
        /// The device.
        udid: String,
        /// The process holding the lock, when it wrote its pid.
        pid: Option<u32>,
    },
    /// The lock file could not be created or locked.
    #[error("{path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A held backup lock; dropping it releases it.
#[derive(Debug)]
pub struct BackupLock {
    _file: fs::File,
    path: PathBuf,
}

impl BackupLock {
    /// Takes the lock of `udid` whose library folder is `device_dir` (created if missing),
    /// failing at once with [`LockError::Busy`] when someone else holds it.
    pub fn acquire(device_dir: &Path, udid: &str) -> Result<BackupLock, LockError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LockError::Io { path, source }
        };
        fs::create_dir_all(device_dir).map_err(io(device_dir))?;
        let path = device_dir.join(LOCK_FILE);
        let mut file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(LockError::Busy {
                udid: udid.to_string(),
                pid: text.trim().parse().ok(),
            });
        }
        file.set_len(0).map_err(io(&path))?;
        file.rewind().map_err(io(&path))?;
        writeln!(file, "{}", std::process::id()).map_err(io(&path))?;
        Ok(BackupLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_pid_and_release_frees_it() {
        let d = tempfile::tempdir().unwrap();
        let dev = d.path().join("UDID1");
        let a = BackupLock::acquire(&dev, "UDID1").unwrap();
        let err = BackupLock::acquire(&dev, "UDID1").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "a backup of UDID1 is already running (pid {})",
                std::process::id()
            )
        );
        drop(a);
        let b = BackupLock::acquire(&dev, "UDID1").unwrap();
        assert!(b.path().ends_with(LOCK_FILE));
        // Other devices are independent.
        BackupLock::acquire(&d.path().join("UDID2"), "UDID2").unwrap();
    }
}
