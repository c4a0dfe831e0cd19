//! Passwords and Wi-Fi out of an encrypted backup's keychain, checked record by record against
//! what the simulated phone put in (phone + backup writer, the same code the simulator runs),
//! plus plain backups, wrong passwords, hostile keychain files and CSV formula injection.
#![allow(clippy::unwrap_used)] // tests may panic

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use iosnap_datasets::Error;
use iosnap_datasets::counts::count_all;
use iosnap_datasets::export::{Dataset, ExportReport, export};
use iosnap_format::keychain::{self as fk, AttrValue, BackupEntry, Table};
use iosnap_format::writer::{BackupWriter, Encryption, WriterOptions};
use iosnap_format::{Backup, FileMeta, KdfParams};
use iosnap_phone::keychain::{Keychain, KeychainRecord, RecordKind};

const SEED: u64 = 7;
const PASSWORD: &[u8] = b"correct horse";

fn meta() -> FileMeta {
    FileMeta {
        mode: 0o100400,
        mtime: 1_700_000_000,
        protection_class: 1,
        ..FileMeta::default()
    }
}

fn options(encrypted: bool) -> WriterOptions {
    WriterOptions {
        encryption: encrypted.then(|| {
            Encryption::new(
                PASSWORD,
                KdfParams {
                    dpic: 1000,
                    iter: 10,
                },
            )
        }),
        ..WriterOptions::default()
    }
}

/// A backup holding the phone's keychain exported with the writer's own keys, as the
/// simulator does; `content` overrides the file (hostile cases), `None` content = no file.
fn backup(root: &Path, encrypted: bool, content: Option<Option<Vec<u8>>>) -> PathBuf {
    let dir = root.join(if encrypted { "enc" } else { "plain" });
    let mut w = BackupWriter::create(&dir, options(encrypted)).unwrap();
    let bytes = match content {
        None => Some(
            Keychain::generate(SEED, 1_732_000_000)
                .backup_plist(SEED, w.keys())
                .unwrap(),
        ),
        Some(c) => c,
    };
    if let Some(b) = bytes {
        w.add_file(fk::DOMAIN, fk::RELATIVE_PATH, meta(), &b[..])
            .unwrap();
    }
    w.finish().unwrap();
    dir
}

fn open(dir: &Path) -> Backup {
    let mut b = Backup::open(dir).unwrap();
    b.unlock(PASSWORD).unwrap();
    b
}

fn run(b: &Backup, d: Dataset, fmt: &str, out: &Path) -> iosnap_datasets::Result<ExportReport> {
    export(b, d, Some(fmt), out, &mut |_, _| {})
}

/// A minimal RFC 4180 reader (quoted fields, doubled quotes, CRLF).
fn csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

fn as_maps(rows: Vec<Vec<String>>) -> Vec<BTreeMap<String, String>> {
    let mut it = rows.into_iter();
    let header = it.next().unwrap();
    it.map(|r| header.iter().cloned().zip(r).collect())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The secret as the export shows it: (password, password_hex).
fn shown(r: &KeychainRecord) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(&r.secret) {
        Ok(s) => (Some(s.to_string()), None),
        Err(_) => (None, Some(hex(&r.secret))),
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn passwords_and_wifi_record_by_record() {
    let t = tempfile::tempdir().unwrap();
    let b = open(&backup(t.path(), true, None));
    let phone = Keychain::generate(SEED, 1_732_000_000);
    let want_pw: Vec<&KeychainRecord> = phone
        .records
        .iter()
        .filter(|r| matches!(r.kind, RecordKind::Website | RecordKind::App) && r.recoverable())
        .collect();
    let want_wifi: Vec<&KeychainRecord> = phone.wifi().filter(|r| r.recoverable()).collect();
    let device_only_pw = phone
        .records
        .iter()
        .filter(|r| matches!(r.table, Table::GenericPassword | Table::InternetPassword))
        .filter(|r| !r.recoverable())
        .count() as u64;
    assert!(want_pw.len() >= 8 && want_wifi.len() >= 3 && device_only_pw >= 2);

    // passwords.json: every recoverable website/app record, field by field.
    let out = t.path().join("pw-json");
    let rep = run(&b, Dataset::Passwords, "json", &out).unwrap();
    assert_eq!(rep.records, want_pw.len() as u64);
    assert_eq!(rep.skipped_count, device_only_pw, "{:?}", rep.skipped);
    assert!(
        rep.skipped
            .iter()
            .all(|s| s.contains("cannot be decrypted from a backup")),
        "{:?}",
        rep.skipped
    );
    assert_eq!(mode(&out), 0o700);
    assert_eq!(mode(&out.join("passwords.json")), 0o600);
    let got: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.join("passwords.json")).unwrap()).unwrap();
    assert_eq!(got.len(), want_pw.len());
    for (g, w) in got.iter().zip(&want_pw) {
        let s = |k: &str| g[k].as_str().map(str::to_string);
        assert_eq!(
            s("kind").as_deref(),
            Some(if w.kind == RecordKind::Website {
                "website"
            } else {
                "app"
            })
        );
        assert_eq!(s("account"), w.account);
        assert_eq!(s("service"), w.service);
        assert_eq!(s("server"), w.server);
        assert_eq!(s("protocol"), w.protocol);
        assert_eq!(g["port"].as_i64(), w.port);
        assert_eq!(s("path"), w.path);
        assert_eq!(s("label"), w.label);
        assert_eq!(s("access_group"), Some(w.access_group.clone()));
        assert_eq!((s("password"), s("password_hex")), shown(w));
        assert_eq!(g["synchronizable"].as_bool(), Some(w.synchronizable));
        assert_eq!(
            s("created"),
            Some(iosnap_datasets::time::rfc3339(w.created))
        );
        assert_eq!(
            s("modified"),
            Some(iosnap_datasets::time::rfc3339(w.modified))
        );
        assert_eq!(
            s("protection_class").as_deref(),
            Some(fk::class_name(w.class))
        );
        if w.kind == RecordKind::Website {
            let url = s("url").unwrap();
            assert!(
                url.starts_with(&format!("https://{}", w.server.as_deref().unwrap())),
                "{url}"
            );
        }
    }
    assert!(
        got.iter().any(|g| g["password_hex"].is_string()),
        "the binary token is exported as hex"
    );

    // passwords.csv: same records; formula-looking cells neutralised, exact bytes in hex.
    let out = t.path().join("pw-csv");
    run(&b, Dataset::Passwords, "csv", &out).unwrap();
    let rows = as_maps(csv(
        &std::fs::read_to_string(out.join("passwords.csv")).unwrap()
    ));
    assert_eq!(rows.len(), want_pw.len());
    for (r, w) in rows.iter().zip(&want_pw) {
        assert_eq!(Some(&r["account"]), w.account.as_ref());
        match shown(w) {
            (Some(p), None) if p.starts_with('=') => {
                assert_eq!(r["password"], format!("'{p}"), "neutralised");
                assert_eq!(r["password_hex"], hex(&w.secret), "exact bytes kept");
            }
            (Some(p), None) => {
                assert_eq!(r["password"], p);
                assert_eq!(r["password_hex"], "");
            }
            (None, Some(h)) => {
                assert_eq!(r["password"], "");
                assert_eq!(r["password_hex"], h);
            }
            other => panic!("{other:?}"),
        }
    }
    for row in &rows {
        for v in row.values() {
            assert!(
                !v.starts_with(['=', '@', '+']),
                "a cell starts a formula: {v:?}"
            );
        }
    }

    // wifi.json and wifi.csv.
    let out = t.path().join("wifi");
    let rep = run(&b, Dataset::Wifi, "json", &out).unwrap();
    assert_eq!(rep.records, want_wifi.len() as u64);
    let got: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.join("wifi.json")).unwrap()).unwrap();
    for (g, w) in got.iter().zip(&want_wifi) {
        assert_eq!(g["ssid"].as_str(), w.account.as_deref());
        assert_eq!(g["password"].as_str(), std::str::from_utf8(&w.secret).ok());
        assert_eq!(g["synchronizable"].as_bool(), Some(w.synchronizable));
    }
    run(&b, Dataset::Wifi, "csv", &out).unwrap();
    assert_eq!(mode(&out.join("wifi.csv")), 0o600);
    let rows = as_maps(csv(&std::fs::read_to_string(out.join("wifi.csv")).unwrap()));
    assert_eq!(rows.len(), want_wifi.len());
    for (r, w) in rows.iter().zip(&want_wifi) {
        let ssid = w.account.clone().unwrap();
        if ssid.starts_with('=') {
            assert_eq!(r["ssid"], format!("'{ssid}"));
        } else {
            assert_eq!(r["ssid"], ssid);
        }
        assert_eq!(r["password"].as_bytes(), w.secret.as_slice());
    }

    // Counts.
    let counts = count_all(&b).unwrap();
    let c = |k: &str| counts.iter().find(|c| c.key == k).unwrap().clone();
    assert_eq!(c("passwords").count, Some(want_pw.len() as u64));
    assert_eq!(c("wifi").count, Some(want_wifi.len() as u64));
    assert!(c("passwords").counted.contains("ThisDeviceOnly"));
}

#[test]
fn plain_backup_needs_encryption_and_wrong_password_fails() {
    let t = tempfile::tempdir().unwrap();
    let plain = Backup::open(&backup(t.path(), false, None)).unwrap();
    let out = t.path().join("out");
    let e = run(&plain, Dataset::Passwords, "csv", &out).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Backup(iosnap_format::Error::KeychainNeedsEncryption { .. })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("encrypted"), "{e}");
    assert!(!out.exists(), "nothing written for a plain backup");
    let counts = count_all(&plain).unwrap();
    let pw = counts.iter().find(|c| c.key == "passwords").unwrap();
    assert!(!pw.present);
    assert!(pw.error.as_deref().unwrap().contains("encrypted backups"));

    let enc = backup(t.path(), true, None);
    let mut b = Backup::open(&enc).unwrap();
    assert!(matches!(
        b.unlock(b"wrong"),
        Err(iosnap_format::Error::WrongPassword)
    ));
    // Locked: a clear "password required", never garbage.
    assert!(matches!(
        run(&b, Dataset::Wifi, "csv", &t.path().join("locked")),
        Err(Error::Backup(iosnap_format::Error::PasswordRequired))
    ));
}

#[test]
fn hostile_keychain_files() {
    let t = tempfile::tempdir().unwrap();
    // No keychain file at all.
    let b = open(&backup(&t.path().join("none"), true, Some(None)));
    assert!(matches!(
        run(&b, Dataset::Passwords, "json", &t.path().join("o1")),
        Err(Error::Absent { .. })
    ));
    // Garbage instead of a plist: a clear error naming the file.
    let b = open(&backup(
        &t.path().join("garbage"),
        true,
        Some(Some(b"bplist00\xff\xff garbage".to_vec())),
    ));
    let e = run(&b, Dataset::Passwords, "json", &t.path().join("o2")).unwrap_err();
    assert!(e.to_string().contains("keychain-backup.plist"), "{e}");

    // Wrong types, truncated and huge blobs, one good item: the good one is exported, every
    // bad one is a counted skip with its reason.
    let dir = t.path().join("mixed");
    let mut w = BackupWriter::create(&dir, options(true)).unwrap();
    let good = fk::encrypt_item(
        &[
            ("acct".into(), AttrValue::String("ok".into())),
            ("srvr".into(), AttrValue::String("ok.example".into())),
            ("v_Data".into(), AttrValue::Data(b"fine".to_vec())),
        ],
        6,
        &w.keys().class_keys,
        &iosnap_format::FileKey::random(),
    )
    .unwrap();
    let mut truncated = good.clone();
    truncated.truncate(30);
    let mut flipped = good.clone();
    let n = flipped.len();
    flipped[n - 1] ^= 0x55;
    let entries = vec![
        BackupEntry {
            table: Table::InternetPassword,
            data: good,
            persistent_ref: fk::persistent_ref(Table::InternetPassword, 1),
        },
        BackupEntry {
            table: Table::InternetPassword,
            data: truncated,
            persistent_ref: vec![],
        },
        BackupEntry {
            table: Table::InternetPassword,
            data: flipped,
            persistent_ref: vec![1],
        },
        BackupEntry {
            table: Table::InternetPassword,
            data: vec![3; fk::MAX_BLOB_LEN + 10],
            persistent_ref: vec![],
        },
    ];
    let bytes = fk::encode_backup_plist(&entries, Some("not-the-uuid")).unwrap();
    let mut v = plist::Value::from_reader(std::io::Cursor::new(&bytes)).unwrap();
    let d = v.as_dictionary_mut().unwrap();
    d.insert("genp".into(), plist::Value::Integer(5.into()));
    if let Some(plist::Value::Array(a)) = d.get_mut("inet") {
        a.push(plist::Value::String("not an item".into()));
    }
    let mut hostile = Vec::new();
    v.to_writer_binary(&mut hostile).unwrap();
    w.add_file(fk::DOMAIN, fk::RELATIVE_PATH, meta(), &hostile[..])
        .unwrap();
    w.finish().unwrap();
    let b = open(&dir);
    let out = t.path().join("o3");
    let rep = run(&b, Dataset::Passwords, "json", &out).unwrap();
    assert_eq!(rep.records, 1);
    // 4 bad items + the genp table of the wrong type.
    assert_eq!(rep.skipped_count, 5, "{:?}", rep.skipped);
    let all = rep.skipped.join("\n");
    for needle in [
        "truncated",
        "damaged",
        "more than",
        "not a dictionary",
        "genp",
    ] {
        assert!(all.contains(needle), "{needle} missing in {all}");
    }
    let got: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.join("passwords.json")).unwrap()).unwrap();
    assert_eq!(got[0]["password"], "fine");
    assert_eq!(got[0]["url"], "https://ok.example");
}

/// The keychain the phone puts into an encrypted backup, decrypted by an independent Python
/// implementation (iphone_backup_decrypt for the backup and keybag, GCM and DER written from
/// the specifications in tests/peers/keychain_dump.py): proves the wire format, not just that
/// our reader agrees with our writer.
#[test]
fn an_independent_reader_decrypts_the_simulated_keychain() {
    let venv = std::env::var_os("IOSNAP_PEERS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers-venv"));
    let python = venv.join("bin/python");
    if !python.exists() {
        if std::env::var("IOSNAP_SKIP_PEERS").as_deref() == Ok("1") {
            eprintln!("IOSNAP_SKIP_PEERS=1: independent keychain check SKIPPED");
            return;
        }
        panic!(
            "the peers venv is missing ({}): run scripts/peers-venv.sh, or set \
             IOSNAP_SKIP_PEERS=1 to skip the independent keychain check",
            python.display()
        );
    }
    let t = tempfile::tempdir().unwrap();
    let dir = backup(t.path(), true, None);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/keychain_dump.py");
    let o = std::process::Command::new(python)
        .arg(&script)
        .arg(&dir)
        .arg(std::str::from_utf8(PASSWORD).unwrap())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "keychain_dump.py failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let phone = Keychain::generate(SEED, 1_732_000_000);
    assert_eq!(got.len(), phone.records.len());
    for (g, w) in got.iter().zip(&phone.records) {
        assert_eq!(g["table"], w.table.name());
        assert_eq!(g["class"], w.class);
        if !w.recoverable() {
            assert_eq!(g["skipped"], "ThisDeviceOnly");
            continue;
        }
        assert_eq!(g["version"], 3);
        let a = &g["attrs"];
        assert_eq!(a["v_Data"]["hex"], hex(&w.secret));
        assert_eq!(a["acct"].as_str(), w.account.as_deref());
        assert_eq!(a["svce"].as_str(), w.service.as_deref());
        assert_eq!(a["srvr"].as_str(), w.server.as_deref());
        assert_eq!(a["port"].as_i64(), w.port);
        assert_eq!(a["agrp"], w.access_group.as_str());
        assert_eq!(
            a["pdmn"].as_str(),
            iosnap_format::keychain::accessible_of_class(w.class)
        );
        // GeneralizedTime of the creation date, as Apple's der_plist writes it.
        let created = chrono_like(w.created);
        assert_eq!(a["cdat"]["date"], created);
    }
}

/// `YYYYMMDDhhmmssZ` of a Unix time, from chrono's RFC 3339 (not from the keychain code).
fn chrono_like(unix: i64) -> String {
    let s = iosnap_datasets::time::rfc3339(unix); // "2024-02-29T12:34:56Z"
    s.replace(['-', ':', 'T'], "")
}
