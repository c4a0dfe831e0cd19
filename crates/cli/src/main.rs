//! `iosnap` — the command-line front end. Routing only: parse, call the libraries, render.

// Doc comments on clap structs are the user's `--help` text, where `DIR/<UDID>/` is meant
// literally; they are not HTML.
#![allow(rustdoc::invalid_html_tags)]

mod cli;
mod commands;
mod password;
mod progress;
mod sanitize;

use std::process::ExitCode;

use clap::Parser;

/// Exit codes other scripts can rely on.
///
/// * 0 — success.
/// * 1 — the command failed (one line on stderr says what and where).
/// * 2 — bad usage (clap's own code).
/// * 3 — the command ran, and found problems (e.g. `verify` found missing files).
pub mod exit {
    /// The command ran and found problems in what it checked.
    pub const PROBLEMS: u8 = 3;
}

fn main() -> ExitCode {
    // `iosnap ls … | head`: end quietly when the reader goes away, as other Unix tools do,
    // instead of panicking in `println!`.
    sigpipe::reset();
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            let msg = format!("{err:#}").replace('\n', " ");
            eprintln!("iosnap: {}", sanitize::for_terminal(&msg));
            ExitCode::FAILURE
        }
    }
}

/// `iosnap ls … | head` must not fail: a closed pipe ends the output quietly.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        let io = e.downcast_ref::<std::io::Error>().map(std::io::Error::kind);
        let json = e
            .downcast_ref::<serde_json::Error>()
            .and_then(serde_json::Error::io_error_kind);
        io.or(json) == Some(std::io::ErrorKind::BrokenPipe)
    })
}
