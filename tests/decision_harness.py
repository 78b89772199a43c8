"""A synthetic fleet stepped through the autopilot or the rules policy, for decision tests.

``SyntheticNet(n_pons, pon_size, box_size, policy, scorer)`` builds an Observer over
``n_pons`` PONs of ``pon_size`` ONUs under street boxes of ``box_size`` and an Autopilot
in execute mode whose field, device and notification back-ends only record what they
were asked. :meth:`SyntheticNet.run` steps it through the minutes of a scenario and
returns the audited decisions with their minute (``mins``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from guardian_lib.actions import Dispatcher
from guardian_lib.decision import (
    Autopilot,
    AutopilotSettings,
    Observer,
    RuleScorer,
    RulesPolicy,
    Snapshot,
    make_autopilot,
)
from guardian_lib.loop.tick import EventRow, Tick

__all__ = ["T0", "Devices", "Field", "Notifier", "SyntheticNet", "readings", "targets"]

T0 = pd.Timestamp("2026-03-02 08:00", tz="UTC")


class Field:
    """Field operations that record the ONUs a visit was opened for."""

    def __init__(self):
        self.opened: list[str] = []
        self.confirm: list[str | None] = []

    def open_visit(self, onu_id, reason, priority, confirm=None):
        self.opened.append(onu_id)
        self.confirm.append(confirm)
        return f"AP{len(self.opened)}"

    def cancel_visit(self, os_id, reason):
        return True

    def status(self, os_id):
        return "scheduled"


class Devices:
    """An ACS that accepts every reboot and profile change."""

    def reboot(self, device_id):
        return "200"

    def change_wifi_profile(self, device_id):
        return "200"


class Notifier:
    """Customer notices, recorded by ONU."""

    def __init__(self):
        self.sent: list[str] = []

    def notify(self, onu_id, template, until_h):
        self.sent.append(onu_id)
        return True


def readings(online: np.ndarray) -> dict[str, np.ndarray]:
    """A tick's readings: every ONU healthy (RX −20 dBm, TX 2 dBm, BER 1e-12, 10 ms,
    0.1 % loss), NaN where ``online`` is False, and ``online`` itself."""
    n = len(online)
    vals = {"rx_dbm": np.full(n, -20.0), "tx_dbm": np.full(n, 2.0), "ber": np.full(n, 1e-12),
            "latency_ms": np.full(n, 10.0), "loss_pct": np.full(n, 0.1)}  # fmt: skip
    return {**{k: np.where(online, v, np.nan) for k, v in vals.items()}, "online": online}


def targets(v) -> set[str]:
    """The targets of an audited decision (JSON text or a list) as a set."""
    return set(json.loads(v)) if isinstance(v, str) else set(v)


class SyntheticNet:
    """``n_pons`` PONs of ``pon_size`` ONUs under street boxes of ``box_size``."""

    def __init__(
        self,
        n_pons: int,
        pon_size: int,
        box_size: int,
        policy: str = "autopilot",
        scorer: type[RuleScorer] = RuleScorer,
    ):
        self.n = n_pons * pon_size
        i = np.arange(self.n)
        self.ids = [f"ONU{k:03d}" for k in i]
        onus = pd.DataFrame(
            {"onu_id": self.ids, "pon_id": [f"P{k // pon_size}" for k in i], "olt_id": "OLT1",
             "splitter_id": [f"B{k // box_size}" for k in i]}
        )  # fmt: skip
        cust = pd.DataFrame(
            {"customer_id": [f"C{k:03d}" for k in i], "onu_id": self.ids,
             "cpe_id": [f"CPE{k:03d}" for k in i], "region": "R", "segment": "residential"}
        )  # fmt: skip
        self.obs = Observer(onus, cust)
        if policy == "rules":
            scorer_, pol = scorer(), RulesPolicy()
        else:
            scorer_, pol = make_autopilot(scorer())
        self.field, self.notifier = Field(), Notifier()
        disp = Dispatcher("execute", devices=Devices(), field_ops=self.field,
                          notifier=self.notifier)  # fmt: skip
        self.ap = Autopilot(pol, scorer_, settings=AutopilotSettings(autopilot_mode="execute"),
                            dispatcher=disp)  # fmt: skip

    def run(self, minutes: Iterable[int], state: Callable) -> pd.DataFrame:
        """Step every ``minutes``; ``state(m)`` → (dark {row: event}, {row: RX offset [dB]},
        rows with 150 ms latency[, rows online without PPPoE])."""
        was: set[int] = set()
        for m in minutes:
            dark, rx_off, slow, *rest = state(m)
            nosvc = rest[0] if rest else ()
            online = np.ones(self.n, dtype=bool)
            online[list(dark)] = False
            ts = T0 + pd.Timedelta(minutes=m)
            rx = np.full(self.n, -20.0)
            for k, d in rx_off.items():
                rx[k] -= d
            lat = np.full(self.n, 10.0)
            lat[list(slow)] = 150.0
            loss = np.full(self.n, 0.1)
            loss[list(nosvc)] = 100.0  # online, no PPPoE session: nothing gets through
            vals = {"rx_dbm": rx, "tx_dbm": np.full(self.n, 2.0), "ber": np.full(self.n, 1e-12),
                    "latency_ms": lat, "loss_pct": loss}  # fmt: skip
            vals = {k: np.where(online, v, np.nan) for k, v in vals.items()}
            events = tuple(EventRow(ts, self.ids[k], "onu", t, "minor", "{}")
                           for k, t in dark.items() if k not in was)  # fmt: skip
            was = set(dark)
            self.obs.update(Tick(ts, {**vals, "online": online}, events))
            self.ap.step(Snapshot(ts=ts, status=self.obs.status()))
        dec = self.ap.audit.frame("decisions")
        dec["mins"] = (pd.to_datetime(dec["ts"], utc=True) - T0).dt.total_seconds() / 60
        return dec
