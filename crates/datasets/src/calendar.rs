//! Calendar: `HomeDomain/Library/Calendar/Calendar.sqlitedb`. `CalendarItem` (Cocoa seconds,
//! `start_tz` "_float" for floating all-day events), `Calendar`, `Location`, `Recurrence`,
//! `Alarm`. Before iOS 13 reminders live in `CalendarItem` too (`entity_type` 3): they are not
//! events and are left out.

use iosnap_format::Backup;
use serde::Serialize;

use crate::error::{Result, SqlContext};
use crate::page::Pager;
use crate::source::{DbLocation, Source};
use crate::value::{flag, get, int, nonempty, real};

/// The calendar database.
pub const CALENDAR_DB: DbLocation = DbLocation {
    dataset: "Calendar",
    domain: "HomeDomain",
    relative_path: "Library/Calendar/Calendar.sqlitedb",
};

/// One calendar (`Calendar` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalendarInfo {
    /// ROWID.
    pub rowid: i64,
    /// Title ("Home", "Work" …).
    pub title: Option<String>,
    /// Colour, e.g. `#1BADF8`.
    pub color: Option<String>,
}

/// A repetition rule (`Recurrence` row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recurrence {
    /// 1 daily, 2 weekly, 3 monthly, 4 yearly (0 and others: unknown).
    pub frequency: i64,
    /// Every `interval` periods (≥ 1).
    pub interval: i64,
    /// Number of occurrences, when bounded by a count.
    pub count: Option<i64>,
    /// Last occurrence, Unix seconds, when bounded by a date.
    pub until: Option<i64>,
}

impl Recurrence {
    /// The RFC 5545 `FREQ` value, `None` for an unknown frequency.
    pub fn freq(&self) -> Option<&'static str> {
        match self.frequency {
            1 => Some("DAILY"),
            2 => Some("WEEKLY"),
            3 => Some("MONTHLY"),
            4 => Some("YEARLY"),
            _ => None,
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// ROWID.
    pub rowid: i64,
    /// `UUID` / `unique_identifier`.
    pub uid: Option<String>,
    /// Title.
    pub summary: Option<String>,
    /// Notes.
    pub description: Option<String>,
    /// URL.
    pub url: Option<String>,
    /// Start, Unix seconds.
    pub start: Option<i64>,
    /// End, Unix seconds.
    pub end: Option<i64>,
    /// All-day.
    pub all_day: bool,
    /// Time zone name as stored (`_float` for floating).
    pub start_tz: Option<String>,
    /// Calendar ROWID.
    pub calendar_id: Option<i64>,
    /// Location title.
    pub location: Option<String>,
    /// Repetition.
    pub recurrence: Option<Recurrence>,
    /// Alarms: seconds relative to the start (negative = before).
    pub alarms: Vec<i64>,
    /// Created, Unix seconds.
    pub created: Option<i64>,
    /// Last modified, Unix seconds.
    pub modified: Option<i64>,
}

/// The calendar database, opened.
#[derive(Debug)]
pub struct CalendarDb {
    src: Source,
    sql: String,
    count_sql: String,
}

fn cocoa(v: rusqlite::types::ValueRef<'_>) -> Option<i64> {
    real(v).and_then(crate::time::cocoa_real_to_unix)
}

impl CalendarDb {
    /// Opens the calendar database of a backup.
    pub fn open(backup: &Backup) -> Result<CalendarDb> {
        Self::from_source(Source::open(backup, CALENDAR_DB)?)
    }

    /// Builds on an opened database. [`crate::Error::UnknownSchema`] without `CalendarItem`.
    pub fn from_source(src: Source) -> Result<CalendarDb> {
        src.require_table("CalendarItem")?;
        let s = src.schema();
        let c = |n: &str| s.col("CalendarItem", "e", n);
        let uid = if s.has_column("CalendarItem", "UUID") {
            format!("COALESCE({}, {})", c("UUID"), c("unique_identifier"))
        } else {
            c("unique_identifier")
        };
        let location =
            if s.has_column("CalendarItem", "location_id") && s.has_column("Location", "title") {
                "(SELECT l.title FROM Location l WHERE l.ROWID = e.location_id)"
            } else {
                "NULL"
            };
        let rec = |n: &str| {
            if s.has_column("Recurrence", "owner_id") && s.has_column("Recurrence", n) {
                format!(
                    "(SELECT r.{} FROM Recurrence r WHERE r.owner_id = e.ROWID ORDER BY r.ROWID LIMIT 1)",
                    crate::schema::quote(n)
                )
            } else {
                "NULL".into()
            }
        };
        let alarms = if s.has_column("Alarm", "calendaritem_owner_id")
            && s.has_column("Alarm", "trigger_interval")
        {
            "(SELECT group_concat(a.trigger_interval) FROM Alarm a WHERE a.calendaritem_owner_id = e.ROWID)"
        } else {
            "NULL"
        };
        let events_only = if s.has_column("CalendarItem", "entity_type") {
            "(e.entity_type IS NULL OR e.entity_type = 2)"
        } else {
            "1"
        };
        // Without a calendar_id column every event belongs to the one pseudo-calendar that
        // `calendars` returns (ROWID 0).
        let in_calendar = if s.has_column("CalendarItem", "calendar_id") {
            "e.calendar_id IS ?3"
        } else {
            "?3 = ?3"
        };
        let sql = format!(
            "SELECT e.ROWID, {uid}, {}, {}, {}, {}, {}, {}, {}, {}, {location}, {}, {}, {}, {}, {alarms}, {}, {}
             FROM CalendarItem e WHERE {events_only} AND {in_calendar} AND e.ROWID > ?1
             ORDER BY e.ROWID LIMIT ?2",
            c("summary"),
            c("description"),
            c("url"),
            c("start_date"),
            c("end_date"),
            c("all_day"),
            c("start_tz"),
            c("calendar_id"),
            rec("frequency"),
            rec("interval"),
            rec("count"),
            rec("end_date"),
            c("creation_date"),
            c("last_modified"),
        );
        let count_sql = format!("SELECT COUNT(*) FROM CalendarItem e WHERE {events_only}");
        Ok(CalendarDb {
            src,
            sql,
            count_sql,
        })
    }

    /// Number of events (reminders excluded).
    pub fn count(&self) -> Result<u64> {
        let n: i64 = self
            .src
            .conn()
            .query_row(&self.count_sql, [], |r| r.get(0))
            .db(self.src.file())?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The calendars, plus those only referenced by events (with no title). A database whose
    /// events name no calendar has one pseudo-calendar, ROWID 0, holding every event.
    pub fn calendars(&self) -> Result<Vec<CalendarInfo>> {
        let s = self.src.schema();
        let file = self.src.file();
        let mut v = Vec::new();
        if !s.has_column("CalendarItem", "calendar_id") {
            v.push(CalendarInfo {
                rowid: 0,
                title: Some("Calendar".into()),
                color: None,
            });
            return Ok(v);
        }
        if s.has_table("Calendar") {
            let sql = format!(
                "SELECT c.ROWID, {}, {} FROM Calendar c ORDER BY c.ROWID",
                s.col("Calendar", "c", "title"),
                s.col("Calendar", "c", "color")
            );
            let mut st = self.src.conn().prepare(&sql).db(file)?;
            let mut rows = st.query([]).db(file)?;
            while let Some(r) = rows.next().db(file)? {
                v.push(CalendarInfo {
                    rowid: int(get(r, 0)).unwrap_or(0),
                    title: nonempty(get(r, 1)),
                    color: nonempty(get(r, 2)),
                });
            }
        }
        if s.has_column("CalendarItem", "calendar_id") {
            let mut st = self
                .src
                .conn()
                .prepare("SELECT DISTINCT calendar_id FROM CalendarItem ORDER BY calendar_id")
                .db(file)?;
            let mut rows = st.query([]).db(file)?;
            while let Some(r) = rows.next().db(file)? {
                if let Some(id) = int(get(r, 0))
                    && !v.iter().any(|c| c.rowid == id)
                {
                    v.push(CalendarInfo {
                        rowid: id,
                        title: None,
                        color: None,
                    });
                }
            }
        }
        Ok(v)
    }

    /// The events of one calendar, ROWID order, streamed page by page.
    pub fn events(&self, calendar_id: i64) -> EventIter<'_> {
        let map = |r: &rusqlite::Row<'_>| {
            let t = |i| nonempty(get(r, i));
            let recurrence = int(get(r, 11)).map(|frequency| Recurrence {
                frequency,
                interval: int(get(r, 12)).filter(|i| *i >= 1).unwrap_or(1),
                count: int(get(r, 13)).filter(|c| *c > 0),
                until: cocoa(get(r, 14)),
            });
            Event {
                rowid: int(get(r, 0)).unwrap_or(0),
                uid: t(1),
                summary: t(2),
                description: t(3),
                url: t(4),
                start: cocoa(get(r, 5)),
                end: cocoa(get(r, 6)),
                all_day: flag(get(r, 7)),
                start_tz: t(8),
                calendar_id: int(get(r, 9)),
                location: t(10),
                recurrence,
                alarms: t(15)
                    .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
                    .unwrap_or_default(),
                created: cocoa(get(r, 16)),
                modified: cocoa(get(r, 17)),
            }
        };
        EventIter(Pager::new(
            self.src.conn(),
            self.src.file(),
            self.sql.clone(),
            Some(calendar_id),
            map,
            |e: &Event| e.rowid,
        ))
    }
}

/// The iterator of [`CalendarDb::events`].
pub struct EventIter<'a>(Pager<'a, Event>);

impl Iterator for EventIter<'_> {
    type Item = Result<Event>;
    fn next(&mut self) -> Option<Result<Event>> {
        self.0.next()
    }
}
