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

#[cfg(test)]
mod tests {
    use super::*;

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
