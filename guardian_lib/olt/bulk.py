"""Bulk OLT changes from a CSV file, rate limited.

One row per change; columns ``olt_id``, ``operation`` (``authorize``, ``reboot-onu``,
``onu-disable``, ``onu-enable``, ``port-disable``, ``port-enable``, ``resync``) and the
change's fields (``slot``, ``port``, ``onu_id``, ``serial``, ``vlan``, ``line_profile``,
``srv_profile``, ``wan``, ``pppoe``, ``desc``, ``onu_type``, ``via``; empty cells are
ignored).
Every row is checked before the first change is sent: a bad row stops the run with one
error naming the file, the row and the field. Changes then start at most
``per_minute`` per minute over the whole file, one SSH session per OLT reused across its
rows; a refused change is recorded and the run goes on.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

from guardian_lib.errors import ConfigError
from guardian_lib.olt.changes import Change, ChangeResult, OltChanges
from guardian_lib.olt.driver import OltDriver
from guardian_lib.olt.session import OltError

__all__ = ["load_bulk_csv", "run_bulk", "MAX_BULK_ROWS"]

#: Most rows one bulk file may hold. [-]
MAX_BULK_ROWS = 100_000
#: How the rate limit waits (a module attribute so that tests can record the waits).
_sleep = asyncio.sleep


def load_bulk_csv(path: str | Path) -> list[Change]:
    """Read and validate a bulk change file.

    Raises
    ------
    ConfigError
        ``<file> row <n>: <field> …`` for the first bad row (row 2 is the first data row).
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"olt_id", "operation"} <= set(reader.fieldnames):
            raise ConfigError(f"{path}: header must name at least olt_id and operation columns")
        out = []
        for n, row in enumerate(reader, start=2):
            if n - 1 > MAX_BULK_ROWS:
                raise ConfigError(f"{path}: more than {MAX_BULK_ROWS} rows")
            params = {k: v.strip() for k, v in row.items() if k not in ("olt_id", "operation")
                      and k is not None and v is not None}  # fmt: skip
            change = Change((row["olt_id"] or "").strip(), (row["operation"] or "").strip(), params)
            if not change.olt_id:
                raise ConfigError(f"{path} row {n}: olt_id is empty")
            try:
                out.append(change.validated(f"{path} row {n}"))
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
    return out


async def run_bulk(
    changes: OltChanges,
    rows: list[Change],
    *,
    per_minute: float = 30.0,
    dry_run: bool = False,
) -> list[ChangeResult]:
    """Apply ``rows`` in order, at most ``per_minute`` changes started per minute.

    Parameters
    ----------
    changes : OltChanges
    rows : list of Change
    per_minute : float
        Rate limit over the whole run. [1/min]
    dry_run : bool
        Render every row's commands, send nothing (no rate limit).

    Returns
    -------
    results : list of ChangeResult
        One per row, in order.
    """
    if not per_minute > 0:
        raise ValueError(f"per_minute must be > 0, got {per_minute}")
    for ch in rows:  # every OLT known before anything is sent
        changes.inventory.entry(ch.olt_id)
    if dry_run:
        return [await changes.apply(ch, dry_run=True) for ch in rows]
    loop = asyncio.get_running_loop()
    interval_s = 60.0 / per_minute
    start = loop.time()
    drivers: dict[str, OltDriver] = {}
    results: list[ChangeResult] = []
    try:
        for i, ch in enumerate(rows):
            wait = start + i * interval_s - loop.time()
            if wait > 0:
                await _sleep(wait)
            if ch.params.get("via") == "snmp":  # an SNMP SET needs no CLI session
                results.append(await changes.apply(ch))
                continue
            drv = drivers.get(ch.olt_id)
            if drv is None:
                drv = changes.driver(ch.olt_id)
                try:
                    await drv.__aenter__()
                except OltError:
                    # the change itself records the connection failure
                    results.append(await changes.apply(ch))
                    continue
                drivers[ch.olt_id] = drv
            results.append(await changes.apply(ch, driver=drv))
    finally:
        for drv in drivers.values():
            await drv.__aexit__(None, None, None)
    return results
