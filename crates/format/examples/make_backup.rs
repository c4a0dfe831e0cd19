//! Writes a synthetic encrypted backup for benchmarks (bench/extract.sh).
//!
//! Usage: `make_backup DIR FILES TOTAL_MIB` with the password in `IOSNAP_PASSWORD` and optional
//! `IOSNAP_BENCH_DPIC` (default: the real 10,000,000). File sizes follow a fixed mix — many small
//! files, some medium, a few large — scaled so the total is about `TOTAL_MIB`; contents are
//! pseudo-random (incompressible, like photos and databases). Everything is deterministic.

use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use iosnap_format::{BackupWriter, Encryption, FileMeta, KdfParams, WriterOptions};

/// An endless deterministic pseudo-random byte stream, limited by `take`.
struct Noise(u64);

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let b = self.0.to_le_bytes();
            let n = chunk.len();
            chunk.copy_from_slice(&b[..n]);
        }
        Ok(buf.len())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        return Err("usage: make_backup DIR FILES TOTAL_MIB (password in IOSNAP_PASSWORD)".into());
    }
    let dir = PathBuf::from(&args[1]);
    let files: u64 = args[2].parse()?;
    let total: u64 = args[3].parse::<u64>()? << 20;
    let password = std::env::var("IOSNAP_PASSWORD").map_err(|_| "IOSNAP_PASSWORD is not set")?;
    let dpic = match std::env::var("IOSNAP_BENCH_DPIC") {
        Ok(v) => v.parse()?,
        Err(_) => KdfParams::default().dpic,
    };
    // Relative weights: 70 % of files small (~4 KiB), 25 % medium (~128 KiB), 5 % large (~2 MiB).
    let weight = |i: u64| -> u64 {
        match i % 20 {
            0 => 2048,
            1..=5 => 128,
            _ => 4,
        }
    };
    let weight_sum: u64 = (0..files).map(weight).sum();
    let start = Instant::now();
    let opts = WriterOptions {
        encryption: Some(Encryption::new(
            password.as_bytes(),
            KdfParams {
                dpic,
                ..KdfParams::default()
            },
        )),
        ..WriterOptions::default()
    };
    let mut w = BackupWriter::create(&dir, opts)?;
    let domains = [
        "HomeDomain",
        "MediaDomain",
        "CameraRollDomain",
        "AppDomain-com.example.bench",
        "AppDomainGroup-group.com.example.bench",
    ];
    for i in 0..files {
        let size = (total as u128 * weight(i) as u128 / weight_sum as u128) as u64 + (i % 97);
        let domain = domains[(i % domains.len() as u64) as usize];
        let rel = format!("Library/d{:03}/sub{:02}/file{i:06}.bin", i % 200, i % 17);
        let meta = FileMeta {
            mode: 0o100644,
            mtime: 1_700_000_000 + i as i64,
            protection_class: (i % 4) as u32 + 1,
            ..FileMeta::default()
        };
        w.add_file(
            domain,
            &rel,
            meta,
            Noise(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1).take(size),
        )?;
    }
    let s = w.finish()?;
    eprintln!(
        "wrote {} files, {} bytes ({:.1} MiB) in {:.1}s",
        s.files,
        s.bytes,
        s.bytes as f64 / 1048576.0,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
