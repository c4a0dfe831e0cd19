//! Pairing when there is no record, the "Trust This Computer?" answers, and forgetting a
//! pairing — against the simulator, which keeps real pairing state on both sides (usbmuxd's
//! record, the phone's trusted HostIDs) and refuses sessions from hosts it does not trust.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use iosnap_device::{
    BackupOptions, DeviceSession, Error, MuxAddr, SessionOptions, backup, forget_pairing,
};
use iosnap_simulator::{DeviceConfig, FaultPlan, PairingMode};

fn unpaired(state: &Path, pairing: PairingMode) -> DeviceConfig {
    let mut c = device_config(state, 31, FaultPlan::default());
    c.unpaired = true;
    c.pairing = pairing;
    c
}

/// A simulator with one phone that trusts no computer yet; its UDID.
async fn start_unpaired(
    t: &Path,
    pairing: PairingMode,
) -> (iosnap_simulator::Simulator, MuxAddr, String) {
    let (sim, mux) = start(vec![unpaired(&t.join("dev"), pairing)]).await;
    let udid = sim.udids()[0].clone();
    (sim, mux, udid)
}

fn pairing_options(scratch: &Path, wait: Duration) -> SessionOptions {
    SessionOptions {
        allow_pairing: true,
        pair_wait: wait,
        ..options(scratch)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_when_there_is_no_record_then_backs_up_with_it() {
    let t = tempfile::tempdir().unwrap();
    let (sim, mux, udid) = start_unpaired(t.path(), PairingMode::Accept).await;
    let h = sim.device(&udid).unwrap();
    assert!(!h.has_pair_record());

    // Not allowed to pair: a clear error, nothing stored.
    let e = DeviceSession::connect_with(&mux, &udid, options(t.path()))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Pairing { .. }), "{e}");
    assert!(e.to_string().contains("not paired"), "{e}");
    assert!(!h.has_pair_record());

    let s = DeviceSession::connect_with(&mux, &udid, pairing_options(t.path(), Duration::ZERO))
        .await
        .unwrap();
    assert!(h.has_pair_record(), "the record was saved through usbmuxd");
    assert_eq!(h.counters().pairings, 1);
    assert_eq!(h.trusted_hosts().len(), 1);
    // The new record carries the phone's EscrowBag: mobilebackup2 starts, a backup completes.
    let target = t.path().join("backup");
    std::fs::create_dir_all(&target).unwrap();
    let sum = backup(&s, &target, &BackupOptions::default(), |_| {})
        .await
        .unwrap();
    assert!(sum.files_received > 10, "{sum:?}");

    // The next session uses the saved record: no second pairing.
    DeviceSession::connect_with(&mux, &udid, pairing_options(t.path(), Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(h.counters().pairings, 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_the_user_to_tap_trust() {
    let t = tempfile::tempdir().unwrap();
    let (sim, mux, udid) = start_unpaired(t.path(), PairingMode::AskTrust(1)).await;
    let h = sim.device(&udid).unwrap();
    DeviceSession::connect_with(
        &mux,
        &udid,
        pairing_options(t.path(), Duration::from_secs(30)),
    )
    .await
    .unwrap();
    assert_eq!(h.counters().pairings, 1);
    assert!(h.has_pair_record());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_trust_dialog_says_tap_trust() {
    let t = tempfile::tempdir().unwrap();
    let (sim, mux, udid) = start_unpaired(t.path(), PairingMode::AskTrust(1000)).await;
    let e = DeviceSession::connect_with(&mux, &udid, pairing_options(t.path(), Duration::ZERO))
        .await
        .unwrap_err();
    match &e {
        Error::Pairing { retryable, .. } => assert!(*retryable, "{e}"),
        other => panic!("expected a pairing error, got {other}"),
    }
    assert!(e.to_string().contains("tap Trust"), "{e}");
    assert!(!sim.device(&udid).unwrap().has_pair_record());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_reported_as_such() {
    let t = tempfile::tempdir().unwrap();
    let (sim, mux, udid) = start_unpaired(t.path(), PairingMode::Refuse).await;
    let e = DeviceSession::connect_with(
        &mux,
        &udid,
        pairing_options(t.path(), Duration::from_secs(30)),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Pairing { .. }), "{e}");
    assert!(e.to_string().contains("refused pairing"), "{e}");
    let h = sim.device(&udid).unwrap();
    assert!(!h.has_pair_record());
    assert!(h.trusted_hosts().is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_removes_both_sides_so_the_next_connect_pairs_again() {
    let t = tempfile::tempdir().unwrap();
    let (sim, mux) = start(vec![device_config(
        &t.path().join("dev"),
        32,
        FaultPlan::default(),
    )])
    .await;
    let udid = sim.udids()[0].clone();
    let h = sim.device(&udid).unwrap();
    assert!(h.has_pair_record(), "a default simulated phone is paired");
    let seeded = h.trusted_hosts();
    assert_eq!(seeded.len(), 1);
    DeviceSession::connect_with(&mux, &udid, options(t.path()))
        .await
        .unwrap();

    // A copy of a record in the lockdown folder goes too.
    let opts = pairing_options(t.path(), Duration::ZERO);
    std::fs::create_dir_all(&opts.lockdown_dir).unwrap();
    let file = opts.lockdown_dir.join(format!("{udid}.plist"));
    std::fs::write(&file, h.mux_pair_record().unwrap()).unwrap();

    let gone = forget_pairing(&mux, &udid, &opts).await.unwrap();
    assert!(gone.usbmuxd_record, "{gone:?}");
    assert!(gone.phone_unpaired, "{gone:?}");
    assert_eq!(gone.file_removed.as_deref(), Some(file.as_path()));
    assert!(!file.exists());
    assert!(!h.has_pair_record());
    assert!(h.trusted_hosts().is_empty(), "the phone forgot this host");

    // Nothing left to forget: not an error.
    let again = forget_pairing(&mux, &udid, &opts).await.unwrap();
    assert_eq!(again, Default::default());

    // Without pairing allowed the phone is now out of reach; with it, it pairs anew.
    let e = DeviceSession::connect_with(&mux, &udid, options(t.path()))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Pairing { .. }), "{e}");
    DeviceSession::connect_with(&mux, &udid, opts)
        .await
        .unwrap();
    assert!(h.has_pair_record());
    assert_eq!(h.counters().pairings, 1);
    let now = h.trusted_hosts();
    assert_eq!(now.len(), 1);
    assert_ne!(now, seeded, "a new HostID was paired");
    sim.shutdown().await;
}

#[tokio::test]
async fn forgetting_without_usbmuxd_removes_the_file() {
    let t = tempfile::tempdir().unwrap();
    let mux = MuxAddr::Unix(t.path().join("no-usbmuxd"));
    let opts = pairing_options(t.path(), Duration::ZERO);
    std::fs::create_dir_all(&opts.lockdown_dir).unwrap();
    let file = opts.lockdown_dir.join("00008030-ABCDEF.plist");
    std::fs::write(&file, b"<plist/>").unwrap();
    let gone = forget_pairing(&mux, "00008030-ABCDEF", &opts)
        .await
        .unwrap();
    assert_eq!(gone.file_removed.as_deref(), Some(file.as_path()));
    assert!(!gone.usbmuxd_record && !gone.phone_unpaired);
    assert!(!file.exists());
    assert!(forget_pairing(&mux, "../etc", &opts).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_forgot_this_computer_is_paired_again() {
    let t = tempfile::tempdir().unwrap();
    let (sim, mux, udid) = start_unpaired(t.path(), PairingMode::Accept).await;
    let h = sim.device(&udid).unwrap();
    DeviceSession::connect_with(&mux, &udid, pairing_options(t.path(), Duration::ZERO))
        .await
        .unwrap();
    let first_host = h.trusted_hosts();
    assert_eq!(first_host.len(), 1);
    let stale = h.mux_pair_record().unwrap();

    // "Reset Location & Privacy" on the phone: usbmuxd still has the old record.
    h.forget_trusted_hosts().unwrap();
    assert!(h.has_pair_record());

    // A session that may not pair says what happened and what to do.
    let e = DeviceSession::connect_with(&mux, &udid, options(t.path()))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::PairRecordRejected { .. }), "{e}");
    assert!(e.to_string().contains("no longer trusts"), "{e}");
    assert!(!e.is_retryable());

    // One that may pair drops the stale record, pairs again (Trust is asked) and works.
    let s = DeviceSession::connect_with(&mux, &udid, pairing_options(t.path(), Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(h.counters().pairings, 2);
    let now = h.trusted_hosts();
    assert_eq!(now.len(), 1);
    assert_ne!(now, first_host, "a new HostID");
    assert_ne!(
        h.mux_pair_record().unwrap(),
        stale,
        "usbmuxd has the new record"
    );
    let target = t.path().join("backup");
    std::fs::create_dir_all(&target).unwrap();
    let sum = backup(&s, &target, &BackupOptions::default(), |_| {})
        .await
        .unwrap();
    assert!(sum.files_received > 10, "{sum:?}");
    sim.shutdown().await;
}
