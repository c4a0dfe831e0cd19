//! Fuzzes the BackupKeyBag TLV parser: arbitrary bytes must give `Ok` or `Err`, never a panic,
//! an unbounded allocation or a hang; whatever parses must serialise and parse again.
#![no_main]

use iosnap_format::keybag::Keybag;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(kb) = Keybag::parse(data) {
        let again = kb.to_bytes();
        assert!(
            Keybag::parse(&again).is_ok(),
            "a serialised keybag no longer parses"
        );
    }
});
