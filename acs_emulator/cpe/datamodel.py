"""The parameter tree of an emulated CPE, in TR-181 (``Device.``) or TR-098
(``InternetGatewayDevice.``).

Static and writable parameters live in :class:`DataModel`; live values (optical RX,
uptime, PPPoE state) are read from the agent's state source each time they are read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["DataModel", "Param", "PATHS", "CpeFault"]

Flavour = Literal["tr181", "tr098"]

_IGD = "InternetGatewayDevice"
_WAN_PPP = f"{_IGD}.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1"
_WLAN = f"{_IGD}.LANDevice.1.WLANConfiguration.1"

#: Logical name → (TR-181 path, TR-098 path).
PATHS: dict[str, tuple[str, str]] = {
    "manufacturer": ("Device.DeviceInfo.Manufacturer", f"{_IGD}.DeviceInfo.Manufacturer"),
    "oui": ("Device.DeviceInfo.ManufacturerOUI", f"{_IGD}.DeviceInfo.ManufacturerOUI"),
    "product_class": ("Device.DeviceInfo.ProductClass", f"{_IGD}.DeviceInfo.ProductClass"),
    "serial": ("Device.DeviceInfo.SerialNumber", f"{_IGD}.DeviceInfo.SerialNumber"),
    "software": ("Device.DeviceInfo.SoftwareVersion", f"{_IGD}.DeviceInfo.SoftwareVersion"),
    "hardware": ("Device.DeviceInfo.HardwareVersion", f"{_IGD}.DeviceInfo.HardwareVersion"),
    "uptime": ("Device.DeviceInfo.UpTime", f"{_IGD}.DeviceInfo.UpTime"),
    "provisioning": (
        "Device.DeviceInfo.ProvisioningCode",
        f"{_IGD}.DeviceInfo.ProvisioningCode",
    ),
    "ms_url": ("Device.ManagementServer.URL", f"{_IGD}.ManagementServer.URL"),
    "cr_url": (
        "Device.ManagementServer.ConnectionRequestURL",
        f"{_IGD}.ManagementServer.ConnectionRequestURL",
    ),
    "cr_user": (
        "Device.ManagementServer.ConnectionRequestUsername",
        f"{_IGD}.ManagementServer.ConnectionRequestUsername",
    ),
    "cr_password": (
        "Device.ManagementServer.ConnectionRequestPassword",
        f"{_IGD}.ManagementServer.ConnectionRequestPassword",
    ),
    "periodic_enable": (
        "Device.ManagementServer.PeriodicInformEnable",
        f"{_IGD}.ManagementServer.PeriodicInformEnable",
    ),
    "periodic_interval": (
        "Device.ManagementServer.PeriodicInformInterval",
        f"{_IGD}.ManagementServer.PeriodicInformInterval",
    ),
    "parameter_key": (
        "Device.ManagementServer.ParameterKey",
        f"{_IGD}.ManagementServer.ParameterKey",
    ),
    "rx": (
        "Device.Optical.Interface.1.OpticalSignalLevel",
        f"{_IGD}.WANDevice.1.X_GUARDIAN_GponInterfaceConfig.RXPower",
    ),
    "optical_status": (
        "Device.Optical.Interface.1.Status",
        f"{_IGD}.WANDevice.1.X_GUARDIAN_GponInterfaceConfig.Status",
    ),
    "ppp_status": ("Device.PPP.Interface.1.Status", f"{_WAN_PPP}.ConnectionStatus"),
    "ppp_user": ("Device.PPP.Interface.1.Username", f"{_WAN_PPP}.Username"),
    "ppp_password": ("Device.PPP.Interface.1.Password", f"{_WAN_PPP}.Password"),
    "ext_ip": ("Device.IP.Interface.1.IPv4Address.1.IPAddress", f"{_WAN_PPP}.ExternalIPAddress"),
    "ssid": ("Device.WiFi.SSID.1.SSID", f"{_WLAN}.SSID"),
    "channel": ("Device.WiFi.Radio.1.Channel", f"{_WLAN}.Channel"),
    "wifi_key": (
        "Device.WiFi.AccessPoint.1.Security.KeyPassphrase",
        f"{_WLAN}.PreSharedKey.1.KeyPassphrase",
    ),
    "ping_state": (
        "Device.IP.Diagnostics.IPPing.DiagnosticsState",
        f"{_IGD}.IPPingDiagnostics.DiagnosticsState",
    ),
    "ping_host": ("Device.IP.Diagnostics.IPPing.Host", f"{_IGD}.IPPingDiagnostics.Host"),
    "ping_reps": (
        "Device.IP.Diagnostics.IPPing.NumberOfRepetitions",
        f"{_IGD}.IPPingDiagnostics.NumberOfRepetitions",
    ),
    "ping_success": (
        "Device.IP.Diagnostics.IPPing.SuccessCount",
        f"{_IGD}.IPPingDiagnostics.SuccessCount",
    ),
    "ping_failure": (
        "Device.IP.Diagnostics.IPPing.FailureCount",
        f"{_IGD}.IPPingDiagnostics.FailureCount",
    ),
    "ping_avg_ms": (
        "Device.IP.Diagnostics.IPPing.AverageResponseTime",
        f"{_IGD}.IPPingDiagnostics.AverageResponseTime",
    ),
}

#: Parameters a CPE must put in every Inform (TR-069 Table 7 / TR-181 Device:2 forced).
INFORM_KEYS = (
    "hardware",
    "software",
    "provisioning",
    "cr_url",
    "parameter_key",
    "ext_ip",
    "rx",
    "uptime",
    "ppp_status",
)


class CpeFault(Exception):
    """A CWMP fault the CPE answers with (code 9000–9019)."""

    def __init__(self, code: int, message: str, spv: list[tuple[str, int]] | None = None):
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.spv = spv or []


@dataclass
class Param:
    """One leaf: value as text, XML Schema type, writability and an optional live getter."""

    value: str
    type: str = "xsd:string"
    writable: bool = False
    live: Callable[[], str] | None = None

    def read(self) -> str:
        """Current value (live getter wins)."""
        return self.live() if self.live else self.value


class DataModel:
    """Parameter tree of one CPE.

    Parameters
    ----------
    flavour : {"tr181", "tr098"}
        Root ``Device.`` or ``InternetGatewayDevice.``.
    """

    def __init__(self, flavour: Flavour = "tr181") -> None:
        self.flavour = flavour
        self.root = "Device" if flavour == "tr181" else _IGD
        self.params: dict[str, Param] = {}

    def path(self, key: str) -> str:
        """Full path of a logical key of :data:`PATHS`."""
        return PATHS[key][0 if self.flavour == "tr181" else 1]

    def set(
        self,
        key: str,
        value: Any,
        vtype: str = "xsd:string",
        writable: bool = False,
        live: Callable[[], str] | None = None,
    ) -> None:
        """Define a parameter by logical key."""
        self.params[self.path(key)] = Param(_text(value), vtype, writable, live)

    def get(self, key: str) -> str:
        """Current value of a logical key."""
        return self.params[self.path(key)].read()

    def put(self, key: str, value: Any) -> None:
        """Overwrite the stored value of a logical key (device-side change)."""
        self.params[self.path(key)].value = _text(value)

    def values(self, names: list[str], allow_partial: bool = True) -> list[tuple[str, str, str]]:
        """``(name, value, type)`` for GetParameterValues (partial paths expanded).

        Raises
        ------
        CpeFault
            9005 for an unknown name (or a partial path when not allowed).
        """
        out = []
        for n in names:
            if n == "" or n.endswith("."):
                if not allow_partial:
                    raise CpeFault(9005, f"Invalid parameter name {n!r} (partial path)")
                hits = [p for p in self.params if p.startswith(n)]
                if not hits:
                    raise CpeFault(9005, f"Invalid parameter name {n!r}")
                out += [(p, self.params[p].read(), self.params[p].type) for p in sorted(hits)]
            elif n in self.params:
                out.append((n, self.params[n].read(), self.params[n].type))
            else:
                raise CpeFault(9005, f"Invalid parameter name {n!r}")
        return out

    def names(self, path: str, next_level: bool) -> list[tuple[str, bool]]:
        """``(name, writable)`` for GetParameterNames, objects ending in ``.``."""
        if path and not path.endswith("."):
            if path in self.params:
                return [(path, self.params[path].writable)]
            raise CpeFault(9005, f"Invalid parameter name {path!r}")
        out: dict[str, bool] = {}
        depth = path.count(".")
        for p, prm in self.params.items():
            if not p.startswith(path):
                continue
            parts = p.split(".")
            for i in range(depth + 1, len(parts)):
                obj = ".".join(parts[:i]) + "."
                if not next_level or i == depth + 1:
                    out.setdefault(obj, False)
            if not next_level or len(parts) == depth + 1:
                out[p] = prm.writable
        if not out:
            raise CpeFault(9005, f"Invalid parameter name {path!r}")
        if next_level or not path:
            out.pop(path, None)
        else:  # NextLevel false: the object named by the path itself is listed too
            out[path] = False
        return sorted(out.items())

    def set_values(self, values: list[tuple[str, str, str]]) -> list[str]:
        """Apply SetParameterValues atomically; returns the names set.

        Raises
        ------
        CpeFault
            9003 with per-parameter faults (9005 unknown, 9008 not writable, 9007 bad value).
        """
        errors: list[tuple[str, int]] = []
        for name, value, _vtype in values:
            prm = self.params.get(name)
            if prm is None:
                errors.append((name, 9005))
            elif not prm.writable:
                errors.append((name, 9008))
            elif prm.type in ("xsd:int", "xsd:unsignedInt") and not re.fullmatch(
                r"-?\d+", value.strip()
            ):
                errors.append((name, 9007))
        if errors:
            raise CpeFault(9003, "Invalid arguments", errors)
        for name, value, _vtype in values:
            self.params[name].value = (
                value.strip() if self.params[name].type != "xsd:string" else value
            )
        return [v[0] for v in values]

    def add_object(self, obj: str) -> int:
        """AddObject: new instance copying instance 1's leaves; returns its number."""
        if not obj.endswith("."):
            obj += "."
        nums = {
            int(m.group(1)) for p in self.params if (m := re.match(re.escape(obj) + r"(\d+)\.", p))
        }
        if not nums:
            raise CpeFault(9005, f"Invalid parameter name {obj!r} (not a multi-instance object)")
        n = max(nums) + 1
        first = f"{obj}{min(nums)}."
        for p, prm in list(self.params.items()):
            if p.startswith(first):
                self.params[f"{obj}{n}." + p[len(first) :]] = Param("", prm.type, prm.writable)
        return n

    def delete_object(self, obj: str) -> None:
        """DeleteObject of an instance ``X.Y.<n>.``."""
        if not obj.endswith("."):
            obj += "."
        hits = [p for p in self.params if p.startswith(obj)]
        if not hits or not re.search(r"\.\d+\.$", obj):
            raise CpeFault(9005, f"Invalid parameter name {obj!r}")
        for p in hits:
            del self.params[p]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)
