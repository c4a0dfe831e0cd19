//! # iosnap-format — one iTunes/Finder iOS backup folder, everything about it
//!
//! This crate knows one backup folder and nothing else: no networking, no snapshots.
//! It opens any folder (iOS 10+ `Manifest.db`, iOS 5–9 `Manifest.mbdb`), decrypts encrypted
//! ones, rebuilds the flattened `xx/<sha1>` files into the phone's tree, extracts safely,
//! verifies, and writes new standard folders (plain or encrypted) that other tools open.
//!
//! ## Layout
//!
//! | module | holds |
//! |---|---|
//! | [`error`] | the crate's error type and its policy |
//! | [`entry`] | [`Entry`], [`FileMeta`], [`EntryKind`], [`WrappedKey`], [`file_id`] |
//! | [`info_plist`], [`manifest_plist`], [`status_plist`] | the three metadata plists, typed, unknown keys kept |
//! | [`manifest_db`] | `Manifest.db` (iOS 10+): read rows, write a new database |
//! | [`mbfile`] | the NSKeyedArchiver `MBFile` blob in each `Manifest.db` row |
//! | [`mbdb`] | the legacy `Manifest.mbdb` index (iOS 5–9) |
//! | [`keybag`] | the `BackupKeyBag` TLV, password → class keys |
//! | [`keychain`] | `keychain-backup.plist`: passwords, Wi-Fi, keys, decrypted with the class keys |
//! | [`crypto`] | key derivation, RFC 3394 wrap/unwrap, streaming AES-256-CBC |
//! | [`backup`] | [`Backup`]: open a folder, unlock it, list entries, read files |
//! | [`domain`] | domains grouped as people think of them (system, apps, groups, plugins) |
//! | [`tree`] | the reconstructed tree: list a directory, find by glob |
//! | [`path_safety`] | the one place where untrusted manifest paths are validated |
//! | [`scratch`] | private temp folders for decrypted data, cleaned up even after a kill |
//! | [`extract`] | extraction to `OUT/<domain>/<relativePath>` |
//! | [`verify`] | every file row has its data file with the right size |
//! | [`writer`] | create a standard backup folder, plain or encrypted |

pub mod backup;
mod bplist_writer;
pub mod crypto;
pub mod domain;
pub mod entry;
pub mod error;
pub mod extract;
pub mod info_plist;
pub mod keybag;
pub mod keychain;
pub mod manifest_db;
pub mod manifest_plist;
pub mod mbdb;
pub mod mbfile;
pub mod path_safety;
pub mod scratch;
pub mod status_plist;
pub mod tree;
pub mod verify;
pub mod writer;

pub use entry::{Entry, EntryKind, FileMeta, WrappedKey, file_id, is_file_id};
// More re-exports (Backup, Keybag, …) are added as the modules land.
pub use crypto::{FileKey, Kek};
pub use error::{Error, Result};
pub use keybag::{ClassKeys, KdfParams, Keybag};
pub use {
    backup::{Backup, ManifestFormat},
    domain::{DomainGroup, DomainSummary, group_domains},
    extract::{ExtractReport, Extractor, Overwrite, Progress},
    tree::Tree,
    verify::VerifyReport,
    writer::{BackupKeys, BackupWriter, DeviceInfo, Encryption, EntryEncoder, WriterOptions},
};
pub use {
    info_plist::InfoPlist,
    manifest_db::{ManifestDb, ManifestDbWriter, ManifestRows, RowProblem},
    manifest_plist::ManifestPlist,
    status_plist::StatusPlist,
};
