"""Parses .ics files with the `icalendar` package (an independent parser) and prints their events as JSON.

Usage: ics_dump.py FILE...  → {"FILE": {"name": X-WR-CALNAME, "events": [...]}, ...}
Used by crates/datasets/tests/export.rs to check iosnap's calendar export field by field.
"""
import json
import sys

import icalendar


def when(v):
    if v is None:
        return None
    return v.dt.isoformat()


def main(paths):
    out = {}
    for path in paths:
        with open(path, "rb") as f:
            cal = icalendar.Calendar.from_ical(f.read())
        events = []
        for ev in cal.walk("VEVENT"):
            rrule = ev.get("RRULE")
            events.append({
                "uid": str(ev.get("UID")),
                "summary": str(ev.get("SUMMARY")) if ev.get("SUMMARY") is not None else None,
                "location": str(ev.get("LOCATION")) if ev.get("LOCATION") is not None else None,
                "dtstart": when(ev.get("DTSTART")),
                "dtend": when(ev.get("DTEND")),
                "rrule": rrule.to_ical().decode() if rrule is not None else None,
                "alarms": [int(a.get("TRIGGER").dt.total_seconds()) for a in ev.walk("VALARM")],
            })
        out[path] = {"name": str(cal.get("X-WR-CALNAME")), "events": events}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
