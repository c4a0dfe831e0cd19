//! DeviceLink, the message layer of mobilebackup2: plist arrays whose element 0 is the
//! message name, the host's status response, and the raw file-transfer blocks that travel
//! outside the plist framing during DownloadFiles / UploadFiles.

use crate::{DecodeError, EncodeError, take, u32_be};

/// DeviceLink message names (element 0 of every message).
pub mod names {
    /// Version exchange (both directions).
    pub const VERSION_EXCHANGE: &str = "DLMessageVersionExchange";
    /// The host's answer inside the version exchange.
    pub const VERSIONS_OK: &str = "DLVersionsOk";
    /// Device → host after the exchange.
    pub const DEVICE_READY: &str = "DLMessageDeviceReady";
    /// A request (host → device) or the final answer of an operation (device → host).
    pub const PROCESS_MESSAGE: &str = "DLMessageProcessMessage";
    /// Device asks the host for files.
    pub const DOWNLOAD_FILES: &str = "DLMessageDownloadFiles";
    /// Device sends files to the host.
    pub const UPLOAD_FILES: &str = "DLMessageUploadFiles";
    /// Device asks for free space.
    pub const GET_FREE_DISK_SPACE: &str = "DLMessageGetFreeDiskSpace";
    /// Device lists a host directory.
    pub const CONTENTS_OF_DIRECTORY: &str = "DLContentsOfDirectory";
    /// Device creates a host directory.
    pub const CREATE_DIRECTORY: &str = "DLMessageCreateDirectory";
    /// Device renames host paths (the only move pymobiledevice3 understands).
    pub const MOVE_ITEMS: &str = "DLMessageMoveItems";
    /// Older move message (pymobiledevice3 fails on it; never send).
    pub const MOVE_FILES: &str = "DLMessageMoveFiles";
    /// Device deletes host paths (the only remove pymobiledevice3 understands).
    pub const REMOVE_ITEMS: &str = "DLMessageRemoveItems";
    /// Older remove message (pymobiledevice3 fails on it; never send).
    pub const REMOVE_FILES: &str = "DLMessageRemoveFiles";
    /// Device copies a host path.
    pub const COPY_ITEM: &str = "DLMessageCopyItem";
    /// Debian's libimobiledevice 1.3.0 hangs on it; never send.
    pub const PURGE_DISK_SPACE: &str = "DLMessagePurgeDiskSpace";
    /// Teardown (host → device); pymobiledevice3 cannot receive it.
    pub const DISCONNECT: &str = "DLMessageDisconnect";
    /// The host's answer to every device request except ProcessMessage.
    pub const STATUS_RESPONSE: &str = "DLMessageStatusResponse";
}

/// The placeholder DeviceLink uses for an empty string parameter.
pub const EMPTY_PARAMETER: &str = "___EmptyParameterString___";

/// Status code for "some files failed" (DownloadFiles), with a per-path error dictionary.
pub const MULTI_STATUS: i64 = -13;

/// The DeviceLink version the simulator announces and Debian's idevicebackup2 accepts.
pub const VERSION_MAJOR: u64 = 400;

/// The name (element 0) of a DeviceLink message, if it is an array starting with a string.
pub fn message_name(msg: &plist::Value) -> Option<&str> {
    msg.as_array()?.first()?.as_string()
}

/// Builds a DeviceLink message array.
pub fn message(name: &str, args: Vec<plist::Value>) -> plist::Value {
    let mut v = Vec::with_capacity(args.len() + 1);
    v.push(plist::Value::String(name.to_string()));
    v.extend(args);
    plist::Value::Array(v)
}

/// Reads a status code: an unsigned integer whose values ≥ 2^63 are negative codes in
/// two's complement (libimobiledevice and pymobiledevice3 send them that way), or a signed one.
pub fn code_from_plist(v: &plist::Value) -> Option<i64> {
    let i = v
        .as_signed_integer()
        .or_else(|| v.as_unsigned_integer().map(|u| u as i64))?;
    Some(i)
}

/// Writes a status code the way real hosts do: negative values as two's-complement uint64.
pub fn code_to_plist(code: i64) -> plist::Value {
    plist::Value::Integer((code as u64).into())
}

/// `["DLMessageStatusResponse", code, string, extra]`, the host's answer to a device request.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusResponse {
    /// 0 on success, a negative device error code otherwise.
    pub code: i64,
    /// Error text, "" when none (sent as [`EMPTY_PARAMETER`]).
    pub message: String,
    /// A dictionary (per-path errors, directory listing), a uint (free space) or the placeholder.
    pub extra: plist::Value,
}

impl StatusResponse {
    /// A success with an empty dictionary.
    pub fn ok() -> Self {
        StatusResponse {
            code: 0,
            message: String::new(),
            extra: plist::Value::Dictionary(plist::Dictionary::new()),
        }
    }

    /// Encodes as a DeviceLink message value.
    pub fn to_value(&self) -> plist::Value {
        let msg = if self.message.is_empty() {
            EMPTY_PARAMETER.to_string()
        } else {
            self.message.clone()
        };
        message(
            names::STATUS_RESPONSE,
            vec![
                code_to_plist(self.code),
                plist::Value::String(msg),
                self.extra.clone(),
            ],
        )
    }

    /// Decodes from a DeviceLink message value (missing string/extra are tolerated).
    pub fn from_value(v: &plist::Value) -> Result<Self, DecodeError> {
        const WHAT: &str = "DLMessageStatusResponse";
        let arr = v
            .as_array()
            .ok_or_else(|| DecodeError::malformed(WHAT, "not an array"))?;
        if arr.first().and_then(plist::Value::as_string) != Some(names::STATUS_RESPONSE) {
            return Err(DecodeError::malformed(WHAT, "wrong message name"));
        }
        let code = arr
            .get(1)
            .and_then(code_from_plist)
            .ok_or_else(|| DecodeError::malformed(WHAT, "no integer code"))?;
        let message = match arr.get(2).and_then(plist::Value::as_string) {
            Some(EMPTY_PARAMETER) | None => String::new(),
            Some(s) => s.to_string(),
        };
        let extra = arr
            .get(3)
            .cloned()
            .unwrap_or_else(|| plist::Value::String(EMPTY_PARAMETER.into()));
        Ok(StatusResponse {
            code,
            message,
            extra,
        })
    }
}

/// Raw block codes of the file-transfer stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockCode {
    /// End of one file, success.
    Success = 0x00,
    /// Host-side error (text follows).
    LocalError = 0x06,
    /// Device-side error (text follows); after data blocks libimobiledevice accepts it as an end.
    RemoteError = 0x0B,
    /// File data.
    FileData = 0x0C,
}

impl BlockCode {
    /// Maps a code byte.
    pub fn from_byte(b: u8) -> Option<BlockCode> {
        match b {
            0x00 => Some(BlockCode::Success),
            0x06 => Some(BlockCode::LocalError),
            0x0B => Some(BlockCode::RemoteError),
            0x0C => Some(BlockCode::FileData),
            _ => None,
        }
    }
}

/// Largest data block the simulator sends (Apple's DeviceLink default buffer, 32 KiB).
pub const BLOCK_SIZE: usize = 32 * 1024;

/// Largest path the receivers accept (libimobiledevice rejects longer names).
pub const MAX_PATH_LEN: u32 = 4096;

/// One raw block: `u32be (n+1)`, code byte, n bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The code.
    pub code: BlockCode,
    /// Data or error text.
    pub data: Vec<u8>,
}

/// Encodes a block header (length + code) for `data_len` bytes of data that follow.
pub fn encode_block_header(code: BlockCode, data_len: usize) -> Result<[u8; 5], EncodeError> {
    let len = u32::try_from(data_len + 1).map_err(|_| EncodeError::TooLong {
        what: "raw block",
        len: data_len,
    })?;
    let b = len.to_be_bytes();
    Ok([b[0], b[1], b[2], b[3], code as u8])
}

/// Encodes a whole block.
pub fn encode_block(code: BlockCode, data: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let mut out = encode_block_header(code, data.len())?.to_vec();
    out.extend_from_slice(data);
    Ok(out)
}

/// Decodes one block; `max_len` caps the announced data length.
pub fn decode_block(buf: &[u8], max_len: u32) -> Result<(Block, usize), DecodeError> {
    let len = u32_be(buf, 0)?;
    if len == 0 {
        return Err(DecodeError::malformed(
            "raw block",
            "zero length (a block has at least its code byte)",
        ));
    }
    if len - 1 > max_len {
        return Err(DecodeError::TooLarge {
            what: "raw block",
            len: u64::from(len - 1),
            max: u64::from(max_len),
        });
    }
    let code_byte = take(buf, 4, 1)?[0];
    let code = BlockCode::from_byte(code_byte).ok_or_else(|| {
        DecodeError::malformed("raw block", format!("unknown code 0x{code_byte:02x}"))
    })?;
    let data = take(buf, 5, (len - 1) as usize)?.to_vec();
    Ok((Block { code, data }, 4 + len as usize))
}

/// Encodes a length-prefixed path; an empty path is the end-of-batch marker `00 00 00 00`.
pub fn encode_path(path: &str) -> Result<Vec<u8>, EncodeError> {
    let len = u32::try_from(path.len()).map_err(|_| EncodeError::TooLong {
        what: "path",
        len: path.len(),
    })?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(path.as_bytes());
    Ok(out)
}

/// Decodes a length-prefixed path; `None` is the end-of-batch marker (length 0).
pub fn decode_path(buf: &[u8]) -> Result<(Option<String>, usize), DecodeError> {
    let len = u32_be(buf, 0)?;
    if len == 0 {
        return Ok((None, 4));
    }
    if len > MAX_PATH_LEN {
        return Err(DecodeError::TooLarge {
            what: "path",
            len: u64::from(len),
            max: u64::from(MAX_PATH_LEN),
        });
    }
    let bytes = take(buf, 4, len as usize)?;
    let s =
        std::str::from_utf8(bytes).map_err(|e| DecodeError::malformed("path", e.to_string()))?;
    Ok((Some(s.to_string()), 4 + len as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn negative_codes_are_twos_complement() {
        let r = StatusResponse {
            code: MULTI_STATUS,
            message: "Multi status".into(),
            extra: plist::Value::Dictionary(Default::default()),
        };
        let v = r.to_value();
        assert_eq!(
            v.as_array().expect("array")[1].as_unsigned_integer(),
            Some(u64::MAX - 12)
        );
        assert_eq!(StatusResponse::from_value(&v).expect("decode"), r);
        assert_eq!(message_name(&v), Some(names::STATUS_RESPONSE));
    }

    #[test]
    fn empty_message_uses_placeholder() {
        let v = StatusResponse::ok().to_value();
        assert_eq!(
            v.as_array().expect("array")[2].as_string(),
            Some(EMPTY_PARAMETER)
        );
        assert_eq!(StatusResponse::from_value(&v).expect("decode").message, "");
    }

    #[test]
    fn end_marker_and_success_block() {
        assert_eq!(decode_path(&[0, 0, 0, 0]).expect("end"), (None, 4));
        assert_eq!(
            encode_block(BlockCode::Success, &[]).expect("enc"),
            vec![0, 0, 0, 1, 0]
        );
        assert!(decode_block(&[0, 0, 0, 0, 0], 10).is_err());
        assert!(decode_block(&[0, 0, 0, 2, 0x42, 1], 10).is_err());
    }

    proptest! {
        #[test]
        fn block_round_trip(data in proptest::collection::vec(any::<u8>(), 0..300), code in 0usize..4) {
            let code = [BlockCode::Success, BlockCode::LocalError, BlockCode::RemoteError, BlockCode::FileData][code];
            let enc = encode_block(code, &data).expect("enc");
            let (b, used) = decode_block(&enc, 1000).expect("dec");
            prop_assert_eq!(used, enc.len());
            prop_assert_eq!(b, Block { code, data });
            for cut in 0..enc.len() {
                prop_assert!(decode_block(&enc[..cut], 1000).expect_err("short").is_need_more());
            }
        }

        #[test]
        fn path_round_trip(p in "[a-zA-Z0-9/._-]{1,100}") {
            let enc = encode_path(&p).expect("enc");
            prop_assert_eq!(decode_path(&enc).expect("dec"), (Some(p), enc.len()));
        }

        #[test]
        fn status_round_trip(code in any::<i64>(), msg in "[a-z ]{0,20}") {
            let r = StatusResponse { code, message: msg, extra: plist::Value::Integer(5u64.into()) };
            prop_assert_eq!(StatusResponse::from_value(&r.to_value()).expect("dec"), r);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_block(&bytes, 1 << 20);
            let _ = decode_path(&bytes);
        }
    }
}
