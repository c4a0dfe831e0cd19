//! Exports: a dataset of a backup written the way people expect, under one output folder.
//!
//! # Safety of the output folder
//!
//! Everything is written below `out` (created mode 0700). File names come from
//! [`safe_name`], which keeps one path component and nothing else; paths found in databases
//! (attachment names …) are only used to *look up* backup entries, never to name output.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use iosnap_format::Backup;
use serde::Serialize;

use crate::error::{Error, IoContext, Result};

pub mod apps;
pub mod audio;
pub mod calendar;
pub mod calls;
pub mod contacts;
pub(crate) mod copier;
pub mod keychain;
pub mod messages;
pub mod notes;
pub mod photos;
pub mod safari;
pub(crate) mod text;
pub mod whatsapp;

/// The datasets `iosnap export` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dataset {
    /// sms.db: conversations with attachments.
    Messages,
    /// AddressBook: vCard / CSV.
    Contacts,
    /// CallHistory: CSV / JSON.
    Calls,
    /// Calendar.sqlitedb: one .ics per calendar.
    Calendar,
    /// Safari History.db: CSV / JSON, one record per visit.
    SafariHistory,
    /// Safari Bookmarks.db: the Netscape bookmarks HTML file.
    SafariBookmarks,
    /// voicemail.db: the audio files plus a CSV.
    Voicemail,
    /// CloudRecordings.db: the audio files plus a CSV.
    VoiceMemos,
    /// Installed apps (Info.plist, Manifest.plist): CSV / JSON.
    Apps,
    /// Photos.sqlite + DCIM: original files, albums as folders.
    Photos,
    /// NoteStore.sqlite: one Markdown / TXT / HTML file per note.
    Notes,
    /// WhatsApp ChatStorage.sqlite: chats as HTML / TXT / JSON with media.
    WhatsApp,
    /// Keychain (encrypted backups only): website and app passwords, CSV / JSON.
    Passwords,
    /// Keychain (encrypted backups only): Wi-Fi networks and their passwords, CSV / JSON.
    Wifi,
}

impl Dataset {
    /// Every exportable dataset.
    pub const ALL: [Dataset; 14] = [
        Dataset::Messages,
        Dataset::Contacts,
        Dataset::Calls,
        Dataset::Calendar,
        Dataset::SafariHistory,
        Dataset::SafariBookmarks,
        Dataset::Voicemail,
        Dataset::VoiceMemos,
        Dataset::Apps,
        Dataset::Photos,
        Dataset::Notes,
        Dataset::WhatsApp,
        Dataset::Passwords,
        Dataset::Wifi,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Messages => "messages",
            Dataset::Contacts => "contacts",
            Dataset::Calls => "calls",
            Dataset::Calendar => "calendar",
            Dataset::SafariHistory => "safari-history",
            Dataset::SafariBookmarks => "safari-bookmarks",
            Dataset::Voicemail => "voicemail",
            Dataset::VoiceMemos => "voice-memos",
            Dataset::Apps => "apps",
            Dataset::Photos => "photos",
            Dataset::Notes => "notes",
            Dataset::WhatsApp => "whatsapp",
            Dataset::Passwords => "passwords",
            Dataset::Wifi => "wifi",
        }
    }

    /// Formats it can be exported to; the first is the default.
    pub fn formats(self) -> &'static [&'static str] {
        match self {
            Dataset::Messages => &["html", "txt", "csv", "json"],
            Dataset::Contacts => &["vcf", "vcf4", "csv"],
            Dataset::Calls => &["csv", "json"],
            Dataset::Calendar => &["ics"],
            Dataset::SafariHistory => &["csv", "json"],
            Dataset::SafariBookmarks => &["html"],
            Dataset::Voicemail | Dataset::VoiceMemos => &["audio"],
            Dataset::Apps => &["csv", "json"],
            Dataset::Photos => &["files"],
            Dataset::Notes => &["md", "txt", "html"],
            Dataset::WhatsApp => &["html", "txt", "json"],
            Dataset::Passwords | Dataset::Wifi => &["csv", "json"],
        }
    }

    /// Parses a command-line name (a few aliases accepted).
    pub fn parse(s: &str) -> Option<Dataset> {
        match s.to_ascii_lowercase().as_str() {
            "messages" | "sms" | "imessage" => Some(Dataset::Messages),
            "contacts" | "addressbook" => Some(Dataset::Contacts),
            "calls" | "call-history" | "callhistory" => Some(Dataset::Calls),
            "calendar" | "calendars" | "events" => Some(Dataset::Calendar),
            "safari-history" | "safari" | "history" | "history_items" => {
                Some(Dataset::SafariHistory)
            }
            "safari-bookmarks" | "bookmarks" => Some(Dataset::SafariBookmarks),
            "voicemail" | "voicemails" => Some(Dataset::Voicemail),
            "apps" | "applications" => Some(Dataset::Apps),
            "photos" | "camera-roll" | "pictures" => Some(Dataset::Photos),
            "notes" => Some(Dataset::Notes),
            "whatsapp" | "whatsapp_chats" => Some(Dataset::WhatsApp),
            "passwords" | "keychain" => Some(Dataset::Passwords),
            "wifi" | "wi-fi" => Some(Dataset::Wifi),
            "voice-memos" | "voice_memos" | "voicememos" | "memos" | "recordings" => {
                Some(Dataset::VoiceMemos)
            }
            _ => None,
        }
    }
}

/// What an export did. Skips are counted, never silent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// Dataset name.
    pub dataset: String,
    /// Format written.
    pub format: String,
    /// The output folder.
    pub out: PathBuf,
    /// Records exported (messages, contacts, calls).
    pub records: u64,
    /// Groups written (conversations; 0 where not applicable).
    pub groups: u64,
    /// Files written under `out`, attachments included.
    pub files_written: u64,
    /// Attachment files copied.
    pub attachments_copied: u64,
    /// Attachments whose file is not in the backup (never downloaded, offloaded …).
    pub attachments_missing: u64,
    /// Attachments skipped because their stored path was unsafe (`..`, absolute elsewhere).
    pub attachments_unsafe: u64,
    /// Attachments the backup has but that could not be read (decryption, I/O).
    pub attachments_failed: u64,
    /// Other records skipped, with the reason (first 100 kept).
    pub skipped: Vec<String>,
    /// Number of skipped records (may exceed `skipped.len()`).
    pub skipped_count: u64,
}

impl ExportReport {
    pub(crate) fn skip(&mut self, why: String) {
        self.skipped_count += 1;
        if self.skipped.len() < 100 {
            self.skipped.push(why);
        }
    }
}

/// Progress reporting: `(done, total)` records; `total` is known before the export starts.
pub type ProgressFn<'a> = &'a mut dyn FnMut(u64, u64);

/// Exports `dataset` of `backup` to `out` in `format` (`None`: the dataset's default).
pub fn export(
    backup: &Backup,
    dataset: Dataset,
    format: Option<&str>,
    out: &Path,
    progress: ProgressFn<'_>,
) -> Result<ExportReport> {
    let fmt = match format {
        None => dataset.formats().first().copied().unwrap_or("json"),
        Some(f) => {
            let f = f.to_ascii_lowercase();
            dataset
                .formats()
                .iter()
                .copied()
                .find(|x| *x == f || (f == "vcard" && *x == "vcf"))
                .ok_or_else(|| Error::UnknownFormat {
                    dataset: dataset.name(),
                    format: f.clone(),
                    choices: match dataset {
                        Dataset::Messages => "html, txt, csv, json",
                        Dataset::Contacts => "vcf (vCard 3.0), vcf4 (vCard 4.0), csv",
                        Dataset::Calls => "csv, json",
                        Dataset::Calendar => "ics",
                        Dataset::SafariHistory => "csv, json",
                        Dataset::SafariBookmarks => "html",
                        Dataset::Voicemail | Dataset::VoiceMemos => {
                            "audio (the audio files plus a CSV)"
                        }
                        Dataset::Apps => "csv, json",
                        Dataset::Photos => "files (the original files, albums as folders)",
                        Dataset::Notes => "md, txt, html",
                        Dataset::WhatsApp => "html, txt, json",
                        Dataset::Passwords | Dataset::Wifi => "csv, json",
                    },
                })?
        }
    };
    // Open first, so an absent dataset does not leave an empty output folder behind.
    let mut report = match dataset {
        Dataset::Messages => {
            let db = crate::messages::MessagesDb::open(backup)?;
            let index = contact_index(backup)?;
            let out = OutDir::create(out)?;
            messages::export(backup, &db, &index, fmt, &out, progress)?
        }
        Dataset::Contacts => {
            let db = crate::contacts::ContactsDb::open(backup)?;
            let out = OutDir::create(out)?;
            contacts::export(&db, fmt, &out, progress)?
        }
        Dataset::Calls => {
            let db = crate::calls::CallsDb::open(backup)?;
            let index = contact_index(backup)?;
            let out = OutDir::create(out)?;
            calls::export(&db, &index, fmt, &out, progress)?
        }
        Dataset::Calendar => {
            let db = crate::calendar::CalendarDb::open(backup)?;
            let out = OutDir::create(out)?;
            calendar::export(&db, &out, progress)?
        }
        Dataset::SafariHistory => {
            let db = crate::safari::HistoryDb::open(backup)?;
            let out = OutDir::create(out)?;
            safari::export_history(&db, fmt, &out, progress)?
        }
        Dataset::SafariBookmarks => {
            let all = crate::safari::bookmarks(backup)?;
            let out = OutDir::create(out)?;
            safari::export_bookmarks(&all, &out, progress)?
        }
        Dataset::Voicemail | Dataset::VoiceMemos => {
            let kind = if dataset == Dataset::Voicemail {
                crate::audio::AudioKind::Voicemail
            } else {
                crate::audio::AudioKind::VoiceMemos
            };
            let db = crate::audio::AudioDb::open(backup, kind)?;
            let index = contact_index(backup)?;
            let out = OutDir::create(out)?;
            audio::export(backup, &db, &index, &out, progress)?
        }
        Dataset::Apps => {
            let list = crate::apps::apps(backup)?;
            let out = OutDir::create(out)?;
            apps::export(&list, fmt, &out, progress)?
        }
        Dataset::Photos => {
            let db = crate::photos::PhotosDb::open(backup)?;
            let out = OutDir::create(out)?;
            photos::export(backup, &db, &out, progress)?
        }
        Dataset::Notes => {
            let db = crate::notes::NotesDb::open(backup)?;
            let out = OutDir::create(out)?;
            notes::export(&db, fmt, &out, progress)?
        }
        Dataset::WhatsApp => {
            let db = crate::whatsapp::WhatsAppDb::open(backup)?;
            let index = contact_index(backup)?;
            let out = OutDir::create(out)?;
            whatsapp::export(backup, &db, &index, fmt, &out, progress)?
        }
        Dataset::Passwords | Dataset::Wifi => {
            let kc = crate::keychain::Keychain::open(backup)?;
            let out = keychain::private_out(out)?;
            let what = if dataset == Dataset::Passwords {
                keychain::What::Passwords
            } else {
                keychain::What::Wifi
            };
            keychain::export(&kc, what, fmt, &out, progress)?
        }
    };
    report.dataset = dataset.name().to_string();
    report.format = fmt.to_string();
    report.out = out.to_path_buf();
    Ok(report)
}

/// The contacts' phone/e-mail → name index, empty when the backup has no address book.
pub fn contact_index(backup: &Backup) -> Result<crate::contacts::ContactIndex> {
    match crate::contacts::ContactsDb::open(backup) {
        Ok(c) => c.index(),
        Err(Error::Absent { .. } | Error::UnknownSchema { .. }) => Ok(Default::default()),
        Err(e) => Err(e),
    }
}

/// One path component safe to create: no separators, no control characters, no leading dot,
/// not empty, at most 100 characters.
pub fn safe_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() || c == ':' {
                '_'
            } else {
                c
            }
        })
        .take(100)
        .collect();
    out = out.trim().trim_start_matches('.').trim().to_string();
    if out.is_empty() {
        "unnamed".to_string()
    } else {
        out
    }
}

/// The output folder: everything written goes through it, by single safe components.
#[derive(Debug)]
pub struct OutDir {
    root: PathBuf,
}

impl OutDir {
    /// Creates `root` (and parents) with mode 0700 for the folders created.
    pub fn create(root: &Path) -> Result<OutDir> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .at(root)?;
        Ok(OutDir {
            root: root.to_path_buf(),
        })
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates (or reuses) the subfolder `name` (made safe).
    pub fn subdir(&self, name: &str) -> Result<OutDir> {
        Self::create(&self.root.join(safe_name(name)))
    }

    /// Creates the file `name` (made safe), replacing an existing one; never follows a
    /// symlink planted at that name.
    pub fn file(&self, name: &str) -> Result<(PathBuf, BufWriter<std::fs::File>)> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.root.join(safe_name(name));
        // Replace what is there (a previous export, or a planted symlink) and create anew with
        // O_EXCL, which never follows a symlink.
        if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
            std::fs::remove_file(&path).at(&path)?;
        }
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .at(&path)?;
        Ok((path, BufWriter::with_capacity(256 * 1024, f)))
    }
}

/// Flushes a writer, naming the file on error.
pub(crate) fn finish(path: &Path, mut w: BufWriter<std::fs::File>) -> Result<()> {
    w.flush().at(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names() {
        assert_eq!(safe_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_name(".."), "unnamed");
        assert_eq!(safe_name(""), "unnamed");
        assert_eq!(safe_name("a\nb"), "a_b");
        assert_eq!(safe_name("Family 👨‍👩‍👧"), "Family 👨‍👩‍👧");
        assert_eq!(safe_name(&"x".repeat(500)).len(), 100);
    }

    #[test]
    fn out_dir_is_private_and_contained() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let o = OutDir::create(&t.path().join("a/b")).unwrap();
        let mode = std::fs::metadata(o.root()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let (p, w) = o.file("../escape").unwrap();
        finish(&p, w).unwrap();
        assert!(p.starts_with(o.root()));
        assert!(!t.path().join("a/escape").exists());
        // A planted symlink is replaced, not followed.
        std::os::unix::fs::symlink(t.path().join("victim"), o.root().join("link")).unwrap();
        let (p, mut w) = o.file("link").unwrap();
        w.write_all(b"x").unwrap();
        finish(&p, w).unwrap();
        assert!(!t.path().join("victim").exists());
    }
}
