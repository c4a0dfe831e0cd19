//! End to end through the simulated iPhone and the binary: the phone exports its keychain into
//! each backup (encrypted for the backup keybag, empty in plain backups), and `iosnap export
//! passwords|wifi` gets back exactly the recoverable records, with the clear-text warning and
//! private file modes; a plain backup gets a clear "needs an encrypted backup" message.

use std::os::unix::fs::PermissionsExt;

use assert_cmd::Command;
mod common;

use common::{Sim, small_spec};
use iosnap_phone::keychain::RecordKind;

fn iosnap(sim: &Sim) -> Command {
    let mut c = Command::cargo_bin("iosnap").expect("binary");
    c.env("USBMUXD_SOCKET_ADDRESS", &sim.addr)
        .env_remove("IOSNAP_PASSWORD")
        .env_remove("IOSNAP_NEW_PASSWORD");
    c
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn passwords_and_wifi_from_a_simulated_encrypted_backup() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = Sim::start(&tmp.path().join("sim"), vec![small_spec(3, 20, 1 << 20, 4)]);
    let udid = sim.udids[0].clone();
    let to = tmp.path().join("backups");
    let folder = to.join(&udid);

    // Plain backup: no keychain to read, a clear message, nothing written.
    iosnap(&sim)
        .args(["backup", "--to"])
        .arg(&to)
        .assert()
        .success();
    let out = tmp.path().join("plain-out");
    let res = iosnap(&sim)
        .args(["export", "passwords"])
        .arg(&folder)
        .arg("--out")
        .arg(&out)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&res.get_output().stderr).to_string();
    assert!(err.contains("not encrypted"), "{err}");
    assert!(!out.exists());

    // Encrypted backup.
    iosnap(&sim)
        .env("IOSNAP_NEW_PASSWORD", "s3cret")
        .args(["encryption", "on", "--device", &udid])
        .assert()
        .success();
    iosnap(&sim)
        .args(["backup", "--to"])
        .arg(&to)
        .assert()
        .success();

    let kc = sim.device(&udid).with_phone(|p| p.keychain());
    let want_pw: Vec<_> = kc
        .records
        .iter()
        .filter(|r| matches!(r.kind, RecordKind::Website | RecordKind::App) && r.recoverable())
        .cloned()
        .collect();
    let want_wifi: Vec<_> = kc.wifi().filter(|r| r.recoverable()).cloned().collect();

    let out = tmp.path().join("pw");
    let res = iosnap(&sim)
        .env("IOSNAP_PASSWORD", "s3cret")
        .args(["export", "passwords"])
        .arg(&folder)
        .arg("--out")
        .arg(&out)
        .args(["--format", "json", "--json"])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&res.get_output().stderr).to_string();
    assert!(err.contains("CLEAR-TEXT PASSWORDS"), "{err}");
    let report: serde_json::Value =
        serde_json::from_slice(&res.get_output().stdout).expect("report json");
    assert_eq!(report["records"], want_pw.len());
    assert_eq!(mode(&out), 0o700);
    assert_eq!(mode(&out.join("passwords.json")), 0o600);
    let got: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.join("passwords.json")).expect("read"))
            .expect("json");
    assert_eq!(got.len(), want_pw.len());
    for (g, w) in got.iter().zip(&want_pw) {
        assert_eq!(g["account"].as_str(), w.account.as_deref());
        assert_eq!(g["server"].as_str(), w.server.as_deref());
        assert_eq!(g["service"].as_str(), w.service.as_deref());
        match std::str::from_utf8(&w.secret) {
            Ok(s) => assert_eq!(g["password"].as_str(), Some(s)),
            Err(_) => assert!(g["password"].is_null() && g["password_hex"].is_string()),
        }
    }

    let out = tmp.path().join("wifi");
    iosnap(&sim)
        .env("IOSNAP_PASSWORD", "s3cret")
        .args(["export", "wifi"])
        .arg(&folder)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let csv = std::fs::read_to_string(out.join("wifi.csv")).expect("csv");
    assert_eq!(csv.lines().count(), want_wifi.len() + 1, "{csv}");
    for w in &want_wifi {
        let pw = std::str::from_utf8(&w.secret).expect("utf8 wifi password");
        assert!(csv.contains(pw), "{pw} missing");
    }

    // `iosnap datasets` counts them.
    let res = iosnap(&sim)
        .env("IOSNAP_PASSWORD", "s3cret")
        .args(["datasets", "--json"])
        .arg(&folder)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&res.get_output().stdout).expect("json");
    let row = |k: &str| {
        v["datasets"]
            .as_array()
            .expect("array")
            .iter()
            .find(|d| d["key"] == k)
            .cloned()
            .expect("row")
    };
    assert_eq!(row("passwords")["count"], want_pw.len());
    assert_eq!(row("wifi")["count"], want_wifi.len());

    // An incremental encrypted backup keeps a readable keychain (same keybag, same bytes).
    iosnap(&sim)
        .args(["backup", "--to"])
        .arg(&to)
        .assert()
        .success();
    let out = tmp.path().join("wifi2");
    iosnap(&sim)
        .env("IOSNAP_PASSWORD", "s3cret")
        .args(["export", "wifi", "--format", "json"])
        .arg(&folder)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let got: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.join("wifi.json")).expect("read")).expect("json");
    assert_eq!(got.len(), want_wifi.len());
}
