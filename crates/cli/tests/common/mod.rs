//! Shared harness of the binary's end-to-end tests: simulated iPhones on loopback, started on
//! their own runtime, and shut down when the harness is dropped.

#![allow(dead_code)] // each test binary uses a different part

use std::path::Path;

use iosnap_simulator::{DeviceConfig, DeviceHandle, PhoneSpec, Simulator, SimulatorConfig};

/// Running simulated phones, and the address to give the binary (`USBMUXD_SOCKET_ADDRESS`).
pub struct Sim {
    rt: tokio::runtime::Runtime,
    sim: Option<Simulator>,
    /// `127.0.0.1:PORT` of the simulated usbmuxd.
    pub addr: String,
    /// UDIDs, in the order of the specs given to [`Sim::start`].
    pub udids: Vec<String>,
}

impl Sim {
    /// Starts one phone per spec, phone *i* keeping its state in `state/dev<i>`, with a cheap
    /// key derivation so encrypted backups stay fast.
    pub fn start(state: &Path, specs: Vec<PhoneSpec>) -> Sim {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let devices = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                let mut dev = DeviceConfig::new(state.join(format!("dev{i}")), spec);
                dev.kdf = Some((1000, 100));
                dev
            })
            .collect();
        let cfg = SimulatorConfig {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            unix: None,
            devices,
        };
        let sim = rt
            .block_on(Simulator::start(cfg))
            .expect("simulator starts");
        let addr = sim.addr().to_string();
        let udids = sim.udids();
        Sim {
            rt,
            sim: Some(sim),
            addr,
            udids,
        }
    }

    /// The phone `udid`.
    pub fn device(&self, udid: &str) -> DeviceHandle {
        self.sim
            .as_ref()
            .and_then(|s| s.device(udid))
            .expect("simulated device")
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.rt.block_on(sim.shutdown());
        }
    }
}

/// A small phone: `files` bulk files of about `bytes` in all, `apps` apps.
pub fn small_spec(seed: u64, files: u64, bytes: u64, apps: usize) -> PhoneSpec {
    PhoneSpec {
        seed,
        files,
        bytes,
        apps,
        ..PhoneSpec::default()
    }
}

/// The binary with a private library under `t` (`t/lib`, settings in `t/config`, hard links
/// forced so sharing is checkable), pointed at the simulated usbmuxd `mux` when given, and with
/// no passwords in its environment.
pub fn library_cmd(t: &Path, mux: Option<&str>) -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("iosnap"));
    c.env("IOSNAP_LIBRARY", t.join("lib"))
        .env("IOSNAP_CONFIG_DIR", t.join("config"))
        .env("IOSNAP_SHARING", "hard-link")
        .env_remove("IOSNAP_PASSWORD")
        .env_remove("IOSNAP_NEW_PASSWORD")
        // Never read or write the developer's real OS keyring (tests/keyring.rs brings its own).
        .env("IOSNAP_KEYRING", "off");
    if let Some(addr) = mux {
        c.env("USBMUXD_SOCKET_ADDRESS", addr);
    }
    c
}
