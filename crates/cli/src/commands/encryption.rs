//! `iosnap encryption on|off|change-password|status --device UDID`: the device's backup password.
//!
//! Passwords come from `IOSNAP_PASSWORD` (the current one) and `IOSNAP_NEW_PASSWORD` (the new
//! one), or `--password-file` / `--new-password-file`, or a prompt — never argv.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use iosnap_device::{DeviceSession, MuxAddr, change_password};
use zeroize::Zeroizing;

use crate::password;

/// What to do with backup encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EncryptionAction {
    /// Turn encryption on (asks for a new password).
    On,
    /// Turn encryption off (asks for the current password).
    Off,
    /// Change the password (asks for both).
    ChangePassword,
    /// Show whether backups of the device are encrypted.
    Status,
}

/// `iosnap encryption`.
#[derive(Debug, Args)]
pub struct EncryptionArgs {
    /// on, off, change-password or status.
    pub action: EncryptionAction,
    /// The device (UDID); may be left out when exactly one is connected.
    #[arg(long, short = 'u', value_name = "UDID")]
    pub device: Option<String>,
    /// Current password from this file (else IOSNAP_PASSWORD, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// New password from this file (else IOSNAP_NEW_PASSWORD, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
}

pub fn run(args: &EncryptionArgs) -> Result<ExitCode> {
    super::block_on(async {
        let mux = MuxAddr::from_env()?;
        let udid = super::backup::pick_device(&mux, args.device.as_deref()).await?;
        let session = DeviceSession::connect(&mux, &udid).await?;
        let on = session.will_encrypt().await?;
        let current = || {
            password::require_for(
                args.password_file.as_deref(),
                Some(&udid),
                "the current backup password",
            )
        };
        let new = || -> Result<Zeroizing<String>> {
            let p = password::require_named(
                args.new_password_file.as_deref(),
                password::ENV_NEW_PASSWORD,
                "the new backup password",
            )?;
            if p.is_empty() {
                bail!("the new backup password is empty");
            }
            Ok(p)
        };
        match args.action {
            EncryptionAction::Status => {
                println!(
                    "backup encryption for {udid}: {}",
                    if on { "on" } else { "off" }
                );
                return Ok(ExitCode::SUCCESS);
            }
            EncryptionAction::On => {
                let n = new()?;
                change_password(&session, None, Some(&n)).await?;
                println!("backup encryption is now on for {udid}");
            }
            EncryptionAction::Off => {
                let c = current()?;
                change_password(&session, Some(&c), None).await?;
                println!("backup encryption is now off for {udid}");
            }
            EncryptionAction::ChangePassword => {
                let c = current()?;
                let n = new()?;
                change_password(&session, Some(&c), Some(&n)).await?;
                println!("backup password changed for {udid}");
                password::update_remembered(&udid, &n);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
