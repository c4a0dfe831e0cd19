//! Photos: `CameraRollDomain/Media/DCIM/1xxAPPLE/IMG_nnnn.{HEIC,JPG,MOV}`, thumbnails
//! `Media/PhotoData/Thumbnails/V2/DCIM/1xxAPPLE/IMG_nnnn.EXT/5003.JPG`, and the metadata database
//! `Media/PhotoData/Photos.sqlite`.
//!
//! Schema by version: the asset table is `ZGENERICASSET` before iOS 14 and `ZASSET` from iOS 14
//! (datasets.md §1.7). The album join table is numbered by the album entity, which changes between
//! versions (`Z_26ASSETS` here for iOS 14–16, `Z_28ASSETS` for 17, `Z_30ASSETS` for 18+,
//! `Z_23ASSETS` before 14; real numbers drift too — resolve through `Z_PRIMARYKEY`, which this
//! database fills accordingly). Live Photos are a HEIC + MOV pair with `ZKINDSUBTYPE` 2.

use rand::Rng;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::messages::exif_date;
use super::words;
use super::{Ctx, DataFile, IosVersion, to_cocoa};
use crate::jpeg::{Picture, encode};
use crate::media;
use crate::rng;

/// One camera-roll asset (row of ZASSET / ZGENERICASSET).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    /// Z_PK.
    pub pk: i64,
    /// ZUUID.
    pub uuid: String,
    /// ZDIRECTORY, e.g. "DCIM/100APPLE".
    pub directory: String,
    /// ZFILENAME, e.g. "IMG_0001.HEIC".
    pub filename: String,
    /// ZUNIFORMTYPEIDENTIFIER.
    pub uti: String,
    /// 0 photo, 1 video.
    pub kind: i64,
    /// 2 = Live Photo (paired .MOV), 0 otherwise.
    pub kind_subtype: i64,
    /// Pixel width stored in the database.
    pub width: i64,
    /// Pixel height.
    pub height: i64,
    /// Capture time, Unix seconds.
    pub date_created: i64,
    /// Latitude (or -180 when unknown, as Photos stores it).
    pub latitude: f64,
    /// Longitude.
    pub longitude: f64,
    /// Favourite.
    pub favorite: bool,
    /// Duration in seconds for videos.
    pub duration: f64,
    /// Size of the main file in bytes.
    pub file_size: u64,
    /// Content key of the file.
    pub key: u64,
}

/// An album (`ZGENERICALBUM`) and its assets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Album {
    /// Z_PK.
    pub pk: i64,
    /// Title.
    pub title: String,
    /// Asset Z_PKs.
    pub assets: Vec<i64>,
}

/// The camera roll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Photos {
    /// Assets in Z_PK order.
    pub assets: Vec<Asset>,
    /// User albums.
    pub albums: Vec<Album>,
}

/// (asset entity, album entity) numbers for a version.
fn entities(ios: IosVersion) -> (i64, i64) {
    match ios.major {
        ..=13 => (3, 23),
        14..=16 => (3, 26),
        17 => (3, 28),
        _ => (3, 30),
    }
}

impl Photos {
    pub(crate) fn generate(ctx: &Ctx, count: u32) -> Self {
        let assets: Vec<Asset> = (0..count)
            .map(|i| {
                let mut r = rng::rng(ctx.seed, "photo", u64::from(i));
                let n = i + 1;
                let directory = format!("DCIM/{}APPLE", 100 + n / 1000);
                let roll: f64 = r.gen_range(0.0..1.0);
                // ~55% HEIC (a quarter of them live), 30% JPG, 15% MOV videos.
                let (ext, uti, kind, subtype) = if roll < 0.55 {
                    (
                        "HEIC",
                        "public.heic",
                        0,
                        if r.gen_bool(0.25) { 2 } else { 0 },
                    )
                } else if roll < 0.85 {
                    ("JPG", "public.jpeg", 0, 0)
                } else {
                    ("MOV", "com.apple.quicktime-movie", 1, 0)
                };
                let key = rng::key(ctx.seed, "photo-content", u64::from(i));
                let file_size = match ext {
                    "HEIC" => r.gen_range(180_000..600_000),
                    "MOV" => r.gen_range(1_000_000..6_000_000),
                    _ => 0, // set from the encoded JPEG below
                };
                let located = r.gen_bool(0.7);
                let place = words::PLACES[r.gen_range(0..words::PLACES.len())];
                let mut a = Asset {
                    pk: i64::from(i) + 1,
                    uuid: rng::uuid(rng::key(ctx.seed, "photo-uuid", u64::from(i))),
                    directory,
                    filename: format!("IMG_{:04}.{ext}", n % 10_000),
                    uti: uti.into(),
                    kind,
                    kind_subtype: subtype,
                    width: if kind == 1 { 1920 } else { 4032 },
                    height: if kind == 1 { 1080 } else { 3024 },
                    date_created: ctx.timeline("photo-date", i, ctx.base.photos, 700),
                    latitude: if located {
                        place.1 + r.gen_range(-0.05..0.05)
                    } else {
                        -180.0
                    },
                    longitude: if located {
                        place.2 + r.gen_range(-0.05..0.05)
                    } else {
                        -180.0
                    },
                    favorite: r.gen_bool(0.08),
                    duration: if kind == 1 {
                        f64::from(r.gen_range(2..90))
                    } else {
                        0.0
                    },
                    file_size,
                    key,
                };
                if ext == "JPG" {
                    a.file_size = encode(&Self::picture(&a, 160, 120)).len() as u64;
                }
                a
            })
            .collect();
        let mut albums = Vec::new();
        for (k, title) in ["Holidays", "Family", "Screenshots to keep"]
            .iter()
            .enumerate()
        {
            let members = assets
                .iter()
                .filter(|a| rng::unit(rng::key(ctx.seed, title, a.pk as u64)) < 0.15)
                .map(|a| a.pk)
                .collect();
            albums.push(Album {
                pk: k as i64 + 100,
                title: (*title).into(),
                assets: members,
            });
        }
        Photos { assets, albums }
    }

    fn picture(a: &Asset, w: u16, h: u16) -> Picture {
        let c = |s: u32| ((a.key >> s) & 0xFF) as u8;
        Picture {
            width: w,
            height: h,
            from: [c(0), c(8), c(16)],
            to: [c(24), c(32), c(40)],
            exif_date: exif_date(a.date_created),
            model: "iPhone 15 Pro".into(),
            comment: format!("{}/{}", a.directory, a.filename),
        }
    }

    /// Unix time of the newest asset.
    pub fn last_change(&self) -> i64 {
        self.assets
            .iter()
            .map(|a| a.date_created)
            .max()
            .unwrap_or(0)
    }

    pub(crate) fn files(&self, _ctx: &Ctx) -> Vec<DataFile> {
        let d = "CameraRollDomain";
        let mut v = Vec::new();
        for a in &self.assets {
            let path = format!("Media/{}/{}", a.directory, a.filename);
            match a.uti.as_str() {
                "public.jpeg" => v.push(DataFile::small(
                    d,
                    path,
                    encode(&Self::picture(a, 160, 120)),
                    a.date_created,
                )),
                "public.heic" => v.push(DataFile::stream(
                    d,
                    path,
                    media::heic_header(a.file_size),
                    a.key,
                    a.file_size,
                    a.date_created,
                )),
                _ => v.push(DataFile::stream(
                    d,
                    path,
                    media::mov_header(a.file_size),
                    a.key,
                    a.file_size,
                    a.date_created,
                )),
            }
            if a.kind_subtype == 2 {
                let stem = a.filename.trim_end_matches(".HEIC");
                let size = 1_500_000 + a.file_size;
                v.push(DataFile::stream(
                    d,
                    format!("Media/{}/{stem}.MOV", a.directory),
                    media::mov_header(size),
                    a.key ^ 0x4D4F56,
                    size,
                    a.date_created,
                ));
            }
            v.push(DataFile::small(
                d,
                format!(
                    "Media/PhotoData/Thumbnails/V2/{}/{}/5003.JPG",
                    a.directory, a.filename
                ),
                encode(&Self::picture(a, 48, 32)),
                a.date_created + 5,
            ));
        }
        v
    }

    pub(crate) fn write(&self, c: &Connection, ios: IosVersion) -> rusqlite::Result<()> {
        let table = if ios.major >= 14 {
            "ZASSET"
        } else {
            "ZGENERICASSET"
        };
        let (asset_ent, album_ent) = entities(ios);
        let join = format!("Z_{album_ent}ASSETS");
        c.execute_batch(&format!(
            "CREATE TABLE {table} (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, ZCOMPLETE INTEGER,
                ZFAVORITE INTEGER, ZHIDDEN INTEGER, ZKIND INTEGER, ZKINDSUBTYPE INTEGER, ZTRASHEDSTATE INTEGER,
                ZHEIGHT INTEGER, ZWIDTH INTEGER, ZSAVEDASSETTYPE INTEGER, ZADDITIONALATTRIBUTES INTEGER,
                ZADDEDDATE TIMESTAMP, ZDATECREATED TIMESTAMP, ZMODIFICATIONDATE TIMESTAMP, ZTRASHEDDATE TIMESTAMP,
                ZDURATION FLOAT, ZLATITUDE FLOAT, ZLONGITUDE FLOAT, ZDIRECTORY VARCHAR, ZFILENAME VARCHAR,
                ZUNIFORMTYPEIDENTIFIER VARCHAR, ZUUID VARCHAR, ZCLOUDASSETGUID VARCHAR);
             CREATE TABLE ZADDITIONALASSETATTRIBUTES (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER,
                ZASSET INTEGER, ZORIGINALFILESIZE INTEGER, ZORIGINALHEIGHT INTEGER, ZORIGINALWIDTH INTEGER,
                ZTIMEZONEOFFSET INTEGER, ZEXIFTIMESTAMPSTRING VARCHAR, ZORIGINALFILENAME VARCHAR,
                ZTIMEZONENAME VARCHAR, ZTITLE VARCHAR);
             CREATE TABLE ZGENERICALBUM (Z_PK INTEGER PRIMARY KEY, Z_ENT INTEGER, Z_OPT INTEGER, ZKIND INTEGER,
                ZCACHEDCOUNT INTEGER, ZTRASHEDSTATE INTEGER, ZCREATIONDATE TIMESTAMP, ZTITLE VARCHAR, ZUUID VARCHAR);
             CREATE TABLE {join} (Z_{album_ent}ALBUMS INTEGER, Z_{asset_ent}ASSETS INTEGER, Z_FOK_{asset_ent}ASSETS INTEGER,
                PRIMARY KEY (Z_{album_ent}ALBUMS, Z_{asset_ent}ASSETS));
             CREATE INDEX {table}_ZDATECREATED ON {table} (ZDATECREATED);"
        ))?;
        crate::db::core_data_tables(
            c,
            &[
                (asset_ent, "Asset", self.assets.len() as i64),
                (album_ent, "GenericAlbum", 100 + self.albums.len() as i64),
                (
                    album_ent + 1,
                    "AdditionalAssetAttributes",
                    self.assets.len() as i64,
                ),
            ],
            "7C2E9A41-6B3D-4F80-B5E1-0A9D8C7B6E53",
        )?;
        for a in &self.assets {
            let created = to_cocoa(a.date_created) as f64;
            c.execute(
                &format!(
                    "INSERT INTO {table} (Z_PK, Z_ENT, Z_OPT, ZCOMPLETE, ZFAVORITE, ZHIDDEN, ZKIND, ZKINDSUBTYPE,
                     ZTRASHEDSTATE, ZHEIGHT, ZWIDTH, ZSAVEDASSETTYPE, ZADDITIONALATTRIBUTES, ZADDEDDATE, ZDATECREATED,
                     ZMODIFICATIONDATE, ZDURATION, ZLATITUDE, ZLONGITUDE, ZDIRECTORY, ZFILENAME,
                     ZUNIFORMTYPEIDENTIFIER, ZUUID)
                     VALUES (?1, ?2, 1, 1, ?3, 0, ?4, ?5, 0, ?6, ?7, 3, ?1, ?8, ?9, ?8, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
                ),
                params![
                    a.pk,
                    asset_ent,
                    a.favorite,
                    a.kind,
                    a.kind_subtype,
                    a.height,
                    a.width,
                    created + 2.0,
                    created,
                    a.duration,
                    a.latitude,
                    a.longitude,
                    a.directory,
                    a.filename,
                    a.uti,
                    a.uuid,
                ],
            )?;
            c.execute(
                "INSERT INTO ZADDITIONALASSETATTRIBUTES (Z_PK, Z_ENT, Z_OPT, ZASSET, ZORIGINALFILESIZE, ZORIGINALHEIGHT,
                 ZORIGINALWIDTH, ZTIMEZONEOFFSET, ZEXIFTIMESTAMPSTRING, ZORIGINALFILENAME, ZTIMEZONENAME)
                 VALUES (?1, ?2, 1, ?1, ?3, ?4, ?5, 0, ?6, ?7, 'GMT')",
                params![a.pk, album_ent + 1, a.file_size as i64, a.height, a.width, exif_date(a.date_created), a.filename],
            )?;
        }
        for al in &self.albums {
            c.execute(
                "INSERT INTO ZGENERICALBUM (Z_PK, Z_ENT, Z_OPT, ZKIND, ZCACHEDCOUNT, ZTRASHEDSTATE, ZTITLE, ZUUID)
                 VALUES (?1, ?2, 1, 2, ?3, 0, ?4, ?5)",
                params![al.pk, album_ent, al.assets.len() as i64, al.title, rng::uuid(al.pk as u64 ^ 0xA1B)],
            )?;
            for (pos, asset) in al.assets.iter().enumerate() {
                c.execute(
                    &format!("INSERT INTO {join} VALUES (?1, ?2, ?3)"),
                    params![al.pk, asset, (pos as i64 + 1) * 1024],
                )?;
            }
        }
        Ok(())
    }
}
