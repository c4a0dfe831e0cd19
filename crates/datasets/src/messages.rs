//! Messages (SMS / iMessage / RCS): `HomeDomain/Library/SMS/sms.db`, attachments in
//! `MediaDomain/Library/SMS/Attachments/…` (the `attachment.filename` column holds
//! `~/Library/SMS/Attachments/…`).
//!
//! Columns differ across generations (`thread_originator_guid` from iOS 14, `date_edited`,
//! `date_retracted` from iOS 16, `associated_message_emoji` from iOS 18): each is selected only if
//! it exists. The body is `text`, or on iOS 16+ often only the `attributedBody` typedstream.

use std::collections::HashMap;

use iosnap_format::Backup;
use serde::Serialize;

use crate::error::{Result, SqlContext};
use crate::page::{Pager, id_list};
use crate::schema::Schema;
use crate::source::{DbLocation, Source};
use crate::time::apple_to_unix;
use crate::value::{flag, get, int, nonempty, text};

/// The messages database.
pub const SMS_DB: DbLocation = DbLocation {
    dataset: "Messages",
    domain: "HomeDomain",
    relative_path: "Library/SMS/sms.db",
};

/// The domain attachments live in.
pub const ATTACHMENT_DOMAIN: &str = "MediaDomain";

/// `attributedBody` blobs larger than this are not read (hostile databases).
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// A `handle` row: one phone number or e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handle {
    /// ROWID.
    pub rowid: i64,
    /// The address.
    pub id: String,
    /// "iMessage", "SMS", "RCS".
    pub service: Option<String>,
}

/// A `chat` row (a conversation) with its participants' handle ROWIDs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chat {
    /// ROWID.
    pub rowid: i64,
    /// GUID, e.g. `iMessage;-;+15552001234`.
    pub guid: Option<String>,
    /// 43 = group, 45 = one-to-one.
    pub style: Option<i64>,
    /// Address or group id.
    pub chat_identifier: Option<String>,
    /// Service name.
    pub service_name: Option<String>,
    /// Group name.
    pub display_name: Option<String>,
    /// Participants (`chat_handle_join`).
    pub handles: Vec<i64>,
}

impl Chat {
    /// Whether this is a group conversation.
    pub fn is_group(&self) -> bool {
        self.style == Some(43) || self.handles.len() > 1
    }
}

/// An attachment of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// ROWID.
    pub rowid: i64,
    /// `~/Library/SMS/Attachments/…` as stored (may be NULL when never downloaded).
    pub filename: Option<String>,
    /// MIME type.
    pub mime_type: Option<String>,
    /// Uniform type identifier.
    pub uti: Option<String>,
    /// The original file name.
    pub transfer_name: Option<String>,
    /// Size as recorded.
    pub total_bytes: Option<i64>,
}

impl Attachment {
    /// The backup relative path (in [`ATTACHMENT_DOMAIN`]) of the file, or `None` when the
    /// stored name is empty, not under the home folder, or tries to climb with `..`
    /// (which an exporter counts as an unsafe skip).
    pub fn backup_path(&self) -> Option<String> {
        let f = self.filename.as_deref()?.trim();
        let rel = f
            .strip_prefix("~/")
            .or_else(|| f.strip_prefix("/var/mobile/"))
            .or_else(|| f.strip_prefix("/private/var/mobile/"))
            .unwrap_or(f);
        let ok = !rel.is_empty()
            && !rel.starts_with('/')
            && !rel.contains('\0')
            && rel
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..");
        ok.then(|| rel.to_string())
    }

    /// The file name to show and to save as: the transfer name, else the stored name's last
    /// component.
    pub fn display_name(&self) -> String {
        self.transfer_name
            .clone()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| {
                self.filename
                    .as_deref()
                    .and_then(|f| f.rsplit('/').next())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| format!("attachment-{}", self.rowid))
    }
}

/// A tapback (reaction) that a message carries to another message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tapback {
    /// `associated_message_type`: 2000–2007 add, 3000–3007 remove.
    pub kind: i64,
    /// GUID of the message reacted to (from `p:<part>/<guid>` or `bp:<guid>`).
    pub target_guid: String,
    /// The part index reacted to, when given.
    pub target_part: Option<u32>,
    /// The custom emoji (iOS 18+, kind 2006).
    pub emoji: Option<String>,
}

impl Tapback {
    /// Whether the reaction is removed rather than added.
    pub fn is_removal(&self) -> bool {
        (3000..4000).contains(&self.kind)
    }

    /// "loved", "liked", "disliked", "laughed at", "emphasized", "questioned", "reacted ❤ to",
    /// "sent a sticker on".
    pub fn verb(&self) -> String {
        match self.kind % 1000 {
            0 => "loved".into(),
            1 => "liked".into(),
            2 => "disliked".into(),
            3 => "laughed at".into(),
            4 => "emphasized".into(),
            5 => "questioned".into(),
            6 => format!(
                "reacted {} to",
                self.emoji.as_deref().unwrap_or("with an emoji")
            ),
            _ => "sent a sticker on".into(),
        }
    }

    /// The emoji people see for the reaction.
    pub fn symbol(&self) -> String {
        match self.kind % 1000 {
            0 => "❤️".into(),
            1 => "👍".into(),
            2 => "👎".into(),
            3 => "😂".into(),
            4 => "‼️".into(),
            5 => "❓".into(),
            6 => self.emoji.clone().unwrap_or_else(|| "🙂".into()),
            _ => "🏷️".into(),
        }
    }

    /// Parses `associated_message_guid` + type (+ emoji); `None` when not a tapback.
    pub fn parse(kind: i64, guid: Option<&str>, emoji: Option<String>) -> Option<Tapback> {
        if !((2000..=2007).contains(&kind) || (3000..=3007).contains(&kind)) {
            return None;
        }
        let g = guid?.trim();
        let (part, target) = if let Some(rest) = g.strip_prefix("p:") {
            let (p, t) = rest.split_once('/')?;
            (p.parse().ok(), t)
        } else if let Some(t) = g.strip_prefix("bp:") {
            (None, t)
        } else {
            (None, g)
        };
        (!target.is_empty()).then(|| Tapback {
            kind,
            target_guid: target.to_string(),
            target_part: part,
            emoji,
        })
    }
}

/// One message row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// ROWID.
    pub rowid: i64,
    /// GUID.
    pub guid: Option<String>,
    /// The body: `text`, else the string of `attributedBody`.
    pub text: Option<String>,
    /// Subject line (MMS/iMessage subject).
    pub subject: Option<String>,
    /// "iMessage", "SMS", "RCS".
    pub service: Option<String>,
    /// Sender handle ROWID (0 for the owner in groups).
    pub handle_id: i64,
    /// Sent time, Unix seconds.
    #[serde(serialize_with = "crate::time::opt_rfc3339::serialize")]
    pub date: Option<i64>,
    /// Read time, Unix seconds.
    #[serde(serialize_with = "crate::time::opt_rfc3339::serialize")]
    pub date_read: Option<i64>,
    /// Sent by the phone's owner.
    pub is_from_me: bool,
    /// The conversation (first `chat_message_join` row).
    pub chat_id: Option<i64>,
    /// Tapback carried by this message.
    pub tapback: Option<Tapback>,
    /// Reply: GUID of the thread's first message (iOS 14+).
    pub thread_originator_guid: Option<String>,
    /// Last edit, Unix seconds (iOS 16+).
    #[serde(serialize_with = "crate::time::opt_rfc3339::serialize")]
    pub date_edited: Option<i64>,
    /// Unsent ("retracted") at, Unix seconds (iOS 16+).
    #[serde(serialize_with = "crate::time::opt_rfc3339::serialize")]
    pub date_retracted: Option<i64>,
    /// `item_type`: 0 normal, 1 participant change, 2 rename, 3 group action.
    pub item_type: i64,
    /// `group_action_type`.
    pub group_action_type: i64,
    /// New group name (renames).
    pub group_title: Option<String>,
    /// The other handle of a participant change.
    pub other_handle: i64,
    /// App balloon bundle id (links, Apple Pay …), if any.
    pub balloon_bundle_id: Option<String>,
    /// Attachments, in join order.
    pub attachments: Vec<Attachment>,
}

impl Message {
    /// Whether this row is a group event (rename, join, leave …) rather than a message.
    pub fn is_event(&self) -> bool {
        self.item_type != 0
    }

    /// A sentence for a group event; `actor` and `other` are names.
    pub fn event_text(&self, actor: &str, other: &str) -> String {
        match (self.item_type, self.group_action_type) {
            (1, 0) => format!("{actor} added {other} to the conversation"),
            (1, 1) => format!("{actor} removed {other} from the conversation"),
            (1, _) => format!("{actor} changed the participants"),
            (2, _) => format!(
                "{actor} named the conversation \u{201c}{}\u{201d}",
                self.group_title.as_deref().unwrap_or("")
            ),
            (3, 0) => format!("{actor} left the conversation"),
            (3, 1) => format!("{actor} changed the group photo"),
            (3, 2) => format!("{actor} removed the group photo"),
            (t, a) => format!("{actor}: group event {t}/{a}"),
        }
    }
}

/// The messages database, opened and probed.
#[derive(Debug)]
pub struct MessagesDb {
    src: Source,
    cols: String,
    has_chat_join: bool,
    has_attachments: bool,
}

fn message_cols(s: &Schema) -> String {
    let c = |n: &str| s.col("message", "m", n);
    [
        "m.ROWID".to_string(),
        c("guid"),
        c("text"),
        s.blob_col("message", "m", "attributedBody", MAX_BODY_BYTES),
        c("subject"),
        c("service"),
        c("handle_id"),
        c("date"),
        c("date_read"),
        c("is_from_me"),
        c("associated_message_type"),
        c("associated_message_guid"),
        c("associated_message_emoji"),
        c("thread_originator_guid"),
        c("date_edited"),
        c("date_retracted"),
        c("item_type"),
        c("group_action_type"),
        c("group_title"),
        c("other_handle"),
        c("balloon_bundle_id"),
    ]
    .join(", ")
}

/// The body without the placeholders iOS puts where an attachment (U+FFFC) or an app
/// balloon (U+FFFD) goes: attachments are listed on their own, and the characters would show as
/// boxes in every export. `None` when nothing else is left.
fn without_placeholders(body: String) -> Option<String> {
    if !body.contains(['\u{FFFC}', '\u{FFFD}']) {
        return Some(body);
    }
    let kept: String = body
        .chars()
        .filter(|c| !matches!(c, '\u{FFFC}' | '\u{FFFD}'))
        .collect();
    let kept = kept.trim();
    (!kept.is_empty()).then(|| kept.to_string())
}

fn map_message(r: &rusqlite::Row<'_>) -> Message {
    let t = |i| nonempty(get(r, i));
    let date = |i| int(get(r, i)).and_then(apple_to_unix);
    let body = t(2)
        .or_else(|| {
            crate::value::blob(get(r, 3))
                .and_then(|b| crate::typedstream::attributed_text(&b).ok())
                .filter(|s| !s.is_empty())
        })
        .and_then(without_placeholders);
    Message {
        rowid: int(get(r, 0)).unwrap_or(0),
        guid: t(1),
        text: body,
        subject: t(4),
        service: t(5),
        handle_id: int(get(r, 6)).unwrap_or(0),
        date: date(7),
        date_read: date(8),
        is_from_me: flag(get(r, 9)),
        tapback: Tapback::parse(int(get(r, 10)).unwrap_or(0), t(11).as_deref(), t(12)),
        thread_originator_guid: t(13),
        date_edited: date(14),
        date_retracted: date(15),
        item_type: int(get(r, 16)).unwrap_or(0),
        group_action_type: int(get(r, 17)).unwrap_or(0),
        group_title: t(18),
        other_handle: int(get(r, 19)).unwrap_or(0),
        balloon_bundle_id: t(20),
        chat_id: int(get(r, 21)),
        attachments: Vec::new(),
    }
}

impl MessagesDb {
    /// Opens `sms.db` of a backup.
    pub fn open(backup: &Backup) -> Result<MessagesDb> {
        Self::from_source(Source::open(backup, SMS_DB)?)
    }

    /// Builds on an opened database. [`crate::Error::UnknownSchema`] without a `message` table.
    pub fn from_source(src: Source) -> Result<MessagesDb> {
        src.require_table("message")?;
        let s = src.schema();
        let cols = message_cols(s);
        let has_chat_join = s.has_column("chat_message_join", "chat_id")
            && s.has_column("chat_message_join", "message_id");
        let has_attachments = s.has_column("message_attachment_join", "message_id")
            && s.has_column("message_attachment_join", "attachment_id")
            && s.has_table("attachment");
        Ok(MessagesDb {
            src,
            cols,
            has_chat_join,
            has_attachments,
        })
    }

    /// The underlying database.
    pub fn source(&self) -> &Source {
        &self.src
    }

    /// Number of message rows.
    pub fn count_messages(&self) -> Result<u64> {
        Ok(self.src.count("message")?.unwrap_or(0))
    }

    /// All handles (small: one per address).
    pub fn handles(&self) -> Result<Vec<Handle>> {
        let s = self.src.schema();
        if !s.has_table("handle") {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT h.ROWID, {}, {} FROM handle h ORDER BY h.ROWID",
            s.col("handle", "h", "id"),
            s.col("handle", "h", "service")
        );
        let mut st = self.src.conn().prepare(&sql).db(self.src.file())?;
        let rows = st
            .query_map([], |r| {
                Ok(Handle {
                    rowid: int(get(r, 0)).unwrap_or(0),
                    id: text(get(r, 1)).unwrap_or_default(),
                    service: nonempty(get(r, 2)),
                })
            })
            .db(self.src.file())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .db(self.src.file())
    }

    /// All conversations with their participants (small: one per conversation).
    pub fn chats(&self) -> Result<Vec<Chat>> {
        let s = self.src.schema();
        if !s.has_table("chat") {
            return Ok(Vec::new());
        }
        let c = |n: &str| s.col("chat", "c", n);
        let sql = format!(
            "SELECT c.ROWID, {}, {}, {}, {}, {} FROM chat c ORDER BY c.ROWID",
            c("guid"),
            c("style"),
            c("chat_identifier"),
            c("service_name"),
            c("display_name")
        );
        let file = self.src.file();
        let mut st = self.src.conn().prepare(&sql).db(file)?;
        let mut chats = st
            .query_map([], |r| {
                Ok(Chat {
                    rowid: int(get(r, 0)).unwrap_or(0),
                    guid: nonempty(get(r, 1)),
                    style: int(get(r, 2)),
                    chat_identifier: nonempty(get(r, 3)),
                    service_name: nonempty(get(r, 4)),
                    display_name: nonempty(get(r, 5)),
                    handles: Vec::new(),
                })
            })
            .db(file)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db(file)?;
        if s.has_column("chat_handle_join", "chat_id")
            && s.has_column("chat_handle_join", "handle_id")
        {
            let pos: HashMap<i64, usize> = chats
                .iter()
                .enumerate()
                .map(|(i, c)| (c.rowid, i))
                .collect();
            let mut st = self
                .src
                .conn()
                .prepare("SELECT chat_id, handle_id FROM chat_handle_join ORDER BY ROWID")
                .db(file)?;
            let mut rows = st.query([]).db(file)?;
            while let Some(r) = rows.next().db(file)? {
                if let (Some(c), Some(h)) = (int(get(r, 0)), int(get(r, 1)))
                    && let Some(chat) = pos.get(&c).and_then(|&i| chats.get_mut(i))
                {
                    chat.handles.push(h);
                }
            }
        }
        Ok(chats)
    }

    /// Every message, ROWID order, streamed page by page.
    pub fn messages(&self) -> MessageIter<'_> {
        // The chat is filled per page (see `attach`): a correlated subquery per row would be
        // quadratic on databases without an index on chat_message_join.message_id.
        let sql = format!(
            "SELECT {}, NULL FROM message m WHERE m.ROWID > ?1 ORDER BY m.ROWID LIMIT ?2",
            self.cols
        );
        self.iter(sql, None)
    }

    /// The messages of one conversation, in arrival (ROWID) order, streamed page by page.
    /// Empty when the database has no `chat_message_join`.
    pub fn chat_messages(&self, chat_id: i64) -> MessageIter<'_> {
        let sql = if self.has_chat_join {
            format!(
                "SELECT {}, j.chat_id FROM chat_message_join j JOIN message m ON m.ROWID = j.message_id
                 WHERE j.chat_id = ?3 AND j.message_id > ?1 ORDER BY j.message_id LIMIT ?2",
                self.cols
            )
        } else {
            format!(
                "SELECT {}, NULL FROM message m WHERE 0 AND ?1 AND ?2 AND ?3",
                self.cols
            )
        };
        self.iter(sql, Some(chat_id))
    }

    /// Number of messages in no conversation (shown by exports as a separate group).
    pub fn count_orphans(&self) -> Result<u64> {
        if !self.has_chat_join {
            return self.count_messages();
        }
        let n: i64 = self
            .src
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM message m WHERE m.ROWID NOT IN
                 (SELECT message_id FROM chat_message_join WHERE message_id IS NOT NULL)",
                [],
                |r| r.get(0),
            )
            .db(self.src.file())?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Messages in no conversation, ROWID order.
    pub fn orphan_messages(&self) -> MessageIter<'_> {
        let cond = if self.has_chat_join {
            "m.ROWID NOT IN (SELECT message_id FROM chat_message_join WHERE message_id IS NOT NULL)"
        } else {
            "1"
        };
        let sql = format!(
            "SELECT {}, NULL FROM message m WHERE {cond} AND m.ROWID > ?1 ORDER BY m.ROWID LIMIT ?2",
            self.cols
        );
        self.iter(sql, None)
    }

    fn iter(&self, sql: String, fixed: Option<i64>) -> MessageIter<'_> {
        let pager = Pager::new(
            self.src.conn(),
            self.src.file(),
            sql,
            fixed,
            map_message,
            |m: &Message| m.rowid,
        )
        .with_enrich(Box::new(move |page: &mut [Message]| self.attach(page)));
        MessageIter(pager)
    }

    fn attach(&self, page: &mut [Message]) -> Result<()> {
        if page.is_empty() {
            return Ok(());
        }
        let pos: HashMap<i64, usize> = page.iter().enumerate().map(|(i, m)| (m.rowid, i)).collect();
        let file = self.src.file();
        if self.has_chat_join && page.iter().any(|m| m.chat_id.is_none()) {
            // One query per page: the IN list is hashed, so this is one scan of the join table
            // even without an index on message_id. The lowest chat id wins (rows come last).
            let sql = format!(
                "SELECT message_id, chat_id FROM chat_message_join WHERE message_id IN ({})
                 ORDER BY chat_id DESC",
                id_list(page.iter().map(|m| m.rowid))
            );
            let mut st = self.src.conn().prepare(&sql).db(file)?;
            let mut rows = st.query([]).db(file)?;
            while let Some(r) = rows.next().db(file)? {
                if let Some(m) = int(get(r, 0))
                    .and_then(|id| pos.get(&id))
                    .and_then(|&i| page.get_mut(i))
                {
                    m.chat_id = int(get(r, 1));
                }
            }
        }
        if !self.has_attachments {
            return Ok(());
        }
        let s = self.src.schema();
        let a = |n: &str| s.col("attachment", "a", n);
        let sql = format!(
            "SELECT j.message_id, a.ROWID, {}, {}, {}, {}, {} FROM message_attachment_join j
             JOIN attachment a ON a.ROWID = j.attachment_id WHERE j.message_id IN ({})
             ORDER BY j.message_id, j.ROWID",
            a("filename"),
            a("mime_type"),
            a("uti"),
            a("transfer_name"),
            a("total_bytes"),
            id_list(page.iter().map(|m| m.rowid))
        );
        let mut st = self.src.conn().prepare(&sql).db(file)?;
        let mut rows = st.query([]).db(file)?;
        while let Some(r) = rows.next().db(file)? {
            let Some(m) = int(get(r, 0))
                .and_then(|id| pos.get(&id))
                .and_then(|&i| page.get_mut(i))
            else {
                continue;
            };
            m.attachments.push(Attachment {
                rowid: int(get(r, 1)).unwrap_or(0),
                filename: nonempty(get(r, 2)),
                mime_type: nonempty(get(r, 3)),
                uti: nonempty(get(r, 4)),
                transfer_name: nonempty(get(r, 5)),
                total_bytes: int(get(r, 6)),
            });
        }
        Ok(())
    }
}

/// The iterator of [`MessagesDb::messages`] and [`MessagesDb::chat_messages`].
pub struct MessageIter<'a>(Pager<'a, Message>);

impl Iterator for MessageIter<'_> {
    type Item = Result<Message>;
    fn next(&mut self) -> Option<Result<Message>> {
        self.0.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_placeholders_are_not_text() {
        assert_eq!(without_placeholders("\u{FFFC}".into()), None);
        assert_eq!(without_placeholders("\u{FFFC} \u{FFFC}".into()), None);
        assert_eq!(
            without_placeholders("\u{FFFC}Look at this".into()).as_deref(),
            Some("Look at this")
        );
        assert_eq!(
            without_placeholders("a\u{FFFD}b".into()).as_deref(),
            Some("ab")
        );
        assert_eq!(
            without_placeholders(" plain ".into()).as_deref(),
            Some(" plain ")
        );
    }

    #[test]
    fn tapbacks_parse() {
        let t = Tapback::parse(2001, Some("p:0/ABC"), None).unwrap();
        assert_eq!((t.target_guid.as_str(), t.target_part), ("ABC", Some(0)));
        assert_eq!(t.verb(), "liked");
        assert!(
            Tapback::parse(3000, Some("bp:X"), None)
                .unwrap()
                .is_removal()
        );
        assert_eq!(Tapback::parse(0, Some("p:0/ABC"), None), None);
        assert_eq!(Tapback::parse(2000, Some("p:zz"), None), None);
        assert_eq!(Tapback::parse(2000, None, None), None);
    }

    #[test]
    fn attachment_paths() {
        let a = |f: &str| Attachment {
            rowid: 1,
            filename: Some(f.into()),
            mime_type: None,
            uti: None,
            transfer_name: None,
            total_bytes: None,
        };
        assert_eq!(
            a("~/Library/SMS/Attachments/ab/01/G/IMG.jpeg")
                .backup_path()
                .as_deref(),
            Some("Library/SMS/Attachments/ab/01/G/IMG.jpeg")
        );
        assert_eq!(
            a("/var/mobile/Library/SMS/x.jpg").backup_path().as_deref(),
            Some("Library/SMS/x.jpg")
        );
        assert_eq!(a("~/Library/../../etc/passwd").backup_path(), None);
        assert_eq!(a("/etc/passwd").backup_path(), None);
        assert_eq!(a("~/a//b").backup_path(), None);
        assert_eq!(a("~/a/b/IMG.jpeg").display_name(), "IMG.jpeg");
    }
}
