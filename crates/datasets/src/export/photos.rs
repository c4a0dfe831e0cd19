//! Photos export: every asset's original file under `All Photos/` with its original name and
//! its capture date as mtime, Live Photo videos (`.MOV`) next to their stills with the same base
//! name, trashed assets under `Recently Deleted/`, and each user album as `Albums/<title>/`
//! (hard links to the files in `All Photos/`, copies where links are impossible).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use iosnap_format::Backup;

use super::{ExportReport, OutDir, ProgressFn, finish, safe_name};
use crate::error::{IoContext, Result};
use crate::photos::{Asset, PhotosDb};

/// Picks a free name in a folder: `name`, else `stem (pk).ext`.
fn unique(used: &mut HashSet<String>, name: &str, pk: i64) -> String {
    let name = safe_name(name);
    if used.insert(name.to_ascii_lowercase()) {
        return name;
    }
    let alt = match name.rsplit_once('.') {
        Some((stem, ext)) => safe_name(&format!("{stem} ({pk}).{ext}")),
        None => safe_name(&format!("{name} ({pk})")),
    };
    used.insert(alt.to_ascii_lowercase());
    alt
}

fn set_mtime(path: &Path, unix: Option<i64>) {
    if let Some(t) = unix.filter(|t| *t > 0)
        && let Ok(f) = std::fs::File::options().write(true).open(path)
    {
        let _ = f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t as u64));
    }
}

/// Copies one backup file into `dir/name`.
fn copy(
    backup: &Backup,
    domain: &str,
    rel: &str,
    dir: &OutDir,
    name: &str,
) -> Result<Option<PathBuf>> {
    let e = match backup.find(domain, rel) {
        Ok(e) if e.has_data() => e,
        _ => return Ok(None),
    };
    let (path, mut w) = dir.file(name)?;
    std::io::copy(&mut backup.open_file(&e)?, &mut w).at(&path)?;
    finish(&path, w)?;
    Ok(Some(path))
}

/// Writes the export.
pub(crate) fn export(
    backup: &Backup,
    db: &PhotosDb,
    out: &OutDir,
    progress: ProgressFn<'_>,
) -> Result<ExportReport> {
    let mut report = ExportReport::default();
    let total = db.count()?;
    progress(0, total);
    let albums = db.albums()?;
    let mut member: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, (_, assets)) in albums.iter().enumerate() {
        for a in assets {
            member.entry(*a).or_default().push(i);
        }
    }
    let all = out.subdir("All Photos")?;
    let mut trash: Option<OutDir> = None;
    let mut album_dirs: HashMap<usize, (OutDir, HashSet<String>)> = HashMap::new();
    let albums_root = if albums.is_empty() {
        None
    } else {
        Some(out.subdir("Albums")?)
    };
    let mut used_all = HashSet::new();
    let mut used_trash = HashSet::new();
    let mut used_album_names = HashSet::new();
    for a in db.assets() {
        let a: Asset = a?;
        report.records += 1;
        let Some(rel) = a.backup_path() else {
            report.attachments_unsafe += 1;
            report.skip(format!("asset {}: unsafe or empty file path", a.pk));
            continue;
        };
        let shown = a
            .original_filename
            .clone()
            .or_else(|| a.filename.clone())
            .unwrap_or_else(|| format!("asset-{}", a.pk));
        let (dir, used) = if a.trashed {
            if trash.is_none() {
                trash = Some(out.subdir("Recently Deleted")?);
            }
            match trash.as_ref() {
                Some(t) => (t, &mut used_trash),
                None => (&all, &mut used_all),
            }
        } else {
            (&all, &mut used_all)
        };
        let name = unique(used, &shown, a.pk);
        let main = match copy(backup, "CameraRollDomain", &rel, dir, &name) {
            Ok(Some(p)) => p,
            Ok(None) => {
                report.attachments_missing += 1;
                continue;
            }
            Err(e) => {
                report.attachments_failed += 1;
                report.skip(format!("asset {} ({rel}): {e}", a.pk));
                continue;
            }
        };
        set_mtime(&main, a.date_created);
        report.attachments_copied += 1;
        report.files_written += 1;
        let mut written = vec![(main, name.clone())];
        if a.is_live() {
            let stem = |s: &str| {
                s.rsplit_once('.')
                    .map_or(s.to_string(), |(x, _)| x.to_string())
            };
            let mov_rel = format!("{}.MOV", stem(&rel));
            let mov_name = format!("{}.MOV", stem(&name));
            used.insert(mov_name.to_ascii_lowercase());
            match copy(backup, "CameraRollDomain", &mov_rel, dir, &mov_name) {
                Ok(Some(p)) => {
                    set_mtime(&p, a.date_created);
                    report.attachments_copied += 1;
                    report.files_written += 1;
                    written.push((p, mov_name));
                }
                Ok(None) => report.attachments_missing += 1,
                Err(e) => {
                    report.attachments_failed += 1;
                    report.skip(format!("asset {} live video: {e}", a.pk));
                }
            }
        }
        if let (Some(root), Some(list)) = (albums_root.as_ref(), member.get(&a.pk)) {
            for &i in list {
                let (adir, aused) = match album_dirs.entry(i) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let title = albums.get(i).map(|x| x.0.as_str()).unwrap_or("Album");
                        let short: String = title.chars().take(80).collect();
                        let folder = unique(&mut used_album_names, &short, i as i64);
                        v.insert((root.subdir(&folder)?, HashSet::new()))
                    }
                };
                for (src, n) in &written {
                    let n = unique(aused, n, a.pk);
                    let (dst, w) = adir.file(&n)?;
                    drop(w);
                    std::fs::remove_file(&dst).at(&dst)?;
                    if std::fs::hard_link(src, &dst).is_err() {
                        std::fs::copy(src, &dst).at(&dst)?;
                        set_mtime(&dst, a.date_created);
                    }
                    report.files_written += 1;
                }
            }
        }
        if report.records.is_multiple_of(50) {
            progress(report.records, total);
        }
    }
    report.groups = albums.len() as u64;
    progress(report.records, total);
    Ok(report)
}
