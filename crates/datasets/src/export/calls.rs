//! Call history export: `calls.csv` or `calls.json` (an array of [`CallOut`]), the same shape
//! whichever store (CallHistory.storedata or the pre-iOS 8 call_history.db) the backup has.

use std::io::Write;

use serde::Serialize;

use super::text::csv_row;
use super::{ExportReport, OutDir, ProgressFn, finish};
use crate::calls::{Call, CallsDb};
use crate::contacts::ContactIndex;
use crate::error::{IoContext, Result};

/// One call as exported (the JSON shape, documented in docs/json.md).
#[derive(Debug, Clone, Serialize)]
pub struct CallOut {
    /// `Z_PK` (`ROWID` in the pre-iOS 8 store).
    pub id: i64,
    /// Start, RFC 3339.
    pub date: Option<String>,
    /// Seconds; null when the database does not record it.
    pub duration: Option<f64>,
    /// "Outgoing", "Incoming", "Missed", "Cancelled".
    pub direction: &'static str,
    /// "Phone", "FaceTime Video", "FaceTime Audio", "FaceTime" (pre-iOS 8), "App" …
    pub kind: String,
    /// The other party.
    pub address: Option<String>,
    /// Name recorded with the call, else the contact's.
    pub name: Option<String>,
    /// Service provider bundle id.
    pub service_provider: Option<String>,
    /// `ZUNIQUE_ID`.
    pub unique_id: Option<String>,
}

fn out(c: &Call, index: &ContactIndex) -> CallOut {
    CallOut {
        id: c.pk,
        date: c.date.map(crate::time::rfc3339),
        duration: c.duration,
        direction: c.direction(),
        kind: c.kind(),
        address: c.address.clone(),
        name: c.name.clone().or_else(|| {
            c.address
                .as_deref()
                .and_then(|a| index.name(a))
                .map(str::to_string)
        }),
        service_provider: c.service_provider.clone(),
        unique_id: c.unique_id.clone(),
    }
}

const CSV_HEADER: [&str; 9] = [
    "id",
    "date",
    "duration",
    "direction",
    "kind",
    "address",
    "name",
    "service_provider",
    "unique_id",
];

/// Writes `calls.csv` or `calls.json`.
pub(crate) fn export(
    db: &CallsDb,
    index: &ContactIndex,
    fmt: &str,
    dir: &OutDir,
    progress: ProgressFn<'_>,
) -> Result<ExportReport> {
    let mut report = ExportReport::default();
    let total = db.count()?;
    progress(0, total);
    let (path, mut w) = dir.file(if fmt == "json" {
        "calls.json"
    } else {
        "calls.csv"
    })?;
    if fmt == "json" {
        w.write_all(b"[").at(&path)?;
    } else {
        w.write_all(csv_row(&CSV_HEADER).as_bytes()).at(&path)?;
    }
    for c in db.calls() {
        let o = out(&c?, index);
        if fmt == "json" {
            if report.records > 0 {
                w.write_all(b",").at(&path)?;
            }
            w.write_all(b"\n").at(&path)?;
            serde_json::to_writer(&mut w, &o)?;
        } else {
            let s = |x: &Option<String>| x.clone().unwrap_or_default();
            w.write_all(
                csv_row(&[
                    o.id.to_string(),
                    s(&o.date),
                    o.duration.map(|d| d.to_string()).unwrap_or_default(),
                    o.direction.to_string(),
                    o.kind.clone(),
                    s(&o.address),
                    s(&o.name),
                    s(&o.service_provider),
                    s(&o.unique_id),
                ])
                .as_bytes(),
            )
            .at(&path)?;
        }
        report.records += 1;
        if report.records.is_multiple_of(1000) {
            progress(report.records, total);
        }
    }
    if fmt == "json" {
        w.write_all(b"\n]\n").at(&path)?;
    }
    finish(&path, w)?;
    report.files_written = 1;
    progress(report.records, total);
    Ok(report)
}
