//! What the daemon tests share: a fixed calendar on a manual clock, small simulated phones, a
//! daemon configured against them, and one scheduling pass.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // not every test uses every helper

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::FixedOffset;
use iosnap_daemon::{Daemon, DaemonConfig, LocalZone, Outcome};
use iosnap_device::{MuxAddr, SessionOptions};
use iosnap_simulator::{DeviceConfig, PhoneSpec, Simulator, SimulatorConfig};
use iosnap_store::{ConfigDir, ManualClock};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// 2026-11-24 00:00:00 UTC.
pub const DAY0: u64 = 1_795_478_400;

/// `day` days after [`DAY0`], at `h:m` UTC.
pub fn at(day: u64, h: u64, m: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(DAY0 + day * 86_400 + h * 3600 + m * 60)
}

/// Moves the manual clock forward to `t`.
pub fn set_time(clock: &ManualClock, t: SystemTime) {
    let now = iosnap_store::Clock::now(clock);
    clock.advance(t.duration_since(now).unwrap());
}

/// A small phone (one app, `files` bulk files of `bytes` in all) with a fast KDF.
pub fn small_phone(dir: &Path, seed: u64, files: u64, bytes: u64) -> DeviceConfig {
    let spec = PhoneSpec {
        seed,
        files,
        bytes,
        apps: 1,
        ..PhoneSpec::default()
    };
    let mut d = DeviceConfig::new(dir, spec);
    d.kdf = Some((1000, 100));
    d
}

/// A simulator serving `devices` on `addr` (`127.0.0.1:0` for any port).
pub async fn start_sim(addr: &str, devices: Vec<DeviceConfig>) -> Simulator {
    Simulator::start(SimulatorConfig {
        listen: Some(addr.parse().unwrap()),
        unix: None,
        devices,
    })
    .await
    .unwrap()
}

/// Turns automatic backups on for `udid`.
pub fn automatic_on(config: &ConfigDir, udid: &str) {
    let mut s = config.device(udid).unwrap();
    s.set("automatic", "on").unwrap();
    config.save_device(udid, &s).unwrap();
}

/// The daemon's configuration for tests under `t` (config, library and lockdown folders
/// there, UTC), talking to the simulator at `addr`, with no password store and a 300 s
/// passcode timeout.
pub fn daemon_config(t: &Path, addr: &str, clock: &Arc<ManualClock>) -> DaemonConfig {
    DaemonConfig {
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
    }
}

/// One scheduling pass that checks exactly one phone; its outcome.
pub async fn pass_one(d: &Arc<Daemon>) -> Outcome {
    let (_tx, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    d.pass(&mut tasks, &rx).await.unwrap();
    let (_, o) = tasks.join_next().await.unwrap().unwrap();
    assert!(tasks.join_next().await.is_none());
    o
}

/// One scheduling pass; the outcome for `udid`.
pub async fn pass_for(d: &Arc<Daemon>, udid: &str) -> Outcome {
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
