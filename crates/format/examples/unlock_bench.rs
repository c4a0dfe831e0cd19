//! Times the backup-password key derivation with the real iOS ≥ 10.2 parameters
//! (PBKDF2-HMAC-SHA256 × 10,000,000, then PBKDF2-HMAC-SHA1 × 10,000).
//!
//! Run by `bench/unlock.sh` (release build), which compares it with OpenSSL, Python's hashlib
//! and pycryptodome. Usage: `unlock_bench [RUNS]`. Prints `name wall_seconds cpu_seconds`
//! lines (one per run; CPU time from /proc, so a busy machine distorts it less than wall time)
//! and `kek <hex>` for fixed inputs so the script can check the result against Python.

use std::time::Instant;

/// CPU time of this thread in nanoseconds (Linux `/proc/thread-self/schedstat`), 0 if unknown.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Runs `f` and prints `name wall cpu`.
fn timed<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let (t, c) = (Instant::now(), cpu_ns());
    let out = f();
    let cpu = cpu_ns().saturating_sub(c) as f64 / 1e9;
    println!("{name} {:.3} {cpu:.3}", t.elapsed().as_secs_f64());
    out
}

use iosnap_format::Keybag;
use iosnap_format::crypto::{derive_kek, pbkdf2_hmac_sha256};

/// The inputs every implementation in the benchmark uses.
const PASSWORD: &[u8] = b"iosnap-bench";
const DPIC: u32 = 10_000_000;
const ITER: u32 = 10_000;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let kb = Keybag {
        version: 5,
        kind: 1,
        uuid: vec![0; 16],
        hmck: Vec::new(),
        wrap: 0,
        salt: (20..40).collect(),
        iter: ITER,
        dpwt: Some(1),
        dpic: Some(DPIC),
        dpsl: Some((0..20).collect()),
        classes: Vec::new(),
        extra: Vec::new(),
    };
    let mut last = None;
    for _ in 0..runs {
        match timed("iosnap_derive_kek", || derive_kek(PASSWORD, &kb)) {
            Ok(k) => last = Some(k),
            Err(e) => {
                eprintln!("derive_kek failed: {e}");
                std::process::exit(1);
            }
        }
    }
    if let Some(k) = last {
        println!("kek {}", hex::encode(k.as_bytes()));
    }
    // The SHA-256 stage alone, ours and RustCrypto's generic `pbkdf2` crate, for comparison.
    let salt: Vec<u8> = (0..20).collect();
    let mut out = [0u8; 32];
    timed("iosnap_pbkdf2_sha256", || {
        pbkdf2_hmac_sha256(PASSWORD, &salt, DPIC, &mut out)
    });
    let mut theirs = [0u8; 32];
    timed("rustcrypto_pbkdf2_sha256", || {
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(PASSWORD, &salt, DPIC, &mut theirs)
    });
    if out != theirs {
        eprintln!("MISMATCH between our PBKDF2 and the pbkdf2 crate");
        std::process::exit(1);
    }
    println!("sha256_stage {}", hex::encode(out));
}
