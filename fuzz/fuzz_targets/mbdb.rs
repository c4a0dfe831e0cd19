//! Fuzzes the legacy Manifest.mbdb parser (iOS 5–9 backups): never panic, and whatever parses
//! must encode and parse back to the same entries.
#![no_main]

use std::path::Path;

use iosnap_format::mbdb;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("Manifest.mbdb");
    let _ = mbdb::is_mbdx(data);
    if let Ok(entries) = mbdb::parse(data, path) {
        let again = mbdb::parse(&mbdb::encode(&entries), path);
        match again {
            Ok(back) => assert_eq!(back, entries, "entries changed through encode/parse"),
            Err(e) => panic!("re-encoded mbdb does not parse: {e}"),
        }
    }
});
