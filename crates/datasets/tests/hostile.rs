//! Hostile databases: missing tables and columns, wrong types, huge and garbage blobs,
//! attachment paths that try to climb out. Clear errors or counted skips, never a panic, never
//! a write outside the output folder.
#![allow(clippy::unwrap_used)] // tests may panic

use std::path::{Path, PathBuf};

mod common;

use iosnap_datasets::Error;
use iosnap_datasets::export::{Dataset, export};
use iosnap_format::Backup;

fn db(dir: &Path, name: &str, sql: &str, fill: impl FnOnce(&rusqlite::Connection)) -> Vec<u8> {
    common::sqlite_bytes(dir, name, sql, fill)
}

fn backup_with(root: &Path, files: &[(&str, &str, Vec<u8>)]) -> PathBuf {
    common::plain_backup(root, files, 1_700_000_000)
}

fn all_files(root: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                v.push(e.path());
            }
        }
    }
    v
}

#[test]
fn hostile_sms_db() {
    let t = tempfile::tempdir().unwrap();
    let huge = vec![b'A'; 5 << 20];
    let sms = db(
        t.path(),
        "sms.db",
        "CREATE TABLE message (ROWID INTEGER PRIMARY KEY, guid TEXT, text TEXT, date, handle_id,
            is_from_me, attributedBody BLOB, associated_message_type, associated_message_guid);
         CREATE TABLE handle (ROWID INTEGER PRIMARY KEY, id);
         CREATE TABLE chat (ROWID INTEGER PRIMARY KEY, guid TEXT, display_name);
         CREATE TABLE chat_message_join (chat_id, message_id);
         CREATE TABLE attachment (ROWID INTEGER PRIMARY KEY, filename, transfer_name, mime_type);
         CREATE TABLE message_attachment_join (message_id, attachment_id);
         INSERT INTO handle VALUES (1, X'2B3135353530303030303031');
         INSERT INTO chat VALUES (1, 'c1', '<script>alert(1)</script>');
         INSERT INTO message VALUES (1, 'G1', 'hello <b>', 'not a date', 'one', 'yes', NULL, 'x', NULL);
         INSERT INTO message VALUES (2, 'G2', NULL, 700000000000000000, 1, 0, X'040B73747265616D7479706564FFFF', 2000, 'p:zz');
         INSERT INTO message VALUES (3, 'G3', 'att', 1.5e300, 1, 1, NULL, 2001, 'p:0/G1');
         INSERT INTO message VALUES (4, 'G4', 'orphan', -5, NULL, NULL, NULL, NULL, NULL);
         INSERT INTO chat_message_join VALUES (1, 1), (1, 2), (1, 3), (1, 5);
         INSERT INTO attachment VALUES (1, '~/Library/SMS/../../../../etc/passwd', 'passwd', 'text/plain');
         INSERT INTO attachment VALUES (2, '/etc/shadow', 'shadow', NULL);
         INSERT INTO attachment VALUES (3, '~/Library/SMS/Attachments/ok/pic.jpg', '../../evil.sh', 'image/jpeg');
         INSERT INTO attachment VALUES (4, '~/Library/SMS/Attachments/gone.jpg', 'gone.jpg', 'image/jpeg');
         INSERT INTO message_attachment_join VALUES (3, 1), (3, 2), (3, 3), (3, 4), (99, 1);",
        |c| {
            c.execute(
                "INSERT INTO message (ROWID, guid, text, attributedBody) VALUES (5, 'G5', NULL, ?1)",
                [&huge],
            )
            .unwrap();
        },
    );
    let dir = backup_with(
        t.path(),
        &[
            ("HomeDomain", "Library/SMS/sms.db", sms),
            (
                "MediaDomain",
                "Library/SMS/Attachments/ok/pic.jpg",
                b"\xff\xd8jpeg".to_vec(),
            ),
        ],
    );
    let b = Backup::open(&dir).unwrap();
    for fmt in ["html", "txt", "csv", "json"] {
        let base = t.path().join(format!("exports-{fmt}"));
        let out = base.join("out");
        let r = export(&b, Dataset::Messages, Some(fmt), &out, &mut |_, _| {}).unwrap();
        assert_eq!(r.records, 5, "{fmt}: 4 in the chat + 1 orphan");
        assert_eq!(r.attachments_unsafe, 2, "{fmt}");
        assert_eq!(r.attachments_copied, 1, "{fmt}");
        assert_eq!(r.attachments_missing, 1, "{fmt}");
        // Nothing outside --out; the attachment keeps a safe name.
        for f in all_files(&base) {
            assert!(f.starts_with(&out), "{} escaped", f.display());
        }
        let att = out.join("attachments");
        let names: Vec<String> = std::fs::read_dir(&att)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["3-_.._evil.sh".to_string()]);
        assert_eq!(std::fs::read(att.join(&names[0])).unwrap(), b"\xff\xd8jpeg");
        if fmt == "html" {
            let page = std::fs::read_to_string(out.join("_script_alert(1)__script_ (1).html"))
                .or_else(|_| {
                    let p = all_files(&out)
                        .into_iter()
                        .find(|p| p.to_string_lossy().contains("alert"))
                        .unwrap();
                    std::fs::read_to_string(p)
                })
                .unwrap();
            assert!(!page.contains("<script>"));
            assert!(page.contains("&lt;script&gt;"));
            assert!(page.contains("hello &lt;b&gt;"));
        }
        if fmt == "json" {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out.join("messages.json")).unwrap()).unwrap();
            let msgs = v["conversations"][0]["messages"].as_array().unwrap();
            assert_eq!(
                msgs[0]["date"],
                serde_json::Value::Null,
                "text in a date column"
            );
            assert_eq!(
                msgs[1]["text"],
                serde_json::Value::Null,
                "garbage typedstream"
            );
            assert_eq!(
                msgs[1]["tapback"],
                serde_json::Value::Null,
                "bad tapback guid"
            );
            assert_eq!(msgs[2]["tapback"]["target_guid"], "G1");
            assert_eq!(
                msgs[3]["text"],
                serde_json::Value::Null,
                "huge blob skipped"
            );
            assert_eq!(v["conversations"][1]["messages"][0]["text"], "orphan");
        }
    }
}

#[test]
fn missing_and_broken_databases() {
    let t = tempfile::tempdir().unwrap();
    let no_table = db(t.path(), "a.db", "CREATE TABLE other (x);", |_| {});
    let dir = backup_with(
        t.path(),
        &[
            ("HomeDomain", "Library/SMS/sms.db", no_table),
            (
                "HomeDomain",
                "Library/AddressBook/AddressBook.sqlitedb",
                b"this is not sqlite at all, just bytes".repeat(200),
            ),
        ],
    );
    let b = Backup::open(&dir).unwrap();
    let out = t.path().join("out");
    let e = export(&b, Dataset::Messages, None, &out, &mut |_, _| {}).unwrap_err();
    assert!(matches!(e, Error::UnknownSchema { .. }), "{e}");
    assert!(e.to_string().contains("no table message"), "{e}");
    let e = export(&b, Dataset::Contacts, None, &out, &mut |_, _| {}).unwrap_err();
    assert!(matches!(e, Error::UnknownSchema { .. }), "{e}");
    let e = export(&b, Dataset::Calls, None, &out, &mut |_, _| {}).unwrap_err();
    assert_eq!(
        e.to_string(),
        "this backup has no Call history database (HomeDomain/Library/CallHistoryDB/CallHistory.storedata)"
    );
    assert!(!out.exists(), "no output folder for a failed export");
    let e = export(&b, Dataset::Calls, Some("pdf"), &out, &mut |_, _| {}).unwrap_err();
    assert!(matches!(e, Error::UnknownFormat { .. }), "{e}");
    // Counting reports per-dataset problems without failing.
    let counts = iosnap_datasets::counts::count_all(&b).unwrap();
    let msg = counts.iter().find(|c| c.key == "messages").unwrap();
    assert!(msg.present && msg.count.is_none() && msg.error.is_some());
    let calls = counts.iter().find(|c| c.key == "calls").unwrap();
    assert!(!calls.present && calls.error.is_none());
}

#[test]
fn drifted_contacts_and_calls() {
    let t = tempfile::tempdir().unwrap();
    // No ABMultiValue, no Organization column, a text where a date belongs, a huge photo.
    let ab = db(
        t.path(),
        "ab.db",
        "CREATE TABLE ABPerson (ROWID INTEGER PRIMARY KEY, First, Last, CreationDate, Note);
         INSERT INTO ABPerson VALUES (1, 'Ann', 'Lee;\\,', 'yesterday', 'line1\nline2');
         INSERT INTO ABPerson VALUES (2, NULL, NULL, 1000, NULL);",
        |_| {},
    );
    let big = vec![0u8; 17 << 20];
    let img = db(
        t.path(),
        "img.db",
        "CREATE TABLE ABThumbnailImage (ROWID INTEGER PRIMARY KEY, record_id, data BLOB);",
        |c| {
            c.execute(
                "INSERT INTO ABThumbnailImage (record_id, data) VALUES (1, ?1)",
                [&big],
            )
            .unwrap();
        },
    );
    // No ZNAME column, the address as a blob, the duration as text.
    let calls = db(
        t.path(),
        "c.db",
        "CREATE TABLE ZCALLRECORD (Z_PK INTEGER PRIMARY KEY, ZDATE, ZDURATION, ZADDRESS, ZORIGINATED, ZANSWERED);
         INSERT INTO ZCALLRECORD VALUES (1, 700000000.5, '12.5', X'2B3135353531323334', 1, 1);
         INSERT INTO ZCALLRECORD VALUES (2, 'x', NULL, NULL, NULL, NULL);",
        |_| {},
    );
    let dir = backup_with(
        t.path(),
        &[
            ("HomeDomain", "Library/AddressBook/AddressBook.sqlitedb", ab),
            (
                "HomeDomain",
                "Library/AddressBook/AddressBookImages.sqlitedb",
                img,
            ),
            (
                "HomeDomain",
                "Library/CallHistoryDB/CallHistory.storedata",
                calls,
            ),
        ],
    );
    let b = Backup::open(&dir).unwrap();
    let out = t.path().join("c");
    let r = export(&b, Dataset::Contacts, Some("vcf"), &out, &mut |_, _| {}).unwrap();
    assert_eq!(r.records, 2);
    let vcf = std::fs::read_to_string(out.join("contacts.vcf")).unwrap();
    assert!(vcf.contains("N:Lee\\;\\\\\\,;Ann;;;\r\n"), "{vcf}");
    assert!(vcf.contains("NOTE:line1\\nline2\r\n"));
    assert!(vcf.contains("FN:Contact 2\r\n"));
    assert!(!vcf.contains("PHOTO"), "oversized photo skipped");
    let out = t.path().join("k");
    let r = export(&b, Dataset::Calls, Some("json"), &out, &mut |_, _| {}).unwrap();
    assert_eq!(r.records, 2);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("calls.json")).unwrap()).unwrap();
    assert_eq!(v[0]["address"], "+15551234");
    assert_eq!(v[0]["duration"], 12.5);
    assert_eq!(v[0]["date"], "2023-03-08T20:26:40Z");
    assert_eq!(v[1]["date"], serde_json::Value::Null);
    assert_eq!(v[1]["direction"], "Missed");
}

#[test]
fn drifted_calendar() {
    let t = tempfile::tempdir().unwrap();
    // No Calendar, Location, Recurrence or Alarm tables; no calendar_id; a text start date.
    let cal = db(
        t.path(),
        "cal.db",
        "CREATE TABLE CalendarItem (ROWID INTEGER PRIMARY KEY, summary, start_date, end_date, all_day);
         INSERT INTO CalendarItem VALUES (1, 'Lunch; with, Ann\\n', 700000000, 700003600, 0);
         INSERT INTO CalendarItem VALUES (2, 'Broken', 'soon', NULL, 0);
         INSERT INTO CalendarItem VALUES (3, NULL, 699926400.0, 700012799.0, 1);",
        |_| {},
    );
    let dir = backup_with(
        t.path(),
        &[("HomeDomain", "Library/Calendar/Calendar.sqlitedb", cal)],
    );
    let b = Backup::open(&dir).unwrap();
    let out = t.path().join("ics");
    let r = export(&b, Dataset::Calendar, None, &out, &mut |_, _| {}).unwrap();
    assert_eq!(r.records, 2);
    assert_eq!(
        r.skipped_count, 1,
        "the event without a valid start is counted"
    );
    let ics = std::fs::read_to_string(out.join("Calendar (0).ics")).unwrap();
    assert!(
        ics.contains("SUMMARY:Lunch\\; with\\, Ann\\\\n\r\n"),
        "{ics}"
    );
    assert!(ics.contains("DTSTART:20230308T202640Z\r\n"));
    assert!(ics.contains("DTSTART;VALUE=DATE:20230308\r\nDTEND;VALUE=DATE:20230309\r\n"));
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.ends_with("END:VCALENDAR\r\n"));
}

#[test]
fn hostile_safari() {
    let t = tempfile::tempdir().unwrap();
    // A parent cycle, a javascript: bookmarklet, an orphan; Unix-seconds and garbage visit times.
    let bm = db(
        t.path(),
        "b.db",
        "CREATE TABLE bookmarks (id INTEGER PRIMARY KEY, parent, type, title, url, order_index);
         INSERT INTO bookmarks VALUES (1, 2, 1, 'A', NULL, 0);
         INSERT INTO bookmarks VALUES (2, 1, 1, 'B', NULL, 0);
         INSERT INTO bookmarks VALUES (3, 1, 0, '<x>', 'https://e.org/?a=1&b=\"2\"', 0);
         INSERT INTO bookmarks VALUES (4, NULL, 0, 'evil', 'javascript:alert(1)', 1);
         INSERT INTO bookmarks VALUES (5, 99, 0, 'orphan', 'http://o.org/', 2);",
        |_| {},
    );
    let hist = db(
        t.path(),
        "h.db",
        "CREATE TABLE history_visits (id INTEGER PRIMARY KEY, history_item, visit_time, title);
         INSERT INTO history_visits VALUES (1, 7, 1700000000.0, 'unix');
         INSERT INTO history_visits VALUES (2, 7, 'x', NULL);",
        |_| {},
    );
    let dir = backup_with(
        t.path(),
        &[
            ("HomeDomain", "Library/Safari/Bookmarks.db", bm),
            ("HomeDomain", "Library/Safari/History.db", hist),
        ],
    );
    let b = Backup::open(&dir).unwrap();
    let out = t.path().join("bm");
    let r = export(&b, Dataset::SafariBookmarks, None, &out, &mut |_, _| {}).unwrap();
    assert_eq!(
        r.records, 1,
        "only the orphan: the cycle is unreachable from the root"
    );
    assert_eq!(
        r.skipped_count, 2,
        "the javascript: bookmark, the one in the cycle"
    );
    let page = std::fs::read_to_string(out.join("bookmarks.html")).unwrap();
    assert!(!page.contains("javascript:"));
    assert!(page.contains("http://o.org/"));
    let out = t.path().join("h");
    let r = export(
        &b,
        Dataset::SafariHistory,
        Some("json"),
        &out,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(r.records, 2);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("history.json")).unwrap()).unwrap();
    assert_eq!(v[0]["time"], "2023-11-14T22:13:20Z");
    assert_eq!(
        v[0]["url"],
        serde_json::Value::Null,
        "no history_items table"
    );
    assert_eq!(v[1]["time"], serde_json::Value::Null);
}

#[test]
fn hostile_voice_memos() {
    let t = tempfile::tempdir().unwrap();
    let memos = db(
        t.path(),
        "m.db",
        "CREATE TABLE ZRECORDING (Z_PK INTEGER PRIMARY KEY, ZDATE, ZDURATION, ZCUSTOMLABEL, ZPATH);
         INSERT INTO ZRECORDING VALUES (1, 700000000, 3.5, '../../etc', 'ok.m4a');
         INSERT INTO ZRECORDING VALUES (2, 700000000, 'long', 'climb', '../../../etc/passwd');
         INSERT INTO ZRECORDING VALUES (3, NULL, NULL, NULL, 'gone.m4a');",
        |_| {},
    );
    let dir = backup_with(
        t.path(),
        &[
            ("MediaDomain", "Media/Recordings/Recordings.db", memos),
            ("MediaDomain", "Media/Recordings/ok.m4a", b"m4a".to_vec()),
        ],
    );
    let b = Backup::open(&dir).unwrap();
    let base = t.path().join("x");
    let out = base.join("out");
    let r = export(&b, Dataset::VoiceMemos, None, &out, &mut |_, _| {}).unwrap();
    assert_eq!(r.records, 3);
    assert_eq!(
        (
            r.attachments_copied,
            r.attachments_unsafe,
            r.attachments_missing
        ),
        (1, 1, 1)
    );
    for f in all_files(&base) {
        assert!(f.starts_with(&out), "{} escaped", f.display());
    }
    assert!(out.join("2023-03-08 202640 _.._etc (1).m4a").exists());
}

#[test]
fn hostile_photos() {
    let t = tempfile::tempdir().unwrap();
    // Old table name, a climbing directory, duplicate names, an album join table with an
    // unusual number, a file missing from the backup.
    let ph = db(
        t.path(),
        "p.db",
        "CREATE TABLE ZGENERICASSET (Z_PK INTEGER PRIMARY KEY, ZDIRECTORY, ZFILENAME, ZDATECREATED);
         CREATE TABLE ZGENERICALBUM (Z_PK INTEGER PRIMARY KEY, ZTITLE, ZKIND);
         CREATE TABLE Z_99ASSETS (Z_99ALBUMS, Z_3ASSETS, Z_FOK_3ASSETS);
         INSERT INTO ZGENERICASSET VALUES (1, 'DCIM/100APPLE', 'IMG_1.JPG', 700000000);
         INSERT INTO ZGENERICASSET VALUES (2, 'DCIM/101APPLE', 'IMG_1.JPG', 'bad date');
         INSERT INTO ZGENERICASSET VALUES (3, '../../..', 'passwd', NULL);
         INSERT INTO ZGENERICASSET VALUES (4, 'DCIM/100APPLE', 'GONE.JPG', NULL);
         INSERT INTO ZGENERICALBUM VALUES (7, '../Trip', 2);
         INSERT INTO Z_99ASSETS VALUES (7, 2, 1), (7, 1, 2);",
        |_| {},
    );
    let dir = backup_with(
        t.path(),
        &[
            ("CameraRollDomain", "Media/PhotoData/Photos.sqlite", ph),
            (
                "CameraRollDomain",
                "Media/DCIM/100APPLE/IMG_1.JPG",
                b"one".to_vec(),
            ),
            (
                "CameraRollDomain",
                "Media/DCIM/101APPLE/IMG_1.JPG",
                b"two".to_vec(),
            ),
        ],
    );
    let b = Backup::open(&dir).unwrap();
    let base = t.path().join("x");
    let out = base.join("out");
    let r = export(&b, Dataset::Photos, None, &out, &mut |_, _| {}).unwrap();
    assert_eq!(r.records, 4);
    assert_eq!(
        (
            r.attachments_copied,
            r.attachments_unsafe,
            r.attachments_missing
        ),
        (2, 1, 1)
    );
    for f in all_files(&base) {
        assert!(f.starts_with(&out), "{} escaped", f.display());
    }
    let all = out.join("All Photos");
    assert_eq!(std::fs::read(all.join("IMG_1.JPG")).unwrap(), b"one");
    assert_eq!(std::fs::read(all.join("IMG_1 (2).JPG")).unwrap(), b"two");
    let album = out.join("Albums").join("_Trip");
    assert_eq!(std::fs::read(album.join("IMG_1.JPG")).unwrap(), b"one");
    assert_eq!(std::fs::read(album.join("IMG_1 (2).JPG")).unwrap(), b"two");
}

#[test]
fn hostile_notes() {
    let t = tempfile::tempdir().unwrap();
    let good = iosnap_phone::datasets::notes::note_zdata("Fine\nbody");
    let notes = db(
        t.path(),
        "n.db",
        "CREATE TABLE ZICCLOUDSYNCINGOBJECT (Z_PK INTEGER PRIMARY KEY, ZTITLE1, ZFOLDER, ZISPASSWORDPROTECTED, ZTITLE2);
         CREATE TABLE ZICNOTEDATA (Z_PK INTEGER PRIMARY KEY, ZNOTE, ZDATA BLOB);
         INSERT INTO ZICCLOUDSYNCINGOBJECT VALUES (1, NULL, NULL, NULL, '../..');
         INSERT INTO ZICCLOUDSYNCINGOBJECT VALUES (2, 'Fine', 1, 0, NULL);
         INSERT INTO ZICCLOUDSYNCINGOBJECT VALUES (3, 'Locked', 1, 1, NULL);
         INSERT INTO ZICCLOUDSYNCINGOBJECT VALUES (4, '../../x', 77, 0, NULL);
         INSERT INTO ZICNOTEDATA VALUES (1, 3, X'1F8B0800');
         INSERT INTO ZICNOTEDATA VALUES (2, 4, X'00112233');",
        |c| {
            c.execute("INSERT INTO ZICNOTEDATA VALUES (3, 2, ?1)", [&good])
                .unwrap();
        },
    );
    let dir = backup_with(
        t.path(),
        &[(
            "AppDomainGroup-group.com.apple.notes",
            "NoteStore.sqlite",
            notes,
        )],
    );
    let b = Backup::open(&dir).unwrap();
    let base = t.path().join("x");
    let out = base.join("out");
    let r = export(&b, Dataset::Notes, None, &out, &mut |_, _| {}).unwrap();
    assert_eq!(r.records, 3);
    assert_eq!(r.skipped_count, 2, "{:?}", r.skipped);
    for f in all_files(&base) {
        assert!(f.starts_with(&out), "{} escaped", f.display());
    }
    let fine = std::fs::read_to_string(out.join("_..").join("Fine (2).md")).unwrap();
    assert!(fine.contains("body"));
    let locked = std::fs::read_to_string(out.join("_..").join("Locked (3).md")).unwrap();
    assert!(locked.contains("password-protected"));
    assert!(out.join("Notes").join("_.._x (4).md").exists());
}

#[test]
fn hostile_whatsapp() {
    let t = tempfile::tempdir().unwrap();
    let wa = db(
        t.path(),
        "w.db",
        "CREATE TABLE ZWAMESSAGE (Z_PK INTEGER PRIMARY KEY, ZCHATSESSION, ZTEXT, ZMEDIAITEM, ZISFROMME);
         CREATE TABLE ZWAMEDIAITEM (Z_PK INTEGER PRIMARY KEY, ZMEDIALOCALPATH);
         INSERT INTO ZWAMEDIAITEM VALUES (1, '../../../../etc/passwd'), (2, 'Media/x/ok.jpg'), (3, 'Media/x/gone.jpg');
         INSERT INTO ZWAMESSAGE VALUES (1, 5, '<img src=x onerror=alert(1)>', 1, 0);
         INSERT INTO ZWAMESSAGE VALUES (2, 5, NULL, 2, 1);
         INSERT INTO ZWAMESSAGE VALUES (3, 5, 'x', 3, 'maybe');",
        |_| {},
    );
    let dir = backup_with(
        t.path(),
        &[
            (
                "AppDomainGroup-group.net.whatsapp.WhatsApp.shared",
                "ChatStorage.sqlite",
                wa,
            ),
            (
                "AppDomainGroup-group.net.whatsapp.WhatsApp.shared",
                "Message/Media/x/ok.jpg",
                b"jpg".to_vec(),
            ),
        ],
    );
    let b = Backup::open(&dir).unwrap();
    let base = t.path().join("x");
    let out = base.join("out");
    let r = export(&b, Dataset::WhatsApp, None, &out, &mut |_, _| {}).unwrap();
    assert_eq!(r.records, 3);
    assert_eq!(
        (
            r.attachments_copied,
            r.attachments_unsafe,
            r.attachments_missing
        ),
        (1, 1, 1)
    );
    for f in all_files(&base) {
        assert!(f.starts_with(&out), "{} escaped", f.display());
    }
    let page = std::fs::read_to_string(out.join("Chat 5 (5).html")).unwrap();
    assert!(!page.contains("<img src=x"));
    assert!(page.contains("&lt;img src=x"));
    assert_eq!(
        std::fs::read(out.join("media").join("2-ok.jpg")).unwrap(),
        b"jpg"
    );
}
