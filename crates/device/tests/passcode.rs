//! The passcode prompt of iOS ≥ 16.1: the phone posts
//! `com.apple.LocalAuthentication.ui.presented` on notification_proxy and sends nothing on
//! mobilebackup2 until the user enters the passcode (`…ui.dismissed`). The host must report
//! it, must not let its idle timeout kill the backup meanwhile, and must give up clearly after
//! `BackupOptions::passcode_timeout`.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use iosnap_device::{BackupOptions, DeviceErrorKind, DeviceSession, Error, SessionOptions, backup};
use iosnap_simulator::{FaultPlan, PasscodePrompt};

/// Every change of `Progress::passcode_prompt` the callback saw, in order.
fn transitions(seen: &[bool]) -> Vec<bool> {
    let mut out: Vec<bool> = Vec::new();
    let mut last = false;
    for &s in seen {
        if s != last {
            out.push(s);
            last = s;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_waits_for_the_passcode_longer_than_the_idle_timeout() {
    let t = tempfile::tempdir().unwrap();
    let mut cfg = device_config(&t.path().join("dev"), 41, FaultPlan::default());
    cfg.passcode_prompt = PasscodePrompt::UntilDismissed;
    let (sim, mux) = start(vec![cfg]).await;
    let udid = sim.udids()[0].clone();
    let h = sim.device(&udid).unwrap();
    let idle = Duration::from_secs(1);
    let opts = SessionOptions {
        idle_timeout: idle,
        ..options(t.path())
    };
    let s = DeviceSession::connect_with(&mux, &udid, opts)
        .await
        .unwrap();
    let target = t.path().join("backup");
    std::fs::create_dir_all(&target).unwrap();

    // The "user": once the host reports the prompt, stays away for several idle timeouts,
    // then enters the passcode.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let user = {
        let h = h.clone();
        tokio::spawn(async move {
            rx.recv().await.expect("the prompt was reported");
            assert!(h.passcode_prompt_shown());
            // Not synchronisation: the point is to let more than one idle timeout pass.
            tokio::time::sleep(idle * 3).await;
            h.dismiss_passcode_prompt();
        })
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let sum = backup(&s, &target, &BackupOptions::default(), move |p| {
        seen2.lock().unwrap().push(p.passcode_prompt);
        if p.passcode_prompt {
            let _ = tx.send(());
        }
    })
    .await
    .unwrap();
    user.await.unwrap();
    assert!(sum.files_received > 10, "{sum:?}");
    assert_eq!(transitions(&seen.lock().unwrap()), vec![true, false]);
    assert_eq!(h.counters().passcode_prompts, 1);
    assert!(!h.passcode_prompt_shown());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_nobody_answers_ends_with_a_clear_error() {
    let t = tempfile::tempdir().unwrap();
    let mut cfg = device_config(&t.path().join("dev"), 42, FaultPlan::default());
    cfg.passcode_prompt = PasscodePrompt::UntilDismissed;
    let (sim, mux) = start(vec![cfg]).await;
    let udid = sim.udids()[0].clone();
    let h = sim.device(&udid).unwrap();
    let s = session(&mux, &udid, t.path()).await;
    let target = t.path().join("backup");
    std::fs::create_dir_all(&target).unwrap();
    let opts = BackupOptions {
        passcode_timeout: Duration::from_millis(300),
        ..BackupOptions::default()
    };
    let mut saw_prompt = false;
    let e = backup(&s, &target, &opts, |p| saw_prompt |= p.passcode_prompt)
        .await
        .unwrap_err();
    assert!(saw_prompt);
    assert!(matches!(e, Error::PasscodeTimeout { .. }), "{e}");
    assert_eq!(
        e.device_error_kind(),
        Some(DeviceErrorKind::PasscodeTimeout)
    );
    assert!(e.is_retryable());
    assert!(e.to_string().contains("enter the passcode"), "{e}");
    assert!(!h.sync_lock_held(), "the sync lock was released");
    assert!(
        std::fs::read_dir(&target).unwrap().next().is_none(),
        "nothing was left in the target folder"
    );

    // Once the user answers, the same phone backs up.
    h.set_passcode_prompt(PasscodePrompt::For(Duration::from_millis(50)));
    h.dismiss_passcode_prompt();
    let mut seen = Vec::new();
    backup(&s, &target, &opts, |p| seen.push(p.passcode_prompt))
        .await
        .unwrap();
    assert_eq!(transitions(&seen), vec![true, false]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_prompt_no_report() {
    let t = tempfile::tempdir().unwrap();
    let (sim, mux) = start(vec![device_config(
        &t.path().join("dev"),
        43,
        FaultPlan::default(),
    )])
    .await;
    let udid = sim.udids()[0].clone();
    let s = session(&mux, &udid, t.path()).await;
    let target = t.path().join("backup");
    std::fs::create_dir_all(&target).unwrap();
    let mut seen = Vec::new();
    backup(&s, &target, &BackupOptions::default(), |p| {
        seen.push(p.passcode_prompt)
    })
    .await
    .unwrap();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|p| !p));
    assert_eq!(sim.device(&udid).unwrap().counters().passcode_prompts, 0);
    sim.shutdown().await;
}
