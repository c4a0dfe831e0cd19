//! A tiny baseline JPEG encoder, so photos, thumbnails and attachments of the synthetic phone are
//! real JPEG files that any decoder opens (not just bytes starting with FF D8).
//!
//! Each 8×8 block is a flat colour (DC coefficient only, every AC run is an end-of-block), which
//! keeps the encoder to a hundred lines and the files to a few kilobytes while staying fully
//! standard: SOI, APP1/Exif (with DateTimeOriginal), COM, DQT, SOF0, DHT, SOS, EOI, with byte
//! stuffing in the entropy-coded data.

/// What varies from one picture to the next.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Picture {
    /// Width in pixels (rounded up to a multiple of 8).
    pub width: u16,
    /// Height in pixels (rounded up to a multiple of 8).
    pub height: u16,
    /// Two RGB colours; the image is a diagonal gradient between them.
    pub from: [u8; 3],
    /// End colour of the gradient.
    pub to: [u8; 3],
    /// EXIF DateTimeOriginal, "YYYY:MM:DD HH:MM:SS".
    pub exif_date: String,
    /// EXIF camera model, e.g. "iPhone 15 Pro".
    pub model: String,
    /// Text of the COM segment (makes each file unique).
    pub comment: String,
}

/// Quantiser of every coefficient (only DC is ever non-zero).
const Q: i32 = 8;

/// Standard luminance DC Huffman table (JPEG Annex K.3): code counts per length, then symbols.
const DC_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_VALS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
/// A minimal AC table: end-of-block (0x00) and zero-run (0xF0), two 2-bit codes.
const AC_BITS: [u8; 16] = [0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const AC_VALS: [u8; 2] = [0x00, 0xF0];

/// Canonical Huffman codes (code, length) for each symbol of a table.
fn huffman_codes(bits: &[u8; 16], vals: &[u8]) -> Vec<(u8, u16, u8)> {
    let mut out = Vec::with_capacity(vals.len());
    let mut code: u16 = 0;
    let mut k = 0;
    for (len_minus_1, &count) in bits.iter().enumerate() {
        for _ in 0..count {
            if let Some(&sym) = vals.get(k) {
                out.push((sym, code, (len_minus_1 + 1) as u8));
            }
            code += 1;
            k += 1;
        }
        code <<= 1;
    }
    out
}

/// Writes bits MSB-first with 0xFF byte stuffing.
struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    n: u8,
}

impl BitWriter {
    fn put(&mut self, value: u16, len: u8) {
        for i in (0..len).rev() {
            self.acc = (self.acc << 1) | u32::from((value >> i) & 1);
            self.n += 1;
            if self.n == 8 {
                let byte = (self.acc & 0xFF) as u8;
                self.out.push(byte);
                if byte == 0xFF {
                    self.out.push(0x00);
                }
                self.acc = 0;
                self.n = 0;
            }
        }
    }

    /// Pads the last byte with 1-bits, as the standard requires.
    fn finish(mut self) -> Vec<u8> {
        while self.n != 0 {
            self.put(1, 1);
        }
        self.out
    }
}

fn segment(out: &mut Vec<u8>, marker: u8, payload: &[u8]) {
    out.push(0xFF);
    out.push(marker);
    let len = (payload.len() + 2) as u16;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A little-endian TIFF/Exif block with Make, Model and DateTimeOriginal.
fn exif(model: &str, date: &str) -> Vec<u8> {
    let make = b"Apple\0";
    let mut model_b = model.as_bytes().to_vec();
    model_b.push(0);
    let mut date_b = date.as_bytes().to_vec();
    date_b.resize(19, b'0');
    date_b.push(0);
    let ifd0_len = 2 + 3 * 12 + 4;
    let make_off = 8 + ifd0_len;
    let model_off = make_off + make.len();
    let mut exif_off = model_off + model_b.len();
    exif_off += exif_off % 2;
    let date_off = exif_off + 2 + 12 + 4;

    let mut t = Vec::new();
    t.extend_from_slice(b"II\x2A\x00");
    t.extend_from_slice(&8u32.to_le_bytes());
    let entry = |t: &mut Vec<u8>, tag: u16, typ: u16, count: u32, value: u32| {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&typ.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&value.to_le_bytes());
    };
    t.extend_from_slice(&3u16.to_le_bytes());
    entry(&mut t, 0x010F, 2, make.len() as u32, make_off as u32);
    entry(&mut t, 0x0110, 2, model_b.len() as u32, model_off as u32);
    entry(&mut t, 0x8769, 4, 1, exif_off as u32);
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(make);
    t.extend_from_slice(&model_b);
    if t.len() < exif_off {
        t.push(0);
    }
    t.extend_from_slice(&1u16.to_le_bytes());
    entry(&mut t, 0x9003, 2, date_b.len() as u32, date_off as u32);
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&date_b);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&t);
    app1
}

fn dht(class_id: u8, bits: &[u8; 16], vals: &[u8]) -> Vec<u8> {
    let mut p = vec![class_id];
    p.extend_from_slice(bits);
    p.extend_from_slice(vals);
    p
}

/// Encodes `pic` as a baseline JPEG.
pub(crate) fn encode(pic: &Picture) -> Vec<u8> {
    let bw = usize::from(pic.width.max(8)).div_ceil(8);
    let bh = usize::from(pic.height.max(8)).div_ceil(8);
    let (w, h) = ((bw * 8) as u16, (bh * 8) as u16);
    let mut out = vec![0xFF, 0xD8];
    segment(&mut out, 0xE1, &exif(&pic.model, &pic.exif_date));
    segment(&mut out, 0xFE, pic.comment.as_bytes());
    let mut dqt = vec![0u8];
    dqt.extend_from_slice(&[Q as u8; 64]);
    segment(&mut out, 0xDB, &dqt);
    let mut sof = vec![8];
    sof.extend_from_slice(&h.to_be_bytes());
    sof.extend_from_slice(&w.to_be_bytes());
    sof.push(3);
    for id in 1..=3u8 {
        sof.extend_from_slice(&[id, 0x11, 0]);
    }
    segment(&mut out, 0xC0, &sof);
    segment(&mut out, 0xC4, &dht(0x00, &DC_BITS, &DC_VALS));
    segment(&mut out, 0xC4, &dht(0x10, &AC_BITS, &AC_VALS));
    segment(&mut out, 0xDA, &[3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]);

    let dc = huffman_codes(&DC_BITS, &DC_VALS);
    let ac = huffman_codes(&AC_BITS, &AC_VALS);
    let eob = ac
        .iter()
        .find(|c| c.0 == 0)
        .map(|c| (c.1, c.2))
        .unwrap_or((0, 2));
    let mut bits = BitWriter {
        out: Vec::new(),
        acc: 0,
        n: 0,
    };
    let mut pred = [0i32; 3];
    let denom = (bw + bh).max(2) - 2;
    for by in 0..bh {
        for bx in 0..bw {
            let t = if denom == 0 {
                0.0
            } else {
                (bx + by) as f64 / denom as f64
            };
            let c: Vec<f64> = (0..3)
                .map(|i| f64::from(pic.from[i]) * (1.0 - t) + f64::from(pic.to[i]) * t)
                .collect();
            let (r, g, b) = (c[0], c[1], c[2]);
            let ycc = [
                0.299 * r + 0.587 * g + 0.114 * b,
                128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b,
                128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b,
            ];
            for (comp, v) in ycc.iter().enumerate() {
                // DC of a flat block = 8 × (value − 128); then quantise.
                let q = ((8.0 * (v - 128.0)) / f64::from(Q)).round() as i32;
                let diff = q - pred[comp];
                pred[comp] = q;
                let mag = diff.unsigned_abs();
                let cat = (32 - mag.leading_zeros()) as u8;
                let (code, len) = dc
                    .iter()
                    .find(|c| c.0 == cat)
                    .map(|c| (c.1, c.2))
                    .unwrap_or((0, 2));
                bits.put(code, len);
                if cat > 0 {
                    let v = if diff < 0 {
                        diff + (1 << cat) - 1
                    } else {
                        diff
                    };
                    bits.put(v as u16, cat);
                }
                bits.put(eob.0, eob.1);
            }
        }
    }
    out.extend_from_slice(&bits.finish());
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// Walks the marker segments of a JPEG and returns (width, height) from SOF0, checking SOI, every
/// segment length, the presence of SOS and the final EOI. Used by tests and by callers that want
/// to sanity-check generated files.
pub fn check_structure(data: &[u8]) -> Result<(u16, u16), String> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return Err("no SOI".into());
    }
    if data[data.len() - 2..] != [0xFF, 0xD9] {
        return Err("no EOI at end".into());
    }
    let mut i = 2;
    let mut size = None;
    loop {
        if i + 4 > data.len() || data[i] != 0xFF {
            return Err(format!("bad marker at {i}"));
        }
        let marker = data[i + 1];
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        if len < 2 || i + 2 + len > data.len() {
            return Err(format!("bad length {len} at {i}"));
        }
        if marker == 0xC0 {
            if len < 8 {
                return Err("short SOF0".into());
            }
            let h = u16::from_be_bytes([data[i + 5], data[i + 6]]);
            let w = u16::from_be_bytes([data[i + 7], data[i + 8]]);
            size = Some((w, h));
        }
        i += 2 + len;
        if marker == 0xDA {
            break;
        }
    }
    // Entropy-coded data: every 0xFF must be stuffed (00) until the EOI.
    while i < data.len() - 2 {
        if data[i] == 0xFF && data[i + 1] != 0x00 {
            return Err(format!("unstuffed 0xFF at {i}"));
        }
        i += if data[i] == 0xFF { 2 } else { 1 };
    }
    size.ok_or_else(|| "no SOF0".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pic() -> Picture {
        Picture {
            width: 64,
            height: 48,
            from: [250, 10, 20],
            to: [0, 120, 255],
            exif_date: "2024:05:06 07:08:09".into(),
            model: "iPhone 15 Pro".into(),
            comment: "IMG_0001".into(),
        }
    }

    #[test]
    fn structure_is_valid() {
        let j = encode(&pic());
        assert_eq!(check_structure(&j), Ok((64, 48)));
        assert!(j.windows(4).any(|w| w == b"Exif"));
    }

    #[test]
    fn odd_sizes_round_up() {
        let mut p = pic();
        p.width = 13;
        p.height = 1;
        assert_eq!(check_structure(&encode(&p)), Ok((16, 8)));
    }

    #[test]
    fn broken_files_are_rejected() {
        let j = encode(&pic());
        assert!(check_structure(&j[..j.len() - 1]).is_err());
        assert!(check_structure(&j[1..]).is_err());
        let mut k = j.clone();
        k[5] = 0xFF; // corrupt the APP1 length
        assert!(check_structure(&k).is_err());
    }

    #[test]
    fn huffman_codes_are_canonical() {
        let c = huffman_codes(&DC_BITS, &DC_VALS);
        assert_eq!(c[0], (0, 0b00, 2));
        assert_eq!(c[1], (1, 0b010, 3));
        assert_eq!(c[11], (11, 0b1_1111_1110, 9));
    }
}
