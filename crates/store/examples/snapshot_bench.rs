//! Speed and space of snapshots (issue 4, "Speed and space"):
//!
//! 1. New snapshot of an unchanged N-file backup: `Library::begin` (parallel clone) against
//!    `cp -al` of the same folder, in the same run.
//! 2. 30 daily snapshots at 2 % churn: total disk of all snapshots against one backup.
//!
//! Usage: `cargo run --release -p iosnap-store --example snapshot_bench -- [FILES] [MAX_KIB] [DIR]`
//! (default 20000 files of 1–8 KiB in a temp folder; the sharing method is probed there).
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iosnap_format::FileMeta;
use iosnap_format::writer::{BackupWriter, WriterOptions};
use iosnap_store::{ConfigDir, Library, ManualClock};

/// (disk of everything, disk of the files only), each inode once.
fn disk_blocks(roots: &[&Path]) -> (u64, u64) {
    let mut seen = HashSet::new();
    let (mut total, mut files) = (0, 0);
    for r in roots {
        for e in walkdir::WalkDir::new(r).into_iter().flatten() {
            let m = e.metadata().unwrap();
            if seen.insert((m.dev(), m.ino())) {
                total += m.blocks() * 512;
                if m.is_file() {
                    files += m.blocks() * 512;
                }
            }
        }
    }
    (total, files)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let max_kib: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(8).max(2);
    let tmp = tempfile::tempdir().unwrap();
    let base = args
        .next()
        .map(Into::into)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let src = base.join("src");
    let mut w = BackupWriter::create(&src, WriterOptions::default()).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = 1024 + (x % ((max_kib - 1) * 1024)) as usize;
        let body: Vec<u8> = (0..len).map(|j| (x >> (j % 56)) as u8).collect();
        w.add_file(
            "HomeDomain",
            &format!("f/{i}"),
            FileMeta::default(),
            &body[..],
        )
        .unwrap();
    }
    w.finish().unwrap();

    let clock = Arc::new(ManualClock::at_unix(1_795_555_800));
    let lib = Library::open(
        &base.join("lib"),
        ConfigDir::at(base.join("config")),
        clock.clone(),
    )
    .unwrap();
    let (first, _) = lib.import(&src, Some("BENCH")).unwrap();
    let method = lib.sharing_method("BENCH").unwrap();

    let t = Instant::now();
    let cp = std::process::Command::new("cp")
        .args(["-al"])
        .arg(&first.path)
        .arg(base.join("cp-al"))
        .status()
        .unwrap();
    assert!(cp.success());
    let cp_time = t.elapsed();
    let t = Instant::now();
    let st = lib.begin("BENCH").unwrap();
    let clone_time = t.elapsed();
    drop(st);
    println!(
        "clone of {n} files ({}): {:.2} s; cp -al: {:.2} s; ratio {:.2}",
        method.name(),
        clone_time.as_secs_f64(),
        cp_time.as_secs_f64(),
        clone_time.as_secs_f64() / cp_time.as_secs_f64()
    );
    std::fs::remove_dir_all(base.join("cp-al")).unwrap();

    // 30 daily snapshots at 2 % churn (same-size rewrites through temp + rename).
    let one = disk_blocks(&[&first.path]);
    let files: Vec<_> = iosnap_store::share::files_of(&first.path)
        .unwrap()
        .into_iter()
        .filter(|p| p.components().count() == 2)
        .collect();
    let t = Instant::now();
    for day in 1..30u64 {
        clock.advance(Duration::from_secs(86_400));
        let st = lib.begin("BENCH").unwrap();
        for (k, rel) in files.iter().enumerate() {
            if (k as u64 + day * 7919).is_multiple_of(50) {
                let len = std::fs::metadata(st.path().join(rel)).unwrap().len();
                st.write_file(rel, &vec![day as u8; len as usize]).unwrap();
            }
        }
        st.commit().unwrap();
    }
    let snaps = lib.snapshots("BENCH").unwrap();
    let roots: Vec<&Path> = snaps.iter().map(|s| s.path.as_path()).collect();
    let all = disk_blocks(&roots);
    println!(
        "{} snapshots at 2 % daily churn: {:.1} MiB on disk vs {:.1} MiB for one backup = {:.2}x \
         ({:.1} s); files only: {:.2}x (the rest is one set of folders per snapshot)",
        snaps.len(),
        all.0 as f64 / 1048576.0,
        one.0 as f64 / 1048576.0,
        all.0 as f64 / one.0 as f64,
        t.elapsed().as_secs_f64(),
        all.1 as f64 / one.1 as f64,
    );
}
