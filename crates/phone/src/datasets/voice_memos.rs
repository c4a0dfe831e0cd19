//! Voice memos: `MediaDomain/Media/Recordings/CloudRecordings.db` (iOS 12+, `ZCLOUDRECORDING`) or
//! `Recordings.db` (`ZRECORDING`) before, with `<ZPATH>.m4a` audio next to it. Cocoa seconds.

use rand::Rng;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::messages::civil;
use super::{Ctx, DataFile, IosVersion, to_cocoa};
use crate::media;
use crate::rng;

/// One recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    /// Z_PK.
    pub pk: i64,
    /// Recording time, Unix seconds.
    pub date: i64,
    /// Duration in seconds.
    pub duration: f64,
    /// ZCUSTOMLABEL (title shown in the app).
    pub label: String,
    /// ZPATH: file name in Media/Recordings, e.g. "20240506 101500-3F2A1B4C.m4a".
    pub path: String,
    /// ZUNIQUEID.
    pub unique_id: String,
    /// Audio file size.
    pub size: u64,
    /// Content key.
    pub key: u64,
}

/// The voice memos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceMemos {
    /// Recordings in Z_PK order.
    pub recordings: Vec<Recording>,
}

impl VoiceMemos {
    pub(crate) fn generate(ctx: &Ctx, count: u32) -> Self {
        let recordings = (0..count)
            .map(|i| {
                let mut r = rng::rng(ctx.seed, "memo", u64::from(i));
                let date = ctx.timeline("memo-date", i, ctx.base.voice_memos, 500);
                let (y, mo, d, h, mi, s) = civil(date);
                let duration = f64::from(r.gen_range(5..600));
                let unique_id = rng::uuid(rng::key(ctx.seed, "memo-uuid", u64::from(i)));
                Recording {
                    pk: i64::from(i) + 1,
                    date,
                    duration,
                    label: format!(
                        "{} {}",
                        ["New Recording", "Lecture", "Idea", "Song"][r.gen_range(0..4)],
                        i + 1
                    ),
                    path: format!(
                        "{y:04}{mo:02}{d:02} {h:02}{mi:02}{s:02}-{}.m4a",
                        &unique_id[..8]
                    ),
                    unique_id,
                    // ~8 kB/s AAC.
                    size: (duration * 8000.0) as u64,
                    key: rng::key(ctx.seed, "memo-audio", u64::from(i)),
                }
            })
            .collect();
        VoiceMemos { recordings }
    }

    /// Unix time of the newest recording.
    pub fn last_change(&self) -> i64 {
        self.recordings.iter().map(|r| r.date).max().unwrap_or(0)
    }

    pub(crate) fn files(&self, _ctx: &Ctx) -> Vec<DataFile> {
        self.recordings
            .iter()
            .map(|r| {
                DataFile::stream(
                    "MediaDomain",
                    format!("Media/Recordings/{}", r.path),
                    media::m4a_header(r.size),
                    r.key,
                    r.size,
                    r.date + r.duration as i64,
                )
            })
            .collect()
    }

    pub(crate) fn write(&self, c: &Connection, ios: IosVersion) -> rusqlite::Result<()> {
        let table = if ios.major >= 12 {
            "ZCLOUDRECORDING"
        } else {
            "ZRECORDING"
        };
        c.execute_batch(&format!(
            "CREATE TABLE {table} (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, ZFLAGS INTEGER,
                ZDATE TIMESTAMP, ZDURATION FLOAT, ZLOCALDURATION FLOAT, ZEVICTIONDATE TIMESTAMP,
                ZCUSTOMLABEL VARCHAR, ZCUSTOMLABELFORSORTING VARCHAR, ZENCRYPTEDTITLE VARCHAR, ZPATH VARCHAR,
                ZUNIQUEID VARCHAR, ZAUDIODIGEST BLOB, ZAUDIOFUTURE BLOB);"
        ))?;
        crate::db::core_data_tables(
            c,
            &[(
                1,
                if ios.major >= 12 {
                    "CloudRecording"
                } else {
                    "Recording"
                },
                self.recordings.len() as i64,
            )],
            "2D4F6A8C-0E1B-4C3D-9F5E-7A6B8C9D0E1F",
        )?;
        for r in &self.recordings {
            c.execute(
                &format!(
                    "INSERT INTO {table} (Z_PK, Z_ENT, Z_OPT, ZFLAGS, ZDATE, ZDURATION, ZLOCALDURATION, ZCUSTOMLABEL,
                     ZCUSTOMLABELFORSORTING, ZENCRYPTEDTITLE, ZPATH, ZUNIQUEID) VALUES (?1, 1, 1, 0, ?2, ?3, ?3, ?4, ?4, ?4, ?5, ?6)"
                ),
                params![r.pk, to_cocoa(r.date) as f64, r.duration, r.label, r.path, r.unique_id],
            )?;
        }
        Ok(())
    }
}
