//! Notes: `AppDomainGroup-group.com.apple.notes/NoteStore.sqlite` (iOS 9+). Notes, folders and
//! accounts share `ZICCLOUDSYNCINGOBJECT`; a note's body is `ZICNOTEDATA.ZDATA`: gzip of a
//! protobuf `NoteStoreProto { document(2) { note(3) { note_text(2) } } }`. Column names carry
//! numbers that drift (`ZCREATIONDATE1` → `ZCREATIONDATE3`, `ZTITLE1`…): every candidate is
//! probed and coalesced. Password-protected notes are encrypted and exported without body.
//!
//! The **legacy** store of iOS ≤ 8 (kept on upgraded phones for local notes never migrated),
//! `HomeDomain/Library/Notes/notes.sqlite`, is read when `NoteStore.sqlite` is absent: `ZNOTE`
//! (`ZTITLE`, `ZCREATIONDATE`, `ZMODIFICATIONDATE`, `ZGUID`, `ZDELETEDFLAG`, folder `ZSTORE` →
//! `ZSTORE.ZNAME`) and `ZNOTEBODY.ZCONTENT`, an HTML fragment turned into text by
//! [`html_to_text`]. The body is joined on `ZNOTE.ZBODY` or, when that column is missing,
//! `ZNOTEBODY.ZOWNER`. That generation has no pinning and no locked notes.

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

/// The legacy (iOS ≤ 8) notes store.
pub const LEGACY_NOTES: DbLocation = DbLocation {
    dataset: "Notes",
    domain: "HomeDomain",
    relative_path: "Library/Notes/notes.sqlite",
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

/// Text of a legacy HTML note body: tags dropped (`<br>` and the end of a block — `div`, `p`,
/// `li`, headings, table rows — become line breaks, `<style>`/`<script>` content is dropped),
/// character references decoded, trailing line breaks trimmed. Total on any input: the body is
/// data from the backup, never trusted to be well-formed.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    let mut skip_until: Option<&'static str> = None;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            if skip_until.is_none() {
                decode_entities(rest, &mut out);
            }
            break;
        };
        if skip_until.is_none() {
            decode_entities(&rest[..lt], &mut out);
        }
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else {
            // A lone '<': text, not a tag.
            if skip_until.is_none() {
                out.push('<');
            }
            rest = after;
            continue;
        };
        let tag = &after[..gt];
        rest = &after[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if let Some(end) = skip_until {
            if closing && name == end {
                skip_until = None;
            }
            continue;
        }
        match name.as_str() {
            "style" if !closing => skip_until = Some("style"),
            "script" if !closing => skip_until = Some("script"),
            "br" => out.push('\n'),
            "div" | "p" | "li" | "tr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "blockquote"
            | "ul" | "ol" | "table" => {
                if closing && !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                if !closing && !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
            }
            _ => {}
        }
    }
    let keep = out.trim_end_matches('\n').len();
    out.truncate(keep);
    out
}

/// Appends `s` with HTML character references decoded (named: `amp lt gt quot apos nbsp`;
/// numeric: decimal and hex); an unknown or malformed reference is kept as written.
fn decode_entities(s: &str, out: &mut String) {
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let name = &after[..semi];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => name.strip_prefix('#').and_then(|n| {
                    let code = match n.strip_prefix(['x', 'X']) {
                        Some(h) => u32::from_str_radix(h, 16).ok(),
                        None => n.parse::<u32>().ok(),
                    };
                    code.and_then(char::from_u32)
                }),
            };
            c.map(|c| (c, semi))
        });
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

/// The notes store, opened.
#[derive(Debug)]
pub struct NotesDb {
    src: Source,
    sql: String,
    folders: HashMap<i64, String>,
    legacy: bool,
}

/// Folder names by primary key from `sql` (`SELECT pk, name …`); rows without both are skipped.
fn names_by_pk(src: &Source, sql: &str) -> Result<HashMap<i64, String>> {
    let mut names = HashMap::new();
    let mut st = src.conn().prepare(sql).db(src.file())?;
    let mut rows = st.query([]).db(src.file())?;
    while let Some(r) = rows.next().db(src.file())? {
        if let (Some(pk), Some(name)) = (int(get(r, 0)), nonempty(get(r, 1))) {
            names.insert(pk, name);
        }
    }
    Ok(names)
}

impl NotesDb {
    /// Opens the notes of a backup: NoteStore.sqlite (iOS 9+), else the legacy
    /// `Library/Notes/notes.sqlite` (iOS ≤ 8). [`Error::Absent`] names NoteStore.sqlite when
    /// neither is there.
    pub fn open(backup: &Backup) -> Result<NotesDb> {
        Self::from_source(Source::open_any(backup, &[NOTE_STORE, LEGACY_NOTES])?)
    }

    /// Whether this is the legacy (iOS ≤ 8, HTML bodies) store.
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    /// Builds on an opened database of either generation; [`Error::UnknownSchema`] without the
    /// tables of one of them.
    pub fn from_source(src: Source) -> Result<NotesDb> {
        let s = src.schema();
        if !s.has_table("ZICNOTEDATA") && s.has_table("ZNOTE") {
            return Self::legacy(src);
        }
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
        let title = coalesce(&["ZTITLE2"]);
        let folders = if title != "NULL" {
            names_by_pk(
                &src,
                &format!("SELECT n.Z_PK, {title} FROM {t} n WHERE {title} IS NOT NULL"),
            )?
        } else {
            HashMap::new()
        };
        Ok(NotesDb {
            src,
            sql,
            folders,
            legacy: false,
        })
    }

    /// The legacy store: `ZNOTE` + `ZNOTEBODY` (+ `ZSTORE` for folder names). Selects the same
    /// columns as the modern query (the body as column 10), paged on `ZNOTE.Z_PK`.
    fn legacy(src: Source) -> Result<NotesDb> {
        let s = src.schema();
        let t = "ZNOTE";
        let body_join = if s.has_column(t, "ZBODY") && s.has_column("ZNOTEBODY", "Z_PK") {
            "LEFT JOIN ZNOTEBODY b ON b.Z_PK = n.ZBODY"
        } else if s.has_column("ZNOTEBODY", "ZOWNER") {
            "LEFT JOIN ZNOTEBODY b ON b.ZOWNER = n.Z_PK"
        } else {
            ""
        };
        let content = if body_join.is_empty() {
            "NULL".to_string()
        } else {
            s.blob_col("ZNOTEBODY", "b", "ZCONTENT", MAX_BODY_BYTES)
        };
        let sql = format!(
            "SELECT n.Z_PK, n.Z_PK, {}, {}, {}, {}, {}, 0, 0, {}, {content} FROM ZNOTE n {body_join}
             WHERE n.Z_PK > ?1 ORDER BY n.Z_PK LIMIT ?2",
            s.col(t, "n", "ZGUID"),
            s.col(t, "n", "ZTITLE"),
            s.col(t, "n", "ZSTORE"),
            s.col(t, "n", "ZCREATIONDATE"),
            s.col(t, "n", "ZMODIFICATIONDATE"),
            s.col(t, "n", "ZDELETEDFLAG"),
        );
        let folders = if s.has_column("ZSTORE", "ZNAME") {
            names_by_pk(
                &src,
                "SELECT Z_PK, ZNAME FROM ZSTORE WHERE ZNAME IS NOT NULL",
            )?
        } else {
            HashMap::new()
        };
        Ok(NotesDb {
            src,
            sql,
            folders,
            legacy: true,
        })
    }

    /// Number of notes (note bodies in NoteStore.sqlite, `ZNOTE` rows in the legacy store).
    pub fn count(&self) -> Result<u64> {
        let table = if self.legacy { "ZNOTE" } else { "ZICNOTEDATA" };
        Ok(self.src.count(table)?.unwrap_or(0))
    }

    /// Folder names by Z_PK.
    pub fn folders(&self) -> &HashMap<i64, String> {
        &self.folders
    }

    /// Every note with its body, streamed page by page.
    pub fn notes(&self) -> NoteIter<'_> {
        NoteIter {
            pager: Pager::new(
                self.src.conn(),
                self.src.file(),
                self.sql.clone(),
                None,
                if self.legacy { map_legacy } else { map_modern },
                |n: &NoteRow| n.data_pk,
            ),
            folders: &self.folders,
        }
    }
}

/// A row of either query, with the body already turned into text (or an error).
fn map_row(r: &rusqlite::Row<'_>, body: (Option<String>, Option<String>)) -> NoteRow {
    let (text, body_error) = body;
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
            locked: flag(get(r, 8)),
            deleted: flag(get(r, 9)),
            body_error,
        },
    }
}

/// NoteStore.sqlite: gzipped protobuf bodies, locked notes left encrypted.
fn map_modern(r: &rusqlite::Row<'_>) -> NoteRow {
    let body = if flag(get(r, 8)) {
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
    map_row(r, body)
}

/// Legacy notes.sqlite: HTML bodies.
fn map_legacy(r: &rusqlite::Row<'_>) -> NoteRow {
    let body = match blob(get(r, 10)) {
        Some(html) => (Some(html_to_text(&String::from_utf8_lossy(&html))), None),
        None => (None, Some("no body (or larger than the limit)".to_string())),
    };
    map_row(r, body)
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

    #[test]
    fn legacy_html_bodies() {
        let text = "Plan <A & B>\n\n- \"go\" it's 5 €";
        let html = iosnap_phone::datasets::notes::legacy_body_html(text);
        assert_eq!(html_to_text(&html), text);
        assert_eq!(
            html_to_text("Title<br>line &#233;&#xE9;&nbsp;<b>bold</b><p>para</p>"),
            "Title\nline éé\u{a0}bold\npara"
        );
        assert_eq!(
            html_to_text("<style>p{}</style>a < b &bogus; &#xZZ;"),
            "a < b &bogus; &#xZZ;"
        );
        assert_eq!(
            html_to_text("<div>x</div><div><br></div><div>y</div>"),
            "x\n\ny"
        );
    }

    proptest! {
        #[test]
        fn html_never_panics(s in "\\PC{0,200}") {
            let _ = html_to_text(&s);
        }

        #[test]
        fn html_round_trips_lines(lines in proptest::collection::vec("[^\\n\\r]{1,30}", 1..6)) {
            let text = lines.join("\n");
            let html = iosnap_phone::datasets::notes::legacy_body_html(&text);
            prop_assert_eq!(html_to_text(&html), text);
        }

        #[test]
        fn protobuf_never_panics(b in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = field(&b, 2);
        }
    }
}
