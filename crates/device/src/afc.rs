//! A small AFC (Apple File Conduit) client: just what a backup/restore needs — the sync lock
//! file, reading the iTunes files for Info.plist, writing RestoreApplications.plist.
//!
//! Written here instead of using `idevice::afc` because idevice's packet reader subtracts the
//! header size from the phone-announced length without a check (a debug-build panic on a short
//! length), its file descriptors `debug_assert!` when dropped without an async close (a panic in
//! tests whenever a phone disconnects while the lock file is open), and a held descriptor
//! borrows the whole client, so the lock could not be held while other files are read.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result, link_error};
use crate::wire::Stream;

const MAGIC: &[u8; 8] = b"CFA6LPAA";
const HEADER_LEN: u64 = 40;
/// Largest AFC packet accepted.
const MAX_PACKET: u64 = 16 * 1024 * 1024;

const OP_STATUS: u64 = 0x01;
const OP_DATA: u64 = 0x02;
const OP_REMOVE_PATH: u64 = 0x08;
const OP_MAKE_DIR: u64 = 0x09;
const OP_GET_FILE_INFO: u64 = 0x0a;
const OP_FILE_OPEN: u64 = 0x0d;
const OP_FILE_OPEN_RES: u64 = 0x0e;
const OP_FILE_READ: u64 = 0x0f;
const OP_FILE_WRITE: u64 = 0x10;
const OP_FILE_CLOSE: u64 = 0x14;
const OP_FILE_LOCK: u64 = 0x1b;

/// AFC status: the object does not exist.
pub const STATUS_OBJECT_NOT_FOUND: u64 = 8;
/// AFC status: a non-blocking lock is held by someone else.
pub const STATUS_WOULD_BLOCK: u64 = 19;

/// File open modes (fopen-like).
#[derive(Debug, Clone, Copy)]
pub enum OpenMode {
    /// `r`
    Read = 1,
    /// `r+` (creates)
    ReadWrite = 2,
    /// `w+` (create, truncate)
    WriteTruncate = 4,
}

/// flock-style lock operations, always non-blocking (the host retries).
#[derive(Debug, Clone, Copy)]
pub enum LockOp {
    /// `LOCK_EX | LOCK_NB`
    Exclusive = 2 | 4,
    /// `LOCK_UN | LOCK_NB`
    Unlock = 8 | 4,
}

/// An AFC connection.
pub(crate) struct Afc {
    io: Box<dyn Stream>,
    packet_num: u64,
    udid: String,
    idle: Duration,
}

struct Reply {
    op: u64,
    header: Vec<u8>,
    data: Vec<u8>,
}

impl Afc {
    pub(crate) fn new(io: Box<dyn Stream>, udid: &str, idle: Duration) -> Afc {
        Afc {
            io,
            packet_num: 0,
            udid: udid.to_string(),
            idle,
        }
    }

    async fn exchange(&mut self, op: u64, header: &[u8], data: &[u8], what: &str) -> Result<Reply> {
        let this_len = HEADER_LEN + header.len() as u64;
        let entire = this_len + data.len() as u64;
        let mut pkt = Vec::with_capacity(entire as usize);
        pkt.extend_from_slice(MAGIC);
        pkt.extend_from_slice(&entire.to_le_bytes());
        pkt.extend_from_slice(&this_len.to_le_bytes());
        pkt.extend_from_slice(&self.packet_num.to_le_bytes());
        pkt.extend_from_slice(&op.to_le_bytes());
        pkt.extend_from_slice(header);
        pkt.extend_from_slice(data);
        self.packet_num += 1;
        let during = format!("AFC {what}");
        if let Err(e) = self.io.write_all(&pkt).await {
            return Err(link_error(&self.udid, &during, &e));
        }
        let _ = self.io.flush().await;
        match tokio::time::timeout(self.idle, self.read_reply(&during)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                udid: self.udid.clone(),
                during,
                secs: self.idle.as_secs(),
            }),
        }
    }

    async fn read_reply(&mut self, during: &str) -> Result<Reply> {
        let mut h = [0u8; HEADER_LEN as usize];
        self.io
            .read_exact(&mut h)
            .await
            .map_err(|e| link_error(&self.udid, during, &e))?;
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(h.get(i * 8..i * 8 + 8).unwrap_or(&[0; 8]));
            u64::from_le_bytes(b)
        };
        if h.get(..8) != Some(&MAGIC[..]) {
            return Err(Error::protocol(during, "bad AFC magic"));
        }
        let entire = word(1);
        let this_len = word(2);
        let op = word(4);
        if this_len < HEADER_LEN || entire < this_len || entire > MAX_PACKET {
            return Err(Error::protocol(
                during,
                format!("bad AFC lengths (entire {entire}, header {this_len})"),
            ));
        }
        let mut header = vec![0u8; (this_len - HEADER_LEN) as usize];
        self.io
            .read_exact(&mut header)
            .await
            .map_err(|e| link_error(&self.udid, during, &e))?;
        let mut data = vec![0u8; (entire - this_len) as usize];
        self.io
            .read_exact(&mut data)
            .await
            .map_err(|e| link_error(&self.udid, during, &e))?;
        Ok(Reply { op, header, data })
    }

    /// Sends an operation and turns a non-zero STATUS reply into [`Error::Afc`].
    async fn op(
        &mut self,
        op: u64,
        header: &[u8],
        data: &[u8],
        name: &'static str,
        path: &str,
    ) -> Result<Reply> {
        let r = self.exchange(op, header, data, name).await?;
        if r.op == OP_STATUS {
            let code = r
                .header
                .get(..8)
                .map(|b| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    u64::from_le_bytes(a)
                })
                .unwrap_or(1);
            if code != 0 {
                return Err(Error::Afc {
                    op: name,
                    path: path.to_string(),
                    status: code,
                });
            }
        }
        Ok(r)
    }

    /// Opens a file, returning its handle.
    pub(crate) async fn open(&mut self, path: &str, mode: OpenMode) -> Result<u64> {
        let mut h = (mode as u64).to_le_bytes().to_vec();
        h.extend_from_slice(path.as_bytes());
        h.push(0);
        let r = self.op(OP_FILE_OPEN, &h, &[], "open", path).await?;
        if r.op != OP_FILE_OPEN_RES {
            return Err(Error::protocol(
                "AFC open",
                format!("unexpected reply opcode {}", r.op),
            ));
        }
        r.header
            .get(..8)
            .map(|b| {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                u64::from_le_bytes(a)
            })
            .ok_or_else(|| Error::protocol("AFC open", "reply has no file handle"))
    }

    /// Applies a non-blocking flock operation to an open handle.
    pub(crate) async fn lock(&mut self, fd: u64, op: LockOp, path: &str) -> Result<()> {
        let mut h = fd.to_le_bytes().to_vec();
        h.extend_from_slice(&(op as u64).to_le_bytes());
        self.op(OP_FILE_LOCK, &h, &[], "lock", path)
            .await
            .map(|_| ())
    }

    /// Closes a handle.
    pub(crate) async fn close(&mut self, fd: u64, path: &str) -> Result<()> {
        self.op(OP_FILE_CLOSE, &fd.to_le_bytes(), &[], "close", path)
            .await
            .map(|_| ())
    }

    /// Writes `data` to an open handle.
    pub(crate) async fn write(&mut self, fd: u64, data: &[u8], path: &str) -> Result<()> {
        for chunk in data.chunks(64 * 1024) {
            self.op(OP_FILE_WRITE, &fd.to_le_bytes(), chunk, "write", path)
                .await?;
        }
        Ok(())
    }

    /// Reads a whole file of at most `limit` bytes; `Ok(None)` when it does not exist.
    pub(crate) async fn read_file(&mut self, path: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let fd = match self.open(path, OpenMode::Read).await {
            Ok(fd) => fd,
            Err(Error::Afc { status, .. }) if status == STATUS_OBJECT_NOT_FOUND => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        let result = loop {
            let mut h = fd.to_le_bytes().to_vec();
            h.extend_from_slice(&(64u64 * 1024).to_le_bytes());
            match self.op(OP_FILE_READ, &h, &[], "read", path).await {
                Ok(r) if r.op == OP_DATA || r.op == OP_STATUS => {
                    if r.data.is_empty() {
                        break Ok(());
                    }
                    out.extend_from_slice(&r.data);
                    if out.len() as u64 > limit {
                        break Err(Error::protocol(
                            "AFC read",
                            format!("{path} is larger than {limit} bytes"),
                        ));
                    }
                }
                Ok(r) => {
                    break Err(Error::protocol(
                        "AFC read",
                        format!("unexpected reply opcode {}", r.op),
                    ));
                }
                Err(e) => break Err(e),
            }
        };
        let closed = self.close(fd, path).await;
        result?;
        closed?;
        Ok(Some(out))
    }

    /// File attributes (`st_size`, `st_ifmt`, …); `Ok(None)` when the path does not exist.
    pub(crate) async fn file_info(
        &mut self,
        path: &str,
    ) -> Result<Option<HashMap<String, String>>> {
        let mut h = path.as_bytes().to_vec();
        h.push(0);
        match self.op(OP_GET_FILE_INFO, &h, &[], "stat", path).await {
            Ok(r) => {
                let mut map = HashMap::new();
                let parts: Vec<&[u8]> = r.data.split(|b| *b == 0).collect();
                for kv in parts.chunks(2) {
                    if let [k, v] = kv {
                        map.insert(
                            String::from_utf8_lossy(k).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        );
                    }
                }
                Ok(Some(map))
            }
            Err(Error::Afc { status, .. }) if status == STATUS_OBJECT_NOT_FOUND => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `mkdir -p` on the phone.
    pub(crate) async fn make_dir(&mut self, path: &str) -> Result<()> {
        let mut h = path.as_bytes().to_vec();
        h.push(0);
        self.op(OP_MAKE_DIR, &h, &[], "mkdir", path)
            .await
            .map(|_| ())
    }

    /// Removes a file or empty directory; a missing path is fine.
    pub(crate) async fn remove(&mut self, path: &str) -> Result<()> {
        let mut h = path.as_bytes().to_vec();
        h.push(0);
        match self.op(OP_REMOVE_PATH, &h, &[], "remove", path).await {
            Ok(_) => Ok(()),
            Err(Error::Afc { status, .. }) if status == STATUS_OBJECT_NOT_FOUND => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::DuplexStream;

    async fn phone_reply(io: &mut DuplexStream, op: u64, header: &[u8], data: &[u8]) -> u64 {
        // Read the request, answer with (op, header, data); return the request opcode.
        let mut h = [0u8; 40];
        io.read_exact(&mut h).await.unwrap();
        let entire = u64::from_le_bytes(h[8..16].try_into().unwrap());
        let req_op = u64::from_le_bytes(h[32..40].try_into().unwrap());
        let mut rest = vec![0u8; (entire - 40) as usize];
        io.read_exact(&mut rest).await.unwrap();
        let this_len = 40 + header.len() as u64;
        let mut pkt = MAGIC.to_vec();
        pkt.extend_from_slice(&(this_len + data.len() as u64).to_le_bytes());
        pkt.extend_from_slice(&this_len.to_le_bytes());
        pkt.extend_from_slice(&0u64.to_le_bytes());
        pkt.extend_from_slice(&op.to_le_bytes());
        pkt.extend_from_slice(header);
        pkt.extend_from_slice(data);
        io.write_all(&pkt).await.unwrap();
        req_op
    }

    #[tokio::test]
    async fn open_lock_would_block_and_stat() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut afc = Afc::new(Box::new(a), "U", Duration::from_secs(5));
        let phone = tokio::spawn(async move {
            assert_eq!(
                phone_reply(&mut b, OP_FILE_OPEN_RES, &7u64.to_le_bytes(), &[]).await,
                OP_FILE_OPEN
            );
            assert_eq!(
                phone_reply(&mut b, OP_STATUS, &19u64.to_le_bytes(), &[]).await,
                OP_FILE_LOCK
            );
            assert_eq!(
                phone_reply(&mut b, OP_STATUS, &8u64.to_le_bytes(), &[]).await,
                OP_GET_FILE_INFO
            );
            phone_reply(
                &mut b,
                OP_DATA,
                &[],
                b"st_size\x0012\x00st_ifmt\x00S_IFREG\x00",
            )
            .await;
            // Lying lengths.
            let mut h = [0u8; 40];
            b.read_exact(&mut h).await.unwrap();
            let mut pkt = MAGIC.to_vec();
            pkt.extend_from_slice(&10u64.to_le_bytes());
            pkt.extend_from_slice(&5u64.to_le_bytes());
            pkt.extend_from_slice(&[0u8; 16]);
            b.write_all(&pkt).await.unwrap();
        });
        let fd = afc
            .open("/com.apple.itunes.lock_sync", OpenMode::ReadWrite)
            .await
            .unwrap();
        assert_eq!(fd, 7);
        let e = afc.lock(fd, LockOp::Exclusive, "/lock").await.unwrap_err();
        assert!(matches!(
            e,
            Error::Afc {
                status: STATUS_WOULD_BLOCK,
                ..
            }
        ));
        assert!(afc.file_info("/nope").await.unwrap().is_none());
        let info = afc.file_info("/yes").await.unwrap().unwrap();
        assert_eq!(info.get("st_size").map(String::as_str), Some("12"));
        assert!(matches!(
            afc.file_info("/bad").await,
            Err(Error::Protocol { .. })
        ));
        phone.await.unwrap();
    }
}
