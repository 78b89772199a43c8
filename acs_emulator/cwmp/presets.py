"""Presets: tasks the ACS queues by itself when an Inform carries given events.

Used for zero-touch provisioning (a PPPoE and Wi-Fi profile on "0 BOOTSTRAP") and
for periodic refreshes. Presets are plain JSON-able data, so operators write them in
files (:func:`load_presets`) rather than code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Preset", "load_presets", "zero_touch_preset", "render_task"]


@dataclass
class Preset:
    """Tasks queued automatically when an Inform carries one of ``events``.

    Parameters
    ----------
    name : str
        Preset name (kept in the task as ``preset``).
    events : frozenset of str
        Event codes that trigger it, e.g. ``{"0 BOOTSTRAP"}``; empty = every Inform.
    tasks : list of dict
        NBI-style tasks (``{"name": "setParameterValues", ...}``). In any string,
        ``{root}`` becomes the device's data-model root (``Device`` or
        ``InternetGatewayDevice``), ``{serial}`` its serial number and ``{id}`` its
        device id.
    """

    name: str
    events: frozenset[str]
    tasks: list[dict[str, Any]]


def load_presets(path: str | Path) -> list[Preset]:
    """Read presets from a JSON file: ``[{"name", "events": [...], "tasks": [...]}]``.

    Raises
    ------
    ValueError
        Naming the file and the entry when the shape is wrong.
    """
    raw = json.loads(Path(path).read_text())
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a JSON list of presets, got {type(raw).__name__}")
    out = []
    for i, p in enumerate(raw):
        if not isinstance(p, dict) or not isinstance(p.get("tasks"), list):
            raise ValueError(f"{path}: presets[{i}] needs 'name', 'events' and a 'tasks' list")
        out.append(
            Preset(str(p.get("name", f"preset{i}")), frozenset(p.get("events", [])), p["tasks"])
        )
    return out


def zero_touch_preset(
    *,
    pppoe_username: str = "{serial}@isp",
    pppoe_password_env: str = "GUARDIAN_ZT_PPPOE_PASSWORD",
    ssid: str = "NET_{serial}",
    wifi_password_env: str = "GUARDIAN_ZT_WIFI_PASSWORD",
    channel: int | None = None,
) -> Preset:
    """Zero-touch provisioning on "0 BOOTSTRAP": PPPoE credentials and a Wi-Fi profile.

    Passwords are read from the environment (never from code or command lines); a
    password whose variable is unset is left out of the profile. Paths are given for
    TR-181; TR-098 devices get the equivalent TR-098 paths.
    """
    values: list[list[Any]] = [
        ["{root}.PPP.Interface.1.Username", pppoe_username, "xsd:string"],
        ["{root}.WiFi.SSID.1.SSID", ssid, "xsd:string"],
    ]
    if os.environ.get(pppoe_password_env):
        values.append(
            ["{root}.PPP.Interface.1.Password", os.environ[pppoe_password_env], "xsd:string"]
        )
    if os.environ.get(wifi_password_env):
        values.append(
            [
                "{root}.WiFi.AccessPoint.1.Security.KeyPassphrase",
                os.environ[wifi_password_env],
                "xsd:string",
            ]
        )
    if channel is not None:
        values.append(["{root}.WiFi.Radio.1.Channel", int(channel), "xsd:unsignedInt"])
    return Preset(
        "zero-touch",
        frozenset({"0 BOOTSTRAP"}),
        [{"name": "setParameterValues", "parameterValues": values}],
    )


_TR098_OF = {
    "InternetGatewayDevice.PPP.Interface.1.": (
        "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1."
    ),
    "InternetGatewayDevice.WiFi.SSID.1.": "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.",
    "InternetGatewayDevice.WiFi.AccessPoint.1.Security.KeyPassphrase": (
        "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.PreSharedKey.1.KeyPassphrase"
    ),
    "InternetGatewayDevice.WiFi.Radio.1.": (
        "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1."
    ),
}


def render_task(task: dict[str, Any], root: str, serial: str, device_id: str) -> dict[str, Any]:
    """Fill a preset task's ``{root}``, ``{serial}`` and ``{id}`` for one device."""
    text = json.dumps(task)
    text = text.replace("{root}", root).replace("{serial}", serial).replace("{id}", device_id)
    if root == "InternetGatewayDevice":
        for a, b in _TR098_OF.items():
            text = text.replace(a, b)
    return json.loads(text)
