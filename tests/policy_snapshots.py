"""Hand-made observable snapshots for the decision-policy tests: a 32-ONU fleet (2 PONs x
2 street boxes x 8 ONUs), healthy readings, one observer round, a scored snapshot, a case."""

from __future__ import annotations

import numpy as np
import pandas as pd

from guardian_lib.decision import Observer, RuleScorer, Snapshot
from guardian_lib.decision._base import CASE_COLUMNS
from guardian_lib.loop.tick import Tick

__all__ = ["N_BOX", "PER_BOX", "T0", "case_frame", "healthy", "inventory", "observe", "snapshot"]

T0 = pd.Timestamp("2026-01-05 12:00", tz="UTC")
N_BOX, PER_BOX = 4, 8  # 2 PONs x 2 boxes x 8 ONUs


def inventory() -> tuple[pd.DataFrame, pd.DataFrame]:
    n = N_BOX * PER_BOX
    ids = [f"ONU{i:03d}" for i in range(n)]
    box = [f"BOX{i // PER_BOX}" for i in range(n)]
    pon = [f"PON{i // (2 * PER_BOX)}" for i in range(n)]
    onus = pd.DataFrame({"onu_id": ids, "pon_id": pon, "olt_id": "OLT1", "splitter_id": box})
    customers = pd.DataFrame(
        {
            "customer_id": [f"C{i:03d}" for i in range(n)],
            "onu_id": ids,
            "cpe_id": [f"OUI-X-{i:03d}" for i in range(n)],
            "region": ["North"] * (n // 2) + ["South"] * (n // 2),
            "segment": "residential",
        }
    )
    return onus, customers


def healthy(n: int) -> dict[str, np.ndarray]:
    return {
        "rx_dbm": np.full(n, -20.0),
        "tx_dbm": np.full(n, 2.0),
        "olt_rx_dbm": np.full(n, -22.0),
        "ber": np.full(n, 1e-12),
        "latency_ms": np.full(n, 12.0),
        "loss_pct": np.full(n, 0.1),
        "uptime_s": np.full(n, 1e5),
    }


def observe(obs: Observer, minutes: float, online=None, **changes) -> pd.Timestamp:
    """Feed the observer one round at ``T0 + minutes``; ``changes`` override readings."""
    n = obs.n
    v = healthy(n)
    on = np.ones(n, dtype=bool) if online is None else online
    for k, val in changes.items():
        v[k] = val
    for k in v:
        v[k] = np.where(on, v[k], np.nan)
    v["loss_pct"] = np.where(on, v["loss_pct"], np.nan)
    ts = T0 + pd.Timedelta(minutes=minutes)
    obs.update(Tick(ts, {**v, "online": on}))
    return ts


def snapshot(obs, ts, scorer=None, cases=None, orders=None, incidents=None) -> Snapshot:
    snap = Snapshot(ts=ts, status=obs.status())
    if cases is not None:
        snap.cases = cases
    if orders is not None:
        snap.service_orders = orders
    if incidents is not None:
        snap.incidents = incidents
    snap.predictions = (scorer or RuleScorer())(snap)
    return snap


def case_frame(onu: str, opened: pd.Timestamp, reboots=0, last_reboot=pd.NaT, visit=None):
    df = pd.DataFrame(
        [["CASE1", opened, reboots, last_reboot, visit, False, pd.NaT]],
        columns=list(CASE_COLUMNS),
        index=pd.Index([onu], name="onu_id"),
    )
    return df
