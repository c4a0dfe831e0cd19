//! Apps export: `apps.csv` or `apps.json` (an array of [`crate::apps::App`]).

use std::io::Write;

use super::text::csv_row;
use super::{ExportReport, OutDir, ProgressFn, finish};
use crate::apps::App;
use crate::error::{IoContext, Result};

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
