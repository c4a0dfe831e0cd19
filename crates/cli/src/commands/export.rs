//! `iosnap export DATASET DIR --out OUT [--format F] [--json]`: one dataset written the way
//! people expect (messages → HTML/TXT/CSV/JSON, contacts → vCard/CSV, calls → CSV/JSON,
//! calendar → .ics, Safari history → CSV/JSON, bookmarks → HTML, voicemail and voice memos →
//! audio + CSV, apps → CSV/JSON, photos → original files with albums as folders, notes →
//! Markdown/TXT/HTML, WhatsApp → HTML/TXT/JSON), under OUT only.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use iosnap_datasets::export::apps::export_app_files;
use iosnap_datasets::export::{Dataset, export};

use crate::cli::OpenArgs;
use crate::progress::Progress;
use crate::sanitize::for_terminal;

/// `iosnap export`: a dataset out of a backup, or a snapshot out of the library.
///
/// The two uses share the verb (both issues name it `export`); which one is meant is clear from
/// the first argument: a dataset name (`messages`, `contacts` …) or a snapshot reference.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A dataset (messages, contacts, calls, calendar, safari-history, safari-bookmarks, notes,
    /// photos, voicemail, voice-memos, whatsapp, apps, passwords, wifi) — or a snapshot of the library
    /// (UDID@latest, UDID@2026-11-24T213000Z …) to write as a standalone backup folder.
    pub what: String,
    /// For a dataset: the backup folder or snapshot to read. For a snapshot: the new folder to
    /// write (must not exist).
    pub from: PathBuf,
    /// Dataset export: the output folder (created with mode 0700); nothing is written outside it.
    #[arg(long, short = 'o', value_name = "OUT")]
    pub out: Option<PathBuf>,
    /// Dataset export format: messages html|txt|csv|json, contacts vcf|vcf4|csv, calls csv|json,
    /// calendar ics, safari-history csv|json, safari-bookmarks html, notes md|txt|html,
    /// whatsapp html|txt|json, voicemail/voice-memos audio, apps csv|json, passwords|wifi
    /// csv|json (encrypted backups only: clear-text passwords), photos files
    /// (default: the first).
    #[arg(long, short = 'f', value_name = "F")]
    pub format: Option<String>,
    /// The library snapshot references are looked up in (default: $IOSNAP_LIBRARY, else
    /// $XDG_DATA_HOME/iosnap).
    #[arg(long, value_name = "DIR")]
    pub library: Option<PathBuf>,
    /// Read the backup password from this file (else IOSNAP_PASSWORD, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Print the export report as JSON (see docs/json.md).
    #[arg(long)]
    pub json: bool,
    /// With `apps`: also write this app's files (its container, app groups and extensions) as
    /// a browsable tree under OUT/<bundle id>/ (repeatable).
    #[arg(long, value_name = "BUNDLE_ID")]
    pub app: Vec<String>,
}

/// Runs `iosnap export`: a dataset when the first argument names one, else a snapshot.
pub fn run(args: &ExportArgs, quiet: bool) -> Result<ExitCode> {
    match Dataset::parse(&args.what) {
        Some(dataset) => {
            let Some(out) = &args.out else {
                bail!(
                    "exporting {} needs --out OUT (the folder to write into)",
                    dataset.name()
                );
            };
            let open = OpenArgs {
                dir: args.from.clone(),
                library: args.library.clone(),
                password_file: args.password_file.clone(),
            };
            if !args.app.is_empty() && dataset != Dataset::Apps {
                bail!("--app only goes with `iosnap export apps`");
            }
            run_dataset(
                dataset,
                &open,
                out,
                args.format.as_deref(),
                &args.app,
                args.json,
                quiet,
            )
        }
        None => {
            if args.out.is_some() || args.format.is_some() || !args.app.is_empty() {
                let names: Vec<&str> = Dataset::ALL.iter().map(|d| d.name()).collect();
                bail!(
                    "unknown dataset {:?}: choose one of {}",
                    for_terminal(&args.what),
                    names.join(", ")
                );
            }
            let snap = super::snapshot_ops::ExportArgs {
                lib: super::snapshots::LibraryArgs {
                    library: args.library.clone(),
                },
                snapshot: args.what.clone(),
                dest: args.from.clone(),
            };
            super::snapshot_ops::run_export(&snap)
        }
    }
}

/// Exports one dataset of the backup `open` names into `out`.
fn run_dataset(
    dataset: Dataset,
    open: &OpenArgs,
    out: &std::path::Path,
    format: Option<&str>,
    apps: &[String],
    json: bool,
    quiet: bool,
) -> Result<ExitCode> {
    let backup = super::open_unlocked(open)?;
    if matches!(dataset, Dataset::Passwords | Dataset::Wifi) && backup.is_encrypted() {
        eprintln!(
            "WARNING: {} will hold CLEAR-TEXT PASSWORDS from the backup's keychain. The files are \
             private to you (0600, folder 0700); keep them off shared or synced drives and delete \
             them when done.",
            for_terminal(&out.display().to_string())
        );
    }
    // The bar counts records (messages, contacts, calls); it is created on the first report,
    // once the total is known.
    let mut bar: Option<Progress> = None;
    let label = format!("exporting {}", dataset.name());
    let mut on_progress = |done, total| {
        let b = bar.get_or_insert_with(|| Progress::items(&label, total, quiet || json));
        b.set(done, done);
    };
    let report = if apps.is_empty() {
        export(&backup, dataset, format, out, &mut on_progress)?
    } else {
        export_app_files(&backup, apps, format, out, &mut on_progress)?
    };
    if let Some(b) = bar {
        b.finish();
    }
    if json {
        super::print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Exported {} {} as {} to {}",
        report.records,
        dataset.name(),
        report.format,
        for_terminal(&report.out.display().to_string())
    );
    if report.groups > 0 {
        let what = match dataset {
            Dataset::Calendar => "calendars",
            Dataset::Notes => "folders",
            Dataset::Photos => "albums",
            Dataset::WhatsApp => "chats",
            Dataset::Apps => "apps with their files",
            _ => "conversations",
        };
        println!("  {} {what}", report.groups);
    }
    println!("  {} files written", report.files_written);
    if report.attachments_copied
        + report.attachments_missing
        + report.attachments_unsafe
        + report.attachments_failed
        > 0
    {
        println!(
            "  attachments: {} copied, {} not in the backup, {} unsafe paths skipped, {} unreadable",
            report.attachments_copied,
            report.attachments_missing,
            report.attachments_unsafe,
            report.attachments_failed
        );
    }
    if report.skipped_count > 0 {
        eprintln!("  {} records skipped:", report.skipped_count);
        for s in &report.skipped {
            eprintln!("    {}", for_terminal(s));
        }
    }
    Ok(ExitCode::SUCCESS)
}
