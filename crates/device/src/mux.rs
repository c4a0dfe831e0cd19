//! usbmuxd: where it is ([`MuxAddr`]), which phones it sees ([`list_devices`], [`watch_devices`]),
//! pair records, and turning a mux connection into a byte pipe to a port on the phone.
//!
//! The client is written here instead of using `idevice::usbmuxd` because (1) idevice's address
//! parser only accepts a literal `ip:port` or a bare path, while libusbmuxd users write
//! `UNIX:/path`, `host:port` and `[v6]:port` in `USBMUXD_SOCKET_ADDRESS`; (2) its packet reader
//! subtracts the header size from the announced length without checking it (a panic in debug
//! builds on a short length) and allocates any announced size; (3) "no usbmuxd" must become the
//! exact, helpful message of the CLI contract rather than a bare io error.

use std::fmt;
use std::io::Cursor;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::wire::Stream;

/// Environment variable honoured by libusbmuxd, pymobiledevice3 and idevice.
pub const ENV_VAR: &str = "USBMUXD_SOCKET_ADDRESS";
/// Where the system usbmuxd listens.
pub const DEFAULT_SOCKET: &str = "/var/run/usbmuxd";
/// The port lockdownd listens on inside the phone.
pub const LOCKDOWN_PORT: u16 = 62078;
/// Largest usbmuxd packet accepted (device lists and pair records are a few KiB).
const MAX_MUX_PACKET: u32 = 16 * 1024 * 1024;
/// How long to wait for a usbmuxd reply (libusbmuxd uses 5 s).
const MUX_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where usbmuxd (or a simulator speaking its protocol) listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuxAddr {
    /// A Unix socket path (the system daemon: `/var/run/usbmuxd`).
    Unix(PathBuf),
    /// A TCP endpoint; `host` is an IP literal or a name resolved at connect time.
    Tcp {
        /// Host name or IP literal (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
    },
}

impl Default for MuxAddr {
    fn default() -> Self {
        MuxAddr::Unix(PathBuf::from(DEFAULT_SOCKET))
    }
}

impl fmt::Display for MuxAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MuxAddr::Unix(p) => write!(f, "UNIX:{}", p.display()),
            MuxAddr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            MuxAddr::Tcp { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl FromStr for MuxAddr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        MuxAddr::parse(s)
    }
}

impl MuxAddr {
    /// The address from `USBMUXD_SOCKET_ADDRESS`, or the system socket when it is unset or empty.
    pub fn from_env() -> Result<MuxAddr> {
        match std::env::var(ENV_VAR) {
            Ok(v) if !v.trim().is_empty() => MuxAddr::parse(&v),
            _ => Ok(MuxAddr::default()),
        }
    }

    /// Parses the forms libusbmuxd and pymobiledevice3 accept: `UNIX:/path`, `/path` (or any
    /// value without a colon: a relative socket path), `host:port`, `[v6addr]:port`.
    pub fn parse(value: &str) -> Result<MuxAddr> {
        let bad = |reason: &str| Error::BadMuxAddress {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let v = value.trim();
        if v.is_empty() {
            return Err(bad("empty"));
        }
        if v.contains('\0') {
            return Err(bad("contains a NUL byte"));
        }
        if let Some(prefix) = v.get(..5)
            && prefix.eq_ignore_ascii_case("unix:")
        {
            let path = v.get(5..).unwrap_or_default();
            if path.is_empty() {
                return Err(bad("UNIX: needs a socket path after it"));
            }
            return Ok(MuxAddr::Unix(PathBuf::from(path)));
        }
        if v.starts_with('/') || !v.contains(':') {
            return Ok(MuxAddr::Unix(PathBuf::from(v)));
        }
        let (host, port) = if let Some(rest) = v.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("missing ']' after an IPv6 address"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| bad("expected :PORT after ]"))?;
            if h.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("not an IPv6 address inside [ ]"));
            }
            (h, port)
        } else {
            let (h, p) = v
                .rsplit_once(':')
                .ok_or_else(|| bad("expected HOST:PORT"))?;
            if h.contains(':') {
                return Err(bad("write IPv6 addresses as [addr]:port"));
            }
            (h, p)
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad("the port must be a number from 1 to 65535"))?;
        if port == 0 {
            return Err(bad("the port must be a number from 1 to 65535"));
        }
        Ok(MuxAddr::Tcp {
            host: host.to_string(),
            port,
        })
    }

    /// Opens a socket to usbmuxd.
    pub(crate) async fn open(&self) -> Result<Box<dyn Stream>> {
        match self {
            MuxAddr::Unix(path) => match tokio::net::UnixStream::connect(path).await {
                Ok(s) => Ok(Box::new(s)),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    Err(Error::NoUsbmuxd { path: path.clone() })
                }
                Err(e) => Err(Error::MuxUnreachable {
                    addr: self.to_string(),
                    source: e,
                }),
            },
            MuxAddr::Tcp { host, port } => {
                match tokio::net::TcpStream::connect((host.as_str(), *port)).await {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        Ok(Box::new(s))
                    }
                    Err(e) => Err(Error::MuxUnreachable {
                        addr: self.to_string(),
                        source: e,
                    }),
                }
            }
        }
    }
}

/// How a phone is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionType {
    /// Cable.
    Usb,
    /// Wi-Fi sync (usbmuxd's "Network" devices).
    Network,
    /// Something else usbmuxd reported.
    Other(String),
}

impl fmt::Display for ConnectionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionType::Usb => f.write_str("USB"),
            ConnectionType::Network => f.write_str("Network"),
            ConnectionType::Other(s) => f.write_str(s),
        }
    }
}

/// One phone as usbmuxd lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The UDID (usbmuxd's SerialNumber).
    pub udid: String,
    /// usbmuxd's handle for this attachment, needed for Connect.
    pub device_id: u64,
    /// Cable or network.
    pub connection: ConnectionType,
    /// USB product id when attached by cable.
    pub product_id: Option<u64>,
}

impl DeviceInfo {
    fn from_attached(msg: &plist::Dictionary) -> Option<DeviceInfo> {
        let props = msg.get("Properties")?.as_dictionary()?;
        let udid = props.get("SerialNumber")?.as_string()?.to_string();
        let device_id = props
            .get("DeviceID")
            .or_else(|| msg.get("DeviceID"))?
            .as_unsigned_integer()?;
        let connection = match props.get("ConnectionType").and_then(|v| v.as_string()) {
            Some("USB") => ConnectionType::Usb,
            Some("Network") => ConnectionType::Network,
            Some(other) => ConnectionType::Other(other.to_string()),
            None => ConnectionType::Other("unknown".into()),
        };
        let product_id = props.get("ProductID").and_then(|v| v.as_unsigned_integer());
        Some(DeviceInfo {
            udid,
            device_id,
            connection,
            product_id,
        })
    }
}

/// One usbmuxd connection speaking the plist protocol (version 1, message 8).
pub(crate) struct MuxConn {
    io: Box<dyn Stream>,
    tag: u32,
}

impl MuxConn {
    pub(crate) async fn open(addr: &MuxAddr) -> Result<MuxConn> {
        Ok(MuxConn {
            io: addr.open().await?,
            tag: 0,
        })
    }

    async fn send(&mut self, mut msg: plist::Dictionary) -> Result<()> {
        msg.insert("ClientVersionString".into(), "iosnap".into());
        msg.insert("ProgName".into(), "iosnap".into());
        msg.insert("kLibUSBMuxVersion".into(), 3u64.into());
        let mut body = Vec::new();
        plist::Value::Dictionary(msg)
            .to_writer_xml(&mut body)
            .map_err(|e| Error::MuxProtocol(e.to_string()))?;
        let total = u32::try_from(body.len() + 16)
            .map_err(|_| Error::MuxProtocol("request too large".into()))?;
        self.tag = self.tag.wrapping_add(1);
        let mut pkt = Vec::with_capacity(body.len() + 16);
        pkt.extend_from_slice(&total.to_le_bytes());
        pkt.extend_from_slice(&1u32.to_le_bytes());
        pkt.extend_from_slice(&8u32.to_le_bytes());
        pkt.extend_from_slice(&self.tag.to_le_bytes());
        pkt.extend_from_slice(&body);
        self.io
            .write_all(&pkt)
            .await
            .map_err(|e| Error::MuxProtocol(format!("write failed: {e}")))?;
        self.io
            .flush()
            .await
            .map_err(|e| Error::MuxProtocol(format!("write failed: {e}")))
    }

    /// Reads one packet (no timeout: used by Listen, which waits indefinitely).
    async fn recv_any(&mut self) -> Result<plist::Dictionary> {
        let mut hdr = [0u8; 16];
        self.io
            .read_exact(&mut hdr)
            .await
            .map_err(|e| Error::MuxProtocol(format!("connection closed: {e}")))?;
        let field = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(hdr.get(i..i + 4).unwrap_or(&[0, 0, 0, 0]));
            u32::from_le_bytes(b)
        };
        let len = field(0);
        let version = field(4);
        if !(16..=MAX_MUX_PACKET).contains(&len) {
            return Err(Error::MuxProtocol(format!("bad packet length {len}")));
        }
        let mut body = vec![0u8; (len - 16) as usize];
        self.io
            .read_exact(&mut body)
            .await
            .map_err(|e| Error::MuxProtocol(format!("connection closed: {e}")))?;
        if version != 1 {
            // A binary (version 0) result: 4-byte result code.
            if body.len() >= 4 {
                let mut b = [0u8; 4];
                b.copy_from_slice(body.get(..4).unwrap_or(&[0, 0, 0, 0]));
                let mut d = plist::Dictionary::new();
                d.insert("MessageType".into(), "Result".into());
                d.insert("Number".into(), u64::from(u32::from_le_bytes(b)).into());
                return Ok(d);
            }
            return Err(Error::MuxProtocol(format!(
                "unsupported protocol version {version}"
            )));
        }
        match plist::Value::from_reader(Cursor::new(body)) {
            Ok(plist::Value::Dictionary(d)) => Ok(d),
            Ok(_) => Err(Error::MuxProtocol("reply is not a dictionary".into())),
            Err(e) => Err(Error::MuxProtocol(format!("reply is not a plist: {e}"))),
        }
    }

    async fn request(&mut self, msg: plist::Dictionary) -> Result<plist::Dictionary> {
        self.send(msg).await?;
        match tokio::time::timeout(MUX_REPLY_TIMEOUT, self.recv_any()).await {
            Ok(r) => r,
            Err(_) => Err(Error::MuxProtocol(
                "usbmuxd did not answer within 10 s".into(),
            )),
        }
    }

    fn result_number(reply: &plist::Dictionary) -> Option<u64> {
        if reply.get("MessageType").and_then(|v| v.as_string()) == Some("Result") {
            reply.get("Number").and_then(|v| v.as_unsigned_integer())
        } else {
            None
        }
    }

    pub(crate) async fn list(&mut self) -> Result<Vec<DeviceInfo>> {
        let reply = self
            .request(dict(&[("MessageType", "ListDevices".into())]))
            .await?;
        if let Some(n) = Self::result_number(&reply) {
            return Err(Error::MuxRefused {
                request: "ListDevices".into(),
                code: n,
            });
        }
        let list = reply
            .get("DeviceList")
            .and_then(|v| v.as_array())
            .ok_or_else(|| Error::MuxProtocol("ListDevices reply has no DeviceList".into()))?;
        Ok(list
            .iter()
            .filter_map(|v| v.as_dictionary())
            .filter_map(DeviceInfo::from_attached)
            .collect())
    }

    /// `ReadPairRecord`: `Ok(None)` when usbmuxd has no record for this phone.
    pub(crate) async fn read_pair_record(&mut self, udid: &str) -> Result<Option<Vec<u8>>> {
        let reply = self
            .request(dict(&[
                ("MessageType", "ReadPairRecord".into()),
                ("PairRecordID", udid.into()),
            ]))
            .await?;
        match reply.get("PairRecordData") {
            Some(plist::Value::Data(d)) => Ok(Some(d.clone())),
            _ => match Self::result_number(&reply) {
                Some(_) => Ok(None),
                None => Err(Error::MuxProtocol(
                    "ReadPairRecord reply has neither PairRecordData nor a result".into(),
                )),
            },
        }
    }

    pub(crate) async fn read_buid(&mut self) -> Result<String> {
        let reply = self
            .request(dict(&[("MessageType", "ReadBUID".into())]))
            .await?;
        reply
            .get("BUID")
            .and_then(|v| v.as_string())
            .map(str::to_string)
            .ok_or_else(|| Error::MuxProtocol("ReadBUID reply has no BUID".into()))
    }

    pub(crate) async fn save_pair_record(
        &mut self,
        udid: &str,
        device_id: u64,
        record: Vec<u8>,
    ) -> Result<()> {
        let reply = self
            .request(dict(&[
                ("MessageType", "SavePairRecord".into()),
                ("PairRecordID", udid.into()),
                ("PairRecordData", plist::Value::Data(record)),
                ("DeviceID", device_id.into()),
            ]))
            .await?;
        match Self::result_number(&reply) {
            Some(0) => Ok(()),
            Some(n) => Err(Error::MuxRefused {
                request: "SavePairRecord".into(),
                code: n,
            }),
            None => Err(Error::MuxProtocol(
                "SavePairRecord reply has no result".into(),
            )),
        }
    }

    /// `DeletePairRecord`: `Ok(true)` when usbmuxd had a record and removed it, `Ok(false)`
    /// when it had none (usbmuxd answers result 2, ENOENT).
    pub(crate) async fn delete_pair_record(&mut self, udid: &str) -> Result<bool> {
        let reply = self
            .request(dict(&[
                ("MessageType", "DeletePairRecord".into()),
                ("PairRecordID", udid.into()),
            ]))
            .await?;
        match Self::result_number(&reply) {
            Some(0) => Ok(true),
            Some(2) => Ok(false),
            Some(n) => Err(Error::MuxRefused {
                request: "DeletePairRecord".into(),
                code: n,
            }),
            None => Err(Error::MuxProtocol(
                "DeletePairRecord reply has no result".into(),
            )),
        }
    }

    /// `Connect`: on success this connection becomes a raw pipe to `port` on the phone.
    pub(crate) async fn connect(mut self, device_id: u64, port: u16) -> Result<Box<dyn Stream>> {
        let reply = self
            .request(dict(&[
                ("MessageType", "Connect".into()),
                ("DeviceID", device_id.into()),
                // usbmuxd wants the port in network byte order stored as an integer.
                ("PortNumber", u64::from(port.to_be()).into()),
            ]))
            .await?;
        match Self::result_number(&reply) {
            Some(0) => Ok(self.io),
            Some(n) => Err(Error::MuxRefused {
                request: format!("Connect to port {port}"),
                code: n,
            }),
            None => Err(Error::MuxProtocol("Connect reply has no result".into())),
        }
    }

    async fn listen(&mut self) -> Result<()> {
        let reply = self
            .request(dict(&[("MessageType", "Listen".into())]))
            .await?;
        match Self::result_number(&reply) {
            Some(0) => Ok(()),
            Some(n) => Err(Error::MuxRefused {
                request: "Listen".into(),
                code: n,
            }),
            None => Err(Error::MuxProtocol("Listen reply has no result".into())),
        }
    }
}

fn dict(pairs: &[(&str, plist::Value)]) -> plist::Dictionary {
    let mut d = plist::Dictionary::new();
    for (k, v) in pairs {
        d.insert((*k).to_string(), v.clone());
    }
    d
}

/// Lists the phones usbmuxd currently sees, USB and network, with their connection type.
pub async fn list_devices(mux: &MuxAddr) -> Result<Vec<DeviceInfo>> {
    MuxConn::open(mux).await?.list().await
}

/// Finds one phone by UDID, preferring a USB attachment over a network one (faster, and what
/// the user plugged in).
pub async fn find_device(mux: &MuxAddr, udid: &str) -> Result<DeviceInfo> {
    let mut found: Vec<DeviceInfo> = list_devices(mux)
        .await?
        .into_iter()
        .filter(|d| d.udid.eq_ignore_ascii_case(udid))
        .collect();
    found.sort_by_key(|d| d.connection != ConnectionType::Usb);
    found
        .into_iter()
        .next()
        .ok_or_else(|| Error::DeviceNotFound {
            udid: udid.to_string(),
        })
}

/// A phone appearing or going away, as reported by usbmuxd's `Listen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A phone was attached (also sent for every phone already present when watching starts).
    Attached(DeviceInfo),
    /// A phone was detached; the UDID is known if its attach was seen on this stream.
    Detached {
        /// usbmuxd's handle.
        device_id: u64,
        /// The UDID, when this stream saw the matching attach.
        udid: Option<String>,
    },
}

/// Watches attach/detach events. The stream ends with an error item when usbmuxd goes away.
pub async fn watch_devices(
    mux: &MuxAddr,
) -> Result<impl futures::Stream<Item = Result<DeviceEvent>> + Send + 'static> {
    let mut conn = MuxConn::open(mux).await?;
    conn.listen().await?;
    let known: std::collections::HashMap<u64, String> = std::collections::HashMap::new();
    Ok(futures::stream::unfold(
        Some((conn, known)),
        |state| async move {
            let (mut conn, mut known) = state?;
            loop {
                let msg = match conn.recv_any().await {
                    Ok(m) => m,
                    Err(e) => return Some((Err(e), None)),
                };
                match msg.get("MessageType").and_then(|v| v.as_string()) {
                    Some("Attached") => {
                        if let Some(info) = DeviceInfo::from_attached(&msg) {
                            known.insert(info.device_id, info.udid.clone());
                            return Some((Ok(DeviceEvent::Attached(info)), Some((conn, known))));
                        }
                    }
                    Some("Detached") => {
                        if let Some(id) = msg.get("DeviceID").and_then(|v| v.as_unsigned_integer())
                        {
                            let udid = known.remove(&id);
                            return Some((
                                Ok(DeviceEvent::Detached {
                                    device_id: id,
                                    udid,
                                }),
                                Some((conn, known)),
                            ));
                        }
                    }
                    _ => {}
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_address_forms() {
        assert_eq!(
            MuxAddr::parse("UNIX:/run/usbmuxd").unwrap(),
            MuxAddr::Unix("/run/usbmuxd".into())
        );
        assert_eq!(
            MuxAddr::parse("unix:/tmp/s").unwrap(),
            MuxAddr::Unix("/tmp/s".into())
        );
        assert_eq!(
            MuxAddr::parse("/var/run/usbmuxd").unwrap(),
            MuxAddr::Unix("/var/run/usbmuxd".into())
        );
        assert_eq!(
            MuxAddr::parse("127.0.0.1:27015").unwrap(),
            MuxAddr::Tcp {
                host: "127.0.0.1".into(),
                port: 27015
            }
        );
        assert_eq!(
            MuxAddr::parse("localhost:5000").unwrap(),
            MuxAddr::Tcp {
                host: "localhost".into(),
                port: 5000
            }
        );
        assert_eq!(
            MuxAddr::parse("[::1]:27015").unwrap(),
            MuxAddr::Tcp {
                host: "::1".into(),
                port: 27015
            }
        );
        assert_eq!(
            MuxAddr::parse(" relative.sock ").unwrap(),
            MuxAddr::Unix("relative.sock".into())
        );
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "",
            "UNIX:",
            "host:",
            "host:0",
            "host:70000",
            ":27015",
            "::1:27015",
            "[::1]",
            "[nope]:1",
            "[::1]27015",
        ] {
            assert!(MuxAddr::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "UNIX:/var/run/usbmuxd",
            "127.0.0.1:27015",
            "[::1]:9",
            "example.org:1",
        ] {
            let a = MuxAddr::parse(s).unwrap();
            assert_eq!(MuxAddr::parse(&a.to_string()).unwrap(), a);
        }
    }

    #[tokio::test]
    async fn missing_socket_gives_the_contract_message() {
        let dir = tempfile::tempdir().unwrap();
        let addr = MuxAddr::Unix(dir.path().join("usbmuxd"));
        let err = list_devices(&addr).await.unwrap_err();
        assert!(matches!(err, Error::NoUsbmuxd { .. }));
        assert!(
            err.to_string()
                .starts_with("usbmuxd is not running (no socket at ")
        );
    }

    #[test]
    fn attached_message_is_decoded() {
        let mut props = plist::Dictionary::new();
        props.insert("SerialNumber".into(), "abc".into());
        props.insert("DeviceID".into(), 7u64.into());
        props.insert("ConnectionType".into(), "Network".into());
        let mut msg = plist::Dictionary::new();
        msg.insert("MessageType".into(), "Attached".into());
        msg.insert("Properties".into(), plist::Value::Dictionary(props));
        let d = DeviceInfo::from_attached(&msg).unwrap();
        assert_eq!(d.udid, "abc");
        assert_eq!(d.device_id, 7);
        assert_eq!(d.connection, ConnectionType::Network);
        msg.remove("Properties");
        assert!(DeviceInfo::from_attached(&msg).is_none());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = MuxAddr::parse(&s);
        }
    }
}
