//! `Manifest.mbdb`: the index of iOS 5–9 backups (format.md §1.7).
//!
//! A 6-byte header `"mbdb" 05 00`, then records until end of file, all integers big-endian:
//! five "strings" (domain, path, link target, data hash, encryption key; each a `u16` length and
//! bytes, length `0xFFFF` meaning null), 40 fixed bytes (mode, inode, uid, gid, mtime, ctime,
//! birth, size, protection class, property count) and that many (name, value) pairs, which are
//! extended attributes.
//!
//! The file is untrusted: every read is bounds-checked against the buffer, nothing is allocated
//! from a length field before the bytes are known to be there, and a record cut short is
//! [`Error::Corrupt`] naming the file and the byte offset.
//!
//! The older `Manifest.mbdx` (iOS 3–4) is only *recognised* ([`is_mbdx`]) so that opening such a
//! folder says "unsupported" instead of "corrupt".

use std::collections::BTreeMap;
use std::path::Path;

use crate::entry::{Entry, EntryKind, FileMeta, WrappedKey, file_id};
use crate::error::{Error, Result};

/// File name of the index inside a backup folder.
pub const FILE_NAME: &str = "Manifest.mbdb";

/// File name of the iOS 3–4 index that this crate recognises but does not read.
pub const MBDX_FILE_NAME: &str = "Manifest.mbdx";

/// The 6-byte header of a supported `Manifest.mbdb` (magic + version 5.0).
pub const HEADER: &[u8; 6] = b"mbdb\x05\x00";

/// The `u16` length that marks a null string.
const NULL_LEN: u16 = 0xFFFF;

/// Whether `bytes` start like a `Manifest.mbdx` (iOS 3–4 index), so callers can report
/// [`Error::Unsupported`] rather than a parse error.
pub fn is_mbdx(bytes: &[u8]) -> bool {
    bytes.starts_with(b"mbdx")
}

/// A bounds-checked big-endian reader that knows where it is (for error messages).
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn corrupt(&self, at: usize, detail: impl std::fmt::Display) -> Error {
        Error::corrupt(
            self.path,
            "Manifest.mbdb",
            format!("at byte offset {at}: {detail}"),
        )
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                self.corrupt(
                    self.pos,
                    format!(
                        "truncated {what}: needs {n} bytes, {} left",
                        self.bytes.len().saturating_sub(self.pos)
                    ),
                )
            })?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| self.corrupt(self.pos, "out of range"))?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
    fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A length-prefixed byte string; `None` for the null marker.
    fn bytes(&mut self, what: &str) -> Result<Option<&'a [u8]>> {
        let len = self.u16(what)?;
        if len == NULL_LEN {
            return Ok(None);
        }
        self.take(usize::from(len), what).map(Some)
    }

    /// A length-prefixed UTF-8 string; `None` for the null marker.
    fn string(&mut self, what: &str) -> Result<Option<String>> {
        let at = self.pos;
        match self.bytes(what)? {
            None => Ok(None),
            Some(b) => String::from_utf8(b.to_vec())
                .map(Some)
                .map_err(|_| self.corrupt(at, format!("{what} is not valid UTF-8"))),
        }
    }
}

/// Parses a whole `Manifest.mbdb`; `path` is used in error messages.
///
/// Fails with [`Error::Unsupported`] for an `mbdx` file or another mbdb version, and with
/// [`Error::Corrupt`] (with the byte offset) for a bad header, a truncated record, a string that
/// is not UTF-8 or an `EncryptionKey` that is not 4 + 8·n bytes.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Vec<Entry>> {
    if is_mbdx(bytes) {
        return Err(Error::Unsupported {
            path: path.to_path_buf(),
            what: "Manifest.mbdx (iOS 3–4 backup index)".into(),
        });
    }
    if !bytes.starts_with(HEADER) {
        if bytes.starts_with(b"mbdb") && bytes.len() >= 6 {
            return Err(Error::Unsupported {
                path: path.to_path_buf(),
                what: format!("Manifest.mbdb version {}.{}", bytes[4], bytes[5]),
            });
        }
        return Err(Error::corrupt(
            path,
            "Manifest.mbdb",
            "missing the \"mbdb\\x05\\x00\" header",
        ));
    }
    let mut c = Cursor {
        bytes,
        pos: HEADER.len(),
        path,
    };
    let mut out = Vec::new();
    while c.pos < bytes.len() {
        out.push(record(&mut c)?);
    }
    Ok(out)
}

/// Parses one record at the cursor.
fn record(c: &mut Cursor<'_>) -> Result<Entry> {
    let domain = c.string("domain")?.unwrap_or_default();
    let relative_path = c.string("path")?.unwrap_or_default();
    let target = c.string("link target")?;
    let digest = c.bytes("data hash")?.map(<[u8]>::to_vec);
    let key_at = c.pos;
    let encryption_key = match c.bytes("encryption key")? {
        None | Some([]) => None,
        Some(b) => Some(WrappedKey::from_bytes(b).ok_or_else(|| {
            c.corrupt(
                key_at,
                format!("encryption key is {} bytes, not 4 + a wrapped key", b.len()),
            )
        })?),
    };
    let mode = c.u16("mode")?;
    let inode = c.u64("inode")?;
    let uid = c.u32("uid")?;
    let gid = c.u32("gid")?;
    let mtime = c.i32("mtime")?;
    let ctime = c.i32("ctime")?;
    let birth = c.i32("birth time")?;
    let size = c.u64("size")?;
    let protection_class = c.u8("protection class")?;
    let props = c.u8("property count")?;
    let mut xattrs = BTreeMap::new();
    for _ in 0..props {
        let name_at = c.pos;
        let name = c
            .string("property name")?
            .ok_or_else(|| c.corrupt(name_at, "property name is null"))?;
        let value = c
            .bytes("property value")?
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        xattrs.insert(name, value);
    }
    let mode = u32::from(mode);
    Ok(Entry {
        file_id: file_id(&domain, &relative_path),
        domain,
        relative_path,
        kind: EntryKind::from_mode(mode),
        meta: FileMeta {
            size,
            mode,
            uid,
            gid,
            mtime: i64::from(mtime),
            ctime: i64::from(ctime),
            birth: i64::from(birth),
            inode,
            protection_class: u32::from(protection_class),
            flags: 0,
            encryption_key,
            digest,
            target,
            xattrs,
        },
    })
}

/// Appends a length-prefixed string (null for `None`); longer than 0xFFFE bytes is cut, since
/// the format cannot say more.
fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => out.extend_from_slice(&NULL_LEN.to_be_bytes()),
        Some(b) => {
            let n = b.len().min(usize::from(NULL_LEN - 1));
            out.extend_from_slice(&(n as u16).to_be_bytes());
            out.extend_from_slice(&b[..n]);
        }
    }
}

/// Clamps a Unix time to the format's `i32`.
fn clamp_i32(t: i64) -> i32 {
    t.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// Encodes entries as a `Manifest.mbdb` (for round-trip tests and fuzz seeds).
///
/// The format is narrower than [`FileMeta`]: mode is cut to 16 bits, times are clamped to `i32`,
/// the protection class to `u8`, strings to 65 534 bytes and xattrs to the first 255. `file_id`
/// and `kind` are not stored (they are derived on parse).
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = HEADER.to_vec();
    for e in entries {
        let m = &e.meta;
        put_bytes(&mut out, Some(e.domain.as_bytes()));
        put_bytes(&mut out, Some(e.relative_path.as_bytes()));
        put_bytes(&mut out, m.target.as_deref().map(str::as_bytes));
        put_bytes(&mut out, m.digest.as_deref());
        let key = m.encryption_key.as_ref().map(WrappedKey::to_bytes);
        put_bytes(&mut out, key.as_deref());
        out.extend_from_slice(&(m.mode as u16).to_be_bytes());
        out.extend_from_slice(&m.inode.to_be_bytes());
        out.extend_from_slice(&m.uid.to_be_bytes());
        out.extend_from_slice(&m.gid.to_be_bytes());
        out.extend_from_slice(&clamp_i32(m.mtime).to_be_bytes());
        out.extend_from_slice(&clamp_i32(m.ctime).to_be_bytes());
        out.extend_from_slice(&clamp_i32(m.birth).to_be_bytes());
        out.extend_from_slice(&m.size.to_be_bytes());
        out.push(u8::try_from(m.protection_class).unwrap_or(u8::MAX));
        let props: Vec<_> = m.xattrs.iter().take(255).collect();
        out.push(props.len() as u8);
        for (name, value) in props {
            put_bytes(&mut out, Some(name.as_bytes()));
            put_bytes(&mut out, Some(value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p() -> &'static Path {
        Path::new("/b/Manifest.mbdb")
    }

    fn sample() -> Vec<Entry> {
        let mut key = vec![2, 0, 0, 0];
        key.extend([5u8; 40]);
        let mut xattrs = BTreeMap::new();
        xattrs.insert("com.apple.backup".to_string(), b"v".to_vec());
        let file = Entry {
            file_id: file_id("HomeDomain", "Library/SMS/sms.db"),
            domain: "HomeDomain".into(),
            relative_path: "Library/SMS/sms.db".into(),
            kind: EntryKind::File,
            meta: FileMeta {
                size: 4096,
                mode: 0o100644,
                uid: 501,
                gid: 501,
                mtime: 1_400_000_000,
                ctime: 1_400_000_001,
                birth: 1_300_000_000,
                inode: 77,
                protection_class: 2,
                encryption_key: WrappedKey::from_bytes(&key),
                digest: Some(vec![0xab; 20]),
                xattrs,
                ..FileMeta::default()
            },
        };
        let link = Entry {
            file_id: file_id("HomeDomain", "l"),
            domain: "HomeDomain".into(),
            relative_path: "l".into(),
            kind: EntryKind::Symlink,
            meta: FileMeta {
                mode: 0o120755,
                target: Some("/x".into()),
                ..FileMeta::default()
            },
        };
        vec![file, link]
    }

    #[test]
    fn round_trip() {
        let bytes = encode(&sample());
        assert!(bytes.starts_with(HEADER));
        assert_eq!(parse(&bytes, p()).expect("parse"), sample());
    }

    #[test]
    fn empty_index_is_fine() {
        assert_eq!(parse(HEADER, p()).expect("parse"), Vec::new());
    }

    #[test]
    fn truncation_reports_the_offset() {
        let bytes = encode(&sample());
        for cut in HEADER.len() + 1..bytes.len() {
            let tail_is_record_boundary = parse(&bytes[..cut], p()).is_ok();
            if tail_is_record_boundary {
                continue;
            }
            let msg = parse(&bytes[..cut], p()).expect_err("cut").to_string();
            assert!(
                msg.contains("byte offset") && msg.contains("/b/Manifest.mbdb"),
                "{msg}"
            );
        }
    }

    #[test]
    fn lying_lengths_are_corrupt() {
        let mut bytes = HEADER.to_vec();
        bytes.extend_from_slice(&0xFFFEu16.to_be_bytes());
        bytes.extend_from_slice(b"short");
        let msg = parse(&bytes, p()).expect_err("lie").to_string();
        assert!(msg.contains("needs 65534 bytes"), "{msg}");
    }

    #[test]
    fn headers() {
        assert!(matches!(
            parse(b"mbdx\x02\x00\0\0\0\0", p()),
            Err(Error::Unsupported { .. })
        ));
        assert!(is_mbdx(b"mbdx\x02\x00"));
        assert!(!is_mbdx(HEADER));
        assert!(matches!(
            parse(b"mbdb\x04\x00", p()),
            Err(Error::Unsupported { .. })
        ));
        assert!(matches!(
            parse(b"SQLite format 3", p()),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(parse(b"", p()), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn bad_key_and_bad_utf8() {
        let mut e = sample().remove(1);
        e.meta.encryption_key = Some(WrappedKey {
            class: 1,
            wrapped: vec![1, 2, 3],
        });
        let msg = parse(&encode(&[e]), p()).expect_err("key").to_string();
        assert!(msg.contains("encryption key is 7 bytes"), "{msg}");

        let mut bytes = HEADER.to_vec();
        bytes.extend_from_slice(&[0, 1, 0xff]);
        let msg = parse(&bytes, p()).expect_err("utf8").to_string();
        assert!(msg.contains("not valid UTF-8"), "{msg}");
    }

    prop_compose! {
        fn arb_entry()(
            domain in "[A-Za-z-]{0,20}", rel in ".{0,40}", mode in any::<u16>(), inode in any::<u64>(),
            uid in any::<u32>(), gid in any::<u32>(), mtime in any::<i32>(), ctime in any::<i32>(),
            birth in any::<i32>(), size in any::<u64>(), pc in any::<u8>(),
            target in proptest::option::of(".{0,30}"),
            digest in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
            key in proptest::option::of((any::<u32>(), 3usize..6)),
            xattrs in proptest::collection::btree_map(".{0,10}", proptest::collection::vec(any::<u8>(), 0..10), 0..3),
        ) -> Entry {
            let mode = u32::from(mode);
            Entry {
                file_id: file_id(&domain, &rel),
                kind: EntryKind::from_mode(mode),
                domain, relative_path: rel,
                meta: FileMeta {
                    size, mode, uid, gid, mtime: mtime.into(), ctime: ctime.into(), birth: birth.into(),
                    inode, protection_class: pc.into(), flags: 0,
                    encryption_key: key.map(|(class, blocks)| WrappedKey { class, wrapped: vec![7; blocks * 8] }),
                    digest, target, xattrs,
                },
            }
        }
    }

    proptest! {
        #[test]
        fn prop_round_trip(entries in proptest::collection::vec(arb_entry(), 0..5)) {
            let back = parse(&encode(&entries), p()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back, entries);
        }

        #[test]
        fn prop_arbitrary_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&tail, p());
            let mut with_header = HEADER.to_vec();
            with_header.extend(&tail);
            let _ = parse(&with_header, p());
        }
    }
}
