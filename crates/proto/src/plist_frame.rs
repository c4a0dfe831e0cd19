//! Plist framing used by lockdownd and every plist service: a `u32` big-endian length, then
//! the plist bytes, XML or binary.
//!
//! Senders differ (libimobiledevice sends binary DeviceLink messages, pymobiledevice3 sends
//! XML), so receivers must detect the format from the bytes; the length cap keeps a lying
//! peer from making us allocate gigabytes.

use std::io::Cursor;

use crate::{DecodeError, EncodeError, take, u32_be};

/// Default cap on one framed plist (16 MiB): far above any real message, far below harm.
pub const DEFAULT_MAX_LEN: u32 = 16 * 1024 * 1024;

/// Size of the length prefix.
pub const PREFIX_LEN: usize = 4;

/// The two plist encodings seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlistFormat {
    /// XML (`<?xml …` / `<plist …`).
    Xml,
    /// Binary (`bplist00`).
    Binary,
}

impl PlistFormat {
    /// Detects the format the way libimobiledevice does: binary iff it starts with `bplist00`.
    pub fn detect(bytes: &[u8]) -> PlistFormat {
        if bytes.starts_with(b"bplist00") {
            PlistFormat::Binary
        } else {
            PlistFormat::Xml
        }
    }
}

/// Parses a plist in either format.
pub fn parse_plist(bytes: &[u8], what: &'static str) -> Result<plist::Value, DecodeError> {
    plist::Value::from_reader(Cursor::new(bytes))
        .map_err(|source| DecodeError::Plist { what, source })
}

/// Serialises a plist value in the given format.
pub fn plist_to_bytes(value: &plist::Value, format: PlistFormat) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    match format {
        PlistFormat::Xml => value.to_writer_xml(&mut out)?,
        PlistFormat::Binary => value.to_writer_binary(&mut out)?,
    }
    Ok(out)
}

/// Reads the length prefix of a frame and checks it against `max_len`.
///
/// Returns the payload length; useful for async readers that read the prefix first.
pub fn decode_prefix(buf: &[u8], max_len: u32) -> Result<u32, DecodeError> {
    let len = u32_be(buf, 0)?;
    if len > max_len {
        return Err(DecodeError::TooLarge {
            what: "plist frame",
            len: u64::from(len),
            max: u64::from(max_len),
        });
    }
    Ok(len)
}

/// Decodes one frame from the start of `buf`: the value, its format, and the bytes consumed.
pub fn decode_frame(
    buf: &[u8],
    max_len: u32,
) -> Result<(plist::Value, PlistFormat, usize), DecodeError> {
    let len = decode_prefix(buf, max_len)? as usize;
    let body = take(buf, PREFIX_LEN, len)?;
    let value = parse_plist(body, "plist frame")?;
    Ok((value, PlistFormat::detect(body), PREFIX_LEN + len))
}

/// Encodes one frame: length prefix + plist bytes in `format`.
pub fn encode_frame(value: &plist::Value, format: PlistFormat) -> Result<Vec<u8>, EncodeError> {
    let body = plist_to_bytes(value, format)?;
    let len = u32::try_from(body.len()).map_err(|_| EncodeError::TooLong {
        what: "plist frame",
        len: body.len(),
    })?;
    let mut out = Vec::with_capacity(PREFIX_LEN + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(n: i64, s: &str) -> plist::Value {
        let mut d = plist::Dictionary::new();
        d.insert("Request".into(), plist::Value::String(s.to_string()));
        d.insert("N".into(), plist::Value::Integer(n.into()));
        plist::Value::Dictionary(d)
    }

    #[test]
    fn short_buffers_need_more() {
        let frame = encode_frame(&sample(1, "QueryType"), PlistFormat::Xml).expect("encode");
        for cut in 0..frame.len() {
            let err = decode_frame(&frame[..cut], DEFAULT_MAX_LEN).expect_err("short");
            assert!(err.is_need_more(), "cut {cut}: {err}");
        }
    }

    #[test]
    fn oversize_is_rejected_before_reading() {
        let buf = [0x7f, 0, 0, 0];
        assert!(matches!(
            decode_frame(&buf, 1024),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn garbage_is_a_plist_error() {
        let mut buf = 5u32.to_be_bytes().to_vec();
        buf.extend_from_slice(b"\x00\x01xyz");
        assert!(matches!(
            decode_frame(&buf, 1024),
            Err(DecodeError::Plist { .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(n in any::<i64>(), s in "[a-zA-Z0-9 ]{0,40}", binary in any::<bool>()) {
            let fmt = if binary { PlistFormat::Binary } else { PlistFormat::Xml };
            let v = sample(n, &s);
            let mut frame = encode_frame(&v, fmt).expect("encode");
            frame.extend_from_slice(b"trailing");
            let (back, got_fmt, used) = decode_frame(&frame, DEFAULT_MAX_LEN).expect("decode");
            prop_assert_eq!(back, v);
            prop_assert_eq!(got_fmt, fmt);
            prop_assert_eq!(used, frame.len() - 8);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_frame(&bytes, 1024);
        }
    }
}
