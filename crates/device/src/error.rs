//! The one error type of the device crate.
//!
//! Policy: every variant carries the thing it is about (UDID, path, request, code) as data, so the
//! CLI can print one clear sentence and pick an exit code, and [`Error::is_retryable`] tells a
//! caller (or a scheduler running nightly backups) whether trying again later can help.

use std::path::PathBuf;

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a device-reported failure (a `DLMessageProcessMessage` with a non-zero `ErrorCode`) means
/// for the user. Classified from the MBErrorDomain code and the description text, because real
/// devices reuse codes (205 wraps many underlying errors) and the text is the only precise part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceErrorKind {
    /// The phone is locked with a passcode (keychain or protection classes unavailable).
    DeviceLocked,
    /// The backup password given does not match.
    WrongPassword,
    /// Not enough free space (on the host for a backup, on the phone for a restore).
    InsufficientSpace,
    /// The phone could not read or write some files (MBErrorDomain 205 "Multiple errors ...").
    FileErrors,
    /// The backup folder the phone was given is broken or incomplete (unreadable Status/Manifest).
    BadBackupFolder,
    /// Another sync (iTunes, Finder, a second iosnap) is running on the phone.
    Busy,
    /// The request was cancelled on the phone.
    Cancelled,
    /// The phone asked for its passcode to allow the backup (iOS ≥ 16.1) and nobody entered
    /// it in time (or the prompt was cancelled on the phone).
    PasscodeTimeout,
    /// Anything else: the code and description are shown as they came.
    Other,
}

impl DeviceErrorKind {
    /// Classifies a device error from its MBErrorDomain code and description text.
    pub fn classify(code: u64, description: &str) -> DeviceErrorKind {
        let d = description.to_ascii_lowercase();
        if d.contains("passcode") {
            return DeviceErrorKind::PasscodeTimeout;
        }
        if d.contains("password") || d.contains("passphrase") {
            return DeviceErrorKind::WrongPassword;
        }
        if d.contains("locked") || d.contains("keychain") || d.contains("protection class") {
            return DeviceErrorKind::DeviceLocked;
        }
        if d.contains("space") || d.contains("disk full") {
            return DeviceErrorKind::InsufficientSpace;
        }
        if d.contains("cancel") {
            return DeviceErrorKind::Cancelled;
        }
        if d.contains("busy") || d.contains("in progress") || d.contains("another sync") {
            return DeviceErrorKind::Busy;
        }
        match code {
            105 => DeviceErrorKind::InsufficientSpace,
            208 => DeviceErrorKind::DeviceLocked,
            103 | 104 => DeviceErrorKind::BadBackupFolder,
            205 if d.contains("reading backup") || d.contains("deserializ") => {
                DeviceErrorKind::BadBackupFolder
            }
            205 => DeviceErrorKind::FileErrors,
            _ => DeviceErrorKind::Other,
        }
    }

    /// A short advice sentence for the user, shown after the device's own description.
    pub fn advice(self) -> &'static str {
        match self {
            DeviceErrorKind::DeviceLocked => "unlock the phone and keep it unlocked, then retry",
            DeviceErrorKind::WrongPassword => "the backup password is wrong",
            DeviceErrorKind::InsufficientSpace => "free some space and retry",
            DeviceErrorKind::FileErrors => "some files could not be transferred; retry",
            DeviceErrorKind::BadBackupFolder => {
                "the backup folder is incomplete or damaged; back up into a fresh folder (or use --full)"
            }
            DeviceErrorKind::Busy => "another sync is running on the phone; wait for it and retry",
            DeviceErrorKind::Cancelled => "the operation was cancelled on the phone",
            DeviceErrorKind::PasscodeTimeout => {
                "unlock your iPhone and enter the passcode to allow the backup, then retry"
            }
            DeviceErrorKind::Other => "see the device's message",
        }
    }
}

/// Everything that can go wrong between this host and a phone.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usbmuxd socket: the daemon is not installed/started. The text is part of the CLI
    /// contract (DEVICE_API.md) so users get the fix in the message itself.
    #[error(
        "usbmuxd is not running (no socket at {}): start it with `sudo systemctl start usbmuxd`, or point USBMUXD_SOCKET_ADDRESS at a simulator (`iosnap simulate`)",
        path.display()
    )]
    NoUsbmuxd {
        /// The socket path that was tried.
        path: PathBuf,
    },
    /// usbmuxd (or what the address points at) could not be reached.
    #[error("cannot reach usbmuxd at {addr}: {source}")]
    MuxUnreachable {
        /// The address that was tried.
        addr: String,
        /// The underlying socket error.
        #[source]
        source: std::io::Error,
    },
    /// `USBMUXD_SOCKET_ADDRESS` (or a `--usbmux` value) could not be understood.
    #[error("invalid usbmuxd address {value:?}: {reason}")]
    BadMuxAddress {
        /// The value as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// usbmuxd answered something that does not follow its protocol.
    #[error("usbmuxd protocol error: {0}")]
    MuxProtocol(String),
    /// usbmuxd refused a request with a result code.
    #[error("usbmuxd refused {request}: result code {code}")]
    MuxRefused {
        /// The request (MessageType) that was refused.
        request: String,
        /// usbmuxd's result number (1 bad command, 2 bad device, 3 connection refused, 6 bad version).
        code: u64,
    },
    /// The UDID is not in usbmuxd's device list (unplugged, never connected, or wrong UDID).
    #[error(
        "device {udid} is not connected (usbmuxd does not list it); check the cable and `iosnap devices`"
    )]
    DeviceNotFound {
        /// The UDID that was asked for.
        udid: String,
    },
    /// The connection to the phone dropped in the middle of an operation.
    #[error(
        "device {udid} disconnected during {during}; nothing was changed in the backup folder, retry"
    )]
    Disconnected {
        /// The phone.
        udid: String,
        /// The protocol step that was running.
        during: String,
    },
    /// The phone stopped answering.
    #[error("device {udid} stopped responding during {during} (no data for {secs} s)")]
    Timeout {
        /// The phone.
        udid: String,
        /// The protocol step that was running.
        during: String,
        /// The idle timeout that expired.
        secs: u64,
    },
    /// The phone asked for its passcode before the backup (iOS ≥ 16.1) and the prompt stayed
    /// up longer than [`crate::BackupOptions::passcode_timeout`].
    #[error(
        "device {udid} is waiting for its passcode: unlock your iPhone and enter the passcode to allow the backup (waited {secs} s), then retry"
    )]
    PasscodeTimeout {
        /// The phone.
        udid: String,
        /// How long the prompt was waited for.
        secs: u64,
    },
    /// The phone has not been paired and pairing needs the user.
    #[error("device {udid}: {reason}")]
    Pairing {
        /// The phone.
        udid: String,
        /// What the user has to do.
        reason: String,
        /// Whether retrying after the user acted can succeed.
        retryable: bool,
    },
    /// The phone refused this computer's pair record (`InvalidHostID`): it was erased, "Reset
    /// Location & Privacy" was used, or it forgot the computer. A session that may pair
    /// deletes the record and pairs again (the user taps Trust); this error is what is left
    /// when it may not.
    #[error(
        "device {udid}: the phone no longer trusts this computer's pair record (it was erased, or \"Reset Location & Privacy\" was used): run `iosnap backup` to pair again and tap Trust on the phone"
    )]
    PairRecordRejected {
        /// The phone.
        udid: String,
    },
    /// A pair record exists but cannot be used.
    #[error("pair record for {udid} from {source_name} is unusable: {reason}")]
    BadPairRecord {
        /// The phone.
        udid: String,
        /// Where it came from (usbmuxd or a file path).
        source_name: String,
        /// Why it is unusable.
        reason: String,
    },
    /// lockdownd (the phone's front door) refused or failed a request.
    #[error("lockdown {request} on {udid} failed: {message}")]
    Lockdown {
        /// The phone.
        udid: String,
        /// The lockdown request (GetValue, StartSession, StartService …).
        request: String,
        /// The device's error string, or the local failure.
        message: String,
    },
    /// Another process holds the sync lock on the phone (iTunes, Finder, another backup).
    #[error(
        "device {udid} is busy: another program holds the sync lock (tried {attempts} times over {waited_ms} ms); close iTunes/Finder or other backup tools and retry"
    )]
    SyncLockBusy {
        /// The phone.
        udid: String,
        /// How many lock attempts were made.
        attempts: u32,
        /// Total time waited.
        waited_ms: u64,
    },
    /// An AFC (file conduit) operation failed with a status code.
    #[error("AFC {op} {path:?} on the phone failed with status {status} ({})", afc_status_name(*status))]
    Afc {
        /// The AFC operation.
        op: &'static str,
        /// The phone-side path.
        path: String,
        /// The AFC status code.
        status: u64,
    },
    /// The phone sent something that breaks the protocol (wrong message, bad length, bad type).
    #[error("device protocol error during {context}: {detail}")]
    Protocol {
        /// The protocol step.
        context: String,
        /// What was wrong.
        detail: String,
    },
    /// A path sent by the phone would leave the backup folder or is malformed; rejected.
    #[error("rejected unsafe path from device: {path:?} ({reason})")]
    UnsafePath {
        /// The path as sent (lossy UTF-8).
        path: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The phone reported a failure at the end of the operation (MBErrorDomain code).
    #[error("device reported error {code}: {description} ({})", kind.advice())]
    Device {
        /// The MBErrorDomain error code.
        code: u64,
        /// The device's description.
        description: String,
        /// What it means.
        kind: DeviceErrorKind,
    },
    /// The phone said the backup finished but Status.plist disagrees.
    #[error("backup not finished: {} has SnapshotState {state:?}, expected \"finished\"", path.display())]
    SnapshotNotFinished {
        /// Status.plist path.
        path: PathBuf,
        /// The state found (or a description of why it could not be read).
        state: String,
    },
    /// A backup folder cannot be used for the requested operation (restore/info).
    #[error("backup folder {} cannot be used: {reason}", path.display())]
    BadBackupFolder {
        /// The folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The operation does not fit the phone's state (e.g. `encryption on` when already on).
    #[error("{0}")]
    InvalidRequest(String),
    /// A local file system operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Undoing a failed backup did not fully succeed; the named paths need attention.
    #[error("{original}; additionally, undoing the partial changes failed: {problems}")]
    RollbackFailed {
        /// The error that caused the rollback.
        original: Box<Error>,
        /// What could not be undone.
        problems: String,
    },
}

/// Human name of an AFC status code (LIMD afc.h / idevice AfcError).
pub fn afc_status_name(status: u64) -> &'static str {
    match status {
        0 => "success",
        1 => "unknown error",
        7 => "invalid argument",
        8 => "object not found",
        9 => "object is a directory",
        10 => "permission denied",
        11 => "service not connected",
        12 => "operation timed out",
        16 => "object exists",
        17 => "object busy",
        18 => "no space left",
        19 => "operation would block",
        20 => "I/O error",
        33 => "directory not empty",
        _ => "other AFC error",
    }
}

impl Error {
    /// Whether trying the same operation again later can reasonably succeed (a dropped cable,
    /// a busy or locked phone, a pending Trust dialog) as opposed to needing a change (wrong
    /// password, damaged folder, bad configuration).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::NoUsbmuxd { .. } | Error::BadMuxAddress { .. } => false,
            Error::MuxUnreachable { .. } => true,
            Error::MuxProtocol(_) => false,
            Error::MuxRefused { code, .. } => *code == 3 || *code == 2,
            Error::DeviceNotFound { .. } => true,
            Error::Disconnected { .. } | Error::Timeout { .. } => true,
            Error::PasscodeTimeout { .. } => true,
            Error::Pairing { retryable, .. } => *retryable,
            Error::BadPairRecord { .. } | Error::PairRecordRejected { .. } => false,
            Error::Lockdown { message, .. } => {
                let m = message.to_ascii_lowercase();
                m.contains("locked") || m.contains("sessioninactive") || m.contains("socket")
            }
            Error::SyncLockBusy { .. } => true,
            Error::Afc { status, .. } => matches!(*status, 12 | 17 | 19),
            Error::Protocol { .. } | Error::UnsafePath { .. } => false,
            Error::Device { kind, .. } => matches!(
                kind,
                DeviceErrorKind::DeviceLocked | DeviceErrorKind::Busy | DeviceErrorKind::FileErrors
            ),
            Error::SnapshotNotFinished { .. } => true,
            Error::BadBackupFolder { .. } | Error::InvalidRequest(_) => false,
            Error::Io { .. } => false,
            Error::RollbackFailed { .. } => false,
        }
    }

    /// What the failure means for the user when it concerns the phone's state (locked,
    /// waiting for its passcode, busy …): the kind of a device-reported [`Error::Device`], and
    /// [`DeviceErrorKind::PasscodeTimeout`] for [`Error::PasscodeTimeout`]. A scheduler uses
    /// it to say *why* it waits ("locked device") instead of only that it failed.
    pub fn device_error_kind(&self) -> Option<DeviceErrorKind> {
        match self {
            Error::Device { kind, .. } => Some(*kind),
            Error::PasscodeTimeout { .. } => Some(DeviceErrorKind::PasscodeTimeout),
            Error::RollbackFailed { original, .. } => original.device_error_kind(),
            _ => None,
        }
    }

    /// Builds an [`Error::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`Error::Protocol`].
    pub(crate) fn protocol(context: impl Into<String>, detail: impl Into<String>) -> Error {
        Error::Protocol {
            context: context.into(),
            detail: detail.into(),
        }
    }
}

/// Maps a socket-level error met while talking to the phone to the user-facing error: a closed
/// or reset connection means the phone went away (unplugged, rebooted, crashed service).
pub(crate) fn link_error(udid: &str, during: &str, e: &std::io::Error) -> Error {
    use std::io::ErrorKind::*;
    match e.kind() {
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe | NotConnected => {
            Error::Disconnected {
                udid: udid.to_string(),
                during: during.to_string(),
            }
        }
        TimedOut => Error::Timeout {
            udid: udid.to_string(),
            during: during.to_string(),
            secs: 0,
        },
        _ => Error::Protocol {
            context: during.to_string(),
            detail: e.to_string(),
        },
    }
}

/// Maps an error from the `idevice` crate (used for lockdown, pairing and the notification,
/// installation and springboard services) to ours, so device error strings get our wording.
pub(crate) fn from_idevice(udid: &str, request: &str, e: idevice::IdeviceError) -> Error {
    use idevice::IdeviceError as I;
    match e {
        I::Socket(io) => link_error(udid, request, &io),
        I::Rustls(tls) => Error::Lockdown {
            udid: udid.to_string(),
            request: request.to_string(),
            message: format!("TLS handshake failed: {tls}"),
        },
        I::PairingDialogResponsePending => Error::Pairing {
            udid: udid.to_string(),
            reason: "the phone is showing \"Trust This Computer?\": unlock it, tap Trust, then retry"
                .into(),
            retryable: true,
        },
        I::UserDeniedPairing => Error::Pairing {
            udid: udid.to_string(),
            reason: "the phone refused pairing (\"Don't Trust\" was tapped); unplug and replug the phone, tap Trust, then retry"
                .into(),
            retryable: true,
        },
        I::PasswordProtected => Error::Pairing {
            udid: udid.to_string(),
            reason: "the phone is locked with a passcode: unlock it to pair, then retry".into(),
            retryable: true,
        },
        I::InvalidHostID => Error::PairRecordRejected {
            udid: udid.to_string(),
        },
        I::DeviceLocked => Error::Lockdown {
            udid: udid.to_string(),
            request: request.to_string(),
            message: "the phone is locked: unlock it and retry".into(),
        },
        I::SessionInactive => Error::Lockdown {
            udid: udid.to_string(),
            request: request.to_string(),
            message: "SessionInactive: the lockdown session ended; retry".into(),
        },
        other => Error::Lockdown {
            udid: udid.to_string(),
            request: request.to_string(),
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_usbmuxd_message_is_the_contract_text() {
        let e = Error::NoUsbmuxd {
            path: PathBuf::from("/var/run/usbmuxd"),
        };
        assert_eq!(
            e.to_string(),
            "usbmuxd is not running (no socket at /var/run/usbmuxd): start it with `sudo systemctl start usbmuxd`, or point USBMUXD_SOCKET_ADDRESS at a simulator (`iosnap simulate`)"
        );
        assert!(!e.is_retryable());
    }

    #[test]
    fn device_errors_are_classified() {
        assert_eq!(
            DeviceErrorKind::classify(205, "Multiple errors downloading files"),
            DeviceErrorKind::FileErrors
        );
        assert_eq!(
            DeviceErrorKind::classify(1, "Error copying keychain data"),
            DeviceErrorKind::DeviceLocked
        );
        assert_eq!(
            DeviceErrorKind::classify(105, "Not enough free disk space on target"),
            DeviceErrorKind::InsufficientSpace
        );
        assert_eq!(
            DeviceErrorKind::classify(207, "The password is incorrect"),
            DeviceErrorKind::WrongPassword
        );
        assert_eq!(
            DeviceErrorKind::classify(205, "Error reading backup properties"),
            DeviceErrorKind::BadBackupFolder
        );
        assert_eq!(DeviceErrorKind::classify(999, "x"), DeviceErrorKind::Other);
        assert_eq!(
            DeviceErrorKind::classify(1, "Passcode entry was cancelled"),
            DeviceErrorKind::PasscodeTimeout
        );
    }

    #[test]
    fn retryable_flags() {
        let d = Error::Disconnected {
            udid: "u".into(),
            during: "backup".into(),
        };
        assert!(d.is_retryable());
        let wp = Error::Device {
            code: 207,
            description: "bad password".into(),
            kind: DeviceErrorKind::WrongPassword,
        };
        assert!(!wp.is_retryable());
        let lock = Error::SyncLockBusy {
            udid: "u".into(),
            attempts: 3,
            waited_ms: 600,
        };
        assert!(lock.is_retryable());
        assert!(lock.to_string().contains("sync lock"));
    }

    #[test]
    fn passcode_timeout_is_a_retryable_locked_state() {
        let e = Error::PasscodeTimeout {
            udid: "u".into(),
            secs: 300,
        };
        assert!(e.is_retryable());
        assert_eq!(
            e.device_error_kind(),
            Some(DeviceErrorKind::PasscodeTimeout)
        );
        assert!(e.to_string().contains("enter the passcode"), "{e}");
        let wrapped = Error::RollbackFailed {
            original: Box::new(e),
            problems: "x".into(),
        };
        assert_eq!(
            wrapped.device_error_kind(),
            Some(DeviceErrorKind::PasscodeTimeout)
        );
        assert_eq!(Error::InvalidRequest("x".into()).device_error_kind(), None);
    }

    #[test]
    fn eof_means_disconnected() {
        let e = link_error(
            "abc",
            "UploadFiles",
            &std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
        );
        assert!(matches!(e, Error::Disconnected { .. }));
    }
}
