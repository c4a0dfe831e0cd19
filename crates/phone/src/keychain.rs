//! The phone's keychain: website passwords (`inet`), app passwords (`genp`), Wi-Fi networks
//! (`genp`, service `AirPort`, account = SSID), a certificate and a key, and some
//! `…ThisDeviceOnly` items — and its export into `KeychainDomain/keychain-backup.plist`.
//!
//! # How it reaches a backup
//!
//! On iOS the backup agent exports the keychain into `/var/Keychains/keychain-backup.plist` as
//! a backup starts (`MBKeychainPlugin`, "Exporting keychain to …"), re-encrypting every item
//! for the backup keybag. The simulated phone does the same in [`crate::Phone::export_keychain`]:
//! for an encrypted backup each item becomes a version 3 blob (DER attributes, AES-256-GCM),
//! its key wrapped with the backup's class key — except ThisDeviceOnly items, whose key is
//! wrapped with a device key that never leaves the phone, as on real hardware. A plain backup
//! gets the file with empty tables: no password ever leaves the phone unencrypted.
//!
//! Everything is deterministic from the seed (item keys included), so the same backup keybag
//! gives byte-identical files and incremental backups see the file unchanged.

use iosnap_format::BackupKeys;
use iosnap_format::crypto::{self, FileKey};
use iosnap_format::keychain::{self, AttrValue, BackupEntry, Table};
use rand::{Rng, RngCore};

use crate::rng;

/// Domain of the keychain file.
pub const DOMAIN: &str = keychain::DOMAIN;
/// Relative path of the keychain file.
pub const RELATIVE_PATH: &str = keychain::RELATIVE_PATH;

/// What a record is, for checking exports (`passwords` = websites + apps, `wifi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A website password saved by Safari (`inet`, access group `com.apple.cfnetwork`).
    Website,
    /// An app's password or token (`genp`).
    App,
    /// A Wi-Fi network's passphrase (`genp`, service `AirPort`).
    Wifi,
    /// A certificate (`cert`).
    Certificate,
    /// A private key (`keys`).
    Key,
}

/// One keychain item as the phone holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeychainRecord {
    /// What it is.
    pub kind: RecordKind,
    /// Its table.
    pub table: Table,
    /// Protection class (6–8 recoverable from an encrypted backup, 9–11 ThisDeviceOnly).
    pub class: u32,
    /// Row id (in `v_PersistentRef`).
    pub rowid: u64,
    /// `svce`.
    pub service: Option<String>,
    /// `acct`.
    pub account: Option<String>,
    /// `srvr`.
    pub server: Option<String>,
    /// `ptcl` (four-character code).
    pub protocol: Option<String>,
    /// `port`.
    pub port: Option<i64>,
    /// `path`.
    pub path: Option<String>,
    /// `labl`.
    pub label: Option<String>,
    /// `agrp`.
    pub access_group: String,
    /// `sync`.
    pub synchronizable: bool,
    /// `cdat`, Unix seconds.
    pub created: i64,
    /// `mdat`, Unix seconds.
    pub modified: i64,
    /// `v_Data`.
    pub secret: Vec<u8>,
}

impl KeychainRecord {
    /// Whether an encrypted backup makes it recoverable (not ThisDeviceOnly).
    pub fn recoverable(&self) -> bool {
        !keychain::is_this_device_only(self.class)
    }

    /// The DER attributes a phone stores for this item (secret included as `v_Data`).
    pub fn attributes(&self) -> Vec<(String, AttrValue)> {
        let mut v: Vec<(String, AttrValue)> = Vec::new();
        let mut s = |k: &str, x: &Option<String>| {
            if let Some(x) = x {
                v.push((k.into(), AttrValue::String(x.clone())));
            }
        };
        s("svce", &self.service);
        s("srvr", &self.server);
        s("ptcl", &self.protocol);
        s("path", &self.path);
        s("labl", &self.label);
        if let Some(a) = &self.account {
            // Apple stores acct as a blob attribute; strings are what apps give it.
            v.push(("acct".into(), AttrValue::String(a.clone())));
        }
        if let Some(p) = self.port {
            v.push(("port".into(), AttrValue::Integer(p)));
        }
        v.push(("agrp".into(), AttrValue::String(self.access_group.clone())));
        if let Some(p) = keychain::accessible_of_class(self.class) {
            v.push(("pdmn".into(), AttrValue::String(p.into())));
        }
        v.push(("cdat".into(), AttrValue::Date(self.created as f64)));
        v.push(("mdat".into(), AttrValue::Date(self.modified as f64)));
        v.push((
            "sync".into(),
            AttrValue::Integer(i64::from(self.synchronizable)),
        ));
        v.push(("tomb".into(), AttrValue::Integer(0)));
        v.push(("musr".into(), AttrValue::Data(Vec::new())));
        v.push(("v_Data".into(), AttrValue::Data(self.secret.clone())));
        v
    }
}

/// The phone's keychain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keychain {
    /// Every item, in table order (`genp`, `inet`, `cert`, `keys`), rowids ascending.
    pub records: Vec<KeychainRecord>,
}

/// Saved websites: (server, account, path, port).
const WEBSITES: &[(&str, &str, &str, i64)] = &[
    ("accounts.example.com", "alice@example.com", "", 443),
    ("www.shop.example", "alice.martin", "/login", 443),
    ("mail.example.org", "alice", "", 0),
    ("forum.example.net", "Älice_ß", "/ucp.php", 443),
    ("bank.example.co.uk", "12345678", "", 443),
    ("intranet.corp.example", "amartin", "/", 8443),
];

/// App items: (service, account, access group).
const APPS: &[(&str, &str, &str)] = &[
    (
        "com.example.music.auth",
        "alice@example.com",
        "ABCDE12345.com.example.music",
    ),
    ("SessionToken", "user-81723", "FGHIJ67890.com.example.chat"),
    (
        "com.example.notes.sync",
        "alice",
        "KLMNO24680.com.example.notes",
    ),
    ("api-key", "default", "PQRST13579.com.example.weather"),
];

/// Wi-Fi networks with a passphrase (open ones have none and are not in the keychain).
const WIFI: &[&str] = &[
    "Home-5G",
    "Office Guest",
    "Café Wi‑Fi ☕",
    "=cmd|'/c calc'!A1",
];

/// A password of `len` characters from the rng (letters, digits, symbols).
fn password(r: &mut impl Rng, len: usize) -> Vec<u8> {
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_.!#%";
    (0..len)
        .map(|_| CHARS[r.gen_range(0..CHARS.len())])
        .collect()
}

impl Keychain {
    /// The keychain of the phone with `seed`, whose items were saved over the year before
    /// `epoch` (Unix seconds).
    pub fn generate(seed: u64, epoch: i64) -> Keychain {
        let mut r = rng::rng(seed, "keychain", 0);
        let mut records = Vec::new();
        let mut rowid = 0u64;
        let when = |r: &mut rand_chacha::ChaCha8Rng| {
            let created = epoch - r.gen_range(30 * 86_400..365 * 86_400);
            let modified = created + r.gen_range(0..20 * 86_400);
            (created, modified.min(epoch))
        };
        let base = |kind, table, class, rowid, (created, modified), secret| KeychainRecord {
            kind,
            table,
            class,
            rowid,
            service: None,
            account: None,
            server: None,
            protocol: None,
            port: None,
            path: None,
            label: None,
            access_group: String::new(),
            synchronizable: false,
            created,
            modified,
            secret,
        };
        // genp: apps, then Wi-Fi, then ThisDeviceOnly app tokens.
        for (i, (svce, acct, agrp)) in APPS.iter().enumerate() {
            rowid += 1;
            let secret = if i == 1 {
                // A binary token: not UTF-8, exported losslessly.
                let mut b = vec![0u8; 24];
                r.fill_bytes(&mut b);
                b[0] = 0xff;
                b
            } else if i == 3 {
                b"=HYPERLINK(\"http://evil.example\")".to_vec()
            } else {
                password(&mut r, 16)
            };
            let mut rec = base(
                RecordKind::App,
                Table::GenericPassword,
                if i == 0 { 6 } else { 7 },
                rowid,
                when(&mut r),
                secret,
            );
            rec.service = Some((*svce).into());
            rec.account = Some((*acct).into());
            rec.access_group = (*agrp).into();
            records.push(rec);
        }
        for (i, ssid) in WIFI.iter().enumerate() {
            rowid += 1;
            let mut rec = base(
                RecordKind::Wifi,
                Table::GenericPassword,
                if i % 2 == 0 { 7 } else { 8 },
                rowid,
                when(&mut r),
                password(&mut r, 12),
            );
            rec.service = Some("AirPort".into());
            rec.account = Some((*ssid).into());
            rec.label = Some((*ssid).into());
            rec.access_group = "apple".into();
            rec.synchronizable = i == 0;
            records.push(rec);
        }
        for (i, (svce, acct)) in [
            ("com.apple.account.IdentityServices.token", "ids-device"),
            ("com.example.bank.pin", "alice"),
        ]
        .iter()
        .enumerate()
        {
            rowid += 1;
            let mut rec = base(
                RecordKind::App,
                Table::GenericPassword,
                if i == 0 { 10 } else { 9 },
                rowid,
                when(&mut r),
                password(&mut r, 20),
            );
            rec.service = Some((*svce).into());
            rec.account = Some((*acct).into());
            rec.access_group = if i == 0 {
                "com.apple.identityservices".into()
            } else {
                "UVWXY11223.com.example.bank".into()
            };
            records.push(rec);
        }
        // inet: websites (Safari AutoFill), one ThisDeviceOnly.
        for (i, (srvr, acct, path, port)) in WEBSITES.iter().enumerate() {
            rowid += 1;
            let mut rec = base(
                RecordKind::Website,
                Table::InternetPassword,
                if i == WEBSITES.len() - 1 { 11 } else { 6 },
                rowid,
                when(&mut r),
                password(&mut r, 14),
            );
            rec.server = Some((*srvr).into());
            rec.account = Some((*acct).into());
            rec.protocol = Some("htps".into());
            rec.port = Some(*port);
            rec.path = (!path.is_empty()).then(|| (*path).to_string());
            rec.label = Some(format!("{srvr} ({acct})"));
            rec.access_group = "com.apple.cfnetwork".into();
            rec.synchronizable = i % 2 == 0;
            records.push(rec);
        }
        // cert and keys.
        rowid += 1;
        let mut cert = base(
            RecordKind::Certificate,
            Table::Certificate,
            6,
            rowid,
            when(&mut r),
            {
                let mut b = vec![0x30, 0x82, 0x01, 0x00];
                b.resize(260, 0);
                r.fill_bytes(&mut b[4..]);
                b
            },
        );
        cert.label = Some("Example Corp VPN".into());
        cert.access_group = "com.apple.identities".into();
        records.push(cert);
        rowid += 1;
        let mut key = base(
            RecordKind::Key,
            Table::Key,
            10,
            rowid,
            when(&mut r),
            password(&mut r, 32),
        );
        key.label = Some("Example Corp VPN".into());
        key.access_group = "com.apple.identities".into();
        records.push(key);
        Keychain { records }
    }

    /// Website passwords (`inet`).
    pub fn websites(&self) -> impl Iterator<Item = &KeychainRecord> {
        self.records
            .iter()
            .filter(|r| r.kind == RecordKind::Website)
    }

    /// App passwords (`genp`, not Wi-Fi).
    pub fn apps(&self) -> impl Iterator<Item = &KeychainRecord> {
        self.records.iter().filter(|r| r.kind == RecordKind::App)
    }

    /// Wi-Fi networks (`genp`, service `AirPort`).
    pub fn wifi(&self) -> impl Iterator<Item = &KeychainRecord> {
        self.records.iter().filter(|r| r.kind == RecordKind::Wifi)
    }

    /// The `keychain-backup.plist` of a backup made with `keys`: items encrypted for the backup
    /// keybag when the backup is encrypted, empty tables for a plain backup. `seed` derives the
    /// per-item keys and the phone's device key, so the output is a pure function of its inputs.
    pub fn backup_plist(&self, seed: u64, keys: &BackupKeys) -> iosnap_format::Result<Vec<u8>> {
        if !keys.encrypted {
            return keychain::encode_backup_plist(&[], None);
        }
        let device_key = derived_key(seed, "keychain-device-key", 0);
        let mut entries = Vec::with_capacity(self.records.len());
        for rec in &self.records {
            let bulk = derived_key(seed, "keychain-item-key", rec.rowid);
            let data = if rec.recoverable() {
                keychain::encrypt_item(&rec.attributes(), rec.class, &keys.class_keys, &bulk)?
            } else {
                let wrapped = crypto::aes_wrap(device_key.as_bytes(), bulk.as_bytes())?;
                keychain::seal_item(&rec.attributes(), rec.class, &wrapped, &bulk)?
            };
            entries.push(BackupEntry {
                table: rec.table,
                data,
                persistent_ref: keychain::persistent_ref(rec.table, rec.rowid),
            });
        }
        keychain::encode_backup_plist(&entries, Some(&uuid_string(&keys.keybag.uuid)))
    }
}

/// A 32-byte key derived from (seed, label, index).
fn derived_key(seed: u64, label: &str, index: u64) -> FileKey {
    let mut r = rng::rng(seed, label, index);
    let mut b = [0u8; 32];
    r.fill_bytes(&mut b);
    // 32 bytes always make a key; the fallback is unreachable but keeps this panic-free.
    FileKey::from_bytes(&b).unwrap_or_else(FileKey::random)
}

/// A keybag UUID as the lowercase 8-4-4-4-12 string iOS writes to `keybag-uuid`.
fn uuid_string(b: &[u8]) -> String {
    let h = hex::encode(b);
    if h.len() != 32 {
        return h;
    }
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use iosnap_format::keychain::KeychainBackup;
    use std::path::Path;

    #[test]
    fn export_decrypts_back_to_the_records() {
        let kc = Keychain::generate(7, 1_732_000_000);
        assert!(kc.websites().count() >= 5);
        assert!(kc.wifi().count() >= 3);
        assert!(kc.records.iter().any(|r| !r.recoverable()));
        let enc = iosnap_format::writer::Encryption::new(
            b"pw",
            iosnap_format::KdfParams { dpic: 1, iter: 1 },
        );
        let keys = BackupKeys::generate(Some(&enc)).expect("keys");
        let bytes = kc.backup_plist(7, &keys).expect("plist");
        assert_eq!(
            bytes,
            kc.backup_plist(7, &keys).expect("again"),
            "deterministic"
        );
        let parsed = KeychainBackup::parse(&bytes, Path::new("kc")).expect("parse");
        assert_eq!(parsed.len(), kc.records.len());
        let mut got = 0;
        for (res, rec) in parsed.items(&keys.class_keys).zip(&kc.records) {
            match res {
                Ok(item) => {
                    assert!(rec.recoverable());
                    assert_eq!(item.secret.as_bytes(), rec.secret.as_slice());
                    assert_eq!(item.account, rec.account);
                    assert_eq!(item.service, rec.service);
                    assert_eq!(item.server, rec.server);
                    assert_eq!(item.class, rec.class);
                    assert_eq!(item.persistent_ref.and_then(|p| p.rowid), Some(rec.rowid));
                    got += 1;
                }
                Err(skip) => assert!(!rec.recoverable(), "{skip}"),
            }
        }
        assert_eq!(got, kc.records.iter().filter(|r| r.recoverable()).count());
        // A plain backup's keychain has no items.
        let plain = BackupKeys::generate(None).expect("plain keys");
        let empty = kc.backup_plist(7, &plain).expect("plain");
        assert!(
            KeychainBackup::parse(&empty, Path::new("kc"))
                .expect("parse")
                .is_empty()
        );
    }

    #[test]
    fn uuid_strings() {
        assert_eq!(
            uuid_string(&[0xab; 16]),
            "abababab-abab-abab-abab-abababababab"
        );
        assert_eq!(uuid_string(&[1, 2]), "0102");
    }
}

#[cfg(test)]
mod phone_tests {
    use crate::{Phone, PhoneSpec};

    #[test]
    fn export_keychain_into_the_listing() {
        let spec = PhoneSpec {
            files: 5,
            bytes: 1 << 16,
            apps: 3,
            ..PhoneSpec::default()
        };
        let t = tempfile::tempdir().expect("tmp");
        let mut p = Phone::generate_in(&spec, t.path()).expect("phone");
        let f = p
            .find(super::DOMAIN, super::RELATIVE_PATH)
            .expect("row")
            .clone();
        let before = p.read(&f).expect("read");
        let plain = iosnap_format::BackupKeys::generate(None).expect("keys");
        assert!(
            !p.export_keychain(&plain).expect("plain export"),
            "plain = unchanged"
        );
        let enc = iosnap_format::writer::Encryption::new(
            b"pw",
            iosnap_format::KdfParams { dpic: 1, iter: 1 },
        );
        let keys = iosnap_format::BackupKeys::generate(Some(&enc)).expect("keys");
        assert!(p.export_keychain(&keys).expect("export"));
        assert!(
            !p.export_keychain(&keys).expect("again"),
            "same keys, same bytes"
        );
        let f = p
            .find(super::DOMAIN, super::RELATIVE_PATH)
            .expect("row")
            .clone();
        let after = p.read(&f).expect("read");
        assert_eq!(after.len() as u64, f.meta.size);
        assert_ne!(after, before);
        assert!(p.export_keychain(&plain).expect("back to plain"));
        let f = p
            .find(super::DOMAIN, super::RELATIVE_PATH)
            .expect("row")
            .clone();
        assert_eq!(p.read(&f).expect("read"), before);
    }
}
