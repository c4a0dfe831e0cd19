//! Writer → reader round trip, plain and encrypted: entries, bytes, extraction and verification
//! must all agree with what was written; then damage is reported exactly.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use iosnap_format::extract::SkipReason;
use iosnap_format::path_safety::UnsafeLink;
use iosnap_format::verify::verify;
use iosnap_format::{
    Backup, BackupWriter, Encryption, Entry, EntryKind, Error, Extractor, FileMeta, KdfParams,
    Tree, WriterOptions,
};

const PASSWORD: &[u8] = b"correct horse \xc3\xa9 battery";

fn kdf() -> KdfParams {
    KdfParams {
        dpic: 1000,
        iter: 100,
    }
}

/// Deterministic pseudo-random content.
fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

struct Written {
    /// (domain, relative path) → content, for regular files.
    files: BTreeMap<(String, String), Vec<u8>>,
    /// Every row the writer produced (incl. automatic directories are NOT here).
    entries: Vec<Entry>,
}

const SIZES: [usize; 11] = [0, 1, 15, 16, 17, 31, 32, 33, 4095, 4096, 65537];

fn write_backup(dir: &Path, encrypted: bool) -> Written {
    let opts = WriterOptions {
        encryption: encrypted.then(|| Encryption::new(PASSWORD, kdf())),
        ..WriterOptions::default()
    };
    let mut w = BackupWriter::create(dir, opts).expect("create");
    let mut files = BTreeMap::new();
    let mut entries = Vec::new();
    let mut seed = 1u64;
    let mut add =
        |w: &mut BackupWriter, domain: &str, rel: &str, data: Vec<u8>, class: u32, mode: u32| {
            let meta = FileMeta {
                mode,
                uid: 501,
                gid: 501,
                mtime: 1_600_000_000 + i64::from(class) * 1000 + data.len() as i64,
                ctime: 1_600_000_001,
                birth: 1_500_000_000,
                inode: 42,
                protection_class: class,
                ..FileMeta::default()
            };
            let e = w
                .add_file(domain, rel, meta, data.as_slice())
                .expect("add_file")
                .clone();
            assert_eq!(e.meta.size, data.len() as u64);
            files.insert((domain.to_string(), rel.to_string()), data);
            e
        };
    // Sizes × protection classes in HomeDomain.
    for (i, size) in SIZES.iter().enumerate() {
        for class in 1..=4u32 {
            seed += 1;
            let rel = format!("Library/Sizes/f{size}_c{class}.bin");
            entries.push(add(
                &mut w,
                "HomeDomain",
                &rel,
                content(seed, *size),
                class,
                0o100644 - (i as u32 % 2) * 0o44,
            ));
        }
    }
    // Unicode names.
    for (n, rel) in [
        "Media/Ünïcödé/日本語 ファイル.txt",
        "Media/emoji 📷 photo.jpg",
        "Media/ﬁ ligature & spaces  .txt",
    ]
    .iter()
    .enumerate()
    {
        entries.push(add(
            &mut w,
            "MediaDomain",
            rel,
            content(100 + n as u64, 777 + n),
            3,
            0o100600,
        ));
    }
    // A 30-level deep path.
    let deep: Vec<String> = (0..30).map(|i| format!("d{i:02}")).collect();
    let deep_rel = format!("{}/deep.txt", deep.join("/"));
    entries.push(add(
        &mut w,
        "CameraRollDomain",
        &deep_rel,
        content(7, 100),
        2,
        0o100644,
    ));
    // Many domains (apps, groups, plugins, system containers).
    for i in 0..25 {
        let domain = match i % 5 {
            0 => format!("AppDomain-com.example.app{i}"),
            1 => format!("AppDomainGroup-group.com.example.app{i}"),
            2 => format!("AppDomainPlugin-com.example.app{i}.ext"),
            3 => format!("SysContainerDomain-com.apple.sys{i}"),
            _ => format!("SysSharedContainerDomain-systemgroup.com.apple.shared{i}"),
        };
        entries.push(add(
            &mut w,
            &domain,
            "Documents/data.sqlite",
            content(1000 + i, 300 + i as usize),
            4,
            0o100644,
        ));
    }
    // Explicit directory with its own mode and time, and symlinks.
    let dmeta = FileMeta {
        mode: 0o040750,
        mtime: 1_234_567_890,
        ..FileMeta::default()
    };
    entries.push(
        w.add_directory("HomeDomain", "Library/Explicit", dmeta)
            .expect("dir")
            .clone(),
    );
    let lmeta = FileMeta {
        mtime: 1_300_000_000,
        ..FileMeta::default()
    };
    for (rel, target) in [
        ("Library/Explicit/inside", "../Sizes/f16_c1.bin"),
        (
            "Library/Explicit/absolute",
            "/private/var/mobile/Library/Preferences",
        ),
        ("Library/Explicit/escaping", "../../../../../etc/passwd"),
    ] {
        entries.push(
            w.add_symlink("HomeDomain", rel, target, lmeta.clone())
                .expect("link")
                .clone(),
        );
    }
    // The writer refuses unsafe paths and duplicates.
    assert!(
        w.add_file("HomeDomain", "../evil", FileMeta::default(), &b"x"[..])
            .is_err()
    );
    assert!(
        w.add_file(
            "HomeDomain",
            "Library/Sizes/f0_c1.bin",
            FileMeta::default(),
            &b"x"[..]
        )
        .is_err()
    );
    let summary = w.finish().expect("finish");
    assert_eq!(summary.files as usize, files.len());
    assert_eq!(summary.symlinks, 3);
    Written { files, entries }
}

fn key(e: &Entry) -> (String, String) {
    (e.domain.clone(), e.relative_path.clone())
}

fn check_round_trip(encrypted: bool) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("backup");
    let written = write_backup(&dir, encrypted);
    assert_eq!(
        std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777,
        0o700
    );

    let mut b = Backup::open(&dir).expect("open");
    assert!(b.warnings().is_empty(), "{:?}", b.warnings());
    assert_eq!(b.is_encrypted(), encrypted);
    assert!(b.status().expect("status").is_finished());
    assert_eq!(
        b.info().expect("info").product_version.as_deref(),
        Some("17.5")
    );
    let m = b.manifest().expect("manifest");
    assert_eq!(m.is_encrypted, encrypted);
    assert_eq!(m.manifest_key.is_some(), encrypted);
    if encrypted {
        assert!(!b.is_unlocked());
        assert!(matches!(b.entries(), Err(Error::PasswordRequired)));
        assert!(matches!(
            b.unlock(b"wrong password"),
            Err(Error::WrongPassword)
        ));
        assert!(!b.is_unlocked());
        b.unlock(PASSWORD).expect("unlock");
        let p = b.decrypted_manifest_path().expect("decrypted path");
        let mode = std::fs::metadata(&p).expect("db").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let parent_mode = std::fs::metadata(p.parent().expect("parent"))
            .expect("pd")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(parent_mode, 0o700);
    }
    assert!(b.is_unlocked());

    // Entries: every written row comes back identical (metadata, keys, targets).
    let rows = b.entries().expect("entries");
    assert!(rows.skipped.is_empty(), "{:?}", rows.skipped);
    let read: BTreeMap<_, _> = rows.entries.iter().map(|e| (key(e), e.clone())).collect();
    for e in &written.entries {
        assert_eq!(
            read.get(&key(e)),
            Some(e),
            "row {}/{}",
            e.domain,
            e.relative_path
        );
    }
    // Automatic rows: domain roots and every intermediate directory exist as directories.
    for e in &rows.entries {
        let mut rel = e.relative_path.as_str();
        while let Some(pos) = rel.rfind('/') {
            rel = &rel[..pos];
            let parent = read
                .get(&(e.domain.clone(), rel.to_string()))
                .expect("parent row");
            assert_eq!(parent.kind, EntryKind::Directory);
        }
        let root = read
            .get(&(e.domain.clone(), String::new()))
            .expect("root row");
        assert_eq!(root.kind, EntryKind::Directory);
    }
    if encrypted {
        for e in rows.entries.iter().filter(|e| e.has_data()) {
            let k = e.meta.encryption_key.as_ref().expect("EncryptionKey");
            assert_eq!(k.class, e.meta.protection_class);
        }
    }

    // Bytes through open_file and find.
    for ((domain, rel), data) in &written.files {
        let e = b.find(domain, rel).expect("find");
        let mut got = Vec::new();
        b.open_file(&e)
            .expect("open_file")
            .read_to_end(&mut got)
            .expect("read");
        assert_eq!(&got, data, "{domain}/{rel}");
    }
    assert!(matches!(
        b.find("HomeDomain", "nope"),
        Err(Error::NotFound { .. })
    ));

    // Tree.
    let tree = Tree::build(&rows.entries);
    let deep = tree
        .list(
            "CameraRollDomain",
            &(0..29)
                .map(|i| format!("d{i:02}"))
                .collect::<Vec<_>>()
                .join("/"),
        )
        .expect("deep");
    assert_eq!(deep.len(), 1);
    assert_eq!(tree.stats()["HomeDomain"].files, (SIZES.len() * 4) as u64);

    // Verify: clean, also deep.
    let v = verify(&b, encrypted).expect("verify");
    assert!(v.is_clean(), "{v:?}");
    assert_eq!(v.files_checked as usize, written.files.len());

    // Extract everything and compare.
    let out_parent = tempfile::tempdir().expect("out");
    let out = out_parent.path().join("out");
    let ticks = std::sync::atomic::AtomicU64::new(0);
    let report = Extractor::new(&out)
        .run(&b, &rows.entries, &|_p| {
            ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .expect("extract");
    assert!(ticks.into_inner() >= written.files.len() as u64);
    assert_eq!(report.files as usize, written.files.len());
    assert_eq!(
        report.bytes,
        written.files.values().map(|d| d.len() as u64).sum::<u64>()
    );
    assert_eq!(report.symlinks, 1);
    assert!(report.size_mismatches.is_empty());
    let mut skipped: Vec<_> = report
        .skipped
        .iter()
        .map(|s| (s.relative_path.as_str(), &s.reason))
        .collect();
    skipped.sort_by_key(|s| s.0);
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(matches!(
        skipped[0].1,
        SkipReason::UnsafeLink {
            reason: UnsafeLink::Absolute,
            ..
        }
    ));
    assert!(matches!(
        skipped[1].1,
        SkipReason::UnsafeLink {
            reason: UnsafeLink::Escapes,
            ..
        }
    ));
    for ((domain, rel), data) in &written.files {
        let p = out.join(domain).join(rel);
        assert_eq!(
            &std::fs::read(&p).expect("extracted"),
            data,
            "{}",
            p.display()
        );
    }
    for e in &written.entries {
        let p = out.join(&e.domain).join(&e.relative_path);
        match e.kind {
            EntryKind::File => {
                let md = std::fs::metadata(&p).expect("md");
                assert_eq!(
                    md.permissions().mode() & 0o7777,
                    (e.meta.mode & 0o777) | 0o600
                );
                assert_eq!(
                    filetime::FileTime::from_last_modification_time(&md).unix_seconds(),
                    e.meta.mtime
                );
            }
            EntryKind::Directory => {
                let md = std::fs::metadata(&p).expect("md");
                assert_eq!(md.permissions().mode() & 0o7777, 0o750);
                assert_eq!(
                    filetime::FileTime::from_last_modification_time(&md).unix_seconds(),
                    1_234_567_890
                );
            }
            EntryKind::Symlink if e.relative_path.ends_with("inside") => {
                assert_eq!(
                    std::fs::read_link(&p).expect("link"),
                    PathBuf::from("../Sizes/f16_c1.bin")
                );
                assert_eq!(std::fs::read(&p).expect("via link").len(), 16);
            }
            EntryKind::Symlink => assert!(
                std::fs::symlink_metadata(&p).is_err(),
                "{} must not exist",
                p.display()
            ),
            EntryKind::Other(_) => {}
        }
    }
    // Nothing beside OUT in its parent.
    let beside: Vec<_> = std::fs::read_dir(out_parent.path())
        .expect("ls")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert_eq!(beside, vec![std::ffi::OsString::from("out")]);
    // A second run with the default policy skips existing files and changes nothing.
    let again = Extractor::new(&out)
        .run(&b, &rows.entries, &|_| {})
        .expect("again");
    assert_eq!(again.files, 0);
    assert_eq!(
        again
            .skipped
            .iter()
            .filter(|s| s.reason == SkipReason::Exists)
            .count(),
        written.files.len() + 1
    );

    // Damage: delete one data file, truncate one, add an extra one.
    let by_rel = |rel: &str| {
        read.get(&("HomeDomain".to_string(), rel.to_string()))
            .expect("row")
            .clone()
    };
    let deleted = b.data_path(&by_rel("Library/Sizes/f4096_c1.bin"));
    let truncated = b.data_path(&by_rel("Library/Sizes/f65537_c2.bin"));
    std::fs::remove_file(&deleted).expect("rm");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .expect("open");
    f.set_len(1000).expect("truncate");
    let extra_id = iosnap_format::file_id("NoSuchDomain", "x");
    let extra = dir.join(&extra_id[..2]).join(&extra_id);
    std::fs::create_dir_all(extra.parent().expect("p")).expect("mkdir");
    std::fs::write(&extra, b"stray").expect("extra");
    let v = verify(&b, false).expect("verify");
    assert!(!v.is_clean());
    assert_eq!(
        v.missing
            .iter()
            .map(|i| i.data_path.clone())
            .collect::<Vec<_>>(),
        vec![deleted]
    );
    assert_eq!(
        v.size_mismatch
            .iter()
            .map(|i| i.data_path.clone())
            .collect::<Vec<_>>(),
        vec![truncated]
    );
    assert_eq!(v.size_mismatch[0].actual, 1000);
    assert_eq!(v.extra, vec![extra]);
    assert!(v.unreadable.is_empty());
    serde_json::to_string(&v).expect("report serializes");

    // Extraction of the damaged backup: the missing file is reported as such, the truncated one
    // is a size mismatch (plain) or a decryption failure (encrypted: 1000 is not a whole block).
    let out2 = out_parent.path().join("out2");
    let r = Extractor::new(&out2)
        .run(&b, &rows.entries, &|_| {})
        .expect("extract damaged");
    let missing: Vec<_> = r.missing_data().map(|s| s.relative_path.as_str()).collect();
    assert_eq!(missing, vec!["Library/Sizes/f4096_c1.bin"]);
    if encrypted {
        let failed: Vec<_> = r.failures().map(|s| s.relative_path.as_str()).collect();
        assert_eq!(failed, vec!["Library/Sizes/f65537_c2.bin"]);
        assert!(
            !out2.join("HomeDomain/Library/Sizes/f65537_c2.bin").exists(),
            "no partial file left"
        );
    } else {
        assert_eq!(
            r.size_mismatches,
            vec![(
                "HomeDomain/Library/Sizes/f65537_c2.bin".to_string(),
                65537,
                1000
            )]
        );
    }
    assert_eq!(
        r.files as usize,
        written.files.len() - 1 - usize::from(encrypted)
    );
    serde_json::to_string(&r).expect("report serializes");
}

#[test]
fn plain_round_trip() {
    check_round_trip(false);
}

#[test]
fn encrypted_round_trip() {
    check_round_trip(true);
}

#[test]
fn deep_verify_catches_corrupted_ciphertext() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("b");
    let opts = WriterOptions {
        encryption: Some(Encryption::new(PASSWORD, kdf())),
        ..WriterOptions::default()
    };
    let mut w = BackupWriter::create(&dir, opts).expect("create");
    let e = w
        .add_file(
            "HomeDomain",
            "a.bin",
            FileMeta::default(),
            &content(1, 100)[..],
        )
        .expect("add")
        .clone();
    w.finish().expect("finish");
    let mut b = Backup::open(&dir).expect("open");
    b.unlock(PASSWORD).expect("unlock");
    // Flip a byte of the last block: length stays right, padding breaks.
    let p = b.data_path(&e);
    let mut bytes = std::fs::read(&p).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&p, &bytes).expect("write");
    assert!(
        verify(&b, false).expect("quick").is_clean(),
        "quick check only looks at lengths"
    );
    let deep = verify(&b, true).expect("deep");
    assert_eq!(deep.decrypt_errors.len(), 1, "{deep:?}");
}

#[test]
fn writer_refuses_non_empty_dir_and_open_reports_missing_plists() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("x"), b"x").expect("x");
    assert!(BackupWriter::create(tmp.path(), WriterOptions::default()).is_err());
    let ok = BackupWriter::create(
        tmp.path(),
        WriterOptions {
            allow_non_empty: true,
            ..WriterOptions::default()
        },
    );
    let mut w = ok.expect("allowed");
    w.add_file("HomeDomain", "f", FileMeta::default(), &b"hello"[..])
        .expect("add");
    w.finish().expect("finish");
    for name in ["Info.plist", "Status.plist", "Manifest.plist"] {
        std::fs::remove_file(tmp.path().join(name)).expect("rm");
    }
    let b = Backup::open(tmp.path()).expect("open without plists");
    assert_eq!(b.warnings().len(), 3, "{:?}", b.warnings());
    assert!(!b.is_encrypted());
    assert_eq!(b.entries().expect("entries").entries.len(), 2);
}

#[test]
fn encrypted_manifest_without_keybag_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let opts = WriterOptions {
        encryption: Some(Encryption::new(PASSWORD, kdf())),
        ..WriterOptions::default()
    };
    let mut w = BackupWriter::create(tmp.path(), opts).expect("create");
    w.add_file("HomeDomain", "f", FileMeta::default(), &b"hello"[..])
        .expect("add");
    w.finish().expect("finish");
    std::fs::remove_file(tmp.path().join("Manifest.plist")).expect("rm");
    let mut b = Backup::open(tmp.path()).expect("open");
    assert!(b.is_encrypted());
    assert!(
        b.warnings().iter().any(|w| w.contains("keybag")),
        "{:?}",
        b.warnings()
    );
    let err = b.unlock(PASSWORD).expect_err("no keybag");
    assert!(err.to_string().contains("Manifest.plist"), "{err}");
}

#[test]
fn mbdx_only_is_unsupported_and_empty_dir_is_not_a_backup() {
    let tmp = tempfile::tempdir().expect("tmp");
    assert!(matches!(
        Backup::open(tmp.path()),
        Err(Error::NotABackup { .. })
    ));
    std::fs::write(tmp.path().join("Manifest.mbdx"), b"mbdx\x02\x00\0\0\0\0").expect("mbdx");
    let err = Backup::open(tmp.path()).expect_err("mbdx");
    assert!(matches!(err, Error::Unsupported { .. }));
    assert!(err.to_string().contains("iOS 3"), "{err}");
}

#[test]
fn mbdb_backup_reads_flat_layout() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = b"legacy content".to_vec();
    let e = Entry {
        file_id: iosnap_format::file_id("HomeDomain", "Library/old.txt"),
        domain: "HomeDomain".into(),
        relative_path: "Library/old.txt".into(),
        kind: EntryKind::File,
        meta: FileMeta {
            size: data.len() as u64,
            mode: 0o100644,
            mtime: 1_300_000_000,
            ..FileMeta::default()
        },
    };
    std::fs::write(
        tmp.path().join("Manifest.mbdb"),
        iosnap_format::mbdb::encode(std::slice::from_ref(&e)),
    )
    .expect("mbdb");
    std::fs::write(tmp.path().join(&e.file_id), &data).expect("data");
    let b = Backup::open(tmp.path()).expect("open");
    assert_eq!(b.format(), iosnap_format::ManifestFormat::Mbdb);
    assert_eq!(b.data_path(&e), tmp.path().join(&e.file_id));
    let rows = b.entries().expect("entries");
    assert_eq!(rows.entries.len(), 1);
    let mut got = Vec::new();
    b.open_file(&rows.entries[0])
        .expect("open_file")
        .read_to_end(&mut got)
        .expect("read");
    assert_eq!(got, data);
    assert!(verify(&b, false).expect("verify").is_clean());
}

#[test]
fn ios_10_0_style_plain_manifest_with_encrypted_files_and_kek_unlock() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("b");
    let opts = WriterOptions {
        encryption: Some(Encryption::new(PASSWORD, kdf())),
        ..WriterOptions::default()
    };
    let mut w = BackupWriter::create(&dir, opts).expect("create");
    let data = content(9, 5000);
    w.add_file(
        "HomeDomain",
        "Library/a.bin",
        FileMeta {
            protection_class: 3,
            ..FileMeta::default()
        },
        data.as_slice(),
    )
    .expect("add");
    w.finish().expect("finish");

    // Turn it into an iOS 10.0/10.1-style backup: plain Manifest.db, no ManifestKey.
    let mut b = Backup::open(&dir).expect("open");
    b.unlock(PASSWORD).expect("unlock");
    let plain_db = std::fs::read(b.decrypted_manifest_path().expect("path")).expect("db");
    drop(b);
    std::fs::write(dir.join("Manifest.db"), plain_db).expect("write db");
    let mp = dir.join("Manifest.plist");
    let mut m = iosnap_format::ManifestPlist::read(&mp).expect("read plist");
    m.manifest_key = None;
    m.write(&mp).expect("write plist");

    let mut b = Backup::open(&dir).expect("open 10.0 style");
    assert!(b.is_encrypted() && !b.is_unlocked());
    let rows = b.entries().expect("the manifest itself is readable");
    let e = rows
        .entries
        .iter()
        .find(|e| e.has_data())
        .expect("file")
        .clone();
    assert!(matches!(b.open_file(&e), Err(Error::PasswordRequired)));
    // Unlock with an already derived key (mvt's "derived key") instead of the password.
    let kb = b.keybag().expect("keybag");
    let kek = iosnap_format::crypto::derive_kek(PASSWORD, &kb).expect("kek");
    b.unlock_with_kek(&kek).expect("unlock with kek");
    let mut got = Vec::new();
    b.open_file(&e)
        .expect("open")
        .read_to_end(&mut got)
        .expect("read");
    assert_eq!(got, data);
    assert!(verify(&b, true).expect("verify").is_clean());
}

/// The simulator's path: no BackupWriter, entries encoded one by one and their content streamed
/// (here into files by hand), then the manifest files written from the collected entries.
#[test]
fn streaming_building_blocks_make_a_readable_backup() {
    use iosnap_format::writer::{BackupKeys, complete_directories, write_manifest_files};
    let tmp = tempfile::tempdir().expect("tmp");
    let opts = WriterOptions {
        encryption: Some(Encryption::new(PASSWORD, kdf())),
        ..WriterOptions::default()
    };
    let keys = BackupKeys::generate(opts.encryption.as_ref()).expect("keys");
    let enc = keys.encoder();
    let mut entries = Vec::new();
    let data = content(77, 12345);
    let (mut e, mut stream) = enc
        .file(
            "HomeDomain",
            "Library/SMS/sms.db",
            FileMeta {
                protection_class: 1,
                ..FileMeta::default()
            },
            data.as_slice(),
        )
        .expect("encode");
    let mut wire = Vec::new();
    stream.read_to_end(&mut wire).expect("stream");
    assert_eq!(
        wire.len() as u64,
        iosnap_format::crypto::encrypted_len(data.len() as u64)
    );
    e.meta.size = stream.plain_len();
    let bucket = tmp.path().join(&e.file_id[..2]);
    std::fs::create_dir_all(&bucket).expect("bucket");
    std::fs::write(bucket.join(&e.file_id), &wire).expect("data");
    entries.push(e);
    entries.push(
        enc.symlink(
            "HomeDomain",
            "Library/SMS/link",
            "/var/mobile",
            FileMeta::default(),
        )
        .expect("link"),
    );
    complete_directories(&mut entries, 1_700_000_000);
    assert_eq!(entries.len(), 2 + 3, "root, Library, Library/SMS added");
    write_manifest_files(tmp.path(), &entries, &keys, &opts).expect("manifest");

    let mut b = Backup::open(tmp.path()).expect("open");
    b.unlock(PASSWORD).expect("unlock");
    let e = b.find("HomeDomain", "Library/SMS/sms.db").expect("find");
    let mut got = Vec::new();
    b.open_file(&e)
        .expect("open")
        .read_to_end(&mut got)
        .expect("read");
    assert_eq!(got, data);
    assert!(verify(&b, true).expect("verify").is_clean());
}
