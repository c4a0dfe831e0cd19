//! WhatsApp: `AppDomainGroup-group.net.whatsapp.WhatsApp.shared/ChatStorage.sqlite`
//! (`ZWACHATSESSION`, `ZWAMESSAGE`, `ZWAMEDIAITEM`, `ZWAGROUPMEMBER`; Cocoa seconds) and media at
//! `Message/Media/<jid>/<x>/<y>/<uuid>.jpg` (`ZMEDIALOCALPATH` is relative to `Message/`).

use rand::Rng;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::contacts::Contacts;
use super::messages::exif_date;
use super::words::{self, pick};
use super::{Ctx, DataFile, to_cocoa};
use crate::jpeg::{Picture, encode};
use crate::rng;

/// A chat (`ZWACHATSESSION`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Z_PK.
    pub pk: i64,
    /// e.g. `15552001234@s.whatsapp.net` or `120363…@g.us`.
    pub contact_jid: String,
    /// Display name.
    pub partner_name: String,
    /// 0 one-to-one, 1 group.
    pub session_type: i64,
    /// Group members' JIDs (groups only).
    pub members: Vec<String>,
}

/// A message (`ZWAMESSAGE`), optionally with a picture (`ZWAMEDIAITEM`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaMessage {
    /// Z_PK.
    pub pk: i64,
    /// ZCHATSESSION.
    pub session: i64,
    /// Sent by the owner.
    pub is_from_me: bool,
    /// ZFROMJID (None when from me).
    pub from_jid: Option<String>,
    /// ZTOJID (None when received).
    pub to_jid: Option<String>,
    /// Text (None for pure media).
    pub text: Option<String>,
    /// Unix seconds.
    pub date: i64,
    /// ZSTANZAID.
    pub stanza_id: String,
    /// 0 text, 1 image.
    pub message_type: i64,
    /// Media path relative to `Message/` (images only).
    pub media_path: Option<String>,
    /// Media size (images only).
    pub media_size: u64,
    /// Content key.
    pub key: u64,
}

/// WhatsApp's chat store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatsApp {
    /// Chats.
    pub sessions: Vec<Session>,
    /// Messages in Z_PK order.
    pub messages: Vec<WaMessage>,
}

fn picture(m: &WaMessage) -> Picture {
    let c = |s: u32| ((m.key >> s) & 0xFF) as u8;
    Picture {
        width: 80,
        height: 80,
        from: [c(0), c(8), c(16)],
        to: [c(24), c(32), c(40)],
        exif_date: exif_date(m.date),
        model: "iPhone 14".into(),
        comment: m.stanza_id.clone(),
    }
}

impl WhatsApp {
    pub(crate) fn generate(ctx: &Ctx, count: u32, contacts: &Contacts) -> Self {
        let mut sessions: Vec<Session> = contacts
            .people
            .iter()
            .filter(|p| !p.phones.is_empty())
            .take(25)
            .enumerate()
            .map(|(i, p)| {
                let digits: String = p
                    .phones
                    .first()
                    .map(|x| x.1.as_str())
                    .unwrap_or("")
                    .chars()
                    .filter(|c| c.is_ascii_digit())
                    .collect();
                Session {
                    pk: i as i64 + 1,
                    contact_jid: format!("{digits}@s.whatsapp.net"),
                    partner_name: format!("{} {}", p.first, p.last),
                    session_type: 0,
                    members: Vec::new(),
                }
            })
            .collect();
        let one_to_one: Vec<String> = sessions.iter().map(|s| s.contact_jid.clone()).collect();
        if !one_to_one.is_empty() {
            for (g, name) in ["Neighbours 🏡", "Climbing crew"].iter().enumerate() {
                let mut r = rng::rng(ctx.seed, "wa-group", g as u64);
                let members = (0..r.gen_range(3..8))
                    .map(|_| pick(&mut r, &one_to_one).clone())
                    .collect();
                sessions.push(Session {
                    pk: sessions.len() as i64 + 1,
                    contact_jid: format!(
                        "1203630{:011}@g.us",
                        rng::key(ctx.seed, "wa-gid", g as u64) % 100_000_000_000
                    ),
                    partner_name: (*name).into(),
                    session_type: 1,
                    members,
                });
            }
        }
        let owner = "15550001111@s.whatsapp.net".to_string();
        let messages = if sessions.is_empty() {
            Vec::new()
        } else {
            (0..count)
                .map(|i| {
                    let mut r = rng::rng(ctx.seed, "wa-message", u64::from(i));
                    let s = &sessions[((r.gen_range(0.0f64..1.0).powi(2)) * sessions.len() as f64)
                        as usize
                        % sessions.len()];
                    let is_from_me = r.gen_bool(0.45);
                    let sender = if s.session_type == 1 && !s.members.is_empty() {
                        s.members[r.gen_range(0..s.members.len())].clone()
                    } else {
                        s.contact_jid.clone()
                    };
                    let date = ctx.timeline("wa-date", i, ctx.base.whatsapp_messages, 400);
                    let key = rng::key(ctx.seed, "wa-media", u64::from(i));
                    let stanza_id = format!("3EB0{:016X}", key);
                    let image = r.gen_bool(0.06);
                    let mut m = WaMessage {
                        pk: i64::from(i) + 1,
                        session: s.pk,
                        is_from_me,
                        from_jid: (!is_from_me).then_some(sender),
                        to_jid: if is_from_me {
                            Some(s.contact_jid.clone())
                        } else {
                            Some(owner.clone())
                        },
                        text: (!image || r.gen_bool(0.3))
                            .then(|| pick(&mut r, words::PHRASES).to_string()),
                        date,
                        stanza_id,
                        message_type: i64::from(image),
                        media_path: image.then(|| {
                            let uuid = rng::uuid(key);
                            format!(
                                "Media/{}/{:x}/{:x}/{uuid}.jpg",
                                s.contact_jid,
                                key & 0xF,
                                (key >> 4) & 0xF
                            )
                        }),
                        media_size: 0,
                        key,
                    };
                    if image {
                        m.media_size = encode(&picture(&m)).len() as u64;
                    }
                    m
                })
                .collect()
        };
        WhatsApp { sessions, messages }
    }

    /// Unix time of the newest message.
    pub fn last_change(&self) -> i64 {
        self.messages.iter().map(|m| m.date).max().unwrap_or(0)
    }

    pub(crate) fn files(&self, _ctx: &Ctx) -> Vec<DataFile> {
        self.messages
            .iter()
            .filter_map(|m| {
                let p = m.media_path.as_ref()?;
                Some(DataFile::small(
                    "AppDomainGroup-group.net.whatsapp.WhatsApp.shared",
                    format!("Message/{p}"),
                    encode(&picture(m)),
                    m.date,
                ))
            })
            .collect()
    }

    pub(crate) fn write(&self, c: &Connection) -> rusqlite::Result<()> {
        c.execute_batch(
            "CREATE TABLE ZWACHATSESSION (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, ZARCHIVED INTEGER,
                ZCONTACTABID INTEGER, ZFLAGS INTEGER, ZHIDDEN INTEGER, ZMESSAGECOUNTER INTEGER, ZREMOVED INTEGER,
                ZSESSIONTYPE INTEGER, ZUNREADCOUNT INTEGER, ZGROUPINFO INTEGER, ZLASTMESSAGE INTEGER,
                ZLASTMESSAGEDATE TIMESTAMP, ZCONTACTIDENTIFIER VARCHAR, ZCONTACTJID VARCHAR, ZETAG VARCHAR,
                ZLASTMESSAGETEXT VARCHAR, ZPARTNERNAME VARCHAR, ZSAVEDINPUT VARCHAR);
             CREATE TABLE ZWAMESSAGE (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
                ZCHILDMESSAGESDELIVEREDCOUNT INTEGER, ZCHILDMESSAGESPLAYEDCOUNT INTEGER, ZCHILDMESSAGESREADCOUNT INTEGER,
                ZDATAITEMVERSION INTEGER, ZDOCID INTEGER, ZENCRETRYCOUNT INTEGER, ZFILTEREDRECIPIENTCOUNT INTEGER,
                ZFLAGS INTEGER, ZGROUPEVENTTYPE INTEGER, ZISFROMME INTEGER, ZMESSAGEERRORSTATUS INTEGER,
                ZMESSAGESTATUS INTEGER, ZMESSAGETYPE INTEGER, ZSORT INTEGER, ZSPOTLIGHTSTATUS INTEGER,
                ZSTARRED INTEGER, ZCHATSESSION INTEGER, ZGROUPMEMBER INTEGER, ZLASTSESSION INTEGER,
                ZMEDIAITEM INTEGER, ZMESSAGEINFO INTEGER, ZPARENTMESSAGE INTEGER, ZMESSAGEDATE TIMESTAMP,
                ZSENTDATE TIMESTAMP, ZFROMJID VARCHAR, ZMEDIASECTIONID VARCHAR, ZPHASH VARCHAR, ZPUSHNAME VARCHAR,
                ZSTANZAID VARCHAR, ZTEXT VARCHAR, ZTOJID VARCHAR);
             CREATE TABLE ZWAMEDIAITEM (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
                ZCLOUDSTATUS INTEGER, ZFILESIZE INTEGER, ZMEDIAORIGIN INTEGER, ZMOVIEDURATION INTEGER,
                ZMESSAGE INTEGER, ZASPECTRATIO FLOAT, ZHACCURACY FLOAT, ZLATITUDE FLOAT, ZLONGITUDE FLOAT,
                ZMEDIAURLDATE TIMESTAMP, ZAUTHORNAME VARCHAR, ZCOLLECTIONNAME VARCHAR, ZMEDIALOCALPATH VARCHAR,
                ZMEDIAURL VARCHAR, ZTHUMBNAILLOCALPATH VARCHAR, ZTITLE VARCHAR, ZVCARDNAME VARCHAR,
                ZVCARDSTRING VARCHAR, ZXMPPTHUMBPATH VARCHAR, ZMEDIAKEY BLOB, ZMETADATA BLOB);
             CREATE TABLE ZWAGROUPMEMBER (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
                ZCONTACTABID INTEGER, ZISACTIVE INTEGER, ZISADMIN INTEGER, ZSENDERKEYSENT INTEGER,
                ZCHATSESSION INTEGER, ZRECENTGROUPCHAT INTEGER, ZCONTACTIDENTIFIER VARCHAR, ZCONTACTNAME VARCHAR,
                ZFIRSTNAME VARCHAR, ZMEMBERJID VARCHAR);
             CREATE INDEX ZWAMESSAGE_ZCHATSESSION_INDEX ON ZWAMESSAGE (ZCHATSESSION);",
        )?;
        crate::db::core_data_tables(
            c,
            &[
                (4, "WAChatSession", self.sessions.len() as i64),
                (9, "WAMessage", self.messages.len() as i64),
                (10, "WAMediaItem", self.messages.len() as i64),
                (6, "WAGroupMember", 0),
            ],
            "9E1D3C5B-7A90-4F2E-8D6C-4B3A2F1E0D9C",
        )?;
        let mut member_pk = 0;
        for s in &self.sessions {
            let last = self.messages.iter().rev().find(|m| m.session == s.pk);
            c.execute(
                "INSERT INTO ZWACHATSESSION (Z_PK, Z_ENT, Z_OPT, ZARCHIVED, ZHIDDEN, ZMESSAGECOUNTER, ZREMOVED,
                 ZSESSIONTYPE, ZUNREADCOUNT, ZLASTMESSAGE, ZLASTMESSAGEDATE, ZCONTACTJID, ZLASTMESSAGETEXT, ZPARTNERNAME)
                 VALUES (?1, 4, 1, 0, 0, ?2, 0, ?3, 0, ?4, ?5, ?6, ?7, ?8)",
                params![
                    s.pk,
                    self.messages.iter().filter(|m| m.session == s.pk).count() as i64,
                    s.session_type,
                    last.map(|m| m.pk),
                    last.map(|m| to_cocoa(m.date) as f64),
                    s.contact_jid,
                    last.and_then(|m| m.text.clone()),
                    s.partner_name,
                ],
            )?;
            for jid in &s.members {
                member_pk += 1;
                c.execute(
                    "INSERT INTO ZWAGROUPMEMBER (Z_PK, Z_ENT, Z_OPT, ZISACTIVE, ZISADMIN, ZCHATSESSION, ZMEMBERJID)
                     VALUES (?1, 6, 1, 1, 0, ?2, ?3)",
                    params![member_pk, s.pk, jid],
                )?;
            }
        }
        let mut media_pk = 0;
        for m in &self.messages {
            let media = match &m.media_path {
                Some(p) => {
                    media_pk += 1;
                    c.execute(
                        "INSERT INTO ZWAMEDIAITEM (Z_PK, Z_ENT, Z_OPT, ZFILESIZE, ZMESSAGE, ZLATITUDE, ZLONGITUDE,
                         ZMEDIALOCALPATH) VALUES (?1, 10, 1, ?2, ?3, 0, 0, ?4)",
                        params![media_pk, m.media_size as i64, m.pk, p],
                    )?;
                    Some(media_pk)
                }
                None => None,
            };
            c.execute(
                "INSERT INTO ZWAMESSAGE (Z_PK, Z_ENT, Z_OPT, ZISFROMME, ZMESSAGESTATUS, ZMESSAGETYPE, ZSORT, ZSTARRED,
                 ZCHATSESSION, ZMEDIAITEM, ZMESSAGEDATE, ZSENTDATE, ZFROMJID, ZSTANZAID, ZTEXT, ZTOJID)
                 VALUES (?1, 9, 1, ?2, ?3, ?4, ?1, 0, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11)",
                params![
                    m.pk,
                    m.is_from_me,
                    if m.is_from_me { 8 } else { 0 },
                    m.message_type,
                    m.session,
                    media,
                    to_cocoa(m.date) as f64,
                    m.from_jid,
                    m.stanza_id,
                    m.text,
                    m.to_jid,
                ],
            )?;
        }
        Ok(())
    }
}
