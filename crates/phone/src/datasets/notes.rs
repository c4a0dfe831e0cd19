//! Notes: `AppDomainGroup-group.com.apple.notes/NoteStore.sqlite`. Notes, folders and the account
//! live in `ZICCLOUDSYNCINGOBJECT`; bodies in `ZICNOTEDATA.ZDATA` as gzip → protobuf
//! `NoteStoreProto{document(2){version(2), note(3){note_text(2), attribute_run(5)[length(1),
//! paragraph_style(2){style_type(1)}]}}}` (schema of apple_cloud_notes_parser's notestore.proto).
//!
//! Version markers follow apple_cloud_notes_parser's `guess_ios_version`: the account foreign key
//! is `ZACCOUNT2` (≤ 13), `ZACCOUNT4` (14–15) or `ZACCOUNT7` (16+); `ZSERVERRECORDDATA` (12+),
//! `ZLASTOPENEDDATE` (14+), `ZACCOUNT5` (15+), `ZACCOUNT6` (16+), `ZGENERATION` (17+),
//! `ZUNAPPLIEDENCRYPTEDRECORDDATA` (18+), `ZATTRIBUTEDSNIPPET` (26+).
//!
//! The same records can also be written as the **legacy** store of iOS ≤ 8,
//! `HomeDomain/Library/Notes/notes.sqlite` ([`NotesGeneration::Legacy`], [`Notes::write_legacy`]):
//! `ZNOTE` (title, dates, `ZSTORE` folder, `ZBODY`) + `ZNOTEBODY.ZCONTENT` holding the body as an
//! HTML fragment (one `<div>` per line, [`legacy_body_html`]), `ZSTORE` for folders and
//! `ZACCOUNT` (the layout apple_cloud_notes_parser's legacy query reads:
//! `ZNOTEBODY.Z_PK = ZNOTE.ZBODY AND ZSTORE.Z_PK = ZNOTE.ZSTORE`). iOS 9+ phones upgraded from
//! iOS 8 keep that file for local notes that were never migrated, which is why a backup can hold
//! either store.

use std::io::Write;

use rand::Rng;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::words::{self, pick};
use super::{Ctx, IosVersion, to_cocoa};
use crate::rng;

/// Z_ENT numbers used in `ZICCLOUDSYNCINGOBJECT` (declared in Z_PRIMARYKEY).
pub const ENT_ACCOUNT: i64 = 14;
/// Folder entity.
pub const ENT_FOLDER: i64 = 15;
/// Note entity.
pub const ENT_NOTE: i64 = 12;

/// One note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Z_PK in ZICCLOUDSYNCINGOBJECT.
    pub pk: i64,
    /// ZIDENTIFIER (UUID).
    pub identifier: String,
    /// Title (first line).
    pub title: String,
    /// Whole text (title line, newline, body).
    pub text: String,
    /// Folder Z_PK.
    pub folder: i64,
    /// Created, Unix seconds.
    pub created: i64,
    /// Modified, Unix seconds.
    pub modified: i64,
    /// Pinned.
    pub pinned: bool,
}

/// The notes store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notes {
    /// Account name ("iCloud"), Z_PK 1.
    pub account: String,
    /// (Z_PK, title) of the folders.
    pub folders: Vec<(i64, String)>,
    /// Notes.
    pub notes: Vec<Note>,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn field_varint(out: &mut Vec<u8>, field: u32, v: u64) {
    varint(out, u64::from(field << 3));
    varint(out, v);
}

fn field_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, u64::from(field << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The protobuf `NoteStoreProto` for a note: a title run (style 0) over the first line and a body
/// run over the rest. Lengths are in UTF-16 units, as Notes counts them.
pub fn note_proto(text: &str) -> Vec<u8> {
    let title_len = text
        .split('\n')
        .next()
        .map(|t| t.encode_utf16().count() + 1)
        .unwrap_or(0);
    let total = text.encode_utf16().count();
    let title_len = title_len.min(total);
    let mut note = Vec::new();
    field_bytes(&mut note, 2, text.as_bytes());
    let mut run = Vec::new();
    field_varint(&mut run, 1, title_len as u64);
    let mut style = Vec::new();
    field_varint(&mut style, 1, 0);
    field_bytes(&mut run, 2, &style);
    field_bytes(&mut note, 5, &run);
    if total > title_len {
        let mut run = Vec::new();
        field_varint(&mut run, 1, (total - title_len) as u64);
        field_bytes(&mut note, 5, &run);
    }
    let mut doc = Vec::new();
    field_varint(&mut doc, 2, 0);
    field_bytes(&mut doc, 3, &note);
    let mut store = Vec::new();
    field_bytes(&mut store, 2, &doc);
    store
}

/// gzip of [`note_proto`] — the exact `ZDATA` bytes (mtime 0 in the gzip header: deterministic).
pub fn note_zdata(text: &str) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(&note_proto(text));
    enc.finish().unwrap_or_default()
}

/// Which notes store a phone writes: the two schema generations of Notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum NotesGeneration {
    /// iOS 9+: `AppDomainGroup-group.com.apple.notes/NoteStore.sqlite`, protobuf bodies.
    #[default]
    NoteStore,
    /// iOS ≤ 8: `HomeDomain/Library/Notes/notes.sqlite`, HTML bodies.
    Legacy,
}

impl NotesGeneration {
    /// (domain, relative path) of the store in a backup.
    pub fn location(self) -> (&'static str, &'static str) {
        match self {
            NotesGeneration::NoteStore => {
                ("AppDomainGroup-group.com.apple.notes", "NoteStore.sqlite")
            }
            NotesGeneration::Legacy => ("HomeDomain", "Library/Notes/notes.sqlite"),
        }
    }
}

/// Escapes text for an HTML body (`& < > "`), as Notes stored it.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The preview both stores keep beside a note: its second line, at most 100 characters.
fn snippet(text: &str) -> String {
    text.split('\n')
        .nth(1)
        .unwrap_or("")
        .chars()
        .take(100)
        .collect()
}

/// A legacy `ZNOTEBODY.ZCONTENT`: one `<div>` per line (`<div><br></div>` for an empty one),
/// the first line being the title, as iOS ≤ 8 Notes wrote it.
pub fn legacy_body_html(text: &str) -> String {
    text.split('\n')
        .map(|l| {
            if l.is_empty() {
                "<div><br></div>".to_string()
            } else {
                format!("<div>{}</div>", html_escape(l))
            }
        })
        .collect()
}

impl Notes {
    pub(crate) fn generate(ctx: &Ctx, count: u32) -> Self {
        let folders = vec![
            (2, "Notes".to_string()),
            (3, "Recipes".to_string()),
            (4, "Work".to_string()),
        ];
        let notes = (0..count)
            .map(|i| {
                let mut r = rng::rng(ctx.seed, "note", u64::from(i));
                let title = pick(&mut r, words::NOTE_TITLES).to_string();
                let lines: Vec<String> = (0..r.gen_range(1..8))
                    .map(|_| format!("- {}", pick(&mut r, words::PHRASES)))
                    .collect();
                let created = ctx.timeline("note-date", i, ctx.base.notes, 900);
                Note {
                    pk: 10 + i64::from(i),
                    identifier: rng::uuid(rng::key(ctx.seed, "note-id", u64::from(i))),
                    text: format!("{title}\n{}", lines.join("\n")),
                    title,
                    folder: folders[r.gen_range(0..folders.len())].0,
                    created,
                    modified: created + r.gen_range(0..30 * 86_400),
                    pinned: r.gen_bool(0.05),
                }
            })
            .collect();
        Notes {
            account: "iCloud".into(),
            folders,
            notes,
        }
    }

    /// Unix time of the newest change.
    pub fn last_change(&self) -> i64 {
        self.notes.iter().map(|n| n.modified).max().unwrap_or(0)
    }

    /// Name of the account foreign-key column for this iOS version.
    pub fn account_column(ios: IosVersion) -> &'static str {
        match ios.major {
            ..=13 => "ZACCOUNT2",
            14 | 15 => "ZACCOUNT4",
            _ => "ZACCOUNT7",
        }
    }

    pub(crate) fn write(&self, c: &Connection, ios: IosVersion) -> rusqlite::Result<()> {
        let mut extra = vec!["ZACCOUNT2 INTEGER", "ZACCOUNT3 INTEGER"];
        if ios.major >= 12 {
            extra.push("ZSERVERRECORDDATA BLOB");
        }
        if ios.major >= 13 {
            extra.push("ZACCOUNT4 INTEGER");
        }
        if ios.major >= 14 {
            extra.push("ZLASTOPENEDDATE TIMESTAMP");
        }
        if ios.major >= 15 {
            extra.push("ZACCOUNT5 INTEGER");
        }
        if ios.major >= 16 {
            extra.extend(["ZACCOUNT6 INTEGER", "ZACCOUNT7 INTEGER"]);
        }
        if ios.major >= 17 {
            extra.push("ZGENERATION VARCHAR");
        }
        if ios.major >= 18 {
            extra.extend(["ZUNAPPLIEDENCRYPTEDRECORDDATA BLOB", "ZACCOUNT8 INTEGER"]);
        }
        if ios.major >= 26 {
            extra.push("ZATTRIBUTEDSNIPPET BLOB");
        }
        c.execute_batch(&format!(
            "CREATE TABLE ZICCLOUDSYNCINGOBJECT (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
                ZIDENTIFIER VARCHAR, ZMARKEDFORDELETION INTEGER, ZISPASSWORDPROTECTED INTEGER, ZISPINNED INTEGER,
                ZFOLDER INTEGER, ZNOTEDATA INTEGER, ZNOTE INTEGER, ZPARENT INTEGER,
                ZCREATIONDATE TIMESTAMP, ZCREATIONDATE1 TIMESTAMP, ZCREATIONDATE3 TIMESTAMP,
                ZMODIFICATIONDATE TIMESTAMP, ZMODIFICATIONDATE1 TIMESTAMP, ZTITLE VARCHAR, ZTITLE1 VARCHAR,
                ZTITLE2 VARCHAR, ZSNIPPET VARCHAR, ZNAME VARCHAR, ZPASSWORDHINT VARCHAR, ZTYPEUTI VARCHAR,
                ZFILESIZE INTEGER, ZFILENAME VARCHAR, ZCRYPTOITERATIONCOUNT INTEGER, ZCRYPTOSALT BLOB,
                ZCRYPTOTAG BLOB, ZCRYPTOWRAPPEDKEY BLOB, ZMERGEABLEDATA1 BLOB, {});
             CREATE TABLE ZICNOTEDATA (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, ZNOTE INTEGER,
                ZCRYPTOINITIALIZATIONVECTOR BLOB, ZCRYPTOTAG BLOB, ZDATA BLOB);
             CREATE INDEX ZICCLOUDSYNCINGOBJECT_ZFOLDER_INDEX ON ZICCLOUDSYNCINGOBJECT (ZFOLDER);",
            extra.join(", ")
        ))?;
        if ios.major == 11 {
            c.execute_batch("CREATE TABLE Z_11NOTES (Z_11FOLDERS INTEGER, Z_9NOTES INTEGER, PRIMARY KEY (Z_11FOLDERS, Z_9NOTES));")?;
        }
        crate::db::core_data_tables(
            c,
            &[
                (ENT_NOTE, "ICNote", 10 + self.notes.len() as i64),
                (ENT_ACCOUNT, "ICAccount", 1),
                (ENT_FOLDER, "ICFolder", 4),
                (19, "ICNoteData", self.notes.len() as i64),
            ],
            "1E9C6B0A-3F7D-4B8E-A2C5-7D0F3E1B9A64",
        )?;
        let acc = Self::account_column(ios);
        let created_col = if ios.major >= 15 {
            "ZCREATIONDATE3"
        } else {
            "ZCREATIONDATE1"
        };
        c.execute(
            "INSERT INTO ZICCLOUDSYNCINGOBJECT (Z_PK, Z_ENT, Z_OPT, ZIDENTIFIER, ZNAME) VALUES (1, ?1, 1, ?2, ?3)",
            params![ENT_ACCOUNT, "8A7C0B3E-5D41-4F2A-9E6B-1C3D5F7A9B0D", self.account],
        )?;
        for (pk, title) in &self.folders {
            c.execute(
                &format!(
                    "INSERT INTO ZICCLOUDSYNCINGOBJECT (Z_PK, Z_ENT, Z_OPT, ZIDENTIFIER, ZTITLE2, {acc}) VALUES (?1, ?2, 1, ?3, ?4, 1)"
                ),
                params![pk, ENT_FOLDER, rng::uuid(*pk as u64 ^ 0xF0), title],
            )?;
        }
        for (i, n) in self.notes.iter().enumerate() {
            let data_pk = i as i64 + 1;
            let snippet = snippet(&n.text);
            c.execute(
                &format!(
                    "INSERT INTO ZICCLOUDSYNCINGOBJECT (Z_PK, Z_ENT, Z_OPT, ZIDENTIFIER, ZMARKEDFORDELETION,
                     ZISPASSWORDPROTECTED, ZISPINNED, ZFOLDER, ZNOTEDATA, {created_col}, ZMODIFICATIONDATE1, ZTITLE1,
                     ZSNIPPET, {acc}) VALUES (?1, ?2, 1, ?3, 0, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1)"
                ),
                params![
                    n.pk,
                    ENT_NOTE,
                    n.identifier,
                    n.pinned,
                    n.folder,
                    data_pk,
                    to_cocoa(n.created) as f64,
                    to_cocoa(n.modified) as f64,
                    n.title,
                    snippet,
                ],
            )?;
            c.execute(
                "INSERT INTO ZICNOTEDATA (Z_PK, Z_ENT, Z_OPT, ZNOTE, ZDATA) VALUES (?1, 19, 1, ?2, ?3)",
                params![data_pk, n.pk, note_zdata(&n.text)],
            )?;
        }
        Ok(())
    }
}

impl Notes {
    /// Writes these records as the legacy (iOS ≤ 8) `notes.sqlite`: folders become `ZSTORE`
    /// rows (same Z_PK), notes keep their Z_PK, bodies are HTML ([`legacy_body_html`]), dates
    /// Cocoa seconds. There is no pinning in that generation.
    pub fn write_legacy(&self, c: &Connection) -> rusqlite::Result<()> {
        c.execute_batch(
            "CREATE TABLE ZACCOUNT (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
                ZDEFAULTSTORE INTEGER, ZACCOUNTIDENTIFIER VARCHAR, ZNAME VARCHAR);
             CREATE TABLE ZSTORE (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
                ZACCOUNT INTEGER, ZEXTERNALIDENTIFIER VARCHAR, ZNAME VARCHAR, ZSYNCANCHOR VARCHAR);
             CREATE TABLE ZNOTE (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
                ZCONTAINSCJK INTEGER, ZCONTENTTYPE INTEGER, ZDELETEDFLAG INTEGER, ZEXTERNALFLAGS INTEGER,
                ZEXTERNALSERVERINTID INTEGER, ZINTEGERID INTEGER, ZISBOOKKEEPINGENTRY INTEGER,
                ZBODY INTEGER, ZSTORE INTEGER, ZCREATIONDATE TIMESTAMP, ZMODIFICATIONDATE TIMESTAMP,
                ZAUTHOR VARCHAR, ZGUID VARCHAR, ZSERVERID VARCHAR, ZSUMMARY VARCHAR, ZTITLE VARCHAR);
             CREATE TABLE ZNOTEBODY (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
                ZOWNER INTEGER, ZCONTENT VARCHAR, ZEXTERNALCONTENTREF VARCHAR, ZEXTERNALREPRESENTATION BLOB);
             CREATE TABLE ZNOTEATTACHMENT (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
                ZNOTE INTEGER, ZCONTENTID VARCHAR, ZFILENAME VARCHAR, ZMIMETYPE VARCHAR);
             CREATE INDEX ZNOTE_ZSTORE_INDEX ON ZNOTE (ZSTORE);
             CREATE INDEX ZNOTEBODY_ZOWNER_INDEX ON ZNOTEBODY (ZOWNER);",
        )?;
        crate::db::core_data_tables(
            c,
            &[
                (1, "Account", 1),
                (2, "Note", 10 + self.notes.len() as i64),
                (3, "NoteAttachment", 0),
                (4, "NoteBody", self.notes.len() as i64),
                (5, "Store", 4),
            ],
            "5B0F3C2A-8E1D-4A7B-9C6E-2D4F6A8B0C1E",
        )?;
        c.execute(
            "INSERT INTO ZACCOUNT (Z_PK, Z_ENT, Z_OPT, ZDEFAULTSTORE, ZACCOUNTIDENTIFIER, ZNAME)
             VALUES (1, 1, 1, ?1, ?2, ?3)",
            params![
                self.folders.first().map_or(0, |f| f.0),
                "8A7C0B3E-5D41-4F2A-9E6B-1C3D5F7A9B0D",
                self.account
            ],
        )?;
        for (pk, title) in &self.folders {
            c.execute(
                "INSERT INTO ZSTORE (Z_PK, Z_ENT, Z_OPT, ZACCOUNT, ZEXTERNALIDENTIFIER, ZNAME)
                 VALUES (?1, 5, 1, 1, ?2, ?3)",
                params![pk, rng::uuid(*pk as u64 ^ 0xF0), title],
            )?;
        }
        for (i, n) in self.notes.iter().enumerate() {
            let body_pk = i as i64 + 1;
            let summary = snippet(&n.text);
            c.execute(
                "INSERT INTO ZNOTE (Z_PK, Z_ENT, Z_OPT, ZCONTAINSCJK, ZCONTENTTYPE, ZDELETEDFLAG,
                 ZEXTERNALFLAGS, ZINTEGERID, ZISBOOKKEEPINGENTRY, ZBODY, ZSTORE, ZCREATIONDATE,
                 ZMODIFICATIONDATE, ZAUTHOR, ZGUID, ZSUMMARY, ZTITLE)
                 VALUES (?1, 2, 1, 0, 0, 0, 0, ?1, 0, ?2, ?3, ?4, ?5, NULL, ?6, ?7, ?8)",
                params![
                    n.pk,
                    body_pk,
                    n.folder,
                    to_cocoa(n.created) as f64,
                    to_cocoa(n.modified) as f64,
                    n.identifier,
                    summary,
                    n.title,
                ],
            )?;
            c.execute(
                "INSERT INTO ZNOTEBODY (Z_PK, Z_ENT, Z_OPT, ZOWNER, ZCONTENT) VALUES (?1, 4, 1, ?2, ?3)",
                params![body_pk, n.pk, legacy_body_html(&n.text)],
            )?;
        }
        Ok(())
    }

    /// Builds the legacy `notes.sqlite` ([`Notes::write_legacy`]) at `path` (reused when the
    /// file exists, like every database of the phone's cache); returns its size.
    pub fn build_legacy(&self, path: &std::path::Path) -> Result<u64, crate::error::PhoneError> {
        crate::db::build(path, |c| self.write_legacy(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn zdata_is_gzip_of_proto_with_text() {
        let z = note_zdata("Groceries\n- milk");
        assert_eq!(&z[..2], &[0x1f, 0x8b]);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        assert_eq!(out, note_proto("Groceries\n- milk"));
        // NoteStoreProto.document (field 2, wire 2) first.
        assert_eq!(out[0], 0x12);
        assert!(out.windows(16).any(|w| w == b"Groceries\n- milk"));
    }

    #[test]
    fn legacy_bodies_are_html_lines() {
        assert_eq!(
            legacy_body_html("Plan <A & B>\n\n- \"go\""),
            "<div>Plan &lt;A &amp; B&gt;</div><div><br></div><div>- &quot;go&quot;</div>"
        );
    }

    #[test]
    fn varints() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xAC, 0x02]);
    }
}
