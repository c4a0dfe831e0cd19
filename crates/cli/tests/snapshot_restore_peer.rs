//! Invariant 4 with a real peer on the restore side: Debian's idevicebackup2 restores a
//! snapshot of the library (most of its files hard links into the previous snapshot) into a
//! fresh simulated phone. Phone B then holds every file of phone A, and the snapshot is
//! byte-for-byte unchanged (a restore must not write into a shared snapshot).
//! If idevicebackup2 is missing the test FAILS with how to install it; `IOSNAP_SKIP_PEERS=1`
//! skips it explicitly (printed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use iosnap_format::EntryKind;
mod common;

use common::{Sim, small_spec};

fn idevicebackup2() -> Option<PathBuf> {
    if std::env::var("IOSNAP_SKIP_PEERS").is_ok_and(|v| v == "1") {
        eprintln!("IOSNAP_SKIP_PEERS=1: idevicebackup2 restore check SKIPPED");
        return None;
    }
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("idevicebackup2"))
        .find(|p| p.is_file());
    assert!(
        found.is_some(),
        "idevicebackup2 is missing: apt-get install -y libimobiledevice-utils \
         (or IOSNAP_SKIP_PEERS=1 to skip)"
    );
    found
}

/// Every file under `dir` (following the top-level symlink), path → bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("prefix").to_path_buf();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

#[test]
fn idevicebackup2_restores_a_shared_snapshot_into_a_fresh_phone() {
    let Some(bin) = idevicebackup2() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = Sim::start(
        &tmp.path().join("sim"),
        vec![
            small_spec(11, 40, 1 << 20, 4),
            small_spec(12, 40, 1 << 20, 4),
        ],
    );
    let addr = sim.addr.clone();
    let (a, b) = (sim.udids[0].clone(), sim.udids[1].clone());
    let iosnap = || common::library_cmd(tmp.path(), Some(&addr));
    let ok = |c: &mut Command| {
        let out = c.output().expect("run");
        assert!(
            out.status.success(),
            "{c:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // Two snapshots of A with changes in between: the second shares most files.
    ok(iosnap().args(["backup", "-q", "--yes", "--device", &a]));
    sim.device(&a).churn(0.1).expect("churn");
    ok(iosnap().args(["backup", "-q", "--yes", "--device", &a]));
    let list: serde_json::Value =
        serde_json::from_str(&ok(iosnap().args(["snapshots", "--json", "--device", &a])))
            .expect("json");
    let latest = PathBuf::from(
        list.as_array().expect("array").last().expect("one")["path"]
            .as_str()
            .expect("path"),
    );
    let before = tree(&latest);

    // idevicebackup2 wants DIR/<source UDID>/: point it at the snapshot itself.
    let restore_dir = tmp.path().join("restore");
    std::fs::create_dir_all(&restore_dir).expect("mkdir");
    std::os::unix::fs::symlink(&latest, restore_dir.join(&a)).expect("symlink");
    let out = Command::new(&bin)
        .env("USBMUXD_SOCKET_ADDRESS", &addr)
        .args(["-u", &b, "-s", &a, "restore", "--system", "--no-reboot"])
        .arg(&restore_dir)
        .output()
        .expect("idevicebackup2 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Restore Successful"), "{text}");

    let (ha, hb) = (sim.device(&a), sim.device(&b));
    ha.with_phone(|pa| {
        hb.with_phone(|pb| {
            for f in pa.files().filter(|f| f.kind == EntryKind::File) {
                let g = pb
                    .find(&f.domain, &f.relative_path)
                    .unwrap_or_else(|| panic!("{}/{} not restored", f.domain, f.relative_path));
                assert!(
                    pb.read(g).expect("read b") == pa.read(f).expect("read a"),
                    "{}/{} differs",
                    f.domain,
                    f.relative_path
                );
            }
        })
    });
    assert!(before == tree(&latest), "the restore changed the snapshot");
    drop(sim);
}
