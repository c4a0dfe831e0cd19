//! [`DeviceSession`]: one paired phone, reachable through usbmuxd, with its pair record loaded.
//!
//! Every operation opens a fresh lockdown connection with a TLS session (as idevicebackup2 does
//! for each helper service), so a long backup never depends on one lockdown socket staying
//! healthy. Lockdown, TLS and pairing come from `idevice`; the pair record lookup order
//! (usbmuxd, then `/var/lib/lockdown/<UDID>.plist`, then pairing and `SavePairRecord`) is ours,
//! and so is [`forget_pairing`] (usbmuxd `DeletePairRecord`, lockdown `Unpair`), which
//! `idevice` does not offer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use idevice::Idevice;
use idevice::lockdown::LockdownClient;
use idevice::pairing_file::PairingFile;

use crate::error::{Error, Result, from_idevice};
use crate::mux::{DeviceInfo, LOCKDOWN_PORT, MuxAddr, MuxConn, find_device};
use crate::wire;
use crate::wire::Stream;

/// Where usbmuxd keeps pair records on Linux (read when usbmuxd itself does not return one,
/// e.g. a different usbmuxd implementation or a record copied from another machine).
pub const DEFAULT_LOCKDOWN_DIR: &str = "/var/lib/lockdown";

/// Knobs of a session; the defaults match what real phones and LIMD expect.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Directory with `<UDID>.plist` pair records, consulted when usbmuxd has none.
    pub lockdown_dir: PathBuf,
    /// Pair with the phone when no record exists (the user must tap Trust).
    pub allow_pairing: bool,
    /// How long to wait for the user to tap Trust while pairing.
    pub pair_wait: Duration,
    /// How long the phone may stay silent before an operation fails with [`Error::Timeout`].
    /// Generous by default (10 min): a real phone can prepare a large backup for minutes
    /// before its first DeviceLink message; LIMD simply keeps waiting.
    pub idle_timeout: Duration,
    /// Attempts to take the sync lock while another program holds it (LIMD: 50).
    pub sync_lock_attempts: u32,
    /// Pause between sync lock attempts (LIMD: 200 ms).
    pub sync_lock_interval: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            lockdown_dir: PathBuf::from(DEFAULT_LOCKDOWN_DIR),
            allow_pairing: true,
            pair_wait: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(600),
            sync_lock_attempts: 50,
            sync_lock_interval: Duration::from_millis(200),
        }
    }
}

/// What the CLI shows about a phone (`iosnap devices`, before a backup).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceValues {
    /// UDID.
    pub udid: String,
    /// The name the user gave the phone.
    pub device_name: String,
    /// Model identifier, e.g. `iPhone15,2`.
    pub product_type: String,
    /// iOS version, e.g. `17.5`.
    pub product_version: String,
    /// Build, e.g. `21F79`.
    pub build_version: String,
    /// Serial number.
    pub serial_number: String,
    /// IMEI, when the phone has a modem.
    pub imei: Option<String>,
    /// Phone number, when a SIM reports one.
    pub phone_number: Option<String>,
    /// Battery percentage (`com.apple.mobile.battery` BatteryCurrentCapacity).
    pub battery_level: Option<u64>,
    /// Whether it is charging (`BatteryIsCharging`).
    pub battery_charging: Option<bool>,
    /// Whether backups are encrypted (`com.apple.mobile.backup` WillEncrypt).
    pub will_encrypt: bool,
    /// Data partition size in bytes (`com.apple.disk_usage`).
    pub total_capacity: Option<u64>,
    /// Bytes in use on the data partition.
    pub used_capacity: Option<u64>,
    /// Every lockdown value (GetValue without key), for Info.plist and `--json`.
    pub all: plist::Dictionary,
}

/// A phone, found and paired.
#[derive(Debug)]
pub struct DeviceSession {
    mux: MuxAddr,
    device: DeviceInfo,
    pairing: PairingFile,
    opts: SessionOptions,
}

impl DeviceSession {
    /// Finds `udid` through usbmuxd at `mux`, loads (or creates) its pair record and checks that a
    /// TLS lockdown session works.
    pub async fn connect(mux: &MuxAddr, udid: &str) -> Result<DeviceSession> {
        DeviceSession::connect_with(mux, udid, SessionOptions::default()).await
    }

    /// [`DeviceSession::connect`] with explicit options.
    pub async fn connect_with(
        mux: &MuxAddr,
        udid: &str,
        opts: SessionOptions,
    ) -> Result<DeviceSession> {
        let device = find_device(mux, udid).await?;
        let pairing = match load_pair_record(mux, &device.udid, &opts.lockdown_dir).await? {
            Some(p) => p,
            None if opts.allow_pairing => pair(mux, &device, &opts).await?,
            None => {
                return Err(Error::Pairing {
                    udid: device.udid.clone(),
                    reason: "this computer is not paired with the phone: run `iosnap backup` (it pairs) or `idevicepair pair`, and tap Trust on the phone".into(),
                    retryable: false,
                });
            }
        };
        let mut s = DeviceSession {
            mux: mux.clone(),
            device,
            pairing,
            opts,
        };
        // Prove the pair record works now, not half way into a backup.
        let mut ld = match s.lockdown().await {
            Ok(ld) => ld,
            Err(Error::PairRecordRejected { .. }) if s.opts.allow_pairing => {
                // The phone forgot this computer (erased, "Reset Location & Privacy", or
                // unpaired elsewhere). Do what Finder does: drop the stale record and pair
                // again, which puts "Trust This Computer?" on the phone.
                forget_stale_record(mux, &s.device.udid, &s.opts.lockdown_dir).await;
                s.pairing = pair(mux, &s.device, &s.opts).await?;
                s.lockdown().await?
            }
            Err(e) => return Err(e),
        };
        s.stop(&mut ld).await;
        Ok(s)
    }

    /// The phone's UDID as usbmuxd reports it.
    pub fn udid(&self) -> &str {
        &self.device.udid
    }

    /// How the phone is attached.
    pub fn device(&self) -> &DeviceInfo {
        &self.device
    }

    /// The options this session runs with.
    pub fn options(&self) -> &SessionOptions {
        &self.opts
    }

    pub(crate) fn escrow_bag(&self) -> Option<Vec<u8>> {
        self.pairing.escrow_bag.clone()
    }

    /// Opens a raw pipe to a port on the phone.
    pub(crate) async fn connect_port(&self, port: u16) -> Result<Box<dyn Stream>> {
        let conn = MuxConn::open(&self.mux).await?;
        match conn.connect(self.device.device_id, port).await {
            Ok(s) => Ok(s),
            Err(Error::MuxRefused { code: 2, .. }) => Err(Error::Disconnected {
                udid: self.device.udid.clone(),
                during: format!("connecting to port {port} (usbmuxd no longer has the device)"),
            }),
            Err(e) => Err(e),
        }
    }

    async fn timed<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = std::result::Result<T, idevice::IdeviceError>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.opts.idle_timeout, fut).await {
            Ok(r) => r.map_err(|e| from_idevice(&self.device.udid, what, e)),
            Err(_) => Err(Error::Timeout {
                udid: self.device.udid.clone(),
                during: what.to_string(),
                secs: self.opts.idle_timeout.as_secs(),
            }),
        }
    }

    /// A lockdown connection with a TLS session.
    pub(crate) async fn lockdown(&self) -> Result<LockdownClient> {
        let io = self.connect_port(LOCKDOWN_PORT).await?;
        let mut ld = LockdownClient::new(Idevice::new(Box::new(io), "iosnap"));
        let kind = self.timed("QueryType", ld.idevice.get_type()).await?;
        if kind != "com.apple.mobile.lockdown" {
            return Err(Error::Lockdown {
                udid: self.device.udid.clone(),
                request: "QueryType".into(),
                message: format!("the phone is in {kind} mode, not normal mode"),
            });
        }
        self.timed("StartSession", ld.start_session(&self.pairing))
            .await?;
        Ok(ld)
    }

    async fn stop(&self, ld: &mut LockdownClient) {
        let _ = tokio::time::timeout(Duration::from_secs(5), ld.stop_session()).await;
    }

    /// Starts a lockdown service and returns a pipe to it (TLS-wrapped if the phone asks).
    pub(crate) async fn start_service(
        &self,
        name: &str,
        with_escrow: bool,
    ) -> Result<Box<dyn Stream>> {
        let mut ld = self.lockdown().await?;
        let escrow = if with_escrow { self.escrow_bag() } else { None };
        if with_escrow && escrow.is_none() {
            return Err(Error::BadPairRecord {
                udid: self.device.udid.clone(),
                source_name: "pair record".into(),
                reason: "it has no EscrowBag, which mobilebackup2 needs".into(),
            });
        }
        let what = format!("StartService {name}");
        let (port, ssl) = self
            .timed(&what, ld.start_service_with_escrow(name, escrow))
            .await?;
        self.stop(&mut ld).await;
        drop(ld);
        let io = self.connect_port(port).await?;
        if !ssl {
            return Ok(io);
        }
        let mut idev = Idevice::new(Box::new(io), "iosnap");
        self.timed(
            &format!("TLS for {name}"),
            idev.start_session(&self.pairing, false),
        )
        .await?;
        match idev.get_socket() {
            Some(s) => Ok(Box::new(s)),
            None => Err(Error::protocol(what, "TLS session lost its socket")),
        }
    }

    /// Reads one lockdown value (`None` when the phone does not have it).
    pub(crate) async fn get_value(
        &self,
        domain: Option<&str>,
        key: Option<&str>,
    ) -> Result<Option<plist::Value>> {
        let mut ld = self.lockdown().await?;
        let r = tokio::time::timeout(self.opts.idle_timeout, ld.get_value(key, domain)).await;
        self.stop(&mut ld).await;
        match r {
            Ok(Ok(v)) => Ok(Some(v)),
            Ok(Err(idevice::IdeviceError::UnexpectedResponse(_)))
            | Ok(Err(idevice::IdeviceError::UnknownErrorType(_))) => Ok(None),
            Ok(Err(e)) => Err(from_idevice(&self.device.udid, "GetValue", e)),
            Err(_) => Err(Error::Timeout {
                udid: self.device.udid.clone(),
                during: "GetValue".into(),
                secs: self.opts.idle_timeout.as_secs(),
            }),
        }
    }

    /// Whether the phone encrypts its backups (`com.apple.mobile.backup` / `WillEncrypt`).
    pub async fn will_encrypt(&self) -> Result<bool> {
        Ok(self
            .get_value(Some("com.apple.mobile.backup"), Some("WillEncrypt"))
            .await?
            .and_then(|v| v.as_boolean())
            .unwrap_or(false))
    }

    /// Name, model, iOS version, serial, IMEI, phone number, battery, encryption and capacity.
    pub async fn values(&self) -> Result<DeviceValues> {
        let all = match self.get_value(None, None).await? {
            Some(plist::Value::Dictionary(d)) => d,
            _ => {
                return Err(Error::Lockdown {
                    udid: self.device.udid.clone(),
                    request: "GetValue".into(),
                    message: "the phone returned no values".into(),
                });
            }
        };
        let battery = self
            .get_value(Some("com.apple.mobile.battery"), None)
            .await?;
        let disk = self.get_value(Some("com.apple.disk_usage"), None).await?;
        let will_encrypt = self.will_encrypt().await?;
        let s = |k: &str| all.get(k).and_then(|v| v.as_string()).map(str::to_string);
        let bat = battery.as_ref().and_then(|v| v.as_dictionary());
        let disk = disk.as_ref().and_then(|v| v.as_dictionary());
        let du = |k: &str| {
            disk.and_then(|d| d.get(k))
                .and_then(|v| v.as_unsigned_integer())
        };
        let total = du("TotalDataCapacity").or_else(|| du("TotalDiskCapacity"));
        let avail = du("TotalDataAvailable").or_else(|| du("AmountDataAvailable"));
        Ok(DeviceValues {
            udid: s("UniqueDeviceID").unwrap_or_else(|| self.device.udid.clone()),
            device_name: s("DeviceName").unwrap_or_default(),
            product_type: s("ProductType").unwrap_or_default(),
            product_version: s("ProductVersion").unwrap_or_default(),
            build_version: s("BuildVersion").unwrap_or_default(),
            serial_number: s("SerialNumber").unwrap_or_default(),
            imei: s("InternationalMobileEquipmentIdentity"),
            phone_number: s("PhoneNumber"),
            battery_level: bat
                .and_then(|d| d.get("BatteryCurrentCapacity"))
                .and_then(|v| v.as_unsigned_integer()),
            battery_charging: bat
                .and_then(|d| d.get("BatteryIsCharging"))
                .and_then(|v| v.as_boolean()),
            will_encrypt,
            total_capacity: total,
            used_capacity: match (total, avail) {
                (Some(t), Some(a)) => Some(t.saturating_sub(a)),
                _ => None,
            },
            all,
        })
    }
}

/// Reads the pair record: usbmuxd first, then `<lockdown_dir>/<udid>.plist`.
pub(crate) async fn load_pair_record(
    mux: &MuxAddr,
    udid: &str,
    lockdown_dir: &Path,
) -> Result<Option<PairingFile>> {
    let mut conn = MuxConn::open(mux).await?;
    if let Some(bytes) = conn.read_pair_record(udid).await? {
        return PairingFile::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| Error::BadPairRecord {
                udid: udid.to_string(),
                source_name: "usbmuxd".into(),
                reason: e.to_string(),
            });
    }
    read_pair_record_file(lockdown_dir, udid)
}

/// Reads `<dir>/<udid>.plist` (`Ok(None)` when there is no such file).
pub fn read_pair_record_file(dir: &Path, udid: &str) -> Result<Option<PairingFile>> {
    check_udid(udid)?;
    let path = dir.join(format!("{udid}.plist"));
    match crate::store::read_optional(&path, 1024 * 1024)? {
        None => Ok(None),
        Some(bytes) => {
            PairingFile::from_bytes(&bytes)
                .map(Some)
                .map_err(|e| Error::BadPairRecord {
                    udid: udid.to_string(),
                    source_name: path.display().to_string(),
                    reason: e.to_string(),
                })
        }
    }
}

/// A UDID is used as a file name: refuse anything that could leave the directory.
fn check_udid(udid: &str) -> Result<()> {
    if udid.is_empty() || udid.contains('/') || udid.contains('\0') || udid.starts_with('.') {
        return Err(Error::InvalidRequest(format!("not a UDID: {udid:?}")));
    }
    Ok(())
}

fn new_host_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode_upper(b);
    format!(
        "{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or_default(),
        h.get(8..12).unwrap_or_default(),
        h.get(12..16).unwrap_or_default(),
        h.get(16..20).unwrap_or_default(),
        h.get(20..32).unwrap_or_default()
    )
}

/// How often a pending "Trust This Computer?" dialog is asked about again (LIMD and idevice
/// also poll once a second; the phone has no event for it).
const PAIR_POLL: Duration = Duration::from_secs(1);

/// Checks the phone's `DevicePublicKey` before pairing: `idevice` builds the certificates from
/// it with an `unwrap`, so a key it cannot parse must be rejected here, with our error.
async fn check_device_public_key(
    ld: &mut LockdownClient,
    udid: &str,
    wait: Duration,
) -> Result<()> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    let bad = |reason: String| Error::Pairing {
        udid: udid.to_string(),
        reason: format!("the phone's public key cannot be used for pairing: {reason}"),
        retryable: false,
    };
    let v = match tokio::time::timeout(wait, ld.get_value(Some("DevicePublicKey"), None)).await {
        Ok(r) => r.map_err(|e| from_idevice(udid, "GetValue DevicePublicKey", e))?,
        Err(_) => {
            return Err(Error::Timeout {
                udid: udid.to_string(),
                during: "GetValue DevicePublicKey".into(),
                secs: wait.as_secs(),
            });
        }
    };
    let pem = v
        .as_data()
        .ok_or_else(|| bad("it is not data".into()))
        .and_then(|d| std::str::from_utf8(d).map_err(|_| bad("it is not PEM text".into())))?;
    rsa::RsaPublicKey::from_pkcs1_pem(pem)
        .map(|_| ())
        .map_err(|e| bad(e.to_string()))
}

/// Pairs with the phone (the user taps Trust) and stores the record in usbmuxd.
///
/// The phone answers `PairingDialogResponsePending` while "Trust This Computer?" is on its
/// screen; the request is repeated until the user answers or [`SessionOptions::pair_wait`]
/// runs out. "Don't Trust" ends it at once with [`Error::Pairing`].
async fn pair(mux: &MuxAddr, device: &DeviceInfo, opts: &SessionOptions) -> Result<PairingFile> {
    let udid = device.udid.clone();
    let buid = MuxConn::open(mux).await?.read_buid().await?;
    let io = MuxConn::open(mux)
        .await?
        .connect(device.device_id, LOCKDOWN_PORT)
        .await?;
    let mut ld = LockdownClient::new(Idevice::new(Box::new(io), "iosnap"));
    check_device_public_key(&mut ld, &udid, opts.idle_timeout).await?;
    let host_id = new_host_id();
    let host_name = std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "iosnap".into());
    let deadline = tokio::time::Instant::now() + opts.pair_wait;
    let record = loop {
        // Run in its own task: certificate generation in `idevice` panics on data it cannot
        // use, and a panic there must become an error, not take the program down.
        let (h, b, n) = (host_id.clone(), buid.clone(), host_name.clone());
        let wait = opts.idle_timeout;
        let attempt = tokio::spawn(async move {
            let r = tokio::time::timeout(wait, ld.pair_once(h, b, Some(&n))).await;
            (ld, r)
        })
        .await;
        let r = match attempt {
            Ok((back, r)) => {
                ld = back;
                r
            }
            Err(e) => {
                return Err(Error::Pairing {
                    udid,
                    reason: format!("pairing failed on this computer: {e}"),
                    retryable: false,
                });
            }
        };
        match r {
            Ok(Ok(p)) => break p,
            Ok(Err(idevice::IdeviceError::PairingDialogResponsePending))
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(PAIR_POLL).await;
            }
            Ok(Err(idevice::IdeviceError::PairingDialogResponsePending)) => {
                return Err(Error::Pairing {
                    udid,
                    reason: format!(
                        "the phone asks \"Trust This Computer?\": unlock it and tap Trust, then retry (no answer within {} s)",
                        opts.pair_wait.as_secs()
                    ),
                    retryable: true,
                });
            }
            Ok(Err(e)) => return Err(from_idevice(&udid, "Pair", e)),
            Err(_) => {
                return Err(Error::Timeout {
                    udid,
                    during: "Pair".into(),
                    secs: wait.as_secs(),
                });
            }
        }
    };
    let bytes = record
        .clone()
        .serialize()
        .map_err(|e| from_idevice(&udid, "Pair", e))?;
    MuxConn::open(mux)
        .await?
        .save_pair_record(&udid, device.device_id, bytes)
        .await?;
    Ok(record)
}

/// Deletes a pair record the phone refused, from usbmuxd and from `lockdown_dir`, so the
/// pairing that follows stores a fresh one. Best effort: a record that cannot be deleted is
/// replaced by the new pairing anyway (usbmuxd `SavePairRecord` overwrites it).
async fn forget_stale_record(mux: &MuxAddr, udid: &str, lockdown_dir: &Path) {
    if let Ok(mut conn) = MuxConn::open(mux).await {
        let _ = conn.delete_pair_record(udid).await;
    }
    if check_udid(udid).is_ok() {
        let _ = std::fs::remove_file(lockdown_dir.join(format!("{udid}.plist")));
    }
}

/// What [`forget_pairing`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForgottenPairing {
    /// usbmuxd had a pair record for the phone and deleted it (`DeletePairRecord`).
    pub usbmuxd_record: bool,
    /// The `<lockdown_dir>/<UDID>.plist` file that was removed here (usbmuxd not running, or
    /// a record copied there by hand).
    pub file_removed: Option<PathBuf>,
    /// The phone was connected and forgot this computer too (lockdown `Unpair`), so it will
    /// ask "Trust This Computer?" again.
    pub phone_unpaired: bool,
}

/// Forgets this computer's pairing with a phone (`iosnap forget`): asks the phone to forget
/// the host when it is connected (best effort), deletes usbmuxd's pair record, and removes
/// `<lockdown_dir>/<UDID>.plist` if it is still there. The next session has to pair again,
/// and the user has to tap Trust. A missing usbmuxd is not an error: the file is still removed.
pub async fn forget_pairing(
    mux: &MuxAddr,
    udid: &str,
    opts: &SessionOptions,
) -> Result<ForgottenPairing> {
    check_udid(udid)?;
    let mut out = ForgottenPairing::default();
    let conn = match MuxConn::open(mux).await {
        Ok(c) => Some(c),
        Err(Error::NoUsbmuxd { .. } | Error::MuxUnreachable { .. }) => None,
        Err(e) => return Err(e),
    };
    if let Some(mut conn) = conn {
        let from_mux = conn
            .read_pair_record(udid)
            .await?
            .and_then(|b| PairingFile::from_bytes(&b).ok());
        let record = match from_mux {
            Some(r) => Some(r),
            None => read_pair_record_file(&opts.lockdown_dir, udid).unwrap_or(None),
        };
        if let Some(record) = &record
            && let Ok(device) = find_device(mux, udid).await
        {
            out.phone_unpaired = unpair_on_phone(mux, &device, record).await;
        }
        out.usbmuxd_record = MuxConn::open(mux).await?.delete_pair_record(udid).await?;
    }
    let path = opts.lockdown_dir.join(format!("{udid}.plist"));
    match std::fs::remove_file(&path) {
        Ok(()) => out.file_removed = Some(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path, e)),
    }
    Ok(out)
}

/// lockdown `Unpair` with the record's HostID; `true` when the phone confirmed.
async fn unpair_on_phone(mux: &MuxAddr, device: &DeviceInfo, record: &PairingFile) -> bool {
    let attempt = async {
        let mut io = MuxConn::open(mux)
            .await?
            .connect(device.device_id, LOCKDOWN_PORT)
            .await?;
        let mut pr = plist::Dictionary::new();
        pr.insert("HostID".into(), record.host_id.clone().into());
        let mut req = plist::Dictionary::new();
        req.insert("Label".into(), "iosnap".into());
        req.insert("Request".into(), "Unpair".into());
        req.insert("PairRecord".into(), plist::Value::Dictionary(pr));
        req.insert("ProtocolVersion".into(), "2".into());
        wire::write_plist(&mut io, &plist::Value::Dictionary(req), false)
            .await
            .map_err(|e| Error::protocol("Unpair", e.to_string()))?;
        let reply = wire::read_plist(&mut io)
            .await
            .map_err(|e| Error::protocol("Unpair", e.to_string()))?;
        Ok::<bool, Error>(
            reply
                .as_dictionary()
                .and_then(|d| d.get("Result"))
                .and_then(|v| v.as_string())
                == Some("Success"),
        )
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(10), attempt).await,
        Ok(Ok(true))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_record_file_fallback() {
        let d = tempfile::tempdir().unwrap();
        assert!(
            read_pair_record_file(d.path(), "0000-abc")
                .unwrap()
                .is_none()
        );
        std::fs::write(d.path().join("0000-abc.plist"), b"not a plist").unwrap();
        let e = read_pair_record_file(d.path(), "0000-abc").unwrap_err();
        assert!(matches!(e, Error::BadPairRecord { .. }), "{e}");
        assert!(e.to_string().contains("0000-abc.plist"));
        assert!(read_pair_record_file(d.path(), "../etc/x").is_err());
    }

    #[test]
    fn host_ids_look_like_uuids() {
        let a = new_host_id();
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        assert_ne!(a, new_host_id());
    }
}
