"""Presets: what the ACS does by itself when a device informs.

Used for zero-touch provisioning (a PPPoE and Wi-Fi profile on "0 BOOTSTRAP") and
for periodic refreshes. Presets are plain JSON-able data, so operators write them in
files (:func:`load_presets`) or send them over the NBI in GenieACS's shape
(:func:`preset_from_genieacs`: ``weight``, ``precondition``, ``events``,
``schedule``, ``configurations`` or ``provision``/``provisionArgs``).

GenieACS semantics kept: presets apply in ascending ``weight``; a GenieACS
``events`` object requires every event marked ``true`` in the Inform and every one
marked ``false`` absent; ``precondition`` is a device query (a JSON string);
``schedule`` is ``"<duration s> <cron: minute hour day month weekday>"`` (UTC) and
the preset is active within ``duration`` seconds after a time the cron matches.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from acs_emulator.cwmp.query import QueryRejected, prepare_query
from guardian_lib.errors import GuardianError

__all__ = [
    "Preset",
    "PresetError",
    "load_presets",
    "preset_from_genieacs",
    "schedule_active",
    "zero_touch_preset",
    "render_task",
]


class PresetError(GuardianError, ValueError):
    """A preset is malformed (names the preset and the field)."""


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
    weight: int = 0
    precondition: dict[str, Any] | None = None
    events_absent: frozenset[str] = frozenset()
    all_events: bool = False  # GenieACS: every event in ``events`` must be present
    schedule: str = ""
    provisions: list[list[Any]] = field(default_factory=list)

    def events_match(self, codes: list[str]) -> bool:
        """Whether an Inform carrying ``codes`` triggers this preset."""
        present = set(codes)
        if self.events_absent & present:
            return False
        if not self.events:
            return True
        return self.events <= present if self.all_events else bool(self.events & present)


def _cron_field(spec: str, lo: int, hi: int, what: str) -> frozenset[int]:
    out: set[int] = set()
    for part in spec.split(","):
        rng, _, step_s = part.partition("/")
        step = int(step_s) if step_s else 1
        if rng == "*":
            a, b = lo, hi
        elif "-" in rng:
            a, b = (int(x) for x in rng.split("-", 1))
        else:
            a = b = int(rng)
        if not (lo <= a <= b <= hi) or step < 1:
            raise PresetError(f"schedule {what}: expected values in {lo}-{hi}, got {part!r}")
        out.update(range(a, b + 1, step))
    return frozenset(out)


def _parse_schedule(schedule: str) -> tuple[float, list[frozenset[int]]]:
    parts = schedule.split()
    if len(parts) != 6:
        raise PresetError(
            f"schedule: expected '<duration s> <minute> <hour> <day> <month> <weekday>', "
            f"got {schedule!r}"
        )
    try:
        duration = float(parts[0])
        fields = [
            _cron_field(parts[1], 0, 59, "minute"),
            _cron_field(parts[2], 0, 23, "hour"),
            _cron_field(parts[3], 1, 31, "day"),
            _cron_field(parts[4], 1, 12, "month"),
            _cron_field(parts[5].replace("7", "0"), 0, 6, "weekday"),
        ]
    except ValueError as exc:
        raise PresetError(f"schedule {schedule!r}: {exc}") from exc
    if not 0 < duration <= 7 * 86400:
        raise PresetError(f"schedule: expected a duration of 1 s to 7 days, got {parts[0]}")
    return duration, fields


def schedule_active(schedule: str, now: datetime | None = None) -> bool:
    """Whether ``now`` (UTC) is within ``duration`` after a minute the cron matches.

    Examples
    --------
    >>> schedule_active("3600 0 3 * * 1-5", datetime(2026, 12, 4, 3, 30, tzinfo=UTC))
    True
    >>> schedule_active("3600 0 3 * * 1-5", datetime(2026, 12, 5, 3, 30, tzinfo=UTC))
    False
    """
    duration, (mins, hours, days, months, wdays) = _parse_schedule(schedule)
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    for k in range(int(duration // 60) + 1):
        t = now - timedelta(minutes=k)
        if (
            t.minute in mins
            and t.hour in hours
            and t.day in days
            and t.month in months
            and (t.weekday() + 1) % 7 in wdays
        ):
            return True
    return False


_CONFIG_TYPES = (
    "value",
    "age",
    "add_tag",
    "delete_tag",
    "provision",
    "add_object",
    "delete_object",
)


def preset_from_genieacs(name: str, body: Any) -> Preset:
    """Build a preset from GenieACS's NBI shape (``PUT /presets/<name>``).

    Accepts ``weight``, ``channel`` (kept for compatibility, unused), ``precondition``
    (JSON string or object; ``""``/``"true"`` = every device), ``events`` (object of
    event code → bool), ``schedule``, and either ``configurations`` (types ``value``,
    ``age``, ``add_tag``, ``delete_tag``, ``provision``) or ``provision`` +
    ``provisionArgs``.

    Raises
    ------
    PresetError
        Naming the preset and the field.
    """
    where = f"preset {name!r}"
    if not name or "." in name or len(name) > 128:
        raise PresetError(f"{where}: expected a name without '.' of at most 128 characters")
    if not isinstance(body, dict):
        raise PresetError(f"{where}: expected a JSON object, got {type(body).__name__}")
    weight = body.get("weight", 0)
    if not isinstance(weight, int | float) or isinstance(weight, bool):
        raise PresetError(f"{where}.weight: expected a number, got {weight!r}")
    pre = body.get("precondition", "")
    if isinstance(pre, str):
        try:
            pre = json.loads(pre) if pre.strip() not in ("", "true") else {}
        except json.JSONDecodeError as exc:
            raise PresetError(f"{where}.precondition: expected a JSON query, {exc}") from exc
    if not isinstance(pre, dict):
        raise PresetError(f"{where}.precondition: expected a query object, got {pre!r}")
    try:
        prepare_query(pre)
    except QueryRejected as exc:
        raise PresetError(f"{where}.precondition: {exc}") from exc
    events = body.get("events") or {}
    if not isinstance(events, dict) or not all(isinstance(v, bool) for v in events.values()):
        raise PresetError(f"{where}.events: expected {{'<event code>': true|false}}")
    schedule = body.get("schedule") or ""
    if schedule:
        _parse_schedule(str(schedule))
    calls: list[list[Any]] = []
    if body.get("provision"):
        args = body.get("provisionArgs") or []
        if isinstance(args, str):
            args = json.loads(f"[{args}]") if args.strip() else []
        calls.append([str(body["provision"]), *args])
    for i, c in enumerate(body.get("configurations") or []):
        kind = c.get("type") if isinstance(c, dict) else None
        if kind not in _CONFIG_TYPES:
            raise PresetError(
                f"{where}.configurations[{i}].type: expected one of {_CONFIG_TYPES}, got {kind!r}"
            )
        if kind == "value":
            calls.append(["value", c["name"], c.get("value")])
        elif kind == "age":
            calls.append(["refresh", c["name"], float(c.get("age", 0))])
        elif kind in ("add_tag", "delete_tag"):
            calls.append(["tag", c["tag"], kind == "add_tag"])
        elif kind == "provision":
            calls.append([c["name"], *(c.get("args") or [])])
        else:
            raise PresetError(f"{where}.configurations[{i}]: {kind} is not supported")
    return Preset(
        name,
        frozenset(k for k, v in events.items() if v),
        [],
        weight=int(weight),
        precondition=pre or None,
        events_absent=frozenset(k for k, v in events.items() if not v),
        all_events=True,
        schedule=str(schedule),
        provisions=calls,
    )


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
    """Fill a preset task's ``{root}``, ``{serial}`` and ``{id}`` for one device.

    The task's strings (keys and values, at any depth) are filled one by one: the
    serial number comes from the CPE, and pasted into the task's JSON text a quote or
    backslash in it would change the task's structure.

    Examples
    --------
    >>> render_task({"name": "x", "v": ["{root}.A", "{serial}@isp"]}, "Device", 'S"1', "D")
    {'name': 'x', 'v': ['Device.A', 'S"1@isp']}
    """
    tr098 = root == "InternetGatewayDevice"

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            if "{" in value:
                value = value.replace("{root}", root).replace("{serial}", serial)
                value = value.replace("{id}", device_id)
            if tr098 and "InternetGatewayDevice." in value:
                for a, b in _TR098_OF.items():
                    value = value.replace(a, b)
            return value
        if isinstance(value, list | tuple):  # as JSON has it: a list
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {fill(k): fill(v) for k, v in value.items()}
        return value

    return fill(task)
