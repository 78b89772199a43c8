"""The Parquet side of incremental SILVER: merge new rows into a date's files, compact.

:mod:`guardian_lib.silver` decides what to merge and commits the warehouse's
bookkeeping; the functions here only touch SILVER files, each written under a hidden
name and renamed: :func:`merge_date` merges one date's new telemetry rows (the newest
received row per ``(onu_id, ts)`` wins, a file holding an older one is rewritten),
:func:`merge_events` the new event rows (the first received wins), and
:func:`compact_due` folds the files of a closed date, or too many parts, into one.
"""

from __future__ import annotations

import bisect
import datetime as dt
import os
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from guardian_lib._silver_sql import raw_file_dates as _file_dates
from guardian_lib._silver_sql import silver_select as _silver_select
from guardian_lib._silver_sql import sql_path as _sql_path
from guardian_lib.schema import TELEMETRY_COLUMNS, event_key_sql
from guardian_lib.silver_files import new_name
from guardian_lib.warehouse import silver_dir

__all__ = ["file_dates", "merge_date", "merge_events", "compact_due", "day_end"]

#: Above this many distinct new timestamps the collision check reads a ts range instead
#: of a list (a large back-fill). [-]
_MAX_TS_LIST = 64
#: Files whose ts statistics :func:`_ts_stats` keeps (then it starts again). [-]
_TS_STATS_MAX = 4096
_TS_STATS: dict[str, tuple[tuple[int, int, int], list | None]] = {}
#: A Parquet timestamp unit's raw value → epoch µs (rounded down for a minimum, up for a
#: maximum).
_TO_US = {
    "microseconds": lambda v, up: v,
    "milliseconds": lambda v, up: v * 1000,
    "nanoseconds": lambda v, up: -(-v // 1000) if up else v // 1000,
}
_SILVER_COLS = ", ".join(TELEMETRY_COLUMNS) + ", received_at, late"
_EV_COLS = "ts, entity_id, entity_type, type, severity, source, payload, received_at"
_EV_KEYS = ("entity_id", "type", "ts", event_key_sql("{t}"))


def new_stamps(con: duckdb.DuckDBPyConnection, table: str) -> tuple[list[int], bool]:
    """The distinct timestamps of ``table``'s rows, sorted [epoch µs], and whether a row
    has none."""
    got = [r[0] for r in con.execute(f"SELECT epoch_us(ts) FROM {table} GROUP BY ALL").fetchall()]
    return sorted(s for s in got if s is not None), None in got


def _read_ts_stats(path: Path) -> list[tuple[int | None, int | None, bool]] | None:
    """Per row group of a Parquet file: ``ts``'s (min, max) [epoch µs, widened to whole
    µs] and whether it has NULLs; None when the file's statistics do not tell."""
    try:
        meta = pq.read_metadata(path)
    except (OSError, pa.ArrowException):
        return None  # read by DuckDB, which names the file in its error
    cols = [meta.schema.column(i) for i in range(meta.num_columns)]
    i = next((k for k, c in enumerate(cols) if c.path == "ts"), None)
    kind = "" if i is None else str(cols[i].logical_type)
    unit = next((u for u in _TO_US if f"timeUnit={u}" in kind), None)
    if unit is None or not kind.startswith("Timestamp("):
        return None
    to_us = _TO_US[unit]
    out = []
    for g in range(meta.num_row_groups):
        st = meta.row_group(g).column(i).statistics
        if st is None or not st.has_null_count:
            return None
        if st.has_min_max:
            out.append((to_us(st.min_raw, False), to_us(st.max_raw, True), st.null_count > 0))
        elif st.null_count == meta.row_group(g).num_rows:
            out.append((None, None, True))
        else:
            return None
    return out


def _ts_stats(path: Path) -> list[tuple[int | None, int | None, bool]] | None:
    """:func:`_read_ts_stats`, kept per file while its size, mtime and inode stay the
    same (a SILVER file is written once; a rewrite is a new file renamed over it)."""
    try:
        st = path.stat()
    except OSError:
        return None  # read by DuckDB, which names the file in its error
    key = (st.st_size, st.st_mtime_ns, st.st_ino)
    hit = _TS_STATS.get(str(path))
    if hit is not None and hit[0] == key:
        return hit[1]
    stats = _read_ts_stats(path)
    if len(_TS_STATS) >= _TS_STATS_MAX:
        _TS_STATS.clear()
    _TS_STATS[str(path)] = (key, stats)
    return stats


def may_hold(path: Path, stamps: list[int], nulls: bool) -> bool:
    """Whether the statistics of the Parquet file ``path`` leave room for a row with one
    of the timestamps ``stamps`` (sorted, epoch µs), or with none if ``nulls``; True when
    they cannot tell."""
    stats = _ts_stats(path)
    if stats is None:
        return True
    for lo, hi, has_null in stats:
        if nulls and has_null:
            return True
        if lo is not None:
            k = bisect.bisect_left(stamps, lo)
            if k < len(stamps) and stamps[k] <= hi:
                return True
    return False


def file_dates(con: duckdb.DuckDBPyConnection, path: Path, grid_s: int) -> list[str]:
    """SILVER dates that hold at least one row of the RAW file ``path`` (after snapping
    to the grid).

    From the file's ``ts`` statistics when its rows cannot leave one date (one poll, the
    usual case), else by reading it (:func:`guardian_lib._silver_sql.raw_file_dates`).

    Parameters
    ----------
    grid_s : int
        Polling grid. [s]
    """
    stats = _ts_stats(path)
    if stats is not None:
        spans = [(lo, hi) for lo, hi, _n in stats if lo is not None]
        if not spans:
            return []  # no row has a time
        lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
        # snapping moves a row by half a grid step at most
        first, last = (
            dt.datetime.fromtimestamp(t / 1e6, dt.UTC).date()
            for t in (lo - grid_s * 10**6, hi + grid_s * 10**6)
        )
        if first == last:
            return [first.isoformat()]
    return _file_dates(con, path, grid_s)


def ts_filter(stamps: list[int], nulls: bool) -> str:
    """A filter on ``ts`` that Parquet statistics prune: the new rows' timestamps."""
    if len(stamps) > _MAX_TS_LIST:
        terms = [f"ts BETWEEN make_timestamptz({stamps[0]}) AND make_timestamptz({stamps[-1]})"]
    else:
        terms = [f"ts = make_timestamptz({s})" for s in stamps]
    return " OR ".join(terms + (["ts IS NULL"] if nulls else [])) or "false"


def replace_older(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    new_table: str,
    keys: tuple[str, ...],
    new_wins: str,
    cols: str,
    order: str,
) -> tuple[int, int]:
    """Rows of ``new_table`` whose key is already in ``files``: the winner stays.

    A file holding a losing stored row is rewritten with the winner (same name, atomic
    rename). The keys found are deleted from ``new_table``. Returns the rows replaced and
    the files rewritten. A key is a column name or an SQL expression whose columns are
    read from the alias ``{t}`` (:func:`guardian_lib.schema.event_key_sql`).
    """
    stamps, nulls = new_stamps(con, new_table)
    # Only files whose ts statistics hold one of the new timestamps can hold a key.
    files = [f for f in files if may_hold(f, stamps, nulls)]
    if not files:
        return 0, 0
    listing = "[" + ", ".join(_sql_path(f) for f in files) + "]"
    exprs = [k if "{t}" in k else "{t}." + k for k in keys]
    on = " AND ".join(f"{e.format(t='o')} IS NOT DISTINCT FROM {e.format(t='n')}" for e in exprs)
    key_cols = ", ".join(f"{e.format(t='o')} AS _k{i}" for i, e in enumerate(exprs))
    # Stored rows with a key of the new rows; statistics skip the other row groups.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _hit AS
            SELECT o.filename, {key_cols}, {new_wins} AS new_wins
            FROM (SELECT * FROM read_parquet({listing}, filename=true, union_by_name=true)
                  WHERE {ts_filter(stamps, nulls)}) o
            JOIN {new_table} n ON {on}"""
    )
    hit_on = " AND ".join(
        f"h._k{i} IS NOT DISTINCT FROM {e.format(t='x')}" for i, e in enumerate(exprs)
    )
    rewritten = 0
    for (fname,) in con.execute(
        "SELECT DISTINCT filename FROM _hit WHERE new_wins ORDER BY 1"
    ).fetchall():
        path = Path(fname)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        src = _sql_path(path)
        won = f"SELECT 1 FROM _hit h WHERE h.new_wins AND h.filename = {src} AND {hit_on}"
        con.execute(
            f"""COPY (
                  SELECT {cols} FROM read_parquet({src}) x WHERE NOT EXISTS ({won})
                  UNION ALL
                  SELECT {cols} FROM {new_table} x WHERE EXISTS ({won})
                  ORDER BY {order}
                ) TO {_sql_path(tmp)} (FORMAT parquet, COMPRESSION zstd)"""
        )
        os.replace(tmp, path)
        rewritten += 1
    replaced = con.execute("SELECT count(*) FROM _hit WHERE new_wins").fetchone()[0]
    con.execute(f"DELETE FROM {new_table} x WHERE EXISTS (SELECT 1 FROM _hit h WHERE {hit_on})")
    return int(replaced), rewritten


def write_part(con: duckdb.DuckDBPyConnection, sql: str, folder: Path) -> Path:
    """``sql``'s rows as a new part file (hidden name first, then renamed)."""
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"part-{time.time_ns()}-{os.getpid()}.parquet"
    tmp = part.with_name(f".{part.name}.tmp")
    con.execute(f"COPY ({sql}) TO {_sql_path(tmp)} (FORMAT parquet, COMPRESSION zstd)")
    os.replace(tmp, part)
    return part


def merge_date(
    con: duckdb.DuckDBPyConnection,
    run: Path,
    files: list[Path],
    day: str,
    grid_s: int,
    names: list[str],
    old_quality: tuple | None = None,
) -> tuple[list, int, int, int, str | None, float | None]:
    """Merge ``files``' rows of ``day`` into its committed SILVER files ``names``.

    ``old_quality`` is the date's ``silver_quality`` row so far (``rows_raw``,
    ``rows_silver``, ``sentinels_removed``, ``late_rows``; None for a new date). Returns
    the new ``silver_quality`` row, the rows added, the rows replaced, the files
    rewritten, the new part's name (None if every row was already there) and the newest
    timestamp merged [epoch s].
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE _inc AS {_silver_select(files, day, grid_s)}")
    n_raw, n_late, n_sent, top = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE late), coalesce(sum(n_sentinels), 0), "
        "epoch(max(ts)) FROM _inc"
    ).fetchone()
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _new AS SELECT {_SILVER_COLS} FROM _inc
            QUALIFY row_number() OVER (
                PARTITION BY onu_id, ts ORDER BY received_at DESC NULLS LAST) = 1"""
    )
    tel = silver_dir(run, "telemetry")
    replaced, rewritten = replace_older(
        con, [tel / n for n in names], "_new", ("onu_id", "ts"),
        "(o.received_at IS NULL AND n.received_at IS NOT NULL) OR n.received_at > o.received_at",
        _SILVER_COLS, "ts, onu_id",
    )  # fmt: skip
    added = con.execute("SELECT count(*) FROM _new").fetchone()[0]
    part = None
    if added:
        sql = f"SELECT {_SILVER_COLS} FROM _new ORDER BY ts, onu_id"
        part = str(write_part(con, sql, tel / f"date={day}").relative_to(tel))
    rows_raw, rows_silver, sent, late = old_quality or (0, 0, 0, 0)
    rows_raw, rows_silver = rows_raw + n_raw, rows_silver + added
    quality = [day, rows_raw, rows_silver, rows_raw - rows_silver, sent + n_sent, late + n_late]
    return quality, int(added), replaced, rewritten, part, top


def merge_events(
    con: duckdb.DuckDBPyConnection, run: Path, files: list[Path], names: list[str]
) -> tuple[int, int, str | None]:
    """Merge new RAW events files into SILVER events (the rule of the full rebuild: one row
    per ``(entity_id, type, ts)`` and :func:`~guardian_lib.schema.event_key_sql`, the first
    received). Returns the rows added, the files rewritten and the new part's name."""
    listing = "[" + ", ".join(_sql_path(f) for f in files) + "]"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _evnew AS
            SELECT ts, entity_id, entity_type, type, severity,
                   CAST(source AS VARCHAR) AS source, payload, received_at
            FROM read_parquet({listing}, union_by_name=true, hive_partitioning=false)
            QUALIFY row_number() OVER (PARTITION BY entity_id, type, ts, {event_key_sql()}
                                       ORDER BY received_at) = 1"""
    )
    folder = silver_dir(run, "events")
    _r, rewritten = replace_older(
        con, [folder / n for n in names], "_evnew", _EV_KEYS,
        "(o.received_at IS NULL AND n.received_at IS NOT NULL) OR n.received_at < o.received_at",
        _EV_COLS, "ts, entity_id, type",
    )  # fmt: skip
    added = con.execute("SELECT count(*) FROM _evnew").fetchone()[0]
    part = None
    if added:
        sql = f"SELECT {_EV_COLS} FROM _evnew ORDER BY ts, entity_id, type"
        part = write_part(con, sql, folder).name
    return int(added), rewritten, part


def compact_due(
    con: duckdb.DuckDBPyConnection,
    run: Path,
    listing: dict[tuple[str, str], list[str]],
    newest: float | None,
    changes: list[tuple[str, str, list[str], list[str]]],
    max_parts: int,
    close_after_s: float,
) -> tuple[str, ...]:
    """Compact what is due into one new file each; the swap is left to the commit.

    A closed date (``newest`` at least ``close_after_s`` past its end) with more than
    one file becomes one ``data-….parquet``; an open date, or SILVER events, with more
    than ``max_parts`` part files has them folded into one. Rows are unique across a
    date's files, so a compaction only concatenates and sorts them. Returns the dates
    compacted (``'events'`` for SILVER events).

    Parameters
    ----------
    newest : float or None
        The newest SILVER timestamp this update merged. [epoch s]
    max_parts : int
        :data:`guardian_lib.silver.MAX_PARTS`. [-]
    close_after_s : float
        :data:`guardian_lib.silver.CLOSE_AFTER_S`. [s]
    """
    done = []
    for (kind, day), names in sorted(listing.items()):
        parts = [n for n in names if Path(n).name.startswith("part-")]
        closed = (
            kind == "telemetry"
            and newest is not None
            and newest >= day_end(day) + close_after_s
            and len(names) > 1
        )
        if not closed and len(parts) <= max_parts:
            continue
        victims = names if closed or kind == "events" else parts
        folder = silver_dir(run, kind)
        name = new_name("data") if kind == "events" else f"date={day}/{new_name('data')}"
        dest = folder / name
        tmp = dest.with_name(f".{dest.name}.tmp")
        cols, order = (
            (_SILVER_COLS, "ts, onu_id")
            if kind == "telemetry"
            else (_EV_COLS, "ts, entity_id, type")
        )
        src = "[" + ", ".join(_sql_path(folder / n) for n in victims) + "]"
        con.execute(
            f"COPY (SELECT {cols} FROM read_parquet({src}, union_by_name=true) ORDER BY {order}) "
            f"TO {_sql_path(tmp)} (FORMAT parquet, COMPRESSION zstd)"
        )
        os.replace(tmp, dest)
        # New parts of this update are not committed yet: list the compacted file instead.
        fresh = {n for k, d, add, _rm in changes if (k, d) == (kind, day) for n in add}
        for i, (k, d, add, rm) in enumerate(changes):
            if (k, d) == (kind, day):
                changes[i] = (k, d, [n for n in add if n not in victims], rm)
        retire = [n for n in victims if n not in fresh]
        changes.append((kind, day, [name], retire))
        for n in victims:
            if n in fresh:
                (folder / n).unlink()  # never listed: no reader can have seen it
        listing[(kind, day)] = [n for n in names if n not in victims] + [name]
        done.append(day or "events")
    return tuple(done)


def day_end(day: str) -> float:
    """Epoch of the midnight UTC that ends ``day`` (YYYY-MM-DD). [s]"""
    start = dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    return (start + dt.timedelta(days=1)).timestamp()
