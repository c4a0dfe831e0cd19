//! AFC (Apple File Conduit): a 40-byte header — magic `CFA6LPAA`, then `u64` little-endian
//! `entire_length`, `this_length`, `packet_num`, `operation` — followed by the operation's
//! header data (up to `this_length`) and its payload (up to `entire_length`).
//!
//! Backup tools use AFC for the iTunes sync lock and a handful of files, so only the opcodes
//! they use get names; unknown opcodes decode as [`Opcode::Other`].

use crate::{DecodeError, EncodeError, take, u64_le};

/// The magic at the start of every packet.
pub const MAGIC: &[u8; 8] = b"CFA6LPAA";
/// Size of the packet header.
pub const HEADER_LEN: usize = 40;
/// Default cap on one packet (8 MiB; files are written in smaller chunks).
pub const DEFAULT_MAX_LEN: u64 = 8 * 1024 * 1024;

/// The path of the iTunes sync lock file.
pub const SYNC_LOCK_PATH: &str = "/com.apple.itunes.lock_sync";

/// AFC operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// Status reply (u64 code).
    Status,
    /// Data reply.
    Data,
    /// List a directory.
    ReadDir,
    /// Remove a path.
    RemovePath,
    /// Create a directory.
    MakeDir,
    /// Get file info (key/value NUL-separated strings).
    GetFileInfo,
    /// Get device info.
    GetDeviceInfo,
    /// Open a file (u64 mode + path).
    FileOpen,
    /// Open reply (u64 handle).
    FileOpenRes,
    /// Read from a handle (u64 handle + u64 length).
    FileRead,
    /// Write to a handle (u64 handle + data).
    FileWrite,
    /// Close a handle.
    FileClose,
    /// Lock a handle (u64 handle + u64 lock op).
    FileLock,
    /// Any other opcode.
    Other(u64),
}

impl Opcode {
    /// The opcode number.
    pub fn code(self) -> u64 {
        match self {
            Opcode::Status => 0x01,
            Opcode::Data => 0x02,
            Opcode::ReadDir => 0x03,
            Opcode::RemovePath => 0x08,
            Opcode::MakeDir => 0x09,
            Opcode::GetFileInfo => 0x0A,
            Opcode::GetDeviceInfo => 0x0B,
            Opcode::FileOpen => 0x0D,
            Opcode::FileOpenRes => 0x0E,
            Opcode::FileRead => 0x0F,
            Opcode::FileWrite => 0x10,
            Opcode::FileClose => 0x14,
            Opcode::FileLock => 0x1B,
            Opcode::Other(c) => c,
        }
    }

    /// Maps an opcode number.
    pub fn from_code(c: u64) -> Opcode {
        match c {
            0x01 => Opcode::Status,
            0x02 => Opcode::Data,
            0x03 => Opcode::ReadDir,
            0x08 => Opcode::RemovePath,
            0x09 => Opcode::MakeDir,
            0x0A => Opcode::GetFileInfo,
            0x0B => Opcode::GetDeviceInfo,
            0x0D => Opcode::FileOpen,
            0x0E => Opcode::FileOpenRes,
            0x0F => Opcode::FileRead,
            0x10 => Opcode::FileWrite,
            0x14 => Opcode::FileClose,
            0x1B => Opcode::FileLock,
            other => Opcode::Other(other),
        }
    }
}

/// AFC status codes (the u64 in a Status reply).
pub mod status {
    /// Success.
    pub const SUCCESS: u64 = 0;
    /// Unknown error.
    pub const UNKNOWN_ERROR: u64 = 1;
    /// Malformed operation header.
    pub const OP_HEADER_INVALID: u64 = 2;
    /// Unknown packet type.
    pub const UNKNOWN_PACKET_TYPE: u64 = 6;
    /// Invalid argument.
    pub const INVALID_ARG: u64 = 7;
    /// No such file or directory.
    pub const OBJECT_NOT_FOUND: u64 = 8;
    /// Path is a directory.
    pub const OBJECT_IS_DIR: u64 = 9;
    /// Permission denied.
    pub const PERM_DENIED: u64 = 10;
    /// Operation not supported.
    pub const OP_NOT_SUPPORTED: u64 = 15;
    /// Object exists.
    pub const OBJECT_EXISTS: u64 = 16;
    /// Lock held by someone else; the client retries (50 × 200 ms in libimobiledevice).
    pub const OP_WOULD_BLOCK: u64 = 19;
    /// I/O error.
    pub const IO_ERROR: u64 = 20;
}

/// FILE_LOCK operations.
pub mod lock {
    /// Shared lock (1 | 4).
    pub const SH: u64 = 1 | 4;
    /// Exclusive lock (2 | 4), what backup tools take.
    pub const EX: u64 = 2 | 4;
    /// Unlock (8 | 4).
    pub const UN: u64 = 8 | 4;
}

/// FILE_OPEN modes.
pub mod mode {
    /// Read only.
    pub const RDONLY: u64 = 1;
    /// Read/write, create (how the lock file is opened).
    pub const RW: u64 = 2;
    /// Write, create, truncate (how RestoreApplications.plist is written).
    pub const WR: u64 = 4;
    /// Write, create, append-less read/write.
    pub const WR_RD: u64 = 5;
    /// Append.
    pub const APPEND: u64 = 6;
    /// Read/append.
    pub const RD_APPEND: u64 = 7;
}

/// One packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfcPacket {
    /// Sequence number (replies echo the request's).
    pub packet_num: u64,
    /// The operation.
    pub operation: Opcode,
    /// Operation header data (counted in `this_length`).
    pub header_data: Vec<u8>,
    /// Payload after the header data.
    pub payload: Vec<u8>,
}

impl AfcPacket {
    /// Header data followed by payload: clients differ in how they split the two (the
    /// operation's fields always come first), so servers read the concatenation.
    pub fn body(&self) -> Vec<u8> {
        let mut b = self.header_data.clone();
        b.extend_from_slice(&self.payload);
        b
    }

    /// Encodes the packet.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let this_len = HEADER_LEN + self.header_data.len();
        let entire = this_len + self.payload.len();
        let mut out = Vec::with_capacity(entire);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(entire as u64).to_le_bytes());
        out.extend_from_slice(&(this_len as u64).to_le_bytes());
        out.extend_from_slice(&self.packet_num.to_le_bytes());
        out.extend_from_slice(&self.operation.code().to_le_bytes());
        out.extend_from_slice(&self.header_data);
        out.extend_from_slice(&self.payload);
        Ok(out)
    }

    /// A status reply.
    pub fn status(packet_num: u64, code: u64) -> AfcPacket {
        AfcPacket {
            packet_num,
            operation: Opcode::Status,
            header_data: code.to_le_bytes().to_vec(),
            payload: Vec::new(),
        }
    }

    /// A data reply.
    pub fn data(packet_num: u64, data: Vec<u8>) -> AfcPacket {
        AfcPacket {
            packet_num,
            operation: Opcode::Data,
            header_data: Vec::new(),
            payload: data,
        }
    }

    /// The status code of a Status reply.
    pub fn status_code(&self) -> Option<u64> {
        if self.operation != Opcode::Status {
            return None;
        }
        u64_le(&self.body(), 0).ok()
    }
}

/// Decodes one packet; `max_len` caps `entire_length`.
pub fn decode_packet(buf: &[u8], max_len: u64) -> Result<(AfcPacket, usize), DecodeError> {
    let magic = take(buf, 0, 8)?;
    if magic != MAGIC {
        return Err(DecodeError::malformed("AFC header", "bad magic"));
    }
    let entire = u64_le(buf, 8)?;
    let this = u64_le(buf, 16)?;
    let packet_num = u64_le(buf, 24)?;
    let op = u64_le(buf, 32)?;
    if entire > max_len {
        return Err(DecodeError::TooLarge {
            what: "AFC packet",
            len: entire,
            max: max_len,
        });
    }
    if this < HEADER_LEN as u64 || this > entire {
        return Err(DecodeError::malformed(
            "AFC header",
            format!("this_length {this}, entire_length {entire}"),
        ));
    }
    let (this, entire) = (this as usize, entire as usize);
    let header_data = take(buf, HEADER_LEN, this - HEADER_LEN)?.to_vec();
    let payload = take(buf, this, entire - this)?.to_vec();
    Ok((
        AfcPacket {
            packet_num,
            operation: Opcode::from_code(op),
            header_data,
            payload,
        },
        entire,
    ))
}

/// Reads a NUL-terminated (or unterminated) UTF-8 path from operation data.
pub fn path_from(data: &[u8]) -> Result<String, DecodeError> {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let s = std::str::from_utf8(&data[..end])
        .map_err(|e| DecodeError::malformed("AFC path", e.to_string()))?;
    Ok(s.to_string())
}

/// Encodes file-info style key/value lists: `key\0value\0…`.
pub fn encode_kv(pairs: &[(&str, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Reads a little-endian u64 at `at` of operation data.
pub fn u64_at(data: &[u8], at: usize) -> Result<u64, DecodeError> {
    u64_le(data, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn status_round_trip() {
        let p = AfcPacket::status(9, status::OP_WOULD_BLOCK);
        let enc = p.encode().expect("enc");
        assert_eq!(enc.len(), 48);
        let (back, used) = decode_packet(&enc, DEFAULT_MAX_LEN).expect("dec");
        assert_eq!(used, 48);
        assert_eq!(back.status_code(), Some(19));
    }

    #[test]
    fn bad_magic_and_lengths() {
        let mut enc = AfcPacket::data(1, vec![1, 2]).encode().expect("enc");
        enc[0] = b'X';
        assert!(matches!(
            decode_packet(&enc, 100),
            Err(DecodeError::Malformed { .. })
        ));
        let mut enc = AfcPacket::data(1, vec![1, 2]).encode().expect("enc");
        enc[16] = 50; // this_length > entire_length
        assert!(matches!(
            decode_packet(&enc, 100),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn paths_stop_at_nul() {
        assert_eq!(path_from(b"/a/b\0junk").expect("path"), "/a/b");
        assert_eq!(encode_kv(&[("st_size", "5".into())]), b"st_size\x005\x00");
    }

    proptest! {
        #[test]
        fn round_trip(num in any::<u64>(), op in 0u64..0x40, hd in proptest::collection::vec(any::<u8>(), 0..50),
                      pl in proptest::collection::vec(any::<u8>(), 0..200)) {
            let p = AfcPacket { packet_num: num, operation: Opcode::from_code(op), header_data: hd, payload: pl };
            let enc = p.encode().expect("enc");
            let (back, used) = decode_packet(&enc, DEFAULT_MAX_LEN).expect("dec");
            prop_assert_eq!(used, enc.len());
            prop_assert_eq!(back.operation.code(), op);
            prop_assert_eq!(back, p);
            for cut in 0..enc.len() {
                prop_assert!(decode_packet(&enc[..cut], DEFAULT_MAX_LEN).expect_err("short").is_need_more());
            }
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = decode_packet(&bytes, 1000);
        }
    }
}
