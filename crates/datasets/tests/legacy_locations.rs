//! Databases where older iOS versions kept them: Safari's History.db in Safari's own app
//! container, and the pre-iOS 8 `call_history.db` (table `call`, Unix dates, bit flags). Each is
//! read record by record, counted by `datasets`, and exported to CSV and JSON exactly as the
//! modern stores are.
#![allow(clippy::unwrap_used)] // tests may panic

use std::path::{Path, PathBuf};

mod common;

use iosnap_datasets::calls::{Call, CallsDb};
use iosnap_datasets::counts::{DatasetCount, count_all};
use iosnap_datasets::export::{Dataset, export};
use iosnap_datasets::safari::{HistoryDb, Visit};
use iosnap_format::Backup;

/// A SQLite database built from `sql`, as bytes.
fn db(dir: &Path, name: &str, sql: &str) -> Vec<u8> {
    common::sqlite_bytes(dir, name, sql, |_| {})
}

/// A plain backup holding `files` (domain, relative path, bytes).
fn backup_with(root: &Path, files: &[(&str, &str, Vec<u8>)]) -> Backup {
    Backup::open(&common::plain_backup(root, files, 1_400_000_000)).unwrap()
}

fn count<'a>(counts: &'a [DatasetCount], key: &str) -> &'a DatasetCount {
    counts.iter().find(|c| c.key == key).unwrap()
}

fn export_to(b: &Backup, d: Dataset, fmt: &str, out: PathBuf) -> (PathBuf, u64) {
    let r = export(b, d, Some(fmt), &out, &mut |_, _| {}).unwrap();
    assert_eq!(r.files_written, 1);
    (out, r.records)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Safari history in AppDomain-com.apple.mobilesafari
// ---------------------------------------------------------------------------------------------

const HISTORY_SCHEMA: &str = "
    CREATE TABLE history_items (id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL UNIQUE,
        domain_expansion TEXT NULL, visit_count INTEGER NOT NULL);
    CREATE TABLE history_visits (id INTEGER PRIMARY KEY AUTOINCREMENT,
        history_item INTEGER NOT NULL REFERENCES history_items(id), visit_time REAL NOT NULL,
        title TEXT NULL, load_successful BOOLEAN NOT NULL DEFAULT 1);";

fn history_db(dir: &Path, name: &str, rows: &str) -> Vec<u8> {
    db(dir, name, &format!("{HISTORY_SCHEMA}{rows}"))
}

/// History.db only in Safari's container: opened, iterated, counted and exported.
#[test]
fn safari_history_in_app_domain() {
    let t = tempfile::tempdir().unwrap();
    let h = history_db(
        t.path(),
        "h.db",
        "INSERT INTO history_items VALUES (1, 'https://example.org/a', 'example', 2);
         INSERT INTO history_items VALUES (2, 'http://news.example.com/', NULL, 1);
         INSERT INTO history_visits VALUES (1, 1, 400000000.0, 'Page A', 1);
         INSERT INTO history_visits VALUES (2, 2, 400001800.5, 'News, \"quoted\"', 0);
         INSERT INTO history_visits VALUES (3, 1, 400003600.0, NULL, 1);",
    );
    let b = backup_with(
        t.path(),
        &[(
            "AppDomain-com.apple.mobilesafari",
            "Library/Safari/History.db",
            h,
        )],
    );

    let hdb = HistoryDb::open(&b).unwrap();
    assert_eq!(hdb.count().unwrap(), 3);
    let visits: Vec<Visit> = hdb.visits().map(|v| v.unwrap()).collect();
    let want = [
        (
            1,
            1_378_307_200,
            "https://example.org/a",
            Some("Page A"),
            Some("example"),
            2,
            true,
        ),
        (
            2,
            1_378_309_000,
            "http://news.example.com/",
            Some("News, \"quoted\""),
            None,
            1,
            false,
        ),
        (
            3,
            1_378_310_800,
            "https://example.org/a",
            None,
            Some("example"),
            2,
            true,
        ),
    ];
    assert_eq!(visits.len(), want.len());
    for (v, (id, time, url, title, domain, n, ok)) in visits.iter().zip(want) {
        assert_eq!(v.id, id);
        assert_eq!(v.time, Some(time), "visit {id}: Cocoa seconds → Unix");
        assert_eq!(v.url.as_deref(), Some(url));
        assert_eq!(v.title.as_deref(), title);
        assert_eq!(v.domain.as_deref(), domain);
        assert_eq!(v.visit_count, Some(n));
        assert_eq!(v.load_successful, ok);
    }

    let counts = count_all(&b).unwrap();
    let c = count(&counts, "history_items");
    assert!(c.present, "{c:?}");
    assert_eq!(c.count, Some(2), "distinct URLs");
    assert_eq!(c.error, None);
    assert_eq!(
        c.location,
        "HomeDomain/Library/Safari/History.db or AppDomain-com.apple.mobilesafari/Library/Safari/History.db"
    );
    // Bookmarks.db never lived in the app container: nothing is made up for it.
    assert!(!count(&counts, "bookmarks").present);

    let (out, n) = export_to(&b, Dataset::SafariHistory, "csv", t.path().join("csv"));
    assert_eq!(n, 3);
    assert_eq!(
        std::fs::read_to_string(out.join("history.csv")).unwrap(),
        "visit_id,time,url,title,domain,visit_count,load_successful\r\n\
         1,2013-09-04T15:06:40Z,https://example.org/a,Page A,example,2,1\r\n\
         2,2013-09-04T15:36:40Z,http://news.example.com/,\"News, \"\"quoted\"\"\",,1,0\r\n\
         3,2013-09-04T16:06:40Z,https://example.org/a,,example,2,1\r\n"
    );
    let (out, n) = export_to(&b, Dataset::SafariHistory, "json", t.path().join("json"));
    assert_eq!(n, 3);
    assert_eq!(
        json(&out.join("history.json")),
        serde_json::json!([
            {"id": 1, "time": "2013-09-04T15:06:40Z", "url": "https://example.org/a",
             "title": "Page A", "domain": "example", "visit_count": 2, "load_successful": true},
            {"id": 2, "time": "2013-09-04T15:36:40Z", "url": "http://news.example.com/",
             "title": "News, \"quoted\"", "domain": null, "visit_count": 1, "load_successful": false},
            {"id": 3, "time": "2013-09-04T16:06:40Z", "url": "https://example.org/a",
             "title": null, "domain": "example", "visit_count": 2, "load_successful": true},
        ])
    );
}

/// A phone upgraded across the move can leave both: the HomeDomain one is read.
#[test]
fn safari_history_prefers_home_domain() {
    let t = tempfile::tempdir().unwrap();
    let home = history_db(
        t.path(),
        "home.db",
        "INSERT INTO history_items VALUES (1, 'https://home.example/', NULL, 1);
         INSERT INTO history_visits VALUES (1, 1, 700000000.0, 'home', 1);",
    );
    let app = history_db(
        t.path(),
        "app.db",
        "INSERT INTO history_items VALUES (1, 'https://old.example/', NULL, 1);
         INSERT INTO history_items VALUES (2, 'https://old.example/2', NULL, 1);
         INSERT INTO history_visits VALUES (1, 1, 400000000.0, 'old', 1);
         INSERT INTO history_visits VALUES (2, 2, 400000001.0, 'old 2', 1);",
    );
    let b = backup_with(
        t.path(),
        &[
            (
                "AppDomain-com.apple.mobilesafari",
                "Library/Safari/History.db",
                app,
            ),
            ("HomeDomain", "Library/Safari/History.db", home),
        ],
    );
    let visits: Vec<Visit> = HistoryDb::open(&b)
        .unwrap()
        .visits()
        .map(|v| v.unwrap())
        .collect();
    assert_eq!(visits.len(), 1);
    assert_eq!(visits[0].url.as_deref(), Some("https://home.example/"));
    assert_eq!(
        count(&count_all(&b).unwrap(), "history_items").count,
        Some(1)
    );
}

// ---------------------------------------------------------------------------------------------
// Pre-iOS 8 call history
// ---------------------------------------------------------------------------------------------

/// The iOS 6 `call` table (iphonebackuptools `schemas/calls/calls2_6.1.6.sql`), without its
/// triggers and side tables.
const CALL_SCHEMA_IOS6: &str = "
    CREATE TABLE _SqliteDatabaseProperties (key TEXT, value TEXT, UNIQUE(key));
    CREATE TABLE call (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, address TEXT, date INTEGER,
        duration INTEGER, flags INTEGER, id INTEGER, name TEXT, country_code TEXT,
        network_code TEXT, read INTEGER, assisted INTEGER, face_time_data BLOB,
        originalAddress TEXT);";

/// Outgoing answered phone call, incoming missed phone call, incoming FaceTime (iOS 7 sets the
/// phone bit too: 16|4), outgoing cancelled FaceTime, outgoing with a recorded name.
const CALL_ROWS: &str = "
    INSERT INTO call VALUES (1, '+15550100001', 1325419200, 125, 5, 12, NULL, '310', '410', 1, 0, NULL, NULL);
    INSERT INTO call VALUES (2, '+15550100002', 1325505600, 0, 4, -1, NULL, '310', '410', 0, 0, NULL, NULL);
    INSERT INTO call VALUES (3, 'ann@example.com', 1356998400, 42, 20, 7, NULL, NULL, NULL, 1, 0, X'00', NULL);
    INSERT INTO call VALUES (4, 'ann@example.com', 1372636800, 0, 17, 7, NULL, NULL, NULL, 1, 0, NULL, NULL);
    INSERT INTO call VALUES (6, '+15550100003', 1400000000, 9, 5, -1, 'Bob Stone', '310', '410', 1, 0, NULL, NULL);";

/// (pk, unix date, duration, address, name, outgoing, answered, call_type, kind, direction, flags)
type Want = (
    i64,
    i64,
    f64,
    &'static str,
    Option<&'static str>,
    bool,
    bool,
    Option<i64>,
    &'static str,
    &'static str,
    i64,
);

const WANT: [Want; 5] = [
    (
        1,
        1_325_419_200,
        125.0,
        "+15550100001",
        None,
        true,
        true,
        Some(1),
        "Phone",
        "Outgoing",
        5,
    ),
    (
        2,
        1_325_505_600,
        0.0,
        "+15550100002",
        None,
        false,
        false,
        Some(1),
        "Phone",
        "Missed",
        4,
    ),
    (
        3,
        1_356_998_400,
        42.0,
        "ann@example.com",
        None,
        false,
        true,
        None,
        "FaceTime",
        "Incoming",
        20,
    ),
    (
        4,
        1_372_636_800,
        0.0,
        "ann@example.com",
        None,
        true,
        false,
        None,
        "FaceTime",
        "Cancelled",
        17,
    ),
    (
        6,
        1_400_000_000,
        9.0,
        "+15550100003",
        Some("Bob Stone"),
        true,
        true,
        Some(1),
        "Phone",
        "Outgoing",
        5,
    ),
];

fn check_calls(calls: &[Call]) {
    assert_eq!(calls.len(), WANT.len());
    for (c, w) in calls.iter().zip(WANT) {
        let (pk, date, duration, address, name, out, answered, ty, kind, dir, flags) = w;
        assert_eq!(c.pk, pk);
        assert_eq!(c.date, Some(date), "call {pk}: Unix seconds, not Cocoa");
        assert_eq!(c.duration, Some(duration));
        assert_eq!(c.address.as_deref(), Some(address));
        assert_eq!(c.name.as_deref(), name);
        assert_eq!(c.outgoing, out, "call {pk}");
        assert_eq!(c.answered, answered, "call {pk}");
        assert_eq!(c.call_type, ty, "call {pk}");
        assert_eq!(c.kind(), kind, "call {pk}");
        assert_eq!(c.direction(), dir, "call {pk}");
        assert_eq!(c.legacy_flags, Some(flags));
        assert_eq!(c.service_provider, None);
        assert_eq!(c.unique_id, None);
    }
}

/// call_history.db only (WirelessDomain, where iOS 4–7 backups keep it): read, counted, and
/// exported record by record.
#[test]
fn legacy_call_history() {
    let t = tempfile::tempdir().unwrap();
    let ch = db(t.path(), "ch.db", &format!("{CALL_SCHEMA_IOS6}{CALL_ROWS}"));
    let b = backup_with(
        t.path(),
        &[("WirelessDomain", "Library/CallHistory/call_history.db", ch)],
    );

    let cdb = CallsDb::open(&b).unwrap();
    assert!(cdb.is_legacy());
    assert_eq!(cdb.count().unwrap(), 5);
    let calls: Vec<Call> = cdb.calls().map(|c| c.unwrap()).collect();
    check_calls(&calls);

    let counts = count_all(&b).unwrap();
    let c = count(&counts, "calls");
    assert!(c.present && c.error.is_none(), "{c:?}");
    assert_eq!(c.count, Some(5));
    assert!(
        c.location
            .contains("WirelessDomain/Library/CallHistory/call_history.db")
    );
    assert!(c.exportable);

    let (out, n) = export_to(&b, Dataset::Calls, "csv", t.path().join("csv"));
    assert_eq!(n, 5);
    assert_eq!(
        std::fs::read_to_string(out.join("calls.csv")).unwrap(),
        "id,date,duration,direction,kind,address,name,service_provider,unique_id\r\n\
         1,2012-01-01T12:00:00Z,125,Outgoing,Phone,+15550100001,,,\r\n\
         2,2012-01-02T12:00:00Z,0,Missed,Phone,+15550100002,,,\r\n\
         3,2013-01-01T00:00:00Z,42,Incoming,FaceTime,ann@example.com,,,\r\n\
         4,2013-07-01T00:00:00Z,0,Cancelled,FaceTime,ann@example.com,,,\r\n\
         6,2014-05-13T16:53:20Z,9,Outgoing,Phone,+15550100003,Bob Stone,,\r\n"
    );
    let (out, n) = export_to(&b, Dataset::Calls, "json", t.path().join("json"));
    assert_eq!(n, 5);
    let call = |id: i64, date: &str, d: f64, dir: &str, kind: &str, addr: &str| {
        serde_json::json!({"id": id, "date": date, "duration": d, "direction": dir, "kind": kind,
            "address": addr, "name": null, "service_provider": null, "unique_id": null})
    };
    let mut last = call(
        6,
        "2014-05-13T16:53:20Z",
        9.0,
        "Outgoing",
        "Phone",
        "+15550100003",
    );
    last["name"] = "Bob Stone".into();
    assert_eq!(
        json(&out.join("calls.json")),
        serde_json::json!([
            call(
                1,
                "2012-01-01T12:00:00Z",
                125.0,
                "Outgoing",
                "Phone",
                "+15550100001"
            ),
            call(
                2,
                "2012-01-02T12:00:00Z",
                0.0,
                "Missed",
                "Phone",
                "+15550100002"
            ),
            call(
                3,
                "2013-01-01T00:00:00Z",
                42.0,
                "Incoming",
                "FaceTime",
                "ann@example.com"
            ),
            call(
                4,
                "2013-07-01T00:00:00Z",
                0.0,
                "Cancelled",
                "FaceTime",
                "ann@example.com"
            ),
            last,
        ])
    );
}

/// The earliest iOS versions kept call_history.db under HomeDomain: found there too, and the
/// export names the caller from the address book when the row has no name.
#[test]
fn legacy_call_history_in_home_domain() {
    let t = tempfile::tempdir().unwrap();
    let ch = db(
        t.path(),
        "ch.db",
        "CREATE TABLE call (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, address TEXT, date INTEGER,
             duration INTEGER, flags INTEGER, id INTEGER);
         INSERT INTO call VALUES (1, '+15550100009', 1300000000, 61, 4, 1);",
    );
    let ab = db(
        t.path(),
        "ab.db",
        "CREATE TABLE ABPerson (ROWID INTEGER PRIMARY KEY, First, Last);
         CREATE TABLE ABMultiValue (UID INTEGER PRIMARY KEY, record_id, property, label, value);
         INSERT INTO ABPerson VALUES (1, 'Cleo', 'Park');
         INSERT INTO ABMultiValue VALUES (1, 1, 3, NULL, '+15550100009');",
    );
    let b = backup_with(
        t.path(),
        &[
            ("HomeDomain", "Library/CallHistory/call_history.db", ch),
            ("HomeDomain", "Library/AddressBook/AddressBook.sqlitedb", ab),
        ],
    );
    let calls: Vec<Call> = CallsDb::open(&b)
        .unwrap()
        .calls()
        .map(|c| c.unwrap())
        .collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].date, Some(1_300_000_000));
    assert_eq!(calls[0].direction(), "Incoming", "61 s: answered");
    assert_eq!(count(&count_all(&b).unwrap(), "calls").count, Some(1));
    let (out, _) = export_to(&b, Dataset::Calls, "json", t.path().join("json"));
    let v = json(&out.join("calls.json"));
    assert_eq!(v[0]["name"], "Cleo Park");
    assert_eq!(v[0]["date"], "2011-03-13T07:06:40Z");
}

/// A backup holding both stores (restored from an old backup, then upgraded): the iOS 8+
/// CallHistory.storedata is the one read and counted.
#[test]
fn storedata_preferred_over_legacy() {
    let t = tempfile::tempdir().unwrap();
    let legacy = db(t.path(), "ch.db", &format!("{CALL_SCHEMA_IOS6}{CALL_ROWS}"));
    let modern = db(
        t.path(),
        "cs.db",
        "CREATE TABLE ZCALLRECORD (Z_PK INTEGER PRIMARY KEY, ZDATE, ZDURATION, ZADDRESS,
             ZORIGINATED, ZANSWERED, ZCALLTYPE);
         INSERT INTO ZCALLRECORD VALUES (1, 700000000.0, 3.0, '+15550100077', 1, 1, 16);",
    );
    let b = backup_with(
        t.path(),
        &[
            (
                "WirelessDomain",
                "Library/CallHistory/call_history.db",
                legacy,
            ),
            (
                "HomeDomain",
                "Library/CallHistoryDB/CallHistory.storedata",
                modern,
            ),
        ],
    );
    let cdb = CallsDb::open(&b).unwrap();
    assert!(!cdb.is_legacy());
    let calls: Vec<Call> = cdb.calls().map(|c| c.unwrap()).collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].kind(), "FaceTime Audio");
    assert_eq!(calls[0].legacy_flags, None);
    assert_eq!(count(&count_all(&b).unwrap(), "calls").count, Some(1));
}

/// Hostile old store: `date` as text garbage, no `duration` column, a text flag, an empty
/// address. Every row still comes out, with `None` where nothing can be read; no panic.
#[test]
fn hostile_legacy_call_history() {
    let t = tempfile::tempdir().unwrap();
    let ch = db(
        t.path(),
        "ch.db",
        "CREATE TABLE call (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, address, date, flags);
         INSERT INTO call VALUES (1, '+15550100001', 'yesterday at noon', 5);
         INSERT INTO call VALUES (2, '', X'DEADBEEF', 'outgoing');
         INSERT INTO call VALUES (3, X'2B3135353530313030303034', 1e300, NULL);
         INSERT INTO call VALUES (4, NULL, -77, 16);
         INSERT INTO call VALUES (5, 'x@example.com', ' 1325419200 ', 4);",
    );
    let b = backup_with(
        t.path(),
        &[("WirelessDomain", "Library/CallHistory/call_history.db", ch)],
    );
    let calls: Vec<Call> = CallsDb::open(&b)
        .unwrap()
        .calls()
        .map(|c| c.unwrap())
        .collect();
    assert_eq!(
        calls.iter().map(|c| c.pk).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let dates: Vec<_> = calls.iter().map(|c| c.date).collect();
    assert_eq!(dates, [None, None, None, None, Some(1_325_419_200)]);
    assert!(calls.iter().all(|c| c.duration.is_none()));
    // Without a duration (and no `answered` column) nothing says the call was answered.
    assert!(calls.iter().all(|c| !c.answered));
    assert_eq!(calls[0].direction(), "Cancelled");
    assert_eq!(calls[1].legacy_flags, None);
    assert_eq!(calls[1].address, None);
    assert_eq!(calls[1].kind(), "Unknown");
    assert_eq!(calls[2].address.as_deref(), Some("+15550100004"));
    assert_eq!(calls[3].kind(), "FaceTime");
    assert_eq!(count(&count_all(&b).unwrap(), "calls").count, Some(5));

    let (out, n) = export_to(&b, Dataset::Calls, "json", t.path().join("json"));
    assert_eq!(n, 5);
    let v = json(&out.join("calls.json"));
    assert_eq!(v[0]["date"], serde_json::Value::Null);
    assert_eq!(v[0]["duration"], serde_json::Value::Null);
    assert_eq!(v[4]["date"], "2012-01-01T12:00:00Z");
    let (out, _) = export_to(&b, Dataset::Calls, "csv", t.path().join("csv"));
    let csv = std::fs::read_to_string(out.join("calls.csv")).unwrap();
    assert_eq!(csv.lines().count(), 6);
    assert!(
        csv.contains("\r\n1,,,Cancelled,Phone,+15550100001,,,\r\n"),
        "{csv}"
    );
}

/// A `call_history.db` without a `call` table is a clear schema error, not an empty export.
#[test]
fn legacy_without_call_table() {
    let t = tempfile::tempdir().unwrap();
    let ch = db(
        t.path(),
        "ch.db",
        "CREATE TABLE calls_typo (ROWID INTEGER PRIMARY KEY);",
    );
    let b = backup_with(
        t.path(),
        &[("WirelessDomain", "Library/CallHistory/call_history.db", ch)],
    );
    let e = CallsDb::open(&b).unwrap_err();
    assert!(
        matches!(e, iosnap_datasets::Error::UnknownSchema { .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("no table ZCALLRECORD or call"),
        "{e}"
    );
    let c = count_all(&b).unwrap();
    let c = count(&c, "calls");
    assert!(c.present && c.count.is_none() && c.error.is_some(), "{c:?}");
}

/// Any SQLite value in any column of the old `call` table: every row comes out, none panics,
/// and what comes out is in range.
mod fuzz {
    use iosnap_datasets::Source;
    use iosnap_datasets::calls::{CallsDb, LEGACY_CALL_HISTORY};
    use proptest::prelude::*;
    use rusqlite::types::Value;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Integer),
            any::<f64>().prop_map(Value::Real),
            ".{0,12}".prop_map(Value::Text),
            proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Blob),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn any_values(rows in proptest::collection::vec(proptest::collection::vec(value(), 6), 0..8)) {
            let t = tempfile::tempdir().unwrap();
            let p = t.path().join("call_history.db");
            let c = rusqlite::Connection::open(&p).unwrap();
            c.execute_batch(
                "CREATE TABLE call (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, address, date,
                     duration, flags, answered, name);",
            )
            .unwrap();
            for r in &rows {
                c.execute(
                    "INSERT INTO call (address, date, duration, flags, answered, name)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params_from_iter(r.iter()),
                )
                .unwrap();
            }
            drop(c);
            let db = CallsDb::from_source(Source::open_path(&p, LEGACY_CALL_HISTORY).unwrap())
                .unwrap();
            let calls: Vec<_> = db.calls().map(|c| c.unwrap()).collect();
            prop_assert_eq!(calls.len(), rows.len());
            prop_assert_eq!(db.count().unwrap(), rows.len() as u64);
            for c in &calls {
                prop_assert!(c.date.is_none_or(|d| (1..253_402_300_800).contains(&d)));
                prop_assert!(c.duration.is_none_or(|d| d.is_finite() && d >= 0.0));
                let _ = (c.kind(), c.direction());
            }
        }
    }
}
