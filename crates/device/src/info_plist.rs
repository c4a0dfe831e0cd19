//! Building `<UDID>/Info.plist`, the host-written description of a backup that iTunes, Finder,
//! idevicebackup2 and forensic tools read (and that restore needs for `Applications`).
//!
//! The phone never writes this file; the host assembles it before each backup from lockdown
//! values, the installed-app list (installation_proxy Browse), app icons (springboardservices)
//! and a few iTunes files read over AFC, with the key set LIMD and pymobiledevice3 write
//! (protocol.md §1.11). The `idevice` crate has no builder for it.

use std::collections::BTreeMap;
use std::time::SystemTime;

/// The iTunes files LIMD copies into `iTunes Files` (read over AFC from `/iTunes_Control/iTunes/`).
pub const ITUNES_FILES: [&str; 11] = [
    "ApertureAlbumPrefs",
    "IC-Info.sidb",
    "IC-Info.sidv",
    "PhotosFolderAlbums",
    "PhotosFolderName",
    "PhotosFolderPrefs",
    "VoiceMemos.plist",
    "iPhotoAlbumPrefs",
    "iTunesApplicationIDs",
    "iTunesPrefs",
    "iTunesPrefs.plist",
];

/// Everything gathered from the phone to build Info.plist.
#[derive(Debug, Clone, Default)]
pub struct InfoPlistInputs {
    /// Lockdown GetValue with no domain and no key.
    pub lockdown: plist::Dictionary,
    /// Lockdown domain `com.apple.iTunes`, if the phone returned it.
    pub itunes_settings: Option<plist::Dictionary>,
    /// `com.apple.mobile.iTunes` / `MinITunesVersion`.
    pub min_itunes_version: Option<String>,
    /// installation_proxy Browse results (user apps).
    pub apps: Vec<plist::Dictionary>,
    /// bundle id → icon PNG (from springboardservices; missing icons are fine).
    pub icons: BTreeMap<String, Vec<u8>>,
    /// iTunes file name → content (only the files that exist on the phone).
    pub itunes_files: BTreeMap<String, Vec<u8>>,
    /// `/Books/iBooksData2.plist`, if present.
    pub ibooks_data: Option<Vec<u8>>,
    /// Time of this backup.
    pub date: Option<SystemTime>,
    /// 32 upper-case hex characters identifying this backup run.
    pub guid: String,
}

/// Builds the Info.plist dictionary (written as XML, as LIMD does).
pub fn build(inputs: &InfoPlistInputs) -> plist::Dictionary {
    let lv = |k: &str| inputs.lockdown.get(k).and_then(|v| v.as_string());
    let mut d = plist::Dictionary::new();
    let mut installed = Vec::new();
    let mut applications = plist::Dictionary::new();
    for app in &inputs.apps {
        let Some(id) = app.get("CFBundleIdentifier").and_then(|v| v.as_string()) else {
            continue;
        };
        installed.push(plist::Value::String(id.to_string()));
        let sinf = app.get("ApplicationSINF").and_then(|v| v.as_data());
        let meta = app.get("iTunesMetadata").and_then(|v| v.as_data());
        if let (Some(sinf), Some(meta)) = (sinf, meta) {
            let mut a = plist::Dictionary::new();
            a.insert("ApplicationSINF".into(), plist::Value::Data(sinf.to_vec()));
            a.insert("iTunesMetadata".into(), plist::Value::Data(meta.to_vec()));
            if let Some(png) = inputs.icons.get(id) {
                a.insert("PlaceholderIcon".into(), plist::Value::Data(png.clone()));
            }
            applications.insert(id.to_string(), plist::Value::Dictionary(a));
        }
    }
    d.insert(
        "Applications".into(),
        plist::Value::Dictionary(applications),
    );
    let copy = |d: &mut plist::Dictionary, to: &str, from: &str| {
        if let Some(v) = lv(from) {
            d.insert(to.into(), v.into());
        }
    };
    copy(&mut d, "Build Version", "BuildVersion");
    copy(&mut d, "Device Name", "DeviceName");
    copy(&mut d, "Display Name", "DeviceName");
    d.insert("GUID".into(), inputs.guid.clone().into());
    copy(&mut d, "ICCID", "IntegratedCircuitCardIdentity");
    copy(&mut d, "IMEI", "InternationalMobileEquipmentIdentity");
    d.insert(
        "Installed Applications".into(),
        plist::Value::Array(installed),
    );
    d.insert(
        "Last Backup Date".into(),
        plist::Value::Date(inputs.date.unwrap_or_else(SystemTime::now).into()),
    );
    copy(&mut d, "MEID", "MobileEquipmentIdentifier");
    copy(&mut d, "Phone Number", "PhoneNumber");
    copy(&mut d, "Product Name", "ProductName");
    copy(&mut d, "Product Type", "ProductType");
    copy(&mut d, "Product Version", "ProductVersion");
    copy(&mut d, "Serial Number", "SerialNumber");
    if let Some(udid) = lv("UniqueDeviceID") {
        d.insert("Target Identifier".into(), udid.into());
        d.insert("Unique Identifier".into(), udid.to_ascii_uppercase().into());
    }
    d.insert("Target Type".into(), "Device".into());
    if let Some(b) = &inputs.ibooks_data {
        d.insert("iBooks Data 2".into(), plist::Value::Data(b.clone()));
    }
    let mut files = plist::Dictionary::new();
    for (name, data) in &inputs.itunes_files {
        files.insert(name.clone(), plist::Value::Data(data.clone()));
    }
    d.insert("iTunes Files".into(), plist::Value::Dictionary(files));
    d.insert(
        "iTunes Settings".into(),
        plist::Value::Dictionary(inputs.itunes_settings.clone().unwrap_or_default()),
    );
    d.insert(
        "iTunes Version".into(),
        inputs
            .min_itunes_version
            .clone()
            .unwrap_or_else(|| "10.0.1".into())
            .into(),
    );
    d
}

/// Serializes as XML (the format LIMD and iTunes write).
pub fn to_xml(d: &plist::Dictionary) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing a dictionary of plain values to memory cannot fail.
    let _ = plist::Value::Dictionary(d.clone()).to_writer_xml(&mut out);
    out
}

/// A fresh GUID: 32 random upper-case hex characters.
pub fn new_guid() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode_upper(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_limd_key_set() {
        let mut lockdown = plist::Dictionary::new();
        for (k, v) in [
            ("UniqueDeviceID", "00008030-001d35093ef2402e"),
            ("DeviceName", "Alice's iPhone"),
            ("ProductType", "iPhone15,2"),
            ("ProductVersion", "17.5"),
            ("BuildVersion", "21F79"),
            ("SerialNumber", "F2LXXXX"),
            ("InternationalMobileEquipmentIdentity", "356789012345678"),
            ("PhoneNumber", "+1 555 0100"),
        ] {
            lockdown.insert(k.into(), v.into());
        }
        let mut app = plist::Dictionary::new();
        app.insert("CFBundleIdentifier".into(), "net.whatsapp.WhatsApp".into());
        app.insert("ApplicationSINF".into(), plist::Value::Data(vec![1, 2]));
        app.insert("iTunesMetadata".into(), plist::Value::Data(vec![3]));
        let mut bare = plist::Dictionary::new();
        bare.insert("CFBundleIdentifier".into(), "com.example.nosinf".into());
        let mut icons = BTreeMap::new();
        icons.insert(
            "net.whatsapp.WhatsApp".to_string(),
            vec![0x89, b'P', b'N', b'G'],
        );
        let inputs = InfoPlistInputs {
            lockdown,
            apps: vec![app, bare],
            icons,
            guid: new_guid(),
            ..Default::default()
        };
        let d = build(&inputs);
        assert_eq!(
            d.get("Unique Identifier").unwrap().as_string(),
            Some("00008030-001D35093EF2402E")
        );
        assert_eq!(
            d.get("Target Identifier").unwrap().as_string(),
            Some("00008030-001d35093ef2402e")
        );
        assert_eq!(d.get("Target Type").unwrap().as_string(), Some("Device"));
        assert_eq!(
            d.get("Display Name").unwrap().as_string(),
            Some("Alice's iPhone")
        );
        assert_eq!(d.get("IMEI").unwrap().as_string(), Some("356789012345678"));
        assert_eq!(d.get("iTunes Version").unwrap().as_string(), Some("10.0.1"));
        assert_eq!(
            d.get("Installed Applications")
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let apps = d.get("Applications").unwrap().as_dictionary().unwrap();
        assert_eq!(apps.len(), 1);
        assert!(
            apps.get("net.whatsapp.WhatsApp")
                .unwrap()
                .as_dictionary()
                .unwrap()
                .contains_key("PlaceholderIcon")
        );
        assert!(d.get("ICCID").is_none());
        assert_eq!(d.get("GUID").unwrap().as_string().unwrap().len(), 32);
        let xml = to_xml(&d);
        assert!(xml.starts_with(b"<?xml"));
        let back = plist::Value::from_reader_xml(&xml[..]).unwrap();
        assert_eq!(back.as_dictionary().unwrap().len(), d.len());
    }
}
