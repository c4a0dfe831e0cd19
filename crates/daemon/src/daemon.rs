//! The daemon loop: watch usbmuxd, and for every connected device with automatic backups on,
//! run a snapshot backup when [`decide`] says it is due — one backup per device at a time,
//! several devices in parallel, failures retried with backoff, everything cancelled cleanly on
//! shutdown.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{FixedOffset, Offset};
use futures::StreamExt;
use iosnap_device::{
    BackupOptions, ConnectionType, DeviceErrorKind, DeviceInfo, DeviceSession, MuxAddr, Progress,
    SessionOptions, list_devices, watch_devices,
};
use iosnap_store::{Clock, ConfigDir, DeviceSettings, Library, SnapshotInfo};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::backup::{BackupError, PasswordCheck, SnapshotBackup, backup_to_snapshot, last_success};
use crate::schedule::{Decision, Inputs, Waiting, decide};
use crate::secrets::PasswordStore;
use crate::state::{self, DaemonState, Failures};

/// Where local time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalZone {
    /// The system's time zone (`TZ`, `/etc/localtime`), at each instant.
    System,
    /// A fixed offset from UTC (tests, or a server that should ignore its zone).
    Fixed(FixedOffset),
}

impl LocalZone {
    /// The offset from UTC at `t`.
    pub fn offset_at(&self, t: SystemTime) -> FixedOffset {
        match self {
            LocalZone::Fixed(o) => *o,
            LocalZone::System => chrono::DateTime::<chrono::Local>::from(t).offset().fix(),
        }
    }
}

/// Everything the daemon needs; tests fill it with a simulator address, a temp config and a
/// manual clock.
#[derive(Clone)]
pub struct DaemonConfig {
    /// usbmuxd.
    pub mux: MuxAddr,
    /// Per-device settings.
    pub config: ConfigDir,
    /// Forced library location; `None` = each device's `location` setting, else the default.
    pub library: Option<PathBuf>,
    /// "Now".
    pub clock: Arc<dyn Clock>,
    /// Local time.
    pub zone: LocalZone,
    /// Lockdown session options (pair records, timeouts).
    pub session: SessionOptions,
    /// How often connected devices are re-checked without usbmuxd events (time passing makes
    /// devices due; battery levels change).
    pub recheck: Duration,
    /// Remembered backup passwords (checked against each new encrypted snapshot); `None` =
    /// do not look (tests that must not touch a keyring).
    pub passwords: Option<PasswordStore>,
    /// How long a backup waits while the phone shows its passcode prompt (iOS ≥ 16.1) before
    /// it gives up and retries later with backoff.
    pub passcode_timeout: Duration,
}

impl std::fmt::Debug for DaemonConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonConfig")
            .field("mux", &self.mux)
            .field("config", &self.config)
            .field("library", &self.library)
            .field("zone", &self.zone)
            .field("recheck", &self.recheck)
            .field("passcode_timeout", &self.passcode_timeout)
            .finish_non_exhaustive()
    }
}

/// What one check of one device did.
#[derive(Debug)]
pub enum Outcome {
    /// A snapshot was made.
    BackedUp(Box<SnapshotBackup>),
    /// Not due, and why.
    Waiting(Waiting),
    /// Another backup of the device (e.g. `iosnap backup`) holds the lock; not a failure.
    Busy(String),
    /// The attempt failed (counted for backoff).
    Failed(String),
    /// Shutdown interrupted the backup; its staging folder was removed.
    Cancelled,
    /// The phone is locked: its passcode prompt was not answered within the passcode timeout,
    /// or it refused because it is locked (counted for backoff, shown as "locked device").
    Locked(String),
}

/// The daemon.
#[derive(Debug)]
pub struct Daemon {
    cfg: DaemonConfig,
    /// Failures in a row per device and passcode prompts being waited at, mirrored in the
    /// state file so backoff survives restarts and `daemon status` sees the prompts.
    state: Mutex<DaemonState>,
    state_file: PathBuf,
    running: Mutex<std::collections::HashSet<String>>,
}

/// Removes a device from the running set when its task ends, however it ends.
struct RunningGuard<'a> {
    daemon: &'a Daemon,
    udid: String,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        let mut r = self
            .daemon
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        r.remove(&self.udid);
    }
}

impl Daemon {
    /// A daemon that remembers the failures of earlier runs (the state file under the config
    /// folder); an unreadable state file is logged and treated as empty.
    pub fn new(cfg: DaemonConfig) -> Arc<Daemon> {
        let state_file = state::state_path(&cfg.config);
        let loaded = match state::load(&state_file) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(
                    "ignoring the daemon state (failed backups are retried at once): {e}"
                );
                DaemonState::default()
            }
        };
        Arc::new(Daemon {
            cfg,
            state: Mutex::new(loaded),
            state_file,
            running: Mutex::new(Default::default()),
        })
    }

    /// Failures in a row of `udid` since its last successful automatic backup, as remembered
    /// across restarts.
    pub fn failures(&self, udid: &str) -> Failures {
        self.failures_of(udid)
    }

    /// The configuration.
    pub fn config(&self) -> &DaemonConfig {
        &self.cfg
    }

    /// Opens the library `udid` belongs in.
    pub fn library_for(&self, udid: &str) -> Result<Library, iosnap_store::Error> {
        let root = match &self.cfg.library {
            Some(r) => r.clone(),
            None => match self.cfg.config.device(udid)?.location {
                Some(l) => l,
                None => iosnap_store::default_location()?,
            },
        };
        Library::open(&root, self.cfg.config.clone(), self.cfg.clock.clone())
    }

    fn failures_of(&self, udid: &str) -> Failures {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.failures.get(udid).copied().unwrap_or_default()
    }

    /// Since when a running backup of `udid` waits at the phone's passcode prompt (as this
    /// daemon, or the one whose state file it read, last knew).
    pub fn passcode_prompt_since(&self, udid: &str) -> Option<SystemTime> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.prompts.get(udid).copied()
    }

    /// Changes the state with `f` (which says whether it changed anything) and saves it.
    fn update(&self, f: impl FnOnce(&mut DaemonState) -> bool) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !f(&mut s) {
            return;
        }
        // Written under the lock, so concurrent devices never write an older state last.
        if let Err(e) = state::save(&self.state_file, &s) {
            tracing::warn!("cannot save the daemon state (kept in memory only): {e}");
        }
    }

    fn record(&self, udid: &str, result: Attempt) {
        let now = self.cfg.clock.now();
        self.update(|s| match result {
            Attempt::Succeeded => s.failures.remove(udid).is_some(),
            Attempt::Failed | Attempt::Locked => {
                let e = s.failures.entry(udid.to_string()).or_default();
                e.count = e.count.saturating_add(1);
                e.last = Some(now);
                e.locked = result == Attempt::Locked;
                true
            }
        });
    }

    /// Notes that the phone's passcode prompt went up (`Some(since)`) or away (`None`).
    fn set_prompt(&self, udid: &str, since: Option<SystemTime>) {
        self.update(|s| match since {
            Some(t) => s.prompts.insert(udid.to_string(), t).is_none(),
            None => s.prompts.remove(udid).is_some(),
        });
    }

    /// The scheduling inputs of a device, without battery (known only after connecting).
    fn inputs(&self, lib: &Library, device: &DeviceInfo) -> Result<Inputs, iosnap_store::Error> {
        let now = self.cfg.clock.now();
        let last_success = last_success(lib, &device.udid)?;
        let f = effective_failures(self.failures_of(&device.udid), last_success);
        Ok(Inputs {
            now,
            offset: self.cfg.zone.offset_at(now),
            last_success,
            battery_level: None,
            charging: None,
            network: device.connection == ConnectionType::Network,
            failures: f.count,
            last_failure: f.last,
            last_failure_locked: f.locked,
        })
    }

    /// Checks one connected device and backs it up if due; `cancel` turning true interrupts
    /// a running backup (its staging folder is removed, earlier snapshots stay).
    pub async fn check_device(
        &self,
        device: &DeviceInfo,
        cancel: watch::Receiver<bool>,
    ) -> Outcome {
        let udid = device.udid.clone();
        {
            let mut r = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if !r.insert(udid.clone()) {
                return Outcome::Busy(format!("a backup of {udid} is already running"));
            }
        }
        let _guard = RunningGuard {
            daemon: self,
            udid: udid.clone(),
        };
        let outcome = self.check_inner(device, cancel).await;
        match &outcome {
            Outcome::BackedUp(b) => {
                self.record(&udid, Attempt::Succeeded);
                let s = &b.summary;
                tracing::info!(
                    udid = %udid,
                    snapshot = %b.snapshot.name,
                    connection = %device.connection,
                    files = s.files_received,
                    bytes = s.bytes_received,
                    full = s.full,
                    seconds = s.duration.as_secs_f64(),
                    "backup of {udid} done: {} ({} backup, {} files, {} bytes received in {:.1} s)",
                    b.snapshot.reference(),
                    if s.full { "full" } else { "incremental" },
                    s.files_received,
                    s.bytes_received,
                    s.duration.as_secs_f64()
                );
            }
            Outcome::Failed(e) => {
                self.record(&udid, Attempt::Failed);
                let f = self.failures_of(&udid);
                tracing::warn!(
                    udid = %udid,
                    failures = f.count,
                    retry_in_s = crate::schedule::backoff_delay(f.count).as_secs(),
                    "backup of {udid} failed: {e}; earlier snapshots are untouched"
                );
            }
            Outcome::Locked(e) => {
                self.record(&udid, Attempt::Locked);
                let f = self.failures_of(&udid);
                tracing::warn!(
                    udid = %udid,
                    failures = f.count,
                    retry_in_s = crate::schedule::backoff_delay(f.count).as_secs(),
                    "backup of {udid} not made, the phone is locked: {e}; unlock your iPhone and \
                     enter the passcode when it asks (retrying in {} min)",
                    crate::schedule::backoff_delay(f.count).as_secs() / 60
                );
            }
            Outcome::Busy(why) => tracing::info!(udid = %udid, "{why}; not starting another"),
            Outcome::Cancelled => {
                tracing::info!(udid = %udid, "backup of {udid} interrupted by shutdown; rolled back")
            }
            Outcome::Waiting(w) => tracing::debug!(udid = %udid, "waiting: {w}"),
        }
        outcome
    }

    async fn check_inner(&self, device: &DeviceInfo, mut cancel: watch::Receiver<bool>) -> Outcome {
        let udid = device.udid.as_str();
        let settings: DeviceSettings = match self.cfg.config.device(udid) {
            Ok(s) => s,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        if !settings.automatic {
            return Outcome::Waiting(Waiting::Disabled);
        }
        let lib = match self.library_for(udid) {
            Ok(l) => l,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let mut inputs = match self.inputs(&lib, device) {
            Ok(i) => i,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        // Everything but the battery first: no need to wake the phone when not due.
        if let Decision::Waiting(w) = decide(&settings, &inputs) {
            return Outcome::Waiting(w);
        }
        let work = async {
            let session =
                DeviceSession::connect_with(&self.cfg.mux, udid, self.cfg.session.clone()).await?;
            let values = session.values().await?;
            inputs.battery_level = values.battery_level;
            inputs.charging = values.battery_charging;
            if let Decision::Waiting(w) = decide(&settings, &inputs) {
                return Ok(Err(w));
            }
            tracing::info!(
                udid = %udid,
                connection = %device.connection,
                battery = ?values.battery_level,
                "starting automatic backup of {udid}"
            );
            let opts = BackupOptions {
                passcode_timeout: self.cfg.passcode_timeout,
                ..BackupOptions::default()
            };
            let mut prompt_up = false;
            let progress = |p: Progress| {
                if p.passcode_prompt == prompt_up {
                    return;
                }
                prompt_up = p.passcode_prompt;
                if prompt_up {
                    tracing::warn!(
                        udid = %udid,
                        "{udid} asks for its passcode: unlock your iPhone and enter the passcode \
                         to allow the backup (waiting up to {} s)",
                        self.cfg.passcode_timeout.as_secs()
                    );
                    self.set_prompt(udid, Some(self.cfg.clock.now()));
                } else {
                    tracing::info!(udid = %udid, "passcode entered on {udid}; the backup goes on");
                    self.set_prompt(udid, None);
                }
            };
            backup_to_snapshot(&lib, &session, &opts, progress)
                .await
                .map(Ok)
        };
        let result = tokio::select! {
            r = work => r,
            _ = cancel.wait_for(|c| *c) => {
                self.set_prompt(udid, None);
                return Outcome::Cancelled;
            }
        };
        self.set_prompt(udid, None);
        match result {
            Ok(Ok(mut b)) => {
                if b.summary.encrypted
                    && let Some(store) = &self.cfg.passwords
                {
                    let check = crate::backup::check_remembered_password(store, &b.snapshot);
                    let r = b.snapshot.reference();
                    match &check {
                        PasswordCheck::Opens => {
                            tracing::debug!(udid = %udid, "the remembered password opens {r}")
                        }
                        PasswordCheck::Wrong => tracing::warn!(
                            udid = %udid,
                            "the backup password remembered for {udid} does not open {r}: was it \
                             changed on the phone? Run `iosnap password remember --device {udid}`"
                        ),
                        PasswordCheck::NotRemembered => tracing::debug!(
                            udid = %udid,
                            "{r} is encrypted; no password remembered (not needed to back up)"
                        ),
                        PasswordCheck::Failed(e) => tracing::warn!(
                            udid = %udid,
                            "cannot check the remembered password against {r}: {e}"
                        ),
                    }
                    b.password = Some(check);
                }
                if let Err(e) = iosnap_store::prune(
                    &lib,
                    udid,
                    iosnap_store::PruneMode::NonInteractive,
                    &mut |_| false,
                ) {
                    tracing::warn!(udid = %udid, "retention after the backup failed: {e}");
                }
                Outcome::BackedUp(Box::new(b))
            }
            Ok(Err(w)) => Outcome::Waiting(w),
            Err(BackupError::Lock(e)) => Outcome::Busy(e.to_string()),
            Err(BackupError::Device(e))
                if matches!(
                    e.device_error_kind(),
                    Some(DeviceErrorKind::PasscodeTimeout | DeviceErrorKind::DeviceLocked)
                ) =>
            {
                Outcome::Locked(e.to_string())
            }
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    /// One pass over the connected devices: starts a check (and backup if due) for every
    /// device not already being backed up, into `tasks`.
    pub async fn pass(
        self: &Arc<Self>,
        tasks: &mut JoinSet<(String, Outcome)>,
        cancel: &watch::Receiver<bool>,
    ) -> Result<(), iosnap_device::Error> {
        for device in list_devices(&self.cfg.mux).await? {
            let busy = {
                let r = self.running.lock().unwrap_or_else(|p| p.into_inner());
                r.contains(&device.udid)
            };
            if busy {
                continue;
            }
            let me = self.clone();
            let cancel = cancel.clone();
            let udid = device.udid.clone();
            // The device layer's backup future is not `Send` (it keeps a journal in a
            // `RefCell`), so each device gets its own thread and single-threaded runtime;
            // that also keeps a slow device from holding up the others.
            let (tx, rx) = tokio::sync::oneshot::channel();
            let spawned = std::thread::Builder::new()
                .name(format!("backup-{udid}"))
                .spawn(move || {
                    let outcome = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt.block_on(me.check_device(&device, cancel)),
                        Err(e) => Outcome::Failed(format!("starting a runtime: {e}")),
                    };
                    let _ = tx.send(outcome);
                });
            if let Err(e) = spawned {
                tracing::warn!(udid = %udid, "cannot start a backup thread: {e}");
                continue;
            }
            tasks.spawn(async move {
                let o = rx
                    .await
                    .unwrap_or_else(|_| Outcome::Failed("the backup thread ended early".into()));
                (udid, o)
            });
        }
        Ok(())
    }

    /// Runs until `shutdown` turns true: re-checks on every usbmuxd event and every
    /// `recheck`; then cancels running backups, waits for them to roll back, and returns.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tasks: JoinSet<(String, Outcome)> = JoinSet::new();
        let mut events = None;
        let mut tick = tokio::time::interval(self.cfg.recheck);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!("iosnap daemon started");
        // Prompts recorded by a daemon that was killed mid-backup are over.
        self.update(|s| {
            let had = !s.prompts.is_empty();
            s.prompts.clear();
            had
        });
        loop {
            if events.is_none() {
                match watch_devices(&self.cfg.mux).await {
                    Ok(s) => events = Some(Box::pin(s)),
                    Err(e) => tracing::debug!("cannot watch usbmuxd ({e}); polling instead"),
                }
            }
            let event = async {
                match events.as_mut() {
                    Some(s) => s.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                ev = event => match ev {
                    Some(Ok(iosnap_device::DeviceEvent::Attached(d))) => {
                        tracing::info!(
                            udid = %d.udid,
                            connection = %d.connection,
                            "device {} attached ({})",
                            d.udid,
                            d.connection
                        )
                    }
                    Some(Ok(iosnap_device::DeviceEvent::Detached { udid, .. })) => {
                        let udid = udid.as_deref().unwrap_or("(unknown)");
                        tracing::info!("device {udid} detached")
                    }
                    Some(Err(e)) => { tracing::warn!("usbmuxd watch ended: {e}"); events = None; continue; }
                    None => { events = None; continue; }
                },
                _ = tick.tick() => {},
                Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            }
            if let Err(e) = self.pass(&mut tasks, &shutdown).await {
                tracing::warn!("cannot list devices: {e}");
            }
        }
        tracing::info!("shutting down: waiting for running backups to roll back");
        while tasks.join_next().await.is_some() {}
        tracing::info!("iosnap daemon stopped");
    }
}

/// How an attempt ended, for the failure count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    Succeeded,
    Failed,
    Locked,
}

/// Failures that happened before a later success (e.g. a manual `iosnap backup`) no longer
/// delay anything.
fn effective_failures(f: Failures, last_success: Option<SystemTime>) -> Failures {
    match (f.last, last_success) {
        (Some(failed), Some(ok)) if ok >= failed => Failures::default(),
        _ => f,
    }
}

/// One device's line of `daemon status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceStatus {
    /// Device.
    pub udid: String,
    /// `USB`, `Network`, or `null` when not connected.
    pub connection: Option<String>,
    /// Automatic backups on.
    pub automatic: bool,
    /// Newest snapshot (RFC 3339).
    pub last_backup: Option<String>,
    /// When the next backup is expected (RFC 3339); `null` = now (if connected).
    pub next_due: Option<String>,
    /// `due`, or why it is waiting.
    pub state: String,
    /// The waiting reason as a machine-readable value.
    pub waiting: Option<Waiting>,
}

fn rfc(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Status of every device that has settings or snapshots or is connected. Battery is read
/// from connected devices (a short lockdown session); nothing is backed up.
pub async fn status(d: &Daemon, known: &[String]) -> Vec<DeviceStatus> {
    let connected = list_devices(&d.cfg.mux).await.unwrap_or_default();
    let mut udids: Vec<String> = known.to_vec();
    for c in &connected {
        if !udids.iter().any(|u| u.eq_ignore_ascii_case(&c.udid)) {
            udids.push(c.udid.clone());
        }
    }
    udids.sort();
    let mut out = Vec::new();
    for udid in udids {
        let settings = d.cfg.config.device(&udid).unwrap_or_default();
        let lib = d.library_for(&udid).ok();
        let last: Option<SnapshotInfo> = lib
            .as_ref()
            .and_then(|l| l.snapshots(&udid).ok())
            .and_then(|mut v| v.pop());
        let dev = connected.iter().find(|c| c.udid == udid);
        let now = d.cfg.clock.now();
        let last_success = last.as_ref().map(SnapshotInfo::system_time);
        let f = effective_failures(d.failures_of(&udid), last_success);
        let mut inputs = Inputs {
            now,
            offset: d.cfg.zone.offset_at(now),
            last_success,
            battery_level: None,
            charging: None,
            network: dev.is_some_and(|c| c.connection == ConnectionType::Network),
            failures: f.count,
            last_failure: f.last,
            last_failure_locked: f.locked,
        };
        if dev.is_some()
            && settings.automatic
            && let Ok(s) =
                DeviceSession::connect_with(&d.cfg.mux, &udid, d.cfg.session.clone()).await
            && let Ok(v) = s.values().await
        {
            inputs.battery_level = v.battery_level;
            inputs.charging = v.battery_charging;
        }
        let decision = match (dev, d.passcode_prompt_since(&udid)) {
            // A running backup waits at the phone's passcode prompt.
            (Some(_), Some(_)) => Decision::Waiting(Waiting::DeviceLocked { retry: None }),
            _ => decide(&settings, &inputs),
        };
        let (state, waiting) = match (&decision, dev) {
            (Decision::Waiting(w), None) => (format!("not connected; {w}"), Some(w.clone())),
            (Decision::Waiting(w), Some(_)) => (w.to_string(), Some(w.clone())),
            (Decision::Due, None) => ("not connected".to_string(), None),
            (Decision::Due, Some(_)) => ("due".to_string(), None),
        };
        out.push(DeviceStatus {
            udid: udid.clone(),
            connection: dev.map(|c| c.connection.to_string()),
            automatic: settings.automatic,
            last_backup: last.as_ref().map(|s| rfc(s.system_time())),
            next_due: settings
                .automatic
                .then(|| crate::schedule::next_due(&settings, &inputs).map(rfc))
                .flatten(),
            state,
            waiting,
        });
    }
    out
}

/// Runs the daemon until SIGTERM or SIGINT, then stops it cleanly: running backups are
/// cancelled and rolled back (their staging folders removed) before this returns.
pub async fn run_until_signal(d: Arc<Daemon>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = watch::channel(false);
    let run = d.run(rx);
    tokio::pin!(run);
    tokio::select! {
        _ = &mut run => return Ok(()),
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    let _ = tx.send(true);
    run.await;
    Ok(())
}
