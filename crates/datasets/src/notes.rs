//! Notes: `AppDomainGroup-group.com.apple.notes/NoteStore.sqlite` (iOS 9+). Notes, folders and
//! accounts share `ZICCLOUDSYNCINGOBJECT`; a note's body is `ZICNOTEDATA.ZDATA`: gzip of a
//! protobuf `NoteStoreProto { document(2) { note(3) { note_text(2) } } }`. Column names carry
//! numbers that drift (`ZCREATIONDATE1` → `ZCREATIONDATE3`, `ZTITLE1`…): every candidate is
//! probed and coalesced. Password-protected notes are encrypted and exported without body.

use std::collections::HashMap;
use std::io::Read;

use iosnap_format::Backup;
use serde::Serialize;

use crate::error::{Error, Result, SqlContext};
use crate::page::Pager;
use crate::source::{DbLocation, Source};
use crate::value::{blob, flag, get, int, nonempty, real};

/// The modern notes store.
pub const NOTE_STORE: DbLocation = DbLocation {
    dataset: "Notes",
    domain: "AppDomainGroup-group.com.apple.notes",
    relative_path: "NoteStore.sqlite",
};

/// Compressed bodies larger than this are not read; decompressed ones are cut here.
pub const MAX_BODY_BYTES: usize = 32 << 20;

/// One note.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    /// Z_PK.
    pub pk: i64,
    /// ZIDENTIFIER.
    pub identifier: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Folder name.
    pub folder: Option<String>,
    /// Full text (title line included), `None` when locked or unreadable.
    pub text: Option<String>,
    /// Created, Unix seconds.
    #[serde(serialize_with = "crate::time::opt_rfc3339::serialize")]
    pub created: Option<i64>,
    /// Modified, Unix seconds.
    #[serde(serialize_with = "crate::time::opt_rfc3339::serialize")]
    pub modified: Option<i64>,
    /// Pinned.
    pub pinned: bool,
    /// Password-protected (body encrypted).
    pub locked: bool,
    /// In "Recently Deleted".
    pub deleted: bool,
    /// Why the body could not be read, if it could not.
    pub body_error: Option<String>,
}

/// A protobuf varint at `*i`.
fn varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The first length-delimited field `field` of a protobuf message.
fn field(b: &[u8], field: u64) -> Option<&[u8]> {
    let mut i = 0;
    while i < b.len() {
        let key = varint(b, &mut i)?;
        match key & 7 {
            0 => {
                varint(b, &mut i)?;
            }
            1 => i = i.checked_add(8)?,
            5 => i = i.checked_add(4)?,
            2 => {
                let len = usize::try_from(varint(b, &mut i)?).ok()?;
                let end = i.checked_add(len)?;
                let v = b.get(i..end)?;
                if key >> 3 == field {
                    return Some(v);
                }
                i = end;
            }
            _ => return None,
        }
    }
    None
}

/// The text of a `ZDATA` blob: gunzip (bounded), then document(2) → note(3) → note_text(2).
pub fn body_text(zdata: &[u8]) -> std::result::Result<String, String> {
    let mut out = Vec::new();
    let limit = u64::try_from(MAX_BODY_BYTES).unwrap_or(u64::MAX);
    flate2::read::GzDecoder::new(zdata)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| format!("not gzip: {e}"))?;
    let text = field(&out, 2)
        .and_then(|d| field(d, 3))
        .and_then(|n| field(n, 2))
        .ok_or("no note text in the protobuf")?;
    Ok(String::from_utf8_lossy(text).into_owned())
}

/// The notes store, opened.
#[derive(Debug)]
pub struct NotesDb {
    src: Source,
    sql: String,
    folders: HashMap<i64, String>,
}

impl NotesDb {
    /// Opens NoteStore.sqlite of a backup.
    pub fn open(backup: &Backup) -> Result<NotesDb> {
        Self::from_source(Source::open(backup, NOTE_STORE)?)
    }

    /// Builds on an opened database; [`Error::UnknownSchema`] without the two tables.
    pub fn from_source(src: Source) -> Result<NotesDb> {
        src.require_table("ZICCLOUDSYNCINGOBJECT")?;
        src.require_table("ZICNOTEDATA")?;
        let s = src.schema();
        let t = "ZICCLOUDSYNCINGOBJECT";
        if !s.has_column("ZICNOTEDATA", "ZNOTE") {
            return Err(Error::UnknownSchema {
                dataset: src.dataset(),
                file: src.file().to_string(),
                detail: "ZICNOTEDATA has no ZNOTE".into(),
            });
        }
        let coalesce = |cands: &[&str]| {
            let v: Vec<String> = cands
                .iter()
                .filter(|c| s.has_column(t, c))
                .map(|c| format!("n.{}", crate::schema::quote(c)))
                .collect();
            match v.len() {
                0 => "NULL".to_string(),
                1 => v.concat(),
                _ => format!("COALESCE({})", v.join(", ")),
            }
        };
        let folder_col = s.col(t, "n", "ZFOLDER");
        let sql = format!(
            "SELECT d.Z_PK, n.Z_PK, {}, {}, {folder_col}, {}, {}, {}, {}, {}, {} FROM ZICNOTEDATA d
             JOIN ZICCLOUDSYNCINGOBJECT n ON n.Z_PK = d.ZNOTE
             WHERE d.Z_PK > ?1 ORDER BY d.Z_PK LIMIT ?2",
            s.col(t, "n", "ZIDENTIFIER"),
            coalesce(&["ZTITLE1", "ZTITLE"]),
            coalesce(&["ZCREATIONDATE3", "ZCREATIONDATE1", "ZCREATIONDATE"]),
            coalesce(&["ZMODIFICATIONDATE1", "ZMODIFICATIONDATE"]),
            s.col(t, "n", "ZISPINNED"),
            s.col(t, "n", "ZISPASSWORDPROTECTED"),
            s.col(t, "n", "ZMARKEDFORDELETION"),
            s.blob_col("ZICNOTEDATA", "d", "ZDATA", MAX_BODY_BYTES),
        );
        let mut folders = HashMap::new();
        let title = coalesce(&["ZTITLE2"]);
        if title != "NULL" {
            let q = format!("SELECT n.Z_PK, {title} FROM {t} n WHERE {title} IS NOT NULL");
            let mut st = src.conn().prepare(&q).db(src.file())?;
            let mut rows = st.query([]).db(src.file())?;
            while let Some(r) = rows.next().db(src.file())? {
                if let (Some(pk), Some(name)) = (int(get(r, 0)), nonempty(get(r, 1))) {
                    folders.insert(pk, name);
                }
            }
        }
        Ok(NotesDb { src, sql, folders })
    }

    /// Number of note bodies.
    pub fn count(&self) -> Result<u64> {
        Ok(self.src.count("ZICNOTEDATA")?.unwrap_or(0))
    }

    /// Folder names by Z_PK.
    pub fn folders(&self) -> &HashMap<i64, String> {
        &self.folders
    }

    /// Every note with its body, streamed page by page.
    pub fn notes(&self) -> NoteIter<'_> {
        let map = |r: &rusqlite::Row<'_>| {
            let locked = flag(get(r, 8));
            let (text, body_error) = if locked {
                (None, Some("password-protected (encrypted)".to_string()))
            } else {
                match blob(get(r, 10)) {
                    Some(z) => match body_text(&z) {
                        Ok(t) => (Some(t), None),
                        Err(e) => (None, Some(e)),
                    },
                    None => (None, Some("no body (or larger than the limit)".to_string())),
                }
            };
            NoteRow {
                data_pk: int(get(r, 0)).unwrap_or(0),
                folder_pk: int(get(r, 4)),
                note: Note {
                    pk: int(get(r, 1)).unwrap_or(0),
                    identifier: nonempty(get(r, 2)),
                    title: nonempty(get(r, 3)),
                    folder: None,
                    text,
                    created: real(get(r, 5)).and_then(crate::time::cocoa_real_to_unix),
                    modified: real(get(r, 6)).and_then(crate::time::cocoa_real_to_unix),
                    pinned: flag(get(r, 7)),
                    locked,
                    deleted: flag(get(r, 9)),
                    body_error,
                },
            }
        };
        NoteIter {
            pager: Pager::new(
                self.src.conn(),
                self.src.file(),
                self.sql.clone(),
                None,
                map,
                |n: &NoteRow| n.data_pk,
            ),
            folders: &self.folders,
        }
    }
}

/// A row before its folder name is resolved.
pub(crate) struct NoteRow {
    data_pk: i64,
    folder_pk: Option<i64>,
    note: Note,
}

/// The iterator of [`NotesDb::notes`].
pub struct NoteIter<'a> {
    pager: Pager<'a, NoteRow>,
    folders: &'a HashMap<i64, String>,
}

impl Iterator for NoteIter<'_> {
    type Item = Result<Note>;
    fn next(&mut self) -> Option<Result<Note>> {
        self.pager.next().map(|r| {
            r.map(|row| {
                let mut n = row.note;
                n.folder = row.folder_pk.and_then(|f| self.folders.get(&f).cloned());
                n
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_phone_bodies() {
        let z = iosnap_phone::datasets::notes::note_zdata("Groceries\n- milk 🥛");
        assert_eq!(body_text(&z).as_deref(), Ok("Groceries\n- milk 🥛"));
        assert!(body_text(b"not gzip").is_err());
    }

    proptest! {
        #[test]
        fn protobuf_never_panics(b in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = field(&b, 2);
        }
    }
}
