//! A small, bounded reader for the `attributedBody` column of `sms.db` (iOS 16+ often leaves
//! `text` NULL and keeps the body only there): an `NSAttributedString` archived as a NeXTSTEP
//! *typedstream*. Only the string is extracted — formatting, mentions and effects are not.
//!
//! The archive starts `04 0B "streamtyped"`, then class chains. The string is the first
//! object of class `NSString`/`NSMutableString`: after the class name come its version, the
//! superclass reference, and the type encoding `84 01 '+'` (one C-string-like byte string),
//! then a typedstream integer length (one byte below 0x80, `0x81` + i16 LE, `0x82` + i32 LE) and
//! the UTF-8 bytes. Every step is bounds-checked: garbage gives an error, never a panic.

/// Why no string could be read from a blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypedstreamError {
    /// The blob does not start with the typedstream signature.
    #[error("not a typedstream")]
    NotTypedstream,
    /// No `NSString` object was found.
    #[error("no NSString in the typedstream")]
    NoString,
    /// The length is malformed or runs past the end.
    #[error("bad string length in the typedstream")]
    BadLength,
}

const SIGNATURE: &[u8] = b"\x04\x0bstreamtyped";
/// How far after the class name the `84 01 '+'` type marker may sit.
const MARKER_WINDOW: usize = 48;

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Reads a typedstream integer at `i`: returns (value, bytes used).
fn read_len(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let tag = *b.get(i)?;
    match tag {
        0x81 => {
            let raw = b.get(i + 1..i + 3)?;
            Some((usize::from(u16::from_le_bytes([raw[0], raw[1]])), 3))
        }
        0x82 => {
            let raw = b.get(i + 1..i + 5)?;
            let n = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
            Some((usize::try_from(n).ok()?, 5))
        }
        t if t < 0x80 => Some((usize::from(t), 1)),
        _ => None,
    }
}

/// The text of an archived `NSAttributedString` (invalid UTF-8 is replaced, not rejected).
pub fn attributed_text(blob: &[u8]) -> Result<String, TypedstreamError> {
    if !blob.starts_with(SIGNATURE) {
        return Err(TypedstreamError::NotTypedstream);
    }
    let mut from = SIGNATURE.len();
    loop {
        let at = [&b"NSString"[..], b"NSMutableString"]
            .iter()
            .filter_map(|n| find(blob, n, from).map(|p| p + n.len()))
            .min()
            .ok_or(TypedstreamError::NoString)?;
        let window_end = at.saturating_add(MARKER_WINDOW).min(blob.len());
        let window = blob.get(at..window_end).unwrap_or_default();
        if let Some(m) = find(window, b"\x84\x01+", 0) {
            let len_at = at + m + 3;
            let (len, used) = read_len(blob, len_at).ok_or(TypedstreamError::BadLength)?;
            let start = len_at + used;
            let bytes = start
                .checked_add(len)
                .and_then(|end| blob.get(start..end))
                .ok_or(TypedstreamError::BadLength)?;
            return Ok(String::from_utf8_lossy(bytes).into_owned());
        }
        from = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_phone_bodies() {
        for text in [
            "Hello",
            "",
            "Sounds good 👍",
            &"x".repeat(300),
            &"é".repeat(40_000),
        ] {
            let b = iosnap_phone::datasets::messages::attributed_body(text);
            assert_eq!(attributed_text(&b).as_deref(), Ok(text));
        }
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(attributed_text(b""), Err(TypedstreamError::NotTypedstream));
        assert_eq!(
            attributed_text(b"\x04\x0bstreamtyped\x84"),
            Err(TypedstreamError::NoString)
        );
        assert_eq!(
            attributed_text(b"\x04\x0bstreamtypedNSString\x01\x94\x84\x01+\x82\xff\xff\xff\x7f"),
            Err(TypedstreamError::BadLength)
        );
        assert_eq!(
            attributed_text(b"\x04\x0bstreamtypedNSString\x01\x94\x84\x01+\x05ab"),
            Err(TypedstreamError::BadLength)
        );
    }

    proptest! {
        #[test]
        fn never_panics(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut b = SIGNATURE.to_vec();
            b.extend_from_slice(&tail);
            let _ = attributed_text(&b);
            let _ = attributed_text(&tail);
        }

        #[test]
        fn truncations_never_panic(text in ".{0,200}", cut in 0usize..400) {
            let b = iosnap_phone::datasets::messages::attributed_body(&text);
            let _ = attributed_text(&b[..cut.min(b.len())]);
        }
    }
}
