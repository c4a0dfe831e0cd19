//! Bench-style check of a big phone: 200,000 bulk files, 20 GB, listing only (content is
//! streamed on demand). Prints generation time, row counts, total size and peak memory, then
//! streams a sample of files to show throughput.
//!
//! `cargo run --release -p iosnap-phone --example phone_200k [FILES] [BYTES]`

use std::io::Read;
use std::time::Instant;

fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let files: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200_000);
    let bytes: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000_000_000);
    let spec = iosnap_phone::PhoneSpec {
        seed: 2026,
        files,
        bytes,
        ..Default::default()
    };
    let t = Instant::now();
    let mut phone = iosnap_phone::Phone::generate(&spec)?;
    println!(
        "generated in {:?}: {} rows, {} files, {:.2} GB, peak RSS {} MB",
        t.elapsed(),
        phone.entry_count(),
        phone.file_count(),
        phone.total_bytes() as f64 / 1e9,
        peak_rss_kb().unwrap_or(0) / 1024
    );
    let t = Instant::now();
    let mut streamed = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for f in phone
        .files()
        .filter(|f| f.meta.size > 0)
        .step_by(997)
        .take(200)
    {
        let mut r = phone.open(f)?;
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            streamed += n as u64;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "streamed {:.1} MB in {secs:.2}s ({:.0} MB/s)",
        streamed as f64 / 1e6,
        streamed as f64 / 1e6 / secs.max(1e-9)
    );
    let t = Instant::now();
    phone.churn(0.01)?;
    println!(
        "churn(1%) in {:?}: {} files, peak RSS {} MB",
        t.elapsed(),
        phone.file_count(),
        peak_rss_kb().unwrap_or(0) / 1024
    );
    Ok(())
}
