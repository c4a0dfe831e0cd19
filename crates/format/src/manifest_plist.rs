//! `Manifest.plist`: the device-written description of a backup (format.md §1.3) — the keybag,
//! the wrapped `Manifest.db` key, whether the backup is encrypted, and the device's lockdown values.
//!
//! Unknown keys are kept in [`ManifestPlist::extra`] and written back, so rewriting never loses
//! what a newer iOS put there. Written as a binary plist (as the device sends it); XML and binary
//! are both accepted on read.

use std::path::Path;
use std::time::SystemTime;

use plist::{Dictionary, Value};

use crate::entry::WrappedKey;
use crate::error::{Error, IoContext, Result};
use crate::info_plist::{Fields, date_value, put, to_bytes, top_dictionary};

/// File name inside a backup folder.
pub const FILE_NAME: &str = "Manifest.plist";

/// Exact length of a `ManifestKey`: 4-byte little-endian class + 40-byte RFC 3394 wrapped key.
pub const MANIFEST_KEY_LEN: usize = 44;

/// The typed content of `Manifest.plist`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManifestPlist {
    /// `BackupKeyBag`: the TLV keybag (present in encrypted and unencrypted backups).
    pub backup_keybag: Option<Vec<u8>>,
    /// `ManifestKey`: the wrapped key of `Manifest.db` (encrypted backups, iOS ≥ 10.2).
    pub manifest_key: Option<WrappedKey>,
    /// `IsEncrypted` (false when absent).
    pub is_encrypted: bool,
    /// `WasPasscodeSet`: whether the device had a passcode at backup time.
    pub was_passcode_set: Option<bool>,
    /// `Version`: manifest version, "10.0" on modern backups.
    pub version: Option<String>,
    /// `Date` of the backup.
    pub date: Option<SystemTime>,
    /// `SystemDomainsVersion`, e.g. "24.0".
    pub system_domains_version: Option<String>,
    /// `Lockdown`: device values (DeviceName, ProductVersion, UniqueDeviceID …); empty if absent.
    pub lockdown: Dictionary,
    /// `Applications`: bundle id → app info; empty if absent.
    pub applications: Dictionary,
    /// Every other key, kept verbatim.
    pub extra: Dictionary,
}

impl ManifestPlist {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).at(path)?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses XML or binary plist bytes; `path` is only used in error messages.
    ///
    /// A known key of the wrong type is [`Error::Corrupt`] naming it (e.g.
    /// "Manifest.plist: IsEncrypted is not a boolean"); a `ManifestKey` that is not exactly
    /// 4 + 40 bytes is [`Error::Corrupt`] too.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        const WHAT: &str = "Manifest.plist";
        let dict = top_dictionary(bytes, path, WHAT)?;
        let mut f = Fields {
            dict,
            path,
            what: WHAT,
        };
        let backup_keybag = f.data("BackupKeyBag")?;
        let manifest_key = match f.data("ManifestKey")? {
            None => None,
            Some(b) if b.len() == MANIFEST_KEY_LEN => WrappedKey::from_bytes(&b),
            Some(b) => {
                return Err(Error::corrupt(
                    path,
                    WHAT,
                    format!(
                        "{WHAT}: ManifestKey is {} bytes, expected 4 (class) + 40 (wrapped key)",
                        b.len()
                    ),
                ));
            }
        };
        Ok(ManifestPlist {
            backup_keybag,
            manifest_key,
            is_encrypted: f.boolean("IsEncrypted")?.unwrap_or(false),
            was_passcode_set: f.boolean("WasPasscodeSet")?,
            version: f.string("Version")?,
            date: f.date("Date")?,
            system_domains_version: f.string("SystemDomainsVersion")?,
            lockdown: f.dictionary("Lockdown")?.unwrap_or_default(),
            applications: f.dictionary("Applications")?.unwrap_or_default(),
            extra: f.dict,
        })
    }

    /// The whole plist as a dictionary (typed fields plus `extra`), keys sorted.
    ///
    /// `IsEncrypted`, `Lockdown` and `Applications` are always written (readers such as
    /// iOSbackup look them up unconditionally).
    pub fn to_dictionary(&self) -> Dictionary {
        let mut d = self.extra.clone();
        put(
            &mut d,
            "BackupKeyBag",
            self.backup_keybag.clone().map(Value::Data),
        );
        put(
            &mut d,
            "ManifestKey",
            self.manifest_key
                .as_ref()
                .map(|k| Value::Data(k.to_bytes())),
        );
        d.insert("IsEncrypted".into(), Value::Boolean(self.is_encrypted));
        put(
            &mut d,
            "WasPasscodeSet",
            self.was_passcode_set.map(Value::Boolean),
        );
        put(&mut d, "Version", self.version.clone().map(Value::String));
        put(&mut d, "Date", self.date.map(date_value));
        put(
            &mut d,
            "SystemDomainsVersion",
            self.system_domains_version.clone().map(Value::String),
        );
        d.insert("Lockdown".into(), Value::Dictionary(self.lockdown.clone()));
        d.insert(
            "Applications".into(),
            Value::Dictionary(self.applications.clone()),
        );
        d.sort_keys();
        d
    }

    /// The serialized file (binary plist), as [`write`](Self::write) stores it.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        to_bytes(self.to_dictionary(), false, Path::new(FILE_NAME))
    }

    /// Writes the plist (binary) to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = to_bytes(self.to_dictionary(), false, path)?;
        std::fs::write(path, bytes).at(path)
    }

    /// A string value of `Lockdown` (None when absent or not a string).
    pub fn lockdown_string(&self, key: &str) -> Option<&str> {
        self.lockdown.get(key).and_then(Value::as_string)
    }

    /// Sets a string value of `Lockdown` (used when writing a new backup).
    pub fn set_lockdown_string(&mut self, key: &str, value: impl Into<String>) {
        self.lockdown
            .insert(key.to_string(), Value::String(value.into()));
    }

    /// `Lockdown.ProductVersion`: the iOS version, which decides legacy code paths in readers.
    pub fn product_version(&self) -> Option<&str> {
        self.lockdown_string("ProductVersion")
    }

    /// `Lockdown.DeviceName`.
    pub fn device_name(&self) -> Option<&str> {
        self.lockdown_string("DeviceName")
    }

    /// `Lockdown.UniqueDeviceID`: the UDID.
    pub fn unique_device_id(&self) -> Option<&str> {
        self.lockdown_string("UniqueDeviceID")
    }

    /// `Lockdown.ProductType`, e.g. `iPhone9,3`.
    pub fn product_type(&self) -> Option<&str> {
        self.lockdown_string("ProductType")
    }

    /// `Lockdown.BuildVersion`, e.g. `18C66`.
    pub fn build_version(&self) -> Option<&str> {
        self.lockdown_string("BuildVersion")
    }

    /// `Lockdown.SerialNumber`.
    pub fn serial_number(&self) -> Option<&str> {
        self.lockdown_string("SerialNumber")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn sample() -> ManifestPlist {
        let mut key = vec![4, 0, 0, 0];
        key.extend(0u8..40);
        let mut m = ManifestPlist {
            backup_keybag: Some(b"VERS\0\0\0\x04\0\0\0\x05".to_vec()),
            manifest_key: WrappedKey::from_bytes(&key),
            is_encrypted: true,
            was_passcode_set: Some(false),
            version: Some("10.0".into()),
            date: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            system_domains_version: Some("24.0".into()),
            ..ManifestPlist::default()
        };
        m.set_lockdown_string("ProductVersion", "14.3");
        m.set_lockdown_string("DeviceName", "Phone");
        m.set_lockdown_string("UniqueDeviceID", "abc");
        m.extra
            .insert("FutureKey".into(), Value::Integer(7u64.into()));
        m
    }

    #[test]
    fn binary_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        let m = sample();
        m.write(&path).expect("write");
        assert!(std::fs::read(&path).expect("read").starts_with(b"bplist00"));
        let back = ManifestPlist::read(&path).expect("parse");
        assert_eq!(back, m);
        assert_eq!(back.product_version(), Some("14.3"));
        assert_eq!(back.device_name(), Some("Phone"));
        assert_eq!(back.unique_device_id(), Some("abc"));
        assert_eq!(back.manifest_key.as_ref().map(|k| k.class), Some(4));
    }

    #[test]
    fn xml_is_accepted() {
        let mut out = Vec::new();
        Value::Dictionary(sample().to_dictionary())
            .to_writer_xml(&mut out)
            .expect("xml");
        assert_eq!(
            ManifestPlist::from_bytes(&out, Path::new("m")).expect("parse"),
            sample()
        );
    }

    #[test]
    fn wrong_types_and_bad_key_are_named() {
        let p = Path::new("/b/Manifest.plist");
        let mut d = sample().to_dictionary();
        d.insert("IsEncrypted".into(), Value::String("yes".into()));
        let bytes = to_bytes(d, false, p).expect("bytes");
        let msg = ManifestPlist::from_bytes(&bytes, p)
            .expect_err("type")
            .to_string();
        assert!(
            msg.contains("Manifest.plist: IsEncrypted is not a boolean"),
            "{msg}"
        );

        let mut d = sample().to_dictionary();
        d.insert("ManifestKey".into(), Value::Data(vec![4, 0, 0, 0, 1, 2]));
        let bytes = to_bytes(d, false, p).expect("bytes");
        let msg = ManifestPlist::from_bytes(&bytes, p)
            .expect_err("key")
            .to_string();
        assert!(msg.contains("ManifestKey is 6 bytes"), "{msg}");

        let mut d = sample().to_dictionary();
        d.insert("Lockdown".into(), Value::Array(vec![]));
        let bytes = to_bytes(d, false, p).expect("bytes");
        assert!(ManifestPlist::from_bytes(&bytes, p).is_err());
    }

    #[test]
    fn truncated_is_an_error() {
        let p = Path::new("/b/Manifest.plist");
        let bytes = sample().to_bytes().expect("bytes");
        for cut in [0, 8, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                ManifestPlist::from_bytes(&bytes[..cut], p).is_err(),
                "cut {cut}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn prop_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = ManifestPlist::from_bytes(&bytes, Path::new("x"));
        }

        #[test]
        fn prop_mutations_never_panic(pos in proptest::prelude::any::<usize>(), byte in proptest::prelude::any::<u8>()) {
            let mut bytes = sample().to_bytes().expect("bytes");
            let i = pos % bytes.len();
            bytes[i] = byte;
            let _ = ManifestPlist::from_bytes(&bytes, Path::new("x"));
        }
    }
}
