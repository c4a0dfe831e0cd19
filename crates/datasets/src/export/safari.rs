//! Safari exports: history as `history.csv` / `history.json` (one record per visit), bookmarks
//! as `bookmarks.html` in the Netscape bookmark format every browser imports.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use super::text::{csv_row, html};
use super::{ExportReport, OutDir, ProgressFn, finish};
use crate::error::{IoContext, Result};
use crate::safari::{Bookmark, HistoryDb};

const CSV_HEADER: [&str; 7] = [
    "visit_id",
    "time",
    "url",
    "title",
    "domain",
    "visit_count",
    "load_successful",
];

/// Writes `history.csv` or `history.json`.
pub(crate) fn export_history(
    db: &HistoryDb,
    fmt: &str,
    out: &OutDir,
    progress: ProgressFn<'_>,
) -> Result<ExportReport> {
    let mut report = ExportReport::default();
    let total = db.count()?;
    progress(0, total);
    let json = fmt == "json";
    let (path, mut w) = out.file(if json { "history.json" } else { "history.csv" })?;
    if json {
        w.write_all(b"[").at(&path)?;
    } else {
        w.write_all(csv_row(&CSV_HEADER).as_bytes()).at(&path)?;
    }
    for v in db.visits() {
        let v = v?;
        if json {
            if report.records > 0 {
                w.write_all(b",").at(&path)?;
            }
            w.write_all(b"\n").at(&path)?;
            serde_json::to_writer(&mut w, &v)?;
        } else {
            let s = |x: &Option<String>| x.clone().unwrap_or_default();
            w.write_all(
                csv_row(&[
                    v.id.to_string(),
                    v.time.map(crate::time::rfc3339).unwrap_or_default(),
                    s(&v.url),
                    s(&v.title),
                    s(&v.domain),
                    v.visit_count.map(|c| c.to_string()).unwrap_or_default(),
                    u8::from(v.load_successful).to_string(),
                ])
                .as_bytes(),
            )
            .at(&path)?;
        }
        report.records += 1;
        if report.records.is_multiple_of(1000) {
            progress(report.records, total);
        }
    }
    if json {
        w.write_all(b"\n]\n").at(&path)?;
    }
    finish(&path, w)?;
    report.files_written = 1;
    progress(report.records, total);
    Ok(report)
}

/// Only `http(s)`, `ftp`, `file` and `mailto` URLs become links (a `javascript:` bookmarklet
/// in an exported file is an attack waiting for a click).
fn safe_url(u: &str) -> bool {
    let l = u.trim_start().to_ascii_lowercase();
    ["http://", "https://", "ftp://", "file://", "mailto:"]
        .iter()
        .any(|p| l.starts_with(p))
}

/// Writes `bookmarks.html` (Netscape bookmark file).
pub(crate) fn export_bookmarks(
    all: &[Bookmark],
    out: &OutDir,
    progress: ProgressFn<'_>,
) -> Result<ExportReport> {
    let mut report = ExportReport::default();
    let total = all.iter().filter(|b| !b.is_folder).count() as u64;
    progress(0, total);
    let mut children: HashMap<Option<i64>, Vec<&Bookmark>> = HashMap::new();
    let ids: HashSet<i64> = all.iter().map(|b| b.id).collect();
    for b in all {
        // Rows whose parent does not exist hang off the root instead of vanishing.
        let parent = b.parent.filter(|p| ids.contains(p) && *p != b.id);
        children.entry(parent).or_default().push(b);
    }
    let (path, mut w) = out.file("bookmarks.html")?;
    let mut s = String::from(
        "<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<META HTTP-EQUIV=\"Content-Type\" CONTENT=\"text/html; charset=UTF-8\">\n<TITLE>Bookmarks</TITLE>\n<H1>Bookmarks</H1>\n<DL><p>\n",
    );
    // Iterative depth-first walk (a hostile parent cycle cannot recurse forever: each id is
    // emitted once).
    let mut done: HashSet<i64> = HashSet::new();
    let mut stack: Vec<(Vec<&Bookmark>, usize, usize)> = Vec::new();
    let root: Vec<&Bookmark> = children.get(&None).cloned().unwrap_or_default();
    stack.push((root, 0, 1));
    while let Some((list, i, depth)) = stack.pop() {
        let Some(b) = list.get(i).copied() else {
            if depth > 1 {
                s.push_str(&format!("{}</DL><p>\n", "    ".repeat(depth - 1)));
            }
            continue;
        };
        stack.push((list, i + 1, depth));
        if !done.insert(b.id) {
            continue;
        }
        let pad = "    ".repeat(depth);
        let title = html(b.title.as_deref().unwrap_or(""));
        if b.is_folder {
            s.push_str(&format!("{pad}<DT><H3>{title}</H3>\n{pad}<DL><p>\n"));
            let kids = children.get(&Some(b.id)).cloned().unwrap_or_default();
            stack.push((kids, 0, depth + 1));
        } else if let Some(u) = b.url.as_deref().filter(|u| safe_url(u)) {
            s.push_str(&format!("{pad}<DT><A HREF=\"{}\">{title}</A>\n", html(u)));
            report.records += 1;
        } else {
            report.skip(format!("bookmark {}: no http(s)/ftp/file/mailto URL", b.id));
        }
    }
    s.push_str("</DL><p>\n");
    for b in all.iter().filter(|b| !b.is_folder && !done.contains(&b.id)) {
        report.skip(format!(
            "bookmark {}: unreachable from the root (parent cycle)",
            b.id
        ));
    }
    w.write_all(s.as_bytes()).at(&path)?;
    finish(&path, w)?;
    report.files_written = 1;
    progress(report.records, total);
    Ok(report)
}
