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
payload)``, the first received wins) into part files of ``lake/silver/events``.

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
    RAW_EVENT_FILES,
    RAW_FILE_DATES,
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
from guardian_lib.silver_files import new_name, read_listing, replace_files, sweep
from guardian_lib.warehouse import (
    SILVER_FILES_TABLE,
    WarehouseWriter,
    silver_dir,
    warehouse_path,
)

__all__ = ["SilverUpdate", "update_silver", "MAX_PARTS", "CLOSE_AFTER_S"]

#: A date (or SILVER events) with more part files than this has them compacted into one
#: file. [-]
MAX_PARTS = 48
#: A date is closed, and compacted into one file, by the first update whose newest row is
#: this long after the date's end (midnight UTC): the allowance for late rows. [s]
CLOSE_AFTER_S = 3600
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


_BOOKKEEPING = (RAW_FILE_DATES, "_silver_manifest", SILVER_FILES_TABLE, RAW_EVENT_FILES)
_EV_COLS = "ts, entity_id, entity_type, type, severity, source, payload, received_at"
_EV_KEYS = ("entity_id", "type", "ts", "payload")


def _update_locked(run: Path, grid_s: int) -> SilverUpdate:
    if not warehouse_path(run).exists():
        return _full(run, grid_s, "no warehouse yet")
    tel_files = _raw_files(run, "telemetry")
    ev_files = _raw_files(run, "events")
    table_files = _load_table_files(run)
    con = duckdb.connect(str(warehouse_path(run)), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        bookkept = all(_has_table(con, t) for t in _BOOKKEEPING)
        if bookkept:
            manifest = dict(con.execute("SELECT date, digest FROM _silver_manifest").fetchall())
            known = _known_file_dates(con, run)
            sql = f"SELECT path, fingerprint FROM {RAW_EVENT_FILES}"
            known_ev = dict(con.execute(sql).fetchall())
    finally:
        con.close()
    if not bookkept:
        return _full(run, grid_s, "warehouse without per-file bookkeeping")
    if manifest.get("__tables__") != _tables_digest(table_files):
        return _full(run, grid_s, "inventory or operations files changed")
    for files, known_paths in ((tel_files, {p: fp for p, fp in known}), (ev_files, known_ev)):
        current = {str(f.relative_to(run)): _fingerprint(f) for f in files}
        for rel, fp in known_paths.items():
            if rel not in current:
                return _full(run, grid_s, f"{rel} was removed")
            if current[rel] != fp:
                return _full(run, grid_s, f"{rel} changed")
    known_tel = {p for p, _fp in known}
    new = [f for f in tel_files if str(f.relative_to(run)) not in known_tel]
    new_ev = [f for f in ev_files if str(f.relative_to(run)) not in known_ev]
    for f in new:
        _check_raw_schema(f, ["ts", "onu_id", "received_at", *_MEASURES, "online", "source"])
    for f in new_ev:
        _check_raw_schema(f, ["ts", "entity_id", "entity_type", "type", "severity", "payload"])
    if not new and not new_ev:
        return SilverUpdate("none")
    return _merge(run, grid_s, tel_files, new, known, ev_files, new_ev)


def _merge(
    run: Path,
    grid_s: int,
    tel_files: list[Path],
    new: list[Path],
    known: dict[tuple[str, str], list[str]],
    ev_files: list[Path],
    new_ev: list[Path],
) -> SilverUpdate:
    """Merge ``new`` telemetry and ``new_ev`` events into SILVER, compact, commit."""
    writer = WarehouseWriter(run)
    con = writer.con
    try:
        con.execute("SET TimeZone = 'UTC'")
        sweep(con, run)  # replaced files past their grace; parts of a killed update
        listing = read_listing(con) or {}
        dates_of = {p: ds for (p, _fp), ds in known.items()}
        new_rows = []
        by_date: dict[str, list[Path]] = {}
        for f in new:
            rel = str(f.relative_to(run))
            dates_of[rel] = _file_dates(con, f, grid_s)
            new_rows += [(rel, _fingerprint(f), d) for d in dates_of[rel] or [""]]
            for d in dates_of[rel]:
                by_date.setdefault(d, []).append(f)
        quality, added, replaced, rewritten, ev_added = [], 0, 0, 0, 0
        changes: list[tuple[str, str, list[str], list[str]]] = []  # kind, date, added, removed
        newest = None  # newest SILVER timestamp merged in this update [epoch s]
        try:
            for d in sorted(by_date):
                names = listing.get(("telemetry", d), [])
                q, a, r, w, part, top = _merge_date(con, run, by_date[d], d, grid_s, names)
                quality.append(q)
                added, replaced, rewritten = added + a, replaced + r, rewritten + w
                newest = top if newest is None or (top is not None and top > newest) else newest
                if part is not None:
                    changes.append(("telemetry", d, [part], []))
                    listing.setdefault(("telemetry", d), []).append(part)
            if new_ev:
                names = listing.get(("events", ""), [])
                ev_added, w, part = _merge_events(con, run, new_ev, names)
                rewritten += w
                if part is not None:
                    changes.append(("events", "", [part], []))
                    listing.setdefault(("events", ""), []).append(part)
            compacted = _compact_due(con, run, listing, newest, changes)
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
        if new_ev:
            ev_digest = hashlib.sha256("|".join(_fingerprint(f) for f in ev_files).encode())
            con.execute("DELETE FROM _silver_manifest WHERE date = '__events__'")
            con.execute(
                "INSERT INTO _silver_manifest VALUES ('__events__', ?)", [ev_digest.hexdigest()]
            )
            rels = [str(f.relative_to(run)) for f in new_ev]
            con.executemany("INSERT INTO _raw_files VALUES ('events', ?)", [(r,) for r in rels])
            con.executemany(
                f"INSERT INTO {RAW_EVENT_FILES} VALUES (?, ?)",
                [(r, _fingerprint(f)) for r, f in zip(rels, new_ev, strict=True)],
            )
        con.execute(
            "CREATE TABLE IF NOT EXISTS silver_quality (date VARCHAR PRIMARY KEY, "
            "rows_raw BIGINT, rows_silver BIGINT, duplicates_removed BIGINT, "
            "sentinels_removed BIGINT, late_rows BIGINT)"
        )
        for q in quality:
            con.execute("INSERT OR REPLACE INTO silver_quality VALUES (?, ?, ?, ?, ?, ?)", q)
        for kind, d, add, remove in changes:
            replace_files(con, run, kind, d, add, remove)
        con.execute("COMMIT")
        writer.publish()
    finally:
        writer.close()
    return SilverUpdate("incremental", "", len(new) + len(new_ev), tuple(sorted(by_date)),
                        added, replaced, rewritten, ev_added, compacted)  # fmt: skip


def _ts_filter(con: duckdb.DuckDBPyConnection, table: str = "_new") -> str:
    """A filter on ``ts`` that Parquet statistics prune: the new rows' timestamps."""
    stamps = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT epoch_us(ts) FROM {table} WHERE ts IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    nulls = con.execute(f"SELECT count(*) FROM {table} WHERE ts IS NULL").fetchone()[0]
    if len(stamps) > _MAX_TS_LIST:
        terms = [f"ts BETWEEN make_timestamptz({stamps[0]}) AND make_timestamptz({stamps[-1]})"]
    else:
        terms = [f"ts = make_timestamptz({s})" for s in stamps]
    return " OR ".join(terms + (["ts IS NULL"] if nulls else [])) or "false"


def _replace_older(
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
    the files rewritten.
    """
    if not files:
        return 0, 0
    listing = "[" + ", ".join(_sql_path(f) for f in files) + "]"
    on = " AND ".join(f"o.{k} IS NOT DISTINCT FROM n.{k}" for k in keys)
    key_cols = ", ".join(f"o.{k}" for k in keys)
    # Stored rows with a key of the new rows; statistics skip the other row groups.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _hit AS
            SELECT o.filename, {key_cols}, {new_wins} AS new_wins
            FROM (SELECT * FROM read_parquet({listing}, filename=true, union_by_name=true)
                  WHERE {_ts_filter(con, new_table)}) o
            JOIN {new_table} n ON {on}"""
    )
    hit_on = " AND ".join(f"h.{k} IS NOT DISTINCT FROM x.{k}" for k in keys)
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


def _write_part(con: duckdb.DuckDBPyConnection, sql: str, folder: Path) -> Path:
    """``sql``'s rows as a new part file (hidden name first, then renamed)."""
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"part-{time.time_ns()}-{os.getpid()}.parquet"
    tmp = part.with_name(f".{part.name}.tmp")
    con.execute(f"COPY ({sql}) TO {_sql_path(tmp)} (FORMAT parquet, COMPRESSION zstd)")
    os.replace(tmp, part)
    return part


def _merge_date(
    con: duckdb.DuckDBPyConnection,
    run: Path,
    files: list[Path],
    day: str,
    grid_s: int,
    names: list[str],
) -> tuple[list, int, int, int, str | None, float | None]:
    """Merge ``files``' rows of ``day`` into its committed SILVER files ``names``.

    Returns the new ``silver_quality`` row, the rows added, the rows replaced, the files
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
    replaced, rewritten = _replace_older(
        con, [tel / n for n in names], "_new", ("onu_id", "ts"),
        "(o.received_at IS NULL AND n.received_at IS NOT NULL) OR n.received_at > o.received_at",
        _SILVER_COLS, "ts, onu_id",
    )  # fmt: skip
    added = con.execute("SELECT count(*) FROM _new").fetchone()[0]
    part = None
    if added:
        sql = f"SELECT {_SILVER_COLS} FROM _new ORDER BY ts, onu_id"
        part = str(_write_part(con, sql, tel / f"date={day}").relative_to(tel))
    old = con.execute(
        "SELECT rows_raw, rows_silver, sentinels_removed, late_rows FROM silver_quality "
        "WHERE date = ?",
        [day],
    ).fetchone() if _has_table(con, "silver_quality") else None  # fmt: skip
    rows_raw, rows_silver, sent, late = old or (0, 0, 0, 0)
    rows_raw, rows_silver = rows_raw + n_raw, rows_silver + added
    quality = [day, rows_raw, rows_silver, rows_raw - rows_silver, sent + n_sent, late + n_late]
    con.execute("DROP TABLE _inc")
    return quality, int(added), replaced, rewritten, part, top


def _merge_events(
    con: duckdb.DuckDBPyConnection, run: Path, files: list[Path], names: list[str]
) -> tuple[int, int, str | None]:
    """Merge new RAW events files into SILVER events (the rule of the full rebuild: one row
    per ``(entity_id, type, ts, payload)``, the first received). Returns the rows added, the
    files rewritten and the new part's name."""
    listing = "[" + ", ".join(_sql_path(f) for f in files) + "]"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _evnew AS
            SELECT ts, entity_id, entity_type, type, severity,
                   CAST(source AS VARCHAR) AS source, payload, received_at
            FROM read_parquet({listing}, union_by_name=true, hive_partitioning=false)
            QUALIFY row_number() OVER (PARTITION BY entity_id, type, ts, payload
                                       ORDER BY received_at) = 1"""
    )
    folder = silver_dir(run, "events")
    _r, rewritten = _replace_older(
        con, [folder / n for n in names], "_evnew", _EV_KEYS,
        "(o.received_at IS NULL AND n.received_at IS NOT NULL) OR n.received_at < o.received_at",
        _EV_COLS, "ts, entity_id, type",
    )  # fmt: skip
    added = con.execute("SELECT count(*) FROM _evnew").fetchone()[0]
    part = None
    if added:
        sql = f"SELECT {_EV_COLS} FROM _evnew ORDER BY ts, entity_id, type"
        part = _write_part(con, sql, folder).name
    con.execute("DROP TABLE _evnew")
    return int(added), rewritten, part


def _compact_due(
    con: duckdb.DuckDBPyConnection,
    run: Path,
    listing: dict[tuple[str, str], list[str]],
    newest: float | None,
    changes: list[tuple[str, str, list[str], list[str]]],
) -> tuple[str, ...]:
    """Compact what is due into one new file each; the swap is left to the commit.

    A closed date (``newest`` at least :data:`CLOSE_AFTER_S` past its end) with more than
    one file becomes one ``data-….parquet``; an open date, or SILVER events, with more
    than :data:`MAX_PARTS` part files has them folded into one. Rows are unique across a
    date's files, so a compaction only concatenates and sorts them.
    """
    done = []
    for (kind, day), names in sorted(listing.items()):
        parts = [n for n in names if Path(n).name.startswith("part-")]
        closed = (
            kind == "telemetry"
            and newest is not None
            and newest >= _day_end(day) + CLOSE_AFTER_S
            and len(names) > 1
        )
        if not closed and len(parts) <= MAX_PARTS:
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


def _day_end(day: str) -> float:
    """Epoch of the midnight UTC that ends ``day`` (YYYY-MM-DD). [s]"""
    import datetime as dt

    start = dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    return (start + dt.timedelta(days=1)).timestamp()
