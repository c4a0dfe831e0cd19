//! Voicemail and voice memo export: each audio file copied as
//! `<YYYY-MM-DD HHMMSS> <title> (<id>).<ext>` with its date as mtime, plus `voicemails.csv` /
//! `voice_memos.csv` listing every row (also those whose audio is missing).

use std::io::Write;

use super::text::csv_row;
use super::{ExportReport, OutDir, ProgressFn, finish, safe_name};
use crate::audio::{AudioDb, AudioKind, Recording};
use crate::contacts::ContactIndex;
use crate::error::{IoContext, Result};
use iosnap_format::Backup;

const CSV_HEADER: [&str; 7] = ["id", "date", "duration", "title", "flags", "file", "status"];

fn file_name(r: &Recording, title: &str) -> String {
    let when = r
        .date
        .and_then(|d| chrono::DateTime::from_timestamp(d, 0))
        .map(|d| d.format("%Y-%m-%d %H%M%S ").to_string())
        .unwrap_or_default();
    let ext = r
        .audio_path
        .as_deref()
        .and_then(|p| p.rsplit('/').next())
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e)
        .filter(|e| !e.is_empty() && e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or("audio");
    let short: String = title.chars().take(60).collect();
    safe_name(&format!("{when}{} ({}).{ext}", safe_name(&short), r.id))
}

/// Copies the audio files and writes the CSV.
pub(crate) fn export(
    backup: &Backup,
    db: &AudioDb,
    index: &ContactIndex,
    out: &OutDir,
    progress: ProgressFn<'_>,
) -> Result<ExportReport> {
    let mut report = ExportReport::default();
    let total = db.count()?;
    progress(0, total);
    let csv_name = match db.kind() {
        AudioKind::Voicemail => "voicemails.csv",
        AudioKind::VoiceMemos => "voice_memos.csv",
    };
    let (csv_path, mut csv) = out.file(csv_name)?;
    csv.write_all(csv_row(&CSV_HEADER).as_bytes())
        .at(&csv_path)?;
    for r in db.recordings() {
        let r = r?;
        let title = match db.kind() {
            AudioKind::Voicemail => r
                .title
                .as_deref()
                .map(|n| {
                    index
                        .name(n)
                        .map(str::to_string)
                        .unwrap_or_else(|| n.to_string())
                })
                .unwrap_or_else(|| "Unknown caller".into()),
            AudioKind::VoiceMemos => r
                .title
                .clone()
                .unwrap_or_else(|| format!("Recording {}", r.id)),
        };
        let (file, status) = match r.audio_path.as_deref() {
            None => {
                report.attachments_unsafe += 1;
                (String::new(), "unsafe or empty path")
            }
            Some(p) => match backup.find(r.audio_domain, p) {
                Ok(e) if e.has_data() => {
                    let name = file_name(&r, &title);
                    let res = (|| -> Result<()> {
                        let (path, mut w) = out.file(&name)?;
                        std::io::copy(&mut backup.open_file(&e)?, &mut w).at(&path)?;
                        finish(&path, w)?;
                        if let Some(d) = r.date.filter(|d| *d > 0) {
                            let t = std::time::UNIX_EPOCH
                                + std::time::Duration::from_secs(d.unsigned_abs());
                            if let Ok(f) = std::fs::File::options().write(true).open(&path) {
                                let _ = f.set_modified(t);
                            }
                        }
                        Ok(())
                    })();
                    match res {
                        Ok(()) => {
                            report.attachments_copied += 1;
                            report.files_written += 1;
                            (name, "copied")
                        }
                        Err(err) => {
                            report.attachments_failed += 1;
                            report.skip(format!("{} {}: {err}", csv_name, r.id));
                            (String::new(), "unreadable")
                        }
                    }
                }
                _ => {
                    report.attachments_missing += 1;
                    (String::new(), "not in the backup")
                }
            },
        };
        csv.write_all(
            csv_row(&[
                r.id.to_string(),
                r.date.map(crate::time::rfc3339).unwrap_or_default(),
                r.duration.to_string(),
                title,
                r.flags.map(|f| f.to_string()).unwrap_or_default(),
                file,
                status.to_string(),
            ])
            .as_bytes(),
        )
        .at(&csv_path)?;
        report.records += 1;
        progress(report.records, total);
    }
    finish(&csv_path, csv)?;
    report.files_written += 1;
    Ok(report)
}
