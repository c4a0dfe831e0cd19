//! Host `errno` → DeviceLink device error code, the table libimobiledevice (HEAD) and
//! pymobiledevice3 agree on. The host reports failed file operations with these codes; the
//! device side maps them back to decide e.g. that a missing `Status.plist` means "full backup".

use std::io;

/// The device code for "no such file" (ENOENT).
pub const NOT_FOUND: i64 = -6;
/// The device code for "already exists" (EEXIST).
pub const EXISTS: i64 = -7;
/// The device code for "not a directory" (ENOTDIR).
pub const NOT_DIR: i64 = -8;
/// The device code for "is a directory" (EISDIR).
pub const IS_DIR: i64 = -9;
/// The device code for "too many symlinks" (ELOOP).
pub const LOOP: i64 = -10;
/// The device code for an I/O error (EIO).
pub const IO: i64 = -11;
/// The device code for "no space left" (ENOSPC).
pub const NO_SPACE: i64 = -15;
/// Anything else.
pub const OTHER: i64 = -1;

/// Linux errno numbers of the table (the project targets Linux hosts).
pub mod linux {
    /// ENOENT
    pub const ENOENT: i32 = 2;
    /// EIO
    pub const EIO: i32 = 5;
    /// EEXIST
    pub const EEXIST: i32 = 17;
    /// ENOTDIR
    pub const ENOTDIR: i32 = 20;
    /// EISDIR
    pub const EISDIR: i32 = 21;
    /// ENOSPC
    pub const ENOSPC: i32 = 28;
    /// ELOOP
    pub const ELOOP: i32 = 40;
}

/// Maps a Linux errno to the device code.
pub fn device_code_for_errno(errno: i32) -> i64 {
    match errno {
        linux::ENOENT => NOT_FOUND,
        linux::EEXIST => EXISTS,
        linux::ENOTDIR => NOT_DIR,
        linux::EISDIR => IS_DIR,
        linux::ELOOP => LOOP,
        linux::EIO => IO,
        linux::ENOSPC => NO_SPACE,
        _ => OTHER,
    }
}

/// Maps a device code back to the Linux errno (None for [`OTHER`] and unknown codes).
pub fn errno_for_device_code(code: i64) -> Option<i32> {
    Some(match code {
        NOT_FOUND => linux::ENOENT,
        EXISTS => linux::EEXIST,
        NOT_DIR => linux::ENOTDIR,
        IS_DIR => linux::EISDIR,
        LOOP => linux::ELOOP,
        IO => linux::EIO,
        NO_SPACE => linux::ENOSPC,
        _ => return None,
    })
}

/// Maps an `io::Error` to the device code (by OS errno when present, else by kind).
pub fn device_code_for_io_error(e: &io::Error) -> i64 {
    if let Some(errno) = e.raw_os_error() {
        return device_code_for_errno(errno);
    }
    match e.kind() {
        io::ErrorKind::NotFound => NOT_FOUND,
        io::ErrorKind::AlreadyExists => EXISTS,
        io::ErrorKind::NotADirectory => NOT_DIR,
        io::ErrorKind::IsADirectory => IS_DIR,
        io::ErrorKind::StorageFull => NO_SPACE,
        _ => OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips() {
        for errno in [
            linux::ENOENT,
            linux::EEXIST,
            linux::ENOTDIR,
            linux::EISDIR,
            linux::ELOOP,
            linux::EIO,
            linux::ENOSPC,
        ] {
            assert_eq!(
                errno_for_device_code(device_code_for_errno(errno)),
                Some(errno)
            );
        }
        assert_eq!(device_code_for_errno(13), OTHER);
        assert_eq!(errno_for_device_code(OTHER), None);
    }

    #[test]
    fn io_errors_map() {
        assert_eq!(
            device_code_for_io_error(&io::Error::from_raw_os_error(2)),
            NOT_FOUND
        );
        assert_eq!(
            device_code_for_io_error(&io::Error::from(io::ErrorKind::AlreadyExists)),
            EXISTS
        );
        assert_eq!(device_code_for_io_error(&io::Error::other("x")), OTHER);
    }
}
