//! usbmuxd listing, sessions and values against the in-process simulator.
#![allow(clippy::unwrap_used)]

mod common;

use iosnap_device::{
    ConnectionType, DeviceEvent, DeviceSession, Error, MuxAddr, list_devices, watch_devices,
};
use iosnap_simulator::FaultPlan;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_devices_and_reads_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut wifi = common::device_config(&dir.path().join("d2"), 9, FaultPlan::default());
    wifi.connection = iosnap_simulator::ConnectionType::Network;
    let (sim, mux) = common::start(vec![
        common::device_config(&dir.path().join("d1"), 1, FaultPlan::default()),
        wifi,
    ])
    .await;
    let udid = sim.udids()[0].clone();
    let devs = list_devices(&mux).await.unwrap();
    assert_eq!(devs.len(), 2);
    assert_eq!(devs[0].udid, udid);
    assert_eq!(devs[0].connection, ConnectionType::Usb);
    assert_eq!(devs[1].udid, sim.udids()[1]);
    assert_eq!(devs[1].connection, ConnectionType::Network);
    // A network-attached phone works the same way.
    let n = common::session(&mux, &sim.udids()[1], dir.path()).await;
    assert_eq!(n.device().connection, ConnectionType::Network);
    assert!(!n.values().await.unwrap().product_version.is_empty());

    let s = common::session(&mux, &udid, dir.path()).await;
    let v = s.values().await.unwrap();
    let h = sim.device(&udid).unwrap();
    assert_eq!(v.udid, udid);
    assert_eq!(v.product_version, "17.5");
    assert!(!v.device_name.is_empty());
    assert!(!v.product_type.is_empty());
    assert!(!v.serial_number.is_empty());
    assert_eq!(v.battery_level, Some(u64::from(h.battery())));
    assert!(!v.will_encrypt);
    assert!(v.total_capacity.is_some());
    assert!(v.used_capacity.unwrap() <= v.total_capacity.unwrap());

    let missing = DeviceSession::connect(&mux, "0000-not-there")
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::DeviceNotFound { .. }), "{missing}");
    assert!(missing.is_retryable());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reports_present_devices() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let (sim, mux) = common::start(vec![common::device_config(
        &dir.path().join("d1"),
        2,
        FaultPlan::default(),
    )])
    .await;
    let mut events = Box::pin(watch_devices(&mux).await.unwrap());
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match first {
        DeviceEvent::Attached(d) => assert_eq!(d.udid, sim.udids()[0]),
        other => panic!("{other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_record_file_fallback_reads_a_real_record() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, _mux) = common::start(vec![common::device_config(
        &dir.path().join("d1"),
        3,
        FaultPlan::default(),
    )])
    .await;
    let udid = sim.udids()[0].clone();
    let lockdown = dir.path().join("lockdown");
    std::fs::create_dir_all(&lockdown).unwrap();
    assert!(
        iosnap_device::session::read_pair_record_file(&lockdown, &udid)
            .unwrap()
            .is_none()
    );
    let record = sim.device(&udid).unwrap().pair_record().to_xml();
    std::fs::write(lockdown.join(format!("{udid}.plist")), record).unwrap();
    let p = iosnap_device::session::read_pair_record_file(&lockdown, &udid)
        .unwrap()
        .unwrap();
    assert!(p.escrow_bag.is_some());
    assert!(!p.host_id.is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_address_form_works() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("usbmuxd.sock");
    let sim = iosnap_simulator::Simulator::start(iosnap_simulator::SimulatorConfig {
        listen: None,
        unix: Some(sock.clone()),
        devices: vec![common::device_config(
            &dir.path().join("d1"),
            4,
            FaultPlan::default(),
        )],
    })
    .await
    .unwrap();
    for form in [
        format!("UNIX:{}", sock.display()),
        sock.display().to_string(),
    ] {
        let mux = MuxAddr::parse(&form).unwrap();
        let devs = list_devices(&mux).await.unwrap();
        assert_eq!(devs.len(), 1, "{form}");
        let s = common::session(&mux, &devs[0].udid, dir.path()).await;
        assert!(!s.values().await.unwrap().device_name.is_empty());
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn no_usbmuxd_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mux = MuxAddr::parse(&format!("UNIX:{}", dir.path().join("usbmuxd").display())).unwrap();
    let e = list_devices(&mux).await.unwrap_err();
    assert!(e.to_string().contains("usbmuxd is not running"), "{e}");
}
