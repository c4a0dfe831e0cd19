//! usbmuxd: a 16-byte little-endian header (`length` including the header, `version`,
//! `message`, `tag`) followed by an XML plist for version 1.
//!
//! libusbmuxd parses replies with an XML-only parser, and pymobiledevice3 checks that reply
//! tags match request tags, so [`encode_plist_packet`] always writes XML and takes the tag.

use crate::plist_frame::{PlistFormat, parse_plist, plist_to_bytes};
use crate::{DecodeError, EncodeError, take, u32_le};

/// Size of the usbmuxd header.
pub const HEADER_LEN: usize = 16;

/// Default cap on one usbmuxd packet (1 MiB; pair records are a few KiB).
pub const DEFAULT_MAX_LEN: u32 = 1024 * 1024;

/// The binary protocol version (legacy, not served by the simulator).
pub const VERSION_BINARY: u32 = 0;
/// The plist protocol version every current client uses.
pub const VERSION_PLIST: u32 = 1;

/// `message` field values.
pub mod message {
    /// A result (binary protocol).
    pub const RESULT: u32 = 1;
    /// Connect (binary protocol).
    pub const CONNECT: u32 = 2;
    /// Listen (binary protocol).
    pub const LISTEN: u32 = 3;
    /// Device attached (binary protocol).
    pub const DEVICE_ADD: u32 = 4;
    /// Device detached (binary protocol).
    pub const DEVICE_REMOVE: u32 = 5;
    /// Device paired (binary protocol).
    pub const DEVICE_PAIRED: u32 = 6;
    /// A plist message (version 1): every request and reply of current clients.
    pub const PLIST: u32 = 8;
}

/// usbmuxd result numbers (`{MessageType: "Result", Number}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultCode {
    /// Success.
    Ok = 0,
    /// Unknown or malformed command.
    BadCommand = 1,
    /// No such device (also "no pair record").
    BadDevice = 2,
    /// The device refused the connection (nothing listens on that port).
    ConnRefused = 3,
    /// Protocol version not supported.
    BadVersion = 6,
}

/// The 16-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MuxHeader {
    /// Total packet length including this header.
    pub length: u32,
    /// Protocol version (1 = plist).
    pub version: u32,
    /// Message type (8 = plist).
    pub message: u32,
    /// Request tag, echoed in the reply.
    pub tag: u32,
}

impl MuxHeader {
    /// Decodes a header from the first 16 bytes.
    pub fn decode(buf: &[u8]) -> Result<MuxHeader, DecodeError> {
        take(buf, 0, HEADER_LEN)?;
        Ok(MuxHeader {
            length: u32_le(buf, 0)?,
            version: u32_le(buf, 4)?,
            message: u32_le(buf, 8)?,
            tag: u32_le(buf, 12)?,
        })
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&self.length.to_le_bytes());
        out[4..8].copy_from_slice(&self.version.to_le_bytes());
        out[8..12].copy_from_slice(&self.message.to_le_bytes());
        out[12..16].copy_from_slice(&self.tag.to_le_bytes());
        out
    }

    /// Payload length announced by the header, checked against `max_len`.
    pub fn payload_len(&self, max_len: u32) -> Result<usize, DecodeError> {
        if self.length > max_len {
            return Err(DecodeError::TooLarge {
                what: "usbmuxd packet",
                len: u64::from(self.length),
                max: u64::from(max_len),
            });
        }
        let len = self.length as usize;
        len.checked_sub(HEADER_LEN).ok_or_else(|| {
            DecodeError::malformed(
                "usbmuxd header",
                format!("length {len} is shorter than the header"),
            )
        })
    }
}

/// One decoded packet: header and raw payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuxPacket {
    /// The header.
    pub header: MuxHeader,
    /// The payload (an XML plist for version 1).
    pub payload: Vec<u8>,
}

impl MuxPacket {
    /// Parses the payload as a plist dictionary (version 1 messages).
    pub fn plist(&self) -> Result<plist::Dictionary, DecodeError> {
        match parse_plist(&self.payload, "usbmuxd message")? {
            plist::Value::Dictionary(d) => Ok(d),
            _ => Err(DecodeError::malformed(
                "usbmuxd message",
                "payload is not a dictionary",
            )),
        }
    }

    /// The `MessageType` string of a plist packet.
    pub fn message_type(&self) -> Result<String, DecodeError> {
        let d = self.plist()?;
        d.get("MessageType")
            .and_then(plist::Value::as_string)
            .map(str::to_string)
            .ok_or_else(|| DecodeError::malformed("usbmuxd message", "no MessageType"))
    }
}

/// Decodes one packet from the start of `buf`; returns it and the bytes consumed.
pub fn decode_packet(buf: &[u8], max_len: u32) -> Result<(MuxPacket, usize), DecodeError> {
    let header = MuxHeader::decode(buf)?;
    let payload_len = header.payload_len(max_len)?;
    let payload = take(buf, HEADER_LEN, payload_len)?.to_vec();
    Ok((MuxPacket { header, payload }, HEADER_LEN + payload_len))
}

/// Encodes a version-1 plist packet (always XML, see the module doc) with the given tag.
pub fn encode_plist_packet(tag: u32, value: &plist::Value) -> Result<Vec<u8>, EncodeError> {
    let body = plist_to_bytes(value, PlistFormat::Xml)?;
    let length = u32::try_from(body.len() + HEADER_LEN).map_err(|_| EncodeError::TooLong {
        what: "usbmuxd packet",
        len: body.len(),
    })?;
    let header = MuxHeader {
        length,
        version: VERSION_PLIST,
        message: message::PLIST,
        tag,
    };
    let mut out = Vec::with_capacity(length as usize);
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The `{MessageType: "Result", Number}` reply.
pub fn result_message(code: ResultCode) -> plist::Value {
    let mut d = plist::Dictionary::new();
    d.insert("MessageType".into(), "Result".into());
    d.insert("Number".into(), plist::Value::Integer((code as u64).into()));
    plist::Value::Dictionary(d)
}

/// Converts a TCP port to the `PortNumber` value clients put in `Connect`.
///
/// Clients send `htons(port)` stored as a plain integer (62078 → 32498 on every
/// little-endian host), so the value on the wire is the byte-swapped port.
pub fn port_to_wire(port: u16) -> u16 {
    port.swap_bytes()
}

/// Inverse of [`port_to_wire`].
pub fn port_from_wire(value: u16) -> u16 {
    value.swap_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lockdown_port_swaps_like_htons() {
        assert_eq!(port_to_wire(62078), 32498);
        assert_eq!(port_from_wire(32498), 62078);
    }

    #[test]
    fn header_shorter_than_itself_is_malformed() {
        let h = MuxHeader {
            length: 3,
            version: 1,
            message: 8,
            tag: 1,
        };
        assert!(matches!(
            decode_packet(&h.encode(), DEFAULT_MAX_LEN),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn result_round_trip() {
        let pkt = encode_plist_packet(7, &result_message(ResultCode::BadDevice)).expect("encode");
        assert!(
            std::str::from_utf8(&pkt[HEADER_LEN..])
                .expect("utf8")
                .contains("<?xml")
        );
        let (back, used) = decode_packet(&pkt, DEFAULT_MAX_LEN).expect("decode");
        assert_eq!(used, pkt.len());
        assert_eq!(back.header.tag, 7);
        assert_eq!(back.message_type().expect("type"), "Result");
        assert_eq!(
            back.plist()
                .expect("dict")
                .get("Number")
                .and_then(plist::Value::as_unsigned_integer),
            Some(2)
        );
    }

    proptest! {
        #[test]
        fn round_trip(tag in any::<u32>(), name in "[A-Za-z]{1,20}", cut in 0usize..400) {
            let mut d = plist::Dictionary::new();
            d.insert("MessageType".into(), plist::Value::String(name.clone()));
            let pkt = encode_plist_packet(tag, &plist::Value::Dictionary(d)).expect("encode");
            let (back, used) = decode_packet(&pkt, DEFAULT_MAX_LEN).expect("decode");
            prop_assert_eq!(used, pkt.len());
            prop_assert_eq!(back.header.tag, tag);
            prop_assert_eq!(back.message_type().expect("type"), name);
            if cut < pkt.len() {
                prop_assert!(decode_packet(&pkt[..cut], DEFAULT_MAX_LEN).expect_err("short").is_need_more());
            }
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok((p, _)) = decode_packet(&bytes, DEFAULT_MAX_LEN) { let _ = p.plist(); }
        }
    }
}
