//! Generates a phone and writes a few of its files (a photo, a thumbnail, sms.db) into a folder,
//! to inspect them with external tools: `cargo run -p iosnap-phone --example phone_dump -- OUT`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).ok_or("usage: phone_dump OUT_DIR")?);
    std::fs::create_dir_all(&out)?;
    let spec = iosnap_phone::PhoneSpec {
        files: 100,
        bytes: 1 << 20,
        ..Default::default()
    };
    let phone = iosnap_phone::Phone::generate(&spec)?;
    let mut n = 0;
    for f in phone.files() {
        let p = f.relative_path.to_ascii_lowercase();
        let wanted = p.ends_with(".jpg")
            || p.ends_with(".jpeg")
            || p.ends_with(".heic")
            || p.ends_with("sms.db")
            || p.ends_with("notestore.sqlite")
            || p.ends_with(".amr")
            || (p.ends_with(".m4a") && p.contains("recordings"));
        if wanted && f.kind == iosnap_format::EntryKind::File && n < 400 {
            let name = format!("{n:03}_{}", f.relative_path.replace('/', "_"));
            std::fs::write(out.join(name), phone.read(f)?)?;
            n += 1;
        }
    }
    println!("wrote {n} files to {}", out.display());
    Ok(())
}
