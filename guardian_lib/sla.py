"""SLA and network KPIs per region, OLT and PON, computed once from a run's warehouse.

One function, :func:`sla_kpis`, turns the SILVER telemetry, the inventory and the service
orders into one table; the dashboard's SLA screen, the report (HTML, PDF, Excel) and the
run's ``sla.parquet`` / ``sla.json`` (:func:`write_sla`) all show that table, so the
numbers agree everywhere.

Definitions (per scope: the whole network, each region, OLT and PON)
--------------------------------------------------------------------
outage of an ONU
    A run of consecutive polls with ``online = false``; it lasts ``polls × poll
    interval`` (the interval is the median spacing of the telemetry's timestamps).
availability
    ``1 − offline polls / polls`` of the scope's ONUs (polls with a known ``online``). [-]
outages, outage_hours
    The ONU outages of the scope merged where they overlap in time (a PON cut that
    takes 32 ONUs down is one outage), and the time covered by them. [-], [h]
customer_hours
    Customers affected × hours: the sum of the ONU outages' durations. [h]
mttr_hours
    Mean duration of the scope's (merged) outages. [h]
repeat_7d, repeat_30d
    ONU outages that start within 7 (30) days of the end of the previous outage of the
    same ONU. [-]
visits, no_fault_found_share
    Completed service orders of the scope's ONUs, and the share of them closed as
    ``no_fault_found``. [-]
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from guardian_lib.layout import RunLayout
from guardian_lib.warehouse import connect

__all__ = [
    "SLA_LEVELS",
    "SLA_COLUMNS",
    "SLA_FILES",
    "REPEAT_DAYS",
    "onu_outages",
    "sla_kpis",
    "write_sla",
]

#: Scopes of the table, from the whole network down to a PON.
SLA_LEVELS = ("network", "region", "olt", "pon")
#: Repeat-fault windows. [d]
REPEAT_DAYS = (7, 30)
#: Columns of :func:`sla_kpis`, in order.
SLA_COLUMNS = [
    "level", "scope", "region", "olt_id", "pon_id", "customers", "availability", "outages",
    "outage_hours", "customer_hours", "mttr_hours", "repeat_7d", "repeat_30d", "visits",
    "no_fault_found_share",
]  # fmt: skip
#: Files written into the run by :func:`write_sla` (``RunLayout.sla`` / ``.sla_json``).
SLA_FILES = ("sla.parquet", "sla.json")


def _poll_minutes(con: duckdb.DuckDBPyConnection) -> float:
    row = con.execute(
        "SELECT median(d) FROM (SELECT epoch(ts) - epoch(lag(ts) OVER (ORDER BY ts)) AS d "
        "FROM (SELECT DISTINCT ts FROM telemetry))"
    ).fetchone()
    return float(row[0]) / 60.0 if row and row[0] else 5.0


def onu_outages(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Outages of every ONU, and polls / offline polls per ONU.

    Returns
    -------
    outages : DataFrame
        ``onu_id``, ``start_at``, ``end_at`` [UTC], ``duration_h`` [h].
    polls : DataFrame
        ``onu_id``, ``polls``, ``offline_polls`` [-].
    poll_minutes : float
        The telemetry's poll interval. [min]
    """
    step = _poll_minutes(con)
    out = con.execute(
        "WITH t AS (SELECT onu_id, ts, online, "
        "row_number() OVER (PARTITION BY onu_id ORDER BY ts) - "
        "row_number() OVER (PARTITION BY onu_id, online ORDER BY ts) AS grp "
        "FROM telemetry WHERE online IS NOT NULL) "
        "SELECT onu_id, min(ts) AS start_at, count(*) AS n FROM t WHERE NOT online "
        "GROUP BY onu_id, grp ORDER BY onu_id, start_at"
    ).df()
    out["start_at"] = pd.to_datetime(out["start_at"], utc=True)
    out["duration_h"] = out.pop("n").astype(float) * step / 60.0
    out["end_at"] = out["start_at"] + pd.to_timedelta(out["duration_h"], unit="h")
    polls = con.execute(
        "SELECT onu_id, count(*) AS polls, count(*) FILTER (WHERE NOT online) AS offline_polls "
        "FROM telemetry WHERE online IS NOT NULL GROUP BY onu_id"
    ).df()
    return out[["onu_id", "start_at", "end_at", "duration_h"]], polls, step


def _merged(ep: pd.DataFrame) -> tuple[int, float]:
    """Number and total length of the union of intervals ``[start_at, end_at)``. [-], [h]"""
    if not len(ep):
        return 0, 0.0
    ep = ep.sort_values("start_at")
    start = ep["start_at"].to_numpy()
    end = ep["end_at"].to_numpy()
    reach = np.maximum.accumulate(end)
    new = np.r_[True, start[1:] > reach[:-1]]
    gid = np.cumsum(new)
    s = pd.Series(start).groupby(gid).min()
    e = pd.Series(reach).groupby(gid).max()
    return int(new.sum()), float((e - s).dt.total_seconds().sum() / 3600.0)


def _repeats(ep: pd.DataFrame, days: int) -> pd.Series:
    """True for each outage that starts within ``days`` of the ONU's previous outage's end."""
    ep = ep.sort_values(["onu_id", "start_at"])
    prev_end = ep.groupby("onu_id")["end_at"].shift()
    return ((ep["start_at"] - prev_end) <= pd.Timedelta(days=days)).reindex(ep.index)


def sla_kpis(run: Path | str | duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """SLA and network KPIs of a run for the network, each region, OLT and PON.

    Parameters
    ----------
    run : path or DuckDB connection
        Run folder with an ingested warehouse (``telemetry``, ``onus``, ``pons``,
        ``olts``; ``customers`` and ``service_orders`` when present), or a connection.

    Returns
    -------
    DataFrame
        :data:`SLA_COLUMNS`, one row per scope (``level`` in :data:`SLA_LEVELS`,
        ``scope`` its id; ``network`` first, then regions, OLTs and PONs sorted). See the
        module docstring for the definitions and units.

    Raises
    ------
    ValueError
        The warehouse lacks a table the computation needs (the message names it).
    """
    own = not isinstance(run, duckdb.DuckDBPyConnection)
    con = connect(run) if own else run
    try:
        names = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        for t in ("telemetry", "onus", "pons", "olts"):
            if t not in names:
                raise ValueError(
                    f"sla_kpis: the warehouse has no table {t!r} (run `guardian ingest`)"
                )
        inv = con.execute(
            "SELECT o.onu_id, o.pon_id, p.olt_id, l.region FROM onus o "
            "JOIN pons p ON o.pon_id = p.pon_id JOIN olts l ON p.olt_id = l.olt_id"
        ).df()
        ep, polls, _ = onu_outages(con)
        cust = (
            con.execute("SELECT onu_id, count(*) AS n FROM customers GROUP BY onu_id").df()
            if "customers" in names
            else pd.DataFrame({"onu_id": inv["onu_id"], "n": 1})
        )
        so = (
            # Orders name the customer; the customer's ONU places them in the network.
            con.execute(
                "SELECT c.onu_id, s.status, s.outcome FROM service_orders s "
                "JOIN customers c ON s.customer_id = c.customer_id"
            ).df()
            if {"service_orders", "customers"} <= names
            else pd.DataFrame(columns=["onu_id", "status", "outcome"])
        )
    finally:
        if own:
            con.close()
    inv = inv.merge(polls, on="onu_id", how="left").fillna({"polls": 0, "offline_polls": 0})
    inv = inv.merge(cust, on="onu_id", how="left").fillna({"n": 0})
    inv["network"] = "network"
    for d in REPEAT_DAYS:
        ep[f"repeat_{d}d"] = _repeats(ep, d) if len(ep) else pd.Series(dtype=bool)
    ep = ep.merge(inv[["onu_id", "pon_id", "olt_id", "region", "network"]], on="onu_id")
    done = so.loc[so["status"] == "completed"].merge(
        inv[["onu_id", "pon_id", "olt_id", "region", "network"]], on="onu_id"
    )
    rows = []
    for level, col in (
        ("network", "network"),
        ("region", "region"),
        ("olt", "olt_id"),
        ("pon", "pon_id"),
    ):
        for scope, members in inv.groupby(col, sort=True):
            e = ep.loc[ep[col] == scope]
            v = done.loc[done[col] == scope]
            n_out, out_h = _merged(e)
            polls_sum = float(members["polls"].sum())
            first = members.iloc[0]
            rows.append(
                {
                    "level": level,
                    "scope": str(scope),
                    "region": None if level == "network" else str(first["region"]),
                    "olt_id": str(first["olt_id"]) if level in ("olt", "pon") else None,
                    "pon_id": str(first["pon_id"]) if level == "pon" else None,
                    "customers": int(members["n"].sum()),
                    "availability": 1.0 - float(members["offline_polls"].sum()) / polls_sum
                    if polls_sum
                    else float("nan"),
                    "outages": n_out,
                    "outage_hours": out_h,
                    "customer_hours": float(e["duration_h"].sum()),
                    "mttr_hours": out_h / n_out if n_out else float("nan"),
                    "repeat_7d": int(e["repeat_7d"].sum()),
                    "repeat_30d": int(e["repeat_30d"].sum()),
                    "visits": len(v),
                    "no_fault_found_share": float((v["outcome"] == "no_fault_found").mean())
                    if len(v)
                    else float("nan"),
                }
            )
    return pd.DataFrame.from_records(rows, columns=SLA_COLUMNS)


def write_sla(run: Path | str, table: pd.DataFrame | None = None) -> list[Path]:
    """Write :func:`sla_kpis` of ``run`` to ``RUN/sla.parquet`` and ``RUN/sla.json``.

    Parameters
    ----------
    run : path
        Run folder.
    table : DataFrame, optional
        An already computed :func:`sla_kpis` table (default: computed now).

    Returns
    -------
    list of Path
        The two files (JSON: ``{"schema": "network-guardian-sla/1", "rows": [...]}``,
        NaN written as ``null``).
    """
    layout = RunLayout(Path(run))
    table = sla_kpis(run) if table is None else table
    paths = [layout.sla, layout.sla_json]
    table.to_parquet(paths[0], index=False)
    rows = json.loads(table.to_json(orient="records"))
    paths[1].write_text(
        json.dumps({"schema": "network-guardian-sla/1", "rows": rows}, indent=1), encoding="utf-8"
    )
    return paths
