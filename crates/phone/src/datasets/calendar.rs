//! Calendar: `HomeDomain/Library/Calendar/Calendar.sqlitedb`. `CalendarItem` rows (Cocoa seconds,
//! `start_tz` "_float" for all-day events), `Recurrence` rows for repeating events, `Location`,
//! `Alarm`, `Calendar` and `Store`.

use rand::Rng;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::words::{self, pick};
use super::{Ctx, to_cocoa};
use crate::rng;

/// A recurrence rule (`Recurrence` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    /// 1 daily, 2 weekly, 3 monthly, 4 yearly.
    pub frequency: i64,
    /// Every `interval` periods.
    pub interval: i64,
    /// Number of occurrences (0 = unbounded).
    pub count: i64,
}

/// One event (`CalendarItem` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// ROWID.
    pub rowid: i64,
    /// UUID.
    pub uuid: String,
    /// Title.
    pub summary: String,
    /// Start, Unix seconds.
    pub start: i64,
    /// End, Unix seconds.
    pub end: i64,
    /// All-day event.
    pub all_day: bool,
    /// Time zone name ("_float" for all-day).
    pub start_tz: String,
    /// Calendar ROWID.
    pub calendar_id: i64,
    /// Location title, if any.
    pub location: Option<String>,
    /// Recurrence, if repeating.
    pub recurrence: Option<Recurrence>,
    /// Alarm offset in seconds before start, if any.
    pub alarm: Option<i64>,
    /// Created, Unix seconds.
    pub created: i64,
}

/// The calendar database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    /// (ROWID, title, colour) of the calendars.
    pub calendars: Vec<(i64, String, String)>,
    /// Events.
    pub events: Vec<Event>,
}

impl Calendar {
    pub(crate) fn generate(ctx: &Ctx, count: u32) -> Self {
        let calendars = vec![
            (1, "Home".to_string(), "#1BADF8".to_string()),
            (2, "Work".to_string(), "#FF9500".to_string()),
            (3, "Birthdays".to_string(), "#CC73E1".to_string()),
        ];
        let events = (0..count)
            .map(|i| {
                let mut r = rng::rng(ctx.seed, "event", u64::from(i));
                let created = ctx.timeline("event-created", i, ctx.base.events, 700);
                let birthday = r.gen_bool(0.1);
                let start = created + r.gen_range(0..60) * 86_400;
                let (summary, all_day, start, end, calendar_id, recurrence) = if birthday {
                    let day = start - start.rem_euclid(86_400);
                    (
                        format!("{}'s Birthday", pick(&mut r, words::FIRST)),
                        true,
                        day,
                        day + 86_399,
                        3,
                        Some(Recurrence {
                            frequency: 4,
                            interval: 1,
                            count: 0,
                        }),
                    )
                } else {
                    let s = start - start.rem_euclid(1800);
                    let rec = r.gen_bool(0.2).then(|| Recurrence {
                        frequency: if r.gen_bool(0.7) { 2 } else { 1 },
                        interval: 1,
                        count: if r.gen_bool(0.5) {
                            r.gen_range(4..20)
                        } else {
                            0
                        },
                    });
                    (
                        pick(&mut r, words::EVENTS).to_string(),
                        false,
                        s,
                        s + 1800 * r.gen_range(1..5),
                        r.gen_range(1..3),
                        rec,
                    )
                };
                Event {
                    rowid: i64::from(i) + 1,
                    uuid: rng::uuid(rng::key(ctx.seed, "event-uuid", u64::from(i))),
                    summary,
                    start,
                    end,
                    all_day,
                    start_tz: if all_day {
                        "_float".into()
                    } else {
                        "Europe/London".into()
                    },
                    calendar_id,
                    location: (!all_day && r.gen_bool(0.4))
                        .then(|| pick(&mut r, words::PLACES).0.to_string()),
                    recurrence,
                    alarm: r
                        .gen_bool(0.5)
                        .then(|| *pick(&mut r, &[300i64, 900, 3600, 86_400])),
                    created,
                }
            })
            .collect();
        Calendar { calendars, events }
    }

    /// Unix time of the newest change.
    pub fn last_change(&self) -> i64 {
        self.events.iter().map(|e| e.created).max().unwrap_or(0)
    }

    pub(crate) fn write(&self, c: &Connection) -> rusqlite::Result<()> {
        c.execute_batch(
            "CREATE TABLE _SqliteDatabaseProperties (key TEXT, value TEXT, UNIQUE(key));
             CREATE TABLE Store (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, default_alarm_offset INTEGER,
                type INTEGER, constraint_path TEXT, disabled INTEGER, UUID TEXT);
             CREATE TABLE Calendar (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, store_id INTEGER, title TEXT,
                flags INTEGER, color TEXT, symbolic_color_name TEXT, color_display_only INTEGER, type TEXT,
                UUID TEXT, display_order INTEGER);
             CREATE TABLE Location (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT, address TEXT,
                latitude REAL, longitude REAL, item_owner_id INTEGER);
             CREATE TABLE CalendarItem (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, summary TEXT, location_id INTEGER,
                description TEXT, start_date REAL, start_tz TEXT, end_date REAL, all_day INTEGER,
                calendar_id INTEGER, orig_item_id INTEGER DEFAULT 0, orig_date REAL, organizer_id INTEGER,
                self_attendee_id INTEGER, status INTEGER, availability INTEGER, privacy_level INTEGER, url TEXT,
                last_modified REAL, sequence_num INTEGER, birthday_id INTEGER, modified_properties INTEGER,
                external_tracking_status INTEGER, external_id TEXT, external_mod_tag TEXT, unique_identifier TEXT,
                external_schedule_id TEXT, external_rep BLOB, response_comment TEXT, hidden INTEGER,
                has_recurrences INTEGER, has_attendees INTEGER, UUID TEXT, entity_type INTEGER, priority INTEGER,
                due_date REAL, due_tz TEXT, due_all_day INTEGER, completion_date REAL, creation_date REAL,
                conference TEXT);
             CREATE TABLE Recurrence (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, frequency INTEGER, interval INTEGER,
                week_start INTEGER, count INTEGER, cached_end_date REAL, cached_end_date_tz TEXT, end_date REAL,
                specifier TEXT, owner_id INTEGER, external_id TEXT, UUID TEXT);
             CREATE TABLE Alarm (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, trigger_date REAL, trigger_interval INTEGER,
                type INTEGER, calendaritem_owner_id INTEGER, UUID TEXT);
             CREATE INDEX CalendarItemStartDate ON CalendarItem(start_date);
             INSERT INTO _SqliteDatabaseProperties VALUES ('CalendarDBVersion', '1400');
             INSERT INTO Store (ROWID, name, type, disabled, UUID) VALUES (1, 'iCloud', 1, 0, '3F0E2D1C-4B5A-4978-8A6B-5C4D3E2F1A0B');",
        )?;
        for (rowid, title, color) in &self.calendars {
            c.execute(
                "INSERT INTO Calendar (ROWID, store_id, title, flags, color, type, UUID, display_order)
                 VALUES (?1, 1, ?2, 0, ?3, 'calendar', ?4, ?1)",
                params![rowid, title, color, rng::uuid(*rowid as u64 ^ 0xCA1)],
            )?;
        }
        for e in &self.events {
            let location_id = match &e.location {
                Some(title) => {
                    let (lat, lon) = words::PLACES
                        .iter()
                        .find(|p| p.0 == title)
                        .map(|p| (p.1, p.2))
                        .unwrap_or((0.0, 0.0));
                    c.execute(
                        "INSERT INTO Location (title, latitude, longitude, item_owner_id) VALUES (?1, ?2, ?3, ?4)",
                        params![title, lat, lon, e.rowid],
                    )?;
                    Some(c.last_insert_rowid())
                }
                None => None,
            };
            c.execute(
                "INSERT INTO CalendarItem (ROWID, summary, location_id, start_date, start_tz, end_date, all_day,
                 calendar_id, status, last_modified, has_recurrences, has_attendees, UUID, unique_identifier,
                 entity_type, creation_date, hidden)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?10, 0, ?11, ?11, 2, ?9, 0)",
                params![
                    e.rowid,
                    e.summary,
                    location_id,
                    to_cocoa(e.start) as f64,
                    e.start_tz,
                    to_cocoa(e.end) as f64,
                    e.all_day,
                    e.calendar_id,
                    to_cocoa(e.created) as f64,
                    e.recurrence.is_some(),
                    e.uuid,
                ],
            )?;
            if let Some(rec) = &e.recurrence {
                c.execute(
                    "INSERT INTO Recurrence (frequency, interval, week_start, count, owner_id, UUID)
                     VALUES (?1, ?2, 1, ?3, ?4, ?5)",
                    params![rec.frequency, rec.interval, rec.count, e.rowid, rng::uuid(e.rowid as u64 ^ 0x8EC)],
                )?;
            }
            if let Some(offset) = e.alarm {
                c.execute(
                    "INSERT INTO Alarm (trigger_interval, type, calendaritem_owner_id, UUID) VALUES (?1, 1, ?2, ?3)",
                    params![-offset, e.rowid, rng::uuid(e.rowid as u64 ^ 0xA1A)],
                )?;
            }
        }
        Ok(())
    }
}
