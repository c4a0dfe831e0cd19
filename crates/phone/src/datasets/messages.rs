//! Messages: `HomeDomain/Library/SMS/sms.db`, attachments in
//! `MediaDomain/Library/SMS/Attachments/<xx>/<yy>/<GUID>/<file>`.
//!
//! Two schema generations: before iOS 16 (`text` always set, no edit/unsend columns) and iOS 16+
//! (`date_edited`, `date_retracted`, `message_summary_info`, `chat_recoverable_message_join`, and
//! `text` often NULL with the body only in `attributedBody`). `thread_originator_guid` appears
//! from iOS 14, `associated_message_emoji` from iOS 18. Dates are nanoseconds since 2001 (iOS 11+).

use rand::Rng;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::contacts::Contacts;
use super::words::{self, pick};
use super::{Ctx, DataFile, IosVersion, to_cocoa};
use crate::jpeg::{Picture, encode};
use crate::rng;

/// A `handle` row: one phone number or e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handle {
    /// ROWID.
    pub rowid: i64,
    /// The address (E.164 phone number or e-mail).
    pub id: String,
    /// "iMessage" or "SMS".
    pub service: String,
}

/// A `chat` row with its participants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    /// ROWID.
    pub rowid: i64,
    /// e.g. `iMessage;-;+15552001234`, `iMessage;+;chat123…` for groups.
    pub guid: String,
    /// 45 = one-to-one, 43 = group.
    pub style: i64,
    /// The identifier (address or chat id).
    pub chat_identifier: String,
    /// Service name.
    pub service_name: String,
    /// Group name, if any.
    pub display_name: Option<String>,
    /// Participant handle ROWIDs (`chat_handle_join`).
    pub handles: Vec<i64>,
}

/// A `message` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// ROWID.
    pub rowid: i64,
    /// GUID (uppercase UUID).
    pub guid: String,
    /// The body text (also encoded into `attributedBody`).
    pub text: String,
    /// Whether the `text` column is NULL (iOS 16+: body only in `attributedBody`).
    pub text_column_null: bool,
    /// Sender handle ROWID (0 when sent by the owner in a group).
    pub handle_id: i64,
    /// "iMessage" or "SMS".
    pub service: String,
    /// Sent time, Unix seconds (stored as nanoseconds since 2001).
    pub date: i64,
    /// Read time, Unix seconds, 0 if unread.
    pub date_read: i64,
    /// Sent by the phone's owner.
    pub is_from_me: bool,
    /// Chat ROWID (`chat_message_join`).
    pub chat_id: i64,
    /// Attachment ROWID, if the message carries one.
    pub attachment_id: Option<i64>,
    /// Tapback: (associated_message_type 2000–2005, target guid `"p:0/<guid>"`).
    pub tapback: Option<(i64, String)>,
    /// Reply thread originator GUID (iOS 14+).
    pub thread_originator_guid: Option<String>,
    /// Edit time, Unix seconds (iOS 16+), 0 if never edited.
    pub date_edited: i64,
}

/// An `attachment` row; the file is a real JPEG in MediaDomain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// ROWID.
    pub rowid: i64,
    /// GUID.
    pub guid: String,
    /// `~/Library/SMS/Attachments/xx/yy/GUID/IMG_nnnn.jpeg`.
    pub filename: String,
    /// "image/jpeg".
    pub mime_type: String,
    /// "public.jpeg".
    pub uti: String,
    /// Original file name.
    pub transfer_name: String,
    /// Size in bytes of the JPEG.
    pub total_bytes: i64,
    /// Creation time, Unix seconds.
    pub created: i64,
    /// Key of the picture content.
    pub picture_key: u64,
}

/// The messages database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Messages {
    /// Handles.
    pub handles: Vec<Handle>,
    /// Chats.
    pub chats: Vec<Chat>,
    /// Messages, ROWID order.
    pub messages: Vec<Message>,
    /// Attachments.
    pub attachments: Vec<Attachment>,
}

fn apple_ns(unix: i64) -> i64 {
    to_cocoa(unix).saturating_mul(1_000_000_000)
}

fn attachment_picture(key: u64, created: i64, name: &str) -> Picture {
    let c = |s: u32| ((key >> s) & 0xFF) as u8;
    Picture {
        width: 96,
        height: 72,
        from: [c(0), c(8), c(16)],
        to: [c(24), c(32), c(40)],
        exif_date: exif_date(created),
        model: "iPhone 13".into(),
        comment: name.to_string(),
    }
}

/// "YYYY:MM:DD HH:MM:SS" (UTC) for a Unix time, for EXIF.
pub(crate) fn exif_date(unix: i64) -> String {
    let (y, m, d, hh, mm, ss) = civil(unix);
    format!("{y:04}:{m:02}:{d:02} {hh:02}:{mm:02}:{ss:02}")
}

/// Unix seconds → (year, month, day, hour, minute, second) UTC (Howard Hinnant's algorithm).
pub(crate) fn civil(unix: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        ((secs / 60) % 60) as u32,
        (secs % 60) as u32,
    )
}

impl Messages {
    pub(crate) fn generate(ctx: &Ctx, count: u32, contacts: &Contacts) -> Self {
        // Handles: the first phone number (or e-mail) of up to 60 contacts.
        let mut handles = Vec::new();
        for p in contacts.people.iter().take(60) {
            let id = if let Some((_, num)) = p.phones.first() {
                let digits: String = num.chars().filter(|c| c.is_ascii_digit()).collect();
                format!("+{digits}")
            } else if let Some((_, mail)) = p.emails.first() {
                mail.clone()
            } else {
                continue;
            };
            let service = if rng::unit(rng::key(ctx.seed, "handle-svc", p.rowid as u64)) < 0.8 {
                "iMessage"
            } else {
                "SMS"
            };
            handles.push(Handle {
                rowid: handles.len() as i64 + 1,
                id,
                service: service.into(),
            });
        }
        if handles.is_empty() {
            handles.push(Handle {
                rowid: 1,
                id: "+15550000000".into(),
                service: "SMS".into(),
            });
        }
        let mut chats: Vec<Chat> = handles
            .iter()
            .map(|h| Chat {
                rowid: h.rowid,
                guid: format!("{};-;{}", h.service, h.id),
                style: 45,
                chat_identifier: h.id.clone(),
                service_name: h.service.clone(),
                display_name: None,
                handles: vec![h.rowid],
            })
            .collect();
        for (g, name) in ["Family 👨‍👩‍👧", "Weekend plans", "Book club"]
            .iter()
            .enumerate()
        {
            let mut r = rng::rng(ctx.seed, "group-chat", g as u64);
            let n = r.gen_range(3..6).min(handles.len());
            let members: Vec<i64> = rand::seq::index::sample(&mut r, handles.len(), n)
                .into_iter()
                .map(|i| handles[i].rowid)
                .collect();
            let ident = format!(
                "chat{:018}",
                rng::key(ctx.seed, "chat-id", g as u64) % 1_000_000_000_000_000_000
            );
            chats.push(Chat {
                rowid: chats.len() as i64 + 1,
                guid: format!("iMessage;+;{ident}"),
                style: 43,
                chat_identifier: ident,
                service_name: "iMessage".into(),
                display_name: Some((*name).into()),
                handles: members,
            });
        }
        let mut messages: Vec<Message> = Vec::with_capacity(count as usize);
        let mut attachments = Vec::new();
        for i in 0..count {
            let mut r = rng::rng(ctx.seed, "message", u64::from(i));
            // Zipf-ish: a few chats get most messages.
            let ci = ((r.gen_range(0.0f64..1.0).powi(3)) * chats.len() as f64) as usize;
            let chat = &chats[ci.min(chats.len() - 1)];
            let is_from_me = r.gen_bool(0.45);
            let handle_id = if is_from_me && chat.style == 43 {
                0
            } else {
                chat.handles[r.gen_range(0..chat.handles.len())]
            };
            let date = ctx.timeline("message-date", i, ctx.base.messages, 730);
            let text = pick(&mut r, words::PHRASES).to_string();
            let guid = rng::uuid(rng::key(ctx.seed, "message-guid", u64::from(i)));
            let attachment_id = if r.gen_bool(0.04) {
                let rowid = attachments.len() as i64 + 1;
                let aguid = rng::uuid(rng::key(ctx.seed, "attachment-guid", u64::from(i)));
                let key = rng::key(ctx.seed, "attachment", u64::from(i));
                let name = format!("IMG_{:04}.jpeg", 1000 + (key % 9000));
                let bytes = encode(&attachment_picture(key, date, &name));
                let xx = format!("{:02x}", key & 0xFF);
                let yy = format!("{:02}", (key >> 8) % 100);
                attachments.push(Attachment {
                    rowid,
                    filename: format!("~/Library/SMS/Attachments/{xx}/{yy}/{aguid}/{name}"),
                    guid: aguid,
                    mime_type: "image/jpeg".into(),
                    uti: "public.jpeg".into(),
                    transfer_name: name,
                    total_bytes: bytes.len() as i64,
                    created: date,
                    picture_key: key,
                });
                Some(rowid)
            } else {
                None
            };
            let tapback = (i > 0 && r.gen_bool(0.03)).then(|| {
                let target = &messages[r.gen_range(0..messages.len())];
                (2000 + r.gen_range(0..6), format!("p:0/{}", target.guid))
            });
            let thread_originator_guid = (ctx.ios.major >= 14 && i > 0 && r.gen_bool(0.02))
                .then(|| messages[r.gen_range(0..messages.len())].guid.clone());
            let date_edited = if ctx.ios.major >= 16 && is_from_me && r.gen_bool(0.02) {
                date + r.gen_range(5..600)
            } else {
                0
            };
            let text_column_null = ctx.ios.major >= 16 && r.gen_bool(0.5);
            messages.push(Message {
                rowid: i64::from(i) + 1,
                guid,
                text,
                text_column_null,
                handle_id,
                service: chat.service_name.clone(),
                date,
                date_read: if is_from_me {
                    0
                } else {
                    date + r.gen_range(10..7200)
                },
                is_from_me,
                chat_id: chat.rowid,
                attachment_id,
                tapback,
                thread_originator_guid,
                date_edited,
            });
        }
        Messages {
            handles,
            chats,
            messages,
            attachments,
        }
    }

    /// Unix time of the newest message.
    pub fn last_change(&self) -> i64 {
        self.messages
            .iter()
            .map(|m| m.date.max(m.date_edited))
            .max()
            .unwrap_or(0)
    }

    pub(crate) fn files(&self, ctx: &Ctx) -> Vec<DataFile> {
        self.attachments
            .iter()
            .map(|a| {
                let path = a.filename.trim_start_matches("~/").to_string();
                let bytes = encode(&attachment_picture(
                    a.picture_key,
                    a.created,
                    &a.transfer_name,
                ));
                let _ = ctx;
                DataFile::small("MediaDomain", path, bytes, a.created)
            })
            .collect()
    }

    pub(crate) fn write(&self, c: &Connection, ios: IosVersion) -> rusqlite::Result<()> {
        let modern = ios.major >= 16;
        let mut cols = String::from(
            "ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL, text TEXT, replace INTEGER DEFAULT 0,
             service_center TEXT, handle_id INTEGER DEFAULT 0, subject TEXT, country TEXT, attributedBody BLOB,
             version INTEGER DEFAULT 0, type INTEGER DEFAULT 0, service TEXT, account TEXT, account_guid TEXT,
             error INTEGER DEFAULT 0, date INTEGER, date_read INTEGER, date_delivered INTEGER,
             is_delivered INTEGER DEFAULT 0, is_finished INTEGER DEFAULT 0, is_emote INTEGER DEFAULT 0,
             is_from_me INTEGER DEFAULT 0, is_empty INTEGER DEFAULT 0, is_delayed INTEGER DEFAULT 0,
             is_auto_reply INTEGER DEFAULT 0, is_prepared INTEGER DEFAULT 0, is_read INTEGER DEFAULT 0,
             is_system_message INTEGER DEFAULT 0, is_sent INTEGER DEFAULT 0, has_dd_results INTEGER DEFAULT 0,
             cache_has_attachments INTEGER DEFAULT 0, item_type INTEGER DEFAULT 0, other_handle INTEGER DEFAULT 0,
             group_title TEXT, group_action_type INTEGER DEFAULT 0, share_status INTEGER DEFAULT 0,
             share_direction INTEGER DEFAULT 0, associated_message_guid TEXT,
             associated_message_type INTEGER DEFAULT 0, balloon_bundle_id TEXT, payload_data BLOB,
             expressive_send_style_id TEXT, associated_message_range_location INTEGER DEFAULT 0,
             associated_message_range_length INTEGER DEFAULT 0, destination_caller_id TEXT",
        );
        if ios.major >= 14 {
            cols.push_str(
                ", reply_to_guid TEXT, thread_originator_guid TEXT, thread_originator_part TEXT",
            );
        }
        if modern {
            cols.push_str(
                ", date_retracted INTEGER DEFAULT 0, date_edited INTEGER DEFAULT 0, message_summary_info BLOB,
                 part_count INTEGER DEFAULT 0, was_deduplicated INTEGER DEFAULT 0",
            );
        }
        if ios.major >= 18 {
            cols.push_str(", associated_message_emoji TEXT");
        }
        c.execute_batch(&format!(
            "CREATE TABLE _SqliteDatabaseProperties (key TEXT, value TEXT, UNIQUE(key));
             CREATE TABLE message ({cols});
             CREATE TABLE handle (ROWID INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, id TEXT NOT NULL, country TEXT,
                service TEXT NOT NULL, uncanonicalized_id TEXT, person_centric_id TEXT, UNIQUE (id, service));
             CREATE TABLE chat (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL, style INTEGER,
                state INTEGER, account_id TEXT, properties BLOB, chat_identifier TEXT, service_name TEXT,
                room_name TEXT, account_login TEXT, is_archived INTEGER DEFAULT 0, last_addressed_handle TEXT,
                display_name TEXT, group_id TEXT, is_filtered INTEGER DEFAULT 0, successful_query INTEGER,
                last_read_message_timestamp INTEGER DEFAULT 0);
             CREATE TABLE attachment (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL,
                created_date INTEGER DEFAULT 0, start_date INTEGER DEFAULT 0, filename TEXT, uti TEXT,
                mime_type TEXT, transfer_state INTEGER DEFAULT 0, is_outgoing INTEGER DEFAULT 0, user_info BLOB,
                transfer_name TEXT, total_bytes INTEGER DEFAULT 0, is_sticker INTEGER DEFAULT 0,
                sticker_user_info BLOB, attribution_info BLOB, hide_attachment INTEGER DEFAULT 0);
             CREATE TABLE chat_handle_join (chat_id INTEGER REFERENCES chat (ROWID) ON DELETE CASCADE,
                handle_id INTEGER REFERENCES handle (ROWID) ON DELETE CASCADE, UNIQUE(chat_id, handle_id));
             CREATE TABLE chat_message_join (chat_id INTEGER REFERENCES chat (ROWID) ON DELETE CASCADE,
                message_id INTEGER REFERENCES message (ROWID) ON DELETE CASCADE, message_date INTEGER DEFAULT 0,
                PRIMARY KEY (chat_id, message_id));
             CREATE TABLE message_attachment_join (message_id INTEGER REFERENCES message (ROWID) ON DELETE CASCADE,
                attachment_id INTEGER REFERENCES attachment (ROWID) ON DELETE CASCADE, UNIQUE(message_id, attachment_id));
             CREATE INDEX message_idx_handle ON message(handle_id, date);
             CREATE INDEX chat_message_join_idx_message_date_id_chat_id ON chat_message_join(chat_id, message_date, message_id);
             CREATE INDEX chat_message_join_idx_message_id_only ON chat_message_join(message_id);
             CREATE INDEX message_attachment_join_idx_message_id ON message_attachment_join(message_id);
             CREATE INDEX chat_handle_join_idx_handle_id ON chat_handle_join(handle_id);
             CREATE INDEX message_idx_date ON message(date);
             CREATE INDEX message_idx_handle_id ON message(handle_id);
             CREATE INDEX message_idx_associated_message2 ON message(associated_message_guid)
                WHERE associated_message_guid IS NOT NULL;
             INSERT INTO _SqliteDatabaseProperties VALUES ('_ClientVersion', '{}');",
            if modern { 17000 } else { 14006 }
        ))?;
        if ios.major >= 14 {
            // Apple's own index: reply lookups (imessage-exporter counts a message's replies
            // with it; without it each lookup scans the whole table).
            c.execute_batch(
                "CREATE INDEX message_idx_thread_originator_guid ON message(thread_originator_guid);",
            )?;
        }
        if modern {
            c.execute_batch(
                "CREATE TABLE chat_recoverable_message_join (chat_id INTEGER REFERENCES chat (ROWID) ON DELETE CASCADE,
                    message_id INTEGER REFERENCES message (ROWID) ON DELETE CASCADE, delete_date INTEGER,
                    ck_sync_state INTEGER DEFAULT 0, PRIMARY KEY (chat_id, message_id));",
            )?;
        }
        for h in &self.handles {
            c.execute(
                "INSERT INTO handle (ROWID, id, country, service, uncanonicalized_id) VALUES (?1, ?2, 'us', ?3, ?2)",
                params![h.rowid, h.id, h.service],
            )?;
        }
        for ch in &self.chats {
            c.execute(
                "INSERT INTO chat (ROWID, guid, style, state, chat_identifier, service_name, display_name, account_login)
                 VALUES (?1, ?2, ?3, 3, ?4, ?5, ?6, 'E:owner@icloud.com')",
                params![ch.rowid, ch.guid, ch.style, ch.chat_identifier, ch.service_name, ch.display_name],
            )?;
            for h in &ch.handles {
                c.execute(
                    "INSERT INTO chat_handle_join VALUES (?1, ?2)",
                    params![ch.rowid, h],
                )?;
            }
        }
        for a in &self.attachments {
            c.execute(
                "INSERT INTO attachment (ROWID, guid, created_date, filename, uti, mime_type, transfer_state,
                 transfer_name, total_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 5, ?7, ?8)",
                params![a.rowid, a.guid, to_cocoa(a.created), a.filename, a.uti, a.mime_type, a.transfer_name, a.total_bytes],
            )?;
        }
        let attachment_guids: std::collections::HashMap<i64, &str> = self
            .attachments
            .iter()
            .map(|a| (a.rowid, a.guid.as_str()))
            .collect();
        for m in &self.messages {
            // A real phone puts one U+FFFC (object replacement character) in the body where each
            // attachment goes, and names the attachment in that character's attributes; readers
            // such as imessage-exporter find attachments through them.
            let guid = m
                .attachment_id
                .and_then(|a| attachment_guids.get(&a).copied());
            let (stored, body) = match guid {
                Some(guid) => {
                    let stored = format!("{ATTACHMENT_CHAR}{}", m.text);
                    let body = attributed_body_with(&stored, &[guid]);
                    (stored, body)
                }
                None => (m.text.clone(), attributed_body(&m.text)),
            };
            let text = (!m.text_column_null).then_some(stored.as_str());
            let (assoc_type, assoc_guid) = match &m.tapback {
                Some((t, g)) => (*t, Some(g.as_str())),
                None => (0, None),
            };
            c.execute(
                "INSERT INTO message (ROWID, guid, text, handle_id, attributedBody, service, account, date, date_read,
                 date_delivered, is_delivered, is_finished, is_from_me, is_read, is_sent, cache_has_attachments,
                 associated_message_guid, associated_message_type)
                 VALUES (?1,?2,?3,?4,?5,?6,'E:owner@icloud.com',?7,?8,?9,1,1,?10,?11,?10,?12,?13,?14)",
                params![
                    m.rowid,
                    m.guid,
                    text,
                    m.handle_id,
                    body,
                    m.service,
                    apple_ns(m.date),
                    if m.date_read > 0 { apple_ns(m.date_read) } else { 0 },
                    apple_ns(m.date) + 1_500_000_000,
                    m.is_from_me,
                    m.is_from_me || m.date_read > 0,
                    m.attachment_id.is_some(),
                    assoc_guid,
                    assoc_type,
                ],
            )?;
            if let Some(t) = &m.thread_originator_guid {
                c.execute(
                    "UPDATE message SET thread_originator_guid = ?1, thread_originator_part = '0:0:0' WHERE ROWID = ?2",
                    params![t, m.rowid],
                )?;
            }
            if m.date_edited > 0 {
                c.execute(
                    "UPDATE message SET date_edited = ?1 WHERE ROWID = ?2",
                    params![apple_ns(m.date_edited), m.rowid],
                )?;
            }
            c.execute(
                "INSERT INTO chat_message_join (chat_id, message_id, message_date) VALUES (?1, ?2, ?3)",
                params![m.chat_id, m.rowid, apple_ns(m.date)],
            )?;
            if let Some(a) = m.attachment_id {
                c.execute(
                    "INSERT INTO message_attachment_join VALUES (?1, ?2)",
                    params![m.rowid, a],
                )?;
            }
        }
        Ok(())
    }
}

/// Appends a typedstream length/integer: one byte below 0x80, else 0x81 + i16 LE, 0x82 + i32 LE.
fn ts_int(out: &mut Vec<u8>, n: usize) {
    if n < 0x80 {
        out.push(n as u8);
    } else if n <= 0x7FFF {
        out.push(0x81);
        out.extend_from_slice(&(n as u16).to_le_bytes());
    } else {
        out.push(0x82);
        out.extend_from_slice(&(n as u32).to_le_bytes());
    }
}

/// The placeholder a real `message.text`/`attributedBody` holds for each attachment.
pub const ATTACHMENT_CHAR: char = '\u{FFFC}';

/// The `attributedBody` blob of a text-only message: an `NSAttributedString` archived as a
/// NeXTSTEP typedstream, one run over the whole text carrying `__kIMMessagePartAttributeName = 0`
/// (what Messages writes for a plain one-part message).
pub fn attributed_body(text: &str) -> Vec<u8> {
    attributed_body_with(text, &[])
}

/// The `attributedBody` blob as Messages writes it when the body holds attachments: every
/// U+FFFC in `text` is a one-character run whose attributes name the attachment
/// (`__kIMFileTransferGUIDAttributeName` = the `attachment.guid`, taken from `attachment_guids`
/// in order) and every stretch of other text is a run of its own; each run is one message part
/// (`__kIMMessagePartAttributeName` = 0, 1, …). Readers such as imessage-exporter find the
/// attachments of a message through exactly these attributes.
pub fn attributed_body_with(text: &str, attachment_guids: &[&str]) -> Vec<u8> {
    let mut runs: Vec<(usize, Option<&str>)> = Vec::new();
    let mut guids = attachment_guids.iter();
    let mut pending = 0usize;
    for ch in text.chars() {
        if ch == ATTACHMENT_CHAR {
            if pending > 0 {
                runs.push((pending, None));
                pending = 0;
            }
            runs.push((1, Some(guids.next().copied().unwrap_or_default())));
        } else {
            pending += ch.len_utf16();
        }
    }
    if pending > 0 || runs.is_empty() {
        runs.push((pending, None));
    }

    let mut w = Typedstream::new();
    w.shared("@");
    w.begin_object(&[("NSAttributedString", 0), ("NSObject", 0)]);
    w.shared("@");
    w.string_object(text);
    for (part, (len, guid)) in runs.iter().enumerate() {
        // Each run gets its own attribute dictionary (a new range index), as every part differs.
        w.shared("iI");
        ts_int(&mut w.out, part + 1);
        ts_int(&mut w.out, *len);
        w.shared("@");
        w.begin_object(&[("NSDictionary", 0), ("NSObject", 0)]);
        w.shared("i");
        ts_int(&mut w.out, if guid.is_some() { 2 } else { 1 });
        w.shared("@");
        w.string_object("__kIMMessagePartAttributeName");
        w.shared("@");
        w.number_object(part);
        if let Some(guid) = guid {
            w.shared("@");
            w.string_object("__kIMFileTransferGUIDAttributeName");
            w.shared("@");
            w.string_object(guid);
        }
        w.out.push(TS_END);
    }
    w.out.push(TS_END);
    w.out
}

const TS_START: u8 = 0x84;
const TS_EMPTY: u8 = 0x85;
const TS_END: u8 = 0x86;
const TS_REFERENCE: usize = 0x92;

/// The part of a typedstream writer an `attributedBody` needs. Type strings, class names and
/// classes are written once and referenced afterwards (a reference is one byte, `0x92 + index`
/// into the shared-string or the object table); objects are always written inline, so the
/// tables only ever hold the dozen entries of the first run and every index fits in a byte.
struct Typedstream {
    out: Vec<u8>,
    strings: std::collections::HashMap<String, usize>,
    classes: std::collections::HashMap<&'static str, usize>,
    objects: usize,
}

impl Typedstream {
    fn new() -> Self {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"\x04\x0bstreamtyped\x81\xe8\x03");
        Typedstream {
            out,
            strings: Default::default(),
            classes: Default::default(),
            objects: 0,
        }
    }

    fn reference(&mut self, index: usize) {
        self.out
            .push(u8::try_from(TS_REFERENCE + index).unwrap_or(u8::MAX));
    }

    /// A shared string (type encoding or class name): inline the first time, then referenced.
    fn shared(&mut self, s: &str) {
        if let Some(&i) = self.strings.get(s) {
            self.reference(i);
        } else {
            self.out.push(TS_START);
            ts_int(&mut self.out, s.len());
            self.out.extend_from_slice(s.as_bytes());
            let i = self.strings.len();
            self.strings.insert(s.to_owned(), i);
        }
    }

    /// Opens an object of the class chain `chain` (class first, root class last).
    fn begin_object(&mut self, chain: &[(&'static str, usize)]) {
        self.out.push(TS_START);
        self.objects += 1;
        for &(name, version) in chain {
            if let Some(&i) = self.classes.get(name) {
                self.reference(i);
                return;
            }
            self.out.push(TS_START);
            self.shared(name);
            ts_int(&mut self.out, version);
            self.classes.insert(name, self.objects);
            self.objects += 1;
        }
        self.out.push(TS_EMPTY);
    }

    fn string_object(&mut self, s: &str) {
        self.begin_object(&[("NSString", 1), ("NSObject", 0)]);
        self.shared("+");
        ts_int(&mut self.out, s.len());
        self.out.extend_from_slice(s.as_bytes());
        self.out.push(TS_END);
    }

    fn number_object(&mut self, n: usize) {
        self.begin_object(&[("NSNumber", 0), ("NSValue", 0), ("NSObject", 0)]);
        // NSValue archives its objCType as a C string ("i"), then the value of that type.
        self.shared("*");
        self.out.push(TS_START);
        self.objects += 1;
        self.shared("i");
        self.shared("i");
        ts_int(&mut self.out, n);
        self.out.push(TS_END);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(978_307_200), (2001, 1, 1, 0, 0, 0));
        assert_eq!(civil(1_709_210_096), (2024, 2, 29, 12, 34, 56));
        assert_eq!(exif_date(1_709_210_096), "2024:02:29 12:34:56");
    }

    /// The blob of a one-part text message, byte for byte as Messages writes it.
    #[test]
    fn attributed_body_of_plain_text_is_the_messages_layout() {
        let want = b"\x04\x0bstreamtyped\x81\xe8\x03\x84\x01@\x84\x84\x84\x12NSAttributedString\x00\x84\x84\x08NSObject\x00\x85\x92\x84\x84\x84\x08NSString\x01\x94\x84\x01+\x05Hello\x86\x84\x02iI\x01\x05\x92\x84\x84\x84\x0cNSDictionary\x00\x94\x84\x01i\x01\x92\x84\x96\x96\x1d__kIMMessagePartAttributeName\x86\x92\x84\x84\x84\x08NSNumber\x00\x84\x84\x07NSValue\x00\x94\x84\x01*\x84\x99\x99\x00\x86\x86\x86".to_vec();
        assert_eq!(attributed_body("Hello"), want);
    }

    /// An independent typedstream reader (crabstep, the one imessage-exporter uses) sees the
    /// text, one run per part, and the attachment GUID on the U+FFFC run.
    #[test]
    fn attributed_body_with_attachment_parses_with_crabstep() {
        use crabstep::TypedStreamDeserializer;
        use crabstep::deserializer::iter::Property;
        let text = "\u{FFFC}Look at this 😀";
        let blob = attributed_body_with(text, &["at_0_GUID-1"]);
        let mut ts = TypedStreamDeserializer::new(&blob);
        let mut props = ts.iter_root().expect("root");
        assert_eq!(
            props.next().as_ref().and_then(Property::as_string),
            Some(text)
        );
        let mut runs = Vec::new();
        while let Some(p) = props.next() {
            let Property::Group(g) = &p else {
                panic!("expected a range, got {p:?}")
            };
            let nums: Vec<String> = g.iter().map(|v| format!("{v:?}")).collect();
            let dict = props.next();
            let dict = dict
                .as_ref()
                .and_then(Property::as_dictionary)
                .expect("attributes");
            let part = dict
                .get("__kIMMessagePartAttributeName")
                .map(|v| format!("{v:?}"));
            let guid = dict
                .get("__kIMFileTransferGUIDAttributeName")
                .as_ref()
                .and_then(Property::as_string)
                .map(str::to_owned);
            runs.push((nums, part.is_some(), guid));
        }
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert_eq!(runs[0].2.as_deref(), Some("at_0_GUID-1"));
        assert!(runs[0].0[1].contains('1'), "{runs:?}");
        assert!(runs[1].2.is_none());
        // "Look at this " is 13 UTF-16 units, the emoji 2.
        assert!(runs[1].0[1].contains("15"), "{runs:?}");
        assert!(runs.iter().all(|r| r.1));
    }

    #[test]
    fn attributed_body_carries_text() {
        let b = attributed_body("Hello");
        assert!(b.starts_with(b"\x04\x0bstreamtyped"));
        assert!(b.windows(5).any(|w| w == b"Hello"));
        let long = "x".repeat(300);
        let b = attributed_body(&long);
        assert!(b.windows(3).any(|w| w == [0x81, 0x2c, 0x01]));
    }
}
