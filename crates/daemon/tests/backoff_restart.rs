//! Backoff survives daemon restarts: a phone whose backups keep failing is not retried at once
//! by a restarted daemon (reboot, `systemctl restart`, crash + `Restart=on-failure`), the
//! failure count keeps growing across restarts, `daemon status` shows it, and a success clears
//! it from the state file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{automatic_on, daemon_config, pass_for, set_time, small_phone, start_sim};
use iosnap_daemon::{Daemon, Outcome, Waiting};
use iosnap_simulator::{ConnectionType, DeviceConfig, Simulator};
use iosnap_store::{ConfigDir, ManualClock};

/// 12:`m`… on the first day.
fn at(h: u64, m: u64) -> std::time::SystemTime {
    common::at(0, h, m)
}

fn device(dir: &Path, fail: bool) -> DeviceConfig {
    let mut d = small_phone(dir, 11, 6, 32 << 10);
    d.connection = ConnectionType::Usb;
    if fail {
        d.faults.drop_at_step = Some(5);
    }
    d
}

async fn sim(t: &Path, addr: &str, fail: bool) -> Simulator {
    start_sim(addr, vec![device(&t.join("sim"), fail)]).await
}

/// A fresh daemon (as after a restart) on the same config folder and library.
fn daemon(t: &Path, addr: &str, clock: &Arc<ManualClock>) -> Arc<Daemon> {
    Daemon::new(daemon_config(t, addr, clock))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_is_remembered_across_restarts_and_cleared_by_a_success() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let s = sim(t, "127.0.0.1:0", true).await;
    let addr = s.addr().to_string();
    let udid = s.udids().remove(0);
    automatic_on(&ConfigDir::at(t.join("config")), &udid);
    let clock = Arc::new(ManualClock::new(at(12, 0)));
    let state_file = t.join("config/daemon/state.json");

    // First run: the backup fails (unplugged mid-way); the failure is on disk.
    let d = daemon(t, &addr, &clock);
    assert!(matches!(pass_for(&d, &udid).await, Outcome::Failed(_)));
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
    let o = pass_for(&d, &udid).await;
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
    assert!(matches!(pass_for(&d, &udid).await, Outcome::Failed(_)));
    drop(d);
    set_time(&clock, at(12, 6));
    let d = daemon(t, &addr, &clock);
    let o = pass_for(&d, &udid).await;
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
    let o = pass_for(&d, &udid).await;
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
    automatic_on(&ConfigDir::at(t.join("config")), &udid);
    std::fs::create_dir_all(t.join("config/daemon")).unwrap();
    std::fs::write(t.join("config/daemon/state.json"), "garbage").unwrap();
    let clock = Arc::new(ManualClock::new(at(12, 0)));
    let d = daemon(t, &addr, &clock);
    assert_eq!(d.failures(&udid).count, 0);
    let o = pass_for(&d, &udid).await;
    assert!(matches!(o, Outcome::BackedUp(_)), "{o:?}");
    s.shutdown().await;
}
