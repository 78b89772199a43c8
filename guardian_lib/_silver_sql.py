"""RAW → SILVER in SQL: what :mod:`guardian_lib.ingest` (the full rebuild) and
:mod:`guardian_lib._silver_merge` (the incremental merge) build SILVER with.

Timestamps snapped to the grid (``round(epoch(ts) / grid_s) * grid_s``; whole seconds
that divide a day, :mod:`guardian_lib.silver_grid`), measures outside
:data:`~guardian_lib.schema.VALID_RANGES` set to NULL and counted, rows received more than
:data:`LATE` after their step flagged ``late``, the newest received row per
``(onu_id, ts)``; SILVER events one per event key, the first received.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from guardian_lib.schema import MEASURES, TELEMETRY_COLUMNS, VALID_RANGES, event_key_sql

__all__ = [
    "LATE",
    "NUMERIC_MEASURES",
    "build_silver_date",
    "build_silver_events",
    "raw_file_dates",
    "silver_select",
    "sql_path",
]

#: The measures SILVER range-checks (all but ``online``).
NUMERIC_MEASURES = [c for c in MEASURES if c != "online"]
#: A row received this long after its step is ``late`` (SQL interval).
LATE = "INTERVAL 1 HOUR"


def sql_path(path: Path) -> str:
    """``path`` (resolved) as an SQL string literal."""
    return "'" + str(path.resolve()).replace("'", "''") + "'"


def raw_file_dates(con: duckdb.DuckDBPyConnection, path: Path, grid_s: int) -> list[str]:
    """SILVER dates that hold at least one row of ``path`` (after snapping to the grid)."""
    rows = con.execute(
        f"""SELECT DISTINCT strftime(CAST(to_timestamp(round(epoch(ts) / {grid_s}) * {grid_s})
                                     AS DATE), '%Y-%m-%d')
            FROM read_parquet({sql_path(path)}) WHERE ts IS NOT NULL ORDER BY 1"""
    ).fetchall()
    return [r[0] for r in rows]


def silver_select(files: list[Path], day: str, grid_s: int) -> str:
    file_list = "[" + ", ".join(sql_path(f) for f in files) + "]"
    cleaned = []
    for col in NUMERIC_MEASURES:
        lo, hi = VALID_RANGES[col]
        cleaned.append(f"CASE WHEN {col} BETWEEN {lo} AND {hi} THEN {col} END AS {col}")
    sentinel_terms = " + ".join(
        f"CAST({c} IS NOT NULL AND NOT ({c} BETWEEN {VALID_RANGES[c][0]} AND {VALID_RANGES[c][1]})"
        " AS INTEGER)"
        for c in NUMERIC_MEASURES
    )
    return f"""
        SELECT to_timestamp(round(epoch(ts) / {grid_s}) * {grid_s}) AS ts,
               CAST(onu_id AS VARCHAR) AS onu_id,
               {", ".join(cleaned)},
               online, CAST(source AS VARCHAR) AS source, received_at,
               coalesce(received_at - to_timestamp(round(epoch(ts) / {grid_s}) * {grid_s})
                        > {LATE}, false) AS late,
               {sentinel_terms} AS n_sentinels
        FROM read_parquet({file_list}, union_by_name=true, hive_partitioning=false)
        WHERE CAST(to_timestamp(round(epoch(ts) / {grid_s}) * {grid_s}) AS DATE) = DATE '{day}'
    """


def build_silver_date(
    con: duckdb.DuckDBPyConnection, files: list[Path], day: str, grid_s: int, dest: Path
) -> dict:
    con.execute(f"CREATE OR REPLACE TEMP TABLE _day AS {silver_select(files, day, grid_s)}")
    rows_raw, late, sentinels = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE late), coalesce(sum(n_sentinels), 0) FROM _day"
    ).fetchone()
    dest.parent.mkdir(parents=True, exist_ok=True)
    cols = ", ".join(c for c in TELEMETRY_COLUMNS) + ", received_at, late"
    con.execute(
        f"""COPY (
              SELECT {cols} FROM _day
              QUALIFY row_number() OVER (
                  PARTITION BY onu_id, ts ORDER BY received_at DESC NULLS LAST) = 1
              ORDER BY ts, onu_id
            ) TO {sql_path(dest)} (FORMAT parquet, COMPRESSION zstd)"""
    )
    rows_silver = con.execute(f"SELECT count(*) FROM read_parquet({sql_path(dest)})").fetchone()[0]
    con.execute("DROP TABLE _day")
    return {
        "date": day,
        "rows_raw": int(rows_raw),
        "rows_silver": int(rows_silver),
        "duplicates_removed": int(rows_raw - rows_silver),
        "sentinels_removed": int(sentinels),
        "late_rows": int(late),
    }


def build_silver_events(con: duckdb.DuckDBPyConnection, ev_files: list[Path], dest: Path) -> None:
    """SILVER events from every RAW events file: one row per (entity, type, ts,
    the event key :func:`~guardian_lib.schema.event_key_sql`), the first received."""
    ev_list = "[" + ", ".join(sql_path(f) for f in ev_files) + "]"
    dest.parent.mkdir(parents=True, exist_ok=True)
    con.execute(
        f"""COPY (SELECT ts, entity_id, entity_type, type, severity,
                         CAST(source AS VARCHAR) AS source, payload, received_at
                  FROM read_parquet({ev_list}, union_by_name=true, hive_partitioning=false)
                  QUALIFY row_number() OVER (PARTITION BY entity_id, type, ts, {event_key_sql()}
                                             ORDER BY received_at) = 1
                  ORDER BY ts, entity_id, type)
            TO {sql_path(dest)} (FORMAT parquet, COMPRESSION zstd)"""
    )
