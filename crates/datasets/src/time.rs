//! Apple timestamps → Unix seconds → text. Almost every database counts from the Cocoa epoch
//! (2001-01-01 UTC); `sms.db` uses nanoseconds since iOS 11; voicemail uses Unix seconds.

/// Seconds between 1970-01-01 and 2001-01-01 (UTC).
pub const COCOA_EPOCH: i64 = 978_307_200;

/// A Cocoa time in seconds (or nanoseconds, when ≥ 10¹²: sms.db since iOS 11) → Unix seconds.
/// `0` and absurd values (before 1970 or after 9999) are `None`: "not set".
pub fn apple_to_unix(v: i64) -> Option<i64> {
    if v == 0 {
        return None;
    }
    let secs = if v.unsigned_abs() >= 1_000_000_000_000 {
        v / 1_000_000_000
    } else {
        v
    };
    let unix = secs.checked_add(COCOA_EPOCH)?;
    (0..253_402_300_800).contains(&unix).then_some(unix)
}

/// A Cocoa time in (fractional) seconds → Unix seconds, `None` when 0 or out of range.
pub fn cocoa_real_to_unix(v: f64) -> Option<i64> {
    if !v.is_finite() || v == 0.0 || v.abs() > 1e12 {
        return None;
    }
    apple_to_unix(v.floor() as i64)
}

/// "YYYY-MM-DD HH:MM:SS" UTC, for people; empty when out of range.
pub fn human(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// RFC 3339 UTC ("2024-02-29T12:34:56Z"), for machines; empty when out of range.
pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Serde helper: an optional Unix time as an RFC 3339 string (or null).
pub(crate) mod opt_rfc3339 {
    /// Serializes `Some(unix)` as RFC 3339, `None` as null.
    pub fn serialize<S: serde::Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(t) => s.serialize_str(&super::rfc3339(*t)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs() {
        assert_eq!(apple_to_unix(0), None);
        assert_eq!(apple_to_unix(1), Some(COCOA_EPOCH + 1));
        assert_eq!(apple_to_unix(730_903_296_000_000_000), Some(1_709_210_496));
        assert_eq!(apple_to_unix(300_000_000_000), None);
        assert!(apple_to_unix(i64::MAX).is_some());
        assert_eq!(apple_to_unix(i64::MIN), None);
        assert_eq!(cocoa_real_to_unix(10.7), Some(COCOA_EPOCH + 10));
        assert_eq!(cocoa_real_to_unix(f64::INFINITY), None);
        assert_eq!(human(1_709_210_096), "2024-02-29 12:34:56");
        assert_eq!(rfc3339(1_709_210_096), "2024-02-29T12:34:56Z");
    }
}
