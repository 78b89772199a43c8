"""PPPoE sessions the ACS reports down: ``guardian operate``'s record of them in RAW.

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
One row per change, not per ONU and cycle: a session down for a week is two rows.
:mod:`guardian_lib.silver_ppp` reads them back, for the replay and the batch features
alike (an ONU's last record at or before a step says whether its CPE's session is down
in that step).

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
SILVER (:func:`guardian_lib.silver_ppp.recorded_down`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from guardian_lib.silver_ppp import ACS_PPP_DOWN, ACS_PPP_UP, recorded_down

__all__ = ["PppRecord", "acs_ppp_events"]

_STATE_KEY = "ppp_down"


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
