//! The binary against an in-process simulated iPhone: `devices`, `backup --to`, `encryption`,
//! `restore`, and the "no usbmuxd" message. The simulator is a real server on loopback; the
//! binary finds it through `USBMUXD_SOCKET_ADDRESS`, as any other tool would.

use std::path::Path;

use assert_cmd::Command;
use iosnap_simulator::{DeviceConfig, PhoneSpec, Simulator, SimulatorConfig};

/// A running simulator on its own runtime, and the address to give the binary.
struct Sim {
    rt: tokio::runtime::Runtime,
    sim: Option<Simulator>,
    addr: String,
    udid: String,
}

impl Sim {
    fn start(state: &Path) -> Sim {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let spec = PhoneSpec {
            files: 30,
            bytes: 1 << 20,
            apps: 4,
            ..PhoneSpec::default()
        };
        let mut dev = DeviceConfig::new(state.join("dev0"), spec);
        dev.kdf = Some((1000, 100));
        let cfg = SimulatorConfig {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            unix: None,
            devices: vec![dev],
        };
        let sim = rt
            .block_on(Simulator::start(cfg))
            .expect("simulator starts");
        let addr = sim.addr().to_string();
        let udid = sim.udids().remove(0);
        Sim {
            rt,
            sim: Some(sim),
            addr,
            udid,
        }
    }

    fn iosnap(&self) -> Command {
        let mut c = Command::cargo_bin("iosnap").expect("binary");
        c.env("USBMUXD_SOCKET_ADDRESS", &self.addr)
            .env_remove("IOSNAP_PASSWORD")
            .env_remove("IOSNAP_NEW_PASSWORD");
        c
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.rt.block_on(sim.shutdown());
        }
    }
}

#[test]
fn devices_backup_encryption_and_verify_through_the_binary() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = Sim::start(&tmp.path().join("sim"));

    let out = sim.iosnap().args(["devices", "--json"]).assert().success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).expect("json");
    assert_eq!(v[0]["udid"], sim.udid.as_str());
    assert_eq!(v[0]["connection"], "usb");
    assert_eq!(v[0]["will_encrypt"], false);
    assert!(v[0]["error"].is_null(), "{v}");

    // A plain backup, no --device needed with one phone connected.
    let to = tmp.path().join("backups");
    let out = sim
        .iosnap()
        .args(["backup", "--json", "--to"])
        .arg(&to)
        .assert()
        .success();
    let s: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).expect("json");
    assert_eq!(s["full"], true);
    assert_eq!(s["encrypted"], false);
    let folder = to.join(&sim.udid);
    sim.iosnap().arg("verify").arg(&folder).assert().success();

    // Encryption on (new password from the environment), then an encrypted backup.
    sim.iosnap()
        .env("IOSNAP_NEW_PASSWORD", "s3cret")
        .args(["encryption", "on", "--device", &sim.udid])
        .assert()
        .success();
    let out = sim
        .iosnap()
        .args(["encryption", "status"])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("on"));
    let out = sim
        .iosnap()
        .args(["backup", "--json", "--to"])
        .arg(&to)
        .assert()
        .success();
    let s: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).expect("json");
    assert_eq!(s["encrypted"], true);
    sim.iosnap()
        .env("IOSNAP_PASSWORD", "s3cret")
        .args(["verify", "--deep"])
        .arg(&folder)
        .assert()
        .success();
    sim.iosnap()
        .env("IOSNAP_PASSWORD", "wrong")
        .arg("verify")
        .arg(&folder)
        .assert()
        .code(1);

    // Wrong current password: refused by the phone, encryption stays on.
    sim.iosnap()
        .env("IOSNAP_PASSWORD", "nope")
        .args(["encryption", "off"])
        .assert()
        .failure();
    sim.iosnap()
        .env("IOSNAP_PASSWORD", "s3cret")
        .args(["encryption", "off"])
        .assert()
        .success();
    let out = sim
        .iosnap()
        .args(["encryption", "status"])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("off"));

    // An unknown device is a clear error.
    let a = sim
        .iosnap()
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
