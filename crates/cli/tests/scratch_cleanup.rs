//! Decrypted scratch copies never outlive the command: a signal removes them before the process
//! dies, and a run after a `kill -9` removes what the killed one left.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use iosnap_format::FileMeta;
use iosnap_format::keybag::KdfParams;
use iosnap_format::writer::{BackupWriter, Encryption, WriterOptions};

const PASSWORD: &str = "scratch test";

/// An encrypted backup with one 4 MiB file: `cat` of it blocks on a pipe nobody reads.
fn make_backup(root: &Path) -> PathBuf {
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
    let data = vec![0x5au8; 4 << 20];
    let meta = FileMeta {
        size: data.len() as u64,
        mode: 0o100644,
        uid: 501,
        gid: 501,
        mtime: 1_700_000_000,
        protection_class: 3,
        ..FileMeta::default()
    };
    w.add_file("HomeDomain", "Library/big.bin", meta, &data[..])
        .expect("add");
    w.finish().expect("finish");
    dir
}

/// Scratch folders (`iosnap-<pid>-…`) in `tmp`.
fn scratch_dirs(tmp: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tmp)
        .expect("read tmp")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("iosnap-"))
        })
        .collect()
}

fn iosnap(tmp: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iosnap"));
    c.env("TMPDIR", tmp).env("IOSNAP_PASSWORD", PASSWORD);
    c
}

/// Starts `iosnap cat` of the big file with stdout a pipe nobody reads: once the pipe's buffer
/// is full it blocks, with the decrypted Manifest.db in its scratch folder. Returns once that
/// file exists.
fn blocked_cat(tmp: &Path, backup: &Path) -> Child {
    let mut child = iosnap(tmp)
        .args(["cat"])
        .arg(backup)
        .args(["HomeDomain", "Library/big.bin"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !scratch_dirs(tmp)
        .iter()
        .any(|d| d.join("Manifest.db").exists())
    {
        assert!(
            Instant::now() < deadline,
            "no decrypted Manifest.db appeared"
        );
        assert!(child.try_wait().unwrap().is_none(), "cat ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn sigterm_removes_the_decrypted_manifest() {
    let root = tempfile::tempdir().unwrap();
    let backup = make_backup(root.path());
    let tmp = root.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();

    let mut child = blocked_cat(&tmp, &backup);
    let dirs = scratch_dirs(&tmp);
    assert_eq!(dirs.len(), 1);
    let name = dirs[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with(&format!("iosnap-{}-", child.id())),
        "{name}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(15), "{status:?}");
    assert!(
        scratch_dirs(&tmp).is_empty(),
        "left: {:?}",
        scratch_dirs(&tmp)
    );
}

#[test]
fn the_next_run_removes_what_a_killed_run_left() {
    let root = tempfile::tempdir().unwrap();
    let backup = make_backup(root.path());
    let tmp = root.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();

    let mut child = blocked_cat(&tmp, &backup);
    child.kill().unwrap(); // SIGKILL: no handler runs
    child.wait().unwrap();
    let left = scratch_dirs(&tmp);
    assert_eq!(left.len(), 1, "SIGKILL cannot clean up: {left:?}");
    assert!(
        left[0].join("Manifest.db").exists(),
        "the decrypted copy stays behind"
    );

    let out = iosnap(&tmp).arg("info").arg(&backup).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        scratch_dirs(&tmp).is_empty(),
        "left: {:?}",
        scratch_dirs(&tmp)
    );
}
