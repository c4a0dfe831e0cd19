//! A real (tiny) PNG for springboardservices `getIconPNGData`: hosts store the bytes in
//! Info.plist, and a viewer must be able to open them, so the file is built properly —
//! signature, IHDR, one IDAT (zlib stream with a stored deflate block), IEND, with CRCs.

const SIZE: u32 = 16;

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A 16×16 RGBA app icon (rounded blue square look-alike: a solid colour with a border).
pub fn icon() -> Vec<u8> {
    let mut raw = Vec::with_capacity(((SIZE * 4 + 1) * SIZE) as usize);
    for y in 0..SIZE {
        raw.push(0); // filter: none
        for x in 0..SIZE {
            let edge = x == 0 || y == 0 || x == SIZE - 1 || y == SIZE - 1;
            raw.extend_from_slice(if edge {
                &[0x20, 0x40, 0x90, 0xFF]
            } else {
                &[0x30, 0x80, 0xF0, 0xFF]
            });
        }
    }
    let mut z = vec![0x78, 0x01]; // zlib header, no compression preset
    z.push(1); // final stored block
    let len = raw.len() as u16;
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&(!len).to_le_bytes());
    z.extend_from_slice(&raw);
    z.extend_from_slice(&adler32(&raw).to_be_bytes());

    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&SIZE.to_be_bytes());
    ihdr.extend_from_slice(&SIZE.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA, deflate, no filter, no interlace

    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_known_values() {
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn icon_is_structurally_a_png() {
        let png = icon();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(png.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]));
        // zlib header check: (CMF*256 + FLG) % 31 == 0
        assert_eq!((0x78u32 * 256 + 0x01) % 31, 0);
    }
}
