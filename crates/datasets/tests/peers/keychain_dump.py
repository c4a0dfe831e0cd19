"""Decrypts the keychain of an encrypted backup independently of iosnap and prints its items as JSON.

Usage: keychain_dump.py BACKUP_DIR PASSWORD
  → [{"table": "genp", "class": 7, "version": 3, "attrs": {"acct": "...", "v_Data": {"hex": "..."}}}
     | {"table": "inet", "class": 11, "skipped": "ThisDeviceOnly"}, ...]

The backup keybag and the keychain file come from iphone_backup_decrypt (a third-party reader);
the item format follows dinosec's keychain4.py and irestore's gcm.go: u32 version, u32 class,
u32 wrapped-key length, RFC 3394 wrapped key, AES-256-GCM ciphertext with an EMPTY IV (the GCM
counter block J0 is all zeros), 16-byte tag; the plaintext of version 3 is Apple's DER property
list. GCM is assembled here from AES-ECB, AES-CTR and a GHASH written from the GCM specification,
so nothing of iosnap's Rust code is reused. Used by crates/datasets/tests/keychain.rs.
"""
import json
import plistlib
import struct
import sys

from Crypto.Cipher import AES
from iphone_backup_decrypt import EncryptedBackup


def gf_mult(x, y):
    """Multiplication in GF(2^128) with GCM's bit order (NIST SP 800-38D, algorithm 1)."""
    r = 0xE1 << 120
    z, v = 0, y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ r if v & 1 else v >> 1
    return z


def ghash(h, aad, ct):
    def blocks(b):
        b = b + b"\0" * (-len(b) % 16)
        return [int.from_bytes(b[i:i + 16], "big") for i in range(0, len(b), 16)]
    y = 0
    lens = struct.pack(">QQ", len(aad) * 8, len(ct) * 8)
    for blk in blocks(aad) + blocks(ct) + [int.from_bytes(lens, "big")]:
        y = gf_mult(y ^ blk, h)
    return y


def gcm_decrypt_empty_iv(key, ct, tag):
    ecb = AES.new(key, AES.MODE_ECB)
    h = int.from_bytes(ecb.encrypt(b"\0" * 16), "big")
    j0 = b"\0" * 16  # empty IV: J0 = GHASH_H(0^64 || [0]_64) = 0
    expected = ghash(h, b"", ct) ^ int.from_bytes(ecb.encrypt(j0), "big")
    if expected.to_bytes(16, "big") != tag:
        raise ValueError("GCM tag mismatch")
    ctr = AES.new(key, AES.MODE_CTR, nonce=b"\0" * 12, initial_value=1)
    return ctr.decrypt(ct)


def der(buf, pos):
    tag = buf[pos]
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    return tag, buf[pos:pos + n], pos + n


def value(tag, c):
    if tag == 0x0C:
        return c.decode("utf-8")
    if tag == 0x04:
        return {"hex": c.hex()}
    if tag == 0x02:
        return int.from_bytes(c, "big", signed=True)
    if tag == 0x01:
        return c != b"\0"
    if tag == 0x18:
        return {"date": c.decode("ascii")}
    if tag == 0x05:
        return None
    if tag == 0x31:
        out, pos = {}, 0
        while pos < len(c):
            _, pair, pos = der(c, pos)
            kt, kc, p2 = der(pair, 0)
            vt, vc, _ = der(pair, p2)
            out[value(kt, kc)] = value(vt, vc)
        return out
    if tag == 0x30:
        out, pos = [], 0
        while pos < len(c):
            t, x, pos = der(c, pos)
            out.append(value(t, x))
        return out
    raise ValueError("unexpected DER tag %#x" % tag)


def main(folder, password):
    b = EncryptedBackup(backup_directory=folder, passphrase=password)
    raw = b.extract_file_as_bytes("keychain-backup.plist", domain_like="KeychainDomain")
    kc = plistlib.loads(raw)
    out = []
    for table in ("genp", "inet", "cert", "keys"):
        for item in kc.get(table, []):
            blob = item["v_Data"]
            version, clas = struct.unpack("<LL", blob[0:8])
            clas &= 0xF
            if clas >= 9:
                out.append({"table": table, "class": clas, "skipped": "ThisDeviceOnly"})
                continue
            (length,) = struct.unpack("<L", blob[8:12])
            wrapped = blob[12:12 + length]
            key = b._keybag.unwrapKeyForClass(clas, wrapped)
            plain = gcm_decrypt_empty_iv(key, blob[12 + length:-16], blob[-16:])
            tag, content, end = der(plain, 0)
            assert end == len(plain), "trailing bytes after the DER dictionary"
            out.append({"table": table, "class": clas, "version": version, "attrs": value(tag, content)})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
