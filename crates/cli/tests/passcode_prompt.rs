//! `iosnap backup` when the phone asks for its passcode first (iOS ≥ 16.1): one line telling
//! the user what to do, one when the prompt is gone, and the backup completes.

mod common;

use std::time::Duration;

use common::{Sim, library_cmd, small_spec};
use iosnap_simulator::PasscodePrompt;

#[test]
fn backup_tells_the_user_to_enter_the_passcode_once() {
    let t = tempfile::tempdir().expect("tmp");
    let sim = Sim::start(&t.path().join("sim"), vec![small_spec(62, 5, 20_000, 1)]);
    let udid = sim.udids[0].clone();
    let h = sim.device(&udid);
    h.set_passcode_prompt(PasscodePrompt::For(Duration::from_millis(300)));
    let to = t.path().join("plain");
    let o = library_cmd(t.path(), Some(&sim.addr))
        .args([
            "backup",
            "--device",
            &udid,
            "--to",
            to.to_str().expect("utf8"),
        ])
        .output()
        .expect("run iosnap");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        err.matches("Unlock your iPhone and enter its passcode to allow the backup")
            .count(),
        1,
        "{err}"
    );
    assert_eq!(err.matches("Passcode prompt closed").count(), 1, "{err}");
    assert_eq!(h.counters().passcode_prompts, 1);
    assert_eq!(h.counters().backups, 1);
}
