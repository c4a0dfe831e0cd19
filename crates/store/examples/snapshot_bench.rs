//! Speed and space of snapshots (issue 4, "Speed and space"), driven by bench/clone.sh and
//! bench/snapshots.sh (see bench/README.md, sections "Clone" and "Snapshots").
//!
//! ```text
//! snapshot_bench gen DIR FILES [SEED [MIX]]    write a standard backup folder of FILES files;
//!                                              MIX: small (200 B–4 KiB, one block each),
//!                                              mixed (mostly small, avg 12 KiB), phone (avg
//!                                              300 KiB, like a real phone's backup)
//! snapshot_bench import LIB DIR UDID           make DIR the first snapshot of UDID in LIB
//! snapshot_bench clone LIB UDID ROUNDS         time Library::begin (the clone) against `cp -al`
//!                                              of the same snapshot, alternating, same run
//! snapshot_bench churn LIB UDID PERCENT        one backup replacing PERCENT % of the files
//!                                              (same size, temp + rename) plus Manifest.db and
//!                                              the plists; prints the disk it added (statvfs)
//! snapshot_bench daily LIB UDID DAYS PERCENT   DAYS daily snapshots (injected clock), each
//!                                              like `churn`, retention after each (--yes)
//! snapshot_bench breakdown LIB UDID            where each snapshot's own disk goes
//! ```
//!
//! Sizes on disk are blocks (`st_blocks`) counted once per inode, so hard-linked files shared
//! by snapshots count once; folders count too (one set per snapshot).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use iosnap_format::FileMeta;
use iosnap_format::writer::{BackupWriter, DeviceInfo, WriterOptions};
use iosnap_store::{Clock, ConfigDir, Library, ManualClock, PruneMode, SystemClock};

fn usage() -> ! {
    eprintln!(
        "usage: snapshot_bench gen DIR FILES [SEED] | import LIB DIR UDID | clone LIB UDID ROUNDS \
         | churn LIB UDID PERCENT | daily LIB UDID DAYS PERCENT | breakdown LIB UDID"
    );
    std::process::exit(2)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// File sizes. `mixed` is shaped like an iOS backup by count only: most files small
/// (0.2–8 KiB: plists, caches, thumbnails), one in ten 8–64 KiB, one in a hundred
/// 64 KiB–1 MiB; `phone` also has a phone's bytes (photos and videos dominate).
fn file_size(r: &mut Rng, mode: &str) -> usize {
    let x = r.next();
    let v = (x >> 8) as usize;
    match mode {
        "small" => return 200 + (x % 3800) as usize,
        // A phone's byte mix (about 300 KiB a file on average, like a 40 GB backup of
        // 130,000 files): settings and caches, thumbnails and documents, photos and videos.
        "phone" => {
            return match x % 10 {
                0 => 512 * 1024 + v % (3584 * 1024),
                1..=3 => 16 * 1024 + v % (496 * 1024),
                _ => 200 + v % (16 * 1024 - 200),
            };
        }
        _ => {}
    }
    match x % 100 {
        0 => 64 * 1024 + v % (960 * 1024),
        1..=10 => 8 * 1024 + v % (56 * 1024),
        _ => 200 + v % (8 * 1024 - 200),
    }
}

fn fill(r: &mut Rng, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&r.next().to_le_bytes());
    }
    v.truncate(len);
    v
}

fn generate(dir: &Path, files: usize, seed: u64, mode: &str) {
    let opts = WriterOptions {
        device: DeviceInfo {
            device_name: "Bench iPhone".into(),
            udid: "BENCH".into(),
            ..DeviceInfo::default()
        },
        ..WriterOptions::default()
    };
    let mut w = BackupWriter::create(dir, opts).unwrap();
    let mut r = Rng(seed | 1);
    let mut bytes = 0u64;
    for i in 0..files {
        let len = file_size(&mut r, mode);
        bytes += len as u64;
        let body = fill(&mut r, len);
        w.add_file(
            "HomeDomain",
            &format!("Library/f{}/{i}", i % 97),
            FileMeta::default(),
            &body[..],
        )
        .unwrap();
    }
    w.finish().unwrap();
    println!(
        "generated {files} files, {bytes} bytes in {}",
        dir.display()
    );
}

fn open(lib: &Path, clock: Arc<dyn Clock>) -> Library {
    Library::open(lib, ConfigDir::at(lib.join(".bench-config")), clock).unwrap()
}

/// Used bytes of the filesystem holding `p` (statvfs: blocks − free blocks).
fn fs_used(p: &Path) -> u64 {
    let s = rustix::fs::statvfs(p).unwrap();
    (s.f_blocks - s.f_bfree) * s.f_frsize
}

fn sync() {
    rustix::fs::sync();
}

fn drop_caches() -> bool {
    sync();
    std::fs::write("/proc/sys/vm/drop_caches", b"3\n").is_ok()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn clone_bench(lib_dir: &Path, udid: &str, rounds: usize) {
    let lib = open(lib_dir, Arc::new(SystemClock));
    let latest = lib.snapshots(udid).unwrap().pop().expect("a snapshot");
    let method = lib.sharing_method(udid).unwrap();
    let cp_dst = lib_dir.join(udid).join("cp-al-copy");
    // The peer doing the same job: `cp -al` for hard links, `cp --reflink=always` for clones.
    let cp_args: &[&str] = match method {
        iosnap_store::SharingMethod::Reflink => &["-a", "--reflink=always"],
        _ => &["-al"],
    };
    let run_cp = || {
        let t = Instant::now();
        let ok = std::process::Command::new("cp")
            .args(cp_args)
            .arg(&latest.path)
            .arg(&cp_dst)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cp -al failed");
        let dt = t.elapsed().as_secs_f64();
        std::fs::remove_dir_all(&cp_dst).unwrap();
        dt
    };
    let run_clone = || {
        let t = Instant::now();
        let st = lib.begin(udid).unwrap();
        let dt = t.elapsed().as_secs_f64();
        assert_eq!(
            st.clone_report().shared + st.clone_report().copied,
            latest.usage.files
        );
        drop(st);
        dt
    };
    // Warm the cache once, then alternate so both see the same machine state.
    run_cp();
    let (mut cp, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        sync();
        cp.push(run_cp());
        sync();
        ours.push(run_clone());
    }
    let (c, o) = (median(&mut cp), median(&mut ours));
    println!(
        "warm: {} files, sharing {}, {} threads: iosnap clone median {o:.3} s, cp {} median \
         {c:.3} s, ratio {:.2}x  (iosnap {ours:.3?}, cp {cp:.3?})",
        latest.usage.files,
        method.name(),
        iosnap_store::share::default_clone_threads(),
        cp_args.join(" "),
        o / c
    );
    if drop_caches() {
        let (mut cp, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..rounds.min(2) {
            drop_caches();
            cp.push(run_cp());
            drop_caches();
            ours.push(run_clone());
        }
        let (c, o) = (median(&mut cp), median(&mut ours));
        println!(
            "cold (caches dropped before each): iosnap {o:.3} s, cp {c:.3} s, ratio {:.2}x",
            o / c
        );
    }
    // A whole unchanged snapshot end to end: clone, fsync, rename, catalog, sizes.
    let t = Instant::now();
    let st = lib.begin(udid).unwrap();
    let t_clone = t.elapsed().as_secs_f64();
    let snap = st.commit().unwrap();
    let total = t.elapsed().as_secs_f64();
    println!(
        "unchanged snapshot end to end: {total:.3} s (clone {t_clone:.3} s, commit {:.3} s)",
        total - t_clone
    );
    let info = snap.info().unwrap();
    lib.delete(&info).unwrap();
}

/// Replaces about `percent` % of the data files of a fresh staging folder (same sizes, new
/// bytes, temp + rename as the device layer does) and rewrites Manifest.db, Info.plist and
/// Status.plist as every backup does; commits. Returns (changed files, changed bytes,
/// Manifest.db bytes).
fn one_backup(lib: &Library, udid: &str, percent: f64, seed: u64) -> (u64, u64, u64) {
    let st = lib.begin(udid).unwrap();
    let root = st.path().to_path_buf();
    let mut r = Rng(seed | 1);
    let (mut n, mut bytes) = (0u64, 0u64);
    for rel in iosnap_store::share::files_of(&root).unwrap() {
        if rel.components().count() != 2 {
            continue;
        }
        if (r.next() % 1_000_000) as f64 >= percent * 10_000.0 {
            continue;
        }
        let len = std::fs::metadata(root.join(&rel)).unwrap().len() as usize;
        st.write_file(&rel, &fill(&mut r, len)).unwrap();
        n += 1;
        bytes += len as u64;
    }
    let mut manifest = 0;
    for top in [
        "Manifest.db",
        "Info.plist",
        "Status.plist",
        "Manifest.plist",
    ] {
        let p = root.join(top);
        if let Ok(b) = std::fs::read(&p) {
            if top == "Manifest.db" {
                manifest = b.len() as u64;
            }
            st.write_file(Path::new(top), &b).unwrap();
        }
    }
    st.commit().unwrap();
    (n, bytes, manifest)
}

fn churn(lib_dir: &Path, udid: &str, percent: f64) {
    let lib = open(lib_dir, Arc::new(SystemClock));
    let one = lib.snapshots(udid).unwrap().pop().expect("a snapshot");
    sync();
    let before = fs_used(lib_dir);
    let t = Instant::now();
    let (n, bytes, manifest) = one_backup(&lib, udid, percent, 0xC0FFEE);
    let dt = t.elapsed().as_secs_f64();
    sync();
    let added = fs_used(lib_dir).saturating_sub(before);
    let latest = lib.snapshots(udid).unwrap().pop().unwrap();
    let (dirs, _) = dir_blocks(&latest.path);
    let limit = bytes + (bytes as f64 * 0.05) as u64 + manifest;
    println!(
        "churned backup of {} files ({:.1} MiB): {n} files / {bytes} B changed, Manifest.db \
         {manifest} B; disk added (statvfs) {added} B = {:.3}x the limit {limit} B \
         (changed + 5 % + Manifest.db); of which folders {dirs} B; {dt:.2} s",
        one.usage.files,
        one.usage.size as f64 / 1048576.0,
        added as f64 / limit as f64
    );
    if added > limit {
        println!("OVER the limit");
    }
}

/// (bytes of folder blocks, number of folders) under `root`, root included.
fn dir_blocks(root: &Path) -> (u64, u64) {
    let (mut b, mut n) = (0, 0);
    for e in walkdir::WalkDir::new(root).into_iter().flatten() {
        if e.file_type().is_dir() {
            b += e.metadata().unwrap().blocks() * 512;
            n += 1;
        }
    }
    (b, n)
}

#[derive(Default, Debug, Clone, Copy)]
struct Own {
    data: u64,
    manifest_db: u64,
    plists: u64,
    dirs: u64,
}

impl Own {
    fn total(&self) -> u64 {
        self.data + self.manifest_db + self.plists + self.dirs
    }
}

/// Disk blocks each snapshot adds in turn (oldest first): files whose inode no earlier
/// snapshot had, by kind, and its folders.
fn breakdown(lib: &Library, udid: &str) -> (Vec<(String, Own)>, u64) {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut all = 0;
    for s in lib.snapshots(udid).unwrap() {
        let mut own = Own::default();
        for e in walkdir::WalkDir::new(&s.path).into_iter().flatten() {
            let m = e.metadata().unwrap();
            let disk = m.blocks() * 512;
            if e.file_type().is_dir() {
                own.dirs += disk;
                continue;
            }
            if !seen.insert((m.dev(), m.ino())) {
                continue;
            }
            let name = e.file_name().to_string_lossy();
            if e.depth() == 1 && name == "Manifest.db" {
                own.manifest_db += disk;
            } else if e.depth() == 1 && name.ends_with(".plist") {
                own.plists += disk;
            } else {
                own.data += disk;
            }
        }
        all += own.total();
        out.push((s.name.clone(), own));
    }
    (out, all)
}

fn print_breakdown(lib: &Library, udid: &str) {
    let (rows, all) = breakdown(lib, udid);
    let Some(first) = rows.first().map(|r| r.1) else {
        println!("no snapshots");
        return;
    };
    let mib = |b: u64| b as f64 / 1048576.0;
    println!("snapshot              adds MiB   data   Manifest.db  plists  folders");
    for (name, o) in &rows {
        println!(
            "{name}  {:9.2}  {:6.2}  {:11.2}  {:6.3}  {:7.2}",
            mib(o.total()),
            mib(o.data),
            mib(o.manifest_db),
            mib(o.plists),
            mib(o.dirs)
        );
    }
    let later: Vec<Own> = rows.iter().skip(1).map(|r| r.1).collect();
    let sum = |f: fn(&Own) -> u64| later.iter().map(f).sum::<u64>() as f64 / first.total() as f64;
    println!(
        "{} snapshots: {:.1} MiB on disk, one backup {:.1} MiB: ratio {:.3}x; later snapshots \
         add, as a share of one backup: data {:.3}, Manifest.db {:.3}, plists {:.4}, folders {:.3}",
        rows.len(),
        mib(all),
        mib(first.total()),
        all as f64 / first.total() as f64,
        sum(|o| o.data),
        sum(|o| o.manifest_db),
        sum(|o| o.plists),
        sum(|o| o.dirs),
    );
}

fn daily(lib_dir: &Path, udid: &str, days: u32, percent: f64) {
    let probe = open(lib_dir, Arc::new(SystemClock));
    let first = probe.snapshots(udid).unwrap().pop().expect("a snapshot");
    drop(probe);
    let clock = Arc::new(ManualClock::at_unix(u64::try_from(first.time).unwrap()));
    let lib = open(lib_dir, clock.clone());
    let t = Instant::now();
    let mut changed = 0u64;
    for day in 1..days {
        clock.advance(Duration::from_secs(86_400));
        let (_, bytes, _) = one_backup(&lib, udid, percent, 0x5EED ^ u64::from(day) << 20);
        changed += bytes;
        let (plan, _) = iosnap_store::prune(&lib, udid, PruneMode::Yes, &mut |_| true).unwrap();
        if !plan.delete.is_empty() {
            println!("day {day}: retention deleted {}", plan.delete.len());
        }
    }
    println!(
        "{} backups in {:.1} s; changed data files: {:.3}x one backup's apparent size",
        days - 1,
        t.elapsed().as_secs_f64(),
        changed as f64 / first.usage.size as f64
    );
    print_breakdown(&lib, udid);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| args.get(i).cloned().unwrap_or_else(|| usage());
    let num = |i: usize| a(i).parse::<f64>().unwrap_or_else(|_| usage());
    match a(0).as_str() {
        "gen" => generate(
            Path::new(&a(1)),
            num(2) as usize,
            args.get(3).and_then(|s| s.parse().ok()).unwrap_or(7),
            args.get(4).map(String::as_str).unwrap_or("mixed"),
        ),
        "import" => {
            let lib = open(Path::new(&a(1)), Arc::new(SystemClock));
            let t = Instant::now();
            let (info, rep) = lib.import(&PathBuf::from(a(2)), Some(&a(3))).unwrap();
            println!(
                "imported {} ({} files, {} B) in {:.1} s: {rep:?}",
                info.reference(),
                info.usage.files,
                info.usage.size,
                t.elapsed().as_secs_f64()
            );
        }
        "clone" => clone_bench(Path::new(&a(1)), &a(2), num(3) as usize),
        "churn" => churn(Path::new(&a(1)), &a(2), num(3)),
        "daily" => daily(Path::new(&a(1)), &a(2), num(3) as u32, num(4)),
        "breakdown" => print_breakdown(&open(Path::new(&a(1)), Arc::new(SystemClock)), &a(2)),
        _ => usage(),
    }
}
