//! Private scratch folders for decrypted data, and their cleanup when the process is stopped.
//!
//! Opening an encrypted backup means writing a decrypted `Manifest.db` (and, for datasets,
//! decrypted databases) to disk, because SQLite needs a file. Those copies are as sensitive as
//! the backup password, so they live in a 0700 folder that is removed when its owner drops it.
//! Dropping does not happen when the process is stopped by a signal, hence two more defences:
//!
//! * every live scratch folder is registered, so a signal handler (the CLI installs one) can
//!   call [`remove_all_now`] before the process dies;
//! * folder names carry the process id (`iosnap-<pid>-XXXXXX`), so the next run can remove
//!   what a `kill -9` or a power cut left behind ([`sweep_stale`]): a folder whose process no
//!   longer runs and which belongs to the current user.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{IoContext, Result};

/// Folders created by [`new_dir`] and not dropped yet.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The name prefix of every scratch folder, before the process id.
const PREFIX: &str = "iosnap-";

/// A private (0700) temporary folder, removed when dropped, and by [`remove_all_now`].
#[derive(Debug)]
pub struct ScratchDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl ScratchDir {
    /// Where the folder is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|p| p != &self.path);
        }
        // TempDir's own drop removes the folder and everything in it.
        drop(self.dir.take());
    }
}

/// Creates a new private scratch folder in the system temp folder (`$TMPDIR`).
pub fn new_dir() -> Result<ScratchDir> {
    new_dir_in(&std::env::temp_dir())
}

/// Creates a new private scratch folder under `parent`.
pub fn new_dir_in(parent: &Path) -> Result<ScratchDir> {
    use std::os::unix::fs::PermissionsExt;
    let prefix = format!("{PREFIX}{}-", std::process::id());
    let d = tempfile::Builder::new()
        .prefix(&prefix)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(parent)
        .at(parent)?;
    // The umask may have narrowed the mode further, never widened it; set it exactly.
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).at(d.path())?;
    let path = d.path().to_path_buf();
    if let Ok(mut live) = LIVE.lock() {
        live.push(path.clone());
    }
    Ok(ScratchDir { dir: Some(d), path })
}

/// Removes every scratch folder this process still has, now (best effort).
///
/// Meant for a signal handler that is about to end the process: the [`ScratchDir`] values are
/// not dropped then, and their folders would otherwise stay behind with decrypted data in them.
pub fn remove_all_now() {
    // A handler may run while another thread holds the lock: don't wait forever for it.
    let paths = match LIVE.try_lock() {
        Ok(mut live) => std::mem::take(&mut *live),
        Err(std::sync::TryLockError::Poisoned(p)) => std::mem::take(&mut *p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => {
            std::thread::sleep(std::time::Duration::from_millis(50));
            match LIVE.try_lock() {
                Ok(mut live) => std::mem::take(&mut *live),
                Err(_) => return,
            }
        }
    };
    for p in paths {
        let _ = std::fs::remove_dir_all(&p);
    }
}

/// Removes scratch folders in the system temp folder left by iosnap processes that no longer
/// run (killed, or the machine lost power). Returns how many were removed.
pub fn sweep_stale() -> usize {
    sweep_stale_in(&std::env::temp_dir())
}

/// [`sweep_stale`] in `parent`.
///
/// Only folders named `iosnap-<pid>-…` whose process is gone and which belong to the current
/// user are touched; symbolic links are never followed.
pub fn sweep_stale_in(parent: &Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let Ok(me) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return 0; // no /proc: we cannot tell live processes from dead ones
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(stale_pid) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = entry.path();
        let ours = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == me);
        if ours && std::fs::remove_dir_all(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The process id in a scratch folder's name (`iosnap-<pid>-<random>`), if it is one.
fn stale_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, random) = rest.split_once('-')?;
    if random.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_and_removed_on_drop() {
        let parent = tempfile::tempdir().unwrap();
        let d = new_dir_in(parent.path()).unwrap();
        let p = d.path().to_path_buf();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(LIVE.lock().unwrap().contains(&p));
        drop(d);
        assert!(!p.exists());
        assert!(!LIVE.lock().unwrap().contains(&p));
    }

    #[test]
    fn remove_all_now_removes_live_folders() {
        let parent = tempfile::tempdir().unwrap();
        let d = new_dir_in(parent.path()).unwrap();
        std::fs::write(d.path().join("Manifest.db"), b"secret").unwrap();
        remove_all_now();
        assert!(!d.path().exists());
        drop(d); // dropping after the removal is harmless
    }

    #[test]
    fn sweep_removes_only_dead_processes_folders() {
        let parent = tempfile::tempdir().unwrap();
        // pid 0 never names a user process (and /proc/0 does not exist).
        let dead = parent.path().join("iosnap-0-abc123");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("Manifest.db"), b"secret").unwrap();
        let alive = parent
            .path()
            .join(format!("iosnap-{}-abc", std::process::id()));
        std::fs::create_dir(&alive).unwrap();
        let init = parent.path().join("iosnap-1-abc"); // pid 1 always runs
        std::fs::create_dir(&init).unwrap();
        let other = parent.path().join("iosnap-datasets-x");
        std::fs::create_dir(&other).unwrap();
        let target = tempfile::tempdir().unwrap();
        let link = parent.path().join("iosnap-0-link");
        std::os::unix::fs::symlink(target.path(), &link).unwrap();

        assert_eq!(sweep_stale_in(parent.path()), 1);
        assert!(!dead.exists());
        assert!(alive.exists() && init.exists() && other.exists());
        assert!(target.path().exists() && link.symlink_metadata().is_ok());
    }

    #[test]
    fn names() {
        assert_eq!(stale_pid("iosnap-123-abc"), Some(123));
        assert_eq!(stale_pid("iosnap-123-"), None);
        assert_eq!(stale_pid("iosnap-abc-def"), None);
        assert_eq!(stale_pid("iosnap--x"), None);
        assert_eq!(stale_pid("other-1-x"), None);
    }
}
