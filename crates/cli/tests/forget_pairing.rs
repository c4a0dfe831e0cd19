//! `iosnap forget DEVICE` removes this computer's pairing with the phone (usbmuxd's record,
//! and the phone's trust through lockdown `Unpair`): afterwards the phone is out of reach
//! until it is paired again, which the next backup does.

mod common;

use common::{Sim, library_cmd, small_spec};

fn run(c: &mut std::process::Command) -> (bool, String, String) {
    let o = c.output().expect("run iosnap");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn device_error(t: &std::path::Path, mux: &str) -> Option<String> {
    let (ok, out, err) = run(library_cmd(t, Some(mux)).args(["devices", "--json"]));
    assert!(ok, "devices failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    v[0]["error"].as_str().map(str::to_string)
}

#[test]
fn forget_deletes_the_pairing_record_and_the_next_backup_pairs_again() {
    let t = tempfile::tempdir().expect("tmp");
    let sim = Sim::start(&t.path().join("sim"), vec![small_spec(61, 5, 20_000, 1)]);
    let udid = sim.udids[0].clone();
    let h = sim.device(&udid);
    assert!(h.has_pair_record());
    assert_eq!(device_error(t.path(), &sim.addr), None, "paired at first");

    let (ok, out, err) = run(library_cmd(t.path(), Some(&sim.addr)).args(["forget", &udid]));
    assert!(ok, "forget failed: {out}{err}");
    assert!(
        out.contains(&format!("Deleted the pairing record of {udid} (usbmuxd)")),
        "{out}"
    );
    assert!(out.contains("The phone forgot this computer too"), "{out}");
    assert!(!h.has_pair_record(), "usbmuxd no longer has the record");
    assert!(
        h.trusted_hosts().is_empty(),
        "the phone no longer trusts the host"
    );

    // Listing never pairs: the phone is now out of reach.
    let e = device_error(t.path(), &sim.addr).expect("an error for the unpaired phone");
    assert!(e.contains("not paired"), "{e}");

    // A backup pairs again (the simulated user taps Trust) and succeeds.
    let to = t.path().join("plain");
    let (ok, out, err) = run(library_cmd(t.path(), Some(&sim.addr)).args([
        "backup",
        "--device",
        &udid,
        "--to",
        to.to_str().expect("utf8"),
    ]));
    assert!(ok, "backup after forget failed: {out}{err}");
    assert!(h.has_pair_record());
    assert_eq!(h.counters().pairings, 1);
    assert_eq!(device_error(t.path(), &sim.addr), None, "paired again");

    // Forgetting twice is fine and says there is nothing left. (`backup --to` took the backup
    // lock in the library's device folder, so `forget` now asks about "backups": --yes.)
    let (ok, out, err) =
        run(library_cmd(t.path(), Some(&sim.addr)).args(["forget", &udid, "--yes"]));
    assert!(ok, "{out}{err}");
    assert!(out.contains("Deleted the pairing record"), "{out}");
    let (ok, out, err) =
        run(library_cmd(t.path(), Some(&sim.addr)).args(["forget", &udid, "--yes"]));
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!("No pairing record of {udid}")),
        "{out}"
    );
}
