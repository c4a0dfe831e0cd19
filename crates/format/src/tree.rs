//! The phone's file tree, rebuilt from the flat manifest.
//!
//! A manifest is a flat list of rows; people want `ls`. [`Tree::build`] turns rows into one
//! directory tree per domain. Directories implied by a path are created even when their own row is
//! missing (partial backups, crafted manifests) and are marked [`Node::implied`]. Rows whose path
//! fails [`path_safety::validate`] are not placed in the tree (a
//! `..` component has no place in one); they are kept in [`Tree::rejected`] so a browser can
//! still show them and nothing disappears silently.

use std::collections::BTreeMap;

use globset::{Glob, GlobMatcher};

use crate::entry::{Entry, EntryKind};
use crate::error::{Error, Result};
use crate::path_safety::{self, UnsafePath};

/// One node of the tree (the domain root, a directory, a file, a symlink).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The last path component ("" for a domain root).
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
    /// Logical size (files), 0 otherwise.
    pub size: u64,
    /// Modification time, Unix seconds (0 for implied directories).
    pub mtime: i64,
    /// The row's file id; `None` for implied directories.
    pub file_id: Option<String>,
    /// The row's index in the entry slice given to [`Tree::build`]; `None` if implied.
    pub entry_index: Option<usize>,
    /// True if no manifest row exists for this directory: it was implied by a deeper path.
    pub implied: bool,
    children: BTreeMap<String, usize>,
}

/// A directory listing line, serializable for `--json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Child {
    /// Name inside the listed directory.
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
    /// Logical size (files).
    pub size: u64,
    /// Modification time, Unix seconds.
    pub mtime: i64,
    /// File id of the row, if there is one.
    pub file_id: Option<String>,
    /// Whether the directory was implied by a deeper path rather than present as a row.
    pub implied: bool,
}

/// Per-domain counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DomainStats {
    /// Regular files.
    pub files: u64,
    /// Sum of the files' logical sizes.
    pub bytes: u64,
    /// Directories (rows and implied ones, not counting the domain root).
    pub dirs: u64,
    /// Symlinks.
    pub symlinks: u64,
    /// Rows of another kind (unknown flags).
    pub other: u64,
}

/// A row left out of the tree because its path is unsafe.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// The row's domain, as stored.
    pub domain: String,
    /// The row's relative path, as stored.
    pub relative_path: String,
    /// Why it was rejected.
    pub reason: UnsafePath,
}

/// A search hit: the entry index and its `domain/relativePath` display path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    /// Index into the entry slice given to [`Tree::build`].
    pub entry_index: usize,
    /// `domain/relativePath`.
    pub path: String,
}

/// The rebuilt tree of all domains.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    nodes: Vec<Node>,
    roots: BTreeMap<String, usize>,
    stats: BTreeMap<String, DomainStats>,
    rejected: Vec<Rejected>,
    paths: Vec<(usize, String)>,
}

impl Tree {
    /// Builds the tree. Duplicate rows (same domain and path, possible in an mbdb) keep the first.
    pub fn build(entries: &[Entry]) -> Tree {
        let mut t = Tree::default();
        for (i, e) in entries.iter().enumerate() {
            let safe = match path_safety::validate(&e.domain, &e.relative_path) {
                Ok(s) => s,
                Err(reason) => {
                    t.rejected.push(Rejected {
                        domain: e.domain.clone(),
                        relative_path: e.relative_path.clone(),
                        reason,
                    });
                    continue;
                }
            };
            let mut cur = t.root(&e.domain);
            let comps = safe.components();
            let mut created_last = false;
            for (depth, c) in comps.iter().enumerate() {
                let last = depth + 1 == comps.len();
                let existing = t.nodes.get(cur).and_then(|n| n.children.get(*c)).copied();
                cur = match existing {
                    Some(id) => id,
                    None => {
                        let id = t.push(Node {
                            name: (*c).to_string(),
                            kind: EntryKind::Directory,
                            size: 0,
                            mtime: 0,
                            file_id: None,
                            entry_index: None,
                            implied: true,
                            children: BTreeMap::new(),
                        });
                        if let Some(parent) = t.nodes.get_mut(cur) {
                            parent.children.insert((*c).to_string(), id);
                        }
                        if last {
                            created_last = true;
                        } else {
                            t.stats.entry(e.domain.clone()).or_default().dirs += 1;
                        }
                        id
                    }
                };
            }
            // `cur` is the node for this row (the root for relative path "").
            let Some(node) = t.nodes.get_mut(cur) else {
                continue;
            };
            if !node.implied && !comps.is_empty() {
                continue; // duplicate row: keep the first
            }
            // An implied directory that existed before this row was already counted as a dir.
            let counted_as_dir = node.implied && !created_last && !comps.is_empty();
            node.kind = e.kind;
            node.size = if e.kind == EntryKind::File {
                e.meta.size
            } else {
                0
            };
            node.mtime = e.meta.mtime;
            node.file_id = Some(e.file_id.clone());
            node.entry_index = Some(i);
            node.implied = false;
            if comps.is_empty() {
                continue; // the domain root row
            }
            let st = t.stats.entry(e.domain.clone()).or_default();
            match e.kind {
                EntryKind::File => {
                    st.files += 1;
                    st.bytes = st.bytes.saturating_add(e.meta.size);
                }
                EntryKind::Directory => st.dirs += u64::from(!counted_as_dir),
                EntryKind::Symlink => st.symlinks += 1,
                EntryKind::Other(_) => st.other += 1,
            }
            if counted_as_dir && e.kind != EntryKind::Directory {
                st.dirs = st.dirs.saturating_sub(1);
            }
            t.paths
                .push((i, format!("{}/{}", e.domain, e.relative_path)));
        }
        t
    }

    fn push(&mut self, n: Node) -> usize {
        self.nodes.push(n);
        self.nodes.len() - 1
    }

    fn root(&mut self, domain: &str) -> usize {
        if let Some(&id) = self.roots.get(domain) {
            return id;
        }
        let id = self.push(Node {
            name: String::new(),
            kind: EntryKind::Directory,
            size: 0,
            mtime: 0,
            file_id: None,
            entry_index: None,
            implied: true,
            children: BTreeMap::new(),
        });
        self.roots.insert(domain.to_string(), id);
        self.stats.entry(domain.to_string()).or_default();
        id
    }

    /// All domains, sorted.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.roots.keys().map(String::as_str)
    }

    /// Counters per domain.
    pub fn stats(&self) -> &BTreeMap<String, DomainStats> {
        &self.stats
    }

    /// Rows left out because their path is unsafe.
    pub fn rejected(&self) -> &[Rejected] {
        &self.rejected
    }

    /// The node at `domain` / `dir` (`dir` "" or "/" = the domain root; leading and trailing `/`
    /// are ignored so user input like `Library/` works).
    pub fn node(&self, domain: &str, dir: &str) -> Option<&Node> {
        let mut cur = *self.roots.get(domain)?;
        for c in dir.split('/').filter(|c| !c.is_empty()) {
            cur = *self.nodes.get(cur)?.children.get(c)?;
        }
        self.nodes.get(cur)
    }

    /// Lists a directory, children sorted by name. Errors if the path does not exist or is not a
    /// directory (the error names it, for the CLI).
    pub fn list(&self, domain: &str, dir: &str) -> Result<Vec<Child>> {
        let node = self.node(domain, dir).ok_or_else(|| Error::NotFound {
            domain: domain.to_string(),
            relative_path: dir.to_string(),
        })?;
        if node.kind != EntryKind::Directory {
            return Err(Error::InvalidArgument(format!(
                "{domain}/{dir} is not a directory"
            )));
        }
        Ok(node
            .children
            .values()
            .filter_map(|&id| self.nodes.get(id))
            .map(|n| Child {
                name: n.name.clone(),
                kind: n.kind,
                size: n.size,
                mtime: n.mtime,
                file_id: n.file_id.clone(),
                implied: n.implied,
            })
            .collect())
    }

    /// Finds rows whose `domain/relativePath` matches a glob (globset syntax; `*` does not cross
    /// `/`, `**` does). Domain roots are not matched. Results are in entry order.
    pub fn find(&self, pattern: &str) -> Result<Vec<Found>> {
        let m = compile_glob(pattern)?;
        Ok(self
            .paths
            .iter()
            .filter(|(_, p)| m.is_match(p))
            .map(|(i, p)| Found {
                entry_index: *i,
                path: p.clone(),
            })
            .collect())
    }
}

/// Compiles a user glob with `/` as a literal separator, mapping errors to
/// [`Error::InvalidArgument`] (shared with extraction's path filter).
pub fn compile_glob(pattern: &str) -> Result<GlobMatcher> {
    let g = globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .or_else(|_| Glob::new(pattern))
        .map_err(|e| Error::InvalidArgument(format!("invalid glob {pattern:?}: {e}")))?;
    Ok(g.compile_matcher())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{FileMeta, file_id};

    fn e(domain: &str, rel: &str, kind: EntryKind, size: u64) -> Entry {
        Entry {
            file_id: file_id(domain, rel),
            domain: domain.into(),
            relative_path: rel.into(),
            kind,
            meta: FileMeta {
                size,
                mtime: 7,
                ..FileMeta::default()
            },
        }
    }

    #[test]
    fn builds_and_lists_with_implied_dirs() {
        let entries = vec![
            e("HomeDomain", "", EntryKind::Directory, 0),
            e("HomeDomain", "Library/SMS/sms.db", EntryKind::File, 10),
            e("HomeDomain", "Library", EntryKind::Directory, 0),
            e("HomeDomain", "Library/link", EntryKind::Symlink, 0),
            e("MediaDomain", "a/b", EntryKind::File, 5),
            e("MediaDomain", "../evil", EntryKind::File, 5),
        ];
        let t = Tree::build(&entries);
        assert_eq!(
            t.domains().collect::<Vec<_>>(),
            vec!["HomeDomain", "MediaDomain"]
        );
        let root = t.list("HomeDomain", "").expect("root");
        assert_eq!(root.len(), 1);
        assert_eq!(root[0].name, "Library");
        assert!(!root[0].implied);
        let lib = t.list("HomeDomain", "Library/").expect("lib");
        assert_eq!(
            lib.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            vec!["SMS", "link"]
        );
        assert!(lib[0].implied);
        assert_eq!(lib[1].kind, EntryKind::Symlink);
        let sms = t.list("HomeDomain", "Library/SMS").expect("sms");
        assert_eq!(sms[0].size, 10);
        assert_eq!(sms[0].file_id.as_deref(), Some(entries[1].file_id.as_str()));
        assert!(t.list("HomeDomain", "Library/SMS/sms.db").is_err());
        assert!(t.list("HomeDomain", "nope").is_err());
        assert_eq!(t.rejected().len(), 1);
        assert_eq!(t.rejected()[0].reason, UnsafePath::ParentComponent);
        let hs = t.stats()["HomeDomain"];
        assert_eq!((hs.files, hs.bytes, hs.dirs, hs.symlinks), (1, 10, 2, 1));
        let ms = t.stats()["MediaDomain"];
        assert_eq!((ms.files, ms.dirs), (1, 1));
    }

    #[test]
    fn glob_find() {
        let entries = vec![
            e("HomeDomain", "Library/SMS/sms.db", EntryKind::File, 1),
            e(
                "HomeDomain",
                "Library/Notes/notes.sqlite",
                EntryKind::File,
                1,
            ),
            e("AppDomain-x", "Documents/a.db", EntryKind::File, 1),
        ];
        let t = Tree::build(&entries);
        let hits = t.find("*/**/*.db").expect("glob");
        assert_eq!(
            hits.iter().map(|f| f.entry_index).collect::<Vec<_>>(),
            vec![0, 2]
        );
        assert_eq!(
            t.find("HomeDomain/*").expect("glob").len(),
            0,
            "* does not cross /"
        );
        assert_eq!(t.find("HomeDomain/**").expect("glob").len(), 2);
        assert!(matches!(
            t.find("a[").expect_err("bad glob"),
            Error::InvalidArgument(_)
        ));
    }
}
