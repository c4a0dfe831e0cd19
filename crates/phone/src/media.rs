//! Headers of the media containers the phone holds (HEIC, MOV, M4A, AMR) and binary plists.
//! The payload after a header is keyed pseudo-random data: enough for a backup tool, which
//! never decodes media, and for `file`-style sniffing by a later exporter.

/// An ISO-BMFF `ftyp` box followed by an `mdat` box header sized so that the file is `len` bytes.
fn bmff(major: &[u8; 4], compatible: &[&[u8; 4]], len: u64) -> Vec<u8> {
    let mut h = Vec::new();
    let ftyp_len = 16 + 4 * compatible.len() as u32;
    h.extend_from_slice(&ftyp_len.to_be_bytes());
    h.extend_from_slice(b"ftyp");
    h.extend_from_slice(major);
    h.extend_from_slice(&0u32.to_be_bytes());
    for c in compatible {
        h.extend_from_slice(*c);
    }
    let mdat_len = len.saturating_sub(u64::from(ftyp_len));
    h.extend_from_slice(&u32::try_from(mdat_len).unwrap_or(u32::MAX).to_be_bytes());
    h.extend_from_slice(b"mdat");
    h
}

/// Header of a HEIC still (`ftyp heic`, compatible mif1/heic), `len` bytes in total.
pub(crate) fn heic_header(len: u64) -> Vec<u8> {
    bmff(b"heic", &[b"mif1", b"MiHE", b"miaf", b"MiHB", b"heic"], len)
}

/// Header of a QuickTime movie (Live Photo motion part, videos).
pub(crate) fn mov_header(len: u64) -> Vec<u8> {
    bmff(b"qt  ", &[b"qt  "], len)
}

/// Header of an AAC audio file as Voice Memos writes (`ftyp M4A `).
pub(crate) fn m4a_header(len: u64) -> Vec<u8> {
    bmff(b"M4A ", &[b"M4A ", b"isom", b"mp42"], len)
}

/// Header of an AMR-NB voicemail: the `#!AMR\n` magic and a first 12.2 kbit/s frame header.
pub(crate) fn amr_header() -> Vec<u8> {
    b"#!AMR\n\x3c".to_vec()
}

/// Serialises a plist value as a binary plist (what iOS writes for preferences).
pub(crate) fn binary_plist(value: &plist::Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail for the value types we build (no dates before 1 AD).
    if plist::to_writer_binary(&mut out, value).is_err() {
        out.clear();
    }
    out
}

/// A small header for bulk files so that each looks like its extension claims.
pub(crate) fn bulk_header(ext: &str, index: u64, version: u32) -> Vec<u8> {
    let stamp = format!(" iosnap-bulk {index} v{version}\n");
    let mut h: Vec<u8> = match ext {
        "pdf" => b"%PDF-1.7\n%".to_vec(),
        "m4a" => return m4a_header(0)[..24].to_vec(),
        "mp4" | "mov" => b"\0\0\0\x14ftypmp42\0\0\0\0mp42".to_vec(),
        "zip" | "epub" => b"PK\x03\x04".to_vec(),
        "json" => b"{\"_\":\"".to_vec(),
        _ => Vec::new(),
    };
    h.extend_from_slice(stamp.as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heic_boxes() {
        let h = heic_header(1000);
        assert_eq!(&h[4..12], b"ftypheic");
        let ftyp = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        assert_eq!(&h[ftyp + 4..ftyp + 8], b"mdat");
        let mdat = u32::from_be_bytes([h[ftyp], h[ftyp + 1], h[ftyp + 2], h[ftyp + 3]]) as usize;
        assert_eq!(ftyp + mdat, 1000);
    }

    #[test]
    fn plist_is_binary() {
        let mut d = plist::Dictionary::new();
        d.insert("a".into(), plist::Value::Boolean(true));
        let b = binary_plist(&plist::Value::Dictionary(d));
        assert!(b.starts_with(b"bplist00"));
    }
}
