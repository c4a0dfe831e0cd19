//! # iosnap-simulator — a simulated iPhone on loopback
//!
//! Real backup tools (Debian's `idevicebackup2`, `pymobiledevice3`, our own `iosnap`) talk to
//! phones through usbmuxd. This crate serves that protocol on a loopback TCP port (and
//! optionally a Unix socket), so pointing `USBMUXD_SOCKET_ADDRESS=127.0.0.1:PORT` at it makes
//! every such tool back up, restore and query a synthetic phone — in tests, without hardware.
//!
//! Behind usbmuxd each device runs lockdownd (port 62078, TLS sessions with generated
//! certificates) and, on virtual ports handed out by `StartService`, notification_proxy,
//! AFC (sync lock, restore app list), installation_proxy, springboardservices and
//! mobilebackup2 (full and incremental backups, encrypted or not, restore, Info, List,
//! ChangePassword). No real TCP port besides the usbmuxd endpoint is opened.
//!
//! ```no_run
//! # async fn demo() -> iosnap_simulator::Result<()> {
//! use iosnap_simulator::{DeviceConfig, PhoneSpec, Simulator, SimulatorConfig};
//! let cfg = SimulatorConfig {
//!     listen: Some("127.0.0.1:0".parse().expect("addr")),
//!     unix: None,
//!     devices: vec![DeviceConfig::new("/tmp/sim-state/dev1", PhoneSpec::default())],
//! };
//! let sim = Simulator::start(cfg).await?;
//! println!("USBMUXD_SOCKET_ADDRESS={} udid {}", sim.addr(), sim.udids()[0]);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Pairing is simulated on both sides: usbmuxd keeps (or lacks, [`DeviceConfig::unpaired`])
//! a record that `SavePairRecord`/`DeletePairRecord` change, and lockdownd only opens sessions
//! for HostIDs it trusts, added by `Pair` (after the simulated user's [`PairingMode`] answer)
//! and removed by `Unpair`. A phone may ask for its passcode before a backup
//! ([`PasscodePrompt`]), announced on notification_proxy as iOS ≥ 16.1 does.
//!
//! The persistent state of a device (identity, pair record, phone, backup password,
//! last-backup records) lives in its [`DeviceConfig::state_dir`].

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod config;
pub mod device;
pub mod error;
pub mod identity;
mod io;
mod lockdown;
mod manifest;
pub mod mb2;
mod mux;
pub mod phone;
mod png;
pub mod services;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use config::{
    ConnectionType, DeviceConfig, FaultPlan, PairingMode, PasscodePrompt, SimulateArgs,
    SimulatorConfig,
};
pub use device::{Counters, DeviceHandle};
pub use error::{Error, Result};
pub use identity::{Identity, IdentityOverrides, PairRecord};
pub use phone::PhoneSpec;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Runs `iosnap simulate`: starts the simulator, prints where it listens and the UDIDs
/// (the line `USBMUXD_SOCKET_ADDRESS=…` is what a user copies), serves until Ctrl-C, then
/// shuts down cleanly.
pub async fn run_cli(args: &SimulateArgs) -> Result<()> {
    let sim = Simulator::start(SimulatorConfig::from_args(args)?).await?;
    if let Some(a) = sim.addr {
        println!("USBMUXD_SOCKET_ADDRESS={a}");
    }
    if let Some(p) = sim.unix_path() {
        println!("USBMUXD_SOCKET_ADDRESS=UNIX:{}", p.display());
    }
    for d in sim.devices() {
        println!(
            "device {} ({}, iOS {}) state {}",
            d.udid(),
            d.identity().device_name,
            d.identity().product_version,
            d.state_dir().display()
        );
    }
    tokio::signal::ctrl_c()
        .await
        .map_err(|source| Error::Listen {
            addr: "Ctrl-C handler".into(),
            source,
        })?;
    sim.shutdown().await;
    Ok(())
}

/// The lockdownd port every device listens on.
pub const LOCKDOWN_PORT: u16 = 62078;

/// A running simulator. Dropping it without [`Simulator::shutdown`] also stops the
/// listeners (their tasks end when the runtime does); `shutdown` stops them promptly.
pub struct Simulator {
    addr: Option<SocketAddr>,
    unix: Option<PathBuf>,
    devices: Vec<DeviceHandle>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

async fn accept_loop<F, Fut>(mut accept: F, mux: Arc<mux::Mux>, mut stop: watch::Receiver<bool>)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<io::BoxIo>>,
{
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            conn = accept() => {
                let Ok(conn) = conn else { continue };
                let mux = mux.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = stop.changed() => {}
                        _ = mux::serve(conn, mux) => {}
                    }
                });
            }
        }
    }
}

impl Simulator {
    /// Creates or loads every device's state and starts listening.
    pub async fn start(cfg: SimulatorConfig) -> Result<Simulator> {
        if cfg.listen.is_none() && cfg.unix.is_none() {
            return Err(Error::Config(
                "need a TCP address (--listen) or a Unix socket (--unix)".into(),
            ));
        }
        let mut devices = Vec::new();
        for (i, d) in cfg.devices.iter().enumerate() {
            let id = u32::try_from(i + 1).map_err(|_| Error::Config("too many devices".into()))?;
            let dev = tokio::task::block_in_place(|| device::Device::open(d, id))?;
            if devices
                .iter()
                .any(|o: &Arc<device::Device>| o.identity.udid == dev.identity.udid)
            {
                return Err(Error::Config(format!(
                    "two devices share UDID {}",
                    dev.identity.udid
                )));
            }
            devices.push(Arc::new(dev));
        }
        let buid = devices
            .first()
            .map(|d| d.pair.system_buid.clone())
            .unwrap_or_else(|| "00000000-0000-0000-0000-000000000000".into());
        let mux = Arc::new(mux::Mux {
            devices: devices.clone(),
            buid,
        });
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut addr = None;
        if let Some(a) = cfg.listen {
            let l = tokio::net::TcpListener::bind(a)
                .await
                .map_err(|source| Error::Listen {
                    addr: a.to_string(),
                    source,
                })?;
            addr = Some(l.local_addr().map_err(|source| Error::Listen {
                addr: a.to_string(),
                source,
            })?);
            let l = Arc::new(l);
            tasks.push(tokio::spawn(accept_loop(
                move || {
                    let l = l.clone();
                    async move {
                        let (s, _) = l.accept().await?;
                        s.set_nodelay(true)?;
                        Ok(Box::new(s) as io::BoxIo)
                    }
                },
                mux.clone(),
                stop_rx.clone(),
            )));
        }
        if let Some(p) = &cfg.unix {
            if p.exists() {
                std::fs::remove_file(p).map_err(|e| Error::io(p, e))?;
            }
            let l = tokio::net::UnixListener::bind(p).map_err(|source| Error::Listen {
                addr: p.display().to_string(),
                source,
            })?;
            let l = Arc::new(l);
            tasks.push(tokio::spawn(accept_loop(
                move || {
                    let l = l.clone();
                    async move {
                        let (s, _) = l.accept().await?;
                        Ok(Box::new(s) as io::BoxIo)
                    }
                },
                mux.clone(),
                stop_rx.clone(),
            )));
        }
        Ok(Simulator {
            addr,
            unix: cfg.unix.clone(),
            devices: devices
                .into_iter()
                .map(|dev| DeviceHandle { dev })
                .collect(),
            stop,
            tasks,
        })
    }

    /// The TCP address clients use (`USBMUXD_SOCKET_ADDRESS=<addr>`); with only a Unix
    /// socket configured this is the unspecified address 0.0.0.0:0 (see [`Simulator::unix_path`]).
    pub fn addr(&self) -> SocketAddr {
        self.addr
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The Unix socket path, when one was configured.
    pub fn unix_path(&self) -> Option<&std::path::Path> {
        self.unix.as_deref()
    }

    /// The UDIDs of the simulated devices, in configuration order.
    pub fn udids(&self) -> Vec<String> {
        self.devices.iter().map(|d| d.udid().to_string()).collect()
    }

    /// The handle of the device with `udid`.
    pub fn device(&self, udid: &str) -> Option<DeviceHandle> {
        self.devices
            .iter()
            .find(|d| d.udid().eq_ignore_ascii_case(udid))
            .cloned()
    }

    /// All device handles.
    pub fn devices(&self) -> &[DeviceHandle] {
        &self.devices
    }

    /// Stops listening, closes every connection and removes the Unix socket.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some(p) = &self.unix {
            let _ = std::fs::remove_file(p);
        }
    }
}
