//! Backoff survives daemon restarts: a phone whose backups keep failing is not retried at once
//! by a restarted daemon (reboot, `systemctl restart`, crash + `Restart=on-failure`), the
//! failure count keeps growing across restarts, `daemon status` shows it, and a success clears
//! it from the state file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::FixedOffset;
use iosnap_daemon::{Daemon, DaemonConfig, LocalZone, Outcome, Waiting};
use iosnap_device::{MuxAddr, SessionOptions};
use iosnap_simulator::{ConnectionType, DeviceConfig, PhoneSpec, Simulator, SimulatorConfig};
use iosnap_store::{ConfigDir, ManualClock};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// 2026-11-24 00:00:00 UTC.
const DAY0: u64 = 1_795_478_400;

fn at(h: u64, m: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(DAY0 + h * 3600 + m * 60)
}

fn device(dir: &Path, fail: bool) -> DeviceConfig {
    let spec = PhoneSpec {
        seed: 11,
        files: 6,
        bytes: 32 << 10,
        apps: 1,
        ..PhoneSpec::default()
    };
    let mut d = DeviceConfig::new(dir, spec);
    d.kdf = Some((1000, 100));
    d.connection = ConnectionType::Usb;
    if fail {
        d.faults.drop_at_step = Some(5);
    }
    d
}

async fn sim(t: &Path, addr: &str, fail: bool) -> Simulator {
    Simulator::start(SimulatorConfig {
        listen: Some(addr.parse().unwrap()),
        unix: None,
        devices: vec![device(&t.join("sim"), fail)],
    })
    .await
    .unwrap()
}

/// A fresh daemon (as after a restart) on the same config folder and library.
fn daemon(t: &Path, addr: &str, clock: &Arc<ManualClock>) -> Arc<Daemon> {
    Daemon::new(DaemonConfig {
        mux: MuxAddr::parse(addr).unwrap(),
        config: ConfigDir::at(t.join("config")),
        library: Some(t.join("lib")),
        clock: clock.clone(),
        zone: LocalZone::Fixed(FixedOffset::east_opt(0).unwrap()),
        session: SessionOptions {
            lockdown_dir: t.join("lockdown"),
            ..SessionOptions::default()
        },
        recheck: Duration::from_secs(60),
        passwords: None,
        passcode_timeout: Duration::from_secs(300),
    })
}

async fn pass(d: &Arc<Daemon>, udid: &str) -> Outcome {
    let (_tx, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    d.pass(&mut tasks, &rx).await.unwrap();
    let mut found = None;
    while let Some(r) = tasks.join_next().await {
        let (u, o) = r.unwrap();
        if u == udid {
            found = Some(o);
        }
    }
    found.expect("the device was checked")
}

fn set_time(clock: &ManualClock, t: SystemTime) {
    let now = iosnap_store::Clock::now(clock);
    clock.advance(t.duration_since(now).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_is_remembered_across_restarts_and_cleared_by_a_success() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let s = sim(t, "127.0.0.1:0", true).await;
    let addr = s.addr().to_string();
    let udid = s.udids().remove(0);
    let config = ConfigDir::at(t.join("config"));
    let mut settings = config.device(&udid).unwrap();
    settings.set("automatic", "on").unwrap();
    config.save_device(&udid, &settings).unwrap();
    let clock = Arc::new(ManualClock::new(at(12, 0)));
    let state_file = t.join("config/daemon/state.json");

    // First run: the backup fails (unplugged mid-way); the failure is on disk.
    let d = daemon(t, &addr, &clock);
    assert!(matches!(pass(&d, &udid).await, Outcome::Failed(_)));
    drop(d);
    let text = std::fs::read_to_string(&state_file).unwrap();
    assert!(
        text.contains(&udid) && text.contains("\"failures\": 1"),
        "{text}"
    );

    // Restarted a minute later: still backing off (not retried at once), until 12:05.
    set_time(&clock, at(12, 1));
    let d = daemon(t, &addr, &clock);
    assert_eq!(d.failures(&udid).count, 1);
    let o = pass(&d, &udid).await;
    assert!(
        matches!(o, Outcome::Waiting(Waiting::Backoff { until, failures: 1 }) if until == at(12, 5)),
        "{o:?}"
    );
    // `daemon status` (a separate Daemon value, as the CLI builds it) shows the backoff too.
    let st = iosnap_daemon::status(&daemon(t, &addr, &clock), &[]).await;
    assert!(
        matches!(st[0].waiting, Some(Waiting::Backoff { failures: 1, .. })),
        "{st:?}"
    );

    // 12:05: retried, fails again; after another restart the count is 2 and the wait 10 min.
    set_time(&clock, at(12, 5));
    assert!(matches!(pass(&d, &udid).await, Outcome::Failed(_)));
    drop(d);
    set_time(&clock, at(12, 6));
    let d = daemon(t, &addr, &clock);
    let o = pass(&d, &udid).await;
    assert!(
        matches!(o, Outcome::Waiting(Waiting::Backoff { until, failures: 2 }) if until == at(12, 15)),
        "{o:?}"
    );
    drop(d);

    // The phone is fine again: after the backoff, a restarted daemon backs it up and the
    // state file forgets the device.
    s.shutdown().await;
    let s = sim(t, &addr, false).await;
    set_time(&clock, at(12, 15));
    let d = daemon(t, &addr, &clock);
    let o = pass(&d, &udid).await;
    assert!(matches!(o, Outcome::BackedUp(_)), "{o:?}");
    let text = std::fs::read_to_string(&state_file).unwrap();
    assert!(!text.contains(&udid), "{text}");
    drop(d);
    assert_eq!(daemon(t, &addr, &clock).failures(&udid).count, 0);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_state_file_does_not_stop_the_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let s = sim(t, "127.0.0.1:0", false).await;
    let addr = s.addr().to_string();
    let udid = s.udids().remove(0);
    let config = ConfigDir::at(t.join("config"));
    let mut settings = config.device(&udid).unwrap();
    settings.set("automatic", "on").unwrap();
    config.save_device(&udid, &settings).unwrap();
    std::fs::create_dir_all(t.join("config/daemon")).unwrap();
    std::fs::write(t.join("config/daemon/state.json"), "garbage").unwrap();
    let clock = Arc::new(ManualClock::new(at(12, 0)));
    let d = daemon(t, &addr, &clock);
    assert_eq!(d.failures(&udid).count, 0);
    let o = pass(&d, &udid).await;
    assert!(matches!(o, Outcome::BackedUp(_)), "{o:?}");
    s.shutdown().await;
}
