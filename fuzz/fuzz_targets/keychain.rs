//! Fuzzes the keychain reader: arbitrary bytes as `keychain-backup.plist`, as one item's
//! `v_Data` blob and as its DER attributes must give `Ok`/`Err` or counted skips, never a
//! panic, an unbounded allocation or a hang; DER that decodes must encode and decode again.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use iosnap_format::keychain::{KeychainBackup, decode_der, decrypt_blob, encode_der};
use iosnap_format::{ClassKeys, KdfParams, Keybag};
use libfuzzer_sys::fuzz_target;

/// Class keys for every class (an unencrypted-style keybag: no key derivation to pay).
fn keys() -> &'static ClassKeys {
    static KEYS: OnceLock<ClassKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        Keybag::generate(None, KdfParams::default())
            .map(|(_, k)| k)
            .unwrap_or_default()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(kc) = KeychainBackup::parse(data, Path::new("fuzz")) {
        for item in kc.items(keys()) {
            let _ = item;
        }
    }
    let _ = decrypt_blob(data, keys());
    if let Ok(attrs) = decode_der(data) {
        let again = encode_der(&attrs);
        assert!(decode_der(&again).is_ok(), "encoded DER no longer decodes");
    }
});
