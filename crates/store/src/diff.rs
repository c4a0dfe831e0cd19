//! What changed between two snapshots (or any two backups): files added, removed and
//! changed, grouped by domain and app, from their manifests.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::MetadataExt;

use iosnap_format::backup::Backup;
use iosnap_format::{Entry, EntryKind};
use serde::Serialize;

use crate::error::Result;

/// Counts for one domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DomainDiff {
    /// The app's bundle id for `AppDomain*-<id>` domains.
    pub app: Option<String>,
    /// Paths only in the newer backup.
    pub added: Vec<String>,
    /// Paths only in the older backup.
    pub removed: Vec<String>,
    /// Paths in both whose kind, size, modification time or data differ.
    pub changed: Vec<String>,
    /// Bytes of added and changed files in the newer backup.
    pub new_bytes: u64,
}

/// The whole comparison, by domain name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// Domains with at least one difference.
    pub domains: BTreeMap<String, DomainDiff>,
}

impl Diff {
    /// Totals (added, removed, changed).
    pub fn totals(&self) -> (usize, usize, usize) {
        self.domains.values().fold((0, 0, 0), |(a, r, c), d| {
            (a + d.added.len(), r + d.removed.len(), c + d.changed.len())
        })
    }
}

/// The bundle id of an app domain (`AppDomain-com.x`, `AppDomainGroup-…`, `AppDomainPlugin-…`).
pub fn app_of(domain: &str) -> Option<String> {
    ["AppDomain-", "AppDomainGroup-", "AppDomainPlugin-"]
        .iter()
        .find_map(|p| domain.strip_prefix(p))
        .map(str::to_string)
}

fn data_differs(a: &Backup, ea: &Entry, b: &Backup, eb: &Entry) -> bool {
    if !(ea.has_data() && eb.has_data()) {
        return false;
    }
    let (pa, pb) = (a.data_path(ea), b.data_path(eb));
    match (fs::metadata(&pa), fs::metadata(&pb)) {
        (Ok(ma), Ok(mb)) if ma.dev() == mb.dev() && ma.ino() == mb.ino() => false,
        (Ok(ma), Ok(mb)) if ma.len() != mb.len() => true,
        _ => match (fs::read(&pa), fs::read(&pb)) {
            (Ok(x), Ok(y)) => x != y,
            _ => true,
        },
    }
}

/// Compares `old` with `new` (both opened and, if encrypted, unlocked).
pub fn diff(old: &Backup, new: &Backup) -> Result<Diff> {
    let a = old.entries()?.entries;
    let b = new.entries()?.entries;
    let olds: HashMap<&str, &Entry> = a.iter().map(|e| (e.file_id.as_str(), e)).collect();
    let news: HashMap<&str, &Entry> = b.iter().map(|e| (e.file_id.as_str(), e)).collect();
    let mut d = Diff::default();
    fn slot<'d>(d: &'d mut Diff, domain: &str) -> &'d mut DomainDiff {
        d.domains
            .entry(domain.to_string())
            .or_insert_with(|| DomainDiff {
                app: app_of(domain),
                ..DomainDiff::default()
            })
    }
    for e in &b {
        match olds.get(e.file_id.as_str()) {
            None => {
                let s = slot(&mut d, &e.domain);
                s.added.push(e.relative_path.clone());
                if e.kind == EntryKind::File {
                    s.new_bytes += e.meta.size;
                }
            }
            Some(o) => {
                let changed = o.kind != e.kind
                    || o.meta.size != e.meta.size
                    || o.meta.mtime != e.meta.mtime
                    || o.meta.target != e.meta.target
                    || data_differs(old, o, new, e);
                if changed {
                    let s = slot(&mut d, &e.domain);
                    s.changed.push(e.relative_path.clone());
                    if e.kind == EntryKind::File {
                        s.new_bytes += e.meta.size;
                    }
                }
            }
        }
    }
    for e in &a {
        if !news.contains_key(e.file_id.as_str()) {
            slot(&mut d, &e.domain)
                .removed
                .push(e.relative_path.clone());
        }
    }
    for v in d.domains.values_mut() {
        v.added.sort();
        v.removed.sort();
        v.changed.sort();
    }
    Ok(d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn app_names() {
        assert_eq!(app_of("AppDomain-com.a.b").as_deref(), Some("com.a.b"));
        assert_eq!(app_of("AppDomainGroup-group.x").as_deref(), Some("group.x"));
        assert_eq!(app_of("HomeDomain"), None);
    }
}
