//! Escaping for the output formats: HTML, CSV, vCard (RFC 6350 / 2426) values and line folding.

use std::fmt::Write as _;

/// HTML text and attribute escaping (`& < > " '`).
pub(crate) fn html(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Percent-encodes a relative URL path (keeps `A-Z a-z 0-9 - . _ ~ /`).
pub(crate) fn url_path(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            o.push(char::from(b));
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A CSV record (fields joined, CRLF-terminated as RFC 4180 says).
pub(crate) fn csv_row<S: AsRef<str>>(fields: &[S]) -> String {
    let mut o = fields
        .iter()
        .map(|f| csv_field(f.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    o.push_str("\r\n");
    o
}

/// A vCard/iCalendar text value: `\` `,` `;` escaped, newlines as `\n`.
pub(crate) fn vtext(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => o.push_str("\\\\"),
            ',' => o.push_str("\\,"),
            ';' => o.push_str("\\;"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                o.push_str("\\n");
            }
            '\n' => o.push_str("\\n"),
            c if c.is_control() => {}
            c => o.push(c),
        }
    }
    o
}

/// Folds a content line at 75 octets (never inside a UTF-8 character), CRLF + space
/// continuation, and terminates it with CRLF.
pub(crate) fn fold(line: &str) -> String {
    let mut o = String::with_capacity(line.len() + line.len() / 70 * 3 + 2);
    let mut width = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if width + n > 75 {
            o.push_str("\r\n ");
            width = 1;
        }
        o.push(c);
        width += n;
    }
    o.push_str("\r\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes() {
        assert_eq!(
            html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(url_path("a b/c#?.jpg"), "a%20b/c%23%3F.jpg");
        assert_eq!(csv_field("a,\"b\"\n"), "\"a,\"\"b\"\"\n\"");
        assert_eq!(csv_row(&["a", "b"]), "a,b\r\n");
        assert_eq!(vtext("a;b,c\\d\r\ne"), "a\\;b\\,c\\\\d\\ne");
    }

    proptest! {
        #[test]
        fn folding_keeps_content(s in "\\PC{0,300}") {
            let f = fold(&s);
            prop_assert!(f.ends_with("\r\n"));
            for l in f.trim_end_matches("\r\n").split("\r\n") {
                prop_assert!(l.len() <= 75);
            }
            let unfolded = f.trim_end_matches("\r\n").replace("\r\n ", "");
            prop_assert_eq!(unfolded, s);
        }
    }
}
