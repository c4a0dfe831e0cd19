//! The `BackupKeyBag` of `Manifest.plist`: a TLV list holding the KDF parameters and the
//! 11 protection-class keys, each wrapped with the password-derived key.
//!
//! # Why it looks like this
//!
//! * The bytes come from a backup folder, so [`Keybag::parse`] is bounded: it never trusts a
//!   length, caps the size and the number of records, and reports [`Error::Corrupt`] instead of
//!   panicking (property-tested on arbitrary bytes).
//! * Records are assigned exactly as every public reader does (iphone_backup_decrypt, iOSbackup,
//!   dinosec, format.md §2.1): the **first** `UUID` and the **first** `WRAP` are the keybag's,
//!   every later `UUID` opens a class record, `CLAS/WRAP/KTYP/WPKY/PBKY` belong to the current
//!   class and anything else is a header attribute (kept in [`Keybag::extra`]).
//! * [`Keybag::to_bytes`] writes the order real keybags use (format.md §3 step 2), which some
//!   readers depend on (pyiosbackup slices fixed 5-tag class groups).
//! * [`Keybag::generate`] builds keybags for the writer and the device simulator that the
//!   third-party readers accept.

use std::collections::BTreeMap;
use std::fmt;

use rand::RngCore;

use crate::crypto::{self, FileKey, KEY_LEN, KEYBAG_PATH, Kek, MAX_DPIC, MAX_ITER};
use crate::entry::WrappedKey;
use crate::error::{Error, Result};

/// Largest keybag accepted; real ones are about 1.4 KB.
pub const MAX_KEYBAG_LEN: usize = 1 << 20;

/// Most class records accepted; real keybags have 11 (or 10 on old iOS).
pub const MAX_CLASSES: usize = 64;

/// Most unknown header attributes accepted.
pub const MAX_EXTRA: usize = 256;

/// `WRAP` bit meaning "wrapped with the password-derived key" (bit 1 is the device UID key).
pub const WRAP_PASSCODE: u32 = 2;

/// Number of protection classes in a generated keybag, as on real phones.
pub const GENERATED_CLASSES: u32 = 11;

/// Protection class that wraps `Manifest.db`'s key (`ManifestKey`) on real phones.
pub const MANIFEST_KEY_CLASS: u32 = 4;

/// One class key record of the keybag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassKeyRecord {
    /// Record UUID (16 bytes on real phones; not checked by any reader).
    pub uuid: Vec<u8>,
    /// Protection class number (1–11).
    pub class: u32,
    /// How the key is wrapped: bit [`WRAP_PASSCODE`] = password, bit 1 = device UID key.
    pub wrap: u32,
    /// Key type: 0 AES, 1 Curve25519 (backups use 0). 0 when the record has no `KTYP`.
    pub key_type: u32,
    /// The RFC 3394 wrapped class key (40 bytes).
    pub wpky: Vec<u8>,
    /// Public key of Curve25519 classes, when present.
    pub pbky: Option<Vec<u8>>,
}

/// A parsed `BackupKeyBag`.
///
/// Holds only wrapped keys and public parameters; nothing in it is secret without the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keybag {
    /// `VERS`: keybag format version (5 on recent phones).
    pub version: u32,
    /// `TYPE`: 1 for a backup keybag.
    pub kind: u32,
    /// `UUID`: the keybag's UUID.
    pub uuid: Vec<u8>,
    /// `HMCK`: wrapped HMAC key (all zeros in unencrypted backups; empty when absent).
    pub hmck: Vec<u8>,
    /// `WRAP` of the keybag itself (0).
    pub wrap: u32,
    /// `SALT`: salt of the PBKDF2-SHA1 stage.
    pub salt: Vec<u8>,
    /// `ITER`: rounds of the PBKDF2-SHA1 stage (10,000).
    pub iter: u32,
    /// `DPWT` (iOS ≥ 10.2; meaning unconfirmed, kept as found).
    pub dpwt: Option<u32>,
    /// `DPIC`: rounds of the PBKDF2-SHA256 stage (10,000,000; iOS ≥ 10.2).
    pub dpic: Option<u32>,
    /// `DPSL`: salt of the PBKDF2-SHA256 stage (iOS ≥ 10.2).
    pub dpsl: Option<Vec<u8>>,
    /// The class key records, in file order.
    pub classes: Vec<ClassKeyRecord>,
    /// Header attributes this crate does not interpret, in file order (written back as is).
    pub extra: Vec<(String, Vec<u8>)>,
}

/// Key-derivation cost parameters for a new keybag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// PBKDF2-SHA256 rounds (`DPIC`); 10,000,000 on real phones. Tests use ~1,000.
    pub dpic: u32,
    /// PBKDF2-SHA1 rounds (`ITER`); 10,000 on real phones.
    pub iter: u32,
}

impl Default for KdfParams {
    /// The values real phones use, so generated backups cost attackers what real ones do.
    fn default() -> Self {
        KdfParams {
            dpic: 10_000_000,
            iter: 10_000,
        }
    }
}

/// The unwrapped class keys: protection class → 32-byte key.
///
/// Obtained from [`Keybag::unlock`]; every key is zeroized on drop, and `Debug` lists only
/// the class numbers.
#[derive(Clone, Default)]
pub struct ClassKeys {
    keys: BTreeMap<u32, FileKey>,
}

impl fmt::Debug for ClassKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassKeys")
            .field("classes", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ClassKeys {
    /// Unwraps a per-file (or `Manifest.db`) key with the key of its class.
    ///
    /// `what` names the file in the error: a missing class key or a failed integrity check is
    /// [`Error::KeyUnwrap`], i.e. a damaged backup (the password was already proven right).
    pub fn unwrap(&self, key: &WrappedKey, what: &str) -> Result<FileKey> {
        let fail = || Error::KeyUnwrap {
            what: what.to_string(),
            class: key.class,
        };
        let class_key = self.keys.get(&key.class).ok_or_else(fail)?;
        let mut raw = crypto::aes_unwrap(class_key.as_bytes(), &key.wrapped).ok_or_else(fail)?;
        let out = FileKey::from_bytes(&raw);
        zeroize::Zeroize::zeroize(&mut raw);
        out.ok_or_else(fail)
    }

    /// Wraps `key` with the key of `class`, as the writer stores per-file keys.
    ///
    /// A class that is not present is [`Error::InvalidArgument`]: the caller asked for a class
    /// the keybag cannot serve.
    pub fn wrap(&self, class: u32, key: &FileKey) -> Result<WrappedKey> {
        let class_key = self.keys.get(&class).ok_or_else(|| {
            Error::InvalidArgument(format!("no key for protection class {class} in the keybag"))
        })?;
        let wrapped = crypto::aes_wrap(class_key.as_bytes(), key.as_bytes())?;
        Ok(WrappedKey { class, wrapped })
    }

    /// Whether the key of `class` is available.
    pub fn has_class(&self, class: u32) -> bool {
        self.keys.contains_key(&class)
    }

    /// The available class numbers, ascending (for diagnostics).
    pub fn classes(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.keys().copied()
    }

    /// Number of class keys available.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no class key is available.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Tags of the class records.
const CLASS_TAGS: [&[u8; 4]; 5] = [b"CLAS", b"WRAP", b"KTYP", b"WPKY", b"PBKY"];

/// Tags the header interprets (everything else goes to `extra`).
#[cfg(test)]
const HEADER_TAGS: [&str; 10] = [
    "VERS", "TYPE", "UUID", "HMCK", "WRAP", "SALT", "ITER", "DPWT", "DPIC", "DPSL",
];

fn corrupt(detail: impl Into<String>) -> Error {
    Error::corrupt(KEYBAG_PATH, "keybag", detail)
}

fn be_u32(tag: &str, v: &[u8]) -> Result<u32> {
    let arr: [u8; 4] = v.try_into().map_err(|_| {
        corrupt(format!(
            "{tag} must be a 4-byte integer, is {} bytes",
            v.len()
        ))
    })?;
    Ok(u32::from_be_bytes(arr))
}

/// Sets a field that may appear only once.
fn set_once<T>(slot: &mut Option<T>, tag: &str, v: T) -> Result<()> {
    if slot.is_some() {
        return Err(corrupt(format!("duplicate {tag}")));
    }
    *slot = Some(v);
    Ok(())
}

/// A class record under construction.
#[derive(Default)]
struct PartialClass {
    uuid: Vec<u8>,
    class: Option<u32>,
    wrap: Option<u32>,
    key_type: Option<u32>,
    wpky: Option<Vec<u8>>,
    pbky: Option<Vec<u8>>,
}

impl PartialClass {
    fn finish(self, index: usize) -> Result<ClassKeyRecord> {
        let missing = |t: &str| corrupt(format!("class record #{} has no {t}", index + 1));
        Ok(ClassKeyRecord {
            uuid: self.uuid,
            class: self.class.ok_or_else(|| missing("CLAS"))?,
            wrap: self.wrap.ok_or_else(|| missing("WRAP"))?,
            key_type: self.key_type.unwrap_or(0),
            wpky: self.wpky.ok_or_else(|| missing("WPKY"))?,
            pbky: self.pbky,
        })
    }
}

/// Appends one TLV record.
fn put(out: &mut Vec<u8>, tag: &[u8; 4], value: &[u8]) {
    out.extend_from_slice(tag);
    // Values are bounded by the structures we build; a value over 4 GiB cannot occur.
    out.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(value);
}

fn put_u32(out: &mut Vec<u8>, tag: &[u8; 4], v: u32) {
    put(out, tag, &v.to_be_bytes());
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut v);
    v
}

impl Keybag {
    /// Parses the TLV bytes of a `BackupKeyBag`.
    ///
    /// Bounded and strict where readers would otherwise misbehave: a length running past the
    /// end, a non-ASCII tag, a wrong-sized integer, duplicate header fields or class numbers,
    /// a class tag before any class, more than [`MAX_CLASSES`] classes or a missing required
    /// field (`VERS`, `TYPE`, `UUID`, `WRAP`, `SALT`, `ITER`; per class `CLAS`, `WRAP`, `WPKY`)
    /// are [`Error::Corrupt`].
    pub fn parse(bytes: &[u8]) -> Result<Keybag> {
        if bytes.len() > MAX_KEYBAG_LEN {
            return Err(corrupt(format!(
                "{} bytes is larger than any real keybag",
                bytes.len()
            )));
        }
        let mut version = None;
        let mut kind = None;
        let mut uuid: Option<Vec<u8>> = None;
        let mut hmck = None;
        let mut wrap = None;
        let mut salt = None;
        let mut iter = None;
        let mut dpwt = None;
        let mut dpic = None;
        let mut dpsl = None;
        let mut extra: Vec<(String, Vec<u8>)> = Vec::new();
        let mut classes: Vec<ClassKeyRecord> = Vec::new();
        let mut current: Option<PartialClass> = None;

        let mut pos = 0usize;
        while pos < bytes.len() {
            let header = bytes
                .get(pos..pos + 8)
                .ok_or_else(|| corrupt(format!("truncated record header at offset {pos}")))?;
            let (tag_bytes, len_bytes) = header.split_at(4);
            if !tag_bytes.iter().all(|b| b.is_ascii_alphanumeric()) {
                return Err(corrupt(format!(
                    "record at offset {pos} has a non-ASCII tag"
                )));
            }
            let tag = String::from_utf8_lossy(tag_bytes).into_owned();
            let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
            let start = pos + 8;
            let end = usize::try_from(len)
                .ok()
                .and_then(|l| start.checked_add(l))
                .filter(|&e| e <= bytes.len())
                .ok_or_else(|| {
                    corrupt(format!(
                        "{tag} at offset {pos} claims {len} bytes, only {} remain",
                        bytes.len() - start
                    ))
                })?;
            let v = &bytes[start..end];
            pos = end;

            match tag.as_str() {
                "UUID" if uuid.is_none() => uuid = Some(v.to_vec()),
                "WRAP" if wrap.is_none() => wrap = Some(be_u32(&tag, v)?),
                "UUID" => {
                    if let Some(c) = current.take() {
                        classes.push(c.finish(classes.len())?);
                    }
                    if classes.len() >= MAX_CLASSES {
                        return Err(corrupt(format!("more than {MAX_CLASSES} class records")));
                    }
                    current = Some(PartialClass {
                        uuid: v.to_vec(),
                        ..PartialClass::default()
                    });
                }
                t if CLASS_TAGS.iter().any(|c| c.as_slice() == t.as_bytes()) => {
                    let c = current
                        .as_mut()
                        .ok_or_else(|| corrupt(format!("{tag} before any class record")))?;
                    match t {
                        "CLAS" => set_once(&mut c.class, t, be_u32(t, v)?)?,
                        "WRAP" => set_once(&mut c.wrap, t, be_u32(t, v)?)?,
                        "KTYP" => set_once(&mut c.key_type, t, be_u32(t, v)?)?,
                        "WPKY" => set_once(&mut c.wpky, t, v.to_vec())?,
                        _ => set_once(&mut c.pbky, t, v.to_vec())?,
                    }
                }
                "VERS" => set_once(&mut version, &tag, be_u32(&tag, v)?)?,
                "TYPE" => set_once(&mut kind, &tag, be_u32(&tag, v)?)?,
                "HMCK" => set_once(&mut hmck, &tag, v.to_vec())?,
                "SALT" => set_once(&mut salt, &tag, v.to_vec())?,
                "ITER" => set_once(&mut iter, &tag, be_u32(&tag, v)?)?,
                "DPWT" => set_once(&mut dpwt, &tag, be_u32(&tag, v)?)?,
                "DPIC" => set_once(&mut dpic, &tag, be_u32(&tag, v)?)?,
                "DPSL" => set_once(&mut dpsl, &tag, v.to_vec())?,
                _ => {
                    if extra.len() >= MAX_EXTRA {
                        return Err(corrupt(format!("more than {MAX_EXTRA} unknown attributes")));
                    }
                    extra.push((tag, v.to_vec()));
                }
            }
        }
        if let Some(c) = current.take() {
            classes.push(c.finish(classes.len())?);
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &classes {
            if !seen.insert(c.class) {
                return Err(corrupt(format!("class {} appears twice", c.class)));
            }
        }
        let missing = |t: &str| corrupt(format!("no {t}"));
        Ok(Keybag {
            version: version.ok_or_else(|| missing("VERS"))?,
            kind: kind.ok_or_else(|| missing("TYPE"))?,
            uuid: uuid.ok_or_else(|| missing("UUID"))?,
            hmck: hmck.unwrap_or_default(),
            wrap: wrap.ok_or_else(|| missing("WRAP"))?,
            salt: salt.ok_or_else(|| missing("SALT"))?,
            iter: iter.ok_or_else(|| missing("ITER"))?,
            dpwt,
            dpic,
            dpsl,
            classes,
            extra,
        })
    }

    /// Serializes the keybag in the order real phones use: `VERS, TYPE, UUID, HMCK, WRAP,
    /// SALT, ITER, DPWT, DPIC, DPSL`, the unknown header attributes, then per class
    /// `UUID, CLAS, WRAP, KTYP, WPKY` (+ `PBKY` if present). An empty `hmck` is omitted.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1400);
        put_u32(&mut out, b"VERS", self.version);
        put_u32(&mut out, b"TYPE", self.kind);
        put(&mut out, b"UUID", &self.uuid);
        if !self.hmck.is_empty() {
            put(&mut out, b"HMCK", &self.hmck);
        }
        put_u32(&mut out, b"WRAP", self.wrap);
        put(&mut out, b"SALT", &self.salt);
        put_u32(&mut out, b"ITER", self.iter);
        if let Some(v) = self.dpwt {
            put_u32(&mut out, b"DPWT", v);
        }
        if let Some(v) = self.dpic {
            put_u32(&mut out, b"DPIC", v);
        }
        if let Some(v) = &self.dpsl {
            put(&mut out, b"DPSL", v);
        }
        for (tag, v) in &self.extra {
            let mut t = [b'0'; 4];
            for (d, s) in t.iter_mut().zip(tag.bytes()) {
                *d = s;
            }
            put(&mut out, &t, v);
        }
        for c in &self.classes {
            put(&mut out, b"UUID", &c.uuid);
            put_u32(&mut out, b"CLAS", c.class);
            put_u32(&mut out, b"WRAP", c.wrap);
            put_u32(&mut out, b"KTYP", c.key_type);
            put(&mut out, b"WPKY", &c.wpky);
            if let Some(p) = &c.pbky {
                put(&mut out, b"PBKY", p);
            }
        }
        out
    }

    /// Whether the keybag uses the iOS ≥ 10.2 two-stage derivation (has `DPIC`/`DPSL`).
    pub fn has_dp_kdf(&self) -> bool {
        self.dpic.is_some() || self.dpsl.is_some()
    }

    /// Derives the key-encryption key from `password` and unwraps every class key.
    ///
    /// Costs the full key derivation (about a second with real parameters). A wrong password
    /// is [`Error::WrongPassword`]; bad KDF parameters are [`Error::Corrupt`].
    pub fn unlock(&self, password: &[u8]) -> Result<ClassKeys> {
        let kek = crypto::derive_kek(password, self)?;
        self.unlock_with_kek(&kek)
    }

    /// Unwraps every class key wrapped with the password (`WRAP & 2`) using an already derived
    /// key-encryption key (e.g. mvt's saved "derived key").
    ///
    /// The first failing RFC 3394 integrity check is [`Error::WrongPassword`] (all readers fail
    /// the whole unlock then); an unwrapped key that is not 32 bytes, or a keybag without any
    /// password-wrapped class, is [`Error::Corrupt`]. Device-wrapped classes are skipped.
    pub fn unlock_with_kek(&self, kek: &Kek) -> Result<ClassKeys> {
        let mut keys = ClassKeys::default();
        for c in self.classes.iter().filter(|c| c.wrap & WRAP_PASSCODE != 0) {
            let mut raw =
                crypto::aes_unwrap(kek.as_bytes(), &c.wpky).ok_or(Error::WrongPassword)?;
            let key = FileKey::from_bytes(&raw);
            zeroize::Zeroize::zeroize(&mut raw);
            let key = key.ok_or_else(|| {
                corrupt(format!(
                    "class {} key is not {KEY_LEN} bytes after unwrapping",
                    c.class
                ))
            })?;
            keys.keys.insert(c.class, key);
        }
        if keys.is_empty() {
            return Err(corrupt("no class key is wrapped with the password"));
        }
        Ok(keys)
    }

    /// Creates a new keybag with 11 random class keys, as a phone does for a backup.
    ///
    /// With a password: random 20-byte `SALT`/`DPSL`, 16-byte UUIDs, `DPWT` 1, `DPIC`/`ITER`
    /// from `params`, `HMCK` a valid wrap of a random key, classes 1–4 `WRAP` 2 and 5–11
    /// `WRAP` 3, every `WPKY` wrapped with the derived key (so every reader can unlock it).
    /// This runs the full key derivation once.
    ///
    /// With `None`: an unencrypted-backup-style keybag (no `DPWT/DPIC/DPSL`, `HMCK` zeros)
    /// whose class keys are wrapped with a random, discarded key; the returned [`ClassKeys`]
    /// are still usable (tests, writers that need keys).
    ///
    /// Parameters outside the ranges readers accept are [`Error::InvalidArgument`].
    pub fn generate(password: Option<&[u8]>, params: KdfParams) -> Result<(Keybag, ClassKeys)> {
        if params.dpic == 0 || params.dpic > MAX_DPIC {
            return Err(Error::InvalidArgument(format!(
                "DPIC {} is outside 1..={MAX_DPIC}",
                params.dpic
            )));
        }
        if params.iter == 0 || params.iter > MAX_ITER {
            return Err(Error::InvalidArgument(format!(
                "ITER {} is outside 1..={MAX_ITER}",
                params.iter
            )));
        }
        let mut kb = Keybag {
            version: 5,
            kind: 1,
            uuid: random_bytes(16),
            hmck: vec![0u8; 40],
            wrap: 0,
            salt: random_bytes(20),
            iter: params.iter,
            dpwt: None,
            dpic: None,
            dpsl: None,
            classes: Vec::new(),
            extra: Vec::new(),
        };
        let kek = match password {
            Some(pw) => {
                kb.dpwt = Some(1);
                kb.dpic = Some(params.dpic);
                kb.dpsl = Some(random_bytes(20));
                let kek = crypto::derive_kek(pw, &kb)?;
                kb.hmck = crypto::aes_wrap(kek.as_bytes(), FileKey::random().as_bytes())?;
                kek
            }
            None => Kek::random(),
        };
        let mut keys = ClassKeys::default();
        for class in 1..=GENERATED_CLASSES {
            let key = FileKey::random();
            kb.classes.push(ClassKeyRecord {
                uuid: random_bytes(16),
                class,
                wrap: if class <= 4 {
                    WRAP_PASSCODE
                } else {
                    WRAP_PASSCODE | 1
                },
                key_type: 0,
                wpky: crypto::aes_wrap(kek.as_bytes(), key.as_bytes())?,
                pbky: None,
            });
            keys.keys.insert(class, key);
        }
        Ok((kb, keys))
    }
}

/// Whether `tag` is interpreted by the header (so it can never be an `extra` attribute).
#[cfg(test)]
fn is_header_tag(tag: &str) -> bool {
    HEADER_TAGS.contains(&tag) || CLASS_TAGS.iter().any(|c| c.as_slice() == tag.as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FAST: KdfParams = KdfParams {
        dpic: 1000,
        iter: 10,
    };

    fn is_corrupt<T: fmt::Debug>(r: Result<T>) -> bool {
        matches!(r, Err(Error::Corrupt { .. }))
    }

    /// Record boundaries of a well-formed TLV byte string.
    fn boundaries(b: &[u8]) -> Vec<usize> {
        let mut out = vec![0];
        let mut pos = 0;
        while pos + 8 <= b.len() {
            let len = u32::from_be_bytes(b[pos + 4..pos + 8].try_into().unwrap()) as usize;
            pos += 8 + len;
            out.push(pos);
        }
        out
    }

    #[test]
    fn generated_unencrypted_keybag_has_the_real_layout() {
        let (kb, keys) = Keybag::generate(None, KdfParams::default()).unwrap();
        let bytes = kb.to_bytes();
        // The real unencrypted-backup keybag (format.md §2.1) is 1,336 bytes with this layout.
        assert_eq!(bytes.len(), 1336);
        let tags: Vec<&[u8]> = boundaries(&bytes)
            .iter()
            .filter(|&&p| p < bytes.len())
            .map(|&p| &bytes[p..p + 4])
            .collect();
        let mut want: Vec<&[u8]> = vec![
            b"VERS", b"TYPE", b"UUID", b"HMCK", b"WRAP", b"SALT", b"ITER",
        ];
        for _ in 0..11 {
            want.extend_from_slice(&[b"UUID", b"CLAS", b"WRAP", b"KTYP", b"WPKY"]);
        }
        assert_eq!(tags, want);
        assert_eq!(kb.hmck, vec![0u8; 40]);
        assert!(!kb.has_dp_kdf());
        assert_eq!(keys.len(), 11);
        assert_eq!(Keybag::parse(&bytes).unwrap(), kb);
        // Nobody can unwrap those class keys with a password.
        assert!(matches!(kb.unlock(b""), Err(Error::WrongPassword)));
    }

    #[test]
    fn generated_encrypted_keybag_order_and_round_trip() {
        let (kb, keys) = Keybag::generate(Some(b"secret"), FAST).unwrap();
        let bytes = kb.to_bytes();
        let b = boundaries(&bytes);
        let tags: Vec<&[u8]> = b.iter().take(10).map(|&p| &bytes[p..p + 4]).collect();
        let want: Vec<&[u8]> = vec![
            b"VERS", b"TYPE", b"UUID", b"HMCK", b"WRAP", b"SALT", b"ITER", b"DPWT", b"DPIC",
            b"DPSL",
        ];
        assert_eq!(tags, want);
        assert_eq!(*b.last().unwrap(), bytes.len());
        let parsed = Keybag::parse(&bytes).unwrap();
        assert_eq!(parsed, kb);
        assert_eq!(parsed.to_bytes(), bytes);
        assert_eq!(parsed.dpic, Some(1000));
        assert_eq!(parsed.iter, 10);
        assert_eq!(
            parsed.classes.iter().map(|c| c.class).collect::<Vec<_>>(),
            (1..=11).collect::<Vec<_>>()
        );
        assert!(
            parsed
                .classes
                .iter()
                .all(|c| c.wpky.len() == 40 && c.uuid.len() == 16)
        );
        assert_eq!(parsed.classes[3].wrap, 2);
        assert_eq!(parsed.classes[4].wrap, 3);

        let unlocked = parsed.unlock(b"secret").unwrap();
        assert_eq!(
            unlocked.classes().collect::<Vec<_>>(),
            (1..=11).collect::<Vec<_>>()
        );
        // The unlocked keys are the generated ones: a key wrapped by one unwraps with the other.
        let fk = FileKey::random();
        for class in 1..=11 {
            let w = keys.wrap(class, &fk).unwrap();
            assert_eq!(w.wrapped.len(), 40);
            assert_eq!(unlocked.unwrap(&w, "f").unwrap().as_bytes(), fk.as_bytes());
        }
        // HMCK is a valid wrap under the KEK.
        let kek = crypto::derive_kek(b"secret", &parsed).unwrap();
        assert!(crypto::aes_unwrap(kek.as_bytes(), &parsed.hmck).is_some());
        assert!(parsed.unlock_with_kek(&kek).is_ok());
    }

    #[test]
    fn wrong_password_is_wrong_password() {
        let (kb, _) = Keybag::generate(Some(b"right"), FAST).unwrap();
        assert!(matches!(kb.unlock(b"wrong"), Err(Error::WrongPassword)));
        assert!(matches!(kb.unlock(b""), Err(Error::WrongPassword)));
        let other = Kek::from_bytes(&[1; 32]).unwrap();
        assert!(matches!(
            kb.unlock_with_kek(&other),
            Err(Error::WrongPassword)
        ));
    }

    #[test]
    fn legacy_sha1_only_keybag_unlocks() {
        let (mut kb, keys) = Keybag::generate(Some(b"pw"), FAST).unwrap();
        kb.dpic = None;
        kb.dpsl = None;
        kb.dpwt = None;
        let kek = crypto::derive_kek(b"pw", &kb).unwrap();
        // Re-wrap the class keys the way an iOS < 10.2 phone would have.
        let probe = FileKey::random();
        for c in &mut kb.classes {
            let class_key = keys.keys.get(&c.class).unwrap();
            c.wpky = crypto::aes_wrap(kek.as_bytes(), class_key.as_bytes()).unwrap();
        }
        let parsed = Keybag::parse(&kb.to_bytes()).unwrap();
        assert!(!parsed.has_dp_kdf());
        let unlocked = parsed.unlock(b"pw").unwrap();
        let w = keys.wrap(2, &probe).unwrap();
        assert_eq!(
            unlocked.unwrap(&w, "x").unwrap().as_bytes(),
            probe.as_bytes()
        );
        assert!(matches!(parsed.unlock(b"PW"), Err(Error::WrongPassword)));
    }

    #[test]
    fn class_keys_errors() {
        let (_, keys) = Keybag::generate(None, FAST).unwrap();
        let fk = FileKey::random();
        let mut w = keys.wrap(3, &fk).unwrap();
        assert!(keys.has_class(3) && !keys.has_class(12));
        assert!(matches!(keys.wrap(12, &fk), Err(Error::InvalidArgument(_))));
        w.wrapped[5] ^= 1;
        match keys.unwrap(&w, "Library/SMS/sms.db") {
            Err(Error::KeyUnwrap { what, class }) => {
                assert_eq!(what, "Library/SMS/sms.db");
                assert_eq!(class, 3);
            }
            other => panic!("{other:?}"),
        }
        let missing = WrappedKey {
            class: 40,
            wrapped: vec![0; 40],
        };
        assert!(matches!(
            keys.unwrap(&missing, "m"),
            Err(Error::KeyUnwrap { class: 40, .. })
        ));
        // A wrapped 16-byte key unwraps but is not a 32-byte file key.
        let short = WrappedKey {
            class: 1,
            wrapped: keys.wrap(1, &fk).unwrap().wrapped[..24].to_vec(),
        };
        assert!(matches!(
            keys.unwrap(&short, "s"),
            Err(Error::KeyUnwrap { .. })
        ));
        let dbg = format!("{keys:?}");
        assert!(
            dbg.contains("classes") && !dbg.contains("FileKey("),
            "{dbg}"
        );
    }

    #[test]
    fn truncations_are_corrupt_or_a_shorter_valid_keybag() {
        let (kb, _) = Keybag::generate(Some(b"pw"), FAST).unwrap();
        let bytes = kb.to_bytes();
        let b = boundaries(&bytes);
        for cut in 0..bytes.len() {
            let r = Keybag::parse(&bytes[..cut]);
            if let Some(k) = b.iter().position(|&p| p == cut) {
                // Cut after k whole records: valid exactly when the required header (the first
                // 7 records) is there and no class record is cut short (10 header records,
                // then 5 per class).
                let valid = (7..=10).contains(&k) || (k > 10 && (k - 10) % 5 == 0);
                match r {
                    Ok(parsed) => {
                        assert!(valid, "cut after {k} records accepted");
                        assert_eq!(parsed.classes.len(), k.saturating_sub(10) / 5);
                    }
                    Err(e) => {
                        assert!(!valid, "cut after {k} records rejected: {e}");
                        assert!(matches!(e, Error::Corrupt { .. }));
                    }
                }
            } else {
                assert!(is_corrupt(r), "cut at {cut} accepted");
            }
        }
    }

    #[test]
    fn lying_lengths_and_malformed_records_are_corrupt() {
        let (kb, _) = Keybag::generate(Some(b"pw"), FAST).unwrap();
        let bytes = kb.to_bytes();
        let b = boundaries(&bytes);
        for &p in &b[..b.len() - 1] {
            for lie in [u32::MAX, 0x8000_0000, bytes.len() as u32] {
                let mut bad = bytes.clone();
                bad[p + 4..p + 8].copy_from_slice(&lie.to_be_bytes());
                assert!(is_corrupt(Keybag::parse(&bad)), "lie {lie} at {p}");
            }
        }
        let rec = |tag: &[u8; 4], v: &[u8]| {
            let mut o = Vec::new();
            put(&mut o, tag, v);
            o
        };
        let header = [
            rec(b"VERS", &5u32.to_be_bytes()),
            rec(b"TYPE", &1u32.to_be_bytes()),
            rec(b"UUID", &[0; 16]),
            rec(b"WRAP", &0u32.to_be_bytes()),
            rec(b"SALT", &[1; 20]),
            rec(b"ITER", &10u32.to_be_bytes()),
        ]
        .concat();
        let class = |c: u32| {
            [
                rec(b"UUID", &[2; 16]),
                rec(b"CLAS", &c.to_be_bytes()),
                rec(b"WRAP", &2u32.to_be_bytes()),
                rec(b"KTYP", &0u32.to_be_bytes()),
                rec(b"WPKY", &[3; 40]),
            ]
            .concat()
        };
        // Sanity: the pieces form a valid keybag.
        let ok = Keybag::parse(&[header.clone(), class(1)].concat()).unwrap();
        assert_eq!(ok.classes.len(), 1);
        // Duplicate class numbers.
        assert!(is_corrupt(Keybag::parse(
            &[header.clone(), class(1), class(1)].concat()
        )));
        // A class tag before any class record.
        assert!(is_corrupt(Keybag::parse(
            &[rec(b"CLAS", &[0, 0, 0, 1]), header.clone()].concat()
        )));
        // Integers of the wrong size.
        assert!(is_corrupt(Keybag::parse(
            &[header.clone(), rec(b"DPIC", &[0; 3])].concat()
        )));
        // Duplicate header field.
        assert!(is_corrupt(Keybag::parse(
            &[header.clone(), rec(b"SALT", &[1; 20])].concat()
        )));
        // Missing required header field.
        assert!(is_corrupt(Keybag::parse(&header[..header.len() - 12])));
        // Class record without WPKY.
        let c = class(2);
        assert!(is_corrupt(Keybag::parse(
            &[header.clone(), c[..c.len() - 48].to_vec()].concat()
        )));
        // Non-ASCII tag.
        assert!(is_corrupt(Keybag::parse(
            &[header.clone(), rec(b"\xffAB\x00", &[])].concat()
        )));
        // Too many classes.
        let many: Vec<u8> = (0..=MAX_CLASSES as u32).flat_map(class).collect();
        assert!(is_corrupt(Keybag::parse(&[header.clone(), many].concat())));
        // Too large.
        assert!(is_corrupt(Keybag::parse(&vec![0u8; MAX_KEYBAG_LEN + 1])));
        // Unknown attributes are kept and written back.
        let with_extra =
            Keybag::parse(&[header.clone(), rec(b"GRCE", &[9, 9]), class(1)].concat()).unwrap();
        assert_eq!(with_extra.extra, vec![("GRCE".to_string(), vec![9, 9])]);
        assert_eq!(Keybag::parse(&with_extra.to_bytes()).unwrap(), with_extra);
        // No password-wrapped class: unlock cannot succeed vacuously.
        let mut device_only = ok.clone();
        device_only.classes[0].wrap = 1;
        assert!(is_corrupt(
            device_only.unlock_with_kek(&Kek::from_bytes(&[0; 32]).unwrap())
        ));
    }

    #[test]
    fn hostile_kdf_parameters_in_a_parsed_keybag_fail_fast() {
        let (mut kb, _) = Keybag::generate(Some(b"pw"), FAST).unwrap();
        kb.dpic = Some(u32::MAX);
        let parsed = Keybag::parse(&kb.to_bytes()).unwrap();
        let started = std::time::Instant::now();
        assert!(is_corrupt(parsed.unlock(b"pw")));
        assert!(started.elapsed().as_millis() < 500);
        assert!(matches!(
            Keybag::generate(Some(b"pw"), KdfParams { dpic: 0, iter: 1 }),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            Keybag::generate(
                None,
                KdfParams {
                    dpic: 1,
                    iter: MAX_ITER + 1
                }
            ),
            Err(Error::InvalidArgument(_))
        ));
    }

    fn arb_tag() -> impl Strategy<Value = String> {
        "[A-Z0-9]{4}".prop_filter("not interpreted", |t| !is_header_tag(t))
    }

    fn arb_keybag() -> impl Strategy<Value = Keybag> {
        let bytes = |n| proptest::collection::vec(any::<u8>(), 0..n);
        let class = (
            bytes(20),
            any::<u32>(),
            any::<u32>(),
            bytes(48),
            proptest::option::of(bytes(40)),
        );
        (
            (
                any::<u32>(),
                any::<u32>(),
                bytes(20),
                bytes(48),
                any::<u32>(),
                bytes(24),
                any::<u32>(),
            ),
            (
                proptest::option::of(any::<u32>()),
                proptest::option::of(any::<u32>()),
                proptest::option::of(bytes(24)),
            ),
            proptest::collection::btree_map(any::<u32>(), class, 0..12),
            proptest::collection::vec((arb_tag(), bytes(10)), 0..4),
        )
            .prop_map(
                |(
                    (version, kind, uuid, hmck, wrap, salt, iter),
                    (dpwt, dpic, dpsl),
                    cls,
                    extra,
                )| {
                    Keybag {
                        version,
                        kind,
                        uuid,
                        // An empty HMCK is written as "absent", which parses back as empty.
                        hmck,
                        wrap,
                        salt,
                        iter,
                        dpwt,
                        dpic,
                        dpsl,
                        classes: cls
                            .into_iter()
                            .map(
                                |(class, (uuid, wrap, key_type, wpky, pbky))| ClassKeyRecord {
                                    uuid,
                                    class,
                                    wrap,
                                    key_type,
                                    wpky,
                                    pbky,
                                },
                            )
                            .collect(),
                        extra,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn prop_arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Keybag::parse(&b);
        }

        #[test]
        fn prop_mutated_real_layout_never_panics(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let (kb, _) = Keybag::generate(None, FAST).unwrap();
            let mut b = kb.to_bytes();
            for (i, v) in flips {
                let at = i.index(b.len());
                b[at] = v;
            }
            let end = cut.index(b.len() + 1);
            if let Ok(k) = Keybag::parse(&b[..end]) {
                // Whatever parses must serialize and parse to itself.
                prop_assert_eq!(Keybag::parse(&k.to_bytes()).unwrap(), k);
            }
        }

        #[test]
        fn prop_keybag_structs_round_trip(kb in arb_keybag()) {
            let parsed = Keybag::parse(&kb.to_bytes()).unwrap();
            prop_assert_eq!(&parsed, &kb);
            prop_assert_eq!(parsed.to_bytes(), kb.to_bytes());
        }
    }
}
