//! "Locked device": a phone that shows its passcode prompt before a backup (iOS ≥ 16.1). The
//! daemon waits at the prompt (bounded by its passcode timeout), `daemon status` — another
//! process, reading the state file — says "locked device" meanwhile, the backup goes on when
//! the passcode is entered; when nobody enters it, the attempt ends, the phone is retried with
//! backoff and shown as "locked device" until then.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{at, automatic_on, daemon_config, pass_one, set_time, small_phone, start_sim};
use iosnap_daemon::{Daemon, DaemonConfig, Outcome, Waiting};
use iosnap_simulator::PasscodePrompt;
use iosnap_store::{ConfigDir, ManualClock};

fn daemon(
    t: &Path,
    addr: &str,
    clock: &Arc<ManualClock>,
    passcode_timeout: Duration,
) -> Arc<Daemon> {
    Daemon::new(DaemonConfig {
        passcode_timeout,
        ..daemon_config(t, addr, clock)
    })
}

async fn pass(d: Arc<Daemon>) -> Outcome {
    pass_one(&d).await
}

/// Waits (bounded) for a condition that another task makes true.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_waits_at_the_passcode_prompt_and_shows_a_locked_device() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let mut dev = small_phone(&t.join("sim"), 31, 5, 16 << 10);
    dev.passcode_prompt = PasscodePrompt::UntilDismissed;
    let sim = start_sim("127.0.0.1:0", vec![dev]).await;
    let addr = sim.addr().to_string();
    let udid = sim.udids().remove(0);
    let phone = sim.device(&udid).unwrap();
    let config = ConfigDir::at(t.join("config"));
    automatic_on(&config, &udid);
    let clock = Arc::new(ManualClock::new(at(0, 12, 0)));

    // The prompt goes up: the backup waits, and `daemon status` says why.
    let d = daemon(t, &addr, &clock, Duration::from_secs(300));
    let running = tokio::spawn(pass(d.clone()));
    until("the daemon to see the prompt", || {
        d.passcode_prompt_since(&udid).is_some()
    })
    .await;
    assert!(phone.passcode_prompt_shown());
    let st = iosnap_daemon::status(&daemon(t, &addr, &clock, Duration::from_secs(300)), &[]).await;
    assert_eq!(
        st[0].waiting,
        Some(Waiting::DeviceLocked { retry: None }),
        "{st:?}"
    );
    assert!(st[0].state.starts_with("locked device"), "{}", st[0].state);
    let json = serde_json::to_value(&st[0]).unwrap();
    assert_eq!(json["waiting"]["reason"], "device_locked");

    // The passcode is entered: the backup goes on and the prompt is no longer recorded.
    phone.dismiss_passcode_prompt();
    let o = running.await.unwrap();
    assert!(matches!(o, Outcome::BackedUp(_)), "{o:?}");
    assert_eq!(d.passcode_prompt_since(&udid), None);
    let st = iosnap_daemon::status(&daemon(t, &addr, &clock, Duration::from_secs(300)), &[]).await;
    assert!(
        matches!(st[0].waiting, Some(Waiting::NotDueUntil { .. })),
        "{st:?}"
    );
    drop(d);

    // Next day nobody enters it: the wait is bounded, the attempt ends as "locked", and the
    // phone is retried after the backoff (not hammered with prompts), shown as locked.
    set_time(&clock, at(1, 12, 0));
    let d = daemon(t, &addr, &clock, Duration::from_secs(1));
    let o = pass(d.clone()).await;
    assert!(
        matches!(&o, Outcome::Locked(m) if m.contains("passcode")),
        "{o:?}"
    );
    assert_eq!(d.passcode_prompt_since(&udid), None);
    assert!(d.failures(&udid).locked);
    phone.dismiss_passcode_prompt();
    let o = pass(d.clone()).await;
    assert_eq!(
        match o {
            Outcome::Waiting(w) => w,
            other => panic!("{other:?}"),
        },
        Waiting::DeviceLocked {
            retry: Some(at(1, 12, 5))
        }
    );
    let st = iosnap_daemon::status(&daemon(t, &addr, &clock, Duration::from_secs(1)), &[]).await;
    assert_eq!(
        st[0].waiting,
        Some(Waiting::DeviceLocked {
            retry: Some(at(1, 12, 5))
        })
    );
    assert_eq!(
        iosnap_store::Library::open(&t.join("lib"), config.clone(), clock.clone())
            .unwrap()
            .snapshots(&udid)
            .unwrap()
            .len(),
        1,
        "no partial snapshot"
    );

    // Unlocked again (no prompt) and past the retry time: backed up, the failure forgotten.
    phone.set_passcode_prompt(PasscodePrompt::Off);
    set_time(&clock, at(1, 12, 5));
    let o = pass(d.clone()).await;
    assert!(matches!(o, Outcome::BackedUp(_)), "{o:?}");
    assert_eq!(d.failures(&udid).count, 0);
    sim.shutdown().await;
}
