//! The one validator of untrusted manifest paths.
//!
//! # Why this module exists
//!
//! Every domain and relative path in a backup comes from a file somebody else wrote: a phone, a
//! tool, or an attacker who hands an investigator a crafted folder. Extraction turns those strings
//! into real paths under an output folder, so a row `HomeDomain` / `../../.ssh/authorized_keys`
//! must never become a write outside it. All code that writes (extraction, anything that rebuilds
//! the phone's tree on disk) goes through [`validate`], so the rules live in exactly one place and
//! every rejection carries a typed [`UnsafePath`] reason the report can show.
//!
//! # Rules
//!
//! A **domain** must be non-empty, must not be `.` or `..`, and must not contain `/` or NUL
//! (it becomes one directory name).
//!
//! A **relative path** is `/`-separated. It may be empty (the domain root). Otherwise it must not
//! start with `/` (absolute), and every component must be non-empty (`a//b`, a trailing `/`), not
//! `.` or `..`, contain no NUL, and be at most 255 bytes (the Linux `NAME_MAX`; longer names
//! cannot be created anyway and are reported up front rather than as an I/O error).
//!
//! Rejecting `.` and empty components (rather than normalising them away) is deliberate: real
//! phones never produce them, so their presence means the manifest was crafted or damaged, and two
//! different rows must never silently map to the same output path.
//!
//! **Backslashes** are kept as literal characters of a name. On Linux `\` is not a separator, so
//! `a\..\b` is one harmless file name; this crate only targets Unix filesystems. Other bytes
//! (control characters, non-UTF-8 never happens since paths are Rust strings) are likewise kept:
//! a forensic tool must reproduce names exactly, not "clean" them.
//!
//! # Symlink targets
//!
//! [`link_target_inside`] decides whether a symlink may be recreated. Absolute targets (the
//! phone's `/private/var/...`) are never recreated: on the examiner's machine they would point at
//! the examiner's own files. A relative target is accepted only if it is a run of `..` followed by
//! normal names (no `..` after a name) and, interpreted from the link's directory inside the
//! output folder, does not climb above the output folder. Forbidding `..` after a name matters:
//! `l1/..` is lexically harmless, but if `l1` is itself a link the kernel resolves `..` from the
//! link's *target*, which could be above the output folder. With that form every step of the
//! kernel's resolution stays inside the output folder, provided every link involved was accepted
//! by this same rule and the directories were created as real directories (extraction checks).

use std::fmt;
use std::path::PathBuf;

/// Longest allowed path component in bytes (Linux `NAME_MAX`).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Why a domain or path was refused. Serializable for `--json` reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum UnsafePath {
    /// The domain is the empty string.
    EmptyDomain,
    /// The domain contains `/` (it would become several directories).
    DomainHasSlash,
    /// The domain is `.` or `..`.
    DomainIsDots,
    /// The domain contains a NUL byte.
    DomainHasNul,
    /// The relative path starts with `/`.
    Absolute,
    /// A component is `..`.
    ParentComponent,
    /// A component is `.`.
    DotComponent,
    /// A component is empty (`a//b`, trailing `/`).
    EmptyComponent,
    /// The path contains a NUL byte.
    Nul,
    /// A component (or the domain) is longer than [`MAX_COMPONENT_BYTES`].
    ComponentTooLong,
}

impl fmt::Display for UnsafePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnsafePath::EmptyDomain => "empty domain",
            UnsafePath::DomainHasSlash => "domain contains '/'",
            UnsafePath::DomainIsDots => "domain is '.' or '..'",
            UnsafePath::DomainHasNul => "domain contains NUL",
            UnsafePath::Absolute => "absolute path",
            UnsafePath::ParentComponent => "path contains '..'",
            UnsafePath::DotComponent => "path contains '.'",
            UnsafePath::EmptyComponent => "path contains an empty component",
            UnsafePath::Nul => "path contains NUL",
            UnsafePath::ComponentTooLong => "path component longer than 255 bytes",
        })
    }
}

/// A domain and relative path that passed [`validate`]: safe to join under an output folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafePath<'a> {
    domain: &'a str,
    components: Vec<&'a str>,
}

impl<'a> SafePath<'a> {
    /// The validated domain (one directory name).
    pub fn domain(&self) -> &'a str {
        self.domain
    }

    /// The validated components of the relative path (empty for the domain root).
    pub fn components(&self) -> &[&'a str] {
        &self.components
    }

    /// `base/<domain>/<components...>`: the only way extraction builds an output path.
    pub fn under(&self, base: &std::path::Path) -> PathBuf {
        let mut p = base.join(self.domain);
        for c in &self.components {
            p.push(c);
        }
        p
    }
}

/// Validates a domain alone (see the module docs for the rules).
pub fn validate_domain(domain: &str) -> Result<(), UnsafePath> {
    if domain.is_empty() {
        return Err(UnsafePath::EmptyDomain);
    }
    if domain.contains('\0') {
        return Err(UnsafePath::DomainHasNul);
    }
    if domain.contains('/') {
        return Err(UnsafePath::DomainHasSlash);
    }
    if domain == "." || domain == ".." {
        return Err(UnsafePath::DomainIsDots);
    }
    if domain.len() > MAX_COMPONENT_BYTES {
        return Err(UnsafePath::ComponentTooLong);
    }
    Ok(())
}

/// Validates an untrusted domain + relative path (see the module docs for the rules).
pub fn validate<'a>(domain: &'a str, relative_path: &'a str) -> Result<SafePath<'a>, UnsafePath> {
    validate_domain(domain)?;
    if relative_path.is_empty() {
        return Ok(SafePath {
            domain,
            components: Vec::new(),
        });
    }
    if relative_path.contains('\0') {
        return Err(UnsafePath::Nul);
    }
    if relative_path.starts_with('/') {
        return Err(UnsafePath::Absolute);
    }
    let mut components = Vec::new();
    for c in relative_path.split('/') {
        match c {
            "" => return Err(UnsafePath::EmptyComponent),
            "." => return Err(UnsafePath::DotComponent),
            ".." => return Err(UnsafePath::ParentComponent),
            c if c.len() > MAX_COMPONENT_BYTES => return Err(UnsafePath::ComponentTooLong),
            c => components.push(c),
        }
    }
    Ok(SafePath { domain, components })
}

/// Why a symlink is not recreated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum UnsafeLink {
    /// The entry has no target at all.
    NoTarget,
    /// The target is absolute (a path on the phone, meaningless and dangerous here).
    Absolute,
    /// The target is empty or contains NUL.
    Invalid,
    /// `..` appears after a normal name (resolution could leave the folder through another link).
    ParentAfterName,
    /// The target climbs above the output folder.
    Escapes,
}

impl fmt::Display for UnsafeLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnsafeLink::NoTarget => "symlink has no target",
            UnsafeLink::Absolute => "symlink target is absolute",
            UnsafeLink::Invalid => "symlink target is empty or contains NUL",
            UnsafeLink::ParentAfterName => "symlink target has '..' after a name",
            UnsafeLink::Escapes => "symlink target leaves the output folder",
        })
    }
}

/// Checks that a symlink with `target`, placed at `link` (already validated), stays inside the
/// output folder. `link` lives at `OUT/<domain>/<components>`, so its directory is
/// `1 + components.len() - 1` levels below `OUT`. See the module docs for the rule.
pub fn link_target_inside(link: &SafePath<'_>, target: &str) -> Result<(), UnsafeLink> {
    if target.is_empty() || target.contains('\0') {
        return Err(UnsafeLink::Invalid);
    }
    if target.starts_with('/') {
        return Err(UnsafeLink::Absolute);
    }
    // Depth of the link's directory below OUT: the domain directory plus all components but the
    // last (the link's own name). A link at the domain root itself (no components) sits in OUT.
    let depth = link.components().len();
    let mut ups = 0usize;
    let mut seen_name = false;
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if seen_name {
                    return Err(UnsafeLink::ParentAfterName);
                }
                ups += 1;
            }
            _ => seen_name = true,
        }
    }
    if ups > depth {
        return Err(UnsafeLink::Escapes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_normal_paths() {
        let p = validate("HomeDomain", "Library/SMS/sms.db").expect("safe");
        assert_eq!(p.domain(), "HomeDomain");
        assert_eq!(p.components(), &["Library", "SMS", "sms.db"]);
        assert_eq!(
            p.under(std::path::Path::new("/o")),
            PathBuf::from("/o/HomeDomain/Library/SMS/sms.db")
        );
        assert!(
            validate("HomeDomain", "")
                .expect("root")
                .components()
                .is_empty()
        );
        assert!(
            validate("HomeDomain", "a\\..\\b").is_ok(),
            "backslash is a literal name char"
        );
        assert!(validate("HomeDomain", "..a/b..").is_ok());
    }

    #[test]
    fn rejects_bad_paths() {
        assert_eq!(validate("", "a"), Err(UnsafePath::EmptyDomain));
        assert_eq!(validate("a/b", "a"), Err(UnsafePath::DomainHasSlash));
        assert_eq!(validate("..", "a"), Err(UnsafePath::DomainIsDots));
        assert_eq!(validate(".", "a"), Err(UnsafePath::DomainIsDots));
        assert_eq!(validate("a\0", "a"), Err(UnsafePath::DomainHasNul));
        assert_eq!(validate("D", "/etc/passwd"), Err(UnsafePath::Absolute));
        assert_eq!(validate("D", "a/../../x"), Err(UnsafePath::ParentComponent));
        assert_eq!(validate("D", ".."), Err(UnsafePath::ParentComponent));
        assert_eq!(validate("D", "./a"), Err(UnsafePath::DotComponent));
        assert_eq!(validate("D", "a//b"), Err(UnsafePath::EmptyComponent));
        assert_eq!(validate("D", "a/"), Err(UnsafePath::EmptyComponent));
        assert_eq!(validate("D", "a\0b"), Err(UnsafePath::Nul));
        assert_eq!(
            validate("D", &"x".repeat(256)),
            Err(UnsafePath::ComponentTooLong)
        );
    }

    #[test]
    fn link_targets() {
        let link = validate("D", "a/b/l").expect("safe");
        assert_eq!(link_target_inside(&link, "x"), Ok(()));
        assert_eq!(link_target_inside(&link, "../../x"), Ok(()));
        assert_eq!(
            link_target_inside(&link, "../../../E/x"),
            Ok(()),
            "OUT/E/x is inside OUT"
        );
        assert_eq!(
            link_target_inside(&link, "../../../../x"),
            Err(UnsafeLink::Escapes)
        );
        assert_eq!(
            link_target_inside(&link, "/etc/passwd"),
            Err(UnsafeLink::Absolute)
        );
        assert_eq!(
            link_target_inside(&link, "y/../x"),
            Err(UnsafeLink::ParentAfterName)
        );
        assert_eq!(link_target_inside(&link, ""), Err(UnsafeLink::Invalid));
        let root_link = validate("D", "l").expect("safe");
        assert_eq!(link_target_inside(&root_link, "../x"), Ok(()));
        assert_eq!(
            link_target_inside(&root_link, "../../x"),
            Err(UnsafeLink::Escapes)
        );
    }

    proptest! {
        /// Whatever the input, an accepted path joined under a base stays under it lexically.
        #[test]
        fn accepted_paths_stay_inside(domain in "[a-zA-Z./\\\\\0-]{0,6}", rel in "[a./\\\\\0]{0,12}") {
            if let Ok(p) = validate(&domain, &rel) {
                let base = std::path::Path::new("/base");
                let out = p.under(base);
                prop_assert!(out.starts_with(base.join(&domain)));
                for c in out.strip_prefix(base).expect("prefix").components() {
                    prop_assert!(matches!(c, std::path::Component::Normal(_)));
                }
            }
        }
    }
}
