//! Shared helpers of the simulator tests: start a simulator, speak raw usbmuxd/lockdown.
#![allow(dead_code, missing_docs)]

use std::path::Path;
use std::sync::Arc;

use iosnap_proto::plist_frame::{self, PlistFormat};
use iosnap_proto::usbmux;
use iosnap_simulator::{DeviceConfig, PhoneSpec, Simulator, SimulatorConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub fn small_spec(seed: u64) -> PhoneSpec {
    let data = iosnap_phone::Levels {
        contacts: 10,
        messages: 40,
        calls: 10,
        notes: 4,
        events: 5,
        history_visits: 20,
        bookmarks: 5,
        photos: 3,
        voice_memos: 1,
        voicemails: 1,
        whatsapp_messages: 20,
    };
    PhoneSpec {
        seed,
        files: 12,
        bytes: 120_000,
        apps: 3,
        data,
        ..PhoneSpec::default()
    }
}

/// Checks that the backup folder `dir` (one device's folder) opens with the format crate and
/// holds exactly the phone of `h`: every row, and every file's bytes.
pub fn assert_backup_matches(
    dir: &Path,
    h: &iosnap_simulator::DeviceHandle,
    password: Option<&str>,
) {
    use std::collections::BTreeMap;
    use std::io::Read;
    let mut b = iosnap_format::Backup::open(dir).expect("backup opens");
    assert_eq!(
        b.is_encrypted(),
        password.is_some(),
        "encryption state of {}",
        dir.display()
    );
    if let Some(p) = password {
        b.unlock(p.as_bytes()).expect("unlock");
    }
    assert!(
        b.status().is_some_and(|s| s.is_finished()),
        "Status.plist finished"
    );
    let rows = b.entries().expect("entries");
    assert!(
        rows.skipped.is_empty(),
        "unreadable rows: {:?}",
        rows.skipped
    );
    let by_key: BTreeMap<(String, String), iosnap_format::Entry> = rows
        .entries
        .into_iter()
        .map(|e| ((e.domain.clone(), e.relative_path.clone()), e))
        .collect();
    let mut checked = 0;
    h.with_phone(|phone| {
        let mut n = 0;
        for f in phone.files() {
            n += 1;
            let e = by_key
                .get(&(f.domain.clone(), f.relative_path.clone()))
                .unwrap_or_else(|| {
                    panic!("{}/{} missing from the backup", f.domain, f.relative_path)
                });
            assert_eq!(e.kind, f.kind, "{}/{}", f.domain, f.relative_path);
            if f.kind == iosnap_format::EntryKind::File {
                assert_eq!(
                    e.meta.size, f.meta.size,
                    "{}/{} size",
                    f.domain, f.relative_path
                );
                let mut got = Vec::new();
                b.open_file(e)
                    .expect("open")
                    .read_to_end(&mut got)
                    .expect("read");
                let want = phone.read(f).expect("phone read");
                assert!(
                    got == want,
                    "{}/{} content differs ({} vs {} bytes)",
                    f.domain,
                    f.relative_path,
                    got.len(),
                    want.len()
                );
                checked += 1;
            }
        }
        assert_eq!(n, by_key.len(), "backup rows vs phone rows");
    });
    assert!(checked > 0);
    // No stray data files (removed files must be gone after an incremental).
    let mut data_files = 0;
    for d in std::fs::read_dir(dir).expect("dir").flatten() {
        if d.file_type().expect("type").is_dir() {
            assert_ne!(d.file_name(), "Snapshot", "Snapshot folder left behind");
            data_files += std::fs::read_dir(d.path()).expect("sub").count();
        }
    }
    assert_eq!(data_files, checked, "data files on disk vs file rows");
}

/// Runs a peer tool with the simulator's usbmuxd address; returns (success, stdout+stderr).
pub fn run_peer(bin: &str, args: &[&str], mux: std::net::SocketAddr, cwd: &Path) -> (bool, String) {
    let out = std::process::Command::new(bin)
        .args(args)
        .env("USBMUXD_SOCKET_ADDRESS", mux.to_string())
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {bin}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Finds a peer binary on PATH; `None` means "skip" (IOSNAP_SKIP_PEERS=1), otherwise panics
/// with install instructions.
pub fn peer(bin: &str, install: &str) -> Option<String> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(bin))
        .find(|p| p.is_file());
    match found {
        Some(p) => Some(p.display().to_string()),
        None if skip_peers() => {
            eprintln!("skipping: {bin} not installed and IOSNAP_SKIP_PEERS=1");
            None
        }
        None => panic!(
            "{bin} is not installed: {install} (or set IOSNAP_SKIP_PEERS=1 to skip peer tests)"
        ),
    }
}

pub async fn start(state: &Path, n: usize) -> Simulator {
    let devices = (0..n).map(|i| {
        let mut d = DeviceConfig::new(state.join(format!("dev{i}")), small_spec(i as u64 + 1));
        d.kdf = Some((10, 10));
        d
    });
    start_with(devices.collect()).await
}

pub async fn start_with(devices: Vec<DeviceConfig>) -> Simulator {
    let cfg = SimulatorConfig {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        unix: None,
        devices,
    };
    Simulator::start(cfg).await.expect("simulator starts")
}

pub async fn mux_request(s: &mut TcpStream, tag: u32, msg: plist::Dictionary) -> plist::Dictionary {
    let pkt = usbmux::encode_plist_packet(tag, &plist::Value::Dictionary(msg)).expect("encode");
    s.write_all(&pkt).await.expect("write");
    let mut head = [0u8; 16];
    s.read_exact(&mut head).await.expect("read header");
    let h = usbmux::MuxHeader::decode(&head).expect("header");
    assert_eq!(h.tag, tag, "usbmuxd must echo the tag");
    let mut body = vec![0u8; h.payload_len(1 << 20).expect("len")];
    s.read_exact(&mut body).await.expect("read body");
    assert!(body.starts_with(b"<?xml"), "usbmuxd replies must be XML");
    plist::Value::from_reader_xml(&body[..])
        .expect("xml")
        .into_dictionary()
        .expect("dict")
}

pub fn d<const N: usize>(pairs: [(&str, plist::Value); N]) -> plist::Dictionary {
    let mut out = plist::Dictionary::new();
    for (k, v) in pairs {
        out.insert(k.into(), v);
    }
    out
}

pub async fn send_plist<S: tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    v: plist::Dictionary,
    fmt: PlistFormat,
) {
    let f = plist_frame::encode_frame(&plist::Value::Dictionary(v), fmt).expect("encode");
    s.write_all(&f).await.expect("write");
    s.flush().await.expect("flush");
}

pub async fn recv_plist<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> plist::Value {
    let mut p = [0u8; 4];
    s.read_exact(&mut p).await.expect("prefix");
    let mut b = vec![0u8; u32::from_be_bytes(p) as usize];
    s.read_exact(&mut b).await.expect("body");
    plist_frame::parse_plist(&b, "test").expect("plist")
}

/// Connects through the mux to `port` of device `id`.
pub async fn connect(addr: std::net::SocketAddr, id: u64, port: u16) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let r = mux_request(
        &mut s,
        9,
        d([
            ("MessageType", "Connect".into()),
            ("DeviceID", plist::Value::Integer(id.into())),
            (
                "PortNumber",
                plist::Value::Integer(u64::from(usbmux::port_to_wire(port)).into()),
            ),
        ]),
    )
    .await;
    assert_eq!(
        r.get("Number").and_then(plist::Value::as_unsigned_integer),
        Some(0),
        "{r:?}"
    );
    s
}

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Wraps `s` in a TLS client session that accepts any device certificate (as real hosts do).
pub async fn tls_client(s: TcpStream, tls12: bool) -> tokio_rustls::client::TlsStream<TcpStream> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        .with_no_client_auth();
    let conn = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    conn.connect(
        rustls::pki_types::ServerName::try_from("device").expect("name"),
        s,
    )
    .await
    .expect("TLS handshake")
}

/// The HostID in usbmuxd's pair record of device `id` (the phone only opens lockdown
/// sessions for hosts it trusts).
pub async fn host_id(addr: std::net::SocketAddr, id: u64) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let list = mux_request(&mut s, 1, d([("MessageType", "ListDevices".into())])).await;
    let udid = list
        .get("DeviceList")
        .and_then(plist::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(plist::Value::as_dictionary)
        .filter_map(|e| e.get("Properties").and_then(plist::Value::as_dictionary))
        .find(|p| {
            p.get("DeviceID")
                .and_then(plist::Value::as_unsigned_integer)
                == Some(id)
        })
        .and_then(|p| p.get("SerialNumber").and_then(plist::Value::as_string))
        .expect("device listed")
        .to_string();
    let r = mux_request(
        &mut s,
        2,
        d([
            ("MessageType", "ReadPairRecord".into()),
            ("PairRecordID", udid.into()),
        ]),
    )
    .await;
    let data = r
        .get("PairRecordData")
        .and_then(plist::Value::as_data)
        .expect("pair record");
    plist::Value::from_reader(std::io::Cursor::new(data))
        .expect("plist")
        .as_dictionary()
        .and_then(|rec| rec.get("HostID"))
        .and_then(plist::Value::as_string)
        .expect("HostID")
        .to_string()
}

/// Opens lockdown, starts a TLS session, returns the TLS stream.
pub async fn lockdown_session(
    addr: std::net::SocketAddr,
    id: u64,
    tls12: bool,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let host = host_id(addr, id).await;
    let mut s = connect(addr, id, 62078).await;
    send_plist(
        &mut s,
        d([
            ("Request", "StartSession".into()),
            ("HostID", host.into()),
            ("SystemBUID", "Y".into()),
        ]),
        PlistFormat::Xml,
    )
    .await;
    let r = recv_plist(&mut s).await.into_dictionary().expect("dict");
    assert_eq!(
        r.get("EnableSessionSSL").and_then(plist::Value::as_boolean),
        Some(true)
    );
    tls_client(s, tls12).await
}

/// Whether peer tests are skipped (IOSNAP_SKIP_PEERS=1).
pub fn skip_peers() -> bool {
    std::env::var("IOSNAP_SKIP_PEERS").is_ok_and(|v| v == "1")
}

/// Checks that phone `b` now holds every row of phone `a` (restore with `--system`): same
/// kind, same bytes for files, same target for symlinks.
pub fn assert_restored(a: &iosnap_simulator::DeviceHandle, b: &iosnap_simulator::DeviceHandle) {
    use iosnap_format::EntryKind;
    a.with_phone(|pa| {
        b.with_phone(|pb| {
            for f in pa.files() {
                let g = pb
                    .find(&f.domain, &f.relative_path)
                    .unwrap_or_else(|| panic!("{}/{} not restored", f.domain, f.relative_path));
                assert_eq!(g.kind, f.kind, "{}/{}", f.domain, f.relative_path);
                match f.kind {
                    EntryKind::File => assert!(
                        pb.read(g).expect("read b") == pa.read(f).expect("read a"),
                        "{}/{} differs",
                        f.domain,
                        f.relative_path
                    ),
                    EntryKind::Symlink => assert_eq!(
                        g.meta.target, f.meta.target,
                        "{}/{}",
                        f.domain, f.relative_path
                    ),
                    _ => {}
                }
            }
        })
    });
}
