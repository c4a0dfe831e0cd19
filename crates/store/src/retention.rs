//! Retention, as iMazing users know it: snapshots may use extra space (beyond one complete
//! backup) up to a budget, by default half the first backup. Over budget, the oldest
//! snapshots older than the retention period go first; a locked snapshot and the latest one
//! are never deleted. Deleting asks first unless the device's settings say not to; a run that
//! cannot ask reports what it would delete and keeps everything unless told `--yes`.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::error::Result;
use crate::library::{Library, SnapshotInfo};
use crate::share;

/// Why a snapshot is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeepReason {
    /// The newest snapshot is never deleted.
    Latest,
    /// Locked by the user.
    Locked,
    /// Younger than the retention period.
    TooYoung,
    /// The extra space is within the budget.
    WithinBudget,
}

/// A retention decision for one device.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Device.
    pub udid: String,
    /// Extra space used now (distinct bytes of all snapshots minus the latest's size).
    pub extra_bytes: u64,
    /// The budget for extra space.
    pub budget_bytes: u64,
    /// Minimum age before deletion, in days.
    pub retention_days: u32,
    /// Snapshots to delete, oldest first.
    pub delete: Vec<SnapshotInfo>,
    /// Estimated extra space after deleting them.
    pub extra_after: u64,
    /// Snapshots kept, with the reason.
    pub keep: Vec<(String, KeepReason)>,
}

/// Decides what to delete. `snaps` oldest first; `extra` and `budget` in bytes.
pub fn plan(
    udid: &str,
    snaps: &[SnapshotInfo],
    extra: u64,
    budget: u64,
    retention_days: u32,
    now: SystemTime,
) -> Plan {
    let min_age = Duration::from_secs(u64::from(retention_days) * 86_400);
    let mut left = extra;
    let mut p = Plan {
        udid: udid.to_string(),
        extra_bytes: extra,
        budget_bytes: budget,
        retention_days,
        delete: Vec::new(),
        extra_after: extra,
        keep: Vec::new(),
    };
    let last = snaps.len().saturating_sub(1);
    for (i, s) in snaps.iter().enumerate() {
        let reason = if i == last {
            Some(KeepReason::Latest)
        } else if left <= budget {
            Some(KeepReason::WithinBudget)
        } else if s.locked {
            Some(KeepReason::Locked)
        } else if now
            .duration_since(s.system_time())
            .unwrap_or(Duration::ZERO)
            < min_age
        {
            Some(KeepReason::TooYoung)
        } else {
            None
        };
        match reason {
            Some(r) => p.keep.push((s.name.clone(), r)),
            None => {
                left = left.saturating_sub(s.usage.unique);
                p.delete.push(s.clone());
            }
        }
    }
    p.extra_after = left;
    p
}

/// How a prune run may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneMode {
    /// Only report.
    DryRun,
    /// Delete without asking (`--yes`).
    Yes,
    /// Ask through the callback when the settings say so.
    Interactive,
    /// No one to ask: delete only if the settings say not to ask; otherwise report and keep.
    NonInteractive,
}

/// What a prune run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PruneOutcome {
    /// Nothing needed deleting.
    NothingToDo,
    /// Deleted the plan's snapshots.
    Deleted,
    /// Dry run: nothing deleted.
    DryRun,
    /// The user said no.
    Declined,
    /// Confirmation needed but no one could be asked: nothing deleted.
    NeedsConfirmation,
}

/// The extra space of a device's snapshots and its budget.
pub fn usage_and_budget(lib: &Library, udid: &str, snaps: &[SnapshotInfo]) -> Result<(u64, u64)> {
    let roots: Vec<_> = snaps.iter().map(|s| s.path.clone()).collect();
    let distinct = share::distinct_bytes(&roots)?;
    let latest = snaps.last().map(|s| s.usage.size).unwrap_or(0);
    let extra = distinct.saturating_sub(latest);
    let budget = match lib.config().device(udid)?.budget_bytes {
        Some(b) => b,
        None => {
            let first = lib
                .device_meta(udid)?
                .first_backup_bytes
                .or_else(|| snaps.first().map(|s| s.usage.size))
                .unwrap_or(0);
            first / 2
        }
    };
    Ok((extra, budget))
}

/// Runs retention for `udid`. `confirm` is called (only in [`PruneMode::Interactive`], only
/// when the settings ask and there is something to delete) with the plan.
pub fn prune(
    lib: &Library,
    udid: &str,
    mode: PruneMode,
    confirm: &mut dyn FnMut(&Plan) -> bool,
) -> Result<(Plan, PruneOutcome)> {
    let lock = lib.lock(udid)?;
    let snaps = lib.snapshots(udid)?;
    let settings = lib.config().device(udid)?;
    let (extra, budget) = usage_and_budget(lib, udid, &snaps)?;
    let p = plan(
        udid,
        &snaps,
        extra,
        budget,
        settings.retention_days,
        lib.clock().now(),
    );
    if p.delete.is_empty() {
        return Ok((p, PruneOutcome::NothingToDo));
    }
    let go = match mode {
        PruneMode::DryRun => return Ok((p, PruneOutcome::DryRun)),
        PruneMode::Yes => true,
        _ if !settings.ask_before_delete => true,
        PruneMode::Interactive => {
            if !confirm(&p) {
                return Ok((p, PruneOutcome::Declined));
            }
            true
        }
        PruneMode::NonInteractive => false,
    };
    if !go {
        return Ok((p, PruneOutcome::NeedsConfirmation));
    }
    for s in &p.delete {
        lib.delete_locked(&lock, &s.name)?;
    }
    let gone: Vec<String> = p.delete.iter().map(|s| s.name.clone()).collect();
    lib.refresh_around(udid, &gone)?;
    Ok((p, PruneOutcome::Deleted))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::share::TreeUsage;
    use std::path::PathBuf;
    use std::time::UNIX_EPOCH;

    fn snap(day: u64, unique: u64, locked: bool) -> SnapshotInfo {
        SnapshotInfo {
            udid: "U".into(),
            name: format!("d{day:03}"),
            time: i64::try_from(day * 86_400).unwrap(),
            path: PathBuf::new(),
            device_name: None,
            ios_version: None,
            encrypted: false,
            usage: TreeUsage {
                files: 1,
                size: 1000,
                unique,
                unique_disk: unique,
            },
            locked,
            label: None,
        }
    }

    fn names(p: &Plan) -> Vec<&str> {
        p.delete.iter().map(|s| s.name.as_str()).collect()
    }

    const NOW: u64 = 100 * 86_400;

    #[test]
    fn within_budget_deletes_nothing() {
        let s = vec![
            snap(1, 100, false),
            snap(2, 100, false),
            snap(3, 100, false),
        ];
        let p = plan("U", &s, 200, 500, 30, UNIX_EPOCH + Duration::from_secs(NOW));
        assert!(p.delete.is_empty());
    }

    #[test]
    fn over_budget_deletes_oldest_until_under() {
        let s = vec![
            snap(1, 300, false),
            snap(2, 300, false),
            snap(3, 300, false),
            snap(99, 300, false),
        ];
        let p = plan("U", &s, 900, 400, 30, UNIX_EPOCH + Duration::from_secs(NOW));
        assert_eq!(names(&p), ["d001", "d002"]);
        assert_eq!(p.extra_after, 300);
    }

    #[test]
    fn never_locked_latest_or_young() {
        let s = vec![
            snap(1, 300, true),
            snap(80, 300, false),
            snap(2, 300, false),
            snap(3, 300, false),
        ];
        let p = plan(
            "U",
            &s,
            10_000,
            0,
            30,
            UNIX_EPOCH + Duration::from_secs(NOW),
        );
        assert_eq!(names(&p), ["d002"]);
        assert!(p.keep.contains(&("d001".into(), KeepReason::Locked)));
        assert!(p.keep.contains(&("d080".into(), KeepReason::TooYoung)));
        assert!(p.keep.contains(&("d003".into(), KeepReason::Latest)));
    }
}
