//! `Info.plist`: the host-written description of the device and the backup (format.md §1.2).
//!
//! Every field is optional because hosts differ (iTunes, Finder, idevicebackup2 write different
//! sets); unknown keys are kept in [`InfoPlist::extra`] and written back unchanged, so reading and
//! rewriting a folder never loses what another tool put there. The file is written as XML, like
//! iTunes does; XML and binary are both accepted on read.

use std::path::Path;
use std::time::SystemTime;

use plist::{Dictionary, Value};

use crate::error::{Error, IoContext, Result};
use crate::mbfile::parse_plist_bounded;

/// File name inside a backup folder.
pub const FILE_NAME: &str = "Info.plist";

/// The typed content of `Info.plist`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InfoPlist {
    /// `Device Name`: the name the user gave the device.
    pub device_name: Option<String>,
    /// `Display Name`.
    pub display_name: Option<String>,
    /// `Product Type`, e.g. `iPhone9,3`.
    pub product_type: Option<String>,
    /// `Product Version`, the iOS version, e.g. `14.3`.
    pub product_version: Option<String>,
    /// `Build Version`, e.g. `18C66`.
    pub build_version: Option<String>,
    /// `Serial Number`.
    pub serial_number: Option<String>,
    /// `Unique Identifier`: the UDID, uppercase.
    pub unique_identifier: Option<String>,
    /// `Target Identifier`: the UDID as the host spells it (lowercase in libimobiledevice).
    pub target_identifier: Option<String>,
    /// `IMEI` (cellular devices).
    pub imei: Option<String>,
    /// `Phone Number` (cellular devices).
    pub phone_number: Option<String>,
    /// `ICCID` (cellular devices).
    pub iccid: Option<String>,
    /// `MEID` (cellular devices).
    pub meid: Option<String>,
    /// `GUID`: the host's GUID.
    pub guid: Option<String>,
    /// `iTunes Version` of the host that made the backup.
    pub itunes_version: Option<String>,
    /// `Last Backup Date`.
    pub last_backup_date: Option<SystemTime>,
    /// `Installed Applications`: bundle ids.
    pub installed_applications: Vec<String>,
    /// Every other key, kept verbatim (e.g. `Applications`, `iTunes Files`, `Target Type`).
    pub extra: Dictionary,
}

/// Key names of the string fields, in the order of [`InfoPlist`]'s fields.
const STRING_KEYS: [&str; 14] = [
    "Device Name",
    "Display Name",
    "Product Type",
    "Product Version",
    "Build Version",
    "Serial Number",
    "Unique Identifier",
    "Target Identifier",
    "IMEI",
    "Phone Number",
    "ICCID",
    "MEID",
    "GUID",
    "iTunes Version",
];

/// Parses the top level of a metadata plist into a dictionary, or explains why it is not one.
pub(crate) fn top_dictionary(bytes: &[u8], path: &Path, what: &'static str) -> Result<Dictionary> {
    let value = parse_plist_bounded(bytes).map_err(|e| e.into_error(path, what))?;
    value
        .into_dictionary()
        .ok_or_else(|| Error::corrupt(path, what, format!("{what}: top level is not a dictionary")))
}

/// Typed access to the keys of a metadata plist, with errors that name the file and the key.
pub(crate) struct Fields<'a> {
    pub(crate) dict: Dictionary,
    pub(crate) path: &'a Path,
    pub(crate) what: &'static str,
}

impl Fields<'_> {
    fn wrong(&self, key: &str, ty: &str) -> Error {
        Error::corrupt(
            self.path,
            self.what,
            format!("{}: {key} is not {ty}", self.what),
        )
    }

    /// Removes and returns a string key.
    pub(crate) fn string(&mut self, key: &str) -> Result<Option<String>> {
        match self.dict.remove(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }

    /// Removes and returns a boolean key.
    pub(crate) fn boolean(&mut self, key: &str) -> Result<Option<bool>> {
        match self.dict.remove(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(b)),
            Some(_) => Err(self.wrong(key, "a boolean")),
        }
    }

    /// Removes and returns a date key.
    pub(crate) fn date(&mut self, key: &str) -> Result<Option<SystemTime>> {
        match self.dict.remove(key) {
            None => Ok(None),
            Some(Value::Date(d)) => Ok(Some(d.into())),
            Some(_) => Err(self.wrong(key, "a date")),
        }
    }

    /// Removes and returns a data key.
    pub(crate) fn data(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        match self.dict.remove(key) {
            None => Ok(None),
            Some(Value::Data(d)) => Ok(Some(d)),
            Some(_) => Err(self.wrong(key, "data")),
        }
    }

    /// Removes and returns a dictionary key.
    pub(crate) fn dictionary(&mut self, key: &str) -> Result<Option<Dictionary>> {
        match self.dict.remove(key) {
            None => Ok(None),
            Some(Value::Dictionary(d)) => Ok(Some(d)),
            Some(_) => Err(self.wrong(key, "a dictionary")),
        }
    }

    /// Removes and returns an array-of-strings key.
    pub(crate) fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>> {
        match self.dict.remove(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| {
                    v.into_string()
                        .ok_or_else(|| self.wrong(key, "an array of strings"))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => Err(self.wrong(key, "an array of strings")),
        }
    }
}

/// Inserts `value` under `key` when present.
pub(crate) fn put(d: &mut Dictionary, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        d.insert(key.to_string(), v);
    }
}

/// Latest time written into a plist (Unix seconds): the end of year 9999. The `plist` crate can
/// only print years 0000–9999 as XML dates (it panics beyond), though it reads a wider range from
/// binary plists.
const DATE_MAX_SECS: i64 = 253_402_300_799;

/// Earliest time written into a plist: the start of year 0001.
const DATE_MIN_SECS: i64 = -62_135_596_800;

/// `t` clamped to the years 0001–9999.
fn clamp_time(t: SystemTime) -> SystemTime {
    use std::time::{Duration, UNIX_EPOCH};
    let max = UNIX_EPOCH + Duration::from_secs(DATE_MAX_SECS.unsigned_abs());
    let min = UNIX_EPOCH - Duration::from_secs(DATE_MIN_SECS.unsigned_abs());
    t.clamp(min, max)
}

/// A plist date for `t`, clamped to the years 0001–9999 so that serialising can never fail or
/// panic on an absurd caller-supplied time.
pub(crate) fn date_value(t: SystemTime) -> Value {
    Value::Date(clamp_time(t).into())
}

/// Clamps every date inside `value` (iteratively) to what an XML plist can hold; dates read from
/// a binary plist may lie outside it.
fn clamp_dates(value: &mut Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(a) => stack.extend(a.iter_mut()),
            Value::Dictionary(d) => stack.extend(d.values_mut()),
            Value::Date(d) => *d = clamp_time((*d).into()).into(),
            _ => {}
        }
    }
}

/// Serialises a dictionary as XML (`xml = true`) or binary plist bytes.
pub(crate) fn to_bytes(dict: Dictionary, xml: bool, path: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut value = Value::Dictionary(dict);
    if xml {
        clamp_dates(&mut value);
    }
    let written = if xml {
        value.to_writer_xml(&mut out)
    } else {
        value.to_writer_binary(&mut out)
    };
    written.map_err(|e| Error::plist(path, e))?;
    Ok(out)
}

impl InfoPlist {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).at(path)?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses XML or binary plist bytes; `path` is only used in error messages.
    ///
    /// A known key of the wrong type is [`Error::Corrupt`] naming the key; unparsable bytes are
    /// [`Error::Plist`].
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let dict = top_dictionary(bytes, path, "Info.plist")?;
        let mut f = Fields {
            dict,
            path,
            what: "Info.plist",
        };
        let mut s = Vec::with_capacity(STRING_KEYS.len());
        for key in STRING_KEYS {
            s.push(f.string(key)?);
        }
        let mut s = s.into_iter();
        let mut next = || s.next().flatten();
        Ok(InfoPlist {
            device_name: next(),
            display_name: next(),
            product_type: next(),
            product_version: next(),
            build_version: next(),
            serial_number: next(),
            unique_identifier: next(),
            target_identifier: next(),
            imei: next(),
            phone_number: next(),
            iccid: next(),
            meid: next(),
            guid: next(),
            itunes_version: next(),
            last_backup_date: f.date("Last Backup Date")?,
            installed_applications: f.strings("Installed Applications")?.unwrap_or_default(),
            extra: f.dict,
        })
    }

    /// The whole plist as a dictionary (typed fields plus `extra`), keys sorted like iTunes
    /// writes them. `Installed Applications` is written even when empty.
    pub fn to_dictionary(&self) -> Dictionary {
        let mut d = self.extra.clone();
        let strings = [
            &self.device_name,
            &self.display_name,
            &self.product_type,
            &self.product_version,
            &self.build_version,
            &self.serial_number,
            &self.unique_identifier,
            &self.target_identifier,
            &self.imei,
            &self.phone_number,
            &self.iccid,
            &self.meid,
            &self.guid,
            &self.itunes_version,
        ];
        for (key, value) in STRING_KEYS.iter().zip(strings) {
            put(&mut d, key, value.clone().map(Value::String));
        }
        put(
            &mut d,
            "Last Backup Date",
            self.last_backup_date.map(date_value),
        );
        d.insert(
            "Installed Applications".into(),
            Value::Array(
                self.installed_applications
                    .iter()
                    .map(|a| Value::String(a.clone()))
                    .collect(),
            ),
        );
        d.sort_keys();
        d
    }

    /// The serialized file (XML), as [`write`](Self::write) stores it.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        to_bytes(self.to_dictionary(), true, Path::new(FILE_NAME))
    }

    /// Writes the plist as XML to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = to_bytes(self.to_dictionary(), true, path)?;
        std::fs::write(path, bytes).at(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn sample() -> InfoPlist {
        let mut extra = Dictionary::new();
        extra.insert("Target Type".into(), Value::String("Device".into()));
        extra.insert(
            "iTunes Settings".into(),
            Value::Dictionary(Dictionary::new()),
        );
        InfoPlist {
            device_name: Some("iPhone".into()),
            product_type: Some("iPhone9,3".into()),
            product_version: Some("14.3".into()),
            unique_identifier: Some("1CB128EAFA77C5BE74283E9A3A2130AF36A3C059".into()),
            last_backup_date: Some(UNIX_EPOCH + Duration::from_secs(1_620_000_000)),
            installed_applications: vec!["com.google.Gmail".into()],
            extra,
            ..InfoPlist::default()
        }
    }

    #[test]
    fn xml_round_trip_keeps_unknown_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        let info = sample();
        info.write(&path).expect("write");
        let text = std::fs::read_to_string(&path).expect("xml");
        assert!(text.starts_with("<?xml"), "{text}");
        let back = InfoPlist::read(&path).expect("read");
        assert_eq!(back, info);
    }

    #[test]
    fn binary_is_accepted() {
        let bytes = to_bytes(sample().to_dictionary(), false, Path::new("x")).expect("bin");
        assert!(bytes.starts_with(b"bplist00"));
        assert_eq!(
            InfoPlist::from_bytes(&bytes, Path::new("x")).expect("parse"),
            sample()
        );
    }

    #[test]
    fn wrong_types_name_the_key() {
        let mut d = Dictionary::new();
        d.insert("Device Name".into(), Value::Integer(3u64.into()));
        let bytes = to_bytes(d, true, Path::new("x")).expect("xml");
        let msg = InfoPlist::from_bytes(&bytes, Path::new("/b/Info.plist"))
            .expect_err("type")
            .to_string();
        assert!(
            msg.contains("Info.plist: Device Name is not a string") && msg.contains("/b/"),
            "{msg}"
        );

        let mut d = Dictionary::new();
        d.insert(
            "Installed Applications".into(),
            Value::Array(vec![Value::Boolean(true)]),
        );
        let bytes = to_bytes(d, true, Path::new("x")).expect("xml");
        assert!(InfoPlist::from_bytes(&bytes, Path::new("x")).is_err());
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        let p = Path::new("/b/Info.plist");
        assert!(matches!(
            InfoPlist::from_bytes(b"hello", p),
            Err(Error::Plist { .. })
        ));
        let bytes = sample().to_bytes().expect("xml");
        assert!(InfoPlist::from_bytes(&bytes[..bytes.len() / 2], p).is_err());
        let arr = to_bytes_value(Value::Array(vec![]));
        assert!(matches!(
            InfoPlist::from_bytes(&arr, p),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn absurd_dates_are_clamped_not_a_panic() {
        for t in [
            UNIX_EPOCH + Duration::from_secs(u64::MAX / 4),
            UNIX_EPOCH - Duration::from_secs(1 << 50),
        ] {
            let info = InfoPlist {
                last_backup_date: Some(t),
                ..InfoPlist::default()
            };
            let bytes = info.to_bytes().expect("xml");
            let back = InfoPlist::from_bytes(&bytes, Path::new("x")).expect("parse");
            assert!(back.last_backup_date.is_some());
        }
        // A binary Info.plist may carry a year-(-100) date in an unknown key; XML cannot.
        let mut d = Dictionary::new();
        let old = UNIX_EPOCH - Duration::from_secs(65_000_000_000);
        d.insert("Odd".into(), Value::Array(vec![Value::Date(old.into())]));
        let bin = to_bytes(d, false, Path::new("x")).expect("binary");
        let info = InfoPlist::from_bytes(&bin, Path::new("x")).expect("parse");
        let xml = info.to_bytes().expect("xml");
        assert!(InfoPlist::from_bytes(&xml, Path::new("x")).is_ok());
    }

    fn to_bytes_value(v: Value) -> Vec<u8> {
        let mut out = Vec::new();
        v.to_writer_xml(&mut out).expect("xml");
        out
    }

    proptest::proptest! {
        #[test]
        fn prop_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = InfoPlist::from_bytes(&bytes, Path::new("x"));
        }
    }
}
