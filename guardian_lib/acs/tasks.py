"""Builders of GenieACS NBI task documents (pure functions, no I/O).

Parameter paths depend on the device's data model: TR-181 (root ``Device``) or
TR-098 (root ``InternetGatewayDevice``); :func:`data_model_root` tells them apart
from a device document.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SAFE_TO_REPEAT",
    "data_model_root",
    "reboot",
    "factory_reset",
    "get_parameter_values",
    "set_parameter_values",
    "refresh_object",
    "download",
    "wifi_profile",
    "ping_diagnostics",
    "ping_result_paths",
    "wifi_paths",
    "firmware_path",
]

#: Task names that can be sent twice without harm (reads).
SAFE_TO_REPEAT = frozenset({"getParameterValues", "refreshObject"})

_IGD = "InternetGatewayDevice"


def data_model_root(device: dict[str, Any]) -> str:
    """``"Device"`` (TR-181) or ``"InternetGatewayDevice"`` (TR-098) of a device document.

    Examples
    --------
    >>> data_model_root({"_id": "x", "InternetGatewayDevice": {}})
    'InternetGatewayDevice'
    """
    return _IGD if _IGD in device else "Device"


def reboot() -> dict[str, Any]:
    """Reboot task."""
    return {"name": "reboot"}


def factory_reset() -> dict[str, Any]:
    """Factory reset task."""
    return {"name": "factoryReset"}


def get_parameter_values(names: list[str]) -> dict[str, Any]:
    """Read parameters (full names, not partial paths)."""
    if not names:
        raise ValueError("get_parameter_values: expected at least one parameter name, got none")
    return {"name": "getParameterValues", "parameterNames": list(names)}


def set_parameter_values(values: dict[str, Any] | list[tuple[Any, ...]]) -> dict[str, Any]:
    """Write parameters: ``{name: value}`` or ``[(name, value, xsd_type), ...]``.

    Python ``bool`` maps to ``xsd:boolean``, ``int`` to ``xsd:unsignedInt`` and
    everything else to ``xsd:string`` unless a type is given.

    Examples
    --------
    >>> set_parameter_values({"Device.WiFi.Radio.1.Channel": 11})["parameterValues"]
    [['Device.WiFi.Radio.1.Channel', 11, 'xsd:unsignedInt']]
    """
    items = values.items() if isinstance(values, dict) else [(v[0], v[1]) for v in values]
    given = {} if isinstance(values, dict) else {v[0]: v[2] for v in values if len(v) > 2}
    out = []
    for name, value in items:
        if name in given:
            vtype = given[name]
        elif isinstance(value, bool):
            vtype = "xsd:boolean"
        elif isinstance(value, int):
            vtype = "xsd:unsignedInt" if value >= 0 else "xsd:int"
        else:
            vtype = "xsd:string"
        out.append([name, value, vtype])
    if not out:
        raise ValueError("set_parameter_values: expected at least one value, got none")
    return {"name": "setParameterValues", "parameterValues": out}


def refresh_object(object_name: str) -> dict[str, Any]:
    """Re-read an object subtree (``Device.WiFi.``) from the device."""
    return {"name": "refreshObject", "objectName": object_name}


def download(
    file_name: str, *, file_type: str = "1 Firmware Upgrade Image", url: str | None = None
) -> dict[str, Any]:
    """Firmware (or config) download task."""
    task: dict[str, Any] = {"name": "download", "fileType": file_type, "fileName": file_name}
    if url:
        task["url"] = url
    return task


def wifi_paths(root: str) -> dict[str, str]:
    """Paths of SSID, passphrase and channel of the first radio for a data-model root."""
    if root == _IGD:
        w = f"{_IGD}.LANDevice.1.WLANConfiguration.1"
        return {
            "ssid": f"{w}.SSID",
            "password": f"{w}.PreSharedKey.1.KeyPassphrase",
            "channel": f"{w}.Channel",
        }
    return {
        "ssid": "Device.WiFi.SSID.1.SSID",
        "password": "Device.WiFi.AccessPoint.1.Security.KeyPassphrase",
        "channel": "Device.WiFi.Radio.1.Channel",
    }


def firmware_path(root: str) -> str:
    """Path of the software version for a data-model root."""
    return f"{root}.DeviceInfo.SoftwareVersion"


def wifi_profile(
    root: str, *, ssid: str | None = None, password: str | None = None, channel: int | None = None
) -> dict[str, Any]:
    """Wi-Fi profile change (any of SSID, passphrase, channel).

    Raises
    ------
    ValueError
        If nothing is given, the channel is outside 1–165, or the passphrase is not
        8–63 characters (WPA2).
    """
    paths = wifi_paths(root)
    values: list[tuple[str, Any, str]] = []
    if ssid is not None:
        if not 1 <= len(ssid) <= 32:
            raise ValueError(f"wifi ssid: expected 1–32 characters, got {len(ssid)}")
        values.append((paths["ssid"], ssid, "xsd:string"))
    if password is not None:
        if not 8 <= len(password) <= 63:
            raise ValueError(f"wifi password: expected 8–63 characters, got {len(password)}")
        values.append((paths["password"], password, "xsd:string"))
    if channel is not None:
        if not 1 <= int(channel) <= 165:
            raise ValueError(f"wifi channel: expected 1–165, got {channel}")
        values.append((paths["channel"], int(channel), "xsd:unsignedInt"))
    if not values:
        raise ValueError("wifi_profile: expected ssid, password or channel, got none")
    return set_parameter_values(values)


def _ping_base(root: str) -> str:
    return f"{_IGD}.IPPingDiagnostics" if root == _IGD else "Device.IP.Diagnostics.IPPing"


def ping_diagnostics(root: str, host: str, repetitions: int = 4) -> dict[str, Any]:
    """Start IPPing diagnostics (the CPE informs "8 DIAGNOSTICS COMPLETE" when done)."""
    base = _ping_base(root)
    return set_parameter_values(
        [
            (f"{base}.Host", host, "xsd:string"),
            (f"{base}.NumberOfRepetitions", int(repetitions), "xsd:unsignedInt"),
            (f"{base}.DiagnosticsState", "Requested", "xsd:string"),
        ]
    )


def ping_result_paths(root: str) -> dict[str, str]:
    """Paths of the ping diagnostics results."""
    base = _ping_base(root)
    return {
        "state": f"{base}.DiagnosticsState",
        "success_count": f"{base}.SuccessCount",
        "failure_count": f"{base}.FailureCount",
        "average_response_time_ms": f"{base}.AverageResponseTime",
    }
