"""Observations of one live cycle (``guardian operate``) for :class:`~.pipeline.AlertPipeline`.

Built from what the cycle already has: the fleet table (``onu_id``, ``customer_id``,
``pon_id``, ``box_id``, ``olt_id``, ``region``, ``segment``), the ONUs' status (``onu_id``,
``online``: the polled rows with operate's missed-poll rule applied), the cycle's events, the autopilot's open incidents and the safety blocks of
the cycle. Same fields as the replay (see docs/alerts.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["cycle_observations"]


def _s(v: Any) -> str | None:
    return None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)


def cycle_observations(
    fleet: pd.DataFrame,
    polled: pd.DataFrame,
    events: pd.DataFrame,
    incidents: Mapping[str, Mapping[str, Any]],
    blocks: Mapping[str, int],
) -> dict[str, list[dict[str, Any]]]:
    """Source name → observations of this cycle.

    Parameters
    ----------
    fleet : pandas.DataFrame
        One row per ONU with its customer and place in the network.
    polled : pandas.DataFrame
        This cycle's status of the ONUs (``onu_id``, ``online``). ``guardian operate``
        passes every ONU of the fleet as its decisions see it (the missed-poll rule of
        :class:`~guardian_lib.loop.missed.MissedPolls`: a missed poll keeps the last
        reading for the grace, past it the ONU is offline), not only the polled rows.
    events : pandas.DataFrame
        This cycle's events (``entity_id``, ``entity_type``, ``type``).
    incidents : mapping
        Open incident id → ``scope_type``, ``scope_key``, ``cause``, ``affected``.
    blocks : mapping
        Safety rule → decisions it blocked this cycle (``circuit_breaker`` trips the alert).
    """
    f = fleet.rename(columns={"onu_id": "onu", "customer_id": "customer", "pon_id": "pon",
                              "box_id": "box", "olt_id": "olt"})  # fmt: skip
    where = {"olt": "olt", "bng": "olt", "pon": "pon", "box": "box"}
    obs: dict[str, list[dict[str, Any]]] = {"incidents": [], "events": [], "health": []}
    for iid, inc in incidents.items():
        col, key = where.get(str(inc["scope_type"])), str(inc["scope_key"])
        labels: dict[str, Any] = {}
        if col is not None:
            beneath = f.loc[f[col].astype(str) == key]
            labels[col] = key
            for c in ("olt", "pon", "box", "region"):
                vals = beneath[c].dropna().unique()
                if c not in labels and len(vals) == 1:
                    labels[c] = str(vals[0])
        obs["incidents"].append({
            "incident_id": iid, "scope_type": inc["scope_type"], "scope_key": key,
            "cause": inc.get("cause"), "affected_customers": inc.get("affected"),
            "level": "incident", **labels,
        })  # fmt: skip
    by_onu = f.set_index(f["onu"].astype(str))
    for r in events.itertuples(index=False):
        if str(r.entity_type) != "onu" or str(r.entity_id) not in by_onu.index:
            continue
        row = by_onu.loc[str(r.entity_id)]
        obs["events"].append({"type": str(r.type), "level": "onu",
                              **{c: _s(row[c]) for c in ("onu", "customer", "segment", "pon",
                                                          "olt", "box", "region")}})  # fmt: skip
    if len(polled):
        st = polled[["onu_id", "online"]].merge(f, left_on="onu_id", right_on="onu")
        st["offline"] = ~st["online"].astype(bool)
        for (pon, olt), g in st.groupby(["pon", "olt"], dropna=True):
            obs["health"].append({"level": "pon", "pon": str(pon), "olt": str(olt),
                                  "region": _s(g["region"].iloc[0]),
                                  "offline_share": float(g["offline"].mean())})  # fmt: skip
        for olt, g in st.groupby("olt", dropna=True):
            obs["health"].append({"level": "olt", "olt": str(olt),
                                  "region": _s(g["region"].iloc[0]),
                                  "olt_reachable": int(not g["offline"].all())})  # fmt: skip
    if blocks.get("circuit_breaker"):
        obs["health"].append({"level": "autopilot", "breaker_tripped": 1,
                              "reason": f"{blocks['circuit_breaker']} decisions blocked"})  # fmt: skip
    return obs
