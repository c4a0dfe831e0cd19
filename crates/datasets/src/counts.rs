//! What a backup holds, dataset by dataset, with counts: the data behind `iosnap datasets`.
//!
//! Datasets this crate parses are counted with their parsers' notion of a record; the others
//! are counted honestly as rows of their main table, and say so in [`DatasetCount::counted`].

use iosnap_format::Backup;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::source::{DbLocation, Source};

/// One dataset's presence and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatasetCount {
    /// Stable key (`messages`, `chats`, `contacts` …), also the `iosnap export` name when
    /// [`DatasetCount::exportable`].
    pub key: &'static str,
    /// Where it was looked for (`domain/relativePath`, or `Info.plist`).
    pub location: String,
    /// Whether the backup has the database.
    pub present: bool,
    /// The count, when present and readable.
    pub count: Option<u64>,
    /// What was counted, e.g. "messages" or "rows of table ZICNOTEDATA".
    pub counted: String,
    /// Whether `iosnap export` can export it.
    pub exportable: bool,
    /// Why it could not be counted (unknown schema, unreadable file …).
    pub error: Option<String>,
}

struct Probe {
    key: &'static str,
    locs: &'static [DbLocation],
    tables: &'static [&'static str],
    counted: &'static str,
    exportable: bool,
}

const fn loc(dataset: &'static str, domain: &'static str, path: &'static str) -> DbLocation {
    DbLocation {
        dataset,
        domain,
        relative_path: path,
    }
}

const PROBES: &[Probe] = &[
    Probe {
        key: "messages",
        locs: &[crate::messages::SMS_DB],
        tables: &["message"],
        counted: "messages",
        exportable: true,
    },
    Probe {
        key: "chats",
        locs: &[crate::messages::SMS_DB],
        tables: &["chat"],
        counted: "conversations",
        exportable: false,
    },
    Probe {
        key: "contacts",
        locs: &[crate::contacts::ADDRESS_BOOK],
        tables: &["ABPerson"],
        counted: "contacts",
        exportable: true,
    },
    Probe {
        key: "calls",
        locs: crate::calls::CALL_HISTORY_LOCATIONS,
        tables: &["ZCALLRECORD", "call"],
        counted: "calls (rows of ZCALLRECORD; `call` in the pre-iOS 8 call_history.db)",
        exportable: true,
    },
    Probe {
        key: "notes",
        locs: &[
            loc(
                "Notes",
                "AppDomainGroup-group.com.apple.notes",
                "NoteStore.sqlite",
            ),
            loc("Notes", "HomeDomain", "Library/Notes/notes.sqlite"),
        ],
        tables: &["ZICNOTEDATA", "ZNOTE"],
        counted: "notes (rows of ZICNOTEDATA; ZNOTE in the legacy notes.sqlite)",
        exportable: true,
    },
    Probe {
        key: "events",
        locs: &[loc(
            "Calendar",
            "HomeDomain",
            "Library/Calendar/Calendar.sqlitedb",
        )],
        tables: &["CalendarItem"],
        counted: "rows of table CalendarItem (events, and reminders before iOS 13)",
        exportable: true,
    },
    Probe {
        key: "history_items",
        locs: crate::safari::HISTORY_LOCATIONS,
        tables: &["history_items"],
        counted: "history items (distinct URLs); `export safari-history` writes one record per visit",
        exportable: true,
    },
    Probe {
        key: "bookmarks",
        locs: &[crate::safari::BOOKMARKS_DB],
        tables: &["bookmarks"],
        counted: "rows of table bookmarks (folders included); export with `export safari-bookmarks`",
        exportable: false,
    },
    Probe {
        key: "photos",
        locs: &[loc(
            "Photos",
            "CameraRollDomain",
            "Media/PhotoData/Photos.sqlite",
        )],
        tables: &["ZASSET", "ZGENERICASSET"],
        counted: "photos and videos (rows of ZASSET, ZGENERICASSET before iOS 14)",
        exportable: true,
    },
    Probe {
        key: "voice_memos",
        locs: &[
            crate::audio::CLOUD_RECORDINGS_DB,
            crate::audio::RECORDINGS_DB,
        ],
        tables: &["ZCLOUDRECORDING", "ZRECORDING"],
        counted: "voice memos (rows of ZCLOUDRECORDING, ZRECORDING before iOS 12)",
        exportable: true,
    },
    Probe {
        key: "voicemails",
        locs: &[crate::audio::VOICEMAIL_DB],
        tables: &["voicemail"],
        counted: "voicemails (rows of table voicemail)",
        exportable: true,
    },
    Probe {
        key: "whatsapp_chats",
        locs: &[loc(
            "WhatsApp",
            "AppDomainGroup-group.net.whatsapp.WhatsApp.shared",
            "ChatStorage.sqlite",
        )],
        tables: &["ZWACHATSESSION"],
        counted: "WhatsApp chats (rows of ZWACHATSESSION)",
        exportable: true,
    },
];

fn count_one(backup: &Backup, p: &Probe) -> DatasetCount {
    let location = p
        .locs
        .iter()
        .map(|l| format!("{}/{}", l.domain, l.relative_path))
        .collect::<Vec<_>>()
        .join(" or ");
    let mut out = DatasetCount {
        key: p.key,
        location,
        present: false,
        count: None,
        counted: p.counted.to_string(),
        exportable: p.exportable,
        error: None,
    };
    let src = match Source::open_any(backup, p.locs) {
        Ok(s) => s,
        Err(Error::Absent { .. }) => return out,
        Err(e) => {
            out.present = true;
            out.error = Some(e.to_string());
            return out;
        }
    };
    out.present = true;
    match src.schema().first_table(p.tables) {
        Some(t) => match src.count(t) {
            Ok(n) => out.count = n,
            Err(e) => out.error = Some(e.to_string()),
        },
        None => {
            out.error = Some(format!(
                "unknown schema in {}: no table {}",
                src.file(),
                p.tables.join(" or ")
            ))
        }
    }
    out
}

/// Counts every known dataset of a backup. Per-dataset problems are reported in
/// [`DatasetCount::error`]; only a locked or unreadable manifest fails the whole call.
pub fn count_all(backup: &Backup) -> Result<Vec<DatasetCount>> {
    // Fail early and clearly on a locked backup instead of eleven identical errors.
    if !backup.is_unlocked() {
        return Err(iosnap_format::Error::PasswordRequired.into());
    }
    let mut v: Vec<DatasetCount> = PROBES.iter().map(|p| count_one(backup, p)).collect();
    let apps_from_info = backup.info().map(|i| i.installed_applications.len());
    let apps_from_manifest = backup.manifest().map(|m| m.applications.len());
    let (count, location) = match (apps_from_manifest, apps_from_info) {
        (Some(n), _) if n > 0 => (Some(n as u64), "Manifest.plist Applications"),
        (_, Some(n)) => (Some(n as u64), "Info.plist Installed Applications"),
        (Some(n), None) => (Some(n as u64), "Manifest.plist Applications"),
        (None, None) => (None, "Manifest.plist / Info.plist"),
    };
    v.push(DatasetCount {
        key: "apps",
        location: location.to_string(),
        present: count.is_some(),
        count,
        counted: "installed apps (bundle ids)".into(),
        exportable: true,
        error: None,
    });
    v.extend(crate::keychain::counts(backup));
    Ok(v)
}
