//! WhatsApp: `AppDomainGroup-group.net.whatsapp.WhatsApp.shared/ChatStorage.sqlite` —
//! `ZWACHATSESSION` (chats), `ZWAMESSAGE` (Cocoa seconds), `ZWAMEDIAITEM` (`ZMEDIALOCALPATH`
//! relative to `Message/` in the same domain), `ZWAGROUPMEMBER`.

use iosnap_format::Backup;
use serde::Serialize;

use crate::error::{Error, Result, SqlContext};
use crate::page::Pager;
use crate::source::{DbLocation, Source};
use crate::value::{flag, get, int, nonempty, real};

/// The WhatsApp domain.
pub const DOMAIN: &str = "AppDomainGroup-group.net.whatsapp.WhatsApp.shared";

/// The chat database.
pub const CHAT_STORAGE: DbLocation = DbLocation {
    dataset: "WhatsApp",
    domain: DOMAIN,
    relative_path: "ChatStorage.sqlite",
};

/// A chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    /// Z_PK.
    pub pk: i64,
    /// The other party's or the group's JID.
    pub contact_jid: Option<String>,
    /// Display name.
    pub partner_name: Option<String>,
    /// 0 one-to-one, 1 group.
    pub session_type: Option<i64>,
    /// Group members' JIDs.
    pub members: Vec<String>,
}

/// A message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaMessage {
    /// Z_PK.
    pub pk: i64,
    /// Chat Z_PK.
    pub session: Option<i64>,
    /// Sent by the owner.
    pub is_from_me: bool,
    /// Sender JID (received messages).
    pub from_jid: Option<String>,
    /// Sender's WhatsApp display name, if recorded.
    pub push_name: Option<String>,
    /// Text.
    pub text: Option<String>,
    /// Sent, Unix seconds.
    #[serde(serialize_with = "crate::time::opt_rfc3339::serialize")]
    pub date: Option<i64>,
    /// `ZSTANZAID`.
    pub stanza_id: Option<String>,
    /// 0 text, 1 image, 2 video, 3 audio …
    pub message_type: Option<i64>,
    /// Starred.
    pub starred: bool,
    /// Media path in [`DOMAIN`] (`Message/…`), `None` when absent or unsafe.
    pub media_path: Option<String>,
    /// Whether the message had a media path that was unsafe (`..`, absolute).
    pub media_unsafe: bool,
}

/// The chat store, opened.
#[derive(Debug)]
pub struct WhatsAppDb {
    src: Source,
    sql: String,
}

fn media_path(p: &str) -> Option<String> {
    let p = p.trim();
    let rel = p.strip_prefix("Message/").unwrap_or(p);
    (!rel.starts_with('/')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0')))
    .then(|| format!("Message/{rel}"))
}

impl WhatsAppDb {
    /// Opens ChatStorage.sqlite of a backup.
    pub fn open(backup: &Backup) -> Result<WhatsAppDb> {
        Self::from_source(Source::open(backup, CHAT_STORAGE)?)
    }

    /// Builds on an opened database; [`Error::UnknownSchema`] without `ZWAMESSAGE`.
    pub fn from_source(src: Source) -> Result<WhatsAppDb> {
        src.require_table("ZWAMESSAGE")?;
        let s = src.schema();
        if !s.has_column("ZWAMESSAGE", "ZCHATSESSION") {
            return Err(Error::UnknownSchema {
                dataset: src.dataset(),
                file: src.file().to_string(),
                detail: "ZWAMESSAGE has no ZCHATSESSION".into(),
            });
        }
        let c = |n: &str| s.col("ZWAMESSAGE", "m", n);
        let media = if s.has_column("ZWAMESSAGE", "ZMEDIAITEM")
            && s.has_column("ZWAMEDIAITEM", "ZMEDIALOCALPATH")
        {
            "(SELECT i.ZMEDIALOCALPATH FROM ZWAMEDIAITEM i WHERE i.Z_PK = m.ZMEDIAITEM)"
        } else {
            "NULL"
        };
        let sql = format!(
            "SELECT m.Z_PK, m.ZCHATSESSION, {}, {}, {}, {}, {}, {}, {}, {}, {media} FROM ZWAMESSAGE m
             WHERE m.ZCHATSESSION = ?3 AND m.Z_PK > ?1 ORDER BY m.Z_PK LIMIT ?2",
            c("ZISFROMME"),
            c("ZFROMJID"),
            c("ZPUSHNAME"),
            c("ZTEXT"),
            c("ZMESSAGEDATE"),
            c("ZSTANZAID"),
            c("ZMESSAGETYPE"),
            c("ZSTARRED"),
        );
        Ok(WhatsAppDb { src, sql })
    }

    /// Number of messages.
    pub fn count(&self) -> Result<u64> {
        Ok(self.src.count("ZWAMESSAGE")?.unwrap_or(0))
    }

    /// The chats with their members (small).
    pub fn sessions(&self) -> Result<Vec<Session>> {
        let s = self.src.schema();
        let file = self.src.file();
        let mut v = Vec::new();
        if s.has_table("ZWACHATSESSION") {
            let c = |n: &str| s.col("ZWACHATSESSION", "c", n);
            let sql = format!(
                "SELECT c.Z_PK, {}, {}, {} FROM ZWACHATSESSION c ORDER BY c.Z_PK",
                c("ZCONTACTJID"),
                c("ZPARTNERNAME"),
                c("ZSESSIONTYPE")
            );
            let mut st = self.src.conn().prepare(&sql).db(file)?;
            let mut rows = st.query([]).db(file)?;
            while let Some(r) = rows.next().db(file)? {
                v.push(Session {
                    pk: int(get(r, 0)).unwrap_or(0),
                    contact_jid: nonempty(get(r, 1)),
                    partner_name: nonempty(get(r, 2)),
                    session_type: int(get(r, 3)),
                    members: Vec::new(),
                });
            }
        }
        if s.has_column("ZWAGROUPMEMBER", "ZCHATSESSION")
            && s.has_column("ZWAGROUPMEMBER", "ZMEMBERJID")
        {
            let mut st = self
                .src
                .conn()
                .prepare("SELECT ZCHATSESSION, ZMEMBERJID FROM ZWAGROUPMEMBER ORDER BY Z_PK")
                .db(file)?;
            let mut rows = st.query([]).db(file)?;
            while let Some(r) = rows.next().db(file)? {
                if let (Some(c), Some(j)) = (int(get(r, 0)), nonempty(get(r, 1)))
                    && let Some(sess) = v.iter_mut().find(|x| x.pk == c)
                {
                    sess.members.push(j);
                }
            }
        }
        // Chats referenced by messages but missing from ZWACHATSESSION.
        let mut st = self
            .src
            .conn()
            .prepare("SELECT DISTINCT ZCHATSESSION FROM ZWAMESSAGE WHERE ZCHATSESSION IS NOT NULL")
            .db(file)?;
        let mut rows = st.query([]).db(file)?;
        while let Some(r) = rows.next().db(file)? {
            if let Some(pk) = int(get(r, 0))
                && !v.iter().any(|x| x.pk == pk)
            {
                v.push(Session {
                    pk,
                    contact_jid: None,
                    partner_name: None,
                    session_type: None,
                    members: Vec::new(),
                });
            }
        }
        Ok(v)
    }

    /// The messages of one chat, Z_PK order, streamed page by page.
    pub fn messages(&self, session: i64) -> WaMessageIter<'_> {
        let map = |r: &rusqlite::Row<'_>| {
            let raw = nonempty(get(r, 10));
            let media = raw.as_deref().and_then(media_path);
            WaMessage {
                pk: int(get(r, 0)).unwrap_or(0),
                session: int(get(r, 1)),
                is_from_me: flag(get(r, 2)),
                from_jid: nonempty(get(r, 3)),
                push_name: nonempty(get(r, 4)),
                text: nonempty(get(r, 5)),
                date: real(get(r, 6)).and_then(crate::time::cocoa_real_to_unix),
                stanza_id: nonempty(get(r, 7)),
                message_type: int(get(r, 8)),
                starred: flag(get(r, 9)),
                media_unsafe: raw.is_some() && media.is_none(),
                media_path: media,
            }
        };
        WaMessageIter(Pager::new(
            self.src.conn(),
            self.src.file(),
            self.sql.clone(),
            Some(session),
            map,
            |m: &WaMessage| m.pk,
        ))
    }
}

/// The iterator of [`WhatsAppDb::messages`].
pub struct WaMessageIter<'a>(Pager<'a, WaMessage>);

impl Iterator for WaMessageIter<'_> {
    type Item = Result<WaMessage>;
    fn next(&mut self) -> Option<Result<WaMessage>> {
        self.0.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_paths() {
        assert_eq!(
            media_path("Media/123@s.whatsapp.net/a/b/x.jpg").as_deref(),
            Some("Message/Media/123@s.whatsapp.net/a/b/x.jpg")
        );
        assert_eq!(media_path("../../x"), None);
        assert_eq!(media_path("/etc/passwd"), None);
    }
}
