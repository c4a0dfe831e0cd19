//! Call history, in either of the two stores iOS has used:
//!
//! * iOS 8 and later: `HomeDomain/Library/CallHistoryDB/CallHistory.storedata` (Core Data table
//!   `ZCALLRECORD`, `ZDATE` in Cocoa seconds). Apple only puts it in encrypted backups.
//! * Before iOS 8: `call_history.db`, table `call` (`ROWID`, `address`, `date` in **Unix**
//!   seconds, `duration`, `flags`, and from iOS 7 `answered`). Backups keep it in
//!   `WirelessDomain/Library/CallHistory/` (its backup file id `2b2b0084…` is
//!   SHA-1("WirelessDomain-Library/CallHistory/call_history.db"), the id The iPhone Wiki's
//!   "Call History Database" page, iphonebackuptools' `phone/calls.js` and AnyTrans'
//!   `IMBCallHistorySqliteManager.m` read); the very first iOS versions kept it under
//!   `HomeDomain/Library/CallHistory/` (id `ff1324e6…`, listed as the call log by early backup
//!   scripts). Both are looked up, after the modern store.
//!
//! Both yield the same [`Call`] records, so the export and the `datasets` count do not care
//! which store a backup has.

use iosnap_format::Backup;
use serde::Serialize;

use crate::error::Result;
use crate::page::Pager;
use crate::source::{DbLocation, Source};
use crate::value::{flag, get, int, nonempty, real};

/// The call history database (iOS 8+).
pub const CALL_HISTORY: DbLocation = DbLocation {
    dataset: "Call history",
    domain: "HomeDomain",
    relative_path: "Library/CallHistoryDB/CallHistory.storedata",
};

/// The pre-iOS 8 call history as backups of iOS 4–7 hold it (see the module docs for sources).
pub const LEGACY_CALL_HISTORY: DbLocation = DbLocation {
    dataset: "Call history",
    domain: "WirelessDomain",
    relative_path: "Library/CallHistory/call_history.db",
};

/// The pre-iOS 8 call history where the earliest iOS versions kept it (`/var/mobile`).
pub const LEGACY_CALL_HISTORY_HOME: DbLocation = DbLocation {
    dataset: "Call history",
    domain: "HomeDomain",
    relative_path: "Library/CallHistory/call_history.db",
};

/// Every place a backup may hold call history, preferred first: the modern store wins when a
/// restored-and-upgraded phone left both behind.
pub const CALL_HISTORY_LOCATIONS: &[DbLocation] =
    &[CALL_HISTORY, LEGACY_CALL_HISTORY, LEGACY_CALL_HISTORY_HOME];

/// Bits of `call.flags` in the pre-iOS 8 `call_history.db`.
///
/// Sources: iLEAPP `scripts/artifacts/callHistory.py` `old_query` (`flags&1=1` outgoing,
/// `flags&4=4` phone call, `flags&16=16` FaceTime); the iOS 6 schema in iphonebackuptools
/// (`schemas/calls/calls2_6.1.6.sql`), whose `timer_outgoing_trigger` fires on
/// `NEW.flags & (1 << 0) == 1`; AnyTrans `IMBCallHistorySqliteManager.m`, which treats
/// 0/4 as incoming, 1/5/9 as outgoing, 16/20 as incoming FaceTime and 17/21 as outgoing FaceTime
/// (so the FaceTime bit wins over the phone bit: iOS 7 sets both).
pub mod legacy_flags {
    /// Set when the phone placed the call.
    pub const OUTGOING: i64 = 1;
    /// Set on a cellular phone call.
    pub const PHONE: i64 = 4;
    /// Set on a FaceTime call (audio and video are not told apart).
    pub const FACETIME: i64 = 16;
}

/// One call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    /// `Z_PK` (`ROWID` in the pre-iOS 8 store).
    pub pk: i64,
    /// Start, Unix seconds.
    #[serde(serialize_with = "crate::time::opt_rfc3339::serialize")]
    pub date: Option<i64>,
    /// Duration in seconds; `None` when the database does not say (no or unreadable column).
    pub duration: Option<f64>,
    /// The other party (number, e-mail, or app handle).
    pub address: Option<String>,
    /// The name the phone showed (`ZNAME`, `name` in the old store), else the contact with
    /// this number.
    pub name: Option<String>,
    /// Outgoing (true) or incoming. Like every flag of this crate, a missing or unreadable
    /// value reads as false.
    pub outgoing: bool,
    /// Answered. The pre-iOS 8 store records it only from iOS 7; before, it is derived from
    /// the duration (a call that lasted 0 s, or whose duration is unknown, was not answered).
    pub answered: bool,
    /// `ZCALLTYPE`: 1 phone, 8 FaceTime video, 16 FaceTime audio, 0 third-party app. Old
    /// stores give `Some(1)` for phone calls and `None` otherwise (see [`Call::legacy_flags`]).
    pub call_type: Option<i64>,
    /// e.g. `com.apple.Telephony`, `net.whatsapp.WhatsApp`.
    pub service_provider: Option<String>,
    /// `ZUNIQUE_ID`.
    pub unique_id: Option<String>,
    /// The raw `call.flags` of a pre-iOS 8 row (`None` for CallHistory.storedata), kept because
    /// the old store only tells "FaceTime", not audio or video (see [`legacy_flags`]).
    pub legacy_flags: Option<i64>,
}

impl Call {
    /// "Phone", "FaceTime Video", "FaceTime Audio", "FaceTime" (pre-iOS 8, kind of FaceTime
    /// not recorded), "App", "Other (n)", "Unknown".
    pub fn kind(&self) -> String {
        match self.call_type {
            Some(1) => "Phone".into(),
            Some(8) => "FaceTime Video".into(),
            Some(16) => "FaceTime Audio".into(),
            Some(0) => "App".into(),
            Some(n) => format!("Other ({n})"),
            None => match self.legacy_flags {
                Some(f) if f & legacy_flags::FACETIME != 0 => "FaceTime".into(),
                _ => "Unknown".into(),
            },
        }
    }

    /// "Outgoing", "Incoming", "Missed" (incoming, not answered), "Cancelled" (outgoing, not answered).
    pub fn direction(&self) -> &'static str {
        match (self.outgoing, self.answered) {
            (true, true) => "Outgoing",
            (true, false) => "Cancelled",
            (false, true) => "Incoming",
            (false, false) => "Missed",
        }
    }
}

/// A Unix time in seconds from the old store, `None` for 0 ("not set"), garbage and values
/// past year 9999.
fn unix_seconds(v: f64) -> Option<i64> {
    (1.0..253_402_300_800.0)
        .contains(&v)
        .then(|| v.floor() as i64)
}

/// Which of the two schemas the opened database has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    /// `ZCALLRECORD` (iOS 8+).
    CoreData,
    /// `call` (before iOS 8).
    Legacy,
}

/// The call history database, opened.
#[derive(Debug)]
pub struct CallsDb {
    src: Source,
    sql: String,
    store: Store,
}

impl CallsDb {
    /// Opens the call history of a backup: CallHistory.storedata, or else the pre-iOS 8
    /// call_history.db ([`CALL_HISTORY_LOCATIONS`]).
    pub fn open(backup: &Backup) -> Result<CallsDb> {
        Self::from_source(Source::open_any(backup, CALL_HISTORY_LOCATIONS)?)
    }

    /// Builds on an opened database of either store. [`crate::Error::UnknownSchema`] without
    /// `ZCALLRECORD` (with its `Z_PK`) or `call`.
    pub fn from_source(src: Source) -> Result<CallsDb> {
        let s = src.schema();
        if s.has_table("ZCALLRECORD") {
            return Self::core_data(src);
        }
        if s.has_table("call") {
            return Ok(Self::legacy(src));
        }
        Err(crate::Error::UnknownSchema {
            dataset: src.dataset(),
            file: src.file().to_string(),
            detail: "no table ZCALLRECORD or call".into(),
        })
    }

    fn core_data(src: Source) -> Result<CallsDb> {
        let s = src.schema();
        if !s.has_column("ZCALLRECORD", "Z_PK") {
            return Err(crate::Error::UnknownSchema {
                dataset: src.dataset(),
                file: src.file().to_string(),
                detail: "ZCALLRECORD has no Z_PK".into(),
            });
        }
        let cols = [
            "ZDATE",
            "ZDURATION",
            "ZADDRESS",
            "ZNAME",
            "ZORIGINATED",
            "ZANSWERED",
            "ZCALLTYPE",
            "ZSERVICE_PROVIDER",
            "ZUNIQUE_ID",
        ]
        .iter()
        .map(|c| s.col("ZCALLRECORD", "c", c))
        .collect::<Vec<_>>()
        .join(", ");
        let sql = format!(
            "SELECT c.Z_PK, {cols} FROM ZCALLRECORD c WHERE c.Z_PK > ?1 ORDER BY c.Z_PK LIMIT ?2"
        );
        Ok(CallsDb {
            src,
            sql,
            store: Store::CoreData,
        })
    }

    fn legacy(src: Source) -> CallsDb {
        let s = src.schema();
        // `rowid` is SQLite's own key (the `ROWID INTEGER PRIMARY KEY` column when declared), so
        // it exists even if a damaged schema lost the column declaration.
        let cols = ["date", "duration", "address", "name", "flags", "answered"]
            .iter()
            .map(|c| s.col("call", "c", c))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT c.rowid, {cols} FROM \"call\" c WHERE c.rowid > ?1 ORDER BY c.rowid LIMIT ?2"
        );
        CallsDb {
            src,
            sql,
            store: Store::Legacy,
        }
    }

    /// Whether this is the pre-iOS 8 `call_history.db` (table `call`).
    pub fn is_legacy(&self) -> bool {
        self.store == Store::Legacy
    }

    /// Number of calls.
    pub fn count(&self) -> Result<u64> {
        let table = match self.store {
            Store::CoreData => "ZCALLRECORD",
            Store::Legacy => "call",
        };
        Ok(self.src.count(table)?.unwrap_or(0))
    }

    /// Every call, key order (`Z_PK` or `ROWID`), streamed page by page.
    pub fn calls(&self) -> CallIter<'_> {
        let map: fn(&rusqlite::Row<'_>) -> Call = match self.store {
            Store::CoreData => map_core_data,
            Store::Legacy => map_legacy,
        };
        CallIter(Pager::new(
            self.src.conn(),
            self.src.file(),
            self.sql.clone(),
            None,
            map,
            |c: &Call| c.pk,
        ))
    }
}

/// A `ZCALLRECORD` row (columns in the order of [`CallsDb::core_data`]'s query).
fn map_core_data(r: &rusqlite::Row<'_>) -> Call {
    Call {
        pk: int(get(r, 0)).unwrap_or(0),
        date: real(get(r, 1)).and_then(crate::time::cocoa_real_to_unix),
        duration: real(get(r, 2)).map(|d| d.max(0.0)),
        address: nonempty(get(r, 3)),
        name: nonempty(get(r, 4)),
        outgoing: flag(get(r, 5)),
        answered: flag(get(r, 6)),
        call_type: int(get(r, 7)),
        service_provider: nonempty(get(r, 8)),
        unique_id: nonempty(get(r, 9)),
        legacy_flags: None,
    }
}

/// A `call` row of the pre-iOS 8 store (columns in the order of [`CallsDb::legacy`]'s query).
fn map_legacy(r: &rusqlite::Row<'_>) -> Call {
    let duration = real(get(r, 2)).map(|d| d.max(0.0));
    let flags = int(get(r, 5));
    // iOS 7 records `answered`; before, a call that lasted 0 s was not answered (AnyTrans
    // decodes a 0 s incoming call as missed and a 0 s outgoing one as cancelled).
    let answered = int(get(r, 6))
        .map(|a| a != 0)
        .unwrap_or_else(|| duration.is_some_and(|d| d > 0.0));
    let facetime = flags.is_some_and(|f| f & legacy_flags::FACETIME != 0);
    let phone = flags.is_some_and(|f| f & legacy_flags::PHONE != 0);
    Call {
        pk: int(get(r, 0)).unwrap_or(0),
        date: real(get(r, 1)).and_then(unix_seconds),
        duration,
        address: nonempty(get(r, 3)),
        name: nonempty(get(r, 4)),
        outgoing: flags.is_some_and(|f| f & legacy_flags::OUTGOING != 0),
        answered,
        call_type: (phone && !facetime).then_some(1),
        service_provider: None,
        unique_id: None,
        legacy_flags: flags,
    }
}

/// The iterator of [`CallsDb::calls`].
pub struct CallIter<'a>(Pager<'a, Call>);

impl Iterator for CallIter<'_> {
    type Item = Result<Call>;
    fn next(&mut self) -> Option<Result<Call>> {
        self.0.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(outgoing: bool, answered: bool) -> Call {
        Call {
            pk: 1,
            date: None,
            duration: None,
            address: None,
            name: None,
            outgoing,
            answered,
            call_type: None,
            service_provider: None,
            unique_id: None,
            legacy_flags: None,
        }
    }

    #[test]
    fn directions() {
        assert_eq!(call(true, true).direction(), "Outgoing");
        assert_eq!(call(true, false).direction(), "Cancelled");
        assert_eq!(call(false, true).direction(), "Incoming");
        assert_eq!(call(false, false).direction(), "Missed");
    }

    #[test]
    fn kinds() {
        let mut c = call(false, false);
        assert_eq!(c.kind(), "Unknown");
        c.legacy_flags = Some(21);
        assert_eq!(c.kind(), "FaceTime");
        c.legacy_flags = Some(5);
        assert_eq!(
            c.kind(),
            "Unknown",
            "call_type decides once the phone bit was mapped"
        );
        c.call_type = Some(1);
        assert_eq!(c.kind(), "Phone");
        c.call_type = Some(16);
        assert_eq!(c.kind(), "FaceTime Audio");
        c.call_type = Some(3);
        assert_eq!(c.kind(), "Other (3)");
    }

    #[test]
    fn unix_dates() {
        assert_eq!(unix_seconds(0.0), None);
        assert_eq!(unix_seconds(-3.0), None);
        assert_eq!(unix_seconds(f64::NAN), None);
        assert_eq!(unix_seconds(1e13), None);
        assert_eq!(unix_seconds(1_300_000_000.9), Some(1_300_000_000));
    }

    fn legacy_rows(schema: &str, rows: &str) -> Vec<Call> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("call_history.db");
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch(schema).unwrap();
        c.execute_batch(rows).unwrap();
        drop(c);
        let db = CallsDb::from_source(Source::open_path(&p, LEGACY_CALL_HISTORY).unwrap()).unwrap();
        assert!(db.is_legacy());
        db.calls().map(|c| c.unwrap()).collect()
    }

    #[test]
    fn legacy_flags_decode() {
        let got = legacy_rows(
            "CREATE TABLE call (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, address TEXT,
             date INTEGER, duration INTEGER, flags INTEGER, id INTEGER);",
            "INSERT INTO call VALUES (1, '+1555', 1300000000, 60, 5, -1);
             INSERT INTO call VALUES (2, '+1555', 1300000100, 0, 4, -1);
             INSERT INTO call VALUES (3, 'a@b.c', 1300000200, 12, 20, -1);
             INSERT INTO call VALUES (4, 'a@b.c', 1300000300, 0, 17, -1);",
        );
        let d: Vec<_> = got.iter().map(|c| (c.direction(), c.kind())).collect();
        assert_eq!(
            d,
            [
                ("Outgoing", "Phone".to_string()),
                ("Missed", "Phone".to_string()),
                ("Incoming", "FaceTime".to_string()),
                ("Cancelled", "FaceTime".to_string()),
            ]
        );
        assert_eq!(got[0].date, Some(1_300_000_000));
        assert_eq!(got[0].duration, Some(60.0));
        assert_eq!(got[3].legacy_flags, Some(17));
    }

    #[test]
    fn legacy_answered_column_wins() {
        // iOS 7: a 0 s call flagged answered stays answered, a long one flagged 0 is not.
        let got = legacy_rows(
            "CREATE TABLE call (ROWID INTEGER PRIMARY KEY, address, date, duration, flags, answered);",
            "INSERT INTO call VALUES (1, 'x', 1, 0, 4, 1);
             INSERT INTO call VALUES (2, 'x', 2, 30, 4, 0);
             INSERT INTO call VALUES (3, 'x', 3, 30, 4, NULL);",
        );
        let a: Vec<_> = got.iter().map(|c| c.answered).collect();
        assert_eq!(a, [true, false, true]);
    }
}
