//! Keychain exports: `passwords.csv|json` (website and app passwords) and `wifi.csv|json`.
//!
//! The output holds clear-text passwords, so it is written only into a private folder: a new
//! folder is created 0700, an existing one must already be private (no group/other access),
//! and every file is created 0600. The CLI also warns on the terminal.
//!
//! Secrets are exported losslessly: `password` is the secret when it is valid UTF-8, and
//! `password_hex` carries the exact bytes when it is not — or, in CSV, when the formula
//! neutraliser (see `text.rs`) had to prefix the cell with `'`, so the exact password is
//! always recoverable from the file.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use zeroize::Zeroize;

use super::text::{csv_row, neutralise_formula};
use super::{ExportReport, OutDir, ProgressFn, finish};
use crate::error::{Error, IoContext, Result};
use crate::keychain::{Entry, Keychain, Password, WifiNetwork};
use iosnap_format::keychain::{KeychainItem, Secret, SkippedItem, Table, class_name};

/// Which keychain dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum What {
    /// Website and app passwords.
    Passwords,
    /// Wi-Fi networks.
    Wifi,
}

/// One website or app password as exported (the JSON shape, documented in docs/json.md).
#[derive(Debug, Clone, Serialize)]
pub struct PasswordOut {
    /// `website` (internet password) or `app` (generic password).
    pub kind: &'static str,
    /// Websites: `https://server[:port][path]`.
    pub url: Option<String>,
    /// `srvr`.
    pub server: Option<String>,
    /// `ptcl`, Apple's four-character protocol code (`htps` …).
    pub protocol: Option<String>,
    /// `port`.
    pub port: Option<i64>,
    /// `path`.
    pub path: Option<String>,
    /// `svce` (apps).
    pub service: Option<String>,
    /// `acct`: the user name.
    pub account: Option<String>,
    /// The password when it is valid UTF-8.
    pub password: Option<String>,
    /// The password's exact bytes in hex when it is not valid UTF-8.
    pub password_hex: Option<String>,
    /// `labl`.
    pub label: Option<String>,
    /// `agrp`: which apps may read it.
    pub access_group: Option<String>,
    /// `kSecAttrAccessible…` name of the protection class.
    pub protection_class: &'static str,
    /// Synced through iCloud Keychain.
    pub synchronizable: bool,
    /// `cdat`, RFC 3339.
    pub created: Option<String>,
    /// `mdat`, RFC 3339.
    pub modified: Option<String>,
}

/// One Wi-Fi network as exported (the JSON shape, documented in docs/json.md).
#[derive(Debug, Clone, Serialize)]
pub struct WifiOut {
    /// The network name.
    pub ssid: String,
    /// The passphrase when it is valid UTF-8.
    pub password: Option<String>,
    /// The passphrase's exact bytes in hex when it is not valid UTF-8.
    pub password_hex: Option<String>,
    /// `kSecAttrAccessible…` name of the protection class.
    pub protection_class: &'static str,
    /// Synced through iCloud Keychain.
    pub synchronizable: bool,
    /// `cdat`, RFC 3339.
    pub created: Option<String>,
    /// `mdat`, RFC 3339.
    pub modified: Option<String>,
}

fn date(t: Option<f64>) -> Option<String> {
    t.filter(|t| t.is_finite())
        .map(|t| crate::time::rfc3339(t.floor() as i64))
        .filter(|s| !s.is_empty())
}

fn secret_fields(s: &Secret) -> (Option<String>, Option<String>) {
    match s.as_utf8() {
        Some(t) => (Some(t.to_string()), None),
        None => (None, Some(hex_of(s.as_bytes()))),
    }
}

fn hex_of(b: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn password_out(p: &Password) -> PasswordOut {
    let it: &KeychainItem = &p.item;
    let (password, password_hex) = secret_fields(&it.secret);
    PasswordOut {
        kind: p.kind.name(),
        url: p.url(),
        server: it.server.clone(),
        protocol: it.protocol.clone(),
        port: it.port,
        path: it.path.clone(),
        service: it.service.clone(),
        account: it.account.clone(),
        password,
        password_hex,
        label: it.label.clone(),
        access_group: it.access_group.clone(),
        protection_class: class_name(it.class),
        synchronizable: it.synchronizable,
        created: date(it.created),
        modified: date(it.modified),
    }
}

fn wifi_out(w: &WifiNetwork) -> WifiOut {
    let (password, password_hex) = secret_fields(&w.password);
    WifiOut {
        ssid: w.ssid.clone(),
        password,
        password_hex,
        protection_class: class_name(w.item.class),
        synchronizable: w.item.synchronizable,
        created: date(w.item.created),
        modified: date(w.item.modified),
    }
}

/// The CSV value of a secret and its hex column: hex is filled when the text is not UTF-8 or
/// when the neutraliser changed the cell, so the exact bytes are always in the file.
fn csv_secret(password: &Option<String>, hex: &Option<String>, raw: &Secret) -> (String, String) {
    match (password, hex) {
        (Some(p), _) => {
            let changed = matches!(neutralise_formula(p), std::borrow::Cow::Owned(_));
            (
                p.clone(),
                if changed {
                    hex_of(raw.as_bytes())
                } else {
                    String::new()
                },
            )
        }
        (None, Some(h)) => (String::new(), h.clone()),
        (None, None) => (String::new(), String::new()),
    }
}

const PASSWORD_HEADER: [&str; 16] = [
    "kind",
    "url",
    "server",
    "protocol",
    "port",
    "path",
    "service",
    "account",
    "password",
    "password_hex",
    "label",
    "access_group",
    "protection_class",
    "synchronizable",
    "created",
    "modified",
];

const WIFI_HEADER: [&str; 7] = [
    "ssid",
    "password",
    "password_hex",
    "protection_class",
    "synchronizable",
    "created",
    "modified",
];

/// Makes sure `out` is a private folder before clear-text passwords go into it: created 0700
/// when new; an existing folder that group or others can access is refused (we do not
/// silently change the mode of a folder the user chose).
pub(crate) fn private_out(out: &Path) -> Result<OutDir> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(md) = std::fs::metadata(out) {
        let mode = md.permissions().mode() & 0o777;
        if md.is_dir() && mode & 0o077 != 0 {
            return Err(Error::Io {
                path: out.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "refusing to write clear-text passwords into a folder other users can \
                         open (mode {mode:03o}): choose a new folder, or `chmod 700` this one"
                    ),
                ),
            });
        }
    }
    OutDir::create(out)
}

fn skip_line(s: &SkippedItem) -> String {
    s.to_string()
}

/// Writes `passwords.*` or `wifi.*`.
pub(crate) fn export(
    kc: &Keychain,
    what: What,
    fmt: &str,
    dir: &OutDir,
    progress: ProgressFn<'_>,
) -> Result<ExportReport> {
    let mut report = ExportReport::default();
    for p in kc.problems() {
        report.skip(format!("keychain: {p}"));
    }
    let total = kc.password_table_len();
    progress(0, total);
    let stem = match what {
        What::Passwords => "passwords",
        What::Wifi => "wifi",
    };
    let json = fmt == "json";
    let (path, mut w) = dir.file(&format!("{stem}.{}", if json { "json" } else { "csv" }))?;
    if json {
        w.write_all(b"[").at(&path)?;
    } else {
        let header: &[&str] = match what {
            What::Passwords => &PASSWORD_HEADER,
            What::Wifi => &WIFI_HEADER,
        };
        w.write_all(csv_row(header).as_bytes()).at(&path)?;
    }
    let mut seen = 0u64;
    for e in kc.entries() {
        let record: Option<Vec<u8>> = match (&e, what) {
            (Entry::Password(p), What::Passwords) => Some(if json {
                serde_json::to_vec(&password_out(p))?
            } else {
                let o = password_out(p);
                let s = |x: &Option<String>| x.clone().unwrap_or_default();
                let (pw, hex) = csv_secret(&o.password, &o.password_hex, &p.item.secret);
                csv_row(&[
                    o.kind.to_string(),
                    s(&o.url),
                    s(&o.server),
                    s(&o.protocol),
                    o.port.map(|p| p.to_string()).unwrap_or_default(),
                    s(&o.path),
                    s(&o.service),
                    s(&o.account),
                    pw,
                    hex,
                    s(&o.label),
                    s(&o.access_group),
                    o.protection_class.to_string(),
                    o.synchronizable.to_string(),
                    s(&o.created),
                    s(&o.modified),
                ])
                .into_bytes()
            }),
            (Entry::Wifi(wn), What::Wifi) => Some(if json {
                serde_json::to_vec(&wifi_out(wn))?
            } else {
                let o = wifi_out(wn);
                let s = |x: &Option<String>| x.clone().unwrap_or_default();
                let (pw, hex) = csv_secret(&o.password, &o.password_hex, &wn.password);
                csv_row(&[
                    o.ssid.clone(),
                    pw,
                    hex,
                    o.protection_class.to_string(),
                    o.synchronizable.to_string(),
                    s(&o.created),
                    s(&o.modified),
                ])
                .into_bytes()
            }),
            (Entry::Skipped(s), _)
                if matches!(s.table, Table::GenericPassword | Table::InternetPassword) =>
            {
                // A skipped genp item may be a Wi-Fi network or an app password: it is
                // reported in both exports, an inet item only with the passwords.
                if what == What::Passwords || s.table == Table::GenericPassword {
                    report.skip(skip_line(s));
                }
                None
            }
            _ => None,
        };
        let in_password_tables = match &e {
            Entry::Password(_) | Entry::Wifi(_) => true,
            Entry::Skipped(s) => {
                matches!(s.table, Table::GenericPassword | Table::InternetPassword)
            }
            Entry::Other(_) => false,
        };
        if in_password_tables {
            seen += 1;
        }
        if let Some(mut bytes) = record {
            if json {
                if report.records > 0 {
                    w.write_all(b",").at(&path)?;
                }
                w.write_all(b"\n").at(&path)?;
            }
            w.write_all(&bytes).at(&path)?;
            // The serialized record held a clear-text secret: do not leave it in freed memory.
            bytes.zeroize();
            report.records += 1;
        }
        if seen.is_multiple_of(100) {
            progress(seen, total);
        }
    }
    if json {
        w.write_all(b"\n]\n").at(&path)?;
    }
    finish(&path, w)?;
    report.files_written = 1;
    progress(total, total);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_out_refuses_shared_folders() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let shared = t.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = private_out(&shared).unwrap_err().to_string();
        assert!(e.contains("chmod 700"), "{e}");
        let new = t.path().join("new/deeper");
        let o = private_out(&new).unwrap();
        let mode = std::fs::metadata(o.root()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn csv_secret_keeps_exact_bytes() {
        let raw = Secret::new(b"=1+2".to_vec());
        let (pw, hex) = csv_secret(&Some("=1+2".into()), &None, &raw);
        assert_eq!(pw, "=1+2", "the neutraliser runs in csv_row, not here");
        assert_eq!(hex, "3d312b32");
        let raw = Secret::new(b"plain".to_vec());
        assert_eq!(
            csv_secret(&Some("plain".into()), &None, &raw),
            ("plain".into(), String::new())
        );
        let raw = Secret::new(vec![0xff, 0x00]);
        assert_eq!(
            csv_secret(&None, &Some("ff00".into()), &raw),
            (String::new(), "ff00".into())
        );
    }
}
