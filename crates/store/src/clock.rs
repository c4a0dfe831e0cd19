//! Time, injected: retention decisions and snapshot names depend on "now", and tests must be
//! able to fix it (a month of snapshots in a millisecond).

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDateTime, Utc};

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock tests set and advance by hand.
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    /// A clock showing `t`.
    pub fn new(t: SystemTime) -> Self {
        ManualClock(Mutex::new(t))
    }
    /// A clock showing `secs` seconds after the Unix epoch.
    pub fn at_unix(secs: u64) -> Self {
        Self::new(UNIX_EPOCH + Duration::from_secs(secs))
    }
    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Format of snapshot folder names: sortable, colon-free (valid on every filesystem), UTC.
pub const NAME_FORMAT: &str = "%Y-%m-%dT%H%M%SZ";

/// The snapshot folder name for time `t` (`2026-11-24T213000Z`).
pub fn snapshot_name(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).format(NAME_FORMAT).to_string()
}

/// Parses a snapshot folder name back to its time; `None` for anything else (so stray folders
/// are never taken for snapshots).
pub fn parse_snapshot_name(name: &str) -> Option<SystemTime> {
    if name.len() != 18 {
        return None;
    }
    let naive = NaiveDateTime::parse_from_str(name, NAME_FORMAT).ok()?;
    Some(SystemTime::from(naive.and_utc()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn name_round_trips() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_555_800);
        let n = snapshot_name(t);
        assert_eq!(n, "2026-11-24T213000Z");
        assert_eq!(parse_snapshot_name(&n), Some(t));
    }

    #[test]
    fn rejects_other_names() {
        for n in [
            ".staging-x",
            "2026-11-24T21:30:00Z",
            "latest",
            "2026-11-24T213000",
            "",
        ] {
            assert_eq!(parse_snapshot_name(n), None, "{n}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = parse_snapshot_name(&s);
        }

        #[test]
        fn any_second_round_trips(secs in 0u64..4_000_000_000) {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            prop_assert_eq!(parse_snapshot_name(&snapshot_name(t)), Some(t));
        }
    }
}
