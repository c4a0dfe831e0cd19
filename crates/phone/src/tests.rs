//! Whole-phone tests: determinism, databases, media validity, churn, persistence, scale.

use std::collections::BTreeMap;
use std::io::Read;

use rusqlite::Connection;

use super::*;

fn small_spec(seed: u64, version: &str) -> PhoneSpec {
    PhoneSpec {
        seed,
        files: 400,
        bytes: 8 << 20,
        product_version: version.into(),
        apps: 12,
        data: Levels {
            messages: 400,
            whatsapp_messages: 200,
            history_visits: 200,
            photos: 40,
            ..Levels::default()
        },
        ..PhoneSpec::default()
    }
}

type Listing = Vec<(String, String, EntryKind, FileMeta)>;

fn listing(p: &Phone) -> Listing {
    p.files()
        .map(|f| {
            (
                f.domain.clone(),
                f.relative_path.clone(),
                f.kind,
                f.meta.clone(),
            )
        })
        .collect()
}

fn digest_all(p: &Phone) -> BTreeMap<(String, String), Vec<u8>> {
    use sha1::{Digest, Sha1};
    p.files()
        .filter(|f| f.kind == EntryKind::File)
        .map(|f| {
            let mut h = Sha1::new();
            let mut r = p.open(f).expect("open");
            let mut buf = vec![0u8; 1 << 16];
            let mut n_total = 0u64;
            loop {
                let n = r.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                n_total += n as u64;
                h.update(&buf[..n]);
            }
            assert_eq!(
                n_total, f.meta.size,
                "size of {}/{}",
                f.domain, f.relative_path
            );
            (
                (f.domain.clone(), f.relative_path.clone()),
                h.finalize().to_vec(),
            )
        })
        .collect()
}

#[test]
fn same_seed_same_phone_bytes_and_databases() {
    let a_dir = tempfile::tempdir().expect("tmp");
    let b_dir = tempfile::tempdir().expect("tmp");
    let spec = small_spec(7, "17.5");
    let mut a = Phone::generate_in(&spec, a_dir.path()).expect("a");
    let mut b = Phone::generate_in(&spec, b_dir.path()).expect("b");
    assert_eq!(listing(&a), listing(&b));
    assert_eq!(digest_all(&a), digest_all(&b));
    // The databases were built separately in two folders and are byte-identical.
    for (da, db) in a.databases().iter().zip(b.databases()) {
        assert_ne!(da.file, db.file);
        assert_eq!(
            std::fs::read(&da.file).expect("a"),
            std::fs::read(&db.file).expect("b"),
            "{}",
            da.relative_path
        );
    }
    a.churn(0.05).expect("churn a");
    b.churn(0.05).expect("churn b");
    assert_eq!(listing(&a), listing(&b));
    assert_eq!(digest_all(&a), digest_all(&b));

    let other = Phone::generate_in(&small_spec(8, "17.5"), a_dir.path()).expect("other");
    assert_ne!(digest_all(&a), digest_all(&other));
}

#[test]
fn listing_is_sorted_unique_and_complete() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = Phone::generate_in(&small_spec(3, "16.2"), dir.path()).expect("gen");
    let rows: Vec<_> = p.files().collect();
    for w in rows.windows(2) {
        assert!((&w[0].domain, &w[0].relative_path) < (&w[1].domain, &w[1].relative_path));
    }
    let mut inodes = std::collections::BTreeSet::new();
    let mut symlinks = 0;
    for f in &rows {
        assert!(
            inodes.insert(f.meta.inode),
            "duplicate inode {}",
            f.meta.inode
        );
        let root = p.find(&f.domain, "").expect("domain root");
        assert_eq!(root.kind, EntryKind::Directory);
        if let Some((parent, _)) = f.relative_path.rsplit_once('/') {
            assert_eq!(
                p.find(&f.domain, parent).map(|d| d.kind),
                Some(EntryKind::Directory),
                "{}",
                f.relative_path
            );
        }
        match f.kind {
            EntryKind::File => {
                assert_eq!(f.meta.mode & 0o170000, 0o100000);
                assert!((1..=4).contains(&f.meta.protection_class));
            }
            EntryKind::Directory => assert_eq!(
                (f.meta.mode & 0o170000, f.meta.size, f.meta.protection_class),
                (0o040000, 0, 0)
            ),
            EntryKind::Symlink => {
                symlinks += 1;
                assert!(f.meta.target.as_deref().is_some_and(|t| t.starts_with('/')));
                assert_eq!(f.meta.mode, 0o120755);
            }
            EntryKind::Other(_) => panic!("other kind"),
        }
        assert!([0, 501].contains(&f.meta.uid));
        assert!(f.meta.birth <= f.meta.mtime + 3600, "{}", f.relative_path);
    }
    assert!(symlinks >= 3);
    let domains: std::collections::BTreeSet<_> = rows.iter().map(|f| f.domain.as_str()).collect();
    for d in [
        "HomeDomain",
        "MediaDomain",
        "CameraRollDomain",
        "KeychainDomain",
        "WirelessDomain",
        "SystemPreferencesDomain",
        "AppDomain-net.whatsapp.WhatsApp",
        "AppDomainGroup-group.net.whatsapp.WhatsApp.shared",
        "AppDomainPlugin-net.whatsapp.WhatsApp.ShareExtension",
    ] {
        assert!(domains.contains(d), "missing {d}");
    }
    assert_eq!(p.apps().len(), 12);
    // App preferences are binary plists.
    let app = &p.apps()[2];
    let prefs = p
        .find(
            &app.container_domain,
            &format!("Library/Preferences/{}.plist", app.bundle_id),
        )
        .expect("prefs");
    let bytes = p.read(prefs).expect("read");
    assert!(bytes.starts_with(b"bplist00"));
    assert!(plist::Value::from_reader(std::io::Cursor::new(&bytes)).is_ok());
    // Known file id.
    assert_eq!(
        p.find("HomeDomain", "Library/SMS/sms.db")
            .expect("sms")
            .file_id(),
        "3d0d7e5fb2ce288813306e4d4636395e047a3d28"
    );
}

fn count(c: &Connection, table: &str) -> i64 {
    c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .expect(table)
}

fn columns(c: &Connection, table: &str) -> Vec<String> {
    let mut st = c
        .prepare(&format!("PRAGMA table_info({table})"))
        .expect("pragma");
    st.query_map([], |r| r.get::<_, String>(1))
        .expect("q")
        .map(|r| r.expect("col"))
        .collect()
}

fn open_db(p: &Phone, domain: &str, path: &str) -> (tempfile::TempDir, Connection) {
    let f = p
        .find(domain, path)
        .unwrap_or_else(|| panic!("{domain}/{path}"));
    let bytes = p.read(f).expect("read");
    assert_eq!(bytes.len() as u64, f.meta.size);
    assert!(bytes.starts_with(b"SQLite format 3\0"));
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("db.sqlite");
    std::fs::write(&file, &bytes).expect("write");
    let c = Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open");
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(ok, "ok");
    (dir, c)
}

fn check_databases(version: &str) {
    let dir = tempfile::tempdir().expect("tmp");
    let p = Phone::generate_in(&small_spec(11, version), dir.path()).expect("gen");
    let ds = p.datasets();
    let ios = IosVersion::parse(version).expect("v");

    let (_t, c) = open_db(&p, "HomeDomain", "Library/SMS/sms.db");
    assert_eq!(count(&c, "message"), ds.messages.messages.len() as i64);
    assert_eq!(count(&c, "handle"), ds.messages.handles.len() as i64);
    assert_eq!(count(&c, "chat"), ds.messages.chats.len() as i64);
    assert_eq!(
        count(&c, "chat_message_join"),
        ds.messages.messages.len() as i64
    );
    assert_eq!(
        count(&c, "attachment"),
        ds.messages.attachments.len() as i64
    );
    let cols = columns(&c, "message");
    assert!(cols.contains(&"attributedBody".to_string()));
    assert_eq!(cols.contains(&"date_edited".to_string()), ios.major >= 16);
    assert_eq!(
        cols.contains(&"thread_originator_guid".to_string()),
        ios.major >= 14
    );
    let null_text = count(&c, "message WHERE text IS NULL");
    assert_eq!(null_text > 0, ios.major >= 16);
    // Dates are nanoseconds since 2001 and match the records.
    let m0 = &ds.messages.messages[0];
    let d: i64 = c
        .query_row("SELECT date FROM message WHERE ROWID = 1", [], |r| r.get(0))
        .expect("date");
    assert_eq!(d, (m0.date - datasets::COCOA_EPOCH) * 1_000_000_000);
    // Every attachment file exists in MediaDomain at the path the row names.
    for a in &ds.messages.attachments {
        let f = p
            .find("MediaDomain", a.filename.trim_start_matches("~/"))
            .expect("attachment file");
        assert_eq!(f.meta.size as i64, a.total_bytes);
    }

    let (_t, c) = open_db(&p, "HomeDomain", "Library/AddressBook/AddressBook.sqlitedb");
    assert_eq!(count(&c, "ABPerson"), ds.contacts.people.len() as i64);
    let phones: usize = ds
        .contacts
        .people
        .iter()
        .map(|x| x.phones.len() + x.emails.len())
        .sum();
    assert_eq!(count(&c, "ABMultiValue"), phones as i64);
    let (_t, c) = open_db(
        &p,
        "HomeDomain",
        "Library/AddressBook/AddressBookImages.sqlitedb",
    );
    let with_img = ds.contacts.people.iter().filter(|x| x.has_image).count() as i64;
    assert_eq!(count(&c, "ABThumbnailImage"), with_img);
    if with_img > 0 {
        let jpg: Vec<u8> = c
            .query_row("SELECT data FROM ABThumbnailImage LIMIT 1", [], |r| {
                r.get(0)
            })
            .expect("img");
        assert!(jpeg::check_structure(&jpg).is_ok());
    }

    let (_t, c) = open_db(
        &p,
        "HomeDomain",
        "Library/CallHistoryDB/CallHistory.storedata",
    );
    assert_eq!(count(&c, "ZCALLRECORD"), ds.calls.calls.len() as i64);
    assert_eq!(count(&c, "Z_PRIMARYKEY WHERE Z_NAME = 'CallRecord'"), 1);

    let (_t, c) = open_db(
        &p,
        "AppDomainGroup-group.com.apple.notes",
        "NoteStore.sqlite",
    );
    assert_eq!(count(&c, "ZICNOTEDATA"), ds.notes.notes.len() as i64);
    let acc = datasets::Notes::account_column(ios);
    assert!(columns(&c, "ZICCLOUDSYNCINGOBJECT").contains(&acc.to_string()));
    let zdata: Vec<u8> = c
        .query_row(
            "SELECT ZDATA FROM ZICNOTEDATA WHERE ZNOTE = ?1",
            [ds.notes.notes[0].pk],
            |r| r.get(0),
        )
        .expect("zdata");
    let mut proto = Vec::new();
    flate2::read::GzDecoder::new(&zdata[..])
        .read_to_end(&mut proto)
        .expect("gunzip");
    assert!(
        proto
            .windows(ds.notes.notes[0].text.len())
            .any(|w| w == ds.notes.notes[0].text.as_bytes())
    );

    let (_t, c) = open_db(&p, "HomeDomain", "Library/Calendar/Calendar.sqlitedb");
    assert_eq!(count(&c, "CalendarItem"), ds.calendar.events.len() as i64);
    let rec = ds
        .calendar
        .events
        .iter()
        .filter(|e| e.recurrence.is_some())
        .count() as i64;
    assert!(rec > 0);
    assert_eq!(count(&c, "Recurrence"), rec);

    let (_t, c) = open_db(&p, "HomeDomain", "Library/Safari/History.db");
    assert_eq!(count(&c, "history_visits"), ds.safari.visits.len() as i64);
    assert_eq!(count(&c, "history_items"), ds.safari.items.len() as i64);
    let (_t, c) = open_db(&p, "HomeDomain", "Library/Safari/Bookmarks.db");
    assert_eq!(count(&c, "bookmarks"), ds.safari.bookmarks.len() as i64);

    let (_t, c) = open_db(&p, "CameraRollDomain", "Media/PhotoData/Photos.sqlite");
    let table = if ios.major >= 14 {
        "ZASSET"
    } else {
        "ZGENERICASSET"
    };
    assert_eq!(count(&c, table), ds.photos.assets.len() as i64);
    let mut st = c
        .prepare(&format!("SELECT ZDIRECTORY, ZFILENAME FROM {table}"))
        .expect("q");
    let rows: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect();
    for (d, f) in rows {
        assert!(
            p.find("CameraRollDomain", &format!("Media/{d}/{f}"))
                .is_some(),
            "{d}/{f}"
        );
    }

    let memo_db = if ios.major >= 12 {
        "Media/Recordings/CloudRecordings.db"
    } else {
        "Media/Recordings/Recordings.db"
    };
    let (_t, c) = open_db(&p, "MediaDomain", memo_db);
    assert_eq!(
        count(&c, "ZCLOUDRECORDING"),
        ds.voice_memos.recordings.len() as i64
    );
    for r in &ds.voice_memos.recordings {
        let f = p
            .find("MediaDomain", &format!("Media/Recordings/{}", r.path))
            .expect("m4a");
        assert_eq!(&p.read(f).expect("read")[4..12], b"ftypM4A ");
    }

    let (_t, c) = open_db(&p, "HomeDomain", "Library/Voicemail/voicemail.db");
    assert_eq!(count(&c, "voicemail"), ds.voicemail.voicemails.len() as i64);
    for v in &ds.voicemail.voicemails {
        let f = p
            .find("HomeDomain", &format!("Library/Voicemail/{}.amr", v.rowid))
            .expect("amr");
        assert!(p.read(f).expect("read").starts_with(b"#!AMR\n"));
    }

    let (_t, c) = open_db(
        &p,
        "AppDomainGroup-group.net.whatsapp.WhatsApp.shared",
        "ChatStorage.sqlite",
    );
    assert_eq!(count(&c, "ZWAMESSAGE"), ds.whatsapp.messages.len() as i64);
    assert_eq!(
        count(&c, "ZWACHATSESSION"),
        ds.whatsapp.sessions.len() as i64
    );
    let media: Vec<String> = {
        let mut st = c
            .prepare("SELECT ZMEDIALOCALPATH FROM ZWAMEDIAITEM")
            .expect("q");
        st.query_map([], |r| r.get(0))
            .expect("rows")
            .map(|r| r.expect("row"))
            .collect()
    };
    assert!(!media.is_empty());
    for m in media {
        let f = p
            .find(
                "AppDomainGroup-group.net.whatsapp.WhatsApp.shared",
                &format!("Message/{m}"),
            )
            .expect("media");
        assert!(jpeg::check_structure(&p.read(f).expect("read")).is_ok());
    }
}

#[test]
fn databases_ios17() {
    check_databases("17.5");
}

#[test]
fn databases_ios15() {
    check_databases("15.7");
}

#[test]
fn databases_ios13() {
    check_databases("13.4");
}

#[test]
fn media_files_are_valid() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = Phone::generate_in(&small_spec(5, "17.5"), dir.path()).expect("gen");
    let mut jpegs = Vec::new();
    let mut heics = 0;
    for f in p
        .files()
        .filter(|f| f.kind == EntryKind::File && !matches!(f.source, Source::Bulk { .. }))
    {
        let lower = f.relative_path.to_ascii_lowercase();
        if lower.ends_with(".jpg") || lower.ends_with(".jpeg") {
            let b = p.read(f).expect("read");
            jpeg::check_structure(&b).unwrap_or_else(|e| panic!("{}: {e}", f.relative_path));
            jpegs.push(b);
        } else if lower.ends_with(".heic") {
            let b = p.read(f).expect("read");
            assert_eq!(&b[4..12], b"ftypheic");
            heics += 1;
        }
    }
    assert!(jpegs.len() > 20, "{}", jpegs.len());
    assert!(heics > 5);
    // An independent decoder must open them: Pillow, from the peers venv that
    // scripts/peers-venv.sh creates (IOSNAP_SKIP_PEERS=1 skips this check, saying so).
    if std::env::var("IOSNAP_SKIP_PEERS").is_ok_and(|v| v == "1") {
        eprintln!("IOSNAP_SKIP_PEERS=1: Pillow decode check SKIPPED");
        return;
    }
    let script_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/peers-venv.sh");
    let venv = std::process::Command::new("bash")
        .arg(&script_path)
        .output()
        .expect("peers-venv.sh");
    assert!(
        venv.status.success(),
        "{} failed (IOSNAP_SKIP_PEERS=1 skips): {}",
        script_path.display(),
        String::from_utf8_lossy(&venv.stderr)
    );
    let python =
        std::path::PathBuf::from(String::from_utf8_lossy(&venv.stdout).trim()).join("bin/python");
    let out = tempfile::tempdir().expect("tmp");
    for (i, j) in jpegs.iter().take(40).enumerate() {
        std::fs::write(out.path().join(format!("{i}.jpg")), j).expect("write");
    }
    let script = "import sys,glob\nfrom PIL import Image\nn=0\nfor f in glob.glob(sys.argv[1]+'/*.jpg'):\n  im=Image.open(f); im.load(); assert im.size[0]>0; n+=1\nprint(n)";
    let res = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(out.path())
        .output()
        .expect("python");
    assert!(
        res.status.success(),
        "Pillow failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&res.stdout).trim(),
        jpegs.len().min(40).to_string()
    );
}

#[test]
fn churn_changes_about_the_requested_share() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut spec = small_spec(21, "17.5");
    spec.files = 3000;
    let mut p = Phone::generate_in(&spec, dir.path()).expect("gen");
    let before: BTreeMap<_, _> = p
        .files()
        .filter(|f| f.kind == EntryKind::File)
        .map(|f| {
            (
                (f.domain.clone(), f.relative_path.clone()),
                (f.meta.clone(), f.source.clone()),
            )
        })
        .collect();
    let n_before = before.len();
    let msgs_before = p.datasets().messages.messages.len();
    p.churn(0.1).expect("churn");
    assert_eq!(p.generation(), 1);
    let after: BTreeMap<_, _> = p
        .files()
        .filter(|f| f.kind == EntryKind::File)
        .map(|f| {
            (
                (f.domain.clone(), f.relative_path.clone()),
                (f.meta.clone(), f.source.clone()),
            )
        })
        .collect();
    let removed = before.keys().filter(|k| !after.contains_key(*k)).count();
    let added = after.keys().filter(|k| !before.contains_key(*k)).count();
    let modified = before
        .iter()
        .filter(|(k, v)| after.get(*k).is_some_and(|w| w != *v))
        .count();
    let changed = removed + added + modified;
    let share = changed as f64 / n_before as f64;
    assert!(
        (0.08..0.16).contains(&share),
        "changed share {share} ({removed} removed, {added} added, {modified} modified)"
    );
    assert!(removed > 0 && added > 0 && modified > 0);
    let ratio = after.len() as f64 / n_before as f64;
    assert!((0.97..1.05).contains(&ratio), "count ratio {ratio}");
    // Databases gained rows, old rows unchanged.
    let msgs = &p.datasets().messages.messages;
    assert!(msgs.len() > msgs_before);
    let sms = p.find("HomeDomain", "Library/SMS/sms.db").expect("sms");
    assert_eq!(sms.meta.mtime, p.now());
    // Modified bulk files have new content.
    let (k, (m, _)) = before
        .iter()
        .find(|(k, v)| after.get(*k).is_some_and(|w| w != *v))
        .expect("one modified");
    assert_ne!(after.get(k).map(|w| w.0.mtime), Some(m.mtime));
}

#[test]
fn save_load_round_trip_with_restores() {
    let cache = tempfile::tempdir().expect("tmp");
    let state = tempfile::tempdir().expect("tmp");
    let mut p = Phone::generate_in(&small_spec(33, "16.4"), cache.path()).expect("gen");
    p.churn(0.03).expect("churn");
    let meta = FileMeta {
        mode: 0o100644,
        uid: 501,
        gid: 501,
        mtime: 1_700_000_000,
        protection_class: 3,
        ..FileMeta::default()
    };
    p.set_file(
        "AppDomain-com.apple.mobilesafari",
        "Documents/restored/hello.txt",
        meta.clone(),
        &b"hello phone"[..],
    )
    .expect("set");
    p.set_file(
        "HomeDomain",
        "Library/SMS/sms.db",
        meta.clone(),
        &b"not really a db"[..],
    )
    .expect("set db");
    let gone = p.remove_file("AppDomain-com.apple.mobilenotes", "Library");
    assert!(gone >= 3);
    assert!(
        p.set_file("HomeDomain", "../etc/passwd", meta.clone(), &b""[..])
            .is_err()
    );
    p.churn(0.03).expect("churn 2");
    let f = p
        .find(
            "AppDomain-com.apple.mobilesafari",
            "Documents/restored/hello.txt",
        )
        .expect("restored");
    assert_eq!(p.read(f).expect("read"), b"hello phone");
    assert_eq!(f.meta.size, 11);
    assert!(
        p.find("AppDomain-com.apple.mobilesafari", "Documents/restored")
            .is_some_and(|d| d.kind == EntryKind::Directory)
    );
    assert_eq!(
        p.read(p.find("HomeDomain", "Library/SMS/sms.db").expect("sms"))
            .expect("r"),
        b"not really a db"
    );
    assert!(
        p.find("AppDomain-com.apple.mobilenotes", "Library/Preferences")
            .is_none()
    );

    p.save(state.path()).expect("save");
    let q = Phone::load(state.path()).expect("load");
    assert_eq!(q.generation(), 2);
    assert_eq!(listing(&p), listing(&q));
    assert_eq!(digest_all(&p), digest_all(&q));

    // The loaded phone keeps evolving exactly like the original.
    let mut p2 = p.clone();
    let mut q2 = q;
    p2.churn(0.02).expect("c");
    q2.churn(0.02).expect("c");
    assert_eq!(listing(&p2), listing(&q2));
    // The state folder's cache holds only the current databases.
    let cached = std::fs::read_dir(state.path().join("cache/db"))
        .expect("cache")
        .count();
    assert_eq!(
        cached,
        q2.databases()
            .iter()
            .map(|d| d.file.parent())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    q2.save(state.path()).expect("save again");
    assert_eq!(
        Phone::load(state.path()).expect("load again").generation(),
        3
    );

    // A corrupt state file is an error, not a panic.
    std::fs::write(state.path().join("phone.json"), b"{").expect("w");
    assert!(Phone::load(state.path()).is_err());
}

/// A phone saved before the content generator was recorded (no `content` in its state file)
/// keeps the first generator's bytes; a new phone uses the second.
#[test]
fn a_phone_saved_before_the_second_generator_keeps_its_bytes() {
    let cache = tempfile::tempdir().expect("tmp");
    let state = tempfile::tempdir().expect("tmp");
    let p = Phone::generate_in(&small_spec(34, "17.5"), cache.path()).expect("gen");
    p.save(state.path()).expect("save");
    let path = state.path().join("phone.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    assert_eq!(json["content"], 2);
    assert_eq!(
        digest_all(&Phone::load(state.path()).expect("load")),
        digest_all(&p)
    );
    json.as_object_mut().expect("object").remove("content");
    std::fs::write(&path, serde_json::to_vec(&json).expect("json")).expect("write");
    let old = Phone::load(state.path()).expect("load old");
    assert_eq!(listing(&old), listing(&p));
    let f = p
        .files()
        .filter(|f| matches!(f.source, Source::Bulk { .. }))
        .max_by_key(|f| f.meta.size)
        .expect("a bulk file");
    let Source::Bulk { index, version } = f.source else {
        unreachable!()
    };
    let of = old.find(&f.domain, &f.relative_path).expect("same file");
    let (new_bytes, old_bytes) = (p.read(f).expect("read"), old.read(of).expect("read"));
    assert_eq!(new_bytes.len(), old_bytes.len());
    assert_ne!(new_bytes, old_bytes);
    let plan = p.layout.plan(index, version);
    let mut want = Vec::new();
    StreamReader::new(
        Arc::from(media::bulk_header(plan.ext, index, version)),
        p.layout.content_key(index, version),
        f.meta.size,
        content::CONTENT_V1,
    )
    .read_to_end(&mut want)
    .expect("v1");
    assert_eq!(old_bytes, want);
}

#[test]
fn twenty_thousand_files_listing_is_fast_and_lean() {
    let dir = tempfile::tempdir().expect("tmp");
    let spec = PhoneSpec {
        seed: 99,
        files: 20_000,
        bytes: 2_000_000_000,
        ..PhoneSpec::default()
    };
    let t = std::time::Instant::now();
    let p = Phone::generate_in(&spec, dir.path()).expect("gen");
    let took = t.elapsed();
    assert!(p.file_count() >= 20_000);
    let bulk: u64 = p
        .files()
        .filter(|f| matches!(f.source, Source::Bulk { .. }))
        .map(|f| f.meta.size)
        .sum();
    let ratio = bulk as f64 / 2e9;
    assert!((0.8..1.2).contains(&ratio), "bulk bytes ratio {ratio}");
    assert!(p.total_bytes() >= bulk);
    assert!(took.as_secs() < 60, "took {took:?}");
    // Streaming a big file does not need its size in memory and is repeatable.
    let big = p
        .files()
        .filter(|f| matches!(f.source, Source::Bulk { .. }))
        .max_by_key(|f| f.meta.size)
        .expect("big");
    let mut h1 = Vec::new();
    let n = std::io::copy(&mut p.open(big).expect("o"), &mut std::io::sink()).expect("copy");
    assert_eq!(n, big.meta.size);
    p.open(big)
        .expect("o")
        .take(4096)
        .read_to_end(&mut h1)
        .expect("r");
    let mut h2 = Vec::new();
    p.open(big)
        .expect("o")
        .take(4096)
        .read_to_end(&mut h2)
        .expect("r");
    assert_eq!(h1, h2);
}

#[test]
fn bad_versions_are_rejected() {
    let spec = PhoneSpec {
        product_version: "9.3".into(),
        ..PhoneSpec::default()
    };
    assert!(matches!(
        Phone::generate(&spec),
        Err(PhoneError::Version(_))
    ));
}

#[test]
fn absurd_epochs_are_rejected() {
    for epoch in [i64::MIN, 0, 978_307_199, 5_000_000_000, i64::MAX] {
        let spec = PhoneSpec {
            epoch,
            ..PhoneSpec::default()
        };
        assert!(
            matches!(Phone::generate(&spec), Err(PhoneError::Epoch(_))),
            "{epoch}"
        );
    }
}

#[test]
fn tiny_and_empty_specs_work() {
    let dir = tempfile::tempdir().expect("tmp");
    let spec = PhoneSpec {
        files: 0,
        bytes: 0,
        apps: 0,
        data: Levels {
            contacts: 0,
            messages: 3,
            calls: 2,
            notes: 0,
            events: 0,
            history_visits: 0,
            bookmarks: 0,
            photos: 0,
            voice_memos: 0,
            voicemails: 1,
            whatsapp_messages: 5,
        },
        ..PhoneSpec::default()
    };
    let mut p = Phone::generate_in(&spec, dir.path()).expect("gen");
    assert!(p.apps().is_empty());
    assert!(p.find("HomeDomain", "Library/SMS/sms.db").is_some());
    p.churn(f64::NAN).expect("nan share is no-op churn");
    p.churn(5.0).expect("clamped share");
    assert_eq!(p.generation(), 2);
}

#[test]
fn phone_is_shareable_across_threads() {
    fn check<T: Send + Sync>() {}
    check::<Phone>();
    check::<PhoneFile>();
}

/// The keychain export is listed as on a real phone (iOS 14.3 Manifest.db in shared/fixtures):
/// read-only for root, protection class 1.
#[test]
fn keychain_export_is_listed_read_only_with_class_1() {
    let dir = tempfile::tempdir().expect("dir");
    let p = Phone::generate_in(&small_spec(3, "17.5"), dir.path()).expect("phone");
    let f = p
        .find(keychain::DOMAIN, keychain::RELATIVE_PATH)
        .expect("keychain-backup.plist");
    assert_eq!(f.meta.mode, 0o100400);
    assert_eq!(f.meta.protection_class, 1);
    assert_eq!((f.meta.uid, f.meta.gid), (0, 0));
}
