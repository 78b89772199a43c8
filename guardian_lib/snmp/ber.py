"""A small, fast BER codec for SNMPv1/v2c messages (RFC 3416 PDUs).

pysnmp encodes and decodes through pyasn1 objects and spends about 200 µs of CPU per OID;
this codec handles the few shapes an SNMP poller and a read-only agent need (GET, GETNEXT,
GETBULK, Response with INTEGER / OCTET STRING / OID / counters / exceptions) in a few µs
per OID. SNMPv3 stays on pysnmp. Values are ``(tag, python value)`` pairs with snmprec's
type numbers: 2 INTEGER, 4 OCTET STRING, 5 NULL, 6 OID, 64 IpAddress, 65 Counter32,
66 Gauge32, 67 TimeTicks, 68 Opaque, 70 Counter64, and 128 / 129 / 130 for
noSuchObject / noSuchInstance / endOfMibView.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "BerError",
    "Message",
    "GET",
    "GETNEXT",
    "RESPONSE",
    "GETBULK",
    "NO_SUCH_OBJECT",
    "NO_SUCH_INSTANCE",
    "END_OF_MIB_VIEW",
    "encode_message",
    "decode_message",
]

GET, GETNEXT, RESPONSE, SET, GETBULK = 0xA0, 0xA1, 0xA2, 0xA3, 0xA5
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 128, 129, 130
_APP_TAGS = {64: 0x40, 65: 0x41, 66: 0x42, 67: 0x43, 68: 0x44, 70: 0x46}
_EXCEPTIONS = {0x80: NO_SUCH_OBJECT, 0x81: NO_SUCH_INSTANCE, 0x82: END_OF_MIB_VIEW}


class BerError(ValueError):
    """The bytes are not a well-formed SNMPv1/v2c message."""


@dataclass
class Message:
    """An SNMPv1/v2c message.

    Attributes
    ----------
    version : int
        0 for v1, 1 for v2c.
    community : bytes
    pdu_type : int
        :data:`GET`, :data:`GETNEXT`, :data:`RESPONSE`, :data:`GETBULK`, …
    request_id : int
    error_status, error_index : int
        For GETBULK: non-repeaters and max-repetitions.
    varbinds : list of (oid tuple, (tag, value))
    """

    version: int
    community: bytes
    pdu_type: int
    request_id: int
    error_status: int
    error_index: int
    varbinds: list[tuple[tuple[int, ...], tuple[int, Any]]]


# --- encoding ------------------------------------------------------------------------------


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _len(len(body)) + body


def _int_body(v: int) -> bytes:
    return v.to_bytes((v + (v < 0)).bit_length() // 8 + 1, "big", signed=True)


def _uint_body(v: int) -> bytes:
    body = v.to_bytes(v.bit_length() // 8 + 1, "big")
    return body


def _oid_body(oid: tuple[int, ...]) -> bytes:
    if len(oid) < 2:
        raise BerError(f"OID needs at least two sub-ids, got {oid}")
    out = bytearray((oid[0] * 40 + oid[1],))
    for sub in oid[2:]:
        if sub < 0x80:
            out.append(sub)
            continue
        chunk = bytearray()
        while sub:
            chunk.append((sub & 0x7F) | 0x80)
            sub >>= 7
        chunk[0] &= 0x7F
        out += chunk[::-1]
    return bytes(out)


def _value(tag: int, value: Any) -> bytes:
    if tag == 2:
        return _tlv(0x02, _int_body(int(value)))
    if tag == 4 or tag == 68:
        data = value if isinstance(value, bytes) else str(value).encode()
        return _tlv(0x04 if tag == 4 else 0x44, data)
    if tag == 6:
        oid = value if isinstance(value, tuple) else tuple(int(p) for p in value.split("."))
        return _tlv(0x06, _oid_body(oid))
    if tag == 5:
        return b"\x05\x00"
    if tag == 64:
        return _tlv(0x40, bytes(int(p) for p in str(value).split(".")))
    if tag in _APP_TAGS:
        return _tlv(_APP_TAGS[tag], _uint_body(int(value)))
    if tag in (NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW):
        return bytes((tag, 0))
    raise BerError(f"cannot encode value type {tag}")


def encode_message(msg: Message) -> bytes:
    """Serialise a message to BER bytes."""
    vbs = b"".join(
        _tlv(0x30, _tlv(0x06, _oid_body(oid)) + _value(tag, val))
        for oid, (tag, val) in msg.varbinds
    )
    pdu = (
        _tlv(0x02, _int_body(msg.request_id))
        + _tlv(0x02, _int_body(msg.error_status))
        + _tlv(0x02, _int_body(msg.error_index))
        + _tlv(0x30, vbs)
    )
    body = _tlv(0x02, _int_body(msg.version)) + _tlv(0x04, msg.community) + _tlv(msg.pdu_type, pdu)
    return _tlv(0x30, body)


# --- decoding ------------------------------------------------------------------------------


def _header(data: bytes, pos: int, limit: int | None = None) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the TLV at ``pos``, inside ``limit``."""
    limit = len(data) if limit is None else limit
    if pos >= limit:
        raise BerError(f"truncated message: element at byte {pos} past its container")
    try:
        tag = data[pos]
        n = data[pos + 1]
        pos += 2
        if n & 0x80:
            k = n & 0x7F
            if k == 0 or k > 4:
                raise BerError(f"unsupported BER length form at byte {pos - 1}")
            n = int.from_bytes(data[pos : pos + k], "big")
            pos += k
    except IndexError:
        raise BerError("truncated message") from None
    end = pos + n
    if end > limit:
        raise BerError(f"length {n} at byte {pos} runs past its container (byte {limit})")
    return tag, pos, end


def _decode_oid(data: bytes, start: int, end: int) -> tuple[int, ...]:
    if start >= end:
        raise BerError("empty OID")
    first = data[start]
    out = [first // 40, first % 40] if first < 80 else [2, first - 80]
    sub = 0
    for b in data[start + 1 : end]:
        sub = (sub << 7) | (b & 0x7F)
        if sub > 0xFFFFFFFF:  # RFC 2578: sub-identifiers are 32-bit
            raise BerError(f"OID sub-identifier larger than 2^32-1 at byte {start}")
        if not b & 0x80:
            out.append(sub)
            sub = 0
    if end - start > 1 and data[end - 1] & 0x80:
        raise BerError(f"OID ends inside a sub-identifier at byte {end - 1}")
    return tuple(out)


def _decode_int(data: bytes, start: int, end: int, signed: bool = True) -> int:
    return int.from_bytes(data[start:end], "big", signed=signed)


def _expect(
    data: bytes, pos: int, tag: int, what: str, limit: int | None = None
) -> tuple[int, int]:
    t, s, e = _header(data, pos, limit)
    if t != tag:
        raise BerError(f"expected {what} (tag 0x{tag:02x}) at byte {pos}, got tag 0x{t:02x}")
    return s, e


def decode_message(data: bytes) -> Message:
    """Parse an SNMPv1/v2c message.

    Raises
    ------
    BerError
        For anything that is not a well-formed v1/v2c message (v3 included).
    """
    data = bytes(data)
    s, end = _expect(data, 0, 0x30, "message SEQUENCE")
    s2, e2 = _expect(data, s, 0x02, "version", end)
    version = _decode_int(data, s2, e2)
    if version not in (0, 1):
        raise BerError(f"not SNMPv1/v2c (version field {version})")
    s3, e3 = _expect(data, e2, 0x04, "community", end)
    community = bytes(data[s3:e3])
    pdu_type, ps, pe = _header(data, e3, end)
    if pdu_type not in (GET, GETNEXT, RESPONSE, SET, GETBULK, 0xA6, 0xA7, 0xA8):
        raise BerError(f"unknown PDU type 0x{pdu_type:02x}")
    a, b = _expect(data, ps, 0x02, "request-id", pe)
    request_id = _decode_int(data, a, b)
    a, c = _expect(data, b, 0x02, "error-status", pe)
    error_status = _decode_int(data, a, c)
    a, d = _expect(data, c, 0x02, "error-index", pe)
    error_index = _decode_int(data, a, d)
    vs, ve = _expect(data, d, 0x30, "varbind list", pe)
    varbinds = []
    pos = vs
    while pos < ve:
        _, s1, e1 = _header(data, pos, ve)
        ot, os_, oe = _header(data, s1, e1)
        if ot != 0x06:
            raise BerError(f"expected an OID in varbind at byte {s1}")
        oid = _decode_oid(data, os_, oe)
        vt, vs_, ve_ = _header(data, oe, e1)
        if vt == 0x02:
            val: tuple[int, Any] = (2, _decode_int(data, vs_, ve_))
        elif vt == 0x04:
            val = (4, bytes(data[vs_:ve_]))
        elif vt in (0x41, 0x42, 0x43, 0x46):
            val = (vt - 0x41 + 65 if vt != 0x46 else 70, _decode_int(data, vs_, ve_, False))
        elif vt == 0x06:
            val = (6, ".".join(map(str, _decode_oid(data, vs_, ve_))))
        elif vt == 0x05:
            val = (5, None)
        elif vt in _EXCEPTIONS:
            val = (_EXCEPTIONS[vt], None)
        elif vt == 0x40:
            val = (64, ".".join(str(x) for x in data[vs_:ve_]))
        elif vt == 0x44:
            val = (68, bytes(data[vs_:ve_]))
        else:
            raise BerError(f"unknown value tag 0x{vt:02x} at byte {oe}")
        varbinds.append((oid, val))
        pos = e1
    return Message(version, community, pdu_type, request_id, error_status, error_index, varbinds)
