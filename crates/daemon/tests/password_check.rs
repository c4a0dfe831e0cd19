//! The daemon and remembered passwords: it needs none to back an encrypted phone up, but after
//! each automatic backup of one it checks that the remembered password still opens the new
//! snapshot, so a password changed on the phone is reported at once (tested with the opt-in
//! file store, so no keyring is touched; the keyring itself is tested in the CLI's
//! tests/keyring.rs against gnome-keyring).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{automatic_on, daemon_config, pass_one, small_phone, start_sim};
use iosnap_daemon::secrets::PasswordStore;
use iosnap_daemon::{Daemon, DaemonConfig, Outcome, PasswordCheck};
use iosnap_store::{ConfigDir, ManualClock};

fn checked(o: &Outcome) -> Option<PasswordCheck> {
    match o {
        Outcome::BackedUp(b) => b.password.clone(),
        other => panic!("expected a backup, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_encrypted_snapshots_are_checked_against_the_remembered_password() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let mut dev = small_phone(&t.join("sim"), 21, 5, 16 << 10);
    dev.backup_password = Some("phone pw".into());
    let sim = start_sim("127.0.0.1:0", vec![dev]).await;
    let udid = sim.udids().remove(0);
    let config = ConfigDir::at(t.join("config"));
    automatic_on(&config, &udid);
    let store = PasswordStore::new(&config).keyring(false);
    let clock = Arc::new(ManualClock::new(common::at(0, 12, 0)));
    let d = Daemon::new(DaemonConfig {
        passwords: Some(store.clone()),
        ..daemon_config(t, &sim.addr().to_string(), &clock)
    });

    // Nothing remembered: backed up all the same (the daemon needs no password for that).
    let o = pass_one(&d).await;
    assert_eq!(checked(&o), Some(PasswordCheck::NotRemembered));

    // Remembered and right.
    store.remember(&udid, "phone pw", true).unwrap();
    clock.advance(Duration::from_secs(86_400));
    assert_eq!(checked(&pass_one(&d).await), Some(PasswordCheck::Opens));

    // Remembered but stale (as after a change on the phone): reported, backup kept.
    store.remember(&udid, "an old pw", true).unwrap();
    clock.advance(Duration::from_secs(86_400));
    assert_eq!(checked(&pass_one(&d).await), Some(PasswordCheck::Wrong));
    let lib = iosnap_store::Library::open(&t.join("lib"), config, clock).unwrap();
    assert_eq!(lib.snapshots(&udid).unwrap().len(), 3);
    sim.shutdown().await;
}
