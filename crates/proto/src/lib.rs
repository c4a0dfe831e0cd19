//! # iosnap-proto — wire codecs for the iOS device protocols
//!
//! The device side (the simulator) and the host side (the device crate) speak the same bytes;
//! keeping the encoders and the decoders next to each other here means both sides agree by
//! construction, and every decoder of untrusted bytes is property-tested against its encoder.
//!
//! Every decoder works on a byte slice and either returns the decoded value plus the number of
//! bytes it consumed, or [`DecodeError::NeedMore`] when the slice ends early, so callers can
//! use them on a growing buffer (async readers) as well as on a complete message.
//!
//! | module | protocol piece |
//! |---|---|
//! | [`plist_frame`] | `u32` big-endian length + XML or binary plist (lockdown and every plist service) |
//! | [`usbmux`] | the usbmuxd 16-byte little-endian header and its plist messages |
//! | [`devicelink`] | DeviceLink message names, the status response, raw file-transfer blocks |
//! | [`afc`] | AFC packet header, opcodes, status codes, lock and open modes |
//! | [`errno`] | host `errno` → DeviceLink device error code |

pub mod afc;
pub mod devicelink;
pub mod errno;
pub mod plist_frame;
pub mod usbmux;

/// Why bytes from the wire could not be decoded.
///
/// `NeedMore` is not a failure: it tells a streaming caller to read more bytes and retry.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The buffer ends before the message does; at least `needed` more bytes are required.
    #[error("need {needed} more bytes")]
    NeedMore {
        /// How many more bytes are required at minimum.
        needed: usize,
    },
    /// A length field announces more than the caller's limit (protects memory).
    #[error("{what} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Which length field.
        what: &'static str,
        /// The announced length.
        len: u64,
        /// The caller's limit.
        max: u64,
    },
    /// The bytes do not form a valid message.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which structure.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The plist payload of a message could not be parsed.
    #[error("invalid plist in {what}: {source}")]
    Plist {
        /// Which message carried it.
        what: &'static str,
        /// The parser's error.
        #[source]
        source: plist::Error,
    },
}

impl DecodeError {
    /// Whether this only means "the buffer is incomplete".
    pub fn is_need_more(&self) -> bool {
        matches!(self, DecodeError::NeedMore { .. })
    }

    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        DecodeError::Malformed {
            what,
            reason: reason.into(),
        }
    }
}

/// Why a value could not be encoded (only plist serialisation can fail).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The plist serializer failed.
    #[error("cannot serialise plist: {0}")]
    Plist(#[from] plist::Error),
    /// A length does not fit the wire's length field.
    #[error("{what} of {len} bytes does not fit the length field")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// The length that does not fit.
        len: usize,
    },
}

/// Takes `n` bytes at `at` or says how many are missing.
pub(crate) fn take(buf: &[u8], at: usize, n: usize) -> Result<&[u8], DecodeError> {
    let end = at
        .checked_add(n)
        .ok_or_else(|| DecodeError::malformed("length", "overflow"))?;
    match buf.get(at..end) {
        Some(s) => Ok(s),
        None => Err(DecodeError::NeedMore {
            needed: end.saturating_sub(buf.len()).max(1),
        }),
    }
}

pub(crate) fn u32_be(buf: &[u8], at: usize) -> Result<u32, DecodeError> {
    let s = take(buf, at, 4)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

pub(crate) fn u32_le(buf: &[u8], at: usize) -> Result<u32, DecodeError> {
    let s = take(buf, at, 4)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub(crate) fn u64_le(buf: &[u8], at: usize) -> Result<u64, DecodeError> {
    let s = take(buf, at, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_reports_missing_bytes() {
        let buf = [1u8, 2, 3];
        assert_eq!(take(&buf, 1, 2).expect("fits"), &[2, 3]);
        match take(&buf, 1, 5) {
            Err(DecodeError::NeedMore { needed }) => assert_eq!(needed, 3),
            other => panic!("unexpected {other:?}"),
        }
        match take(&buf, 5, 2) {
            Err(DecodeError::NeedMore { needed }) => assert_eq!(needed, 4),
            other => panic!("unexpected {other:?}"),
        }
    }
}
