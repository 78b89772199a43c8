"""The warehouse of one run: a DuckDB file beside a hive-partitioned Parquet lake.

Layout (``run`` is any folder)::

    <run>/warehouse.duckdb                 small tables: inventory, operations, catalog
    <run>/lake/raw/{telemetry,events}/date=YYYY-MM-DD/*.parquet     RAW, append-only
    <run>/lake/silver/telemetry/date=YYYY-MM-DD/*.parquet           SILVER (data + parts)
    <run>/lake/silver/events/*.parquet

:func:`connect` opens the file and defines views over the lake (``telemetry_raw``,
``events_raw``, ``telemetry``, ``events``) with absolute paths, so a run folder can be
moved. DuckDB allows one writer process per file; readers open it read-only.

Readers never wait for a writer and never stop one: :class:`WarehouseWriter` (used by
every ingest) writes a copy of the file and renames it over the old one when its
transaction is complete, so a reader opens either the previous warehouse or the new one,
and a reader that holds the file open keeps reading the version it opened. The SILVER
views cover the files that version lists (:data:`SILVER_FILES_TABLE`: a full rebuild's or
a compaction's ``data-….parquet``, the parts the incremental update of
:mod:`guardian_lib.silver` appends); a file is listed by the commit that publishes it and
the files it replaces stay on disk for a grace period (:mod:`guardian_lib.silver_files`),
so a reader never sees a row twice or misses one.

A RAW file that became unreadable after it was ingested (truncated, overwritten) does
not make the warehouse unreadable: :func:`connect` leaves it out of the RAW view and
logs one warning naming it; :func:`run_summary` lists it under ``unreadable_files``.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
    "silver_files",
    "SILVER_FILES_TABLE",
    "warehouse_path",
    "connect",
    "lake_views_sql",
    "private_copy",
    "run_snapshot",
    "run_summary",
    "unreadable_raw_files",
    "WarehouseWriter",
    "attached",
    "release_process_db",
    "table_names",
]

_log = logging.getLogger(__name__)

#: Warehouse table of the committed SILVER files (``kind``, ``date``, ``name``: the path
#: relative to :func:`silver_dir`). Readers read these files only, so a file written
#: before its commit, or one a compaction or a rebuild replaced, is never read twice.
SILVER_FILES_TABLE = "_silver_files"


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


def silver_files(
    run: Path | str, kind: str, con: duckdb.DuckDBPyConnection | None = None
) -> list[Path]:
    """The committed SILVER files of ``kind`` ('telemetry' or 'events').

    Parameters
    ----------
    run : path
    kind : str
    con : connection, optional
        An open connection to the run's warehouse; without it a private copy is read.

    Returns
    -------
    list of Path
        From the warehouse's :data:`SILVER_FILES_TABLE`; a warehouse written before that
        table existed (or none) gives every Parquet file of the SILVER folder.
    """
    run = Path(run)
    folder = silver_dir(run, kind)
    if con is None:
        with private_copy(warehouse_path(run)) as copy:
            if copy is not None:
                c = duckdb.connect(str(copy), read_only=True)
                try:
                    return silver_files(run, kind, c)
                finally:
                    c.close()
    elif SILVER_FILES_TABLE in table_names(con):
        sql = f"SELECT name FROM {SILVER_FILES_TABLE} WHERE kind = ? ORDER BY name"
        return [folder / r[0] for r in con.execute(sql, [kind]).fetchall()]
    pattern = "date=*/*.parquet" if kind == "telemetry" else "*.parquet"
    return sorted(p for p in folder.glob(pattern) if not p.name.startswith("."))


def lake_views_sql(
    run: Path | str,
    raw_files: dict[str, list[str]] | None = None,
    silver: dict[str, list[Path]] | None = None,
) -> list[str]:
    """``CREATE TEMP VIEW`` statements for the lake tables of ``run``.

    Parameters
    ----------
    run : path
    raw_files : dict, optional
        RAW files accepted by the last ingest, by kind, relative to ``run``; RAW views
        cover only those (a file dropped in later, or a corrupt one, is not visible
        until an ingest accepts it).
    silver : dict, optional
        Committed SILVER files by kind (:func:`silver_files`); default: every Parquet
        file of the SILVER folders (a warehouse without the listing).
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
    if silver is None:
        silver = {k: silver_files(run, k, None) for k in ("telemetry", "events")}
    if silver.get("telemetry"):
        # the committed files only: a compaction's replaced parts stay on disk for a while
        listing = "[" + ", ".join(_sql_str(p) for p in silver["telemetry"]) + "]"
        stmts.append(
            f"CREATE OR REPLACE TEMP VIEW telemetry AS SELECT * FROM read_parquet({listing}, "
            "hive_partitioning=false, union_by_name=true)"
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
    if silver.get("events"):
        listing = "[" + ", ".join(_sql_str(p) for p in silver["events"]) + "]"
        stmts.append(
            f"CREATE OR REPLACE TEMP VIEW events AS SELECT * FROM read_parquet({listing}, "
            "union_by_name=true)"
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
    silver = {k: silver_files(run, k, con) for k in ("telemetry", "events")}
    try:
        for stmt in lake_views_sql(run, raw_files, silver):
            con.execute(stmt)
    except duckdb.Error:
        # Some file cannot be read: name it, leave it out, keep the rest readable.
        bad = unreadable_raw_files(run, raw_files)
        for rel in bad:
            _log.warning("%s: unreadable RAW file left out of the RAW views", Path(run) / rel)
        kept = {k: [f for f in fs if f not in bad] for k, fs in raw_files.items()}
        for stmt in lake_views_sql(run, kept, silver):
            con.execute(stmt)
    return con


_PROCESS_DB: dict[int, duckdb.DuckDBPyConnection] = {}
_PROCESS_DB_LOCK = threading.Lock()
_ALIASES = itertools.count()


def _process_cursor() -> duckdb.DuckDBPyConnection:
    """A new connection to this process's in-memory DuckDB instance (made on first use).

    Starting a DuckDB instance costs tens of milliseconds (its built-in extensions and
    catalog), attaching a file to a running one about a millisecond. One per process id:
    a forked child makes its own and never touches (nor closes) its parent's.
    """
    with _PROCESS_DB_LOCK:
        pid = os.getpid()
        if pid not in _PROCESS_DB:
            # Kept for the process's life: give memory back after each task, as closing
            # an instance does (DuckDB's default keeps up to 128 MiB).
            _PROCESS_DB[pid] = duckdb.connect(":memory:")
        return _PROCESS_DB[pid].cursor()


def release_process_db() -> None:
    """Let this process's DuckDB instance go (closed once its last connection is): the
    memory its allocator keeps after a large task (a compaction) goes back to the
    system. The next :func:`attached` starts a new one."""
    with _PROCESS_DB_LOCK:
        con = _PROCESS_DB.pop(os.getpid(), None)
    if con is not None:
        con.close()


@contextmanager
def attached(path: Path | str, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection of this process's DuckDB instance with the database file ``path``
    attached and in use (unqualified table names are its tables), time zone UTC.

    The file is detached (and so closed) on exit. Temporary tables are the
    connection's own. Use it like ``duckdb.connect(path, read_only=...)``, without the
    cost of a new instance per call.

    Parameters
    ----------
    path : path
        DuckDB file (created if missing and not ``read_only``).
    read_only : bool, default True
    """
    cur = _process_cursor()
    alias = f"wh_{os.getpid()}_{next(_ALIASES)}"
    mode = " (READ_ONLY)" if read_only else ""
    try:
        cur.execute(f"ATTACH {_sql_str(Path(path))} AS {alias}{mode}")
        cur.execute(f"USE {alias}")
        cur.execute("SET TimeZone = 'UTC'")
        yield cur
    finally:
        try:
            cur.execute("USE memory")
            cur.execute(f"DETACH DATABASE IF EXISTS {alias}")
        finally:
            cur.close()


class WarehouseWriter:
    """Write a run's DuckDB file as a new copy, then swap it in atomically.

    ``con`` is a connection to ``.warehouse.duckdb.new-<pid>`` (a copy of the current
    file); :meth:`publish` checkpoints it and renames it over ``warehouse.duckdb``;
    :meth:`close` without :meth:`publish` throws the copy away, leaving the warehouse as
    it was. One writer at a time per run (the ingest lock).

    Parameters
    ----------
    run : path
    shared : bool, default False
        Attach the copy to this process's DuckDB instance (:func:`attached`) instead of
        starting an instance of its own: the same file and the same swap, without the
        instance's start-up cost (the per-cycle SILVER update of ``guardian operate``).
    """

    def __init__(self, run: Path | str, shared: bool = False) -> None:
        self.path = warehouse_path(run)
        self.tmp = self.path.with_name(f".{self.path.name}.new-{os.getpid()}")
        self._discard_tmp()
        if self.path.exists():
            shutil.copyfile(self.path, self.tmp)
            wal = self.path.with_name(self.path.name + ".wal")
            if wal.exists():  # left by a writer of an older version that was killed
                shutil.copyfile(wal, self.tmp.with_name(self.tmp.name + ".wal"))
        self._attached = attached(self.tmp, read_only=False) if shared else None
        if self._attached is not None:
            self.con = self._attached.__enter__()
        else:
            self.con = duckdb.connect(str(self.tmp))
        self.published = False

    def _discard_tmp(self) -> None:
        self.tmp.unlink(missing_ok=True)
        self.tmp.with_name(self.tmp.name + ".wal").unlink(missing_ok=True)

    def _close_con(self) -> None:
        if self._attached is not None:
            self._attached.__exit__(None, None, None)
        else:
            self.con.close()

    def publish(self) -> None:
        """Make the written copy the run's warehouse (readers opening it from now on see it)."""
        self.con.execute("CHECKPOINT")
        self._close_con()
        fd = os.open(self.tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.tmp, self.path)
        self.path.with_name(self.path.name + ".wal").unlink(missing_ok=True)
        self.published = True

    def close(self) -> None:
        """Close; an unpublished copy is removed."""
        if not self.published:
            try:
                self._close_con()
            finally:
                self._discard_tmp()


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


def _copy_db(db: Path, dest: Path) -> None:
    """Copy the DuckDB file ``db`` and its WAL (if any) to ``dest`` (and ``dest.wal``)."""
    shutil.copyfile(db, dest)
    wal = db.with_name(db.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, dest.with_name(dest.name + ".wal"))


@contextmanager
def private_copy(db: Path | str) -> Iterator[Path | None]:
    """A private copy of a DuckDB file (and its WAL), deleted on exit; None if it is absent.

    DuckDB lets one process write a file and refuses a writer while any reader, even
    read-only (or, in the same process, a connection with another configuration), has it
    open. Readers that must never keep ``guardian operate`` out (its audit trail, the
    warehouse it ingests into every cycle) read a copy instead.
    """
    db = Path(db)
    if not db.exists():
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="guardian-copy-") as tmp:
        copy = Path(tmp) / db.name
        _copy_db(db, copy)
        yield copy


@contextmanager
def run_snapshot(run: Path | str, retries: int = 20, wait_s: float = 0.05) -> Iterator[Path]:
    """A run folder to read while a writer (``guardian operate``) keeps working on ``run``.

    The snapshot is a temporary folder with the run's name: ``warehouse.duckdb`` (and its
    WAL) is copied and checked to open; every other entry (the Parquet lake, ``kpis.json``,
    ``models/``) is a symbolic link to the original, since Parquet files are only ever
    replaced whole (``os.replace``) or added. ``sla.parquet`` and ``sla.json``, which the
    report writers write into their run folder, are left out, so those writes stay in the
    snapshot and are discarded with it.

    Parameters
    ----------
    run : path
        Run folder with a warehouse.
    retries : int, default 20
        Copies tried when one is unreadable (taken in the middle of a checkpoint). [-]
    wait_s : float, default 0.05
        Pause between two tries. [s]

    Raises
    ------
    WarehouseError
        No warehouse in ``run``, or no readable copy after ``retries`` tries.
    """
    run = Path(run).resolve()
    db = warehouse_path(run)
    if not db.exists():
        raise WarehouseError(f"{db} not found: no warehouse in {run}")
    lay = RunLayout(run)
    # outputs a reader writes into its run folder stay in the snapshot (never linked)
    private = {lay.sla.name, lay.sla_json.name}
    with tempfile.TemporaryDirectory(prefix="guardian-snapshot-") as tmp:
        snap = Path(tmp) / run.name
        snap.mkdir()
        for entry in run.iterdir():
            if not entry.name.startswith(WAREHOUSE_FILE) and entry.name not in private:
                (snap / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        last: Exception | None = None
        for _ in range(max(1, retries)):
            try:
                _copy_db(db, snap / WAREHOUSE_FILE)
                duckdb.connect(str(snap / WAREHOUSE_FILE), read_only=True).close()
                break
            except (OSError, duckdb.Error) as exc:
                last = exc
                time.sleep(wait_s)
        else:
            raise WarehouseError(f"{db}: no readable copy while it is being written: {last}")
        yield snap
