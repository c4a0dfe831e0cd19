//! Plain and incremental backups against the in-process simulator, checked file by file
//! against the simulated phone's content.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::path::Path;

use iosnap_device::{BackupOptions, backup};
use iosnap_simulator::{DeviceHandle, FaultPlan};

/// Every regular file of the phone is in the backup with identical bytes; Manifest.db lists it.
fn assert_backup_matches_phone(folder: &Path, dev: &DeviceHandle) -> usize {
    let db = rusqlite::Connection::open_with_flags(
        folder.join("Manifest.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let rows: i64 = db
        .query_row("SELECT COUNT(*) FROM Files", [], |r| r.get(0))
        .unwrap();
    assert!(rows > 0);
    dev.with_phone(|p| {
        let mut checked = 0;
        for f in p.files() {
            if f.kind != iosnap_format::EntryKind::File {
                continue;
            }
            let id = iosnap_format::file_id(&f.domain, &f.relative_path);
            let (domain, rel): (String, String) = db
                .query_row(
                    "SELECT domain, relativePath FROM Files WHERE fileID = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap_or_else(|e| {
                    panic!("{}/{} not in Manifest.db: {e}", f.domain, f.relative_path)
                });
            assert_eq!(
                (domain.as_str(), rel.as_str()),
                (f.domain.as_str(), f.relative_path.as_str())
            );
            let mut want = Vec::new();
            p.open(f).unwrap().read_to_end(&mut want).unwrap();
            let got = std::fs::read(folder.join(&id[..2]).join(&id))
                .unwrap_or_else(|e| panic!("data file for {}/{}: {e}", f.domain, f.relative_path));
            assert!(
                got == want,
                "content differs for {}/{}",
                f.domain,
                f.relative_path
            );
            checked += 1;
        }
        checked
    })
}

/// The folder opens with iosnap-format and every phone file reads back identical through it.
fn assert_format_crate_reads_it(folder: &Path, dev: &DeviceHandle, password: Option<&str>) {
    let mut b = iosnap_format::backup::Backup::open(folder).unwrap();
    assert!(b.warnings().is_empty(), "{:?}", b.warnings());
    assert!(b.info().is_some() && b.manifest().is_some() && b.status().is_some());
    assert_eq!(b.is_encrypted(), password.is_some());
    if let Some(pw) = password {
        b.unlock(pw.as_bytes()).unwrap();
    }
    dev.with_phone(|p| {
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
}

fn status(folder: &Path) -> plist::Dictionary {
    plist::Value::from_file(folder.join("Status.plist"))
        .unwrap()
        .into_dictionary()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_backup_then_incremental() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, mux) = common::start(vec![common::device_config(
        &dir.path().join("state"),
        7,
        FaultPlan::default(),
    )])
    .await;
    let udid = sim.udids()[0].clone();
    let dev = sim.device(&udid).unwrap();
    let s = common::session(&mux, &udid, dir.path()).await;
    let target = dir.path().join("backups");

    // 1. Full backup.
    let mut seen = Vec::new();
    let sum = backup(&s, &target, &BackupOptions::default(), |p| seen.push(p))
        .await
        .unwrap();
    let folder = target.join(&udid);
    assert_eq!(sum.folder, folder);
    assert!(sum.full);
    assert!(!sum.encrypted);
    assert!(sum.files_received > 0);
    assert!(sum.bytes_received > 0);
    assert!(!seen.is_empty());
    assert_eq!(seen.last().unwrap().files, sum.files_received);
    let checked = assert_backup_matches_phone(&folder, &dev);
    assert!(checked > 5);
    assert_format_crate_reads_it(&folder, &dev, None);
    assert_eq!(
        status(&folder).get("SnapshotState").unwrap().as_string(),
        Some("finished")
    );
    // Info.plist: XML, written by us, with the phone's identity.
    let info_bytes = std::fs::read(folder.join("Info.plist")).unwrap();
    assert!(info_bytes.starts_with(b"<?xml"));
    let info = plist::Value::from_reader_xml(&info_bytes[..])
        .unwrap()
        .into_dictionary()
        .unwrap();
    assert_eq!(
        info.get("Target Identifier").unwrap().as_string(),
        Some(udid.as_str())
    );
    assert_eq!(
        info.get("Unique Identifier").unwrap().as_string(),
        Some(udid.to_uppercase().as_str())
    );
    assert!(info.get("Product Version").is_some());
    assert!(
        !info
            .get("Installed Applications")
            .unwrap()
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Choreography: the four sync notifications, lock released.
    let posted = dev.counters().notifications_posted;
    for n in [
        "syncWillStart",
        "syncLockRequest",
        "syncDidStart",
        "syncDidFinish",
    ] {
        assert!(
            posted.iter().any(|p| p.ends_with(n)),
            "{n} not posted: {posted:?}"
        );
    }
    assert!(!dev.sync_lock_held());
    assert!(
        common::tree(&target)
            .keys()
            .all(|k| !k.to_string_lossy().contains(".iosnap-"))
    );

    // 2. A store keeps the previous snapshot as hard links to the same files.
    let store = dir.path().join("store-snapshot");
    hardlink_tree(&folder, &store);
    let snapshot_before = common::tree(&store);

    // 3. Churn, then an incremental backup transfers only the changes.
    dev.churn(0.2).unwrap();
    let sum2 = backup(&s, &target, &BackupOptions::default(), |_| {})
        .await
        .unwrap();
    assert!(!sum2.full, "second backup should be incremental");
    let c = dev.counters();
    assert!(!c.last_backup_full);
    assert!(
        sum2.files_received < sum.files_received,
        "{} vs {}",
        sum2.files_received,
        sum.files_received
    );
    assert_backup_matches_phone(&folder, &dev);
    assert_format_crate_reads_it(&folder, &dev, None);
    // The hard-linked snapshot was not modified in place.
    assert_eq!(common::tree(&store), snapshot_before);
    assert!(
        common::tree(&target)
            .keys()
            .all(|k| !k.to_string_lossy().contains(".iosnap-"))
    );

    // 4. --full forces a full backup.
    let full = BackupOptions {
        full: true,
        ..BackupOptions::default()
    };
    let sum3 = backup(&s, &target, &full, |_| {}).await.unwrap();
    assert!(sum3.full);
    assert!(dev.counters().last_backup_full);
    assert_backup_matches_phone(&folder, &dev);
    sim.shutdown().await;
}

fn hardlink_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            hardlink_tree(&e.path(), &dst);
        } else {
            std::fs::hard_link(e.path(), dst).unwrap();
        }
    }
}
