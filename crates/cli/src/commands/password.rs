//! `iosnap password remember|forget --device UDID`: keep a device's backup password in the OS
//! keyring (or, only when asked, in an owner-only file), so every command and the daemon can
//! open its encrypted backups without asking. The work is in `iosnap_daemon::secrets`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use iosnap_daemon::secrets::{Backend, PasswordStore, SecretError};
use iosnap_format::backup::Backup;
use iosnap_store::{ConfigDir, Library, SystemClock};

use crate::password;

/// `iosnap password`.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PasswordCommand,
}

/// The verbs of `iosnap password`.
#[derive(Debug, Subcommand)]
pub enum PasswordCommand {
    /// Remember the backup password of a device (read from a prompt, IOSNAP_PASSWORD or
    /// --password-file; never from the command line), after checking it opens the device's
    /// latest snapshot.
    Remember(RememberArgs),
    /// Forget the remembered backup password of a device (keyring and file).
    Forget(ForgetArgs),
}

/// `iosnap password remember`.
#[derive(Debug, Args)]
pub struct RememberArgs {
    /// The device (UDID).
    #[arg(long, short = 'u', value_name = "UDID")]
    pub device: String,
    /// Read the password from this file (first line); else IOSNAP_PASSWORD, else a prompt.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Keep it in an owner-only (0600) file under the config folder instead of the OS
    /// keyring: for headless machines without one. Anyone who can read your files can read it.
    #[arg(long)]
    pub file_store: bool,
    /// The library whose latest snapshot of the device the password is checked against
    /// (default: $IOSNAP_LIBRARY, else the device's `location` setting, else the default).
    #[arg(long, value_name = "DIR")]
    pub library: Option<PathBuf>,
}

/// `iosnap password forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The device (UDID).
    #[arg(long, short = 'u', value_name = "UDID")]
    pub device: String,
}

/// Runs `iosnap password …`.
pub fn run(args: &PasswordArgs) -> Result<ExitCode> {
    let config = ConfigDir::from_env()?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let store = PasswordStore::new(&config).unlock_prompt(interactive);
    match &args.command {
        PasswordCommand::Remember(a) => remember(a, &config, &store),
        PasswordCommand::Forget(a) => forget(a, &store),
    }
}

fn remember(a: &RememberArgs, config: &ConfigDir, store: &PasswordStore) -> Result<ExitCode> {
    let udid = a.device.as_str();
    // Fail before asking for the password when it could not be stored anyway.
    store.file_path(udid)?;
    if !a.file_store
        && let Err(e) = store.keyring_available()
    {
        if let SecretError::Unavailable { .. } = e {
            let file = store.file_path(udid)?;
            bail!(
                "{e}.\nTo keep the password in a file only you can read instead ({}), run again \
                 with --file-store; or give it each time with IOSNAP_PASSWORD or --password-file",
                file.display()
            );
        }
        return Err(e).context("reaching the OS keyring");
    }
    let pw = password::require_named(
        a.password_file.as_deref(),
        password::ENV_PASSWORD,
        &format!("the backup password of {udid}"),
    )?;
    if pw.is_empty() {
        bail!("the password is empty; nothing remembered");
    }
    match check_against_latest(a.library.as_deref(), config, udid, &pw)? {
        Checked::Opens(r) => eprintln!("the password opens {r}"),
        Checked::NotEncrypted(r) => eprintln!(
            "note: {r}, the latest snapshot of {udid}, is not encrypted; the password is \
             remembered unchecked"
        ),
        Checked::NoSnapshot => eprintln!(
            "note: no snapshot of {udid} to check the password against yet; it is remembered \
             unchecked"
        ),
    }
    let backend = store.remember(udid, &pw, a.file_store)?;
    println!("remembered the backup password of {udid} in {backend}");
    if let Backend::File(_) = backend {
        eprintln!(
            "note: the file is readable only by you (mode 0600), but not encrypted; \
             `iosnap password forget --device {udid}` removes it"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn forget(a: &ForgetArgs, store: &PasswordStore) -> Result<ExitCode> {
    let udid = a.device.as_str();
    let removed = store.forget(udid)?;
    if removed.is_empty() {
        let keyring = match store.keyring_available() {
            Ok(()) => String::new(),
            Err(e) => format!(" ({e})"),
        };
        println!("no backup password was remembered for {udid}{keyring}");
    }
    for b in removed {
        println!("removed the backup password of {udid} from {b}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What checking a password against the device's newest snapshot found.
enum Checked {
    /// It unlocks this snapshot.
    Opens(String),
    /// The newest snapshot is not encrypted.
    NotEncrypted(String),
    /// The device has no snapshot (or there is no library).
    NoSnapshot,
}

/// Unlocks the newest snapshot of `udid` with `pw`; a wrong password is an error.
fn check_against_latest(
    library: Option<&Path>,
    config: &ConfigDir,
    udid: &str,
    pw: &str,
) -> Result<Checked> {
    let env = std::env::var_os("IOSNAP_LIBRARY").filter(|e| !e.is_empty());
    let root = match (library, env) {
        (Some(d), _) => d.to_path_buf(),
        (None, Some(e)) => PathBuf::from(e),
        (None, None) => match config.device(udid)?.location {
            Some(l) => l,
            None => match iosnap_store::default_location() {
                Ok(l) => l,
                Err(_) => return Ok(Checked::NoSnapshot),
            },
        },
    };
    // Do not create a library just to look into it.
    if !root.join(udid).is_dir() {
        return Ok(Checked::NoSnapshot);
    }
    let lib = Library::open(&root, config.clone(), Arc::new(SystemClock))
        .with_context(|| format!("opening the library in {}", root.display()))?;
    let Some(latest) = lib.snapshots(udid)?.pop() else {
        return Ok(Checked::NoSnapshot);
    };
    let reference = latest.reference();
    let mut backup = Backup::open(&latest.path)?;
    if !backup.is_encrypted() {
        return Ok(Checked::NotEncrypted(reference));
    }
    match backup.unlock(pw.as_bytes()) {
        Ok(()) => Ok(Checked::Opens(reference)),
        Err(iosnap_format::Error::WrongPassword) => bail!(
            "this password does not open {reference}, the latest snapshot of {udid}; nothing \
             remembered"
        ),
        Err(e) => Err(e).with_context(|| format!("checking the password against {reference}")),
    }
}
