//! Crash safety: a child process (this test binary, re-executed) imports and prunes in a loop
//! and is killed with SIGKILL at pseudo-random moments, ≥ 100 times. After each kill every
//! listed snapshot must verify, no staging folder may be listed, and the next operation
//! (an import + prune in this process) must succeed.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use iosnap_store::{ConfigDir, Library, PruneMode, SharingMethod, SystemClock};

const CHILD_ENV: &str = "IOSNAP_STORE_CRASH_CHILD";

fn open(root: &Path) -> Library {
    let mut lib = Library::open(
        &root.join("lib"),
        ConfigDir::at(root.join("config")),
        Arc::new(SystemClock),
    )
    .unwrap();
    lib.force_sharing(Some(SharingMethod::HardLink));
    lib
}

fn sources(root: &Path) -> Vec<PathBuf> {
    (1..=3u8).map(|v| root.join(format!("src/v{v}"))).collect()
}

/// The worker the parent kills. Runs only when re-executed by `kill_9_during_commit_and_prune`.
#[test]
#[ignore = "run by kill_9_during_commit_and_prune as a child process"]
fn crash_child() {
    let Some(root) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let root = PathBuf::from(root);
    let lib = open(&root);
    let srcs = sources(&root);
    for i in 0usize.. {
        let src = &srcs[i % srcs.len()];
        match lib.import(src, None) {
            Ok(_) | Err(iosnap_store::Error::Busy(_)) => {}
            Err(e) => panic!("import failed: {e}"),
        }
        match iosnap_store::prune(&lib, UDID, PruneMode::Yes, &mut |_| true) {
            Ok(_) | Err(iosnap_store::Error::Busy(_)) => {}
            Err(e) => panic!("prune failed: {e}"),
        }
    }
}

#[test]
fn kill_9_during_commit_and_prune() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for (i, s) in sources(root).iter().enumerate() {
        write_backup(s, &files(24, 2048, i as u8 + 1, 3));
    }
    // Prune everything it may: no budget, no minimum age, no asking.
    let cfg = ConfigDir::at(root.join("config"));
    let mut settings = cfg.device(UDID).unwrap();
    settings.set("budget-bytes", "0").unwrap();
    settings.set("retention-days", "0").unwrap();
    settings.set("ask-before-delete", "off").unwrap();
    cfg.save_device(UDID, &settings).unwrap();

    let exe = std::env::current_exe().unwrap();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let trials = 110;
    let mut max_listed = 0;
    let mut interrupted = 0;
    for trial in 0..trials {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % 60_000);
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if let Ok(Some(status)) = child.try_wait() {
            panic!("child exited early ({status}) in trial {trial}");
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let dev_dir = root.join("lib").join(UDID);
        if std::fs::read_dir(&dev_dir).is_ok_and(|rd| {
            rd.flatten().any(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(".staging") || n.starts_with(".deleting")
            })
        }) {
            interrupted += 1;
        }
        let lib = open(root);
        let listed = check_library(&lib);
        max_listed = max_listed.max(listed);
        let dev = lib.device_dir(UDID).unwrap();
        for s in lib.snapshots(UDID).unwrap_or_default() {
            assert!(s.path.starts_with(dev.join("snapshots")), "{:?}", s.path);
        }
        if trial % 10 == 9 {
            // The next backup succeeds and cleans up the leftovers.
            lib.import(&sources(root)[trial % 3], None).unwrap();
            iosnap_store::prune(&lib, UDID, PruneMode::Yes, &mut |_| true).unwrap();
            let leftovers: Vec<_> = std::fs::read_dir(&dev)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".staging") || n.starts_with(".deleting"))
                .collect();
            assert!(leftovers.is_empty(), "{leftovers:?}");
            assert!(check_library(&lib) >= 1);
        }
    }
    assert!(max_listed >= 1, "the child never committed anything");
    // The kills really land in the middle of a backup or a prune, not only between them.
    assert!(
        interrupted >= trials / 10,
        "only {interrupted} kills interrupted an operation"
    );
    eprintln!("{interrupted} of {trials} kills left an interrupted operation behind");
}
