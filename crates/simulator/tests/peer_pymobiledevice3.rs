//! The second real peer: pymobiledevice3 (PyPI, pinned in tests/peers/requirements.txt) —
//! backup, incremental, encrypted backup, info, list and restore into another phone.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// The peers venv (created by scripts/peers-venv.sh); `None` = skip.
fn pmd3() -> Option<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("scripts/peers-venv.sh");
    let out = std::process::Command::new("bash").arg(&script).output();
    let venv = match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        Ok(o) => {
            if skip_peers() {
                eprintln!("skipping: peers venv unavailable and IOSNAP_SKIP_PEERS=1");
                return None;
            }
            panic!(
                "scripts/peers-venv.sh failed (it pip-installs tests/peers/requirements.txt, incl. pymobiledevice3); \
                 run it by hand or set IOSNAP_SKIP_PEERS=1:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Err(e) => panic!("cannot run {}: {e}", script.display()),
    };
    let bin = venv.join("bin/pymobiledevice3");
    if bin.is_file() {
        return Some(bin.display().to_string());
    }
    if skip_peers() {
        return None;
    }
    panic!(
        "{} missing: add pymobiledevice3 to tests/peers/requirements.txt and rerun scripts/peers-venv.sh",
        bin.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymobiledevice3_backup_incremental_encrypted_restore() {
    let Some(bin) = tokio::task::spawn_blocking(pmd3).await.expect("join") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = start(&tmp.path().join("state"), 2).await;
    let (a, b) = (sim.udids()[0].clone(), sim.udids()[1].clone());
    let (ha, hb) = (sim.device(&a).expect("a"), sim.device(&b).expect("b"));
    let out = tmp.path().join("backups");
    std::fs::create_dir_all(&out).expect("mkdir");
    let o = out.display().to_string();
    let mux = sim.addr();
    let m = mux.to_string();
    let cwd = tmp.path().to_path_buf();
    let run = |args: Vec<String>| {
        let bin = bin.clone();
        let cwd = cwd.clone();
        async move {
            let r = tokio::task::spawn_blocking(move || {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                run_peer(&bin, &a, mux, &cwd)
            })
            .await
            .expect("join");
            assert!(r.0, "pymobiledevice3 failed:\n{}", r.1);
            r.1
        }
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let dir = out.join(&a);

    run(s(&["backup2", "backup", "--usbmux", &m, "--udid", &a, &o])).await;
    assert!(ha.counters().last_backup_full);
    tokio::task::block_in_place(|| assert_backup_matches(&dir, &ha, None));

    ha.churn(0.3).expect("churn");
    run(s(&["backup2", "backup", "--usbmux", &m, "--udid", &a, &o])).await;
    let c = ha.counters();
    assert!(!c.last_backup_full, "{c:?}");
    tokio::task::block_in_place(|| assert_backup_matches(&dir, &ha, None));

    let text = run(s(&["backup2", "info", "--usbmux", &m, "--udid", &a, &o])).await;
    assert!(
        text.contains("Target Identifier") || text.contains(&a),
        "{text}"
    );
    let text = run(s(&["backup2", "list", "--usbmux", &m, "--udid", &a, &o])).await;
    assert!(text.contains("HomeDomain,Library/SMS/sms.db"), "{text}");

    run(s(&[
        "backup2",
        "restore",
        "--usbmux",
        &m,
        "--udid",
        &b,
        "--source",
        &a,
        "--system",
        "--no-reboot",
        &o,
    ]))
    .await;
    assert!(hb.counters().files_restored_last_restore > 10);
    assert_restored(&ha, &hb);

    run(s(&[
        "backup2",
        "encryption",
        "--usbmux",
        &m,
        "--udid",
        &a,
        "on",
        "pmd3-pw",
    ]))
    .await;
    assert!(ha.will_encrypt());
    run(s(&[
        "backup2", "backup", "--usbmux", &m, "--udid", &a, "--full", &o,
    ]))
    .await;
    tokio::task::block_in_place(|| assert_backup_matches(&dir, &ha, Some("pmd3-pw")));
    sim.shutdown().await;
}
