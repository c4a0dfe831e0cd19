//! Encryption on, change password, off — decided by WillEncrypt — and an encrypted backup.
#![allow(clippy::unwrap_used)]

mod common;

use iosnap_device::{BackupOptions, DeviceErrorKind, Error, backup, change_password};
use iosnap_simulator::FaultPlan;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_change_off() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, mux) = common::start(vec![common::device_config(
        &dir.path().join("state"),
        31,
        FaultPlan::default(),
    )])
    .await;
    let udid = sim.udids()[0].clone();
    let dev = sim.device(&udid).unwrap();
    let s = common::session(&mux, &udid, dir.path()).await;

    // Requests that do not fit the current state are refused before talking to mobilebackup2.
    assert!(matches!(
        change_password(&s, Some("x"), None).await,
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        change_password(&s, Some("x"), Some("y")).await,
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        change_password(&s, None, Some("")).await,
        Err(Error::InvalidRequest(_))
    ));

    // On.
    change_password(&s, None, Some("secret1")).await.unwrap();
    assert!(dev.will_encrypt());
    assert!(s.will_encrypt().await.unwrap());
    assert!(s.values().await.unwrap().will_encrypt);
    assert!(matches!(
        change_password(&s, None, Some("again")).await,
        Err(Error::InvalidRequest(_))
    ));

    // An encrypted backup.
    let target = dir.path().join("backups");
    let sum = backup(&s, &target, &BackupOptions::default(), |_| {})
        .await
        .unwrap();
    assert!(sum.encrypted);
    let manifest = plist::Value::from_file(target.join(&udid).join("Manifest.plist")).unwrap();
    let m = manifest.as_dictionary().unwrap();
    assert_eq!(
        m.get("IsEncrypted").and_then(|v| v.as_boolean()),
        Some(true)
    );
    assert!(m.get("BackupKeyBag").is_some());
    // It opens and decrypts with the password, and every file is the phone's.
    let mut b = iosnap_format::backup::Backup::open(&target.join(&udid)).unwrap();
    assert!(b.is_encrypted());
    assert!(b.unlock(b"not it").is_err());
    b.unlock(b"secret1").unwrap();
    dev.with_phone(|p| {
        use std::io::Read;
        for f in p
            .files()
            .filter(|f| f.kind == iosnap_format::EntryKind::File)
        {
            let e = b.find(&f.domain, &f.relative_path).unwrap();
            let (mut want, mut got) = (Vec::new(), Vec::new());
            p.open(f).unwrap().read_to_end(&mut want).unwrap();
            b.open_file(&e).unwrap().read_to_end(&mut got).unwrap();
            assert!(got == want, "{}/{} differs", f.domain, f.relative_path);
        }
    });

    // Change, with a wrong old password first.
    match change_password(&s, Some("wrong"), Some("secret2")).await {
        Err(Error::Device {
            kind: DeviceErrorKind::WrongPassword,
            ..
        }) => {}
        other => panic!("expected a wrong-password error, got {other:?}"),
    }
    assert_eq!(dev.backup_password().as_deref(), Some("secret1"));
    change_password(&s, Some("secret1"), Some("secret2"))
        .await
        .unwrap();
    assert_eq!(dev.backup_password().as_deref(), Some("secret2"));

    // Off.
    change_password(&s, Some("secret2"), None).await.unwrap();
    assert!(!dev.will_encrypt());
    assert!(!s.will_encrypt().await.unwrap());
    let sum = backup(&s, &target, &BackupOptions::default(), |_| {})
        .await
        .unwrap();
    assert!(!sum.encrypted);
    sim.shutdown().await;
}
