//! Remembered backup passwords, end to end through the binary: `iosnap password remember` /
//! `forget` against a real Secret Service (gnome-keyring on a private D-Bus session bus started
//! by this test, with its own HOME and XDG folders, so the developer's keyring is never
//! touched), and the opt-in owner-only file where there is no keyring.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Sim, library_cmd, small_spec};

const PASSWORD: &str = "keyring test pw";
const KEYRING_LOGIN_PASSWORD: &str = "login keyring pw";

fn have(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}

/// A private session bus and, once started, a gnome-keyring-daemon on it; both killed on drop.
struct Keyring {
    bus: Child,
    daemon: Option<Child>,
    address: String,
    home: PathBuf,
}

impl Keyring {
    /// Starts a session bus of our own (no service activation, so nothing else is started on
    /// it behind our back) listening on a socket under `dir`.
    fn start_bus(dir: &Path) -> Keyring {
        let home = dir.join("home");
        for d in ["home", "data", "config", "cache", "run"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::set_permissions(dir.join("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let conf = dir.join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.join("bus").display()
            ),
        )
        .unwrap();
        let mut bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon starts");
        // The address is printed once the bus accepts connections.
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_string();
        assert!(address.starts_with("unix:"), "bus address {address:?}");
        Keyring {
            bus,
            daemon: None,
            address,
            home,
        }
    }

    fn xdg(&self, c: &mut Command) {
        let base = self.home.parent().unwrap();
        c.env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("HOME", &self.home)
            .env("XDG_DATA_HOME", base.join("data"))
            .env("XDG_CONFIG_HOME", base.join("config"))
            .env("XDG_CACHE_HOME", base.join("cache"))
            .env("XDG_RUNTIME_DIR", base.join("run"));
    }

    /// Starts gnome-keyring's Secret Service with a fresh login keyring, unlocked with a
    /// password given on stdin, and waits until it owns `org.freedesktop.secrets`.
    fn start_keyring(&mut self) {
        let mut c = Command::new("gnome-keyring-daemon");
        c.args(["--foreground", "--unlock", "--components=secrets"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        self.xdg(&mut c);
        let mut child = c.spawn().expect("gnome-keyring-daemon starts");
        {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(KEYRING_LOGIN_PASSWORD.as_bytes()).unwrap();
        } // closed: end of the password
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new("dbus-send")
                .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("boolean true") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "gnome-keyring did not register the Secret Service within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything gnome-keyring stores on disk.
    fn stored_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        let dir = self.home.parent().unwrap().join("data/keyrings");
        for e in std::fs::read_dir(dir).unwrap() {
            all.extend(std::fs::read(e.unwrap().path()).unwrap());
        }
        all
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

/// A simulated phone with backup encryption on and one encrypted snapshot in the library.
fn encrypted_snapshot(t: &Path) -> (Sim, String) {
    let sim = Sim::start(&t.join("sim"), vec![small_spec(7, 8, 64 << 10, 1)]);
    let udid = sim.udids[0].clone();
    let out = library_cmd(t, Some(&sim.addr))
        .env("IOSNAP_NEW_PASSWORD", PASSWORD)
        .args(["encryption", "on", "--device", &udid])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = library_cmd(t, Some(&sim.addr))
        .args(["backup", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (sim, udid)
}

/// The binary with no password in its environment and no session bus unless `bus` says
/// which (never the developer's).
fn iosnap(t: &Path, bus: Option<&Keyring>) -> Command {
    let mut c = library_cmd(t, None);
    c.env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("IOSNAP_KEYRING")
        .env("XDG_RUNTIME_DIR", t.join("no-runtime-dir"))
        .stdin(Stdio::null());
    if let Some(k) = bus {
        k.xdg(&mut c);
    }
    c
}

fn run(c: &mut Command) -> Output {
    c.output().expect("iosnap runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

fn assert_fails_with(o: &Output, needles: &[&str]) {
    assert!(
        !o.status.success(),
        "unexpected success: {}",
        text(&o.stdout)
    );
    let err = text(&o.stderr);
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
    assert!(!err.contains(PASSWORD) && !text(&o.stdout).contains(PASSWORD));
}

#[test]
fn gnome_keyring_remember_use_forget() {
    let missing: Vec<_> = ["dbus-daemon", "gnome-keyring-daemon", "dbus-send"]
        .into_iter()
        .filter(|c| !have(c))
        .collect();
    if !missing.is_empty() {
        // scripts/test.sh installs them and sets this: there, a skip would hide a failure.
        assert!(
            std::env::var("IOSNAP_REQUIRE_KEYRING").as_deref() != Ok("1"),
            "a Secret Service is required (IOSNAP_REQUIRE_KEYRING=1) but {} is missing",
            missing.join(", ")
        );
        eprintln!(
            "\n\n*** SKIPPED gnome_keyring_remember_use_forget: {} not installed \
             (Debian packages dbus-daemon, dbus-bin, gnome-keyring; scripts/test.sh installs them) ***\n",
            missing.join(", ")
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (_sim, udid) = encrypted_snapshot(t);
    let snap = format!("{udid}@latest");
    let pwfile = t.join("pw");
    std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();

    // A session bus without a Secret Service on it: said clearly, nothing stored.
    let mut k = Keyring::start_bus(&t.join("keyring"));
    let o = run(iosnap(t, Some(&k))
        .env("IOSNAP_PASSWORD", PASSWORD)
        .args(["password", "remember", "--device", &udid]));
    assert_fails_with(
        &o,
        &["no OS keyring", "org.freedesktop.secrets", "--file-store"],
    );
    assert!(!t.join("config/passwords").exists());

    k.start_keyring();
    // Not remembered yet: a command that needs the password fails and says how to give it.
    let o = run(iosnap(t, Some(&k)).args(["ls", &snap]));
    assert_fails_with(&o, &["is encrypted", "iosnap password remember --device"]);

    // A wrong password is checked against the latest snapshot and not stored.
    let o = run(iosnap(t, Some(&k))
        .env("IOSNAP_PASSWORD", "wrong")
        .args(["password", "remember", "--device", &udid]));
    assert_fails_with(&o, &["does not open", &snap.replace("latest", "")]);

    let o = run(iosnap(t, Some(&k)).args([
        "password",
        "remember",
        "--device",
        &udid,
        "--password-file",
        pwfile.to_str().unwrap(),
    ]));
    assert_ok(&o);
    assert!(
        text(&o.stdout).contains("OS keyring"),
        "{}",
        text(&o.stdout)
    );
    assert!(
        text(&o.stderr).contains("the password opens"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        !t.join("config/passwords").exists(),
        "no silent file fallback"
    );
    let stored = k.stored_bytes();
    assert!(
        !stored
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes()),
        "the keyring file holds the password in clear"
    );

    // Now the encrypted snapshot opens without IOSNAP_PASSWORD, from the keyring …
    let o = run(iosnap(t, Some(&k)).args(["ls", &snap]));
    assert_ok(&o);
    assert!(!text(&o.stdout).is_empty());
    let o = run(iosnap(t, Some(&k)).args(["verify", &snap]));
    assert_ok(&o);
    // … and only from it: without the bus there is no password.
    let o = run(iosnap(t, None).args(["ls", &snap]));
    assert_fails_with(&o, &["is encrypted"]);
    // IOSNAP_PASSWORD still wins over the keyring.
    let o = run(iosnap(t, Some(&k))
        .env("IOSNAP_PASSWORD", "wrong")
        .args(["ls", &snap]));
    assert!(!o.status.success());

    // Forget: it is asked for again.
    let o = run(iosnap(t, Some(&k)).args(["password", "forget", "--device", &udid]));
    assert_ok(&o);
    assert!(
        text(&o.stdout).contains("removed the backup password"),
        "{}",
        text(&o.stdout)
    );
    let o = run(iosnap(t, Some(&k)).args(["ls", &snap]));
    assert_fails_with(&o, &["is encrypted"]);
    let o = run(iosnap(t, Some(&k)).args(["password", "forget", "--device", &udid]));
    assert_ok(&o);
    assert!(text(&o.stdout).contains("no backup password was remembered"));
    drop(k);
}

#[test]
fn without_a_keyring_only_an_explicit_file_store() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (sim, udid) = encrypted_snapshot(t);
    let snap = format!("{udid}@latest");

    // No session bus at all: said clearly, with the way out; nothing written anywhere.
    let o = run(iosnap(t, None)
        .env("IOSNAP_PASSWORD", PASSWORD)
        .args(["password", "remember", "--device", &udid]));
    assert_fails_with(
        &o,
        &["no OS keyring", "no D-Bus session bus", "--file-store"],
    );
    assert!(!t.join("config/passwords").exists());

    let o = run(iosnap(t, None).env("IOSNAP_PASSWORD", PASSWORD).args([
        "password",
        "remember",
        "--device",
        &udid,
        "--file-store",
    ]));
    assert_ok(&o);
    let file = t.join("config/passwords").join(udid.to_ascii_lowercase());
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(text(&o.stdout).contains(&file.display().to_string()));

    let o = run(iosnap(t, None).args(["ls", &snap]));
    assert_ok(&o);
    // A file others can read is refused, loudly.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(iosnap(t, None).args(["ls", &snap]));
    assert_fails_with(
        &o,
        &[
            "not using a remembered password",
            "mode 644",
            "is encrypted",
        ],
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Changing the password on the phone updates the remembered one (where it is kept), so
    // the next snapshot opens without asking; the older one keeps its old password.
    let list: serde_json::Value =
        serde_json::from_slice(&run(iosnap(t, None).args(["snapshots", "--json"])).stdout).unwrap();
    let first = list[0]["reference"].as_str().unwrap().to_string();
    let o = run(iosnap(t, None)
        .env("USBMUXD_SOCKET_ADDRESS", &sim.addr)
        .env("IOSNAP_PASSWORD", PASSWORD)
        .env("IOSNAP_NEW_PASSWORD", "a new pw")
        .args(["encryption", "change-password", "--device", &udid]));
    assert_ok(&o);
    assert!(
        text(&o.stdout).contains("updated the remembered backup password"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "a new pw");
    std::thread::sleep(Duration::from_millis(1100)); // snapshot names have 1 s resolution
    let o = run(iosnap(t, None)
        .env("USBMUXD_SOCKET_ADDRESS", &sim.addr)
        .args(["backup", "--json"]));
    assert_ok(&o);
    let o = run(iosnap(t, None).args(["ls", &snap]));
    assert_ok(&o);
    let o = run(iosnap(t, None).args(["ls", &first]));
    assert_fails_with(&o, &["wrong backup password"]);

    let o = run(iosnap(t, None).args(["password", "forget", "--device", &udid]));
    assert_ok(&o);
    assert!(!file.exists());
    let o = run(iosnap(t, None).args(["ls", &snap]));
    assert_fails_with(&o, &["is encrypted"]);
}
