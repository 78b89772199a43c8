"""Load SILVER telemetry and events of a time range into (time, ONU) matrices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd

from guardian_lib.errors import WarehouseError
from guardian_lib.features._windows import RunningSums
from guardian_lib.schema import MEASURES, US_PER_S
from guardian_lib.silver_ppp import operate_loss, session_down
from guardian_lib.warehouse import table_names

if TYPE_CHECKING:  # pragma: no cover
    from guardian_lib.loop.tick import Tick

__all__ = ["Cube", "load_cube", "read_telemetry_grid", "MEASURES", "EVENT_FEATURE_TYPES"]

#: Event types counted per ONU.
EVENT_FEATURE_TYPES = ("LOS", "DYING_GASP", "LINK_UP", "PPPOE_DOWN", "HIGH_BER", "LOW_RX",
                       "DHCP_FAIL", "REBOOT", "CUSTOMER_CALL")  # fmt: skip


@dataclass
class Cube:
    """Telemetry of ``n_onus`` ONUs on a regular grid of ``n_ticks`` ticks.

    Attributes
    ----------
    onus : pandas.DataFrame
        Inventory rows (onu_id, pon_id, splitter_id, olt_id, lat, lon, distance_m, …),
        in matrix column order.
    t0_us : int
        Time of tick 0, microseconds since the epoch (UTC).
    tick_s : int
        Grid spacing. [s]
    values : dict of str → ndarray, shape (n_ticks, n_onus)
        One matrix per measure; NaN where no row arrived.
    events : pandas.DataFrame
        Columns ``onu``, ``tick``, ``type`` (an event at time e is known at tick ⌈e⌉).
    olt_alarms : pandas.DataFrame
        Columns ``olt_id``, ``tick``.
    orders : pandas.DataFrame
        Service orders: ``onu``, ``opened_tick``, ``closed_tick``, ``completed``.
    running : mapping of str → RunningSums
        Window sums at the newest tick kept up to date per measure, when the cube is a
        view of a :class:`~guardian_lib.features.RollingCube` (empty otherwise).
    groups : mapping of str → ndarray of int
        Neighbour group of each ONU per level (``box``, ``pon``, ``olt``, ``geo``), when
        computed once for the inventory (empty: computed from ``onus`` on each call).
    status_marks : mapping of str → ndarray of int
        When the cube is a view of a :class:`~guardian_lib.features.RollingCube`: the last
        tick (cube tick index, negative when none is held) at which each ONU reported at
        all (``reported``), reported anything but online (``offline``) and lost all traffic
        (``lost``, loss ≥ 99.9 %), kept tick by tick. The status features of the newest
        tick then look at the ONUs whose status was not plainly online only (empty:
        every ONU is looked at).
    events_by_type : mapping of str → (ndarray, ndarray)
        ``events`` per type as (ONU rows, ticks) in event order, when kept as the
        events arrive (empty: selected from ``events`` on each call).
    """

    onus: pd.DataFrame
    t0_us: int
    tick_s: int
    values: dict[str, np.ndarray]
    events: pd.DataFrame
    olt_alarms: pd.DataFrame
    orders: pd.DataFrame = field(default_factory=pd.DataFrame)
    running: Mapping[str, RunningSums] = field(default_factory=dict)
    groups: Mapping[str, np.ndarray] = field(default_factory=dict)
    status_marks: Mapping[str, np.ndarray] = field(default_factory=dict)
    events_by_type: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def n_ticks(self) -> int:
        """Ticks in the cube. [-]"""
        return next(iter(self.values.values())).shape[0]

    @property
    def n_onus(self) -> int:
        """ONUs in the cube. [-]"""
        return len(self.onus)

    def tick_times(self, rows: np.ndarray) -> pd.DatetimeIndex:
        """UTC timestamps of tick indices (microseconds since the epoch as UTC
        ``datetime64[us]``: what ``pd.to_datetime(us, unit="us", utc=True)`` gives, at a
        third of its cost per decision round)."""
        us = self.t0_us + np.asarray(rows, dtype=np.int64) * self.tick_s * US_PER_S
        return pd.DatetimeIndex(us.astype("datetime64[us]")).tz_localize("UTC")

    def tick(self, k: int) -> Tick:
        """Tick ``k`` as the closed loop receives it (replaying stored telemetry).

        Its events are this tick's per-ONU events (a customer call is already mapped to
        its ONU), as ONU events of severity ``info``.
        """
        from guardian_lib.loop.tick import EventRow, Tick

        ts = self.tick_times(np.array([k]))[0]
        ev = self.events[self.events["tick"] == k]
        ids = self.onus["onu_id"].astype(str).to_numpy()[ev["onu"].to_numpy(dtype=int)]
        rows = tuple(
            EventRow(ts, str(o), "onu", str(t), "info")
            for o, t in zip(ids, ev["type"].to_numpy(), strict=True)
        )
        return Tick(ts, {m: v[k] for m, v in self.values.items()}, rows)


def read_telemetry_grid(
    con: duckdb.DuckDBPyConnection,
    start_us: int,
    end_us: int,
    tick_s: int,
    index: pd.Index,
    where: str = "",
    measures: Sequence[str] = MEASURES,
) -> tuple[dict[str, np.ndarray], int]:
    """SILVER telemetry of ``[start_us, end_us]`` as one (ticks × ONUs) array per measure.

    One query; rows are placed by tick (``ts`` on the grid from ``start_us``) and by the
    ONU's position in ``index``; a cell without a row is NaN, rows of other ONUs are
    ignored.

    Parameters
    ----------
    con : duckdb connection
    start_us, end_us : int
        First and last tick, microseconds since the epoch (UTC), inclusive.
    tick_s : int
        The grid. [s]
    index : pandas.Index
        ONU ids, in the arrays' column order.
    where : str, default ""
        Extra SQL condition (``" AND …"``).
    measures : sequence of str, default :data:`MEASURES`
        The columns read (SILVER telemetry columns).

    Returns
    -------
    values : dict of ndarray
        ``measures`` → float array, shape ``(ticks, len(index))``.
    rows : int
        Rows placed. [-]
    """
    tick_us = tick_s * US_PER_S
    n_ticks = int((end_us - start_us) // tick_us) + 1
    cols = ", ".join(measures)
    data = con.execute(
        f"SELECT (epoch_us(ts) - {start_us}) // {tick_us} AS k, onu_id, {cols} FROM telemetry "
        f"WHERE epoch_us(ts) BETWEEN {start_us} AND {end_us}{where}"
    ).fetchnumpy()
    k = np.asarray(data["k"], dtype=np.int64)
    j = index.get_indexer(np.asarray(data["onu_id"], dtype=object))
    keep = j >= 0
    values = {}
    for c in measures:
        m = np.full((n_ticks, len(index)), np.nan)
        col = data[c]
        arr = (
            np.ma.filled(col.astype(float), np.nan)
            if np.ma.isMaskedArray(col)
            else np.asarray(col, dtype=float)
        )
        m[k[keep], j[keep]] = arr[keep]
        values[c] = m
    return values, int(keep.sum())


def load_cube(
    con: duckdb.DuckDBPyConnection,
    start_us: int,
    end_us: int,
    tick_s: int = 300,
    onu_ids: Sequence[str] | None = None,
) -> Cube:
    """Read SILVER telemetry, events and service orders for ``[start_us, end_us]``.

    Parameters
    ----------
    con : duckdb connection
        From :func:`guardian_lib.warehouse.connect`.
    start_us, end_us : int
        First and last tick, microseconds since the epoch (UTC), inclusive.
    tick_s : int, default 300
        Grid of SILVER. [s]
    onu_ids : sequence of str, optional
        Load these ONUs only (a partition: memory follows the partition, not the
        fleet); default every ONU of the inventory.

    Raises
    ------
    WarehouseError
        The warehouse lacks ``onus`` or SILVER ``telemetry``.
    """
    tables = table_names(con)
    for needed in ("onus", "telemetry"):
        if needed not in tables:
            raise WarehouseError(
                f"warehouse has no {needed!r} table/view: run `guardian ingest` on a run with "
                "inventory/onus.parquet and telemetry"
            )
    only = ""
    if onu_ids is not None:
        con.register("_load_cube_onus", pd.DataFrame({"onu_id": list(onu_ids)}, dtype=object))
        only = " AND onu_id IN (SELECT onu_id FROM _load_cube_onus)"
    onus = con.execute(f"SELECT * FROM onus WHERE true{only} ORDER BY onu_id").df()
    cust = (
        con.execute("SELECT customer_id, onu_id FROM customers").df()
        if "customers" in tables
        else pd.DataFrame(columns=["customer_id", "onu_id"])
    )
    index = pd.Index(onus["onu_id"].astype(str))
    tick_us = tick_s * US_PER_S
    values, _ = read_telemetry_grid(con, start_us, end_us, tick_s, index, only)
    # A CPE whose PPPoE session the ACS reported down: ``guardian operate`` read its
    # registered ONU as loss 100 % and recorded when (ACS_PPP_* events); read the ONUs it
    # recorded as it did (down: 100 %; up, registered, loss not read: 0).
    ppp = session_down(con, index, start_us, end_us, tick_s)
    if ppp is not None and "loss_pct" in values:
        values["loss_pct"] = operate_loss(values["online"], values["loss_pct"], *ppp)
    # Events: entity onu, or customer mapped to its ONU; OLT alarms by OLT.
    ev = (
        con.execute(
            f"SELECT epoch_us(ts) AS t, entity_id, entity_type, type FROM events "
            f"WHERE epoch_us(ts) <= {end_us} AND epoch_us(ts) > {start_us - tick_us} "
            "ORDER BY t, entity_id, type"
        ).df()
        if "events" in tables
        else pd.DataFrame(columns=["t", "entity_id", "entity_type", "type"])
    )
    ev_tick = -((-(ev["t"].to_numpy(np.int64) - start_us)) // tick_us)  # ceil
    cust_onu = dict(zip(cust["customer_id"], cust["onu_id"], strict=True))
    onu_of = np.where(
        ev["entity_type"].to_numpy() == "customer",
        ev["entity_id"].map(cust_onu).to_numpy(),
        ev["entity_id"].to_numpy(),
    )
    ev_onu = index.get_indexer(onu_of.astype(object))
    is_onu = (ev_onu >= 0) & ev["type"].isin(EVENT_FEATURE_TYPES).to_numpy()
    events = pd.DataFrame(
        {"onu": ev_onu[is_onu], "tick": ev_tick[is_onu], "type": ev["type"].to_numpy()[is_onu]}
    )
    alarms_mask = (ev["entity_type"].to_numpy() == "olt") & (ev["type"].to_numpy() == "OLT_ALARM")
    olt_alarms = pd.DataFrame(
        {"olt_id": ev["entity_id"].to_numpy()[alarms_mask], "tick": ev_tick[alarms_mask]}
    )
    orders = pd.DataFrame(columns=["onu", "opened_tick", "closed_tick", "completed"])
    if "service_orders" in tables:
        so = con.execute(
            "SELECT customer_id, epoch_us(opened_at) AS o, epoch_us(closed_at) AS c, "
            f"status = 'completed' AS completed FROM service_orders WHERE epoch_us(opened_at) <= {end_us}"
        ).df()
        onu_idx = index.get_indexer(so["customer_id"].map(cust_onu).astype(object).to_numpy())
        ok = onu_idx >= 0
        closed = so["c"].to_numpy(dtype=float)
        orders = pd.DataFrame(
            {
                "onu": onu_idx[ok],
                "opened_tick": -((-(so["o"].to_numpy(np.int64)[ok] - start_us)) // tick_us),
                "closed_tick": np.where(
                    np.isnan(closed[ok]),
                    np.iinfo(np.int64).max // 4,
                    -((-(np.nan_to_num(closed[ok]).astype(np.int64) - start_us)) // tick_us),
                ),
                "completed": so["completed"].to_numpy(bool)[ok],
            }
        )
    return Cube(onus, start_us, tick_s, values, events, olt_alarms, orders)
