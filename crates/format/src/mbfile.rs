//! The NSKeyedArchiver `MBFile` blob stored in the `file` column of every `Manifest.db` row.
//!
//! Each blob is a binary plist of the form
//! `{"$version": 100000, "$archiver": "NSKeyedArchiver", "$top": {"root": UID(1)}, "$objects": [...]}`
//! where `$objects[1]` is the `MBFile` dictionary (format.md §1.6). Scalars (times, size, mode …)
//! are inline integers; strings and data (`RelativePath`, `Target`, `Digest`, `EncryptionKey`,
//! `ExtendedAttributes`) are separate objects referenced by UID.
//!
//! The blob comes from the backup folder and is therefore untrusted: [`decode`] resolves every UID
//! with a bounds check, follows at most [`MAX_UID_HOPS`] UID-to-UID links (so a cycle is reported,
//! not looped over), never recurses on input, and reports problems as an [`MbFileError`], which
//! the caller maps to [`crate::Error::Corrupt`] with the row it came from.
//!
//! [`encode`] writes blobs the way a real phone does (same object order, `$top.root = UID(1)`,
//! integer Unix times), because several third-party readers hard-code `$objects[1]`.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use plist::{Dictionary, Uid, Value};

use crate::entry::{FileMeta, WrappedKey};
use crate::error::Error;

/// How many UID → UID links [`decode`] follows before it calls the chain a cycle.
///
/// Real blobs never chain UIDs at all (a UID points straight at a string, data or dict); the
/// small bound only exists so a hostile blob cannot make the decoder loop.
pub const MAX_UID_HOPS: usize = 8;

/// Deepest container nesting accepted by [`parse_plist_bounded`].
///
/// Real backup plists nest 3–4 levels; the bound keeps dropping a hostile, deeply nested value
/// (which the `plist` crate does recursively) from overflowing the stack.
pub(crate) const MAX_PLIST_DEPTH: usize = 128;

/// Why an `MBFile` blob could not be decoded.
///
/// Kept small and path-free because the blob alone does not know which row it came from; the
/// caller adds that with [`MbFileError::into_error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct MbFileError {
    /// What exactly is wrong, e.g. "Size is not an integer" or "UID 9 is out of range (5 objects)".
    pub detail: String,
}

impl MbFileError {
    fn new(detail: impl Into<String>) -> Self {
        MbFileError {
            detail: detail.into(),
        }
    }

    /// Converts to the crate error, naming the database (or pseudo-path) the blob came from.
    pub fn into_error(self, path: impl AsRef<Path>) -> Error {
        Error::corrupt(path, "MBFile", self.detail)
    }
}

/// Why [`parse_plist_bounded`] failed.
#[derive(Debug)]
pub(crate) enum PlistParseError {
    /// The `plist` crate rejected the bytes.
    Plist(plist::Error),
    /// Containers nest deeper than [`MAX_PLIST_DEPTH`].
    TooDeep,
    /// A binary plist whose shared references would expand to this many bytes of values.
    TooLarge(u64),
}

impl PlistParseError {
    /// Maps to the crate error for the file `path` (`what` names the artifact).
    pub(crate) fn into_error(self, path: impl AsRef<Path>, what: &'static str) -> Error {
        match self {
            PlistParseError::Plist(e) => Error::plist(path, e),
            PlistParseError::TooDeep => Error::corrupt(
                path,
                what,
                format!("containers nested deeper than {MAX_PLIST_DEPTH} levels"),
            ),
            PlistParseError::TooLarge(w) => Error::corrupt(
                path,
                what,
                format!("shared references would expand to more than {w} bytes"),
            ),
        }
    }
}

impl std::fmt::Display for PlistParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlistParseError::Plist(e) => write!(f, "not a valid plist: {e}"),
            PlistParseError::TooDeep => {
                write!(f, "containers nested deeper than {MAX_PLIST_DEPTH} levels")
            }
            PlistParseError::TooLarge(w) => {
                write!(f, "shared references would expand to more than {w} bytes")
            }
        }
    }
}

/// Parses a binary, XML or ASCII plist into a [`Value`], refusing nesting deeper than
/// [`MAX_PLIST_DEPTH`].
///
/// Used for every plist read from a backup folder (the three metadata plists, MBFile blobs and
/// their xattr sub-plists), so the depth guard lives in one place.
pub(crate) fn parse_plist_bounded(bytes: &[u8]) -> Result<Value, PlistParseError> {
    if let Some(weight) = bplist_expansion_exceeds(bytes) {
        return Err(PlistParseError::TooLarge(weight));
    }
    let value = Value::from_reader(Cursor::new(bytes)).map_err(PlistParseError::Plist)?;
    if depth_exceeds(&value, MAX_PLIST_DEPTH) {
        dismantle(value);
        return Err(PlistParseError::TooDeep);
    }
    Ok(value)
}

/// Rough cost of one decoded plist node (a `Value` plus bookkeeping), in bytes.
const NODE_COST: u64 = 64;

/// The expansion budget of a binary plist of `len` bytes (see [`bplist_expansion_exceeds`]).
fn expansion_budget(len: usize) -> u64 {
    (16u64 << 20).saturating_add(128u64.saturating_mul(len as u64))
}

/// Reads a big-endian unsigned integer of `size` (≤ 8) bytes at `at`.
fn be_uint(bytes: &[u8], at: u64, size: u64) -> Option<u64> {
    let start = usize::try_from(at).ok()?;
    let end = start.checked_add(usize::try_from(size).ok()?)?;
    let slice = bytes.get(start..end)?;
    Some(slice.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// A binary plist object as far as expansion matters: its own weight and its child references.
struct BplistObject {
    weight: u64,
    children: Vec<u64>,
}

/// Decodes the header of object `index` (marker, length, child references), mirroring the
/// `plist` crate's reader. `None` means "not interpretable": the `plist` crate rejects such an
/// object when it reaches it, so it is weighed as a leaf.
fn bplist_object(
    bytes: &[u8],
    offsets_at: u64,
    offset_size: u64,
    ref_size: u64,
    index: u64,
) -> Option<BplistObject> {
    let offset = be_uint(
        bytes,
        offsets_at.checked_add(index.checked_mul(offset_size)?)?,
        offset_size,
    )?;
    let token = *bytes.get(usize::try_from(offset).ok()?)?;
    let (ty, low) = (token >> 4, token & 0x0f);
    let mut pos = offset + 1;
    let mut len = u64::from(low);
    if matches!(ty, 0x4 | 0x5 | 0x6 | 0xa | 0xd) && low == 0x0f {
        let int_token = *bytes.get(usize::try_from(pos).ok()?)?;
        let size = 1u64 << (int_token & 0x03);
        len = be_uint(bytes, pos + 1, size)?;
        pos += 1 + size;
    }
    match ty {
        0x4 | 0x5 => Some(BplistObject {
            weight: NODE_COST.saturating_add(len),
            children: vec![],
        }),
        0x6 => Some(BplistObject {
            weight: NODE_COST.saturating_add(len.saturating_mul(3)),
            children: vec![],
        }),
        0xa | 0xd => {
            let count = if ty == 0xd { len.checked_mul(2)? } else { len };
            // Refs must lie inside the file; the plist crate checks the same before reading.
            let end = pos.checked_add(count.checked_mul(ref_size)?)?;
            if end > bytes.len() as u64 {
                return None;
            }
            let children = (0..count)
                .filter_map(|i| be_uint(bytes, pos + i * ref_size, ref_size))
                .collect();
            Some(BplistObject {
                weight: NODE_COST,
                children,
            })
        }
        _ => None,
    }
}

/// For a binary plist, the weight (≈ bytes of memory) the `plist` crate would build when decoding
/// it, if that exceeds [`expansion_budget`]; `None` when it does not (or the bytes are not a
/// binary plist).
///
/// A binary plist is a DAG: one array may reference the same sub-array twice, and so on, so a
/// few hundred bytes can expand into billions of nodes; the `plist` crate only rejects true
/// cycles. This walk weighs each object once (memoised, iterative), so it is linear in the file.
fn bplist_expansion_exceeds(bytes: &[u8]) -> Option<u64> {
    if !bytes.starts_with(b"bplist00") || bytes.len() < 8 + 32 {
        return None;
    }
    let t = bytes.len() as u64 - 32;
    let offset_size = u64::from(*bytes.get(usize::try_from(t + 6).ok()?)?);
    let ref_size = u64::from(*bytes.get(usize::try_from(t + 7).ok()?)?);
    if ![1, 2, 3, 4, 8].contains(&offset_size) || ![1, 2, 3, 4, 8].contains(&ref_size) {
        return None;
    }
    let count = be_uint(bytes, t + 8, 8)?;
    let root = be_uint(bytes, t + 16, 8)?;
    let offsets_at = be_uint(bytes, t + 24, 8)?;
    if offsets_at.checked_add(count.checked_mul(offset_size)?)? > t || root >= count {
        return None;
    }
    let budget = expansion_budget(bytes.len());
    let n = usize::try_from(count).ok()?;
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; n];
    let mut weight = vec![0u64; n];
    let mut stack: Vec<(usize, Vec<u64>, usize, u64)> = Vec::new();
    let root = usize::try_from(root).ok()?;
    let open = |i: usize| bplist_object(bytes, offsets_at, offset_size, ref_size, i as u64);
    let first = open(root).unwrap_or(BplistObject {
        weight: 1,
        children: vec![],
    });
    state[root] = 1;
    stack.push((root, first.children, 0, first.weight));
    while let Some(frame) = stack.last_mut() {
        let (idx, children, next, acc) = (frame.0, &frame.1, frame.2, frame.3);
        if next >= children.len() {
            state[idx] = 2;
            weight[idx] = acc;
            stack.pop();
            if let Some(parent) = stack.last_mut() {
                parent.3 = parent.3.saturating_add(acc);
                if parent.3 > budget {
                    return Some(parent.3);
                }
            } else if acc > budget {
                return Some(acc);
            }
            continue;
        }
        let child = children[next];
        frame.2 += 1;
        let Some(c) = usize::try_from(child).ok().filter(|&c| c < n) else {
            continue; // the plist crate fails on this reference
        };
        match state[c] {
            2 => {
                frame.3 = frame.3.saturating_add(weight[c]);
                if frame.3 > budget {
                    return Some(frame.3);
                }
            }
            1 => continue, // a cycle: the plist crate fails on it
            _ => {
                let obj = open(c).unwrap_or(BplistObject {
                    weight: 1,
                    children: vec![],
                });
                state[c] = 1;
                stack.push((c, obj.children, 0, obj.weight));
            }
        }
    }
    None
}

/// Whether containers in `value` nest deeper than `max` (iterative, no recursion).
fn depth_exceeds(value: &Value, max: usize) -> bool {
    let mut stack: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Dictionary(d) => Box::new(d.values()),
            _ => continue,
        };
        if depth > max {
            return true;
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    false
}

/// Drops a (possibly very deeply nested) value without recursion, so that freeing a hostile
/// plist cannot overflow the stack the way `Value`'s recursive `Drop` would.
fn dismantle(value: Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(a) => stack.extend(a),
            Value::Dictionary(d) => stack.extend(d.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// The archive of one blob: its object table, with bounds-checked UID resolution.
struct Archive<'a> {
    objects: &'a [Value],
}

impl<'a> Archive<'a> {
    /// The object a UID points at, following UID → UID links (never real, but possible in a
    /// hostile blob) up to [`MAX_UID_HOPS`] times.
    fn resolve(&self, uid: Uid, what: &str) -> Result<&'a Value, MbFileError> {
        let mut current = uid.get();
        let mut seen: Vec<u64> = Vec::new();
        loop {
            if seen.contains(&current) {
                return Err(MbFileError::new(format!(
                    "{what}: UID {current} refers back to itself (cycle)"
                )));
            }
            if seen.len() >= MAX_UID_HOPS {
                return Err(MbFileError::new(format!(
                    "{what}: more than {MAX_UID_HOPS} chained UIDs"
                )));
            }
            seen.push(current);
            let idx = usize::try_from(current).ok();
            let obj = idx.and_then(|i| self.objects.get(i)).ok_or_else(|| {
                MbFileError::new(format!(
                    "{what}: UID {current} is out of range ({} objects)",
                    self.objects.len()
                ))
            })?;
            match obj {
                Value::Uid(next) => current = next.get(),
                other => return Ok(other),
            }
        }
    }

    /// A field value, resolved if it is a UID reference, or itself if stored inline.
    fn field(&self, dict: &'a Dictionary, key: &str) -> Result<Option<&'a Value>, MbFileError> {
        match dict.get(key) {
            None => Ok(None),
            // UID 0 points at "$null", NSKeyedArchiver's spelling of nil.
            Some(Value::Uid(uid)) if uid.get() == 0 => Ok(None),
            Some(Value::Uid(uid)) => self.resolve(*uid, key).map(Some),
            Some(v) => Ok(Some(v)),
        }
    }

    /// A string field (`RelativePath`, `Target`).
    fn string(&self, dict: &'a Dictionary, key: &str) -> Result<Option<String>, MbFileError> {
        match self.field(dict, key)? {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(MbFileError::new(format!("{key} is not a string"))),
        }
    }

    /// A data field, stored either inline, as a data object, or as an `NSData`/`NSMutableData`
    /// object `{NS.data: …, $class: …}`.
    fn data(&self, dict: &'a Dictionary, key: &str) -> Result<Option<Vec<u8>>, MbFileError> {
        match self.field(dict, key)? {
            None => Ok(None),
            Some(Value::Data(d)) => Ok(Some(d.clone())),
            Some(Value::Dictionary(obj)) => match obj.get("NS.data") {
                Some(Value::Data(d)) => Ok(Some(d.clone())),
                Some(Value::Uid(uid)) => match self.resolve(*uid, key)? {
                    Value::Data(d) => Ok(Some(d.clone())),
                    _ => Err(MbFileError::new(format!("{key}: NS.data is not data"))),
                },
                Some(_) => Err(MbFileError::new(format!("{key}: NS.data is not data"))),
                None => Err(MbFileError::new(format!(
                    "{key} is a dictionary without NS.data"
                ))),
            },
            Some(_) => Err(MbFileError::new(format!("{key} is not data"))),
        }
    }
}

/// Reads an integer field as `u64`; any plist integer type is accepted, negative values are not.
fn uint(dict: &Dictionary, key: &str) -> Result<u64, MbFileError> {
    match dict.get(key) {
        None => Ok(0),
        Some(Value::Integer(i)) => i
            .as_unsigned()
            .ok_or_else(|| MbFileError::new(format!("{key} is negative ({i})"))),
        Some(_) => Err(MbFileError::new(format!("{key} is not an integer"))),
    }
}

/// Reads an integer field as `u32` (mode, uid, gid, protection class).
fn uint32(dict: &Dictionary, key: &str) -> Result<u32, MbFileError> {
    let v = uint(dict, key)?;
    u32::try_from(v).map_err(|_| MbFileError::new(format!("{key} is too large ({v})")))
}

/// Reads a user or group id. Apple's `uid_t`/`gid_t` are `u32`, but the phone archives them as
/// signed 32-bit values (`nobody` = 4294967294 appears as -2), so both spellings are accepted.
fn id32(dict: &Dictionary, key: &str) -> Result<u32, MbFileError> {
    match dict.get(key) {
        None => Ok(0),
        Some(Value::Integer(i)) => {
            if let Some(u) = i.as_unsigned() {
                u32::try_from(u).map_err(|_| MbFileError::new(format!("{key} is too large ({u})")))
            } else {
                let s = i.as_signed().unwrap_or(i64::MIN);
                i32::try_from(s)
                    .map(|v| v as u32)
                    .map_err(|_| MbFileError::new(format!("{key} is out of range ({i})")))
            }
        }
        Some(_) => Err(MbFileError::new(format!("{key} is not an integer"))),
    }
}

/// Reads a time field (Unix seconds, may be negative).
fn time(dict: &Dictionary, key: &str) -> Result<i64, MbFileError> {
    match dict.get(key) {
        None => Ok(0),
        Some(Value::Integer(i)) => i
            .as_signed()
            .ok_or_else(|| MbFileError::new(format!("{key} is out of range ({i})"))),
        // Some archivers store dates as reals; whole seconds are what the format means.
        Some(Value::Real(r)) if r.is_finite() && r.abs() < 9.0e15 => Ok(r.floor() as i64),
        Some(_) => Err(MbFileError::new(format!("{key} is not an integer"))),
    }
}

/// Decodes the xattr sub-plist: a dictionary name → data.
fn decode_xattrs(blob: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, MbFileError> {
    let value = parse_plist_bounded(blob)
        .map_err(|e| MbFileError::new(format!("ExtendedAttributes: {e}")))?;
    let dict = value
        .into_dictionary()
        .ok_or_else(|| MbFileError::new("ExtendedAttributes is not a dictionary"))?;
    let mut out = BTreeMap::new();
    for (name, v) in dict {
        let bytes = match v {
            Value::Data(d) => d,
            Value::String(s) => s.into_bytes(),
            _ => {
                return Err(MbFileError::new(format!(
                    "ExtendedAttributes: value of {name:?} is not data"
                )));
            }
        };
        out.insert(name, bytes);
    }
    Ok(out)
}

/// Decodes one `MBFile` blob into its metadata and its `RelativePath` (None when absent).
///
/// Never panics; any structural problem (not a plist, not an archive, UIDs out of range or
/// cyclic, fields of the wrong type, a malformed `EncryptionKey`) is an [`MbFileError`].
pub fn decode(blob: &[u8]) -> Result<(FileMeta, Option<String>), MbFileError> {
    let top = parse_plist_bounded(blob).map_err(|e| MbFileError::new(e.to_string()))?;
    let top = top
        .as_dictionary()
        .ok_or_else(|| MbFileError::new("top level is not a dictionary"))?;
    let objects = match top.get("$objects") {
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return Err(MbFileError::new("$objects is not an array")),
        None => {
            return Err(MbFileError::new(
                "no $objects array (not an NSKeyedArchiver archive)",
            ));
        }
    };
    let archive = Archive { objects };
    let root_uid = match top.get("$top") {
        Some(Value::Dictionary(t)) => match t.get("root") {
            Some(Value::Uid(u)) => *u,
            Some(_) => return Err(MbFileError::new("$top.root is not a UID")),
            None => Uid::new(1),
        },
        Some(_) => return Err(MbFileError::new("$top is not a dictionary")),
        None => Uid::new(1),
    };
    let mb = match archive.resolve(root_uid, "$top.root")? {
        Value::Dictionary(d) => d,
        _ => return Err(MbFileError::new("the root object is not a dictionary")),
    };
    if let Some(class_ref) = mb.get("$class") {
        let class = match class_ref {
            Value::Uid(u) => archive.resolve(*u, "$class")?,
            other => other,
        };
        let name = class
            .as_dictionary()
            .and_then(|c| c.get("$classname"))
            .and_then(Value::as_string)
            .ok_or_else(|| MbFileError::new("$class is not a class description"))?;
        if name != "MBFile" {
            return Err(MbFileError::new(format!(
                "root object is a {name}, not an MBFile"
            )));
        }
    }

    let encryption_key = match archive.data(mb, "EncryptionKey")? {
        None => None,
        Some(bytes) => Some(WrappedKey::from_bytes(&bytes).ok_or_else(|| {
            MbFileError::new(format!(
                "EncryptionKey is {} bytes, not a 4-byte class plus a wrapped key",
                bytes.len()
            ))
        })?),
    };
    let xattrs = match archive.data(mb, "ExtendedAttributes")? {
        None => BTreeMap::new(),
        Some(bytes) => decode_xattrs(&bytes)?,
    };
    let meta = FileMeta {
        size: uint(mb, "Size")?,
        mode: uint32(mb, "Mode")?,
        uid: id32(mb, "UserID")?,
        gid: id32(mb, "GroupID")?,
        mtime: time(mb, "LastModified")?,
        ctime: time(mb, "LastStatusChange")?,
        birth: time(mb, "Birth")?,
        inode: uint(mb, "InodeNumber")?,
        protection_class: uint32(mb, "ProtectionClass")?,
        flags: uint(mb, "Flags")?,
        encryption_key,
        digest: archive.data(mb, "Digest")?,
        target: archive.string(mb, "Target")?,
        xattrs,
    };
    let relative_path = archive.string(mb, "RelativePath")?;
    Ok((meta, relative_path))
}

/// Serialises a value that this module built itself; binary-plist writing into a `Vec` has no
/// failure mode for such values (no I/O, no unrepresentable types).
fn to_binary(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    #[allow(clippy::expect_used)]
    value
        .to_writer_binary(&mut out)
        .expect("writing an in-memory plist Value to a Vec cannot fail");
    out
}

/// The xattr sub-plist: a binary plist dictionary name → data.
fn encode_xattrs(xattrs: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut d = Dictionary::new();
    for (k, v) in xattrs {
        d.insert(k.clone(), Value::Data(v.clone()));
    }
    to_binary(&Value::Dictionary(d))
}

/// Encodes `meta` as an `MBFile` blob the way a real phone does.
///
/// Object order is `["$null", MBFile, RelativePath, Target?, Digest?, EncryptionKey {NS.data}?,
/// NSMutableData class?, ExtendedAttributes?, MBFile class]`, `$top.root` is UID(1), times are
/// integer Unix seconds, so readers that hard-code `$objects[1]` (mvt, iOSbackup) work.
/// Written directly (`crate::bplist_writer`): one of these is made for every file of a
/// backup.
pub fn encode(meta: &FileMeta, relative_path: &str) -> Vec<u8> {
    use crate::bplist_writer::{Bplist, Obj};
    let mut b = Bplist::default();
    let key_bytes = meta.encryption_key.as_ref().map(WrappedKey::to_bytes);
    let xattrs = (!meta.xattrs.is_empty()).then(|| encode_xattrs(&meta.xattrs));
    let s = |b: &mut Bplist<'_>, k: &'static str| b.add(Obj::Str(k));
    let int = |b: &mut Bplist<'_>, v: i128| b.add(Obj::Int(v));

    // The `$objects` array, as UIDs into it, in the phone's order.
    let mut objects = vec![s(&mut b, "$null")];
    let uid = |objects: &mut Vec<usize>, r: usize| {
        objects.push(r);
        objects.len() as u64 - 1
    };
    let mbfile_slot = objects.len();
    objects.push(usize::MAX); // the MBFile dictionary, filled in below
    let rel = b.add(Obj::Str(relative_path));
    let rel_uid = uid(&mut objects, rel);
    let target_uid = meta.target.as_deref().map(|t| {
        let r = b.add(Obj::Str(t));
        uid(&mut objects, r)
    });
    let digest_uid = meta.digest.as_deref().map(|d| {
        let r = b.add(Obj::Data(d));
        uid(&mut objects, r)
    });
    let key_uid = key_bytes.as_deref().map(|k| {
        let key_uid = objects.len() as u64;
        let (kd, vd) = (s(&mut b, "NS.data"), b.add(Obj::Data(k)));
        let (kc, vc) = (s(&mut b, "$class"), b.add(Obj::Uid(key_uid + 1)));
        let ns = b.add(Obj::Dict(vec![(kd, vd), (kc, vc)]));
        uid(&mut objects, ns);
        let class = class_object(&mut b, &["NSMutableData", "NSData", "NSObject"]);
        uid(&mut objects, class);
        key_uid
    });
    let xattr_uid = xattrs.as_deref().map(|x| {
        let r = b.add(Obj::Data(x));
        uid(&mut objects, r)
    });
    let class = class_object(&mut b, &["MBFile", "NSObject"]);
    let class_uid = uid(&mut objects, class);

    let mut mb = Vec::with_capacity(16);
    let mut field = |b: &mut Bplist<'_>, k: &'static str, v: Obj<'static>| {
        let (k, v) = (s(b, k), b.add(v));
        mb.push((k, v));
    };
    field(&mut b, "LastModified", Obj::Int(meta.mtime.into()));
    field(&mut b, "Flags", Obj::Int(meta.flags.into()));
    // Ids are written as the phone does: signed 32-bit (nobody = -2).
    field(&mut b, "GroupID", Obj::Int((meta.gid as i32).into()));
    if let Some(u) = xattr_uid {
        field(&mut b, "ExtendedAttributes", Obj::Uid(u));
    }
    if let Some(u) = target_uid {
        field(&mut b, "Target", Obj::Uid(u));
    }
    field(&mut b, "$class", Obj::Uid(class_uid));
    field(&mut b, "LastStatusChange", Obj::Int(meta.ctime.into()));
    field(&mut b, "RelativePath", Obj::Uid(rel_uid));
    field(&mut b, "Birth", Obj::Int(meta.birth.into()));
    if let Some(u) = key_uid {
        field(&mut b, "EncryptionKey", Obj::Uid(u));
    }
    field(&mut b, "Size", Obj::Int(meta.size.into()));
    field(&mut b, "Mode", Obj::Int(meta.mode.into()));
    field(&mut b, "UserID", Obj::Int((meta.uid as i32).into()));
    if let Some(u) = digest_uid {
        field(&mut b, "Digest", Obj::Uid(u));
    }
    field(&mut b, "InodeNumber", Obj::Int(meta.inode.into()));
    field(
        &mut b,
        "ProtectionClass",
        Obj::Int(meta.protection_class.into()),
    );
    let mbfile = b.add(Obj::Dict(mb));
    if let Some(slot) = objects.get_mut(mbfile_slot) {
        *slot = mbfile;
    }

    let objects = b.add(Obj::Array(objects));
    let (kv, vv) = (s(&mut b, "$version"), int(&mut b, 100_000));
    let (ka, va) = (s(&mut b, "$archiver"), s(&mut b, "NSKeyedArchiver"));
    let (kr, vr) = (s(&mut b, "root"), b.add(Obj::Uid(1)));
    let root = b.add(Obj::Dict(vec![(kr, vr)]));
    let kt = s(&mut b, "$top");
    let ko = s(&mut b, "$objects");
    let top = b.add(Obj::Dict(vec![
        (kv, vv),
        (ka, va),
        (kt, root),
        (ko, objects),
    ]));
    b.finish(top)
}

/// A class-description object as NSKeyedArchiver writes it.
fn class_object(b: &mut crate::bplist_writer::Bplist<'_>, classes: &[&'static str]) -> usize {
    use crate::bplist_writer::Obj;
    let names: Vec<usize> = classes.iter().map(|c| b.add(Obj::Str(c))).collect();
    let (kn, vn) = (
        b.add(Obj::Str("$classname")),
        b.add(Obj::Str(classes.first().copied().unwrap_or(""))),
    );
    let (kc, vc) = (b.add(Obj::Str("$classes")), b.add(Obj::Array(names)));
    b.add(Obj::Dict(vec![(kn, vn), (kc, vc)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A class-description object as NSKeyedArchiver writes it.
    fn class_object_value(classes: &[&str]) -> Value {
        let mut d = Dictionary::new();
        d.insert(
            "$classname".into(),
            Value::String(classes.first().copied().unwrap_or("").into()),
        );
        d.insert(
            "$classes".into(),
            Value::Array(classes.iter().map(|c| Value::String((*c).into())).collect()),
        );
        Value::Dictionary(d)
    }

    /// The encoder before `bplist_writer`: `plist::Value` tree, serialized by the `plist` crate.
    ///
    /// Object order is `["$null", MBFile, RelativePath, Target?, Digest?, EncryptionKey {NS.data}?,
    /// NSMutableData class?, ExtendedAttributes?, MBFile class]`, `$top.root` is UID(1), times are
    /// integer Unix seconds, so readers that hard-code `$objects[1]` (mvt, iOSbackup) work.
    fn encode_via_value(meta: &FileMeta, relative_path: &str) -> Vec<u8> {
        let mut objects: Vec<Value> = vec![Value::String("$null".into()), Value::Boolean(false)];
        let push = |objects: &mut Vec<Value>, v: Value| -> Uid {
            objects.push(v);
            Uid::new(objects.len() as u64 - 1)
        };
        let rel_uid = push(&mut objects, Value::String(relative_path.into()));
        let target_uid = meta
            .target
            .as_ref()
            .map(|t| push(&mut objects, Value::String(t.clone())));
        let digest_uid = meta
            .digest
            .as_ref()
            .map(|d| push(&mut objects, Value::Data(d.clone())));
        let key_uid = meta.encryption_key.as_ref().map(|k| {
            let key_idx = objects.len();
            let mut ns = Dictionary::new();
            ns.insert("NS.data".into(), Value::Data(k.to_bytes()));
            ns.insert("$class".into(), Value::Uid(Uid::new(key_idx as u64 + 1)));
            let uid = push(&mut objects, Value::Dictionary(ns));
            push(
                &mut objects,
                class_object_value(&["NSMutableData", "NSData", "NSObject"]),
            );
            uid
        });
        let xattr_uid = if meta.xattrs.is_empty() {
            None
        } else {
            Some(push(&mut objects, Value::Data(encode_xattrs(&meta.xattrs))))
        };
        let class_uid = push(&mut objects, class_object_value(&["MBFile", "NSObject"]));

        let mut mb = Dictionary::new();
        mb.insert("LastModified".into(), Value::Integer(meta.mtime.into()));
        mb.insert("Flags".into(), Value::Integer(meta.flags.into()));
        // Ids are written as the phone does: signed 32-bit (nobody = -2).
        mb.insert(
            "GroupID".into(),
            Value::Integer(i64::from(meta.gid as i32).into()),
        );
        if let Some(u) = xattr_uid {
            mb.insert("ExtendedAttributes".into(), Value::Uid(u));
        }
        if let Some(u) = target_uid {
            mb.insert("Target".into(), Value::Uid(u));
        }
        mb.insert("$class".into(), Value::Uid(class_uid));
        mb.insert("LastStatusChange".into(), Value::Integer(meta.ctime.into()));
        mb.insert("RelativePath".into(), Value::Uid(rel_uid));
        mb.insert("Birth".into(), Value::Integer(meta.birth.into()));
        if let Some(u) = key_uid {
            mb.insert("EncryptionKey".into(), Value::Uid(u));
        }
        mb.insert("Size".into(), Value::Integer(meta.size.into()));
        mb.insert("Mode".into(), Value::Integer(meta.mode.into()));
        mb.insert(
            "UserID".into(),
            Value::Integer(i64::from(meta.uid as i32).into()),
        );
        if let Some(u) = digest_uid {
            mb.insert("Digest".into(), Value::Uid(u));
        }
        mb.insert("InodeNumber".into(), Value::Integer(meta.inode.into()));
        mb.insert(
            "ProtectionClass".into(),
            Value::Integer(meta.protection_class.into()),
        );
        objects[1] = Value::Dictionary(mb);

        let mut top = Dictionary::new();
        top.insert("$version".into(), Value::Integer(100_000u64.into()));
        top.insert("$archiver".into(), Value::String("NSKeyedArchiver".into()));
        let mut root = Dictionary::new();
        root.insert("root".into(), Value::Uid(Uid::new(1)));
        top.insert("$top".into(), Value::Dictionary(root));
        top.insert("$objects".into(), Value::Array(objects));
        to_binary(&Value::Dictionary(top))
    }

    fn sample_meta() -> FileMeta {
        let mut xattrs = BTreeMap::new();
        xattrs.insert(
            "com.apple.TextEncoding".to_string(),
            b"utf-8;134217984".to_vec(),
        );
        let mut key = vec![4, 0, 0, 0];
        key.extend(1u8..=40);
        FileMeta {
            size: 1099,
            mode: 0o100644,
            uid: 501,
            gid: 0,
            mtime: 1_638_385_035,
            ctime: 1_638_385_035,
            birth: 1_638_385_035,
            inode: 677_745,
            protection_class: 4,
            flags: 0,
            encryption_key: WrappedKey::from_bytes(&key),
            digest: Some(vec![0x9c; 20]),
            target: None,
            xattrs,
        }
    }

    /// Builds an archive plist from raw parts, for hostile samples.
    fn archive(top: Option<Value>, objects: Vec<Value>) -> Vec<u8> {
        let mut d = Dictionary::new();
        d.insert("$version".into(), Value::Integer(100_000u64.into()));
        d.insert("$archiver".into(), Value::String("NSKeyedArchiver".into()));
        if let Some(t) = top {
            d.insert("$top".into(), t);
        }
        d.insert("$objects".into(), Value::Array(objects));
        to_binary(&Value::Dictionary(d))
    }

    fn root_top(uid: u64) -> Value {
        let mut t = Dictionary::new();
        t.insert("root".into(), Value::Uid(Uid::new(uid)));
        Value::Dictionary(t)
    }

    fn minimal_mbfile(extra: &[(&str, Value)]) -> Value {
        let mut mb = Dictionary::new();
        mb.insert("Size".into(), Value::Integer(5u64.into()));
        mb.insert("Mode".into(), Value::Integer(0o100644u64.into()));
        for (k, v) in extra {
            mb.insert((*k).into(), v.clone());
        }
        Value::Dictionary(mb)
    }

    fn as_value(blob: &[u8]) -> Value {
        Value::from_reader(std::io::Cursor::new(blob)).expect("a plist")
    }

    proptest! {
        /// The direct writer produces the same archive as a `plist::Value` tree serialized by
        /// the `plist` crate: same objects, same order, same keys and values.
        #[test]
        fn direct_encoding_equals_the_value_tree(
            size in any::<u64>(), mode in any::<u32>(), uid in any::<u32>(), gid in any::<u32>(),
            mtime in any::<i64>(), ctime in any::<i64>(), birth in any::<i64>(),
            inode in any::<u64>(), class in any::<u32>(), flags in any::<u64>(),
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 44..45)),
            digest in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            target in proptest::option::of(".{0,30}"),
            xattr in proptest::option::of(("[a-z.]{1,20}", proptest::collection::vec(any::<u8>(), 0..20))),
            rel in ".{0,80}",
        ) {
            let mut key = key;
            if let Some(k) = key.as_mut() {
                k[..4].copy_from_slice(&[3, 0, 0, 0]);
            }
            let meta = FileMeta {
                size, mode, uid, gid, mtime, ctime, birth, inode,
                protection_class: class,
                flags,
                encryption_key: key.as_deref().and_then(WrappedKey::from_bytes),
                digest,
                target,
                xattrs: xattr.into_iter().collect(),
            };
            let fast = encode(&meta, &rel);
            prop_assert_eq!(as_value(&fast), as_value(&encode_via_value(&meta, &rel)));
            let (back, back_rel) = decode(&fast).expect("decodes");
            prop_assert_eq!(back_rel.as_deref(), Some(rel.as_str()));
            prop_assert_eq!(back.size, meta.size);
        }
    }

    #[test]
    fn round_trip_full() {
        let meta = sample_meta();
        let blob = encode(&meta, "Health/x.dat");
        let (back, rel) = decode(&blob).expect("decodes");
        assert_eq!(back, meta);
        assert_eq!(rel.as_deref(), Some("Health/x.dat"));
    }

    #[test]
    fn object_order_matches_a_real_phone() {
        let meta = sample_meta();
        let blob = encode(&meta, "a/b");
        let v = Value::from_reader(Cursor::new(&blob)).expect("plist");
        let top = v.as_dictionary().expect("dict");
        assert_eq!(
            top.get("$archiver").and_then(Value::as_string),
            Some("NSKeyedArchiver")
        );
        assert_eq!(
            top.get("$version").and_then(Value::as_unsigned_integer),
            Some(100_000)
        );
        let objs = top
            .get("$objects")
            .and_then(Value::as_array)
            .expect("objects");
        assert_eq!(objs.len(), 8);
        assert_eq!(objs[0].as_string(), Some("$null"));
        assert!(
            objs[1]
                .as_dictionary()
                .is_some_and(|d| d.contains_key("Size"))
        );
        assert_eq!(objs[2].as_string(), Some("a/b"));
        assert_eq!(objs[3].as_data().map(<[u8]>::len), Some(20));
        assert!(
            objs[4]
                .as_dictionary()
                .is_some_and(|d| d.contains_key("NS.data"))
        );
        assert!(
            objs[6]
                .as_data()
                .is_some_and(|d| d.starts_with(b"bplist00"))
        );
        let last = objs[7].as_dictionary().expect("class");
        assert_eq!(
            last.get("$classname").and_then(Value::as_string),
            Some("MBFile")
        );
    }

    #[test]
    fn directory_blob_is_minimal() {
        let meta = FileMeta {
            mode: 0o40755,
            ..FileMeta::default()
        };
        let blob = encode(&meta, "");
        let v = Value::from_reader(Cursor::new(&blob)).expect("plist");
        let objs = v
            .as_dictionary()
            .and_then(|d| d.get("$objects"))
            .and_then(Value::as_array)
            .expect("objects");
        assert_eq!(objs.len(), 4, "$null, MBFile, relPath, class");
        assert_eq!(decode(&blob).expect("decodes"), (meta, Some(String::new())));
    }

    #[test]
    fn inline_data_and_any_integer_type_are_accepted() {
        let mut key = vec![3, 0, 0, 0];
        key.extend([7u8; 40]);
        let mb = minimal_mbfile(&[
            ("EncryptionKey", Value::Data(key.clone())),
            ("Digest", Value::Data(vec![1; 20])),
            ("UserID", Value::Integer(501i64.into())),
            ("LastModified", Value::Integer((-5i64).into())),
        ]);
        let blob = archive(Some(root_top(1)), vec![Value::String("$null".into()), mb]);
        let (meta, rel) = decode(&blob).expect("decodes");
        assert_eq!(rel, None);
        assert_eq!(meta.uid, 501);
        assert_eq!(meta.mtime, -5);
        assert_eq!(meta.encryption_key.map(|k| k.to_bytes()), Some(key));
        assert_eq!(meta.digest, Some(vec![1; 20]));
    }

    #[test]
    fn negative_ids_are_apple_nobody() {
        let mb = minimal_mbfile(&[("UserID", Value::Integer((-2i64).into()))]);
        let blob = archive(Some(root_top(1)), vec![Value::String("$null".into()), mb]);
        let meta = decode(&blob).expect("decodes").0;
        assert_eq!(meta.uid, 4_294_967_294);
        let again = encode(&meta, "x");
        let v = Value::from_reader(Cursor::new(&again)).expect("plist");
        let objs = v
            .as_dictionary()
            .and_then(|d| d.get("$objects"))
            .and_then(Value::as_array);
        let uid = objs
            .and_then(|o| o[1].as_dictionary())
            .and_then(|d| d.get("UserID"));
        assert_eq!(uid.and_then(Value::as_signed_integer), Some(-2));
        assert_eq!(decode(&again).expect("again").0, meta);
    }

    #[test]
    fn missing_top_falls_back_to_object_one() {
        let blob = archive(
            None,
            vec![Value::String("$null".into()), minimal_mbfile(&[])],
        );
        assert_eq!(decode(&blob).expect("decodes").0.size, 5);
    }

    #[test]
    fn top_out_of_range_is_rejected() {
        let blob = archive(Some(root_top(7)), vec![Value::String("$null".into())]);
        let e = decode(&blob).expect_err("out of range");
        assert!(e.detail.contains("out of range"), "{e}");
    }

    #[test]
    fn uid_cycle_is_rejected() {
        // $objects[2] → UID(3) → UID(2): a cycle reached through RelativePath.
        let mb = minimal_mbfile(&[("RelativePath", Value::Uid(Uid::new(2)))]);
        let blob = archive(
            Some(root_top(1)),
            vec![
                Value::String("$null".into()),
                mb,
                Value::Uid(Uid::new(3)),
                Value::Uid(Uid::new(2)),
            ],
        );
        let e = decode(&blob).expect_err("cycle");
        assert!(e.detail.contains("cycle"), "{e}");
        // A root that points at itself.
        let blob = archive(
            Some(root_top(1)),
            vec![Value::String("$null".into()), Value::Uid(Uid::new(1))],
        );
        assert!(decode(&blob).expect_err("self").detail.contains("cycle"));
    }

    #[test]
    fn wrong_types_are_rejected() {
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "Size",
                Value::String("big".into()),
                "Size is not an integer",
            ),
            ("Mode", Value::Integer((-1i64).into()), "Mode is negative"),
            (
                "UserID",
                Value::Integer(u64::MAX.into()),
                "UserID is too large",
            ),
            (
                "RelativePath",
                Value::Integer(3u64.into()),
                "RelativePath is not a string",
            ),
            (
                "EncryptionKey",
                Value::Data(vec![1, 2, 3]),
                "EncryptionKey is 3 bytes",
            ),
            ("Digest", Value::Boolean(true), "Digest is not data"),
            (
                "ExtendedAttributes",
                Value::Data(b"garbage".to_vec()),
                "ExtendedAttributes",
            ),
        ];
        for (key, value, want) in cases {
            let blob = archive(
                Some(root_top(1)),
                vec![
                    Value::String("$null".into()),
                    minimal_mbfile(&[(key, value)]),
                ],
            );
            let e = decode(&blob).expect_err(key);
            assert!(e.detail.contains(want), "{key}: {e}");
        }
        let blob = archive(
            Some(root_top(1)),
            vec![Value::String("$null".into()), Value::Integer(1u64.into())],
        );
        assert!(decode(&blob).is_err());
        assert!(decode(b"not a plist").is_err());
        assert!(decode(b"").is_err());
    }

    #[test]
    fn wrong_class_is_rejected() {
        let mb = minimal_mbfile(&[("$class", Value::Uid(Uid::new(2)))]);
        let blob = archive(
            Some(root_top(1)),
            vec![
                Value::String("$null".into()),
                mb,
                class_object_value(&["NSDictionary", "NSObject"]),
            ],
        );
        assert!(
            decode(&blob)
                .expect_err("class")
                .detail
                .contains("NSDictionary")
        );
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let depth = 100_000;
        let mut xml = String::from("<plist version=\"1.0\">");
        xml.push_str(&"<array>".repeat(depth));
        xml.push_str(&"</array>".repeat(depth));
        xml.push_str("</plist>");
        assert!(matches!(
            parse_plist_bounded(xml.as_bytes()),
            Err(PlistParseError::TooDeep)
        ));
        assert!(decode(xml.as_bytes()).is_err());
    }

    /// A binary plist of `levels` arrays, each holding its successor twice: 2^levels leaves.
    fn exponential_bplist(levels: u8) -> Vec<u8> {
        let n = u64::from(levels) + 1;
        let mut out = b"bplist00".to_vec();
        let mut offsets = Vec::new();
        for i in 0..u64::from(levels) {
            offsets.push(out.len() as u64);
            out.extend_from_slice(&[0xa2, (i + 1) as u8, (i + 1) as u8]);
        }
        offsets.push(out.len() as u64);
        out.extend_from_slice(&[0x4f, 0x10, 0xff]);
        out.extend(std::iter::repeat_n(0x41u8, 255));
        let table = out.len() as u64;
        for o in &offsets {
            out.extend_from_slice(&(*o as u16).to_be_bytes());
        }
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0, 2, 1]);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&0u64.to_be_bytes());
        out.extend_from_slice(&table.to_be_bytes());
        out
    }

    #[test]
    fn shared_reference_bombs_are_refused() {
        // Small fan-out parses (proves the hand-made plist is valid) …
        let small = exponential_bplist(4);
        let v = parse_plist_bounded(&small).expect("16 leaves");
        assert!(v.as_array().is_some());
        // … 2^40 leaves of 255 bytes are refused before anything is built.
        let bomb = exponential_bplist(40);
        assert!(matches!(
            parse_plist_bounded(&bomb),
            Err(PlistParseError::TooLarge(_))
        ));
        assert!(decode(&bomb).is_err());
        // Real-sized plists are far below the budget.
        assert_eq!(bplist_expansion_exceeds(&encode(&sample_meta(), "a")), None);
    }

    prop_compose! {
        fn arb_key()(class in 0u32..12, blocks in 3usize..7, seed in any::<u8>()) -> WrappedKey {
            WrappedKey { class, wrapped: (0..blocks * 8).map(|i| seed.wrapping_add(i as u8)).collect() }
        }
    }

    prop_compose! {
        fn arb_meta()(
            size in any::<u64>(), mode in any::<u32>(), uid in any::<u32>(), gid in any::<u32>(),
            mtime in any::<i64>(), ctime in any::<i64>(), birth in any::<i64>(), inode in any::<u64>(),
            protection_class in any::<u32>(), flags in any::<u64>(),
            encryption_key in proptest::option::of(arb_key()),
            digest in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            target in proptest::option::of(".{0,40}"),
            xattrs in proptest::collection::btree_map(".{0,20}", proptest::collection::vec(any::<u8>(), 0..30), 0..4),
        ) -> FileMeta {
            FileMeta { size, mode, uid, gid, mtime, ctime, birth, inode, protection_class, flags,
                       encryption_key, digest, target, xattrs }
        }
    }

    proptest! {
        #[test]
        fn prop_round_trip(meta in arb_meta(), rel in ".{0,60}") {
            let blob = encode(&meta, &rel);
            let (back, back_rel) = decode(&blob).map_err(|e| TestCaseError::fail(e.detail))?;
            prop_assert_eq!(back, meta);
            prop_assert_eq!(back_rel, Some(rel));
        }

        #[test]
        fn prop_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn prop_mutated_blobs_never_panic(meta in arb_meta(), pos in any::<usize>(), byte in any::<u8>()) {
            let mut blob = encode(&meta, "x/y");
            let i = pos % blob.len();
            blob[i] = byte;
            let _ = decode(&blob);
        }
    }
}
