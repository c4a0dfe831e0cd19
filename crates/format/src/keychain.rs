//! The keychain of a backup: `KeychainDomain/keychain-backup.plist`, its items decrypted with
//! the backup keybag's class keys and decoded into typed passwords, Wi-Fi networks, keys and
//! certificates.
//!
//! # The format (what real phones write, with the sources)
//!
//! * The file is an ordinary backup file (protection class 1), so in an encrypted backup it is
//!   first decrypted like any other. Its plaintext is a binary plist dictionary with one array
//!   per keychain table — `genp` (generic passwords, Wi-Fi networks: service `AirPort`, account
//!   = SSID), `inet` (internet passwords), `cert`, `keys` — and a `keybag-uuid` string. Each
//!   array element is a dictionary `{v_Data: <blob>, v_PersistentRef: <table name + rowid>}`
//!   (Apple Security, `SecServerCopyKeychainPlist` / `s3dl_export_row` in `SecItemDb.c`;
//!   dinosec `keychain/store.py` `PlistKeychain`; irestore `KCEntry`).
//! * A blob starts with a little-endian `u32` version and `u32` protection class (dinosec masks
//!   the class with `0xF`). Versions (dinosec `keychain4.py`, Apple `SecDbKeychainItem.m`):
//!   * **0** (iOS 4): 40-byte RFC 3394 wrapped key, then AES-256-CBC (zero IV, PKCS#7) of the
//!     secret alone; the attributes are in clear in the outer dictionary.
//!   * **2**: `u32` wrapped-key length, wrapped key, AES-256-GCM ciphertext, 16-byte tag; the
//!     plaintext is a binary plist of every attribute including `v_Data` (the secret).
//!   * **3**: same framing; the plaintext is Apple's DER encoding of a property list
//!     (`CFPropertyListCreateDERData`: a SET of SEQUENCE {key, value}).
//!   * The GCM IV is empty (irestore's `gcm.go`: "Apple's use of null initialization vectors";
//!     a zero-length IV gives the all-zero counter block of the GCM specification). When bit 31
//!     of the version is set (`kUseDefaultIVMask`) the IV is Apple's fixed 12-byte `gcmIV` and
//!     the header (version, class, key length) is authenticated data.
//!   * **6** (items with access-control constraints) needs the device's Secure Enclave, and
//!     **7/8** are the protobuf `SecDbKeychainItemV7` format. Backups do not carry V7: Apple's
//!     `ks_encrypt_data_with_backupuuid` reroutes every non-device keybag to
//!     `ks_encrypt_data_legacy` ("used for backup"), which writes version 3 (6 only with ACL
//!     constraints, and the backup export sets `q_skip_acl_items`). So versions 6–8 are counted
//!     and skipped with their reason, never guessed at.
//! * Classes 6–8 (`WhenUnlocked`, `AfterFirstUnlock`, `Always`) are wrapped with the backup
//!   keybag's class keys and recoverable with the backup password. Classes 9–11
//!   (`…ThisDeviceOnly`) are wrapped with keys bound to the phone's UID key, which never leaves
//!   the phone (dinosec skips class ≥ 9 without the device key): they are counted and skipped.
//!
//! # Why it looks like this
//!
//! * Everything here is untrusted: the plist is size-capped before parsing, every blob length
//!   is checked, the DER decoder is iterative per level with a depth cap, and a bad item is a
//!   [`SkippedItem`] with its reason — one bad item never hides the others. Nothing panics
//!   (property-tested and fuzzed).
//! * Items are decrypted lazily, one at a time, by the [`Items`] iterator: an export streams
//!   them out and secrets ([`Secret`]) are zeroized when dropped.
//! * The encoder half ([`encrypt_item`], [`encode_backup_plist`]) exists so the simulated phone
//!   can put a realistic keychain into the backups it makes, encrypted with the same class keys
//!   as the rest of the backup, and so tests can build hostile variants.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use aes_gcm::aead::consts::{U0, U12};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce, Tag};
use zeroize::{Zeroize, Zeroizing};

use crate::backup::Backup;
use crate::crypto::FileKey;
use crate::entry::WrappedKey;
use crate::error::{Error, IoContext, Result};
use crate::keybag::ClassKeys;

/// Domain of the keychain file.
pub const DOMAIN: &str = "KeychainDomain";
/// Relative path of the keychain file in [`DOMAIN`].
pub const RELATIVE_PATH: &str = "keychain-backup.plist";
/// Largest keychain file accepted (real ones are well under 1 MB: 481,718 bytes in the iOS 14
/// fixture); a bigger one is [`Error::Corrupt`] rather than an allocation the file dictates.
pub const MAX_FILE_LEN: u64 = 64 << 20;
/// Largest item blob decrypted (Apple warns above 38 KB for one item).
pub const MAX_BLOB_LEN: usize = 1 << 20;
/// Deepest nesting of arrays/dictionaries accepted in an item's DER attributes (real items
/// are one flat dictionary).
pub const MAX_DER_DEPTH: usize = 16;

/// Bit 31 of the blob version: the fixed IV and header-as-AAD variant (`kUseDefaultIVMask`).
const USE_DEFAULT_IV: u32 = 1 << 31;
/// Apple's fixed GCM IV for that variant (`gcmIV` in `SecDbKeychainItem.m`: the first 12 bytes
/// of SHA-256("keychainblobstaticiv\n")).
const DEFAULT_IV: [u8; 12] = [
    0x1e, 0xa0, 0x5c, 0xa9, 0x98, 0x2e, 0x87, 0xdc, 0xf1, 0x45, 0xe8, 0x24,
];
/// GCM tag length.
const TAG_LEN: usize = 16;
/// Largest wrapped bulk key accepted (AES-wrapped 32-byte keys are 40 bytes).
const MAX_WRAPPED_LEN: usize = 128;
/// Key of the keybag UUID string at the top of the plist (`kSecBackupKeybagUUIDKey`).
const KEYBAG_UUID_KEY: &str = "keybag-uuid";

/// AES-256-GCM with the empty IV iOS uses for keychain items.
type GcmEmptyIv = AesGcm<Aes256, U0>;
/// AES-256-GCM with a 96-bit IV (the `kUseDefaultIVMask` variant).
type Gcm12 = AesGcm<Aes256, U12>;

/// One of the four keychain tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// `genp`: generic (app) passwords; Wi-Fi networks are `genp` items of service `AirPort`.
    GenericPassword,
    /// `inet`: internet (website) passwords.
    InternetPassword,
    /// `cert`: certificates.
    Certificate,
    /// `keys`: cryptographic keys.
    Key,
}

impl Table {
    /// The tables in the order the file lists them.
    pub const ALL: [Table; 4] = [
        Table::GenericPassword,
        Table::InternetPassword,
        Table::Certificate,
        Table::Key,
    ];

    /// The table name used in the plist and in persistent references (`genp` …).
    pub fn name(self) -> &'static str {
        match self {
            Table::GenericPassword => "genp",
            Table::InternetPassword => "inet",
            Table::Certificate => "cert",
            Table::Key => "keys",
        }
    }

    /// The table with that plist name.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `kSecAttrAccessible…` name of a keychain protection class (6–11), for reports.
pub fn class_name(class: u32) -> &'static str {
    match class {
        6 => "WhenUnlocked",
        7 => "AfterFirstUnlock",
        8 => "Always",
        9 => "WhenUnlockedThisDeviceOnly",
        10 => "AfterFirstUnlockThisDeviceOnly",
        11 => "AlwaysThisDeviceOnly",
        12 => "WhenPasscodeSetThisDeviceOnly",
        _ => "unknown",
    }
}

/// Whether items of `class` are bound to the phone's UID key and so cannot be decrypted from a
/// backup on another machine (classes 9–11, and 12 which backups never contain).
pub fn is_this_device_only(class: u32) -> bool {
    (9..=12).contains(&class)
}

/// The protection class of a `pdmn` accessibility code (`ak` → 6 … `dku` → 11).
pub fn class_of_accessible(pdmn: &str) -> Option<u32> {
    Some(match pdmn {
        "ak" => 6,
        "ck" => 7,
        "dk" => 8,
        "aku" => 9,
        "cku" => 10,
        "dku" => 11,
        "akpu" => 12,
        _ => return None,
    })
}

/// The `pdmn` accessibility code of a class (inverse of [`class_of_accessible`]).
pub fn accessible_of_class(class: u32) -> Option<&'static str> {
    Some(match class {
        6 => "ak",
        7 => "ck",
        8 => "dk",
        9 => "aku",
        10 => "cku",
        11 => "dku",
        12 => "akpu",
        _ => return None,
    })
}

/// One attribute value of a keychain item, as Apple's property-list DER (or binary plist)
/// carries it. Dates are seconds since the Unix epoch (fractions kept).
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// `NULL`.
    Null,
    /// `BOOLEAN`.
    Bool(bool),
    /// `INTEGER` (Apple encodes numbers as at most 64-bit integers).
    Integer(i64),
    /// `UTF8String`.
    String(String),
    /// `OCTET STRING` (also a string that was not valid UTF-8, kept losslessly).
    Data(Vec<u8>),
    /// `GeneralizedTime`, as Unix seconds.
    Date(f64),
    /// `SEQUENCE` of values.
    Array(Vec<AttrValue>),
    /// `SET` of `SEQUENCE {key, value}`.
    Dict(Vec<(String, AttrValue)>),
}

impl AttrValue {
    /// The value as text when it is one: a string, or data that is valid UTF-8 (Apple stores
    /// `acct` as a blob that is usually a string).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            AttrValue::String(s) => Some(s),
            AttrValue::Data(d) => std::str::from_utf8(d).ok(),
            _ => None,
        }
    }

    /// The value as an integer: an integer, a boolean, or a string of digits.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            AttrValue::Integer(i) => Some(*i),
            AttrValue::Bool(b) => Some(i64::from(*b)),
            AttrValue::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// The secret of an item (`v_Data`): a password, a Wi-Fi passphrase, a key. Zeroized on drop;
/// `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(Zeroizing::new(bytes))
    }

    /// The raw bytes (exact; passwords are usually UTF-8 but binary secrets exist).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text when it is valid UTF-8 — a lossless view: `None` rather than a
    /// lossy replacement, so callers fall back to [`Secret::as_bytes`] (hex/base64).
    pub fn as_utf8(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// `v_PersistentRef`: the item's table and row id on the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistentRef {
    /// The 4-character table name it starts with.
    pub table: String,
    /// The SQLite row id (last 8 bytes, little-endian) when the reference has the classic
    /// 12-byte form.
    pub rowid: Option<u64>,
    /// The raw reference.
    pub raw: Vec<u8>,
}

impl PersistentRef {
    /// Parses a persistent reference; `None` when shorter than the 4-byte table name.
    pub fn parse(raw: &[u8]) -> Option<PersistentRef> {
        let table = raw.get(..4)?;
        let rowid = if raw.len() == 12 {
            raw.get(4..12)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes)
        } else {
            None
        };
        Some(PersistentRef {
            table: String::from_utf8_lossy(table).into_owned(),
            rowid,
            raw: raw.to_vec(),
        })
    }
}

/// Builds the classic 12-byte persistent reference: table name + little-endian row id.
pub fn persistent_ref(table: Table, rowid: u64) -> Vec<u8> {
    let mut v = table.name().as_bytes().to_vec();
    v.extend_from_slice(&rowid.to_le_bytes());
    v
}

/// One decrypted keychain item with its typed attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct KeychainItem {
    /// The table it came from.
    pub table: Table,
    /// Position in its table's array (for reports).
    pub index: usize,
    /// Blob format version (0, 2 or 3).
    pub version: u32,
    /// Protection class from the blob header (6–8 for recoverable items).
    pub class: u32,
    /// `v_PersistentRef`, when present.
    pub persistent_ref: Option<PersistentRef>,
    /// `svce`: the service (`AirPort` for Wi-Fi networks, an app-defined name otherwise).
    pub service: Option<String>,
    /// `acct`: the account (user name, e-mail, or the SSID of a Wi-Fi network).
    pub account: Option<String>,
    /// `srvr`: the server of an internet password (`example.com`).
    pub server: Option<String>,
    /// `ptcl`: the protocol, as Apple's four-character code (`htps`, `http`, `ftp ` …).
    pub protocol: Option<String>,
    /// `port` (0 when unspecified).
    pub port: Option<i64>,
    /// `path` of an internet password.
    pub path: Option<String>,
    /// `sdmn`: security domain (HTTP realm).
    pub security_domain: Option<String>,
    /// `atyp`: authentication type code.
    pub authentication_type: Option<String>,
    /// `labl`: the label shown to users.
    pub label: Option<String>,
    /// `desc`: the kind description.
    pub description: Option<String>,
    /// `icmt`: comment.
    pub comment: Option<String>,
    /// `agrp`: access group (which apps may read it, e.g. `com.apple.cfnetwork`).
    pub access_group: Option<String>,
    /// `pdmn`: accessibility code (`ak`, `ck`, `dk` …).
    pub accessible: Option<String>,
    /// `sync`: whether it syncs through iCloud Keychain.
    pub synchronizable: bool,
    /// `cdat`: creation date, Unix seconds.
    pub created: Option<f64>,
    /// `mdat`: modification date, Unix seconds.
    pub modified: Option<f64>,
    /// `v_Data`: the secret (empty when the item has none).
    pub secret: Secret,
    /// Every decoded attribute except `v_Data`, in file order (for callers that need more).
    pub attributes: Vec<(String, AttrValue)>,
}

impl KeychainItem {
    /// The attribute `name`, if present.
    pub fn attribute(&self, name: &str) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Whether this is a Wi-Fi network password (a `genp` item of service `AirPort`).
    pub fn is_wifi(&self) -> bool {
        self.table == Table::GenericPassword && self.service.as_deref() == Some("AirPort")
    }
}

/// Why an item was not decrypted. Every skip is reported with its table and index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Class 9–11: wrapped with the phone's UID-bound key, not recoverable off the phone.
    ThisDeviceOnly {
        /// The protection class.
        class: u32,
    },
    /// The element of the table array is not a dictionary.
    NotADictionary,
    /// The item has no `v_Data` blob (or it is not data).
    NoData,
    /// The blob is shorter than its header or its lengths say.
    Truncated(String),
    /// A blob version this reader does not decrypt (6: access control, 7/8: protobuf V7).
    UnsupportedVersion(u32),
    /// The backup keybag has no key for the class.
    NoClassKey {
        /// The protection class.
        class: u32,
    },
    /// The item key did not unwrap with the class key (damaged item).
    KeyUnwrapFailed {
        /// The protection class.
        class: u32,
    },
    /// AES-GCM authentication (or CBC padding) failed: damaged item.
    DecryptionFailed,
    /// The decrypted attributes could not be decoded.
    BadAttributes(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::ThisDeviceOnly { class } => write!(
                f,
                "protection class {class} ({}) is bound to the phone's hardware key and cannot \
                 be decrypted from a backup",
                class_name(*class)
            ),
            SkipReason::NotADictionary => f.write_str("the entry is not a dictionary"),
            SkipReason::NoData => f.write_str("the entry has no v_Data blob"),
            SkipReason::Truncated(d) => write!(f, "truncated item: {d}"),
            SkipReason::UnsupportedVersion(6) => f.write_str(
                "item format version 6 (access-control protected) needs the phone's Secure Enclave",
            ),
            SkipReason::UnsupportedVersion(v) => write!(f, "unsupported item format version {v}"),
            SkipReason::NoClassKey { class } => {
                write!(
                    f,
                    "the backup keybag has no key for protection class {class}"
                )
            }
            SkipReason::KeyUnwrapFailed { class } => write!(
                f,
                "the item key does not unwrap with the class {class} key (damaged item)"
            ),
            SkipReason::DecryptionFailed => {
                f.write_str("decryption failed (authentication tag or padding): damaged item")
            }
            SkipReason::BadAttributes(d) => write!(f, "undecodable attributes: {d}"),
        }
    }
}

/// An item that was counted but not decrypted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedItem {
    /// The table.
    pub table: Table,
    /// Position in the table's array.
    pub index: usize,
    /// The protection class, when the blob header could be read.
    pub class: Option<u32>,
    /// Why.
    pub reason: SkipReason,
}

impl fmt::Display for SkippedItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} item {}: {}", self.table, self.index, self.reason)
    }
}

// ---------------------------------------------------------------------------------------------
// The file
// ---------------------------------------------------------------------------------------------

/// The parsed `keychain-backup.plist`: the tables' raw entries, decrypted on demand by
/// [`KeychainBackup::items`].
#[derive(Debug, Clone)]
pub struct KeychainBackup {
    path: PathBuf,
    keybag_uuid: Option<String>,
    tables: Vec<(Table, Vec<plist::Value>)>,
    problems: Vec<String>,
}

impl KeychainBackup {
    /// Parses the plaintext keychain plist. Not a dictionary, or not a plist at all, is
    /// [`Error::Corrupt`]/[`Error::Plist`] naming `path`; a table that is not an array is
    /// recorded in [`KeychainBackup::problems`] (and a lone dictionary is taken as one item, as
    /// the phone's importer does).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<KeychainBackup> {
        if bytes.len() as u64 > MAX_FILE_LEN {
            return Err(Error::corrupt(
                path,
                "keychain",
                format!(
                    "{} bytes, more than the {MAX_FILE_LEN} accepted",
                    bytes.len()
                ),
            ));
        }
        let v = plist::Value::from_reader(std::io::Cursor::new(bytes))
            .map_err(|e| Error::plist(path, e))?;
        let plist::Value::Dictionary(mut d) = v else {
            return Err(Error::corrupt(
                path,
                "keychain",
                "the top level is not a dictionary",
            ));
        };
        let mut problems = Vec::new();
        let keybag_uuid = match d.remove(KEYBAG_UUID_KEY) {
            None => None,
            Some(plist::Value::String(s)) => Some(s),
            Some(_) => {
                problems.push(format!("{KEYBAG_UUID_KEY} is not a string"));
                None
            }
        };
        let mut tables = Vec::new();
        for t in Table::ALL {
            match d.remove(t.name()) {
                None => {}
                Some(plist::Value::Array(a)) => tables.push((t, a)),
                Some(v @ plist::Value::Dictionary(_)) => tables.push((t, vec![v])),
                Some(_) => problems.push(format!("table {t} is not an array of items: ignored")),
            }
        }
        for k in d.keys() {
            problems.push(format!("unknown key {k:?} ignored"));
        }
        Ok(KeychainBackup {
            path: path.to_path_buf(),
            keybag_uuid,
            tables,
            problems,
        })
    }

    /// Reads and parses the plist from a stream, refusing more than [`MAX_FILE_LEN`] bytes.
    pub fn read_from(reader: impl Read, path: &Path) -> Result<KeychainBackup> {
        let mut bytes = Zeroizing::new(Vec::new());
        reader
            .take(MAX_FILE_LEN + 1)
            .read_to_end(&mut bytes)
            .at(path)?;
        Self::parse(&bytes, path)
    }

    /// The keychain of an encrypted, unlocked backup.
    ///
    /// Errors: [`Error::KeychainNeedsEncryption`] for a plain backup (its keychain, if any, is
    /// protected by the phone's hardware key), [`Error::PasswordRequired`] when still locked,
    /// [`Error::NotFound`] when the backup has no keychain file, and the errors of reading it.
    pub fn from_backup(backup: &Backup) -> Result<KeychainBackup> {
        if !backup.is_encrypted() {
            return Err(Error::KeychainNeedsEncryption {
                path: backup.dir().to_path_buf(),
            });
        }
        if !backup.is_unlocked() {
            return Err(Error::PasswordRequired);
        }
        let entry = backup.find(DOMAIN, RELATIVE_PATH)?;
        let name = PathBuf::from(format!("{DOMAIN}/{RELATIVE_PATH}"));
        if entry.meta.size > MAX_FILE_LEN {
            return Err(Error::corrupt(
                &name,
                "keychain",
                format!(
                    "{} bytes, more than the {MAX_FILE_LEN} accepted",
                    entry.meta.size
                ),
            ));
        }
        Self::read_from(backup.open_file(&entry)?, &name)
    }

    /// The file this was read from (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `keybag-uuid`: the UUID of the backup keybag the items are wrapped for.
    pub fn keybag_uuid(&self) -> Option<&str> {
        self.keybag_uuid.as_deref()
    }

    /// Structural problems met while parsing (tables of the wrong type, unknown keys).
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Number of entries in `table` (decryptable or not).
    pub fn count(&self, table: Table) -> usize {
        self.tables
            .iter()
            .filter(|(t, _)| *t == table)
            .map(|(_, v)| v.len())
            .sum()
    }

    /// Number of entries in all tables.
    pub fn len(&self) -> usize {
        self.tables.iter().map(|(_, v)| v.len()).sum()
    }

    /// Whether the keychain has no entries at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decrypts the items one by one with the backup's class keys, table by table: each is a
    /// [`KeychainItem`] or a [`SkippedItem`] saying why not.
    pub fn items<'a>(&'a self, keys: &'a ClassKeys) -> Items<'a> {
        Items {
            kc: self,
            keys,
            table: 0,
            index: 0,
        }
    }
}

/// Iterator over the items of a [`KeychainBackup`], decrypting each when it is reached.
#[derive(Debug)]
pub struct Items<'a> {
    kc: &'a KeychainBackup,
    keys: &'a ClassKeys,
    table: usize,
    index: usize,
}

impl Iterator for Items<'_> {
    type Item = std::result::Result<KeychainItem, SkippedItem>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (table, entries) = self.kc.tables.get(self.table)?;
            let Some(entry) = entries.get(self.index) else {
                self.table += 1;
                self.index = 0;
                continue;
            };
            let index = self.index;
            self.index += 1;
            return Some(decode_entry(*table, index, entry, self.keys));
        }
    }
}

fn decode_entry(
    table: Table,
    index: usize,
    entry: &plist::Value,
    keys: &ClassKeys,
) -> std::result::Result<KeychainItem, SkippedItem> {
    let skip = |class, reason| SkippedItem {
        table,
        index,
        class,
        reason,
    };
    let Some(d) = entry.as_dictionary() else {
        return Err(skip(None, SkipReason::NotADictionary));
    };
    let Some(blob) = d.get("v_Data").and_then(plist::Value::as_data) else {
        return Err(skip(None, SkipReason::NoData));
    };
    let class = blob_header(blob).map(|(_, c)| c);
    let decrypted = decrypt_blob(blob, keys).map_err(|r| skip(class, r))?;
    let mut attributes: Vec<(String, AttrValue)> = Vec::new();
    // Version 0 keeps the attributes in clear next to the blob.
    if decrypted.version == 0 {
        for (k, v) in d {
            if k == "v_Data" || k == "v_PersistentRef" {
                continue;
            }
            if let Some(v) = from_plist(v, 0) {
                attributes.push((k.clone(), v));
            }
        }
    }
    let mut secret = decrypted.secret;
    for (k, v) in decrypted.attributes {
        if k == "v_Data" {
            match v {
                AttrValue::Data(b) => secret = Some(Secret::new(b)),
                AttrValue::String(s) => secret = Some(Secret::new(s.into_bytes())),
                _ => {}
            }
            continue;
        }
        attributes.retain(|(a, _)| *a != k);
        attributes.push((k, v));
    }
    let pref = d
        .get("v_PersistentRef")
        .and_then(plist::Value::as_data)
        .and_then(PersistentRef::parse);
    Ok(build_item(
        table,
        index,
        decrypted.version,
        decrypted.class,
        pref,
        secret.unwrap_or_default(),
        attributes,
    ))
}

fn build_item(
    table: Table,
    index: usize,
    version: u32,
    class: u32,
    persistent_ref: Option<PersistentRef>,
    secret: Secret,
    attributes: Vec<(String, AttrValue)>,
) -> KeychainItem {
    let get = |name: &str| attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let text = |name: &str| get(name).and_then(AttrValue::as_text).map(str::to_string);
    let code = |name: &str| {
        get(name).and_then(|v| match v {
            // A four-character code stored as a number ('htps' = 0x68747073).
            AttrValue::Integer(i) => Some(four_char_code(*i)),
            other => other.as_text().map(str::to_string),
        })
    };
    let date = |name: &str| match get(name) {
        Some(AttrValue::Date(t)) => Some(*t),
        _ => None,
    };
    KeychainItem {
        table,
        index,
        version,
        class,
        persistent_ref,
        service: text("svce"),
        account: text("acct"),
        server: text("srvr"),
        protocol: code("ptcl"),
        port: get("port").and_then(AttrValue::as_integer),
        path: text("path"),
        security_domain: text("sdmn"),
        authentication_type: code("atyp"),
        label: text("labl"),
        description: text("desc"),
        comment: text("icmt"),
        access_group: text("agrp"),
        accessible: text("pdmn"),
        synchronizable: get("sync")
            .and_then(AttrValue::as_integer)
            .is_some_and(|s| s != 0),
        created: date("cdat"),
        modified: date("mdat"),
        secret,
        attributes,
    }
}

/// Renders a number as a four-character code when its four bytes are printable ASCII, else as
/// the decimal number.
fn four_char_code(i: i64) -> String {
    if let Ok(u) = u32::try_from(i) {
        let b = u.to_be_bytes();
        if b.iter().all(|c| (0x20..0x7f).contains(c)) {
            return b.iter().map(|&c| char::from(c)).collect();
        }
    }
    i.to_string()
}

/// Converts a (version 0 outer, or version 2 inner) plist value; `None` for types attributes
/// never have (UIDs) or too deep nesting.
fn from_plist(v: &plist::Value, depth: usize) -> Option<AttrValue> {
    if depth > MAX_DER_DEPTH {
        return None;
    }
    Some(match v {
        plist::Value::String(s) => AttrValue::String(s.clone()),
        plist::Value::Data(d) => AttrValue::Data(d.clone()),
        plist::Value::Boolean(b) => AttrValue::Bool(*b),
        plist::Value::Integer(i) => AttrValue::Integer(
            i.as_signed()
                .or_else(|| i.as_unsigned().map(|u| u as i64))?,
        ),
        plist::Value::Real(r) => AttrValue::Integer(*r as i64),
        plist::Value::Date(d) => {
            let t: std::time::SystemTime = (*d).into();
            AttrValue::Date(match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(x) => x.as_secs_f64(),
                Err(e) => -e.duration().as_secs_f64(),
            })
        }
        plist::Value::Array(a) => {
            AttrValue::Array(a.iter().filter_map(|x| from_plist(x, depth + 1)).collect())
        }
        plist::Value::Dictionary(d) => AttrValue::Dict(
            d.iter()
                .filter_map(|(k, x)| Some((k.clone(), from_plist(x, depth + 1)?)))
                .collect(),
        ),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Item blobs
// ---------------------------------------------------------------------------------------------

/// What [`decrypt_blob`] gives: the header and either the attributes (versions 2, 3; the
/// secret is their `v_Data`) or the bare secret (version 0).
#[derive(Debug)]
pub struct DecryptedBlob {
    /// Format version, without the default-IV flag.
    pub version: u32,
    /// Protection class (masked with `0xF` as dinosec does).
    pub class: u32,
    /// Decoded attributes (empty for version 0).
    pub attributes: Vec<(String, AttrValue)>,
    /// The secret of a version 0 blob.
    pub secret: Option<Secret>,
}

/// The blob's (version without flags, class) header, if it is at least 8 bytes long.
pub fn blob_header(blob: &[u8]) -> Option<(u32, u32)> {
    let v = u32::from_le_bytes(blob.get(0..4)?.try_into().ok()?);
    let c = u32::from_le_bytes(blob.get(4..8)?.try_into().ok()?);
    Some((v & !USE_DEFAULT_IV, c & 0xF))
}

/// Decrypts one `v_Data` blob with the backup keybag's class keys and decodes its attributes.
/// ThisDeviceOnly classes are refused before any key is touched.
pub fn decrypt_blob(
    blob: &[u8],
    keys: &ClassKeys,
) -> std::result::Result<DecryptedBlob, SkipReason> {
    if blob.len() > MAX_BLOB_LEN {
        return Err(SkipReason::Truncated(format!(
            "{} bytes, more than the {MAX_BLOB_LEN} accepted",
            blob.len()
        )));
    }
    let raw_version = blob
        .get(0..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| SkipReason::Truncated("no 8-byte header".into()))?;
    let (version, class) =
        blob_header(blob).ok_or_else(|| SkipReason::Truncated("no 8-byte header".into()))?;
    if is_this_device_only(class) {
        return Err(SkipReason::ThisDeviceOnly { class });
    }
    match version {
        0 => {
            let wrapped = blob
                .get(8..48)
                .ok_or_else(|| SkipReason::Truncated("version 0 blob under 48 bytes".into()))?;
            let ct = blob.get(48..).unwrap_or_default();
            let key = unwrap_key(keys, class, wrapped)?;
            let secret = cbc_decrypt(&key, ct).ok_or(SkipReason::DecryptionFailed)?;
            Ok(DecryptedBlob {
                version,
                class,
                attributes: Vec::new(),
                secret: Some(Secret::new(secret)),
            })
        }
        2 | 3 => {
            let len = blob
                .get(8..12)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| SkipReason::Truncated("no wrapped-key length".into()))?;
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > MAX_WRAPPED_LEN {
                return Err(SkipReason::Truncated(format!(
                    "wrapped key length {len} is implausible"
                )));
            }
            let ct_start = 12 + len;
            let ct_end = blob.len().saturating_sub(TAG_LEN);
            if ct_start > ct_end {
                return Err(SkipReason::Truncated(format!(
                    "{} bytes cannot hold a {len}-byte key and a tag",
                    blob.len()
                )));
            }
            let (Some(wrapped), Some(ct), Some(tag)) = (
                blob.get(12..ct_start),
                blob.get(ct_start..ct_end),
                blob.get(ct_end..),
            ) else {
                return Err(SkipReason::Truncated("lengths out of range".into()));
            };
            let key = unwrap_key(keys, class, wrapped)?;
            let mut plain = Zeroizing::new(ct.to_vec());
            let tag = Tag::from_slice(tag);
            let ok = if raw_version & USE_DEFAULT_IV != 0 {
                let aad = blob.get(..12).unwrap_or_default();
                Gcm12::new_from_slice(key.as_bytes())
                    .map_err(|_| SkipReason::DecryptionFailed)?
                    .decrypt_in_place_detached(
                        Nonce::<U12>::from_slice(&DEFAULT_IV),
                        aad,
                        &mut plain,
                        tag,
                    )
            } else {
                GcmEmptyIv::new_from_slice(key.as_bytes())
                    .map_err(|_| SkipReason::DecryptionFailed)?
                    .decrypt_in_place_detached(&Nonce::<U0>::default(), b"", &mut plain, tag)
            };
            ok.map_err(|_| SkipReason::DecryptionFailed)?;
            let attributes = if version == 3 {
                decode_der(&plain).map_err(SkipReason::BadAttributes)?
            } else {
                decode_bplist_attributes(&plain)?
            };
            Ok(DecryptedBlob {
                version,
                class,
                attributes,
                secret: None,
            })
        }
        v => Err(SkipReason::UnsupportedVersion(v)),
    }
}

fn unwrap_key(
    keys: &ClassKeys,
    class: u32,
    wrapped: &[u8],
) -> std::result::Result<FileKey, SkipReason> {
    if !keys.has_class(class) {
        return Err(SkipReason::NoClassKey { class });
    }
    let wk = WrappedKey {
        class,
        wrapped: wrapped.to_vec(),
    };
    keys.unwrap(&wk, "keychain item")
        .map_err(|_| SkipReason::KeyUnwrapFailed { class })
}

/// AES-256-CBC, zero IV, PKCS#7 (version 0 secrets); `None` on a bad length or padding.
fn cbc_decrypt(key: &FileKey, ct: &[u8]) -> Option<Vec<u8>> {
    use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
    if ct.is_empty() || !ct.len().is_multiple_of(16) {
        return None;
    }
    let dec = cbc::Decryptor::<aes::Aes256>::new_from_slices(key.as_bytes(), &[0u8; 16]).ok()?;
    let mut buf = ct.to_vec();
    match dec.decrypt_padded_mut::<Pkcs7>(&mut buf) {
        Ok(p) => {
            let out = p.to_vec();
            buf.zeroize();
            Some(out)
        }
        Err(_) => {
            buf.zeroize();
            None
        }
    }
}

fn decode_bplist_attributes(
    plain: &[u8],
) -> std::result::Result<Vec<(String, AttrValue)>, SkipReason> {
    let v = plist::Value::from_reader(std::io::Cursor::new(plain))
        .map_err(|e| SkipReason::BadAttributes(format!("binary plist: {e}")))?;
    match from_plist(&v, 0) {
        Some(AttrValue::Dict(d)) => Ok(d),
        _ => Err(SkipReason::BadAttributes(
            "the attributes are not a dictionary".into(),
        )),
    }
}

/// Encrypts `attributes` (which should hold the secret as `v_Data`) into a version 3 blob of
/// protection `class`, the bulk key wrapped with the backup's class key — what a phone writes
/// for each item of an encrypted backup.
pub fn encrypt_item(
    attributes: &[(String, AttrValue)],
    class: u32,
    keys: &ClassKeys,
    bulk_key: &FileKey,
) -> Result<Vec<u8>> {
    let wrapped = keys.wrap(class, bulk_key)?;
    seal_item(attributes, class, &wrapped.wrapped, bulk_key)
}

/// Builds a version 3 blob from an already wrapped bulk key (the simulated phone wraps
/// ThisDeviceOnly items with a key that never leaves it).
pub fn seal_item(
    attributes: &[(String, AttrValue)],
    class: u32,
    wrapped_key: &[u8],
    bulk_key: &FileKey,
) -> Result<Vec<u8>> {
    let len = u32::try_from(wrapped_key.len())
        .ok()
        .filter(|l| (*l as usize) <= MAX_WRAPPED_LEN)
        .ok_or_else(|| Error::InvalidArgument("wrapped key too long".into()))?;
    let mut buf = Zeroizing::new(encode_der(attributes));
    let tag = GcmEmptyIv::new_from_slice(bulk_key.as_bytes())
        .map_err(|_| Error::InvalidArgument("bad AES-256 key".into()))?
        .encrypt_in_place_detached(&Nonce::<U0>::default(), b"", &mut buf)
        .map_err(|_| Error::InvalidArgument("item too large for AES-GCM".into()))?;
    let mut out = Vec::with_capacity(12 + wrapped_key.len() + buf.len() + TAG_LEN);
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&class.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(wrapped_key);
    out.extend_from_slice(&buf);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// One entry of a keychain plist to write: the encrypted blob and its persistent reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupEntry {
    /// The table it belongs to.
    pub table: Table,
    /// `v_Data`: the encrypted blob.
    pub data: Vec<u8>,
    /// `v_PersistentRef`.
    pub persistent_ref: Vec<u8>,
}

/// Writes the binary plist of `keychain-backup.plist` (tables present even when empty, as the
/// simulated phone's plain backups show).
pub fn encode_backup_plist(entries: &[BackupEntry], keybag_uuid: Option<&str>) -> Result<Vec<u8>> {
    let mut d = plist::Dictionary::new();
    for t in Table::ALL {
        let items: Vec<plist::Value> = entries
            .iter()
            .filter(|e| e.table == t)
            .map(|e| {
                let mut item = plist::Dictionary::new();
                item.insert("v_Data".into(), plist::Value::Data(e.data.clone()));
                item.insert(
                    "v_PersistentRef".into(),
                    plist::Value::Data(e.persistent_ref.clone()),
                );
                plist::Value::Dictionary(item)
            })
            .collect();
        d.insert(t.name().into(), plist::Value::Array(items));
    }
    if let Some(u) = keybag_uuid {
        d.insert(KEYBAG_UUID_KEY.into(), plist::Value::String(u.into()));
    }
    let mut out = Vec::new();
    plist::Value::Dictionary(d)
        .to_writer_binary(&mut out)
        .map_err(|e| Error::plist(RELATIVE_PATH, e))?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Apple's property-list DER (der_plist.c): a tiny, bounded subset of BER/DER
// ---------------------------------------------------------------------------------------------

const TAG_BOOL: u8 = 0x01;
const TAG_INTEGER: u8 = 0x02;
const TAG_DATA: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_UTF8: u8 = 0x0C;
const TAG_DATE: u8 = 0x18;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;

/// Splits one TLV off the front of `buf`: (tag, content, rest). Only single-byte tags and
/// definite lengths of up to 4 bytes, bounded by the buffer.
fn read_tlv(buf: &[u8]) -> std::result::Result<(u8, &[u8], &[u8]), String> {
    let (&tag, rest) = buf.split_first().ok_or("unexpected end of data")?;
    if tag & 0x1F == 0x1F {
        return Err(format!(
            "multi-byte tag 0x{tag:02x} is not used by property lists"
        ));
    }
    let (&first, mut rest) = rest.split_first().ok_or("missing length")?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return Err(format!("unsupported length form 0x{first:02x}"));
        }
        let (bytes, r) = rest.split_at_checked(n).ok_or("length runs past the end")?;
        rest = r;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let (content, rest) = rest
        .split_at_checked(len)
        .ok_or_else(|| format!("a {len}-byte value runs past the end ({} left)", rest.len()))?;
    Ok((tag, content, rest))
}

/// Decodes an item's DER attributes: one dictionary with string keys. Errors are strings for
/// [`SkipReason::BadAttributes`].
pub fn decode_der(bytes: &[u8]) -> std::result::Result<Vec<(String, AttrValue)>, String> {
    let (tag, content, rest) = read_tlv(bytes)?;
    if tag != TAG_SET {
        return Err(format!(
            "top level is tag 0x{tag:02x}, not a dictionary (SET)"
        ));
    }
    if !rest.is_empty() {
        return Err(format!("{} trailing bytes", rest.len()));
    }
    match decode_value(TAG_SET, content, 0)? {
        AttrValue::Dict(d) => Ok(d),
        _ => Err("top level is not a dictionary".into()),
    }
}

fn decode_value(tag: u8, c: &[u8], depth: usize) -> std::result::Result<AttrValue, String> {
    if depth > MAX_DER_DEPTH {
        return Err(format!("nested deeper than {MAX_DER_DEPTH} levels"));
    }
    Ok(match tag {
        TAG_NULL if c.is_empty() => AttrValue::Null,
        TAG_BOOL if c.len() == 1 => AttrValue::Bool(c.first().is_some_and(|b| *b != 0)),
        TAG_INTEGER => {
            if c.is_empty() || c.len() > 8 {
                return Err(format!("a {}-byte integer", c.len()));
            }
            let neg = c.first().is_some_and(|b| b & 0x80 != 0);
            let v = c.iter().fold(if neg { -1i64 } else { 0 }, |acc, &b| {
                (acc << 8) | i64::from(b)
            });
            AttrValue::Integer(v)
        }
        TAG_DATA => AttrValue::Data(c.to_vec()),
        TAG_UTF8 => match std::str::from_utf8(c) {
            Ok(s) => AttrValue::String(s.to_string()),
            Err(_) => AttrValue::Data(c.to_vec()),
        },
        TAG_DATE => AttrValue::Date(parse_generalized_time(c)?),
        TAG_SEQUENCE => {
            let mut out = Vec::new();
            let mut rest = c;
            while !rest.is_empty() {
                let (t, content, r) = read_tlv(rest)?;
                out.push(decode_value(t, content, depth + 1)?);
                rest = r;
            }
            AttrValue::Array(out)
        }
        TAG_SET => {
            let mut out = Vec::new();
            let mut rest = c;
            while !rest.is_empty() {
                let (t, pair, r) = read_tlv(rest)?;
                rest = r;
                if t != TAG_SEQUENCE {
                    return Err(format!("dictionary entry is tag 0x{t:02x}, not a SEQUENCE"));
                }
                let (kt, kc, after_key) = read_tlv(pair)?;
                let (vt, vc, after_value) = read_tlv(after_key)?;
                if !after_value.is_empty() {
                    return Err("dictionary entry has more than a key and a value".into());
                }
                let key = match decode_value(kt, kc, depth + 1)? {
                    AttrValue::String(s) => s,
                    _ => return Err("dictionary key is not a string".into()),
                };
                out.push((key, decode_value(vt, vc, depth + 1)?));
            }
            AttrValue::Dict(out)
        }
        t => return Err(format!("unexpected tag 0x{t:02x} ({} bytes)", c.len())),
    })
}

/// Encodes attributes as Apple's DER dictionary (entries sorted by their encoding, as DER
/// requires of a SET).
pub fn encode_der(attributes: &[(String, AttrValue)]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_dict(attributes, &mut out);
    out
}

fn push_tlv(tag: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let used = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | used.len() as u8);
        out.extend_from_slice(used);
    }
    out.extend_from_slice(content);
}

fn encode_dict(entries: &[(String, AttrValue)], out: &mut Vec<u8>) {
    let mut encoded: Vec<Vec<u8>> = entries
        .iter()
        .map(|(k, v)| {
            let mut pair = Vec::new();
            push_tlv(TAG_UTF8, k.as_bytes(), &mut pair);
            encode_value(v, &mut pair);
            let mut seq = Vec::new();
            push_tlv(TAG_SEQUENCE, &pair, &mut seq);
            seq
        })
        .collect();
    encoded.sort();
    push_tlv(TAG_SET, &encoded.concat(), out);
}

fn encode_value(v: &AttrValue, out: &mut Vec<u8>) {
    match v {
        AttrValue::Null => push_tlv(TAG_NULL, &[], out),
        AttrValue::Bool(b) => push_tlv(TAG_BOOL, &[if *b { 0xFF } else { 0 }], out),
        AttrValue::Integer(i) => {
            let bytes = i.to_be_bytes();
            // Minimal two's complement: drop leading bytes that only repeat the sign.
            let mut start = 0;
            while start < 7 {
                let (Some(&b), Some(&next)) = (bytes.get(start), bytes.get(start + 1)) else {
                    break;
                };
                if (b == 0 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0) {
                    start += 1;
                } else {
                    break;
                }
            }
            push_tlv(TAG_INTEGER, bytes.get(start..).unwrap_or_default(), out);
        }
        AttrValue::String(s) => push_tlv(TAG_UTF8, s.as_bytes(), out),
        AttrValue::Data(d) => push_tlv(TAG_DATA, d, out),
        AttrValue::Date(t) => push_tlv(TAG_DATE, format_generalized_time(*t).as_bytes(), out),
        AttrValue::Array(a) => {
            let mut inner = Vec::new();
            for x in a {
                encode_value(x, &mut inner);
            }
            push_tlv(TAG_SEQUENCE, &inner, out);
        }
        AttrValue::Dict(d) => encode_dict(d, out),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYYMMDDhhmmss[.fff]Z` → Unix seconds.
fn parse_generalized_time(c: &[u8]) -> std::result::Result<f64, String> {
    let s = std::str::from_utf8(c).map_err(|_| "date is not ASCII".to_string())?;
    let bad = || format!("bad GeneralizedTime {s:?}");
    let body = s.strip_suffix('Z').ok_or_else(bad)?;
    let (whole, frac) = match body.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (body, None),
    };
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> std::result::Result<i64, String> {
        whole.get(r).and_then(|x| x.parse().ok()).ok_or_else(bad)
    };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(4..6)?,
        num(6..8)?,
        num(8..10)?,
        num(10..12)?,
        num(12..14)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(bad());
    }
    let mut t = (days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se) as f64;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        t += format!("0.{f}").parse::<f64>().map_err(|_| bad())?;
    }
    Ok(t)
}

/// Unix seconds → `YYYYMMDDhhmmss[.ffffff]Z` (years clamped to 0000–9999).
fn format_generalized_time(t: f64) -> String {
    let t = if t.is_finite() {
        t.clamp(-62_167_219_200.0, 253_402_300_799.0)
    } else {
        0.0
    };
    let secs = t.floor() as i64;
    let micros = ((t - t.floor()) * 1e6).round() as i64;
    let (secs, micros) = if micros >= 1_000_000 {
        (secs + 1, 0)
    } else {
        (secs, micros)
    };
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let r = secs.rem_euclid(86_400);
    let mut s = format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        r / 3600,
        r % 3600 / 60,
        r % 60
    );
    if micros > 0 {
        let f = format!("{micros:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use crate::keybag::{KdfParams, Keybag};
    use proptest::prelude::*;

    fn keys() -> ClassKeys {
        Keybag::generate(None, KdfParams::default()).unwrap().1
    }

    fn attrs(secret: &[u8]) -> Vec<(String, AttrValue)> {
        vec![
            ("acct".into(), AttrValue::String("alice@example.com".into())),
            ("srvr".into(), AttrValue::String("example.com".into())),
            ("ptcl".into(), AttrValue::String("htps".into())),
            ("port".into(), AttrValue::Integer(443)),
            ("path".into(), AttrValue::String("/login".into())),
            (
                "agrp".into(),
                AttrValue::String("com.apple.cfnetwork".into()),
            ),
            ("pdmn".into(), AttrValue::String("ak".into())),
            ("cdat".into(), AttrValue::Date(1_700_000_000.25)),
            ("mdat".into(), AttrValue::Date(1_710_000_000.0)),
            ("sync".into(), AttrValue::Integer(1)),
            ("v_Data".into(), AttrValue::Data(secret.to_vec())),
        ]
    }

    #[test]
    fn v3_round_trip_and_typed_fields() {
        let k = keys();
        let bulk = FileKey::random();
        let blob = encrypt_item(&attrs(b"hunter2"), 6, &k, &bulk).unwrap();
        assert_eq!(blob_header(&blob), Some((3, 6)));
        let plist = encode_backup_plist(
            &[BackupEntry {
                table: Table::InternetPassword,
                data: blob,
                persistent_ref: persistent_ref(Table::InternetPassword, 42),
            }],
            Some("uuid-1"),
        )
        .unwrap();
        let kc = KeychainBackup::parse(&plist, Path::new("kc")).unwrap();
        assert_eq!(kc.keybag_uuid(), Some("uuid-1"));
        assert_eq!(kc.count(Table::InternetPassword), 1);
        let items: Vec<_> = kc.items(&k).collect();
        assert_eq!(items.len(), 1);
        let it = items.into_iter().next().unwrap().unwrap();
        assert_eq!(it.secret.as_utf8(), Some("hunter2"));
        assert_eq!(it.account.as_deref(), Some("alice@example.com"));
        assert_eq!(it.server.as_deref(), Some("example.com"));
        assert_eq!(it.protocol.as_deref(), Some("htps"));
        assert_eq!(it.port, Some(443));
        assert_eq!(it.path.as_deref(), Some("/login"));
        assert_eq!(it.access_group.as_deref(), Some("com.apple.cfnetwork"));
        assert_eq!(it.created, Some(1_700_000_000.25));
        assert_eq!(it.modified, Some(1_710_000_000.0));
        assert!(it.synchronizable);
        assert_eq!(it.persistent_ref.as_ref().unwrap().rowid, Some(42));
        assert!(
            it.attribute("v_Data").is_none(),
            "the secret is not an attribute"
        );
        assert!(!format!("{:?}", it.secret).contains("hunter2"));
    }

    #[test]
    fn this_device_only_and_wrong_keys_are_skipped_with_reasons() {
        let k = keys();
        let other = keys();
        let bulk = FileKey::random();
        let dev_only = encrypt_item(&attrs(b"x"), 10, &k, &bulk).unwrap();
        assert_eq!(
            decrypt_blob(&dev_only, &k).unwrap_err(),
            SkipReason::ThisDeviceOnly { class: 10 }
        );
        let blob = encrypt_item(&attrs(b"x"), 7, &k, &bulk).unwrap();
        assert_eq!(
            decrypt_blob(&blob, &other).unwrap_err(),
            SkipReason::KeyUnwrapFailed { class: 7 }
        );
        // A flipped ciphertext bit fails authentication.
        let mut bad = blob.clone();
        let n = bad.len();
        bad[n - 20] ^= 1;
        assert_eq!(
            decrypt_blob(&bad, &k).unwrap_err(),
            SkipReason::DecryptionFailed
        );
        // Versions 6 and 7 are reported, not guessed.
        let mut v7 = blob.clone();
        v7[0] = 7;
        assert_eq!(
            decrypt_blob(&v7, &k).unwrap_err(),
            SkipReason::UnsupportedVersion(7)
        );
        assert!(
            decrypt_blob(&blob[..30], &k)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        assert!(matches!(
            decrypt_blob(&[1, 2, 3], &k),
            Err(SkipReason::Truncated(_))
        ));
    }

    #[test]
    fn version_0_and_version_2_and_default_iv_decode() {
        use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
        let k = keys();
        let bulk = FileKey::random();
        let wrapped = k.wrap(8, &bulk).unwrap().wrapped.clone();
        // Version 0: CBC of the bare secret, attributes in clear outside.
        let mut buf = [0u8; 16];
        buf[..10].copy_from_slice(b"old secret");
        let ct = cbc::Encryptor::<aes::Aes256>::new_from_slices(bulk.as_bytes(), &[0u8; 16])
            .unwrap()
            .encrypt_padded_mut::<Pkcs7>(&mut buf, 10)
            .unwrap()
            .to_vec();
        let mut v0 = Vec::new();
        v0.extend_from_slice(&0u32.to_le_bytes());
        v0.extend_from_slice(&8u32.to_le_bytes());
        v0.extend_from_slice(&wrapped);
        v0.extend_from_slice(&ct);
        let mut item = plist::Dictionary::new();
        item.insert("v_Data".into(), plist::Value::Data(v0));
        item.insert("svce".into(), plist::Value::String("mail".into()));
        item.insert("acct".into(), plist::Value::String("bob".into()));
        // Version 2: GCM over a binary plist.
        let mut inner = plist::Dictionary::new();
        inner.insert("svce".into(), plist::Value::String("AirPort".into()));
        inner.insert("acct".into(), plist::Value::String("Home".into()));
        inner.insert("v_Data".into(), plist::Value::Data(b"wifi-pass".to_vec()));
        let mut pl = Vec::new();
        plist::Value::Dictionary(inner)
            .to_writer_binary(&mut pl)
            .unwrap();
        let tag = GcmEmptyIv::new_from_slice(bulk.as_bytes())
            .unwrap()
            .encrypt_in_place_detached(&Nonce::<U0>::default(), b"", &mut pl)
            .unwrap();
        let mut v2 = Vec::new();
        v2.extend_from_slice(&2u32.to_le_bytes());
        v2.extend_from_slice(&8u32.to_le_bytes());
        v2.extend_from_slice(&40u32.to_le_bytes());
        v2.extend_from_slice(&wrapped);
        v2.extend_from_slice(&pl);
        v2.extend_from_slice(&tag);
        // Version 3 with the default-IV flag: fixed IV, header as AAD.
        let mut der = encode_der(&attrs(b"flagged"));
        let mut v3 = Vec::new();
        v3.extend_from_slice(&(3u32 | USE_DEFAULT_IV).to_le_bytes());
        v3.extend_from_slice(&8u32.to_le_bytes());
        v3.extend_from_slice(&40u32.to_le_bytes());
        let aad = v3.clone();
        let tag = Gcm12::new_from_slice(bulk.as_bytes())
            .unwrap()
            .encrypt_in_place_detached(Nonce::<U12>::from_slice(&DEFAULT_IV), &aad, &mut der)
            .unwrap();
        v3.extend_from_slice(&wrapped);
        v3.extend_from_slice(&der);
        v3.extend_from_slice(&tag);
        let mut top = plist::Dictionary::new();
        let wrap = |b: Vec<u8>| {
            let mut d = plist::Dictionary::new();
            d.insert("v_Data".into(), plist::Value::Data(b));
            plist::Value::Dictionary(d)
        };
        top.insert(
            "genp".into(),
            plist::Value::Array(vec![plist::Value::Dictionary(item), wrap(v2), wrap(v3)]),
        );
        let mut bytes = Vec::new();
        plist::Value::Dictionary(top)
            .to_writer_binary(&mut bytes)
            .unwrap();
        let kc = KeychainBackup::parse(&bytes, Path::new("kc")).unwrap();
        let got: Vec<KeychainItem> = kc.items(&k).map(|r| r.unwrap()).collect();
        assert_eq!(got[0].secret.as_bytes(), b"old secret");
        assert_eq!(got[0].service.as_deref(), Some("mail"));
        assert_eq!(got[0].account.as_deref(), Some("bob"));
        assert!(got[1].is_wifi());
        assert_eq!(got[1].account.as_deref(), Some("Home"));
        assert_eq!(got[1].secret.as_bytes(), b"wifi-pass");
        assert_eq!(got[2].secret.as_bytes(), b"flagged");
        assert_eq!(got[2].version, 3);
    }

    #[test]
    fn hostile_plists() {
        let k = keys();
        let p = Path::new("kc");
        assert!(KeychainBackup::parse(b"not a plist", p).is_err());
        let mut bytes = Vec::new();
        plist::Value::Array(vec![])
            .to_writer_binary(&mut bytes)
            .unwrap();
        assert!(matches!(
            KeychainBackup::parse(&bytes, p),
            Err(Error::Corrupt { .. })
        ));
        // Wrong types everywhere: every entry is counted and skipped, nothing panics.
        let mut top = plist::Dictionary::new();
        top.insert("genp".into(), plist::Value::String("oops".into()));
        top.insert(
            "inet".into(),
            plist::Value::Array(vec![
                plist::Value::Integer(3.into()),
                plist::Value::Dictionary(plist::Dictionary::new()),
                plist::Value::Dictionary({
                    let mut d = plist::Dictionary::new();
                    d.insert("v_Data".into(), plist::Value::String("text".into()));
                    d
                }),
                plist::Value::Dictionary({
                    let mut d = plist::Dictionary::new();
                    d.insert("v_Data".into(), plist::Value::Data(vec![3, 0, 0, 0, 6]));
                    d
                }),
                plist::Value::Dictionary({
                    let mut d = plist::Dictionary::new();
                    let mut b = vec![3, 0, 0, 0, 6, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
                    b.extend_from_slice(&[0u8; 100]);
                    d.insert("v_Data".into(), plist::Value::Data(b));
                    d
                }),
                plist::Value::Dictionary({
                    let mut d = plist::Dictionary::new();
                    d.insert(
                        "v_Data".into(),
                        plist::Value::Data(vec![0u8; MAX_BLOB_LEN + 1]),
                    );
                    d
                }),
            ]),
        );
        top.insert("keybag-uuid".into(), plist::Value::Integer(1.into()));
        let mut bytes = Vec::new();
        plist::Value::Dictionary(top)
            .to_writer_binary(&mut bytes)
            .unwrap();
        let kc = KeychainBackup::parse(&bytes, p).unwrap();
        assert_eq!(kc.problems().len(), 2, "{:?}", kc.problems());
        let all: Vec<_> = kc.items(&k).collect();
        assert_eq!(all.len(), 6);
        assert!(all.iter().all(|r| r.is_err()));
        let reasons: Vec<String> = all
            .iter()
            .map(|r| r.as_ref().unwrap_err().to_string())
            .collect();
        assert!(reasons[0].contains("not a dictionary"), "{reasons:?}");
        assert!(reasons[1].contains("no v_Data"), "{reasons:?}");
        assert!(reasons[3].contains("truncated"), "{reasons:?}");
        assert!(reasons[4].contains("implausible"), "{reasons:?}");
        assert!(reasons[5].contains("more than"), "{reasons:?}");
        // Too big a file is refused before parsing.
        let huge = vec![0u8; (MAX_FILE_LEN + 1) as usize];
        assert!(matches!(
            KeychainBackup::read_from(&huge[..], p),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn der_edge_cases() {
        // Deep nesting is refused, not recursed into without bound.
        let mut v = AttrValue::Null;
        for _ in 0..40 {
            v = AttrValue::Array(vec![v]);
        }
        let der = encode_der(&[("deep".into(), v)]);
        assert!(decode_der(&der).unwrap_err().contains("nested"));
        // Lying lengths.
        assert!(decode_der(&[0x31, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_der(&[0x31, 0x80]).is_err());
        assert!(decode_der(&[]).is_err());
        assert!(decode_der(&[0x31, 0x00, 0x00]).is_err());
        // Dates: known value and fractions.
        assert_eq!(
            parse_generalized_time(b"20231114221320Z").unwrap(),
            1_700_000_000.0
        );
        assert_eq!(
            format_generalized_time(1_700_000_000.5),
            "20231114221320.5Z"
        );
        assert_eq!(format_generalized_time(0.0), "19700101000000Z");
        assert!(parse_generalized_time(b"20231314221320Z").is_err());
        assert!(parse_generalized_time(b"2023").is_err());
        assert_eq!(four_char_code(0x6874_7073), "htps");
        assert_eq!(four_char_code(443), "443");
    }

    fn arb_value() -> impl Strategy<Value = AttrValue> {
        let leaf = prop_oneof![
            Just(AttrValue::Null),
            any::<bool>().prop_map(AttrValue::Bool),
            any::<i64>().prop_map(AttrValue::Integer),
            "\\PC{0,20}".prop_map(AttrValue::String),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(AttrValue::Data),
            (-2_000_000_000i64..4_000_000_000i64, 0u32..1000)
                .prop_map(|(s, ms)| AttrValue::Date(s as f64 + f64::from(ms) / 1000.0)),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(AttrValue::Array),
                proptest::collection::vec(("[a-z]{1,6}", inner), 0..4).prop_map(AttrValue::Dict),
            ]
        })
    }

    fn canon(v: &[(String, AttrValue)]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = v
            .iter()
            .map(|(k, x)| (k.clone(), format!("{x:?}")))
            .collect();
        out.sort();
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn der_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_der(&bytes);
        }

        #[test]
        fn blob_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let k = ClassKeys::default();
            let _ = decrypt_blob(&bytes, &k);
        }

        #[test]
        fn keychain_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(kc) = KeychainBackup::parse(&bytes, Path::new("kc")) {
                let k = ClassKeys::default();
                for r in kc.items(&k) {
                    let _ = r;
                }
            }
        }

        #[test]
        fn der_round_trips(entries in proptest::collection::vec(("[a-z]{1,8}", arb_value()), 0..8)) {
            let der = encode_der(&entries);
            let back = decode_der(&der).unwrap();
            // Dates keep millisecond fractions exactly enough to compare their encodings.
            let norm = |v: &[(String, AttrValue)]| encode_der(v);
            prop_assert_eq!(norm(&back), der.clone());
            prop_assert_eq!(canon(&back).len(), entries.len());
        }
    }
}
