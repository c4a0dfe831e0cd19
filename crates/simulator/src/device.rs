//! One simulated device: identity, pairing, TLS, the phone, and the mutable state the
//! services share (battery, backup password, started services, sync lock, AFC files,
//! counters). Also [`DeviceHandle`], the public view tests and the CLI use.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ConnectionType, DeviceConfig, FaultPlan};
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
    inner: Mutex<Inner>,
    next_id: AtomicU64,
}

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

    /// Whether a host currently holds the iTunes sync lock.
    pub fn sync_lock_held(&self) -> bool {
        self.dev.inner().lock.holder.is_some()
    }
}
