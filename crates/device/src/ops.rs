//! The operations: [`backup`], [`restore`], [`info`], [`list`], [`change_password`], with the
//! choreography a real phone expects around mobilebackup2 (protocol.md §3.2 A/B):
//! notification_proxy posts, the AFC sync lock, Info.plist, then the DeviceLink loop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use idevice::Idevice;
use idevice::installation_proxy::InstallationProxyClient;
use idevice::notification_proxy::NotificationProxyClient;
use idevice::springboardservices::SpringBoardServicesClient;

use crate::afc::{Afc, LockOp, OpenMode, STATUS_WOULD_BLOCK};
use crate::devicelink::{DlConn, LoopStats, Progress};
use crate::error::{DeviceErrorKind, Error, Result, from_idevice};
use crate::info_plist::{self, ITUNES_FILES, InfoPlistInputs};
use crate::session::DeviceSession;
use crate::store::{Txn, read_optional};

const SVC_NP: &str = "com.apple.mobile.notification_proxy";
const SVC_AFC: &str = "com.apple.afc";
const SVC_MB2: &str = "com.apple.mobilebackup2";
const SVC_IPROXY: &str = "com.apple.mobile.installation_proxy";
const SVC_SPRINGBOARD: &str = "com.apple.springboardservices";

const NOTE_WILL_START: &str = "com.apple.itunes-mobdev.syncWillStart";
const NOTE_LOCK_REQUEST: &str = "com.apple.itunes-mobdev.syncLockRequest";
const NOTE_DID_START: &str = "com.apple.itunes-mobdev.syncDidStart";
const NOTE_DID_FINISH: &str = "com.apple.itunes-mobdev.syncDidFinish";
const OBSERVED: [&str; 4] = [
    "com.apple.itunes-client.syncCancelRequest",
    "com.apple.itunes-client.syncSuspendRequest",
    "com.apple.itunes-client.syncResumeRequest",
    "com.apple.mobile.backup.domain_changed",
];
/// The phone shows its passcode prompt before a backup (iOS ≥ 16.1) …
const NOTE_PASSCODE_PRESENTED: &str = "com.apple.LocalAuthentication.ui.presented";
/// … and hides it once the passcode was entered (or the prompt cancelled).
const NOTE_PASSCODE_DISMISSED: &str = "com.apple.LocalAuthentication.ui.dismissed";
const LOCK_FILE: &str = "/com.apple.itunes.lock_sync";
const RESTORE_APPS_DIR: &str = "/iTunesRestore";
const RESTORE_APPS_FILE: &str = "/iTunesRestore/RestoreApplications.plist";

/// Options of [`backup`].
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Ask the phone for a full backup (`ForceFullBackup`) even if an earlier one exists.
    pub full: bool,
    /// How long the phone's passcode prompt may stay up before the backup fails with
    /// [`Error::PasscodeTimeout`] (default 5 min). Since iOS 16.1 a phone may ask for its
    /// passcode before it sends anything; nobody may be there to type it (a nightly backup),
    /// so waiting forever would hold the sync lock forever.
    pub passcode_timeout: Duration,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            full: false,
            passcode_timeout: Duration::from_secs(300),
        }
    }
}

/// The notices of a phone's passcode prompt, from a notification_proxy connection of their own
/// (the sync-lock connection must stay free for the posts that end the backup).
type NoticeStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = std::result::Result<String, idevice::IdeviceError>> + Send>,
>;

/// Starts observing the passcode prompt notices.
async fn observe_passcode_prompt(session: &DeviceSession) -> Result<NoticeStream> {
    let udid = session.udid();
    let io = session.start_service(SVC_NP, false).await?;
    let mut np = NotificationProxyClient::new(Idevice::new(Box::new(io), "iosnap"));
    for name in [NOTE_PASSCODE_PRESENTED, NOTE_PASSCODE_DISMISSED] {
        np.observe_notification(name)
            .await
            .map_err(|e| from_idevice(udid, "ObserveNotification", e))?;
    }
    Ok(np.into_stream())
}

/// Follows the passcode prompt: sets `hold` (which suspends the DeviceLink idle timeout) and
/// calls `report` when the prompt appears and goes away. Only ever returns the error that ends
/// the backup: the prompt stayed up longer than `timeout`. If the notice connection ends, the
/// backup goes on without it (the DeviceLink loop still notices a phone that went away).
async fn watch_passcode_prompt(
    mut notes: Option<NoticeStream>,
    hold: &tokio::sync::watch::Sender<bool>,
    timeout: Duration,
    udid: &str,
    mut report: impl FnMut(bool),
) -> Error {
    let expired = || Error::PasscodeTimeout {
        udid: udid.to_string(),
        secs: timeout.as_secs(),
    };
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let next = match (notes.as_mut(), deadline) {
            (Some(s), Some(d)) => tokio::select! {
                n = s.next() => n,
                _ = tokio::time::sleep_until(d) => return expired(),
            },
            (Some(s), None) => s.next().await,
            (None, Some(d)) => {
                tokio::time::sleep_until(d).await;
                return expired();
            }
            (None, None) => return std::future::pending().await,
        };
        match next {
            Some(Ok(name)) if name == NOTE_PASSCODE_PRESENTED => {
                if deadline.is_none() {
                    deadline = Some(tokio::time::Instant::now() + timeout);
                    hold.send_replace(true);
                    report(true);
                }
            }
            Some(Ok(name)) if name == NOTE_PASSCODE_DISMISSED => {
                if deadline.take().is_some() {
                    hold.send_replace(false);
                    report(false);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => notes = None,
        }
    }
}

/// What a finished backup did.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupSummary {
    /// The phone.
    pub udid: String,
    /// `<target>/<UDID>`.
    pub folder: PathBuf,
    /// Files the phone sent.
    pub files_received: u64,
    /// Bytes the phone sent.
    pub bytes_received: u64,
    /// Whether it was a full backup (Status.plist `IsFullBackup`, else inferred).
    pub full: bool,
    /// Whether the phone encrypted it (lockdown WillEncrypt at start).
    pub encrypted: bool,
    /// Wall time.
    pub duration: Duration,
}

/// Options of [`restore`]; defaults are idevicebackup2's.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Also restore system files (`RestoreSystemFiles`).
    pub system: bool,
    /// Reboot the phone afterwards (`RestoreShouldReboot`).
    pub reboot: bool,
    /// Let the phone keep a copy of the backup first (`RestoreDontCopyBackup` = false).
    pub copy: bool,
    /// Keep the phone's settings (`RestorePreserveSettings`).
    pub preserve_settings: bool,
    /// Remove items not in the backup (`RemoveItemsNotRestored`).
    pub remove_not_restored: bool,
    /// Do not write `RestoreApplications.plist` (apps are not reinstalled).
    pub skip_apps: bool,
    /// Password of an encrypted backup.
    pub password: Option<String>,
    /// UDID whose backup to restore, when `backup_dir` holds several (default: the phone's own).
    pub source: Option<String>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            system: false,
            reboot: true,
            copy: false,
            preserve_settings: true,
            remove_not_restored: false,
            skip_apps: false,
            password: None,
            source: None,
        }
    }
}

/// The held sync lock plus the notification and AFC connections that go with it.
struct SyncLock {
    np: NotificationProxyClient,
    afc: Afc,
    fd: u64,
    udid: String,
}

impl SyncLock {
    /// notification_proxy + AFC, then WillStart, open, LockRequest, lock (retried on
    /// OP_WOULD_BLOCK), DidStart — the order LIMD and pymobiledevice3 use.
    async fn acquire(session: &DeviceSession) -> Result<SyncLock> {
        let udid = session.udid().to_string();
        let opts = session.options();
        let np_io = session.start_service(SVC_NP, false).await?;
        let mut np = NotificationProxyClient::new(Idevice::new(Box::new(np_io), "iosnap"));
        for name in OBSERVED {
            np.observe_notification(name)
                .await
                .map_err(|e| from_idevice(&udid, "ObserveNotification", e))?;
        }
        let afc_io = session.start_service(SVC_AFC, false).await?;
        let mut afc = Afc::new(afc_io, &udid, opts.idle_timeout);
        post(&mut np, &udid, NOTE_WILL_START).await?;
        let fd = afc.open(LOCK_FILE, OpenMode::ReadWrite).await?;
        post(&mut np, &udid, NOTE_LOCK_REQUEST).await?;
        let started = Instant::now();
        let attempts = opts.sync_lock_attempts.max(1);
        let mut n = 0;
        loop {
            n += 1;
            match afc.lock(fd, LockOp::Exclusive, LOCK_FILE).await {
                Ok(()) => break,
                Err(Error::Afc { status, .. }) if status == STATUS_WOULD_BLOCK && n < attempts => {
                    tokio::time::sleep(opts.sync_lock_interval).await;
                }
                Err(e) => {
                    let _ = afc.close(fd, LOCK_FILE).await;
                    let _ = post(&mut np, &udid, NOTE_DID_FINISH).await;
                    let _ = np.shutdown().await;
                    if matches!(e, Error::Afc { status, .. } if status == STATUS_WOULD_BLOCK) {
                        return Err(Error::SyncLockBusy {
                            udid,
                            attempts: n,
                            waited_ms: started.elapsed().as_millis() as u64,
                        });
                    }
                    return Err(e);
                }
            }
        }
        post(&mut np, &udid, NOTE_DID_START).await?;
        Ok(SyncLock { np, afc, fd, udid })
    }

    /// Unlock, close, DidFinish, Shutdown; best effort (the phone may be gone already).
    async fn release(mut self) {
        let quick = Duration::from_secs(5);
        let _ =
            tokio::time::timeout(quick, self.afc.lock(self.fd, LockOp::Unlock, LOCK_FILE)).await;
        let _ = tokio::time::timeout(quick, self.afc.close(self.fd, LOCK_FILE)).await;
        let _ = tokio::time::timeout(quick, post(&mut self.np, &self.udid, NOTE_DID_FINISH)).await;
        let _ = tokio::time::timeout(quick, self.np.shutdown()).await;
    }
}

async fn post(np: &mut NotificationProxyClient, udid: &str, name: &str) -> Result<()> {
    np.post_notification(name)
        .await
        .map_err(|e| from_idevice(udid, "PostNotification", e))
}

/// Opens mobilebackup2 (with the escrow bag) and does the DeviceLink + Hello handshake.
async fn open_mb2(session: &DeviceSession) -> Result<DlConn> {
    let io = session.start_service(SVC_MB2, true).await?;
    let mut dl = DlConn::new(io, session.udid(), session.options().idle_timeout);
    dl.handshake().await?;
    Ok(dl)
}

/// Gathers lockdown values, apps, icons and iTunes files for Info.plist.
async fn gather_info(session: &DeviceSession, afc: &mut Afc) -> Result<InfoPlistInputs> {
    let udid = session.udid().to_string();
    let lockdown = match session.get_value(None, None).await? {
        Some(plist::Value::Dictionary(d)) => d,
        _ => plist::Dictionary::new(),
    };
    let itunes_settings = session
        .get_value(Some("com.apple.iTunes"), None)
        .await?
        .and_then(|v| v.into_dictionary());
    let min_itunes_version = session
        .get_value(Some("com.apple.mobile.iTunes"), Some("MinITunesVersion"))
        .await?
        .and_then(|v| v.into_string());

    let ip_io = session.start_service(SVC_IPROXY, false).await?;
    let mut ip = InstallationProxyClient::new(Idevice::new(Box::new(ip_io), "iosnap"));
    let mut opts = plist::Dictionary::new();
    opts.insert("ApplicationType".into(), "User".into());
    opts.insert(
        "ReturnAttributes".into(),
        plist::Value::Array(vec![
            "CFBundleIdentifier".into(),
            "ApplicationSINF".into(),
            "iTunesMetadata".into(),
        ]),
    );
    let apps: Vec<plist::Dictionary> = match tokio::time::timeout(
        session.options().idle_timeout,
        ip.browse(Some(plist::Value::Dictionary(opts))),
    )
    .await
    {
        Ok(Ok(list)) => list
            .into_iter()
            .filter_map(|v| v.into_dictionary())
            .collect(),
        Ok(Err(e)) => return Err(from_idevice(&udid, "installation_proxy Browse", e)),
        Err(_) => {
            return Err(Error::Timeout {
                udid,
                during: "installation_proxy Browse".into(),
                secs: session.options().idle_timeout.as_secs(),
            });
        }
    };
    drop(ip);

    // Icons are decoration: any failure here (old iOS, service missing) is tolerated.
    let mut icons = BTreeMap::new();
    let wanted: Vec<String> = apps
        .iter()
        .filter(|a| a.contains_key("ApplicationSINF") && a.contains_key("iTunesMetadata"))
        .filter_map(|a| {
            a.get("CFBundleIdentifier")
                .and_then(|v| v.as_string())
                .map(str::to_string)
        })
        .collect();
    if !wanted.is_empty()
        && let Ok(io) = session.start_service(SVC_SPRINGBOARD, false).await
    {
        let mut sb = SpringBoardServicesClient::new(Idevice::new(Box::new(io), "iosnap"));
        for id in wanted {
            match tokio::time::timeout(Duration::from_secs(10), sb.get_icon_pngdata(id.clone()))
                .await
            {
                Ok(Ok(png)) => {
                    icons.insert(id, png);
                }
                _ => break,
            }
        }
    }

    let mut itunes_files = BTreeMap::new();
    for name in ITUNES_FILES {
        if let Some(data) =
            afc_read_tolerant(afc, &format!("/iTunes_Control/iTunes/{name}")).await?
        {
            itunes_files.insert(name.to_string(), data);
        }
    }
    let ibooks_data = afc_read_tolerant(afc, "/Books/iBooksData2.plist").await?;
    Ok(InfoPlistInputs {
        lockdown,
        itunes_settings,
        min_itunes_version,
        apps,
        icons,
        itunes_files,
        ibooks_data,
        date: Some(std::time::SystemTime::now()),
        guid: info_plist::new_guid(),
    })
}

/// Reads an optional file over AFC; AFC-level refusals count as "absent", lost links do not.
async fn afc_read_tolerant(afc: &mut Afc, path: &str) -> Result<Option<Vec<u8>>> {
    match afc.file_info(path).await {
        Ok(Some(_)) => {}
        Ok(None) | Err(Error::Afc { .. }) => return Ok(None),
        Err(e) => return Err(e),
    }
    match afc.read_file(path, 32 * 1024 * 1024).await {
        Ok(v) => Ok(v),
        Err(Error::Afc { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `SnapshotState` of a Status.plist, `None` if it is missing or unreadable.
fn snapshot_state(path: &Path) -> Option<(String, Option<bool>)> {
    let bytes = read_optional(path, 1024 * 1024).ok()??;
    let v = plist::Value::from_reader(std::io::Cursor::new(bytes)).ok()?;
    let d = v.as_dictionary()?;
    let state = d.get("SnapshotState")?.as_string()?.to_string();
    let full = d.get("IsFullBackup").and_then(|v| v.as_boolean());
    Some((state, full))
}

fn check_result(udid: &str, fin: &plist::Dictionary) -> Result<()> {
    let code = match fin.get("ErrorCode") {
        Some(v) => v
            .as_unsigned_integer()
            .or_else(|| v.as_signed_integer().map(|i| i as u64))
            .unwrap_or(u64::MAX),
        None => {
            return Err(Error::protocol(
                format!("result from {udid}"),
                "final message has no ErrorCode",
            ));
        }
    };
    if code == 0 {
        return Ok(());
    }
    let description = fin
        .get("ErrorDescription")
        .and_then(|v| v.as_string())
        .unwrap_or("(no description)")
        .to_string();
    Err(Error::Device {
        code,
        kind: DeviceErrorKind::classify(code, &description),
        description,
    })
}

/// Ends a transaction according to `outcome`: commit on success, roll back on failure.
fn finish_txn<T>(txn: Txn, outcome: Result<T>) -> Result<T> {
    match outcome {
        Ok(v) => {
            txn.commit()?;
            Ok(v)
        }
        Err(e) => {
            let problems = txn.rollback();
            if problems.is_empty() {
                Err(e)
            } else {
                Err(Error::RollbackFailed {
                    original: Box::new(e),
                    problems: problems.join("; "),
                })
            }
        }
    }
}

/// Backs the phone up into `<target_dir>/<UDID>/`.
///
/// Everything the phone changes in the folder is journalled; if anything fails (the phone
/// disconnects, reports an error, or leaves Status.plist unfinished) the folder is put back
/// exactly as it was, so an earlier complete backup stays complete. Files are never modified in
/// place (a new version of an existing file is a temp file, synced, then renamed over it; a new
/// file is journalled, then created), so a snapshot store may hand in a folder of hard links.
pub async fn backup(
    session: &DeviceSession,
    target_dir: &Path,
    opts: &BackupOptions,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<BackupSummary> {
    let started = Instant::now();
    let udid = session.udid().to_string();
    let folder = target_dir.join(&udid);
    // A previous run that was killed mid-backup left its undo journal: apply it first.
    let leftovers = crate::store::recover(target_dir)?;
    if !leftovers.is_empty() {
        return Err(Error::io(
            target_dir,
            std::io::Error::other(format!(
                "could not undo an interrupted earlier backup: {}",
                leftovers.join("; ")
            )),
        ));
    }
    let had_finished =
        snapshot_state(&folder.join("Status.plist")).is_some_and(|(s, _)| s == "finished");
    let encrypted = session.will_encrypt().await?;
    let mut dl = open_mb2(session).await?;
    let mut lock = SyncLock::acquire(session).await?;
    let result = async {
        let notes = observe_passcode_prompt(session).await?;
        let (hold, hold_rx) = tokio::sync::watch::channel(false);
        dl.set_hold(hold_rx.clone());
        let inputs = gather_info(session, &mut lock.afc).await?;
        let mut txn = Txn::begin(target_dir, &[&udid])?;
        let mut stats = LoopStats::default();
        let outcome = async {
            let info_path = txn.resolve(&format!("{udid}/Info.plist"))?;
            txn.write_file(&info_path, &info_plist::to_xml(&info_plist::build(&inputs)))?;
            let mut req = plist::Dictionary::new();
            req.insert("TargetIdentifier".into(), udid.clone().into());
            req.insert("SourceIdentifier".into(), udid.clone().into());
            if opts.full {
                let mut o = plist::Dictionary::new();
                o.insert("ForceFullBackup".into(), true.into());
                req.insert("Options".into(), plist::Value::Dictionary(o));
            }
            dl.send_process_message("Backup", req).await?;
            // The DeviceLink loop and the passcode watcher both report progress: the last
            // report is shared, so each carries the other's latest state.
            let last = std::sync::Mutex::new((Progress::default(), &mut progress));
            let mut from_loop = |mut p: Progress| {
                let mut g = last
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                p.passcode_prompt = *hold_rx.borrow();
                g.0 = p;
                (g.1)(p);
            };
            let prompt =
                watch_passcode_prompt(Some(notes), &hold, opts.passcode_timeout, &udid, |up| {
                    let mut g = last
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    g.0.passcode_prompt = up;
                    let p = g.0;
                    (g.1)(p);
                });
            let fin = tokio::select! {
                fin = dl.run_loop("backup", &mut txn, &mut stats, &mut from_loop) => fin?,
                e = prompt => return Err(e),
            };
            check_result(&udid, &fin)?;
            let status_path = folder.join("Status.plist");
            match snapshot_state(&status_path) {
                Some((state, full)) if state == "finished" => Ok(full),
                Some((state, _)) => Err(Error::SnapshotNotFinished {
                    path: status_path,
                    state,
                }),
                None => Err(Error::SnapshotNotFinished {
                    path: status_path,
                    state: "missing or unreadable".into(),
                }),
            }
        }
        .await;
        let full = finish_txn(txn, outcome)?;
        dl.disconnect().await;
        Ok(BackupSummary {
            udid: udid.clone(),
            folder: folder.clone(),
            files_received: stats.files_received,
            bytes_received: stats.bytes_received,
            full: full.unwrap_or(opts.full || !had_finished),
            encrypted,
            duration: started.elapsed(),
        })
    }
    .await;
    lock.release().await;
    result
}

/// Where a backup lives: `(root, source UDID)`. Accepts the `<UDID>` folder itself or its parent.
fn locate_backup(
    dir: &Path,
    source: Option<&str>,
    default_udid: &str,
) -> Result<(PathBuf, String)> {
    let looks_like_backup =
        |d: &Path| d.join("Manifest.plist").is_file() || d.join("Status.plist").is_file();
    if source.is_none() && looks_like_backup(dir) {
        let name =
            dir.file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| Error::BadBackupFolder {
                    path: dir.to_path_buf(),
                    reason: "its folder name is not a UDID".into(),
                })?;
        let parent = dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        return Ok((parent, name.to_string()));
    }
    let src = source.unwrap_or(default_udid).to_string();
    if looks_like_backup(&dir.join(&src)) {
        Ok((dir.to_path_buf(), src))
    } else {
        Err(Error::BadBackupFolder {
            path: dir.join(&src),
            reason: "no Manifest.plist or Status.plist here".into(),
        })
    }
}

fn read_plist_dict(path: &Path) -> Result<Option<plist::Dictionary>> {
    match read_optional(path, 256 * 1024 * 1024)? {
        None => Ok(None),
        Some(b) => plist::Value::from_reader(std::io::Cursor::new(b))
            .ok()
            .and_then(|v| v.into_dictionary())
            .map(Some)
            .ok_or_else(|| Error::BadBackupFolder {
                path: path.to_path_buf(),
                reason: "not a plist dictionary".into(),
            }),
    }
}

/// Restores a backup folder onto the phone.
pub async fn restore(
    session: &DeviceSession,
    backup_dir: &Path,
    opts: &RestoreOptions,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<()> {
    let udid = session.udid().to_string();
    let (root, source) = locate_backup(backup_dir, opts.source.as_deref(), &udid)?;
    let folder = root.join(&source);
    match snapshot_state(&folder.join("Status.plist")) {
        Some((s, _)) if s == "finished" => {}
        other => {
            return Err(Error::BadBackupFolder {
                path: folder,
                reason: format!(
                    "Status.plist is not finished ({}); this backup is incomplete",
                    other.map(|(s, _)| s).unwrap_or_else(|| "missing".into())
                ),
            });
        }
    }
    let manifest =
        read_plist_dict(&folder.join("Manifest.plist"))?.ok_or_else(|| Error::BadBackupFolder {
            path: folder.clone(),
            reason: "Manifest.plist is missing".into(),
        })?;
    let encrypted = manifest
        .get("IsEncrypted")
        .and_then(|v| v.as_boolean())
        .unwrap_or(false);
    if encrypted && opts.password.is_none() {
        return Err(Error::InvalidRequest(
            "this backup is encrypted: give its password (--password)".into(),
        ));
    }
    let apps = if opts.skip_apps {
        None
    } else {
        read_plist_dict(&folder.join("Info.plist"))?
            .and_then(|d| d.get("Applications").cloned())
            .and_then(|v| v.into_dictionary())
    };
    let mut dl = open_mb2(session).await?;
    let mut lock = SyncLock::acquire(session).await?;
    let result = async {
        let mut wrote_apps = false;
        if let Some(apps) = &apps {
            let mut xml = Vec::new();
            plist::Value::Dictionary(apps.clone())
                .to_writer_xml(&mut xml)
                .map_err(|e| Error::protocol("RestoreApplications.plist", e.to_string()))?;
            match lock.afc.make_dir(RESTORE_APPS_DIR).await {
                Ok(()) | Err(Error::Afc { .. }) => {}
                Err(e) => return Err(e),
            }
            let fd = lock
                .afc
                .open(RESTORE_APPS_FILE, OpenMode::WriteTruncate)
                .await?;
            let w = lock.afc.write(fd, &xml, RESTORE_APPS_FILE).await;
            lock.afc.close(fd, RESTORE_APPS_FILE).await?;
            w?;
            wrote_apps = true;
        }
        let mut o = plist::Dictionary::new();
        o.insert("RestoreSystemFiles".into(), opts.system.into());
        o.insert("RestoreShouldReboot".into(), opts.reboot.into());
        o.insert("RestoreDontCopyBackup".into(), (!opts.copy).into());
        o.insert(
            "RestorePreserveSettings".into(),
            opts.preserve_settings.into(),
        );
        o.insert(
            "RemoveItemsNotRestored".into(),
            opts.remove_not_restored.into(),
        );
        if let Some(p) = &opts.password {
            o.insert("Password".into(), p.clone().into());
        }
        let mut req = plist::Dictionary::new();
        req.insert("TargetIdentifier".into(), udid.clone().into());
        req.insert("SourceIdentifier".into(), source.clone().into());
        req.insert("Options".into(), plist::Value::Dictionary(o));
        let run = async {
            dl.send_process_message("Restore", req).await?;
            let mut txn = Txn::read_only(&root, &[&source, &udid]);
            let mut stats = LoopStats::default();
            let out = dl
                .run_loop("restore", &mut txn, &mut stats, &mut progress)
                .await;
            let fin = finish_txn(txn, out)?;
            check_result(&udid, &fin)
        }
        .await;
        if run.is_err() && wrote_apps {
            let _ = lock.afc.remove(RESTORE_APPS_FILE).await;
            let _ = lock.afc.remove(RESTORE_APPS_DIR).await;
        }
        run?;
        dl.disconnect().await;
        Ok(())
    }
    .await;
    lock.release().await;
    result
}

/// Runs an Info or List request and returns the phone's `Content` text.
async fn content_request(session: &DeviceSession, backup_dir: &Path, name: &str) -> Result<String> {
    let udid = session.udid().to_string();
    let (root, source) = locate_backup(backup_dir, None, &udid)?;
    let mut dl = open_mb2(session).await?;
    let mut req = plist::Dictionary::new();
    req.insert("TargetIdentifier".into(), udid.clone().into());
    req.insert("SourceIdentifier".into(), source.clone().into());
    dl.send_process_message(name, req).await?;
    let mut txn = Txn::read_only(&root, &[&source, &udid]);
    let mut stats = LoopStats::default();
    let out = dl.run_loop(name, &mut txn, &mut stats, &mut |_| {}).await;
    let fin = finish_txn(txn, out)?;
    check_result(&udid, &fin)?;
    dl.disconnect().await;
    Ok(match fin.get("Content") {
        Some(plist::Value::String(s)) => s.clone(),
        Some(other) => {
            let mut out = Vec::new();
            let _ = other.to_writer_xml(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        }
        None => String::new(),
    })
}

/// The phone's description of a backup folder (mobilebackup2 `Info`).
pub async fn info(session: &DeviceSession, backup_dir: &Path) -> Result<String> {
    content_request(session, backup_dir, "Info").await
}

/// The phone's file listing of a backup folder as CSV (mobilebackup2 `List`).
pub async fn list(session: &DeviceSession, backup_dir: &Path) -> Result<String> {
    content_request(session, backup_dir, "List").await
}

/// Turns backup encryption on (`new` only), off (`old` only) or changes the password (both),
/// after checking lockdown `WillEncrypt` so the request fits the phone's state.
pub async fn change_password(
    session: &DeviceSession,
    old: Option<&str>,
    new: Option<&str>,
) -> Result<()> {
    let udid = session.udid().to_string();
    if old.is_some_and(str::is_empty) || new.is_some_and(str::is_empty) {
        return Err(Error::InvalidRequest(
            "a backup password cannot be empty".into(),
        ));
    }
    let on = session.will_encrypt().await?;
    let expect_on = match (old, new, on) {
        (None, Some(_), false) => true,
        (None, Some(_), true) => {
            return Err(Error::InvalidRequest(
                "backup encryption is already on; to change the password give the current one too"
                    .into(),
            ));
        }
        (Some(_), None, true) => false,
        (Some(_), None, false) => {
            return Err(Error::InvalidRequest(
                "backup encryption is already off".into(),
            ));
        }
        (Some(_), Some(_), true) => true,
        (Some(_), Some(_), false) => {
            return Err(Error::InvalidRequest(
                "backup encryption is off; turn it on (give only a new password) instead".into(),
            ));
        }
        (None, None, _) => {
            return Err(Error::InvalidRequest(
                "give an old and/or a new password".into(),
            ));
        }
    };
    let mut dl = open_mb2(session).await?;
    let mut req = plist::Dictionary::new();
    req.insert("TargetIdentifier".into(), udid.clone().into());
    if let Some(o) = old {
        req.insert("OldPassword".into(), o.into());
    }
    if let Some(n) = new {
        req.insert("NewPassword".into(), n.into());
    }
    dl.send_process_message("ChangePassword", req).await?;
    // The phone normally sends no file requests here; there is no folder it may change.
    let mut txn = Txn::read_only(&std::env::temp_dir().join(".iosnap-no-folder"), &[&udid]);
    let mut stats = LoopStats::default();
    let out = dl
        .run_loop("ChangePassword", &mut txn, &mut stats, &mut |_| {})
        .await;
    let fin = finish_txn(txn, out)?;
    check_result(&udid, &fin)?;
    dl.disconnect().await;
    let now_on = session.will_encrypt().await?;
    if now_on != expect_on {
        return Err(Error::protocol(
            "ChangePassword",
            format!("the phone accepted the request but WillEncrypt is still {now_on}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_map_to_errors() {
        let mut d = plist::Dictionary::new();
        d.insert("ErrorCode".into(), 0u64.into());
        assert!(check_result("u", &d).is_ok());
        d.insert("ErrorCode".into(), 105u64.into());
        d.insert(
            "ErrorDescription".into(),
            "Insufficient free disk space (MBErrorDomain/105)".into(),
        );
        match check_result("u", &d) {
            Err(Error::Device {
                code: 105,
                kind: DeviceErrorKind::InsufficientSpace,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        d.remove("ErrorCode");
        assert!(matches!(check_result("u", &d), Err(Error::Protocol { .. })));
    }

    #[test]
    fn backup_folder_is_located_from_either_level() {
        let d = tempfile::tempdir().unwrap();
        let dev = d.path().join("UDID1");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("Manifest.plist"), b"x").unwrap();
        assert_eq!(
            locate_backup(&dev, None, "OTHER").unwrap(),
            (d.path().to_path_buf(), "UDID1".to_string())
        );
        assert_eq!(
            locate_backup(d.path(), None, "UDID1").unwrap(),
            (d.path().to_path_buf(), "UDID1".to_string())
        );
        assert_eq!(
            locate_backup(d.path(), Some("UDID1"), "OTHER").unwrap().1,
            "UDID1"
        );
        assert!(locate_backup(d.path(), None, "OTHER").is_err());
    }

    #[test]
    fn status_plist_state_is_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("Status.plist");
        assert!(snapshot_state(&p).is_none());
        let mut s = plist::Dictionary::new();
        s.insert("SnapshotState".into(), "finished".into());
        s.insert("IsFullBackup".into(), false.into());
        plist::Value::Dictionary(s).to_file_binary(&p).unwrap();
        assert_eq!(
            snapshot_state(&p),
            Some(("finished".to_string(), Some(false)))
        );
        std::fs::write(&p, b"garbage").unwrap();
        assert!(snapshot_state(&p).is_none());
    }
}
