//! `iosnap cat DIR DOMAIN PATH`: one file, decrypted, to standard output.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::CatArgs;

pub fn run(args: &CatArgs) -> Result<ExitCode> {
    let backup = super::open_unlocked(&args.open)?;
    let entry = backup.find(&args.domain, &args.path)?;
    let mut reader = backup.open_file(&entry)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    std::io::copy(&mut reader, &mut out)
        .with_context(|| format!("reading {}/{}", args.domain, args.path))?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
