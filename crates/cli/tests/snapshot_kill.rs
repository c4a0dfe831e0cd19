//! Crash safety of `iosnap snapshot` against the simulated iPhone: the binary is killed with
//! SIGKILL at pseudo-random moments of a backup into the library (clone, transfer, commit,
//! retention); afterwards every listed snapshot verifies, no staging folder is listed, and the
//! next backup succeeds. (The ≥100-trial version over the same commit/prune code, without a
//! device, is crates/store/tests/crash.rs.)

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

mod common;

use common::{Sim, small_spec};

fn listed(t: &Path, addr: &str) -> Vec<serde_json::Value> {
    let out = cmd(t, addr)
        .args(["snapshots", "--json"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).expect("json")
}

fn cmd(t: &Path, addr: &str) -> std::process::Command {
    common::library_cmd(t, Some(addr))
}

#[test]
fn kill_9_during_snapshot_backups() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let sim = Sim::start(&t.join("sim"), vec![small_spec(1, 20, 512 << 10, 2)]);
    let addr = sim.addr.clone();
    let udid = sim.udids[0].clone();
    // Retention deletes whatever it may, without asking: kills land in prune too.
    for (k, v) in [
        ("budget-bytes", "0"),
        ("retention-days", "0"),
        ("ask-before-delete", "off"),
    ] {
        let st = cmd(t, &addr)
            .args(["settings", "set", "--device", &udid, k, v])
            .stdout(Stdio::null())
            .status()
            .expect("settings");
        assert!(st.success());
    }
    let ok = cmd(t, &addr)
        .args(["backup", "-q"])
        .stdout(Stdio::null())
        .status()
        .expect("run");
    assert!(ok.success());

    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    for trial in 0..24 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        if trial % 4 == 0 {
            sim.device(&udid).churn(0.1).expect("churn");
        }
        let mut child = cmd(t, &addr)
            .args(["backup", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(seed % 700));
        let _ = child.kill();
        let _ = child.wait();
        for r in listed(t, &addr) {
            let name = r["name"].as_str().expect("name");
            assert!(!name.starts_with('.'), "{name}");
            let out = cmd(t, &addr)
                .args(["verify", r["reference"].as_str().expect("ref")])
                .output()
                .expect("verify");
            assert!(
                out.status.success(),
                "trial {trial}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    // The next backup succeeds and leaves no staging behind.
    let out = cmd(t, &addr)
        .args(["backup", "--json"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dev_dir = t.join("lib").join(&udid);
    let left: Vec<String> = std::fs::read_dir(&dev_dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".staging") || n.starts_with(".deleting"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!listed(t, &addr).is_empty());
    drop(sim);
}
