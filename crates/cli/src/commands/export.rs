//! `iosnap export-data DATASET DIR --out OUT [--format F] [--json]`: one dataset written the way
//! people expect (messages → HTML/TXT/CSV/JSON, contacts → vCard/CSV, calls → CSV/JSON,
//! calendar → .ics, Safari history → CSV/JSON, bookmarks → HTML, voicemail and voice memos →
//! audio + CSV, apps → CSV/JSON, photos → original files with albums as folders, notes →
//! Markdown/TXT/HTML), under OUT only.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use iosnap_datasets::export::{Dataset, export};

use crate::cli::OpenArgs;
use crate::progress::Progress;
use crate::sanitize::for_terminal;

/// `iosnap export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to export: messages, contacts, calls, calendar, safari-history, safari-bookmarks,
    /// voicemail, voice-memos, apps, photos, notes.
    pub dataset: String,
    #[command(flatten)]
    pub open: OpenArgs,
    /// Output folder (created with mode 0700); nothing is written outside it.
    #[arg(long, short = 'o', value_name = "OUT")]
    pub out: PathBuf,
    /// Format: messages html|txt|csv|json, contacts vcf|vcf4|csv, calls csv|json, calendar ics,
    /// safari-history csv|json, safari-bookmarks html, voicemail/voice-memos audio, apps csv|json,
    /// photos files, notes md|txt|html (default: the first).
    #[arg(long, short = 'f', value_name = "F")]
    pub format: Option<String>,
    /// Print the export report as JSON (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ExportArgs, quiet: bool) -> Result<ExitCode> {
    let Some(dataset) = Dataset::parse(&args.dataset) else {
        let names: Vec<&str> = Dataset::ALL.iter().map(|d| d.name()).collect();
        bail!(
            "unknown dataset {:?}: choose one of {}",
            for_terminal(&args.dataset),
            names.join(", ")
        );
    };
    let backup = super::open_unlocked(&args.open)?;
    // The bar counts records (messages, contacts, calls); it is created on the first report,
    // once the total is known.
    let mut bar: Option<Progress> = None;
    let label = format!("exporting {}", dataset.name());
    let report = export(
        &backup,
        dataset,
        args.format.as_deref(),
        &args.out,
        &mut |done, total| {
            let b = bar.get_or_insert_with(|| Progress::bytes(&label, total, quiet || args.json));
            b.set(done, done);
        },
    )?;
    if let Some(b) = bar {
        b.finish();
    }
    if args.json {
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
