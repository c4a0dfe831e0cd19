//! `iosnap datasets DIR [--json]`: which people's datasets a backup holds, with counts.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use iosnap_datasets::counts::{DatasetCount, count_all};
use serde::Serialize;

use crate::cli::OpenArgs;
use crate::sanitize::for_terminal;

/// `iosnap datasets`.
#[derive(Debug, Args)]
pub struct DatasetsArgs {
    #[command(flatten)]
    pub open: OpenArgs,
    /// Print JSON (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// `--json` shape (docs/json.md).
#[derive(Debug, Serialize)]
struct DatasetsJson<'a> {
    path: String,
    datasets: &'a [DatasetCount],
}

pub fn run(args: &DatasetsArgs) -> Result<ExitCode> {
    let backup = super::open_unlocked(&args.open)?;
    let counts = count_all(&backup)?;
    if args.json {
        super::print_json(&DatasetsJson {
            path: backup.dir().display().to_string(),
            datasets: &counts,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Datasets in {}:",
        for_terminal(&backup.dir().display().to_string())
    );
    for c in &counts {
        let what = match (&c.error, c.count, c.present) {
            (Some(e), _, false) => format!("absent: {}", for_terminal(e)),
            (Some(e), _, _) => format!("present, but: {}", for_terminal(e)),
            (None, Some(n), _) => format!("{n} {}", c.counted),
            (None, None, true) => "present".to_string(),
            (None, None, false) => format!("absent ({})", for_terminal(&c.location)),
        };
        let export = if c.exportable && c.present && c.error.is_none() {
            format!(
                "   → iosnap export {} …",
                iosnap_datasets::export::Dataset::parse(c.key).map_or(c.key, |d| d.name())
            )
        } else {
            String::new()
        };
        println!("  {:<15} {what}{export}", c.key);
    }
    Ok(ExitCode::SUCCESS)
}
