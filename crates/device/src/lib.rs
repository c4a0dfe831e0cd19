//! # iosnap-device — the host side: talk to an iPhone through usbmuxd and back it up
//!
//! This crate finds phones ([`list_devices`], [`watch_devices`]), opens a paired, TLS-protected
//! lockdown session ([`DeviceSession`]) and runs the mobilebackup2 operations ([`backup`],
//! [`restore`], [`info`], [`list`], [`change_password`]) with the choreography real phones
//! expect (notification posts, AFC sync lock, Info.plist) — see `DESIGN-NOTES.md` for what comes
//! from the `idevice` crate and what is written here, and why.
//!
//! Safety promises a backup store relies on:
//! - no file in the backup folder is modified in place (temp file, fsync, rename);
//! - a failed or interrupted operation leaves the folder byte-for-byte as it was (undo journal);
//! - paths sent by the phone are validated and confined to the phone's folder;
//! - nothing the phone (or usbmuxd) sends can make this crate panic or allocate without bound.
//!
//! ```no_run
//! # async fn demo() -> iosnap_device::Result<()> {
//! use iosnap_device::{BackupOptions, DeviceSession, MuxAddr, backup, list_devices};
//! let mux = MuxAddr::from_env()?;
//! for d in list_devices(&mux).await? {
//!     let session = DeviceSession::connect(&mux, &d.udid).await?;
//!     let summary = backup(&session, "/backups".as_ref(), &BackupOptions::default(), |p| {
//!         eprintln!("{:?}% {} files {} bytes", p.percent, p.files, p.bytes)
//!     })
//!     .await?;
//!     println!("{} files", summary.files_received);
//! }
//! # Ok(()) }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod afc;
mod beneath;
pub mod devicelink;
pub mod error;
mod flush;
pub mod info_plist;
pub mod mux;
pub mod ops;
mod pipeline;
pub mod session;
pub mod store;
pub mod wire;

pub use devicelink::Progress;
pub use error::{DeviceErrorKind, Error, Result};
pub use mux::{ConnectionType, DeviceEvent, DeviceInfo, MuxAddr, list_devices, watch_devices};
pub use ops::{
    BackupOptions, BackupSummary, RestoreOptions, backup, change_password, info, list, restore,
};
pub use session::{DeviceSession, DeviceValues, ForgottenPairing, SessionOptions, forget_pairing};
