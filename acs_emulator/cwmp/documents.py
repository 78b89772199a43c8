"""Device documents in GenieACS's shape: parameters, limits, queries, projections.

A device is a nested document: ``{"_id", "_deviceId", "_lastInform", "_tags", ...,
"Device": {"DeviceInfo": {"SoftwareVersion": {"_value", "_type", "_timestamp",
"_writable"}}}}``. These functions read and write such documents in memory;
:class:`~acs_emulator.cwmp.store.DeviceStore` keeps them and writes them to SQLite.

What a CPE can make a document hold is bounded (:data:`LIMITS`: name length and
depth, value size), so no document is too deep to serialise.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from typing import Any, Protocol

from guardian_lib.errors import GuardianError

__all__ = [
    "LIMITS",
    "StoreError",
    "StoreLimits",
    "check_parameter",
    "delete_subtree",
    "expand_query",
    "get_parameter",
    "now_iso",
    "project",
    "set_parameter",
    "set_values",
    "NamedValue",
    "sort_key",
]


class StoreError(GuardianError, ValueError):
    """Bad query, projection, task or parameter given to the store (names the field)."""


class StoreLimits:
    """What one parameter may be. Class attributes; :data:`LIMITS` is the instance used.

    Attributes
    ----------
    name_chars : int
        Longest parameter name. [characters]
    name_segments : int
        Deepest parameter name (dot-separated segments). [-]
    value_chars : int
        Longest parameter value. [characters]
    params_per_inform : int
        Parameters one Inform may carry (checked by the ACS). [-]
    """

    name_chars = 256
    name_segments = 32
    value_chars = 16384
    params_per_inform = 1000


LIMITS = StoreLimits()


def check_parameter(name: str, value: Any = None) -> None:
    """Raise :class:`StoreError` if ``name``/``value`` exceed :data:`LIMITS`."""
    if not isinstance(name, str):
        raise StoreError(f"parameter name: expected a non-empty string, got {name!r}")
    _check_name(name)
    if isinstance(value, str) and len(value) > LIMITS.value_chars:
        raise StoreError(
            f"parameter {name[:60]!r}: expected a value of at most {LIMITS.value_chars} "
            f"characters, got {len(value)}"
        )


# CPEs of a model send the same few dozen names in every Inform: a name found valid
# once is not checked again (a bounded cache; a bad name raises and is never cached).
@functools.lru_cache(maxsize=8192)
def _check_name(name: str) -> None:
    if not name.strip("."):
        raise StoreError(f"parameter name: expected a non-empty string, got {name!r}")
    if len(name) > LIMITS.name_chars:
        raise StoreError(
            f"parameter name {name[:60]!r}…: expected at most {LIMITS.name_chars} "
            f"characters, got {len(name)}"
        )
    depth = name.count(".") + 1
    if depth > LIMITS.name_segments:
        raise StoreError(
            f"parameter name {name[:60]!r}: expected at most {LIMITS.name_segments} "
            f"segments, got {depth}"
        )
    if name[0] == "_" or "._" in name:
        raise StoreError(f"parameter name {name[:60]!r}: segments may not start with '_'")


@functools.lru_cache(maxsize=8192)
def _segments(name: str) -> tuple[str, ...]:
    """The non-empty dot-separated segments of ``name`` (cached like :func:`_check_name`)."""
    return tuple(p for p in name.split(".") if p)


def now_iso() -> str:
    """Current UTC time as an ISO 8601 string with milliseconds and ``Z``.

    Examples
    --------
    >>> from datetime import datetime
    >>> stamp = now_iso()
    >>> len(stamp), stamp[-1], datetime.fromisoformat(stamp[:-1]).microsecond % 1000
    (24, 'Z', 0)
    """
    global _second  # noqa: PLW0603 - one formatted second shared by every caller
    seconds, ns = divmod(time.time_ns(), 1_000_000_000)
    cached = _second
    if cached[0] != seconds:  # formatting the date is the costly part: once a second
        cached = _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{cached[1]}.{ns // 1_000_000:03d}Z"


_second: tuple[int, str] = (-1, "")


def expand_query(q: Any) -> Any:
    """Rewrite a GenieACS device query to match the stored document shape.

    A key naming a parameter (its last path segment does not start with ``_``) is
    compared with the parameter's value, so ``{"Device.DeviceInfo.SoftwareVersion":
    "1.2"}`` becomes ``{"Device.DeviceInfo.SoftwareVersion._value": "1.2"}``, as
    GenieACS does. Keys such as ``_id``, ``_tags`` and ``_lastInform`` stay as they are.

    Examples
    --------
    >>> expand_query({"$or": [{"A.B": 1}, {"_tags": "x"}]})
    {'$or': [{'A.B._value': 1}, {'_tags': 'x'}]}
    """
    if isinstance(q, list):
        return [expand_query(v) for v in q]
    if not isinstance(q, dict):
        return q
    out: dict[str, Any] = {}
    for k, v in q.items():
        if k.startswith("$"):
            out[k] = expand_query(v)
        elif k.rsplit(".", 1)[-1].startswith("_"):
            out[k] = v
        else:
            out[f"{k}._value"] = v
    return out


def project(doc: dict[str, Any], paths: list[str] | None) -> dict[str, Any]:
    """Keep only ``paths`` (dotted; a path keeps its whole subtree) and ``_id``."""
    if not paths:
        return doc
    out: dict[str, Any] = {"_id": doc["_id"]}
    for path in paths:
        parts = [p for p in path.strip().split(".") if p]
        src: Any = doc
        for p in parts:
            if not isinstance(src, dict) or p not in src:
                src = None
                break
            src = src[p]
        if src is None or not parts:
            continue
        dst = out
        for p in parts[:-1]:
            dst = dst.setdefault(p, {})
        dst[parts[-1]] = src
    return out


def _node(doc: dict[str, Any], name: str, create: bool = True) -> dict[str, Any] | None:
    cur = doc
    for p in _segments(name):
        nxt = cur.get(p)
        if nxt is None:
            if not create:
                return None
            nxt = cur[p] = {}
        cur = nxt
    return cur


def set_parameter(
    doc: dict[str, Any],
    name: str,
    value: Any = None,
    vtype: str | None = None,
    ts: str | None = None,
    writable: bool | None = None,
    *,
    checked: bool = False,
) -> None:
    """Set a parameter (or, for a name ending in ``.``, an object node) in ``doc``.

    ``checked=True`` skips :func:`check_parameter` for a caller that has just run it
    (the ACS checks a whole Inform before storing any of it).

    Raises
    ------
    StoreError
        If the name or value exceeds :data:`LIMITS` (nothing is changed).
    """
    if not checked:
        check_parameter(name, value)
    node = _node(doc, name)
    assert node is not None
    ts = ts or now_iso()
    if name.endswith("."):
        node["_object"] = True
    elif value is not None:
        node["_value"] = value
        node["_type"] = vtype or "xsd:string"
    node["_timestamp"] = ts
    if writable is not None:
        node["_writable"] = writable


class NamedValue(Protocol):
    """A parameter as a CPE reports it (e.g. :class:`acs_emulator.cwmp.soap.ParameterValue`)."""

    name: str
    value: str
    type: str


def set_values(doc: dict[str, Any], values: Iterable[NamedValue], ts: str) -> None:
    """Store reported values in ``doc``, all with timestamp ``ts``.

    The bulk form of :func:`set_parameter` for an Inform's ``ParameterList``, whose
    names and values the caller has checked with :func:`check_parameter` (every one,
    before storing any).
    """
    for v in values:
        name = v.name
        cur = doc
        for p in _segments(name):
            nxt = cur.get(p)
            if nxt is None:
                nxt = cur[p] = {}
            cur = nxt
        if name[-1] == ".":
            cur["_object"] = True
        else:
            cur["_value"] = v.value
            cur["_type"] = v.type or "xsd:string"
        cur["_timestamp"] = ts


def get_parameter(doc: dict[str, Any], name: str) -> Any:
    """Value of parameter ``name`` in ``doc``, or ``None``."""
    node = _node(doc, name, create=False)
    return None if node is None else node.get("_value")


def sort_key(doc: dict[str, Any], path: str) -> tuple[int, str, float]:
    node: Any = doc
    for p in path.split("."):
        if not isinstance(node, dict) or p not in node:
            return (0, "", 0.0)
        node = node[p]
    if isinstance(node, bool | int | float):
        return (1, "", float(node))
    if isinstance(node, dict | list):
        return (3, "", 0.0)
    return (2, str(node), 0.0)


def delete_subtree(doc: dict[str, Any], name: str) -> None:
    parts = [p for p in name.split(".") if p]
    parent = _node(doc, ".".join(parts[:-1]), create=False) if len(parts) > 1 else doc
    if parent is not None:
        parent.pop(parts[-1], None)
