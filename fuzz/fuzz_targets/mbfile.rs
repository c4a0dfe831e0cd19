//! Fuzzes the NSKeyedArchiver MBFile decoder (the `file` blob of every Manifest.db row).
//!
//! Beyond "never panic": anything that decodes must survive `encode` → `decode` unchanged, which
//! is what the backup writer relies on when it copies rows.
#![no_main]

use iosnap_format::mbfile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((meta, rel)) = mbfile::decode(data) {
        let rel = rel.unwrap_or_default();
        let blob = mbfile::encode(&meta, &rel);
        match mbfile::decode(&blob) {
            Ok((meta2, rel2)) => {
                assert_eq!(meta2, meta, "metadata changed through encode/decode");
                assert_eq!(rel2.as_deref(), Some(rel.as_str()));
            }
            Err(e) => panic!("re-encoded blob does not decode: {e}"),
        }
    }
});
