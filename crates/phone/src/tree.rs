//! The fixed part of the phone's tree: system domains with their usual files, and the installed
//! apps with their `AppDomain-`, `AppDomainGroup-` and `AppDomainPlugin-` containers. Paths follow
//! the real iOS 14.3 manifest of the mvt fixture.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::content::Source;
use crate::jpeg::{Picture, encode};
use crate::media::binary_plist;
use crate::rng;

/// An installed app, as installation_proxy and Info.plist/Manifest.plist report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// Bundle identifier, e.g. `net.whatsapp.WhatsApp`.
    pub bundle_id: String,
    /// Display name.
    pub name: String,
    /// CFBundleVersion.
    pub version: String,
    /// CFBundleShortVersionString.
    pub short_version: String,
    /// The app's data domain, `AppDomain-<bundle id>`.
    pub container_domain: String,
    /// App-group domains (`AppDomainGroup-<group id>`).
    pub group_domains: Vec<String>,
    /// Extension domains (`AppDomainPlugin-<extension id>`).
    pub plugin_domains: Vec<String>,
}

/// (bundle id, name, short version, groups, plugins).
type AppDef = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

const APPS: &[AppDef] = &[
    (
        "com.apple.mobilesafari",
        "Safari",
        "17.5",
        &[],
        &["com.apple.mobilesafari.SafariViewService"],
    ),
    (
        "com.apple.mobilenotes",
        "Notes",
        "4.11",
        &["group.com.apple.notes"],
        &["com.apple.mobilenotes.SharingExtension"],
    ),
    (
        "net.whatsapp.WhatsApp",
        "WhatsApp",
        "24.10.78",
        &["group.net.whatsapp.WhatsApp.shared"],
        &[
            "net.whatsapp.WhatsApp.ShareExtension",
            "net.whatsapp.WhatsApp.ServiceExtension",
        ],
    ),
    (
        "com.google.chrome.ios",
        "Chrome",
        "125.0.6422.80",
        &["group.com.google.chrome"],
        &["com.google.chrome.ios.ShareExtension"],
    ),
    (
        "org.mozilla.ios.Firefox",
        "Firefox",
        "126.1",
        &["group.org.mozilla.ios.Firefox"],
        &[],
    ),
    (
        "com.google.Gmail",
        "Gmail",
        "6.0.240512",
        &["group.com.google.Gmail"],
        &[],
    ),
    (
        "com.apple.Maps",
        "Maps",
        "3.0",
        &["group.com.apple.Maps"],
        &[],
    ),
    (
        "com.apple.podcasts",
        "Podcasts",
        "4.0",
        &["243LU875E5.groups.com.apple.podcasts"],
        &[],
    ),
    (
        "com.apple.stocks",
        "Stocks",
        "7.0",
        &["group.com.apple.stocks"],
        &["com.apple.stocks.widget"],
    ),
    (
        "com.spotify.client",
        "Spotify",
        "8.9.42",
        &["group.com.spotify.client"],
        &["com.spotify.client.WidgetExtension"],
    ),
    (
        "com.burbn.instagram",
        "Instagram",
        "330.0",
        &["group.com.burbn.instagram"],
        &[],
    ),
    (
        "ph.telegra.Telegraph",
        "Telegram",
        "10.12",
        &["group.ph.telegra.Telegraph"],
        &["ph.telegra.Telegraph.Share"],
    ),
    (
        "com.microsoft.Office.Outlook",
        "Outlook",
        "4.2419.0",
        &["group.com.microsoft.Office.Outlook"],
        &[],
    ),
    ("com.netflix.Netflix", "Netflix", "16.22.0", &[], &[]),
    (
        "com.duolingo.DuolingoMobile",
        "Duolingo",
        "7.25.0",
        &[],
        &[],
    ),
    ("com.ubercab.UberClient", "Uber", "3.610.10000", &[], &[]),
    ("com.airbnb.app", "Airbnb", "24.19", &[], &[]),
    (
        "com.getdropbox.Dropbox",
        "Dropbox",
        "388.2",
        &["group.com.getdropbox.Dropbox"],
        &["com.getdropbox.Dropbox.FileProvider"],
    ),
    ("com.apple.mobilemail", "Mail", "3.0", &[], &[]),
    ("com.apple.Health", "Health", "1.0", &[], &[]),
    ("com.apple.tv", "TV", "1.0", &[], &[]),
    ("com.toyopagroup.picaboo", "Snapchat", "13.2.0", &[], &[]),
    ("com.zhiliaoapp.musically", "TikTok", "34.5.0", &[], &[]),
    ("com.linkedin.LinkedIn", "LinkedIn", "9.29.8", &[], &[]),
    (
        "com.evernote.iPhone.Evernote",
        "Evernote",
        "10.88",
        &[],
        &[],
    ),
    ("com.strava.stravaride", "Strava", "366.0", &[], &[]),
];

/// Number of apps available to [`crate::PhoneSpec::apps`].
pub const MAX_APPS: usize = APPS.len();

/// One non-directory item of the fixed tree.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub domain: String,
    pub path: String,
    pub source: Source,
    pub size: u64,
    /// Symlink target (then `source` is `None`).
    pub target: Option<String>,
}

impl Item {
    fn bytes(domain: &str, path: impl Into<String>, bytes: Vec<u8>) -> Item {
        let size = bytes.len() as u64;
        Item {
            domain: domain.into(),
            path: path.into(),
            source: Source::Small(Arc::from(bytes)),
            size,
            target: None,
        }
    }

    fn link(domain: &str, path: impl Into<String>, target: impl Into<String>) -> Item {
        Item {
            domain: domain.into(),
            path: path.into(),
            source: Source::None,
            size: 0,
            target: Some(target.into()),
        }
    }

    /// A directory marker: an explicit empty directory.
    fn dir(domain: &str, path: impl Into<String>) -> Item {
        Item {
            domain: domain.into(),
            path: path.into(),
            source: Source::None,
            size: 0,
            target: None,
        }
    }
}

/// The apps for a spec (the first `count`).
pub(crate) fn apps(count: usize) -> Vec<App> {
    APPS.iter()
        .take(count)
        .map(|(id, name, ver, groups, plugins)| App {
            bundle_id: (*id).into(),
            name: (*name).into(),
            version: ver.replace('.', ""),
            short_version: (*ver).into(),
            container_domain: format!("AppDomain-{id}"),
            group_domains: groups
                .iter()
                .map(|g| format!("AppDomainGroup-{g}"))
                .collect(),
            plugin_domains: plugins
                .iter()
                .map(|p| format!("AppDomainPlugin-{p}"))
                .collect(),
        })
        .collect()
}

fn prefs(seed: u64, name: &str, extra: &[(&str, plist::Value)]) -> Vec<u8> {
    let mut d = plist::Dictionary::new();
    let k = rng::key(seed, "prefs", 0) ^ rng::key(0, name, 0);
    d.insert(
        "LastLaunchDate".into(),
        plist::Value::Integer(((k % 1_000_000) as i64 + 700_000_000).into()),
    );
    d.insert(
        "DidShowOnboarding".into(),
        plist::Value::Boolean(k & 1 == 1),
    );
    d.insert(
        "LaunchCount".into(),
        plist::Value::Integer(((k >> 8) % 500).into()),
    );
    d.insert(
        "InstallationUUID".into(),
        plist::Value::String(rng::uuid(k)),
    );
    for (key, v) in extra {
        d.insert((*key).into(), v.clone());
    }
    binary_plist(&plist::Value::Dictionary(d))
}

const HOME_PREFS: &[&str] = &[
    "com.apple.AppStore",
    "com.apple.MobileSMS",
    "com.apple.mobilenotes",
    "com.apple.mobiletimer",
    "com.apple.Accessibility",
    "com.apple.CloudKit",
    "com.apple.assetsd",
    "com.apple.backboardd",
    "com.apple.gamecenter",
    "com.apple.homed",
    "com.apple.identityservicesd",
    "com.apple.imagent",
    "com.apple.madrid",
    "com.apple.mediaremote",
    "com.apple.passd",
    "com.apple.sharingd",
    "com.apple.tipsd",
    "com.apple.voicememod",
    "com.apple.springboard",
    "com.apple.preferences.sounds",
    "com.apple.locationd",
    "com.apple.weather",
    "com.apple.mobilecal",
    "com.apple.mobilephone",
    "com.apple.camera",
];

/// Every fixed (non-dataset, non-bulk) item of the phone.
pub(crate) fn items(seed: u64, apps: &[App], epoch: i64) -> Vec<Item> {
    let mut v = Vec::new();
    let h = "HomeDomain";
    for p in HOME_PREFS {
        v.push(Item::bytes(
            h,
            format!("Library/Preferences/{p}.plist"),
            prefs(seed, p, &[]),
        ));
    }
    v.push(Item::link(
        h,
        "Library/Preferences/com.apple.carrier_1.plist",
        "/var/mobile/Library/Carrier Bundles/Overlay/310260/carrier.plist",
    ));
    v.push(Item::link(
        h,
        "Library/Preferences/com.apple.operator_1.plist",
        "/var/mobile/Library/Operator Bundle.bundle/carrier.plist",
    ));
    let icon_lists: Vec<plist::Value> = apps
        .chunks(12)
        .map(|page| {
            plist::Value::Array(
                page.iter()
                    .map(|a| plist::Value::String(a.bundle_id.clone()))
                    .collect(),
            )
        })
        .collect();
    let mut icons = plist::Dictionary::new();
    icons.insert("iconLists".into(), plist::Value::Array(icon_lists));
    icons.insert(
        "buttonBar".into(),
        plist::Value::Array(
            [
                "com.apple.mobilephone",
                "com.apple.mobilesafari",
                "com.apple.MobileSMS",
                "com.apple.camera",
            ]
            .iter()
            .map(|s| plist::Value::String((*s).into()))
            .collect(),
        ),
    );
    v.push(Item::bytes(
        h,
        "Library/SpringBoard/IconState.plist",
        binary_plist(&plist::Value::Dictionary(icons)),
    ));
    let wall = |w: u16, hgt: u16, c: &str| Picture {
        width: w,
        height: hgt,
        from: [20, 40, 120],
        to: [250, 140, 60],
        exif_date: "2023:09:18 09:00:00".into(),
        model: "iPhone".into(),
        comment: format!("wallpaper {c} {seed}"),
    };
    v.push(Item::bytes(
        h,
        "Library/SpringBoard/LockBackgroundThumbnail.jpg",
        encode(&wall(120, 256, "lock")),
    ));
    v.push(Item::bytes(
        h,
        "Library/SpringBoard/HomeBackgroundThumbnail.jpg",
        encode(&wall(120, 256, "home")),
    ));
    v.push(Item::bytes(
        h,
        "Library/Recents/Recents",
        prefs(seed, "recents", &[]),
    ));
    v.push(Item::bytes(
        h,
        "Library/Mail/Accounts.plist",
        prefs(seed, "mail-accounts", &[]),
    ));
    v.push(Item::dir(h, "Library/SMS/StickerCache"));
    v.push(Item::dir(h, "Library/CallHistoryTransactions"));
    v.push(Item::dir(h, "Library/Reminders/Container_v1/Stores"));
    v.push(Item::dir(h, "Documents"));
    v.push(Item::bytes("KeychainDomain", "keychain-backup.plist", {
        let mut d = plist::Dictionary::new();
        for k in ["genp", "inet", "cert", "keys"] {
            d.insert(k.into(), plist::Value::Array(Vec::new()));
        }
        binary_plist(&plist::Value::Dictionary(d))
    }));
    let mut wifi = plist::Dictionary::new();
    for (i, ssid) in ["Home-5G", "Office Guest", "CoffeeShop", "Airport_Free_WiFi"]
        .iter()
        .enumerate()
    {
        let mut n = plist::Dictionary::new();
        n.insert("SSID_STR".into(), plist::Value::String((*ssid).into()));
        n.insert(
            "lastJoined".into(),
            plist::Value::Date(
                std::time::SystemTime::UNIX_EPOCH
                    .checked_add(std::time::Duration::from_secs(
                        (epoch - 86_400 * (i as i64 + 1) * 9).max(0) as u64,
                    ))
                    .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
                    .into(),
            ),
        );
        wifi.insert(
            format!("wifi.network.ssid.{ssid}"),
            plist::Value::Dictionary(n),
        );
    }
    let s = "SystemPreferencesDomain";
    v.push(Item::bytes(
        s,
        "com.apple.wifi.known-networks.plist",
        binary_plist(&plist::Value::Dictionary(wifi)),
    ));
    v.push(Item::bytes(
        s,
        "SystemConfiguration/com.apple.wifi.plist",
        prefs(seed, "wifi", &[]),
    ));
    v.push(Item::bytes(
        s,
        "SystemConfiguration/com.apple.wifi-private-mac-networks.plist",
        prefs(seed, "wifi-mac", &[]),
    ));
    v.push(Item::bytes(
        s,
        "SystemConfiguration/preferences.plist",
        prefs(seed, "sysconfig", &[]),
    ));
    v.push(Item::bytes(
        s,
        "SystemConfiguration/com.apple.accounts.exists.plist",
        prefs(seed, "accounts-exists", &[]),
    ));
    let w = "WirelessDomain";
    v.push(Item::bytes(
        w,
        "Library/Preferences/com.apple.commcenter.plist",
        prefs(seed, "commcenter", &[]),
    ));
    v.push(Item::bytes(
        w,
        "Library/Preferences/com.apple.commcenter.callservices.plist",
        prefs(seed, "callservices", &[]),
    ));
    v.push(Item::bytes(
        w,
        "Library/Preferences/csidata",
        prefs(seed, "csidata", &[]),
    ));
    v.push(Item::dir(w, "Library/Databases"));
    let r = "RootDomain";
    v.push(Item::bytes(
        r,
        "Library/Preferences/com.apple.backupd.plist",
        prefs(seed, "backupd", &[]),
    ));
    v.push(Item::bytes(
        r,
        "Library/Preferences/com.apple.MobileAsset.plist",
        prefs(seed, "mobileasset", &[]),
    ));
    v.push(Item::bytes(
        r,
        "Library/Caches/locationd/clients.plist",
        prefs(seed, "locationd", &[]),
    ));
    v.push(Item::link(
        "DatabaseDomain",
        "timezone/localtime",
        "/var/db/timezone/zoneinfo/Europe/London",
    ));
    v.push(Item::dir("MediaDomain", "Media/iTunes_Control/iTunes"));
    v.push(Item::dir(
        "MediaDomain",
        "Media/Recordings/.Recordings_SUPPORT",
    ));
    v.push(Item::bytes(
        "CameraRollDomain",
        "Media/PhotoData/MISC/DCIM_APPLE.plist",
        prefs(seed, "dcim", &[]),
    ));
    v.push(Item::dir("CameraRollDomain", "Media/DCIM/.MISC"));
    v.push(Item::dir("HealthDomain", "Health"));
    v.push(Item::dir("HomeKitDomain", "Library/homed"));
    v.push(Item::dir("KeyboardDomain", "Library/Keyboard"));
    v.push(Item::bytes(
        "KeyboardDomain",
        "Library/Keyboard/en_US-dynamic-text.dat",
        prefs(seed, "keyboard", &[]),
    ));

    for (ai, app) in apps.iter().enumerate() {
        let d = &app.container_domain;
        let mut extra = vec![(
            "CFBundleShortVersionString",
            plist::Value::String(app.short_version.clone()),
        )];
        extra.push(("AppName", plist::Value::String(app.name.clone())));
        v.push(Item::bytes(
            d,
            format!("Library/Preferences/{}.plist", app.bundle_id),
            prefs(seed, &app.bundle_id, &extra),
        ));
        v.push(Item::dir(d, "Documents"));
        v.push(Item::dir(d, "Library/Caches"));
        v.push(Item::dir(d, "Library/Application Support"));
        v.push(Item::dir(d, "Library/SplashBoard/Snapshots"));
        v.push(Item::dir(d, "tmp"));
        v.push(Item::bytes(d, "Library/Cookies/Cookies.binarycookies", {
            let mut c = b"cook\0\0\0\x01".to_vec();
            c.extend_from_slice(&rng::key(seed, "cookies", ai as u64).to_be_bytes());
            c
        }));
        if ai % 3 == 0 {
            let uuid = rng::uuid(rng::key(seed, "container", ai as u64));
            v.push(Item::link(
                d,
                "Library/WebKit/WebsiteData/IndexedDB/v0",
                format!("/var/mobile/Containers/Data/Application/{uuid}/Library/WebKit/WebsiteData/IndexedDB"),
            ));
        }
        for g in &app.group_domains {
            let gid = g.trim_start_matches("AppDomainGroup-");
            v.push(Item::bytes(
                g,
                format!("Library/Preferences/{gid}.plist"),
                prefs(seed, gid, &[]),
            ));
            v.push(Item::dir(g, "Library/Caches"));
        }
        for p in &app.plugin_domains {
            let pid = p.trim_start_matches("AppDomainPlugin-");
            v.push(Item::bytes(
                p,
                format!("Library/Preferences/{pid}.plist"),
                prefs(seed, pid, &[]),
            ));
        }
    }
    v
}
