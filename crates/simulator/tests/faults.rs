//! Injected faults: the documented step counting (every DeviceLink message the device sends on
//! mobilebackup2 is one step, the version exchange is step 1), and what real hosts see.

mod common;

use std::time::Duration;

use common::*;
use iosnap_proto::devicelink;
use iosnap_proto::plist_frame::PlistFormat;
use iosnap_simulator::{DeviceConfig, FaultPlan};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn faulty_sim(tmp: &std::path::Path, faults: &[&str]) -> iosnap_simulator::Simulator {
    let mut d = DeviceConfig::new(tmp.join("dev"), small_spec(7));
    d.kdf = Some((10, 10));
    d.faults = FaultPlan::parse(faults.iter().copied()).expect("faults");
    start_with(vec![d]).await
}

/// Starts mobilebackup2 through lockdown and returns the raw service connection.
async fn mb2(sim: &iosnap_simulator::Simulator) -> TcpStream {
    let mut t = lockdown_session(sim.addr(), 1, false).await;
    send_plist(
        &mut t,
        d([
            ("Request", "StartService".into()),
            ("Service", "com.apple.mobilebackup2".into()),
        ]),
        PlistFormat::Xml,
    )
    .await;
    let r = recv_plist(&mut t).await.into_dictionary().expect("dict");
    let port = r
        .get("Port")
        .and_then(plist::Value::as_unsigned_integer)
        .expect("port");
    connect(sim.addr(), 1, u16::try_from(port).expect("port")).await
}

async fn send_value(s: &mut TcpStream, v: plist::Value) {
    let f = iosnap_proto::plist_frame::encode_frame(&v, PlistFormat::Binary).expect("encode");
    s.write_all(&f).await.expect("write");
}

async fn handshake(s: &mut TcpStream) {
    let v = recv_plist(s).await;
    assert_eq!(
        devicelink::message_name(&v),
        Some(devicelink::names::VERSION_EXCHANGE)
    );
    assert_eq!(
        v.as_array().expect("array")[1].as_unsigned_integer(),
        Some(400)
    );
    send_value(
        s,
        devicelink::message(
            devicelink::names::VERSION_EXCHANGE,
            vec!["DLVersionsOk".into(), plist::Value::Integer(400u64.into())],
        ),
    )
    .await;
}

fn hello() -> plist::Value {
    let mut h = plist::Dictionary::new();
    h.insert("MessageName".into(), "Hello".into());
    h.insert(
        "SupportedProtocolVersions".into(),
        plist::Value::Array(vec![plist::Value::Real(2.0), plist::Value::Real(2.1)]),
    );
    devicelink::message(
        devicelink::names::PROCESS_MESSAGE,
        vec![plist::Value::Dictionary(h)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fault_handshake_and_hello() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = faulty_sim(tmp.path(), &[]).await;
    let mut s = mb2(&sim).await;
    handshake(&mut s).await;
    assert_eq!(
        devicelink::message_name(&recv_plist(&mut s).await),
        Some(devicelink::names::DEVICE_READY)
    );
    send_value(&mut s, hello()).await;
    let r = recv_plist(&mut s).await;
    let body = r.as_array().expect("array")[1]
        .as_dictionary()
        .expect("dict")
        .clone();
    assert_eq!(
        body.get("ErrorCode")
            .and_then(plist::Value::as_unsigned_integer),
        Some(0)
    );
    assert_eq!(
        body.get("ProtocolVersion").and_then(plist::Value::as_real),
        Some(2.1)
    );
    // An unknown request ends with a ProcessMessage carrying an error, not a hang.
    let mut q = plist::Dictionary::new();
    q.insert("MessageName".into(), "Frobnicate".into());
    send_value(
        &mut s,
        devicelink::message(
            devicelink::names::PROCESS_MESSAGE,
            vec![plist::Value::Dictionary(q)],
        ),
    )
    .await;
    let r = recv_plist(&mut s).await;
    let body = r.as_array().expect("array")[1]
        .as_dictionary()
        .expect("dict")
        .clone();
    assert_ne!(
        body.get("ErrorCode")
            .and_then(plist::Value::as_unsigned_integer),
        Some(0)
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_at_step_one_closes_before_the_version_exchange() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = faulty_sim(tmp.path(), &["drop-at-step=1"]).await;
    let mut s = mb2(&sim).await;
    let mut b = [0u8; 4];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
        .await
        .expect("no hang")
        .unwrap_or(0);
    assert_eq!(n, 0, "connection closed without a byte");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_at_step_two_keeps_the_link_silent() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = faulty_sim(tmp.path(), &["stall-at-step=2"]).await;
    let mut s = mb2(&sim).await;
    handshake(&mut s).await;
    let mut b = [0u8; 4];
    assert!(
        tokio::time::timeout(Duration::from_millis(700), s.read(&mut b))
            .await
            .is_err(),
        "step 2 must stall"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_at_step_three_replaces_the_hello_response() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = faulty_sim(tmp.path(), &["garbage-at-step=3"]).await;
    let mut s = mb2(&sim).await;
    handshake(&mut s).await;
    recv_plist(&mut s).await; // DeviceReady
    send_value(&mut s, hello()).await;
    let mut p = [0u8; 4];
    s.read_exact(&mut p).await.expect("prefix");
    let mut body = vec![0u8; u32::from_be_bytes(p) as usize];
    s.read_exact(&mut body).await.expect("body");
    assert!(
        iosnap_proto::plist_frame::parse_plist(&body, "x").is_err(),
        "step 3 is garbage"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_after_bytes_cuts_mid_message() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = faulty_sim(tmp.path(), &["drop-after-bytes=10"]).await;
    let mut s = mb2(&sim).await;
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut all))
        .await
        .expect("no hang")
        .expect("read");
    assert_eq!(all.len(), 10);
    sim.shutdown().await;
}

async fn backup_with(
    faults: &[&str],
) -> (
    bool,
    String,
    iosnap_simulator::DeviceHandle,
    tempfile::TempDir,
) {
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = faulty_sim(tmp.path(), faults).await;
    let udid = sim.udids()[0].clone();
    let h = sim.device(&udid).expect("dev");
    let out = tmp.path().join("b");
    std::fs::create_dir_all(&out).expect("mkdir");
    let mux = sim.addr();
    let o = out.display().to_string();
    let cwd = tmp.path().to_path_buf();
    let (ok, text) = tokio::task::spawn_blocking(move || {
        run_peer("idevicebackup2", &["-u", &udid, "backup", &o], mux, &cwd)
    })
    .await
    .expect("join");
    sim.shutdown().await;
    (ok && text.contains("Backup Successful."), text, h, tmp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idevicebackup2_sees_faults() {
    if peer(
        "idevicebackup2",
        "apt-get install -y libimobiledevice-utils",
    )
    .is_none()
    {
        return;
    }
    // A full disk is reported, not hung on.
    let (ok, text, h, _t) = backup_with(&["disk-full"]).await;
    assert!(!ok, "{text}");
    assert!(text.contains("105"), "{text}");
    assert_eq!(h.counters().backups, 0);
    // A sync lock held for 3 attempts: the tool retries and succeeds.
    let (ok, text, h, _t) = backup_with(&["hold-sync-lock=3"]).await;
    assert!(ok, "{text}");
    assert_eq!(h.counters().backups, 1);
    // The link dropping mid-backup fails the backup.
    let (ok, text, h, _t) = backup_with(&["drop-at-step=8"]).await;
    assert!(!ok, "{text}");
    assert_eq!(h.counters().backups, 0);
}
