//! `iosnap prune`: run retention by hand (every snapshot backup runs it after commit).

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use iosnap_store::{Plan, PruneMode, PruneOutcome};
use serde::Serialize;

use super::snapshots::LibraryArgs;
use crate::progress::human_bytes;

/// `iosnap prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub lib: LibraryArgs,
    /// Only this device (default: every device of the library).
    #[arg(long, short = 'u', value_name = "UDID")]
    pub device: Option<String>,
    /// Show what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete without asking.
    #[arg(long)]
    pub yes: bool,
    /// Print JSON (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct PruneJson {
    udid: String,
    outcome: PruneOutcome,
    extra_bytes: u64,
    budget_bytes: u64,
    retention_days: u32,
    delete: Vec<String>,
    keep: Vec<(String, iosnap_store::KeepReason)>,
}

fn ask(plan: &Plan) -> bool {
    eprint!(
        "Delete {} snapshot(s) of {} to bring extra space from {} down to about {} (budget {})? [y/N] ",
        plan.delete.len(),
        plan.udid,
        human_bytes(plan.extra_bytes),
        human_bytes(plan.extra_after),
        human_bytes(plan.budget_bytes)
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes")
}

/// Runs `iosnap prune`.
pub fn run(args: &PruneArgs) -> Result<ExitCode> {
    let lib = args.lib.open_for(args.device.as_deref())?;
    let mode = if args.dry_run {
        PruneMode::DryRun
    } else if args.yes {
        PruneMode::Yes
    } else if std::io::stdin().is_terminal() && !args.json {
        PruneMode::Interactive
    } else {
        PruneMode::NonInteractive
    };
    let devices = match &args.device {
        Some(d) => vec![d.clone()],
        None => lib.devices()?,
    };
    let mut out = Vec::new();
    for udid in devices {
        let (plan, outcome) = iosnap_store::prune(&lib, &udid, mode, &mut ask)?;
        if !args.json {
            print_plan(&plan, outcome);
        }
        out.push(PruneJson {
            udid: plan.udid.clone(),
            outcome,
            extra_bytes: plan.extra_bytes,
            budget_bytes: plan.budget_bytes,
            retention_days: plan.retention_days,
            delete: plan.delete.iter().map(|s| s.name.clone()).collect(),
            keep: plan.keep.clone(),
        });
    }
    if args.json {
        super::print_json(&out)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_plan(plan: &Plan, outcome: PruneOutcome) {
    println!(
        "{}: extra space {} of budget {} (minimum age {} days)",
        plan.udid,
        human_bytes(plan.extra_bytes),
        human_bytes(plan.budget_bytes),
        plan.retention_days
    );
    let verb = match outcome {
        PruneOutcome::NothingToDo => {
            println!("  nothing to delete");
            return;
        }
        PruneOutcome::Deleted => "deleted",
        PruneOutcome::DryRun => "would delete",
        PruneOutcome::Declined => "kept (declined)",
        PruneOutcome::NeedsConfirmation => "would delete (kept: pass --yes to delete)",
    };
    for s in &plan.delete {
        println!(
            "  {verb}: {} ({} unique)",
            s.reference(),
            human_bytes(s.usage.unique)
        );
    }
}
