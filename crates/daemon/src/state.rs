//! The daemon's memory across restarts: per device, how many automatic backups failed in a
//! row and when, so a restart (a reboot, `systemctl restart`, a crash and `Restart=on-failure`)
//! does not reset the backoff and hammer a phone that keeps failing (or keep popping up the
//! passcode prompt of a locked one). It also says which phones show their passcode prompt
//! right now, for `iosnap daemon status`, a different process.
//!
//! One small JSON file, `<config>/daemon/state.json`, replaced atomically (temp file, fsync,
//! rename, fsync of the folder) on every change, so a kill at any point leaves either the old
//! or the new state. A missing file is an empty state; an unreadable one is reported and
//! treated as empty (the worst case is one early retry, never a stopped daemon).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use iosnap_store::ConfigDir;
use serde::{Deserialize, Serialize};

use crate::schedule::backoff_delay;

/// Version of the file's layout.
const VERSION: u32 = 1;

/// Failures in a row of one device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    /// Automatic backups that failed in a row since the last success.
    pub count: u32,
    /// When the last one failed.
    pub last: Option<SystemTime>,
    /// The last one failed because the phone was locked (passcode prompt not answered).
    pub locked: bool,
}

/// Everything in the state file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonState {
    /// Failures in a row per device (devices without failures are absent).
    pub failures: BTreeMap<String, Failures>,
    /// Devices whose running backup waits at the phone's passcode prompt, since when.
    pub prompts: BTreeMap<String, SystemTime>,
}

impl Failures {
    /// The earliest retry (`None` when there is no failure to back off from).
    pub fn next_retry(&self) -> Option<SystemTime> {
        self.last.map(|l| l + backoff_delay(self.count))
    }
}

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading, writing or renaming failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not what this version writes.
    #[error("{path}: not a daemon state file: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileDevice {
    #[serde(default)]
    failures: u32,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_failure: Option<i64>,
    /// Unix seconds; derived, written for people reading the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_retry: Option<i64>,
    /// The last failure was a locked phone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    locked: bool,
    /// Unix seconds: the passcode prompt is up since then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    passcode_prompt_since: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct File {
    version: u32,
    devices: BTreeMap<String, FileDevice>,
}

fn to_unix(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn from_unix(s: i64) -> SystemTime {
    let d = Duration::from_secs(s.unsigned_abs());
    if s >= 0 {
        SystemTime::UNIX_EPOCH + d
    } else {
        SystemTime::UNIX_EPOCH - d
    }
}

/// The state file of the daemon whose settings are in `config`.
pub fn state_path(config: &ConfigDir) -> PathBuf {
    config.path().join("daemon").join("state.json")
}

/// Reads the state; a missing file is an empty state.
pub fn load(path: &Path) -> Result<DaemonState, StateError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DaemonState::default()),
        Err(source) => {
            return Err(StateError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let corrupt = |detail: String| StateError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let file: File = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    if file.version != VERSION {
        return Err(corrupt(format!(
            "version {} (expected {VERSION})",
            file.version
        )));
    }
    let mut state = DaemonState::default();
    for (udid, d) in file.devices {
        if let Some(since) = d.passcode_prompt_since {
            state.prompts.insert(udid.clone(), from_unix(since));
        }
        if d.failures > 0
            && let Some(last) = d.last_failure
        {
            state.failures.insert(
                udid,
                Failures {
                    count: d.failures,
                    last: Some(from_unix(last)),
                    locked: d.locked,
                },
            );
        }
    }
    Ok(state)
}

/// Replaces the file with `state` (devices with nothing to remember are left out),
/// atomically.
pub fn save(path: &Path, state: &DaemonState) -> Result<(), StateError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| StateError::Io { path: p, source }
    };
    let mut devices: BTreeMap<String, FileDevice> = BTreeMap::new();
    for (udid, f) in &state.failures {
        if let (true, Some(last)) = (f.count > 0, f.last) {
            let d = devices.entry(udid.clone()).or_default();
            d.failures = f.count;
            d.last_failure = Some(to_unix(last));
            d.next_retry = f.next_retry().map(to_unix);
            d.locked = f.locked;
        }
    }
    for (udid, since) in &state.prompts {
        devices
            .entry(udid.clone())
            .or_default()
            .passcode_prompt_since = Some(to_unix(*since));
    }
    let text = serde_json::to_string_pretty(&File {
        version: VERSION,
        devices,
    })
    .map_err(|e| StateError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(".state.json.tmp-{}", std::process::id()));
    let written = fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(io(path)(e));
    }
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_drops_cleared_devices_and_leaves_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("daemon/state.json");
        assert_eq!(load(&path).unwrap(), DaemonState::default());
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_478_400);
        let mut m = DaemonState::default();
        m.failures.insert(
            "A".to_string(),
            Failures {
                count: 3,
                last: Some(t),
                locked: true,
            },
        );
        m.failures.insert("B".to_string(), Failures::default());
        m.prompts.insert("C".to_string(), t);
        save(&path, &m).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back.failures.len(), 1);
        assert_eq!(back.failures["A"], m.failures["A"]);
        assert_eq!(back.prompts, m.prompts);
        assert_eq!(
            back.failures["A"].next_retry(),
            Some(t + Duration::from_secs(1200))
        );
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"next_retry\": 1795479600"), "{text}");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn corrupt_or_foreign_files_are_errors_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("state.json");
        fs::write(&path, "{ not json").unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.to_string().contains("state.json"), "{e}");
        fs::write(&path, r#"{"version": 99, "devices": {}}"#).unwrap();
        assert!(matches!(load(&path), Err(StateError::Corrupt { .. })));
    }
}
