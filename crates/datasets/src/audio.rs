//! Voicemail and voice memos: small tables pointing at audio files in the backup.
//!
//! * Voicemail: `HomeDomain/Library/Voicemail/voicemail.db`, table `voicemail` (**Unix**
//!   seconds), audio `Library/Voicemail/<ROWID>.amr`.
//! * Voice memos: `MediaDomain/Media/Recordings/CloudRecordings.db` (`ZCLOUDRECORDING`, iOS 12+)
//!   or `Recordings.db` (`ZRECORDING`), Cocoa seconds, audio `Media/Recordings/<ZPATH>`.

use iosnap_format::Backup;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::page::Pager;
use crate::source::{DbLocation, Source};
use crate::value::{get, int, nonempty, real};

/// The voicemail database.
pub const VOICEMAIL_DB: DbLocation = DbLocation {
    dataset: "Voicemail",
    domain: "HomeDomain",
    relative_path: "Library/Voicemail/voicemail.db",
};

/// The voice memos database (iOS 12+).
pub const CLOUD_RECORDINGS_DB: DbLocation = DbLocation {
    dataset: "Voice memos",
    domain: "MediaDomain",
    relative_path: "Media/Recordings/CloudRecordings.db",
};

/// The voice memos database before iOS 12.
pub const RECORDINGS_DB: DbLocation = DbLocation {
    dataset: "Voice memos",
    domain: "MediaDomain",
    relative_path: "Media/Recordings/Recordings.db",
};

/// One voicemail or voice memo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recording {
    /// ROWID / Z_PK.
    pub id: i64,
    /// Received / recorded, Unix seconds.
    #[serde(serialize_with = "crate::time::opt_rfc3339::serialize")]
    pub date: Option<i64>,
    /// Duration in seconds.
    pub duration: f64,
    /// Voice memo title, or the voicemail's caller number.
    pub title: Option<String>,
    /// Voicemail `flags` (3 unheard, 67 heard, 75 deleted); `None` for memos.
    pub flags: Option<i64>,
    /// Domain of the audio file.
    #[serde(skip)]
    pub audio_domain: &'static str,
    /// Backup path of the audio, `None` when the stored path is unsafe or empty.
    pub audio_path: Option<String>,
}

/// Which audio dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioKind {
    /// voicemail.db.
    Voicemail,
    /// CloudRecordings.db / Recordings.db.
    VoiceMemos,
}

/// An opened audio database.
#[derive(Debug)]
pub struct AudioDb {
    src: Source,
    kind: AudioKind,
    table: &'static str,
    sql: String,
}

/// `ZPATH` → a path in MediaDomain: absolute `/var/mobile/…` or relative to `Media/Recordings`;
/// `None` when it climbs (`..`) or is empty.
fn memo_path(p: &str) -> Option<String> {
    let p = p.trim();
    let rel = if let Some(r) = p
        .strip_prefix("/var/mobile/")
        .or_else(|| p.strip_prefix("/private/var/mobile/"))
    {
        r.to_string()
    } else if p.starts_with('/') {
        return None;
    } else {
        format!("Media/Recordings/{p}")
    };
    rel.split('/')
        .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'))
        .then_some(rel)
}

impl AudioDb {
    /// Opens the voicemail or voice memos database of a backup.
    pub fn open(backup: &Backup, kind: AudioKind) -> Result<AudioDb> {
        let src = match kind {
            AudioKind::Voicemail => Source::open(backup, VOICEMAIL_DB)?,
            AudioKind::VoiceMemos => {
                Source::open_any(backup, &[CLOUD_RECORDINGS_DB, RECORDINGS_DB])?
            }
        };
        Self::from_source(src, kind)
    }

    /// Builds on an opened database; [`Error::UnknownSchema`] without the main table.
    pub fn from_source(src: Source, kind: AudioKind) -> Result<AudioDb> {
        let s = src.schema();
        let (table, sql) = match kind {
            AudioKind::Voicemail => {
                src.require_table("voicemail")?;
                let c = |n: &str| s.col("voicemail", "v", n);
                (
                    "voicemail",
                    format!(
                        "SELECT v.ROWID, {}, {}, {}, {}, NULL FROM voicemail v
                         WHERE v.ROWID > ?1 ORDER BY v.ROWID LIMIT ?2",
                        c("date"),
                        c("duration"),
                        c("sender"),
                        c("flags")
                    ),
                )
            }
            AudioKind::VoiceMemos => {
                let table = s
                    .first_table(&["ZCLOUDRECORDING", "ZRECORDING"])
                    .ok_or_else(|| Error::UnknownSchema {
                        dataset: src.dataset(),
                        file: src.file().to_string(),
                        detail: "no table ZCLOUDRECORDING or ZRECORDING".into(),
                    })?;
                let c = |n: &str| s.col(table, "r", n);
                let title = format!("COALESCE({}, {})", c("ZCUSTOMLABEL"), c("ZENCRYPTEDTITLE"));
                (
                    table,
                    format!(
                        "SELECT r.Z_PK, {}, {}, {title}, NULL, {} FROM {table} r
                         WHERE r.Z_PK > ?1 ORDER BY r.Z_PK LIMIT ?2",
                        c("ZDATE"),
                        c("ZDURATION"),
                        c("ZPATH")
                    ),
                )
            }
        };
        Ok(AudioDb {
            src,
            kind,
            table,
            sql,
        })
    }

    /// Which dataset this is.
    pub fn kind(&self) -> AudioKind {
        self.kind
    }

    /// Number of rows.
    pub fn count(&self) -> Result<u64> {
        Ok(self.src.count(self.table)?.unwrap_or(0))
    }

    /// Every recording, id order, streamed page by page.
    pub fn recordings(&self) -> RecordingIter<'_> {
        let map: fn(&rusqlite::Row<'_>) -> Recording = match self.kind {
            AudioKind::Voicemail => |r| {
                let id = int(get(r, 0)).unwrap_or(0);
                Recording {
                    id,
                    // Unix seconds here, unlike everywhere else.
                    date: int(get(r, 1)).filter(|d| *d > 0),
                    duration: real(get(r, 2)).unwrap_or(0.0).max(0.0),
                    title: nonempty(get(r, 3)),
                    flags: int(get(r, 4)),
                    audio_domain: "HomeDomain",
                    audio_path: Some(format!("Library/Voicemail/{id}.amr")),
                }
            },
            AudioKind::VoiceMemos => |r| Recording {
                id: int(get(r, 0)).unwrap_or(0),
                date: real(get(r, 1)).and_then(crate::time::cocoa_real_to_unix),
                duration: real(get(r, 2)).unwrap_or(0.0).max(0.0),
                title: nonempty(get(r, 3)),
                flags: None,
                audio_domain: "MediaDomain",
                audio_path: nonempty(get(r, 5)).and_then(|p| memo_path(&p)),
            },
        };
        let pk = |x: &Recording| x.id;
        RecordingIter(Pager::new(
            self.src.conn(),
            self.src.file(),
            self.sql.clone(),
            None,
            map,
            pk,
        ))
    }
}

/// The iterator of [`AudioDb::recordings`].
pub struct RecordingIter<'a>(Pager<'a, Recording>);

impl Iterator for RecordingIter<'_> {
    type Item = Result<Recording>;
    fn next(&mut self) -> Option<Result<Recording>> {
        self.0.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memo_paths() {
        assert_eq!(
            memo_path("20240506 101500-3F.m4a").as_deref(),
            Some("Media/Recordings/20240506 101500-3F.m4a")
        );
        assert_eq!(
            memo_path("/var/mobile/Media/Recordings/a.m4a").as_deref(),
            Some("Media/Recordings/a.m4a")
        );
        assert_eq!(memo_path("../../x"), None);
        assert_eq!(memo_path("/etc/passwd"), None);
        assert_eq!(memo_path(""), None);
    }
}
