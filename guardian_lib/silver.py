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

New RAW events files are merged the same way (one row per ``(entity_id, type, ts,
payload)``, a customer contact's payload read as its channel and reason only — see
:func:`~guardian_lib.schema.event_key_sql` — the first received wins) into part files of
``lake/silver/events``.

Compaction: a date whose day is over (the update's newest row at least
:data:`CLOSE_AFTER_S` past its midnight UTC) and that has more than one file has them
written into one ``data-<time>.parquet``; an open date, or SILVER events, with more than
:data:`MAX_PARTS` parts has those folded into one. Rows are unique across a date's files,
so compacting is concatenating and sorting.

Then the warehouse's tables (which RAW files were read, the per-date digests
``guardian ingest`` checks, ``silver_quality``, the list of current SILVER files) are
written through :class:`~guardian_lib.warehouse.WarehouseWriter`: the commit lists the
new files and retires the compacted ones in one swap (:mod:`guardian_lib.silver_files`),
so readers see the old files or the new one. The result equals a full rebuild, and a
later ``guardian ingest`` finds nothing to rebuild. The full rebuild
(:func:`~guardian_lib.ingest.ingest_run`) is used instead when an old RAW file (telemetry
or events) changed or was removed, the inventory or operations files changed, or the
warehouse predates this bookkeeping. Files that no committed update lists (a process
killed between writing them and the warehouse) are removed first: their RAW files are
merged again.

This module decides what to merge and commits the bookkeeping; the file work (merging a
date's rows, events, compaction) is in :mod:`guardian_lib._silver_merge`.

What a small cycle costs is DuckDB's fixed overhead, not data, so the update keeps it
down: the warehouse (read-only, then the writer's copy) is attached to one DuckDB
instance per process (:func:`~guardian_lib.warehouse.attached`) instead of starting an
instance per connection; the bookkeeping is read and written in a few batched statements;
the SILVER files whose row groups' ``ts`` statistics rule out every new timestamp are not
read for the duplicate check (their statistics are kept per file while its size, mtime
and inode stay the same); nothing is done for an events merge without a new events file.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from guardian_lib._silver_merge import compact_due, file_dates, merge_date, merge_events
from guardian_lib.errors import IngestError
from guardian_lib.ingest import (
    _MEASURES,
    RAW_EVENT_FILES,
    RAW_FILE_DATES,
    _check_raw_schema,
    _fingerprint,
    _load_table_files,
    _raw_files,
    _tables_digest,
    ingest_locked,
    run_lock,
)
from guardian_lib.silver_files import (
    RETIRED_TABLE,
    ensure_tables,
    read_listing,
    replace_many,
    stored_tables,
    sweep,
)
from guardian_lib.silver_grid import DEFAULT_GRID_S, GRID_TABLE, grid_arg, read_grid, write_grid
from guardian_lib.warehouse import (
    SILVER_FILES_TABLE,
    WarehouseWriter,
    attached,
    release_process_db,
    warehouse_path,
)

__all__ = ["SilverUpdate", "update_silver", "MAX_PARTS", "CLOSE_AFTER_S"]

#: A date (or SILVER events) with more part files than this has them compacted into one
#: file. [-]
MAX_PARTS = 48
#: A date is closed, and compacted into one file, by the first update whose newest row is
#: this long after the date's end (midnight UTC): the allowance for late rows. [s]
CLOSE_AFTER_S = 3600


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
    events_added : int
        New SILVER event rows. [-]
    compacted : tuple of str
        Dates (``'events'`` for SILVER events) whose files were compacted into one.
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
    events_added: int = 0
    compacted: tuple[str, ...] = ()
    seconds: float = 0.0


def update_silver(
    run: Path | str,
    grid_minutes: float | None = None,
    lock_wait_s: float = 30.0,
    *,
    grid_s: int | None = None,
) -> SilverUpdate:
    """Merge the RAW files added since the last ingest into SILVER.

    Parameters
    ----------
    run : path
        Run / warehouse folder.
    grid_minutes : float, optional
        The grid in minutes (the older argument; ``grid_s`` says the same in seconds). [min]
    lock_wait_s : float, default 30
        How long to wait for another ingest of the same run to finish. [s]
    grid_s : int, optional
        Polling grid SILVER snaps timestamps to, a divisor of a day; default the grid
        the warehouse records, else 300. [s]

    Returns
    -------
    SilverUpdate

    Raises
    ------
    IngestError
        A new RAW file is unreadable or lacks a required column (named); the grid does
        not divide a day, or differs from the one the warehouse records (both named);
        nothing changed.
    """
    run = Path(run)
    t0 = time.perf_counter()
    grid = grid_arg(grid_minutes, grid_s, "SILVER grid")
    with run_lock(run, lock_wait_s):
        out = _update_locked(run, grid)
    return SilverUpdate(**{**out.__dict__, "seconds": round(time.perf_counter() - t0, 4)})


def _full(run: Path, grid_s: int, reason: str) -> SilverUpdate:
    summary = ingest_locked(run, grid_s)
    return SilverUpdate("full", reason, dates=(), rows_added=summary.silver_telemetry_rows)


_BOOKKEEPING = (RAW_FILE_DATES, "_silver_manifest", SILVER_FILES_TABLE, RAW_EVENT_FILES)


def _fingerprints(run: Path, files: list[Path]) -> dict[str, str]:
    """``path relative to run → fingerprint`` of RAW files (in ``files``' order)."""
    prefix = str(run / "_")[:-1]  # 'run/' ('' for '.'): the files are globbed under run
    return {
        str(f)[len(prefix) :] if str(f).startswith(prefix) else str(f.relative_to(run)): (
            _fingerprint(f)
        )
        for f in files
    }


def _update_locked(run: Path, asked: int | None) -> SilverUpdate:
    if not warehouse_path(run).exists():
        return _full(run, asked or DEFAULT_GRID_S, "no warehouse yet")
    tel = _fingerprints(run, _raw_files(run, "telemetry"))
    ev = _fingerprints(run, _raw_files(run, "events"))
    table_files = _load_table_files(run)
    with attached(warehouse_path(run)) as con:
        tables = stored_tables(con)  # the writer's copy has the same (the run is locked)
        bookkept = tables.issuperset(_BOOKKEEPING)
        if bookkept:
            manifest = dict(con.execute("SELECT date, digest FROM _silver_manifest").fetchall())
            known: dict[tuple[str, str], list[str]] = {}
            sql = f"SELECT path, fingerprint, date FROM {RAW_FILE_DATES}"
            for path, fp, d in con.execute(sql).fetchall():
                known.setdefault((path, fp), []).extend([d] if d else [])
            sql = f"SELECT path, fingerprint FROM {RAW_EVENT_FILES}"
            known_ev = dict(con.execute(sql).fetchall())
        recorded = read_grid(con) if GRID_TABLE in tables else None
    grid_s = asked or recorded or DEFAULT_GRID_S  # given: it must be the recorded one
    if recorded is not None and recorded != grid_s:
        raise IngestError(
            f"{run}: SILVER is on a {recorded} s grid and the rows to merge are on a "
            f"{grid_s} s grid (the polling interval); one warehouse holds one grid, nothing "
            f"was merged. Set polling_interval_s back, or re-snap all of SILVER to "
            f"{grid_s} s from RAW first: guardian ingest --run {run} --grid-seconds {grid_s}"
        )
    if not bookkept:
        return _full(run, grid_s, "warehouse without per-file bookkeeping")
    if manifest.get("__tables__") != _tables_digest(table_files):
        return _full(run, grid_s, "inventory or operations files changed")
    for current, known_paths in ((tel, {p: fp for p, fp in known}), (ev, known_ev)):
        for rel, fp in known_paths.items():
            if rel not in current:
                return _full(run, grid_s, f"{rel} was removed")
            if current[rel] != fp:
                return _full(run, grid_s, f"{rel} changed")
    known_tel = {p for p, _fp in known}
    new = [rel for rel in tel if rel not in known_tel]
    new_ev = [rel for rel in ev if rel not in known_ev]
    for rel in new:
        _check_raw_schema(
            run / rel, ["ts", "onu_id", "received_at", *_MEASURES, "online", "source"]
        )
    for rel in new_ev:
        _check_raw_schema(
            run / rel, ["ts", "entity_id", "entity_type", "type", "severity", "payload"]
        )
    if not new and not new_ev:
        return SilverUpdate("none")
    return _merge(run, grid_s, tel, new, known, ev, new_ev, tables, recorded is None)


def _merge(
    run: Path,
    grid_s: int,
    tel: dict[str, str],
    new: list[str],
    known: dict[tuple[str, str], list[str]],
    ev: dict[str, str],
    new_ev: list[str],
    tables: set[str],
    record_grid: bool = False,
) -> SilverUpdate:
    """Merge ``new`` telemetry and ``new_ev`` events (paths relative to ``run``, in the
    fingerprint maps ``tel`` and ``ev`` of every RAW file) into SILVER, compact, commit.
    ``tables`` are the warehouse's tables; ``record_grid``: record ``grid_s`` (a
    warehouse from before the record: its SILVER was merged on the caller's grid)."""
    writer = WarehouseWriter(run, shared=True)
    con = writer.con
    compacted: tuple[str, ...] = ()
    try:
        listing = read_listing(con, tables) or {}
        if RETIRED_TABLE not in tables:
            ensure_tables(con)
        sweep(con, run, listing=listing)  # replaced files past their grace; killed parts
        dates_of = {p: ds for (p, _fp), ds in known.items()}
        new_rows = []
        by_date: dict[str, list[Path]] = {}
        for rel in new:
            dates_of[rel] = file_dates(con, run / rel, grid_s)
            new_rows += [(rel, tel[rel], d) for d in dates_of[rel] or [""]]
            for d in dates_of[rel]:
                by_date.setdefault(d, []).append(run / rel)
        old_quality = {}
        if by_date and "silver_quality" in tables:
            sql = (
                "SELECT date, rows_raw, rows_silver, sentinels_removed, late_rows "
                "FROM silver_quality WHERE list_contains(?, date)"
            )
            old_quality = {r[0]: r[1:] for r in con.execute(sql, [sorted(by_date)]).fetchall()}
        quality, added, replaced, rewritten, ev_added = [], 0, 0, 0, 0
        changes: list[tuple[str, str, list[str], list[str]]] = []  # kind, date, added, removed
        newest = None  # newest SILVER timestamp merged in this update [epoch s]
        try:
            for d in sorted(by_date):
                names = listing.get(("telemetry", d), [])
                q, a, r, w, part, top = merge_date(
                    con, run, by_date[d], d, grid_s, names, old_quality.get(d)
                )
                quality.append(q)
                added, replaced, rewritten = added + a, replaced + r, rewritten + w
                newest = top if newest is None or (top is not None and top > newest) else newest
                if part is not None:
                    changes.append(("telemetry", d, [part], []))
                    listing.setdefault(("telemetry", d), []).append(part)
            if new_ev:
                names = listing.get(("events", ""), [])
                ev_added, w, part = merge_events(con, run, [run / r for r in new_ev], names)
                rewritten += w
                if part is not None:
                    changes.append(("events", "", [part], []))
                    listing.setdefault(("events", ""), []).append(part)
            compacted = compact_due(con, run, listing, newest, changes, MAX_PARTS, CLOSE_AFTER_S)
        except duckdb.Error as exc:
            raise IngestError(f"{run}: merging new RAW files into SILVER failed: {exc}") from exc
        # The digests `guardian ingest` compares: the same as a full ingest would write.
        date_fps: dict[str, list[str]] = {}
        for rel, fp in tel.items():
            for d in dates_of[rel]:
                date_fps.setdefault(d, []).append(fp)
        digests = [(d, hashlib.sha256("|".join(date_fps[d]).encode()).hexdigest()) for d in by_date]
        if new_ev:
            ev_digest = hashlib.sha256("|".join(ev.values()).encode()).hexdigest()
            digests.append(("__events__", ev_digest))
        con.execute("BEGIN TRANSACTION")
        if record_grid:
            write_grid(con, grid_s, "polling interval")
        if digests:
            keys = [[d for d, _ in digests]]
            con.execute("DELETE FROM _silver_manifest WHERE list_contains(?, date)", keys)
            con.executemany("INSERT INTO _silver_manifest VALUES (?, ?)", digests)
        raw_rows = [("telemetry", r) for r in new] + [("events", r) for r in new_ev]
        con.executemany("INSERT INTO _raw_files VALUES (?, ?)", raw_rows)  # not empty
        if new_rows:
            con.executemany(f"INSERT INTO {RAW_FILE_DATES} VALUES (?, ?, ?)", new_rows)
        if new_ev:
            rows = [(r, ev[r]) for r in new_ev]
            con.executemany(f"INSERT INTO {RAW_EVENT_FILES} VALUES (?, ?)", rows)
        if "silver_quality" not in tables:
            con.execute(
                "CREATE TABLE silver_quality (date VARCHAR PRIMARY KEY, rows_raw BIGINT, "
                "rows_silver BIGINT, duplicates_removed BIGINT, sentinels_removed BIGINT, "
                "late_rows BIGINT)"
            )
        for q in quality:  # an UPDATE of a date's row costs less than INSERT OR REPLACE
            if q[0] in old_quality:
                sql = (
                    "UPDATE silver_quality SET rows_raw = ?, rows_silver = ?, "
                    "duplicates_removed = ?, sentinels_removed = ?, late_rows = ? WHERE date = ?"
                )
                con.execute(sql, [*q[1:], q[0]])
            else:
                con.execute("INSERT INTO silver_quality VALUES (?, ?, ?, ?, ?, ?)", q)
        if changes:
            replace_many(con, run, changes, ensured=True)
        con.execute("COMMIT")
        writer.publish()
    finally:
        writer.close()
        if compacted:  # a large task: memory back to the system, as before
            release_process_db()
    return SilverUpdate("incremental", "", len(new) + len(new_ev), tuple(sorted(by_date)),
                        added, replaced, rewritten, ev_added, compacted)  # fmt: skip
