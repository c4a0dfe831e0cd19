//! Calendar export: one iCalendar file (RFC 5545) per calendar, `<title> (<id>).ics`.
//! Timed events are written in UTC; all-day events as floating dates (`VALUE=DATE`, the end
//! exclusive as the RFC wants, where iOS stores the last second of the last day).

use std::io::Write;

use super::text::{fold, vtext};
use super::{ExportReport, OutDir, ProgressFn, finish, safe_name};
use crate::calendar::{CalendarDb, Event};
use crate::error::{IoContext, Result};

fn utc(unix: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(unix, 0).map(|d| d.format("%Y%m%dT%H%M%SZ").to_string())
}

fn date(unix: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(unix, 0).map(|d| d.format("%Y%m%d").to_string())
}

/// One `VEVENT` (folded CRLF lines); `None` when the event has no usable start.
pub fn vevent(e: &Event, stamp: i64) -> Option<String> {
    let start = e.start?;
    let mut s = String::new();
    let mut line = |l: String| s.push_str(&fold(&l));
    line("BEGIN:VEVENT".into());
    let uid = e
        .uid
        .clone()
        .unwrap_or_else(|| format!("iosnap-calendaritem-{}", e.rowid));
    line(format!("UID:{}", vtext(&uid)));
    line(format!(
        "DTSTAMP:{}",
        utc(e.modified.or(e.created).unwrap_or(stamp))?
    ));
    if e.all_day {
        line(format!("DTSTART;VALUE=DATE:{}", date(start)?));
        // iOS ends all-day events on the last second of the last day; iCalendar's end is the
        // (exclusive) next day.
        let end = e.end.filter(|x| *x > start).unwrap_or(start) + 1;
        let end = (end + 86_399).div_euclid(86_400) * 86_400;
        line(format!(
            "DTEND;VALUE=DATE:{}",
            date(end.max(start + 86_400))?
        ));
    } else {
        line(format!("DTSTART:{}", utc(start)?));
        if let Some(end) = e.end.filter(|x| *x >= start) {
            line(format!("DTEND:{}", utc(end)?));
        }
    }
    if let Some(v) = &e.summary {
        line(format!("SUMMARY:{}", vtext(v)));
    }
    if let Some(v) = &e.location {
        line(format!("LOCATION:{}", vtext(v)));
    }
    if let Some(v) = &e.description {
        line(format!("DESCRIPTION:{}", vtext(v)));
    }
    if let Some(v) = &e.url {
        // A URI value: not text-escaped, but it must not break the line.
        let v: String = v.chars().filter(|c| !c.is_control()).collect();
        line(format!("URL:{v}"));
    }
    if let Some(c) = e.created.and_then(utc) {
        line(format!("CREATED:{c}"));
    }
    if let Some(m) = e.modified.and_then(utc) {
        line(format!("LAST-MODIFIED:{m}"));
    }
    if let Some(r) = &e.recurrence
        && let Some(freq) = r.freq()
    {
        let mut rule = format!("RRULE:FREQ={freq}");
        if r.interval > 1 {
            rule.push_str(&format!(";INTERVAL={}", r.interval));
        }
        if let Some(c) = r.count {
            rule.push_str(&format!(";COUNT={c}"));
        } else if let Some(u) = r.until {
            let u = if e.all_day { date(u) } else { utc(u) };
            if let Some(u) = u {
                rule.push_str(&format!(";UNTIL={u}"));
            }
        }
        line(rule);
    }
    for a in &e.alarms {
        line("BEGIN:VALARM".into());
        line("ACTION:DISPLAY".into());
        line(format!(
            "DESCRIPTION:{}",
            vtext(e.summary.as_deref().unwrap_or("Reminder"))
        ));
        let sign = if *a < 0 { "-" } else { "" };
        line(format!("TRIGGER:{sign}PT{}S", a.unsigned_abs()));
        line("END:VALARM".into());
    }
    line("END:VEVENT".into());
    Some(s)
}

/// Writes one `.ics` per calendar.
pub(crate) fn export(
    db: &CalendarDb,
    out: &OutDir,
    progress: ProgressFn<'_>,
) -> Result<ExportReport> {
    let mut report = ExportReport::default();
    let total = db.count()?;
    progress(0, total);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    for cal in db.calendars()? {
        let title = cal
            .title
            .clone()
            .unwrap_or_else(|| format!("Calendar {}", cal.rowid));
        let short: String = title.chars().take(60).collect();
        let (path, mut w) = out.file(&format!("{} ({}).ics", safe_name(&short), cal.rowid))?;
        let mut head = String::new();
        for l in [
            "BEGIN:VCALENDAR".to_string(),
            "VERSION:2.0".into(),
            "PRODID:-//iosnap//iosnap-datasets//EN".into(),
            "CALSCALE:GREGORIAN".into(),
            format!("X-WR-CALNAME:{}", vtext(&title)),
        ] {
            head.push_str(&fold(&l));
        }
        w.write_all(head.as_bytes()).at(&path)?;
        for e in db.events(cal.rowid) {
            let e = e?;
            match vevent(&e, stamp) {
                Some(s) => {
                    w.write_all(s.as_bytes()).at(&path)?;
                    report.records += 1;
                }
                None => report.skip(format!("event {}: no valid start date", e.rowid)),
            }
            if report.records.is_multiple_of(500) {
                progress(report.records, total);
            }
        }
        w.write_all(b"END:VCALENDAR\r\n").at(&path)?;
        finish(&path, w)?;
        report.files_written += 1;
        report.groups += 1;
    }
    progress(report.records, total);
    Ok(report)
}
