//! Bulk files: the thousands of ordinary files (documents, music, downloads) that make a phone
//! big. Everything about bulk file *i* — its folder, name, size and bytes — is a function of
//! (seed, i, version), so 200,000 files cost only their listing, never their content.

use crate::rng;
use crate::tree::App;

/// Where bulk files live: (domain, base folder, extensions, weight).
#[derive(Debug, Clone)]
pub(crate) struct Area {
    pub domain: String,
    pub base: String,
    pub exts: &'static [&'static str],
    pub weight: f64,
}

/// Extensions of opaque bulk documents. Deliberately no jpg/png/sqlite: bulk content is random
/// bytes, and a file claiming to be an image or database should really be one.
const DOC_EXTS: &[&str] = &["pdf", "json", "zip", "txt", "mp4", "dat", "bin", "log"];
const MUSIC_EXTS: &[&str] = &["m4a"];
const BOOK_EXTS: &[&str] = &["epub", "pdf"];
const FOLDERS: &[&str] = &[
    "Inbox",
    "Archive",
    "Projects",
    "Downloads",
    "Exports",
    "Offline",
    "Media",
    "Backups",
    "Shared",
    "Attachments",
];
const STEMS: &[&str] = &[
    "report",
    "photo",
    "scan",
    "invoice",
    "track",
    "notes",
    "export",
    "cache",
    "clip",
    "draft",
    "statement",
    "ticket",
];

/// The areas of a phone with these apps.
pub(crate) fn areas(apps: &[App]) -> Vec<Area> {
    let mut v = vec![
        Area {
            domain: "MediaDomain".into(),
            base: "Media/iTunes_Control/Music".into(),
            exts: MUSIC_EXTS,
            weight: 4.0,
        },
        Area {
            domain: "MediaDomain".into(),
            base: "Media/Books/Purchases".into(),
            exts: BOOK_EXTS,
            weight: 1.0,
        },
    ];
    for a in apps {
        v.push(Area {
            domain: a.container_domain.clone(),
            base: "Documents".into(),
            exts: DOC_EXTS,
            weight: 1.0,
        });
        v.push(Area {
            domain: a.container_domain.clone(),
            base: format!("Library/Application Support/{}", a.name),
            exts: DOC_EXTS,
            weight: 0.5,
        });
    }
    v
}

/// The planned layout: areas, cumulative weights and how many folders each area gets.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    areas: Vec<Area>,
    cumulative: Vec<f64>,
    folders: u64,
    mean_size: f64,
    seed: u64,
}

/// Location, name and size of one bulk file.
pub(crate) struct Planned {
    pub domain: String,
    pub path: String,
    pub ext: &'static str,
    pub size: u64,
}

impl Layout {
    pub(crate) fn new(seed: u64, apps: &[App], files: u64, bytes: u64) -> Self {
        let areas = areas(apps);
        let total: f64 = areas.iter().map(|a| a.weight).sum();
        let mut acc = 0.0;
        let cumulative = areas
            .iter()
            .map(|a| {
                acc += a.weight / total;
                acc
            })
            .collect();
        // Aim for ~150 files per folder.
        let folders = (files / (areas.len() as u64).max(1) / 150).max(1);
        let mean_size = if files == 0 {
            0.0
        } else {
            bytes as f64 / files as f64
        };
        Layout {
            areas,
            cumulative,
            folders,
            mean_size,
            seed,
        }
    }

    /// Size of bulk file `index` at content `version`: log-normal around the mean (σ = 1.2,
    /// capped at 40× the mean), 1% empty files.
    pub(crate) fn size(&self, index: u64, version: u32) -> u64 {
        let k = rng::key(
            self.seed,
            "bulk-size",
            index
                .wrapping_mul(0x1_0000)
                .wrapping_add(u64::from(version)),
        );
        if rng::unit(k ^ 0x5EED) < 0.01 {
            return 0;
        }
        let u1 = rng::unit(k).max(1e-12);
        let u2 = rng::unit(k ^ 0xDEAD_BEEF);
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let sigma = 1.2f64;
        // Divide by 0.99 so the 1% empty files do not lower the total.
        let factor = (sigma * z - sigma * sigma / 2.0).exp().min(40.0) / 0.99;
        (self.mean_size * factor).round() as u64
    }

    /// Content key of bulk file `index` at `version`.
    pub(crate) fn content_key(&self, index: u64, version: u32) -> u64 {
        rng::key(
            self.seed,
            "bulk-content",
            index ^ (u64::from(version) << 48),
        )
    }

    /// Where bulk file `index` lives and how big it is at `version`.
    pub(crate) fn plan(&self, index: u64, version: u32) -> Planned {
        let k = rng::key(self.seed, "bulk-place", index);
        let u = rng::unit(k);
        let ai = self
            .cumulative
            .iter()
            .position(|c| u < *c)
            .unwrap_or(self.areas.len().saturating_sub(1));
        let area = &self.areas[ai.min(self.areas.len() - 1)];
        let folder_no = (k >> 20) % self.folders;
        let fname = FOLDERS[(folder_no % FOLDERS.len() as u64) as usize];
        let folder = if folder_no < FOLDERS.len() as u64 {
            fname.to_string()
        } else {
            format!("{fname} {}", folder_no / FOLDERS.len() as u64)
        };
        let ext = area.exts[((k >> 40) % area.exts.len() as u64) as usize];
        let path = if area.exts == MUSIC_EXTS {
            format!(
                "{}/F{:02}/{}{:07}.{ext}",
                area.base,
                folder_no % 50,
                ["ABCD", "QXRT", "MNOP", "ZKWY"][(k % 4) as usize],
                index
            )
        } else {
            let stem = STEMS[((k >> 8) % STEMS.len() as u64) as usize];
            format!("{}/{folder}/{stem}_{index:07}.{ext}", area.base)
        };
        Planned {
            domain: area.domain.clone(),
            path,
            ext,
            size: self.size(index, version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_average_to_the_mean() {
        let apps = crate::tree::apps(10);
        let l = Layout::new(3, &apps, 20_000, 2_000_000_000);
        let total: u64 = (0..20_000).map(|i| l.size(i, 0)).sum();
        let ratio = total as f64 / 2_000_000_000.0;
        assert!((0.8..1.2).contains(&ratio), "ratio {ratio}");
        assert_ne!(l.size(5, 0), l.size(5, 1));
    }

    #[test]
    fn plans_are_unique_and_stable() {
        let apps = crate::tree::apps(5);
        let l = Layout::new(9, &apps, 1000, 1 << 20);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..1000 {
            let p = l.plan(i, 0);
            assert!(seen.insert((p.domain.clone(), p.path.clone())));
            assert_eq!(l.plan(i, 0).path, p.path);
        }
    }
}
