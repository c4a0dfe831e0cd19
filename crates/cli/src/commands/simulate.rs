//! `iosnap simulate`: a simulated iPhone (or several) on a loopback usbmuxd socket, for tests,
//! demos and other tools (`USBMUXD_SOCKET_ADDRESS=127.0.0.1:PORT idevicebackup2 …`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use iosnap_simulator::config::SimulateArgs as SimConfigArgs;

/// `iosnap simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// TCP address of the usbmuxd endpoint (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:27015")]
    pub listen: SocketAddr,
    /// Also listen on this Unix socket.
    #[arg(long, value_name = "PATH")]
    pub unix: Option<PathBuf>,
    /// State folder: each device keeps its identity, pairing and phone content there, so
    /// successive runs are the same phone over time.
    #[arg(long, value_name = "DIR", default_value = "iosnap-sim-state")]
    pub state: PathBuf,
    /// Seed of the synthetic phone (device i uses seed + i).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Extra bulk files per phone.
    #[arg(long, value_name = "N")]
    pub files: Option<u64>,
    /// Approximate bulk bytes per phone (e.g. 2G, 500M, 1048576).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub bytes: Option<u64>,
    /// Share of files (0–1) changed, added and removed after each backup.
    #[arg(long, value_name = "P")]
    pub churn: Option<f64>,
    /// Number of simulated devices.
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
    /// Fault to inject (repeatable), e.g. drop-at-step=5, drop-after-bytes=100000, stall-at-step=3,
    /// garbage-at-step=2, disk-full, hold-sync-lock=3.
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<String>,
    /// Start with this computer unpaired: usbmuxd has no pair record and the phones trust no
    /// host, so clients must pair first (`idevicepair pair`, or any iosnap command).
    #[arg(long)]
    pub unpaired: bool,
    /// How the phones answer pairing: accept, ask=N ("Trust This Computer?" pending N times,
    /// then trusted) or refuse ("Don't Trust").
    #[arg(long, value_name = "MODE")]
    pub pairing: Option<String>,
    /// Ask for the passcode before each backup (iOS ≥ 16.1): for SECS seconds, or forever.
    #[arg(long, value_name = "SECS|forever")]
    pub passcode_prompt: Option<String>,
}

/// Parses `2G`, `500M`, `64K` or plain bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                other => return Err(format!("unknown size unit {other:?} (use K, M, G or T)")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    let n: f64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    if !(n.is_finite() && n >= 0.0) {
        return Err(format!("not a size: {s:?}"));
    }
    Ok((n * mult as f64) as u64)
}

pub fn run(args: &SimulateArgs) -> Result<ExitCode> {
    let cfg = SimConfigArgs {
        listen: Some(args.listen),
        unix: args.unix.clone(),
        state: args.state.clone(),
        seed: args.seed,
        files: args.files,
        bytes: args.bytes,
        churn: args.churn,
        devices: args.devices,
        faults: args.faults.clone(),
        unpaired: args.unpaired,
        pairing: args.pairing.clone(),
        passcode_prompt: args.passcode_prompt.clone(),
    };
    super::block_on(async { Ok(iosnap_simulator::run_cli(&cfg).await?) })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("abc").is_err());
    }
}
