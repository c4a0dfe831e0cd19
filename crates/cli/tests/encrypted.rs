//! The binary on an encrypted backup made with the format crate's writer: passwords from the
//! environment and from a file, wrong passwords, no password on argv, extraction and verify.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use iosnap_format::keybag::KdfParams;
use iosnap_format::writer::{BackupWriter, Encryption, WriterOptions};
use iosnap_format::{EntryKind, FileMeta};

const PASSWORD: &str = "correct horse";

fn iosnap() -> Command {
    let mut c = Command::cargo_bin("iosnap").expect("binary");
    c.env_remove("IOSNAP_PASSWORD");
    c
}

fn meta(kind: EntryKind, size: u64) -> FileMeta {
    let mode = match kind {
        EntryKind::Directory => 0o040755,
        EntryKind::Symlink => 0o120755,
        _ => 0o100644,
    };
    FileMeta {
        size,
        mode,
        uid: 501,
        gid: 501,
        mtime: 1_700_000_000,
        protection_class: 3,
        ..FileMeta::default()
    }
}

/// Writes a small encrypted backup and returns its folder and the files (domain, path, bytes).
fn make_backup(root: &Path) -> (PathBuf, Vec<(String, String, Vec<u8>)>) {
    let dir = root.join("backup");
    let opts = WriterOptions {
        encryption: Some(Encryption::new(
            PASSWORD.as_bytes(),
            KdfParams {
                dpic: 1000,
                iter: 100,
            },
        )),
        ..WriterOptions::default()
    };
    let mut w = BackupWriter::create(&dir, opts).expect("create");
    let files: Vec<(String, String, Vec<u8>)> = vec![
        (
            "HomeDomain".into(),
            "Library/SMS/sms.db".into(),
            b"SQLite format 3\0rest".to_vec(),
        ),
        (
            "HomeDomain".into(),
            "Library/Notes/empty".into(),
            Vec::new(),
        ),
        (
            "MediaDomain".into(),
            "Media/DCIM/100APPLE/IMG_0001.JPG".into(),
            vec![0xAB; 70_000],
        ),
        (
            "AppDomain-net.whatsapp.WhatsApp".into(),
            "Documents/ünïcode ✓.txt".into(),
            b"hi".to_vec(),
        ),
    ];
    for (d, p, data) in &files {
        w.add_file(d, p, meta(EntryKind::File, data.len() as u64), &data[..])
            .expect("add");
    }
    w.finish().expect("finish");
    (dir, files)
}

#[test]
fn password_from_env_and_file_and_extract_is_byte_identical() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, files) = make_backup(tmp.path());

    // Environment variable.
    let out = tmp.path().join("out");
    iosnap()
        .env("IOSNAP_PASSWORD", PASSWORD)
        .arg("extract")
        .arg(&dir)
        .arg(&out)
        .assert()
        .success();
    for (d, p, data) in &files {
        let got = std::fs::read(out.join(d).join(p)).expect("extracted file");
        assert_eq!(&got, data, "{d}/{p}");
    }

    // Password file (first line; the newline is not part of the password).
    let pwfile = tmp.path().join("pw");
    std::fs::write(&pwfile, format!("{PASSWORD}\n")).expect("write");
    let out = iosnap()
        .arg("cat")
        .arg(&dir)
        .args(["HomeDomain", "Library/SMS/sms.db", "--password-file"])
        .arg(&pwfile)
        .assert()
        .success();
    assert_eq!(out.get_output().stdout, b"SQLite format 3\0rest");

    iosnap()
        .env("IOSNAP_PASSWORD", PASSWORD)
        .arg("verify")
        .arg(&dir)
        .assert()
        .success();
    iosnap()
        .env("IOSNAP_PASSWORD", PASSWORD)
        .args(["verify", "--deep"])
        .arg(&dir)
        .assert()
        .success();
}

#[test]
fn wrong_or_missing_password_is_a_one_line_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, _) = make_backup(tmp.path());
    let out = tmp.path().join("out");
    let a = iosnap()
        .env("IOSNAP_PASSWORD", "nope")
        .arg("extract")
        .arg(&dir)
        .arg(&out)
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("wrong backup password"), "{stderr}");
    assert!(
        !out.exists(),
        "nothing may be written with a wrong password"
    );

    // No terminal, no env, no file: say how to give the password.
    let a = iosnap().arg("ls").arg(&dir).assert().code(1);
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(stderr.contains("IOSNAP_PASSWORD"), "{stderr}");

    // `info` still shows what it can of a locked backup.
    let a = iosnap()
        .args(["info", "--json"])
        .arg(&dir)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).expect("json");
    assert_eq!(v["encrypted"], true);
    assert_eq!(v["unlocked"], false);
    assert!(v["counts"].is_null());
}

#[test]
fn there_is_no_password_argument() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, _) = make_backup(tmp.path());
    for flag in ["--password", "-p", "--pass"] {
        iosnap()
            .arg("info")
            .arg(&dir)
            .args([flag, PASSWORD])
            .assert()
            .code(2);
    }
}

#[test]
fn extract_filters_by_domain_and_glob() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (dir, _) = make_backup(tmp.path());
    let out = tmp.path().join("out");
    iosnap()
        .env("IOSNAP_PASSWORD", PASSWORD)
        .arg("extract")
        .arg(&dir)
        .arg(&out)
        .args([
            "--domain",
            "HomeDomain",
            "--path",
            "HomeDomain/Library/SMS/*",
        ])
        .assert()
        .success();
    assert!(out.join("HomeDomain/Library/SMS/sms.db").is_file());
    assert!(!out.join("HomeDomain/Library/Notes/empty").exists());
    assert!(!out.join("MediaDomain").exists());
}

#[test]
fn ls_sanitizes_control_characters() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("b");
    let mut w = BackupWriter::create(&dir, WriterOptions::default()).expect("create");
    w.add_file(
        "HomeDomain",
        "evil\x1b[2Jname",
        meta(EntryKind::File, 1),
        &b"x"[..],
    )
    .expect("add");
    w.finish().expect("finish");
    let a = iosnap().args(["ls", "-R"]).arg(&dir).assert().success();
    let text = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(text.contains("evil\\u{1b}[2Jname"), "{text}");
}
