//! Safari: `HomeDomain/Library/Safari/History.db` (`history_items`, `history_visits`, Cocoa
//! seconds as REAL) and `HomeDomain/Library/Safari/Bookmarks.db` (`bookmarks`, type 0 leaf /
//! 1 folder).

use rand::Rng;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::words;
use super::{Ctx, to_cocoa};
use crate::rng;

/// A `history_items` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    /// id.
    pub id: i64,
    /// Full URL.
    pub url: String,
    /// Host without "www." (domain_expansion).
    pub domain_expansion: String,
    /// Number of visits in `visits`.
    pub visit_count: i64,
}

/// A `history_visits` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    /// id.
    pub id: i64,
    /// history_items.id.
    pub item: i64,
    /// Visit time, Unix seconds (stored as Cocoa seconds).
    pub time: i64,
    /// Page title.
    pub title: String,
}

/// A `bookmarks` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bookmark {
    /// id.
    pub id: i64,
    /// Parent folder id (0 for the root).
    pub parent: i64,
    /// 0 bookmark, 1 folder.
    pub kind: i64,
    /// Title.
    pub title: String,
    /// URL (empty for folders).
    pub url: String,
    /// Position in the parent.
    pub order_index: i64,
}

/// Safari's history and bookmarks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Safari {
    /// Distinct URLs.
    pub items: Vec<HistoryItem>,
    /// Visits in id order.
    pub visits: Vec<Visit>,
    /// Bookmarks and folders (ids 1–3 are Root, BookmarksBar, BookmarksMenu).
    pub bookmarks: Vec<Bookmark>,
}

const PATHS: &[&str] = &[
    "",
    "news",
    "search?q=rust+sqlite",
    "wiki/IPhone",
    "article/2024/weather",
    "r/ios",
    "watch?v=dQw4w9WgXcQ",
    "help",
];

impl Safari {
    pub(crate) fn generate(ctx: &Ctx, visits: u32, bookmarks: u32) -> Self {
        let mut items: Vec<HistoryItem> = Vec::new();
        let mut index = std::collections::BTreeMap::new();
        let mut out_visits = Vec::with_capacity(visits as usize);
        for i in 0..visits {
            let mut r = rng::rng(ctx.seed, "visit", u64::from(i));
            let site = ((r.gen_range(0.0f64..1.0).powi(2)) * words::SITES.len() as f64) as usize;
            let (host, name) = words::SITES[site.min(words::SITES.len() - 1)];
            let path = PATHS[r.gen_range(0..PATHS.len())];
            let url = format!("https://{host}/{path}");
            let item = *index.entry(url.clone()).or_insert_with(|| {
                items.push(HistoryItem {
                    id: items.len() as i64 + 1,
                    domain_expansion: host.trim_start_matches("www.").to_string(),
                    url,
                    visit_count: 0,
                });
                items.len() as i64
            });
            if let Some(it) = items.get_mut((item - 1) as usize) {
                it.visit_count += 1;
            }
            out_visits.push(Visit {
                id: i64::from(i) + 1,
                item,
                time: ctx.timeline("visit-date", i, ctx.base.history_visits, 120),
                title: if path.is_empty() {
                    name.to_string()
                } else {
                    format!("{path} — {name}")
                },
            });
        }
        let mut bm = vec![
            Bookmark {
                id: 1,
                parent: 0,
                kind: 1,
                title: String::new(),
                url: String::new(),
                order_index: 0,
            },
            Bookmark {
                id: 2,
                parent: 1,
                kind: 1,
                title: "BookmarksBar".into(),
                url: String::new(),
                order_index: 0,
            },
            Bookmark {
                id: 3,
                parent: 1,
                kind: 1,
                title: "BookmarksMenu".into(),
                url: String::new(),
                order_index: 1,
            },
            Bookmark {
                id: 4,
                parent: 3,
                kind: 1,
                title: "Recipes".into(),
                url: String::new(),
                order_index: 0,
            },
        ];
        for i in 0..bookmarks {
            let mut r = rng::rng(ctx.seed, "bookmark", u64::from(i));
            let (host, name) = words::SITES[r.gen_range(0..words::SITES.len())];
            let parent = [2, 3, 4][r.gen_range(0..3)];
            let order = bm.iter().filter(|b| b.parent == parent).count() as i64;
            bm.push(Bookmark {
                id: 5 + i64::from(i),
                parent,
                kind: 0,
                title: format!("{name} {i}"),
                url: format!("https://{host}/{}", PATHS[r.gen_range(0..PATHS.len())]),
                order_index: order,
            });
        }
        Safari {
            items,
            visits: out_visits,
            bookmarks: bm,
        }
    }

    /// Unix time of the newest visit.
    pub fn last_change(&self) -> i64 {
        self.visits.iter().map(|v| v.time).max().unwrap_or(0)
    }

    pub(crate) fn write_history(&self, c: &Connection) -> rusqlite::Result<()> {
        c.execute_batch(
            "CREATE TABLE history_items (id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL UNIQUE,
                domain_expansion TEXT NULL, visit_count INTEGER NOT NULL, daily_visit_counts BLOB NOT NULL,
                weekly_visit_counts BLOB NULL, autocomplete_triggers BLOB NULL,
                should_recompute_derived_visit_counts INTEGER NOT NULL, visit_count_score INTEGER NOT NULL,
                status_code INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE history_visits (id INTEGER PRIMARY KEY AUTOINCREMENT,
                history_item INTEGER NOT NULL REFERENCES history_items(id) ON DELETE CASCADE,
                visit_time REAL NOT NULL, title TEXT NULL, load_successful BOOLEAN NOT NULL DEFAULT 1,
                http_non_get BOOLEAN NOT NULL DEFAULT 0, synthesized BOOLEAN NOT NULL DEFAULT 0,
                redirect_source INTEGER NULL UNIQUE REFERENCES history_visits(id) ON DELETE CASCADE,
                redirect_destination INTEGER NULL UNIQUE REFERENCES history_visits(id) ON DELETE CASCADE,
                origin INTEGER NOT NULL DEFAULT 0, generation INTEGER NOT NULL DEFAULT 0,
                attributes INTEGER NOT NULL DEFAULT 0, score INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE history_tombstones (id INTEGER PRIMARY KEY AUTOINCREMENT, start_time REAL NOT NULL,
                end_time REAL NOT NULL, url TEXT, generation INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE metadata (key TEXT NOT NULL UNIQUE, value);
             CREATE INDEX history_visits__last_visit ON history_visits (history_item, visit_time DESC);
             INSERT INTO metadata VALUES ('version', 20);",
        )?;
        for it in &self.items {
            c.execute(
                "INSERT INTO history_items (id, url, domain_expansion, visit_count, daily_visit_counts,
                 should_recompute_derived_visit_counts, visit_count_score) VALUES (?1, ?2, ?3, ?4, x'', 1, ?5)",
                params![it.id, it.url, it.domain_expansion, it.visit_count, it.visit_count * 100],
            )?;
        }
        for v in &self.visits {
            c.execute(
                "INSERT INTO history_visits (id, history_item, visit_time, title, load_successful)
                 VALUES (?1, ?2, ?3, ?4, 1)",
                params![v.id, v.item, to_cocoa(v.time) as f64 + 0.25, v.title],
            )?;
        }
        Ok(())
    }

    pub(crate) fn write_bookmarks(&self, c: &Connection) -> rusqlite::Result<()> {
        c.execute_batch(
            "CREATE TABLE bookmarks (id INTEGER PRIMARY KEY AUTOINCREMENT, special_id INTEGER DEFAULT 0,
                parent INTEGER, type INTEGER, title TEXT, url TEXT COLLATE NOCASE, num_children INTEGER DEFAULT 0,
                editable INTEGER DEFAULT 1, deletable INTEGER DEFAULT 1, hidden INTEGER DEFAULT 0,
                hidden_ancestor_count INTEGER DEFAULT 0, order_index INTEGER NOT NULL, external_uuid TEXT,
                read INTEGER DEFAULT NULL, last_modified REAL DEFAULT NULL, server_id TEXT, sync_key TEXT,
                sync_data BLOB, added INTEGER DEFAULT 1, deleted INTEGER DEFAULT 0, extra_attributes BLOB DEFAULT NULL,
                local_attributes BLOB DEFAULT NULL, fetched_icon BOOL DEFAULT 0, icon BLOB DEFAULT NULL,
                dav_generation INTEGER DEFAULT 0, locally_added BOOL DEFAULT 0, archive_status INTEGER DEFAULT 0,
                syncable BOOL DEFAULT 1, web_filter_status INTEGER DEFAULT 0, modified_attributes UNSIGNED BIG INT DEFAULT 0);
             CREATE INDEX parent_index ON bookmarks (parent, order_index);",
        )?;
        for b in &self.bookmarks {
            let children = self.bookmarks.iter().filter(|x| x.parent == b.id).count() as i64;
            let special = match b.id {
                1..=3 => b.id - 1,
                _ => 0,
            };
            c.execute(
                "INSERT INTO bookmarks (id, special_id, parent, type, title, url, num_children, order_index, external_uuid)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    b.id,
                    special,
                    if b.parent == 0 { None } else { Some(b.parent) },
                    b.kind,
                    b.title,
                    if b.url.is_empty() { None } else { Some(&b.url) },
                    children,
                    b.order_index,
                    rng::uuid(b.id as u64 ^ 0xB00C),
                ],
            )?;
        }
        Ok(())
    }
}
