//! The binary against an in-process simulated iPhone: `devices`, `backup --to`, `encryption`,
//! `restore`, and the "no usbmuxd" message. The simulator is a real server on loopback; the
//! binary finds it through `USBMUXD_SOCKET_ADDRESS`, as any other tool would.

use assert_cmd::Command;
mod common;

use common::{Sim, small_spec};

/// The binary, pointed at the simulated usbmuxd, with no passwords in its environment.
fn iosnap(sim: &Sim) -> Command {
    let mut c = Command::cargo_bin("iosnap").expect("binary");
    c.env("USBMUXD_SOCKET_ADDRESS", &sim.addr)
        .env_remove("IOSNAP_PASSWORD")
        .env_remove("IOSNAP_NEW_PASSWORD");
    c
}

#[test]
fn devices_backup_encryption_and_verify_through_the_binary() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = Sim::start(&tmp.path().join("sim"), vec![small_spec(1, 30, 1 << 20, 4)]);
    let udid = sim.udids[0].clone();

    let out = iosnap(&sim).args(["devices", "--json"]).assert().success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).expect("json");
    assert_eq!(v[0]["udid"], udid.as_str());
    assert_eq!(v[0]["connection"], "usb");
    assert_eq!(v[0]["will_encrypt"], false);
    assert!(v[0]["error"].is_null(), "{v}");

    // A plain backup, no --device needed with one phone connected.
    let to = tmp.path().join("backups");
    let out = iosnap(&sim)
        .args(["backup", "--json", "--to"])
        .arg(&to)
        .assert()
        .success();
    let s: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).expect("json");
    assert_eq!(s["full"], true);
    assert_eq!(s["encrypted"], false);
    let folder = to.join(&udid);
    iosnap(&sim).arg("verify").arg(&folder).assert().success();

    // Encryption on (new password from the environment), then an encrypted backup.
    iosnap(&sim)
        .env("IOSNAP_NEW_PASSWORD", "s3cret")
        .args(["encryption", "on", "--device", &udid])
        .assert()
        .success();
    let out = iosnap(&sim)
        .args(["encryption", "status"])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("on"));
    let out = iosnap(&sim)
        .args(["backup", "--json", "--to"])
        .arg(&to)
        .assert()
        .success();
    let s: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).expect("json");
    assert_eq!(s["encrypted"], true);
    iosnap(&sim)
        .env("IOSNAP_PASSWORD", "s3cret")
        .args(["verify", "--deep"])
        .arg(&folder)
        .assert()
        .success();
    iosnap(&sim)
        .env("IOSNAP_PASSWORD", "wrong")
        .arg("verify")
        .arg(&folder)
        .assert()
        .code(1);

    // Wrong current password: refused by the phone, encryption stays on.
    iosnap(&sim)
        .env("IOSNAP_PASSWORD", "nope")
        .args(["encryption", "off"])
        .assert()
        .failure();
    iosnap(&sim)
        .env("IOSNAP_PASSWORD", "s3cret")
        .args(["encryption", "off"])
        .assert()
        .success();
    let out = iosnap(&sim)
        .args(["encryption", "status"])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("off"));

    // An unknown device is a clear error.
    let a = iosnap(&sim)
        .args(["backup", "--device", "0000", "--to"])
        .arg(&to)
        .assert()
        .code(1);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("not connected"));
}

#[test]
fn without_usbmuxd_the_error_says_how_to_start_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sock = tmp.path().join("no-such-socket");
    let mut c = Command::cargo_bin("iosnap").expect("binary");
    let a = c
        .env("USBMUXD_SOCKET_ADDRESS", format!("UNIX:{}", sock.display()))
        .arg("devices")
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("usbmuxd"), "{stderr}");
    assert!(stderr.contains("iosnap simulate"), "{stderr}");
}

#[test]
fn demo_runs_end_to_end() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut c = Command::cargo_bin("iosnap").expect("binary");
    let out = c
        .args(["demo", "--dir"])
        .arg(tmp.path())
        .env_remove("USBMUXD_SOCKET_ADDRESS")
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("sms.db decrypts to a SQLite database: yes"),
        "{text}"
    );
    assert!(text.contains("no problems"), "{text}");
}
