//! # iosnap-datasets — people's data out of an iOS backup
//!
//! Messages, contacts, call history, calendars, Safari history/bookmarks, voicemail and voice
//! memos, notes, photos, WhatsApp, and the list of installed apps, read from the databases inside a backup folder
//! ([`iosnap_format::Backup`], plain or unlocked) as typed, streaming iterators, and exported
//! the way people expect (HTML, TXT, CSV, JSON, vCard, iCalendar).
//!
//! ## Design
//!
//! * [`Source`] copies one database (with its `-wal`/`-shm`) decrypted into a private temp
//!   folder, because SQLite needs a file; the copy is removed on drop.
//! * [`schema::Schema`] probes tables and columns *before* any query: a column missing in one
//!   iOS generation is selected as `NULL` instead of failing the whole query (the failure mode
//!   that made other tools silently drop every row).
//! * Rows are read page by page (keyset pagination), so memory stays bounded whatever the size
//!   of the database, and every value is converted leniently (a text where an integer was
//!   expected is not a panic, a huge blob is skipped and counted).
//! * Exports write under the chosen output folder only: every file name is built from
//!   sanitized components, never from a path found in a database.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod apps;
pub mod audio;
pub mod calendar;
pub mod calls;
pub mod contacts;
pub mod counts;
mod error;
pub mod export;
pub mod keychain;
pub mod messages;
pub mod notes;
mod page;
pub mod photos;
pub mod safari;
pub mod schema;
mod source;
pub mod time;
pub mod typedstream;
mod value;
pub mod whatsapp;

pub use error::{Error, Result};
pub use source::{DbLocation, Source};
