//! `iosnap ls DIR [PATH] [--domain D] [-l] [-R]`: the phone's tree, rebuilt from the manifest.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
use iosnap_format::domain::DomainGroup;
use iosnap_format::tree::Tree;
use iosnap_format::{Entry, EntryKind};
use serde::Serialize;

use crate::cli::LsArgs;
use crate::progress::human_bytes;
use crate::sanitize::for_terminal;

/// `--json` row of `iosnap ls` (docs/json.md).
#[derive(Debug, Serialize)]
struct RowJson<'a> {
    domain: &'a str,
    path: String,
    kind: &'static str,
    size: u64,
    mode: Option<String>,
    mtime: Option<String>,
    file_id: Option<&'a str>,
    /// A directory that has no manifest row of its own (implied by a deeper path).
    implied: bool,
}

/// `--json` row of `iosnap ls` without a path: one per domain.
#[derive(Debug, Serialize)]
struct DomainJson<'a> {
    domain: &'a str,
    group: DomainGroup,
    files: u64,
    directories: u64,
    symlinks: u64,
    bytes: u64,
}

pub fn run(args: &LsArgs) -> Result<ExitCode> {
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
    let entries = rows.entries;

    // Which domain/dir to list.
    let target: Option<(String, String)> = match (&args.domain, &args.path) {
        (Some(d), p) => Some((d.clone(), p.clone().unwrap_or_default())),
        (None, Some(p)) => {
            let p = p.trim_start_matches('/');
            let (d, rest) = p.split_once('/').unwrap_or((p, ""));
            Some((d.to_owned(), rest.to_owned()))
        }
        (None, None) => None,
    };

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());

    match target {
        None if !args.recursive => {
            let tree = Tree::build(&entries);
            let mut list = Vec::new();
            for (domain, s) in tree.stats() {
                list.push(DomainJson {
                    domain,
                    group: DomainGroup::classify(domain),
                    files: s.files,
                    directories: s.dirs,
                    symlinks: s.symlinks,
                    bytes: s.bytes,
                });
            }
            if args.json {
                drop(out);
                super::print_json(&list)?;
                return Ok(ExitCode::SUCCESS);
            }
            for d in &list {
                if args.long {
                    writeln!(
                        out,
                        "{:>8} files {:>10}  {}",
                        d.files,
                        human_bytes(d.bytes),
                        for_terminal(d.domain)
                    )?;
                } else {
                    writeln!(out, "{}", for_terminal(d.domain))?;
                }
            }
        }
        None => {
            // Every row of every domain, in (domain, path) order.
            let mut sorted: Vec<&Entry> = entries.iter().collect();
            sorted
                .sort_by(|a, b| (&a.domain, &a.relative_path).cmp(&(&b.domain, &b.relative_path)));
            let rows: Vec<RowJson> = sorted.iter().map(|e| row_from_entry(e)).collect();
            emit(&mut out, &rows, args)?;
        }
        Some((domain, dir)) => {
            let tree = Tree::build(&entries);
            let dir = dir.trim_matches('/').to_owned();
            let Some(node) = tree.node(&domain, &dir) else {
                bail!("no such path in the backup: {domain}/{dir}");
            };
            let mut rows = Vec::new();
            if node.kind != EntryKind::Directory {
                let e = node.entry_index.and_then(|i| entries.get(i));
                match e {
                    Some(e) => rows.push(row_from_entry(e)),
                    None => bail!("no such path in the backup: {domain}/{dir}"),
                }
            } else {
                walk(&tree, &entries, &domain, &dir, args.recursive, &mut rows)?;
            }
            emit(&mut out, &rows, args)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn row_from_entry(e: &Entry) -> RowJson<'_> {
    RowJson {
        domain: &e.domain,
        path: e.relative_path.clone(),
        kind: e.kind.name(),
        size: e.meta.size,
        mode: Some(format!("{:o}", e.meta.mode)),
        mtime: super::rfc3339(e.meta.mtime),
        file_id: Some(&e.file_id),
        implied: false,
    }
}

fn walk<'a>(
    tree: &Tree,
    entries: &'a [Entry],
    domain: &'a str,
    dir: &str,
    recursive: bool,
    rows: &mut Vec<RowJson<'a>>,
) -> Result<()> {
    for child in tree.list(domain, dir)? {
        let path = if dir.is_empty() {
            child.name.clone()
        } else {
            format!("{dir}/{}", child.name)
        };
        let entry = tree
            .node(domain, &path)
            .and_then(|n| n.entry_index)
            .and_then(|i| entries.get(i));
        let row = match entry {
            Some(e) => row_from_entry(e),
            None => RowJson {
                domain,
                path: path.clone(),
                kind: child.kind.name(),
                size: child.size,
                mode: None,
                mtime: super::rfc3339(child.mtime),
                file_id: None,
                implied: child.implied,
            },
        };
        rows.push(row);
        if recursive && child.kind == EntryKind::Directory {
            walk(tree, entries, domain, &path, true, rows)?;
        }
    }
    Ok(())
}

fn emit(out: &mut impl Write, rows: &[RowJson], args: &LsArgs) -> Result<()> {
    if args.json {
        serde_json::to_writer_pretty(&mut *out, rows)?;
        writeln!(out)?;
        return Ok(());
    }
    for r in rows {
        let mut name = format!("{}/{}", r.domain, r.path);
        if r.kind == "dir" && !name.ends_with('/') {
            name.push('/');
        }
        if args.long {
            writeln!(
                out,
                "{:<7} {:>12} {:>7} {:<20} {}",
                r.kind,
                r.size,
                r.mode.as_deref().unwrap_or("-"),
                r.mtime.as_deref().unwrap_or("-"),
                for_terminal(&name)
            )?;
        } else {
            writeln!(out, "{}", for_terminal(&name))?;
        }
    }
    Ok(())
}
