"""Ingest: RAW files into the warehouse and SILVER built from them.

* :func:`ingest_run` loads a run folder's inventory and operations tables into the
  DuckDB file and (re)builds SILVER telemetry for every date whose RAW inputs changed:
  timestamps snapped to the polling grid, duplicates on ``(onu_id, ts)`` removed (the
  latest received wins), vendor sentinels and out-of-range values set to NULL, late rows
  accepted into their own date. Idempotent: a second call with the same RAW changes
  nothing. Atomic: everything is validated and built in a staging area first, and the
  table updates run in one DuckDB transaction; a bad file leaves the warehouse as it was.
  A SILVER date whose RAW files were all removed is dropped. One ingest at a time per
  run folder (a lock file, ``<run>/.ingest.lock``): a second one waits, then fails with
  one line. Leftover ``.staging-*`` folders of an interrupted ingest are removed. A
  rebuilt date is written as a new ``data-<time>.parquet``; the commit lists it and
  retires the date's previous files in one swap (:mod:`guardian_lib.silver_files`), so a
  reader never sees the date's rows twice; those files are deleted by a later ingest.
* :func:`ingest_user_telemetry` adds an operator's own CSV, Parquet or .xlsx export to RAW
  through a column mapping (:mod:`guardian_lib.mapping`, documented in ``docs/ingest.md``).
  Values implausible for their measure after the mapping's ``scale`` / ``offset`` (most
  of a column outside :data:`~guardian_lib.schema.VALID_RANGES`, e.g. 0.01 dBm read
  as dBm) are refused with the file, the column and the scale that would fit.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from guardian_lib._silver_sql import NUMERIC_MEASURES as _MEASURES
from guardian_lib._silver_sql import build_silver_date as _build_silver_date
from guardian_lib._silver_sql import build_silver_events as _build_silver_events
from guardian_lib._silver_sql import raw_file_dates as _file_dates
from guardian_lib._silver_sql import sql_path as _sql_path
from guardian_lib.errors import IngestError
from guardian_lib.mapping import (
    IMPLAUSIBLE_SHARE,
    ColumnMapping,
    ColumnSpec,
    default_mapping,
    load_column_mapping,
    map_frame,
)
from guardian_lib.schema import (
    INVENTORY_COLUMNS,
    RAW_TELEMETRY_ARROW,
    missing_columns,
)
from guardian_lib.silver_files import (
    disk_listing,
    ensure_tables,
    new_name,
    read_listing,
    replace_files,
    sweep,
)
from guardian_lib.silver_grid import grid_arg, ingest_grid, write_grid
from guardian_lib.user_files import read_user_file
from guardian_lib.warehouse import (
    SILVER_FILES_TABLE,
    WarehouseWriter,
    raw_dir,
    silver_dir,
    silver_files,
    warehouse_path,
)

__all__ = [
    "IngestSummary",
    "AddReport",
    "ColumnSpec",
    "ColumnMapping",
    "ingest_run",
    "ingest_user_telemetry",
    "ingest_locked",
    "run_lock",
    "file_digest",
    "load_column_mapping",
    "RAW_TELEMETRY_SCHEMA",
    "RAW_EVENT_FILES",
    "LOCK_FILE",
    "IMPLAUSIBLE_SHARE",
]

#: Arrow schema of RAW telemetry files (user files are written with exactly this one).
RAW_TELEMETRY_SCHEMA = RAW_TELEMETRY_ARROW
#: Lock file that serialises ingests of one run folder.
LOCK_FILE = ".ingest.lock"
#: Warehouse table: the SILVER dates each RAW telemetry file feeds, with the file's
#: fingerprint when it was read (so an unchanged file is not read again, and the
#: incremental update of :mod:`guardian_lib.silver` knows what SILVER was built from).
RAW_FILE_DATES = "_raw_file_dates"
#: Warehouse table: the RAW events files SILVER events were built from, with their
#: fingerprints (the incremental update merges only the files not in it).
RAW_EVENT_FILES = "_raw_event_files"


@dataclass(frozen=True)
class IngestSummary:
    """What :func:`ingest_run` did."""

    warehouse_path: Path
    silver_telemetry_rows: int
    dates_rebuilt: int
    dates_unchanged: int
    tables_loaded: tuple[str, ...]
    #: SILVER's grid [s] and where it came from (``--grid-seconds``, ``run.json``, the
    #: warehouse's record, or what was inferred from the telemetry).
    grid_s: int = 300
    grid_source: str = ""
    #: The grid SILVER was on before this ingest re-snapped it (None: not re-snapped). [s]
    regridded_from: int | None = None


@dataclass(frozen=True)
class AddReport:
    """What :func:`ingest_user_telemetry` did (``status`` is 'added' or 'already present')."""

    path: Path
    rows_added: int
    status: str


@contextlib.contextmanager
def run_lock(run: Path, wait_s: float) -> Iterator[None]:
    """Hold ``<run>/.ingest.lock``; wait up to ``wait_s`` for another ingest to finish.

    Everything that writes a run's RAW files or warehouse holds it (the lock is per open
    file: do not take it twice in one process, call :func:`ingest_locked` inside it).
    """
    run.mkdir(parents=True, exist_ok=True)
    path = run / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    raise IngestError(
                        f"{run}: another ingest (pid {holder}) is running on this folder; "
                        f"waited {wait_s:g} s for its lock {path}; try again when it ends"
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def file_digest(path: Path) -> str:
    """Short SHA-256 of a file's bytes (names RAW files added from it)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:20]


def ingest_user_telemetry(
    run: Path | str,
    path: Path | str,
    mapping: ColumnMapping | None = None,
    lock_wait_s: float = 30.0,
) -> AddReport:
    """Add an operator's telemetry file (CSV, Parquet or .xlsx) to RAW.

    The file is fully parsed and validated before anything is written; it lands in
    ``lake/raw/telemetry/date=<today>/user-<sha256>.parquet``, so adding the same file
    twice adds nothing. Run :func:`ingest_run` afterwards to rebuild SILVER.

    Parameters
    ----------
    run : path
        Run / warehouse folder (created if missing).
    path : path
        The file to add.
    mapping : ColumnMapping, optional
        Defaults to the warehouse's own column names.
    lock_wait_s : float, default 30
        How long to wait for another ingest of the same run to finish. [s]

    Raises
    ------
    IngestError
        Names the file, the row and the column of the first bad value.
    """
    run, path = Path(run), Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: file not found")
    mapping = mapping or default_mapping(path)
    digest = file_digest(path)
    tel_raw = raw_dir(run, "telemetry")
    table = map_frame(path, read_user_file(path, mapping), mapping)
    with run_lock(run, lock_wait_s):
        if list(tel_raw.glob(f"date=*/user-{digest}.parquet")):
            return AddReport(path, 0, "already present")
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        dest = tel_raw / f"date={today}" / f"user-{digest}.parquet"
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
        try:
            pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
    return AddReport(path, table.num_rows, "added")


# --------------------------------------------------------------------------------------
# RAW → SILVER
# --------------------------------------------------------------------------------------
def _raw_files(run: Path, kind: str) -> list[Path]:
    return sorted(
        p for p in raw_dir(run, kind).glob("date=*/*.parquet") if not p.name.startswith(".")
    )


def _fingerprint(path: Path) -> str:
    st = path.stat()
    return f"{path.parent.name}/{path.name}:{st.st_size}:{st.st_mtime_ns}"


def _check_raw_schema(path: Path, required: list[str]) -> None:
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise IngestError(f"{path}: not a readable Parquet file: {exc}") from exc
    missing = missing_columns(schema.names, required)
    if missing:
        raise IngestError(f"{path}: missing column(s) {missing}; the file has {schema.names}")


def _tables_digest(table_files: dict[str, Path]) -> str:
    """Digest of the inventory and operations files (a change reloads their tables)."""
    return hashlib.sha256(
        "|".join(_fingerprint(f) for f in table_files.values()).encode()
    ).hexdigest()


def _known_file_dates(con: duckdb.DuckDBPyConnection, run: Path) -> dict[tuple[str, str], list]:
    """``(path, fingerprint) → dates`` of the RAW files the last ingest read (none before
    the table existed)."""
    if not con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [RAW_FILE_DATES]
    ).fetchone()[0]:
        return {}
    out: dict[tuple[str, str], list[str]] = {}
    for path, fp, d in con.execute(
        f"SELECT path, fingerprint, date FROM {RAW_FILE_DATES}"
    ).fetchall():
        out.setdefault((path, fp), [])
        if d:
            out[(path, fp)].append(d)
    return out


def _load_table_files(run: Path) -> dict[str, Path]:
    """Inventory and operations Parquet files of a run, by table name."""
    out = {}
    for folder in ("inventory", "ops"):
        for p in sorted((run / folder).glob("*.parquet")):
            out[p.stem] = p
    return out


def _check_inventory(files: dict[str, Path]) -> None:
    for table, required in INVENTORY_COLUMNS.items():
        if table in files:
            _check_raw_schema(files[table], list(required))


def ingest_run(
    run: Path | str,
    grid_minutes: float | None = None,
    progress: bool = False,
    lock_wait_s: float = 30.0,
    *,
    grid_s: int | None = None,
    regrid: bool = False,
) -> IngestSummary:
    """Load a run folder into its warehouse and rebuild SILVER where RAW changed.

    Parameters
    ----------
    run : path
        Run folder (a simulator output, or a folder made by :func:`ingest_user_telemetry`).
    grid_minutes : float, optional
        The polling grid in minutes (the older argument; ``grid_s`` says the same in
        seconds). [min]
    progress : bool, default False
        Show a progress bar.
    lock_wait_s : float, default 30
        How long to wait for another ingest of the same run to finish. [s]
    grid_s : int, optional
        Polling grid SILVER snaps timestamps to, a divisor of a day; default the run's
        ``tick_minutes`` from ``run.json``, else the grid the warehouse records, else the
        one inferred from the telemetry (:func:`guardian_lib.silver_grid.infer_grid`),
        else 300. [s]
    regrid : bool, default False
        When ``grid_s`` differs from the grid SILVER is on: rebuild every SILVER date on
        the new grid from RAW (nothing is lost, RAW keeps every row). False: refuse.

    Returns
    -------
    IngestSummary

    Raises
    ------
    IngestError
        A RAW, inventory or operations file is unreadable or lacks a required column; a
        grid that does not divide a day; a grid other than SILVER's without ``regrid``
        (both named); nothing has been changed.
    """
    run = Path(run)
    if not run.is_dir():
        raise IngestError(f"{run}: run folder not found")
    grid = grid_arg(grid_minutes, grid_s, "--grid-seconds")
    with run_lock(run, lock_wait_s):
        return ingest_locked(run, grid, progress, regrid=regrid)


def ingest_locked(
    run: Path, grid_s: int | None = None, progress: bool = False, *, regrid: bool = False
) -> IngestSummary:
    """:func:`ingest_run` (``grid_s`` [s]) for a caller that already holds the run's
    :func:`run_lock`."""
    _remove_stale_staging(run)
    grid = grid_arg(None, grid_s, "--grid-seconds")
    return _ingest_locked(run, grid, progress, regrid)


def _remove_stale_staging(run: Path) -> None:
    """Staging folders of an interrupted ingest (the lock says none is running)."""
    for folder in (run / "lake" / "silver").glob(".staging-*"):
        shutil.rmtree(folder, ignore_errors=True)


def _ingest_locked(
    run: Path, grid_asked: int | None, progress: bool, regrid: bool = False
) -> IngestSummary:
    table_files = _load_table_files(run)
    _check_inventory(table_files)
    tel_files = _raw_files(run, "telemetry")
    ev_files = _raw_files(run, "events")
    if not tel_files and not table_files:
        raise IngestError(f"{run}: nothing to ingest (no lake/raw/telemetry and no inventory)")
    for f in tel_files:
        _check_raw_schema(f, ["ts", "onu_id", "received_at", *_MEASURES, "online", "source"])
    for f in ev_files:
        _check_raw_schema(f, ["ts", "entity_id", "entity_type", "type", "severity", "payload"])

    wh = warehouse_path(run)
    writer = WarehouseWriter(run)  # readers see the old warehouse until publish()
    con = writer.con
    try:
        con.execute("SET TimeZone = 'UTC'")
        sweep(con, run)  # SILVER files replaced long enough ago, or never committed
        listing = read_listing(con)
        legacy = listing is None
        listing = disk_listing(run) if listing is None else listing
        old = {}
        if con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = '_silver_manifest'"
        ).fetchone()[0]:
            old = dict(con.execute("SELECT date, digest FROM _silver_manifest").fetchall())
        has_silver = any(not d.startswith("__") for d in old)
        grid_s, grid_source, regridded_from = ingest_grid(
            con, run, grid_asked, tel_files, has_silver, regrid
        )
        # Which SILVER dates does each RAW file feed, and what is each date's input digest?
        known_dates: dict[tuple[str, str], list[str]] = {}
        if old and regridded_from is None:  # a new grid moves rows across midnight
            known_dates = _known_file_dates(con, run)
        date_files: dict[str, list[Path]] = {}
        file_dates: list[tuple[str, str, str]] = []
        for f in tel_files:
            fp = _fingerprint(f)
            dates = known_dates.get((str(f.relative_to(run)), fp))
            if dates is None:
                dates = _file_dates(con, f, grid_s)
            for d in dates:
                date_files.setdefault(d, []).append(f)
            file_dates += [(str(f.relative_to(run)), fp, d) for d in dates or [""]]
        digests = {
            d: hashlib.sha256("|".join(_fingerprint(f) for f in fs).encode()).hexdigest()
            for d, fs in date_files.items()
        }
        ev_digest = hashlib.sha256("|".join(_fingerprint(f) for f in ev_files).encode()).hexdigest()
        changed = sorted(
            d for d in digests if regridded_from is not None or old.get(d) != digests[d]
        )
        # Dates whose RAW files were all removed: their SILVER partition goes too.
        gone = sorted(d for d in old if not d.startswith("__") and d not in digests)
        staging = run / "lake" / "silver" / f".staging-{os.getpid()}"
        if staging.exists():
            shutil.rmtree(staging)
        quality = []
        try:
            iterator = changed
            if progress and changed:
                from rich.progress import track

                iterator = track(changed, description="SILVER telemetry", transient=True)
            for d in iterator:
                dest = staging / "telemetry" / f"date={d}" / "data.parquet"
                quality.append(_build_silver_date(con, date_files[d], d, grid_s, dest))
            build_events = ev_files and old.get("__events__") != ev_digest
            if build_events:
                _build_silver_events(con, ev_files, staging / "events" / "data.parquet")
        except duckdb.Error as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise IngestError(f"{run}: building SILVER failed, warehouse unchanged: {exc}") from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

        con.execute("BEGIN TRANSACTION")
        try:
            for name, path in table_files.items():
                source = f"read_parquet({_sql_path(path)})"
                con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM {source}')
            con.execute(
                "CREATE TABLE IF NOT EXISTS silver_quality (date VARCHAR PRIMARY KEY, "
                "rows_raw BIGINT, rows_silver BIGINT, duplicates_removed BIGINT, "
                "sentinels_removed BIGINT, late_rows BIGINT)"
            )
            for d in gone:
                con.execute("DELETE FROM silver_quality WHERE date = ?", [d])
            for q in quality:
                con.execute(
                    "INSERT OR REPLACE INTO silver_quality VALUES (?, ?, ?, ?, ?, ?)",
                    [q["date"], q["rows_raw"], q["rows_silver"], q["duplicates_removed"],
                     q["sentinels_removed"], q["late_rows"]],
                )  # fmt: skip
            con.execute("CREATE OR REPLACE TABLE _raw_files (kind VARCHAR, path VARCHAR)")
            listed = [("telemetry", str(f.relative_to(run))) for f in tel_files] + [
                ("events", str(f.relative_to(run))) for f in ev_files
            ]
            if listed:  # an import of inventory or tickets alone has no RAW file
                con.executemany("INSERT INTO _raw_files VALUES (?, ?)", listed)
            con.execute(
                f"CREATE OR REPLACE TABLE {RAW_FILE_DATES} (path VARCHAR, fingerprint VARCHAR, "
                "date VARCHAR)"
            )
            if file_dates:
                con.executemany(f"INSERT INTO {RAW_FILE_DATES} VALUES (?, ?, ?)", file_dates)
            manifest = {
                **{d: digests[d] for d in digests},
                "__events__": ev_digest,
                "__tables__": _tables_digest(table_files),
            }
            if tel_files and not grid_source.startswith("default"):
                write_grid(con, grid_s, grid_source)
            con.execute("CREATE OR REPLACE TABLE _silver_manifest (date VARCHAR, digest VARCHAR)")
            con.executemany("INSERT INTO _silver_manifest VALUES (?, ?)", sorted(manifest.items()))
            con.execute(f"CREATE OR REPLACE TABLE {RAW_EVENT_FILES} (path VARCHAR, "
                        "fingerprint VARCHAR)")  # fmt: skip
            if ev_files:
                con.executemany(
                    f"INSERT INTO {RAW_EVENT_FILES} VALUES (?, ?)",
                    [(str(f.relative_to(run)), _fingerprint(f)) for f in ev_files],
                )
            ensure_tables(con)
            if legacy and listing:  # a warehouse from before the listing: list the disk
                con.executemany(
                    f"INSERT INTO {SILVER_FILES_TABLE} VALUES (?, ?, ?)",
                    [(k, d, n) for (k, d), names in listing.items() for n in names],
                )
            # Move the staged SILVER files in under new names; the commit lists them and
            # retires the files they replace (deleted by a later ingest, see silver_files):
            # a reader sees a date's old files or its new one, never both.
            for d in changed:
                src = staging / "telemetry" / f"date={d}" / "data.parquet"
                name = f"date={d}/{new_name('data')}"
                (silver_dir(run, "telemetry") / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, silver_dir(run, "telemetry") / name)
                replace_files(con, run, "telemetry", d, [name], listing.get(("telemetry", d), []))
            for d in gone:
                replace_files(con, run, "telemetry", d, [], listing.get(("telemetry", d), []))
            old_events = listing.get(("events", ""), [])
            if build_events:
                name = new_name("data")
                silver_dir(run, "events").mkdir(parents=True, exist_ok=True)
                os.replace(staging / "events" / "data.parquet", silver_dir(run, "events") / name)
                replace_files(con, run, "events", "", [name], old_events)
            elif not ev_files:
                replace_files(con, run, "events", "", [], old_events)
            con.execute("DROP TABLE IF EXISTS _silver_parts")  # superseded by the listing
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        listed = silver_files(run, "telemetry", con)
        rows = 0
        if listed:
            rows = con.execute(
                "SELECT count(*) FROM read_parquet(["
                + ", ".join(_sql_path(f) for f in listed)
                + "])"
            ).fetchone()[0]
        writer.publish()
        # A date whose RAW files were all removed is deleted now, not after the grace:
        # removing data is the point (a reader of the previous warehouse may then miss
        # files of that date, never see a row twice).
        for d in gone:
            folder = silver_dir(run, "telemetry") / f"date={d}"
            for name in listing.get(("telemetry", d), []):
                (silver_dir(run, "telemetry") / name).unlink(missing_ok=True)
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    finally:
        writer.close()
    return IngestSummary(
        warehouse_path=wh,
        silver_telemetry_rows=int(rows),
        dates_rebuilt=len(changed) + len(gone),
        dates_unchanged=len(digests) - len(changed),
        tables_loaded=tuple(sorted(table_files)),
        grid_s=grid_s,
        grid_source=grid_source,
        regridded_from=regridded_from,
    )
