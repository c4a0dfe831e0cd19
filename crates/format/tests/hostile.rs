//! A hand-made hostile (plain) backup: unsafe paths and domains, escaping symlinks, garbage rows,
//! and symlinks planted in the output folder before extraction. Everything must be rejected and
//! counted, nothing written outside OUT, no panic.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use iosnap_format::extract::{Overwrite, SkipReason};
use iosnap_format::path_safety::UnsafePath;
use iosnap_format::verify::verify;
use iosnap_format::{Backup, Extractor, FileMeta, Tree, file_id, mbfile};

struct Row {
    domain: &'static str,
    rel: &'static str,
    flags: i64,
    mode: u32,
    target: Option<&'static str>,
    data: Option<&'static [u8]>,
}

const fn file(domain: &'static str, rel: &'static str, data: &'static [u8]) -> Row {
    Row {
        domain,
        rel,
        flags: 1,
        mode: 0o100644,
        target: None,
        data: Some(data),
    }
}

const fn link(domain: &'static str, rel: &'static str, target: &'static str) -> Row {
    Row {
        domain,
        rel,
        flags: 4,
        mode: 0o120755,
        target: Some(target),
        data: None,
    }
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            domain: "HomeDomain",
            rel: "",
            flags: 2,
            mode: 0o040755,
            target: None,
            data: None,
        },
        file("HomeDomain", "good.txt", b"good"),
        file("HomeDomain", "sub/good2.txt", b"good2"),
        Row {
            mode: 0o106777,
            ..file("HomeDomain", "setuid.bin", b"suid")
        },
        Row {
            mode: 0o100000,
            ..file("HomeDomain", "noperm.bin", b"noperm")
        },
        // Unsafe paths.
        file("HomeDomain", "/tmp/iosnap-hostile-absolute", b"abs"),
        file("HomeDomain", "../../escape.txt", b"dotdot"),
        file("HomeDomain", "sub/../../../escape2.txt", b"dotdot2"),
        file("HomeDomain", "./dot.txt", b"dot"),
        file("HomeDomain", "a//b.txt", b"empty"),
        file("HomeDomain", "nul\0name.txt", b"nul"),
        file("HomeDomain", "trailing/", b"trailing"),
        // Unsafe domains.
        file("..", "escape3.txt", b"domain dotdot"),
        file("../Evil", "x.txt", b"domain slash"),
        file("", "x.txt", b"empty domain"),
        file("Dom\0ain", "x.txt", b"nul domain"),
        // Symlinks.
        link("HomeDomain", "link_abs", "/etc"),
        link("HomeDomain", "link_up", "../../../../outside"),
        link("HomeDomain", "sub/link_back_and_forth", "x/../../../.."),
        link("HomeDomain", "sub/link_ok", "../good.txt"),
        // A link row and a file row "through" it: the file makes a real directory first.
        link("HomeDomain", "via", "../.."),
        file("HomeDomain", "via/pwn.txt", b"through link"),
        // Targets of symlinks planted in OUT before extraction.
        file(
            "HomeDomain",
            "planted_dir/pwn.txt",
            b"through planted dir link",
        ),
        file("HomeDomain", "planted_file", b"replaces planted file link"),
        // Unknown kind.
        Row {
            domain: "HomeDomain",
            rel: "weird",
            flags: 16,
            mode: 0o010644,
            target: None,
            data: None,
        },
    ]
}

fn make_backup(dir: &Path) -> usize {
    std::fs::create_dir_all(dir).expect("mkdir");
    let db = rusqlite::Connection::open(dir.join("Manifest.db")).expect("db");
    db.execute_batch(
        "CREATE TABLE Files (fileID TEXT PRIMARY KEY, domain TEXT, relativePath TEXT, flags INTEGER, file BLOB);
         CREATE INDEX FilesDomainIdx ON Files(domain);
         CREATE INDEX FilesRelativePathIdx ON Files(relativePath);
         CREATE INDEX FilesFlagsIdx ON Files(flags);
         CREATE TABLE Properties (key TEXT PRIMARY KEY, value BLOB);",
    )
    .expect("schema");
    let rows = rows();
    for r in &rows {
        let id = file_id(r.domain, r.rel);
        let meta = FileMeta {
            size: r.data.map_or(0, |d| d.len() as u64),
            mode: r.mode,
            mtime: 1_600_000_000,
            protection_class: 4,
            target: r.target.map(str::to_string),
            ..FileMeta::default()
        };
        db.execute(
            "INSERT INTO Files VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![id, r.domain, r.rel, r.flags, mbfile::encode(&meta, r.rel)],
        )
        .expect("insert");
        if let Some(d) = r.data {
            std::fs::create_dir_all(dir.join(&id[..2])).expect("bucket");
            std::fs::write(dir.join(&id[..2]).join(&id), d).expect("data");
        }
    }
    // Garbage rows: a non-hex file id pointing outside, and a garbage MBFile blob.
    db.execute(
        "INSERT INTO Files VALUES ('../../../../etc/passwd', 'HomeDomain', 'passwd', 1, ?1)",
        [mbfile::encode(
            &FileMeta {
                size: 4,
                mode: 0o100644,
                ..FileMeta::default()
            },
            "passwd",
        )],
    )
    .expect("bad id");
    db.execute(
        "INSERT INTO Files VALUES (?1, 'HomeDomain', 'garbage', 1, X'0001020362706c6973743030ff')",
        [file_id("HomeDomain", "garbage")],
    )
    .expect("garbage");
    rows.len()
}

/// Every path under `root`, relative, not following links.
fn snapshot(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            out.insert(p.strip_prefix(root).expect("prefix").to_path_buf());
            if e.file_type().expect("type").is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

#[test]
fn hostile_manifest_is_contained() {
    let base = tempfile::tempdir().expect("tmp");
    let backup_dir = base.path().join("backup");
    let out = base.path().join("out");
    let outside = base.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside");
    std::fs::write(outside.join("victim.txt"), b"victim").expect("victim");
    let n_rows = make_backup(&backup_dir);

    // Plant symlinks in OUT pointing outside, before extraction.
    std::fs::create_dir_all(out.join("HomeDomain")).expect("out");
    std::os::unix::fs::symlink(&outside, out.join("HomeDomain/planted_dir")).expect("plant dir");
    std::os::unix::fs::symlink(
        outside.join("victim.txt"),
        out.join("HomeDomain/planted_file"),
    )
    .expect("plant file");

    let before_backup = snapshot(&backup_dir);
    let before_outside = snapshot(&outside);
    let b = Backup::open(&backup_dir).expect("open");
    assert_eq!(b.warnings().len(), 3, "plists missing: {:?}", b.warnings());
    let rows = b.entries().expect("entries");
    assert_eq!(rows.skipped.len(), 2, "{:?}", rows.skipped);
    assert_eq!(rows.entries.len(), n_rows);

    // The tree keeps unsafe rows out of the tree but lists them.
    let tree = Tree::build(&rows.entries);
    assert_eq!(tree.rejected().len(), 11, "{:?}", tree.rejected());
    assert!(
        tree.list("HomeDomain", "")
            .expect("root")
            .iter()
            .all(|c| c.name != "..")
    );

    let report = Extractor {
        overwrite: Overwrite::Replace,
        ..Extractor::new(&out)
    }
    .run(&b, &rows.entries, &|_| {})
    .expect("extract");

    let reasons =
        |f: &dyn Fn(&SkipReason) -> bool| report.skipped.iter().filter(|s| f(&s.reason)).count();
    assert_eq!(
        reasons(&|r| matches!(r, SkipReason::UnsafePath { .. })),
        11,
        "{:#?}",
        report.skipped
    );
    for (rel, why) in [
        ("/tmp/iosnap-hostile-absolute", UnsafePath::Absolute),
        ("../../escape.txt", UnsafePath::ParentComponent),
        ("./dot.txt", UnsafePath::DotComponent),
        ("a//b.txt", UnsafePath::EmptyComponent),
        ("nul\0name.txt", UnsafePath::Nul),
    ] {
        let s = report
            .skipped
            .iter()
            .find(|s| s.relative_path == rel)
            .expect("reported");
        assert_eq!(s.reason, SkipReason::UnsafePath { reason: why });
    }
    // link_abs (absolute), link_up and via (escape), link_back_and_forth (.. after a name).
    assert_eq!(
        reasons(&|r| matches!(r, SkipReason::UnsafeLink { .. })),
        4,
        "{:#?}",
        report.skipped
    );
    assert_eq!(
        reasons(&|r| matches!(r, SkipReason::ParentNotDirectory { .. })),
        1
    );
    assert_eq!(
        reasons(&|r| matches!(r, SkipReason::UnknownKind { flags: 16 })),
        1
    );
    // The links planted before: the directory one is not followed; the file one is replaced,
    // not written through.
    assert!(
        std::fs::symlink_metadata(out.join("HomeDomain/planted_dir"))
            .expect("still")
            .file_type()
            .is_symlink()
    );
    let pf = out.join("HomeDomain/planted_file");
    assert!(
        std::fs::symlink_metadata(&pf)
            .expect("pf")
            .file_type()
            .is_file()
    );
    assert_eq!(
        std::fs::read(&pf).expect("pf"),
        b"replaces planted file link"
    );

    assert_eq!(report.symlinks, 1);
    assert_eq!(
        std::fs::read(out.join("HomeDomain/sub/link_ok")).expect("link ok"),
        b"good"
    );
    assert_eq!(
        std::fs::read(out.join("HomeDomain/via/pwn.txt")).expect("via"),
        b"through link"
    );
    assert_eq!(report.files, 6);
    // Permissions: no setuid, always owner-readable.
    let m = std::fs::metadata(out.join("HomeDomain/setuid.bin"))
        .expect("suid")
        .permissions()
        .mode();
    assert_eq!(m & 0o7777, 0o777);
    let m = std::fs::metadata(out.join("HomeDomain/noperm.bin"))
        .expect("noperm")
        .permissions()
        .mode();
    assert_eq!(m & 0o7777, 0o600);

    // Nothing written outside OUT: the siblings of OUT are exactly as before.
    assert_eq!(snapshot(&outside), before_outside);
    assert_eq!(
        std::fs::read(outside.join("victim.txt")).expect("victim"),
        b"victim"
    );
    assert_eq!(
        snapshot(&backup_dir),
        before_backup,
        "the backup folder is not modified"
    );
    let siblings: BTreeSet<_> = std::fs::read_dir(base.path())
        .expect("ls")
        .map(|e| e.expect("e").file_name())
        .collect();
    let expect: BTreeSet<_> = ["backup", "out", "outside"]
        .iter()
        .map(std::ffi::OsString::from)
        .collect();
    assert_eq!(siblings, expect);
    assert!(!Path::new("/tmp/iosnap-hostile-absolute").exists());
    // Every extracted path is a normal path under OUT.
    for p in snapshot(&out) {
        assert!(
            p.components()
                .all(|c| matches!(c, std::path::Component::Normal(_))),
            "{}",
            p.display()
        );
    }

    // Verify reports the undecodable rows and finds no extras (garbage row's file id is known).
    let v = verify(&b, false).expect("verify");
    assert_eq!(v.unreadable.len(), 2);
    assert!(
        v.missing.is_empty() && v.size_mismatch.is_empty() && v.extra.is_empty(),
        "{v:?}"
    );
}

#[test]
fn glob_and_domain_filters_limit_extraction() {
    let base = tempfile::tempdir().expect("tmp");
    let backup_dir = base.path().join("backup");
    make_backup(&backup_dir);
    let b = Backup::open(&backup_dir).expect("open");
    let rows = b.entries().expect("entries");
    let out = base.path().join("out");
    let report = Extractor::new(&out)
        .with_glob("HomeDomain/sub/*.txt")
        .expect("glob")
        .run(&b, &rows.entries, &|_| {})
        .expect("run");
    assert_eq!(report.files, 1);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(
        std::fs::read(out.join("HomeDomain/sub/good2.txt")).expect("good2"),
        b"good2"
    );
    assert!(!out.join("HomeDomain/good.txt").exists());

    let out2 = base.path().join("out2");
    let mut ex = Extractor::new(&out2);
    ex.domains.insert("NoSuchDomain".into());
    let report = ex.run(&b, &rows.entries, &|_| {}).expect("run");
    assert_eq!((report.files, report.skipped.len()), (0, 0));
}
