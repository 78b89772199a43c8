"""One polling round as the closed loop sees it: :class:`Tick` and its :class:`EventRow`.

A :class:`Tick` is what every telemetry source yields (the simulator, the SNMP poller,
a replay): the time of the round, one array per measure in the fleet's ONU order, keyed
by the glossary's names (docs/glossary.md), and the events received since the previous
round as :class:`EventRow` named tuples. Every stateful consumer of the loop (the
observer, the rolling feature cube, the online scorer, the episode tracker) is fed with
the same call, ``consumer.update(tick)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from guardian_lib.schema import MEASURES

__all__ = ["EventRow", "Tick", "TICK_MEASURES", "EVENT_COLUMNS"]

#: Per-ONU measures a tick may carry (:data:`guardian_lib.schema.MEASURES`, ``online``
#: last). ``online`` is required.
TICK_MEASURES = (*(m for m in MEASURES if m != "online"), "online")
#: Columns of :meth:`Tick.events_frame` (the fields of :class:`EventRow`).
EVENT_COLUMNS = ("ts", "entity_id", "entity_type", "type", "severity", "payload")


class EventRow(NamedTuple):
    """One event (a row of the warehouse's ``events`` table).

    Attributes
    ----------
    ts : pandas.Timestamp
        When it happened (UTC).
    entity_id : str
        What it is about: an ONU id, an OLT id, a customer id …
    entity_type : str
        ``onu``, ``olt``, ``customer`` …
    type : str
        ``LOS``, ``DYING_GASP``, ``REBOOT``, ``CUSTOMER_CALL``, ``OLT_ALARM`` …
    severity : str
        ``info``, ``minor``, ``major``, ``critical`` or ``clear``.
    payload : str
        JSON object with details (a customer call names its ``onu_id``).
    """

    ts: pd.Timestamp
    entity_id: str
    entity_type: str
    type: str
    severity: str
    payload: str = "{}"

    def onu_id(self) -> str | None:
        """The ONU the event is about: its entity for ONU events, the payload's
        ``onu_id`` for others (a customer call), else None."""
        if self.entity_type == "onu":
            return self.entity_id
        if self.payload and "onu_id" in self.payload:
            onu = json.loads(self.payload).get("onu_id")
            return None if onu is None else str(onu)
        return None


def _online_array(a: np.ndarray, ts: pd.Timestamp) -> np.ndarray:
    """``online`` as bool, or as float 0/1 with NaN for "not read" (checked)."""
    if a.dtype == bool:
        return a
    f = np.asarray(a, dtype=float)
    bad = ~(np.isnan(f) | (f == 0.0) | (f == 1.0))
    if bad.any():
        raise ValueError(
            f"Tick at {ts}: measure 'online' must be bool or 0/1 (NaN: not read), "
            f"got {f[bad][0]!r} at row {int(np.flatnonzero(bad)[0])}"
        )
    return f if np.isnan(f).any() else f == 1.0


@dataclass(frozen=True)
class Tick:
    """One polling round of the whole fleet.

    Parameters
    ----------
    ts : pandas.Timestamp or str
        Time of the round; stored as a UTC timestamp (a naive time is rejected).
    values : mapping of str → ndarray, shape (n_onus,)
        Readings per measure of :data:`TICK_MEASURES`, in the fleet's ONU order:
        ``rx_dbm``, ``tx_dbm``, ``olt_rx_dbm`` [dBm], ``snr_db`` [dB], ``ber`` [-],
        ``crc_errors`` [count], ``latency_ms`` [ms], ``loss_pct`` [%], ``uptime_s`` [s]
        and ``online`` [required: bool, or 0/1 float with NaN where the ONU was not
        read]. NaN is "not read"; a missing measure is all NaN.
    events : iterable of EventRow, default ()
        Events received since the previous round, oldest first.

    Raises
    ------
    ValueError
        Naive ``ts``, no ``online``, an unknown measure or arrays of different lengths
        (the message names the measure).

    Examples
    --------
    >>> import numpy as np
    >>> t = Tick("2026-01-05T00:00Z", {"online": np.array([True, False])})
    >>> t.n_onus, bool(np.isnan(t.get("rx_dbm")).all())
    (2, True)
    """

    ts: pd.Timestamp
    values: Mapping[str, np.ndarray]
    events: tuple[EventRow, ...] = field(default=())
    #: Results derived from this tick once for all its consumers (e.g. service state).
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        ts = pd.Timestamp(self.ts)
        if ts.tzinfo is None:
            raise ValueError(f"Tick.ts must be timezone-aware (UTC), got naive {ts}")
        if str(ts.tz) != "UTC":
            ts = ts.tz_convert("UTC")
        object.__setattr__(self, "ts", ts)
        if "online" not in self.values:
            raise ValueError(f"Tick at {ts}: values lack 'online' (measures: {list(self.values)})")
        n = None
        vals: dict[str, np.ndarray] = {}
        for name, arr in self.values.items():
            if name not in TICK_MEASURES:
                raise ValueError(
                    f"Tick at {ts}: unknown measure {name!r}; expected one of {TICK_MEASURES}"
                )
            a = np.asarray(arr)
            if name == "online":
                a = _online_array(a, ts)
            else:
                a = np.asarray(a, dtype=float)
            if a.ndim != 1 or (n is not None and len(a) != n):
                raise ValueError(
                    f"Tick at {ts}: measure {name!r} has shape {a.shape}, expected ({n},)"
                    if n is not None
                    else f"Tick at {ts}: measure {name!r} must be 1-D, got shape {a.shape}"
                )
            n = len(a)
            vals[name] = a
        object.__setattr__(self, "values", vals)
        events = tuple(self.events)
        for e in events:
            if not isinstance(e, EventRow):
                raise TypeError(f"Tick at {ts}: events must be EventRow, got {type(e).__name__}")
        object.__setattr__(self, "events", events)

    @property
    def n_onus(self) -> int:
        """ONUs in the fleet. [-]"""
        return len(self.values["online"])

    @property
    def online(self) -> np.ndarray:
        """Whether each ONU is registered on its OLT (not read counts as offline). [bool]"""
        v = self.values["online"]
        return v if v.dtype == bool else v == 1.0

    def get(self, name: str) -> np.ndarray:
        """The readings of ``name`` (all NaN if the source does not read it).

        ``online`` comes back as given (bool, or 0/1 float with NaN); every other
        measure as float.
        """
        if name not in TICK_MEASURES:
            raise KeyError(f"Tick.get: unknown measure {name!r}; expected one of {TICK_MEASURES}")
        v = self.values.get(name)
        return np.full(self.n_onus, np.nan) if v is None else v

    def numeric(self) -> dict[str, np.ndarray]:
        """Every measure as float (``online`` as 0/1, NaN if not read), e.g. for the
        feature cube."""
        return {k: (v.astype(float) if v.dtype == bool else v) for k, v in self.values.items()}

    def events_frame(self) -> pd.DataFrame:
        """The events as a frame with :data:`EVENT_COLUMNS`."""
        return pd.DataFrame(list(self.events), columns=list(EVENT_COLUMNS))

    def onu_events(self) -> pd.DataFrame:
        """Events that concern one ONU (``onu_id``, ``type``), a customer call mapped to
        its ONU; what the per-ONU event features count."""
        return pd.DataFrame(self.onu_event_pairs(), columns=["onu_id", "type"])

    def onu_event_pairs(self) -> list[tuple[Any, str]]:
        """:meth:`onu_events` as ``(onu_id, type)`` pairs, in event order (the ids as
        given: a call's ``onu_id`` is read from its JSON payload)."""
        rows = []
        for e in self.events:
            if e.entity_type == "onu":
                rows.append((e.entity_id, e.type))
            elif e.type == "CUSTOMER_CALL":
                rows.append((json.loads(e.payload)["onu_id"], e.type))
        return rows

    @classmethod
    def from_frame(
        cls,
        ts: pd.Timestamp | str,
        telemetry: pd.DataFrame,
        onu_ids: Iterable[str],
        events: Iterable[EventRow] = (),
    ) -> Tick:
        """A tick from one reading per row (``onu_id`` + measures), aligned to a fleet.

        An ONU without a row is offline with NaN readings; rows of ONUs outside the
        fleet are ignored.

        Parameters
        ----------
        ts : pandas.Timestamp or str
        telemetry : pandas.DataFrame
            ``onu_id``, ``online`` and any of :data:`TICK_MEASURES`.
        onu_ids : iterable of str
            The fleet, in order.
        events : iterable of EventRow, optional
        """
        for col in ("onu_id", "online"):
            if col not in telemetry.columns:
                raise KeyError(f"Tick.from_frame: telemetry lacks column {col!r}")
        index = pd.Index(np.asarray(list(onu_ids), dtype=object).astype(str))
        rows = index.get_indexer(pd.Index(telemetry["onu_id"].astype(str)))
        ok = rows >= 0
        rows = rows[ok]
        n = len(index)
        values: dict[str, np.ndarray] = {}
        for c in TICK_MEASURES:
            if c not in telemetry.columns:
                continue
            col = telemetry[c].to_numpy()[ok]
            if c == "online":
                out = np.zeros(n, dtype=bool)
                out[rows] = col.astype(bool)
            else:
                out = np.full(n, np.nan)
                out[rows] = col.astype(float)
            values[c] = out
        return cls(pd.Timestamp(ts), values, tuple(events))
