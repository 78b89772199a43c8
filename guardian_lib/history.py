"""A run's history as the closed loop's outside world: ticks from SILVER, tickets as orders.

``guardian decide`` replays a warehouse through the loop ``guardian operate`` runs, and
``guardian alerts replay`` the alert rules over the same steps (this module sits below
both, beside the other SILVER readers):

* :class:`HistoryTelemetrySource` — one :class:`~guardian_lib.loop.Tick` per grid step
  of SILVER telemetry, read a block of steps at a time into (steps × ONUs) arrays (one
  query per block, no Python loop over ONUs), with the SILVER events since the previous
  step. An ONU without a row in a step follows the missed-poll rule of ``guardian
  operate`` (:class:`~guardian_lib.loop.missed.MissedPolls`: its previous reading for
  ``missed_poll_grace_steps`` steps, then "not read"; the ONUs of an OLT that stopped
  answering, too). Past the grace, an ONU that ``guardian operate`` kept online on the
  ACS's evidence (its OLT silent, its CPE still informing,
  :mod:`guardian_lib.operate.silent`) is online here too, with unknown readings: operate
  recorded it in that step as an ``ACS_SEEN`` event (:func:`acs_seen_events`), so the
  replay applies the evidence operate applied, step for step. A CPE whose PPPoE session
  the ACS reported down was read by operate as loss 100 % (where its ONU was read and
  registered): operate recorded the changes of that view (``ACS_PPP_DOWN`` /
  ``ACS_PPP_UP``, :mod:`guardian_lib.operate.ppp`), and the replay carries the state
  (:mod:`guardian_lib.silver_ppp`) from the last record before its first step on. A step
  without any row at all (the collection stopped) repeats the
  previous step's readings, as ``guardian operate`` does when no OLT answers: a gap in
  the export is not a massive outage. A
  customer contact names its customer; its ONU is added to the payload from the
  inventory (contacts of unknown customers are left out);
* :class:`HistoricOrders` — the operator's own service orders (imported tickets) open at
  the replayed time, shown to the policy as open orders (it holds them in a massive
  outage and does not order a second visit).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import duckdb
import numpy as np
import pandas as pd

from guardian_lib.decision.observe import registered_loss
from guardian_lib.errors import WarehouseError
from guardian_lib.loop.missed import MISSED_POLL_GRACE_STEPS, MissedPolls
from guardian_lib.loop.protocols import ORDER_COLUMNS
from guardian_lib.loop.tick import EventRow, Tick
from guardian_lib.schema import MEASURES, US_PER_S
from guardian_lib.silver_ppp import PPP_TYPES, PppState, ppp_lost, ppp_records
from guardian_lib.warehouse import table_names

__all__ = [
    "ACS_SEEN",
    "HistoryTelemetrySource",
    "acs_seen_events",
    "HistoricOrders",
    "read_orders",
    "silver_range",
    "silver_grid_s",
]

#: Event type of an ONU kept online on the ACS's evidence in one ``guardian operate`` cycle.
ACS_SEEN = "ACS_SEEN"
#: Readings held per block of steps (steps × ONUs × measures). [-]
_BLOCK_CELLS = 4_000_000


def silver_range(con: duckdb.DuckDBPyConnection) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last SILVER telemetry time (UTC), or None when there is none."""
    if "telemetry" not in table_names(con):
        return None
    lo, hi = con.execute("SELECT min(ts), max(ts) FROM telemetry").fetchone()
    if lo is None:
        return None
    return pd.Timestamp(lo).tz_convert("UTC"), pd.Timestamp(hi).tz_convert("UTC")


def acs_seen_events(
    ts: pd.Timestamp, onu_ids: Sequence[str], olt_of: dict[str, str], received_at: pd.Timestamp
) -> pd.DataFrame:
    """RAW events recording the ONUs a cycle kept online on the ACS's evidence.

    ``guardian operate`` writes one ``ACS_SEEN`` event per such ONU and cycle (only while
    an OLT is silent); :class:`HistoryTelemetrySource` reads them back, so a replay holds
    those ONUs online in the same steps.

    Parameters
    ----------
    ts : pandas.Timestamp
        The cycle's time (on the polling grid, UTC).
    onu_ids : sequence of str
        The ONUs kept online on the evidence (past their missed-poll grace).
    olt_of : dict of str → str
        ONU → its silent OLT (kept in the payload for the reader of the warehouse).
    received_at : pandas.Timestamp
        When the event was written (UTC); its date names the RAW partition.

    Returns
    -------
    pandas.DataFrame
        Rows with the RAW events columns (``source`` ``operate``, severity ``info``).
    """
    import json

    ids = [str(o) for o in onu_ids]
    return pd.DataFrame({
        "ts": pd.to_datetime([pd.Timestamp(ts)] * len(ids), utc=True),
        "entity_id": ids, "entity_type": "onu", "type": ACS_SEEN, "severity": "info",
        "source": "operate",
        "payload": [json.dumps({"olt_id": olt_of.get(o)}) for o in ids],
        "received_at": pd.to_datetime([pd.Timestamp(received_at)] * len(ids), utc=True),
    })  # fmt: skip


def silver_grid_s(con: duckdb.DuckDBPyConnection, start: pd.Timestamp, end: pd.Timestamp) -> int:
    """The polling grid of SILVER telemetry in ``[start, end]``: the grid the warehouse
    records (:mod:`guardian_lib.silver_grid`), else (a warehouse from before the record)
    the greatest common divisor of the gaps between its timestamps. [s]

    Raises
    ------
    WarehouseError
        No telemetry in the window.
    """
    from guardian_lib.silver_grid import DEFAULT_GRID_S, read_grid

    ts = con.execute(
        "SELECT DISTINCT epoch(ts)::BIGINT AS t FROM telemetry WHERE ts BETWEEN ? AND ? ORDER BY t",
        [start, end],
    ).fetchnumpy()["t"]
    if len(ts) == 0:
        raise WarehouseError(f"no SILVER telemetry between {start} and {end}")
    recorded = read_grid(con)
    if recorded is not None:
        return recorded
    gaps = np.diff(np.asarray(ts, dtype=np.int64))
    return int(np.gcd.reduce(gaps[gaps > 0])) if (gaps > 0).any() else DEFAULT_GRID_S


class HistoryTelemetrySource:
    """SILVER telemetry and events of a run, one :class:`Tick` per grid step, in order.

    Parameters
    ----------
    con : duckdb connection
        From :func:`guardian_lib.warehouse.connect` (kept open while iterating).
    onu_ids : array of str
        The fleet, in the order of every tick.
    start, end : pandas.Timestamp
        First and last step (UTC, on the grid), inclusive.
    tick_s : int
        The grid. [s]
    grace_steps : int, default :data:`~guardian_lib.loop.missed.MISSED_POLL_GRACE_STEPS`
        Steps an ONU without a row keeps its previous reading (the site file's
        ``missed_poll_grace_steps``). [-]
    measures : sequence of str, default :data:`~guardian_lib.schema.MEASURES`
        The readings of each tick (``online`` among them); ``guardian alerts replay``
        reads ``online`` alone.
    events : bool, default True
        Whether ticks carry the SILVER events (False: every tick without events; the
        ``ACS_SEEN`` evidence and the ``ACS_PPP_*`` records are applied either way).

    Attributes
    ----------
    ticks, gap_ticks : int
        Steps yielded so far, and those without any reading (previous readings repeated). [-]
    held : int
        Readings of ONUs without a row that repeat their previous one. [-]
    rows : int
        Telemetry rows read. [-]
    events, events_unmapped : int
        Events yielded, and customer contacts left out (customer not in the inventory). [-]
    ppp : PppState or None
        Whose CPE's PPPoE session the ACS reported down, as of the last step read (the
        last of the current block of steps; None when the ticks carry no ``loss_pct``).
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        onu_ids: np.ndarray,
        start: pd.Timestamp,
        end: pd.Timestamp,
        tick_s: int,
        grace_steps: int = MISSED_POLL_GRACE_STEPS,
        measures: Sequence[str] = MEASURES,
        events: bool = True,
    ) -> None:
        self.con = con
        self.index = pd.Index(np.asarray(onu_ids, dtype=object).astype(str))
        self.start_us = int(pd.Timestamp(start).value // 1000)
        self.end_us = int(pd.Timestamp(end).value // 1000)
        self.tick_s = int(tick_s)
        self.n_steps = (self.end_us - self.start_us) // (self.tick_s * US_PER_S) + 1
        if "online" not in measures:
            raise ValueError(f"HistoryTelemetrySource: measures {measures!r} lack 'online'")
        self.measures = tuple(measures)
        names = table_names(con)
        self._has_events = "events" in names
        self._tick_events = bool(events)
        self._has_customers = "customers" in names
        self.ticks = self.gap_ticks = self.rows = 0
        self.events = self.events_unmapped = 0
        self.missed = MissedPolls(len(self.index), grace_steps)
        # the ACS's PPPoE view (read as loss 100 %): only where the ticks carry the loss
        self.ppp = PppState(self.index) if "loss_pct" in self.measures else None
        if self.ppp is not None and self._has_events:
            self.ppp.apply(ppp_records(con, None, self.start_us - self.tick_s * US_PER_S))

    @property
    def held(self) -> int:
        """Readings of ONUs without a row that repeat their previous one. [-]"""
        return self.missed.held

    def __iter__(self) -> Iterator[Tick]:
        n = len(self.index)
        block = max(1, _BLOCK_CELLS // max(n * len(self.measures), 1))
        for k0 in range(0, self.n_steps, block):
            k1 = min(k0 + block, self.n_steps) - 1
            values = self._readings(k0, k1)
            events, seen = self._events(k0, k1)
            down = self._ppp_down(k0, k1)
            for k in range(k1 - k0 + 1):
                row = {m: values[m][k] for m in values}
                row = self._fill(row, seen.get(k0 + k), None if down is None else down[k])
                ts = pd.Timestamp(
                    (self.start_us + (k0 + k) * self.tick_s * US_PER_S) * 1000, tz="UTC"
                )
                self.ticks += 1
                yield Tick(ts, row, events.get(k0 + k, ()))

    def _fill(
        self,
        row: dict[str, np.ndarray],
        seen: np.ndarray | None = None,
        down: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """One step's readings with the missed-poll rule applied (vectorised); ``seen``:
        positions of the ONUs operate kept online on the ACS's evidence in this step;
        ``down``: whose CPE's PPPoE session the ACS reported down in it."""
        gaps = self.missed.gaps
        if "loss_pct" in row:  # as operate reads a poll: a registered ONU has service,
            row["loss_pct"] = registered_loss(row["online"], row["loss_pct"])
            if down is not None:  # unless the ACS reported its CPE's PPPoE session down
                row["loss_pct"] = ppp_lost(row["online"], row["loss_pct"], down)
        known_up = None
        if seen is not None:
            known_up = np.zeros(len(self.index), dtype=bool)
            known_up[seen] = True
        out = self.missed.step(row, ~np.isnan(row["online"]), known_up)
        self.gap_ticks += self.missed.gaps - gaps
        return out

    def _readings(self, k0: int, k1: int) -> dict[str, np.ndarray]:
        """(steps × ONUs) arrays of every measure for steps ``k0..k1`` (NaN: not read)."""
        from guardian_lib.features._cube import read_telemetry_grid

        tick_us = self.tick_s * US_PER_S
        lo, hi = self.start_us + k0 * tick_us, self.start_us + k1 * tick_us
        values, rows = read_telemetry_grid(
            self.con, lo, hi, self.tick_s, self.index, measures=self.measures
        )
        self.rows += rows
        return values

    def _events(
        self, k0: int, k1: int
    ) -> tuple[dict[int, tuple[EventRow, ...]], dict[int, np.ndarray]]:
        """Events of steps ``k0..k1`` by step: those after the previous step, up to this
        one; and by step the fleet positions of the ONUs of its ``ACS_SEEN`` events (the
        missed-poll rule's evidence, not events the loop sees)."""
        if not self._has_events:
            return {}, {}
        tick_us = self.tick_s * US_PER_S
        lo, hi = self.start_us + (k0 - 1) * tick_us, self.start_us + k1 * tick_us
        if not self._tick_events:  # the evidence only (what every events table has)
            ev = self.con.execute(
                "SELECT epoch_us(ts) AS t, entity_id, entity_type, type FROM events WHERE "
                f"type = '{ACS_SEEN}' AND epoch_us(ts) > {lo} AND epoch_us(ts) <= {hi}"
            ).df()
            return {}, self._seen(ev, tick_us)
        # A payload that is not a JSON object is replaced by {} (hostile or broken input must
        # not stop the replay); a contact names its customer: its ONU goes into the payload,
        # as the loop expects.
        join, payload = "", "e.p"
        if self._has_customers:
            join = (
                "LEFT JOIN (SELECT customer_id, any_value(onu_id) AS onu_id FROM customers "
                "GROUP BY customer_id) c ON e.entity_type = 'customer' AND c.customer_id = e.entity_id"
            )
            payload = (
                "CASE WHEN c.onu_id IS NOT NULL AND json_extract(e.p, '$.onu_id') IS NULL "
                "THEN json_merge_patch(e.p, json_object('onu_id', c.onu_id))::VARCHAR ELSE e.p END"
            )
        ev = self.con.execute(
            "WITH e AS (SELECT ts, entity_id, entity_type, type, severity, CASE WHEN "
            "json_valid(payload) AND json_type(payload) = 'OBJECT' THEN payload ELSE '{}' END "
            f"AS p FROM events WHERE epoch_us(ts) > {lo} AND epoch_us(ts) <= {hi}), "
            f"x AS (SELECT e.ts, e.entity_id, e.entity_type, e.type, e.severity, {payload} AS "
            f"payload FROM e {join}) "
            "SELECT epoch_us(ts) AS t, ts, entity_id, entity_type, type, "
            "coalesce(severity, 'info') AS severity, payload, "
            "json_extract_string(payload, '$.onu_id') IS NOT NULL AS has_onu FROM x "
            "ORDER BY t, entity_id, type"
        ).df()
        if not len(ev):
            return {}, {}
        seen = self._seen(ev, tick_us)
        ev = ev[~ev["type"].isin((ACS_SEEN, *PPP_TYPES)).to_numpy()]
        call = (ev["type"] == "CUSTOMER_CALL") & (ev["entity_type"] != "onu")
        unmapped = call & ~ev["has_onu"].astype(bool)
        self.events_unmapped += int(unmapped.sum())
        ev = ev[~unmapped]
        step = -((-(ev["t"].to_numpy(np.int64) - self.start_us)) // tick_us)  # ceil
        self.events += len(ev)
        rows = [
            EventRow(pd.Timestamp(ts), str(eid), str(et), str(ty), str(sev), str(pl))
            for ts, eid, et, ty, sev, pl in zip(
                ev["ts"], ev["entity_id"], ev["entity_type"], ev["type"], ev["severity"],
                ev["payload"], strict=True,
            )
        ]  # fmt: skip
        out: dict[int, list[EventRow]] = {}
        for s, r in zip(step.tolist(), rows, strict=True):
            out.setdefault(int(s), []).append(r)
        return {s: tuple(v) for s, v in out.items()}, seen

    def _ppp_down(self, k0: int, k1: int) -> np.ndarray | None:
        """Whose CPE's PPPoE session is down at each step of ``k0..k1`` (steps × ONUs;
        None when the ticks carry no ``loss_pct``), carrying :attr:`ppp` on
        (:meth:`~guardian_lib.silver_ppp.PppState.steps`, as the batch features do)."""
        if self.ppp is None:
            return None
        tick_us = self.tick_s * US_PER_S
        if not self._has_events:
            return np.broadcast_to(self.ppp.down, (k1 - k0 + 1, len(self.index)))
        lo, hi = self.start_us + (k0 - 1) * tick_us, self.start_us + k1 * tick_us
        records = ppp_records(self.con, lo, hi)
        return self.ppp.steps(records, lo + tick_us, self.tick_s, k1 - k0 + 1)

    def _seen(self, ev: pd.DataFrame, tick_us: int) -> dict[int, np.ndarray]:
        """By step, the fleet positions of the ONUs of ``ev``'s ``ACS_SEEN`` events."""
        is_seen = (ev["type"] == ACS_SEEN).to_numpy()
        if not is_seen.any():
            return {}
        steps = -((-(ev["t"].to_numpy(np.int64)[is_seen] - self.start_us)) // tick_us)  # ceil
        pos = self.index.get_indexer(ev.loc[is_seen, "entity_id"].astype(str))
        # an ONU the inventory no longer lists (or not an ONU at all): nothing to hold
        known = (pos >= 0) & (ev.loc[is_seen, "entity_type"] == "onu").to_numpy()
        return {int(s): pos[known & (steps == s)] for s in np.unique(steps[known])}


def _naive_utc(col: pd.Series | None, n: int = 0) -> np.ndarray:
    """Times as naive UTC ``datetime64[ns]`` (NaT for blanks; all NaT without a column)."""
    if col is None:
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    return pd.to_datetime(col, utc=True).dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


class HistoricOrders:
    """The operator's service orders open at the replayed time (read-only).

    Parameters
    ----------
    orders : pandas.DataFrame
        The warehouse's ``service_orders`` (``os_id``, ``onu_id`` or ``customer_id``,
        ``opened_at``, ``closed_at``).
    customers : pandas.DataFrame
        ``customer_id`` → ``onu_id``, for orders that name only the customer.

    Attributes
    ----------
    now : pandas.Timestamp or None
        The replayed time; set before each tick is fed.
    """

    def __init__(self, orders: pd.DataFrame, customers: pd.DataFrame) -> None:
        o = orders.copy()
        onu = o["onu_id"] if "onu_id" in o else pd.Series(None, index=o.index, dtype=object)
        by_customer = dict(zip(customers["customer_id"], customers["onu_id"], strict=True))
        if "customer_id" in o:
            onu = onu.where(onu.notna(), o["customer_id"].map(by_customer))
        self._orders = pd.DataFrame(
            {
                "os_id": o["os_id"].astype(str).to_numpy(),
                "onu_id": onu.to_numpy(dtype=object),
                "status": "open",
                "opened_by": o.get("opened_by", pd.Series("operator", index=o.index))
                .fillna("operator")
                .to_numpy(dtype=object),
                "opened_at": _naive_utc(o["opened_at"]),
                "closed_at": _naive_utc(o["closed_at"] if "closed_at" in o else None, len(o)),
            }
        ).dropna(subset=["onu_id"])
        self._orders = self._orders.reset_index(drop=True)
        self._opened = self._orders["opened_at"].to_numpy(dtype="datetime64[ns]")
        self._closed = self._orders["closed_at"].to_numpy(dtype="datetime64[ns]")
        self.now: pd.Timestamp | None = None

    def __len__(self) -> int:
        return len(self._orders)

    def open_orders(self) -> pd.DataFrame:
        """Orders opened at or before :attr:`now` and not closed by then (:data:`ORDER_COLUMNS`)."""
        o = self._orders
        if self.now is None or not len(o):
            return pd.DataFrame(columns=list(ORDER_COLUMNS))
        now = pd.Timestamp(self.now).tz_convert("UTC").tz_localize(None).to_datetime64()
        opened, closed = self._opened, self._closed
        mask = (opened <= now) & (np.isnat(closed) | (closed > now))
        return o.loc[mask, list(ORDER_COLUMNS)].reset_index(drop=True)


def read_orders(con: duckdb.DuckDBPyConnection, customers: pd.DataFrame) -> HistoricOrders | None:
    """The warehouse's ``service_orders`` as :class:`HistoricOrders` (None without them)."""
    if "service_orders" not in table_names(con):
        return None
    orders = con.execute("SELECT * FROM service_orders").df()
    if not len(orders) or "os_id" not in orders or "opened_at" not in orders:
        return None
    return HistoricOrders(orders, customers)
