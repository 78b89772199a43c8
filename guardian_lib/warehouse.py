"""The warehouse of one run: a DuckDB file beside a hive-partitioned Parquet lake.

Layout (``run`` is any folder)::

    <run>/warehouse.duckdb                 small tables: inventory, operations, catalog
    <run>/lake/raw/{telemetry,events}/date=YYYY-MM-DD/*.parquet     RAW, append-only
    <run>/lake/silver/telemetry/date=YYYY-MM-DD/data.parquet        SILVER
    <run>/lake/silver/events/data.parquet

:func:`connect` opens the file and defines views over the lake (``telemetry_raw``,
``events_raw``, ``telemetry``, ``events``) with absolute paths, so a run folder can be
moved. DuckDB allows one writer process per file; readers open it read-only.

A RAW file that became unreadable after it was ingested (truncated, overwritten) does
not make the warehouse unreadable: :func:`connect` leaves it out of the RAW view and
logs one warning naming it; :func:`run_summary` lists it under ``unreadable_files``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from guardian_lib.errors import WarehouseError
from guardian_lib.layout import WAREHOUSE_FILE, RunLayout

__all__ = [
    "WAREHOUSE_FILE",
    "raw_dir",
    "silver_dir",
    "warehouse_path",
    "connect",
    "lake_views_sql",
    "run_summary",
    "unreadable_raw_files",
    "table_names",
]

_log = logging.getLogger(__name__)


def warehouse_path(run: Path | str) -> Path:
    """Path of a run's DuckDB file (:attr:`RunLayout.warehouse`)."""
    return RunLayout(run).warehouse


def raw_dir(run: Path | str, kind: str) -> Path:
    """RAW lake folder of ``kind`` ('telemetry' or 'events')."""
    return RunLayout(run).raw(kind)


def silver_dir(run: Path | str, kind: str) -> Path:
    """SILVER lake folder of ``kind`` ('telemetry' or 'events')."""
    return RunLayout(run).silver(kind)


def _sql_str(path: Path) -> str:
    return "'" + str(path.resolve()).replace("'", "''") + "'"


def lake_views_sql(run: Path | str, raw_files: dict[str, list[str]] | None = None) -> list[str]:
    """``CREATE TEMP VIEW`` statements for the lake tables of ``run``.

    Parameters
    ----------
    run : path
    raw_files : dict, optional
        RAW files accepted by the last ingest, by kind, relative to ``run``; RAW views
        cover only those (a file dropped in later, or a corrupt one, is not visible
        until an ingest accepts it).
    """
    run = Path(run)
    stmts = []
    for kind, files in (raw_files or {}).items():
        paths = [run / f for f in files if (run / f).exists()]
        if paths:
            listing = "[" + ", ".join(_sql_str(p) for p in paths) + "]"
            stmts.append(
                f"CREATE OR REPLACE TEMP VIEW {kind}_raw AS SELECT * FROM read_parquet("
                f"{listing}, hive_partitioning=true, union_by_name=true)"
            )
    tel = silver_dir(run, "telemetry")
    if any(tel.glob("date=*/data.parquet")):
        stmts.append(
            "CREATE OR REPLACE TEMP VIEW telemetry AS SELECT * FROM read_parquet("
            f"{_sql_str(tel / 'date=*' / 'data.parquet')}, hive_partitioning=false)"
        )
    gold = RunLayout(run).features
    if any(gold.glob("date=*/data.parquet")):
        stmts.append(
            "CREATE OR REPLACE TEMP VIEW features_timeseries AS SELECT * FROM read_parquet("
            f"{_sql_str(gold / 'date=*' / 'data.parquet')}, hive_partitioning=false)"
        )
    preds = RunLayout(run).predictions
    if any(preds.glob("*.parquet")):
        stmts.append(
            "CREATE OR REPLACE TEMP VIEW ml_predictions AS SELECT * FROM read_parquet("
            f"{_sql_str(preds / '*.parquet')})"
        )
    ev = silver_dir(run, "events") / "data.parquet"
    if ev.exists():
        stmts.append(
            f"CREATE OR REPLACE TEMP VIEW events AS SELECT * FROM read_parquet({_sql_str(ev)})"
        )
    return stmts


def connect(run: Path | str, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Open a run's warehouse with the lake views defined.

    Parameters
    ----------
    run : path
        Run folder containing ``warehouse.duckdb``.
    read_only : bool, default True

    Raises
    ------
    WarehouseError
        No warehouse in ``run`` (run ``guardian ingest --run RUN`` first).
    """
    path = warehouse_path(run)
    if not path.exists():
        raise WarehouseError(
            f"{path} not found: no warehouse in {run} (run `guardian ingest --run {run}` first)"
        )
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        raise WarehouseError(
            f"{path}: cannot open the warehouse ({' '.join(str(exc).split())}); is an "
            "ingest writing it right now?"
        ) from None
    con.execute("SET TimeZone = 'UTC'")
    raw_files: dict[str, list[str]] = {}
    if "_raw_files" in table_names(con):
        for kind, rel in con.execute("SELECT kind, path FROM _raw_files").fetchall():
            raw_files.setdefault(kind, []).append(rel)
    try:
        for stmt in lake_views_sql(run, raw_files):
            con.execute(stmt)
    except duckdb.Error:
        # Some file cannot be read: name it, leave it out, keep the rest readable.
        bad = unreadable_raw_files(run, raw_files)
        for rel in bad:
            _log.warning("%s: unreadable RAW file left out of the RAW views", Path(run) / rel)
        kept = {k: [f for f in fs if f not in bad] for k, fs in raw_files.items()}
        for stmt in lake_views_sql(run, kept):
            con.execute(stmt)
    return con


def unreadable_raw_files(run: Path | str, raw_files: dict[str, list[str]]) -> list[str]:
    """RAW files (relative to ``run``) whose Parquet footer cannot be read."""
    bad = []
    for files in raw_files.values():
        for rel in files:
            p = Path(run) / rel
            if not p.exists():
                continue
            try:
                pq.read_metadata(p)
            except (OSError, pa.ArrowException):
                bad.append(rel)
    return bad


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Tables and views of an open warehouse (its own and the lake views)."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema IN ('main','temp')"
    ).fetchall()
    return {r[0] for r in rows}


def run_summary(run: Path | str) -> dict[str, Any]:
    """Row counts, time range, operations and (for simulated runs) faults of a warehouse.

    Returns
    -------
    dict
        Keys ``warehouse``, ``row_counts``, ``time_range``, ``operations``,
        ``faults_by_class``, ``faults_by_kind``, ``data_quality`` and
        ``unreadable_files`` (RAW files left out because they cannot be read).
    """
    con = connect(run)
    try:
        tables = table_names(con)
        order = [
            "olts", "pons", "splitters", "onus", "customers", "telemetry_raw", "telemetry",
            "events_raw", "events", "service_orders", "incidents", "faults_truth",
        ]  # fmt: skip
        counts = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in order if t in tables
        }
        time_range = {"start": None, "end": None}
        if "telemetry" in tables:
            lo, hi = con.execute(
                "SELECT strftime(min(ts), '%Y-%m-%dT%H:%M:%SZ'), "
                "strftime(max(ts), '%Y-%m-%dT%H:%M:%SZ') FROM telemetry"
            ).fetchone()
            time_range = {"start": lo, "end": hi}

        def scalar(sql: str, table: str) -> int:
            return int(con.execute(sql).fetchone()[0] or 0) if table in tables else 0

        ops = {
            "customers": counts.get("customers", 0),
            "onus": counts.get("onus", 0),
            "calls": scalar("SELECT count(*) FROM events WHERE type = 'CUSTOMER_CALL'", "events"),
            "visits": scalar(
                "SELECT count(*) FROM service_orders WHERE status = 'completed'", "service_orders"
            ),
            "visits_no_fault_found": scalar(
                "SELECT count(*) FROM service_orders WHERE outcome = 'no_fault_found'",
                "service_orders",
            ),
            "service_orders": counts.get("service_orders", 0),
        }
        by_class: dict[str, int] = {}
        by_kind: list[dict[str, Any]] = []
        if "faults_truth" in tables:
            for cls, kind, n, onus in con.execute(
                "SELECT cause_class, kind, count(*), sum(n_affected) FROM faults_truth "
                "GROUP BY ALL ORDER BY cause_class, kind"
            ).fetchall():
                by_class[cls] = by_class.get(cls, 0) + int(n)
                by_kind.append(
                    {"cause_class": cls, "kind": kind, "faults": int(n), "onus": int(onus)}
                )
        unreadable: list[str] = []
        if "_raw_files" in tables:
            listed: dict[str, list[str]] = {}
            for kind, rel in con.execute("SELECT kind, path FROM _raw_files").fetchall():
                listed.setdefault(kind, []).append(rel)
            unreadable = unreadable_raw_files(run, listed)
        quality = {}
        if "silver_quality" in tables:
            row = con.execute(
                "SELECT sum(rows_raw), sum(rows_silver), sum(duplicates_removed), "
                "sum(sentinels_removed), sum(late_rows) FROM silver_quality"
            ).fetchone()
            quality = dict(
                zip(
                    [
                        "rows_raw",
                        "rows_silver",
                        "duplicates_removed",
                        "sentinels_removed",
                        "late_rows",
                    ],
                    [int(v or 0) for v in row],
                    strict=True,
                )
            )
        return {
            "warehouse": str(warehouse_path(run)),
            "row_counts": counts,
            "time_range": time_range,
            "operations": ops,
            "faults_by_class": by_class,
            "faults_by_kind": by_kind,
            "data_quality": quality,
            "unreadable_files": unreadable,
        }
    finally:
        con.close()
