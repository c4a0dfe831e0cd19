//! Writes a plain (unencrypted) backup folder of the simulated phone whose sms.db holds
//! MESSAGES messages: the input of bench/messages.sh (iosnap vs imessage-exporter).
//!
//!     cargo run --release -p iosnap-datasets --example make_messages_backup -- OUT [MESSAGES]
//!
//! The phone is the one the tests use (`iosnap_phone`), with every other dataset kept small so
//! the backup is mostly sms.db plus its attachments (about 4 % of the messages carry a JPEG).

use std::path::PathBuf;
use std::process::ExitCode;

use iosnap_format::EntryKind;
use iosnap_format::writer::{BackupWriter, DeviceInfo, WriterOptions};
use iosnap_phone::datasets::Levels;
use iosnap_phone::{Phone, PhoneSpec};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(out) = args.next().map(PathBuf::from) else {
        eprintln!("usage: make_messages_backup OUT [MESSAGES]");
        return ExitCode::from(2);
    };
    let messages: u32 = match args.next().map(|s| s.to_string_lossy().parse()) {
        None => 200_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("MESSAGES: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&out, messages) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make_messages_backup: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(out: &std::path::Path, messages: u32) -> Result<(), Box<dyn std::error::Error>> {
    let version = "17.5";
    let spec = PhoneSpec {
        product_version: version.into(),
        files: 0,
        bytes: 0,
        apps: 0,
        data: Levels {
            messages,
            contacts: 300,
            calls: 0,
            notes: 0,
            events: 0,
            history_visits: 0,
            bookmarks: 0,
            photos: 0,
            voice_memos: 0,
            voicemails: 0,
            whatsapp_messages: 0,
        },
        ..PhoneSpec::default()
    };
    let cache = out.with_extension("phone-cache");
    let phone = Phone::generate_in(&spec, &cache)?;
    let opts = WriterOptions {
        device: DeviceInfo {
            product_version: version.into(),
            ..DeviceInfo::default()
        },
        ..WriterOptions::default()
    };
    let mut w = BackupWriter::create(out, opts)?;
    for f in phone.files() {
        match f.kind {
            EntryKind::Directory => {
                w.add_directory(&f.domain, &f.relative_path, f.meta.clone())?;
            }
            EntryKind::Symlink => {
                let t = f.meta.target.clone().unwrap_or_default();
                w.add_symlink(&f.domain, &f.relative_path, &t, f.meta.clone())?;
            }
            EntryKind::File => {
                w.add_file(&f.domain, &f.relative_path, f.meta.clone(), phone.open(f)?)?;
            }
            EntryKind::Other(_) => {}
        }
    }
    w.finish()?;
    std::fs::remove_dir_all(&cache)?;
    let sms = &phone.datasets().messages;
    println!(
        "{}: {} messages, {} chats, {} attachments",
        out.display(),
        sms.messages.len(),
        sms.chats.len(),
        sms.attachments.len()
    );
    Ok(())
}
