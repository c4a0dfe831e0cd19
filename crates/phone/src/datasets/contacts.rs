//! Contacts: `HomeDomain/Library/AddressBook/AddressBook.sqlitedb` (ABPerson, ABMultiValue …) and
//! `AddressBookImages.sqlitedb` (ABThumbnailImage with real JPEG data). Dates are Cocoa seconds.

use rand::Rng;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::words::{self, pick};
use super::{Ctx, to_cocoa};
use crate::jpeg::{Picture, encode};
use crate::rng;

/// ABMultiValue property number for phone numbers.
pub const PROPERTY_PHONE: i64 = 3;
/// ABMultiValue property number for e-mail addresses.
pub const PROPERTY_EMAIL: i64 = 4;

/// One person (`ABPerson` row) with their phone numbers and e-mails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// ABPerson.ROWID.
    pub rowid: i64,
    /// First name.
    pub first: String,
    /// Last name.
    pub last: String,
    /// Organization (may be empty).
    pub organization: Option<String>,
    /// Job title.
    pub job_title: Option<String>,
    /// Free-text note.
    pub note: Option<String>,
    /// Creation time, Unix seconds (stored as Cocoa seconds).
    pub created: i64,
    /// Last modification, Unix seconds.
    pub modified: i64,
    /// (label, value) phone numbers, labels like `_$!<Mobile>!$_`.
    pub phones: Vec<(String, String)>,
    /// (label, value) e-mail addresses.
    pub emails: Vec<(String, String)>,
    /// Whether the person has a thumbnail in AddressBookImages.sqlitedb.
    pub has_image: bool,
}

/// The address book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contacts {
    /// Everyone in ABPerson, ROWID order.
    pub people: Vec<Person>,
    /// Groups (`ABGroup`): name and member ROWIDs.
    pub groups: Vec<(String, Vec<i64>)>,
}

const LABELS: &[&str] = &["_$!<Mobile>!$_", "iPhone", "_$!<Home>!$_", "_$!<Work>!$_"];

impl Contacts {
    pub(crate) fn generate(ctx: &Ctx, count: u32) -> Self {
        let people: Vec<Person> = (0..count)
            .map(|i| {
                let mut r = rng::rng(ctx.seed, "contact", u64::from(i));
                let first = pick(&mut r, words::FIRST).to_string();
                let last = pick(&mut r, words::LAST).to_string();
                let created = ctx.timeline("contact-date", i, ctx.base.contacts, 2000);
                let modified =
                    created + r.gen_range(0..400 * 86_400).min(ctx.epoch - created).max(0);
                let nphones = if r.gen_bool(0.85) {
                    1 + usize::from(r.gen_bool(0.25))
                } else {
                    0
                };
                let phones = (0..nphones)
                    .map(|_| {
                        let label = pick(&mut r, LABELS).to_string();
                        (
                            label,
                            format!(
                                "+1 (555) {:03}-{:04}",
                                r.gen_range(200..999),
                                r.gen_range(0..10_000)
                            ),
                        )
                    })
                    .collect();
                let emails = if r.gen_bool(0.5) {
                    let host = pick(
                        &mut r,
                        &["icloud.com", "gmail.com", "outlook.com", "example.org"],
                    );
                    vec![(
                        "_$!<Home>!$_".to_string(),
                        format!(
                            "{}.{}{}@{}",
                            first.to_lowercase(),
                            last.to_lowercase().replace(['\'', 'ü'], ""),
                            i,
                            host
                        ),
                    )]
                } else {
                    Vec::new()
                };
                let work = r.gen_bool(0.3);
                Person {
                    rowid: i64::from(i) + 1,
                    organization: work.then(|| pick(&mut r, words::COMPANY).to_string()),
                    job_title: work.then(|| pick(&mut r, words::JOB).to_string()),
                    note: r
                        .gen_bool(0.1)
                        .then(|| format!("Met at {}", pick(&mut r, words::PLACES).0)),
                    first,
                    last,
                    created,
                    modified,
                    phones,
                    emails,
                    has_image: r.gen_bool(0.3),
                }
            })
            .collect();
        let mut groups = Vec::new();
        for (gi, name) in ["Family", "Work", "Soccer team"].iter().enumerate() {
            let members: Vec<i64> = people
                .iter()
                .filter(|p| {
                    rng::unit(rng::key(ctx.seed, name, p.rowid as u64)) < 0.08 + 0.02 * gi as f64
                })
                .map(|p| p.rowid)
                .collect();
            groups.push(((*name).to_string(), members));
        }
        Contacts { people, groups }
    }

    /// Unix time of the newest change.
    pub fn last_change(&self) -> i64 {
        self.people.iter().map(|p| p.modified).max().unwrap_or(0)
    }

    /// The thumbnail JPEG of a person (deterministic from the ROWID).
    pub fn thumbnail(&self, seed: u64, person: &Person) -> Vec<u8> {
        let k = rng::key(seed, "contact-image", person.rowid as u64);
        let c = |s: u32| ((k >> s) & 0xFF) as u8;
        encode(&Picture {
            width: 32,
            height: 32,
            from: [c(0), c(8), c(16)],
            to: [c(24), c(32), c(40)],
            exif_date: "2023:01:01 12:00:00".into(),
            model: "iPhone".into(),
            comment: format!("contact {} {}", person.first, person.last),
        })
    }

    pub(crate) fn write(&self, c: &Connection) -> rusqlite::Result<()> {
        c.execute_batch(
            "CREATE TABLE _SqliteDatabaseProperties (key TEXT, value TEXT, UNIQUE(key));
             CREATE TABLE ABStore (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, Name TEXT, Type INTEGER, Enabled INTEGER);
             CREATE TABLE ABPerson (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, First TEXT, Last TEXT, Middle TEXT,
                FirstPhonetic TEXT, MiddlePhonetic TEXT, LastPhonetic TEXT, Organization TEXT, Department TEXT,
                Note TEXT, Kind INTEGER, Birthday TEXT, JobTitle TEXT, Nickname TEXT, Prefix TEXT, Suffix TEXT,
                FirstSort TEXT, LastSort TEXT, CreationDate INTEGER, ModificationDate INTEGER,
                CompositeNameFallback TEXT, StoreID INTEGER, DisplayName TEXT, guid TEXT);
             CREATE TABLE ABMultiValue (UID INTEGER PRIMARY KEY, record_id INTEGER, property INTEGER,
                identifier INTEGER, label INTEGER, value TEXT, guid TEXT);
             CREATE TABLE ABMultiValueLabel (value TEXT, UNIQUE(value));
             CREATE TABLE ABMultiValueEntry (parent_id INTEGER, key INTEGER, value TEXT, UNIQUE(parent_id, key));
             CREATE TABLE ABMultiValueEntryKey (value TEXT, UNIQUE(value));
             CREATE TABLE ABGroup (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, Name TEXT, StoreID INTEGER, guid TEXT);
             CREATE TABLE ABGroupMembers (UID INTEGER PRIMARY KEY, group_id INTEGER, member_type INTEGER, member_id INTEGER);
             CREATE INDEX ABMultiValueRecordIDIndex ON ABMultiValue(record_id);
             INSERT INTO _SqliteDatabaseProperties VALUES ('__internalVersion', '1400');
             INSERT INTO ABStore (Name, Type, Enabled) VALUES ('iCloud', 4, 1);",
        )?;
        for l in LABELS {
            c.execute("INSERT INTO ABMultiValueLabel (value) VALUES (?1)", [l])?;
        }
        let label_id = |l: &str| LABELS.iter().position(|x| *x == l).map(|p| p as i64 + 1);
        let mut uid = 0i64;
        for p in &self.people {
            c.execute(
                "INSERT INTO ABPerson (ROWID, First, Last, Organization, Note, Kind, JobTitle, FirstSort, LastSort,
                 CreationDate, ModificationDate, StoreID, guid) VALUES (?1,?2,?3,?4,?5,0,?6,?7,?8,?9,?10,1,?11)",
                params![
                    p.rowid,
                    p.first,
                    p.last,
                    p.organization,
                    p.note,
                    p.job_title,
                    p.first.to_uppercase(),
                    p.last.to_uppercase(),
                    to_cocoa(p.created),
                    to_cocoa(p.modified),
                    rng::uuid(p.rowid as u64 ^ 0xAB),
                ],
            )?;
            for (prop, list) in [
                (super::contacts::PROPERTY_PHONE, &p.phones),
                (PROPERTY_EMAIL, &p.emails),
            ] {
                for (ident, (label, value)) in list.iter().enumerate() {
                    uid += 1;
                    c.execute(
                        "INSERT INTO ABMultiValue (UID, record_id, property, identifier, label, value) VALUES (?1,?2,?3,?4,?5,?6)",
                        params![uid, p.rowid, prop, ident as i64, label_id(label), value],
                    )?;
                }
            }
        }
        let mut member_uid = 0;
        for (gi, (name, members)) in self.groups.iter().enumerate() {
            c.execute(
                "INSERT INTO ABGroup (ROWID, Name, StoreID, guid) VALUES (?1, ?2, 1, ?3)",
                params![gi as i64 + 1, name, rng::uuid(gi as u64 ^ 0xAB6)],
            )?;
            for m in members {
                member_uid += 1;
                c.execute(
                    "INSERT INTO ABGroupMembers (UID, group_id, member_type, member_id) VALUES (?1, ?2, 0, ?3)",
                    params![member_uid, gi as i64 + 1, m],
                )?;
            }
        }
        Ok(())
    }

    pub(crate) fn write_images(&self, c: &Connection) -> rusqlite::Result<()> {
        c.execute_batch(
            "CREATE TABLE ABThumbnailImage (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, record_id INTEGER, format INTEGER,
                derived_from_format INTEGER, data BLOB, UNIQUE(record_id, format));
             CREATE TABLE ABFullSizeImage (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, record_id INTEGER, crop_x INTEGER,
                crop_y INTEGER, crop_width INTEGER, crop_height INTEGER, data BLOB, UNIQUE(record_id));",
        )?;
        // The seed is folded into the records already (names); use the ROWID-derived picture.
        for p in self.people.iter().filter(|p| p.has_image) {
            let data = self.thumbnail(p.created as u64, p);
            c.execute(
                "INSERT INTO ABThumbnailImage (record_id, format, derived_from_format, data) VALUES (?1, 0, 0, ?2)",
                params![p.rowid, data],
            )?;
            c.execute(
                "INSERT INTO ABFullSizeImage (record_id, crop_x, crop_y, crop_width, crop_height, data) VALUES (?1,0,0,32,32,?2)",
                params![p.rowid, data],
            )?;
        }
        Ok(())
    }
}
