//! Runs a simulator until Ctrl-C, for poking it with real tools:
//! `cargo run -p iosnap-simulator --example sim -- 127.0.0.1:27015 /tmp/sim-state [DEVICES]`,
//! then `USBMUXD_SOCKET_ADDRESS=127.0.0.1:27015 ideviceinfo`.

use iosnap_simulator::{SimulateArgs, run_cli};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:27015".into())
        .parse()?;
    let state = args
        .next()
        .unwrap_or_else(|| "/tmp/iosnap-sim".into())
        .into();
    let devices = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let a = SimulateArgs {
        listen: Some(listen),
        state,
        devices,
        ..SimulateArgs::default()
    };
    run_cli(&a).await?;
    Ok(())
}
