//! Fault safety: whatever goes wrong, the call fails with a clear error and a complete earlier
//! backup in the target folder is byte-for-byte unchanged.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use iosnap_device::{BackupOptions, DeviceErrorKind, DeviceSession, Error, backup};
use iosnap_simulator::FaultPlan;

/// A complete backup in `target`, then the phone changes (so the next run has work to do).
async fn baseline(state: &Path, scratch: &Path, target: &Path) -> String {
    let (sim, mux) =
        common::start(vec![common::device_config(state, 21, FaultPlan::default())]).await;
    let udid = sim.udids()[0].clone();
    let s = common::session(&mux, &udid, scratch).await;
    backup(&s, target, &BackupOptions::default(), |_| {})
        .await
        .unwrap();
    sim.device(&udid).unwrap().churn(0.3).unwrap();
    sim.shutdown().await;
    udid
}

/// Runs one backup against a simulator restarted with `faults`.
async fn faulty_backup(
    state: &Path,
    scratch: &Path,
    target: &Path,
    faults: FaultPlan,
    idle: Duration,
) -> iosnap_device::Result<iosnap_device::BackupSummary> {
    let (sim, mux) = common::start(vec![common::device_config(state, 21, faults)]).await;
    let udid = sim.udids()[0].clone();
    let mut opts = common::options(scratch);
    opts.idle_timeout = idle;
    let s = DeviceSession::connect_with(&mux, &udid, opts)
        .await
        .unwrap();
    let r = backup(&s, target, &BackupOptions::default(), |_| {}).await;
    assert!(
        !sim.device(&udid).unwrap().sync_lock_held(),
        "sync lock left held"
    );
    sim.shutdown().await;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_at_every_step_leaves_the_previous_backup_intact() {
    let dir = tempfile::tempdir().unwrap();
    let (state, target) = (dir.path().join("state"), dir.path().join("backups"));
    baseline(&state, dir.path(), &target).await;
    let before = common::tree(&target);
    let mut failed_steps = 0;
    let mut step = 1;
    loop {
        assert!(step < 200, "backup never completed");
        let faults = FaultPlan {
            drop_at_step: Some(step),
            ..FaultPlan::default()
        };
        match faulty_backup(&state, dir.path(), &target, faults, Duration::from_secs(5)).await {
            Err(e) => {
                assert!(matches!(e, Error::Disconnected { .. }), "step {step}: {e}");
                assert!(e.is_retryable());
                assert!(
                    common::tree(&target) == before,
                    "step {step}: folder changed after: {e}"
                );
                failed_steps += 1;
            }
            Ok(sum) => {
                assert!(!sum.full);
                break;
            }
        }
        step += 1;
    }
    assert!(
        failed_steps >= 5,
        "only {failed_steps} protocol steps exercised"
    );
    assert!(
        common::tree(&target) != before,
        "the final, unfaulted backup should have changed the folder"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_stall_byte_drop_and_disk_full_leave_the_folder_intact() {
    let dir = tempfile::tempdir().unwrap();
    let (state, target) = (dir.path().join("state"), dir.path().join("backups"));
    baseline(&state, dir.path(), &target).await;
    let before = common::tree(&target);
    let cases: Vec<(FaultPlan, &str)> = vec![
        (
            FaultPlan {
                garbage_at_step: Some(6),
                ..FaultPlan::default()
            },
            "garbage",
        ),
        (
            FaultPlan {
                stall_at_step: Some(6),
                ..FaultPlan::default()
            },
            "stall",
        ),
        (
            FaultPlan {
                drop_after_bytes: Some(3000),
                ..FaultPlan::default()
            },
            "bytes",
        ),
        (
            FaultPlan {
                disk_full: true,
                ..FaultPlan::default()
            },
            "disk-full",
        ),
    ];
    for (faults, name) in cases {
        let e = faulty_backup(&state, dir.path(), &target, faults, Duration::from_secs(1))
            .await
            .unwrap_err();
        match name {
            "garbage" => assert!(matches!(e, Error::Protocol { .. }), "{name}: {e}"),
            "stall" => assert!(matches!(e, Error::Timeout { .. }), "{name}: {e}"),
            "bytes" => assert!(matches!(e, Error::Disconnected { .. }), "{name}: {e}"),
            _ => assert!(
                matches!(
                    e,
                    Error::Device {
                        code: 105,
                        kind: DeviceErrorKind::InsufficientSpace,
                        ..
                    }
                ),
                "{name}: {e}"
            ),
        }
        assert!(
            common::tree(&target) == before,
            "{name}: folder changed after: {e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_sync_lock_is_retried_then_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (state, target) = (dir.path().join("state"), dir.path().join("backups"));
    // Held for 3 attempts: our 5 attempts get it.
    let faults = FaultPlan {
        hold_sync_lock: Some(3),
        ..FaultPlan::default()
    };
    faulty_backup(&state, dir.path(), &target, faults, Duration::from_secs(5))
        .await
        .unwrap();
    let before = common::tree(&target);
    // Held forever: a clear, retryable error after the configured attempts; nothing changed.
    let faults = FaultPlan {
        hold_sync_lock: Some(u32::MAX),
        ..FaultPlan::default()
    };
    let e = faulty_backup(&state, dir.path(), &target, faults, Duration::from_secs(5))
        .await
        .unwrap_err();
    match &e {
        Error::SyncLockBusy { attempts, .. } => assert_eq!(*attempts, 5),
        other => panic!("expected SyncLockBusy, got {other}"),
    }
    assert!(e.is_retryable());
    assert!(e.to_string().contains("sync lock"));
    assert!(common::tree(&target) == before);
}
