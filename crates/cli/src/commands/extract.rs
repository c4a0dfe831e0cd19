//! `iosnap extract DIR OUT [--domain D]... [--path GLOB]...`: decrypted files to
//! `OUT/<domain>/<relativePath>`, never outside OUT.

use std::process::ExitCode;

use anyhow::Result;
use iosnap_format::extract::{Extractor, Progress as ExtractProgress};
use iosnap_format::tree::compile_glob;
use iosnap_format::{Entry, EntryKind};

use crate::cli::ExtractArgs;
use crate::progress::{Progress, human_bytes};
use crate::sanitize::for_terminal;

pub fn run(args: &ExtractArgs, quiet: bool) -> Result<ExitCode> {
    let backup = super::open_unlocked(&args.open)?;
    let rows = backup.entries()?;
    for p in &rows.skipped {
        eprintln!(
            "iosnap: skipped unreadable manifest row {}/{}: {}",
            for_terminal(&p.domain),
            for_terminal(&p.relative_path),
            for_terminal(&p.reason)
        );
    }

    let globs = args
        .paths
        .iter()
        .map(|p| compile_glob(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut extractor = Extractor::new(&args.out);
    extractor.domains = args.domains.iter().cloned().collect();
    let selected: Vec<Entry> = rows
        .entries
        .into_iter()
        .filter(|e| {
            globs.is_empty()
                || globs
                    .iter()
                    .any(|g| g.is_match(format!("{}/{}", e.domain, e.relative_path)))
        })
        .collect();
    let total: u64 = selected
        .iter()
        .filter(|e| {
            e.kind == EntryKind::File
                && (extractor.domains.is_empty() || extractor.domains.contains(&e.domain))
        })
        .map(|e| e.meta.size)
        .sum();

    let bar = Progress::bytes("extracting", total, quiet || args.json);
    let report = extractor.run(&backup, &selected, &|p: ExtractProgress| {
        bar.set(p.bytes_done, p.files_done);
    })?;
    bar.finish();

    if args.json {
        super::print_json(&report)?;
    } else {
        println!(
            "extracted {} files ({}), {} directories, {} symlinks into {}",
            report.files,
            human_bytes(report.bytes),
            report.dirs,
            report.symlinks,
            for_terminal(&args.out.display().to_string())
        );
        for s in &report.skipped {
            println!(
                "skipped {}/{}: {}",
                for_terminal(&s.domain),
                for_terminal(&s.relative_path),
                for_terminal(&s.reason.to_string())
            );
        }
        for (path, expected, written) in &report.size_mismatches {
            println!(
                "note: {} has {written} bytes, the manifest says {expected}",
                for_terminal(path)
            );
        }
    }
    if report.failures().next().is_some() {
        return Ok(ExitCode::from(crate::exit::PROBLEMS));
    }
    Ok(ExitCode::SUCCESS)
}
