//! Configuration of a simulator run: where to listen and which devices to simulate.
//!
//! The CLI (`iosnap simulate …`) fills these structs; tests build them directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::identity::IdentityOverrides;
use crate::phone::PhoneSpec;

/// Everything [`crate::Simulator::start`] needs.
#[derive(Debug, Clone, Default)]
pub struct SimulatorConfig {
    /// TCP address of the usbmuxd endpoint (port 0 = pick a free one; see [`crate::Simulator::addr`]).
    pub listen: Option<SocketAddr>,
    /// Optional Unix socket path of the usbmuxd endpoint (e.g. for `USBMUXD_SOCKET_ADDRESS=UNIX:/path`).
    pub unix: Option<PathBuf>,
    /// The simulated devices.
    pub devices: Vec<DeviceConfig>,
}

/// The options of `iosnap simulate`, in one plain struct so the CLI (clap) only copies flags:
///
/// `iosnap simulate --listen 127.0.0.1:PORT [--unix PATH] --state DIR [--seed N]
/// [--files N --bytes SIZE] [--churn P] [--devices N] [--fault SPEC]… [--unpaired]
/// [--pairing accept|ask=N|refuse] [--passcode-prompt SECS|forever]`
/// plus the environment variable `IOSNAP_SIM_BACKUP_PASSWORD` (backup password at first start).
#[derive(Debug, Clone, PartialEq)]
pub struct SimulateArgs {
    /// `--listen`: TCP address of the usbmuxd endpoint.
    pub listen: Option<SocketAddr>,
    /// `--unix`: Unix socket path of the usbmuxd endpoint.
    pub unix: Option<PathBuf>,
    /// `--state`: state root; device *i* lives in `DIR/dev<i>`.
    pub state: PathBuf,
    /// `--seed`: seed of device 0 (device *i* uses `seed + i`).
    pub seed: u64,
    /// `--files`: extra bulk files per phone (`None` = the phone crate's default).
    pub files: Option<u64>,
    /// `--bytes`: approximate bulk bytes per phone (`None` = default).
    pub bytes: Option<u64>,
    /// `--churn`: share of files changed after each backup (`None` = never).
    pub churn: Option<f64>,
    /// `--devices`: number of simulated devices (≥ 1).
    pub devices: usize,
    /// `--fault`: fault specs applied to every device (see [`FaultPlan::add`]).
    pub faults: Vec<String>,
    /// `--unpaired`: start every device unpaired (see [`DeviceConfig::unpaired`]).
    pub unpaired: bool,
    /// `--pairing`: how the phones answer a `Pair` request (see [`PairingMode::parse`]).
    pub pairing: Option<String>,
    /// `--passcode-prompt`: passcode prompt at each backup (see [`PasscodePrompt::parse`]).
    pub passcode_prompt: Option<String>,
}

impl Default for SimulateArgs {
    fn default() -> Self {
        SimulateArgs {
            listen: None,
            unix: None,
            state: PathBuf::from("iosnap-sim-state"),
            seed: 1,
            files: None,
            bytes: None,
            churn: None,
            devices: 1,
            faults: Vec::new(),
            unpaired: false,
            pairing: None,
            passcode_prompt: None,
        }
    }
}

impl SimulatorConfig {
    /// Builds the configuration `iosnap simulate` runs with.
    pub fn from_args(a: &SimulateArgs) -> Result<SimulatorConfig> {
        if a.devices == 0 {
            return Err(Error::Config("--devices must be at least 1".into()));
        }
        if let Some(c) = a.churn
            && !(0.0..=1.0).contains(&c)
        {
            return Err(Error::Config(format!("--churn {c} is outside 0..=1")));
        }
        let faults = FaultPlan::parse(a.faults.iter().map(String::as_str))?;
        let pairing = match &a.pairing {
            Some(p) => PairingMode::parse(p)?,
            None => PairingMode::default(),
        };
        let passcode_prompt = match &a.passcode_prompt {
            Some(p) => PasscodePrompt::parse(p)?,
            None => PasscodePrompt::default(),
        };
        let mut devices = Vec::with_capacity(a.devices);
        for i in 0..a.devices {
            let mut spec = PhoneSpec {
                seed: a.seed.wrapping_add(i as u64),
                ..PhoneSpec::default()
            };
            if let Some(f) = a.files {
                spec.files = f;
            }
            if let Some(b) = a.bytes {
                spec.bytes = b;
            }
            let mut d =
                DeviceConfig::new(a.state.join(format!("dev{i}")), spec).password_from_env();
            d.faults = faults.clone();
            d.churn_after_backup = a.churn;
            d.unpaired = a.unpaired;
            d.pairing = pairing;
            d.passcode_prompt = passcode_prompt;
            devices.push(d);
        }
        Ok(SimulatorConfig {
            listen: a.listen,
            unix: a.unix.clone(),
            devices,
        })
    }
}

/// How a device appears in usbmuxd `ListDevices`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionType {
    /// Attached by cable (`ConnectionType: "USB"`), what backup tools pick by default.
    #[default]
    Usb,
    /// Paired over Wi-Fi (`ConnectionType: "Network"`).
    Network,
}

/// One simulated device.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// Persistent state: identity, pair record, phone, last-backup records.
    pub state_dir: PathBuf,
    /// The synthetic phone to generate on first start (ignored when the state dir has one).
    pub spec: PhoneSpec,
    /// Identity values to force on first start.
    pub identity: IdentityOverrides,
    /// Backup password to set on first start (`None` = unencrypted backups). The CLI fills it
    /// from `IOSNAP_SIM_BACKUP_PASSWORD`; [`DeviceConfig::password_from_env`] does that.
    pub backup_password: Option<String>,
    /// Faults to inject.
    pub faults: FaultPlan,
    /// USB or network.
    pub connection: ConnectionType,
    /// Battery level (0–100) reported by lockdown.
    pub battery_level: u8,
    /// KDF cost of keybags generated for encrypted backups. `None` = real iOS values
    /// (10,000,000 PBKDF2-SHA256 rounds: seconds per unlock); tests use small values.
    pub kdf: Option<(u32, u32)>,
    /// After each successful backup, change this share (0.0–1.0) of the phone's files, so
    /// the next backup has something to do (`--churn P`).
    pub churn_after_backup: Option<f64>,
    /// Start with this computer unpaired (`--unpaired`): usbmuxd has no pair record for the
    /// device (`ReadPairRecord` fails) and the phone trusts no host, so a host must `Pair`
    /// (and `SavePairRecord`) first — the path a brand-new phone takes. Applied at every
    /// start; a pairing made while the simulator runs is kept in the state folder.
    pub unpaired: bool,
    /// How the phone answers lockdown `Pair` (the "Trust This Computer?" dialog).
    pub pairing: PairingMode,
    /// Whether the phone asks for its passcode before each backup (iOS ≥ 16.1 behaviour).
    pub passcode_prompt: PasscodePrompt,
}

/// The user's answer to "Trust This Computer?" when a host sends lockdown `Pair`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PairingMode {
    /// Trust at once (the user had the phone unlocked and tapped Trust immediately).
    #[default]
    Accept,
    /// Answer `PairingDialogResponsePending` to the first N `Pair` requests (the dialog is up,
    /// the user has not tapped yet), then trust.
    AskTrust(u32),
    /// The user taps "Don't Trust": every `Pair` gets `UserDeniedPairing`.
    Refuse,
}

impl PairingMode {
    /// Parses `accept`, `ask=N` (pending N times, then trust) or `refuse`.
    pub fn parse(s: &str) -> Result<PairingMode> {
        let s = s.trim();
        match s.split_once('=') {
            None if s == "accept" => Ok(PairingMode::Accept),
            None if s == "refuse" => Ok(PairingMode::Refuse),
            Some(("ask", n)) => n
                .trim()
                .parse::<u32>()
                .map(PairingMode::AskTrust)
                .map_err(|e| Error::Config(format!("--pairing {s}: {e}"))),
            _ => Err(Error::Config(format!(
                "unknown --pairing {s:?} (known: accept, ask=N, refuse)"
            ))),
        }
    }
}

/// The passcode prompt a phone shows before a backup (since iOS 16.1), announced to hosts by
/// `com.apple.LocalAuthentication.ui.presented` / `.dismissed` on notification_proxy. While
/// it is up the phone sends nothing on mobilebackup2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PasscodePrompt {
    /// Never ask (older iOS, or a phone that trusts this computer for backups).
    #[default]
    Off,
    /// Ask, and the "user" enters the passcode after this long.
    For(Duration),
    /// Ask, and wait until the passcode is entered through
    /// [`crate::DeviceHandle::dismiss_passcode_prompt`] — forever when nobody does, so a host
    /// must time out.
    UntilDismissed,
}

impl PasscodePrompt {
    /// Parses `off`, `forever` or a number of seconds (fractions allowed: `0.5`).
    pub fn parse(s: &str) -> Result<PasscodePrompt> {
        let s = s.trim();
        match s {
            "off" => Ok(PasscodePrompt::Off),
            "forever" => Ok(PasscodePrompt::UntilDismissed),
            _ => {
                let secs: f64 = s.parse().map_err(|_| {
                    Error::Config(format!(
                        "--passcode-prompt {s:?}: expected seconds, \"forever\" or \"off\""
                    ))
                })?;
                Duration::try_from_secs_f64(secs)
                    .map(PasscodePrompt::For)
                    .map_err(|e| Error::Config(format!("--passcode-prompt {s}: {e}")))
            }
        }
    }
}

impl DeviceConfig {
    /// A device with default phone, identity, 80 % battery, no faults, unencrypted.
    pub fn new(state_dir: impl Into<PathBuf>, spec: PhoneSpec) -> DeviceConfig {
        DeviceConfig {
            state_dir: state_dir.into(),
            spec,
            identity: IdentityOverrides::default(),
            backup_password: None,
            faults: FaultPlan::default(),
            connection: ConnectionType::Usb,
            battery_level: 80,
            kdf: None,
            churn_after_backup: None,
            unpaired: false,
            pairing: PairingMode::Accept,
            passcode_prompt: PasscodePrompt::Off,
        }
    }

    /// Sets [`DeviceConfig::backup_password`] from `IOSNAP_SIM_BACKUP_PASSWORD` when it is set.
    pub fn password_from_env(mut self) -> DeviceConfig {
        if let Ok(p) = std::env::var("IOSNAP_SIM_BACKUP_PASSWORD")
            && !p.is_empty()
        {
            self.backup_password = Some(p);
        }
        self
    }
}

/// Faults to inject, to test how hosts cope with broken devices.
///
/// **Protocol steps** are counted per mobilebackup2 connection: every DeviceLink message the
/// device sends is one step, starting at 1 with `DLMessageVersionExchange` (2 = DeviceReady,
/// 3 = the Hello response, then each DownloadFiles / UploadFiles / … message, and the final
/// ProcessMessage). A fault "at step N" happens instead of sending message N. Bytes are the
/// bytes the device writes on the mobilebackup2 connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Close the connection instead of sending step N.
    pub drop_at_step: Option<u32>,
    /// Close the connection once N bytes were written.
    pub drop_after_bytes: Option<u64>,
    /// Stop responding (keep the connection open) instead of sending step N.
    pub stall_at_step: Option<u32>,
    /// Send bytes that are not a plist instead of step N.
    pub garbage_at_step: Option<u32>,
    /// Refuse backups for lack of space on the host (final ProcessMessage, MBErrorDomain 105).
    pub disk_full: bool,
    /// Answer `FILE_LOCK EX` on the sync lock with OP_WOULD_BLOCK for the first N attempts
    /// (another "iTunes" holds it); `u32::MAX` = forever.
    pub hold_sync_lock: Option<u32>,
}

impl FaultPlan {
    /// Adds one `--fault` value: `drop-at-step=N`, `drop-after-bytes=N`, `stall-at-step=N`,
    /// `garbage-at-step=N`, `disk-full`, `hold-sync-lock[=N]` (no N = forever).
    pub fn add(&mut self, spec: &str) -> Result<()> {
        let (name, value) = match spec.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (spec.trim(), None),
        };
        let num = |v: Option<&str>| -> Result<u64> {
            v.ok_or_else(|| Error::Config(format!("fault {name} needs =N")))?
                .parse::<u64>()
                .map_err(|e| Error::Config(format!("fault {spec}: {e}")))
        };
        let small = |v: Option<&str>| -> Result<u32> {
            u32::try_from(num(v)?)
                .map_err(|_| Error::Config(format!("fault {spec}: number too large")))
        };
        match name {
            "drop-at-step" => self.drop_at_step = Some(small(value)?),
            "drop-after-bytes" => self.drop_after_bytes = Some(num(value)?),
            "stall-at-step" => self.stall_at_step = Some(small(value)?),
            "garbage-at-step" => self.garbage_at_step = Some(small(value)?),
            "disk-full" => self.disk_full = true,
            "hold-sync-lock" => {
                self.hold_sync_lock = Some(if value.is_some() {
                    small(value)?
                } else {
                    u32::MAX
                })
            }
            other => {
                return Err(Error::Config(format!(
                    "unknown fault {other:?} (known: drop-at-step=N, drop-after-bytes=N, stall-at-step=N, \
                     garbage-at-step=N, disk-full, hold-sync-lock[=N])"
                )));
            }
        }
        Ok(())
    }

    /// Parses a list of `--fault` values.
    pub fn parse<'a>(specs: impl IntoIterator<Item = &'a str>) -> Result<FaultPlan> {
        let mut plan = FaultPlan::default();
        for s in specs {
            plan.add(s)?;
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_map_to_devices() {
        let a = SimulateArgs {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            devices: 2,
            seed: 5,
            files: Some(3),
            churn: Some(0.1),
            faults: vec!["disk-full".into()],
            ..SimulateArgs::default()
        };
        let c = SimulatorConfig::from_args(&a).expect("config");
        assert_eq!(c.devices.len(), 2);
        assert_eq!(c.devices[1].spec.seed, 6);
        assert_eq!(c.devices[1].spec.files, 3);
        assert!(c.devices[0].faults.disk_full);
        assert!(c.devices[1].state_dir.ends_with("dev1"));
        assert!(
            SimulatorConfig::from_args(&SimulateArgs {
                devices: 0,
                ..a.clone()
            })
            .is_err()
        );
        assert!(
            SimulatorConfig::from_args(&SimulateArgs {
                churn: Some(2.0),
                ..a
            })
            .is_err()
        );
    }

    #[test]
    fn faults_parse() {
        let p = FaultPlan::parse([
            "drop-at-step=5",
            "disk-full",
            "hold-sync-lock",
            "drop-after-bytes=100",
        ])
        .expect("parse");
        assert_eq!(p.drop_at_step, Some(5));
        assert!(p.disk_full);
        assert_eq!(p.hold_sync_lock, Some(u32::MAX));
        assert_eq!(p.drop_after_bytes, Some(100));
        assert!(FaultPlan::parse(["explode"]).is_err());
        assert!(FaultPlan::parse(["stall-at-step"]).is_err());
        assert!(FaultPlan::parse(["stall-at-step=x"]).is_err());
    }

    #[test]
    fn pairing_and_prompt_knobs_parse() {
        assert_eq!(
            PairingMode::parse("accept").expect("p"),
            PairingMode::Accept
        );
        assert_eq!(
            PairingMode::parse("ask=3").expect("p"),
            PairingMode::AskTrust(3)
        );
        assert_eq!(
            PairingMode::parse("refuse").expect("p"),
            PairingMode::Refuse
        );
        assert!(PairingMode::parse("ask=x").is_err());
        assert!(PairingMode::parse("maybe").is_err());
        assert_eq!(
            PasscodePrompt::parse("off").expect("p"),
            PasscodePrompt::Off
        );
        assert_eq!(
            PasscodePrompt::parse("forever").expect("p"),
            PasscodePrompt::UntilDismissed
        );
        assert_eq!(
            PasscodePrompt::parse("1.5").expect("p"),
            PasscodePrompt::For(Duration::from_millis(1500))
        );
        assert!(PasscodePrompt::parse("-1").is_err());
        assert!(PasscodePrompt::parse("soon").is_err());
        let c = SimulatorConfig::from_args(&SimulateArgs {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            unpaired: true,
            pairing: Some("ask=2".into()),
            passcode_prompt: Some("forever".into()),
            ..SimulateArgs::default()
        })
        .expect("config");
        assert!(c.devices[0].unpaired);
        assert_eq!(c.devices[0].pairing, PairingMode::AskTrust(2));
        assert_eq!(c.devices[0].passcode_prompt, PasscodePrompt::UntilDismissed);
    }
}
