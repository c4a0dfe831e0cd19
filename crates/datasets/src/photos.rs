//! Photos: `CameraRollDomain/Media/PhotoData/Photos.sqlite` (asset table `ZASSET` from iOS 14,
//! `ZGENERICASSET` before; Cocoa seconds), files `CameraRollDomain/Media/<ZDIRECTORY>/<ZFILENAME>`,
//! original names in `ZADDITIONALASSETATTRIBUTES.ZORIGINALFILENAME`. Albums are `ZGENERICALBUM`
//! joined through a numbered table (`Z_<n>ASSETS` with a `Z_<n>ALBUMS` column) whose number
//! changes between iOS versions: it is found by its shape, not by name.

use std::collections::HashMap;

use iosnap_format::Backup;
use serde::Serialize;

use crate::error::{Error, Result, SqlContext};
use crate::page::Pager;
use crate::schema::quote;
use crate::source::{DbLocation, Source};
use crate::value::{flag, get, int, nonempty, real};

/// The photo library database.
pub const PHOTOS_DB: DbLocation = DbLocation {
    dataset: "Photos",
    domain: "CameraRollDomain",
    relative_path: "Media/PhotoData/Photos.sqlite",
};

/// One asset (photo or video).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Asset {
    /// Z_PK.
    pub pk: i64,
    /// `ZDIRECTORY`, e.g. `DCIM/100APPLE`.
    pub directory: Option<String>,
    /// `ZFILENAME`, e.g. `IMG_0001.HEIC`.
    pub filename: Option<String>,
    /// The name the file had when imported/taken, if recorded.
    pub original_filename: Option<String>,
    /// Capture time, Unix seconds.
    #[serde(serialize_with = "crate::time::opt_rfc3339::serialize")]
    pub date_created: Option<i64>,
    /// 0 photo, 1 video.
    pub kind: Option<i64>,
    /// 2 = Live Photo (a `.MOV` with the same base name sits next to the still).
    pub kind_subtype: Option<i64>,
    /// In "Recently Deleted".
    pub trashed: bool,
    /// Favourite.
    pub favorite: bool,
    /// Latitude (Photos stores -180 when unknown).
    pub latitude: Option<f64>,
    /// Longitude.
    pub longitude: Option<f64>,
}

impl Asset {
    /// Whether this is a Live Photo (still + paired video).
    pub fn is_live(&self) -> bool {
        self.kind_subtype == Some(2)
    }

    /// The backup path (in CameraRollDomain) of the file, `None` when unsafe or incomplete.
    pub fn backup_path(&self) -> Option<String> {
        let d = self.directory.as_deref()?.trim_matches('/');
        let f = self.filename.as_deref()?;
        let p = format!("Media/{d}/{f}");
        p.split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'))
            .then_some(p)
    }
}

/// The photo library, opened.
#[derive(Debug)]
pub struct PhotosDb {
    src: Source,
    table: &'static str,
    sql: String,
}

impl PhotosDb {
    /// Opens Photos.sqlite of a backup.
    pub fn open(backup: &Backup) -> Result<PhotosDb> {
        Self::from_source(Source::open(backup, PHOTOS_DB)?)
    }

    /// Builds on an opened database; [`Error::UnknownSchema`] without an asset table.
    pub fn from_source(src: Source) -> Result<PhotosDb> {
        let s = src.schema();
        let table =
            s.first_table(&["ZASSET", "ZGENERICASSET"])
                .ok_or_else(|| Error::UnknownSchema {
                    dataset: src.dataset(),
                    file: src.file().to_string(),
                    detail: "no table ZASSET or ZGENERICASSET".into(),
                })?;
        let c = |n: &str| s.col(table, "a", n);
        let original = if s.has_column("ZADDITIONALASSETATTRIBUTES", "ZASSET")
            && s.has_column("ZADDITIONALASSETATTRIBUTES", "ZORIGINALFILENAME")
        {
            "(SELECT x.ZORIGINALFILENAME FROM ZADDITIONALASSETATTRIBUTES x WHERE x.ZASSET = a.Z_PK LIMIT 1)"
        } else {
            "NULL"
        };
        let sql = format!(
            "SELECT a.Z_PK, {}, {}, {original}, {}, {}, {}, {}, {}, {}, {} FROM {table} a
             WHERE a.Z_PK > ?1 ORDER BY a.Z_PK LIMIT ?2",
            c("ZDIRECTORY"),
            c("ZFILENAME"),
            c("ZDATECREATED"),
            c("ZKIND"),
            c("ZKINDSUBTYPE"),
            c("ZTRASHEDSTATE"),
            c("ZFAVORITE"),
            c("ZLATITUDE"),
            c("ZLONGITUDE"),
        );
        Ok(PhotosDb { src, table, sql })
    }

    /// Number of assets.
    pub fn count(&self) -> Result<u64> {
        Ok(self.src.count(self.table)?.unwrap_or(0))
    }

    /// Every asset, Z_PK order, streamed page by page.
    pub fn assets(&self) -> AssetIter<'_> {
        let map = |r: &rusqlite::Row<'_>| Asset {
            pk: int(get(r, 0)).unwrap_or(0),
            directory: nonempty(get(r, 1)),
            filename: nonempty(get(r, 2)),
            original_filename: nonempty(get(r, 3)),
            date_created: real(get(r, 4)).and_then(crate::time::cocoa_real_to_unix),
            kind: int(get(r, 5)),
            kind_subtype: int(get(r, 6)),
            trashed: int(get(r, 7)) == Some(1),
            favorite: flag(get(r, 8)),
            latitude: real(get(r, 9)),
            longitude: real(get(r, 10)),
        };
        AssetIter(Pager::new(
            self.src.conn(),
            self.src.file(),
            self.sql.clone(),
            None,
            map,
            |a: &Asset| a.pk,
        ))
    }

    /// User albums: (title, asset Z_PKs in album order). Empty when the join table cannot be
    /// identified.
    pub fn albums(&self) -> Result<Vec<(String, Vec<i64>)>> {
        let s = self.src.schema();
        if !s.has_column("ZGENERICALBUM", "ZTITLE") {
            return Ok(Vec::new());
        }
        // The join table: Z_<n>ASSETS with a Z_<n>ALBUMS column and a Z_<m>ASSETS column.
        let mut join = None;
        for t in s.tables() {
            let up = t.to_ascii_uppercase();
            let Some(n) = up
                .strip_prefix("Z_")
                .and_then(|r| r.strip_suffix("ASSETS"))
                .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            else {
                continue;
            };
            let cols = s.columns(t);
            let album_col = format!("z_{n}albums");
            if !cols.contains(&album_col) {
                continue;
            }
            let asset_col = cols
                .iter()
                .find(|c| c.starts_with("z_") && c.ends_with("assets") && !c.starts_with("z_fok"))
                .cloned();
            let order_col = cols.iter().find(|c| c.starts_with("z_fok_")).cloned();
            if let Some(asset_col) = asset_col {
                join = Some((t.to_string(), album_col, asset_col, order_col));
                break;
            }
        }
        let Some((table, album_col, asset_col, order_col)) = join else {
            return Ok(Vec::new());
        };
        let file = self.src.file();
        let kind_filter = if s.has_column("ZGENERICALBUM", "ZKIND") {
            "AND g.ZKIND = 2"
        } else {
            ""
        };
        let trashed = if s.has_column("ZGENERICALBUM", "ZTRASHEDSTATE") {
            "AND COALESCE(g.ZTRASHEDSTATE, 0) = 0"
        } else {
            ""
        };
        let order = order_col
            .map(|c| quote(&c))
            .unwrap_or_else(|| "j.ROWID".into());
        let sql = format!(
            "SELECT g.Z_PK, g.ZTITLE, j.{} FROM ZGENERICALBUM g JOIN {} j ON j.{} = g.Z_PK
             WHERE 1 {kind_filter} {trashed} ORDER BY g.Z_PK, j.{order}",
            quote(&asset_col),
            quote(&table),
            quote(&album_col),
        );
        let mut st = self.src.conn().prepare(&sql).db(file)?;
        let mut rows = st.query([]).db(file)?;
        let mut out: Vec<(String, Vec<i64>)> = Vec::new();
        let mut pos: HashMap<i64, usize> = HashMap::new();
        while let Some(r) = rows.next().db(file)? {
            let (Some(album), Some(asset)) = (int(get(r, 0)), int(get(r, 2))) else {
                continue;
            };
            let i = *pos.entry(album).or_insert_with(|| {
                let title = nonempty(get(r, 1)).unwrap_or_else(|| format!("Album {album}"));
                out.push((title, Vec::new()));
                out.len() - 1
            });
            if let Some(a) = out.get_mut(i) {
                a.1.push(asset);
            }
        }
        Ok(out)
    }
}

/// The iterator of [`PhotosDb::assets`].
pub struct AssetIter<'a>(Pager<'a, Asset>);

impl Iterator for AssetIter<'_> {
    type Item = Result<Asset>;
    fn next(&mut self) -> Option<Result<Asset>> {
        self.0.next()
    }
}
