//! Passwords and Wi-Fi networks from the keychain of an **encrypted** backup
//! (`KeychainDomain/keychain-backup.plist`, decrypted by [`iosnap_format::keychain`]).
//!
//! * [`Keychain::open`] reads the file of an unlocked encrypted backup. A plain backup gives
//!   [`iosnap_format::Error::KeychainNeedsEncryption`] (wrapped in [`Error::Backup`]): iOS
//!   never lets a password leave the phone in a plain backup.
//! * [`Keychain::entries`] decrypts the items one at a time and sorts each into a
//!   [`Password`] (website = `inet`, app = `genp`), a [`WifiNetwork`] (`genp` of service
//!   `AirPort`, the account is the SSID), something else (certificates, keys), or a
//!   [`SkippedItem`] with its reason — ThisDeviceOnly items are bound to the phone's hardware
//!   key and are counted, never silently dropped.

use iosnap_format::keychain::{
    self, KeychainBackup, KeychainItem, Secret, SkipReason, SkippedItem, Table,
};
use iosnap_format::{Backup, ClassKeys};

use crate::error::{Error, Result};

/// Human name of the dataset in messages.
pub const DATASET: &str = "Keychain";

/// A website or app password.
#[derive(Debug, Clone, PartialEq)]
pub struct Password {
    /// `Website` for internet passwords (Safari AutoFill), `App` for generic ones.
    pub kind: PasswordKind,
    /// The decrypted item with every attribute.
    pub item: KeychainItem,
}

/// Which kind of password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordKind {
    /// An `inet` item: server, protocol, port, path, account.
    Website,
    /// A `genp` item other than Wi-Fi: service and account chosen by the app.
    App,
}

impl PasswordKind {
    /// `website` / `app`, as exported.
    pub fn name(self) -> &'static str {
        match self {
            PasswordKind::Website => "website",
            PasswordKind::App => "app",
        }
    }
}

impl Password {
    /// The address people know a website password by: `https://server[:port][path]` (the
    /// protocol's four-character code mapped to its URL scheme), `None` for app passwords.
    pub fn url(&self) -> Option<String> {
        let server = self.item.server.as_deref()?;
        let scheme = match self.item.protocol.as_deref().map(str::trim) {
            Some("htps") | None => "https",
            Some("http") => "http",
            Some("ftp") | Some("ftps") => "ftp",
            Some("imap") => "imap",
            Some("smtp") => "smtp",
            Some("pop3") => "pop",
            Some(other) => other,
        };
        let default_port = match scheme {
            "https" => 443,
            "http" => 80,
            _ => 0,
        };
        let port = match self.item.port {
            Some(p) if p > 0 && p != default_port => format!(":{p}"),
            _ => String::new(),
        };
        let path = self.item.path.as_deref().unwrap_or("");
        Some(format!("{scheme}://{server}{port}{path}"))
    }
}

/// A Wi-Fi network's passphrase.
#[derive(Debug, Clone, PartialEq)]
pub struct WifiNetwork {
    /// The network name (the item's account).
    pub ssid: String,
    /// The passphrase.
    pub password: Secret,
    /// The decrypted item with every attribute.
    pub item: KeychainItem,
}

/// One keychain entry, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A website or app password.
    Password(Password),
    /// A Wi-Fi network.
    Wifi(WifiNetwork),
    /// A certificate, key or other item (not exported by `passwords`/`wifi`).
    Other(KeychainItem),
    /// Counted but not decrypted, with the reason.
    Skipped(SkippedItem),
}

/// Counts over the whole keychain, for `iosnap datasets`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Website and app passwords decrypted.
    pub passwords: u64,
    /// Wi-Fi networks decrypted.
    pub wifi: u64,
    /// Certificates, keys and other items decrypted.
    pub other: u64,
    /// Items bound to the phone (ThisDeviceOnly), not recoverable from a backup.
    pub this_device_only: u64,
    /// Items skipped for any other reason (damaged, unsupported format).
    pub skipped: u64,
}

/// The keychain of an unlocked encrypted backup.
#[derive(Debug)]
pub struct Keychain {
    kc: KeychainBackup,
    keys: ClassKeys,
}

impl Keychain {
    /// Reads the keychain of `backup`. Errors: [`Error::Absent`] when the backup has no
    /// keychain file; [`Error::Backup`] wrapping `KeychainNeedsEncryption` for a plain backup,
    /// `PasswordRequired` when it is still locked, or a corrupt/unreadable file.
    pub fn open(backup: &Backup) -> Result<Keychain> {
        let kc = match KeychainBackup::from_backup(backup) {
            Ok(kc) => kc,
            Err(iosnap_format::Error::NotFound { .. }) => {
                return Err(Error::Absent {
                    dataset: DATASET,
                    domain: keychain::DOMAIN.into(),
                    relative_path: keychain::RELATIVE_PATH.into(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let keys = backup
            .class_keys()
            .cloned()
            .ok_or(iosnap_format::Error::PasswordRequired)?;
        Ok(Keychain { kc, keys })
    }

    /// Wraps an already parsed keychain and the class keys that decrypt it (tests, tools).
    pub fn from_parts(kc: KeychainBackup, keys: ClassKeys) -> Keychain {
        Keychain { kc, keys }
    }

    /// Structural problems of the file (tables of the wrong type …).
    pub fn problems(&self) -> &[String] {
        self.kc.problems()
    }

    /// Every entry, decrypted lazily in file order and classified.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.kc.items(&self.keys).map(|r| match r {
            Err(s) => Entry::Skipped(s),
            Ok(item) if item.is_wifi() => Entry::Wifi(WifiNetwork {
                ssid: item.account.clone().unwrap_or_default(),
                password: item.secret.clone(),
                item,
            }),
            Ok(item) => match item.table {
                Table::InternetPassword => Entry::Password(Password {
                    kind: PasswordKind::Website,
                    item,
                }),
                Table::GenericPassword => Entry::Password(Password {
                    kind: PasswordKind::App,
                    item,
                }),
                Table::Certificate | Table::Key => Entry::Other(item),
            },
        })
    }

    /// Number of entries in the file (decryptable or not) of the tables that hold passwords
    /// and Wi-Fi networks (`genp`, `inet`).
    pub fn password_table_len(&self) -> u64 {
        (self.kc.count(Table::GenericPassword) + self.kc.count(Table::InternetPassword)) as u64
    }

    /// Decrypts everything once and counts.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for e in self.entries() {
            match e {
                Entry::Password(_) => s.passwords += 1,
                Entry::Wifi(_) => s.wifi += 1,
                Entry::Other(_) => s.other += 1,
                Entry::Skipped(SkippedItem {
                    reason: SkipReason::ThisDeviceOnly { .. },
                    ..
                }) => s.this_device_only += 1,
                Entry::Skipped(_) => s.skipped += 1,
            }
        }
        s
    }
}

/// The `passwords` and `wifi` rows of `iosnap datasets`. A plain backup reports them absent
/// with the reason (an encrypted backup is needed); a decryption problem is the rows' error.
pub fn counts(backup: &Backup) -> Vec<crate::counts::DatasetCount> {
    let location = format!("{}/{}", keychain::DOMAIN, keychain::RELATIVE_PATH);
    let row = |key, counted: &str| crate::counts::DatasetCount {
        key,
        location: location.clone(),
        present: false,
        count: None,
        counted: counted.to_string(),
        exportable: true,
        error: None,
    };
    let mut pw = row("passwords", "website and app passwords (keychain)");
    let mut wifi = row("wifi", "Wi-Fi networks (keychain)");
    match Keychain::open(backup) {
        Ok(kc) => {
            let s = kc.summary();
            for (r, n) in [(&mut pw, s.passwords), (&mut wifi, s.wifi)] {
                r.present = true;
                r.count = Some(n);
            }
            if s.this_device_only + s.skipped > 0 {
                let note = format!(
                    "; {} items bound to the phone (ThisDeviceOnly) and {} damaged or unsupported \
                     items not counted",
                    s.this_device_only, s.skipped
                );
                pw.counted.push_str(&note);
                wifi.counted.push_str(&note);
            }
        }
        Err(Error::Absent { .. }) => {}
        Err(Error::Backup(iosnap_format::Error::KeychainNeedsEncryption { .. })) => {
            let why = "only in encrypted backups (this backup is not encrypted)".to_string();
            pw.error = Some(why.clone());
            wifi.error = Some(why);
        }
        Err(e) => {
            pw.present = true;
            wifi.present = true;
            pw.error = Some(e.to_string());
            wifi.error = Some(e.to_string());
        }
    }
    vec![pw, wifi]
}
