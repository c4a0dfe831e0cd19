//! `iosnap snapshot` against the simulated iPhone: two backups with churn in between. The
//! second snapshot shares every unchanged file with the first (same inode with hard links),
//! adds about what the phone sent, and the first snapshot stays byte-identical.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
mod common;

use common::{Sim, small_spec};

fn tree(root: &Path) -> BTreeMap<PathBuf, (u64, Vec<u8>)> {
    let mut m = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            if e.file_type().expect("type").is_dir() {
                stack.push(p);
            } else {
                let md = std::fs::metadata(&p).expect("meta");
                let rel = p.strip_prefix(root).expect("prefix").to_path_buf();
                m.insert(rel, (md.ino(), std::fs::read(&p).expect("read")));
            }
        }
    }
    m
}

#[test]
fn two_snapshot_backups_share_unchanged_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let sim = Sim::start(&t.join("sim"), vec![small_spec(1, 60, 2 << 20, 4)]);
    let addr = sim.addr.clone();
    let udid = sim.udids[0].clone();
    let iosnap = || Command::from_std(common::library_cmd(t, Some(&addr)));
    let run = |c: &mut Command| -> serde_json::Value {
        let out = c.output().expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    };

    let first = run(iosnap().args(["backup", "--json"]));
    let p1 = PathBuf::from(first["snapshot"]["path"].as_str().expect("path"));
    let before = tree(&p1);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sim.device(&udid).churn(0.05).expect("churn");
    let second = run(iosnap().args(["backup", "--json"]));
    let p2 = PathBuf::from(second["snapshot"]["path"].as_str().expect("path"));
    assert_ne!(p1, p2);
    assert_eq!(second["full"], false, "{second}");

    assert_eq!(tree(&p1), before, "the older snapshot changed");
    let after = tree(&p2);
    let shared = after
        .iter()
        .filter(|(k, v)| before.get(*k).is_some_and(|b| b.0 == v.0))
        .count();
    assert!(
        shared * 10 >= after.len() * 8,
        "{shared} of {} shared",
        after.len()
    );

    let list = run(iosnap().args(["snapshots", "--json"]));
    let rows = list.as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    let unique2 = rows[1]["unique"].as_u64().expect("unique");
    let received = second["bytes_received"].as_u64().expect("bytes");
    let manifest = std::fs::metadata(p2.join("Manifest.db")).expect("db").len();
    assert!(
        unique2 <= received + received / 20 + 64 * 1024,
        "unique {unique2}, received {received}, manifest {manifest}"
    );
    eprintln!(
        "{shared} of {} files shared; unique {unique2} B, received {received} B, manifest {manifest} B",
        after.len()
    );
    for r in rows {
        let reference = r["reference"].as_str().expect("ref");
        iosnap().args(["verify", reference]).assert().success();
    }
    drop(sim);
}
