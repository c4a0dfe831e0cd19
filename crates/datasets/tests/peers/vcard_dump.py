"""Parses a .vcf file with vobject (an independent parser) and prints its cards as JSON.

Used by crates/datasets/tests/export.rs to check iosnap's vCard export field by field.
"""
import base64
import io
import json
import sys

import vobject


def values(card, name):
    return [c.value for c in card.contents.get(name, [])]


def raw_photos(text):
    """PHOTO values per card, from vobject's unfolded content lines before its text decoding.

    vobject 0.9.9 decodes every value as vCard 3.0 text, splitting at unescaped commas, which
    truncates a vCard 4.0 `data:` URI; the raw content line keeps it whole.
    """
    photos, current = [], None
    for line, n in vobject.base.getLogicalLines(io.StringIO(text)):
        cl = vobject.base.textLineToContentLine(line, n)
        if cl.name == "BEGIN":
            current = None
        elif cl.name == "PHOTO":
            current = cl.value
        elif cl.name == "END":
            photos.append(current)
    return photos


def main(path):
    out = []
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    raw = raw_photos(text)
    for i, card in enumerate(vobject.readComponents(text)):
        n = card.n.value if "n" in card.contents else None
        photo = None
        for p in card.contents.get("photo", []):
            v = p.value
            if isinstance(v, bytes):
                photo = base64.b64encode(v).decode()
            elif card.version.value == "4.0":
                uri = raw[i] or ""
                assert uri.startswith("data:image/"), uri[:40]
                photo = uri.split(",", 1)[1]
        out.append({
            "version": card.version.value,
            "fn": card.fn.value,
            "family": n.family if n else None,
            "given": n.given if n else None,
            "tel": values(card, "tel"),
            "email": values(card, "email"),
            "org": values(card, "org"),
            "title": values(card, "title"),
            "note": values(card, "note"),
            "photo": photo,
        })
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
