//! Call history: `HomeDomain/Library/CallHistoryDB/CallHistory.storedata` (Core Data table
//! `ZCALLRECORD`, `ZDATE` in Cocoa seconds). Apple only puts it in encrypted backups.

use iosnap_format::Backup;
use serde::Serialize;

use crate::error::Result;
use crate::page::Pager;
use crate::source::{DbLocation, Source};
use crate::value::{flag, get, int, nonempty, real};

/// The call history database.
pub const CALL_HISTORY: DbLocation = DbLocation {
    dataset: "Call history",
    domain: "HomeDomain",
    relative_path: "Library/CallHistoryDB/CallHistory.storedata",
};

/// One call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    /// `Z_PK`.
    pub pk: i64,
    /// Start, Unix seconds.
    #[serde(serialize_with = "crate::time::opt_rfc3339::serialize")]
    pub date: Option<i64>,
    /// Duration in seconds.
    pub duration: f64,
    /// The other party (number, e-mail, or app handle).
    pub address: Option<String>,
    /// The name the phone showed (`ZNAME`), else the contact with this number.
    pub name: Option<String>,
    /// Outgoing (true) or incoming.
    pub outgoing: bool,
    /// Answered.
    pub answered: bool,
    /// `ZCALLTYPE`: 1 phone, 8 FaceTime video, 16 FaceTime audio, 0 third-party app.
    pub call_type: Option<i64>,
    /// e.g. `com.apple.Telephony`, `net.whatsapp.WhatsApp`.
    pub service_provider: Option<String>,
    /// `ZUNIQUE_ID`.
    pub unique_id: Option<String>,
}

impl Call {
    /// "Phone", "FaceTime Video", "FaceTime Audio", "App", "Other (n)".
    pub fn kind(&self) -> String {
        match self.call_type {
            Some(1) => "Phone".into(),
            Some(8) => "FaceTime Video".into(),
            Some(16) => "FaceTime Audio".into(),
            Some(0) => "App".into(),
            Some(n) => format!("Other ({n})"),
            None => "Unknown".into(),
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

/// The call history database, opened.
#[derive(Debug)]
pub struct CallsDb {
    src: Source,
    sql: String,
}

impl CallsDb {
    /// Opens the call history of a backup.
    pub fn open(backup: &Backup) -> Result<CallsDb> {
        Self::from_source(Source::open(backup, CALL_HISTORY)?)
    }

    /// Builds on an opened database. [`crate::Error::UnknownSchema`] without `ZCALLRECORD`.
    pub fn from_source(src: Source) -> Result<CallsDb> {
        src.require_table("ZCALLRECORD")?;
        let s = src.schema();
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
        if !s.has_column("ZCALLRECORD", "Z_PK") {
            return Err(crate::Error::UnknownSchema {
                dataset: src.dataset(),
                file: src.file().to_string(),
                detail: "ZCALLRECORD has no Z_PK".into(),
            });
        }
        Ok(CallsDb { src, sql })
    }

    /// Number of calls.
    pub fn count(&self) -> Result<u64> {
        Ok(self.src.count("ZCALLRECORD")?.unwrap_or(0))
    }

    /// Every call, `Z_PK` order, streamed page by page.
    pub fn calls(&self) -> CallIter<'_> {
        let map = |r: &rusqlite::Row<'_>| Call {
            pk: int(get(r, 0)).unwrap_or(0),
            date: real(get(r, 1)).and_then(crate::time::cocoa_real_to_unix),
            duration: real(get(r, 2)).unwrap_or(0.0).max(0.0),
            address: nonempty(get(r, 3)),
            name: nonempty(get(r, 4)),
            outgoing: flag(get(r, 5)),
            answered: flag(get(r, 6)),
            call_type: int(get(r, 7)),
            service_provider: nonempty(get(r, 8)),
            unique_id: nonempty(get(r, 9)),
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

/// The iterator of [`CallsDb::calls`].
pub struct CallIter<'a>(Pager<'a, Call>);

impl Iterator for CallIter<'_> {
    type Item = Result<Call>;
    fn next(&mut self) -> Option<Result<Call>> {
        self.0.next()
    }
}
