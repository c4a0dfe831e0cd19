//! Contacts: `HomeDomain/Library/AddressBook/AddressBook.sqlitedb` (`ABPerson`, `ABMultiValue`
//! with labels in `ABMultiValueLabel`) and photos in `AddressBookImages.sqlitedb`
//! (`ABFullSizeImage`, else `ABThumbnailImage`). Dates are Cocoa seconds.

use std::collections::HashMap;

use iosnap_format::Backup;
use serde::Serialize;

use crate::error::{Error, Result, SqlContext};
use crate::page::{Pager, id_list};
use crate::source::{DbLocation, Source};
use crate::value::{get, int, nonempty, text};

/// The address book database.
pub const ADDRESS_BOOK: DbLocation = DbLocation {
    dataset: "Contacts",
    domain: "HomeDomain",
    relative_path: "Library/AddressBook/AddressBook.sqlitedb",
};

/// The contact photos database.
pub const ADDRESS_BOOK_IMAGES: DbLocation = DbLocation {
    dataset: "Contact photos",
    domain: "HomeDomain",
    relative_path: "Library/AddressBook/AddressBookImages.sqlitedb",
};

/// `ABMultiValue.property` of phone numbers.
pub const PROPERTY_PHONE: i64 = 3;
/// `ABMultiValue.property` of e-mail addresses.
pub const PROPERTY_EMAIL: i64 = 4;
/// `ABMultiValue.property` of URLs.
pub const PROPERTY_URL: i64 = 22;

/// Photos larger than this are skipped (a hostile blob must not exhaust memory).
pub const MAX_PHOTO_BYTES: usize = 16 << 20;

/// One labelled value (phone number, e-mail, URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Labeled {
    /// The label as people read it ("Mobile", "iPhone", "Home" …), `None` when unlabelled.
    pub label: Option<String>,
    /// The value.
    pub value: String,
}

/// One person of the address book.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Person {
    /// `ABPerson.ROWID`.
    pub rowid: i64,
    /// First name.
    pub first: Option<String>,
    /// Middle name.
    pub middle: Option<String>,
    /// Last name.
    pub last: Option<String>,
    /// Name prefix ("Dr.").
    pub prefix: Option<String>,
    /// Name suffix ("Jr.").
    pub suffix: Option<String>,
    /// Nickname.
    pub nickname: Option<String>,
    /// Organization.
    pub organization: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Job title.
    pub job_title: Option<String>,
    /// Free-text note.
    pub note: Option<String>,
    /// Birthday as stored (iOS keeps a Cocoa time or a date string).
    pub birthday: Option<String>,
    /// Creation time, Unix seconds.
    #[serde(serialize_with = "crate::time::opt_rfc3339::serialize")]
    pub created: Option<i64>,
    /// Last modification, Unix seconds.
    #[serde(serialize_with = "crate::time::opt_rfc3339::serialize")]
    pub modified: Option<i64>,
    /// Phone numbers.
    pub phones: Vec<Labeled>,
    /// E-mail addresses.
    pub emails: Vec<Labeled>,
    /// URLs.
    pub urls: Vec<Labeled>,
    /// JPEG (or PNG) photo, if the images database has one.
    #[serde(skip)]
    pub photo: Option<Vec<u8>>,
}

impl Person {
    /// The name to show: "First Last", else nickname, organization, first phone or e-mail.
    pub fn display_name(&self) -> String {
        let full: Vec<&str> = [&self.first, &self.middle, &self.last]
            .iter()
            .filter_map(|s| s.as_deref())
            .filter(|s| !s.trim().is_empty())
            .collect();
        if !full.is_empty() {
            return full.join(" ");
        }
        self.nickname
            .clone()
            .or_else(|| self.organization.clone())
            .or_else(|| self.phones.first().map(|p| p.value.clone()))
            .or_else(|| self.emails.first().map(|e| e.value.clone()))
            .unwrap_or_else(|| format!("Contact {}", self.rowid))
    }
}

/// `_$!<Mobile>!$_` → `Mobile`; other labels unchanged.
pub fn clean_label(label: &str) -> String {
    label
        .strip_prefix("_$!<")
        .and_then(|s| s.strip_suffix(">!$_"))
        .unwrap_or(label)
        .to_string()
}

/// The address book, opened.
#[derive(Debug)]
pub struct ContactsDb {
    src: Source,
    images: Option<Source>,
    person_sql: String,
    has_multi: bool,
}

impl ContactsDb {
    /// Opens the address book of a backup (photos too, when the images database is there).
    pub fn open(backup: &Backup) -> Result<ContactsDb> {
        let src = Source::open(backup, ADDRESS_BOOK)?;
        let images = match Source::open(backup, ADDRESS_BOOK_IMAGES) {
            Ok(s) => Some(s),
            Err(Error::Absent { .. }) => None,
            Err(e) => return Err(e),
        };
        Self::from_sources(src, images)
    }

    /// Builds on already opened databases. [`Error::UnknownSchema`] without `ABPerson`.
    pub fn from_sources(src: Source, images: Option<Source>) -> Result<ContactsDb> {
        src.require_table("ABPerson")?;
        let s = src.schema();
        let cols = [
            "First",
            "Middle",
            "Last",
            "Prefix",
            "Suffix",
            "Nickname",
            "Organization",
            "Department",
            "JobTitle",
            "Note",
            "Birthday",
            "CreationDate",
            "ModificationDate",
        ]
        .iter()
        .map(|c| s.col("ABPerson", "p", c))
        .collect::<Vec<_>>()
        .join(", ");
        let person_sql = format!(
            "SELECT p.ROWID, {cols} FROM ABPerson p WHERE p.ROWID > ?1 ORDER BY p.ROWID LIMIT ?2"
        );
        let has_multi = s.has_column("ABMultiValue", "record_id")
            && s.has_column("ABMultiValue", "property")
            && s.has_column("ABMultiValue", "value");
        Ok(ContactsDb {
            src,
            images,
            person_sql,
            has_multi,
        })
    }

    /// Number of people.
    pub fn count(&self) -> Result<u64> {
        Ok(self.src.count("ABPerson")?.unwrap_or(0))
    }

    /// Every person, ROWID order, with values and photo; streamed page by page.
    pub fn people(&self) -> PersonIter<'_> {
        let map = |r: &rusqlite::Row<'_>| {
            let t = |i| nonempty(get(r, i));
            let date = |i| crate::value::real(get(r, i)).and_then(crate::time::cocoa_real_to_unix);
            Person {
                rowid: int(get(r, 0)).unwrap_or(0),
                first: t(1),
                middle: t(2),
                last: t(3),
                prefix: t(4),
                suffix: t(5),
                nickname: t(6),
                organization: t(7),
                department: t(8),
                job_title: t(9),
                note: t(10),
                birthday: t(11),
                created: date(12),
                modified: date(13),
                phones: Vec::new(),
                emails: Vec::new(),
                urls: Vec::new(),
                photo: None,
            }
        };
        let pager = Pager::new(
            self.src.conn(),
            self.src.file(),
            self.person_sql.clone(),
            None,
            map,
            |p: &Person| p.rowid,
        )
        .with_enrich(Box::new(move |page: &mut [Person]| self.enrich(page)));
        PersonIter(pager)
    }

    fn enrich(&self, page: &mut [Person]) -> Result<()> {
        if page.is_empty() {
            return Ok(());
        }
        let ids = id_list(page.iter().map(|p| p.rowid));
        let pos: HashMap<i64, usize> = page.iter().enumerate().map(|(i, p)| (p.rowid, i)).collect();
        if self.has_multi {
            let s = self.src.schema();
            let label = if s.has_column("ABMultiValue", "label")
                && s.has_column("ABMultiValueLabel", "value")
            {
                "(SELECT l.value FROM ABMultiValueLabel l WHERE l.ROWID = v.label)"
            } else {
                "NULL"
            };
            let order = if s.has_column("ABMultiValue", "identifier") {
                "v.record_id, v.property, v.identifier, v.ROWID"
            } else {
                "v.record_id, v.property, v.ROWID"
            };
            let sql = format!(
                "SELECT v.record_id, v.property, {label}, v.value FROM ABMultiValue v
                 WHERE v.record_id IN ({ids}) ORDER BY {order}"
            );
            let conn = self.src.conn();
            let mut st = conn.prepare(&sql).db(self.src.file())?;
            let mut rows = st.query([]).db(self.src.file())?;
            while let Some(r) = rows.next().db(self.src.file())? {
                let (Some(id), Some(prop), Some(value)) =
                    (int(get(r, 0)), int(get(r, 1)), nonempty(get(r, 3)))
                else {
                    continue;
                };
                let Some(&i) = pos.get(&id) else { continue };
                let Some(p) = page.get_mut(i) else { continue };
                let lv = Labeled {
                    label: text(get(r, 2)).map(|l| clean_label(&l)),
                    value,
                };
                match prop {
                    PROPERTY_PHONE => p.phones.push(lv),
                    PROPERTY_EMAIL => p.emails.push(lv),
                    PROPERTY_URL => p.urls.push(lv),
                    _ => {}
                }
            }
        }
        if let Some(img) = &self.images {
            for table in ["ABFullSizeImage", "ABThumbnailImage"] {
                if !img.schema().has_column(table, "record_id")
                    || !img.schema().has_column(table, "data")
                {
                    continue;
                }
                let data = img.schema().blob_col(table, "t", "data", MAX_PHOTO_BYTES);
                let sql = format!(
                    "SELECT t.record_id, {data} FROM {table} t WHERE t.record_id IN ({ids}) ORDER BY t.ROWID"
                );
                let mut st = img.conn().prepare(&sql).db(img.file())?;
                let mut rows = st.query([]).db(img.file())?;
                while let Some(r) = rows.next().db(img.file())? {
                    let Some(id) = int(get(r, 0)) else { continue };
                    let Some(p) = pos.get(&id).and_then(|&i| page.get_mut(i)) else {
                        continue;
                    };
                    if p.photo.is_none() {
                        p.photo = crate::value::blob(get(r, 1)).filter(|b| !b.is_empty());
                    }
                }
            }
        }
        Ok(())
    }

    /// An index from phone numbers and e-mails to names, for naming message senders.
    pub fn index(&self) -> Result<ContactIndex> {
        let mut idx = ContactIndex::default();
        for p in self.people() {
            let p = p?;
            let name = p.display_name();
            for ph in &p.phones {
                idx.insert(&ph.value, &name);
            }
            for e in &p.emails {
                idx.insert(&e.value, &name);
            }
        }
        Ok(idx)
    }
}

/// The people iterator of [`ContactsDb::people`].
pub struct PersonIter<'a>(Pager<'a, Person>);

impl Iterator for PersonIter<'_> {
    type Item = Result<Person>;
    fn next(&mut self) -> Option<Result<Person>> {
        self.0.next()
    }
}

/// Phone numbers and e-mail addresses → contact names. Phone numbers are compared on their
/// last 10 digits ("+1 (555) 201-1234" matches "+15552011234"), e-mails case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct ContactIndex {
    map: HashMap<String, String>,
}

impl ContactIndex {
    fn key(address: &str) -> Option<String> {
        if address.contains('@') {
            return Some(address.trim().to_lowercase());
        }
        let digits: String = address.chars().filter(|c| c.is_ascii_digit()).collect();
        if digits.len() < 3 {
            return None;
        }
        let start = digits.len().saturating_sub(10);
        digits.get(start..).map(str::to_string)
    }

    /// Adds one address (the first name given for an address wins).
    pub fn insert(&mut self, address: &str, name: &str) {
        if let Some(k) = Self::key(address) {
            self.map.entry(k).or_insert_with(|| name.to_string());
        }
    }

    /// The name for a handle address, if a contact has it.
    pub fn name(&self, address: &str) -> Option<&str> {
        Self::key(address)
            .and_then(|k| self.map.get(&k))
            .map(String::as_str)
    }

    /// Number of addresses known.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no address is known.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_index() {
        assert_eq!(clean_label("_$!<Mobile>!$_"), "Mobile");
        assert_eq!(clean_label("iPhone"), "iPhone");
        let mut i = ContactIndex::default();
        i.insert("+1 (555) 201-1234", "Ann");
        i.insert("Ann@Example.org", "Ann");
        assert_eq!(i.name("+15552011234"), Some("Ann"));
        assert_eq!(i.name("ann@example.org"), Some("Ann"));
        assert_eq!(i.name("+1"), None);
    }
}
