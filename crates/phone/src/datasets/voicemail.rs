//! Voicemail: `HomeDomain/Library/Voicemail/voicemail.db` (table `voicemail`, **Unix** seconds)
//! with `Library/Voicemail/<ROWID>.amr` audio (AMR-NB, `#!AMR\n` magic).

use rand::Rng;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::contacts::Contacts;
use super::{Ctx, DataFile};
use crate::media;
use crate::rng;

/// One `voicemail` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoicemailRecord {
    /// ROWID (also the .amr file name).
    pub rowid: i64,
    /// remote_uid.
    pub remote_uid: i64,
    /// Received, Unix seconds.
    pub date: i64,
    /// Caller number.
    pub sender: String,
    /// Duration in seconds.
    pub duration: i64,
    /// flags (3 = recent/unheard; 67 heard; 75 deleted).
    pub flags: i64,
    /// Audio size in bytes.
    pub size: u64,
    /// Content key.
    pub key: u64,
}

/// The voicemail box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voicemail {
    /// Voicemails in ROWID order.
    pub voicemails: Vec<VoicemailRecord>,
}

impl Voicemail {
    pub(crate) fn generate(ctx: &Ctx, count: u32, contacts: &Contacts) -> Self {
        let voicemails = (0..count)
            .map(|i| {
                let mut r = rng::rng(ctx.seed, "voicemail", u64::from(i));
                let sender = contacts
                    .people
                    .get(r.gen_range(0..contacts.people.len().max(1)))
                    .and_then(|p| p.phones.first())
                    .map(|(_, n)| {
                        format!(
                            "+{}",
                            n.chars().filter(|c| c.is_ascii_digit()).collect::<String>()
                        )
                    })
                    .unwrap_or_else(|| "+15550100000".into());
                let duration = r.gen_range(4..90);
                VoicemailRecord {
                    rowid: i64::from(i) + 1,
                    remote_uid: 1000 + i64::from(i),
                    date: ctx.timeline("voicemail-date", i, ctx.base.voicemails, 300),
                    sender,
                    duration,
                    flags: *[3i64, 67, 67, 75].get(r.gen_range(0..4)).unwrap_or(&3),
                    // AMR-NB 12.2 kbit/s: 32-byte frames, 50 per second.
                    size: 6 + 1600 * duration as u64,
                    key: rng::key(ctx.seed, "voicemail-audio", u64::from(i)),
                }
            })
            .collect();
        Voicemail { voicemails }
    }

    /// Unix time of the newest voicemail.
    pub fn last_change(&self) -> i64 {
        self.voicemails.iter().map(|v| v.date).max().unwrap_or(0)
    }

    pub(crate) fn files(&self, _ctx: &Ctx) -> Vec<DataFile> {
        self.voicemails
            .iter()
            .map(|v| {
                DataFile::stream(
                    "HomeDomain",
                    format!("Library/Voicemail/{}.amr", v.rowid),
                    media::amr_header(),
                    v.key,
                    v.size,
                    v.date,
                )
            })
            .collect()
    }

    pub(crate) fn write(&self, c: &Connection) -> rusqlite::Result<()> {
        c.execute_batch(
            "CREATE TABLE _SqliteDatabaseProperties (key TEXT, value TEXT, UNIQUE(key));
             CREATE TABLE voicemail (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, remote_uid INTEGER, date INTEGER,
                token TEXT, sender TEXT, callback_num TEXT, duration INTEGER, expiration INTEGER,
                trashed_date INTEGER, flags INTEGER, receiver TEXT, uuid TEXT);
             CREATE INDEX date_index ON voicemail(date);
             INSERT INTO _SqliteDatabaseProperties VALUES ('_ClientVersion', '13');",
        )?;
        for v in &self.voicemails {
            c.execute(
                "INSERT INTO voicemail (ROWID, remote_uid, date, token, sender, callback_num, duration, expiration,
                 trashed_date, flags, uuid) VALUES (?1, ?2, ?3, 'Complete', ?4, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    v.rowid,
                    v.remote_uid,
                    v.date,
                    v.sender,
                    v.duration,
                    v.date + 30 * 86_400,
                    if v.flags == 75 { v.date + 86_400 } else { 0 },
                    v.flags,
                    rng::uuid(v.key),
                ],
            )?;
        }
        Ok(())
    }
}
