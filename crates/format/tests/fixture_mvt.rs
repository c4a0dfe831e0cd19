//! Checks the manifest readers and writers against a real iOS 14.3 backup (the MVT test artifact,
//! 3,721 rows) and against the small captured/handmade samples in `tests/data`.
//!
//! The fixture lives outside the repository (`<repo>/../shared/fixtures/mvt-ios14-backup`); set
//! `IOSNAP_FIXTURES` to the folder holding `mvt-ios14-backup` to use another copy. A missing
//! fixture fails the tests unless `IOSNAP_ALLOW_MISSING_FIXTURES=1` is set (then they are skipped
//! with a message), so a broken checkout cannot pass silently.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use iosnap_format::entry::{EntryKind, file_id};
use iosnap_format::{
    Entry, Error, InfoPlist, ManifestDb, ManifestDbWriter, info_plist, manifest_db, mbdb, mbfile,
};

fn fixture_dir() -> Option<PathBuf> {
    let root = match std::env::var_os("IOSNAP_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
    };
    let dir = root.join("mvt-ios14-backup");
    if dir.join(manifest_db::FILE_NAME).is_file() {
        return Some(dir);
    }
    if std::env::var("IOSNAP_ALLOW_MISSING_FIXTURES").as_deref() == Ok("1") {
        eprintln!("skipping: fixture {} not found", dir.display());
        return None;
    }
    panic!(
        "fixture {} not found; set IOSNAP_FIXTURES to the folder holding mvt-ios14-backup \
         (or IOSNAP_ALLOW_MISSING_FIXTURES=1 to skip)",
        dir.display()
    );
}

fn data(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

/// Every raw row of a database: fileID → (domain, relativePath, flags, blob).
fn raw_rows(path: &Path) -> BTreeMap<String, (String, String, i64, Vec<u8>)> {
    let uri = format!("file:{}?mode=ro&immutable=1", path.display());
    let conn = rusqlite::Connection::open_with_flags(
        uri,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .expect("open raw");
    let mut stmt = conn
        .prepare("SELECT fileID, domain, relativePath, flags, file FROM Files")
        .expect("prep");
    stmt.query_map([], |r| {
        Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
    })
    .expect("query")
    .collect::<rusqlite::Result<_>>()
    .expect("rows")
}

#[test]
fn manifest_db_counts_match_the_real_phone() {
    let Some(dir) = fixture_dir() else { return };
    let before = listing(&dir);
    let db = ManifestDb::open(&dir.join(manifest_db::FILE_NAME)).expect("open");
    assert_eq!(db.len().expect("len"), 3_721);
    let rows = db.entries().expect("entries");
    assert!(rows.skipped.is_empty(), "skipped: {:?}", rows.skipped);
    assert_eq!(rows.entries.len(), 3_721);
    let domains: BTreeSet<&str> = rows.entries.iter().map(|e| e.domain.as_str()).collect();
    assert_eq!(domains.len(), 562);
    let count = |k: EntryKind| rows.entries.iter().filter(|e| e.kind == k).count();
    assert_eq!(count(EntryKind::File), 1_089);
    assert_eq!(count(EntryKind::Directory), 2_618);
    assert_eq!(count(EntryKind::Symlink), 14);
    for e in &rows.entries {
        assert_eq!(e.file_id, file_id(&e.domain, &e.relative_path), "{e:?}");
        match e.kind {
            EntryKind::File => {
                assert_eq!(e.meta.mode & 0o170000, 0o100000, "{e:?}");
                let key = e
                    .meta
                    .encryption_key
                    .as_ref()
                    .expect("every file has a key");
                assert_eq!(key.class, e.meta.protection_class);
                assert_eq!(key.wrapped.len(), 40);
            }
            EntryKind::Directory => assert_eq!(e.meta.mode & 0o170000, 0o040000, "{e:?}"),
            EntryKind::Symlink => {
                assert_eq!(e.meta.mode & 0o170000, 0o120000, "{e:?}");
                assert!(
                    e.meta.target.as_deref().is_some_and(|t| t.starts_with('/')),
                    "{e:?}"
                );
            }
            EntryKind::Other(f) => panic!("unexpected flags {f}"),
        }
    }
    assert!(rows.entries.iter().any(|e| !e.meta.xattrs.is_empty()));
    assert!(
        rows.entries
            .iter()
            .any(|e| e.meta.digest.as_ref().is_some_and(|d| d.len() == 20))
    );

    let sms = db
        .find("HomeDomain", "Library/SMS/sms.db")
        .expect("find")
        .expect("sms.db row");
    assert_eq!(sms.file_id, "3d0d7e5fb2ce288813306e4d4636395e047a3d28");
    assert_eq!(db.get(&sms.file_id).expect("get"), Some(sms));
    assert_eq!(
        listing(&dir),
        before,
        "opening the database must not create files next to it"
    );
}

#[test]
fn every_real_blob_decodes_and_survives_re_encoding() {
    let Some(dir) = fixture_dir() else { return };
    let raw = raw_rows(&dir.join(manifest_db::FILE_NAME));
    assert_eq!(raw.len(), 3_721);
    for (id, (domain, rel, _flags, blob)) in &raw {
        let (meta, blob_rel) =
            mbfile::decode(blob).unwrap_or_else(|e| panic!("{domain}/{rel} ({id}): {e}"));
        assert_eq!(blob_rel.as_deref(), Some(rel.as_str()), "{id}");
        let again = mbfile::encode(&meta, rel);
        let (meta2, rel2) = mbfile::decode(&again).expect("re-decode");
        assert_eq!(meta2, meta, "{id}");
        assert_eq!(rel2.as_deref(), Some(rel.as_str()));
    }
}

#[test]
fn writer_reproduces_the_real_rows() {
    let Some(dir) = fixture_dir() else { return };
    let src = dir.join(manifest_db::FILE_NAME);
    let entries = ManifestDb::open(&src)
        .expect("open")
        .entries()
        .expect("entries")
        .entries;
    let out = tempfile::tempdir().expect("tempdir");
    let dst = out.path().join(manifest_db::FILE_NAME);
    let mut w = ManifestDbWriter::create(&dst).expect("create");
    // Reverse order: the writer must not depend on input order.
    for e in entries.iter().rev() {
        w.add(e).expect("add");
    }
    w.finish().expect("finish");
    assert_eq!(
        listing(out.path()),
        vec![manifest_db::FILE_NAME.to_string()],
        "no sidecars"
    );

    let mut back = ManifestDb::open(&dst)
        .expect("reopen")
        .entries()
        .expect("entries");
    assert!(back.skipped.is_empty());
    let mut want = entries.clone();
    want.sort_by(|a, b| a.file_id.cmp(&b.file_id));
    back.entries.sort_by(|a, b| a.file_id.cmp(&b.file_id));
    assert_eq!(back.entries, want);

    // Column by column, the raw rows agree; blobs agree once decoded.
    let (a, b) = (raw_rows(&src), raw_rows(&dst));
    assert_eq!(a.len(), b.len());
    for ((ida, (da, ra, fa, ba)), (idb, (db_, rb, fb, bb))) in a.iter().zip(b.iter()) {
        assert_eq!((ida, da, ra, fa), (idb, db_, rb, fb));
        assert_eq!(
            mbfile::decode(ba).expect("a"),
            mbfile::decode(bb).expect("b"),
            "{ida}"
        );
    }
}

#[test]
fn real_info_plist_parses() {
    let check = |info: &InfoPlist| {
        assert_eq!(info.product_type.as_deref(), Some("iPhone9,3"));
        assert_eq!(info.product_version.as_deref(), Some("14.3"));
        assert_eq!(info.build_version.as_deref(), Some("18C66"));
        assert_eq!(info.device_name.as_deref(), Some("iPhone"));
        assert_eq!(
            info.unique_identifier.as_deref(),
            Some("1CB128EAFA77C5BE74283E9A3A2130AF36A3C059")
        );
        assert_eq!(info.installed_applications.len(), 6);
        assert!(info.last_backup_date.is_some());
        assert_eq!(
            info.extra.get("Target Type").and_then(|v| v.as_string()),
            Some("Device")
        );
    };
    let sample = InfoPlist::from_bytes(&data("plist/real-Info.plist"), Path::new("Info.plist"))
        .expect("sample");
    check(&sample);
    // Written back (as XML) and re-read, nothing is lost.
    let xml = sample.to_bytes().expect("xml");
    assert!(xml.starts_with(b"<?xml"));
    assert_eq!(
        InfoPlist::from_bytes(&xml, Path::new("x")).expect("reparse"),
        sample
    );
    if let Some(dir) = fixture_dir() {
        check(&InfoPlist::read(&dir.join(info_plist::FILE_NAME)).expect("fixture Info.plist"));
    }
}

#[test]
fn captured_mbfile_samples() {
    let (dir, rel) = mbfile::decode(&data("mbfile/real-dir.bin")).expect("dir");
    assert_eq!(rel.as_deref(), Some(""));
    assert_eq!(dir.mode & 0o170000, 0o040000);
    let (link, _) = mbfile::decode(&data("mbfile/real-symlink.bin")).expect("link");
    assert!(link.target.is_some());
    let (file, _) = mbfile::decode(&data("mbfile/real-file-key-digest-xattr.bin")).expect("file");
    assert_eq!(file.size, 1_099);
    assert_eq!(file.digest.as_ref().map(Vec::len), Some(20));
    assert_eq!(file.encryption_key.as_ref().map(|k| k.class), Some(4));
    assert_eq!(
        file.xattrs.get("com.apple.TextEncoding").map(Vec::as_slice),
        Some(&b"utf-8;134217984"[..])
    );
    let (photo, _) = mbfile::decode(&data("mbfile/real-file-xattr-assetsd.bin")).expect("photo");
    assert_eq!(photo.xattrs.len(), 19);
    assert_eq!(
        photo
            .xattrs
            .get("com.apple.assetsd.originalFilename")
            .map(Vec::as_slice),
        Some(&b"IMG_0034.PNG"[..])
    );

    for (name, want) in [
        ("hostile-uid-cycle.bin", "cycle"),
        ("hostile-top-out-of-range.bin", "out of range"),
        ("hostile-size-is-string.bin", "Size is not an integer"),
        ("hostile-short-key.bin", "EncryptionKey is 7 bytes"),
    ] {
        let e = mbfile::decode(&data(&format!("mbfile/{name}"))).expect_err(name);
        assert!(e.detail.contains(want), "{name}: {e}");
        let mapped = e.into_error("Manifest.db").to_string();
        assert!(
            mapped.contains("Manifest.db") && mapped.contains("MBFile"),
            "{mapped}"
        );
    }
}

#[test]
fn captured_mbdb_samples() {
    let p = Path::new("/b/Manifest.mbdb");
    let entries: Vec<Entry> = mbdb::parse(&data("mbdb/handmade-two-records.mbdb"), p).expect("ok");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].relative_path, "Library/Preferences/a.plist");
    assert_eq!(entries[0].kind, EntryKind::File);
    assert_eq!(entries[0].meta.size, 321);
    assert_eq!(entries[0].meta.protection_class, 4);
    assert_eq!(
        entries[0]
            .meta
            .xattrs
            .get("com.apple.foo")
            .map(Vec::as_slice),
        Some(&b"bar"[..])
    );
    assert_eq!(
        entries[0].file_id,
        file_id("HomeDomain", "Library/Preferences/a.plist")
    );
    assert_eq!(entries[1].kind, EntryKind::Directory);
    assert_eq!(entries[1].relative_path, "");
    assert_eq!(
        mbdb::encode(&entries),
        data("mbdb/handmade-two-records.mbdb")
    );

    for name in ["hostile-lying-length.mbdb", "hostile-truncated-fixed.mbdb"] {
        let e = mbdb::parse(&data(&format!("mbdb/{name}")), p).expect_err(name);
        assert!(matches!(e, Error::Corrupt { .. }), "{name}: {e}");
        assert!(e.to_string().contains("byte offset"), "{name}: {e}");
    }
    let mbdx = data("mbdb/mbdx-header.mbdx");
    assert!(mbdb::is_mbdx(&mbdx));
    assert!(matches!(
        mbdb::parse(&mbdx, p),
        Err(Error::Unsupported { .. })
    ));
}
