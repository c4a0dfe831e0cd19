//! The daemon and remembered passwords: it needs none to back an encrypted phone up, but after
//! each automatic backup of one it checks that the remembered password still opens the new
//! snapshot, so a password changed on the phone is reported at once (tested with the opt-in
//! file store, so no keyring is touched; the keyring itself is tested in the CLI's
//! tests/keyring.rs against gnome-keyring).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::FixedOffset;
use iosnap_daemon::secrets::PasswordStore;
use iosnap_daemon::{Daemon, DaemonConfig, LocalZone, Outcome, PasswordCheck};
use iosnap_device::{MuxAddr, SessionOptions};
use iosnap_simulator::{DeviceConfig, PhoneSpec, Simulator, SimulatorConfig};
use iosnap_store::{ConfigDir, ManualClock};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// 2026-11-24 00:00:00 UTC.
const DAY0: u64 = 1_795_478_400;

fn at(day: u64, h: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(DAY0 + day * 86_400 + h * 3600)
}

async fn pass(d: &Arc<Daemon>) -> Outcome {
    let (_tx, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    d.pass(&mut tasks, &rx).await.unwrap();
    let (_, o) = tasks.join_next().await.unwrap().unwrap();
    assert!(tasks.join_next().await.is_none());
    o
}

fn checked(o: &Outcome) -> Option<PasswordCheck> {
    match o {
        Outcome::BackedUp(b) => b.password.clone(),
        other => panic!("expected a backup, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_encrypted_snapshots_are_checked_against_the_remembered_password() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let spec = PhoneSpec {
        seed: 21,
        files: 5,
        bytes: 16 << 10,
        apps: 1,
        ..PhoneSpec::default()
    };
    let mut dev = DeviceConfig::new(t.join("sim"), spec);
    dev.kdf = Some((1000, 100));
    dev.backup_password = Some("phone pw".into());
    let sim = Simulator::start(SimulatorConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        unix: None,
        devices: vec![dev],
    })
    .await
    .unwrap();
    let udid = sim.udids().remove(0);
    let config = ConfigDir::at(t.join("config"));
    let mut s = config.device(&udid).unwrap();
    s.set("automatic", "on").unwrap();
    config.save_device(&udid, &s).unwrap();
    let store = PasswordStore::new(&config).keyring(false);
    let clock = Arc::new(ManualClock::new(at(0, 12)));
    let d = Daemon::new(DaemonConfig {
        mux: MuxAddr::parse(&sim.addr().to_string()).unwrap(),
        config: config.clone(),
        library: Some(t.join("lib")),
        clock: clock.clone(),
        zone: LocalZone::Fixed(FixedOffset::east_opt(0).unwrap()),
        session: SessionOptions {
            lockdown_dir: t.join("lockdown"),
            ..SessionOptions::default()
        },
        recheck: Duration::from_secs(60),
        passwords: Some(store.clone()),
        passcode_timeout: Duration::from_secs(300),
    });

    // Nothing remembered: backed up all the same (the daemon needs no password for that).
    let o = pass(&d).await;
    assert_eq!(checked(&o), Some(PasswordCheck::NotRemembered));

    // Remembered and right.
    store.remember(&udid, "phone pw", true).unwrap();
    clock.advance(Duration::from_secs(86_400));
    assert_eq!(checked(&pass(&d).await), Some(PasswordCheck::Opens));

    // Remembered but stale (as after a change on the phone): reported, backup kept.
    store.remember(&udid, "an old pw", true).unwrap();
    clock.advance(Duration::from_secs(86_400));
    assert_eq!(checked(&pass(&d).await), Some(PasswordCheck::Wrong));
    let lib = iosnap_store::Library::open(&t.join("lib"), config, clock).unwrap();
    assert_eq!(lib.snapshots(&udid).unwrap().len(), 3);
    sim.shutdown().await;
}
