//! Restore round trip: back up phone A, restore into a fresh phone B, B's files equal A's.
//! Also Info and List.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;

use iosnap_device::{BackupOptions, Error, RestoreOptions, backup, info, list, restore};
use iosnap_simulator::{DeviceHandle, FaultPlan};

fn contents(dev: &DeviceHandle) -> BTreeMap<(String, String), Vec<u8>> {
    dev.with_phone(|p| {
        p.files()
            .filter(|f| f.kind == iosnap_format::EntryKind::File)
            .map(|f| {
                let mut b = Vec::new();
                p.open(f).unwrap().read_to_end(&mut b).unwrap();
                ((f.domain.clone(), f.relative_path.clone()), b)
            })
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_up_a_restore_into_b() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, mux) = common::start(vec![
        common::device_config(&dir.path().join("a"), 41, FaultPlan::default()),
        common::device_config(&dir.path().join("b"), 42, FaultPlan::default()),
    ])
    .await;
    let (ua, ub) = (sim.udids()[0].clone(), sim.udids()[1].clone());
    let (a, b) = (sim.device(&ua).unwrap(), sim.device(&ub).unwrap());
    assert_ne!(contents(&a), contents(&b));
    let sa = common::session(&mux, &ua, dir.path()).await;
    let sb = common::session(&mux, &ub, dir.path()).await;
    let target = dir.path().join("backups");
    backup(&sa, &target, &BackupOptions::default(), |_| {})
        .await
        .unwrap();
    let folder = target.join(&ua);
    let before = common::tree(&target);

    // Info and List describe the backup (asked of phone A).
    let text = info(&sa, &folder).await.unwrap();
    assert!(!text.is_empty());
    let csv = list(&sa, &target).await.unwrap();
    assert!(csv.lines().count() > 1, "{csv}");

    // A restore into B, giving the backup folder itself.
    let opts = RestoreOptions {
        system: true,
        reboot: false,
        remove_not_restored: true,
        ..RestoreOptions::default()
    };
    let mut sent = 0;
    restore(&sb, &folder, &opts, |p| sent = p.files)
        .await
        .unwrap();
    assert!(sent > 0);
    assert_eq!(b.counters().restores, 1);
    let (ca, cb) = (contents(&a), contents(&b));
    let differ: Vec<_> = ca
        .iter()
        .filter(|(k, v)| cb.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    let extra: Vec<_> = cb.keys().filter(|k| !ca.contains_key(*k)).collect();
    assert!(
        differ.is_empty() && extra.is_empty(),
        "differ {differ:?}; only on B {extra:?}"
    );
    // RestoreApplications.plist went over AFC, as LIMD does.
    let apps = b
        .afc_file("/iTunesRestore/RestoreApplications.plist")
        .expect("RestoreApplications.plist");
    assert!(
        plist::Value::from_reader(std::io::Cursor::new(apps))
            .unwrap()
            .as_dictionary()
            .is_some()
    );
    // Restoring reads the folder, never changes it.
    assert!(common::tree(&target) == before);

    // An incomplete folder is refused before the phone is touched.
    std::fs::remove_file(folder.join("Status.plist")).unwrap();
    let e = restore(&sb, &folder, &opts, |_| {}).await.unwrap_err();
    assert!(matches!(e, Error::BadBackupFolder { .. }), "{e}");
    sim.shutdown().await;
}
