//! The snapshot verbs end to end through the binary: import two backups, list them (text and
//! JSON), lock/label, diff, verify, prune (dry run, non-interactive, --yes), export,
//! archive, delete, settings and location. Settings go to a temp IOSNAP_CONFIG_DIR.

mod common;

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use assert_cmd::Command;
use iosnap_format::FileMeta;
use iosnap_format::writer::{BackupWriter, DeviceInfo, WriterOptions};

const UDID: &str = "00008030-00000000000000AB";

fn write_backup(dir: &Path, version: u8) {
    let opts = WriterOptions {
        device: DeviceInfo {
            udid: UDID.into(),
            ..DeviceInfo::default()
        },
        date: UNIX_EPOCH + Duration::from_secs(1_795_555_800),
        ..WriterOptions::default()
    };
    let mut w = BackupWriter::create(dir, opts).expect("writer");
    for i in 0..10u8 {
        let v = if i < 3 { version } else { 0 };
        let meta = FileMeta {
            mode: 0o100644,
            mtime: 1_700_000_000,
            ..FileMeta::default()
        };
        let body = vec![i.wrapping_add(v); 2000];
        w.add_file("HomeDomain", &format!("Library/f{i}"), meta, &body[..])
            .expect("add");
    }
    w.add_file(
        "AppDomain-com.example.app",
        "Documents/new",
        FileMeta::default(),
        &[version; 10][..],
    )
    .expect("add");
    w.finish().expect("finish");
}

fn iosnap(tmp: &Path) -> Command {
    Command::from_std(common::library_cmd(tmp, None))
}

fn stdout(c: &mut Command) -> String {
    let out = c.output().expect("run");
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn snapshot_verbs_end_to_end() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    write_backup(&t.join("b1"), 1);
    write_backup(&t.join("b2"), 2);

    let out = stdout(iosnap(t).args(["import"]).arg(t.join("b1")));
    assert!(out.contains("Imported"), "{out}");
    std::thread::sleep(Duration::from_millis(1100)); // a new second: a new snapshot name
    let out = stdout(iosnap(t).args(["import", "--json"]).arg(t.join("b2")));
    let j: serde_json::Value = serde_json::from_str(&out).expect("json");
    // 7 unchanged data files shared (+ unchanged plists); the 4 changed ones and Manifest.db copied.
    let (shared, copied) = (j["shared"].as_u64(), j["copied"].as_u64());
    assert!(shared >= Some(7) && copied >= Some(5), "{j}");
    assert_eq!(j["snapshot"]["files"], 15, "{j}");

    let out = stdout(iosnap(t).args(["snapshots", "--json"]));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).expect("json");
    assert_eq!(rows.len(), 2);
    let first = rows[0]["reference"].as_str().expect("ref").to_string();
    assert_eq!(rows[1]["ios_version"], "17.5");
    assert!(rows[0]["unique"].as_u64() < rows[0]["size"].as_u64());

    stdout(iosnap(t).args(["lock", &first]));
    stdout(iosnap(t).args(["label", &format!("{UDID}@latest"), "after update"]));
    let out = stdout(iosnap(t).args(["snapshots", "--device", UDID]));
    assert!(out.contains("after update") && out.contains("yes"), "{out}");

    let out = stdout(iosnap(t).args(["diff", &first, &format!("{UDID}@latest")]));
    assert!(out.contains("0 added, 0 removed, 4 changed"), "{out}");
    assert!(out.contains("(app com.example.app)"), "{out}");

    let out = stdout(iosnap(t).args(["verify", UDID]));
    assert!(out.contains("no problems"), "{out}");

    // Retention: no budget, no minimum age. Locked and latest survive regardless.
    stdout(iosnap(t).args(["settings", "set", "--device", UDID, "budget-bytes", "0"]));
    stdout(iosnap(t).args(["settings", "set", "--device", UDID, "retention-days", "0"]));
    let out = stdout(iosnap(t).args(["prune", "--dry-run"]));
    assert!(out.contains("nothing to delete"), "locked + latest: {out}");
    stdout(iosnap(t).args(["unlock", &first]));
    let out = stdout(iosnap(t).args(["prune"])); // stdin is not a terminal: report, keep
    assert!(out.contains("pass --yes"), "{out}");
    assert_eq!(count(t), 2);
    stdout(iosnap(t).args(["archive", &first]));
    let out = stdout(iosnap(t).args(["prune", "--yes", "--json"]));
    assert!(out.contains("\"deleted\""), "{out}");
    assert_eq!(count(t), 1);

    stdout(iosnap(t).args(["export", UDID]).arg(t.join("out")));
    assert!(t.join("out/Manifest.db").is_file());
    iosnap(t)
        .args(["delete", "--all", "--device", UDID])
        .assert()
        .failure();
    stdout(iosnap(t).args(["delete", "--all", "--device", UDID, "--yes"]));
    assert_eq!(count(t), 0);

    let out = stdout(iosnap(t).args(["settings", "show", "--device", UDID]));
    assert!(out.contains("retention-days = 0"), "{out}");
    iosnap(t)
        .args(["settings", "set", "--device", UDID, "nope", "1"])
        .assert()
        .failure();
    let out = stdout(iosnap(t).args(["location", "add"]).arg(t.join("disk")));
    assert!(
        out.contains("iosnap.Backups") && out.contains("sharing"),
        "{out}"
    );
    let out = stdout(iosnap(t).args(["location", "list", "--json"]));
    assert!(out.contains("iosnap.Backups"), "{out}");

    // Move the device's snapshots to another disk; its location setting follows.
    stdout(iosnap(t).args(["import"]).arg(t.join("b1")));
    let out = stdout(
        iosnap(t)
            .args(["location", "move", "--device", UDID])
            .arg(t.join("disk2")),
    );
    assert!(out.contains("Moved 1 snapshot"), "{out}");
    assert_eq!(count(t), 0);
    let moved = t.join("disk2/iosnap.Backups");
    let out = stdout(
        iosnap(t)
            .args(["snapshots", "--json", "--library"])
            .arg(&moved),
    );
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&out)
            .expect("json")
            .len(),
        1
    );
    let out = stdout(iosnap(t).args(["settings", "show", "--device", UDID]));
    assert!(out.contains("disk2/iosnap.Backups"), "{out}");

    // Forget: refused without confirmation (nothing changes), then done with --yes.
    let lib2 = ["--library", moved.to_str().expect("utf-8")];
    iosnap(t)
        .args(["forget", UDID])
        .args(lib2)
        .assert()
        .failure();
    assert!(
        t.join("config/devices")
            .join(format!("{UDID}.toml"))
            .is_file()
    );
    stdout(iosnap(t).args(["forget", UDID, "--yes"]).args(lib2));
    assert!(!moved.join(UDID).exists());
    assert!(
        !t.join("config/devices")
            .join(format!("{UDID}.toml"))
            .exists()
    );
}

fn count(t: &Path) -> usize {
    let out = stdout(iosnap(t).args(["snapshots", "--json"]));
    serde_json::from_str::<Vec<serde_json::Value>>(&out)
        .expect("json")
        .len()
}
