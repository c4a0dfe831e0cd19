//! The five invariants of DESIGN.md ("The library on disk"), one test each, plus sharing
//! and accounting across snapshots with each sharing method forced.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::*;
use iosnap_store::{Catalog, PruneMode, PruneOutcome, SharingMethod};

/// Invariant 1: a committed snapshot is immutable; the next one starts as a clone and the
/// files written into it go to new inodes.
#[test]
fn inv1_committed_snapshot_is_immutable() {
    let env = Env::new(Some(SharingMethod::HardLink));
    let (s1, _) = env
        .lib
        .import(&env.backup("a", &files(20, 3000, 1, 4)), None)
        .unwrap();
    let before = snapshot_files(&s1.path);

    env.days(1);
    let st = env.lib.begin(UDID).unwrap();
    let shared_rel = before
        .keys()
        .find(|p| p.components().count() == 2)
        .unwrap()
        .clone();
    // The staging clone shares the inode …
    assert_eq!(
        fs::metadata(st.path().join(&shared_rel)).unwrap().ino(),
        before[&shared_rel].0
    );
    // … and a write goes to a new one.
    st.write_file(&shared_rel, b"new content from the device")
        .unwrap();
    assert_ne!(
        fs::metadata(st.path().join(&shared_rel)).unwrap().ino(),
        before[&shared_rel].0
    );
    let s2 = st.commit().unwrap();

    assert_eq!(snapshot_files(&s1.path), before, "older snapshot changed");
    assert_eq!(
        fs::read(s2.path().join(&shared_rel)).unwrap(),
        b"new content from the device"
    );
    // Writing outside the backup is refused.
    let st = env.lib.begin(UDID).unwrap();
    assert!(st.write_file(Path::new("../escape"), b"x").is_err());
    assert!(st.write_file(Path::new("/etc/x"), b"x").is_err());
}

/// Invariant 2: commit is atomic; a staging folder is never listed; leftovers are cleaned on
/// the next run; a commit whose catalog write was lost is picked up from the folders.
#[test]
fn inv2_commit_is_atomic_and_leftovers_are_cleaned() {
    let env = Env::new(None);
    env.lib
        .import(&env.backup("a", &files(10, 500, 1, 2)), None)
        .unwrap();
    {
        let st = env.lib.begin(UDID).unwrap();
        let outer = st.device_target().file_name().unwrap().to_string_lossy();
        assert!(outer.starts_with(".staging-"), "{outer}");
        assert_eq!(st.device_target().join(UDID), st.path());
        assert_eq!(env.lib.snapshots(UDID).unwrap().len(), 1, "staging listed");
        // A second writer is refused while the first holds the device.
        assert!(matches!(
            env.lib.begin(UDID),
            Err(iosnap_store::Error::Busy(_))
        ));
    } // dropped without commit: removed
    let dev = env.lib.device_dir(UDID).unwrap();
    assert!(!fs::read_dir(&dev).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".staging")
    }));

    // Leftovers of a killed run (staging, half-deleted snapshot, temp meta file).
    fs::create_dir_all(dev.join(".staging-999-1/ab")).unwrap();
    fs::write(dev.join(".staging-999-1/ab/junk"), b"x").unwrap();
    fs::create_dir_all(dev.join(".deleting-2026-01-01T000000Z")).unwrap();
    fs::create_dir_all(dev.join("meta")).unwrap();
    fs::write(dev.join("meta/.x.toml.1.tmp"), b"x").unwrap();
    assert_eq!(env.lib.snapshots(UDID).unwrap().len(), 1);
    drop(env.lib.lock(UDID).unwrap());
    let left: Vec<String> = fs::read_dir(&dev)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".staging") || n.starts_with(".deleting"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(fs::read_dir(dev.join("meta")).unwrap().count(), 0);

    // Crash after the rename, before the catalog: the folder is the truth.
    env.days(1);
    let st = env.lib.begin(UDID).unwrap();
    let staged = st.path().to_path_buf();
    st.write_file(Path::new("extra"), b"1").unwrap();
    std::mem::forget(st); // the process "dies" here: no Drop, no catalog
    let name = "2026-11-25T213000Z";
    fs::rename(&staged, dev.join("snapshots").join(name)).unwrap();
    fs::remove_file(dev.join(".lock")).unwrap(); // the dead process's lock goes with it
    let list = env.lib.snapshots(UDID).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[1].name, name);
    assert_eq!(env.lib.catalog().unwrap().count().unwrap(), 2);

    // The catalog is rebuildable from nothing.
    fs::remove_file(env.lib.root().join("catalog.sqlite")).unwrap();
    assert_eq!(Catalog::rebuild(&env.lib).unwrap(), 2);
    assert_eq!(env.lib.snapshots(UDID).unwrap(), list);
}

/// Invariant 3: retention never deletes a locked snapshot, the latest, or a young one, and
/// asks unless told not to (scenarios with the injected clock).
#[test]
fn inv3_retention_rules() {
    let env = Env::new(Some(SharingMethod::HardLink));
    // Five daily snapshots, each changing half of 40 × 4 KiB files: far over a 1-byte budget.
    for v in 1..=5u8 {
        env.lib
            .import(&env.backup(&format!("v{v}"), &files(40, 4096, v, 2)), None)
            .unwrap();
        env.days(1);
    }
    let names: Vec<String> = env
        .lib
        .snapshots(UDID)
        .unwrap()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(names.len(), 5);
    let mut cfg = env.lib.config().device(UDID).unwrap();
    cfg.set("budget-bytes", "1").unwrap();
    env.lib.config().save_device(UDID, &cfg).unwrap();
    let mut never = |_: &iosnap_store::Plan| panic!("asked");

    // Minimum age (30 days) not reached: nothing to do.
    let (p, o) = iosnap_store::prune(&env.lib, UDID, PruneMode::Yes, &mut never).unwrap();
    assert_eq!(o, PruneOutcome::NothingToDo, "{p:?}");

    env.days(40);
    // Lock the oldest.
    let oldest = env.lib.resolve(&format!("{UDID}@{}", names[0])).unwrap();
    env.lib.update_meta(&oldest, |m| m.locked = true).unwrap();

    // Dry run deletes nothing but plans the three unlocked, non-latest ones.
    let (p, o) = iosnap_store::prune(&env.lib, UDID, PruneMode::DryRun, &mut never).unwrap();
    assert_eq!(o, PruneOutcome::DryRun);
    let planned: Vec<&str> = p.delete.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(planned, [&names[1], &names[2], &names[3]]);
    assert_eq!(env.lib.snapshots(UDID).unwrap().len(), 5);

    // Non-interactive with ask-before-delete (default): report and keep.
    let (_, o) =
        iosnap_store::prune(&env.lib, UDID, PruneMode::NonInteractive, &mut never).unwrap();
    assert_eq!(o, PruneOutcome::NeedsConfirmation);
    // Interactive, user says no.
    let mut asked = 0;
    let (_, o) = iosnap_store::prune(&env.lib, UDID, PruneMode::Interactive, &mut |_| {
        asked += 1;
        false
    })
    .unwrap();
    assert_eq!((o, asked), (PruneOutcome::Declined, 1));
    assert_eq!(env.lib.snapshots(UDID).unwrap().len(), 5);

    // Setting "don't ask": deletes even non-interactively; locked and latest survive.
    cfg.set("ask-before-delete", "off").unwrap();
    env.lib.config().save_device(UDID, &cfg).unwrap();
    let (_, o) =
        iosnap_store::prune(&env.lib, UDID, PruneMode::NonInteractive, &mut never).unwrap();
    assert_eq!(o, PruneOutcome::Deleted);
    let left: Vec<String> = env
        .lib
        .snapshots(UDID)
        .unwrap()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(left, [names[0].clone(), names[4].clone()]);
    check_library(&env.lib);

    // The catalog's incremental updates agree with a full rescan of the folders.
    let cached = env.lib.snapshots(UDID).unwrap();
    assert_eq!(cached, env.lib.refresh(UDID).unwrap());

    // A locked snapshot can't be deleted by hand either.
    assert!(matches!(
        env.lib.delete(&oldest),
        Err(iosnap_store::Error::Locked(_))
    ));
}

/// Retention with the default budget (half the first backup): small churn stays within it.
#[test]
fn retention_default_budget_keeps_small_churn() {
    let env = Env::new(Some(SharingMethod::HardLink));
    for v in 1..=4u8 {
        env.lib
            .import(&env.backup(&format!("v{v}"), &files(40, 4096, v, 20)), None)
            .unwrap();
        env.days(20);
    }
    let (p, o) = iosnap_store::prune(&env.lib, UDID, PruneMode::Yes, &mut |_| true).unwrap();
    assert!(p.budget_bytes >= 40 * 4096 / 2, "{p:?}");
    assert!(p.extra_bytes < p.budget_bytes, "{p:?}");
    assert_eq!(o, PruneOutcome::NothingToDo);
}

/// Invariant 4: every snapshot folder is a standard backup folder (opens and verifies with
/// the format crate; its Manifest.db is plain SQLite with the standard Files table).
#[test]
fn inv4_snapshots_are_standard_folders() {
    let env = Env::new(Some(SharingMethod::HardLink));
    env.lib
        .import(&env.backup("a", &files(15, 1000, 1, 3)), None)
        .unwrap();
    env.days(1);
    env.lib
        .import(&env.backup("b", &files(15, 1000, 2, 3)), None)
        .unwrap();
    assert_eq!(check_library(&env.lib), 2);
    for s in env.lib.snapshots(UDID).unwrap() {
        for f in [
            "Manifest.db",
            "Manifest.plist",
            "Info.plist",
            "Status.plist",
        ] {
            assert!(s.path.join(f).is_file(), "{f} missing in {}", s.name);
        }
        let db = rusqlite_count(&s.path.join("Manifest.db"));
        assert!(db >= 15);
        assert_eq!(s.ios_version.as_deref(), Some("17.5"));
    }
}

fn rusqlite_count(p: &Path) -> i64 {
    let c = rusqlite::Connection::open(p).unwrap();
    c.query_row("SELECT COUNT(*) FROM Files", [], |r| r.get(0))
        .unwrap()
}

/// Invariant 5: folders are 0700 and nothing is written outside the library, the settings
/// folder, or a chosen output folder.
#[test]
fn inv5_private_folders_and_nothing_outside() {
    let env = Env::new(None);
    let src = env.backup("a", &files(12, 700, 1, 3));
    env.lib.import(&src, None).unwrap();
    env.days(1);
    let snap = env
        .lib
        .import(&env.backup("b", &files(12, 700, 2, 3)), None)
        .unwrap()
        .0;
    env.lib.archive(&snap).unwrap();
    let out = env.tmp.path().join("out");
    env.lib.export(&snap, &out).unwrap();
    let mut cfg = env.lib.config().device(UDID).unwrap();
    cfg.set("retention-days", "5").unwrap();
    env.lib.config().save_device(UDID, &cfg).unwrap();

    for root in [
        env.lib.root().to_path_buf(),
        out.clone(),
        env.tmp.path().join("config"),
    ] {
        for e in walkdir::WalkDir::new(&root) {
            let e = e.unwrap();
            if e.file_type().is_dir() {
                let mode = e.metadata().unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o700, "{}", e.path().display());
            }
        }
    }
    let mut top: Vec<String> = fs::read_dir(env.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["config", "lib", "out", "src"]);
    // The export is standalone: no shared inodes with the library.
    let lib_inodes: std::collections::HashSet<u64> =
        snapshot_files(&snap.path).values().map(|v| v.0).collect();
    assert!(
        snapshot_files(&out)
            .values()
            .all(|v| !lib_inodes.contains(&v.0))
    );
    assert_eq!(
        snapshot_files(&out)
            .into_iter()
            .map(|(k, v)| (k, v.1))
            .collect::<Vec<_>>(),
        snapshot_files(&snap.path)
            .into_iter()
            .map(|(k, v)| (k, v.1))
            .collect::<Vec<_>>()
    );
}

/// Two imports with churn, per sharing method: unchanged files shared (hard link: same
/// inode), added disk ≈ changed bytes, older snapshot byte-identical.
fn churn_case(method: SharingMethod) {
    let env = Env::new(Some(method));
    let v1 = files(100, 8192, 1, 10);
    let (s1, r1) = env.lib.import(&env.backup("a", &v1), None).unwrap();
    assert_eq!(r1.shared, 0);
    let before = snapshot_files(&s1.path);
    env.days(1);
    let v2 = files(100, 8192, 2, 10); // 10 of 100 files change
    let (s2, r2) = env.lib.import(&env.backup("b", &v2), None).unwrap();
    assert_eq!(snapshot_files(&s1.path), before, "older snapshot changed");
    // 10 data files plus the metadata files whose bytes changed (Manifest.db at least).
    assert!((11..=14).contains(&r2.copied), "{r2:?}");
    assert_eq!(
        r2.shared + r2.copied,
        104,
        "100 data files + 4 metadata files: {r2:?}"
    );
    let after = snapshot_files(&s2.path);
    let same_inode = after
        .iter()
        .filter(|(k, v)| before.get(*k).is_some_and(|b| b.0 == v.0))
        .count();
    let infos = env.lib.snapshots(UDID).unwrap();
    assert_eq!(infos, env.lib.refresh(UDID).unwrap(), "catalog vs rescan");
    let (u1, u2) = (infos[0].usage, infos[1].usage);
    match method {
        SharingMethod::HardLink => {
            assert_eq!(same_inode as u64, r2.shared);
            assert!(same_inode >= 90);
            let changed = 10 * 8192;
            let manifest = fs::metadata(s2.path.join("Manifest.db")).unwrap().len();
            // Disk added by the second snapshot: changed files + manifest files (+ block slack).
            assert!(u2.unique_disk >= changed, "{u2:?}");
            assert!(
                u2.unique_disk <= changed + changed / 20 + manifest + 4 * 4096 + 4096,
                "{u2:?}"
            );
            assert!(u1.unique < u1.size);
        }
        SharingMethod::Copy | SharingMethod::Reflink => {
            assert_eq!(same_inode, 0);
            assert_eq!(u2.unique, u2.size);
        }
    }
    check_library(&env.lib);
}

#[test]
fn churn_hard_link_shares_unchanged_files() {
    churn_case(SharingMethod::HardLink);
}

#[test]
fn churn_copy_fallback_shares_nothing_but_is_correct() {
    churn_case(SharingMethod::Copy);
}

#[test]
fn reflink_forced_falls_back_per_file_where_unsupported() {
    // On ext4/tmpfs FICLONE fails: each file is copied; on XFS/btrfs it is cloned. Either
    // way the snapshots must be correct and independent inodes.
    churn_case(SharingMethod::Reflink);
}

#[test]
fn snapshots_off_keeps_one_backup() {
    let env = Env::new(Some(SharingMethod::HardLink));
    let mut cfg = env.lib.config().device(UDID).unwrap();
    cfg.set("snapshots", "off").unwrap();
    env.lib.config().save_device(UDID, &cfg).unwrap();
    for v in 1..=3u8 {
        env.lib
            .import(&env.backup(&format!("v{v}"), &files(10, 100, v, 2)), None)
            .unwrap();
        env.days(1);
    }
    let s = env.lib.snapshots(UDID).unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].name, "2026-11-26T213000Z");
    check_library(&env.lib);
}

#[test]
fn references_resolve() {
    let env = Env::new(None);
    env.lib
        .import(&env.backup("a", &files(3, 10, 1, 1)), None)
        .unwrap();
    env.days(1);
    env.lib
        .import(&env.backup("b", &files(3, 10, 2, 1)), None)
        .unwrap();
    assert_eq!(
        env.lib.resolve(&format!("{UDID}@latest")).unwrap().name,
        "2026-11-25T213000Z"
    );
    assert_eq!(env.lib.resolve(UDID).unwrap().name, "2026-11-25T213000Z");
    assert_eq!(
        env.lib.resolve("2026-11-24").unwrap().name,
        "2026-11-24T213000Z"
    );
    assert_eq!(
        env.lib
            .resolve(&format!("{UDID}@2026-11-24T213000Z"))
            .unwrap()
            .name,
        "2026-11-24T213000Z"
    );
    assert!(matches!(
        env.lib.resolve("2026-11"),
        Err(iosnap_store::Error::Ambiguous { .. })
    ));
    assert!(matches!(
        env.lib.resolve("1999"),
        Err(iosnap_store::Error::NoSuchSnapshot(_))
    ));
}

#[test]
fn diff_by_domain() {
    let env = Env::new(None);
    let mut v1 = files(6, 100, 1, 3);
    env.lib.import(&env.backup("a", &v1), None).unwrap();
    env.days(1);
    v1[0].1 = vec![9u8; 100]; // changed
    v1.remove(5); // removed
    v1.push(("Library/new.txt".into(), b"hello".to_vec())); // added
    env.lib.import(&env.backup("b", &v1), None).unwrap();
    let s = env.lib.snapshots(UDID).unwrap();
    let a = iosnap_format::Backup::open(&s[0].path).unwrap();
    let b = iosnap_format::Backup::open(&s[1].path).unwrap();
    let d = iosnap_store::diff::diff(&a, &b).unwrap();
    let h = &d.domains["HomeDomain"];
    assert_eq!(h.added, ["Library/new.txt"]);
    assert_eq!(h.removed, ["Library/f0005.bin"]);
    assert_eq!(h.changed, ["Library/f0000.bin"]);
    assert_eq!(d.totals(), (1, 1, 1));
}

#[test]
fn delete_all_and_archive_survive_retention() {
    let env = Env::new(Some(SharingMethod::HardLink));
    let (s1, _) = env
        .lib
        .import(&env.backup("a", &files(5, 100, 1, 1)), None)
        .unwrap();
    let arch = env.lib.archive(&s1).unwrap();
    env.days(1);
    let (s2, _) = env
        .lib
        .import(&env.backup("b", &files(5, 100, 2, 1)), None)
        .unwrap();
    env.lib
        .update_meta(&s2, |m| m.label = Some("before update".into()))
        .unwrap();
    assert_eq!(
        env.lib.snapshots(UDID).unwrap()[1].label.as_deref(),
        Some("before update")
    );
    let kept = env.lib.delete_all(UDID).unwrap();
    assert!(kept.is_empty());
    assert!(env.lib.snapshots(UDID).unwrap().is_empty());
    assert_eq!(env.lib.archives(UDID).unwrap(), vec![arch.clone()]);
    assert!(
        iosnap_format::verify::verify(&iosnap_format::Backup::open(&arch).unwrap(), true)
            .unwrap()
            .is_clean()
    );
}

#[test]
fn move_device_keeps_sharing_and_locks() {
    let env = Env::new(Some(SharingMethod::HardLink));
    for v in 1..=3u8 {
        env.lib
            .import(&env.backup(&format!("v{v}"), &files(20, 1000, v, 5)), None)
            .unwrap();
        env.days(1);
    }
    // An archive of the middle snapshot (sharing its files), then the sizes as they are now.
    let middle = env.lib.snapshots(UDID).unwrap()[1].clone();
    let archived = env.lib.archive(&middle).unwrap();
    let archive_files = snapshot_files(&archived);
    let before = env.lib.refresh(UDID).unwrap();
    env.lib
        .update_meta(&before[0], |m| m.locked = true)
        .unwrap();
    let contents: Vec<_> = before.iter().map(|s| snapshot_files(&s.path)).collect();

    let mut dest = iosnap_store::Library::open(
        &env.tmp.path().join("disk/iosnap.Backups"),
        iosnap_store::ConfigDir::at(env.tmp.path().join("config")),
        env.clock.clone(),
    )
    .unwrap();
    dest.force_sharing(Some(SharingMethod::HardLink));
    let rep = env.lib.move_device(UDID, &dest).unwrap();
    assert_eq!(rep.snapshots, 3);
    assert!(rep.shared >= 2 * 16, "{rep:?}");
    assert!(env.lib.snapshots(UDID).unwrap().is_empty());
    let after = dest.snapshots(UDID).unwrap();
    assert_eq!(after.len(), 3);
    assert!(after[0].locked, "lock moved with the snapshot");
    for (i, s) in after.iter().enumerate() {
        assert_eq!(s.name, before[i].name);
        let got = snapshot_files(&s.path);
        assert_eq!(
            got.iter().map(|(k, v)| (k, &v.1)).collect::<Vec<_>>(),
            contents[i]
                .iter()
                .map(|(k, v)| (k, &v.1))
                .collect::<Vec<_>>()
        );
        // Same sharing pattern as before: unique bytes unchanged.
        assert_eq!(s.usage, before[i].usage, "{}", s.name);
    }
    // The archive moved too, still sharing every file with its snapshot (same inode).
    assert_eq!(rep.archives, 1, "{rep:?}");
    assert!(env.lib.archives(UDID).unwrap().is_empty());
    let moved_archives = dest.archives(UDID).unwrap();
    assert_eq!(moved_archives.len(), 1);
    let got = snapshot_files(&moved_archives[0]);
    assert_eq!(
        got.iter().map(|(k, v)| (k, &v.1)).collect::<Vec<_>>(),
        archive_files
            .iter()
            .map(|(k, v)| (k, &v.1))
            .collect::<Vec<_>>()
    );
    let snap1 = snapshot_files(&after[1].path);
    for (rel, (ino, _)) in &got {
        assert_eq!(
            snap1[rel].0,
            *ino,
            "{} not shared with its snapshot",
            rel.display()
        );
    }
    check_library(&dest);
    // Running it again is harmless (nothing left to move).
    let again = env.lib.move_device(UDID, &dest).unwrap();
    assert_eq!((again.snapshots, again.archives), (0, 0));
}

#[test]
fn forget_device_removes_everything_of_it() {
    let env = Env::new(Some(SharingMethod::HardLink));
    let (s1, _) = env
        .lib
        .import(&env.backup("a", &files(5, 100, 1, 1)), None)
        .unwrap();
    env.lib.update_meta(&s1, |m| m.locked = true).unwrap();
    env.lib.archive(&s1).unwrap();
    assert_eq!(env.lib.forget_device(UDID).unwrap(), 1);
    assert!(env.lib.devices().unwrap().is_empty());
    assert_eq!(env.lib.catalog().unwrap().count().unwrap(), 0);
    assert!(!env.lib.root().join(UDID).exists());
    // A leftover of a killed forget is removed when the library is next opened.
    let leftover = env.lib.root().join(".deleting-X-1/ab");
    fs::create_dir_all(&leftover).unwrap();
    let _again = iosnap_store::Library::open(
        env.lib.root(),
        iosnap_store::ConfigDir::at(env.tmp.path().join("config")),
        env.clock.clone(),
    )
    .unwrap();
    assert!(!env.lib.root().join(".deleting-X-1").exists());
}

#[test]
fn space_check_before_a_backup() {
    use iosnap_store::{SpaceBasis, SpaceVerdict, TIGHT_MARGIN};
    let mut env = Env::new(Some(SharingMethod::HardLink));
    // First backup: the device's used capacity is the estimate.
    env.lib.override_free_space(Some(10 << 30));
    let c = env.lib.check_space(UDID, Some(2 << 30)).unwrap();
    assert_eq!(
        (c.need, c.basis, c.verdict),
        (2 << 30, SpaceBasis::DeviceUsedCapacity, SpaceVerdict::Fits)
    );
    let c = env.lib.check_space(UDID, Some(10 << 30)).unwrap();
    assert_eq!(c.verdict, SpaceVerdict::Tight, "nothing would be left");
    let c = env.lib.check_space(UDID, Some((10 << 30) + 1)).unwrap();
    assert_eq!(c.verdict, SpaceVerdict::WontFit);
    assert_eq!(
        env.lib.check_space(UDID, None).unwrap().verdict,
        SpaceVerdict::Unknown
    );
    // Later backups: what the last snapshot added, at least 5 % of its size.
    let (s1, _) = env
        .lib
        .import(&env.backup("a", &files(20, 10_000, 1, 1)), None)
        .unwrap();
    env.lib.override_free_space(Some(TIGHT_MARGIN * 2));
    let c = env.lib.check_space(UDID, Some(u64::MAX)).unwrap();
    assert_eq!(
        c.basis,
        SpaceBasis::LastSnapshot,
        "the device's figure is not used"
    );
    assert_eq!(c.need, s1.usage.unique.max(s1.usage.size / 20));
    assert_eq!(c.verdict, SpaceVerdict::Fits);
    env.lib.override_free_space(Some(c.need + TIGHT_MARGIN - 1));
    assert_eq!(
        env.lib.check_space(UDID, None).unwrap().verdict,
        SpaceVerdict::Tight
    );
    env.lib.override_free_space(Some(c.need - 1));
    assert_eq!(
        env.lib.check_space(UDID, None).unwrap().verdict,
        SpaceVerdict::WontFit
    );
    // Without the override, the real free space of the temp folder is used (the CLI test
    // crates/cli/tests/snapshot_space.rs checks that on a small tmpfs).
    env.lib.override_free_space(None);
    let real = env.lib.check_space(UDID, None).unwrap();
    assert_eq!(real.basis, SpaceBasis::LastSnapshot);
}
