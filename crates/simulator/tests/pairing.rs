//! Pairing state at the protocol level: usbmuxd's record store (Read/Save/DeletePairRecord),
//! lockdown `Pair` with the simulated user's answer, `DevicePublicKey`, and `StartSession`
//! refusing hosts the phone does not trust.

mod common;

use common::*;
use iosnap_proto::plist_frame::PlistFormat;
use iosnap_simulator::{DeviceConfig, PairingMode};
use tokio::net::TcpStream;

fn number(r: &plist::Dictionary) -> Option<u64> {
    r.get("Number").and_then(plist::Value::as_unsigned_integer)
}

async fn lockdown(addr: std::net::SocketAddr, req: plist::Dictionary) -> plist::Dictionary {
    let mut s = connect(addr, 1, 62078).await;
    send_plist(&mut s, req, PlistFormat::Xml).await;
    recv_plist(&mut s).await.into_dictionary().expect("dict")
}

fn pair_request(host: &str) -> plist::Dictionary {
    let record = d([
        ("HostID", host.into()),
        ("HostCertificate", plist::Value::Data(b"host".to_vec())),
        ("RootCertificate", plist::Value::Data(b"root".to_vec())),
        ("DeviceCertificate", plist::Value::Data(b"dev".to_vec())),
        ("SystemBUID", "B".into()),
    ]);
    d([
        ("Request", "Pair".into()),
        ("PairRecord", plist::Value::Dictionary(record)),
        ("ProtocolVersion", "2".into()),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaired_phone_pairs_after_the_trust_dialog() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut cfg = DeviceConfig::new(tmp.path().join("dev"), small_spec(3));
    cfg.unpaired = true;
    cfg.pairing = PairingMode::AskTrust(2);
    let sim = start_with(vec![cfg]).await;
    let udid = sim.udids()[0].clone();
    let h = sim.device(&udid).expect("dev");
    let addr = sim.addr();

    let mut s = TcpStream::connect(addr).await.expect("connect");
    let read = d([
        ("MessageType", "ReadPairRecord".into()),
        ("PairRecordID", udid.clone().into()),
    ]);
    assert_eq!(number(&mux_request(&mut s, 1, read.clone()).await), Some(2));
    let delete = d([
        ("MessageType", "DeletePairRecord".into()),
        ("PairRecordID", udid.clone().into()),
    ]);
    assert_eq!(
        number(&mux_request(&mut s, 2, delete.clone()).await),
        Some(2)
    );
    let junk = d([
        ("MessageType", "SavePairRecord".into()),
        ("PairRecordID", udid.clone().into()),
        (
            "PairRecordData",
            plist::Value::Data(b"not a plist".to_vec()),
        ),
    ]);
    assert_eq!(number(&mux_request(&mut s, 3, junk).await), Some(1));
    assert!(!h.has_pair_record());

    // The phone's RSA public key, the same on every request.
    let key = |r: plist::Dictionary| {
        r.get("Value")
            .and_then(plist::Value::as_data)
            .map(<[u8]>::to_vec)
            .expect("DevicePublicKey")
    };
    let get = d([
        ("Request", "GetValue".into()),
        ("Key", "DevicePublicKey".into()),
    ]);
    let k1 = key(lockdown(addr, get.clone()).await);
    assert!(k1.starts_with(b"-----BEGIN RSA PUBLIC KEY-----"));
    assert_eq!(key(lockdown(addr, get).await), k1);

    // Nobody is trusted yet.
    let start = d([
        ("Request", "StartSession".into()),
        ("HostID", "HOST-1".into()),
        ("SystemBUID", "B".into()),
    ]);
    let r = lockdown(addr, start.clone()).await;
    assert_eq!(
        r.get("Error").and_then(plist::Value::as_string),
        Some("InvalidHostID")
    );

    // "Trust This Computer?" is up for two requests, then the user taps Trust.
    let mut ld = connect(addr, 1, 62078).await;
    for _ in 0..2 {
        send_plist(&mut ld, pair_request("HOST-1"), PlistFormat::Xml).await;
        let r = recv_plist(&mut ld).await.into_dictionary().expect("dict");
        assert_eq!(
            r.get("Error").and_then(plist::Value::as_string),
            Some("PairingDialogResponsePending")
        );
    }
    send_plist(&mut ld, pair_request("HOST-1"), PlistFormat::Xml).await;
    let r = recv_plist(&mut ld).await.into_dictionary().expect("dict");
    assert_eq!(
        r.get("Result").and_then(plist::Value::as_string),
        Some("Success")
    );
    assert_eq!(
        r.get("EscrowBag").and_then(plist::Value::as_data),
        Some(h.pair_record().escrow_bag.as_slice())
    );
    assert_eq!(h.trusted_hosts(), vec!["HOST-1".to_string()]);
    let r = lockdown(addr, start).await;
    assert_eq!(
        r.get("EnableSessionSSL").and_then(plist::Value::as_boolean),
        Some(true)
    );

    // usbmuxd keeps what the host saves, across a restart, until it is deleted.
    let record = plist::Value::Dictionary(d([("HostID", "HOST-1".into())]));
    let mut bytes = Vec::new();
    record.to_writer_xml(&mut bytes).expect("xml");
    let save = d([
        ("MessageType", "SavePairRecord".into()),
        ("PairRecordID", udid.clone().into()),
        ("PairRecordData", plist::Value::Data(bytes.clone())),
        ("DeviceID", plist::Value::Integer(1u64.into())),
    ]);
    assert_eq!(number(&mux_request(&mut s, 4, save).await), Some(0));
    let r = mux_request(&mut s, 5, read.clone()).await;
    assert_eq!(
        r.get("PairRecordData").and_then(plist::Value::as_data),
        Some(&bytes[..])
    );
    drop(s);
    sim.shutdown().await;

    let mut cfg = DeviceConfig::new(tmp.path().join("dev"), small_spec(3));
    cfg.pairing = PairingMode::Refuse;
    let sim = start_with(vec![cfg]).await;
    let h = sim.device(&udid).expect("dev");
    assert!(h.has_pair_record(), "the saved record survives a restart");
    assert_eq!(h.trusted_hosts(), vec!["HOST-1".to_string()]);
    let mut s = TcpStream::connect(sim.addr()).await.expect("connect");
    assert_eq!(
        number(&mux_request(&mut s, 1, delete.clone()).await),
        Some(0)
    );
    assert_eq!(number(&mux_request(&mut s, 2, read).await), Some(2));
    assert!(!h.has_pair_record());

    // A refusing phone: "Don't Trust".
    let r = lockdown(sim.addr(), pair_request("HOST-2")).await;
    assert_eq!(
        r.get("Error").and_then(plist::Value::as_string),
        Some("UserDeniedPairing")
    );
    // Unpair forgets the host.
    let unpair = d([
        ("Request", "Unpair".into()),
        (
            "PairRecord",
            plist::Value::Dictionary(d([("HostID", "HOST-1".into())])),
        ),
    ]);
    let r = lockdown(sim.addr(), unpair.clone()).await;
    assert_eq!(
        r.get("Result").and_then(plist::Value::as_string),
        Some("Success")
    );
    assert!(h.trusted_hosts().is_empty());
    let r = lockdown(sim.addr(), unpair).await;
    assert_eq!(
        r.get("Error").and_then(plist::Value::as_string),
        Some("InvalidHostID")
    );
    drop(s);
    sim.shutdown().await;
}
