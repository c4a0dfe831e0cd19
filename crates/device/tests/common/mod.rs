//! Shared helpers: an in-process simulator with a small phone and a temp state dir.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use iosnap_device::{DeviceSession, MuxAddr, SessionOptions};
use iosnap_simulator::{DeviceConfig, FaultPlan, PhoneSpec, Simulator, SimulatorConfig};

/// A small phone so the suite stays fast.
pub fn small_spec(seed: u64) -> PhoneSpec {
    PhoneSpec {
        seed,
        files: 12,
        bytes: 60_000,
        apps: 3,
        data: iosnap_phone::Levels {
            contacts: 5,
            messages: 20,
            calls: 5,
            notes: 3,
            events: 3,
            history_visits: 5,
            bookmarks: 3,
            photos: 3,
            voice_memos: 1,
            voicemails: 1,
            whatsapp_messages: 5,
        },
        ..PhoneSpec::default()
    }
}

pub fn device_config(state: &Path, seed: u64, faults: FaultPlan) -> DeviceConfig {
    let mut c = DeviceConfig::new(state, small_spec(seed));
    c.faults = faults;
    c.kdf = Some((1, 1));
    c
}

pub async fn start(devices: Vec<DeviceConfig>) -> (Simulator, MuxAddr) {
    let sim = Simulator::start(SimulatorConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        unix: None,
        devices,
    })
    .await
    .unwrap();
    let mux = MuxAddr::parse(&sim.addr().to_string()).unwrap();
    (sim, mux)
}

pub fn options(scratch: &Path) -> SessionOptions {
    SessionOptions {
        lockdown_dir: scratch.join("no-lockdown-dir"),
        allow_pairing: false,
        pair_wait: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(5),
        sync_lock_attempts: 5,
        sync_lock_interval: Duration::from_millis(10),
    }
}

pub async fn session(mux: &MuxAddr, udid: &str, scratch: &Path) -> DeviceSession {
    DeviceSession::connect_with(mux, udid, options(scratch))
        .await
        .unwrap()
}

/// Relative path → content of every file under `root` (the "hash the whole folder" check).
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                out.insert(p.strip_prefix(root).unwrap().join(""), Vec::new());
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    walk(root, root, &mut out);
    out
}
