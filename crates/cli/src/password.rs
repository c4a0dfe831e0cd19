//! Where backup passwords come from: never the command line.
//!
//! Order: `--password-file FILE` when given, else the `IOSNAP_PASSWORD` environment variable,
//! else the password remembered for the device (`iosnap password remember`: the OS keyring, or
//! the opt-in owner-only file), else an interactive prompt when standard input is a terminal.
//! A password on argv would be visible to every user of the machine (`ps`) and kept in shell
//! history, so there is no flag for it. The value is wiped from memory when dropped, and never
//! printed or logged.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

/// Environment variable holding the backup password.
pub const ENV_PASSWORD: &str = "IOSNAP_PASSWORD";

/// Environment variable holding a *new* backup password (`iosnap encryption on|change-password`).
pub const ENV_NEW_PASSWORD: &str = "IOSNAP_NEW_PASSWORD";

/// A password that is zeroized when dropped.
pub type Password = Zeroizing<String>;

/// Gets the password for `what` (e.g. the backup folder), or `None` when no source has one
/// (non-interactive, no file, no environment variable).
pub fn obtain(password_file: Option<&Path>, what: &str) -> Result<Option<Password>> {
    obtain_named(password_file, ENV_PASSWORD, what)
}

/// Like [`obtain`] for a backup of the device `udid`: between the environment variable and
/// the prompt, the password remembered for that device is used. A keyring that cannot be
/// reached is skipped silently (the normal case on a server); any other keyring problem is
/// reported on stderr and the next source is tried.
pub fn obtain_for(
    password_file: Option<&Path>,
    udid: Option<&str>,
    what: &str,
) -> Result<Option<Password>> {
    if password_file.is_some() || std::env::var_os(ENV_PASSWORD).is_some() {
        return obtain(password_file, what);
    }
    if let Some(udid) = udid
        && let Some(p) = remembered(udid)
    {
        return Ok(Some(p));
    }
    obtain(None, what)
}

/// Gets the password of a backup of the device `udid` (see [`obtain_for`]); a missing
/// password is an error that says how to give one.
pub fn require_for(
    password_file: Option<&Path>,
    udid: Option<&str>,
    what: &str,
) -> Result<Password> {
    match obtain_for(password_file, udid, what)? {
        Some(p) => Ok(p),
        None => {
            let remember = udid
                .map(|u| {
                    format!(", or remember it once with `iosnap password remember --device {u}`")
                })
                .unwrap_or_default();
            bail!(
                "{what} is encrypted: give its password with {ENV_PASSWORD}=… or --password-file FILE \
                 (or run in a terminal to be asked){remember}"
            )
        }
    }
}

/// The password remembered for `udid`, if any; problems are warnings, not errors.
fn remembered(udid: &str) -> Option<Password> {
    let config = match iosnap_store::ConfigDir::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("iosnap: warning: not looking for a remembered password: {e}");
            return None;
        }
    };
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let store = iosnap_daemon::secrets::PasswordStore::new(&config).unlock_prompt(interactive);
    match store.lookup(udid) {
        Ok(Some((p, _from))) => Some(p),
        Ok(None) => None,
        Err(e) => {
            eprintln!("iosnap: warning: not using a remembered password for {udid}: {e}");
            None
        }
    }
}

/// After the backup password of `udid` was changed on the phone: replaces a remembered
/// password (where it is kept) with `new`, so later backups still open without asking.
/// Nothing remembered: nothing done. Problems are warnings: the change itself succeeded.
pub fn update_remembered(udid: &str, new: &str) {
    let Ok(config) = iosnap_store::ConfigDir::from_env() else {
        return;
    };
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let store = iosnap_daemon::secrets::PasswordStore::new(&config).unlock_prompt(interactive);
    let result = match store.lookup(udid) {
        Ok(Some((_, backend))) => {
            let file = matches!(backend, iosnap_daemon::secrets::Backend::File(_));
            store.remember(udid, new, file).map(Some)
        }
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    match result {
        Ok(Some(b)) => println!("updated the remembered backup password of {udid} in {b}"),
        Ok(None) => {}
        Err(e) => eprintln!(
            "iosnap: warning: the remembered backup password of {udid} is now out of date and \
             could not be updated ({e}); run `iosnap password remember --device {udid}`"
        ),
    }
}

/// The device a backup belongs to: its Info.plist's UDID, else the folder's name when it
/// looks like one (the `<UDID>/` layout every backup tool uses).
pub fn backup_udid(backup: &iosnap_format::backup::Backup) -> Option<String> {
    let from_info = backup.info().and_then(|i| {
        i.unique_identifier
            .clone()
            .or_else(|| i.target_identifier.clone())
    });
    from_info.or_else(|| {
        let name = backup.dir().file_name()?.to_str()?;
        let looks = name.len() >= 24
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        looks.then(|| name.to_string())
    })
}

/// Like [`obtain`], with the environment variable `env` instead of `IOSNAP_PASSWORD`.
pub fn obtain_named(
    password_file: Option<&Path>,
    env: &str,
    what: &str,
) -> Result<Option<Password>> {
    if let Some(file) = password_file {
        return read_file(file).map(Some);
    }
    if let Ok(value) = std::env::var(env) {
        return Ok(Some(Zeroizing::new(value)));
    }
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let value = rpassword::prompt_password(format!("Password for {what}: "))
            .context("reading the password from the terminal")?;
        return Ok(Some(Zeroizing::new(value)));
    }
    Ok(None)
}

/// Like [`require_for`] (without a device) for a password read from `env` (e.g. [`ENV_NEW_PASSWORD`]).
pub fn require_named(password_file: Option<&Path>, env: &str, what: &str) -> Result<Password> {
    match obtain_named(password_file, env, what)? {
        Some(p) => Ok(p),
        None => {
            bail!("{what} is needed: set {env}=… or give a file (or run in a terminal to be asked)")
        }
    }
}

/// Reads a password file: its first line, without the line ending.
fn read_file(path: &Path) -> Result<Password> {
    let raw = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("reading password file {}", path.display()))?,
    );
    let line = raw.lines().next().unwrap_or("");
    Ok(Zeroizing::new(line.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_first_line_without_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("pw");
        std::fs::write(&f, "sécret pass\r\nignored\n").expect("write");
        let p = read_file(&f).expect("read");
        assert_eq!(p.as_str(), "sécret pass");
    }

    #[test]
    fn missing_file_is_an_error_naming_it() {
        let err = read_file(Path::new("/nonexistent/pw")).expect_err("must fail");
        assert!(format!("{err:#}").contains("/nonexistent/pw"));
    }
}
