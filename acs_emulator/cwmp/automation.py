"""What the ACS does by itself at an Inform: presets, provisions, virtual parameters.

:class:`Automation` holds the configured presets and those sent over the NBI
(compiled once, recompiled after an NBI change), the stored provision scripts and
the virtual parameter definitions, and applies them to a device document: it
computes ``VirtualParameters.*`` and queues the tasks of the presets that match
(:meth:`Automation.apply`). See :mod:`acs_emulator.cwmp.presets`,
:mod:`acs_emulator.cwmp.provisions` and :mod:`acs_emulator.cwmp.virtual`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from acs_emulator.cwmp.documents import expand_query
from acs_emulator.cwmp.presets import (
    Preset,
    PresetError,
    preset_from_genieacs,
    render_task,
    schedule_active,
)
from acs_emulator.cwmp.provisions import ProvisionError, plan_provisions
from acs_emulator.cwmp.query import BoundedQuery, QueryRejected, prepare_query
from acs_emulator.cwmp.store import DeviceStore
from acs_emulator.cwmp.virtual import RX_POWER, check_virtual_parameter, compute_all

__all__ = ["Automation"]

log = logging.getLogger(__name__)
_PRECONDITION_BUDGET_S = 0.05


class Automation:
    """Presets, provisions and virtual parameters of one ACS.

    Parameters
    ----------
    store : DeviceStore
        Holds the NBI's presets, provisions and virtual parameters.
    presets : list of Preset
        Configured presets (``--presets``, ``--zero-touch``).
    builtin_virtual_parameters : bool
        Include ``VirtualParameters.RXPower``.
    """

    def __init__(
        self, store: DeviceStore, presets: list[Preset], builtin_virtual_parameters: bool
    ) -> None:
        self.store = store
        self.configured = presets
        self.builtin = builtin_virtual_parameters
        self._presets: list[tuple[Preset, Any]] | None = None
        self._vparams: dict[str, dict[str, Any]] | None = None

    def presets(self) -> list[tuple[Preset, Any]]:
        """Presets (configured, then NBI) by weight, each with its prepared precondition."""
        if self._presets is None:
            out: list[Preset] = list(self.configured)
            for name, body in self.store.admin["presets"].items():
                try:
                    out.append(preset_from_genieacs(name, body))
                except (PresetError, KeyError, TypeError, ValueError) as exc:
                    log.warning("preset %s ignored: %s", name, exc)  # checked at PUT
            out.sort(key=lambda p: p.weight)
            prepared = []
            for p in out:
                try:
                    q = expand_query(prepare_query(p.precondition)) if p.precondition else None
                except QueryRejected as exc:
                    log.warning("preset %s ignored: %s", p.name, exc)
                    continue
                prepared.append((p, q))
            self._presets = prepared
        return self._presets

    def virtual_parameters(self) -> dict[str, dict[str, Any]]:
        """Virtual parameter definitions (built-in ``RXPower`` unless replaced)."""
        if self._vparams is None:
            specs: dict[str, dict[str, Any]] = {}
            if self.builtin:
                specs["RXPower"] = check_virtual_parameter("RXPower", RX_POWER)
            for name, body in self.store.admin["virtual_parameters"].items():
                specs[name] = check_virtual_parameter(name, body.get("definition", body))
            self._vparams = specs
        return self._vparams

    def invalidate(self) -> None:
        """Forget compiled presets and virtual parameters (after an NBI change)."""
        self._presets = None
        self._vparams = None

    def compute_virtual(self, doc: dict[str, Any], ts: str) -> bool:
        """Compute ``VirtualParameters.*`` into ``doc``; whether a value changed."""
        return compute_all(doc, self.virtual_parameters(), ts)

    @staticmethod
    def _matches(doc: dict[str, Any], query: Any) -> bool:
        try:
            deadline = time.monotonic() + _PRECONDITION_BUDGET_S
            return bool(BoundedQuery(query, deadline).match(doc))
        except Exception:  # a precondition that cannot be evaluated does not apply
            return False

    def apply(self, doc: dict[str, Any], codes: list[str], root: str, serial: str) -> None:
        """Queue the tasks of the presets matching this Inform (events, precondition,
        schedule), their provisions planned against ``doc``; apply their tags.

        A preset task still queued (the device has not run it yet) is not queued
        again: repeated Informs must not grow the queue without bound. A provision
        that cannot be planned records a fault on channel ``preset_<name>``.
        """
        device_id = doc["_id"]
        queued = {(t.get("preset"), t.get("name")) for t in self.store.pending_tasks(device_id)}
        scripts: dict[str, str] | None = None
        for preset, query in self.presets():
            if not preset.events_match(codes) or (
                query is not None and not self._matches(doc, query)
            ):
                continue
            if preset.schedule and not schedule_active(preset.schedule):
                continue
            tasks = list(preset.tasks)
            if preset.provisions:
                if scripts is None:
                    scripts = {
                        k: v.get("script", "") for k, v in self.store.admin["provisions"].items()
                    }
                try:
                    plan = plan_provisions(doc, preset.provisions, scripts)
                except (ProvisionError, KeyError, TypeError, ValueError) as exc:
                    self.store.record_fault(
                        device_id, f"preset_{preset.name}", "preset.provision", str(exc)
                    )
                    continue
                tags = doc.setdefault("_tags", [])
                for tag, present in plan.tags.items():
                    if present and tag not in tags:
                        tags.append(tag)
                    elif not present and tag in tags:
                        tags.remove(tag)
                tasks += plan.as_tasks()
            for t in tasks:
                if (preset.name, t.get("name")) in queued:
                    continue
                task = render_task(t, root, serial, device_id)
                task.update(device=device_id, preset=preset.name)
                self.store.insert_task(task)
