//! Backup domains grouped as people think of them.
//!
//! A backup has hundreds of domains (562 in a real iOS 14.3 backup). Users think in "system
//! data" and "apps", and an app's data is spread over `AppDomain-<bundle>`,
//! `AppDomainGroup-group.<...>` (shared with its extensions) and `AppDomainPlugin-<bundle>.<ext>`.
//! [`DomainGroup::classify`] names what one domain is; [`group_domains`] folds a whole list into a
//! [`DomainSummary`] that puts plugins and groups next to the app they most likely belong to.

use std::collections::BTreeMap;

/// What one backup domain is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DomainGroup {
    /// A system domain such as `HomeDomain`, `MediaDomain`, `CameraRollDomain`,
    /// `KeychainDomain`, `WirelessDomain` (any domain without a known prefix).
    System {
        /// The domain name.
        name: String,
    },
    /// `AppDomain-<bundle id>`: an app's own container.
    App {
        /// The app's bundle id.
        bundle_id: String,
    },
    /// `AppDomainGroup-<group id>`: an app-group container shared by an app and its extensions.
    AppGroup {
        /// The group id (usually `group.<...>`).
        group_id: String,
    },
    /// `AppDomainPlugin-<bundle id>`: an app extension's container.
    AppPlugin {
        /// The extension's bundle id.
        bundle_id: String,
    },
    /// `SysContainerDomain-<id>`: a system daemon's data container.
    SysContainer {
        /// The container id.
        id: String,
    },
    /// `SysSharedContainerDomain-<id>`: a system shared (group) container.
    SysSharedContainer {
        /// The container id.
        id: String,
    },
}

/// Prefixes in the order they must be tested (longer ones first: `AppDomain-` is a prefix of
/// neither of the others, but keep the order explicit anyway).
const APP_GROUP: &str = "AppDomainGroup-";
const APP_PLUGIN: &str = "AppDomainPlugin-";
const APP: &str = "AppDomain-";
const SYS_SHARED: &str = "SysSharedContainerDomain-";
const SYS: &str = "SysContainerDomain-";

impl DomainGroup {
    /// Classifies one domain name. Never fails: anything unknown is a system domain.
    pub fn classify(domain: &str) -> DomainGroup {
        if let Some(id) = domain.strip_prefix(APP_GROUP) {
            DomainGroup::AppGroup {
                group_id: id.to_string(),
            }
        } else if let Some(id) = domain.strip_prefix(APP_PLUGIN) {
            DomainGroup::AppPlugin {
                bundle_id: id.to_string(),
            }
        } else if let Some(id) = domain.strip_prefix(APP) {
            DomainGroup::App {
                bundle_id: id.to_string(),
            }
        } else if let Some(id) = domain.strip_prefix(SYS_SHARED) {
            DomainGroup::SysSharedContainer { id: id.to_string() }
        } else if let Some(id) = domain.strip_prefix(SYS) {
            DomainGroup::SysContainer { id: id.to_string() }
        } else {
            DomainGroup::System {
                name: domain.to_string(),
            }
        }
    }

    /// The domain name this group value stands for (inverse of [`DomainGroup::classify`]).
    pub fn domain(&self) -> String {
        match self {
            DomainGroup::System { name } => name.clone(),
            DomainGroup::App { bundle_id } => format!("{APP}{bundle_id}"),
            DomainGroup::AppGroup { group_id } => format!("{APP_GROUP}{group_id}"),
            DomainGroup::AppPlugin { bundle_id } => format!("{APP_PLUGIN}{bundle_id}"),
            DomainGroup::SysContainer { id } => format!("{SYS}{id}"),
            DomainGroup::SysSharedContainer { id } => format!("{SYS_SHARED}{id}"),
        }
    }

    /// Whether the domain belongs to an app (container, group or plugin).
    pub fn is_app(&self) -> bool {
        matches!(
            self,
            DomainGroup::App { .. } | DomainGroup::AppGroup { .. } | DomainGroup::AppPlugin { .. }
        )
    }
}

/// Everything that belongs to one app, for `iosnap ls --apps`-style views.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AppDomains {
    /// `AppDomain-<bundle>` if the backup has it (a group or plugin may exist without it).
    pub container: Option<String>,
    /// `AppDomainPlugin-…` domains whose bundle id starts with `<bundle>.`.
    pub plugins: Vec<String>,
    /// `AppDomainGroup-…` domains whose group id, without a leading `group.`, is the bundle id or
    /// starts with `<bundle>.` (a heuristic: group ids are free-form).
    pub groups: Vec<String>,
}

/// A whole backup's domains, grouped.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DomainSummary {
    /// System domains (`HomeDomain`, `MediaDomain`, …), sorted.
    pub system: Vec<String>,
    /// Apps by bundle id.
    pub apps: BTreeMap<String, AppDomains>,
    /// App groups that could not be attached to any app.
    pub other_groups: Vec<String>,
    /// Plugins that could not be attached to any app.
    pub other_plugins: Vec<String>,
    /// `SysContainerDomain-…` domains.
    pub sys_containers: Vec<String>,
    /// `SysSharedContainerDomain-…` domains.
    pub sys_shared_containers: Vec<String>,
}

/// The app (among `apps`) whose bundle id is the longest `id` or prefix of `id` on a `.` boundary.
fn owning_app<'a>(apps: &'a BTreeMap<String, AppDomains>, id: &str) -> Option<&'a String> {
    apps.keys()
        .filter(|b| {
            id == b.as_str()
                || id
                    .strip_prefix(b.as_str())
                    .is_some_and(|r| r.starts_with('.'))
        })
        .max_by_key(|b| b.len())
}

/// Groups domain names (duplicates are ignored). Plugins and groups are attached to the app
/// whose bundle id is their longest dotted prefix; the rest stay in `other_*`.
pub fn group_domains<'a>(domains: impl IntoIterator<Item = &'a str>) -> DomainSummary {
    let mut s = DomainSummary::default();
    let mut groups = Vec::new();
    let mut plugins = Vec::new();
    let mut all: Vec<&str> = domains.into_iter().collect();
    all.sort_unstable();
    all.dedup();
    for d in all {
        match DomainGroup::classify(d) {
            DomainGroup::System { .. } => s.system.push(d.to_string()),
            DomainGroup::App { bundle_id } => {
                s.apps.entry(bundle_id).or_default().container = Some(d.to_string());
            }
            DomainGroup::AppGroup { group_id } => groups.push((group_id, d)),
            DomainGroup::AppPlugin { bundle_id } => plugins.push((bundle_id, d)),
            DomainGroup::SysContainer { .. } => s.sys_containers.push(d.to_string()),
            DomainGroup::SysSharedContainer { .. } => s.sys_shared_containers.push(d.to_string()),
        }
    }
    for (id, d) in plugins {
        match owning_app(&s.apps, &id).cloned() {
            Some(app) => s.apps.entry(app).or_default().plugins.push(d.to_string()),
            None => s.other_plugins.push(d.to_string()),
        }
    }
    for (id, d) in groups {
        let bare = id.strip_prefix("group.").unwrap_or(&id);
        match owning_app(&s.apps, bare).cloned() {
            Some(app) => s.apps.entry(app).or_default().groups.push(d.to_string()),
            None => s.other_groups.push(d.to_string()),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_round_trips() {
        for d in [
            "HomeDomain",
            "KeychainDomain",
            "AppDomain-net.whatsapp.WhatsApp",
            "AppDomainGroup-group.net.whatsapp.WhatsApp.shared",
            "AppDomainPlugin-net.whatsapp.WhatsApp.ShareExtension",
            "SysContainerDomain-com.apple.adid",
            "SysSharedContainerDomain-systemgroup.com.apple.configurationprofiles",
        ] {
            assert_eq!(DomainGroup::classify(d).domain(), d);
        }
        assert_eq!(
            DomainGroup::classify("AppDomain-com.a"),
            DomainGroup::App {
                bundle_id: "com.a".into()
            }
        );
        assert!(!DomainGroup::classify("MediaDomain").is_app());
    }

    #[test]
    fn groups_attach_to_apps() {
        let s = group_domains([
            "HomeDomain",
            "AppDomain-net.whatsapp.WhatsApp",
            "AppDomain-net.whatsapp.WhatsAppSMB",
            "AppDomainGroup-group.net.whatsapp.WhatsApp.shared",
            "AppDomainPlugin-net.whatsapp.WhatsApp.ShareExtension",
            "AppDomainPlugin-com.other.Ext",
            "AppDomainGroup-group.com.other",
            "SysContainerDomain-com.apple.adid",
            "HomeDomain",
        ]);
        assert_eq!(s.system, vec!["HomeDomain"]);
        let wa = &s.apps["net.whatsapp.WhatsApp"];
        assert_eq!(
            wa.container.as_deref(),
            Some("AppDomain-net.whatsapp.WhatsApp")
        );
        assert_eq!(
            wa.plugins,
            vec!["AppDomainPlugin-net.whatsapp.WhatsApp.ShareExtension"]
        );
        assert_eq!(
            wa.groups,
            vec!["AppDomainGroup-group.net.whatsapp.WhatsApp.shared"]
        );
        assert!(s.apps["net.whatsapp.WhatsAppSMB"].plugins.is_empty());
        assert_eq!(s.other_plugins, vec!["AppDomainPlugin-com.other.Ext"]);
        assert_eq!(s.other_groups, vec!["AppDomainGroup-group.com.other"]);
        assert_eq!(s.sys_containers.len(), 1);
    }
}
