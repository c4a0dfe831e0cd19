//! Installed apps: `Info.plist` → `Installed Applications` (bundle ids) and `Manifest.plist` →
//! `Applications` (bundle id → `CFBundleVersion`, `CFBundleShortVersionString`, `Path`), joined
//! with the size of each app's `AppDomain-<bundle id>` container in the manifest.
//!
//! Backups do not carry the apps' display names (those are in the app bundles, which backups
//! leave out); `name` is filled only when `Manifest.plist` happens to hold one.

use std::collections::BTreeMap;

use iosnap_format::Backup;
use serde::Serialize;

use crate::error::Result;

/// One installed app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct App {
    /// Bundle id, e.g. `net.whatsapp.WhatsApp`.
    pub bundle_id: String,
    /// Display name, when the backup has one (rarely).
    pub name: Option<String>,
    /// `CFBundleShortVersionString` (what the App Store shows), else `CFBundleVersion`.
    pub version: Option<String>,
    /// Bundle path on the phone, from Manifest.plist.
    pub path: Option<String>,
    /// Files in the app's `AppDomain-<bundle id>` container.
    pub files: u64,
    /// Bytes in that container.
    pub bytes: u64,
}

fn string(d: &plist::Dictionary, k: &str) -> Option<String> {
    d.get(k)
        .and_then(plist::Value::as_string)
        .map(str::to_string)
        .filter(|s| !s.trim().is_empty())
}

/// The apps of a backup, sorted by bundle id. Reads the manifest once for container sizes.
pub fn apps(backup: &Backup) -> Result<Vec<App>> {
    let mut map: BTreeMap<String, App> = BTreeMap::new();
    let blank = |id: &str| App {
        bundle_id: id.to_string(),
        name: None,
        version: None,
        path: None,
        files: 0,
        bytes: 0,
    };
    if let Some(info) = backup.info() {
        for id in &info.installed_applications {
            map.entry(id.clone()).or_insert_with(|| blank(id));
        }
    }
    if let Some(m) = backup.manifest() {
        for (id, v) in &m.applications {
            let app = map.entry(id.clone()).or_insert_with(|| blank(id));
            if let Some(d) = v.as_dictionary() {
                app.version = string(d, "CFBundleShortVersionString")
                    .or_else(|| string(d, "CFBundleVersion"));
                app.path = string(d, "Path");
                app.name = string(d, "CFBundleDisplayName").or_else(|| string(d, "CFBundleName"));
            }
        }
    }
    if !map.is_empty() {
        for e in backup.entries()?.entries {
            if let Some(id) = e.domain.strip_prefix("AppDomain-")
                && let Some(app) = map.get_mut(id)
                && e.has_data()
            {
                app.files += 1;
                app.bytes += e.meta.size;
            }
        }
    }
    Ok(map.into_values().collect())
}
