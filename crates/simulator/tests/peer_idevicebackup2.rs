//! The real peer: Debian's idevicebackup2 (libimobiledevice 1.3.0) against the simulator —
//! full and incremental backups, info, list, restore into another simulated phone, and
//! encrypted backups switched on and off through the tool itself.

mod common;

use common::*;

const BIN: &str = "idevicebackup2";
const INSTALL: &str = "apt-get install -y libimobiledevice-utils";

fn ok(r: (bool, String), what: &str) -> String {
    assert!(r.0, "{what} failed:\n{}", r.1);
    r.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idevicebackup2_backup_incremental_info_list_restore() {
    let Some(bin) = peer(BIN, INSTALL) else {
        return;
    };
    let (_, version) = run_peer(
        &bin,
        &["-v"],
        "127.0.0.1:1".parse().expect("addr"),
        std::path::Path::new("/"),
    );
    eprintln!("peer: {}", version.trim());
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = start(&tmp.path().join("state"), 2).await;
    let (a, b) = (sim.udids()[0].clone(), sim.udids()[1].clone());
    let ha = sim.device(&a).expect("a");
    let hb = sim.device(&b).expect("b");
    let out = tmp.path().join("backups");
    std::fs::create_dir_all(&out).expect("mkdir");
    let o = out.display().to_string();
    let mux = sim.addr();
    let cwd = tmp.path().to_path_buf();
    let run = |args: Vec<String>| {
        let bin = bin.clone();
        let cwd = cwd.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                run_peer(&bin, &a, mux, &cwd)
            })
            .await
            .expect("join")
        }
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    // Full backup.
    let text = ok(run(s(&["-u", &a, "backup", &o])).await, "backup");
    assert!(text.contains("Backup Successful."), "{text}");
    let c = ha.counters();
    assert!(c.last_backup_full);
    assert!(c.files_uploaded_last_backup > 10);
    assert!(!ha.sync_lock_held(), "sync lock released");
    assert!(
        c.notifications_posted
            .iter()
            .any(|n| n == "com.apple.itunes-mobdev.syncDidFinish")
    );
    let dir = out.join(&a);
    tokio::task::block_in_place(|| assert_backup_matches(&dir, &ha, None));
    let full_uploads = c.files_uploaded_last_backup;

    // Incremental after some churn: only changes travel, removed files disappear.
    ha.churn(0.3).expect("churn");
    let text = ok(
        run(s(&["-u", &a, "backup", &o])).await,
        "incremental backup",
    );
    assert!(text.contains("Incremental backup mode"), "{text}");
    let c = ha.counters();
    assert!(!c.last_backup_full);
    assert!(
        c.files_uploaded_last_backup > 0 && c.files_uploaded_last_backup < full_uploads,
        "{c:?}"
    );
    assert!(c.files_removed_last_backup > 0, "{c:?}");
    tokio::task::block_in_place(|| assert_backup_matches(&dir, &ha, None));

    // Nothing changed: nothing uploaded.
    ok(run(s(&["-u", &a, "backup", &o])).await, "no-change backup");
    assert_eq!(ha.counters().files_uploaded_last_backup, 0);

    // --full forces everything again.
    ok(
        run(s(&["-u", &a, "backup", "--full", &o])).await,
        "full backup",
    );
    assert!(ha.counters().last_backup_full);
    tokio::task::block_in_place(|| assert_backup_matches(&dir, &ha, None));

    // Info and List.
    let text = ok(run(s(&["-u", &a, "info", &o])).await, "info");
    assert!(
        text.contains(&a.to_uppercase()) || text.contains(&a),
        "{text}"
    );
    let text = ok(run(s(&["-u", &a, "list", &o])).await, "list");
    assert!(text.contains("Domain,RelativePath,FileID"), "{text}");
    assert!(
        text.contains(
            "HomeDomain,Library/SMS/sms.db,3d0d7e5fb2ce288813306e4d4636395e047a3d28,file"
        ),
        "{text}"
    );

    // Restore A's backup into B (a different phone).
    let text = ok(
        run(s(&[
            "-u",
            &b,
            "-s",
            &a,
            "restore",
            "--system",
            "--no-reboot",
            &o,
        ]))
        .await,
        "restore",
    );
    assert!(text.contains("Restore Successful"), "{text}");
    assert!(hb.counters().files_restored_last_restore > 10);
    let apps = hb
        .afc_file("/iTunesRestore/RestoreApplications.plist")
        .expect("RestoreApplications.plist written over AFC");
    assert!(plist::Value::from_reader(std::io::Cursor::new(apps)).is_ok());
    assert_restored(&ha, &hb);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idevicebackup2_encrypted_backups_and_password_changes() {
    let Some(bin) = peer(BIN, INSTALL) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let sim = start(&tmp.path().join("state"), 1).await;
    let a = sim.udids()[0].clone();
    let h = sim.device(&a).expect("a");
    let out = tmp.path().join("backups");
    std::fs::create_dir_all(&out).expect("mkdir");
    let o = out.display().to_string();
    let mux = sim.addr();
    let cwd = tmp.path().to_path_buf();
    let run = |args: Vec<&str>| {
        let bin = bin.clone();
        let cwd = cwd.clone();
        let args: Vec<String> = args.into_iter().map(str::to_string).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                run_peer(&bin, &a, mux, &cwd)
            })
            .await
            .expect("join")
        }
    };

    assert!(!h.will_encrypt());
    ok(
        run(vec!["-u", &a, "encryption", "on", "pw-one", &o]).await,
        "encryption on",
    );
    assert!(h.will_encrypt());
    ok(run(vec!["-u", &a, "backup", &o]).await, "encrypted backup");
    let dir = out.join(&a);
    tokio::task::block_in_place(|| assert_backup_matches(&dir, &h, Some("pw-one")));

    h.churn(0.2).expect("churn");
    let text = ok(
        run(vec!["-u", &a, "backup", &o]).await,
        "encrypted incremental",
    );
    assert!(text.contains("Incremental backup mode"), "{text}");
    assert!(!h.counters().last_backup_full);
    tokio::task::block_in_place(|| assert_backup_matches(&dir, &h, Some("pw-one")));

    // Wrong old password is refused; the right one changes it; then off.
    let (okay, text) = run(vec!["-u", &a, "changepw", "nope", "pw-two", &o]).await;
    assert!(!okay || text.contains("Could not change"), "{text}");
    assert_eq!(h.backup_password().as_deref(), Some("pw-one"));
    ok(
        run(vec!["-u", &a, "changepw", "pw-one", "pw-two", &o]).await,
        "changepw",
    );
    assert_eq!(h.backup_password().as_deref(), Some("pw-two"));
    // A changed password means a new keybag: the next backup is full and opens with it.
    ok(
        run(vec!["-u", &a, "backup", &o]).await,
        "backup after changepw",
    );
    assert!(h.counters().last_backup_full);
    tokio::task::block_in_place(|| assert_backup_matches(&dir, &h, Some("pw-two")));
    ok(
        run(vec!["-u", &a, "encryption", "off", "pw-two", &o]).await,
        "encryption off",
    );
    assert!(!h.will_encrypt());
    ok(
        run(vec!["-u", &a, "backup", &o]).await,
        "plain backup again",
    );
    tokio::task::block_in_place(|| assert_backup_matches(&dir, &h, None));
    sim.shutdown().await;
}
