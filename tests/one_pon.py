"""A one-PON fleet for decision tests: 16 ONUs under one OLT, boxes B0 (ONU00–07) and
B1 (ONU08–15), one residential customer and CPE per ONU, and the recording fakes of the
devices, the field service and the notifier that an :class:`~guardian_lib.actions.Dispatcher`
drives, and a rule scorer that leaves the cause open on calm rows as the ML models do
(shared by tests/guardian_lib/test_decision_*.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from guardian_lib.decision import Observer, RuleScorer

__all__ = ["N", "T0", "Devices", "Field", "Notifier", "SilentCauseScorer", "one_pon_observer"]

T0 = pd.Timestamp("2026-01-05 12:00", tz="UTC")
N = 16  # one PON, boxes B0 (ONU00–07) and B1 (ONU08–15)


class Field:
    """Opens visits ``AP1``, ``AP2``, … and records what it opened and cancelled."""

    def __init__(self):
        self.opened, self.cancelled = [], []

    def open_visit(self, onu_id, reason, priority):
        self.opened.append(onu_id)
        return f"AP{len(self.opened)}"

    def cancel_visit(self, os_id, reason):
        self.cancelled.append(os_id)
        return True

    def status(self, os_id):
        return "scheduled"


class Devices:
    """Records the CPEs rebooted and those whose Wi-Fi profile changed."""

    def __init__(self):
        self.rebooted, self.wifi = [], []

    def reboot(self, device_id):
        self.rebooted.append(device_id)
        return "200"

    def change_wifi_profile(self, device_id):
        self.wifi.append(device_id)
        return "200"


class SilentCauseScorer(RuleScorer):
    """Like the ML models: risk only, no cause on rows without a symptom (NaN)."""

    def __call__(self, snapshot):
        out = super().__call__(snapshot)
        calm = ~snapshot.status["impacted"].to_numpy(dtype=bool)
        for c in [c for c in out.columns if c.startswith("p_")]:
            out.loc[calm, c] = np.nan
        return out


class Notifier:
    def notify(self, onu_id, template, until_h):
        return True


def one_pon_observer() -> Observer:
    """An :class:`~guardian_lib.decision.Observer` of the one-PON fleet."""
    ids = [f"ONU{i:02d}" for i in range(N)]
    onus = pd.DataFrame(
        {"onu_id": ids, "pon_id": "PON1", "olt_id": "OLT1",
         "splitter_id": [f"B{i // 8}" for i in range(N)]}
    )  # fmt: skip
    cust = pd.DataFrame(
        {"customer_id": [f"C{i:02d}" for i in range(N)], "onu_id": ids,
         "cpe_id": [f"CPE{i:02d}" for i in range(N)], "region": "R", "segment": "residential"}
    )  # fmt: skip
    return Observer(onus, cust)
