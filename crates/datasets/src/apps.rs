//! Installed apps: `Info.plist` → `Installed Applications` (bundle ids) and `Manifest.plist` →
//! `Applications` (bundle id → `CFBundleVersion`, `CFBundleShortVersionString`, `Path`), joined
//! with the size of each app's `AppDomain-<bundle id>` container in the manifest.
//!
//! Backups do not carry the apps' display names (those are in the app bundles, which backups
//! leave out); `name` is filled only when `Manifest.plist` happens to hold one.

use std::collections::BTreeMap;

use iosnap_format::Backup;
use serde::Serialize;

use crate::error::{Error, Result};

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

/// The backup domains holding one app's files: its own container, the app groups it shares
/// with its extensions, and the extensions' (plugins') containers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AppDomains {
    /// The app's bundle id.
    pub bundle_id: String,
    /// `AppDomain-<bundle id>`, when the backup has files there.
    pub container: Option<String>,
    /// `AppDomainGroup-<group id>` domains that belong to the app.
    pub groups: Vec<String>,
    /// `AppDomainPlugin-<extension id>` domains that belong to the app.
    pub plugins: Vec<String>,
}

impl AppDomains {
    /// Every domain, container first.
    pub fn all(&self) -> Vec<String> {
        self.container
            .iter()
            .chain(&self.groups)
            .chain(&self.plugins)
            .cloned()
            .collect()
    }
}

/// Group ids Manifest.plist names for an app: `Applications.<id>.GroupContainers`, as
/// installation_proxy reports it (a dictionary group id → path, or an array of ids).
fn declared_groups(backup: &Backup, bundle_id: &str) -> Vec<String> {
    let Some(m) = backup.manifest() else {
        return Vec::new();
    };
    let Some(d) = m
        .applications
        .get(bundle_id)
        .and_then(plist::Value::as_dictionary)
    else {
        return Vec::new();
    };
    match d.get("GroupContainers") {
        Some(plist::Value::Dictionary(g)) => g.keys().cloned().collect(),
        Some(plist::Value::Array(a)) => a
            .iter()
            .filter_map(plist::Value::as_string)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether an extension belongs to an app: App Store rules require an extension's bundle id to
/// be prefixed by its containing app's (`net.whatsapp.WhatsApp.ShareExtension`).
pub fn plugin_belongs(plugin_id: &str, bundle_id: &str) -> bool {
    plugin_id
        .strip_prefix(bundle_id)
        .is_some_and(|rest| rest.starts_with('.') && rest.len() > 1)
}

/// Apple apps whose group is not named after their bundle id.
const APPLE_GROUPS: &[(&str, &str)] = &[("com.apple.mobilenotes", "group.com.apple.notes")];

/// Whether an app group belongs to an app, judged by its name when Manifest.plist does not
/// say: group ids are conventionally `group.<bundle id>[.suffix]` or
/// `<TEAMID>.groups.<bundle id>`; a group named after a parent of the bundle id
/// (`group.com.google.chrome` for `com.google.chrome.ios`) counts when it has at least three
/// labels, so a bare vendor prefix (`group.com.google`) never claims every app of a vendor.
pub fn group_belongs(group_id: &str, bundle_id: &str) -> bool {
    if APPLE_GROUPS
        .iter()
        .any(|(b, g)| *b == bundle_id && *g == group_id)
    {
        return true;
    }
    let mut rest = group_id;
    // A team-id prefix: ten upper-case letters or digits, then a dot.
    if let Some((team, tail)) = rest.split_once('.')
        && team.len() == 10
        && team
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        rest = tail;
    }
    rest = rest
        .strip_prefix("groups.")
        .or_else(|| rest.strip_prefix("group."))
        .unwrap_or(rest);
    if rest.is_empty() {
        return false;
    }
    let below = |a: &str, b: &str| a.strip_prefix(b).is_some_and(|t| t.starts_with('.'));
    rest == bundle_id
        || below(rest, bundle_id)
        || (below(bundle_id, rest) && rest.split('.').count() >= 3)
}

/// The domains of `bundle_id` in this backup. Groups come from Manifest.plist's
/// `GroupContainers` when present, else from [`group_belongs`]; plugins from
/// [`plugin_belongs`]. Fails with [`Error::UnknownApp`] when the backup knows nothing of
/// the app.
pub fn app_domains(backup: &Backup, bundle_id: &str) -> Result<AppDomains> {
    let entries = backup.entries()?;
    let domains: std::collections::BTreeSet<&str> =
        entries.entries.iter().map(|e| e.domain.as_str()).collect();
    let declared = declared_groups(backup, bundle_id);
    let mut out = AppDomains {
        bundle_id: bundle_id.to_string(),
        ..AppDomains::default()
    };
    for d in domains {
        if d.strip_prefix("AppDomain-") == Some(bundle_id) {
            out.container = Some(d.to_string());
        } else if let Some(g) = d.strip_prefix("AppDomainGroup-") {
            let owned = if declared.is_empty() {
                group_belongs(g, bundle_id)
            } else {
                declared.iter().any(|x| x == g)
            };
            if owned {
                out.groups.push(d.to_string());
            }
        } else if let Some(p) = d.strip_prefix("AppDomainPlugin-")
            && plugin_belongs(p, bundle_id)
        {
            out.plugins.push(d.to_string());
        }
    }
    let listed = backup
        .info()
        .is_some_and(|i| i.installed_applications.iter().any(|a| a == bundle_id))
        || backup
            .manifest()
            .is_some_and(|m| m.applications.contains_key(bundle_id));
    if out.container.is_none() && !listed {
        return Err(Error::UnknownApp {
            bundle_id: bundle_id.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_by_name() {
        assert!(plugin_belongs(
            "net.whatsapp.WhatsApp.ShareExtension",
            "net.whatsapp.WhatsApp"
        ));
        assert!(!plugin_belongs(
            "net.whatsapp.WhatsAppX",
            "net.whatsapp.WhatsApp"
        ));
        assert!(!plugin_belongs(
            "net.whatsapp.WhatsApp.",
            "net.whatsapp.WhatsApp"
        ));
        assert!(!plugin_belongs(
            "net.whatsapp.WhatsApp",
            "net.whatsapp.WhatsApp"
        ));
        for (g, b) in [
            (
                "group.net.whatsapp.WhatsApp.shared",
                "net.whatsapp.WhatsApp",
            ),
            ("group.com.spotify.client", "com.spotify.client"),
            ("243LU875E5.groups.com.apple.podcasts", "com.apple.podcasts"),
            ("group.com.google.chrome", "com.google.chrome.ios"),
            ("group.com.apple.notes", "com.apple.mobilenotes"),
        ] {
            assert!(group_belongs(g, b), "{g} {b}");
        }
        for (g, b) in [
            ("group.com.google", "com.google.chrome.ios"),
            ("group.com.spotify.clientx", "com.spotify.client"),
            ("group.", "com.spotify.client"),
            ("group.com.apple.notes", "com.apple.mobilesafari"),
        ] {
            assert!(!group_belongs(g, b), "{g} {b}");
        }
    }
}
