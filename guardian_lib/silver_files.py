"""Which SILVER files readers read: the warehouse's listing, and the files it replaced.

A SILVER file is only ever written under a new name, listed in the warehouse
(:data:`~guardian_lib.warehouse.SILVER_FILES_TABLE`) by the commit that publishes it, and
read through that listing. A compaction or a full rebuild lists its new file and moves
the files it replaces to :data:`RETIRED_TABLE` in the same commit: a reader opens the
previous warehouse (the old files) or the new one (the new file), never both, never
neither. The replaced files are deleted by a later update once :data:`RETIRE_GRACE_S`
has passed, so a reader that opened the previous warehouse a moment before still finds
them. Files in the SILVER folders that are neither listed nor retired were written by an
update killed before its commit: they are deleted.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from guardian_lib.warehouse import SILVER_FILES_TABLE, silver_dir

__all__ = [
    "RETIRED_TABLE",
    "RETIRE_GRACE_S",
    "ensure_tables",
    "stored_tables",
    "read_listing",
    "disk_listing",
    "replace_files",
    "replace_many",
    "sweep",
    "new_name",
]

#: Warehouse table of replaced SILVER files waiting for deletion (``path`` relative to
#: the run, ``retired_at`` epoch seconds).
RETIRED_TABLE = "_silver_retired"
#: How long a replaced SILVER file stays on disk for readers of the previous warehouse. [s]
RETIRE_GRACE_S = 600.0

Listing = dict[tuple[str, str], list[str]]


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the listing tables if missing (inside the writer's transaction)."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {SILVER_FILES_TABLE} "
        "(kind VARCHAR, date VARCHAR, name VARCHAR)"
    )
    con.execute(f"CREATE TABLE IF NOT EXISTS {RETIRED_TABLE} (path VARCHAR, retired_at DOUBLE)")


def stored_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Tables of the database ``con`` uses (not temporary ones, nor those of other
    databases attached to the same DuckDB instance)."""
    sql = (
        "SELECT table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() AND NOT temporary"
    )
    return {r[0] for r in con.execute(sql).fetchall()}


def read_listing(con: duckdb.DuckDBPyConnection, tables: set[str] | None = None) -> Listing | None:
    """``(kind, date) → names`` committed in the warehouse; None before the listing existed.

    ``tables`` are the warehouse's tables (:func:`stored_tables`) if already known.
    """
    if SILVER_FILES_TABLE not in (stored_tables(con) if tables is None else tables):
        return None
    out: Listing = {}
    sql = f"SELECT kind, date, name FROM {SILVER_FILES_TABLE} ORDER BY name"
    for kind, date, name in con.execute(sql).fetchall():
        out.setdefault((kind, date), []).append(name)
    return out


def disk_listing(run: Path) -> Listing:
    """The listing of a warehouse written before it existed: every SILVER file on disk."""
    out: Listing = {}
    tel = silver_dir(run, "telemetry")
    for p in sorted(tel.glob("date=*/*.parquet")):
        if not p.name.startswith("."):
            key = ("telemetry", p.parent.name.removeprefix("date="))
            out.setdefault(key, []).append(str(p.relative_to(tel)))
    for p in sorted(silver_dir(run, "events").glob("*.parquet")):
        if not p.name.startswith("."):
            out.setdefault(("events", ""), []).append(p.name)
    return out


def new_name(prefix: str) -> str:
    """A file name no earlier SILVER file had: ``<prefix>-<ns>.parquet``."""
    return f"{prefix}-{time.time_ns()}.parquet"


def replace_files(
    con: duckdb.DuckDBPyConnection,
    run: Path,
    kind: str,
    date: str,
    added: list[str],
    removed: list[str],
) -> None:
    """List ``added`` and retire ``removed`` (names relative to the kind's SILVER folder).

    Call inside the writer's transaction; nothing on disk changes.
    """
    replace_many(con, run, [(kind, date, added, removed)])


def replace_many(
    con: duckdb.DuckDBPyConnection,
    run: Path,
    changes: list[tuple[str, str, list[str], list[str]]],
    ensured: bool = False,
) -> None:
    """:func:`replace_files` for several ``(kind, date, added, removed)`` at once (one
    statement per table); ``ensured``: :func:`ensure_tables` has been called."""
    if not ensured:
        ensure_tables(con)
    listed, retired, removed_keys = [], [], []
    now = time.time()
    for kind, date, added, removed in changes:
        folder = silver_dir(run, kind)
        listed += [(kind, date, n) for n in added]
        removed_keys += [(kind, date, n) for n in removed]
        retired += [(str((folder / n).relative_to(run)), now) for n in removed]
    if removed_keys:
        con.executemany(
            f"DELETE FROM {SILVER_FILES_TABLE} WHERE kind = ? AND date = ? AND name = ?",
            removed_keys,
        )
        con.executemany(f"INSERT INTO {RETIRED_TABLE} VALUES (?, ?)", retired)
    if listed:
        con.executemany(f"INSERT INTO {SILVER_FILES_TABLE} VALUES (?, ?, ?)", listed)


def sweep(
    con: duckdb.DuckDBPyConnection,
    run: Path,
    grace_s: float | None = None,
    listing: Listing | None = None,
) -> int:
    """Delete retired files older than ``grace_s`` and files no commit listed.

    ``con`` is the writer's connection (its copy of the committed warehouse); the
    deletion of the retired rows is committed with the writer's update. Does nothing for
    a warehouse without the listing. ``listing`` is :func:`read_listing`'s if the caller
    has read it already (with the tables of :func:`ensure_tables` in place).

    Returns
    -------
    int
        Files deleted. [-]
    """
    if listing is None:
        listing = read_listing(con)
        if listing is None:
            return 0
        ensure_tables(con)
    grace_s = RETIRE_GRACE_S if grace_s is None else grace_s
    deleted = 0
    cutoff = time.time() - grace_s
    sql = f"SELECT path, retired_at <= ? FROM {RETIRED_TABLE}"
    retired = con.execute(sql, [cutoff]).fetchall()
    for rel, _expired in (r for r in retired if r[1]):
        path = run / rel
        if path.exists():
            path.unlink()
            deleted += 1
    if any(expired for _rel, expired in retired):
        con.execute(f"DELETE FROM {RETIRED_TABLE} WHERE retired_at <= ?", [cutoff])
    keep = {str(p) for p in _listed_paths(run, listing)}
    keep |= {str(run / rel) for rel, expired in retired if not expired}
    for kind, pattern in (("telemetry", "date=*/*.parquet"), ("events", "*.parquet")):
        for p in silver_dir(run, kind).glob(pattern):
            if str(p) not in keep:  # written by an update killed before its commit
                p.unlink()
                deleted += 1
    for folder in silver_dir(run, "telemetry").glob("date=*"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # a date whose RAW files were all removed
    return deleted


def _listed_paths(run: Path, listing: Listing) -> list[Path]:
    return [silver_dir(run, kind) / n for (kind, _d), names in listing.items() for n in names]
