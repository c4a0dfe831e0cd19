//! Invariant 4 with a third-party reader: an *encrypted* snapshot made by `iosnap snapshot`
//! after churn — most of its files hard links into the previous snapshot — is opened by
//! iphone_backup_decrypt 0.10.0 (venv from `scripts/peers-venv.sh`), and every file of the
//! phone comes out byte-identical. If the venv cannot be created the test FAILS;
//! `IOSNAP_SKIP_PEERS=1` skips it explicitly (printed).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use iosnap_format::EntryKind;
mod common;

use common::{Sim, small_spec};

const PASSWORD: &str = "snapshot peer pw";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn venv() -> Option<PathBuf> {
    if std::env::var("IOSNAP_SKIP_PEERS").is_ok_and(|v| v == "1") {
        eprintln!("IOSNAP_SKIP_PEERS=1: third-party peer check SKIPPED");
        return None;
    }
    let script = repo_root().join("scripts/peers-venv.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .expect("run script");
    assert!(
        out.status.success(),
        "{} failed (IOSNAP_SKIP_PEERS=1 skips): {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn cmd(t: &Path, addr: &str) -> Command {
    let mut c = common::library_cmd(t, Some(addr));
    c.env("IOSNAP_PASSWORD", PASSWORD)
        .env("IOSNAP_NEW_PASSWORD", PASSWORD);
    c
}

fn ok(c: &mut Command) -> String {
    let out = c.output().expect("run");
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn encrypted_shared_snapshot_opens_in_iphone_backup_decrypt() {
    let Some(venv) = venv() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let sim = Sim::start(&t.join("sim"), vec![small_spec(1, 30, 1 << 20, 3)]);
    let addr = sim.addr.clone();
    let udid = sim.udids[0].clone();

    ok(cmd(t, &addr).args(["encryption", "on", "--device", &udid]));
    ok(cmd(t, &addr).args(["backup", "-q"]));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sim.device(&udid).churn(0.05).expect("churn");
    let out = ok(cmd(t, &addr).args(["backup", "-q", "--json"]));
    let j: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(j["snapshot"]["encrypted"], true, "{j}");
    let snap = PathBuf::from(j["snapshot"]["path"].as_str().expect("path"));

    // Most data files are shared with the first snapshot (link count 2).
    let mut linked = 0;
    let mut total = 0;
    for bucket in std::fs::read_dir(&snap).expect("dir").flatten() {
        if bucket.file_type().expect("type").is_dir() {
            for f in std::fs::read_dir(bucket.path()).expect("bucket").flatten() {
                total += 1;
                if f.metadata().expect("meta").nlink() > 1 {
                    linked += 1;
                }
            }
        }
    }
    assert!(
        linked * 10 >= total * 7,
        "{linked} of {total} data files shared"
    );

    let out_dir = t.join("extracted");
    let res = Command::new(venv.join("bin/python"))
        .arg(repo_root().join("crates/format/tests/peers/ibd_extract.py"))
        .arg(&snap)
        .arg(&out_dir)
        .env("IOSNAP_PEER_PASSWORD", PASSWORD)
        .output()
        .expect("python");
    assert!(
        res.status.success(),
        "iphone_backup_decrypt failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let checked = sim.device(&udid).with_phone(|phone| {
        let mut n = 0;
        for f in phone.files().filter(|f| f.kind == EntryKind::File) {
            let got = std::fs::read(out_dir.join(&f.domain).join(&f.relative_path))
                .unwrap_or_else(|e| panic!("{}/{}: {e}", f.domain, f.relative_path));
            assert_eq!(
                got,
                phone.read(f).expect("phone file"),
                "{}/{}",
                f.domain,
                f.relative_path
            );
            n += 1;
        }
        n
    });
    assert!(checked > 30, "only {checked} files compared");
    drop(sim);
}
