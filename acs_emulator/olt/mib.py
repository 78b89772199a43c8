"""Sorted OID tables that SNMP agents serve, and snmprec files as one source of them.

An :class:`OidTable` maps OIDs to ``(type tag, value)`` pairs using snmprec's type tags
(2 Integer32, 4 OCTET STRING, 6 OID, 64 IpAddress, 65 Counter32, 66 Gauge32, 67 TimeTicks,
70 Counter64), so the same agent serves a captured walk (:func:`load_snmprec`) or tables
generated from simulator state (:mod:`acs_emulator.olt.vendors`). GET is a dict lookup,
GETNEXT a binary search.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pysnmp.proto import rfc1902, rfc1905

__all__ = [
    "Oid",
    "OidTable",
    "TableMibInstrum",
    "load_snmprec",
    "INTEGER",
    "OCTET_STRING",
    "OBJECT_ID",
    "COUNTER32",
    "GAUGE32",
    "TIMETICKS",
    "COUNTER64",
]

Oid = tuple[int, ...]

INTEGER = 2
OCTET_STRING = 4
NULL = 5
OBJECT_ID = 6
IP_ADDRESS = 64
COUNTER32 = 65
GAUGE32 = 66
TIMETICKS = 67
OPAQUE = 68
COUNTER64 = 70

_PYASN1 = {
    INTEGER: rfc1902.Integer32,
    OCTET_STRING: rfc1902.OctetString,
    OBJECT_ID: rfc1902.ObjectIdentifier,
    IP_ADDRESS: rfc1902.IpAddress,
    COUNTER32: rfc1902.Counter32,
    GAUGE32: rfc1902.Gauge32,
    TIMETICKS: rfc1902.TimeTicks,
    OPAQUE: rfc1902.Opaque,
    COUNTER64: rfc1902.Counter64,
}


def _oid(text: str) -> Oid:
    return tuple(int(p) for p in text.strip().strip(".").split("."))


class OidTable:
    """An immutable, sorted OID → ``(tag, value)`` table.

    Parameters
    ----------
    items : iterable of (oid tuple, (tag, value))
        Values are ``int`` for numeric tags, ``bytes`` for OCTET STRING, ``str`` dotted OID
        for OBJECT IDENTIFIER and IpAddress.
    """

    def __init__(self, items: Iterable[tuple[Oid, tuple[int, Any]]]) -> None:
        self._values: dict[Oid, tuple[int, Any]] = dict(items)
        self._keys: list[Oid] = sorted(self._values)

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, oid: Oid) -> tuple[int, Any] | None:
        """The value at ``oid`` exactly, or None."""
        return self._values.get(oid)

    def next(self, oid: Oid) -> tuple[Oid, tuple[int, Any]] | None:
        """First entry strictly after ``oid``, or None at the end of the MIB view."""
        i = bisect_right(self._keys, oid)
        if i >= len(self._keys):
            return None
        key = self._keys[i]
        return key, self._values[key]

    def items(self) -> list[tuple[Oid, tuple[int, Any]]]:
        """All entries in OID order."""
        return [(k, self._values[k]) for k in self._keys]


def load_snmprec(path: str | Path) -> OidTable:
    """Read an snmprec file (``OID|TAG|VALUE`` lines, ``TAGx`` = hex-encoded value).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    table : OidTable

    Raises
    ------
    ValueError
        Naming the file and line of a malformed record.
    """
    path = Path(path)
    items: list[tuple[Oid, tuple[int, Any]]] = []
    with path.open(encoding="utf-8", errors="surrogateescape") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line or line.startswith("#"):
                continue
            try:
                oid_text, tag_text, value = line.split("|", 2)
                hex_coded = tag_text.endswith("x")
                tag = int(tag_text.rstrip("x"))
                raw: bytes = (
                    bytes.fromhex(value)
                    if hex_coded
                    else value.encode("utf-8", errors="surrogateescape")
                )
                if tag == OCTET_STRING or tag == OPAQUE:
                    val: Any = raw
                elif tag in (OBJECT_ID, IP_ADDRESS):
                    val = raw.decode("ascii")
                elif tag == NULL:
                    val = None
                else:
                    val = int(raw.decode("ascii"))
                items.append((_oid(oid_text), (tag, val)))
            except ValueError as exc:
                raise ValueError(
                    f"{path}:{lineno}: malformed snmprec record {line[:80]!r}: "
                    f"expected OID|TYPE|VALUE ({exc})"
                ) from None
    return OidTable(items)


def to_pyasn1(tag: int, value: Any) -> Any:
    """A table value as the pysnmp (pyasn1) object to put on the wire."""
    if tag == NULL:
        return rfc1902.Null("")
    return _PYASN1[tag](value)


class TableMibInstrum:
    """pysnmp MIB instrumentation that answers from a (replaceable) :class:`OidTable`.

    pysnmp's command responders call :meth:`read_variables` (GET) and
    :meth:`read_next_variables` (GETNEXT, and once per repetition of GETBULK). Access
    control is by community / USM user only: every OID is readable. SET goes to
    ``set_fn(oid, value, check)`` (which answers None or an SNMP error-status name such as
    ``"wrongValue"``), and only for the security names in ``writers`` (the write
    community's entry, the v3 users allowed to write); anyone else gets ``noAccess``.

    Parameters
    ----------
    table_fn : callable
        Returns the current table; called once per request batch so that live tables can
        be rebuilt when their source changes.
    set_fn : callable, optional
        ``set_fn(oid, value, check=bool) -> None | str``; None: the agent is read-only.
    writers : frozenset of str
        Security names allowed to SET.
    """

    def __init__(
        self, table_fn: Any, set_fn: Any = None, writers: frozenset[str] = frozenset()
    ) -> None:
        self._table_fn = table_fn
        self._set_fn = set_fn
        self._writers = writers

    def read_variables(self, *var_binds: Any, **context: Any) -> list[tuple[Any, Any]]:
        """Answer GET var-binds (noSuchInstance where absent)."""
        table: OidTable = self._table_fn()
        out = []
        for name, _ in var_binds:
            hit = table.get(tuple(name))
            out.append((name, rfc1905.noSuchInstance if hit is None else to_pyasn1(*hit)))
        return out

    def read_next_variables(self, *var_binds: Any, **context: Any) -> list[tuple[Any, Any]]:
        """Answer GETNEXT var-binds (endOfMibView past the last OID)."""
        table: OidTable = self._table_fn()
        out = []
        for name, _ in var_binds:
            hit = table.next(tuple(name))
            if hit is None:
                out.append((name, rfc1905.endOfMibView))
            else:
                out.append((rfc1902.ObjectName(hit[0]), to_pyasn1(*hit[1])))
        return out

    def write_variables(self, *var_binds: Any, **context: Any) -> list[tuple[Any, Any]]:
        """SET: only through ``set_fn`` and only for a writer (else notWritable / noAccess).

        Every var-bind is checked (``set_fn(oid, value, check=True)``) before any is
        applied, so a SET is all or nothing (RFC 3416 §4.2.5).
        """
        from pysnmp.smi import error

        if self._set_fn is None:
            raise error.NotWritableError(idx=0)
        engine = context.get("snmpEngine")
        who = None
        if engine is not None:
            ctx = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
            who = str(ctx["securityName"]) if ctx else None
        if who not in self._writers:
            raise error.NoAccessError(idx=0)
        binds = [(tuple(name), int(val)) for name, val in var_binds]
        for i, (oid, val) in enumerate(binds):
            refused = self._set_fn(oid, val, check=True)
            if refused is not None:
                raise _SET_ERRORS.get(refused, error.NotWritableError)(idx=i)
        for oid, val in binds:
            refused = self._set_fn(oid, val, check=False)
            if refused is not None:  # changed between the check and now (busy)
                raise _SET_ERRORS.get(refused, error.ResourceUnavailableError)(idx=0)
        return [(name, val) for name, val in var_binds]


def _set_errors() -> dict[str, Any]:
    from pysnmp.smi import error

    return {
        "notWritable": error.NotWritableError,
        "wrongValue": error.WrongValueError,
        "noCreation": error.NoCreationError,
        "resourceUnavailable": error.ResourceUnavailableError,
        "wrongType": error.WrongTypeError,
    }


_SET_ERRORS = _set_errors()
