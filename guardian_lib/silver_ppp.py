"""PPPoE sessions the ACS reported down, as SILVER records them: the one reader of them.

``guardian operate`` reads an ONU whose CPE's PPPoE session the ACS reports down as
loss 100 % (no service, although the ONU is registered) and records the *changes* of
that view in the RAW events as ``ACS_PPP_DOWN`` / ``ACS_PPP_UP``
(:mod:`guardian_lib.operate.ppp` writes them: one row per change, entity the ONU). This
module reads them back for everyone who must see what operate saw:

* ``guardian decide``'s replay (:class:`PppState`, step by step, in
  :mod:`guardian_lib.history`);
* the batch features of ``guardian train`` / ``evaluate`` / ``score``
  (:func:`guardian_lib.features.load_cube`: :func:`session_down`, :func:`operate_loss`),
  so a model trained on operate's warehouse sees those customers without service as
  operate did;
* operate itself after a restart without its state folder (:func:`recorded_down`).

An ONU's last record at or before a step says whether its CPE's session is down in that
step; records of the same ONU at the same time apply in ``received_at`` order (the later
read wins). It lives beside the other SILVER readers, below both the features and
operate, so that neither reaches up into the other.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from guardian_lib.schema import US_PER_S

__all__ = [
    "ACS_PPP_DOWN", "ACS_PPP_UP", "PPP_TYPES", "PppState", "operate_loss", "ppp_lost",
    "ppp_records", "received_column", "recorded_down", "session_down",
]  # fmt: skip

#: Event type: from this time on the ACS reports the ONU's CPE's PPPoE session down.
ACS_PPP_DOWN = "ACS_PPP_DOWN"
#: Event type: from this time on it no longer does.
ACS_PPP_UP = "ACS_PPP_UP"
#: Both types.
PPP_TYPES = (ACS_PPP_DOWN, ACS_PPP_UP)


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
    tick_us = int(tick_s) * US_PER_S
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
        tick_us = int(tick_s) * US_PER_S
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
