"""The time a cycle's stored rows carry: the step ``guardian operate`` decided them at.

A cycle decides at one time on the polling grid (``Operator._on_grid``: the poll's
earliest row time, or the site's clock, snapped to the grid and bumped one step past the
last cycle when it would not advance) and records the ACS's view at that time
(``ACS_SEEN``, ``ACS_PPP_*``). ``guardian decide`` replays SILVER step by step, and SILVER
snaps each telemetry row's ``ts`` to the nearest grid step. So operate stores each polled
telemetry row with ``ts`` = the cycle's time, and the time the OLT was walked in
``polled_at``: SILVER then puts the whole poll on the cycle's step, whatever the rows'
own times — a poll whose OLTs are walked on both sides of the half-step point, a late
poll, a cycle bumped a step (an extra cycle a trap started, and those after it at the
trap's phase) — and a cycle's rows never replace another cycle's. The poll's events
(``LOS``, ``DYING_GASP``, ``OLT_ALARM``…) and the traps a cycle drains keep their own time
when it falls in the cycle's step as the replay reads events (after the previous cycle's
time, up to this one's), else carry the cycle's time. Data imported by
``guardian ingest`` and rows ``guardian poll --run`` writes keep the measured time in
``ts``, snapped as before.

With a scaled clock (``site.clock``, the twin) the poller's times are the host's wall
clock: ``polled_at``, ``received_at`` and the poll's events (``ts``, ``received_at``) are
moved onto the network's clock (:func:`on_clock`), so that everything a cycle stores and
feeds the loop reads in the network's time, like the cycle itself, and SILVER's grid is
the polling interval in the network's time in whole seconds (:func:`silver_grid_seconds`;
before, the wall interval: 1 minute for the twin's 0.5 s; and before that, whole minutes:
a 90 s network got a 2-minute grid, a 30 s one a 1-minute grid). The ACS's Inform times stay compared with the
wall clock (:mod:`guardian_lib.operate.silent`).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd
import pyarrow as pa

from guardian_lib.snmp.rows import TELEMETRY_SCHEMA

__all__ = [
    "POLLED_AT",
    "OPERATE_TELEMETRY_SCHEMA",
    "on_clock",
    "silver_grid_seconds",
    "stamp_poll",
]

#: RAW telemetry column of operate's rows: when the OLT was walked (UTC; on the site's
#: clock when it has one). ``ts`` holds the cycle's time.
POLLED_AT = "polled_at"
#: The RAW telemetry columns operate writes: the poller's, and :data:`POLLED_AT`.
OPERATE_TELEMETRY_SCHEMA = TELEMETRY_SCHEMA.append(
    pa.field(POLLED_AT, pa.timestamp("us", tz="UTC"))
)


def silver_grid_seconds(site: Any) -> int:
    """SILVER's grid for a site: its polling interval in the network's time (the clock's
    speed times the wall one), rounded to whole seconds, at least 1. [s]

    Raises
    ------
    ConfigError
        The grid does not divide a day (86,400 s): ``polling_interval_s`` is named.
    """
    from guardian_lib.errors import ConfigError, IngestError
    from guardian_lib.silver_grid import check_grid

    speed = site.clock.speed if site.clock is not None else 1.0
    grid = max(1, int(round(float(site.polling_interval_s) * speed)))
    what = "polling_interval_s" + (f" × clock.speed {speed:g}" if speed != 1.0 else "")
    try:
        return check_grid(grid, f"{what} ({site.polling_interval_s:g} s)")
    except IngestError as exc:
        raise ConfigError(str(exc)) from None


def on_clock(times: pd.Series, clock: Any) -> pd.Series:
    """Host wall-clock times moved onto a scaled clock (``clock`` None: unchanged).

    Parameters
    ----------
    times : pandas.Series
        UTC times read on the host's wall clock.
    clock : ClockSettings or None
        ``epoch + (wall - wall_epoch) × speed`` (:class:`~guardian_lib.operate.site.ClockSettings`).

    Returns
    -------
    pandas.Series
        The network's times (UTC, microseconds).
    """
    if clock is None or not len(times):
        return times
    wall = pd.to_datetime(times, utc=True)
    wall0 = pd.Timestamp(clock.wall_epoch, unit="s", tz="UTC")
    out = pd.Timestamp(clock.epoch).tz_convert("UTC") + (wall - wall0) * float(clock.speed)
    return out.dt.floor("us").astype("datetime64[us, UTC]")


def stamp_poll(
    report: Any, ts: pd.Timestamp, clock: Any = None, last_ts: pd.Timestamp | None = None
) -> SimpleNamespace:
    """A poll's rows as operate stores them and feeds them to its cycle.

    Parameters
    ----------
    report : PollReport
        Or anything with ``telemetry`` and ``events`` frames (RAW columns).
    ts : pandas.Timestamp
        The cycle's time (UTC, on the polling grid).
    clock : ClockSettings, optional
        The site's scaled clock: the poll's times are moved onto it.
    last_ts : pandas.Timestamp, optional
        The previous cycle's time (None: none).

    Returns
    -------
    types.SimpleNamespace
        ``telemetry`` (``ts`` the cycle's time, :data:`POLLED_AT` the walk's time,
        :data:`OPERATE_TELEMETRY_SCHEMA` columns) and ``events`` (on the clock; their own
        time when it lies after ``last_ts`` and at ``ts`` at the latest, else ``ts``:
        ``guardian decide`` gives a step the events after the previous step up to it).
    """
    tel = report.telemetry.copy()
    tel[POLLED_AT] = on_clock(tel["ts"], clock)
    tel["received_at"] = on_clock(tel["received_at"], clock)
    tel["ts"] = pd.Series(pd.Timestamp(ts), index=tel.index).astype("datetime64[us, UTC]")
    events = report.events
    if len(events):
        at = on_clock(events["ts"], clock)
        outside = at > ts if last_ts is None else (at > ts) | (at <= last_ts)
        at = at.where(~outside, pd.Timestamp(ts)).astype("datetime64[us, UTC]")
        events = events.assign(ts=at, received_at=on_clock(events["received_at"], clock))
    return SimpleNamespace(telemetry=tel, events=events)
