//! Where backup passwords come from: never the command line.
//!
//! Order: `--password-file FILE` when given, else the `IOSNAP_PASSWORD` environment variable,
//! else an interactive prompt when standard input is a terminal. A password on argv would be
//! visible to every user of the machine (`ps`) and kept in shell history, so there is no flag
//! for it. The value is wiped from memory when dropped.

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

/// Like [`obtain`], but a missing password is an error that says how to give one.
pub fn require(password_file: Option<&Path>, what: &str) -> Result<Password> {
    match obtain(password_file, what)? {
        Some(p) => Ok(p),
        None => bail!(
            "{what} is encrypted: give its password with {ENV_PASSWORD}=… or --password-file FILE \
             (or run in a terminal to be asked)"
        ),
    }
}

/// Like [`require`] for a password read from `env` (e.g. [`ENV_NEW_PASSWORD`]).
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
