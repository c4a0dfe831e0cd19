//! Length-prefixed plist framing used by lockdown services, AFC-free service channels and the
//! DeviceLink (mobilebackup2) channel: a 4-byte big-endian length, then an XML or binary plist.
//!
//! Written here (not taken from `idevice`) because idevice allocates whatever length the peer
//! announces and its framing helpers are private; a phone (or anything on the other end of a
//! socket) must never make us allocate gigabytes or panic.

use std::io::Cursor;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest plist message accepted from a device. Info/List answers and DL messages are small;
/// a few MiB covers Applications dictionaries with icons. Anything larger is a protocol error.
pub const MAX_PLIST_LEN: u32 = 64 * 1024 * 1024;

/// A boxed bidirectional byte stream (a usbmuxd connection turned into a device port pipe).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug> Stream for T {}

/// Errors of the framing layer, mapped by callers to [`crate::Error`] with context.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed or closed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The announced length is larger than [`MAX_PLIST_LEN`].
    #[error("announced plist length {0} exceeds the limit")]
    TooLong(u32),
    /// The body is not a plist.
    #[error("message is not a valid plist: {0}")]
    BadPlist(String),
}

/// Reads one framed plist.
pub async fn read_plist<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
) -> Result<plist::Value, FrameError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len);
    if len > MAX_PLIST_LEN {
        return Err(FrameError::TooLong(len));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body).await?;
    plist::Value::from_reader(Cursor::new(body)).map_err(|e| FrameError::BadPlist(e.to_string()))
}

/// Writes one framed plist, binary (as LIMD and idevice send DeviceLink messages) or XML.
pub async fn write_plist<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    value: &plist::Value,
    binary: bool,
) -> Result<(), FrameError> {
    let mut body = Vec::new();
    let res = if binary {
        value.to_writer_binary(&mut body)
    } else {
        value.to_writer_xml(&mut body)
    };
    res.map_err(|e| FrameError::BadPlist(e.to_string()))?;
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLong(u32::MAX))?;
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    w.write_all(&out).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_binary_and_xml() {
        for binary in [true, false] {
            let mut buf = Vec::new();
            let v = plist::Value::Array(vec!["DLMessageDeviceReady".into(), 3u64.into()]);
            write_plist(&mut buf, &v, binary).await.unwrap();
            let mut r = &buf[..];
            assert_eq!(read_plist(&mut r).await.unwrap(), v);
        }
    }

    #[tokio::test]
    async fn lying_length_is_rejected_without_allocating() {
        let buf = [0xffu8, 0xff, 0xff, 0xff, 1, 2, 3];
        let mut r = &buf[..];
        assert!(matches!(
            read_plist(&mut r).await,
            Err(FrameError::TooLong(_))
        ));
    }

    #[tokio::test]
    async fn truncated_and_garbage_bodies_are_errors() {
        let buf = [0u8, 0, 0, 10, b'b'];
        let mut r = &buf[..];
        assert!(matches!(read_plist(&mut r).await, Err(FrameError::Io(_))));
        let buf = [0u8, 0, 0, 3, b'x', b'y', b'z'];
        let mut r = &buf[..];
        assert!(matches!(
            read_plist(&mut r).await,
            Err(FrameError::BadPlist(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let mut r = &bytes[..];
                let _ = read_plist(&mut r).await;
            });
        }
    }
}
