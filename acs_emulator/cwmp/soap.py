"""CWMP SOAP 1.1 codec shared by the ACS and the CPE agents.

Parsing is liberal (TR-069 Amendment 6, and what field CPEs really send): any of the
``urn:dslforum-org:cwmp-1-0`` … ``cwmp-1-4`` namespaces, RPC arguments qualified or
not, values without ``xsi:type`` (read as ``xsd:string``), ``arrayType`` sizes that
do not match the list, missing ``cwmp:ID`` header. Writing is strict: the literal
``cwmp:`` prefix, the peer's own namespace echoed, typed values, correct array sizes.

Hostile XML: entity expansion and external entities (XXE) need a DTD, and a DTD
needs ``<!``. Each body is parsed once, by one of two parsers (:func:`parse_xml`):

* a body that may hold a DTD — any ``<!`` (DOCTYPE, ENTITY, but also comments and
  CDATA), a NUL byte or a byte-order mark (UTF-16/32), or an XML declaration naming
  an encoding other than UTF-8/ASCII (in UTF-7, ``<!`` is ``+ADw-!``) — goes through
  :mod:`defusedxml` with DTDs, entities and external references forbidden;
* any other body (what CPEs send) cannot hold a DTD and goes to the C parser of
  :mod:`xml.etree` (half the time; an undefined entity is still a parse error).

Callers cap the body size before parsing (:data:`MAX_BODY_BYTES`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, TreeBuilder, XMLParser
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as DET
from defusedxml.common import DefusedXmlException

from guardian_lib.errors import GuardianError

__all__ = [
    "CWMP_NAMESPACES",
    "DEFAULT_CWMP_NS",
    "MAX_BODY_BYTES",
    "CwmpParseError",
    "CwmpMessage",
    "ParameterValue",
    "parse_message",
    "parse_xml",
    "envelope",
    "rpc_xml",
    "fault_xml",
    "parse_parameter_values",
    "parse_fault",
    "parse_inform",
    "values_xml",
    "names_xml",
    "elements_xml",
    "param_info_xml",
    "events_xml",
]

CWMP_NAMESPACES = tuple(f"urn:dslforum-org:cwmp-1-{i}" for i in range(5))
DEFAULT_CWMP_NS = CWMP_NAMESPACES[0]
SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
MAX_BODY_BYTES = 256 * 1024

_XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_XSI_TYPE = f"{{{_XSI_NS}}}type"
_SOAP_ENC_NS = "http://schemas.xmlsoap.org/soap/encoding/"


class CwmpParseError(GuardianError, ValueError):
    """A CWMP message cannot be understood (names the element and what arrived)."""


@dataclass
class ParameterValue:
    """One ``ParameterValueStruct``: name, value as text and its XML Schema type."""

    name: str
    value: str
    type: str = "xsd:string"


@dataclass
class CwmpMessage:
    """A parsed CWMP envelope.

    Attributes
    ----------
    name : str
        Local name of the first element of the SOAP body (``"Inform"``, ``"Fault"``,
        ``"GetParameterValuesResponse"`` …), or ``""`` for an empty body.
    cwmp_ns : str
        The CWMP namespace the peer used (echoed in replies).
    id : str or None
        The ``cwmp:ID`` header, if any.
    body : Element or None
        The RPC element itself.
    hold_requests : bool
        The ``cwmp:HoldRequests`` header.
    """

    name: str
    cwmp_ns: str = DEFAULT_CWMP_NS
    id: str | None = None
    body: Element | None = None
    hold_requests: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _local(tag: str) -> str:
    return tag[tag.rfind("}") + 1 :] if isinstance(tag, str) else ""


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


def child(el: Element, name: str) -> Element | None:
    """First child of ``el`` whose local name is ``name`` (namespace ignored)."""
    for c in el:
        tag = c.tag
        if isinstance(tag, str) and tag[tag.rfind("}") + 1 :] == name:
            return c
    return None


def children(el: Element | None, name: str) -> list[Element]:
    """All children of ``el`` whose local name is ``name``."""
    if el is None:
        return []
    return [c for c in el if _local(c.tag) == name]


def text(el: Element | None, name: str, default: str = "") -> str:
    """Stripped text of child ``name`` of ``el``, or ``default``."""
    if el is None:
        return default
    c = child(el, name)
    if c is None or c.text is None:
        return default
    return c.text.strip()


# The encoding named in an XML declaration, and those in which "<!" is the bytes "<!".
_ENCODING = re.compile(rb"encoding\s*=\s*[\"']([A-Za-z0-9._-]*)[\"']", re.IGNORECASE)
_ASCII_SAFE = frozenset({b"utf-8", b"utf8", b"us-ascii", b"ascii"})
_COMMON_DECLARATIONS = frozenset(
    f"<?xml version={q}1.0{q}{enc}".encode()
    for q in "\"'"
    for enc in ("", f" encoding={q}UTF-8{q}", f" encoding={q}utf-8{q}")
)


def _declares_other_encoding(body: bytes) -> bool:
    """Whether the XML declaration (after an optional UTF-8 BOM) names, or garbles, an
    encoding other than UTF-8/ASCII. The whole declaration is read: a declaration padded
    past a fixed window must not hide its encoding."""
    head = body[3:] if body.startswith(b"\xef\xbb\xbf") else body
    head = head.lstrip()
    if not head.startswith(b"<?xml"):
        return False
    end = head.find(b"?>")
    decl = head if end < 0 else head[:end]
    if decl in _COMMON_DECLARATIONS:  # what CPEs send, byte for byte: no regex needed
        return False
    if b"encoding" not in decl.lower():
        return False
    m = _ENCODING.search(decl)
    return m is None or m.group(1).lower() not in _ASCII_SAFE


def _may_hold_dtd(body: bytes) -> bool:
    """Whether ``body`` could declare a DTD or entities (see the module docstring)."""
    return (
        # "!" first: a one-byte search is a memchr, "<!" a scan stopping at every tag
        (b"!" in body and b"<!" in body)
        or b"\x00" in body
        or body[:2] in (b"\xff\xfe", b"\xfe\xff")
        or _declares_other_encoding(body)
    )


def parse_xml(body: bytes) -> Element:
    """Parse one XML document safely (defusedxml where a DTD is possible, else C).

    Raises
    ------
    defusedxml.common.DefusedXmlException
        The document declares a DTD, entities or external references.
    xml.etree.ElementTree.ParseError
        It is not well-formed.
    """
    if _may_hold_dtd(body):
        return DET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    # Plain TreeBuilder: the C parser's fast path. No DTD can reach it: in UTF-8 or
    # ASCII a DOCTYPE is written with the bytes "<!", refused above.
    parser = XMLParser(target=TreeBuilder())
    parser.feed(body)
    return parser.close()


def parse_message(body: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> CwmpMessage:
    """Parse one CWMP envelope.

    Parameters
    ----------
    body : bytes
        The HTTP body. Empty (or whitespace) means the empty POST / empty response.
    max_bytes : int, default MAX_BODY_BYTES
        Largest accepted body. [bytes]

    Returns
    -------
    CwmpMessage

    Raises
    ------
    CwmpParseError
        If the body is too large, is not XML, declares a DTD (entity attacks), has no
        SOAP Body, or its RPC is not in a CWMP namespace.
    """
    if len(body) > max_bytes:
        raise CwmpParseError(
            f"CWMP body: expected at most {max_bytes} bytes, got {len(body)} bytes"
        )
    if not body.strip():
        return CwmpMessage(name="")
    try:
        root = parse_xml(body)
    except DefusedXmlException as exc:
        raise CwmpParseError(
            f"CWMP body: DTDs and entities are not accepted, got {type(exc).__name__}"
        ) from exc
    except Exception as exc:  # ParseError and friends
        raise CwmpParseError(f"CWMP body: expected well-formed XML, got error {exc}") from exc
    if _local(root.tag) != "Envelope":
        raise CwmpParseError(f"CWMP body: expected a SOAP Envelope, got <{_local(root.tag)}>")
    parts = _first_children(root)
    header = parts.get("Header")
    soap_body = parts.get("Body")
    if soap_body is None:
        raise CwmpParseError("CWMP envelope: expected a SOAP Body element, found none")
    msg = CwmpMessage(name="")
    if header is not None:
        fields = _first_children(header)
        id_el = fields.get("ID")
        if id_el is not None:
            msg.id = (id_el.text or "").strip()
            ns = _ns(id_el.tag)
            if ns in CWMP_NAMESPACES:
                msg.cwmp_ns = ns
        hold = fields.get("HoldRequests")
        msg.hold_requests = hold is not None and (hold.text or "").strip() in ("1", "true")
    if not len(soap_body):
        return msg
    rpc = soap_body[0]
    name = _local(rpc.tag)
    ns = _ns(rpc.tag)
    if name == "Fault" and ns == SOAP_ENV_NS:
        # SOAP Fault wrapping a cwmp:Fault in <detail>.
        msg.name = "Fault"
        msg.body = rpc
        detail = child(rpc, "detail")
        inner = child(detail, "Fault") if detail is not None else None
        if inner is not None and _ns(inner.tag) in CWMP_NAMESPACES:
            msg.cwmp_ns = _ns(inner.tag)
        return msg
    if ns not in CWMP_NAMESPACES:
        raise CwmpParseError(
            f"CWMP body: expected <{name}> in one of {CWMP_NAMESPACES[0]}…cwmp-1-4, "
            f"got namespace {ns!r}"
        )
    msg.name = name
    msg.cwmp_ns = ns
    msg.body = rpc
    return msg


def parse_parameter_values(el: Element | None) -> list[ParameterValue]:
    """Read a ``ParameterList`` of ``ParameterValueStruct`` (size attribute ignored)."""
    out: list[ParameterValue] = []
    if el is None:
        return out
    xsi_type = _XSI_TYPE
    for pvs in el:  # an Inform has dozens of these: one pass, the common tags first
        tag = pvs.tag
        if tag != "ParameterValueStruct" and _local(tag) != "ParameterValueStruct":
            continue
        name = ""
        value_el = None
        for c in pvs:
            tag = c.tag
            local = tag if tag == "Name" or tag == "Value" else _local(tag)
            if local == "Name":
                if not name:
                    name = (c.text or "").strip()
            elif local == "Value" and value_el is None:
                value_el = c
        if not name:
            raise CwmpParseError("ParameterValueStruct: expected a non-empty <Name>, got none")
        if value_el is None:
            out.append(ParameterValue(name, ""))
            continue
        raw = value_el.get(xsi_type) or value_el.get("type")
        out.append(
            ParameterValue(
                name,
                value_el.text or "",
                "xsd:" + raw.split(":", 1)[-1] if raw else "xsd:string",
            )
        )
    return out


def parse_fault(el: Element) -> dict[str, str]:
    """Read a SOAP/CWMP fault into ``{"faultCode", "faultString"}``."""
    detail = child(el, "detail")
    inner = child(detail, "Fault") if detail is not None else None
    if inner is None:
        inner = el if _local(el.tag) == "Fault" else None
    code = text(inner, "FaultCode") or text(el, "faultcode") or "9002"
    msg = text(inner, "FaultString") or text(el, "faultstring")
    out = {"faultCode": code, "faultString": msg}
    spv = children(inner, "SetParameterValuesFault") if inner is not None else []
    if spv:
        out["setParameterValuesFault"] = [
            {"parameterName": text(s, "ParameterName"), "faultCode": text(s, "FaultCode")}
            for s in spv
        ]
    return out


def _first_children(el: Element) -> dict[str, Element]:
    """Children of ``el`` by local name (the first of each name), in one pass."""
    out: dict[str, Element] = {}
    for c in el:
        tag = c.tag
        if isinstance(tag, str):
            out.setdefault(tag[tag.rfind("}") + 1 :], c)
    return out


def _stripped(el: Element | None, default: str = "") -> str:
    return default if el is None or el.text is None else el.text.strip()


def parse_inform(el: Element) -> dict[str, Any]:
    """Read an Inform: device id parts, events, parameter values, retry count."""
    parts = _first_children(el)
    dev = parts.get("DeviceId")
    if dev is None:
        raise CwmpParseError("Inform: expected a <DeviceId> element, found none")
    ids = _first_children(dev)
    device = {
        k: _stripped(ids.get(k)) for k in ("Manufacturer", "OUI", "ProductClass", "SerialNumber")
    }
    if not device["OUI"] or not device["SerialNumber"]:
        raise CwmpParseError(
            f"Inform DeviceId: expected non-empty OUI and SerialNumber, got {device}"
        )
    events = []
    for e in children(parts.get("Event"), "EventStruct"):
        ev = _first_children(e)
        events.append((_stripped(ev.get("EventCode")), _stripped(ev.get("CommandKey"))))
    return {
        "device": device,
        "events": events,
        "params": parse_parameter_values(parts.get("ParameterList")),
        "retry_count": _stripped(parts.get("RetryCount"), "0") or "0",
        "current_time": _stripped(parts.get("CurrentTime")),
        "max_envelopes": _stripped(parts.get("MaxEnvelopes"), "1") or "1",
    }


def envelope(body_xml: str, *, cwmp_ns: str = DEFAULT_CWMP_NS, msg_id: str | None = None) -> bytes:
    """Wrap an RPC (already serialised) in a SOAP envelope with the ``cwmp:`` prefix."""
    header = ""
    if msg_id is not None:
        header = (
            f'<soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">{escape(msg_id)}'
            "</cwmp:ID></soap-env:Header>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<soap-env:Envelope xmlns:soap-env="{SOAP_ENV_NS}" '
        f'xmlns:soap-enc="{_SOAP_ENC_NS}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        f'xmlns:xsi="{_XSI_NS}" xmlns:cwmp="{cwmp_ns}">'
        f"{header}<soap-env:Body>{body_xml}</soap-env:Body></soap-env:Envelope>"
    ).encode()


def _arg(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "1" if value else "0"
    return f"<{name}>{escape(str(value))}</{name}>"


def values_xml(values: list[ParameterValue] | list[tuple[str, str, str]]) -> str:
    """Serialise a typed ``ParameterList`` with a correct ``arrayType`` size."""
    items = []
    for v in values:
        name, value, vtype = (v.name, v.value, v.type) if isinstance(v, ParameterValue) else v
        vtype = vtype if ":" in vtype else f"xsd:{vtype}"
        items.append(
            f"<ParameterValueStruct><Name>{escape(name)}</Name>"
            f"<Value xsi:type={quoteattr(vtype)}>{escape(str(value))}</Value>"
            "</ParameterValueStruct>"
        )
    return (
        f'<ParameterList soap-enc:arrayType="cwmp:ParameterValueStruct[{len(items)}]">'
        + "".join(items)
        + "</ParameterList>"
    )


def elements_xml(args: dict[str, Any]) -> str:
    """Serialise simple unqualified elements ``<k>v</k>`` in order (text escaped)."""
    return "".join(_arg(k, v) for k, v in args.items())


def param_info_xml(items: list[tuple[str, bool]]) -> str:
    """Serialise a ``ParameterInfoStruct`` list (GetParameterNamesResponse), escaped."""
    inner = "".join(
        f"<ParameterInfoStruct>{elements_xml({'Name': n, 'Writable': bool(w)})}"
        "</ParameterInfoStruct>"
        for n, w in items
    )
    return (
        f'<ParameterList soap-enc:arrayType="cwmp:ParameterInfoStruct[{len(items)}]">'
        f"{inner}</ParameterList>"
    )


def events_xml(events: list[tuple[str, str]], declared_size: int | None = None) -> str:
    """Serialise an Inform's ``Event`` array of ``(EventCode, CommandKey)``, escaped.

    ``declared_size`` overrides the ``arrayType`` size (to emulate CPEs that get it wrong).
    """
    inner = "".join(
        f"<EventStruct>{elements_xml({'EventCode': c, 'CommandKey': k})}</EventStruct>"
        for c, k in events
    )
    size = len(events) if declared_size is None else declared_size
    return f'<Event soap-enc:arrayType="cwmp:EventStruct[{size}]">{inner}</Event>'


def names_xml(names: list[str], tag: str = "ParameterNames") -> str:
    """Serialise a string array (``ParameterNames``) with a correct ``arrayType``."""
    inner = "".join(f"<string>{escape(n)}</string>" for n in names)
    return f'<{tag} soap-enc:arrayType="xsd:string[{len(names)}]">{inner}</{tag}>'


def rpc_xml(name: str, args: dict[str, Any] | None = None, raw: str = "") -> str:
    """Serialise ``<cwmp:name>`` with simple unqualified arguments and raw extra XML."""
    inner = "".join(_arg(k, v) for k, v in (args or {}).items()) + raw
    return f"<cwmp:{name}>{inner}</cwmp:{name}>"


def fault_xml(
    code: int | str,
    message: str,
    *,
    acs: bool = True,
    set_faults: list[tuple[str, int]] | None = None,
) -> str:
    """Serialise a SOAP Fault wrapping a ``cwmp:Fault``.

    Parameters
    ----------
    code : int or str
        CWMP fault code: 8000–8005 from an ACS, 9000–9019 from a CPE. [-]
    message : str
        Human-readable fault string.
    acs : bool, default True
        ``faultcode`` is ``Server`` for ACS internal errors and ``Client`` otherwise.
    set_faults : list of (str, int), optional
        ``SetParameterValuesFault`` entries ``(parameter name, fault code)``.
    """
    side = "Server" if acs and str(code) in ("8002", "8004", "8005") else "Client"
    spv = "".join(
        "<SetParameterValuesFault>"
        + elements_xml({"ParameterName": n, "FaultCode": c, "FaultString": "error"})
        + "</SetParameterValuesFault>"
        for n, c in set_faults or []
    )
    return (
        f"<soap-env:Fault><faultcode>{side}</faultcode><faultstring>CWMP fault</faultstring>"
        f"<detail><cwmp:Fault><FaultCode>{escape(str(code))}</FaultCode>"
        f"<FaultString>{escape(message)}</FaultString>{spv}</cwmp:Fault></detail>"
        "</soap-env:Fault>"
    )
