"""Virtual parameters as data: one normalised value computed from vendor parameters.

GenieACS computes a virtual parameter with a JavaScript script. Here a virtual
parameter is a JSON document, so no code runs::

    {"type": "xsd:double", "round": 2,
     "sources": [
       {"path": "Device.Optical.Interface.1.OpticalSignalLevel", "scale": 0.001},
       {"path": "InternetGatewayDevice.WANDevice.1.X_GponInterafceConfig.RXPower"},
       {"path": "InternetGatewayDevice.WANDevice.1.X_ZTE-COM_WANPONInterfaceConfig.RXPower",
        "convert": "uW_to_dBm"}]}

The first source the device has (with a numeric value) gives the value:
``convert`` (``uW_to_dBm``, ``mW_to_dBm``, or none), then ``value * scale + offset``,
then rounding. The result is stored in the device document as
``VirtualParameters.<name>`` (``_value``, ``_type``, ``_timestamp``, ``_writable``
false) after every Inform and every session, so NBI queries and projections see it
as GenieACS's do. :data:`RX_POWER` is the built-in ``RXPower`` above [dBm].
"""

from __future__ import annotations

import math
import re
from typing import Any

from acs_emulator.cwmp.documents import StoreError, check_parameter, get_parameter
from guardian_lib.errors import GuardianError

__all__ = ["RX_POWER", "VirtualParameterError", "check_virtual_parameter", "compute_all"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_CONVERT = {
    None: lambda v: v,
    "uW_to_dBm": lambda v: 10 * math.log10(v / 1000.0),
    "mW_to_dBm": lambda v: 10 * math.log10(v),
}
_MAX_SOURCES = 32

#: Optical receive power [dBm] across TR-181 (0.001 dBm units) and vendor TR-098 paths.
RX_POWER: dict[str, Any] = {
    "type": "xsd:double",
    "round": 2,
    "sources": [
        {"path": "Device.Optical.Interface.1.OpticalSignalLevel", "scale": 0.001},
        {"path": "InternetGatewayDevice.WANDevice.1.X_GponInterafceConfig.RXPower"},
        {
            "path": "InternetGatewayDevice.WANDevice.1.X_ZTE-COM_WANPONInterfaceConfig.RXPower",
            "convert": "uW_to_dBm",
        },
        {"path": "InternetGatewayDevice.WANDevice.1.X_FH_GponInterfaceConfig.RXPower"},
        {  # the emulated TR-098 CPEs (0.001 dBm, as TR-181)
            "path": "InternetGatewayDevice.WANDevice.1.X_GUARDIAN_GponInterfaceConfig.RXPower",
            "scale": 0.001,
        },
    ],
}


class VirtualParameterError(GuardianError, ValueError):
    """A virtual parameter definition is malformed (names the field)."""


def check_virtual_parameter(name: str, spec: Any) -> dict[str, Any]:
    """Validate a definition; returns it normalised.

    Raises
    ------
    VirtualParameterError
        Naming the field that is wrong and what was expected.
    """
    if not _NAME.match(name or ""):
        raise VirtualParameterError(
            f"virtual parameter name: expected letters, digits or '_' (≤64), got {name!r}"
        )
    if not isinstance(spec, dict):
        raise VirtualParameterError(f"{name}: expected a JSON object, got {type(spec).__name__}")
    sources = spec.get("sources")
    if not isinstance(sources, list) or not 0 < len(sources) <= _MAX_SOURCES:
        raise VirtualParameterError(f"{name}.sources: expected 1 to {_MAX_SOURCES} sources")
    out_sources = []
    for i, src in enumerate(sources):
        where = f"{name}.sources[{i}]"
        if not isinstance(src, dict) or not isinstance(src.get("path"), str) or not src["path"]:
            raise VirtualParameterError(f"{where}: expected {{'path': '<parameter>', ...}}")
        try:
            check_parameter(src["path"])  # length, depth, no "_" (document metadata)
        except StoreError as exc:
            raise VirtualParameterError(f"{where}.path: {exc}") from exc
        if src.get("convert") not in _CONVERT:
            raise VirtualParameterError(
                f"{where}.convert: expected uW_to_dBm, mW_to_dBm or none, got {src['convert']!r}"
            )
        numbers = {}
        for key, default in (("scale", 1.0), ("offset", 0.0)):
            value = src.get(key, default)
            try:  # 10**400 made float() raise OverflowError (HTTP 500); NaN is JSON to Python
                ok = not isinstance(value, bool) and math.isfinite(float(value))
            except (TypeError, ValueError, OverflowError):
                ok = False
            if not ok or not isinstance(value, int | float):
                raise VirtualParameterError(f"{where}.{key}: expected a finite number")
            numbers[key] = float(value)
        out_sources.append({"path": src["path"], "convert": src.get("convert")} | numbers)
    digits = spec.get("round")
    if digits is not None and (not isinstance(digits, int) or not 0 <= digits <= 9):
        raise VirtualParameterError(f"{name}.round: expected an integer 0-9, got {digits!r}")
    vtype = spec.get("type", "xsd:double")
    if vtype not in ("xsd:double", "xsd:int", "xsd:string"):
        raise VirtualParameterError(f"{name}.type: expected xsd:double, xsd:int or xsd:string")
    return {"type": vtype, "round": digits, "sources": out_sources}


def _compute(doc: dict[str, Any], spec: dict[str, Any]) -> tuple[Any, str] | None:
    for src in spec["sources"]:
        raw = get_parameter(doc, src["path"])
        if raw is None or raw == "":
            continue
        try:
            v = _CONVERT[src["convert"]](float(raw)) * src["scale"] + src["offset"]
        except (ValueError, TypeError, ZeroDivisionError, OverflowError):
            continue  # "N/A", a zero power … : try the next source
        if not math.isfinite(v):
            continue
        if spec["type"] == "xsd:int":
            return int(round(v)), "xsd:int"
        if spec["round"] is not None:
            v = round(v, spec["round"])
        return (str(v), "xsd:string") if spec["type"] == "xsd:string" else (v, "xsd:double")
    return None


def compute_all(doc: dict[str, Any], specs: dict[str, dict[str, Any]], ts: str) -> bool:
    """Compute every virtual parameter into ``doc``; whether anything changed."""
    if not specs:
        return False
    vp = doc.setdefault("VirtualParameters", {})
    changed = False
    for name, spec in specs.items():
        got = _compute(doc, spec)
        if got is None:
            continue
        value, vtype = got
        node = vp.get(name)
        if node is None or node.get("_value") != value:
            changed = True
        vp[name] = {"_value": value, "_type": vtype, "_timestamp": ts, "_writable": False}
    return changed
