//! The mobilebackup2 DeviceLink channel: version exchange, Hello, requests, and the message loop
//! in which the phone drives file transfers (protocol.md §1.3–1.10).
//!
//! Written here instead of using `idevice`'s `MobileBackup2Client::process_dl_loop` because:
//! its `BackupDelegate::create_file_write` hands back a plain `Write` with no commit step, so a
//! temp file cannot be renamed into place only when the phone says the file is complete (a
//! dropped connection and a finished file look the same); it deletes the destination before
//! writing; it silently strips `..`/absolute components instead of rejecting the path; it
//! allocates whatever block and message length the phone announces; and it answers every
//! failure with -1 instead of the errno→device-code table. Everything here is bounded and every
//! change goes through [`Txn`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result, link_error};
use crate::pipeline::{CHUNK, Pipeline};
use crate::store::{TMP_MARK, Txn};
use crate::wire::{self, FrameError, Stream};

/// DeviceLink raw block codes (§1.8).
const CODE_SUCCESS: u8 = 0x00;
const CODE_ERROR_LOCAL: u8 = 0x06;
const CODE_ERROR_REMOTE: u8 = 0x0b;
const CODE_FILE_DATA: u8 = 0x0c;
/// Longest file name accepted in an upload (LIMD's limit).
const MAX_NAME_LEN: u32 = 4096;
/// Longest error message block accepted.
const MAX_ERROR_LEN: u32 = 64 * 1024;
/// Block size used when sending files to the phone (Apple's DeviceLink buffer size).
const SEND_BLOCK: usize = 32 * 1024;
/// Read buffer of the DeviceLink socket. A backup is mostly small framing reads (4-byte
/// lengths, 1-byte codes, names) between 32 KiB data blocks; without a buffer each of them was
/// one `recvfrom` (18 per file). One large read now serves many of them.
const READ_BUFFER: usize = 256 * 1024;
/// Received file data is gathered into buffers of [`CHUNK`] bytes, each written with one
/// `write` by a writer thread ([`crate::pipeline`]); the phone sends 32 KiB blocks.
/// The placeholder DeviceLink uses for empty strings.
const EMPTY: &str = "___EmptyParameterString___";

/// Progress of an operation as the phone reports it plus what this host counted.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    /// Overall percentage the phone reported (0–100), if it has said anything yet.
    pub percent: Option<f64>,
    /// Bytes received from (backup) or sent to (restore) the phone so far.
    pub bytes: u64,
    /// Files received or sent so far.
    pub files: u64,
    /// Bytes the phone announced for the current upload batch (0 when unknown).
    pub batch_total_bytes: u64,
    /// The phone is showing its passcode prompt and waits for the user before it goes on
    /// (iOS ≥ 16.1, `com.apple.LocalAuthentication.ui.presented`); see [`crate::backup`].
    pub passcode_prompt: bool,
}

/// Counters of one DeviceLink run.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoopStats {
    pub files_received: u64,
    pub bytes_received: u64,
    pub files_sent: u64,
    pub bytes_sent: u64,
    pub remote_file_errors: u64,
}

/// errno → DeviceLink device error code (LIMD HEAD / PMD3 table, §1.9).
pub(crate) fn device_code(e: &std::io::Error) -> i64 {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => -6,
        AlreadyExists => -7,
        NotADirectory => -8,
        IsADirectory => -9,
        StorageFull => -15,
        _ => match e.raw_os_error() {
            Some(40) => -10, // ELOOP
            Some(5) => -11,  // EIO
            Some(28) => -15, // ENOSPC
            _ => -1,
        },
    }
}

fn io_of(err: &Error) -> Option<&std::io::Error> {
    match err {
        Error::Io { source, .. } => Some(source),
        _ => None,
    }
}

fn code_of(err: &Error) -> i64 {
    io_of(err).map(device_code).unwrap_or(-1)
}

/// A DeviceLink connection to mobilebackup2.
pub(crate) struct DlConn {
    io: tokio::io::BufReader<Box<dyn Stream>>,
    udid: String,
    idle: Duration,
    step: String,
    /// "The phone waits for its user" (passcode prompt up): the idle timeout is suspended
    /// while it is true, and restarts whenever it changes.
    hold: Option<tokio::sync::watch::Receiver<bool>>,
}

/// Whether an idle period that just expired is explained by the phone waiting for its user.
fn waiting_for_user(hold: &mut Option<tokio::sync::watch::Receiver<bool>>) -> bool {
    match hold {
        Some(rx) => {
            let changed = rx.has_changed().unwrap_or(false);
            *rx.borrow_and_update() || changed
        }
        None => false,
    }
}

impl DlConn {
    pub(crate) fn new(io: Box<dyn Stream>, udid: &str, idle: Duration) -> DlConn {
        DlConn {
            io: tokio::io::BufReader::with_capacity(READ_BUFFER, io),
            udid: udid.to_string(),
            idle,
            step: "mobilebackup2 handshake".into(),
            hold: None,
        }
    }

    /// Suspends the idle timeout while `hold` is true (the phone waits for its user).
    pub(crate) fn set_hold(&mut self, hold: tokio::sync::watch::Receiver<bool>) {
        self.hold = Some(hold);
    }

    fn frame_err(&self, e: FrameError) -> Error {
        match e {
            FrameError::Io(io) => link_error(&self.udid, &self.step, &io),
            other => Error::protocol(self.step.clone(), other.to_string()),
        }
    }

    fn timeout_err(&self) -> Error {
        Error::Timeout {
            udid: self.udid.clone(),
            during: self.step.clone(),
            secs: self.idle.as_secs(),
        }
    }

    async fn recv(&mut self) -> Result<Vec<plist::Value>> {
        let read = {
            let read = wire::read_plist(&mut self.io);
            tokio::pin!(read);
            loop {
                match tokio::time::timeout(self.idle, &mut read).await {
                    Ok(r) => break Some(r),
                    Err(_) if waiting_for_user(&mut self.hold) => continue,
                    Err(_) => break None,
                }
            }
        };
        let v = match read {
            Some(r) => r.map_err(|e| self.frame_err(e))?,
            None => return Err(self.timeout_err()),
        };
        match v {
            plist::Value::Array(a)
                if a.first()
                    .and_then(|v| v.as_string())
                    .is_some_and(|s| s.starts_with("DL")) =>
            {
                Ok(a)
            }
            _ => Err(Error::protocol(
                self.step.clone(),
                "expected a DeviceLink array starting with a DL* name",
            )),
        }
    }

    async fn send(&mut self, v: plist::Value) -> Result<()> {
        let r = wire::write_plist(&mut self.io, &v, true).await;
        r.map_err(|e| self.frame_err(e))
    }

    async fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        match tokio::time::timeout(self.idle, self.io.read_exact(buf)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(link_error(&self.udid, &self.step, &e)),
            Err(_) => Err(self.timeout_err()),
        }
    }

    async fn read_u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b).await?;
        Ok(u32::from_be_bytes(b))
    }

    async fn read_string(&mut self, len: u32) -> Result<String> {
        let mut b = vec![0u8; len as usize];
        self.read_exact(&mut b).await?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    async fn write_raw(&mut self, data: &[u8]) -> Result<()> {
        let r = self.io.write_all(data).await;
        r.map_err(|e| link_error(&self.udid, &self.step, &e))
    }

    /// DeviceLink version exchange (we answer 400 like Debian's LIMD and idevice) then the
    /// mobilebackup2 Hello with protocol versions 2.0 and 2.1.
    pub(crate) async fn handshake(&mut self) -> Result<f64> {
        self.step = "DeviceLink version exchange".into();
        let msg = self.recv().await?;
        if msg.first().and_then(|v| v.as_string()) != Some("DLMessageVersionExchange") {
            return Err(Error::protocol(
                self.step.clone(),
                "expected DLMessageVersionExchange",
            ));
        }
        let major = msg
            .get(1)
            .and_then(|v| v.as_unsigned_integer())
            .ok_or_else(|| {
                Error::protocol(
                    self.step.clone(),
                    "version exchange without a major version",
                )
            })?;
        if major > 400 {
            return Err(Error::protocol(
                self.step.clone(),
                format!("device speaks DeviceLink {major}, newer than the supported 400"),
            ));
        }
        self.send(plist::Value::Array(vec![
            "DLMessageVersionExchange".into(),
            "DLVersionsOk".into(),
            400u64.into(),
        ]))
        .await?;
        let ready = self.recv().await?;
        if ready.first().and_then(|v| v.as_string()) != Some("DLMessageDeviceReady") {
            return Err(Error::protocol(
                self.step.clone(),
                "expected DLMessageDeviceReady",
            ));
        }
        self.step = "mobilebackup2 Hello".into();
        let mut hello = plist::Dictionary::new();
        hello.insert(
            "SupportedProtocolVersions".into(),
            plist::Value::Array(vec![2.0f64.into(), 2.1f64.into()]),
        );
        self.send_process_message("Hello", hello).await?;
        let reply = self.recv().await?;
        let d = reply
            .get(1)
            .and_then(|v| v.as_dictionary())
            .filter(|_| {
                reply.first().and_then(|v| v.as_string()) == Some("DLMessageProcessMessage")
            })
            .ok_or_else(|| {
                Error::protocol(self.step.clone(), "Hello answer is not a ProcessMessage")
            })?;
        let code = d
            .get("ErrorCode")
            .and_then(|v| v.as_unsigned_integer())
            .unwrap_or(0);
        if code != 0 {
            return Err(Error::protocol(
                self.step.clone(),
                format!("device refused protocol versions 2.0/2.1 (ErrorCode {code})"),
            ));
        }
        d.get("ProtocolVersion")
            .and_then(|v| v.as_real())
            .ok_or_else(|| {
                Error::protocol(self.step.clone(), "Hello answer has no ProtocolVersion")
            })
    }

    /// Sends `["DLMessageProcessMessage", {MessageName: name, ...fields}]`.
    pub(crate) async fn send_process_message(
        &mut self,
        name: &str,
        mut fields: plist::Dictionary,
    ) -> Result<()> {
        fields.insert("MessageName".into(), name.into());
        self.send(plist::Value::Array(vec![
            "DLMessageProcessMessage".into(),
            plist::Value::Dictionary(fields),
        ]))
        .await
    }

    /// Tells the phone we are done (`DLMessageDisconnect`), best effort.
    pub(crate) async fn disconnect(&mut self) {
        let _ = self
            .send(plist::Value::Array(vec![
                "DLMessageDisconnect".into(),
                EMPTY.into(),
            ]))
            .await;
    }

    async fn status(&mut self, code: i64, msg: &str, extra: plist::Value) -> Result<()> {
        self.send(plist::Value::Array(vec![
            "DLMessageStatusResponse".into(),
            code.into(),
            if msg.is_empty() {
                EMPTY.into()
            } else {
                msg.into()
            },
            extra,
        ]))
        .await
    }

    /// Runs the message loop until the phone's final `DLMessageProcessMessage`, which is
    /// returned. Every file operation goes through `txn`; `progress` sees every change.
    /// Uploaded files are written by writer threads ([`crate::pipeline`]); when this returns
    /// (or is dropped) they have stopped and `txn` is back in place.
    pub(crate) async fn run_loop(
        &mut self,
        operation: &str,
        txn: &mut Txn,
        stats: &mut LoopStats,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<plist::Dictionary> {
        let mut pipe = Pipeline::lend(txn);
        let fin = self.messages(operation, &mut pipe, stats, progress).await?;
        pipe.finish().await?;
        Ok(fin)
    }

    async fn messages(
        &mut self,
        operation: &str,
        txn: &mut Pipeline<'_>,
        stats: &mut LoopStats,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<plist::Dictionary> {
        let mut prog = Progress::default();
        loop {
            self.step = format!("{operation} (waiting for the device)");
            let msg = self.recv().await?;
            let name = msg
                .first()
                .and_then(|v| v.as_string())
                .unwrap_or_default()
                .to_string();
            self.step = format!("{operation}: {name}");
            let pct_idx = match name.as_str() {
                "DLMessageUploadFiles" => Some(2),
                "DLMessageDownloadFiles"
                | "DLMessageMoveFiles"
                | "DLMessageMoveItems"
                | "DLMessageRemoveFiles"
                | "DLMessageRemoveItems" => Some(3),
                _ => None,
            };
            if let Some(p) = pct_idx.and_then(|i| msg.get(i)).and_then(|v| v.as_real())
                && (0.0..=100.0).contains(&p)
            {
                prog.percent = Some(p);
            }
            // Requests that look at or change paths see every earlier upload in place.
            if !matches!(
                name.as_str(),
                "DLMessageUploadFiles" | "DLMessageGetFreeDiskSpace"
            ) {
                txn.barrier().await?;
            }
            // Moves the phone asked for are applied before anything else it asks (see
            // `Txn::defer_moves`); one that fails now fails the operation.
            if !matches!(name.as_str(), "DLMessageMoveItems" | "DLMessageMoveFiles") {
                txn.with(|t| t.apply_deferred())?;
            }
            match name.as_str() {
                "DLMessageDownloadFiles" => {
                    self.download_files(&msg, txn, stats, &mut prog, progress)
                        .await?;
                }
                "DLMessageUploadFiles" => {
                    prog.batch_total_bytes = msg
                        .get(3)
                        .and_then(|v| v.as_unsigned_integer())
                        .unwrap_or(0);
                    self.upload_files(txn, stats, &mut prog, progress).await?;
                }
                "DLMessageGetFreeDiskSpace" => {
                    let free = free_space(txn.root());
                    self.status(0, "", free.into()).await?;
                }
                "DLContentsOfDirectory" => {
                    let listing = match msg.get(1).and_then(|v| v.as_string()) {
                        Some(rel) => match txn.with(|t| t.resolve(rel)) {
                            Ok(p) => list_dir(&p),
                            Err(e) => return Err(e),
                        },
                        None => plist::Dictionary::new(),
                    };
                    self.status(0, "", plist::Value::Dictionary(listing))
                        .await?;
                }
                "DLMessageCreateDirectory" => {
                    let rel = msg.get(1).and_then(|v| v.as_string()).ok_or_else(|| {
                        Error::protocol(self.step.clone(), "CreateDirectory without a path")
                    })?;
                    let path = txn.with(|t| t.resolve(rel))?;
                    match txn.with(|t| t.create_dir_all(&path)) {
                        Ok(()) => self.status(0, "", plist::Dictionary::new().into()).await?,
                        Err(e) => {
                            let code = code_of(&e);
                            self.status(code, &e.to_string(), plist::Dictionary::new().into())
                                .await?
                        }
                    }
                }
                "DLMessageMoveItems" | "DLMessageMoveFiles" => {
                    let map = msg.get(1).and_then(|v| v.as_dictionary()).ok_or_else(|| {
                        Error::protocol(self.step.clone(), "MoveItems without a dictionary")
                    })?;
                    let mut pairs = Vec::new();
                    for (from, to) in map {
                        let to = to.as_string().ok_or_else(|| {
                            Error::protocol(
                                self.step.clone(),
                                "MoveItems destination is not a string",
                            )
                        })?;
                        // A rename never follows its last components: only the folders on
                        // the way are checked here (`rename_many` opens them without links).
                        pairs.push(txn.with(|t| {
                            Ok::<_, Error>((t.resolve_name(from)?, t.resolve_name(to)?))
                        })?);
                    }
                    let result = txn.with(|t| t.defer_moves(&pairs));
                    self.reply_result(result).await?;
                    progress(prog);
                }
                "DLMessageRemoveItems" | "DLMessageRemoveFiles" => {
                    let items = msg.get(1).and_then(|v| v.as_array()).ok_or_else(|| {
                        Error::protocol(self.step.clone(), "RemoveItems without a list")
                    })?;
                    let mut paths = Vec::new();
                    for it in items {
                        let rel = it.as_string().ok_or_else(|| {
                            Error::protocol(self.step.clone(), "RemoveItems entry is not a string")
                        })?;
                        paths.push(txn.with(|t| t.resolve(rel))?);
                    }
                    let result = txn.with(|t| t.remove_many(&paths));
                    self.reply_result(result).await?;
                    progress(prog);
                }
                "DLMessageCopyItem" => {
                    let (src, dst) = match (
                        msg.get(1).and_then(|v| v.as_string()),
                        msg.get(2).and_then(|v| v.as_string()),
                    ) {
                        (Some(s), Some(d)) => {
                            txn.with(|t| Ok::<_, Error>((t.resolve(s)?, t.resolve(d)?)))?
                        }
                        _ => {
                            return Err(Error::protocol(
                                self.step.clone(),
                                "CopyItem needs two paths",
                            ));
                        }
                    };
                    let r = txn.with(|t| t.copy(&src, &dst));
                    self.reply_result(r).await?;
                }
                "DLMessageProcessMessage" => {
                    return msg
                        .get(1)
                        .and_then(|v| v.as_dictionary())
                        .cloned()
                        .ok_or_else(|| {
                            Error::protocol(
                                self.step.clone(),
                                "final ProcessMessage has no dictionary",
                            )
                        });
                }
                "DLMessageDisconnect" => {
                    return Err(Error::Disconnected {
                        udid: self.udid.clone(),
                        during: format!(
                            "{operation} (device sent DLMessageDisconnect before a result)"
                        ),
                    });
                }
                _ => {
                    // PurgeDiskSpace, AcquireLock, ... : not supported, as LIMD HEAD answers.
                    self.status(
                        -1,
                        "Operation not supported",
                        plist::Dictionary::new().into(),
                    )
                    .await?;
                }
            }
        }
    }

    async fn reply_result(&mut self, r: Result<()>) -> Result<()> {
        match r {
            Ok(()) => self.status(0, "", plist::Dictionary::new().into()).await,
            Err(e @ Error::UnsafePath { .. }) => Err(e),
            Err(e) => {
                let code = code_of(&e);
                self.status(code, &e.to_string(), plist::Dictionary::new().into())
                    .await
            }
        }
    }

    /// `DLMessageDownloadFiles`: stream each requested host file to the phone.
    async fn download_files(
        &mut self,
        msg: &[plist::Value],
        txn: &Pipeline<'_>,
        stats: &mut LoopStats,
        prog: &mut Progress,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<()> {
        let files: Vec<String> = msg
            .get(1)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_string().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut errors = plist::Dictionary::new();
        for rel in &files {
            let name = rel.as_bytes();
            let len = u32::try_from(name.len())
                .map_err(|_| Error::protocol(self.step.clone(), "requested path too long"))?;
            self.write_raw(&len.to_be_bytes()).await?;
            self.write_raw(name).await?;
            let failure = match txn.with(|t| t.resolve(rel)) {
                Err(e) => Some((-1i64, e.to_string())),
                Ok(path) => match tokio::fs::File::open(&path).await {
                    Err(e) => Some((device_code(&e), e.to_string())),
                    Ok(mut f) => {
                        let mut buf = vec![0u8; SEND_BLOCK];
                        let mut fail = None;
                        loop {
                            let n = match f.read(&mut buf).await {
                                Ok(0) => break,
                                Ok(n) => n,
                                Err(e) => {
                                    fail = Some((device_code(&e), e.to_string()));
                                    break;
                                }
                            };
                            let mut block = Vec::with_capacity(n + 5);
                            block.extend_from_slice(&((n as u32) + 1).to_be_bytes());
                            block.push(CODE_FILE_DATA);
                            block.extend_from_slice(buf.get(..n).unwrap_or_default());
                            self.write_raw(&block).await?;
                            stats.bytes_sent += n as u64;
                            prog.bytes = stats.bytes_sent;
                        }
                        fail
                    }
                },
            };
            match failure {
                None => {
                    self.write_raw(&[0, 0, 0, 1, CODE_SUCCESS]).await?;
                    stats.files_sent += 1;
                    prog.files = stats.files_sent;
                    progress(*prog);
                }
                Some((code, text)) => {
                    let t = text.as_bytes();
                    let mut block = Vec::with_capacity(t.len() + 5);
                    block.extend_from_slice(&((t.len() as u32) + 1).to_be_bytes());
                    block.push(CODE_ERROR_LOCAL);
                    block.extend_from_slice(t);
                    self.write_raw(&block).await?;
                    let mut e = plist::Dictionary::new();
                    e.insert("DLFileErrorCode".into(), code.into());
                    e.insert("DLFileErrorString".into(), text.into());
                    errors.insert(rel.clone(), plist::Value::Dictionary(e));
                }
            }
        }
        self.write_raw(&[0, 0, 0, 0]).await?;
        let _ = self.io.flush().await;
        if errors.is_empty() {
            self.status(0, "", plist::Dictionary::new().into()).await
        } else {
            self.status(-13, "Multi status", plist::Value::Dictionary(errors))
                .await
        }
    }

    /// `DLMessageUploadFiles`: receive files from the phone and hand them to the writer
    /// threads, each file in order; the writers create it (under its final name when new,
    /// else as a temp file renamed over the old one) and keep it only when the phone marks it
    /// complete. Answered once the stream is received (see [`crate::pipeline`]).
    async fn upload_files(
        &mut self,
        txn: &mut Pipeline<'_>,
        stats: &mut LoopStats,
        prog: &mut Progress,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<()> {
        loop {
            let dlen = self.read_u32().await?;
            if dlen == 0 {
                break;
            }
            if dlen > MAX_NAME_LEN {
                return Err(Error::protocol(
                    self.step.clone(),
                    format!("device path length {dlen}"),
                ));
            }
            let _device_path = self.read_string(dlen).await?;
            let flen = self.read_u32().await?;
            if flen == 0 {
                break;
            }
            if flen > MAX_NAME_LEN {
                return Err(Error::protocol(
                    self.step.clone(),
                    format!("file name length {flen}"),
                ));
            }
            let rel = self.read_string(flen).await?;
            txn.start_file(&rel)?;
            let mut chunk = txn.buffer().await?;
            let mut got_data = false;
            let outcome: std::result::Result<(), String> = loop {
                let blen = self.read_u32().await?;
                if blen == 0 {
                    break Ok(());
                }
                let mut code = [0u8; 1];
                self.read_exact(&mut code).await?;
                let mut remaining = u64::from(blen - 1);
                match code[0] {
                    CODE_FILE_DATA => {
                        while remaining > 0 {
                            if chunk.len() >= CHUNK {
                                let full = std::mem::replace(&mut chunk, txn.buffer().await?);
                                txn.send(Some(full), None).await?;
                            }
                            let room = CHUNK.saturating_sub(chunk.len()).max(1);
                            let take = remaining.min(room as u64) as usize;
                            self.read_into(chunk.data_mut(), take).await?;
                            remaining -= take as u64;
                            stats.bytes_received += take as u64;
                        }
                        got_data = true;
                        prog.bytes = stats.bytes_received;
                    }
                    CODE_SUCCESS => {
                        self.skip(remaining).await?;
                        break Ok(());
                    }
                    CODE_ERROR_REMOTE => {
                        if blen - 1 > MAX_ERROR_LEN {
                            return Err(Error::protocol(
                                self.step.clone(),
                                "oversized error block",
                            ));
                        }
                        let text = self.read_string(blen - 1).await?;
                        break Err(text);
                    }
                    other => {
                        return Err(Error::protocol(
                            self.step.clone(),
                            format!("unknown file block code {other:#04x} for {rel:?}"),
                        ));
                    }
                }
            };
            // LIMD: a remote-error terminator after data blocks is not an error.
            if outcome.is_ok() || got_data {
                txn.send(Some(chunk), Some(true)).await?;
                stats.files_received += 1;
                prog.files = stats.files_received;
                progress(*prog);
            } else {
                txn.send(Some(chunk), Some(false)).await?;
                stats.remote_file_errors += 1;
            }
        }
        self.status(0, "", plist::Dictionary::new().into()).await
    }

    /// Appends exactly `n` bytes from the phone to `buf` (no zero-filling first).
    async fn read_into(&mut self, buf: &mut Vec<u8>, n: usize) -> Result<()> {
        let target = buf.len() + n;
        buf.reserve(n);
        while buf.len() < target {
            let want = (target - buf.len()) as u64;
            let mut limited = (&mut self.io).take(want);
            match tokio::time::timeout(self.idle, limited.read_buf(buf)).await {
                Ok(Ok(0)) => {
                    let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
                    return Err(link_error(&self.udid, &self.step, &eof));
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(link_error(&self.udid, &self.step, &e)),
                Err(_) => return Err(self.timeout_err()),
            }
        }
        Ok(())
    }

    async fn skip(&mut self, mut n: u64) -> Result<()> {
        let mut b = [0u8; 4096];
        while n > 0 {
            let take = n.min(b.len() as u64) as usize;
            self.read_exact(b.get_mut(..take).unwrap_or_default())
                .await?;
            n -= take as u64;
        }
        Ok(())
    }
}

/// Free bytes for an unprivileged user on the volume holding `path` (nearest existing ancestor).
pub(crate) fn free_space(path: &Path) -> u64 {
    let mut p = Some(path);
    while let Some(dir) = p {
        if let Ok(s) = rustix::fs::statvfs(dir) {
            return s.f_bavail.saturating_mul(s.f_frsize);
        }
        p = dir.parent();
    }
    0
}

fn list_dir(dir: &Path) -> plist::Dictionary {
    let mut out = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_MARK) {
                continue;
            }
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            let kind = if m.is_dir() {
                "DLFileTypeDirectory"
            } else if m.is_file() {
                "DLFileTypeRegular"
            } else {
                "DLFileTypeUnknown"
            };
            let mut d = plist::Dictionary::new();
            d.insert("DLFileType".into(), kind.into());
            d.insert("DLFileSize".into(), m.len().into());
            let mtime = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            d.insert(
                "DLFileModificationDate".into(),
                plist::Value::Date(mtime.into()),
            );
            out.insert(name, plist::Value::Dictionary(d));
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};

    /// The phone end of a DeviceLink channel, scripted by the test.
    struct FakePhone {
        io: DuplexStream,
    }

    impl FakePhone {
        async fn send(&mut self, v: Vec<plist::Value>) {
            wire::write_plist(&mut self.io, &plist::Value::Array(v), true)
                .await
                .unwrap();
        }
        async fn recv(&mut self) -> Vec<plist::Value> {
            match wire::read_plist(&mut self.io).await.unwrap() {
                plist::Value::Array(a) => a,
                other => panic!("not an array: {other:?}"),
            }
        }
        async fn raw(&mut self, b: &[u8]) {
            self.io.write_all(b).await.unwrap();
        }
        async fn upload(&mut self, name: &str, data: &[u8]) {
            self.raw(&(10u32).to_be_bytes()).await;
            self.raw(b"HomeDomain").await;
            self.raw(&(name.len() as u32).to_be_bytes()).await;
            self.raw(name.as_bytes()).await;
            for chunk in data.chunks(7) {
                self.raw(&((chunk.len() as u32) + 1).to_be_bytes()).await;
                self.raw(&[CODE_FILE_DATA]).await;
                self.raw(chunk).await;
            }
            self.raw(&[0, 0, 0, 1, CODE_SUCCESS]).await;
        }
    }

    fn pair() -> (DlConn, FakePhone) {
        let (a, b) = tokio::io::duplex(1 << 20);
        (
            DlConn::new(Box::new(a), "U", Duration::from_secs(5)),
            FakePhone { io: b },
        )
    }

    fn s(x: &str) -> plist::Value {
        x.into()
    }

    async fn read_file_stream<R: AsyncRead + AsyncWrite + Unpin>(
        io: &mut R,
    ) -> (String, Vec<u8>, u8) {
        let mut l = [0u8; 4];
        io.read_exact(&mut l).await.unwrap();
        let mut name = vec![0u8; u32::from_be_bytes(l) as usize];
        io.read_exact(&mut name).await.unwrap();
        let mut data = Vec::new();
        loop {
            io.read_exact(&mut l).await.unwrap();
            let n = u32::from_be_bytes(l);
            let mut code = [0u8; 1];
            io.read_exact(&mut code).await.unwrap();
            let mut body = vec![0u8; (n - 1) as usize];
            io.read_exact(&mut body).await.unwrap();
            if code[0] == CODE_FILE_DATA {
                data.extend(body);
            } else {
                return (String::from_utf8(name).unwrap(), data, code[0]);
            }
        }
    }

    #[tokio::test]
    async fn handshake_and_full_backup_message_flow() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("bk");
        std::fs::create_dir_all(root.join("U")).unwrap();
        std::fs::write(root.join("U/Status.plist"), b"old").unwrap();
        let (mut conn, mut phone) = pair();
        let phone_task = tokio::spawn(async move {
            phone
                .send(vec![
                    s("DLMessageVersionExchange"),
                    400u64.into(),
                    0u64.into(),
                ])
                .await;
            let ok = phone.recv().await;
            assert_eq!(ok.get(1).and_then(|v| v.as_string()), Some("DLVersionsOk"));
            phone.send(vec![s("DLMessageDeviceReady")]).await;
            let hello = phone.recv().await;
            assert_eq!(hello[0].as_string(), Some("DLMessageProcessMessage"));
            let mut resp = plist::Dictionary::new();
            resp.insert("MessageName".into(), "Response".into());
            resp.insert("ErrorCode".into(), 0u64.into());
            resp.insert("ProtocolVersion".into(), 2.1f64.into());
            phone
                .send(vec![s("DLMessageProcessMessage"), resp.into()])
                .await;
            // Ask for Status.plist and a missing Manifest.db.
            phone
                .send(vec![
                    s("DLMessageDownloadFiles"),
                    plist::Value::Array(vec![s("U/Status.plist"), s("U/Manifest.db")]),
                    plist::Dictionary::new().into(),
                    1.0f64.into(),
                    0u64.into(),
                ])
                .await;
            let (n1, d1, c1) = read_file_stream(&mut phone.io).await;
            assert_eq!(
                (n1.as_str(), d1.as_slice(), c1),
                ("U/Status.plist", &b"old"[..], CODE_SUCCESS)
            );
            let (n2, _, c2) = read_file_stream(&mut phone.io).await;
            assert_eq!((n2.as_str(), c2), ("U/Manifest.db", CODE_ERROR_LOCAL));
            let mut end = [0u8; 4];
            phone.io.read_exact(&mut end).await.unwrap();
            assert_eq!(end, [0, 0, 0, 0]);
            let st = phone.recv().await;
            assert_eq!(st[1].as_signed_integer(), Some(-13));
            let errs = st[3].as_dictionary().unwrap();
            let e = errs.get("U/Manifest.db").unwrap().as_dictionary().unwrap();
            assert_eq!(
                e.get("DLFileErrorCode").unwrap().as_signed_integer(),
                Some(-6)
            );
            // Free space, create dir, upload two files, move, remove, done.
            phone.send(vec![s("DLMessageGetFreeDiskSpace")]).await;
            let st = phone.recv().await;
            assert!(st[3].as_unsigned_integer().unwrap() > 0);
            phone
                .send(vec![s("DLMessageCreateDirectory"), s("U/Snapshot/ab")])
                .await;
            assert_eq!(phone.recv().await[1].as_signed_integer(), Some(0));
            phone
                .send(vec![
                    s("DLMessageUploadFiles"),
                    plist::Dictionary::new().into(),
                    50.0f64.into(),
                    30u64.into(),
                ])
                .await;
            phone
                .upload("U/Snapshot/ab/abcdef", b"hello phone file contents")
                .await;
            phone.upload("U/Snapshot/Status.plist", b"new status").await;
            phone.raw(&[0, 0, 0, 0]).await;
            assert_eq!(phone.recv().await[1].as_signed_integer(), Some(0));
            phone.send(vec![s("DLContentsOfDirectory"), s("U")]).await;
            let listing = phone.recv().await;
            let l = listing[3].as_dictionary().unwrap();
            assert_eq!(
                l.get("Snapshot")
                    .unwrap()
                    .as_dictionary()
                    .unwrap()
                    .get("DLFileType")
                    .unwrap()
                    .as_string(),
                Some("DLFileTypeDirectory")
            );
            assert_eq!(
                l.get("Status.plist")
                    .unwrap()
                    .as_dictionary()
                    .unwrap()
                    .get("DLFileSize")
                    .unwrap()
                    .as_unsigned_integer(),
                Some(3)
            );
            assert!(l.keys().all(|k| !k.starts_with(TMP_MARK)));
            phone
                .send(vec![
                    s("DLMessageCopyItem"),
                    s("U/Status.plist"),
                    s("U/Status.copy"),
                ])
                .await;
            assert_eq!(phone.recv().await[1].as_signed_integer(), Some(0));
            let mut mv = plist::Dictionary::new();
            mv.insert("U/Snapshot/ab".into(), s("U/ab"));
            mv.insert("U/Snapshot/Status.plist".into(), s("U/Status.plist"));
            phone
                .send(vec![
                    s("DLMessageMoveItems"),
                    mv.into(),
                    plist::Dictionary::new().into(),
                    90.0f64.into(),
                ])
                .await;
            assert_eq!(phone.recv().await[1].as_signed_integer(), Some(0));
            phone
                .send(vec![
                    s("DLMessageRemoveItems"),
                    plist::Value::Array(vec![s("U/Snapshot")]),
                    plist::Dictionary::new().into(),
                    99.0f64.into(),
                ])
                .await;
            assert_eq!(phone.recv().await[1].as_signed_integer(), Some(0));
            phone.send(vec![s("DLMessagePurgeDiskSpace")]).await;
            assert_eq!(phone.recv().await[1].as_signed_integer(), Some(-1));
            let mut fin = plist::Dictionary::new();
            fin.insert("ErrorCode".into(), 0u64.into());
            phone
                .send(vec![s("DLMessageProcessMessage"), fin.into()])
                .await;
        });
        assert_eq!(conn.handshake().await.unwrap(), 2.1);
        let mut txn = Txn::begin(&root, &["U"]).unwrap();
        let mut stats = LoopStats::default();
        let mut seen = Vec::new();
        let res = conn
            .run_loop("backup", &mut txn, &mut stats, &mut |p| seen.push(p))
            .await
            .unwrap();
        phone_task.await.unwrap();
        txn.commit().unwrap();
        assert_eq!(res.get("ErrorCode").unwrap().as_unsigned_integer(), Some(0));
        assert_eq!(stats.files_received, 2);
        assert_eq!(stats.bytes_received, 35);
        assert_eq!(
            std::fs::read(root.join("U/ab/abcdef")).unwrap(),
            b"hello phone file contents"
        );
        assert_eq!(
            std::fs::read(root.join("U/Status.plist")).unwrap(),
            b"new status"
        );
        assert!(!root.join("U/Snapshot").exists());
        assert_eq!(std::fs::read(root.join("U/Status.copy")).unwrap(), b"old");
        assert_eq!(seen.last().unwrap().percent, Some(99.0));
    }

    #[tokio::test]
    async fn dropped_connection_mid_file_is_a_disconnect_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("bk");
        let (mut conn, mut phone) = pair();
        let phone_task = tokio::spawn(async move {
            phone
                .send(vec![
                    s("DLMessageUploadFiles"),
                    plist::Dictionary::new().into(),
                    1.0f64.into(),
                    9u64.into(),
                ])
                .await;
            phone.raw(&(1u32).to_be_bytes()).await;
            phone.raw(b"x").await;
            phone.raw(&(5u32).to_be_bytes()).await;
            phone.raw(b"U/a/b").await;
            phone.raw(&(4u32).to_be_bytes()).await;
            phone.raw(&[CODE_FILE_DATA, 1, 2, 3]).await;
            drop(phone);
        });
        let mut txn = Txn::begin(&root, &["U"]).unwrap();
        let mut stats = LoopStats::default();
        let err = conn
            .run_loop("backup", &mut txn, &mut stats, &mut |_| {})
            .await
            .unwrap_err();
        phone_task.await.unwrap();
        assert!(matches!(err, Error::Disconnected { .. }), "{err}");
        assert!(txn.rollback().is_empty());
        assert!(!root.exists());
    }

    #[tokio::test]
    async fn unsafe_upload_path_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("bk");
        let (mut conn, mut phone) = pair();
        let phone_task = tokio::spawn(async move {
            phone
                .send(vec![
                    s("DLMessageUploadFiles"),
                    plist::Dictionary::new().into(),
                    1.0f64.into(),
                    9u64.into(),
                ])
                .await;
            phone.upload("U/../../etc/evil", b"x").await;
            phone
        });
        let mut txn = Txn::begin(&root, &["U"]).unwrap();
        let mut stats = LoopStats::default();
        let err = conn
            .run_loop("backup", &mut txn, &mut stats, &mut |_| {})
            .await
            .unwrap_err();
        let _phone = phone_task.await.unwrap();
        assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
        assert!(txn.rollback().is_empty());
        assert!(!dir.path().join("etc").exists());
    }

    #[tokio::test]
    async fn garbage_and_stalls_are_errors_not_panics() {
        let (mut conn, mut phone) = pair();
        phone.raw(&[0, 0, 0, 3, b'x', b'y', b'z']).await;
        assert!(matches!(
            conn.handshake().await,
            Err(Error::Protocol { .. })
        ));
        let (a, _keep) = tokio::io::duplex(64);
        let mut conn = DlConn::new(Box::new(a), "U", Duration::from_millis(50));
        assert!(matches!(conn.handshake().await, Err(Error::Timeout { .. })));
    }

    #[test]
    fn errno_table() {
        use std::io::{Error as E, ErrorKind as K};
        assert_eq!(device_code(&E::from(K::NotFound)), -6);
        assert_eq!(device_code(&E::from(K::AlreadyExists)), -7);
        assert_eq!(device_code(&E::from_raw_os_error(28)), -15);
        assert_eq!(device_code(&E::from_raw_os_error(5)), -11);
        assert_eq!(device_code(&E::from(K::PermissionDenied)), -1);
    }
}
