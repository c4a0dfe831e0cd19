//! Per-device settings and the list of backup locations, as TOML under
//! `$XDG_CONFIG_HOME/iosnap/` (config, not data: they survive wiping a backup disk).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::share::{SharingMethod, create_private_dir, fsync_dir};

/// Settings of one device. Missing keys take the defaults (so old files keep working).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct DeviceSettings {
    /// Keep snapshots (`true`) or only the latest backup (`false`, still committed atomically).
    pub snapshots: bool,
    /// Minimum age, in days, before retention may delete a snapshot.
    pub retention_days: u32,
    /// Extra space snapshots may use beyond one backup; `None` = half the first backup.
    pub budget_bytes: Option<u64>,
    /// Ask before retention deletes anything.
    pub ask_before_delete: bool,
    /// Location (library root) for this device; `None` = the default location.
    pub location: Option<PathBuf>,
    /// Force a sharing method instead of probing (e.g. `copy` on a flaky NAS).
    pub sharing: Option<SharingMethod>,
    /// Let `iosnap daemon` back this device up on its own (off until the user opts in).
    pub automatic: bool,
    /// Local-time window for automatic backups, `HH:MM-HH:MM` (may wrap midnight); `None` =
    /// any time. Kept as text so the file stays readable; checked by [`parse_window`].
    pub window: Option<String>,
    /// Minimum battery percentage for an automatic backup (a backup drains the battery).
    pub min_battery: u8,
    /// A charging phone may be backed up below `min_battery`.
    pub charging_overrides: bool,
    /// Automatic backups of a phone usbmuxd reports as a network (Wi-Fi) device.
    pub wifi: bool,
    /// How often automatic backups run: `daily`, `weekly` or `every N hours` (`Nh`).
    pub frequency: String,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        DeviceSettings {
            snapshots: true,
            retention_days: 30,
            budget_bytes: None,
            ask_before_delete: true,
            location: None,
            sharing: None,
            automatic: false,
            window: None,
            min_battery: 20,
            charging_overrides: true,
            wifi: true,
            frequency: "daily".into(),
        }
    }
}

/// The keys `settings set` accepts, for help and error messages.
pub const SETTING_KEYS: &[&str] = &[
    "snapshots",
    "retention-days",
    "budget-bytes",
    "ask-before-delete",
    "location",
    "sharing",
    "automatic",
    "window",
    "min-battery",
    "charging-overrides",
    "wifi",
    "frequency",
];

/// How often automatic backups run, parsed from [`DeviceSettings::frequency`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    /// Once per local calendar day (the default).
    Daily,
    /// Once per seven local calendar days.
    Weekly,
    /// When this many hours have passed since the last successful backup.
    EveryHours(u32),
}

/// Parses `daily`, `weekly`, `every N hours`, `every Nh` or `Nh` (N from 1 to 8760).
pub fn parse_frequency(v: &str) -> Result<Frequency> {
    let t = v.trim().to_ascii_lowercase();
    match t.as_str() {
        "daily" | "" => return Ok(Frequency::Daily),
        "weekly" => return Ok(Frequency::Weekly),
        _ => {}
    }
    let rest = t.strip_prefix("every").map(str::trim).unwrap_or(&t);
    let num = rest
        .strip_suffix("hours")
        .or_else(|| rest.strip_suffix("hour"))
        .or_else(|| rest.strip_suffix('h'))
        .map(str::trim);
    match num.and_then(|n| n.parse::<u32>().ok()) {
        Some(n) if (1..=8760).contains(&n) => Ok(Frequency::EveryHours(n)),
        _ => Err(Error::Invalid(format!(
            "frequency: expected daily, weekly or \"every N hours\" (1-8760), got {v:?}"
        ))),
    }
}

/// A daily local-time window in minutes after midnight: `[start, end)`; `start > end` wraps
/// midnight, `start == end` is the whole day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First minute inside the window.
    pub start: u16,
    /// First minute after the window.
    pub end: u16,
}

fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

/// Parses `HH:MM-HH:MM` (e.g. `09:00-18:00`, `22:00-06:00`; `24:00` ends at midnight).
pub fn parse_window(v: &str) -> Result<Window> {
    let bad = || Error::Invalid(format!("window: expected HH:MM-HH:MM, got {v:?}"));
    let (a, b) = v.split_once('-').ok_or_else(bad)?;
    let start = parse_hhmm(a).filter(|&s| s < 24 * 60).ok_or_else(bad)?;
    let end = parse_hhmm(b).ok_or_else(bad)? % (24 * 60);
    Ok(Window { start, end })
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(Error::Invalid(format!("{key}: expected on/off, got {v:?}"))),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T> {
    v.parse()
        .map_err(|_| Error::Invalid(format!("{key}: expected a number, got {v:?}")))
}

impl DeviceSettings {
    /// Sets one key from its text form (`settings set`). `none`/`default` clears optional keys.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let clear = matches!(value, "none" | "default" | "");
        match key {
            "snapshots" => self.snapshots = parse_bool(key, value)?,
            "retention-days" => self.retention_days = parse_num(key, value)?,
            "budget-bytes" => {
                self.budget_bytes = if clear {
                    None
                } else {
                    Some(parse_num(key, value)?)
                }
            }
            "ask-before-delete" => self.ask_before_delete = parse_bool(key, value)?,
            "location" => {
                self.location = if clear {
                    None
                } else {
                    Some(PathBuf::from(value))
                }
            }
            "sharing" => {
                self.sharing = if clear {
                    None
                } else {
                    Some(SharingMethod::parse(value).ok_or_else(|| {
                        Error::Invalid(format!(
                            "sharing: expected reflink, hard-link or copy, got {value:?}"
                        ))
                    })?)
                }
            }
            "automatic" => self.automatic = parse_bool(key, value)?,
            "window" => {
                self.window = if clear || value == "any" {
                    None
                } else {
                    parse_window(value)?;
                    Some(value.trim().to_string())
                }
            }
            "min-battery" => {
                let n: u8 = parse_num(key, value)?;
                if n > 100 {
                    return Err(Error::Invalid(format!(
                        "min-battery: expected 0-100, got {value:?}"
                    )));
                }
                self.min_battery = n;
            }
            "charging-overrides" => self.charging_overrides = parse_bool(key, value)?,
            "wifi" => self.wifi = parse_bool(key, value)?,
            "frequency" => {
                parse_frequency(value)?;
                self.frequency = value.trim().to_string();
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown setting {key:?}; known: {}",
                    SETTING_KEYS.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// Where the settings files live.
#[derive(Debug, Clone)]
pub struct ConfigDir {
    dir: PathBuf,
}

/// The list of registered backup locations (`location add`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locations {
    /// Library roots, in the order they were added.
    #[serde(default)]
    pub locations: Vec<PathBuf>,
}

impl ConfigDir {
    /// `$IOSNAP_CONFIG_DIR`, else `$XDG_CONFIG_HOME/iosnap`, else `~/.config/iosnap`.
    pub fn from_env() -> Result<ConfigDir> {
        if let Some(d) = std::env::var_os("IOSNAP_CONFIG_DIR") {
            return Ok(ConfigDir { dir: d.into() });
        }
        if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
            return Ok(ConfigDir {
                dir: PathBuf::from(d).join("iosnap"),
            });
        }
        let home = std::env::var_os("HOME")
            .ok_or_else(|| Error::Invalid("neither XDG_CONFIG_HOME nor HOME is set".into()))?;
        Ok(ConfigDir {
            dir: PathBuf::from(home).join(".config/iosnap"),
        })
    }

    /// Settings kept in `dir` (tests).
    pub fn at(dir: impl Into<PathBuf>) -> ConfigDir {
        ConfigDir { dir: dir.into() }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn device_file(&self, udid: &str) -> Result<PathBuf> {
        crate::library::check_udid(udid)?;
        Ok(self.dir.join("devices").join(format!("{udid}.toml")))
    }

    /// The settings of `udid` (defaults when it has none).
    pub fn device(&self, udid: &str) -> Result<DeviceSettings> {
        read_toml(&self.device_file(udid)?)
    }

    /// Saves the settings of `udid` (atomically: temp file + rename).
    pub fn save_device(&self, udid: &str, s: &DeviceSettings) -> Result<()> {
        write_toml(&self.device_file(udid)?, s)
    }

    /// Removes the settings of `udid` (`forget`); absent is fine.
    pub fn forget_device(&self, udid: &str) -> Result<()> {
        let p = self.device_file(udid)?;
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::Io { path: p, source: e })
            }
            _ => Ok(()),
        }
    }

    /// The registered locations.
    pub fn locations(&self) -> Result<Locations> {
        read_toml(&self.dir.join("locations.toml"))
    }

    /// Saves the registered locations.
    pub fn save_locations(&self, l: &Locations) -> Result<()> {
        write_toml(&self.dir.join("locations.toml"), l)
    }
}

/// Reads a TOML file; a missing file gives the default value.
pub(crate) fn read_toml<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> Result<T> {
    match fs::read_to_string(path) {
        Ok(s) => toml::from_str(&s).map_err(|e| Error::Toml {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(Error::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Writes a TOML file atomically (temp + fsync + rename + fsync folder), folder 0700.
pub(crate) fn write_toml<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = toml::to_string(value).map_err(|e| Error::Toml {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let parent = path
        .parent()
        .ok_or_else(|| Error::Invalid(format!("{} has no parent folder", path.display())))?;
    create_private_dir(parent)?;
    write_atomic(path, text.as_bytes())?;
    fsync_dir(parent)
}

/// Replaces `path` with `bytes` through a temp file and a rename (never in place).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .at(&tmp)?;
    f.write_all(bytes).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    drop(f);
    fs::rename(&tmp, path).at(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A settings file is user-editable: any content gives a value or an error, never a panic.
        #[test]
        fn any_settings_file_is_handled(text in "(?s).{0,200}") {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("x.toml");
            std::fs::write(&p, &text).unwrap();
            let _ = read_toml::<DeviceSettings>(&p);
        }

        #[test]
        fn set_never_panics(key in "[a-z-]{0,20}", value in ".{0,20}") {
            let _ = DeviceSettings::default().set(&key, &value);
        }
    }

    #[test]
    fn frequencies_and_windows_parse() {
        assert_eq!(parse_frequency("daily").unwrap(), Frequency::Daily);
        assert_eq!(parse_frequency("Weekly").unwrap(), Frequency::Weekly);
        assert_eq!(
            parse_frequency("every 6 hours").unwrap(),
            Frequency::EveryHours(6)
        );
        assert_eq!(
            parse_frequency("every 1 hour").unwrap(),
            Frequency::EveryHours(1)
        );
        assert_eq!(parse_frequency("12h").unwrap(), Frequency::EveryHours(12));
        assert!(parse_frequency("every x hours").is_err());
        assert_eq!(
            parse_window("09:00-18:00").unwrap(),
            Window {
                start: 540,
                end: 1080
            }
        );
        assert_eq!(
            parse_window("22:30-24:00").unwrap(),
            Window {
                start: 1350,
                end: 0
            }
        );
        assert!(parse_window("24:00-01:00").is_err());
        assert!(parse_window("09:60-10:00").is_err());
    }

    #[test]
    fn settings_round_trip_and_defaults() {
        let d = tempfile::tempdir().unwrap();
        let c = ConfigDir::at(d.path());
        let udid = "00008030-0000000000000001";
        assert_eq!(c.device(udid).unwrap(), DeviceSettings::default());
        let mut s = DeviceSettings::default();
        s.set("snapshots", "off").unwrap();
        s.set("retention-days", "7").unwrap();
        s.set("budget-bytes", "1000").unwrap();
        s.set("sharing", "copy").unwrap();
        assert!(s.set("bogus", "1").is_err());
        assert!(s.set("retention-days", "x").is_err());
        c.save_device(udid, &s).unwrap();
        assert_eq!(c.device(udid).unwrap(), s);
        assert!(c.device("../evil").is_err());
        let mut a = DeviceSettings::default();
        assert!(!a.automatic && a.wifi && a.charging_overrides && a.min_battery == 20);
        a.set("automatic", "on").unwrap();
        a.set("window", "09:00-18:00").unwrap();
        a.set("min-battery", "50").unwrap();
        a.set("charging-overrides", "off").unwrap();
        a.set("wifi", "off").unwrap();
        a.set("frequency", "every 6 hours").unwrap();
        assert!(a.set("window", "9-18").is_err());
        assert!(a.set("window", "25:00-18:00").is_err());
        assert!(a.set("min-battery", "101").is_err());
        assert!(a.set("frequency", "hourly").is_err());
        assert!(a.set("frequency", "every 0 hours").is_err());
        c.save_device(udid, &a).unwrap();
        assert_eq!(c.device(udid).unwrap(), a);
        a.set("window", "any").unwrap();
        assert_eq!(a.window, None);
        c.forget_device(udid).unwrap();
        assert_eq!(c.device(udid).unwrap(), DeviceSettings::default());
    }
}
