//! Apps export: `apps.csv` or `apps.json` (an array of [`crate::apps::App`]), and — with
//! [`export_app_files`] — each chosen app's files as a browsable tree:
//!
//! ```text
//! OUT/apps.csv
//! OUT/<bundle id>/AppDomain-<bundle id>/Documents/…
//! OUT/<bundle id>/AppDomainGroup-<group id>/…      (the app's groups)
//! OUT/<bundle id>/AppDomainPlugin-<extension id>/… (its extensions)
//! ```
//!
//! Which groups and extensions belong to an app is decided by [`crate::apps::app_domains`].
//! Files are written by [`iosnap_format::extract::Extractor`] (decrypting when the backup is
//! encrypted), so every path found in the manifest goes through its path-safety checks:
//! `..`, absolute paths and escaping symlinks are skipped and reported, never followed.

use std::io::Write;
use std::path::Path;

use iosnap_format::Backup;
use iosnap_format::extract::{Extractor, Overwrite};

use super::text::csv_row;
use super::{ExportReport, OutDir, ProgressFn, finish};
use crate::apps::{App, app_domains};
use crate::error::{IoContext, Result};

/// Exports the app list (`apps.csv`, or `apps.json` when `format` is `json`) and, for each of
/// `bundle_ids`, the app's files under `OUT/<bundle id>/<domain>/…` (layout in the module
/// doc; the folder name goes through [`super::safe_name`]). `records` counts the apps listed,
/// `groups` the apps whose files were written, `files_written` the list plus every app file;
/// unsafe paths, missing data files and unreadable files are counted as skips with their
/// reason. Fails before writing anything
/// when a bundle id is unknown ([`crate::Error::UnknownApp`]).
pub fn export_app_files(
    backup: &Backup,
    bundle_ids: &[String],
    format: Option<&str>,
    out: &Path,
    progress: ProgressFn<'_>,
) -> Result<ExportReport> {
    let fmt = match format.map(str::to_ascii_lowercase).as_deref() {
        None | Some("csv") => "csv",
        Some("json") => "json",
        Some(other) => {
            return Err(crate::Error::UnknownFormat {
                dataset: "apps",
                format: other.to_string(),
                choices: "csv, json",
            });
        }
    };
    let mut wanted = Vec::with_capacity(bundle_ids.len());
    for id in bundle_ids {
        wanted.push(app_domains(backup, id)?);
    }
    let list = crate::apps::apps(backup)?;
    let dir = OutDir::create(out)?;
    let mut report = export(&list, fmt, &dir, &mut |_, _| {})?;
    let entries = backup.entries()?.entries;
    let total: u64 = wanted
        .iter()
        .map(|a| {
            let d = a.all();
            entries.iter().filter(|e| d.contains(&e.domain)).count() as u64
        })
        .sum();
    progress(0, total);
    let mut done = 0;
    for app in &wanted {
        let mut ex = Extractor::new(dir.subdir(&app.bundle_id)?.root());
        ex.domains = app.all().into_iter().collect();
        ex.overwrite = Overwrite::Replace;
        let r = ex.run(backup, &entries, &|_| {})?;
        report.files_written += r.files;
        report.groups += 1;
        for s in &r.skipped {
            report.skip(format!(
                "{}: {}/{}: {}",
                app.bundle_id, s.domain, s.relative_path, s.reason
            ));
        }
        done += r.files + r.dirs + r.symlinks;
        progress(done.min(total), total);
    }
    progress(total, total);
    report.dataset = "apps".to_string();
    report.format = fmt.to_string();
    report.out = out.to_path_buf();
    Ok(report)
}

/// Writes the list.
pub(crate) fn export(
    apps: &[App],
    fmt: &str,
    out: &OutDir,
    progress: ProgressFn<'_>,
) -> Result<ExportReport> {
    let mut report = ExportReport::default();
    let total = apps.len() as u64;
    progress(0, total);
    if fmt == "json" {
        let (path, mut w) = out.file("apps.json")?;
        serde_json::to_writer_pretty(&mut w, apps)?;
        w.write_all(b"\n").at(&path)?;
        finish(&path, w)?;
    } else {
        let (path, mut w) = out.file("apps.csv")?;
        w.write_all(
            csv_row(&["bundle_id", "name", "version", "path", "files", "bytes"]).as_bytes(),
        )
        .at(&path)?;
        for a in apps {
            let s = |x: &Option<String>| x.clone().unwrap_or_default();
            w.write_all(
                csv_row(&[
                    a.bundle_id.clone(),
                    s(&a.name),
                    s(&a.version),
                    s(&a.path),
                    a.files.to_string(),
                    a.bytes.to_string(),
                ])
                .as_bytes(),
            )
            .at(&path)?;
        }
        finish(&path, w)?;
    }
    report.records = total;
    report.files_written = 1;
    progress(total, total);
    Ok(report)
}
