"""Security audit of the CWMP XML fast path (C parser when a body has no ``<!``).

Both parsers must agree on every corpus case, and no encoding trick may bring a DTD to
the fast path: the DTD bodies are written in every codec Python knows, with the
declaration plain, padded past 200 bytes, behind a UTF-8 BOM, or with no declaration.
"""

from __future__ import annotations

import encodings.aliases
from pathlib import Path
from xml.etree.ElementTree import ParseError, tostring

import defusedxml.ElementTree as DET
import pytest
from defusedxml.common import DefusedXmlException

from acs_emulator.cwmp.soap import _may_hold_dtd, parse_xml

CORPUS = Path(__file__).parent / "corpus" / "soap"
CODECS = sorted(set(encodings.aliases.aliases.values()) | {"utf_7", "cp037", "utf_32"})
DTD_DOC = (
    '<!DOCTYPE r [<!ENTITY a "AAAAAAAAAA"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&b;&x;</r>'
)


def _defused(body: bytes):
    return DET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)


def _outcome(parse, body: bytes) -> str:
    try:
        return "tree:" + tostring(parse(body)).decode()
    except DefusedXmlException as exc:
        return "refused:" + type(exc).__name__
    except (ParseError, ValueError) as exc:
        return "error:" + type(exc).__name__


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.xml")))
def test_both_parsers_agree_on_the_corpus(name):
    body = (CORPUS / name).read_bytes()
    variants = [body, b"\xef\xbb\xbf" + body, body.replace(b"?>", b" " * 300 + b"?>", 1)]
    for v in variants:
        got, ref = _outcome(parse_xml, v), _outcome(_defused, v)
        assert got == ref or (got.startswith("refused") and ref.startswith("refused")), (
            v[:80],
            got,
            ref,
        )


def _dtd_bodies():
    for codec in CODECS:
        try:
            inner = DTD_DOC.encode(codec)
        except (LookupError, UnicodeError):
            continue
        yield codec, "none", inner
        for label, prefix in (("plain", b""), ("bom", b"\xef\xbb\xbf")):
            yield (
                codec,
                label,
                prefix + f'<?xml version="1.0" encoding="{codec}"?>'.encode() + inner,
            )
        pad = b'<?xml version="1.0"' + b" " * 250 + f'encoding="{codec}"?>'.encode()
        yield codec, "padded", pad + inner


def test_no_encoding_brings_a_dtd_to_the_fast_path():
    tried = 0
    for codec, how, body in _dtd_bodies():
        tried += 1
        try:
            root = parse_xml(body)
        except (DefusedXmlException, ParseError, ValueError):
            continue
        pytest.fail(f"{codec}/{how}: a DTD was parsed ({(root.text or '')[:40]!r})")
    assert tried > 300


@pytest.mark.parametrize("codec", ["utf-7", "cp037", "utf-16", "iso-8859-1", "UTF-16LE"])
def test_a_padded_or_bom_declaration_cannot_hide_its_encoding(codec):
    """The old check read only the first 200 bytes and needed the declaration first."""
    padded = b'<?xml version="1.0"' + b" " * 250 + f'encoding="{codec}"?><a/>'.encode()
    bom = b"\xef\xbb\xbf" + f'<?xml version="1.0" encoding="{codec}"?><a/>'.encode()
    garbled = b'<?xml version="1.0" encoding=utf-7?><a/>'
    assert _may_hold_dtd(padded) and _may_hold_dtd(bom) and _may_hold_dtd(garbled)
    assert not _may_hold_dtd(b'<?xml version="1.0"' + b" " * 250 + b'encoding="UTF-8"?><a/>')
