//! mobilebackup2, the device side ("BackupAgent2-lite").
//!
//! After the DeviceLink version exchange (400) and `Hello`, the host sends one request per
//! operation; the device drives the operation with DL messages and ends it with a
//! `DLMessageProcessMessage` carrying `ErrorCode` (never `DLMessageDisconnect`, which
//! pymobiledevice3 cannot receive; never `PurgeDiskSpace`, which Debian's idevicebackup2
//! does not answer).
//!
//! **Backup** (research notes protocol.md §3.1):
//! 1. `DownloadFiles [<udid>/Status.plist]`: if the host has it and its `UUID` names a
//!    backup this device remembers (same encryption, keybag still unlockable), the backup is
//!    incremental; `ForceFullBackup` or anything else makes it full;
//! 2. `GetFreeDiskSpace` (a [`FaultPlan::disk_full`](crate::FaultPlan) or too little space
//!    ends the backup with MBErrorDomain 105);
//! 3. `RemoveItems [<udid>/Snapshot]` (leftovers of an interrupted run), `CreateDirectory`
//!    for `<udid>/Snapshot` and each needed `xx` prefix;
//! 4. `UploadFiles` batches into `<udid>/Snapshot/xx/<fileID>`: all data files of a full
//!    backup, only changed or added ones of an incremental; content is streamed from the
//!    phone (encrypted on the fly when a backup password is set);
//! 5. `Manifest.db` (its rows written during step 4 on a low-priority thread, in a private temp
//!    dir, see the `manifest` module), `Manifest.plist`, `Status.plist`
//!    (`SnapshotState` finished) uploaded into the snapshot;
//! 6. `RemoveItems` of the old data (full: every `<udid>/xx`; incremental: removed files);
//! 7. `MoveItems` snapshot → final place, Status.plist last; `RemoveItems [<udid>/Snapshot]`;
//! 8. `ProcessMessage {ErrorCode: 0}`; the device records the new backup (UUID, per-file
//!    fingerprints and wrapped keys, keybag) in its state dir for the next incremental.
//!
//! **Restore** downloads Manifest.plist, Manifest.db and Status.plist, opens them with
//! `iosnap_format::Backup` (unlocking with the request's password), then downloads the data
//! files in batches, one temp file at a time, and writes them into the phone.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use iosnap_format::writer::{self, BackupKeys, DeviceInfo, Encryption, WriterOptions};
use iosnap_format::{Backup, EntryKind, KdfParams, Keybag, ManifestPlist, StatusPlist, WrappedKey};
use iosnap_proto::devicelink::{self, BlockCode, StatusResponse, names};
use iosnap_proto::errno;
use iosnap_proto::plist_frame::{self, PlistFormat};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::device::Device;
use crate::io::{BoxIo, dict, read_plist};
use crate::manifest::ManifestBuilder;
use crate::phone::PhoneFile;

/// Folder (in the state dir) with one record per backup the device made.
pub const RECORDS_DIR: &str = "backups";
/// How many backup records are kept.
const KEEP_RECORDS: usize = 8;
/// Files per UploadFiles message.
const UPLOAD_BATCH_FILES: usize = 200;
/// Plaintext bytes per UploadFiles message (soft limit).
const UPLOAD_BATCH_BYTES: u64 = 64 * 1024 * 1024;
/// Paths per MoveItems / RemoveItems / DownloadFiles message.
const PATH_BATCH: usize = 2000;
/// Outgoing bytes gathered before one socket write. A phone's USB link carries the 32 KiB
/// DeviceLink blocks back to back; writing each 5-byte block header and each block with its
/// own `send` made the simulator (and the host's reads) pay two system calls per block.
const OUT_BUFFER: usize = 256 * 1024;

/// MBErrorDomain code for "not enough free space on the host".
pub const ERR_NO_SPACE: u64 = 105;
/// Simulator code for a wrong backup password (ChangePassword, Restore).
pub const ERR_BAD_PASSWORD: u64 = 207;
/// Simulator code for a malformed or unsupported request.
pub const ERR_BAD_REQUEST: u64 = 1;
/// Simulator code for a backup folder that cannot be read (restore, info, list).
pub const ERR_BAD_BACKUP: u64 = 205;
/// Simulator code for an internal failure (state dir, manifest building).
pub const ERR_INTERNAL: u64 = 100;

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// An operation failed with an MBErrorDomain-style code the host should see.
struct OpError {
    code: u64,
    text: String,
}

impl OpError {
    fn new(code: u64, text: impl Into<String>) -> Self {
        OpError {
            code,
            text: text.into(),
        }
    }
}

enum Fail {
    /// The connection is unusable (I/O error or injected fault): stop.
    Io(std::io::Error),
    /// Report to the host and go on serving.
    Op(OpError),
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Self {
        Fail::Io(e)
    }
}

impl From<OpError> for Fail {
    fn from(e: OpError) -> Self {
        Fail::Op(e)
    }
}

type Res<T> = std::result::Result<T, Fail>;

struct Link {
    io: BoxIo,
    dev: Arc<Device>,
    step: u32,
    /// Bytes handed to [`Link::write`] so far (the `drop_after_bytes` fault counts these).
    written: u64,
    /// Bytes not sent yet; [`Link::flush`] sends them (always before waiting for the host).
    out: Vec<u8>,
}

/// Result of one file of a DownloadFiles answer.
enum Downloaded {
    Ok,
    Missing(String),
}

impl Link {
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(limit) = self.dev.faults.drop_after_bytes {
            let room = limit.saturating_sub(self.written);
            if (bytes.len() as u64) > room {
                let cut = usize::try_from(room)
                    .unwrap_or(bytes.len())
                    .min(bytes.len());
                self.out.extend_from_slice(&bytes[..cut]);
                self.flush().await?;
                self.written += cut as u64;
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "fault: drop after bytes",
                ));
            }
        }
        self.out.extend_from_slice(bytes);
        self.written += bytes.len() as u64;
        if self.out.len() >= OUT_BUFFER {
            self.io.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Sends everything buffered by [`Link::write`].
    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.io.write_all(&self.out).await?;
            self.out.clear();
        }
        self.io.flush().await
    }

    /// Sends the rest of `reader` as DeviceLink file-data blocks of at most
    /// [`devicelink::BLOCK_SIZE`] bytes, generated straight into the output buffer.
    async fn write_blocks(&mut self, reader: &mut (dyn Read + Send)) -> std::io::Result<()> {
        if self.dev.faults.drop_after_bytes.is_some() {
            // Byte-exact fault injection goes through `write`.
            let mut buf = vec![0u8; devicelink::BLOCK_SIZE];
            loop {
                let n = read_full(reader, &mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                self.write(
                    &devicelink::encode_block_header(BlockCode::FileData, n).map_err(other)?,
                )
                .await?;
                self.write(&buf[..n]).await?;
            }
        }
        loop {
            let head = self.out.len();
            self.out.resize(head + 5 + devicelink::BLOCK_SIZE, 0);
            let n = read_full(reader, &mut self.out[head + 5..])?;
            self.out.truncate(head + 5 + n);
            if n == 0 {
                self.out.truncate(head);
                return Ok(());
            }
            let header = devicelink::encode_block_header(BlockCode::FileData, n).map_err(other)?;
            self.out[head..head + 5].copy_from_slice(&header);
            self.written += (n + 5) as u64;
            if self.out.len() >= OUT_BUFFER {
                self.io.write_all(&self.out).await?;
                self.out.clear();
            }
        }
    }

    /// Sends one DeviceLink message: one protocol step (see [`crate::FaultPlan`]).
    async fn send(&mut self, msg: plist::Value) -> std::io::Result<()> {
        self.step += 1;
        let f = &self.dev.faults;
        if f.drop_at_step == Some(self.step) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "fault: drop at step",
            ));
        }
        if f.stall_at_step == Some(self.step) {
            std::future::pending::<()>().await;
        }
        let frame = if f.garbage_at_step == Some(self.step) {
            let mut g = 12u32.to_be_bytes().to_vec();
            g.extend_from_slice(b"\x00garbage\xff\xfe\x00!!");
            g
        } else {
            plist_frame::encode_frame(&msg, PlistFormat::Binary).map_err(other)?
        };
        self.write(&frame).await?;
        self.flush().await
    }

    async fn recv(&mut self) -> std::io::Result<Option<plist::Value>> {
        self.flush().await?;
        Ok(read_plist(&mut self.io).await?.map(|(v, _)| v))
    }

    async fn recv_status(&mut self) -> std::io::Result<StatusResponse> {
        match self.recv().await? {
            Some(v) => StatusResponse::from_value(&v).map_err(other),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "host closed the link",
            )),
        }
    }

    async fn request(
        &mut self,
        name: &str,
        args: Vec<plist::Value>,
    ) -> std::io::Result<StatusResponse> {
        self.send(devicelink::message(name, args)).await?;
        self.recv_status().await
    }

    async fn finish(
        &mut self,
        code: u64,
        text: Option<&str>,
        content: Option<plist::Value>,
    ) -> std::io::Result<()> {
        let mut d = dict([
            ("MessageName", "Response".into()),
            ("ErrorCode", plist::Value::Integer(code.into())),
        ]);
        if let Some(t) = text {
            d.insert("ErrorDescription".into(), t.into());
        }
        if let Some(c) = content {
            d.insert("Content".into(), c);
        }
        self.send(devicelink::message(
            names::PROCESS_MESSAGE,
            vec![plist::Value::Dictionary(d)],
        ))
        .await
    }

    async fn read_u32(&mut self) -> std::io::Result<u32> {
        let mut b = [0u8; 4];
        self.io.read_exact(&mut b).await?;
        Ok(u32::from_be_bytes(b))
    }

    /// DownloadFiles: asks the host for `paths`; each file's bytes go to `sink(path)` (None =
    /// discard). Returns per-path outcomes (in host order).
    async fn download(
        &mut self,
        paths: &[String],
        progress: f64,
        mut sink: impl FnMut(&str) -> Option<PathBuf>,
    ) -> std::io::Result<Vec<(String, Downloaded)>> {
        let list = paths
            .iter()
            .map(|p| plist::Value::String(p.clone()))
            .collect();
        let cb = dict([("DLDeviceIOCallbacks", plist::Value::Integer(0u64.into()))]);
        self.send(devicelink::message(
            names::DOWNLOAD_FILES,
            vec![
                plist::Value::Array(list),
                plist::Value::Dictionary(cb),
                plist::Value::Real(progress),
                plist::Value::Integer(0u64.into()),
            ],
        ))
        .await?;
        let mut out = Vec::new();
        loop {
            let len = self.read_u32().await?;
            if len == 0 {
                break;
            }
            if len > devicelink::MAX_PATH_LEN {
                return Err(other(format!("host sent a path of {len} bytes")));
            }
            let mut p = vec![0u8; len as usize];
            self.io.read_exact(&mut p).await?;
            let path = String::from_utf8(p).map_err(other)?;
            // Only what was asked for may land in a local file (the host is not trusted).
            if !paths.contains(&path) {
                return Err(other(format!(
                    "host sent {path:?}, which was not requested"
                )));
            }
            let mut file = match sink(&path) {
                Some(dst) => Some(std::fs::File::create(&dst)?),
                None => None,
            };
            let outcome = loop {
                let blen = self.read_u32().await?;
                if blen == 0 {
                    return Err(other("zero-length block"));
                }
                if blen - 1 > 16 * 1024 * 1024 {
                    return Err(other(format!("host sent a block of {blen} bytes")));
                }
                let mut code = [0u8; 1];
                self.io.read_exact(&mut code).await?;
                let mut data = vec![0u8; (blen - 1) as usize];
                self.io.read_exact(&mut data).await?;
                match BlockCode::from_byte(code[0]) {
                    Some(BlockCode::FileData) => {
                        if let Some(f) = file.as_mut() {
                            f.write_all(&data)?;
                        }
                    }
                    Some(BlockCode::Success) => break Downloaded::Ok,
                    Some(BlockCode::LocalError | BlockCode::RemoteError) => {
                        break Downloaded::Missing(String::from_utf8_lossy(&data).into_owned());
                    }
                    None => return Err(other(format!("unknown block code {:#x}", code[0]))),
                }
            };
            out.push((path, outcome));
        }
        let status = self.recv_status().await?;
        if status.code == devicelink::MULTI_STATUS
            && let Some(d) = status.extra.as_dictionary()
        {
            for (p, e) in d {
                let code = e
                    .as_dictionary()
                    .and_then(|x| x.get("DLFileErrorCode"))
                    .and_then(devicelink::code_from_plist);
                let text = format!("host error {}", code.unwrap_or(errno::OTHER));
                match out.iter_mut().find(|(q, _)| q == p) {
                    Some(slot) => slot.1 = Downloaded::Missing(text),
                    None => out.push((p.clone(), Downloaded::Missing(text))),
                }
            }
        }
        Ok(out)
    }

    async fn create_dir(&mut self, path: &str) -> Res<()> {
        let r = self
            .request(names::CREATE_DIRECTORY, vec![path.into()])
            .await?;
        if r.code != 0 && r.code != errno::EXISTS {
            return Err(OpError::new(
                ERR_INTERNAL,
                format!("host could not create {path}: {} {}", r.code, r.message),
            )
            .into());
        }
        Ok(())
    }

    async fn remove(&mut self, paths: Vec<String>, progress: f64) -> Res<()> {
        for chunk in paths.chunks(PATH_BATCH) {
            let list = chunk
                .iter()
                .map(|p| plist::Value::String(p.clone()))
                .collect();
            let r = self
                .request(
                    names::REMOVE_ITEMS,
                    vec![
                        plist::Value::Array(list),
                        plist::Value::Dictionary(Default::default()),
                        plist::Value::Real(progress),
                    ],
                )
                .await?;
            if r.code != 0 {
                return Err(OpError::new(
                    ERR_INTERNAL,
                    format!("host could not remove files: {} {}", r.code, r.message),
                )
                .into());
            }
        }
        Ok(())
    }

    async fn move_items(&mut self, moves: Vec<(String, String)>, progress: f64) -> Res<()> {
        for chunk in moves.chunks(PATH_BATCH) {
            let mut d = plist::Dictionary::new();
            for (s, t) in chunk {
                d.insert(s.clone(), plist::Value::String(t.clone()));
            }
            let r = self
                .request(
                    names::MOVE_ITEMS,
                    vec![
                        plist::Value::Dictionary(d),
                        plist::Value::Dictionary(Default::default()),
                        plist::Value::Real(progress),
                    ],
                )
                .await?;
            if r.code != 0 {
                return Err(OpError::new(
                    ERR_INTERNAL,
                    format!("host could not move files: {} {}", r.code, r.message),
                )
                .into());
            }
        }
        Ok(())
    }
}

/// One file to upload: where from, where to.
struct Upload {
    device_path: String,
    dest: String,
    source: UploadSource,
}

enum UploadSource {
    Phone(Box<dyn Read + Send>),
    File(PathBuf),
}

impl Link {
    /// One UploadFiles message with its raw stream; returns plaintext bytes sent.
    async fn upload(&mut self, files: Vec<Upload>, total: u64, progress: f64) -> Res<()> {
        self.send(devicelink::message(
            names::UPLOAD_FILES,
            vec![
                plist::Value::Dictionary(Default::default()),
                plist::Value::Real(progress),
                plist::Value::Integer(total.into()),
            ],
        ))
        .await?;
        for f in files {
            self.write(&devicelink::encode_path(&f.device_path).map_err(other)?)
                .await?;
            self.write(&devicelink::encode_path(&f.dest).map_err(other)?)
                .await?;
            let mut reader: Box<dyn Read + Send> = match f.source {
                UploadSource::Phone(r) => r,
                UploadSource::File(p) => Box::new(std::fs::File::open(&p)?),
            };
            self.write_blocks(&mut reader).await?;
            self.write(&devicelink::encode_block(BlockCode::Success, &[]).map_err(other)?)
                .await?;
        }
        self.write(&0u32.to_be_bytes()).await?;
        self.flush().await?;
        let r = self.recv_status().await?;
        if r.code != 0 {
            let code = if r.code == errno::NO_SPACE {
                ERR_NO_SPACE
            } else {
                ERR_INTERNAL
            };
            return Err(OpError::new(
                code,
                format!("host failed to store files: {} {}", r.code, r.message),
            )
            .into());
        }
        Ok(())
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Serves one mobilebackup2 connection.
pub(crate) async fn serve(io: BoxIo, dev: Arc<Device>) -> std::io::Result<()> {
    let mut link = Link {
        io,
        dev,
        step: 0,
        written: 0,
        out: Vec::with_capacity(OUT_BUFFER + 5 + devicelink::BLOCK_SIZE),
    };
    link.send(devicelink::message(
        names::VERSION_EXCHANGE,
        vec![
            plist::Value::Integer(devicelink::VERSION_MAJOR.into()),
            plist::Value::Integer(0u64.into()),
        ],
    ))
    .await?;
    let Some(answer) = link.recv().await? else {
        return Ok(());
    };
    let ok = answer
        .as_array()
        .and_then(|a| a.get(1))
        .and_then(plist::Value::as_string)
        == Some(names::VERSIONS_OK);
    if !ok {
        return Err(other("host refused DeviceLink version 400"));
    }
    link.send(devicelink::message(names::DEVICE_READY, Vec::new()))
        .await?;
    while let Some(msg) = link.recv().await? {
        match devicelink::message_name(&msg) {
            Some(names::PROCESS_MESSAGE) => {
                let req = msg
                    .as_array()
                    .and_then(|a| a.get(1))
                    .and_then(plist::Value::as_dictionary)
                    .cloned()
                    .unwrap_or_default();
                let name = req
                    .get("MessageName")
                    .and_then(plist::Value::as_string)
                    .unwrap_or_default()
                    .to_string();
                let result = match name.as_str() {
                    "Hello" => hello(&mut link, &req).await,
                    "Backup" => {
                        // iOS ≥ 16.1 may ask for the passcode first (device.rs, task B).
                        link.dev.passcode_gate().await;
                        backup(&mut link, &req).await
                    }
                    "Restore" => restore(&mut link, &req).await,
                    "Info" => info(&mut link, &req).await,
                    "List" => list(&mut link, &req).await,
                    "ChangePassword" => change_password(&mut link, &req).await,
                    other => Err(OpError::new(
                        ERR_BAD_REQUEST,
                        format!("unsupported request {other:?}"),
                    )
                    .into()),
                };
                match result {
                    Ok(()) => {}
                    Err(Fail::Io(e)) => return Err(e),
                    Err(Fail::Op(e)) => {
                        let text = format!("{} (MBErrorDomain/{})", e.text, e.code);
                        link.finish(e.code, Some(&text), None).await?;
                    }
                }
            }
            Some(names::DISCONNECT) => return Ok(()),
            _ => {}
        }
    }
    Ok(())
}

async fn hello(link: &mut Link, _req: &plist::Dictionary) -> Res<()> {
    let d = dict([
        ("MessageName", "Response".into()),
        ("ErrorCode", plist::Value::Integer(0u64.into())),
        ("ProtocolVersion", plist::Value::Real(2.1)),
    ]);
    link.send(devicelink::message(
        names::PROCESS_MESSAGE,
        vec![plist::Value::Dictionary(d)],
    ))
    .await?;
    Ok(())
}

/// The folder name of a request: `SourceIdentifier`, else `TargetIdentifier`, else the UDID.
fn source_dir(link: &Link, req: &plist::Dictionary) -> Res<String> {
    let s = req
        .get("SourceIdentifier")
        .or_else(|| req.get("TargetIdentifier"))
        .and_then(plist::Value::as_string)
        .unwrap_or(&link.dev.identity.udid)
        .to_string();
    if s.is_empty() || s.contains('/') || s.contains("..") || s.contains('\0') {
        return Err(OpError::new(ERR_BAD_REQUEST, format!("bad identifier {s:?}")).into());
    }
    Ok(s)
}

fn prefix(id: &str) -> &str {
    id.get(..2).unwrap_or("00")
}

// ---------------------------------------------------------------------------------------------
// Backup records

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileRecord {
    fingerprint: String,
    key: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
struct Record {
    encrypted: bool,
    keybag: Vec<u8>,
    files: BTreeMap<String, FileRecord>,
}

fn fingerprint(f: &PhoneFile) -> String {
    let m = &f.meta;
    format!(
        "{}/{}/{}/{}/{}/{}",
        f.kind.flags(),
        m.size,
        m.mtime,
        m.mode,
        m.inode,
        m.target.as_deref().unwrap_or("")
    )
}

fn record_path(dev: &Device, uuid: &str) -> Option<PathBuf> {
    if uuid.is_empty() || !uuid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return None;
    }
    Some(
        dev.state_dir
            .join(RECORDS_DIR)
            .join(format!("{uuid}.plist")),
    )
}

fn load_record(dev: &Device, uuid: &str) -> Option<Record> {
    let v = plist::Value::from_file(record_path(dev, uuid)?).ok()?;
    let d = v.as_dictionary()?;
    let encrypted = d.get("Encrypted")?.as_boolean()?;
    let keybag = d.get("Keybag")?.as_data()?.to_vec();
    let mut files = BTreeMap::new();
    for (id, e) in d.get("Files")?.as_dictionary()? {
        let e = e.as_dictionary()?;
        let fingerprint = e.get("F")?.as_string()?.to_string();
        let key = e
            .get("K")
            .and_then(plist::Value::as_data)
            .map(<[u8]>::to_vec);
        files.insert(id.clone(), FileRecord { fingerprint, key });
    }
    Some(Record {
        encrypted,
        keybag,
        files,
    })
}

/// Serializes a backup record into a temporary file of the records folder (the slow part,
/// run while the manifest is built); [`keep_record`] names it once the snapshot UUID is known.
fn write_record(state_dir: &Path, r: &Record) -> std::io::Result<PathBuf> {
    let dir = state_dir.join(RECORDS_DIR);
    std::fs::create_dir_all(&dir)?;
    let mut files = plist::Dictionary::new();
    for (id, f) in &r.files {
        let mut e = dict([("F", f.fingerprint.clone().into())]);
        if let Some(k) = &f.key {
            e.insert("K".into(), plist::Value::Data(k.clone()));
        }
        files.insert(id.clone(), plist::Value::Dictionary(e));
    }
    let d = dict([
        ("Encrypted", r.encrypted.into()),
        ("Keybag", plist::Value::Data(r.keybag.clone())),
        ("Files", plist::Value::Dictionary(files)),
    ]);
    let tmp = dir.join(format!(".{:016x}.tmp", rand::random::<u64>()));
    plist::Value::Dictionary(d)
        .to_file_binary(&tmp)
        .map_err(other)?;
    Ok(tmp)
}

/// Makes the record written to `tmp` the one of snapshot `uuid`, and keeps the newest
/// [`KEEP_RECORDS`] records only.
fn keep_record(dev: &Device, tmp: &Path, uuid: &str) -> std::io::Result<()> {
    let Some(path) = record_path(dev, uuid) else {
        let _ = std::fs::remove_file(tmp);
        return Err(other(format!("bad snapshot UUID {uuid:?}")));
    };
    std::fs::rename(tmp, &path)?;
    let dir = dev.state_dir.join(RECORDS_DIR);
    let mut all: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "plist"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    all.sort();
    while all.len() > KEEP_RECORDS {
        let (_, p) = all.remove(0);
        let _ = std::fs::remove_file(p);
    }
    // Records of backups that failed after theirs was written (one backup at a time runs).
    for e in std::fs::read_dir(&dir)?.filter_map(|e| e.ok()) {
        if e.path().extension().is_some_and(|x| x == "tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
}

fn kdf(dev: &Device) -> KdfParams {
    match dev.kdf {
        Some((dpic, iter)) => KdfParams { dpic, iter },
        None => KdfParams::default(),
    }
}

// ---------------------------------------------------------------------------------------------
// Backup

async fn backup(link: &mut Link, req: &plist::Dictionary) -> Res<()> {
    let udid = link.dev.identity.udid.clone();
    let target = req
        .get("TargetIdentifier")
        .and_then(plist::Value::as_string)
        .unwrap_or(&udid)
        .to_string();
    if !target.eq_ignore_ascii_case(&udid) {
        return Err(OpError::new(
            ERR_BAD_REQUEST,
            format!("backup target {target} is not this device ({udid})"),
        )
        .into());
    }
    let force_full = req
        .get("Options")
        .and_then(plist::Value::as_dictionary)
        .and_then(|o| o.get("ForceFullBackup"))
        .and_then(plist::Value::as_boolean)
        .unwrap_or(false);

    // 1. What does the host have?
    let tmp =
        tempfile::tempdir().map_err(|e| OpError::new(ERR_INTERNAL, format!("temp dir: {e}")))?;
    let status_local = tmp.path().join("Status.plist");
    let got = link
        .download(&[format!("{udid}/Status.plist")], 0.0, |_| {
            Some(status_local.clone())
        })
        .await?;
    let host_uuid = match got.first() {
        Some((_, Downloaded::Ok)) => std::fs::read(&status_local)
            .ok()
            .and_then(|b| StatusPlist::from_bytes(&b, &status_local).ok())
            .and_then(|s| s.uuid),
        _ => None,
    };
    let password = link.dev.inner().password.clone();
    let encryption = password
        .as_ref()
        .map(|p| Encryption::new(p.as_bytes(), kdf(&link.dev)));
    let base = if force_full {
        None
    } else {
        host_uuid.as_deref().and_then(|u| load_record(&link.dev, u))
    };
    let base = base.filter(|r| r.encrypted == encryption.is_some());
    // Keys: an incremental encrypted backup must keep the keybag its unchanged files use.
    let enc2 = encryption.clone();
    let base_kb = base.as_ref().map(|r| r.keybag.clone());
    let (keys, reuse) =
        tokio::task::spawn_blocking(move || -> Result<(BackupKeys, bool), String> {
            if let (Some(enc), Some(kb)) = (enc2.as_ref(), base_kb)
                && let Ok(keybag) = Keybag::parse(&kb)
                && let Ok(class_keys) = keybag.unlock(&enc.password)
            {
                return Ok((
                    BackupKeys {
                        keybag,
                        class_keys,
                        encrypted: true,
                    },
                    true,
                ));
            }
            BackupKeys::generate(enc2.as_ref())
                .map(|k| (k, false))
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(other)?
        .map_err(|e| OpError::new(ERR_INTERNAL, format!("keybag: {e}")))?;
    let base = if encryption.is_some() && !reuse {
        None
    } else {
        base
    };
    let full = base.is_none();
    // iOS exports the keychain for this backup's keybag as the backup starts (MBKeychainPlugin).
    link.dev
        .inner()
        .phone
        .export_keychain(&keys)
        .map_err(|e| OpError::new(ERR_INTERNAL, e.to_string()))?;

    // 2. Space.
    let files: Vec<PhoneFile> = link.dev.inner().phone.files().cloned().collect();
    let needed: u64 = files
        .iter()
        .filter(|f| f.kind == EntryKind::File)
        .map(|f| f.meta.size + 16)
        .sum();
    let r = link.request(names::GET_FREE_DISK_SPACE, Vec::new()).await?;
    let free = r.extra.as_unsigned_integer().unwrap_or(u64::MAX);
    if link.dev.faults.disk_full || (r.code == 0 && free < needed) {
        return Err(OpError::new(
            ERR_NO_SPACE,
            format!("not enough free disk space on the host: {needed} bytes needed, {free} free"),
        )
        .into());
    }

    // 3. Snapshot folder.
    let snap = format!("{udid}/Snapshot");
    link.remove(vec![snap.clone()], 0.0).await?;
    link.create_dir(&snap).await?;

    // 4. Data files; their Manifest.db rows are written as each batch is done.
    let encoder = keys.encoder();
    let mut entries = Vec::with_capacity(files.len());
    // The plaintext database lives in the private temp dir (0700) until it is installed.
    let plain_db = tmp.path().join("Manifest.db.plain");
    let manifest = ManifestBuilder::start(plain_db.clone())
        .map_err(|e| OpError::new(ERR_INTERNAL, format!("manifest thread: {e}")))?;
    let mut rows_sent = 0usize;
    let mut record = Record {
        encrypted: keys.encrypted,
        keybag: keys.keybag.to_bytes(),
        files: BTreeMap::new(),
    };
    let mut uploaded_ids: Vec<String> = Vec::new();
    let mut made_prefixes: BTreeSet<String> = BTreeSet::new();
    let mut batch: Vec<Upload> = Vec::new();
    let mut batch_ids: Vec<(usize, Arc<std::sync::atomic::AtomicU64>)> = Vec::new();
    let mut batch_bytes = 0u64;
    let mut bytes_total = 0u64;
    let total_files = files.len().max(1) as f64;
    for (i, f) in files.iter().enumerate() {
        let entry_result = match f.kind {
            EntryKind::Directory => encoder.directory(&f.domain, &f.relative_path, f.meta.clone()),
            EntryKind::Symlink => {
                let target = f.meta.target.clone().unwrap_or_default();
                encoder.symlink(&f.domain, &f.relative_path, &target, f.meta.clone())
            }
            EntryKind::File => {
                let id = iosnap_format::file_id(&f.domain, &f.relative_path);
                let fp = fingerprint(f);
                let unchanged = base
                    .as_ref()
                    .and_then(|b| b.files.get(&id))
                    .filter(|r| r.fingerprint == fp)
                    .cloned();
                match unchanged {
                    Some(prev) => {
                        let mut e = encoder
                            .file(
                                &f.domain,
                                &f.relative_path,
                                f.meta.clone(),
                                std::io::empty(),
                            )
                            .map_err(|e| OpError::new(ERR_INTERNAL, e.to_string()))?
                            .0;
                        e.meta.size = f.meta.size;
                        e.meta.encryption_key =
                            prev.key.as_deref().and_then(WrappedKey::from_bytes);
                        record.files.insert(id, prev);
                        Ok(e)
                    }
                    None => {
                        let reader = link.dev.inner().phone.open(f).map_err(|e| {
                            OpError::new(
                                ERR_INTERNAL,
                                format!("{}/{}: {e}", f.domain, f.relative_path),
                            )
                        })?;
                        let (mut e, content) = encoder
                            .file(&f.domain, &f.relative_path, f.meta.clone(), reader)
                            .map_err(|e| OpError::new(ERR_INTERNAL, e.to_string()))?;
                        e.meta.size = f.meta.size;
                        record.files.insert(
                            id.clone(),
                            FileRecord {
                                fingerprint: fp,
                                key: e.meta.encryption_key.as_ref().map(WrappedKey::to_bytes),
                            },
                        );
                        let px = prefix(&id).to_string();
                        if made_prefixes.insert(px.clone()) {
                            link.create_dir(&format!("{snap}/{px}")).await?;
                        }
                        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
                        batch_ids.push((entries.len(), counter.clone()));
                        batch.push(Upload {
                            device_path: format!("{}/{}", f.domain, f.relative_path),
                            dest: format!("{snap}/{px}/{id}"),
                            source: UploadSource::Phone(Box::new(CountingContent {
                                inner: content,
                                count: counter,
                            })),
                        });
                        batch_bytes += f.meta.size;
                        uploaded_ids.push(id);
                        Ok(e)
                    }
                }
            }
            EntryKind::Other(_) => continue,
        };
        let e = entry_result.map_err(|e| OpError::new(ERR_INTERNAL, e.to_string()))?;
        entries.push(e);
        if batch.len() >= UPLOAD_BATCH_FILES || batch_bytes >= UPLOAD_BATCH_BYTES {
            let progress = 90.0 * (i as f64) / total_files;
            link.upload(std::mem::take(&mut batch), batch_bytes, progress)
                .await?;
            for (idx, c) in batch_ids.drain(..) {
                let n = c.load(std::sync::atomic::Ordering::Relaxed);
                bytes_total += n;
                if let Some(e) = entries.get_mut(idx) {
                    e.meta.size = n;
                }
            }
            batch_bytes = 0;
            // Every row so far is final now (sizes are known once a file is sent).
            manifest.add(entries.get(rows_sent..).unwrap_or_default().to_vec());
            rows_sent = entries.len();
        }
    }
    if !batch.is_empty() {
        link.upload(std::mem::take(&mut batch), batch_bytes, 90.0)
            .await?;
        for (idx, c) in batch_ids.drain(..) {
            let n = c.load(std::sync::atomic::Ordering::Relaxed);
            bytes_total += n;
            if let Some(e) = entries.get_mut(idx) {
                e.meta.size = n;
            }
        }
    }
    // The folders every row needs, then the rest of the rows.
    writer::complete_directories(&mut entries, now_secs());
    manifest.add(entries.get(rows_sent..).unwrap_or_default().to_vec());
    drop(entries);

    // 5. Manifest files, finished in a private temp dir; meanwhile the record of this backup is
    //    written on another thread (the host waits for both).
    let removed: Vec<String> = match &base {
        Some(b) => b
            .files
            .keys()
            .filter(|id| !record.files.contains_key(*id))
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    let state_dir = link.dev.state_dir.clone();
    let record_tmp = tokio::task::spawn_blocking(move || write_record(&state_dir, &record));
    let ident = link.dev.identity.clone();
    let apps: Vec<crate::phone::App> = link.dev.inner().phone.apps().to_vec();
    let mdir = tmp.path().join("manifest");
    let mdir2 = mdir.clone();
    let new_uuid = tokio::task::spawn_blocking(move || -> Result<String, String> {
        std::fs::create_dir_all(&mdir2).map_err(|e| e.to_string())?;
        manifest.finish()?;
        let opts = WriterOptions {
            encryption: None,
            device: DeviceInfo {
                device_name: ident.device_name.clone(),
                product_type: ident.product_type.clone(),
                product_version: ident.product_version.clone(),
                build_version: ident.build_version.clone(),
                serial_number: ident.serial_number.clone(),
                udid: ident.udid.clone(),
            },
            allow_non_empty: true,
            was_passcode_set: false,
            date: std::time::SystemTime::now(),
            installed_applications: apps.iter().map(|a| a.bundle_id.clone()).collect(),
        };
        writer::install_manifest_files(&mdir2, &plain_db, &keys, &opts)
            .map_err(|e| e.to_string())?;
        let sp = mdir2.join("Status.plist");
        let mut status = StatusPlist::read(&sp).map_err(|e| e.to_string())?;
        status.is_full_backup = Some(full);
        status.write(&sp).map_err(|e| e.to_string())?;
        let mp = mdir2.join("Manifest.plist");
        let mut manifest = ManifestPlist::read(&mp).map_err(|e| e.to_string())?;
        for a in &apps {
            let d = dict([
                ("CFBundleIdentifier", a.bundle_id.clone().into()),
                ("CFBundleVersion", a.version.clone().into()),
                ("ContainerContentClass", "Data/Application".into()),
            ]);
            manifest
                .applications
                .insert(a.bundle_id.clone(), plist::Value::Dictionary(d));
        }
        manifest.write(&mp).map_err(|e| e.to_string())?;
        status
            .uuid
            .ok_or_else(|| "Status.plist has no UUID".to_string())
    })
    .await
    .map_err(other)?
    .map_err(|e| OpError::new(ERR_INTERNAL, format!("building the manifest: {e}")))?;
    let meta_files: Vec<Upload> = ["Manifest.db", "Manifest.plist", "Status.plist"]
        .iter()
        .map(|n| Upload {
            device_path: (*n).to_string(),
            dest: format!("{snap}/{n}"),
            source: UploadSource::File(mdir.join(n)),
        })
        .collect();
    link.upload(meta_files, 0, 92.0).await?;

    // 6. Old data out.
    let mut gone: Vec<String> = if full {
        (0..=255u8).map(|b| format!("{udid}/{b:02x}")).collect()
    } else {
        removed
            .iter()
            .map(|id| format!("{udid}/{}/{id}", prefix(id)))
            .collect()
    };
    if full {
        gone.push(format!("{udid}/Manifest.mbdb"));
    }
    link.remove(gone, 94.0).await?;

    // 7. Snapshot into place.
    for px in &made_prefixes {
        link.create_dir(&format!("{udid}/{px}")).await?;
    }
    let mut moves: Vec<(String, String)> = uploaded_ids
        .iter()
        .map(|id| {
            (
                format!("{snap}/{}/{id}", prefix(id)),
                format!("{udid}/{}/{id}", prefix(id)),
            )
        })
        .collect();
    for n in ["Manifest.db", "Manifest.plist", "Status.plist"] {
        moves.push((format!("{snap}/{n}"), format!("{udid}/{n}")));
    }
    link.move_items(moves, 97.0).await?;
    link.remove(vec![snap], 99.0).await?;

    // 8. Remember and report.
    record_tmp
        .await
        .map_err(other)
        .and_then(|written| written)
        .and_then(|tmp| keep_record(&link.dev, &tmp, &new_uuid))
        .map_err(|e| OpError::new(ERR_INTERNAL, format!("saving the backup record: {e}")))?;
    {
        let mut g = link.dev.inner();
        g.counters.backups += 1;
        g.counters.last_backup_full = full;
        g.counters.files_uploaded_last_backup = uploaded_ids.len() as u64;
        g.counters.bytes_uploaded_last_backup = bytes_total;
        g.counters.files_removed_last_backup = removed.len() as u64;
    }
    link.finish(0, None, None).await?;
    if let Some(share) = link.dev.churn_after_backup {
        link.dev.inner().phone.churn(share).map_err(other)?;
        link.dev.save_phone()?;
    }
    Ok(())
}

/// Counts the plaintext bytes that went out (the entry's final `Size`).
struct CountingContent<R: Read> {
    inner: writer::EncodedContent<R>,
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for CountingContent<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .store(self.inner.plain_len(), std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Restore, Info, List, ChangePassword

/// Downloads the three metadata files of `<dir>` into `into`; missing ones are an error.
async fn fetch_metadata(link: &mut Link, dir: &str, into: &Path, names_wanted: &[&str]) -> Res<()> {
    let paths: Vec<String> = names_wanted.iter().map(|n| format!("{dir}/{n}")).collect();
    let got = link
        .download(&paths, 0.0, |p| {
            p.rsplit('/')
                .next()
                .filter(|n| names_wanted.contains(n))
                .map(|n| into.join(n))
        })
        .await?;
    for (p, r) in got {
        if let Downloaded::Missing(why) = r {
            return Err(OpError::new(ERR_BAD_BACKUP, format!("the host has no {p}: {why}")).into());
        }
    }
    Ok(())
}

fn open_backup(dir: &Path, password: Option<&str>) -> Res<Backup> {
    let mut b = Backup::open(dir)
        .map_err(|e| OpError::new(ERR_BAD_BACKUP, format!("cannot read the backup: {e}")))?;
    if b.is_encrypted() {
        let Some(p) = password else {
            return Err(OpError::new(
                ERR_BAD_PASSWORD,
                "the backup is encrypted and no password was given",
            )
            .into());
        };
        b.unlock(p.as_bytes()).map_err(|e| {
            OpError::new(ERR_BAD_PASSWORD, format!("cannot unlock the backup: {e}"))
        })?;
    }
    Ok(b)
}

async fn restore(link: &mut Link, req: &plist::Dictionary) -> Res<()> {
    let dir = source_dir(link, req)?;
    let opts = req
        .get("Options")
        .and_then(plist::Value::as_dictionary)
        .cloned()
        .unwrap_or_default();
    let flag = |k: &str| opts.get(k).and_then(plist::Value::as_boolean);
    let system = flag("RestoreSystemFiles").unwrap_or(false);
    let remove_others = flag("RemoveItemsNotRestored").unwrap_or(false);
    let password = opts
        .get("Password")
        .or_else(|| req.get("Password"))
        .and_then(plist::Value::as_string)
        .map(str::to_string);
    let tmp =
        tempfile::tempdir().map_err(|e| OpError::new(ERR_INTERNAL, format!("temp dir: {e}")))?;
    fetch_metadata(
        link,
        &dir,
        tmp.path(),
        &["Manifest.plist", "Manifest.db", "Status.plist"],
    )
    .await?;
    let tp = tmp.path().to_path_buf();
    let pw = password.clone();
    let (backup, entries) =
        tokio::task::spawn_blocking(move || -> Res<(Backup, Vec<iosnap_format::Entry>)> {
            let b = open_backup(&tp, pw.as_deref())?;
            let rows = b
                .entries()
                .map_err(|e| OpError::new(ERR_BAD_BACKUP, format!("reading Manifest.db: {e}")))?;
            Ok((b, rows.entries))
        })
        .await
        .map_err(other)??;
    let wanted = |domain: &str| system || domain.starts_with("AppDomain");
    let restore_entries: Vec<_> = entries.into_iter().filter(|e| wanted(&e.domain)).collect();
    let mut restored = 0u64;
    // Directories and symlinks first (metadata only), so files land in restored folders.
    {
        let mut g = link.dev.inner();
        for e in restore_entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::Directory | EntryKind::Symlink))
        {
            g.phone
                .set_file(
                    &e.domain,
                    &e.relative_path,
                    e.meta.clone(),
                    std::io::empty(),
                )
                .map_err(|x| {
                    OpError::new(
                        ERR_INTERNAL,
                        format!("writing {}/{}: {x}", e.domain, e.relative_path),
                    )
                })?;
        }
    }
    let files: Vec<&iosnap_format::Entry> = restore_entries
        .iter()
        .filter(|e| e.kind == EntryKind::File)
        .collect();
    let total = files.len().max(1) as f64;
    for (n, chunk) in files.chunks(64).enumerate() {
        let paths: Vec<String> = chunk
            .iter()
            .map(|e| format!("{dir}/{}/{}", prefix(&e.file_id), e.file_id))
            .collect();
        for e in chunk {
            let _ = std::fs::create_dir_all(tmp.path().join(prefix(&e.file_id)));
        }
        let tp = tmp.path().to_path_buf();
        let got = link
            .download(&paths, 100.0 * (n * 64) as f64 / total, |p| {
                let mut parts = p.rsplit('/');
                let id = parts.next()?;
                let px = parts.next()?;
                Some(tp.join(px).join(id))
            })
            .await?;
        let ok: BTreeSet<String> = got
            .into_iter()
            .filter(|(_, r)| matches!(r, Downloaded::Ok))
            .filter_map(|(p, _)| p.rsplit('/').next().map(str::to_string))
            .collect();
        for e in chunk {
            if !ok.contains(&e.file_id) {
                return Err(OpError::new(
                    ERR_BAD_BACKUP,
                    format!("the host could not send {}/{}", e.domain, e.relative_path),
                )
                .into());
            }
            let reader = backup.open_file(e).map_err(|x| {
                OpError::new(
                    ERR_BAD_BACKUP,
                    format!("{}/{}: {x}", e.domain, e.relative_path),
                )
            })?;
            link.dev
                .inner()
                .phone
                .set_file(&e.domain, &e.relative_path, e.meta.clone(), reader)
                .map_err(|x| {
                    OpError::new(
                        ERR_INTERNAL,
                        format!("writing {}/{}: {x}", e.domain, e.relative_path),
                    )
                })?;
            let _ = std::fs::remove_file(backup.data_path(e));
            restored += 1;
        }
    }
    if remove_others {
        let keep: BTreeSet<(String, String)> = restore_entries
            .iter()
            .map(|e| (e.domain.clone(), e.relative_path.clone()))
            .collect();
        let mut g = link.dev.inner();
        let doomed: Vec<(String, String)> = g
            .phone
            .files()
            .filter(|f| {
                f.kind == EntryKind::File
                    && wanted(&f.domain)
                    && !keep.contains(&(f.domain.clone(), f.relative_path.clone()))
            })
            .map(|f| (f.domain.clone(), f.relative_path.clone()))
            .collect();
        for (d, r) in doomed {
            g.phone.remove_file(&d, &r);
        }
    }
    link.dev.save_phone()?;
    {
        let mut g = link.dev.inner();
        g.counters.restores += 1;
        g.counters.files_restored_last_restore = restored;
    }
    link.finish(0, None, None).await?;
    Ok(())
}

async fn info(link: &mut Link, req: &plist::Dictionary) -> Res<()> {
    let dir = source_dir(link, req)?;
    let tmp =
        tempfile::tempdir().map_err(|e| OpError::new(ERR_INTERNAL, format!("temp dir: {e}")))?;
    fetch_metadata(link, &dir, tmp.path(), &["Info.plist"]).await?;
    let p = tmp.path().join("Info.plist");
    let v = plist::Value::from_file(&p)
        .map_err(|e| OpError::new(ERR_BAD_BACKUP, format!("Info.plist: {e}")))?;
    let mut text = Vec::new();
    v.to_writer_xml(&mut text).map_err(other)?;
    link.finish(
        0,
        None,
        Some(plist::Value::String(
            String::from_utf8_lossy(&text).into_owned(),
        )),
    )
    .await?;
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

async fn list(link: &mut Link, req: &plist::Dictionary) -> Res<()> {
    let dir = source_dir(link, req)?;
    let password = req
        .get("Password")
        .and_then(plist::Value::as_string)
        .map(str::to_string)
        .or_else(|| link.dev.inner().password.clone());
    let tmp =
        tempfile::tempdir().map_err(|e| OpError::new(ERR_INTERNAL, format!("temp dir: {e}")))?;
    fetch_metadata(
        link,
        &dir,
        tmp.path(),
        &["Manifest.plist", "Manifest.db", "Status.plist"],
    )
    .await?;
    let tp = tmp.path().to_path_buf();
    let csv = tokio::task::spawn_blocking(move || -> Res<String> {
        let b = open_backup(&tp, password.as_deref())?;
        let rows = b
            .entries()
            .map_err(|e| OpError::new(ERR_BAD_BACKUP, format!("reading Manifest.db: {e}")))?;
        let mut out = String::from("Domain,RelativePath,FileID,Kind,Size,Mode,MTime\n");
        for e in rows.entries {
            out.push_str(&format!(
                "{},{},{},{},{},{:o},{}\n",
                csv_field(&e.domain),
                csv_field(&e.relative_path),
                e.file_id,
                e.kind.name(),
                e.meta.size,
                e.meta.mode,
                e.meta.mtime
            ));
        }
        Ok(out)
    })
    .await
    .map_err(other)??;
    link.finish(0, None, Some(plist::Value::String(csv)))
        .await?;
    Ok(())
}

async fn change_password(link: &mut Link, req: &plist::Dictionary) -> Res<()> {
    let old = req
        .get("OldPassword")
        .and_then(plist::Value::as_string)
        .map(str::to_string);
    let new = req
        .get("NewPassword")
        .and_then(plist::Value::as_string)
        .map(str::to_string)
        .filter(|s| !s.is_empty());
    let current = link.dev.inner().password.clone();
    match (&current, &old) {
        (Some(cur), Some(o)) if cur == o => {}
        (Some(_), _) => {
            return Err(OpError::new(ERR_BAD_PASSWORD, "the old backup password is wrong").into());
        }
        (None, Some(_)) => {
            return Err(OpError::new(
                ERR_BAD_PASSWORD,
                "backups are not encrypted; there is no old password",
            )
            .into());
        }
        (None, None) => {
            if new.is_none() {
                return Err(OpError::new(
                    ERR_BAD_REQUEST,
                    "ChangePassword needs OldPassword or NewPassword",
                )
                .into());
            }
        }
    }
    link.dev
        .set_password(new)
        .map_err(|e| OpError::new(ERR_INTERNAL, format!("saving the password: {e}")))?;
    link.finish(0, None, None).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn prefixes_never_panic() {
        assert_eq!(prefix("3d0d7e5f"), "3d");
        assert_eq!(prefix("x"), "00");
    }
}
