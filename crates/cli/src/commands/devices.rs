//! `iosnap devices [--json]`: the phones usbmuxd sees, with what lockdown says about them.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use iosnap_device::{DeviceSession, MuxAddr, SessionOptions, list_devices};
use serde::Serialize;

use crate::progress::human_bytes;
use crate::sanitize::for_terminal;

/// `iosnap devices`.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Print JSON (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

/// `--json` row of `iosnap devices` (docs/json.md).
#[derive(Debug, Serialize)]
struct DeviceJson {
    udid: String,
    connection: String,
    name: Option<String>,
    product_type: Option<String>,
    product_version: Option<String>,
    serial_number: Option<String>,
    battery_level: Option<u64>,
    battery_charging: Option<bool>,
    will_encrypt: Option<bool>,
    used_capacity: Option<u64>,
    total_capacity: Option<u64>,
    /// Why the device could not be asked (not paired, locked …), when it could not.
    error: Option<String>,
}

pub fn run(args: &DevicesArgs) -> Result<ExitCode> {
    super::block_on(async {
        let mux = MuxAddr::from_env()?;
        let mut rows = Vec::new();
        for d in list_devices(&mux).await? {
            let mut row = DeviceJson {
                udid: d.udid.clone(),
                connection: d.connection.to_string().to_lowercase(),
                name: None,
                product_type: None,
                product_version: None,
                serial_number: None,
                battery_level: None,
                battery_charging: None,
                will_encrypt: None,
                used_capacity: None,
                total_capacity: None,
                error: None,
            };
            // Listing must never start pairing (a "Trust this computer?" prompt on the phone).
            let opts = SessionOptions {
                allow_pairing: false,
                ..SessionOptions::default()
            };
            let values = async {
                DeviceSession::connect_with(&mux, &d.udid, opts)
                    .await?
                    .values()
                    .await
            };
            match values.await {
                Ok(v) => {
                    row.name = Some(v.device_name);
                    row.product_type = Some(v.product_type);
                    row.product_version = Some(v.product_version);
                    row.serial_number = Some(v.serial_number);
                    row.battery_level = v.battery_level;
                    row.battery_charging = v.battery_charging;
                    row.will_encrypt = Some(v.will_encrypt);
                    row.used_capacity = v.used_capacity;
                    row.total_capacity = v.total_capacity;
                }
                Err(e) => row.error = Some(e.to_string()),
            }
            rows.push(row);
        }
        if args.json {
            super::print_json(&rows)?;
            return Ok(ExitCode::SUCCESS);
        }
        if rows.is_empty() {
            println!("no devices connected");
        }
        for r in &rows {
            let show = |v: &Option<String>| for_terminal(v.as_deref().unwrap_or("-")).into_owned();
            match &r.error {
                Some(e) => println!("{}  {}  ({})", r.udid, r.connection, for_terminal(e)),
                None => println!(
                    "{}  {}  {} ({}, iOS {})  battery {}%{}  encryption {}  used {}",
                    r.udid,
                    r.connection,
                    show(&r.name),
                    show(&r.product_type),
                    show(&r.product_version),
                    r.battery_level.map(|b| b.to_string()).unwrap_or("?".into()),
                    if r.battery_charging == Some(true) {
                        " charging"
                    } else {
                        ""
                    },
                    if r.will_encrypt == Some(true) {
                        "on"
                    } else {
                        "off"
                    },
                    r.used_capacity.map(human_bytes).unwrap_or("-".into()),
                ),
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
