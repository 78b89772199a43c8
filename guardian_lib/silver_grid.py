"""SILVER's time grid, in whole seconds: which one a warehouse uses, and checking it.

SILVER snaps every telemetry row's ``ts`` to the nearest step of one grid, and
``guardian decide`` replays SILVER one step at a time, so a warehouse holds one grid:

* it must be a whole number of seconds that divides a day (86,400 s: 30 s, 90 s, 5 min,
  15 min… — 7 min does not), so that every date starts on a step;
* which one: the ``grid_s`` asked for (``guardian ingest --grid-seconds``, or
  ``guardian operate``'s polling interval on the network's clock), else a simulated
  run's ``tick_minutes`` (``run.json``), else the grid the warehouse already records,
  else one inferred from the telemetry (:func:`infer_grid`: the median spacing between
  an ONU's consecutive readings, rounded to a sensible step);
* the grid is recorded in the warehouse (table :data:`GRID_TABLE`); SILVER built on
  another grid is never mixed with rows snapped to a new one (see
  :func:`guardian_lib.ingest.ingest_run`).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from guardian_lib.errors import IngestError

__all__ = [
    "DAY_S",
    "DEFAULT_GRID_S",
    "GRID_TABLE",
    "check_grid",
    "grid_arg",
    "infer_grid",
    "ingest_grid",
    "run_json_grid",
    "nice_step",
    "read_grid",
    "write_grid",
]

#: Seconds in a day: a grid must divide it. [s]
DAY_S = 86_400
#: The grid of a warehouse whose telemetry cannot tell (no ONU read twice). [s]
DEFAULT_GRID_S = 300
#: Warehouse table recording SILVER's grid: one row ``(grid_s, source)``.
GRID_TABLE = "_silver_grid"


def check_grid(grid_s: float, what: str = "grid") -> int:
    """``grid_s`` as whole seconds, refused unless it divides a day.

    Parameters
    ----------
    grid_s : float
        The grid. [s]
    what : str
        Where it came from, for the message (``--grid-seconds``, ``run.json`` …).

    Returns
    -------
    int
        The grid. [s]

    Raises
    ------
    IngestError
        Not a whole positive number of seconds, or does not divide 86,400 s (the message
        names the two nearest grids that do).
    """
    try:
        g = float(grid_s)
    except (TypeError, ValueError):
        raise IngestError(f"{what}: expected a number of seconds, got {grid_s!r}") from None
    if not g > 0 or g != int(g):
        raise IngestError(f"{what}: expected a whole number of seconds > 0, got {grid_s!r}")
    g = int(g)
    if DAY_S % g:
        divisors = [d for d in range(1, DAY_S + 1) if DAY_S % d == 0]
        below = max(d for d in divisors if d < g) if g > 1 else 1
        above = min((d for d in divisors if d > g), default=DAY_S)
        raise IngestError(
            f"{what}: a grid of {g} s does not divide a day (86400 s), so days would not "
            f"start on a step; expected a divisor such as {below} s or {above} s"
        )
    return g


def grid_arg(grid_minutes: float | None, grid_s: float | None, what: str = "grid") -> int | None:
    """The grid given either way (``grid_minutes`` [min], the older argument, or ``grid_s``
    [s]), checked with :func:`check_grid`; None when neither is given.

    Raises
    ------
    IngestError
        Both given and different, or the grid is refused by :func:`check_grid`.
    """
    if grid_minutes is None and grid_s is None:
        return None
    if grid_minutes is not None and grid_s is not None and float(grid_minutes) * 60 != grid_s:
        raise IngestError(
            f"{what}: grid_minutes={grid_minutes} and grid_s={grid_s} disagree; give one"
        )
    return check_grid(grid_s if grid_s is not None else float(grid_minutes) * 60, what)


#: Multiples of 5 min from 1 h up that divide a day (1 h, 80 min, 90 min, 2 h, …, 24 h):
#: the grids :func:`nice_step` picks from for spacings of an hour or more. [s]
_LONG_STEPS = tuple(d for d in range(3600, DAY_S + 1, 300) if DAY_S % d == 0)


def nice_step(spacing_s: float) -> int:
    """A measured polling spacing rounded to a sensible grid step. [s]

    To 1 s below 10 s, 5 s below 1 min, 30 s below 10 min, 1 min below 1 h, and from
    1 h on to the nearest multiple of 5 min that divides a day: a 293.7 s median is a
    300 s grid, 88 s is 90 s, 14 min 40 s is 15 min, 5 h is 4 h (5 h does not divide a
    day; 4 h and 6 h are equally near, the shorter is taken).
    """
    if spacing_s >= 3600:
        return min(_LONG_STEPS, key=lambda d: (abs(d - spacing_s), d))
    unit = (
        1
        if spacing_s < 10
        else 5
        if spacing_s < 60
        else 30
        if spacing_s < 600
        else (60 if spacing_s < 3600 else 300)
    )
    return max(unit, int(round(spacing_s / unit)) * unit)


def infer_grid(con: duckdb.DuckDBPyConnection, files: list[Path]) -> tuple[int | None, str]:
    """The grid the telemetry of ``files`` (RAW Parquet) was polled on.

    The median of the positive gaps between an ONU's consecutive readings, over every
    ONU, rounded by :func:`nice_step` (the median is robust to the gaps of missed polls
    and to a few extra readings).

    Returns
    -------
    grid_s : int or None
        The grid [s]; None when no ONU was read twice or the readings are more than a
        day apart (samples, not polls: the caller falls back to the default).
    how : str
        What was measured, for the operator (``median spacing 89.6 s between an ONU's
        readings (12,000 gaps)``).
    """
    if not files:
        return None, "no telemetry"
    listing = "[" + ", ".join("'" + str(f.resolve()).replace("'", "''") + "'" for f in files) + "]"
    med, n = con.execute(
        f"""SELECT median(gap), count(gap) FROM (
              SELECT epoch(ts) - lag(epoch(ts)) OVER (PARTITION BY onu_id ORDER BY ts) AS gap
              FROM (SELECT DISTINCT onu_id, ts FROM read_parquet({listing},
                    union_by_name=true, hive_partitioning=false)
                    WHERE ts IS NOT NULL AND onu_id IS NOT NULL))
            WHERE gap > 0"""
    ).fetchone()
    if not n:
        return None, "no ONU has two readings"
    if float(med) > DAY_S:
        # Readings days apart are samples, not a polling interval: nothing to infer.
        return None, f"median spacing {float(med):g} s between an ONU's readings is over a day"
    return nice_step(
        float(med)
    ), f"median spacing {float(med):g} s between an ONU's readings ({n:,} gaps)"


def read_grid(con: duckdb.DuckDBPyConnection) -> int | None:
    """The grid recorded in the warehouse (None: not recorded, an older warehouse). [s]"""
    if not con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [GRID_TABLE]
    ).fetchone()[0]:
        return None
    row = con.execute(f"SELECT grid_s FROM {GRID_TABLE}").fetchone()
    return None if row is None else int(row[0])


def write_grid(con: duckdb.DuckDBPyConnection, grid_s: int, source: str) -> None:
    """Record the grid (inside the caller's transaction)."""
    con.execute(f"CREATE OR REPLACE TABLE {GRID_TABLE} (grid_s BIGINT, source VARCHAR)")
    con.execute(f"INSERT INTO {GRID_TABLE} VALUES (?, ?)", [int(grid_s), source])


def run_json_grid(run: Path) -> int | None:
    """A simulated run's grid: ``run.json``'s ``scenario.tick_minutes`` [s] (None: no file)."""
    manifest = run / "run.json"
    if not manifest.exists():
        return None
    import json

    tick = json.loads(manifest.read_text())["scenario"]["tick_minutes"]
    return check_grid(float(tick) * 60, f"{manifest}: scenario.tick_minutes ({tick} min)")


def ingest_grid(
    con: duckdb.DuckDBPyConnection,
    run: Path,
    asked: int | None,
    tel_files: list[Path],
    has_silver: bool,
    regrid: bool,
) -> tuple[int, str, int | None]:
    """The grid an ingest of ``run`` snaps SILVER to.

    Parameters
    ----------
    asked : int or None
        The grid asked for (``--grid-seconds``, operate's polling interval). [s]
    tel_files : list of Path
        The RAW telemetry files (for :func:`infer_grid`).
    has_silver : bool
        Whether the warehouse already holds SILVER telemetry.
    regrid : bool
        Re-snap SILVER when the grid differs from the one it is on (else refuse).

    Returns
    -------
    grid_s : int
        The grid. [s]
    source : str
        Where it came from (``asked for``, ``run.json tick_minutes``, ``recorded in the
        warehouse``, ``inferred: …``, ``default (…)``).
    regridded_from : int or None
        The grid SILVER was on when every date must be rebuilt on the new one. [s]

    Raises
    ------
    IngestError
        A grid that does not divide a day, or one other than the warehouse's recorded
        grid without ``regrid`` (both named, with the command that re-snaps).
    """
    recorded = read_grid(con)
    sim = run_json_grid(run)
    if asked is not None:
        grid, source = asked, "asked for"
    elif sim is not None:
        grid, source = sim, "run.json tick_minutes"
    elif recorded is not None:
        grid, source = recorded, "recorded in the warehouse"
    else:
        inferred, how = infer_grid(con, tel_files)
        if inferred is None:
            grid, source = DEFAULT_GRID_S, f"default ({how})"
        else:
            what = f"the grid inferred from the telemetry ({how}, rounded to {inferred} s)"
            grid = check_grid(inferred, what + "; give one with --grid-seconds")
            source = f"inferred: {how}"
    # The grid SILVER is on: recorded; for a warehouse from before the record, the one the
    # ingest used then (run.json's tick, else 5 minutes). An older warehouse on another
    # grid is re-snapped: it never recorded one, so nothing was chosen.
    built = recorded if recorded is not None else (sim or DEFAULT_GRID_S) if has_silver else None
    if built is None or built == grid:
        return grid, source, None
    if recorded is not None and not regrid:
        raise IngestError(
            f"{run}: SILVER is on a {recorded} s grid and this ingest's grid is {grid} s "
            f"({source}); one warehouse holds one grid, nothing was changed. To re-snap all "
            f"of SILVER to {grid} s from RAW (RAW keeps every row): "
            f"guardian ingest --run {run} --grid-seconds {grid}"
        )
    return grid, source, built
