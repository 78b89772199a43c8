"""Maintenance windows: scheduled work during which the autopilot keeps its hands off.

A window names an area by label matchers (``olt``, ``pon``, ``box``, ``onu``,
``customer``, ``region``, ``segment``; a value starting with ``~`` is a regular
expression: :mod:`guardian_lib.matchers`, shared with silences) and a UTC period. The
same windows, written once in the alerting file (``maintenance_windows:``, docs/alerts.md), do two things:

* they mute the alerts whose labels match (:class:`guardian_lib.alerts.dispatch.Dispatcher`);
* they block the autopilot's actions in that area: the ``maintenance_window`` safety rule of
  :class:`~guardian_lib.decision.safety.SafetyGuard`, audited with the window's name.

Blocked while a window covers the action's ONU: :data:`MAINTENANCE_BLOCKED_ACTIONS`
(reboots, Wi-Fi changes, technician visits, customer notices — the crew is working there,
a dark ONU is expected, and the operator tells its customers itself). Cancelling or holding
visits is never blocked: it only takes work away from the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from guardian_lib.errors import ConfigError, validation_message
from guardian_lib.matchers import labels_match
from guardian_lib.safe_yaml import load_yaml

__all__ = [
    "MAINTENANCE_BLOCKED_ACTIONS",
    "PLACE_LABELS",
    "MaintenanceWindow",
    "MaintenanceCalendar",
    "load_maintenance",
    "place_labels",
    "unique_windows",
]

#: Actions a maintenance window blocks in its area.
MAINTENANCE_BLOCKED_ACTIONS = ("reboot", "change_wifi_profile", "schedule_visit", "notify")
#: Label name → column of the snapshot's status frame (the alert labels' names).
PLACE_LABELS = {
    "onu": "onu_id", "customer": "customer_id", "cpe": "cpe_id", "pon": "pon_id",
    "box": "box_id", "olt": "olt_id", "region": "region", "segment": "segment",
}  # fmt: skip


class MaintenanceWindow(BaseModel):
    """Scheduled work on the labels ``matchers`` from ``start`` to ``end`` (UTC).

    ``name`` is the window's id: it is what the audit names when an action is blocked.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    matchers: dict[str, str] = Field(min_length=1)
    start: datetime
    end: datetime
    comment: str = ""

    @model_validator(mode="after")
    def _order(self) -> MaintenanceWindow:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a time zone (e.g. 2026-03-02T01:00:00Z)")
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self

    def in_force(self, now: Any) -> bool:
        """Whether ``now`` (timestamp, or epoch seconds) is inside the window."""
        t = pd.Timestamp(now, unit="s", tz="UTC") if isinstance(now, int | float) else now
        return self.start <= t < self.end

    def mutes(self, labels: Mapping[str, str], now: Any) -> bool:
        """In force at ``now`` and matching ``labels``."""
        return self.in_force(now) and labels_match(labels, self.matchers)


def unique_windows(windows: list[MaintenanceWindow]) -> list[MaintenanceWindow]:
    """``windows`` unchanged; ValueError when a name is used twice."""
    seen: set[str] = set()
    for w in windows:
        if w.name in seen:
            raise ValueError(f"window name {w.name!r} is used twice (names are the audit's id)")
        seen.add(w.name)
    return windows


class _WindowsFile(BaseModel):
    """The ``maintenance_windows`` of any YAML file (an alerting file has more keys)."""

    model_config = ConfigDict(extra="ignore")

    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list)

    @field_validator("maintenance_windows")
    @classmethod
    def _names(cls, v: list[MaintenanceWindow]) -> list[MaintenanceWindow]:
        return unique_windows(v)


class MaintenanceCalendar:
    """The maintenance windows the safety guard honours.

    Parameters
    ----------
    windows : iterable of MaintenanceWindow
    source : path, optional
        The file they were read from (shown in messages).
    """

    def __init__(self, windows: Iterable[MaintenanceWindow] = (), source: Path | None = None):
        self.windows = tuple(windows)
        self.source = source

    def __len__(self) -> int:
        return len(self.windows)

    def any_in_force(self, now: Any) -> bool:
        """Whether some window is in force at ``now`` (cheap test before building labels)."""
        return any(w.in_force(now) for w in self.windows)

    def covering(self, places: Iterable[Mapping[str, str]], now: Any) -> MaintenanceWindow | None:
        """The first window in force at ``now`` whose matchers match one of ``places``."""
        places = list(places)
        for w in self.windows:
            if w.in_force(now) and any(labels_match(p, w.matchers) for p in places):
                return w
        return None


def load_maintenance(path: str | Path | None) -> MaintenanceCalendar:
    """The ``maintenance_windows:`` of a YAML file (an alerting file, or one holding only them).

    Raises
    ------
    ConfigError
        Naming the file and the field (``maintenance_windows[0].end``).
    """
    if path is None:
        return MaintenanceCalendar()
    p = Path(path)
    data = load_yaml(p)
    if data is None:
        return MaintenanceCalendar(source=p)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{p}: expected a mapping with 'maintenance_windows', got {type(data).__name__}"
        )
    try:
        parsed = _WindowsFile(**data)
    except ValidationError as exc:
        raise ConfigError(validation_message(p, exc, "invalid maintenance windows")) from None
    return MaintenanceCalendar(parsed.maintenance_windows, source=p)


def place_labels(row: Mapping[str, Any], onu_id: str) -> dict[str, str]:
    """The labels of an ONU's place (``onu``, ``pon``, ``olt``, ``region`` …) from a status row."""
    out = {"onu": str(onu_id)}
    for label, col in PLACE_LABELS.items():
        if label == "onu" or col not in row:
            continue
        v = row[col]
        if v is not None and (isinstance(v, str) or not pd.isna(v)):
            out[label] = str(v)
    return out
