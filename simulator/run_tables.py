"""A run's tables besides the RAW lake: inventory, service orders, faults truth, manifest.

:class:`simulator.output.RunWriter` streams the RAW lake while the simulation runs and
calls :func:`write_run_tables` at the end; :mod:`simulator.sharded` calls it once for all
shards. Only the simulator writes ``faults_truth``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from guardian_lib.layout import RunLayout
from simulator.engine import Simulation

__all__ = ["write_run_tables", "service_orders_frame", "faults_truth_frame"]


def write_run_tables(
    out_dir: Path,
    scenario,
    topology,
    orders: pd.DataFrame,
    truth: pd.DataFrame,
    counts: dict[str, int],
    extra: dict | None = None,
) -> None:
    """Write a run's inventory, operations tables and manifest (``run.json``).

    Parameters
    ----------
    out_dir : Path
    scenario : Scenario
    topology : Topology
        The whole fleet's network.
    orders, truth : pandas.DataFrame
        ``service_orders`` and ``faults_truth``.
    counts : dict
        Rows written (``telemetry``, ``events``) and ``calls``. [-]
    extra : dict, optional
        More manifest keys (e.g. how the random streams were laid out).
    """
    inv = Path(out_dir) / "inventory"
    inv.mkdir(parents=True, exist_ok=True)
    for name, df in topology.tables().items():
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), inv / f"{name}.parquet")
    ops = Path(out_dir) / "ops"
    ops.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.Table.from_pandas(orders, preserve_index=False), ops / "service_orders.parquet"
    )
    pq.write_table(pa.Table.from_pandas(truth, preserve_index=False), ops / "faults_truth.parquet")
    manifest = {
        "format": "network-guardian-run/1",
        "scenario": json.loads(scenario.model_dump_json()),
        "seed": scenario.seed,
        "n_onus": int(topology.n_onus),
        "ticks": int(scenario.n_ticks),
        "rows": {
            "telemetry": int(counts["telemetry"]),
            "events": int(counts["events"]),
            "service_orders": len(orders),
            "faults_truth": len(truth),
            "calls": int(counts["calls"]),
        },
        **(extra or {}),
    }
    RunLayout(out_dir).manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True))


def _ts_col(sim: Simulation, seconds: list[float | None]) -> pd.Series:
    values = [None if s is None else sim.ts_of(s) for s in seconds]
    return pd.Series(pd.to_datetime(values, utc=True), dtype="datetime64[us, UTC]")


def service_orders_frame(sim: Simulation) -> pd.DataFrame:
    """``service_orders`` table of a simulation."""
    recs = sim.ops.records()
    df = pd.DataFrame(
        recs,
        columns=[
            "os_id", "customer_id", "onu_row", "region", "reason", "status", "opened_s",
            "scheduled_s", "closed_s", "technician_id", "outcome", "cost_brl", "opened_by",
        ],
    )  # fmt: skip
    out = pd.DataFrame(
        {
            "os_id": df["os_id"].astype(object),
            "customer_id": df["customer_id"].astype(object),
            "region": df["region"].astype(object),
            "reason": df["reason"].astype(object),
            "status": df["status"].astype(object),
            "opened_at": _ts_col(sim, df["opened_s"].tolist()),
            "scheduled_for": _ts_col(sim, df["scheduled_s"].tolist()),
            "closed_at": _ts_col(sim, [None if pd.isna(x) else x for x in df["closed_s"]]),
            "technician_id": df["technician_id"].astype(object),
            "outcome": df["outcome"].astype(object),
            "cost_brl": df["cost_brl"].astype(float),
            "opened_by": df["opened_by"].astype(object),
        }
    )
    return out


def faults_truth_frame(sim: Simulation) -> pd.DataFrame:
    """``faults_truth`` table (simulator only; models and policies never read it)."""
    recorded = [f for f in sim.faults if f.recorded]
    ids = sim.onu_ids
    return pd.DataFrame(
        {
            "fault_id": [f.fault_id for f in recorded],
            "kind": [f.kind for f in recorded],
            "cause_class": [f.cause_class for f in recorded],
            "scope_type": [f.scope_type for f in recorded],
            "scope_key": [f.scope_key for f in recorded],
            "start_at": _ts_col(sim, [f.start_s for f in recorded]),
            "impact_start_at": _ts_col(
                sim,
                [
                    None
                    if f.impact_start_s is None or f.impact_start_s > sim.scenario.horizon_s
                    else f.impact_start_s
                    for f in recorded
                ],
            ),
            "end_at": _ts_col(sim, [f.end_s for f in recorded]),
            "affected_onus": [ids[f.onus].astype(str).tolist() for f in recorded],
            "n_affected": [len(f.onus) for f in recorded],
            "fixable_by_reboot": [f.fixable_by_reboot for f in recorded],
            "fixed_by": [f.fixed_by for f in recorded],
        }
    )
