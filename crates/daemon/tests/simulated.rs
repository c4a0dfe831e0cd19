//! The daemon against simulated phones (one on USB, one on Wi-Fi) with a manual clock and
//! controllable battery: backups happen exactly when due, the backup lock is honoured, and an
//! unplugged phone leaves no partial snapshot and is retried after the backoff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use iosnap_daemon::{BackupLock, Daemon, Outcome, Waiting, backup_to_snapshot};
use iosnap_device::{BackupOptions, DeviceSession, MuxAddr};
use iosnap_simulator::{ConnectionType, DeviceConfig, PhoneSpec, Simulator, SimulatorConfig};
use iosnap_store::{ConfigDir, Library, ManualClock};
use tokio::sync::watch;
use tokio::task::JoinSet;

use common::{at, daemon_config};

fn device(dir: &Path, seed: u64, connection: ConnectionType) -> DeviceConfig {
    let spec = PhoneSpec {
        seed,
        files: 10,
        bytes: 64 << 10,
        apps: 1,
        ..PhoneSpec::default()
    };
    let mut d = DeviceConfig::new(dir, spec);
    d.kdf = Some((1000, 100));
    d.connection = connection;
    d
}

struct Env {
    clock: Arc<ManualClock>,
    daemon: Arc<Daemon>,
    config: ConfigDir,
    lib_root: std::path::PathBuf,
}

fn env(t: &Path, addr: &str, start: SystemTime) -> Env {
    let clock = Arc::new(ManualClock::new(start));
    let config = ConfigDir::at(t.join("config"));
    let lib_root = t.join("lib");
    let daemon = Daemon::new(daemon_config(t, addr, &clock));
    Env {
        clock,
        daemon,
        config,
        lib_root,
    }
}

impl Env {
    fn set(&self, udid: &str, key: &str, value: &str) {
        let mut s = self.config.device(udid).unwrap();
        s.set(key, value).unwrap();
        self.config.save_device(udid, &s).unwrap();
    }

    fn library(&self) -> Library {
        Library::open(&self.lib_root, self.config.clone(), self.clock.clone()).unwrap()
    }

    fn snapshots(&self, udid: &str) -> Vec<String> {
        self.library().snapshot_names(udid).unwrap()
    }

    fn set_time(&self, t: SystemTime) {
        let now = iosnap_store::Clock::now(self.clock.as_ref());
        assert!(t >= now, "the manual clock only goes forward");
        self.clock.advance(t.duration_since(now).unwrap());
    }

    /// One daemon pass over the connected devices, waiting for every check to finish.
    async fn pass(&self) -> HashMap<String, Outcome> {
        let (_tx, rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        self.daemon.pass(&mut tasks, &rx).await.unwrap();
        let mut out = HashMap::new();
        while let Some(r) = tasks.join_next().await {
            let (udid, o) = r.unwrap();
            out.insert(udid, o);
        }
        out
    }
}

fn no_staging_left(lib_root: &Path, udid: &str) {
    let dir = lib_root.join(udid);
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            assert!(!n.starts_with(".staging-"), "leftover {n}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phones_are_backed_up_exactly_when_due() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let sim = Simulator::start(SimulatorConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        unix: None,
        devices: vec![
            device(&t.join("sim/usb"), 1, ConnectionType::Usb),
            device(&t.join("sim/wifi"), 2, ConnectionType::Network),
        ],
    })
    .await
    .unwrap();
    let udids = sim.udids();
    let (usb, wifi) = (udids[0].clone(), udids[1].clone());
    let e = env(t, &sim.addr().to_string(), at(0, 8, 0));

    // Nothing happens while automatic backups are off (the default).
    let o = e.pass().await;
    assert!(matches!(o[&usb], Outcome::Waiting(Waiting::Disabled)));
    assert!(matches!(o[&wifi], Outcome::Waiting(Waiting::Disabled)));

    e.set(&usb, "automatic", "on");
    e.set(&usb, "window", "09:00-18:00");
    e.set(&usb, "min-battery", "50");
    e.set(&usb, "charging-overrides", "off");
    e.set(&wifi, "automatic", "on");

    // 08:00: the USB phone is outside its window; the Wi-Fi phone (any time) is backed up.
    let o = e.pass().await;
    assert!(
        matches!(o[&usb], Outcome::Waiting(Waiting::Window { opens }) if opens == at(0, 9, 0)),
        "{o:?}"
    );
    assert!(matches!(o[&wifi], Outcome::BackedUp(_)), "{o:?}");
    assert_eq!(e.snapshots(&wifi).len(), 1);
    assert!(e.snapshots(&usb).is_empty());

    // 09:00 with the battery at 30 %: below the threshold. The Wi-Fi phone is done today.
    e.set_time(at(0, 9, 0));
    sim.device(&usb).unwrap().set_battery(30);
    let o = e.pass().await;
    assert!(
        matches!(
            o[&usb],
            Outcome::Waiting(Waiting::Battery {
                level: 30,
                threshold: 50
            })
        ),
        "{o:?}"
    );
    assert!(
        matches!(o[&wifi], Outcome::Waiting(Waiting::NotDueUntil { until }) if until == at(1, 0, 0)),
        "{o:?}"
    );

    // Battery at 50 %: both phones now have today's backup, made in parallel passes.
    sim.device(&usb).unwrap().set_battery(50);
    let o = e.pass().await;
    assert!(matches!(o[&usb], Outcome::BackedUp(_)), "{o:?}");
    assert_eq!(e.snapshots(&usb).len(), 1);

    // Later the same day: not twice a day.
    e.set_time(at(0, 17, 0));
    let o = e.pass().await;
    assert!(matches!(
        o[&usb],
        Outcome::Waiting(Waiting::NotDueUntil { .. })
    ));
    assert!(matches!(
        o[&wifi],
        Outcome::Waiting(Waiting::NotDueUntil { .. })
    ));

    // Day 1, 00:30: a manual backup of the Wi-Fi phone (what `iosnap backup` does) counts:
    // the daemon does not back it up again until day 2.
    e.set_time(at(1, 0, 30));
    {
        let lib = e.library();
        let session = DeviceSession::connect_with(
            &MuxAddr::parse(&sim.addr().to_string()).unwrap(),
            &wifi,
            e.daemon.config().session.clone(),
        )
        .await
        .unwrap();
        backup_to_snapshot(&lib, &session, &BackupOptions::default(), |_| {})
            .await
            .unwrap();
    }
    e.set_time(at(1, 0, 31));
    let o = e.pass().await;
    assert!(
        matches!(o[&wifi], Outcome::Waiting(Waiting::NotDueUntil { until }) if until == at(2, 0, 0)),
        "{o:?}"
    );
    assert!(matches!(o[&usb], Outcome::Waiting(Waiting::Window { .. })));
    assert_eq!(e.snapshots(&wifi).len(), 2);

    // Day 2, 09:00: both due, but an `iosnap backup` of the USB phone holds its lock: the
    // daemon leaves it alone (no second backup, no failure), and takes it on the next pass.
    e.set_time(at(2, 9, 0));
    let held = BackupLock::acquire(&e.lib_root.join(&usb), &usb).unwrap();
    e.set(&wifi, "wifi", "off");
    let o = e.pass().await;
    assert!(
        matches!(&o[&usb], Outcome::Busy(m) if m.contains("already running")),
        "{o:?}"
    );
    assert!(
        matches!(o[&wifi], Outcome::Waiting(Waiting::WifiNotAllowed)),
        "{o:?}"
    );
    assert_eq!(e.snapshots(&usb).len(), 1);
    drop(held);
    e.set(&wifi, "wifi", "on");
    let o = e.pass().await;
    assert!(matches!(o[&usb], Outcome::BackedUp(_)), "{o:?}");
    assert!(matches!(o[&wifi], Outcome::BackedUp(_)), "{o:?}");
    assert_eq!(e.snapshots(&usb).len(), 2);
    assert_eq!(e.snapshots(&wifi).len(), 3);
    // Snapshots are named after the (manual) clock: exactly the due times.
    assert_eq!(
        e.snapshots(&usb),
        vec![
            "2026-11-24T090000Z".to_string(),
            "2026-11-26T090000Z".into()
        ]
    );
    no_staging_left(&e.lib_root, &usb);
    no_staging_left(&e.lib_root, &wifi);

    // `daemon status`: last backup, next due (window-aware), why waiting; a device known only
    // from its settings shows as not connected.
    let gone = "00008030-000000000000AAAA";
    e.set(gone, "automatic", "on");
    let st = iosnap_daemon::status(&e.daemon, &[gone.to_string()]).await;
    assert_eq!(st.len(), 3);
    let row = |u: &str| st.iter().find(|r| r.udid == u).unwrap();
    let u = row(&usb);
    assert_eq!(u.connection.as_deref(), Some("USB"));
    assert_eq!(u.last_backup.as_deref(), Some("2026-11-26T09:00:00Z"));
    assert_eq!(u.next_due.as_deref(), Some("2026-11-27T09:00:00Z"));
    assert!(matches!(u.waiting, Some(Waiting::NotDueUntil { .. })));
    assert_eq!(row(&wifi).connection.as_deref(), Some("Network"));
    assert_eq!(row(&wifi).next_due.as_deref(), Some("2026-11-27T00:00:00Z"));
    let g = row(gone);
    assert_eq!(g.connection, None);
    assert_eq!(g.state, "not connected");
    assert_eq!(g.last_backup, None);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplugged_mid_backup_leaves_no_snapshot_and_is_retried_with_backoff() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let mut faulty = device(&t.join("sim/usb"), 3, ConnectionType::Usb);
    faulty.faults.drop_at_step = Some(5);
    let sim = Simulator::start(SimulatorConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        unix: None,
        devices: vec![faulty],
    })
    .await
    .unwrap();
    let addr = sim.addr();
    let udid = sim.udids().remove(0);
    let e = env(t, &addr.to_string(), at(0, 12, 0));
    e.set(&udid, "automatic", "on");

    let o = e.pass().await;
    // A real mid-backup failure, not a refused connection.
    assert!(
        matches!(&o[&udid], Outcome::Failed(m) if m.contains("disconnected during backup")),
        "{o:?}"
    );
    assert!(e.snapshots(&udid).is_empty());
    no_staging_left(&e.lib_root, &udid);

    // Right after the failure: backing off (5 minutes after the first failure).
    e.set_time(at(0, 12, 1));
    let o = e.pass().await;
    assert!(
        matches!(o[&udid], Outcome::Waiting(Waiting::Backoff { until, failures: 1 }) if until == at(0, 12, 5)),
        "{o:?}"
    );

    // The phone is plugged back in (same phone, no fault) and the backoff has passed.
    sim.shutdown().await;
    let sim = Simulator::start(SimulatorConfig {
        listen: Some(addr),
        unix: None,
        devices: vec![device(&t.join("sim/usb"), 3, ConnectionType::Usb)],
    })
    .await
    .unwrap();
    e.set_time(at(0, 12, 5));
    let o = e.pass().await;
    assert!(matches!(o[&udid], Outcome::BackedUp(_)), "{o:?}");
    assert_eq!(e.snapshots(&udid), vec!["2026-11-24T120500Z".to_string()]);
    no_staging_left(&e.lib_root, &udid);
    sim.shutdown().await;
}
