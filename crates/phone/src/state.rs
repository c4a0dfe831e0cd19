//! Persistent state of a phone: `phone.json` (format version, spec, operation history) plus
//! `restored/<sha1>` files holding contents written by restores. Loading regenerates the phone
//! from the spec and replays the history, so successive simulator runs see the same phone
//! evolving over time.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;

use iosnap_format::{EntryKind, FileMeta};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::error::PhoneError;
use crate::{Op, Phone, PhoneSpec};

const STATE_FILE: &str = "phone.json";
const FORMAT: u32 = 1;

/// A serialisable copy of [`FileMeta`] (which has no serde support) plus the kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MetaRecord {
    flags: i64,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    ctime: i64,
    birth: i64,
    inode: u64,
    protection_class: u32,
    target: Option<String>,
    xattrs: BTreeMap<String, Vec<u8>>,
}

impl MetaRecord {
    pub(crate) fn from_meta(m: &FileMeta, kind: EntryKind) -> Self {
        MetaRecord {
            flags: kind.flags(),
            size: m.size,
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            mtime: m.mtime,
            ctime: m.ctime,
            birth: m.birth,
            inode: m.inode,
            protection_class: m.protection_class,
            target: m.target.clone(),
            xattrs: m.xattrs.clone(),
        }
    }

    pub(crate) fn to_meta(&self) -> (EntryKind, FileMeta) {
        (
            EntryKind::from_flags(self.flags),
            FileMeta {
                size: self.size,
                mode: self.mode,
                uid: self.uid,
                gid: self.gid,
                mtime: self.mtime,
                ctime: self.ctime,
                birth: self.birth,
                inode: self.inode,
                protection_class: self.protection_class,
                target: self.target.clone(),
                xattrs: self.xattrs.clone(),
                ..FileMeta::default()
            },
        )
    }
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    format: u32,
    spec: PhoneSpec,
    ops: Vec<Op>,
    /// The content generator; state files from before it was recorded used the first one.
    #[serde(default = "first_generator")]
    content: u32,
}

fn first_generator() -> u32 {
    crate::content::CONTENT_V1
}

/// Copies `content` into `dir/<sha1>` (via a temp file + rename); returns (name, length).
pub(crate) fn store_blob(dir: &Path, content: &mut dyn Read) -> io::Result<(String, u64)> {
    std::fs::create_dir_all(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    let tmp = tempname(dir);
    let mut out = std::fs::File::create(&tmp)?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = match content.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        h.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        len += n as u64;
    }
    out.sync_all()?;
    drop(out);
    let name = hex::encode(h.finalize());
    std::fs::rename(&tmp, dir.join(&name))?;
    Ok((name, len))
}

fn tempname(dir: &Path) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

pub(crate) fn save(phone: &Phone, dir: &Path) -> Result<(), PhoneError> {
    let restored = dir.join("restored");
    std::fs::create_dir_all(&restored).map_err(|e| PhoneError::io(&restored, e))?;
    for op in &phone.ops {
        if let Op::Set { blob: Some(b), .. } = op {
            let dst = restored.join(b);
            let src = phone.blob_dir.join(b);
            if !dst.exists() {
                let tmp = tempname(&restored);
                std::fs::copy(&src, &tmp).map_err(|e| PhoneError::io(&src, e))?;
                std::fs::rename(&tmp, &dst).map_err(|e| PhoneError::io(&dst, e))?;
            }
        }
    }
    let state = StateFile {
        format: FORMAT,
        spec: phone.spec.clone(),
        ops: phone.ops.clone(),
        content: phone.content,
    };
    let path = dir.join(STATE_FILE);
    let json = serde_json::to_vec_pretty(&state).map_err(|e| PhoneError::State {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let tmp = tempname(dir);
    std::fs::write(&tmp, &json).map_err(|e| PhoneError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| PhoneError::io(&path, e))
}

pub(crate) fn load(dir: &Path) -> Result<Phone, PhoneError> {
    let path = dir.join(STATE_FILE);
    let bytes = std::fs::read(&path).map_err(|e| PhoneError::io(&path, e))?;
    let state: StateFile = serde_json::from_slice(&bytes).map_err(|e| PhoneError::State {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if state.format != FORMAT {
        return Err(PhoneError::State {
            path,
            message: format!("unknown format {}", state.format),
        });
    }
    let mut phone = Phone::skeleton(&state.spec, &dir.join("cache"))?;
    phone.blob_dir = dir.join("restored");
    phone.owns_cache = true;
    phone.content = state.content;
    for op in &state.ops {
        match op {
            Op::Churn { share } => phone.churn_inner(*share),
            Op::Set {
                domain,
                path: p,
                meta,
                blob,
            } => {
                if let Some(b) = blob {
                    let f = phone.blob_dir.join(b);
                    if !f.is_file() {
                        return Err(PhoneError::State {
                            path: path.clone(),
                            message: format!("missing restored file {}", f.display()),
                        });
                    }
                }
                phone.apply_set(domain, p, meta, blob.clone());
            }
            Op::Remove { domain, path: p } => {
                phone.apply_remove(domain, p);
            }
        }
    }
    phone.ops = state.ops;
    phone.refresh_databases()?;
    Ok(phone)
}
