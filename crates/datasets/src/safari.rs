//! Safari: `HomeDomain/Library/Safari/History.db` (`history_items` + `history_visits`, Cocoa
//! seconds as REAL — some databases hold Unix seconds, told apart by size) and
//! `HomeDomain/Library/Safari/Bookmarks.db` (`bookmarks`: type 0 bookmark, 1 folder).
//!
//! Older iOS versions (from iOS 8, when History.db replaced History.plist) kept History.db in
//! Safari's own container, `AppDomain-com.apple.mobilesafari/Library/Safari/History.db`: its
//! backup file id `e74113c1…` is SHA-1 of that domain and path, the id mvt, iphonebackuptools
//! (`safari/webhistory.js`) and AnyTrans (`IMBHistorySqliteManager.m`, "iOS 8" branch) read.
//! Bookmarks.db did not move: iphonebackuptools reads it from `HomeDomain` for iOS 7 and later
//! schemas alike, and mvt's id `d1f062e2…` is the HomeDomain one.

use iosnap_format::Backup;
use serde::Serialize;

use crate::error::{Result, SqlContext};
use crate::page::Pager;
use crate::source::{DbLocation, Source};
use crate::value::{flag, get, int, nonempty, real};

/// The history database.
pub const HISTORY_DB: DbLocation = DbLocation {
    dataset: "Safari history",
    domain: "HomeDomain",
    relative_path: "Library/Safari/History.db",
};

/// The history database where older iOS versions kept it (Safari's app container).
pub const LEGACY_HISTORY_DB: DbLocation = DbLocation {
    dataset: "Safari history",
    domain: "AppDomain-com.apple.mobilesafari",
    relative_path: "Library/Safari/History.db",
};

/// Every place a backup may hold History.db, preferred first (HomeDomain wins when a phone
/// upgraded across the move left both behind).
pub const HISTORY_LOCATIONS: &[DbLocation] = &[HISTORY_DB, LEGACY_HISTORY_DB];

/// The bookmarks database.
pub const BOOKMARKS_DB: DbLocation = DbLocation {
    dataset: "Safari bookmarks",
    domain: "HomeDomain",
    relative_path: "Library/Safari/Bookmarks.db",
};

/// A visit time → Unix seconds: Cocoa seconds, unless the value is only plausible as Unix
/// seconds (after 2039 as Cocoa, i.e. > 1.2·10⁹).
pub fn visit_time(v: f64) -> Option<i64> {
    if v.is_finite() && v > 1.2e9 && v < 1e11 {
        Some(v.floor() as i64)
    } else {
        crate::time::cocoa_real_to_unix(v)
    }
}

/// One visit of a page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Visit {
    /// `history_visits.id`.
    pub id: i64,
    /// Visit time, Unix seconds.
    #[serde(serialize_with = "crate::time::opt_rfc3339::serialize")]
    pub time: Option<i64>,
    /// URL (`history_items.url`).
    pub url: Option<String>,
    /// Page title at the visit.
    pub title: Option<String>,
    /// Host as Safari shortened it (`domain_expansion`).
    pub domain: Option<String>,
    /// Total visits of the URL.
    pub visit_count: Option<i64>,
    /// Whether the page loaded.
    pub load_successful: bool,
}

/// The history database, opened.
#[derive(Debug)]
pub struct HistoryDb {
    src: Source,
    sql: String,
}

impl HistoryDb {
    /// Opens History.db of a backup, from HomeDomain or else Safari's app container
    /// ([`HISTORY_LOCATIONS`]).
    pub fn open(backup: &Backup) -> Result<HistoryDb> {
        Self::from_source(Source::open_any(backup, HISTORY_LOCATIONS)?)
    }

    /// Builds on an opened database. [`crate::Error::UnknownSchema`] without `history_visits`.
    pub fn from_source(src: Source) -> Result<HistoryDb> {
        src.require_table("history_visits")?;
        let s = src.schema();
        let item = |c: &str| {
            if s.has_column("history_items", c) && s.has_column("history_visits", "history_item") {
                format!(
                    "(SELECT i.{} FROM history_items i WHERE i.id = v.history_item)",
                    crate::schema::quote(c)
                )
            } else {
                "NULL".into()
            }
        };
        let load = if s.has_column("history_visits", "load_successful") {
            "v.load_successful"
        } else {
            "1"
        };
        let sql = format!(
            "SELECT v.id, {}, {}, {}, {}, {}, {load} FROM history_visits v
             WHERE v.id > ?1 ORDER BY v.id LIMIT ?2",
            s.col("history_visits", "v", "visit_time"),
            item("url"),
            s.col("history_visits", "v", "title"),
            item("domain_expansion"),
            item("visit_count"),
        );
        Ok(HistoryDb { src, sql })
    }

    /// Number of visits.
    pub fn count(&self) -> Result<u64> {
        Ok(self.src.count("history_visits")?.unwrap_or(0))
    }

    /// Every visit, id order, streamed page by page.
    pub fn visits(&self) -> VisitIter<'_> {
        let map = |r: &rusqlite::Row<'_>| Visit {
            id: int(get(r, 0)).unwrap_or(0),
            time: real(get(r, 1)).and_then(visit_time),
            url: nonempty(get(r, 2)),
            title: nonempty(get(r, 3)),
            domain: nonempty(get(r, 4)),
            visit_count: int(get(r, 5)),
            load_successful: flag(get(r, 6)),
        };
        VisitIter(Pager::new(
            self.src.conn(),
            self.src.file(),
            self.sql.clone(),
            None,
            map,
            |v: &Visit| v.id,
        ))
    }
}

/// The iterator of [`HistoryDb::visits`].
pub struct VisitIter<'a>(Pager<'a, Visit>);

impl Iterator for VisitIter<'_> {
    type Item = Result<Visit>;
    fn next(&mut self) -> Option<Result<Visit>> {
        self.0.next()
    }
}

/// A bookmark or folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bookmark {
    /// id.
    pub id: i64,
    /// Parent folder id.
    pub parent: Option<i64>,
    /// Folder (true) or bookmark.
    pub is_folder: bool,
    /// Title.
    pub title: Option<String>,
    /// URL (bookmarks).
    pub url: Option<String>,
    /// Position among its siblings.
    pub order_index: i64,
    /// Hidden by Safari (e.g. the reading list's internals).
    pub hidden: bool,
}

/// Every row of `bookmarks`, ordered by parent then position. Bookmark trees are small (a
/// few thousand rows at most), and rendering them needs the whole tree, so they are collected.
pub fn bookmarks(backup: &Backup) -> Result<Vec<Bookmark>> {
    let src = Source::open(backup, BOOKMARKS_DB)?;
    bookmarks_from(&src)
}

/// [`bookmarks`] on an opened database.
pub fn bookmarks_from(src: &Source) -> Result<Vec<Bookmark>> {
    src.require_table("bookmarks")?;
    let s = src.schema();
    let c = |n: &str| s.col("bookmarks", "b", n);
    let sql = format!(
        "SELECT b.id, {}, {}, {}, {}, {}, {} FROM bookmarks b ORDER BY 2, 6, 1",
        c("parent"),
        c("type"),
        c("title"),
        c("url"),
        c("order_index"),
        c("hidden"),
    );
    let file = src.file();
    let mut st = src.conn().prepare(&sql).db(file)?;
    let rows = st
        .query_map([], |r| {
            Ok(Bookmark {
                id: int(get(r, 0)).unwrap_or(0),
                parent: int(get(r, 1)),
                is_folder: int(get(r, 2)) == Some(1),
                title: nonempty(get(r, 3)),
                url: nonempty(get(r, 4)),
                order_index: int(get(r, 5)).unwrap_or(0),
                hidden: flag(get(r, 6)),
            })
        })
        .db(file)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db(file)
}
