//! `Status.plist`: the state of the last backup run (format.md §1.4).
//!
//! Restore tools (idevicebackup2) refuse a backup whose `SnapshotState` is not "finished", so
//! this is how a half-written backup is told apart from a complete one. Unknown keys are kept in
//! [`StatusPlist::extra`]. Written as a binary plist; XML and binary are accepted on read.

use std::path::Path;
use std::time::SystemTime;

use plist::{Dictionary, Value};

use crate::error::{IoContext, Result};
use crate::info_plist::{Fields, date_value, put, to_bytes, top_dictionary};

/// File name inside a backup folder.
pub const FILE_NAME: &str = "Status.plist";

/// The `SnapshotState` of a completed backup.
pub const SNAPSHOT_FINISHED: &str = "finished";

/// The typed content of `Status.plist`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusPlist {
    /// `BackupState`, e.g. "new".
    pub backup_state: Option<String>,
    /// `SnapshotState`: "finished" once the backup is complete.
    pub snapshot_state: Option<String>,
    /// `UUID` of this backup run (uppercase UUID).
    pub uuid: Option<String>,
    /// `Version`: "3.3" on modern backups, "2.4" on older ones.
    pub version: Option<String>,
    /// `Date` of the backup run.
    pub date: Option<SystemTime>,
    /// `IsFullBackup`.
    pub is_full_backup: Option<bool>,
    /// Every other key, kept verbatim.
    pub extra: Dictionary,
}

impl StatusPlist {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).at(path)?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses XML or binary plist bytes; `path` is only used in error messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        const WHAT: &str = "Status.plist";
        let dict = top_dictionary(bytes, path, WHAT)?;
        let mut f = Fields {
            dict,
            path,
            what: WHAT,
        };
        Ok(StatusPlist {
            backup_state: f.string("BackupState")?,
            snapshot_state: f.string("SnapshotState")?,
            uuid: f.string("UUID")?,
            version: f.string("Version")?,
            date: f.date("Date")?,
            is_full_backup: f.boolean("IsFullBackup")?,
            extra: f.dict,
        })
    }

    /// Whether the backup run completed (`SnapshotState` is "finished").
    pub fn is_finished(&self) -> bool {
        self.snapshot_state.as_deref() == Some(SNAPSHOT_FINISHED)
    }

    /// The whole plist as a dictionary (typed fields plus `extra`), keys sorted.
    pub fn to_dictionary(&self) -> Dictionary {
        let mut d = self.extra.clone();
        put(
            &mut d,
            "BackupState",
            self.backup_state.clone().map(Value::String),
        );
        put(
            &mut d,
            "SnapshotState",
            self.snapshot_state.clone().map(Value::String),
        );
        put(&mut d, "UUID", self.uuid.clone().map(Value::String));
        put(&mut d, "Version", self.version.clone().map(Value::String));
        put(&mut d, "Date", self.date.map(date_value));
        put(
            &mut d,
            "IsFullBackup",
            self.is_full_backup.map(Value::Boolean),
        );
        d.sort_keys();
        d
    }

    /// The serialized file (binary plist), as [`write`](Self::write) stores it.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        to_bytes(self.to_dictionary(), false, Path::new(FILE_NAME))
    }

    /// Writes the plist (binary) to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = to_bytes(self.to_dictionary(), false, path)?;
        std::fs::write(path, bytes).at(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::time::{Duration, UNIX_EPOCH};

    fn sample() -> StatusPlist {
        StatusPlist {
            backup_state: Some("new".into()),
            snapshot_state: Some(SNAPSHOT_FINISHED.into()),
            uuid: Some("9D0B5740-2562-4216-8E24-2F97DCF12AF5".into()),
            version: Some("3.3".into()),
            date: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_123)),
            is_full_backup: Some(false),
            extra: Dictionary::new(),
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        sample().write(&path).expect("write");
        assert!(std::fs::read(&path).expect("read").starts_with(b"bplist00"));
        let back = StatusPlist::read(&path).expect("read");
        assert_eq!(back, sample());
        assert!(back.is_finished());
        assert!(!StatusPlist::default().is_finished());
    }

    #[test]
    fn wrong_type_and_garbage() {
        let p = Path::new("/b/Status.plist");
        let mut d = sample().to_dictionary();
        d.insert("IsFullBackup".into(), Value::String("no".into()));
        let bytes = to_bytes(d, true, p).expect("xml");
        let msg = StatusPlist::from_bytes(&bytes, p)
            .expect_err("type")
            .to_string();
        assert!(
            msg.contains("Status.plist: IsFullBackup is not a boolean"),
            "{msg}"
        );
        assert!(matches!(
            StatusPlist::from_bytes(b"\x00\x01", p),
            Err(Error::Plist { .. })
        ));
        let missing = StatusPlist::read(Path::new("/nonexistent/Status.plist")).expect_err("io");
        assert!(matches!(missing, Error::Io { .. }));
    }

    proptest::proptest! {
        #[test]
        fn prop_round_trip(
            state in proptest::option::of(".{0,20}"), snap in proptest::option::of(".{0,20}"),
            secs in proptest::option::of(-10_000_000_000i64..10_000_000_000), full in proptest::option::of(proptest::bool::ANY),
        ) {
            let date = secs.map(|s| if s >= 0 {
                UNIX_EPOCH + Duration::from_secs(s.unsigned_abs())
            } else {
                UNIX_EPOCH - Duration::from_secs(s.unsigned_abs())
            });
            let st = StatusPlist { backup_state: state, snapshot_state: snap, date, is_full_backup: full, ..sample() };
            let back = StatusPlist::from_bytes(&st.to_bytes().expect("bytes"), Path::new("x")).expect("parse");
            proptest::prop_assert_eq!(back, st);
        }

        #[test]
        fn prop_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = StatusPlist::from_bytes(&bytes, Path::new("x"));
        }
    }
}
