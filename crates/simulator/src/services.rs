//! The plaintext services lockdown can start: notification_proxy, AFC, installation_proxy,
//! springboardservices and mobilebackup2 (in [`crate::mb2`]).

use std::sync::Arc;

use iosnap_proto::afc::{self, AfcPacket, Opcode, status};
use iosnap_proto::plist_frame::PlistFormat;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::device::Device;
use crate::io::{BoxIo, dict, read_exact_or_eof, read_plist, write_plist};
use crate::{mb2, png};

/// The services the simulator offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    /// `com.apple.mobile.notification_proxy`.
    NotificationProxy,
    /// `com.apple.afc`.
    Afc,
    /// `com.apple.mobile.installation_proxy`.
    InstallationProxy,
    /// `com.apple.springboardservices`.
    SpringBoard,
    /// `com.apple.mobilebackup2`.
    MobileBackup2,
}

impl ServiceKind {
    /// Maps a lockdown service name.
    pub fn from_name(name: &str) -> Option<ServiceKind> {
        Some(match name {
            "com.apple.mobile.notification_proxy"
            | "com.apple.mobile.insecure_notification_proxy" => ServiceKind::NotificationProxy,
            "com.apple.afc" => ServiceKind::Afc,
            "com.apple.mobile.installation_proxy" => ServiceKind::InstallationProxy,
            "com.apple.springboardservices" => ServiceKind::SpringBoard,
            "com.apple.mobilebackup2" => ServiceKind::MobileBackup2,
            _ => return None,
        })
    }
}

/// Serves one service connection.
pub(crate) async fn serve(kind: ServiceKind, io: BoxIo, dev: Arc<Device>) -> std::io::Result<()> {
    match kind {
        ServiceKind::NotificationProxy => notification_proxy(io, dev).await,
        ServiceKind::Afc => afc_service(io, dev).await,
        ServiceKind::InstallationProxy => installation_proxy(io, dev).await,
        ServiceKind::SpringBoard => springboard(io).await,
        ServiceKind::MobileBackup2 => mb2::serve(io, dev).await,
    }
}

fn command(v: &plist::Value, key: &str) -> String {
    v.as_dictionary()
        .and_then(|d| d.get(key))
        .and_then(plist::Value::as_string)
        .unwrap_or_default()
        .to_string()
}

/// notification_proxy: records what hosts post, and relays what the phone posts
/// (`RelayNotification`) to connections that asked for the name with `ObserveNotification`.
async fn notification_proxy(io: BoxIo, dev: Arc<Device>) -> std::io::Result<()> {
    let (mut rd, wr) = tokio::io::split(io);
    let wr = tokio::sync::Mutex::new(wr);
    let observed = std::sync::Mutex::new(std::collections::BTreeSet::<String>::new());
    let mut notes = dev.subscribe_notes();
    let requests = async {
        while let Some((msg, _)) = read_plist(&mut rd).await? {
            match command(&msg, "Command").as_str() {
                "PostNotification" => {
                    let name = command(&msg, "Name");
                    let mut g = dev.inner();
                    let posted = &mut g.counters.notifications_posted;
                    if posted.len() >= crate::device::MAX_NOTIFICATIONS {
                        posted.remove(0);
                    }
                    posted.push(name);
                }
                "ObserveNotification" => {
                    let name = command(&msg, "Name");
                    observed
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(name);
                }
                "Shutdown" => {
                    let reply = dict([("Command", "ProxyDeath".into())]);
                    let mut w = wr.lock().await;
                    write_plist(&mut *w, &plist::Value::Dictionary(reply), PlistFormat::Xml)
                        .await?;
                    return Ok(());
                }
                _ => {}
            }
        }
        Ok(())
    };
    let relay = async {
        loop {
            let name = match notes.recv().await {
                Ok(n) => n,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return std::future::pending::<std::io::Result<()>>().await;
                }
            };
            let wanted = observed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(&name);
            if wanted {
                let msg = dict([
                    ("Command", "RelayNotification".into()),
                    ("Name", name.into()),
                ]);
                let mut w = wr.lock().await;
                write_plist(&mut *w, &plist::Value::Dictionary(msg), PlistFormat::Xml).await?;
            }
        }
    };
    tokio::select! {
        r = requests => r,
        r = relay => r,
    }
}

async fn installation_proxy(mut io: BoxIo, dev: Arc<Device>) -> std::io::Result<()> {
    while let Some((msg, _)) = read_plist(&mut io).await? {
        let cmd = command(&msg, "Command");
        if cmd != "Browse" {
            let reply = dict([
                ("Error", "UnknownCommand".into()),
                ("Status", "Complete".into()),
            ]);
            write_plist(&mut io, &plist::Value::Dictionary(reply), PlistFormat::Xml).await?;
            continue;
        }
        let apps: Vec<plist::Value> = dev
            .inner()
            .phone
            .apps()
            .iter()
            .map(|a| {
                let meta = dict([
                    ("itemName", a.name.clone().into()),
                    ("bundleShortVersionString", a.version.clone().into()),
                ]);
                let mut meta_bytes = Vec::new();
                // Serialising a small in-memory dictionary cannot fail; an empty blob is harmless.
                let _ = plist::Value::Dictionary(meta).to_writer_binary(&mut meta_bytes);
                plist::Value::Dictionary(dict([
                    ("CFBundleIdentifier", a.bundle_id.clone().into()),
                    ("CFBundleDisplayName", a.name.clone().into()),
                    ("CFBundleName", a.name.clone().into()),
                    ("CFBundleShortVersionString", a.version.clone().into()),
                    ("CFBundleVersion", a.version.clone().into()),
                    ("ApplicationType", "User".into()),
                    (
                        "ApplicationSINF",
                        plist::Value::Data(a.bundle_id.as_bytes().to_vec()),
                    ),
                    ("iTunesMetadata", plist::Value::Data(meta_bytes)),
                    (
                        "Container",
                        format!(
                            "/private/var/mobile/Containers/Data/Application/{}",
                            a.bundle_id
                        )
                        .into(),
                    ),
                ]))
            })
            .collect();
        let total = apps.len() as u64;
        let list = dict([
            ("Status", "BrowsingList".into()),
            ("CurrentIndex", plist::Value::Integer(0u64.into())),
            ("CurrentAmount", plist::Value::Integer(total.into())),
            ("Total", plist::Value::Integer(total.into())),
            ("CurrentList", plist::Value::Array(apps)),
        ]);
        write_plist(&mut io, &plist::Value::Dictionary(list), PlistFormat::Xml).await?;
        let done = dict([("Status", "Complete".into())]);
        write_plist(&mut io, &plist::Value::Dictionary(done), PlistFormat::Xml).await?;
    }
    Ok(())
}

async fn springboard(mut io: BoxIo) -> std::io::Result<()> {
    while let Some((msg, _)) = read_plist(&mut io).await? {
        let reply = match command(&msg, "command").as_str() {
            "getIconPNGData" => dict([("pngData", plist::Value::Data(png::icon()))]),
            _ => dict([("Error", "UnknownCommand".into())]),
        };
        write_plist(
            &mut io,
            &plist::Value::Dictionary(reply),
            PlistFormat::Binary,
        )
        .await?;
    }
    Ok(())
}

struct OpenFile {
    path: String,
    pos: usize,
}

async fn afc_service(mut io: BoxIo, dev: Arc<Device>) -> std::io::Result<()> {
    let me = dev.next_id();
    let result = afc_loop(&mut io, &dev, me).await;
    let mut g = dev.inner();
    if g.lock.holder == Some(me) {
        g.lock.holder = None;
    }
    result
}

async fn read_afc<S: tokio::io::AsyncRead + Unpin>(
    io: &mut S,
) -> std::io::Result<Option<AfcPacket>> {
    let mut head = [0u8; afc::HEADER_LEN];
    if !read_exact_or_eof(io, &mut head).await? {
        return Ok(None);
    }
    let entire = afc::u64_at(&head, 8).map_err(std::io::Error::other)?;
    if entire > afc::DEFAULT_MAX_LEN || entire < afc::HEADER_LEN as u64 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("AFC packet length {entire}"),
        ));
    }
    let mut buf = head.to_vec();
    buf.resize(entire as usize, 0);
    io.read_exact(&mut buf[afc::HEADER_LEN..]).await?;
    let (pkt, _) = afc::decode_packet(&buf, afc::DEFAULT_MAX_LEN)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    Ok(Some(pkt))
}

fn parent(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".into(),
        Some((p, _)) => p.to_string(),
    }
}

async fn afc_loop(io: &mut BoxIo, dev: &Arc<Device>, me: u64) -> std::io::Result<()> {
    let mut handles: std::collections::HashMap<u64, OpenFile> = std::collections::HashMap::new();
    let mut next_handle = 1u64;
    while let Some(pkt) = read_afc(io).await? {
        let body = pkt.body();
        let n = pkt.packet_num;
        let reply = match pkt.operation {
            Opcode::GetFileInfo => {
                let path = afc::path_from(&body).unwrap_or_default();
                let g = dev.inner();
                if path == afc::SYNC_LOCK_PATH {
                    AfcPacket::data(
                        n,
                        afc::encode_kv(&[("st_size", "0".into()), ("st_ifmt", "S_IFREG".into())]),
                    )
                } else if let Some(f) = g.afc_files.get(&path) {
                    AfcPacket::data(
                        n,
                        afc::encode_kv(&[
                            ("st_size", f.len().to_string()),
                            ("st_ifmt", "S_IFREG".into()),
                        ]),
                    )
                } else if g.afc_dirs.contains(&path) {
                    AfcPacket::data(
                        n,
                        afc::encode_kv(&[("st_size", "0".into()), ("st_ifmt", "S_IFDIR".into())]),
                    )
                } else {
                    AfcPacket::status(n, status::OBJECT_NOT_FOUND)
                }
            }
            Opcode::ReadDir => {
                let path = afc::path_from(&body).unwrap_or_default();
                let g = dev.inner();
                if g.afc_dirs.contains(&path) {
                    let mut out = b".\0..\0".to_vec();
                    for p in g.afc_files.keys().chain(g.afc_dirs.iter()) {
                        if p != &path && parent(p) == path {
                            out.extend_from_slice(
                                p.rsplit('/').next().unwrap_or_default().as_bytes(),
                            );
                            out.push(0);
                        }
                    }
                    AfcPacket::data(n, out)
                } else {
                    AfcPacket::status(n, status::OBJECT_NOT_FOUND)
                }
            }
            Opcode::MakeDir => {
                let path = afc::path_from(&body).unwrap_or_default();
                let mut g = dev.inner();
                let mut p = path.trim_end_matches('/').to_string();
                while !p.is_empty() && p != "/" {
                    g.afc_dirs.insert(p.clone());
                    p = parent(&p);
                }
                AfcPacket::status(n, status::SUCCESS)
            }
            Opcode::RemovePath => {
                let path = afc::path_from(&body).unwrap_or_default();
                let mut g = dev.inner();
                let found = g.afc_files.remove(&path).is_some() || g.afc_dirs.remove(&path);
                AfcPacket::status(
                    n,
                    if found {
                        status::SUCCESS
                    } else {
                        status::OBJECT_NOT_FOUND
                    },
                )
            }
            Opcode::FileOpen => {
                let mode = afc::u64_at(&body, 0).unwrap_or(0);
                let path = afc::path_from(body.get(8..).unwrap_or_default()).unwrap_or_default();
                let mut g = dev.inner();
                let exists = path == afc::SYNC_LOCK_PATH || g.afc_files.contains_key(&path);
                if (!exists && mode == afc::mode::RDONLY) || !g.afc_dirs.contains(&parent(&path)) {
                    AfcPacket::status(n, status::OBJECT_NOT_FOUND)
                } else {
                    if path != afc::SYNC_LOCK_PATH && (mode == afc::mode::WR || !exists) {
                        g.afc_files.insert(path.clone(), Vec::new());
                    }
                    let h = next_handle;
                    next_handle += 1;
                    handles.insert(h, OpenFile { path, pos: 0 });
                    AfcPacket {
                        packet_num: n,
                        operation: Opcode::FileOpenRes,
                        header_data: h.to_le_bytes().to_vec(),
                        payload: Vec::new(),
                    }
                }
            }
            Opcode::FileWrite => {
                let h = afc::u64_at(&body, 0).unwrap_or(0);
                match handles.get_mut(&h) {
                    Some(f) => {
                        let data = body.get(8..).unwrap_or_default();
                        let mut g = dev.inner();
                        if let Some(buf) = g.afc_files.get_mut(&f.path) {
                            let end = f.pos + data.len();
                            if buf.len() < end {
                                buf.resize(end, 0);
                            }
                            buf[f.pos..end].copy_from_slice(data);
                        }
                        f.pos += data.len();
                        AfcPacket::status(n, status::SUCCESS)
                    }
                    None => AfcPacket::status(n, status::INVALID_ARG),
                }
            }
            Opcode::FileRead => {
                let h = afc::u64_at(&body, 0).unwrap_or(0);
                let want = afc::u64_at(&body, 8).unwrap_or(0).min(1 << 20) as usize;
                match handles.get_mut(&h) {
                    Some(f) => {
                        let g = dev.inner();
                        let data = g.afc_files.get(&f.path).map(|b| {
                            let start = f.pos.min(b.len());
                            b[start..(start + want).min(b.len())].to_vec()
                        });
                        let data = data.unwrap_or_default();
                        f.pos += data.len();
                        AfcPacket::data(n, data)
                    }
                    None => AfcPacket::status(n, status::INVALID_ARG),
                }
            }
            Opcode::FileClose => {
                let h = afc::u64_at(&body, 0).unwrap_or(0);
                handles.remove(&h);
                AfcPacket::status(n, status::SUCCESS)
            }
            Opcode::FileLock => {
                let h = afc::u64_at(&body, 0).unwrap_or(0);
                let op = afc::u64_at(&body, 8).unwrap_or(0);
                if !handles.contains_key(&h) {
                    AfcPacket::status(n, status::INVALID_ARG)
                } else {
                    let mut g = dev.inner();
                    let code = match op {
                        afc::lock::EX | afc::lock::SH => {
                            if g.lock.refusals_left > 0 {
                                if g.lock.refusals_left != u32::MAX {
                                    g.lock.refusals_left -= 1;
                                }
                                status::OP_WOULD_BLOCK
                            } else if g.lock.holder.is_some_and(|o| o != me) {
                                status::OP_WOULD_BLOCK
                            } else {
                                g.lock.holder = Some(me);
                                status::SUCCESS
                            }
                        }
                        afc::lock::UN => {
                            if g.lock.holder == Some(me) {
                                g.lock.holder = None;
                            }
                            status::SUCCESS
                        }
                        _ => status::INVALID_ARG,
                    };
                    AfcPacket::status(n, code)
                }
            }
            Opcode::GetDeviceInfo => AfcPacket::data(
                n,
                afc::encode_kv(&[
                    ("Model", dev.identity.product_type.clone()),
                    ("FSTotalBytes", "128000000000".into()),
                ]),
            ),
            _ => AfcPacket::status(n, status::OP_NOT_SUPPORTED),
        };
        let bytes = reply.encode().map_err(std::io::Error::other)?;
        io.write_all(&bytes).await?;
        io.flush().await?;
    }
    Ok(())
}
