//! Unlocking with the real iOS ≥ 10.2 cost (DPIC 10,000,000, ITER 10,000).
//!
//! Unit tests use DPIC 1,000; this one proves the real parameters work end to end and stay
//! fast enough for interactive use (each derivation is budgeted at a few seconds even in a
//! debug-ish test build; about 1 s in release).

#![allow(clippy::unwrap_used)] // tests may panic

use std::time::{Duration, Instant};

use iosnap_format::{Error, FileKey, KdfParams, Keybag};

/// CPU time consumed by this thread (Linux `/proc/thread-self/schedstat`), so that a machine
/// busy with other builds does not fail the test; wall time where that file does not exist.
fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

/// Runs `f`, returning its result with (wall, CPU-or-wall) durations.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, Duration) {
    let (t, c) = (Instant::now(), cpu_time());
    let out = f();
    let wall = t.elapsed();
    let cpu = match (c, cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => wall,
    };
    (out, wall, cpu)
}

#[test]
fn real_dpic_generate_unlock_and_wrong_password() {
    let params = KdfParams::default();
    assert_eq!((params.dpic, params.iter), (10_000_000, 10_000));

    let ((kb, keys), gen_wall, gen_cpu) =
        timed(|| Keybag::generate(Some(b"correct horse"), params).expect("generate"));

    let parsed = Keybag::parse(&kb.to_bytes()).expect("parse");
    assert_eq!(parsed.dpic, Some(10_000_000));

    let (unlocked, unlock_wall, unlock_cpu) =
        timed(|| parsed.unlock(b"correct horse").expect("unlock"));
    let fk = FileKey::random();
    let w = keys.wrap(4, &fk).expect("wrap");
    assert_eq!(
        unlocked
            .unwrap(&w, "Manifest.db")
            .expect("unwrap")
            .as_bytes(),
        fk.as_bytes()
    );

    let (wrong, wrong_wall, wrong_cpu) = timed(|| parsed.unlock(b"correct horsE"));
    assert!(matches!(wrong, Err(Error::WrongPassword)));

    eprintln!(
        "wall/CPU: generate {gen_wall:?}/{gen_cpu:?}, unlock {unlock_wall:?}/{unlock_cpu:?}, \
         wrong password {wrong_wall:?}/{wrong_cpu:?}"
    );
    // Speed is measured by bench/unlock.sh, not asserted here: a loaded CI machine must not
    // turn a correct result into a failure. The timings above are for the log.
}
