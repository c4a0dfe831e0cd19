//! Lenient conversions of SQLite values: a database written by someone else may put a text
//! where an integer belongs; that becomes a best-effort value or `None`, never a panic.

use rusqlite::Row;
use rusqlite::types::ValueRef;

/// Column `i` of a row, `Null` when the index is out of range.
pub(crate) fn get<'a>(row: &'a Row<'_>, i: usize) -> ValueRef<'a> {
    row.get_ref(i).unwrap_or(ValueRef::Null)
}

/// An integer: integers as is, finite reals truncated, texts parsed.
pub(crate) fn int(v: ValueRef<'_>) -> Option<i64> {
    match v {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Real(f) if f.is_finite() => Some(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// A real number: reals, integers, parsable texts.
pub(crate) fn real(v: ValueRef<'_>) -> Option<f64> {
    match v {
        ValueRef::Integer(i) => Some(i as f64),
        ValueRef::Real(f) if f.is_finite() => Some(f),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()?
            .trim()
            .parse()
            .ok()
            .filter(|f: &f64| f.is_finite()),
        _ => None,
    }
}

/// A text: texts (invalid UTF-8 replaced), numbers formatted, blobs decoded as UTF-8 (call
/// history stores some addresses as blobs).
pub(crate) fn text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    }
}

/// A non-empty text.
pub(crate) fn nonempty(v: ValueRef<'_>) -> Option<String> {
    text(v).filter(|s| !s.trim().is_empty())
}

/// A blob (texts as their bytes).
pub(crate) fn blob(v: ValueRef<'_>) -> Option<Vec<u8>> {
    match v {
        ValueRef::Blob(b) | ValueRef::Text(b) => Some(b.to_vec()),
        _ => None,
    }
}

/// A flag: non-zero integer.
pub(crate) fn flag(v: ValueRef<'_>) -> bool {
    int(v).is_some_and(|i| i != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient() {
        assert_eq!(int(ValueRef::Text(b" 42 ")), Some(42));
        assert_eq!(int(ValueRef::Real(f64::NAN)), None);
        assert_eq!(int(ValueRef::Blob(b"1")), None);
        assert_eq!(real(ValueRef::Integer(3)), Some(3.0));
        assert_eq!(text(ValueRef::Blob(b"+1555")), Some("+1555".into()));
        assert_eq!(nonempty(ValueRef::Text(b"  ")), None);
        assert!(flag(ValueRef::Integer(2)));
        assert!(!flag(ValueRef::Text(b"x")));
    }
}
