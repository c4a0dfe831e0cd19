//! When is a device due for an automatic backup? A pure function of the settings, the last
//! successful backup, the local time, the battery and the connection, so every rule ("not
//! twice a day", "not below the threshold", "not outside the window") is tested without a
//! phone or a clock.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Days, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};
use iosnap_store::DeviceSettings;
use iosnap_store::settings::{Frequency, Window, parse_frequency, parse_window};
use serde::Serialize;

/// Everything the decision depends on besides the settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    /// Now.
    pub now: SystemTime,
    /// The local time zone's offset from UTC at `now` (the daemon passes the system's).
    pub offset: FixedOffset,
    /// The last successful backup (any snapshot, a manual one included).
    pub last_success: Option<SystemTime>,
    /// Battery percentage, when the phone reported one.
    pub battery_level: Option<u64>,
    /// Whether the phone is charging, when it reported it.
    pub charging: Option<bool>,
    /// Attached over the network (Wi-Fi) rather than by cable.
    pub network: bool,
    /// Automatic backups that failed in a row since the last success.
    pub failures: u32,
    /// When the last failure happened.
    pub last_failure: Option<SystemTime>,
    /// The last failure was a locked phone (its passcode prompt timed out, or it refused
    /// because it is locked): the retry is shown as "locked device", not as a plain failure.
    pub last_failure_locked: bool,
}

/// Why a device is not backed up now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Waiting {
    /// Automatic backups are off for the device.
    Disabled,
    /// The device is on Wi-Fi and its settings allow only cable backups.
    WifiNotAllowed,
    /// Earlier attempts failed; the next one waits until `until`.
    Backoff {
        /// Earliest retry.
        #[serde(with = "rfc3339")]
        until: SystemTime,
        /// Failures in a row.
        failures: u32,
    },
    /// A backup already succeeded in the current period; the next is due at `until`.
    NotDueUntil {
        /// When the next backup is due (window and battery permitting).
        #[serde(with = "rfc3339")]
        until: SystemTime,
    },
    /// Outside the device's time window; it opens at `opens`.
    Window {
        /// Next opening of the window.
        #[serde(with = "rfc3339")]
        opens: SystemTime,
    },
    /// The battery is below the device's threshold (and not charging, or charging does not
    /// override).
    Battery {
        /// Current level.
        level: u64,
        /// The threshold.
        threshold: u8,
    },
    /// The phone is locked: it shows its passcode prompt now (`retry` is `null`; the backup
    /// waits, bounded by the daemon's passcode timeout), or nobody answered it last time and
    /// the next attempt is at `retry`.
    DeviceLocked {
        /// When the daemon tries again; `None` while the prompt is up.
        #[serde(with = "rfc3339_opt")]
        retry: Option<SystemTime>,
    },
}

impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = |t: &SystemTime| DateTime::<Utc>::from(*t).format("%Y-%m-%dT%H:%M:%SZ");
        match self {
            Waiting::Disabled => f.write_str("automatic backups are off"),
            Waiting::WifiNotAllowed => f.write_str("on Wi-Fi, and Wi-Fi backups are off"),
            Waiting::Backoff { until, failures } => {
                write!(
                    f,
                    "{failures} failed attempt(s); retrying after {}",
                    t(until)
                )
            }
            Waiting::NotDueUntil { until } => write!(f, "backed up already; next due {}", t(until)),
            Waiting::Window { opens } => write!(f, "outside the time window; opens {}", t(opens)),
            Waiting::Battery { level, threshold } => {
                write!(f, "battery at {level}%, below the {threshold}% threshold")
            }
            Waiting::DeviceLocked { retry: None } => f.write_str(
                "locked device: waiting for the passcode to be entered on the phone \
                 (unlock your iPhone and enter the passcode to allow the backup)",
            ),
            Waiting::DeviceLocked { retry: Some(r) } => write!(
                f,
                "locked device: the passcode was not entered in time; unlock your iPhone \
                 (retrying after {})",
                t(r)
            ),
        }
    }
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Decision {
    /// Back it up now.
    Due,
    /// Not now, and why.
    Waiting(Waiting),
}

mod rfc3339_opt {
    use std::time::SystemTime;

    pub fn serialize<S: serde::Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }
}

mod rfc3339 {
    use std::time::SystemTime;

    use chrono::{DateTime, Utc};

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(
            &DateTime::<Utc>::from(*t)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
        )
    }
}

/// First retry delay after a failed automatic backup.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5 * 60);
/// Longest retry delay: a phone that keeps failing is still tried a few times a day.
pub const BACKOFF_MAX: Duration = Duration::from_secs(6 * 3600);

/// Delay before the next attempt after `failures` failures in a row: 5 min, 10, 20, … up to
/// 6 h (exponential, so a broken phone is not hammered, capped, so it is not forgotten).
pub fn backoff_delay(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let shift = (failures - 1).min(16);
    BACKOFF_BASE
        .checked_mul(1u32 << shift)
        .unwrap_or(BACKOFF_MAX)
        .min(BACKOFF_MAX)
}

fn local(t: SystemTime, offset: FixedOffset) -> DateTime<FixedOffset> {
    DateTime::<Utc>::from(t).with_timezone(&offset)
}

/// The instant of local midnight starting `date` (fixed offsets have no gaps).
fn midnight(date: NaiveDate, offset: FixedOffset) -> SystemTime {
    let naive = date.and_time(NaiveTime::MIN);
    match offset.from_local_datetime(&naive).single() {
        Some(t) => SystemTime::from(t),
        None => SystemTime::from(naive.and_utc()),
    }
}

/// When the next backup is due by frequency alone (`None` = due now: never backed up).
pub fn due_at(
    freq: Frequency,
    last: Option<SystemTime>,
    offset: FixedOffset,
) -> Option<SystemTime> {
    let last = last?;
    let day = local(last, offset).date_naive();
    Some(match freq {
        Frequency::Daily => midnight(day.checked_add_days(Days::new(1))?, offset),
        Frequency::Weekly => midnight(day.checked_add_days(Days::new(7))?, offset),
        Frequency::EveryHours(n) => last + Duration::from_secs(u64::from(n) * 3600),
    })
}

/// Whether `t` is inside `w`, and if not, when the window next opens.
pub fn window_opens(w: Window, t: SystemTime, offset: FixedOffset) -> Option<SystemTime> {
    if w.start == w.end {
        return None;
    }
    let lt = local(t, offset);
    let minute = {
        use chrono::Timelike;
        u16::try_from(lt.hour() * 60 + lt.minute()).unwrap_or(0)
    };
    let inside = if w.start < w.end {
        (w.start..w.end).contains(&minute)
    } else {
        minute >= w.start || minute < w.end
    };
    if inside {
        return None;
    }
    let today = lt.date_naive();
    let open_today = midnight(today, offset) + Duration::from_secs(u64::from(w.start) * 60);
    if open_today > t {
        Some(open_today)
    } else {
        let tomorrow = today.checked_add_days(Days::new(1)).unwrap_or(today);
        Some(midnight(tomorrow, offset) + Duration::from_secs(u64::from(w.start) * 60))
    }
}

/// Decides whether to back the device up now. Order of the checks: off, Wi-Fi, backoff,
/// frequency, window, battery — the first that says "not now" is the reason shown.
/// Unparsable `window`/`frequency` values (a hand-edited file) fall back to the defaults
/// (any time, daily) rather than stopping backups.
pub fn decide(s: &DeviceSettings, i: &Inputs) -> Decision {
    let wait = Decision::Waiting;
    if !s.automatic {
        return wait(Waiting::Disabled);
    }
    if i.network && !s.wifi {
        return wait(Waiting::WifiNotAllowed);
    }
    if i.failures > 0
        && let Some(failed) = i.last_failure
    {
        let until = failed + backoff_delay(i.failures);
        if i.now < until {
            if i.last_failure_locked {
                return wait(Waiting::DeviceLocked { retry: Some(until) });
            }
            return wait(Waiting::Backoff {
                until,
                failures: i.failures,
            });
        }
    }
    let freq = parse_frequency(&s.frequency).unwrap_or(Frequency::Daily);
    if let Some(until) = due_at(freq, i.last_success, i.offset)
        && i.now < until
    {
        return wait(Waiting::NotDueUntil { until });
    }
    if let Some(w) = s.window.as_deref().and_then(|w| parse_window(w).ok())
        && let Some(opens) = window_opens(w, i.now, i.offset)
    {
        return wait(Waiting::Window { opens });
    }
    if let Some(level) = i.battery_level
        && level < u64::from(s.min_battery)
        && !(s.charging_overrides && i.charging == Some(true))
    {
        return wait(Waiting::Battery {
            level,
            threshold: s.min_battery,
        });
    }
    Decision::Due
}

/// When the next backup is expected, ignoring battery and backoff: the later of the
/// frequency's due time and the window's next opening (`None` = now). For `daemon status`.
pub fn next_due(s: &DeviceSettings, i: &Inputs) -> Option<SystemTime> {
    let freq = parse_frequency(&s.frequency).unwrap_or(Frequency::Daily);
    let due = due_at(freq, i.last_success, i.offset)
        .filter(|d| *d > i.now)
        .unwrap_or(i.now);
    let open = s
        .window
        .as_deref()
        .and_then(|w| parse_window(w).ok())
        .and_then(|w| window_opens(w, due, i.offset))
        .unwrap_or(due);
    (open > i.now).then_some(open)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// 2026-11-24 00:00:00 UTC.
    const DAY0: u64 = 1_795_478_400;

    fn at(day: u64, h: u64, m: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(DAY0 + day * 86_400 + h * 3600 + m * 60)
    }

    fn settings() -> DeviceSettings {
        let mut s = DeviceSettings::default();
        s.set("automatic", "on").unwrap();
        s
    }

    fn inputs(now: SystemTime) -> Inputs {
        Inputs {
            now,
            offset: FixedOffset::east_opt(0).unwrap(),
            last_success: None,
            battery_level: Some(80),
            charging: Some(false),
            network: false,
            failures: 0,
            last_failure: None,
            last_failure_locked: false,
        }
    }

    #[test]
    fn day0_is_midnight_utc() {
        assert_eq!(
            DateTime::<Utc>::from(at(0, 0, 0)).to_rfc3339(),
            "2026-11-24T00:00:00+00:00"
        );
    }

    #[test]
    fn off_by_default_and_due_when_on_and_never_backed_up() {
        assert_eq!(
            decide(&DeviceSettings::default(), &inputs(at(0, 12, 0))),
            Decision::Waiting(Waiting::Disabled)
        );
        assert_eq!(decide(&settings(), &inputs(at(0, 12, 0))), Decision::Due);
    }

    #[test]
    fn window_exact_edges() {
        let mut s = settings();
        s.set("window", "09:00-18:00").unwrap();
        assert_eq!(
            decide(&s, &inputs(at(0, 8, 59))),
            Decision::Waiting(Waiting::Window { opens: at(0, 9, 0) })
        );
        assert_eq!(decide(&s, &inputs(at(0, 9, 0))), Decision::Due);
        assert_eq!(decide(&s, &inputs(at(0, 17, 59))), Decision::Due);
        assert_eq!(
            decide(&s, &inputs(at(0, 18, 0))),
            Decision::Waiting(Waiting::Window { opens: at(1, 9, 0) })
        );
    }

    #[test]
    fn window_wrapping_midnight() {
        let mut s = settings();
        s.set("window", "22:00-06:00").unwrap();
        assert_eq!(decide(&s, &inputs(at(0, 23, 0))), Decision::Due);
        assert_eq!(decide(&s, &inputs(at(0, 5, 59))), Decision::Due);
        assert_eq!(
            decide(&s, &inputs(at(0, 6, 0))),
            Decision::Waiting(Waiting::Window {
                opens: at(0, 22, 0)
            })
        );
    }

    #[test]
    fn window_uses_local_time() {
        let mut s = settings();
        s.set("window", "09:00-18:00").unwrap();
        let mut i = inputs(at(0, 7, 30)); // 07:30 UTC = 09:30 at UTC+2
        i.offset = FixedOffset::east_opt(2 * 3600).unwrap();
        assert_eq!(decide(&s, &i), Decision::Due);
        i.now = at(0, 16, 0); // 18:00 local
        assert_eq!(
            decide(&s, &i),
            Decision::Waiting(Waiting::Window { opens: at(1, 7, 0) })
        );
    }

    #[test]
    fn battery_threshold_and_charging_override() {
        let mut s = settings();
        s.set("min-battery", "30").unwrap();
        let mut i = inputs(at(0, 12, 0));
        i.battery_level = Some(29);
        assert_eq!(
            decide(&s, &i),
            Decision::Waiting(Waiting::Battery {
                level: 29,
                threshold: 30
            })
        );
        i.battery_level = Some(30);
        assert_eq!(decide(&s, &i), Decision::Due);
        i.battery_level = Some(5);
        i.charging = Some(true);
        assert_eq!(decide(&s, &i), Decision::Due);
        s.set("charging-overrides", "off").unwrap();
        assert!(matches!(
            decide(&s, &i),
            Decision::Waiting(Waiting::Battery { .. })
        ));
    }

    #[test]
    fn once_a_day_and_a_manual_backup_counts_until_the_next_day() {
        let s = settings();
        let mut i = inputs(at(0, 23, 59));
        i.last_success = Some(at(0, 0, 1)); // e.g. a manual backup just after midnight
        assert_eq!(
            decide(&s, &i),
            Decision::Waiting(Waiting::NotDueUntil { until: at(1, 0, 0) })
        );
        i.now = at(1, 0, 0);
        assert_eq!(decide(&s, &i), Decision::Due);
    }

    #[test]
    fn daily_follows_the_local_calendar_day() {
        let s = settings();
        let mut i = inputs(at(0, 23, 0)); // 01:00 on day 1 at UTC+2
        i.offset = FixedOffset::east_opt(2 * 3600).unwrap();
        i.last_success = Some(at(0, 21, 0)); // 23:00 on day 0 local
        assert_eq!(decide(&s, &i), Decision::Due);
    }

    #[test]
    fn weekly_and_every_n_hours() {
        let mut s = settings();
        s.set("frequency", "weekly").unwrap();
        let mut i = inputs(at(6, 23, 59));
        i.last_success = Some(at(0, 12, 0));
        assert_eq!(
            decide(&s, &i),
            Decision::Waiting(Waiting::NotDueUntil { until: at(7, 0, 0) })
        );
        i.now = at(7, 0, 0);
        assert_eq!(decide(&s, &i), Decision::Due);

        s.set("frequency", "every 6 hours").unwrap();
        i.last_success = Some(at(0, 12, 0));
        i.now = at(0, 17, 59);
        assert_eq!(
            decide(&s, &i),
            Decision::Waiting(Waiting::NotDueUntil {
                until: at(0, 18, 0)
            })
        );
        i.now = at(0, 18, 0);
        assert_eq!(decide(&s, &i), Decision::Due);
    }

    #[test]
    fn wifi_can_be_refused() {
        let mut s = settings();
        let mut i = inputs(at(0, 12, 0));
        i.network = true;
        assert_eq!(decide(&s, &i), Decision::Due);
        s.set("wifi", "off").unwrap();
        assert_eq!(decide(&s, &i), Decision::Waiting(Waiting::WifiNotAllowed));
    }

    #[test]
    fn exponential_backoff_after_failures() {
        assert_eq!(backoff_delay(0), Duration::ZERO);
        assert_eq!(backoff_delay(1), Duration::from_secs(300));
        assert_eq!(backoff_delay(2), Duration::from_secs(600));
        assert_eq!(backoff_delay(3), Duration::from_secs(1200));
        assert_eq!(backoff_delay(10), BACKOFF_MAX);
        assert_eq!(backoff_delay(u32::MAX), BACKOFF_MAX);
        let s = settings();
        let mut i = inputs(at(0, 12, 9));
        i.failures = 2;
        i.last_failure = Some(at(0, 12, 0));
        assert_eq!(
            decide(&s, &i),
            Decision::Waiting(Waiting::Backoff {
                until: at(0, 12, 10),
                failures: 2
            })
        );
        i.now = at(0, 12, 10);
        assert_eq!(decide(&s, &i), Decision::Due);
    }

    #[test]
    fn a_locked_phone_is_retried_with_backoff_and_shown_as_locked() {
        let s = settings();
        let mut i = inputs(at(0, 12, 4));
        i.failures = 1;
        i.last_failure = Some(at(0, 12, 0));
        i.last_failure_locked = true;
        let d = decide(&s, &i);
        assert_eq!(
            d,
            Decision::Waiting(Waiting::DeviceLocked {
                retry: Some(at(0, 12, 5))
            })
        );
        let Decision::Waiting(w) = d else {
            unreachable!()
        };
        assert!(w.to_string().starts_with("locked device"), "{w}");
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["reason"], "device_locked");
        assert_eq!(json["retry"], "2026-11-24T12:05:00Z");
        let now = serde_json::to_value(Waiting::DeviceLocked { retry: None }).unwrap();
        assert_eq!(now["retry"], serde_json::Value::Null);
        i.now = at(0, 12, 5);
        assert_eq!(decide(&s, &i), Decision::Due);
    }

    #[test]
    fn next_due_combines_frequency_and_window() {
        let mut s = settings();
        s.set("window", "09:00-18:00").unwrap();
        let mut i = inputs(at(0, 20, 0));
        i.last_success = Some(at(0, 10, 0));
        assert_eq!(next_due(&s, &i), Some(at(1, 9, 0)));
        i.now = at(1, 10, 0);
        assert_eq!(next_due(&s, &i), None);
    }

    #[test]
    fn bad_hand_edited_values_fall_back_to_defaults() {
        let mut s = settings();
        s.window = Some("garbage".into());
        s.frequency = "sometimes".into();
        assert_eq!(decide(&s, &inputs(at(0, 3, 0))), Decision::Due);
    }
}
