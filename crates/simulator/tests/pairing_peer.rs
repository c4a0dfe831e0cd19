//! Pairing with a real peer: Debian's `idevicepair` (libimobiledevice) pairs with a simulated
//! phone that has no pair record, validates the pairing, then unpairs — the "Trust This
//! Computer?" path a brand-new phone takes, checked against the implementation users run.

mod common;

use common::*;
use iosnap_simulator::{DeviceConfig, PairingMode};

const BIN: &str = "idevicepair";
const INSTALL: &str = "apt-get install -y libimobiledevice-utils";

fn unpaired(state: &std::path::Path, pairing: PairingMode) -> DeviceConfig {
    let mut d = DeviceConfig::new(state, small_spec(7));
    d.unpaired = true;
    d.pairing = pairing;
    d
}

async fn run(
    bin: &str,
    args: &[&str],
    mux: std::net::SocketAddr,
    cwd: &std::path::Path,
) -> (bool, String) {
    let bin = bin.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let cwd = cwd.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run_peer(&bin, &a, mux, &cwd)
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idevicepair_pairs_validates_and_unpairs_an_unpaired_phone() {
    let Some(bin) = peer(BIN, INSTALL) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = start_with(vec![unpaired(&tmp.path().join("dev"), PairingMode::Accept)]).await;
    let udid = sim.udids()[0].clone();
    let h = sim.device(&udid).expect("device");
    assert!(!h.has_pair_record(), "starts without a record");
    assert!(h.trusted_hosts().is_empty(), "and trusts nobody");

    let (ok, text) = run(&bin, &["-u", &udid, "pair"], sim.addr(), tmp.path()).await;
    assert!(ok, "idevicepair pair failed:\n{text}");
    assert!(text.contains("SUCCESS"), "{text}");
    assert!(
        h.has_pair_record(),
        "idevicepair stored its record through SavePairRecord"
    );
    let trusted = h.trusted_hosts();
    assert_eq!(trusted.len(), 1, "{trusted:?}");
    let record =
        plist::Value::from_reader(std::io::Cursor::new(h.mux_pair_record().expect("record")))
            .expect("plist");
    let host_id = record
        .as_dictionary()
        .and_then(|d| d.get("HostID"))
        .and_then(plist::Value::as_string)
        .expect("HostID")
        .to_string();
    assert_eq!(
        trusted[0], host_id,
        "the phone trusts the host that saved the record"
    );
    assert!(
        record
            .as_dictionary()
            .and_then(|d| d.get("EscrowBag"))
            .and_then(plist::Value::as_data)
            .is_some_and(|b| !b.is_empty()),
        "the record keeps the phone's EscrowBag"
    );

    // A TLS session with the new record (validate starts one).
    let (ok, text) = run(&bin, &["-u", &udid, "validate"], sim.addr(), tmp.path()).await;
    assert!(ok, "idevicepair validate failed:\n{text}");

    let (ok, text) = run(&bin, &["-u", &udid, "unpair"], sim.addr(), tmp.path()).await;
    assert!(ok, "idevicepair unpair failed:\n{text}");
    assert!(!h.has_pair_record(), "DeletePairRecord removed the record");
    assert!(
        h.trusted_hosts().is_empty(),
        "Unpair made the phone forget the host"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idevicepair_sees_the_refusal() {
    let Some(bin) = peer(BIN, INSTALL) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = start_with(vec![unpaired(&tmp.path().join("dev"), PairingMode::Refuse)]).await;
    let udid = sim.udids()[0].clone();
    let h = sim.device(&udid).expect("device");
    let (ok, text) = run(&bin, &["-u", &udid, "pair"], sim.addr(), tmp.path()).await;
    assert!(
        !ok,
        "pairing must fail when the user taps Don't Trust:\n{text}"
    );
    assert!(text.to_lowercase().contains("denied"), "{text}");
    assert!(!h.has_pair_record());
    assert!(h.trusted_hosts().is_empty());
    sim.shutdown().await;
}
