//! The snapshot library of iosnap: Time-Machine-style snapshots of iOS backups on disk.
//!
//! Every snapshot is a complete standard backup folder that shares unchanged files with its
//! predecessor (reflink, hard link, or copy as the last resort), committed atomically, listed
//! in a rebuildable SQLite catalog, and subject to iMazing-style retention. See DESIGN.md,
//! "The library on disk", for the layout and the five invariants this crate tests.

pub mod catalog;
pub mod clock;
pub mod diff;
pub mod error;
pub mod library;
pub mod retention;
pub mod settings;
pub mod share;

pub use catalog::Catalog;
pub use clock::{Clock, ManualClock, SystemClock, parse_snapshot_name, snapshot_name};
pub use error::{Error, Result};
pub use library::{
    DeviceLock, ImportReport, Library, MoveReport, Snapshot, SnapshotInfo, SnapshotMeta,
    SpaceBasis, SpaceCheck, SpaceVerdict, Staging, TIGHT_MARGIN, default_location, filesystem_name,
    free_space,
};
pub use retention::{KeepReason, Plan, PruneMode, PruneOutcome, plan, prune};
pub use settings::{ConfigDir, DeviceSettings, Locations};
pub use share::{CloneReport, SharingMethod, TreeUsage};
