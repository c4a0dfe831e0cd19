//! A small binary property list (`bplist00`) writer for plists whose shape is known in
//! advance, such as the `MBFile` archive of every row of a `Manifest.db`.
//!
//! The `plist` crate builds a `Value` tree and deduplicates equal objects through a hash map
//! before writing; for the ≈ 30 objects of an `MBFile` (with key, digest and xattr) that was
//! 9.5 µs a row in a release build, against 1.9 µs written here, and it was half of a
//! simulated phone's `Manifest.db` time. Here objects are appended as they are described and
//! written once, in order, without deduplication (which the format allows: every reader looks
//! objects up by reference). Used only for output whose correctness the tests check by decoding
//! it with the `plist` crate.

/// One object; containers refer to others by their index.
pub(crate) enum Obj<'a> {
    Str(&'a str),
    Int(i128),
    Uid(u64),
    Data(&'a [u8]),
    Array(Vec<usize>),
    Dict(Vec<(usize, usize)>),
}

/// Objects of one plist, written by [`Bplist::finish`].
#[derive(Default)]
pub(crate) struct Bplist<'a> {
    objs: Vec<Obj<'a>>,
}

impl<'a> Bplist<'a> {
    /// Adds an object; returns its reference.
    pub(crate) fn add(&mut self, o: Obj<'a>) -> usize {
        self.objs.push(o);
        self.objs.len() - 1
    }

    /// The finished plist with `top` as its root object.
    pub(crate) fn finish(self, top: usize) -> Vec<u8> {
        let n = self.objs.len();
        let ref_size = bytes_for(n as u64);
        let mut out = Vec::with_capacity(64 + 24 * n);
        out.extend_from_slice(b"bplist00");
        let mut offsets = Vec::with_capacity(n);
        for o in &self.objs {
            offsets.push(out.len() as u64);
            write_obj(&mut out, o, ref_size);
        }
        let table = out.len() as u64;
        let offset_size = bytes_for(table);
        for off in offsets {
            put_be(&mut out, off, offset_size);
        }
        out.extend_from_slice(&[0; 6]);
        out.push(offset_size as u8);
        out.push(ref_size as u8);
        out.extend_from_slice(&(n as u64).to_be_bytes());
        out.extend_from_slice(&(top as u64).to_be_bytes());
        out.extend_from_slice(&table.to_be_bytes());
        out
    }
}

/// The fewest bytes (1, 2, 4 or 8) that hold `v` unsigned.
fn bytes_for(v: u64) -> usize {
    if v <= 0xff {
        1
    } else if v <= 0xffff {
        2
    } else if v <= 0xffff_ffff {
        4
    } else {
        8
    }
}

fn put_be(out: &mut Vec<u8>, v: u64, size: usize) {
    let b = v.to_be_bytes();
    out.extend_from_slice(b.get(8 - size.min(8)..).unwrap_or(&b));
}

/// A marker with a count: in its low nibble, or 0xF followed by an integer object.
fn put_marker(out: &mut Vec<u8>, kind: u8, count: usize) {
    if count < 15 {
        out.push(kind | count as u8);
    } else {
        out.push(kind | 0x0f);
        put_int(out, count as i128);
    }
}

/// Integers: 1, 2 or 4 bytes unsigned, 8 bytes signed, 16 bytes for what only fits unsigned
/// in 64 bits (as CoreFoundation and the `plist` crate write them).
fn put_int(out: &mut Vec<u8>, v: i128) {
    if (0..=0xff).contains(&v) {
        out.push(0x10);
        out.push(v as u8);
    } else if (0..=0xffff).contains(&v) {
        out.push(0x11);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if (0..=0xffff_ffff).contains(&v) {
        out.push(0x12);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else if (i128::from(i64::MIN)..=i128::from(i64::MAX)).contains(&v) {
        out.push(0x13);
        out.extend_from_slice(&(v as i64).to_be_bytes());
    } else {
        out.push(0x14);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn write_obj(out: &mut Vec<u8>, o: &Obj<'_>, ref_size: usize) {
    match o {
        Obj::Int(v) => put_int(out, *v),
        Obj::Uid(v) => {
            let size = bytes_for(*v);
            out.push(0x80 | (size as u8 - 1));
            put_be(out, *v, size);
        }
        Obj::Data(d) => {
            put_marker(out, 0x40, d.len());
            out.extend_from_slice(d);
        }
        Obj::Str(s) if s.is_ascii() => {
            put_marker(out, 0x50, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Obj::Str(s) => {
            let units: Vec<u16> = s.encode_utf16().collect();
            put_marker(out, 0x60, units.len());
            for u in units {
                out.extend_from_slice(&u.to_be_bytes());
            }
        }
        Obj::Array(refs) => {
            put_marker(out, 0xa0, refs.len());
            for r in refs {
                put_be(out, *r as u64, ref_size);
            }
        }
        Obj::Dict(pairs) => {
            put_marker(out, 0xd0, pairs.len());
            for (k, _) in pairs {
                put_be(out, *k as u64, ref_size);
            }
            for (_, v) in pairs {
                put_be(out, *v as u64, ref_size);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plist::{Dictionary, Uid, Value};
    use proptest::prelude::*;

    fn parse(b: &[u8]) -> Value {
        Value::from_reader(std::io::Cursor::new(b)).expect("our plist parses")
    }

    proptest! {
        /// Every kind of object, at every size class, reads back as what was written.
        #[test]
        fn reads_back_with_the_plist_crate(
            ints in proptest::collection::vec(any::<i64>(), 0..20),
            big in any::<u64>(),
            uid in any::<u64>(),
            s in ".{0,40}",
            data in proptest::collection::vec(any::<u8>(), 0..300),
            many in 0usize..300,
        ) {
            let mut b = Bplist::default();
            let mut arr = Vec::new();
            for i in &ints {
                arr.push(b.add(Obj::Int(i128::from(*i))));
            }
            arr.push(b.add(Obj::Int(i128::from(big))));
            for _ in 0..many {
                arr.push(b.add(Obj::Str("x")));
            }
            let ks = b.add(Obj::Str("s"));
            let vs = b.add(Obj::Str(&s));
            let kd = b.add(Obj::Str("d"));
            let vd = b.add(Obj::Data(&data));
            let ku = b.add(Obj::Str("u"));
            let vu = b.add(Obj::Uid(uid));
            let ka = b.add(Obj::Str("a"));
            let va = b.add(Obj::Array(arr));
            let top = b.add(Obj::Dict(vec![(ks, vs), (kd, vd), (ku, vu), (ka, va)]));
            let v = parse(&b.finish(top));

            let mut want_arr: Vec<Value> = ints.iter().map(|i| Value::Integer((*i).into())).collect();
            want_arr.push(Value::Integer(big.into()));
            want_arr.extend(std::iter::repeat_n(Value::String("x".into()), many));
            let mut want = Dictionary::new();
            want.insert("s".into(), Value::String(s.clone()));
            want.insert("d".into(), Value::Data(data.clone()));
            want.insert("u".into(), Value::Uid(Uid::new(uid)));
            want.insert("a".into(), Value::Array(want_arr));
            prop_assert_eq!(v, Value::Dictionary(want));
        }
    }
}
