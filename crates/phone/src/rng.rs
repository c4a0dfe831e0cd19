//! Deterministic randomness: every random choice of the phone is derived from the spec's seed and
//! a label, so the same seed always yields the same phone, and independent parts (one message, one
//! bulk file) can be regenerated alone without replaying everything before them.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// SplitMix64 finaliser: a cheap, well-mixing bijection on `u64`, used to derive keys.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a label, so string labels can take part in key derivation.
fn label_hash(label: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in label.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A 64-bit key for (seed, label, index): the root of one independent random stream.
pub(crate) fn key(seed: u64, label: &str, index: u64) -> u64 {
    mix(mix(seed ^ label_hash(label)) ^ mix(index.wrapping_add(0x5851_F42D_4C95_7F2D)))
}

/// A seedable ChaCha RNG for (seed, label, index); used to generate records and layouts.
pub(crate) fn rng(seed: u64, label: &str, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(key(seed, label, index))
}

/// A uniform float in [0, 1) from a key (no RNG object needed).
pub(crate) fn unit(k: u64) -> f64 {
    // 53 random mantissa bits.
    (mix(k) >> 11) as f64 / (1u64 << 53) as f64
}

/// An uppercase UUID string (8-4-4-4-12) drawn from a key, like the ones iOS uses for GUIDs.
pub(crate) fn uuid(k: u64) -> String {
    let a = mix(k);
    let b = mix(a ^ 0xA5A5_A5A5_A5A5_A5A5);
    let hex = format!("{a:016X}{b:016X}");
    // Version-4 style nibble so the strings look like real UUIDs.
    format!(
        "{}-{}-4{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// xoshiro256** stream: fast pseudo-random bytes for bulk file content (several GB/s), keyed per
/// file so any file's bytes can be regenerated on demand without storing them.
#[derive(Clone)]
pub(crate) struct ByteStream {
    s: [u64; 4],
}

impl ByteStream {
    /// A stream whose state is expanded from `key` with SplitMix64 (never all-zero).
    pub(crate) fn new(key: u64) -> Self {
        let mut x = key;
        let mut s = [0u64; 4];
        for slot in &mut s {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            *slot = mix(x);
        }
        ByteStream { s }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }
}

/// Words in the shared pool of [`PoolStream`] (1 MiB).
const POOL_WORDS: usize = 1 << 17;

/// The pool every [`PoolStream`] reads from: xoshiro256** words from a fixed key, made once per
/// process.
fn pool() -> &'static [u64] {
    static POOL: std::sync::OnceLock<Box<[u64]>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let mut s = ByteStream::new(0x1054_a9c0_7e57_b175);
        (0..POOL_WORDS).map(|_| s.next_u64()).collect()
    })
}

/// Content generator 2 (phones made since 2026-12): word `i` of the stream of `key` is pool
/// word `start + i` (wrapping) XOR a per-key Weyl sequence, so each file's bytes look random,
/// differ from every other file's and never repeat with the pool's period; about ten times
/// cheaper than xoshiro256** per byte (it was a fifth of the simulator's time in a 2 GB
/// backup, on the same cores as the host being measured).
#[derive(Clone)]
pub(crate) struct PoolStream {
    at: usize,
    weyl: u64,
    step: u64,
}

impl PoolStream {
    pub(crate) fn new(key: u64) -> Self {
        let k = mix(key);
        PoolStream {
            at: (k as usize) % POOL_WORDS,
            weyl: mix(k ^ 0x6A09_E667_F3BC_C908),
            // Odd, so the sequence runs through every value before it repeats.
            step: mix(k ^ 0xBB67_AE85_84CA_A73B) | 1,
        }
    }

    /// The next 64 bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let w = pool().get(self.at).copied().unwrap_or_default() ^ self.weyl;
        self.at = (self.at + 1) % POOL_WORDS;
        self.weyl = self.weyl.wrapping_add(self.step);
        w
    }

    /// Fills `out` with the next `out.len() / 8` words (little-endian); `out.len()` must be a
    /// multiple of 8 (the rest is left alone).
    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        let pool = pool();
        let mut words = out.chunks_exact_mut(8);
        while words.len() > 0 {
            let run = pool.get(self.at..).unwrap_or_default();
            if run.is_empty() {
                self.at = 0;
                continue;
            }
            let n = run.len().min(words.len());
            for (chunk, w) in (&mut words).take(n).zip(run) {
                chunk.copy_from_slice(&(w ^ self.weyl).to_le_bytes());
                self.weyl = self.weyl.wrapping_add(self.step);
            }
            self.at = (self.at + n) % POOL_WORDS;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_stream_fill_is_next_u64_in_order() {
        for (key, len) in [(1u64, 8usize), (2, 4096), (3, (POOL_WORDS + 77) * 8)] {
            let mut a = PoolStream::new(key);
            let mut b = PoolStream::new(key);
            let mut buf = vec![0u8; len];
            a.fill(&mut buf);
            for (i, chunk) in buf.chunks_exact(8).enumerate() {
                assert_eq!(chunk, b.next_u64().to_le_bytes(), "key {key} word {i}");
            }
        }
        let mut x = vec![0u8; 64];
        let mut y = vec![0u8; 64];
        PoolStream::new(5).fill(&mut x);
        PoolStream::new(6).fill(&mut y);
        assert_ne!(x, y);
    }

    #[test]
    fn keys_differ_by_label_and_index() {
        assert_ne!(key(1, "a", 0), key(1, "b", 0));
        assert_ne!(key(1, "a", 0), key(1, "a", 1));
        assert_ne!(key(1, "a", 0), key(2, "a", 0));
        assert_eq!(key(7, "x", 9), key(7, "x", 9));
    }

    #[test]
    fn uuid_shape() {
        let u = uuid(42);
        assert_eq!(u.len(), 36);
        assert_eq!(u.matches('-').count(), 4);
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn stream_is_repeatable() {
        let mut a = ByteStream::new(5);
        let mut b = ByteStream::new(5);
        let mut c = ByteStream::new(6);
        let va: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let vb: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let vc: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
    }
}
