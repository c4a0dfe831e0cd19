//! Our encrypted writer output, opened by third-party readers: iphone_backup_decrypt 0.10.0 and
//! mvt-ios (from the venv `scripts/peers-venv.sh` creates). Every file must come out
//! byte-identical, and both must reject a wrong password.
//!
//! If the venv cannot be created the test FAILS; set `IOSNAP_SKIP_PEERS=1` to skip it explicitly
//! (e.g. offline), which is printed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use iosnap_format::{BackupWriter, Encryption, FileMeta, KdfParams, WriterOptions};

const PASSWORD: &str = "peer password ü";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's path, or `None` when skipping is requested. Panics with a clear message otherwise.
fn venv() -> Option<PathBuf> {
    if std::env::var("IOSNAP_SKIP_PEERS").is_ok_and(|v| v == "1") {
        eprintln!("IOSNAP_SKIP_PEERS=1: third-party peer checks SKIPPED");
        return None;
    }
    let script = repo_root().join("scripts/peers-venv.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed (set IOSNAP_SKIP_PEERS=1 to skip the peer tests):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        path.join("bin/python").exists(),
        "venv at {} has no python",
        path.display()
    );
    Some(path)
}

fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

struct Made {
    /// (domain, relativePath, fileID) → content.
    files: BTreeMap<(String, String, String), Vec<u8>>,
}

fn make(dir: &Path) -> Made {
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
    let mut w = BackupWriter::create(dir, opts).expect("create");
    let mut files = BTreeMap::new();
    let mut seed = 0;
    let specs: Vec<(String, String)> = [0usize, 1, 15, 16, 17, 31, 32, 33, 4095, 4096, 65537]
        .iter()
        .map(|s| {
            (
                "HomeDomain".to_string(),
                format!("Library/Sizes/size_{s}.bin"),
            )
        })
        .chain([
            (
                "MediaDomain".to_string(),
                "DCIM/100APPLE/Ünïcödé 日本.jpg".to_string(),
            ),
            (
                "AppDomain-com.example.app".to_string(),
                "Documents/db.sqlite".to_string(),
            ),
            (
                "AppDomainGroup-group.com.example".to_string(),
                "Library/shared.plist".to_string(),
            ),
            (
                "KeychainDomain".to_string(),
                "keychain-backup.plist".to_string(),
            ),
        ])
        .collect();
    for (i, (domain, rel)) in specs.iter().enumerate() {
        seed += 1;
        let len = rel
            .strip_prefix("Library/Sizes/size_")
            .and_then(|s| s.strip_suffix(".bin"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(1000 + i * 37);
        let data = content(seed, len);
        let meta = FileMeta {
            mode: 0o100644,
            mtime: 1_650_000_000,
            protection_class: (i as u32 % 4) + 1,
            ..FileMeta::default()
        };
        let e = w
            .add_file(domain, rel, meta, data.as_slice())
            .expect("add")
            .clone();
        files.insert((domain.clone(), rel.clone(), e.file_id.clone()), data);
    }
    w.add_symlink(
        "HomeDomain",
        "Library/link",
        "/private/var/mobile/Library",
        FileMeta::default(),
    )
    .expect("link");
    w.finish().expect("finish");
    Made { files }
}

#[test]
fn third_party_readers_open_our_encrypted_backups() {
    let Some(venv) = venv() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    // Readers take the UDID from the folder name.
    let backup = tmp.path().join("00008030-0000000000000001");
    let made = make(&backup);
    let python = venv.join("bin/python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/ibd_extract.py");

    // iphone_backup_decrypt: correct password → every file byte-identical.
    let ibd_out = tmp.path().join("ibd");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&backup)
        .arg(&ibd_out)
        .env("IOSNAP_PEER_PASSWORD", PASSWORD)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "iphone_backup_decrypt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("count");
    assert_eq!(n, made.files.len());
    for ((domain, rel, _), data) in &made.files {
        let p = ibd_out.join(domain).join(rel);
        let got = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(
            got == *data,
            "iphone_backup_decrypt: {domain}/{rel} differs"
        );
    }
    // Wrong password → rejected (exit 3 from our helper = ValueError from the library).
    let out = Command::new(&python)
        .arg(&script)
        .arg(&backup)
        .arg(tmp.path().join("ibd-wrong"))
        .env("IOSNAP_PEER_PASSWORD", "not the password")
        .output()
        .expect("run python");
    assert_eq!(
        out.status.code(),
        Some(3),
        "wrong password not rejected: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // mvt-ios decrypt-backup (password via env, not argv).
    let mvt = venv.join("bin/mvt-ios");
    let mvt_out = tmp.path().join("mvt");
    let run_mvt = |password: &str, dest: &Path| {
        Command::new(&mvt)
            .args([
                "--disable-update-check",
                "--disable-indicator-update-check",
                "decrypt-backup",
                "-d",
            ])
            .arg(dest)
            .arg(&backup)
            .env("MVT_IOS_BACKUP_PASSWORD", password)
            .output()
            .expect("run mvt-ios")
    };
    let out = run_mvt(PASSWORD, &mvt_out);
    assert!(
        out.status.success(),
        "mvt-ios failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for ((domain, rel, id), data) in &made.files {
        let p = mvt_out.join(&id[..2]).join(id);
        let got = std::fs::read(&p).unwrap_or_else(|e| panic!("mvt output {}: {e}", p.display()));
        assert!(got == *data, "mvt-ios: {domain}/{rel} differs");
    }
    let wrong_dest = tmp.path().join("mvt-wrong");
    let out = run_mvt("not the password", &wrong_dest);
    assert!(!out.status.success(), "mvt-ios accepted a wrong password");
    let decrypted_any = wrong_dest.exists()
        && std::fs::read_dir(&wrong_dest)
            .expect("ls")
            .any(|e| e.is_ok_and(|e| e.path().is_dir()));
    assert!(
        !decrypted_any,
        "mvt-ios wrote decrypted data with a wrong password"
    );
}
