//! SIGTERM during a backup: the daemon runs as a child process (this test binary, re-run with
//! `--ignored --exact daemon_child`), a simulated phone stalls in the middle of the backup, the
//! child gets SIGTERM and must exit 0 promptly, with no staging folder left, the earlier
//! snapshot untouched, and a following run backing up fine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use iosnap_daemon::{Daemon, DaemonConfig, LocalZone, backup_to_snapshot};
use iosnap_device::{BackupOptions, DeviceSession, MuxAddr, SessionOptions};
use iosnap_simulator::{DeviceConfig, PhoneSpec, Simulator, SimulatorConfig};
use iosnap_store::{ConfigDir, Library, ManualClock, SystemClock};

fn session_opts(t: &Path) -> SessionOptions {
    SessionOptions {
        lockdown_dir: t.join("lockdown"),
        ..SessionOptions::default()
    }
}

/// The daemon as a separate process, configured through the environment by the parent.
#[test]
#[ignore = "helper: run as a child process by sigterm_during_a_backup_stops_cleanly"]
fn daemon_child() {
    let var = |k: &str| std::env::var(k).expect(k);
    let t = PathBuf::from(var("IOSNAP_TEST_DIR"));
    iosnap_daemon::init_logging();
    let cfg = DaemonConfig {
        mux: MuxAddr::parse(&var("IOSNAP_TEST_MUX")).unwrap(),
        config: ConfigDir::at(t.join("config")),
        library: Some(t.join("lib")),
        clock: Arc::new(SystemClock),
        zone: LocalZone::System,
        session: session_opts(&t),
        recheck: Duration::from_millis(200),
        passwords: None,
        passcode_timeout: Duration::from_secs(300),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(iosnap_daemon::run_until_signal(Daemon::new(cfg)))
        .unwrap();
}

fn spawn_child(t: &Path, mux: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "daemon_child", "--nocapture"])
        .env("IOSNAP_TEST_DIR", t)
        .env("IOSNAP_TEST_MUX", mux)
        .env("IOSNAP_LOG", "info")
        .spawn()
        .unwrap()
}

fn sigterm_and_wait(mut child: Child) -> std::process::ExitStatus {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not stop within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn staging_dirs(dev_dir: &Path) -> Vec<String> {
    std::fs::read_dir(dev_dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".staging-"))
                .collect()
        })
        .unwrap_or_default()
}

/// (relative path, size, mtime) of every file under `dir`, sorted.
fn tree(dir: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.push((
                    e.path().strip_prefix(dir).unwrap().to_path_buf(),
                    m.len(),
                    m.modified().unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn device(t: &Path, stall: bool) -> DeviceConfig {
    let spec = PhoneSpec {
        files: 10,
        bytes: 64 << 10,
        apps: 1,
        ..PhoneSpec::default()
    };
    let mut d = DeviceConfig::new(t.join("sim/phone"), spec);
    d.kdf = Some((1000, 100));
    if stall {
        d.faults.stall_at_step = Some(5);
    }
    d
}

async fn start(t: &Path, stall: bool) -> Simulator {
    Simulator::start(SimulatorConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        unix: None,
        devices: vec![device(t, stall)],
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_a_backup_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let config = ConfigDir::at(t.join("config"));

    // An earlier snapshot, made long ago (so the daemon finds the phone due today).
    let sim = start(t, false).await;
    let udid = sim.udids().remove(0);
    let old_clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    {
        let lib = Library::open(&t.join("lib"), config.clone(), old_clock).unwrap();
        let mux = MuxAddr::parse(&sim.addr().to_string()).unwrap();
        let s = DeviceSession::connect_with(&mux, &udid, session_opts(t))
            .await
            .unwrap();
        backup_to_snapshot(&lib, &s, &BackupOptions::default(), |_| {})
            .await
            .unwrap();
    }
    sim.shutdown().await;
    let mut s = config.device(&udid).unwrap();
    s.set("automatic", "on").unwrap();
    config.save_device(&udid, &s).unwrap();
    let lib = Library::open(&t.join("lib"), config.clone(), Arc::new(SystemClock)).unwrap();
    let earlier = lib.snapshots(&udid).unwrap();
    assert_eq!(earlier.len(), 1);
    let earlier_tree = tree(&earlier[0].path);
    let dev_dir = t.join("lib").join(&udid);

    // The phone stalls mid-backup; SIGTERM arrives while the backup is running.
    let sim = start(t, true).await;
    let child = spawn_child(t, &sim.addr().to_string());
    wait_for("the backup to start", || !staging_dirs(&dev_dir).is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st = tokio::task::spawn_blocking(move || sigterm_and_wait(child))
        .await
        .unwrap();
    assert!(st.success(), "daemon exit status {st}");
    assert_eq!(staging_dirs(&dev_dir), Vec::<String>::new());
    let after = lib.snapshots(&udid).unwrap();
    assert_eq!(after.len(), 1, "no partial snapshot");
    assert_eq!(after[0].name, earlier[0].name);
    assert_eq!(
        tree(&after[0].path),
        earlier_tree,
        "earlier snapshot untouched"
    );
    sim.shutdown().await;

    // The next run backs up fine.
    let sim = start(t, false).await;
    let child = spawn_child(t, &sim.addr().to_string());
    let lib2 = Library::open(&t.join("lib"), config.clone(), Arc::new(SystemClock)).unwrap();
    wait_for("the next backup", || {
        lib2.snapshot_names(&udid).map(|v| v.len()).unwrap_or(0) == 2
    });
    let st = tokio::task::spawn_blocking(move || sigterm_and_wait(child))
        .await
        .unwrap();
    assert!(st.success(), "daemon exit status {st}");
    assert_eq!(lib2.snapshots(&udid).unwrap().len(), 2);
    assert_eq!(tree(&earlier[0].path), earlier_tree);
    sim.shutdown().await;
}
