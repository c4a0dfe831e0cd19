//! One simulated device: identity, pairing, TLS, the phone, and the mutable state the
//! services share (battery, backup password, started services, sync lock, AFC files,
//! counters). Also [`DeviceHandle`], the public view tests and the CLI use.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ConnectionType, DeviceConfig, FaultPlan, PairingMode, PasscodePrompt};
use crate::error::{Error, Result};
use crate::identity::{Identity, PairRecord};
use crate::io::dict;
use crate::phone::Phone;
use crate::services::ServiceKind;

/// File holding the backup password (the phone knows it, as a real one does).
pub const PASSWORD_FILE: &str = "backup_password";
/// Folder holding the phone's persistent state.
pub const PHONE_DIR: &str = "phone";
/// Marker written after the phone's first save: its presence means "load, don't generate".
const PHONE_STAMP: &str = ".iosnap-sim-phone";
/// The pair record "usbmuxd" keeps for this device (what `ReadPairRecord` serves; written by
/// `SavePairRecord`, removed by `DeletePairRecord`). Absent = this computer is not paired.
pub const MUX_RECORD_FILE: &str = "usbmuxd_pair_record.plist";
/// HostIDs the phone trusts (one per line): lockdown `StartSession` refuses any other.
pub const TRUSTED_HOSTS_FILE: &str = "trusted_hosts.txt";
/// The phone's RSA public key (PKCS#1 PEM), lockdown `DevicePublicKey`, made on first request.
pub const DEVICE_PUBLIC_KEY_FILE: &str = "device_public_key.pem";
/// Posted on notification_proxy when the passcode prompt appears (iOS ≥ 16.1).
pub const NOTE_PASSCODE_PRESENTED: &str = "com.apple.LocalAuthentication.ui.presented";
/// Posted when the passcode prompt goes away.
pub const NOTE_PASSCODE_DISMISSED: &str = "com.apple.LocalAuthentication.ui.dismissed";

/// How many posted notification names [`Counters::notifications_posted`] keeps (the newest).
pub const MAX_NOTIFICATIONS: usize = 256;

/// Counters describing what the device did, for tests and progress output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Backups finished successfully.
    pub backups: u64,
    /// Whether the last backup was full (false = incremental).
    pub last_backup_full: bool,
    /// Data files uploaded by the last backup.
    pub files_uploaded_last_backup: u64,
    /// Content bytes (plaintext) uploaded by the last backup.
    pub bytes_uploaded_last_backup: u64,
    /// Data files removed on the host by the last backup (incrementals).
    pub files_removed_last_backup: u64,
    /// Restores finished successfully.
    pub restores: u64,
    /// Files written to the phone by the last restore.
    pub files_restored_last_restore: u64,
    /// Notifications posted by hosts (names, in order; the newest [`MAX_NOTIFICATIONS`]).
    pub notifications_posted: Vec<String>,
    /// Passcode prompts shown (one per backup while [`PasscodePrompt`] is not `Off`).
    pub passcode_prompts: u64,
    /// Successful lockdown `Pair` requests.
    pub pairings: u64,
}

#[derive(Debug, Default)]
pub(crate) struct SyncLock {
    pub(crate) holder: Option<u64>,
    pub(crate) refusals_left: u32,
}

pub(crate) struct Inner {
    pub(crate) phone: Phone,
    pub(crate) battery: u8,
    pub(crate) password: Option<String>,
    services: HashMap<u16, ServiceKind>,
    next_port: u16,
    pub(crate) lock: SyncLock,
    pub(crate) afc_files: BTreeMap<String, Vec<u8>>,
    pub(crate) afc_dirs: BTreeSet<String>,
    pub(crate) counters: Counters,
    /// The record usbmuxd serves ([`MUX_RECORD_FILE`]).
    mux_record: Option<Vec<u8>>,
    /// HostIDs the phone trusts ([`TRUSTED_HOSTS_FILE`]).
    trusted_hosts: BTreeSet<String>,
    /// `PairingDialogResponsePending` answers left before the "user" taps Trust.
    pair_pending_left: u32,
    passcode_prompt: PasscodePrompt,
    public_key: Option<Vec<u8>>,
}

/// A simulated device (shared by all its connections).
pub(crate) struct Device {
    pub(crate) identity: Identity,
    pub(crate) pair: PairRecord,
    pub(crate) tls: Arc<rustls::ServerConfig>,
    pub(crate) state_dir: PathBuf,
    pub(crate) device_id: u32,
    pub(crate) connection: ConnectionType,
    pub(crate) faults: FaultPlan,
    pub(crate) kdf: Option<(u32, u32)>,
    pub(crate) churn_after_backup: Option<f64>,
    pairing: PairingMode,
    /// Relayed to notification_proxy connections that observe the name.
    notes: tokio::sync::broadcast::Sender<String>,
    /// Whether the passcode prompt is up; the "user" dismisses it by setting `false`.
    prompt: tokio::sync::watch::Sender<bool>,
    inner: Mutex<Inner>,
    next_id: AtomicU64,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

fn write_trusted(dir: &Path, hosts: &BTreeSet<String>) -> std::io::Result<()> {
    let mut text = String::new();
    for h in hosts {
        text.push_str(h);
        text.push('\n');
    }
    std::fs::write(dir.join(TRUSTED_HOSTS_FILE), text)
}

/// Loads (or initialises) the pairing state of both sides: usbmuxd's record and the phone's
/// trusted hosts. A fresh state folder (or one from before pairing was simulated) starts
/// paired with the generated host record; `unpaired` resets both sides.
fn pairing_state(
    dir: &Path,
    pair: &PairRecord,
    unpaired: bool,
) -> Result<(Option<Vec<u8>>, BTreeSet<String>)> {
    let mux_path = dir.join(MUX_RECORD_FILE);
    let trusted_path = dir.join(TRUSTED_HOSTS_FILE);
    if unpaired {
        match std::fs::remove_file(&mux_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&mux_path, e)),
        }
        let none = BTreeSet::new();
        write_trusted(dir, &none).map_err(io_err(&trusted_path))?;
        return Ok((None, none));
    }
    if trusted_path.exists() {
        let text = std::fs::read_to_string(&trusted_path).map_err(io_err(&trusted_path))?;
        let trusted = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        let record = match std::fs::read(&mux_path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&mux_path, e)),
        };
        return Ok((record, trusted));
    }
    let record = pair.to_xml();
    std::fs::write(&mux_path, &record).map_err(io_err(&mux_path))?;
    let trusted: BTreeSet<String> = [pair.host_id.clone()].into();
    write_trusted(dir, &trusted).map_err(io_err(&trusted_path))?;
    Ok((Some(record), trusted))
}

/// Why lockdown refused a `Pair` request: the lockdown `Error` string a real phone sends.
pub(crate) type PairRefusal = &'static str;

fn tls_config(pair: &PairRecord, udid: &str) -> Result<Arc<rustls::ServerConfig>> {
    let err = |e: &dyn std::fmt::Display| Error::Tls {
        udid: udid.to_string(),
        reason: e.to_string(),
    };
    let cert = CertificateDer::from_pem_slice(&pair.device_certificate).map_err(|e| err(&e))?;
    let key = PrivateKeyDer::from_pem_slice(&pair.device_private_key).map_err(|e| err(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| err(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| err(&e))?;
    Ok(Arc::new(cfg))
}

impl Device {
    /// Loads or creates the device's state.
    pub(crate) fn open(cfg: &DeviceConfig, device_id: u32) -> Result<Device> {
        let dir = &cfg.state_dir;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let identity =
            Identity::load_or_create(dir, cfg.spec.seed, &cfg.spec.product_version, &cfg.identity)?;
        let pair = PairRecord::load_or_create(dir, &identity.wifi_mac)?;
        let tls = tls_config(&pair, &identity.udid)?;
        let phone_dir = dir.join(PHONE_DIR);
        let phone = if phone_dir.join(PHONE_STAMP).exists() {
            Phone::load(&phone_dir).map_err(|source| Error::Phone {
                path: phone_dir.clone(),
                source,
            })?
        } else {
            let p = Phone::generate_in(&cfg.spec, &phone_dir.join("cache")).map_err(|e| {
                Error::Phone {
                    path: phone_dir.clone(),
                    source: std::io::Error::other(e),
                }
            })?;
            p.save(&phone_dir).map_err(|source| Error::Phone {
                path: phone_dir.clone(),
                source,
            })?;
            std::fs::write(phone_dir.join(PHONE_STAMP), b"saved\n")
                .map_err(|e| Error::io(&phone_dir, e))?;
            p
        };
        let pw_path = dir.join(PASSWORD_FILE);
        let password = if pw_path.exists() {
            let p = std::fs::read_to_string(&pw_path).map_err(|e| Error::io(&pw_path, e))?;
            if p.is_empty() { None } else { Some(p) }
        } else {
            std::fs::write(&pw_path, cfg.backup_password.as_deref().unwrap_or(""))
                .map_err(|e| Error::io(&pw_path, e))?;
            cfg.backup_password.clone()
        };
        let mut afc_dirs = BTreeSet::new();
        afc_dirs.insert("/".to_string());
        let (mux_record, trusted_hosts) = pairing_state(dir, &pair, cfg.unpaired)?;
        // Missing (never paired) or unreadable: made again on the next request.
        let public_key = std::fs::read(dir.join(DEVICE_PUBLIC_KEY_FILE)).ok();
        Ok(Device {
            identity,
            pair,
            tls,
            state_dir: dir.clone(),
            device_id,
            connection: cfg.connection,
            faults: cfg.faults.clone(),
            kdf: cfg.kdf,
            churn_after_backup: cfg.churn_after_backup,
            pairing: cfg.pairing,
            notes: tokio::sync::broadcast::channel(64).0,
            prompt: tokio::sync::watch::channel(false).0,
            inner: Mutex::new(Inner {
                phone,
                battery: cfg.battery_level.min(100),
                password,
                services: HashMap::new(),
                next_port: 49152,
                lock: SyncLock {
                    holder: None,
                    refusals_left: cfg.faults.hold_sync_lock.unwrap_or(0),
                },
                afc_files: BTreeMap::new(),
                afc_dirs,
                counters: Counters::default(),
                mux_record,
                trusted_hosts,
                pair_pending_left: match cfg.pairing {
                    PairingMode::AskTrust(n) => n,
                    _ => 0,
                },
                passcode_prompt: cfg.passcode_prompt,
                public_key,
            }),
            next_id: AtomicU64::new(1),
        })
    }

    /// Locks the mutable state. A poisoned lock (a panicking task) still holds usable data.
    pub(crate) fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh id for sessions and AFC connections.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A new lockdown SessionID (UUID-shaped).
    pub(crate) fn new_session_id(&self) -> String {
        format!(
            "{:08X}-0000-4000-8000-{:012X}",
            self.device_id,
            self.next_id()
        )
    }

    /// Allocates a virtual port for a started service.
    pub(crate) fn register_service(&self, kind: ServiceKind) -> u16 {
        let mut g = self.inner();
        let port = g.next_port;
        g.next_port = if g.next_port >= 65000 {
            49152
        } else {
            g.next_port + 1
        };
        g.services.insert(port, kind);
        port
    }

    /// The service started on `port`, consumed by the one connection it was started for.
    pub(crate) fn take_service(&self, port: u16) -> Option<ServiceKind> {
        self.inner().services.remove(&port)
    }

    /// The record usbmuxd serves for this device (`None`: not paired).
    pub(crate) fn mux_record(&self) -> Option<Vec<u8>> {
        self.inner().mux_record.clone()
    }

    /// usbmuxd `SavePairRecord`: keeps (and persists) the host's record.
    pub(crate) fn save_mux_record(&self, record: Vec<u8>) -> std::io::Result<()> {
        std::fs::write(self.state_dir.join(MUX_RECORD_FILE), &record)?;
        self.inner().mux_record = Some(record);
        Ok(())
    }

    /// usbmuxd `DeletePairRecord`: `false` when there was none.
    pub(crate) fn delete_mux_record(&self) -> std::io::Result<bool> {
        let mut g = self.inner();
        if g.mux_record.take().is_none() {
            return Ok(false);
        }
        match std::fs::remove_file(self.state_dir.join(MUX_RECORD_FILE)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Whether lockdown accepts a session from `host_id`.
    pub(crate) fn trusts(&self, host_id: &str) -> bool {
        self.inner().trusted_hosts.contains(host_id)
    }

    /// lockdown `Pair`: validates the host's record, plays the user's part of "Trust This
    /// Computer?" ([`PairingMode`]) and, on trust, remembers the HostID and returns the
    /// EscrowBag a host needs for backups.
    pub(crate) fn pair_host(
        &self,
        req: &plist::Dictionary,
    ) -> std::result::Result<Vec<u8>, PairRefusal> {
        let rec = req
            .get("PairRecord")
            .and_then(plist::Value::as_dictionary)
            .ok_or("InvalidPairRecord")?;
        let host_id = rec
            .get("HostID")
            .and_then(plist::Value::as_string)
            .filter(|h| !h.is_empty() && !h.contains('\n'))
            .ok_or("InvalidHostID")?;
        for key in ["HostCertificate", "RootCertificate", "DeviceCertificate"] {
            if rec.get(key).and_then(plist::Value::as_data).is_none() {
                return Err("InvalidPairRecord");
            }
        }
        let mut g = self.inner();
        match self.pairing {
            PairingMode::Refuse => return Err("UserDeniedPairing"),
            PairingMode::AskTrust(_) if g.pair_pending_left > 0 => {
                g.pair_pending_left -= 1;
                return Err("PairingDialogResponsePending");
            }
            PairingMode::AskTrust(n) => g.pair_pending_left = n,
            PairingMode::Accept => {}
        }
        g.trusted_hosts.insert(host_id.to_string());
        g.counters.pairings += 1;
        write_trusted(&self.state_dir, &g.trusted_hosts).map_err(|_| "InternalError")?;
        Ok(self.pair.escrow_bag.clone())
    }

    /// lockdown `Unpair`: forgets the host; `false` when it was not trusted.
    pub(crate) fn unpair_host(&self, host_id: &str) -> bool {
        let mut g = self.inner();
        let was = g.trusted_hosts.remove(host_id);
        if was {
            let _ = write_trusted(&self.state_dir, &g.trusted_hosts);
        }
        was
    }

    /// lockdown `DevicePublicKey`: the phone's RSA public key (PKCS#1 PEM), the key hosts put
    /// into the DeviceCertificate they generate while pairing. Generated on first use (RSA key
    /// generation takes a moment, and most runs never pair) and kept in the state folder.
    pub(crate) async fn public_key(&self) -> std::io::Result<Vec<u8>> {
        if let Some(k) = self.inner().public_key.clone() {
            return Ok(k);
        }
        let pem = tokio::task::spawn_blocking(|| {
            use rsa::pkcs1::EncodeRsaPublicKey;
            let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
                .map_err(std::io::Error::other)?;
            rsa::RsaPublicKey::from(&key)
                .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
                .map(String::into_bytes)
                .map_err(std::io::Error::other)
        })
        .await
        .map_err(std::io::Error::other)??;
        std::fs::write(self.state_dir.join(DEVICE_PUBLIC_KEY_FILE), &pem)?;
        let mut g = self.inner();
        // Two concurrent first requests: keep the first key stored.
        Ok(g.public_key.get_or_insert(pem).clone())
    }

    /// Posts `name` to every notification_proxy connection observing it.
    pub(crate) fn post(&self, name: &str) {
        let _ = self.notes.send(name.to_string());
    }

    /// A receiver of everything the phone posts.
    pub(crate) fn subscribe_notes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.notes.subscribe()
    }

    /// Called when a host asks for a backup: with a passcode prompt configured, shows it
    /// (posting [`NOTE_PASSCODE_PRESENTED`]) and returns only once it is dismissed — after the
    /// configured time or [`DeviceHandle::dismiss_passcode_prompt`] — posting
    /// [`NOTE_PASSCODE_DISMISSED`]. Meanwhile the phone sends nothing on mobilebackup2.
    pub(crate) async fn passcode_gate(&self) {
        let mode = {
            let mut g = self.inner();
            if g.passcode_prompt != PasscodePrompt::Off {
                g.counters.passcode_prompts += 1;
            }
            g.passcode_prompt
        };
        let limit = match mode {
            PasscodePrompt::Off => return,
            PasscodePrompt::For(d) => Some(d),
            PasscodePrompt::UntilDismissed => None,
        };
        let mut rx = self.prompt.subscribe();
        self.prompt.send_replace(true);
        self.post(NOTE_PASSCODE_PRESENTED);
        let dismissed = rx.wait_for(|up| !*up);
        match limit {
            Some(d) => {
                let _ = tokio::time::timeout(d, dismissed).await;
            }
            None => {
                let _ = dismissed.await;
            }
        }
        self.prompt.send_replace(false);
        self.post(NOTE_PASSCODE_DISMISSED);
    }

    /// Persists a changed backup password.
    pub(crate) fn set_password(&self, password: Option<String>) -> std::io::Result<()> {
        let path = self.state_dir.join(PASSWORD_FILE);
        std::fs::write(&path, password.as_deref().unwrap_or(""))?;
        self.inner().password = password;
        Ok(())
    }

    /// Persists the phone after a change.
    pub(crate) fn save_phone(&self) -> std::io::Result<()> {
        let dir = self.state_dir.join(PHONE_DIR);
        self.inner().phone.save(&dir)
    }

    /// The lockdown `GetValue` answer for `domain`/`key`.
    pub(crate) fn lockdown_value(
        &self,
        domain: Option<&str>,
        key: Option<&str>,
    ) -> Option<plist::Value> {
        let g = self.inner();
        let used: u64 = g.phone.files().map(|f| f.meta.size).sum();
        let d = match domain {
            None => self.identity.to_dict(),
            Some("com.apple.mobile.backup") => dict([
                ("WillEncrypt", g.password.is_some().into()),
                ("CloudBackupEnabled", false.into()),
                ("RequiresEncrypt", false.into()),
            ]),
            Some("com.apple.mobile.battery") => dict([
                (
                    "BatteryCurrentCapacity",
                    plist::Value::Integer(u64::from(g.battery).into()),
                ),
                ("BatteryIsCharging", (g.battery < 100).into()),
                ("ExternalChargeCapable", true.into()),
                ("ExternalConnected", true.into()),
                ("FullyCharged", (g.battery >= 100).into()),
                ("HasBattery", true.into()),
            ]),
            Some("com.apple.disk_usage") => {
                let total: u64 = 128_000_000_000;
                let system: u64 = 12_000_000_000;
                let data = total - system;
                let avail = data.saturating_sub(used);
                dict([
                    ("TotalDiskCapacity", plist::Value::Integer(total.into())),
                    ("TotalSystemCapacity", plist::Value::Integer(system.into())),
                    (
                        "TotalSystemAvailable",
                        plist::Value::Integer(1_000_000_000u64.into()),
                    ),
                    ("TotalDataCapacity", plist::Value::Integer(data.into())),
                    ("TotalDataAvailable", plist::Value::Integer(avail.into())),
                    ("AmountDataAvailable", plist::Value::Integer(avail.into())),
                    (
                        "AmountDataReserved",
                        plist::Value::Integer(200_000_000u64.into()),
                    ),
                ])
            }
            Some("com.apple.iTunes") => dict([
                ("MinITunesVersion", "12.5.1".into()),
                ("64Bit", plist::Value::Integer(1u64.into())),
            ]),
            Some("com.apple.mobile.iTunes") => dict([("MinITunesVersion", "12.5.1".into())]),
            Some("com.apple.international") => {
                dict([("Locale", "en_US".into()), ("Language", "en".into())])
            }
            Some(_) => return None,
        };
        match key {
            None => Some(plist::Value::Dictionary(d)),
            Some(k) => d.get(k).cloned(),
        }
    }
}

/// The public view of a running simulated device.
#[derive(Clone)]
pub struct DeviceHandle {
    pub(crate) dev: Arc<Device>,
}

impl DeviceHandle {
    /// The UDID.
    pub fn udid(&self) -> &str {
        &self.dev.identity.udid
    }

    /// The usbmuxd DeviceID.
    pub fn device_id(&self) -> u32 {
        self.dev.device_id
    }

    /// The identity lockdown reports.
    pub fn identity(&self) -> &Identity {
        &self.dev.identity
    }

    /// The pair record usbmuxd serves.
    pub fn pair_record(&self) -> &PairRecord {
        &self.dev.pair
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.dev.state_dir
    }

    /// Battery level (0–100).
    pub fn battery(&self) -> u8 {
        self.dev.inner().battery
    }

    /// Sets the battery level (clamped to 100).
    pub fn set_battery(&self, level: u8) {
        self.dev.inner().battery = level.min(100);
    }

    /// Whether backups are encrypted (lockdown `com.apple.mobile.backup`/`WillEncrypt`).
    pub fn will_encrypt(&self) -> bool {
        self.dev.inner().password.is_some()
    }

    /// The current backup password.
    pub fn backup_password(&self) -> Option<String> {
        self.dev.inner().password.clone()
    }

    /// What the device did so far.
    pub fn counters(&self) -> Counters {
        self.dev.inner().counters.clone()
    }

    /// Runs `f` on the phone (read-only), e.g. to compare a backup with it.
    pub fn with_phone<T>(&self, f: impl FnOnce(&Phone) -> T) -> T {
        f(&self.dev.inner().phone)
    }

    /// Changes about `share` of the phone's files (as time passing would) and saves the phone.
    pub fn churn(&self, share: f64) -> std::io::Result<()> {
        self.dev
            .inner()
            .phone
            .churn(share)
            .map_err(std::io::Error::other)?;
        self.dev.save_phone()
    }

    /// A file a host wrote over AFC (e.g. `/iTunesRestore/RestoreApplications.plist`).
    pub fn afc_file(&self, path: &str) -> Option<Vec<u8>> {
        self.dev.inner().afc_files.get(path).cloned()
    }

    /// Whether usbmuxd has a pair record for this device (`ReadPairRecord` would succeed).
    pub fn has_pair_record(&self) -> bool {
        self.dev.inner().mux_record.is_some()
    }

    /// The record usbmuxd serves for this device, as stored (XML or binary plist).
    pub fn mux_pair_record(&self) -> Option<Vec<u8>> {
        self.dev.mux_record()
    }

    /// The HostIDs the phone trusts (a host it paired with and did not unpair).
    pub fn trusted_hosts(&self) -> Vec<String> {
        self.dev.inner().trusted_hosts.iter().cloned().collect()
    }

    /// The phone forgets every computer it trusted, as after "Reset Location & Privacy" or an
    /// erase, while usbmuxd keeps its (now stale) pair record: the next session is refused
    /// with `InvalidHostID`. Persisted in the state folder.
    pub fn forget_trusted_hosts(&self) -> std::io::Result<()> {
        let mut g = self.dev.inner();
        g.trusted_hosts.clear();
        write_trusted(&self.dev.state_dir, &g.trusted_hosts)
    }

    /// Changes the passcode prompt of the next backups.
    pub fn set_passcode_prompt(&self, prompt: PasscodePrompt) {
        self.dev.inner().passcode_prompt = prompt;
    }

    /// Whether the passcode prompt is up right now.
    pub fn passcode_prompt_shown(&self) -> bool {
        *self.dev.prompt.borrow()
    }

    /// The user enters the passcode: the prompt (if up) goes away and the backup goes on.
    pub fn dismiss_passcode_prompt(&self) {
        self.dev
            .prompt
            .send_if_modified(|up| std::mem::replace(up, false));
    }

    /// Whether a host currently holds the iTunes sync lock.
    pub fn sync_lock_held(&self) -> bool {
        self.dev.inner().lock.holder.is_some()
    }
}
