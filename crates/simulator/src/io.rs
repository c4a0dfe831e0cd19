//! Async helpers over any byte stream: framed plists, mux packets, and the boxed stream type
//! every connection handler receives once usbmuxd `Connect` turned a socket into a pipe.

use std::io;

use iosnap_proto::plist_frame::{self, PlistFormat};
use iosnap_proto::usbmux::{self, MuxHeader, MuxPacket};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A duplex byte stream (TCP or Unix socket, later possibly wrapped in TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A boxed connection, so TCP and Unix listeners share every handler.
pub type BoxIo = Box<dyn Io>;

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Reads exactly `buf.len()` bytes, or returns `Ok(false)` on a clean EOF before the first byte.
pub async fn read_exact_or_eof<S: AsyncRead + Unpin + ?Sized>(
    s: &mut S,
    buf: &mut [u8],
) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        let n = s.read(&mut buf[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(false);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-message",
            ));
        }
        got += n;
    }
    Ok(true)
}

/// Reads one framed plist; `None` on a clean EOF between messages.
pub async fn read_plist<S: AsyncRead + Unpin + ?Sized>(
    s: &mut S,
) -> io::Result<Option<(plist::Value, PlistFormat)>> {
    let mut prefix = [0u8; plist_frame::PREFIX_LEN];
    if !read_exact_or_eof(s, &mut prefix).await? {
        return Ok(None);
    }
    let len = plist_frame::decode_prefix(&prefix, plist_frame::DEFAULT_MAX_LEN).map_err(invalid)?
        as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    let value = plist_frame::parse_plist(&body, "plist message").map_err(invalid)?;
    Ok(Some((value, PlistFormat::detect(&body))))
}

/// Writes one framed plist and flushes.
pub async fn write_plist<S: AsyncWrite + Unpin + ?Sized>(
    s: &mut S,
    v: &plist::Value,
    format: PlistFormat,
) -> io::Result<()> {
    let frame = plist_frame::encode_frame(v, format).map_err(invalid)?;
    s.write_all(&frame).await?;
    s.flush().await
}

/// Reads one usbmuxd packet; `None` on a clean EOF between packets.
pub async fn read_mux_packet<S: AsyncRead + Unpin + ?Sized>(
    s: &mut S,
) -> io::Result<Option<MuxPacket>> {
    let mut head = [0u8; usbmux::HEADER_LEN];
    if !read_exact_or_eof(s, &mut head).await? {
        return Ok(None);
    }
    let header = MuxHeader::decode(&head).map_err(invalid)?;
    let len = header
        .payload_len(usbmux::DEFAULT_MAX_LEN)
        .map_err(invalid)?;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await?;
    Ok(Some(MuxPacket { header, payload }))
}

/// Writes one usbmuxd plist packet (XML) with `tag`.
pub async fn write_mux_plist<S: AsyncWrite + Unpin + ?Sized>(
    s: &mut S,
    tag: u32,
    v: &plist::Value,
) -> io::Result<()> {
    let pkt = usbmux::encode_plist_packet(tag, v).map_err(invalid)?;
    s.write_all(&pkt).await?;
    s.flush().await
}

/// Builds a plist dictionary from key/value pairs.
pub fn dict<const N: usize>(pairs: [(&str, plist::Value); N]) -> plist::Dictionary {
    let mut d = plist::Dictionary::new();
    for (k, v) in pairs {
        d.insert(k.to_string(), v);
    }
    d
}
