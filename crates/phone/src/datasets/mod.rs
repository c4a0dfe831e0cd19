//! The typed records behind every database of the synthetic phone.
//!
//! Each dataset is a plain struct of plain records (`Messages { handles, chats, messages, … }`),
//! generated deterministically from the seed. Record *i* depends only on (seed, i), so when churn
//! raises a count the earlier records stay identical and only new rows appear — like a real phone
//! receiving new messages. The same structs are written to SQLite by `Datasets::build`, so an
//! exporter can later be checked record by record against [`crate::Phone::datasets`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::content::Source;
use crate::error::PhoneError;

pub mod calendar;
pub mod calls;
pub mod contacts;
pub mod messages;
pub mod notes;
pub mod photos;
pub mod safari;
pub mod voice_memos;
pub mod voicemail;
pub mod whatsapp;

pub use calendar::Calendar;
pub use calls::Calls;
pub use contacts::Contacts;
pub use messages::Messages;
pub use notes::Notes;
pub use photos::Photos;
pub use safari::Safari;
pub use voice_memos::VoiceMemos;
pub use voicemail::Voicemail;
pub use whatsapp::WhatsApp;

/// Seconds between the Unix epoch and the Cocoa/Core Data epoch (2001-01-01 UTC).
pub const COCOA_EPOCH: i64 = 978_307_200;

/// Unix seconds → Cocoa seconds (what Core Data tables store).
pub fn to_cocoa(unix: i64) -> i64 {
    unix - COCOA_EPOCH
}

/// How many records of each kind the phone holds. The spec gives the starting levels; churn
/// raises some of them (messages, calls, history …) generation by generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Levels {
    /// People in the address book.
    pub contacts: u32,
    /// Messages in sms.db.
    pub messages: u32,
    /// Call records.
    pub calls: u32,
    /// Notes in NoteStore.sqlite.
    pub notes: u32,
    /// Calendar events.
    pub events: u32,
    /// Safari history visits.
    pub history_visits: u32,
    /// Safari bookmarks.
    pub bookmarks: u32,
    /// Camera-roll assets.
    pub photos: u32,
    /// Voice memo recordings.
    pub voice_memos: u32,
    /// Voicemails.
    pub voicemails: u32,
    /// WhatsApp messages.
    pub whatsapp_messages: u32,
}

impl Default for Levels {
    fn default() -> Self {
        Levels {
            contacts: 180,
            messages: 1500,
            calls: 300,
            notes: 40,
            events: 120,
            history_visits: 800,
            bookmarks: 40,
            photos: 120,
            voice_memos: 12,
            voicemails: 6,
            whatsapp_messages: 600,
        }
    }
}

/// The iOS version the phone claims, parsed; schema choices depend on the major version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IosVersion {
    /// Major version (10 … 26).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl IosVersion {
    /// Parses "17.5", "16", "18.1.1"; `None` when not numeric or below iOS 10.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.trim().split('.');
        let major: u32 = it.next()?.parse().ok()?;
        let minor: u32 = match it.next() {
            Some(m) => m.parse().ok()?,
            None => 0,
        };
        (major >= 10).then_some(IosVersion { major, minor })
    }
}

/// Inputs shared by all generators.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub seed: u64,
    pub ios: IosVersion,
    /// Unix time of generation 0 ("now" when the phone was made).
    pub epoch: i64,
    /// The starting levels (fix the timeline spacing so growth lands after `epoch`).
    pub base: Levels,
}

impl Ctx {
    /// Unix time of record `i` of a series whose `base` first records span `span_days` before
    /// the epoch; later records continue at the same pace.
    pub(crate) fn timeline(&self, label: &str, i: u32, base: u32, span_days: i64) -> i64 {
        let span = span_days * 86_400;
        let step = span / i64::from(base.max(1));
        let jitter = (crate::rng::unit(crate::rng::key(self.seed, label, u64::from(i)))
            * step as f64
            * 0.9) as i64;
        self.epoch - span + step * i64::from(i) + jitter
    }
}

/// A file that belongs to a dataset (photo, recording, attachment …), placed in the tree.
#[derive(Debug, Clone)]
pub(crate) struct DataFile {
    pub domain: &'static str,
    pub path: String,
    pub source: Source,
    pub size: u64,
    pub mtime: i64,
}

impl DataFile {
    pub(crate) fn small(domain: &'static str, path: String, bytes: Vec<u8>, mtime: i64) -> Self {
        let size = bytes.len() as u64;
        DataFile {
            domain,
            path,
            source: Source::Small(Arc::from(bytes)),
            size,
            mtime,
        }
    }

    pub(crate) fn stream(
        domain: &'static str,
        path: String,
        header: Vec<u8>,
        key: u64,
        size: u64,
        mtime: i64,
    ) -> Self {
        DataFile {
            domain,
            path,
            source: Source::Stream {
                header: Arc::from(header),
                key,
                len: size,
            },
            size,
            mtime,
        }
    }
}

/// A database of the phone: where it lives and the cache file it was built into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltDb {
    /// Backup domain, e.g. `HomeDomain`.
    pub domain: &'static str,
    /// Relative path in the domain, e.g. `Library/SMS/sms.db`.
    pub relative_path: &'static str,
    /// The built file in the cache folder.
    pub file: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Unix time of the last change of its records (its mtime on the phone).
    pub mtime: i64,
}

/// Every dataset of the phone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Datasets {
    /// sms.db.
    pub messages: Messages,
    /// AddressBook.sqlitedb + AddressBookImages.sqlitedb.
    pub contacts: Contacts,
    /// CallHistory.storedata.
    pub calls: Calls,
    /// NoteStore.sqlite.
    pub notes: Notes,
    /// Calendar.sqlitedb.
    pub calendar: Calendar,
    /// History.db + Bookmarks.db.
    pub safari: Safari,
    /// Photos.sqlite and the DCIM files.
    pub photos: Photos,
    /// CloudRecordings.db and the .m4a files.
    pub voice_memos: VoiceMemos,
    /// voicemail.db and the .amr files.
    pub voicemail: Voicemail,
    /// WhatsApp ChatStorage.sqlite and its media.
    pub whatsapp: WhatsApp,
}

/// Bump when generators or schemas change, so stale cache files are not reused.
const CACHE_SCHEMA: u32 = 4;

impl Datasets {
    /// Generates all datasets at the given levels.
    pub(crate) fn generate(ctx: &Ctx, levels: &Levels) -> Self {
        let contacts = Contacts::generate(ctx, levels.contacts);
        let messages = Messages::generate(ctx, levels.messages, &contacts);
        let calls = Calls::generate(ctx, levels.calls, &contacts);
        let notes = Notes::generate(ctx, levels.notes);
        let calendar = Calendar::generate(ctx, levels.events);
        let safari = Safari::generate(ctx, levels.history_visits, levels.bookmarks);
        let photos = Photos::generate(ctx, levels.photos);
        let voice_memos = VoiceMemos::generate(ctx, levels.voice_memos);
        let voicemail = Voicemail::generate(ctx, levels.voicemails, &contacts);
        let whatsapp = WhatsApp::generate(ctx, levels.whatsapp_messages, &contacts);
        Datasets {
            messages,
            contacts,
            calls,
            notes,
            calendar,
            safari,
            photos,
            voice_memos,
            voicemail,
            whatsapp,
        }
    }

    /// The files (not databases) the datasets put on the phone.
    pub(crate) fn files(&self, ctx: &Ctx) -> Vec<DataFile> {
        let mut v = Vec::new();
        v.extend(self.messages.files(ctx));
        v.extend(self.photos.files(ctx));
        v.extend(self.voice_memos.files(ctx));
        v.extend(self.voicemail.files(ctx));
        v.extend(self.whatsapp.files(ctx));
        v
    }

    /// Builds (or reuses from `cache`) every database file.
    pub(crate) fn build(&self, ctx: &Ctx, cache: &Path) -> Result<Vec<BuiltDb>, PhoneError> {
        let ios = ctx.ios;
        let mut out = Vec::new();
        let mut one = |domain: &'static str,
                       relative_path: &'static str,
                       records: &dyn erased::Key,
                       mtime: i64,
                       fill: &dyn Fn(&rusqlite::Connection) -> rusqlite::Result<()>|
         -> Result<(), PhoneError> {
            let mut h = Sha1::new();
            h.update(format!(
                "{CACHE_SCHEMA}|{}.{}|{domain}|{relative_path}|",
                ios.major, ios.minor
            ));
            h.update(records.key_bytes());
            let name = relative_path.rsplit('/').next().unwrap_or(relative_path);
            let file = cache.join("db").join(hex::encode(h.finalize())).join(name);
            let size = crate::db::build(&file, fill)?;
            out.push(BuiltDb {
                domain,
                relative_path,
                file,
                size,
                mtime,
            });
            Ok(())
        };
        one(
            "HomeDomain",
            "Library/SMS/sms.db",
            &self.messages,
            self.messages.last_change(),
            &|c| self.messages.write(c, ios),
        )?;
        one(
            "HomeDomain",
            "Library/AddressBook/AddressBook.sqlitedb",
            &self.contacts,
            self.contacts.last_change(),
            &|c| self.contacts.write(c),
        )?;
        one(
            "HomeDomain",
            "Library/AddressBook/AddressBookImages.sqlitedb",
            &self.contacts,
            self.contacts.last_change(),
            &|c| self.contacts.write_images(c),
        )?;
        one(
            "HomeDomain",
            "Library/CallHistoryDB/CallHistory.storedata",
            &self.calls,
            self.calls.last_change(),
            &|c| self.calls.write(c),
        )?;
        one(
            "AppDomainGroup-group.com.apple.notes",
            "NoteStore.sqlite",
            &self.notes,
            self.notes.last_change(),
            &|c| self.notes.write(c, ios),
        )?;
        one(
            "HomeDomain",
            "Library/Calendar/Calendar.sqlitedb",
            &self.calendar,
            self.calendar.last_change(),
            &|c| self.calendar.write(c),
        )?;
        one(
            "HomeDomain",
            "Library/Safari/History.db",
            &self.safari,
            self.safari.last_change(),
            &|c| self.safari.write_history(c),
        )?;
        one(
            "HomeDomain",
            "Library/Safari/Bookmarks.db",
            &self.safari,
            self.safari.last_change(),
            &|c| self.safari.write_bookmarks(c),
        )?;
        one(
            "CameraRollDomain",
            "Media/PhotoData/Photos.sqlite",
            &self.photos,
            self.photos.last_change(),
            &|c| self.photos.write(c, ios),
        )?;
        let memo_db = if ios.major >= 12 {
            "Media/Recordings/CloudRecordings.db"
        } else {
            "Media/Recordings/Recordings.db"
        };
        one(
            "MediaDomain",
            memo_db,
            &self.voice_memos,
            self.voice_memos.last_change(),
            &|c| self.voice_memos.write(c, ios),
        )?;
        one(
            "HomeDomain",
            "Library/Voicemail/voicemail.db",
            &self.voicemail,
            self.voicemail.last_change(),
            &|c| self.voicemail.write(c),
        )?;
        one(
            "AppDomainGroup-group.net.whatsapp.WhatsApp.shared",
            "ChatStorage.sqlite",
            &self.whatsapp,
            self.whatsapp.last_change(),
            &|c| self.whatsapp.write(c),
        )?;
        Ok(out)
    }
}

/// Cache keys from records: the serialised records themselves, so a code change that alters
/// the records also changes the cache file name.
pub(crate) mod erased {
    /// Something whose serialised form identifies a database's content.
    pub(crate) trait Key {
        fn key_bytes(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Key for T {
        fn key_bytes(&self) -> Vec<u8> {
            serde_json::to_vec(self).unwrap_or_default()
        }
    }
}

/// Word lists used by the generators, so records read like a real person's data.
pub(crate) mod words {
    pub const FIRST: &[&str] = &[
        "Emma", "Liam", "Olivia", "Noah", "Ava", "Elijah", "Sophia", "Lucas", "Mia", "Mateo",
        "Amelia", "Levi", "Harper", "Ethan", "Evelyn", "James", "Aria", "Leo", "Chloe", "Henry",
        "Nora", "Oliver", "Lily", "Jack", "Zoe", "Samuel", "Hannah", "David", "Layla", "Daniel",
        "Sara", "Yuki", "Lena", "Jonas", "Marie", "Paul", "Clara", "Felix", "Anna", "Omar",
        "Fatima", "Ravi", "Priya", "Chen", "Mei", "Diego", "Lucia", "Kofi",
    ];
    pub const LAST: &[&str] = &[
        "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Martinez",
        "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Martin", "Lee", "Thompson",
        "White", "Harris", "Clark", "Lewis", "Walker", "Young", "King", "Wright", "Müller",
        "Schmidt", "Dubois", "Rossi", "Tanaka", "Nguyen", "Kim", "Patel", "Okafor", "Silva",
        "Novak", "Kowalski", "Jensen", "O'Brien",
    ];
    pub const COMPANY: &[&str] = &[
        "Acme Corp",
        "Globex",
        "Initech",
        "Umbrella Health",
        "Stark Industries",
        "Wayne Enterprises",
        "Hooli",
        "Vandelay Industries",
        "Northwind",
        "Contoso",
        "Blue Bottle",
        "City Hospital",
    ];
    pub const JOB: &[&str] = &[
        "Engineer",
        "Designer",
        "Manager",
        "Nurse",
        "Teacher",
        "Accountant",
        "Chef",
        "Consultant",
        "Dentist",
    ];
    pub const PHRASES: &[&str] = &[
        "On my way!",
        "Running 10 min late, sorry",
        "Did you see this?",
        "Sounds good 👍",
        "Can you call me?",
        "Happy birthday!! 🎉",
        "What time is dinner?",
        "I'll pick up the groceries",
        "Thanks so much",
        "See you tomorrow",
        "Where are you?",
        "lol",
        "Meeting moved to 3pm",
        "Love you ❤️",
        "Don't forget the keys",
        "Just landed ✈️",
        "Can't talk now, text you later",
        "Great idea",
        "Let me check and get back to you",
        "Here's the address: 221B Baker Street",
        "Ok",
        "Yes!",
        "No worries",
        "Good night 😴",
        "The package arrived",
        "Are we still on for Saturday?",
        "Your verification code is 482913",
        "Photos from the weekend",
        "Call me when you're free",
        "Traffic is terrible today",
        "Did you feed the cat?",
        "Congrats on the new job!",
    ];
    pub const NOTE_TITLES: &[&str] = &[
        "Groceries",
        "Packing list",
        "Meeting notes",
        "Books to read",
        "Gift ideas",
        "Recipe: pancakes",
        "Passwords hint",
        "Workout plan",
        "Travel itinerary",
        "Project ideas",
        "To do",
        "Movies",
        "Wi-Fi at the cabin",
        "Garden plan",
        "Budget 2024",
    ];
    pub const EVENTS: &[&str] = &[
        "Team standup",
        "Dentist",
        "Lunch with Sara",
        "Yoga",
        "1:1",
        "Flight to Lisbon",
        "Parents' evening",
        "Car service",
        "Book club",
        "Haircut",
        "Soccer practice",
        "Quarterly review",
        "Dinner party",
        "Doctor appointment",
        "Piano lesson",
    ];
    pub const PLACES: &[(&str, f64, f64)] = &[
        ("Cupertino", 37.3230, -122.0322),
        ("San Francisco", 37.7749, -122.4194),
        ("London", 51.5072, -0.1276),
        ("Berlin", 52.5200, 13.4050),
        ("Lisbon", 38.7223, -9.1393),
        ("Tokyo", 35.6762, 139.6503),
        ("New York", 40.7128, -74.0060),
        ("Paris", 48.8566, 2.3522),
    ];
    pub const SITES: &[(&str, &str)] = &[
        ("www.apple.com", "Apple"),
        ("en.wikipedia.org", "Wikipedia"),
        ("www.bbc.co.uk", "BBC News"),
        ("github.com", "GitHub"),
        ("www.nytimes.com", "The New York Times"),
        ("www.google.com", "Google"),
        ("www.youtube.com", "YouTube"),
        ("www.reddit.com", "Reddit"),
        ("news.ycombinator.com", "Hacker News"),
        ("www.amazon.com", "Amazon.com"),
        ("www.theguardian.com", "The Guardian"),
        ("maps.apple.com", "Apple Maps"),
        ("www.allrecipes.com", "Allrecipes"),
        ("www.rust-lang.org", "Rust Programming Language"),
        ("stackoverflow.com", "Stack Overflow"),
        ("www.booking.com", "Booking.com"),
    ];

    /// Picks an element with a uniform draw from `rng`.
    pub fn pick<'a, T, R: rand::Rng>(rng: &mut R, list: &'a [T]) -> &'a T {
        &list[rng.gen_range(0..list.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            IosVersion::parse("17.5"),
            Some(IosVersion {
                major: 17,
                minor: 5
            })
        );
        assert_eq!(
            IosVersion::parse("16"),
            Some(IosVersion {
                major: 16,
                minor: 0
            })
        );
        assert_eq!(
            IosVersion::parse("18.1.1"),
            Some(IosVersion {
                major: 18,
                minor: 1
            })
        );
        assert_eq!(IosVersion::parse("9.3"), None);
        assert_eq!(IosVersion::parse("x"), None);
    }
}
