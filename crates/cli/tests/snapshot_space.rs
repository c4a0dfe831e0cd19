//! The free-space preflight of `iosnap backup` end to end, on real small filesystems (tmpfs
//! with `size=`; needs root to mount): a library with too little room refuses before writing
//! anything and says why; one where the backup fits with less than 1 GiB to spare warns and
//! backs up. The store's rules themselves are unit-tested with an injected free space
//! (crates/store/tests/invariants.rs, `space_check_before_a_backup`).

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{Sim, small_spec};

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .expect("mount")
            .success();
        assert!(ok, "mount tmpfs at {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Used bytes of the filesystem at `p` (`df`, i.e. statvfs).
fn used(p: &Path) -> u64 {
    df(p, "used")
}

fn df(p: &Path, field: &str) -> u64 {
    let out = Command::new("df")
        .args(["-B1", &format!("--output={field}")])
        .arg(p)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df output")
}

/// Bytes available on the filesystem at `p` (`df`).
fn avail(p: &Path) -> u64 {
    df(p, "avail")
}

/// Every path under `root`.
fn all_paths(root: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
            v.push(e.path());
        }
    }
    v
}

#[test]
fn backup_refuses_when_it_cannot_fit_and_warns_when_tight() {
    if !is_root() {
        eprintln!("SKIPPED: mounting a small tmpfs needs root");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    // A phone with about 8 MiB in use (lockdown's disk usage = the phone's files).
    let sim = Sim::start(&t.join("sim"), vec![small_spec(3, 40, 8 << 20, 2)]);
    let run = |lib: &Path| {
        let mut c = common::library_cmd(t, Some(&sim.addr));
        c.env("IOSNAP_LIBRARY", lib).args(["backup", "--json"]);
        c.output().expect("run iosnap")
    };

    // 4 MiB filesystem: the backup cannot fit; nothing is started.
    let small = Tmpfs::mount(&t.join("small"), "4m");
    let before = used(&small.0);
    let out = run(&small.0.join("lib"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "backup into 4 MiB succeeded: {err}");
    assert!(
        err.contains("free")
            && err.contains("likely to need")
            && err.contains("in use on the device"),
        "{err}"
    );
    let left = all_paths(&small.0);
    assert!(
        left.iter().all(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            !name.starts_with(".staging") && name != "snapshots"
        }),
        "left behind: {left:?}"
    );
    assert!(
        used(&small.0) - before < 512 << 10,
        "{} B written",
        used(&small.0) - before
    );

    // 200 MiB filesystem: it fits, with less than 1 GiB to spare: a warning, then the backup.
    let roomy = Tmpfs::mount(&t.join("roomy"), "200m");
    let out = run(&roomy.0.join("lib"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("warning: space is tight"), "{err}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let path = PathBuf::from(j["snapshot"]["path"].as_str().expect("path"));
    assert!(path.starts_with(&roomy.0) && path.join("Manifest.db").is_file());
    drop(sim);
}

#[test]
fn running_out_of_space_mid_backup_leaves_earlier_snapshots_intact() {
    if !is_root() {
        eprintln!("SKIPPED: mounting a small tmpfs needs root");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let sim = Sim::start(&t.join("sim"), vec![small_spec(4, 40, 8 << 20, 2)]);
    let udid = sim.udids[0].clone();
    let backup = |lib: &Path| {
        let mut c = common::library_cmd(t, Some(&sim.addr));
        c.env("IOSNAP_LIBRARY", lib).args(["backup", "--json"]);
        c.output().expect("run iosnap")
    };
    let json = |out: &std::process::Output| -> serde_json::Value {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    };
    // How much one backup of this phone takes, measured in a scratch library.
    let size = json(&backup(&t.join("scratch")))["snapshot"]["size"]
        .as_u64()
        .expect("size");
    // A filesystem of 2.5 backups: the first backup fits, and so does a small incremental.
    let fs = Tmpfs::mount(&t.join("fs"), &format!("{}k", size * 5 / 2 / 1024));
    let lib = fs.0.join("lib");
    let first = json(&backup(&lib));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sim.device(&udid).churn(0.05).expect("churn");
    let second = json(&backup(&lib));
    let p1 = PathBuf::from(first["snapshot"]["path"].as_str().expect("path"));
    let p2 = PathBuf::from(second["snapshot"]["path"].as_str().expect("path"));
    // Other data fills the disk up to 40 % of a backup; then the phone changes almost
    // everything. The preflight only knows what the last snapshot added (a few %), so the
    // third backup starts, and runs out of space on the way.
    let ballast = avail(&fs.0).saturating_sub(size * 2 / 5);
    std::fs::write(fs.0.join("ballast"), vec![1u8; ballast as usize]).expect("ballast");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sim.device(&udid).churn(1.0).expect("churn");
    let out = backup(&lib);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the third backup fit after all: {err}"
    );
    assert!(err.contains("earlier snapshots are untouched"), "{err}");
    // Nothing staged is left; the two snapshots are listed and verify.
    let left = all_paths(&lib);
    assert!(
        left.iter()
            .all(|p| !p.to_string_lossy().contains(".staging")),
        "left behind: {left:?}"
    );
    let mut c = common::library_cmd(t, None);
    c.env("IOSNAP_LIBRARY", &lib).args(["snapshots", "--json"]);
    let list = json(&c.output().expect("snapshots"));
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    for p in [&p1, &p2] {
        let mut c = common::library_cmd(t, None);
        c.env("IOSNAP_LIBRARY", &lib).arg("verify").arg(p);
        let out = c.output().expect("verify");
        assert!(
            out.status.success(),
            "{}: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    drop(sim);
}
