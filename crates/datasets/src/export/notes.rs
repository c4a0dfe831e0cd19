//! Notes export: one file per note, `<folder>/<title> (<Z_PK>).<md|txt|html>`, mtime = the
//! note's modification date; HTML also gets an `index.html`. Locked notes are written with a
//! line saying so (their bodies are encrypted) and counted in `skipped`.

use std::collections::HashMap;
use std::io::Write;

use super::text::{html, url_path};
use super::{ExportReport, OutDir, ProgressFn, finish, safe_name};
use crate::error::{IoContext, Result};
use crate::notes::{Note, NotesDb};
use crate::time::human;

fn render(n: &Note, fmt: &str) -> String {
    let title = n.title.clone().unwrap_or_else(|| format!("Note {}", n.pk));
    let dates = format!(
        "Created {} · Modified {}",
        n.created.map(human).unwrap_or_default(),
        n.modified.map(human).unwrap_or_default()
    );
    let body = match (&n.text, &n.body_error) {
        (Some(t), _) => t.clone(),
        (None, Some(e)) => format!("[body not exported: {e}]"),
        (None, None) => String::new(),
    };
    // The body's first line is the title: do not repeat it.
    let rest = match body.split_once('\n') {
        Some((first, rest)) if first.trim() == title.trim() => rest.to_string(),
        _ if body.trim() == title.trim() => String::new(),
        _ => body,
    };
    match fmt {
        "html" => format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font-family:-apple-system,Helvetica,Arial,sans-serif,'Apple Color Emoji','Segoe UI Emoji','Noto Color Emoji';max-width:760px;margin:2em auto;padding:0 1em}}.d{{color:#666;font-size:.85em}}</style></head><body>\n<p><a href=\"../index.html\">← All notes</a></p><h1>{t}</h1><p class=\"d\">{d}</p>\n{b}\n</body></html>\n",
            t = html(&title),
            d = html(&dates),
            b = rest
                .lines()
                .map(|l| format!("<p>{}</p>", html(l)))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        "txt" => format!("{title}\n{dates}\n\n{rest}\n"),
        _ => {
            // Markdown: the title as a heading; the text as it is (notes are plain text here;
            // lines starting with "#" would become headings, so they are escaped).
            let md: Vec<String> = rest
                .lines()
                .map(|l| {
                    if l.starts_with('#') {
                        format!("\\{l}")
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            format!(
                "# {}\n\n*{dates}*\n\n{}\n",
                title.replace('\n', " "),
                md.join("\n")
            )
        }
    }
}

/// Writes one file per note.
pub(crate) fn export(
    db: &NotesDb,
    fmt: &str,
    out: &OutDir,
    progress: ProgressFn<'_>,
) -> Result<ExportReport> {
    let mut report = ExportReport::default();
    let total = db.count()?;
    progress(0, total);
    let mut dirs: HashMap<String, OutDir> = HashMap::new();
    let mut index = Vec::new();
    for n in db.notes() {
        let n = n?;
        let folder = safe_name(n.folder.as_deref().unwrap_or("Notes"));
        let dir = match dirs.entry(folder.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(out.subdir(&folder)?),
        };
        let title = n.title.clone().unwrap_or_else(|| format!("Note {}", n.pk));
        let short: String = title.chars().take(60).collect();
        let name = safe_name(&format!("{} ({}).{fmt}", safe_name(&short), n.pk));
        let (path, mut w) = dir.file(&name)?;
        w.write_all(render(&n, fmt).as_bytes()).at(&path)?;
        finish(&path, w)?;
        if let Some(t) = n.modified.filter(|t| *t > 0)
            && let Ok(f) = std::fs::File::options().write(true).open(&path)
        {
            let _ =
                f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t as u64));
        }
        if let Some(e) = &n.body_error {
            report.skip(format!("note {} ({title}): body not exported: {e}", n.pk));
        }
        index.push((folder, name, title, n.modified));
        report.records += 1;
        report.files_written += 1;
        if report.records.is_multiple_of(200) {
            progress(report.records, total);
        }
    }
    if fmt == "html" {
        index.sort();
        let mut s = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Notes</title></head><body><h1>Notes</h1>\n",
        );
        let mut current = None;
        for (folder, name, title, modified) in &index {
            if current != Some(folder) {
                if current.is_some() {
                    s.push_str("</ul>\n");
                }
                s.push_str(&format!("<h2>{}</h2><ul>\n", html(folder)));
                current = Some(folder);
            }
            s.push_str(&format!(
                "<li><a href=\"{}\">{}</a> <small>{}</small></li>\n",
                html(&url_path(&format!("{folder}/{name}"))),
                html(title),
                modified.map(human).unwrap_or_default()
            ));
        }
        if current.is_some() {
            s.push_str("</ul>\n");
        }
        s.push_str("</body></html>\n");
        let (path, mut w) = out.file("index.html")?;
        w.write_all(s.as_bytes()).at(&path)?;
        finish(&path, w)?;
        report.files_written += 1;
    }
    report.groups = dirs.len() as u64;
    progress(report.records, total);
    Ok(report)
}
