//! Raw-byte tests of the usbmuxd front end and lockdownd (plaintext and TLS).

mod common;

use common::*;
use iosnap_proto::plist_frame::PlistFormat;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usbmuxd_lists_devices_and_serves_pair_records() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = start(tmp.path(), 2).await;
    let mut s = TcpStream::connect(sim.addr()).await.expect("connect");
    let r = mux_request(&mut s, 1, d([("MessageType", "ReadBUID".into())])).await;
    assert!(
        r.get("BUID")
            .and_then(plist::Value::as_string)
            .is_some_and(|b| b.len() == 36)
    );
    let r = mux_request(&mut s, 2, d([("MessageType", "ListDevices".into())])).await;
    let list = r
        .get("DeviceList")
        .and_then(plist::Value::as_array)
        .expect("list");
    assert_eq!(list.len(), 2);
    let props = list[0]
        .as_dictionary()
        .and_then(|x| x.get("Properties"))
        .and_then(plist::Value::as_dictionary)
        .expect("props");
    assert_eq!(
        props.get("SerialNumber").and_then(plist::Value::as_string),
        Some(sim.udids()[0].as_str())
    );
    assert_eq!(
        props
            .get("ConnectionType")
            .and_then(plist::Value::as_string),
        Some("USB")
    );

    let udid = sim.udids()[1].clone();
    let r = mux_request(
        &mut s,
        3,
        d([
            ("MessageType", "ReadPairRecord".into()),
            ("PairRecordID", udid.into()),
        ]),
    )
    .await;
    let data = r
        .get("PairRecordData")
        .and_then(plist::Value::as_data)
        .expect("record");
    let rec = plist::Value::from_reader_xml(data)
        .expect("xml")
        .into_dictionary()
        .expect("dict");
    for k in [
        "DeviceCertificate",
        "HostCertificate",
        "HostPrivateKey",
        "RootCertificate",
        "RootPrivateKey",
        "EscrowBag",
    ] {
        assert!(
            rec.get(k)
                .and_then(plist::Value::as_data)
                .is_some_and(|v| !v.is_empty()),
            "{k}"
        );
    }
    assert!(
        rec.get("HostID")
            .and_then(plist::Value::as_string)
            .is_some()
    );

    let r = mux_request(
        &mut s,
        4,
        d([
            ("MessageType", "ReadPairRecord".into()),
            ("PairRecordID", "nope".into()),
        ]),
    )
    .await;
    assert_eq!(
        r.get("Number").and_then(plist::Value::as_unsigned_integer),
        Some(2)
    );
    let r = mux_request(&mut s, 5, d([("MessageType", "Bogus".into())])).await;
    assert_eq!(
        r.get("Number").and_then(plist::Value::as_unsigned_integer),
        Some(1)
    );
    // Nothing listens on port 1234.
    let r = mux_request(
        &mut s,
        6,
        d([
            ("MessageType", "Connect".into()),
            ("DeviceID", plist::Value::Integer(1u64.into())),
            (
                "PortNumber",
                plist::Value::Integer(u64::from(1234u16.swap_bytes()).into()),
            ),
        ]),
    )
    .await;
    assert_eq!(
        r.get("Number").and_then(plist::Value::as_unsigned_integer),
        Some(3)
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_persists_across_restarts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = start(tmp.path(), 1).await;
    let udid = sim.udids()[0].clone();
    let host_id = sim
        .device(&udid)
        .expect("dev")
        .pair_record()
        .host_id
        .clone();
    sim.shutdown().await;
    let sim = start(tmp.path(), 1).await;
    assert_eq!(sim.udids()[0], udid);
    assert_eq!(
        sim.device(&udid).expect("dev").pair_record().host_id,
        host_id
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockdown_plain_then_tls_and_start_service() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = start(tmp.path(), 1).await;
    let mut s = connect(sim.addr(), 1, 62078).await;
    send_plist(
        &mut s,
        d([("Request", "QueryType".into())]),
        PlistFormat::Binary,
    )
    .await;
    let r = recv_plist(&mut s).await.into_dictionary().expect("dict");
    assert_eq!(
        r.get("Type").and_then(plist::Value::as_string),
        Some("com.apple.mobile.lockdown")
    );
    assert_eq!(
        r.get("Request").and_then(plist::Value::as_string),
        Some("QueryType")
    );
    send_plist(
        &mut s,
        d([
            ("Request", "GetValue".into()),
            ("Key", "ProductVersion".into()),
        ]),
        PlistFormat::Xml,
    )
    .await;
    let r = recv_plist(&mut s).await.into_dictionary().expect("dict");
    assert_eq!(
        r.get("Value").and_then(plist::Value::as_string),
        Some("17.5")
    );
    // No session yet: StartService is refused.
    send_plist(
        &mut s,
        d([
            ("Request", "StartService".into()),
            ("Service", "com.apple.afc".into()),
        ]),
        PlistFormat::Xml,
    )
    .await;
    let r = recv_plist(&mut s).await.into_dictionary().expect("dict");
    assert!(r.get("Error").is_some());
    drop(s);

    for tls12 in [true, false] {
        let mut t = lockdown_session(sim.addr(), 1, tls12).await;
        send_plist(
            &mut t,
            d([
                ("Request", "GetValue".into()),
                ("Domain", "com.apple.mobile.backup".into()),
                ("Key", "WillEncrypt".into()),
            ]),
            PlistFormat::Xml,
        )
        .await;
        let r = recv_plist(&mut t).await.into_dictionary().expect("dict");
        assert_eq!(
            r.get("Value").and_then(plist::Value::as_boolean),
            Some(false)
        );
        send_plist(
            &mut t,
            d([
                ("Request", "GetValue".into()),
                ("Domain", "com.apple.mobile.battery".into()),
            ]),
            PlistFormat::Xml,
        )
        .await;
        let r = recv_plist(&mut t).await.into_dictionary().expect("dict");
        let bat = r
            .get("Value")
            .and_then(plist::Value::as_dictionary)
            .expect("battery");
        assert_eq!(
            bat.get("BatteryCurrentCapacity")
                .and_then(plist::Value::as_unsigned_integer),
            Some(80)
        );
        send_plist(
            &mut t,
            d([("Request", "GetValue".into()), ("Key", "NoSuchKey".into())]),
            PlistFormat::Xml,
        )
        .await;
        let r = recv_plist(&mut t).await.into_dictionary().expect("dict");
        assert_eq!(
            r.get("Error").and_then(plist::Value::as_string),
            Some("MissingValue")
        );
        send_plist(
            &mut t,
            d([
                ("Request", "StartService".into()),
                ("Service", "com.apple.mobile.notification_proxy".into()),
            ]),
            PlistFormat::Xml,
        )
        .await;
        let r = recv_plist(&mut t).await.into_dictionary().expect("dict");
        let port = r
            .get("Port")
            .and_then(plist::Value::as_unsigned_integer)
            .expect("port");
        assert!(r.get("EnableServiceSSL").is_none());
        // The started service answers Shutdown with ProxyDeath.
        let mut np = connect(sim.addr(), 1, u16::try_from(port).expect("port")).await;
        send_plist(
            &mut np,
            d([
                ("Command", "PostNotification".into()),
                ("Name", "com.apple.itunes-mobdev.syncWillStart".into()),
            ]),
            PlistFormat::Xml,
        )
        .await;
        send_plist(
            &mut np,
            d([("Command", "Shutdown".into())]),
            PlistFormat::Xml,
        )
        .await;
        let r = recv_plist(&mut np).await.into_dictionary().expect("dict");
        assert_eq!(
            r.get("Command").and_then(plist::Value::as_string),
            Some("ProxyDeath")
        );
        send_plist(
            &mut t,
            d([
                ("Request", "StartService".into()),
                ("Service", "com.apple.nope".into()),
            ]),
            PlistFormat::Xml,
        )
        .await;
        let r = recv_plist(&mut t).await.into_dictionary().expect("dict");
        assert_eq!(
            r.get("Error").and_then(plist::Value::as_string),
            Some("InvalidService")
        );
        send_plist(
            &mut t,
            d([("Request", "StopSession".into())]),
            PlistFormat::Xml,
        )
        .await;
        let r = recv_plist(&mut t).await.into_dictionary().expect("dict");
        assert_eq!(
            r.get("Result").and_then(plist::Value::as_string),
            Some("Success")
        );
    }
    let udid = sim.udids()[0].clone();
    let h = sim.device(&udid).expect("handle");
    assert_eq!(
        h.counters().notifications_posted,
        vec!["com.apple.itunes-mobdev.syncWillStart".to_string(); 2]
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_phone_is_small() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = start(tmp.path(), 1).await;
    let h = sim.devices()[0].clone();
    let (n, bytes) = h.with_phone(|p| (p.file_count(), p.total_bytes()));
    eprintln!("test phone: {n} files, {bytes} bytes");
    assert!(bytes < 8 << 20, "keep the test phone small: {bytes} bytes");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_endpoint_serves_the_same_protocol() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tmp = tempfile::tempdir().expect("tmp");
    let sock = tmp.path().join("usbmuxd.sock");
    let mut dev = iosnap_simulator::DeviceConfig::new(tmp.path().join("dev"), small_spec(3));
    dev.connection = iosnap_simulator::ConnectionType::Network;
    let cfg = iosnap_simulator::SimulatorConfig {
        listen: None,
        unix: Some(sock.clone()),
        devices: vec![dev],
    };
    let sim = iosnap_simulator::Simulator::start(cfg)
        .await
        .expect("start");
    assert_eq!(sim.unix_path(), Some(sock.as_path()));
    let mut s = tokio::net::UnixStream::connect(&sock)
        .await
        .expect("connect");
    let msg = d([("MessageType", "ListDevices".into())]);
    let pkt =
        iosnap_proto::usbmux::encode_plist_packet(5, &plist::Value::Dictionary(msg)).expect("enc");
    s.write_all(&pkt).await.expect("write");
    let mut head = [0u8; 16];
    s.read_exact(&mut head).await.expect("head");
    let h = iosnap_proto::usbmux::MuxHeader::decode(&head).expect("header");
    let mut body = vec![0u8; h.payload_len(1 << 20).expect("len")];
    s.read_exact(&mut body).await.expect("body");
    let text = String::from_utf8(body).expect("utf8");
    assert!(text.contains("<string>Network</string>"), "{text}");
    assert!(text.contains(&sim.udids()[0]), "{text}");
    sim.shutdown().await;
    assert!(!sock.exists(), "socket removed on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_needs_a_listener_and_unique_udids() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = iosnap_simulator::SimulatorConfig {
        listen: None,
        unix: None,
        devices: vec![],
    };
    assert!(iosnap_simulator::Simulator::start(cfg).await.is_err());
    let mut a = iosnap_simulator::DeviceConfig::new(tmp.path().join("a"), small_spec(1));
    a.identity.udid = Some("00008030-000000000000000A".into());
    let mut b = iosnap_simulator::DeviceConfig::new(tmp.path().join("b"), small_spec(2));
    b.identity.udid = a.identity.udid.clone();
    let cfg = iosnap_simulator::SimulatorConfig {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        unix: None,
        devices: vec![a, b],
    };
    assert!(iosnap_simulator::Simulator::start(cfg).await.is_err());
}
