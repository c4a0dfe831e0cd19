//! Fuzzes the three metadata plist readers (Info.plist, Manifest.plist, Status.plist) with the
//! same input: never panic, never blow up on nesting or shared references, and whatever parses
//! must serialise again.
#![no_main]

use std::path::Path;

use iosnap_format::{InfoPlist, ManifestPlist, StatusPlist};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.plist");
    if let Ok(info) = InfoPlist::from_bytes(data, path) {
        let _ = info.to_bytes();
    }
    if let Ok(manifest) = ManifestPlist::from_bytes(data, path) {
        let _ = manifest.product_version();
        let _ = manifest.to_bytes();
    }
    if let Ok(status) = StatusPlist::from_bytes(data, path) {
        let _ = status.is_finished();
        let _ = status.to_bytes();
    }
});
