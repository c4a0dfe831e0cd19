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
    // Decrypted copies (Manifest.db, databases) live in private scratch folders: remove the
    // ones a killed run left behind, and remove ours if this run is stopped by a signal.
    iosnap_format::scratch::sweep_stale();
    if !handles_signals_itself(&cli.command) {
        clean_up_on_signals();
    }
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

/// Commands with their own SIGINT/SIGTERM handling (a clean stop that rolls back a backup).
fn handles_signals_itself(command: &cli::Command) -> bool {
    use commands::daemon::{DaemonArgs, DaemonCommand};
    match command {
        cli::Command::Simulate(_) => true,
        cli::Command::Daemon(DaemonArgs { command }) => {
            matches!(command, None | Some(DaemonCommand::Run(_)))
        }
        _ => false,
    }
}

/// On SIGINT, SIGTERM or SIGHUP: remove this process's scratch folders, then die of the
/// signal as if no handler were installed (the shell sees the usual status, 128 + signal).
fn clean_up_on_signals() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return; // no handler: the next run's sweep still removes what we leave
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            iosnap_format::scratch::remove_all_now();
            let _ = signal_hook::low_level::emulate_default_handler(sig);
            std::process::exit(128 + sig);
        }
    });
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
