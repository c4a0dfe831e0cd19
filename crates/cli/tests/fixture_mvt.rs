//! The binary against the real iOS 14.3 Manifest.db from mvt's test artifacts
//! (`../shared/fixtures/mvt-ios14-backup`: 3,721 rows, 562 domains, 10 data files).

use std::collections::BTreeSet;
use std::path::PathBuf;

use assert_cmd::Command;

fn fixture() -> PathBuf {
    let base = std::env::var_os("IOSNAP_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        });
    let dir = base.join("mvt-ios14-backup");
    assert!(
        dir.join("Manifest.db").is_file(),
        "fixture missing at {}",
        dir.display()
    );
    dir
}

fn iosnap() -> Command {
    let mut c = Command::cargo_bin("iosnap").expect("binary");
    c.env_remove("IOSNAP_PASSWORD");
    c
}

/// (fileID, flags) of every row, read independently with SQLite.
fn rows() -> Vec<(String, String, String, i64)> {
    let db = rusqlite::Connection::open_with_flags(
        fixture().join("Manifest.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open");
    let mut st = db
        .prepare("SELECT fileID, domain, relativePath, flags FROM Files")
        .expect("prep");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn ls_recursive_shows_every_row_with_kind_and_size() {
    let out = iosnap()
        .args(["ls", "-R", "-l"])
        .arg(fixture())
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).expect("utf8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3721);
    let (mut files, mut dirs, mut links) = (0, 0, 0);
    for l in &lines {
        let kind = l.split_whitespace().next().expect("kind");
        let size: u64 = l
            .split_whitespace()
            .nth(1)
            .expect("size")
            .parse()
            .expect("size is a number");
        match kind {
            "file" => files += 1,
            "dir" => {
                dirs += 1;
                assert_eq!(size, 0);
            }
            "symlink" => links += 1,
            other => panic!("unexpected kind {other} in {l}"),
        }
    }
    assert_eq!((files, dirs, links), (1089, 2618, 14));
}

#[test]
fn ls_json_matches_the_database_row_for_row() {
    let out = iosnap()
        .args(["ls", "-R", "--json"])
        .arg(fixture())
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).expect("json");
    let listed: BTreeSet<(String, String, String)> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            (
                r["file_id"].as_str().expect("id").to_owned(),
                r["domain"].as_str().expect("domain").to_owned(),
                r["path"].as_str().expect("path").to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, String)> =
        rows().into_iter().map(|(id, d, p, _)| (id, d, p)).collect();
    assert_eq!(listed, expected);
    let domains: BTreeSet<&str> = v
        .as_array()
        .expect("a")
        .iter()
        .map(|r| r["domain"].as_str().expect("d"))
        .collect();
    assert_eq!(domains.len(), 562);
}

#[test]
fn ls_lists_a_directory() {
    let out = iosnap()
        .args(["ls"])
        .arg(fixture())
        .arg("HomeDomain/Library/SMS")
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).expect("utf8");
    assert!(
        text.lines().any(|l| l == "HomeDomain/Library/SMS/sms.db"),
        "{text}"
    );
}

#[test]
fn verify_names_exactly_the_missing_data_files() {
    let present: BTreeSet<String> = walk(&fixture());
    let expected_missing: BTreeSet<String> = rows()
        .into_iter()
        .filter(|(id, _, _, flags)| *flags == 1 && !present.contains(id))
        .map(|(id, ..)| id)
        .collect();
    assert!(expected_missing.len() > 1000);

    let out = iosnap()
        .args(["verify", "--json"])
        .arg(fixture())
        .assert()
        .code(3);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).expect("json");
    let missing: BTreeSet<String> = v["missing"]
        .as_array()
        .expect("missing array")
        .iter()
        .map(|m| m["file_id"].as_str().expect("file_id").to_owned())
        .collect();
    assert_eq!(missing, expected_missing);
}

#[test]
fn info_reports_device_and_counts_and_missing_plists() {
    let out = iosnap()
        .args(["info", "--json"])
        .arg(fixture())
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).expect("json");
    assert_eq!(v["device"]["product_type"], "iPhone9,3");
    assert_eq!(v["device"]["product_version"], "14.3");
    assert_eq!(v["counts"]["files"], 1089);
    assert_eq!(v["counts"]["directories"], 2618);
    assert_eq!(v["counts"]["symlinks"], 14);
    assert_eq!(v["counts"]["domains"], 562);
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("Manifest.plist"), "{warnings}");
    assert!(warnings.contains("Status.plist"), "{warnings}");
}

#[test]
fn cat_reads_a_file_and_errors_name_what_is_missing() {
    let out = iosnap()
        .args(["cat"])
        .arg(fixture())
        .args(["HomeDomain", "Library/SMS/sms.db"])
        .assert()
        .success();
    let bytes = &out.get_output().stdout;
    let on_disk =
        std::fs::read(fixture().join("3d/3d0d7e5fb2ce288813306e4d4636395e047a3d28")).expect("read");
    assert_eq!(bytes, &on_disk);

    let err = iosnap()
        .args(["cat"])
        .arg(fixture())
        .args(["HomeDomain", "Library/nope.db"])
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&err.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one-line error: {stderr}");
    assert!(stderr.contains("HomeDomain/Library/nope.db"), "{stderr}");
}

fn walk(dir: &std::path::Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for sub in std::fs::read_dir(dir).expect("read_dir") {
        let sub = sub.expect("entry").path();
        if sub.is_dir() {
            for f in std::fs::read_dir(&sub).expect("read_dir") {
                let name = f.expect("entry").file_name().to_string_lossy().into_owned();
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn inspection_verbs_accept_a_snapshot_reference() {
    let lib = tempfile::tempdir().expect("tmp");
    iosnap()
        .arg("import")
        .arg(fixture())
        .arg("--library")
        .arg(lib.path())
        .assert()
        .success();
    for reference in ["latest", "1CB128EAFA77C5BE74283E9A3A2130AF36A3C059@latest"] {
        let out = iosnap()
            .args(["ls", "-R", reference, "--library"])
            .arg(lib.path())
            .assert()
            .success();
        assert_eq!(
            String::from_utf8_lossy(&out.get_output().stdout)
                .lines()
                .count(),
            3721
        );
    }
    let out = iosnap()
        .args([
            "cat",
            "latest",
            "HomeDomain",
            "Library/SMS/sms.db",
            "--library",
        ])
        .arg(lib.path())
        .assert()
        .success();
    let on_disk =
        std::fs::read(fixture().join("3d/3d0d7e5fb2ce288813306e4d4636395e047a3d28")).expect("read");
    assert_eq!(out.get_output().stdout, on_disk);
    let a = iosnap()
        .args(["info", "nope@latest", "--library"])
        .arg(lib.path())
        .assert()
        .code(1);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("nope@latest"));
}
