"""Incremental SILVER: merge only the RAW files added since the last update.

``guardian operate`` adds one RAW file per cycle; rebuilding the current date's SILVER
from all of that date's RAW files every cycle grows through the day (a 50k-ONU fleet at
5 minutes reaches 14 M rows by midnight). :func:`update_silver` merges only the new files,
with SILVER's rules unchanged (:mod:`guardian_lib.ingest`): timestamps snapped to the
grid, the newest received row per ``(onu_id, ts)``, sentinels set to NULL, the
``silver_quality`` counts added up.

For each date the new files feed:

* the new rows are deduplicated among themselves;
* rows for an ``(onu_id, ts)`` already in SILVER (a late row for an earlier tick, a
  duplicate) are compared with it: the newer ``received_at`` wins; the SILVER file that
  held the older row is rewritten with the winner (an atomic rename: a reader sees the
  old row or the new one, never both or neither). Only files whose ``ts`` statistics
  cover those timestamps are read;
* the other rows go to a new part file ``date=D/part-<time>-<pid>.parquet`` (written
  under a hidden name, then renamed).

Then the warehouse's tables (which RAW files were read, the per-date digests
``guardian ingest`` checks, ``silver_quality``) are written through
:class:`~guardian_lib.warehouse.WarehouseWriter`. The result equals a full rebuild, and a
later ``guardian ingest`` finds nothing to rebuild. The full rebuild
(:func:`~guardian_lib.ingest.ingest_run`) is used instead when an old RAW file changed
or was removed, the inventory or operations files changed, or the warehouse predates
this bookkeeping. Part files that no committed update lists (a process killed between
writing them and the warehouse) are removed first: their RAW files are merged again.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from guardian_lib.errors import IngestError
from guardian_lib.ingest import (
    _MEASURES,
    RAW_FILE_DATES,
    _build_silver_events,
    _check_raw_schema,
    _file_dates,
    _fingerprint,
    _known_file_dates,
    _load_table_files,
    _raw_files,
    _silver_select,
    _sql_path,
    _tables_digest,
    ingest_locked,
    run_lock,
)
from guardian_lib.schema import TELEMETRY_COLUMNS
from guardian_lib.warehouse import WarehouseWriter, silver_dir, warehouse_path

__all__ = ["SilverUpdate", "update_silver", "PARTS_TABLE"]

#: Warehouse table of the committed SILVER part files (``date``, ``name``).
PARTS_TABLE = "_silver_parts"
#: Above this many distinct new timestamps the collision check reads a ts range instead
#: of a list (a large back-fill). [-]
_MAX_TS_LIST = 64
_SILVER_COLS = ", ".join(TELEMETRY_COLUMNS) + ", received_at, late"


@dataclass(frozen=True)
class SilverUpdate:
    """What :func:`update_silver` did.

    Attributes
    ----------
    mode : {'incremental', 'full', 'none'}
        Merged the new files, fell back to the full rebuild, or found nothing new.
    reason : str
        Why the full rebuild was used ('' otherwise).
    new_files : int
        RAW files merged. [-]
    dates : tuple of str
        SILVER dates changed.
    rows_added : int
        New ``(onu_id, ts)`` rows in SILVER. [-]
    rows_replaced : int
        SILVER rows replaced by a newer received row. [-]
    files_rewritten : int
        Existing SILVER files rewritten for those replacements. [-]
    seconds : float
        Wall time. [s]
    """

    mode: str
    reason: str = ""
    new_files: int = 0
    dates: tuple[str, ...] = ()
    rows_added: int = 0
    rows_replaced: int = 0
    files_rewritten: int = 0
    seconds: float = 0.0


def update_silver(
    run: Path | str, grid_minutes: int = 5, lock_wait_s: float = 30.0
) -> SilverUpdate:
    """Merge the RAW files added since the last ingest into SILVER.

    Parameters
    ----------
    run : path
        Run / warehouse folder.
    grid_minutes : int, default 5
        Polling grid SILVER snaps timestamps to. [min]
    lock_wait_s : float, default 30
        How long to wait for another ingest of the same run to finish. [s]

    Returns
    -------
    SilverUpdate

    Raises
    ------
    IngestError
        A new RAW file is unreadable or lacks a required column (named); nothing changed.
    """
    run = Path(run)
    t0 = time.perf_counter()
    with run_lock(run, lock_wait_s):
        out = _update_locked(run, grid_minutes * 60)
    return SilverUpdate(**{**out.__dict__, "seconds": round(time.perf_counter() - t0, 4)})


def _full(run: Path, grid_s: int, reason: str) -> SilverUpdate:
    summary = ingest_locked(run, grid_s // 60)
    return SilverUpdate("full", reason, dates=(), rows_added=summary.silver_telemetry_rows)


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    sql = "SELECT count(*) FROM information_schema.tables WHERE table_name = ?"
    return bool(con.execute(sql, [name]).fetchone()[0])


def _update_locked(run: Path, grid_s: int) -> SilverUpdate:
    if not warehouse_path(run).exists():
        return _full(run, grid_s, "no warehouse yet")
    tel_files = _raw_files(run, "telemetry")
    ev_files = _raw_files(run, "events")
    table_files = _load_table_files(run)
    con = duckdb.connect(str(warehouse_path(run)), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        bookkept = all(_has_table(con, t) for t in (RAW_FILE_DATES, "_silver_manifest"))
        if bookkept:
            manifest = dict(con.execute("SELECT date, digest FROM _silver_manifest").fetchall())
            known = _known_file_dates(con, run)
            parts: set[tuple[str, str]] = set()
            if _has_table(con, PARTS_TABLE):
                sql = f"SELECT date, name FROM {PARTS_TABLE}"
                parts = {tuple(r) for r in con.execute(sql).fetchall()}
    finally:
        con.close()
    if not bookkept:
        return _full(run, grid_s, "warehouse without per-file bookkeeping")
    if manifest.get("__tables__") != _tables_digest(table_files):
        return _full(run, grid_s, "inventory or operations files changed")
    known_paths = {p: fp for p, fp in known}
    current = {str(f.relative_to(run)): _fingerprint(f) for f in tel_files}
    for rel, fp in known_paths.items():
        if rel not in current:
            return _full(run, grid_s, f"{rel} was removed")
        if current[rel] != fp:
            return _full(run, grid_s, f"{rel} changed")
    _remove_orphan_parts(run, parts)
    new = [f for f in tel_files if str(f.relative_to(run)) not in known_paths]
    for f in new:
        _check_raw_schema(f, ["ts", "onu_id", "received_at", *_MEASURES, "online", "source"])
    ev_digest = hashlib.sha256("|".join(_fingerprint(f) for f in ev_files).encode()).hexdigest()
    events_changed = manifest.get("__events__") != ev_digest
    if not new and not events_changed:
        return SilverUpdate("none")
    return _merge(run, grid_s, tel_files, new, known, ev_files if events_changed else None)


def _remove_orphan_parts(run: Path, parts: set[tuple[str, str]]) -> None:
    """Part files an update wrote but never committed (killed before its warehouse)."""
    for p in silver_dir(run, "telemetry").glob("date=*/part-*.parquet"):
        if (p.parent.name.removeprefix("date="), p.name) not in parts:
            p.unlink()


def _merge(
    run: Path,
    grid_s: int,
    tel_files: list[Path],
    new: list[Path],
    known: dict[tuple[str, str], list[str]],
    ev_files: list[Path] | None,
) -> SilverUpdate:
    """Merge ``new`` into SILVER; ``ev_files``: all RAW event files when they changed."""
    writer = WarehouseWriter(run)
    con = writer.con
    try:
        con.execute("SET TimeZone = 'UTC'")
        dates_of = {p: ds for (p, _fp), ds in known.items()}
        new_rows = []
        by_date: dict[str, list[Path]] = {}
        for f in new:
            rel = str(f.relative_to(run))
            dates_of[rel] = _file_dates(con, f, grid_s)
            new_rows += [(rel, _fingerprint(f), d) for d in dates_of[rel] or [""]]
            for d in dates_of[rel]:
                by_date.setdefault(d, []).append(f)
        quality, added, replaced, rewritten, new_parts = [], 0, 0, 0, []
        try:
            for d in sorted(by_date):
                q, a, r, w, part = _merge_date(con, run, by_date[d], d, grid_s)
                quality.append(q)
                added, replaced, rewritten = added + a, replaced + r, rewritten + w
                if part is not None:
                    new_parts.append((d, part.name))
        except duckdb.Error as exc:
            raise IngestError(f"{run}: merging new RAW files into SILVER failed: {exc}") from exc
        # The digests `guardian ingest` compares: the same as a full ingest would write.
        date_fps: dict[str, list[str]] = {}
        for f in tel_files:
            rel = str(f.relative_to(run))
            for d in dates_of[rel]:
                date_fps.setdefault(d, []).append(_fingerprint(f))
        con.execute("BEGIN TRANSACTION")
        for d in by_date:
            digest = hashlib.sha256("|".join(date_fps[d]).encode()).hexdigest()
            con.execute("DELETE FROM _silver_manifest WHERE date = ?", [d])
            con.execute("INSERT INTO _silver_manifest VALUES (?, ?)", [d, digest])
        if new_rows:
            con.executemany(f"INSERT INTO {RAW_FILE_DATES} VALUES (?, ?, ?)", new_rows)
            con.executemany(
                "INSERT INTO _raw_files VALUES ('telemetry', ?)",
                [(str(f.relative_to(run)),) for f in new],
            )
        if ev_files is not None:
            ev_digest = hashlib.sha256("|".join(_fingerprint(f) for f in ev_files).encode())
            con.execute("DELETE FROM _silver_manifest WHERE date = '__events__'")
            con.execute(
                "INSERT INTO _silver_manifest VALUES ('__events__', ?)", [ev_digest.hexdigest()]
            )
            con.execute("DELETE FROM _raw_files WHERE kind = 'events'")
            con.executemany(
                "INSERT INTO _raw_files VALUES ('events', ?)",
                [(str(f.relative_to(run)),) for f in ev_files],
            )
        con.execute(
            "CREATE TABLE IF NOT EXISTS silver_quality (date VARCHAR PRIMARY KEY, "
            "rows_raw BIGINT, rows_silver BIGINT, duplicates_removed BIGINT, "
            "sentinels_removed BIGINT, late_rows BIGINT)"
        )
        for q in quality:
            con.execute("INSERT OR REPLACE INTO silver_quality VALUES (?, ?, ?, ?, ?, ?)", q)
        con.execute(f"CREATE TABLE IF NOT EXISTS {PARTS_TABLE} (date VARCHAR, name VARCHAR)")
        if new_parts:
            con.executemany(f"INSERT INTO {PARTS_TABLE} VALUES (?, ?)", new_parts)
        con.execute("COMMIT")
        ev_dest = silver_dir(run, "events") / "data.parquet"
        if ev_files:  # events are few: rebuilt whole when they change
            staged = ev_dest.with_name(f".data.parquet.tmp-{os.getpid()}")
            _build_silver_events(con, ev_files, staged)
            os.replace(staged, ev_dest)
        elif ev_files is not None:
            ev_dest.unlink(missing_ok=True)
        writer.publish()
    finally:
        writer.close()
    return SilverUpdate("incremental", "", len(new), tuple(sorted(by_date)), added, replaced,
                        rewritten)  # fmt: skip


def _ts_filter(con: duckdb.DuckDBPyConnection) -> str:
    """A filter on ``ts`` that Parquet statistics prune: the new rows' timestamps."""
    stamps = [
        r[0] for r in con.execute("SELECT DISTINCT epoch_us(ts) FROM _new ORDER BY 1").fetchall()
    ]
    if len(stamps) > _MAX_TS_LIST:
        return f"ts BETWEEN make_timestamptz({stamps[0]}) AND make_timestamptz({stamps[-1]})"
    return " OR ".join(f"ts = make_timestamptz({s})" for s in stamps) or "false"


def _merge_date(
    con: duckdb.DuckDBPyConnection, run: Path, files: list[Path], day: str, grid_s: int
) -> tuple[list, int, int, int, Path | None]:
    """Merge ``files``' rows of ``day`` into its SILVER folder.

    Returns the new ``silver_quality`` row, the rows added, the rows replaced, the files
    rewritten and the new part file (None if every row was already there).
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE _inc AS {_silver_select(files, day, grid_s)}")
    n_raw, n_late, n_sent = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE late), coalesce(sum(n_sentinels), 0) FROM _inc"
    ).fetchone()
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _new AS SELECT {_SILVER_COLS} FROM _inc
            QUALIFY row_number() OVER (
                PARTITION BY onu_id, ts ORDER BY received_at DESC NULLS LAST) = 1"""
    )
    folder = silver_dir(run, "telemetry") / f"date={day}"
    existing = sorted(folder.glob("*.parquet"))
    replaced = rewritten = 0
    if existing:
        listing = "[" + ", ".join(_sql_path(f) for f in existing) + "]"
        # Existing rows with a key of the new rows; statistics skip the other row groups.
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _hit AS
                SELECT o.filename, o.onu_id, o.ts,
                       (o.received_at IS NULL AND n.received_at IS NOT NULL)
                       OR n.received_at > o.received_at AS new_wins
                FROM (SELECT filename, onu_id, ts, received_at
                      FROM read_parquet({listing}, filename=true, union_by_name=true)
                      WHERE {_ts_filter(con)}) o
                JOIN _new n USING (onu_id, ts)"""
        )
        for (fname,) in con.execute(
            "SELECT DISTINCT filename FROM _hit WHERE new_wins ORDER BY 1"
        ).fetchall():
            path = Path(fname)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            src = _sql_path(path)
            con.execute(
                f"""COPY (
                      SELECT {_SILVER_COLS} FROM read_parquet({src}) o
                      WHERE NOT EXISTS (SELECT 1 FROM _hit h WHERE h.new_wins
                                        AND h.filename = {src} AND h.onu_id = o.onu_id
                                        AND h.ts = o.ts)
                      UNION ALL
                      SELECT {_SILVER_COLS} FROM _new n
                      WHERE EXISTS (SELECT 1 FROM _hit h WHERE h.new_wins
                                    AND h.filename = {src} AND h.onu_id = n.onu_id
                                    AND h.ts = n.ts)
                      ORDER BY ts, onu_id
                    ) TO {_sql_path(tmp)} (FORMAT parquet, COMPRESSION zstd)"""
            )
            os.replace(tmp, path)
            rewritten += 1
        replaced = con.execute("SELECT count(*) FROM _hit WHERE new_wins").fetchone()[0]
        con.execute("DELETE FROM _new n WHERE EXISTS (SELECT 1 FROM _hit h "
                    "WHERE h.onu_id = n.onu_id AND h.ts = n.ts)")  # fmt: skip
    added = con.execute("SELECT count(*) FROM _new").fetchone()[0]
    part = None
    if added:
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / f"part-{time.time_ns()}-{os.getpid()}.parquet"
        tmp = part.with_name(f".{part.name}.tmp")
        con.execute(
            f"COPY (SELECT {_SILVER_COLS} FROM _new ORDER BY ts, onu_id) "
            f"TO {_sql_path(tmp)} (FORMAT parquet, COMPRESSION zstd)"
        )
        os.replace(tmp, part)
    old = con.execute(
        "SELECT rows_raw, rows_silver, sentinels_removed, late_rows FROM silver_quality "
        "WHERE date = ?",
        [day],
    ).fetchone() if _has_quality(con) else None  # fmt: skip
    rows_raw, rows_silver, sent, late = old or (0, 0, 0, 0)
    rows_raw, rows_silver = rows_raw + n_raw, rows_silver + added
    quality = [day, rows_raw, rows_silver, rows_raw - rows_silver, sent + n_sent, late + n_late]
    con.execute("DROP TABLE _inc")
    return quality, int(added), int(replaced), rewritten, part


def _has_quality(con: duckdb.DuckDBPyConnection) -> bool:
    return _has_table(con, "silver_quality")
