//! Who the simulated device is, and the pairing material a host needs to talk to it.
//!
//! Both are created on first start and kept in the device's state directory, so a restarted
//! simulator is the *same* phone: same UDID, same certificates, same EscrowBag, and backups
//! made before the restart stay incremental.

use std::path::Path;

use rand::{Rng, RngCore, SeedableRng};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
};

use crate::error::{Error, Result};
use crate::io::dict;

/// File (in the state directory) holding [`Identity`].
pub const IDENTITY_FILE: &str = "identity.plist";
/// File holding the pair record served by usbmuxd `ReadPairRecord`.
pub const PAIR_RECORD_FILE: &str = "pair_record.plist";
/// File holding the device's private TLS key (never part of the pair record).
pub const DEVICE_KEY_FILE: &str = "device_key.pem";

/// The device values lockdownd reports (`GetValue`) and backups copy into Info.plist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// UDID (40 lowercase hex digits).
    pub udid: String,
    /// User-visible name, e.g. "Sim iPhone 1".
    pub device_name: String,
    /// Hardware identifier, e.g. "iPhone14,2".
    pub product_type: String,
    /// iOS version (≥ 10: libimobiledevice limits TLS to 1.0 below that, rustls cannot).
    pub product_version: String,
    /// iOS build, e.g. "21F79".
    pub build_version: String,
    /// Serial number.
    pub serial_number: String,
    /// IMEI.
    pub imei: String,
    /// Phone number, e.g. "+1 555 0100".
    pub phone_number: String,
    /// ECID.
    pub unique_chip_id: u64,
    /// Wi-Fi MAC address.
    pub wifi_mac: String,
}

/// Values a [`crate::DeviceConfig`] may force instead of generated ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityOverrides {
    /// Force the UDID.
    pub udid: Option<String>,
    /// Force the device name.
    pub device_name: Option<String>,
    /// Force the product type.
    pub product_type: Option<String>,
    /// Force the iOS version.
    pub product_version: Option<String>,
    /// Force the serial number.
    pub serial_number: Option<String>,
    /// Force the IMEI.
    pub imei: Option<String>,
    /// Force the phone number.
    pub phone_number: Option<String>,
}

fn get_str(d: &plist::Dictionary, k: &str, path: &Path) -> Result<String> {
    d.get(k)
        .and_then(plist::Value::as_string)
        .map(str::to_string)
        .ok_or_else(|| Error::State {
            path: path.to_path_buf(),
            reason: format!("missing string {k}"),
        })
}

fn get_data(d: &plist::Dictionary, k: &str, path: &Path) -> Result<Vec<u8>> {
    d.get(k)
        .and_then(plist::Value::as_data)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| Error::State {
            path: path.to_path_buf(),
            reason: format!("missing data {k}"),
        })
}

fn read_dict(path: &Path) -> Result<plist::Dictionary> {
    let v = plist::Value::from_file(path).map_err(|e| Error::State {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    v.into_dictionary().ok_or_else(|| Error::State {
        path: path.to_path_buf(),
        reason: "not a dictionary".into(),
    })
}

fn write_dict(path: &Path, d: plist::Dictionary) -> Result<()> {
    plist::Value::Dictionary(d)
        .to_file_xml(path)
        .map_err(|e| Error::State {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

fn hex_digits(rng: &mut impl RngCore, n: usize) -> String {
    let mut b = vec![0u8; n.div_ceil(2)];
    rng.fill_bytes(&mut b);
    let mut s = hex::encode(b);
    s.truncate(n);
    s
}

impl Identity {
    /// Generates an identity from `seed` (deterministic), applying overrides.
    pub fn generate(seed: u64, product_version: &str, o: &IdentityOverrides) -> Identity {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5157_1d3e);
        let udid = hex_digits(&mut rng, 40);
        let serial = hex_digits(&mut rng, 12).to_uppercase();
        let imei: String = (0..15)
            .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
            .collect();
        let mac: Vec<String> = (0..6)
            .map(|_| format!("{:02x}", rng.r#gen::<u8>()))
            .collect();
        Identity {
            udid: o.udid.clone().unwrap_or(udid),
            device_name: o
                .device_name
                .clone()
                .unwrap_or_else(|| format!("Sim iPhone {}", seed % 1000)),
            product_type: o
                .product_type
                .clone()
                .unwrap_or_else(|| "iPhone14,2".into()),
            product_version: o
                .product_version
                .clone()
                .unwrap_or_else(|| product_version.to_string()),
            build_version: "21F79".into(),
            serial_number: o.serial_number.clone().unwrap_or(serial),
            imei: o.imei.clone().unwrap_or(imei),
            phone_number: o
                .phone_number
                .clone()
                .unwrap_or_else(|| format!("+1 555 01{:02}", seed % 100)),
            unique_chip_id: rng.r#gen::<u64>() >> 12,
            wifi_mac: mac.join(":"),
        }
    }

    /// Loads the identity from `dir`, or generates and saves it.
    pub fn load_or_create(
        dir: &Path,
        seed: u64,
        product_version: &str,
        o: &IdentityOverrides,
    ) -> Result<Identity> {
        let path = dir.join(IDENTITY_FILE);
        if path.exists() {
            let d = read_dict(&path)?;
            let chip = d
                .get("UniqueChipID")
                .and_then(plist::Value::as_unsigned_integer)
                .unwrap_or(0);
            return Ok(Identity {
                udid: get_str(&d, "UniqueDeviceID", &path)?,
                device_name: get_str(&d, "DeviceName", &path)?,
                product_type: get_str(&d, "ProductType", &path)?,
                product_version: get_str(&d, "ProductVersion", &path)?,
                build_version: get_str(&d, "BuildVersion", &path)?,
                serial_number: get_str(&d, "SerialNumber", &path)?,
                imei: get_str(&d, "InternationalMobileEquipmentIdentity", &path)?,
                phone_number: get_str(&d, "PhoneNumber", &path)?,
                unique_chip_id: chip,
                wifi_mac: get_str(&d, "WiFiAddress", &path)?,
            });
        }
        let id = Identity::generate(seed, product_version, o);
        write_dict(&path, id.to_dict())?;
        Ok(id)
    }

    /// The lockdown `GetValue` dictionary (no domain): the keys pymobiledevice3 and
    /// libimobiledevice read for Info.plist.
    pub fn to_dict(&self) -> plist::Dictionary {
        dict([
            ("UniqueDeviceID", self.udid.clone().into()),
            ("DeviceName", self.device_name.clone().into()),
            ("ProductType", self.product_type.clone().into()),
            ("ProductVersion", self.product_version.clone().into()),
            ("BuildVersion", self.build_version.clone().into()),
            ("SerialNumber", self.serial_number.clone().into()),
            (
                "InternationalMobileEquipmentIdentity",
                self.imei.clone().into(),
            ),
            ("PhoneNumber", self.phone_number.clone().into()),
            (
                "UniqueChipID",
                plist::Value::Integer(self.unique_chip_id.into()),
            ),
            ("WiFiAddress", self.wifi_mac.clone().into()),
            ("DeviceClass", "iPhone".into()),
            ("ProductName", "iPhone OS".into()),
            ("HardwareModel", "D63AP".into()),
            ("CPUArchitecture", "arm64e".into()),
            ("ActivationState", "Activated".into()),
            ("PasswordProtected", false.into()),
            ("HostAttached", true.into()),
            ("TimeZone", "Europe/Berlin".into()),
            ("DeviceColor", "1".into()),
        ])
    }
}

/// The pairing material: what `ReadPairRecord` hands to hosts, plus the device's own key.
#[derive(Debug, Clone)]
pub struct PairRecord {
    /// Device certificate (PEM), presented by lockdownd's TLS server.
    pub device_certificate: Vec<u8>,
    /// Device private key (PEM); stays on the device.
    pub device_private_key: Vec<u8>,
    /// Host certificate (PEM), presented by pymobiledevice3 / idevice as client cert.
    pub host_certificate: Vec<u8>,
    /// Host private key (PEM).
    pub host_private_key: Vec<u8>,
    /// Root CA certificate (PEM), presented by libimobiledevice as client cert.
    pub root_certificate: Vec<u8>,
    /// Root CA private key (PEM).
    pub root_private_key: Vec<u8>,
    /// HostID (UUID, upper case).
    pub host_id: String,
    /// SystemBUID (UUID, upper case), also the usbmuxd `ReadBUID` answer.
    pub system_buid: String,
    /// EscrowBag: required by libimobiledevice and pymobiledevice3 before mobilebackup2 starts.
    pub escrow_bag: Vec<u8>,
    /// Wi-Fi MAC of the device.
    pub wifi_mac: String,
}

fn uuid(rng: &mut impl RngCore) -> String {
    let h = hex_digits(rng, 32).to_uppercase();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn cert_err(path: &Path) -> impl Fn(rcgen::Error) -> Error + '_ {
    move |e| Error::State {
        path: path.to_path_buf(),
        reason: format!("certificate generation: {e}"),
    }
}

impl PairRecord {
    /// Generates fresh pairing material: ECDSA P-256 root CA, host and device certificates
    /// (no client verifies the device certificate, and no client certificate is checked).
    pub fn generate(path_for_errors: &Path, wifi_mac: &str) -> Result<PairRecord> {
        let err = cert_err(path_for_errors);
        let mut rng = rand::thread_rng();
        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(&err)?;
        let mut root_params = CertificateParams::new(Vec::<String>::new()).map_err(&err)?;
        root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root_params
            .distinguished_name
            .push(DnType::CommonName, "iosnap simulator root");
        let root_cert = root_params.self_signed(&root_key).map_err(&err)?;
        let issuer = Issuer::new(root_params, &root_key);
        let leaf = |cn: &str| -> Result<(String, String)> {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(&err)?;
            let mut p = CertificateParams::new(Vec::<String>::new()).map_err(&err)?;
            p.distinguished_name.push(DnType::CommonName, cn);
            let cert = p.signed_by(&key, &issuer).map_err(&err)?;
            Ok((cert.pem(), key.serialize_pem()))
        };
        let (host_cert, host_key) = leaf("iosnap host")?;
        let (device_cert, device_key) = leaf("iosnap simulated device")?;
        let mut escrow = vec![0u8; 112];
        rng.fill_bytes(&mut escrow);
        Ok(PairRecord {
            device_certificate: device_cert.into_bytes(),
            device_private_key: device_key.into_bytes(),
            host_certificate: host_cert.into_bytes(),
            host_private_key: host_key.into_bytes(),
            root_certificate: root_cert.pem().into_bytes(),
            root_private_key: root_key.serialize_pem().into_bytes(),
            host_id: uuid(&mut rng),
            system_buid: uuid(&mut rng),
            escrow_bag: escrow,
            wifi_mac: wifi_mac.to_string(),
        })
    }

    /// Loads the record from `dir`, or generates and saves it.
    pub fn load_or_create(dir: &Path, wifi_mac: &str) -> Result<PairRecord> {
        let path = dir.join(PAIR_RECORD_FILE);
        let key_path = dir.join(DEVICE_KEY_FILE);
        if path.exists() && key_path.exists() {
            let d = read_dict(&path)?;
            let device_private_key =
                std::fs::read(&key_path).map_err(|e| Error::io(&key_path, e))?;
            return Ok(PairRecord {
                device_certificate: get_data(&d, "DeviceCertificate", &path)?,
                device_private_key,
                host_certificate: get_data(&d, "HostCertificate", &path)?,
                host_private_key: get_data(&d, "HostPrivateKey", &path)?,
                root_certificate: get_data(&d, "RootCertificate", &path)?,
                root_private_key: get_data(&d, "RootPrivateKey", &path)?,
                host_id: get_str(&d, "HostID", &path)?,
                system_buid: get_str(&d, "SystemBUID", &path)?,
                escrow_bag: get_data(&d, "EscrowBag", &path)?,
                wifi_mac: get_str(&d, "WiFiMACAddress", &path)?,
            });
        }
        let rec = PairRecord::generate(&path, wifi_mac)?;
        write_dict(&path, rec.to_dict())?;
        std::fs::write(&key_path, &rec.device_private_key).map_err(|e| Error::io(&key_path, e))?;
        Ok(rec)
    }

    /// The record as usbmuxd serves it (userpref.h keys; certificates and keys as PEM data).
    pub fn to_dict(&self) -> plist::Dictionary {
        dict([
            (
                "DeviceCertificate",
                plist::Value::Data(self.device_certificate.clone()),
            ),
            (
                "HostCertificate",
                plist::Value::Data(self.host_certificate.clone()),
            ),
            (
                "HostPrivateKey",
                plist::Value::Data(self.host_private_key.clone()),
            ),
            (
                "RootCertificate",
                plist::Value::Data(self.root_certificate.clone()),
            ),
            (
                "RootPrivateKey",
                plist::Value::Data(self.root_private_key.clone()),
            ),
            ("HostID", self.host_id.clone().into()),
            ("SystemBUID", self.system_buid.clone().into()),
            ("EscrowBag", plist::Value::Data(self.escrow_bag.clone())),
            ("WiFiMACAddress", self.wifi_mac.clone().into()),
        ])
    }

    /// The record serialised as an XML plist (the `PairRecordData` bytes).
    pub fn to_xml(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Serialising an in-memory dictionary of strings and data cannot fail.
        if plist::Value::Dictionary(self.to_dict())
            .to_writer_xml(&mut out)
            .is_err()
        {
            out.clear();
        }
        out
    }
}
