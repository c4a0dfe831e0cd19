//! `iosnap verify DIR [--deep]`: every file row has its data file with the right size.

use std::process::ExitCode;

use anyhow::Result;
use iosnap_format::verify::verify;

use crate::cli::VerifyArgs;
use crate::progress::human_bytes;
use crate::sanitize::for_terminal;

pub fn run(args: &VerifyArgs) -> Result<ExitCode> {
    let backup = super::open_unlocked(&args.open)?;
    let report = verify(&backup, args.deep)?;
    if args.json {
        super::print_json(&report)?;
    } else {
        println!(
            "checked {} files ({}){}",
            report.files_checked,
            human_bytes(report.bytes_checked),
            if report.deep { ", decrypted" } else { "" }
        );
        let row = |label: &str, i: &iosnap_format::verify::RowIssue| {
            println!(
                "{label} {}/{} ({}): {}",
                for_terminal(&i.domain),
                for_terminal(&i.relative_path),
                i.file_id,
                for_terminal(&i.detail)
            );
        };
        report.missing.iter().for_each(|i| row("missing", i));
        report
            .size_mismatch
            .iter()
            .for_each(|i| row("wrong size", i));
        report
            .decrypt_errors
            .iter()
            .for_each(|i| row("undecryptable", i));
        for p in &report.extra {
            println!("extra {}", for_terminal(&p.display().to_string()));
        }
        for u in &report.unreadable {
            println!(
                "unreadable row {}/{} ({}): {}",
                for_terminal(&u.domain),
                for_terminal(&u.relative_path),
                for_terminal(&u.file_id),
                for_terminal(&u.reason)
            );
        }
        if report.is_clean() {
            println!("ok: no problems found");
        } else {
            println!(
                "problems: {} missing, {} wrong size, {} undecryptable, {} extra, {} unreadable rows",
                report.missing.len(),
                report.size_mismatch.len(),
                report.decrypt_errors.len(),
                report.extra.len(),
                report.unreadable.len()
            );
        }
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::PROBLEMS)
    })
}
