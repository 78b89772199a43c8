"""PPPoE sessions the ACS reports down: what ``guardian operate`` applied, kept in SILVER.

A CPE whose PPPoE session the ACS reports down (hung, misconfigured, its credentials
refused) leaves its customer without service although the ONU is registered:
``guardian operate`` reads that ONU as loss 100 % in the cycle's tick (only where the
ONU was read and is registered; the rest follows the missed-poll rule). So that
``guardian decide`` replays the same input, operate records the *changes* of that view
in the RAW events (:class:`PppRecord`):

* ``ACS_PPP_DOWN`` — at the cycle's time, the ONU whose CPE the ACS reports down from
  this cycle on;
* ``ACS_PPP_UP`` — at the cycle's time, an ONU recorded down whose CPE the ACS no longer
  reports down (its session is up again, the ACS stopped reporting its status, or the
  NBI is down: operate reads all of these as service).

Entity the ONU, payload ``{"cpe_id": …, "read_at": …}`` (the fleet's CPE, never a
string from the ACS, and when operate read the ACS, ISO 8601 UTC), source ``operate``.
One row per change, not per ONU and cycle: a session down for a week is two rows. The replay carries the state across steps (:class:`PppState`): an ONU's
last record at or before a step says whether its CPE's session is down in that step.
The batch features of ``guardian train`` / ``evaluate`` / ``score``
(:func:`guardian_lib.features.load_cube`) read the same state by the same functions
(:func:`session_down`, :func:`ppp_lost`), so a model trained on operate's warehouse sees
those customers without service as operate did.

Why new types rather than the ``PPPOE_DOWN`` / ``PPPOE_UP`` events: those are session
events seen by the loop and counted by the features (``pppoe_down_1h``), which
operate's own cycle does not see (it reads the ACS's state, not a session event); a
replay that fed them to the loop would decide on an input operate never had. These
records are, like ``ACS_SEEN``, the record of a decision's input: the replay applies
them to the readings and shows no event.

Restart safety: before each append the new state and the rows are put in the state
store (:meth:`PppRecord.record`); a process that starts again appends the last rows
once more (:meth:`PppRecord.resume`: the same rows, deduplicated by SILVER's events
rule), so a crash between the put and the append never leaves the warehouse with a
state operate does not know. Rows of the same ONU at the same time (a cycle that ran
again after a crash and read the ACS anew) are applied in ``received_at`` order: the
later read wins (``read_at`` in the payload keeps each read's rows apart in SILVER).
Without any stored state (a new state folder) operate starts from the warehouse's
SILVER (:func:`recorded_down`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "ACS_PPP_DOWN", "ACS_PPP_UP", "PPP_TYPES", "PppRecord", "PppState", "acs_ppp_events",
    "operate_loss", "ppp_lost", "ppp_records", "received_column", "recorded_down",
    "session_down",
]  # fmt: skip

#: Event type: from this time on the ACS reports the ONU's CPE's PPPoE session down.
ACS_PPP_DOWN = "ACS_PPP_DOWN"
#: Event type: from this time on it no longer does.
ACS_PPP_UP = "ACS_PPP_UP"
#: Both types.
PPP_TYPES = (ACS_PPP_DOWN, ACS_PPP_UP)
_STATE_KEY = "ppp_down"
_US = 1_000_000


def acs_ppp_events(
    ts: pd.Timestamp, down: Sequence[str], up: Sequence[str], cpe_of: Mapping[str, str],
    received_at: pd.Timestamp,
) -> pd.DataFrame:  # fmt: skip
    """RAW events of one cycle's changes of the ACS's PPPoE view.

    Parameters
    ----------
    ts : pandas.Timestamp
        The cycle's time (on the polling grid, UTC).
    down, up : sequence of str
        ONUs whose CPE's session went down / is no longer reported down.
    cpe_of : mapping of str → str
        ONU → its CPE (the fleet's), kept in the payload.
    received_at : pandas.Timestamp
        When the rows were first written (UTC); its date names the RAW partition.

    Returns
    -------
    pandas.DataFrame
        Rows with the RAW events columns (``source`` ``operate``, severity ``info``).
    """
    ids = [str(o) for o in down] + [str(o) for o in up]
    # the read's time tells two reads of the same cycle apart (SILVER keeps one row per
    # ONU, type, time and payload: down, up, down again at one time must stay three)
    read = pd.Timestamp(received_at).tz_convert("UTC").isoformat()
    kinds = [ACS_PPP_DOWN] * len(down) + [ACS_PPP_UP] * len(up)
    return pd.DataFrame({
        "ts": pd.to_datetime([pd.Timestamp(ts)] * len(ids), utc=True),
        "entity_id": ids, "entity_type": "onu", "type": kinds, "severity": "info",
        "source": "operate",
        "payload": [json.dumps({"cpe_id": cpe_of.get(o), "read_at": read}) for o in ids],
        "received_at": pd.to_datetime([pd.Timestamp(received_at)] * len(ids), utc=True),
    })  # fmt: skip


def recorded_down(con: Any) -> set[str]:
    """ONUs whose last ``ACS_PPP_*`` record in SILVER events is ``ACS_PPP_DOWN``.

    Parameters
    ----------
    con : duckdb connection
        From :func:`guardian_lib.warehouse.connect`.
    """
    from guardian_lib.warehouse import table_names

    if "events" not in table_names(con):
        return set()
    rows = con.execute(
        f"SELECT entity_id, type FROM events WHERE type IN {PPP_TYPES!r} "
        f"AND entity_type = 'onu' QUALIFY row_number() OVER (PARTITION BY entity_id "
        f"ORDER BY ts DESC, {received_column(con)} DESC, type DESC) = 1"
    ).fetchall()
    return {str(e) for e, t in rows if t == ACS_PPP_DOWN}


def ppp_records(con: Any, lo_us: int | None, hi_us: int) -> pd.DataFrame:
    """``ACS_PPP_*`` records of SILVER events with ``lo_us < ts <= hi_us``, in the order
    they apply: by time, then as received (the later read of a cycle wins).

    Parameters
    ----------
    con : duckdb connection
        With an ``events`` table.
    lo_us : int or None
        Exclusive lower bound, microseconds since the epoch (UTC); None: from the first.
    hi_us : int
        Inclusive upper bound, microseconds since the epoch (UTC).

    Returns
    -------
    pandas.DataFrame
        ``t`` (epoch µs), ``entity_id``, ``entity_type``, ``type``.
    """
    after = "" if lo_us is None else f"AND epoch_us(ts) > {int(lo_us)} "
    return con.execute(
        "SELECT epoch_us(ts) AS t, entity_id, entity_type, type FROM events WHERE "
        f"type IN {PPP_TYPES!r} {after}AND epoch_us(ts) <= {int(hi_us)} "
        f"ORDER BY t, {received_column(con)}, type"
    ).df()


def ppp_lost(online: np.ndarray, loss_pct: np.ndarray, down: np.ndarray) -> np.ndarray:
    """``loss_pct`` with 100 where the ONU was read, is registered and its CPE's PPPoE
    session is down: how ``guardian operate`` reads such an ONU (no service). [%]

    Parameters
    ----------
    online : ndarray
        Registered (1), not (0), not read (NaN); one step (ONUs) or steps × ONUs.
    loss_pct : ndarray
        Packet loss, the shape of ``online``. [%]
    down : ndarray of bool
        Whose CPE's session is down, the shape of ``online``.

    Returns
    -------
    ndarray of float
        A new array. [%]
    """
    out = np.array(loss_pct, dtype=float)
    out[(np.asarray(online, dtype=float) == 1.0) & np.asarray(down, dtype=bool)] = 100.0
    return out


def session_down(
    con: Any, index: pd.Index, start_us: int, end_us: int, tick_s: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Whose CPE's PPPoE session the ACS reported down at each step of a grid, as
    ``guardian operate`` recorded it and ``guardian decide``'s replay carries it.

    The state before ``start_us`` comes from every record up to the step before it; a
    record at time t applies from the first step at or after t (as every event does).

    Parameters
    ----------
    con : duckdb connection
        A warehouse (:func:`guardian_lib.warehouse.connect`) or any connection with
        ``events``.
    index : pandas.Index
        The ONU ids, in column order.
    start_us, end_us : int
        First and last step, microseconds since the epoch (UTC), inclusive.
    tick_s : int
        The grid. [s]

    Returns
    -------
    (down, recorded) : ndarrays of bool, shape (steps, len(index)), or None
        Whose session is down at each step, and which ONUs have a record by then
        (operate's reading of them is known); None when no ONU of ``index`` has a record
        up to ``end_us``: the readings stay as they are.
    """
    from guardian_lib.warehouse import table_names

    if "events" not in table_names(con):
        return None
    tick_us = int(tick_s) * _US
    state = PppState(index)
    state.apply(ppp_records(con, None, start_us - tick_us))
    records = ppp_records(con, start_us - tick_us, end_us)
    if not state.recorded.any() and not len(records):
        return None
    n_steps = int((end_us - start_us) // tick_us) + 1
    recorded = np.empty((n_steps, len(index)), dtype=bool)
    down = state.steps(records, start_us, tick_s, n_steps, recorded)
    return (down, recorded) if recorded.any() else None


def operate_loss(
    online: np.ndarray, loss_pct: np.ndarray, down: np.ndarray, recorded: np.ndarray
) -> np.ndarray:
    """``loss_pct`` as ``guardian operate`` read it where it recorded the ACS's view of
    the ONU (``recorded``): 100 where the CPE's session is down (:func:`ppp_lost`), and a
    registered ONU whose loss was not read has service (0,
    :func:`~guardian_lib.decision.observe.registered_loss`); elsewhere as stored. [%]

    Parameters
    ----------
    online, loss_pct, down, recorded : ndarray
        The same shape: registered (1) / not (0) / not read (NaN), packet loss [%],
        session down, operate's view of the ONU recorded.

    Returns
    -------
    ndarray of float
        A new array. [%]
    """
    from guardian_lib.decision.observe import registered_loss

    read = np.where(recorded, registered_loss(online, loss_pct), loss_pct)
    return ppp_lost(online, read, down)


def received_column(con: Any) -> str:
    """``received_at`` when the events table has it (SILVER does), else ``ts`` (an
    ``ORDER BY`` key that adds nothing after ``ts``)."""
    cols = {r[0] for r in con.execute("DESCRIBE events").fetchall()}
    return "received_at" if "received_at" in cols else "ts"


class PppRecord:
    """``guardian operate``'s record of the CPEs the ACS reports with PPPoE down.

    Parameters
    ----------
    onu_ids : array of str
        The fleet, in tick order.
    cpe_of : mapping of str → str
        ONU → CPE (ACS device) id.

    Attributes
    ----------
    down : set of str
        ONUs the warehouse records down (after the last :meth:`record`).
    """

    def __init__(self, onu_ids: Sequence[str], cpe_of: Mapping[str, str]) -> None:
        self.onu_ids = np.asarray(list(onu_ids), dtype=object)
        self.cpe_of = dict(cpe_of)
        self.down: set[str] = set()
        self._unsent: pd.DataFrame | None = None  # rows whose append failed
        # each ONU's CPE, in fleet order (None: no CPE, never down)
        self._cpes = pd.Index([self.cpe_of.get(o) for o in self.onu_ids], dtype=object)

    def mask(self, ppp: Mapping[str, bool]) -> np.ndarray:
        """ONUs (fleet order) whose CPE the ACS reports with its session down.

        Parameters
        ----------
        ppp : mapping of str → bool
            CPE id → session up (``NbiCpeState.ppp_up``; absent: not reported).
        """
        down = [c for c, up in ppp.items() if up is False]
        if not down:
            return np.zeros(len(self.onu_ids), dtype=bool)
        return self._cpes.isin(down)

    def record(self, ts: pd.Timestamp, down_mask: np.ndarray, store: Any, warehouse: Any) -> int:
        """Append this cycle's changes to ``warehouse``'s RAW events; the new state and
        the rows are put in ``store`` first. Rows whose append failed (the cycle failed
        with it) are appended first by the next call. Returns this cycle's rows. [-]

        Parameters
        ----------
        ts : pandas.Timestamp
            The cycle's time (UTC, on the grid).
        down_mask : ndarray of bool
            :meth:`mask` of this cycle.
        store : StateStore
        warehouse : path
            The site's run folder.
        """
        if self._unsent is not None:  # the last append failed (a full disk…): first
            _append(warehouse, self._unsent)
            self._unsent = None
        now = set(self.onu_ids[np.asarray(down_mask, dtype=bool)].tolist())
        went, back = sorted(now - self.down), sorted(self.down - now)
        if not went and not back:
            return 0
        rows = acs_ppp_events(ts, went, back, self.cpe_of, pd.Timestamp.now(tz="UTC"))
        store.put(_STATE_KEY, {"down": sorted(now), "last": rows})
        self.down, self._unsent = now, rows
        _append(warehouse, rows)
        self._unsent = None
        return len(rows)

    def resume(self, store: Any, warehouse: Any) -> int:
        """Restore the stored state and append its last rows again (a crash may have cut
        their append; SILVER keeps one of each); without a stored state, the state
        :func:`recorded_down` finds in ``warehouse``'s SILVER. Returns the rows appended. [-]"""
        saved = store.get(_STATE_KEY)
        if saved is None:
            self.down = _warehouse_down(warehouse)
            return 0
        self.down = set(saved.get("down", ()))
        last = saved.get("last")
        if not isinstance(last, pd.DataFrame):
            return 0
        _append(warehouse, last)
        return len(last)


def _append(warehouse: Any, rows: pd.DataFrame) -> None:
    from guardian_lib.snmp.poller import append_raw_events

    append_raw_events(warehouse, rows, "acs-ppp")


def _warehouse_down(warehouse: Any) -> set[str]:
    """:func:`recorded_down` of the run folder ``warehouse`` (none without a warehouse)."""
    from guardian_lib.errors import WarehouseError
    from guardian_lib.warehouse import connect

    try:
        con = connect(warehouse)
    except WarehouseError:
        return set()  # no warehouse yet: nothing recorded
    try:
        return recorded_down(con)
    finally:
        con.close()


class PppState:
    """The replay's side: whether each ONU's CPE has its session down, step by step.

    Parameters
    ----------
    index : pandas.Index
        The fleet's ONU ids, in tick order.

    Attributes
    ----------
    down : ndarray of bool
        The state after the records applied so far.
    recorded : ndarray of bool
        ONUs with a record among them (operate recorded the ACS's view of their CPE).
    """

    def __init__(self, index: pd.Index) -> None:
        self.index = index
        self.down = np.zeros(len(index), dtype=bool)
        self.recorded = np.zeros(len(index), dtype=bool)

    def apply(self, ev: pd.DataFrame) -> None:
        """Apply records in order (``entity_id``, ``entity_type``, ``type``); rows of an
        ONU the fleet does not list, or not naming an ONU, are ignored."""
        if not len(ev):
            return
        pos = self.index.get_indexer(ev["entity_id"].astype(str))
        ok = (pos >= 0) & (ev["entity_type"] == "onu").to_numpy()
        last = pd.DataFrame({"pos": pos[ok], "down": (ev["type"] == ACS_PPP_DOWN).to_numpy()[ok]})
        last = last.drop_duplicates("pos", keep="last")  # a later row of the ONU wins
        self.down[last["pos"].to_numpy()] = last["down"].to_numpy()
        self.recorded[last["pos"].to_numpy()] = True

    def steps(
        self,
        records: pd.DataFrame,
        start_us: int,
        tick_s: int,
        n_steps: int,
        recorded: np.ndarray | None = None,
    ) -> np.ndarray:
        """The state at each of ``n_steps`` grid steps from ``start_us``, applying
        ``records`` (:func:`ppp_records` of ``(start_us - tick, last step]``) from the first
        step at or after their time on; :attr:`down` is left at the last step.

        Parameters
        ----------
        records : pandas.DataFrame
            ``t`` (epoch µs), ``entity_id``, ``entity_type``, ``type``, in apply order.
        start_us : int
            First step, microseconds since the epoch (UTC).
        tick_s : int
            The grid. [s]
        n_steps : int
            Steps. [-]
        recorded : ndarray of bool, shape (n_steps, len(index)), optional
            Filled with :attr:`recorded` at each step.

        Returns
        -------
        ndarray of bool, shape (n_steps, len(index))
        """
        out = np.empty((n_steps, len(self.index)), dtype=bool)
        tick_us = int(tick_s) * _US
        t = records["t"].to_numpy(np.int64) if len(records) else np.empty(0, np.int64)
        step = -((-(t - int(start_us))) // tick_us)  # ceil: known at the step at/after t
        at = 0
        for s in np.unique(step).tolist():
            k = min(max(int(s), at), n_steps)
            out[at:k] = self.down
            if recorded is not None:
                recorded[at:k] = self.recorded
            self.apply(records[step == s])
            at = k
        out[at:] = self.down
        if recorded is not None:
            recorded[at:] = self.recorded
        return out

    def lost(self, online: np.ndarray, loss_pct: np.ndarray) -> np.ndarray:
        """``loss_pct`` with 100 where the ONU was read, is registered and its CPE's
        session is down (as operate reads it, :func:`ppp_lost`). [%]"""
        return ppp_lost(online, loss_pct, self.down)
