//! Escaping of untrusted names before they reach a terminal.
//!
//! Domains and paths come from a phone's manifest: a hostile backup could name a file
//! `"\x1b]0;pwned\x07"` and rewrite the user's terminal. Everything printed as text goes through
//! [`for_terminal`]; `--json` output is escaped by serde instead.

use std::borrow::Cow;

/// Returns `s` with control, bidi-override and zero-width characters replaced by visible escapes.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_untouched() {
        assert!(matches!(
            for_terminal("Library/SMS/sms.db"),
            Cow::Borrowed(_)
        ));
        assert_eq!(for_terminal("Fotos/été.jpg"), "Fotos/été.jpg");
    }

    #[test]
    fn escapes_are_made_visible() {
        assert_eq!(for_terminal("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(for_terminal("x\u{202E}y"), "x\\u{202e}y");
        assert_eq!(for_terminal("nl\n"), "nl\\u{a}");
    }
}
