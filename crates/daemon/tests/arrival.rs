//! The running daemon loop (not single passes): started before usbmuxd is reachable, it backs a
//! phone up once one appears, then another phone that arrives after the first one left, and
//! stops cleanly when told to.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iosnap_daemon::{Daemon, DaemonConfig};
use iosnap_simulator::{ConnectionType, DeviceConfig, PhoneSpec, Simulator, SimulatorConfig};
use iosnap_store::{ConfigDir, Library, ManualClock};
use tokio::sync::watch;

fn phone(dir: &Path, seed: u64, connection: ConnectionType) -> DeviceConfig {
    let spec = PhoneSpec {
        seed,
        files: 5,
        bytes: 16 << 10,
        apps: 1,
        ..PhoneSpec::default()
    };
    let mut d = DeviceConfig::new(dir, spec);
    d.kdf = Some((1000, 100));
    d.connection = connection;
    d
}

async fn start(addr: std::net::SocketAddr, dev: DeviceConfig) -> Simulator {
    Simulator::start(SimulatorConfig {
        listen: Some(addr),
        unix: None,
        devices: vec![dev],
    })
    .await
    .unwrap()
}

/// Waits (bounded) for the daemon, running on its own, to have made `n` snapshots of `udid`.
async fn snapshots_reach(lib: &Library, udid: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while lib.snapshot_names(udid).map(|v| v.len()).unwrap_or(0) < n {
        assert!(Instant::now() < deadline, "no backup of {udid} within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_arriving_while_the_daemon_runs_are_backed_up() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // A loopback port nobody listens on yet: usbmuxd is "not running" when the daemon starts.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let usb = phone(&t.join("sim/usb"), 41, ConnectionType::Usb);
    let wifi = phone(&t.join("sim/wifi"), 42, ConnectionType::Network);

    // Learn the phones' UDIDs (and turn automatic backups on) without the daemon watching.
    let config = ConfigDir::at(t.join("config"));
    let mut udids = Vec::new();
    for dev in [&usb, &wifi] {
        let s = start("127.0.0.1:0".parse().unwrap(), dev.clone()).await;
        let udid = s.udids().remove(0);
        s.shutdown().await;
        let mut set = config.device(&udid).unwrap();
        set.set("automatic", "on").unwrap();
        config.save_device(&udid, &set).unwrap();
        udids.push(udid);
    }

    let clock = Arc::new(ManualClock::new(common::at(0, 12, 0)));
    let d = Daemon::new(DaemonConfig {
        recheck: Duration::from_millis(100),
        ..common::daemon_config(t, &addr.to_string(), &clock)
    });
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(d.clone().run(stopped));
    let lib = Library::open(&t.join("lib"), config.clone(), clock.clone()).unwrap();

    // usbmuxd comes up with the USB phone: backed up without any nudge.
    let sim = start(addr, usb).await;
    snapshots_reach(&lib, &udids[0], 1).await;
    sim.shutdown().await;

    // The USB phone leaves; a Wi-Fi phone arrives: backed up too, the first one not again.
    let sim = start(addr, wifi).await;
    snapshots_reach(&lib, &udids[1], 1).await;
    assert_eq!(lib.snapshot_names(&udids[0]).unwrap().len(), 1);

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .expect("the daemon stops when told to")
        .unwrap();
    assert_eq!(lib.snapshot_names(&udids[1]).unwrap().len(), 1);
    sim.shutdown().await;
}
