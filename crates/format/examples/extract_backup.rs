//! Unlocks and extracts a whole backup with this crate (the Rust side of bench/extract.sh).
//!
//! Usage: `extract_backup BACKUP_DIR OUT_DIR` with the password in `IOSNAP_PASSWORD` (not needed
//! for plain backups). Prints one summary line: files, bytes, seconds, MB/s, skipped.

use std::path::Path;
use std::time::Instant;

use iosnap_format::{Backup, Extractor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        return Err(
            "usage: extract_backup BACKUP_DIR OUT_DIR (password in IOSNAP_PASSWORD)".into(),
        );
    }
    let start = Instant::now();
    let mut b = Backup::open(Path::new(&args[1]))?;
    if b.is_encrypted() {
        let pw = std::env::var("IOSNAP_PASSWORD").map_err(|_| "IOSNAP_PASSWORD is not set")?;
        b.unlock(pw.as_bytes())?;
    }
    let unlocked = start.elapsed().as_secs_f64();
    let rows = b.entries()?;
    let report = Extractor::new(&args[2]).run(&b, &rows.entries, &|_| {})?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "files={} bytes={} seconds={secs:.2} unlock_seconds={unlocked:.2} MB/s={:.1} skipped={} failures={}",
        report.files,
        report.bytes,
        report.bytes as f64 / 1e6 / secs,
        report.skipped.len(),
        report.failures().count()
    );
    if report.failures().count() > 0 {
        return Err("some files failed".into());
    }
    Ok(())
}
