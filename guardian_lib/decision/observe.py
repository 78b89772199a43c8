"""What an operator observes, kept per ONU as numpy arrays between snapshots.

:class:`Observer` consumes the latest telemetry (one row per ONU) and the events
received since the previous update, and keeps the observed state a policy needs:
whether the customer has service, since when a problem lasts or since when the ONU is
back, the last down cause (LOS or dying gasp), a slow baseline of the optical levels
(to see a drift), recent calls and flaps. Every update is vectorised over the fleet;
only events (few) are looked up one by one.

It never sees ground truth: only telemetry, events and inventory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from guardian_lib._frames import frame_from_columns
from guardian_lib._numeric import nan_to_num

if TYPE_CHECKING:  # pragma: no cover - guardian_lib.loop imports this package
    from guardian_lib.loop.tick import Tick

__all__ = [
    "Observer",
    "ServiceThresholds",
    "registered_loss",
    "service_state",
    "tick_service_state",
    "DOWN_TYPES",
    "STATUS_COLUMNS",
]


@dataclass(frozen=True)
class ServiceThresholds:
    """When a customer's service counts as degraded (online and up, but poor).

    Attributes
    ----------
    degraded_loss_pct : float, default 1.5
        Packet loss above which service is degraded. [%]
    degraded_latency_ms : float, default 80
        Latency above which service is degraded. [ms]
    high_ber : float, default 1e-6
        BER above which service is degraded. [-]
    """

    degraded_loss_pct: float = 1.5
    degraded_latency_ms: float = 80.0
    high_ber: float = 1e-6


def service_state(
    online: np.ndarray, values: dict[str, np.ndarray], thresholds: ServiceThresholds
) -> tuple[np.ndarray, np.ndarray]:
    """Whether each customer has service and whether it is degraded, from one reading.

    Parameters
    ----------
    online : ndarray of bool
    values : dict of ndarray
        ``loss_pct`` [%], ``latency_ms`` [ms] and ``ber`` [-] (NaN: not read).
    thresholds : ServiceThresholds

    Returns
    -------
    service_up, degraded : ndarray of bool
        No service: offline, or loss of 99.5 % or more (or unread). Degraded: service
        with loss, latency or BER above the thresholds.
    """
    n = len(online)
    nan = np.full(n, np.nan)
    loss = values.get("loss_pct", nan)
    service = online & ~(nan_to_num(loss, 100.0) >= 99.5)
    degraded = service & (
        (nan_to_num(loss) > thresholds.degraded_loss_pct)
        | (nan_to_num(values.get("latency_ms", nan)) > thresholds.degraded_latency_ms)
        | (nan_to_num(values.get("ber", nan)) > thresholds.high_ber)
    )
    return service, degraded


def registered_loss(online: np.ndarray, loss_pct: np.ndarray) -> np.ndarray:
    """``loss_pct`` with 0 where the ONU is registered and its loss was not read.

    An OLT reports no packet loss: a row polled over SNMP (``guardian operate``, and the
    SILVER rows it wrote that ``guardian decide`` replays) has ``loss_pct`` NaN, which
    :func:`service_state` reads as "no service". A registered ONU has service unless
    something says otherwise (a CPE whose PPPoE session is down is read as loss 100 %),
    so both commands apply this to the rows they read.

    Parameters
    ----------
    online : ndarray
        Registered (1/True), not (0/False), not read (NaN).
    loss_pct : ndarray
        Packet loss; NaN where not read. [%]

    Returns
    -------
    ndarray of float
        A new array. [%]
    """
    loss = np.array(loss_pct, dtype=float)
    on = np.asarray(online, dtype=float)
    loss[(on == 1.0) & np.isnan(loss)] = 0.0
    return loss


def tick_service_state(tick: Tick, thresholds: ServiceThresholds) -> tuple[np.ndarray, np.ndarray]:
    """:func:`service_state` of a tick, computed once per tick and thresholds (the
    observer and the episode tracker both need it)."""
    key = ("service_state", thresholds)
    if key not in tick.cache:
        tick.cache[key] = service_state(tick.online, tick.values, thresholds)
    return tick.cache[key]


#: Codes of the last down cause seen in events.
DOWN_TYPES = ("none", "LOS", "DYING_GASP")
#: Columns of :meth:`Observer.status` besides the inventory keys and telemetry.
STATUS_COLUMNS = (
    "service_up",
    "degraded",
    "outage",
    "impacted",
    "down_type",
    "impacted_min",
    "stable_min",
    "rx_drop_db",
    "tx_drop_db",
    "calls_24h",
    "last_call_min",
    "flaps_24h",
    "dhcp_fails_6h",
    "latency_excess_ms",
    "down_min",
    "rx_low_min",
    "contacted_since_down",
)
_DOWN_TYPE_NAMES = np.asarray(DOWN_TYPES, dtype=object)
#: The status' ``down_type`` dtype (built once: validating the categories costs more
#: than the column).
_DOWN_TYPE_DTYPE = pd.CategoricalDtype(list(DOWN_TYPES))
_TELEMETRY = ("rx_dbm", "tx_dbm", "olt_rx_dbm", "ber", "latency_ms", "loss_pct", "uptime_s")
_DAY_S = 86400.0
_DHCP_TAU_S = 6 * 3600.0  # DHCP failures are counted over about six hours
_LAT_FAST_TAU_S = 3600.0  # the recent latency level: about an hour
#: RX this far below the baseline starts ``rx_low_min`` (as the neighbour evidence's
#: :data:`~guardian_lib.decision.neighbours.RX_STEP_DB`). [dB]
_RX_LOW_DB = 2.5


class Observer:
    """Per-ONU observed state, updated from telemetry and events.

    Parameters
    ----------
    onus : pandas.DataFrame
        Inventory ``onus`` (``onu_id``, ``pon_id``, ``olt_id``, ``splitter_id``).
    customers : pandas.DataFrame
        Inventory ``customers`` (``customer_id``, ``onu_id``, ``cpe_id``, ``region``,
        ``segment``).
    degraded_loss_pct : float, default 1.5
        Packet loss above which service counts as degraded. [%]
    degraded_latency_ms : float, default 80
        Latency above which service counts as degraded. [ms]
    high_ber : float, default 1e-6
        BER above which service counts as degraded. [-]
    baseline_tau_h : float, default 72
        Time constant of the optical baselines. [h]
    """

    def __init__(
        self,
        onus: pd.DataFrame,
        customers: pd.DataFrame,
        degraded_loss_pct: float = 1.5,
        degraded_latency_ms: float = 80.0,
        high_ber: float = 1e-6,
        baseline_tau_h: float = 72.0,
    ) -> None:
        for name, df, cols in (
            ("onus", onus, ("onu_id", "pon_id", "olt_id", "splitter_id")),
            ("customers", customers, ("customer_id", "onu_id", "cpe_id", "region", "segment")),
        ):
            missing = [c for c in cols if c not in df.columns]
            if missing:
                raise KeyError(f"Observer: inventory table {name!r} lacks columns {missing}")
        cust = customers.set_index("onu_id").reindex(onus["onu_id"])
        self.index = pd.Index(onus["onu_id"].astype(str), name="onu_id")
        self.n = len(self.index)
        self.inventory = pd.DataFrame(
            {
                "customer_id": cust["customer_id"].to_numpy(),
                "cpe_id": cust["cpe_id"].to_numpy(),
                "pon_id": onus["pon_id"].to_numpy(),
                "box_id": onus["splitter_id"].to_numpy(),
                "olt_id": onus["olt_id"].to_numpy(),
                "region": cust["region"].to_numpy(),
                "segment": cust["segment"].to_numpy(),
            },
            index=self.index,
        )
        #: The inventory columns as numpy arrays (what ``status()[c].to_numpy()`` gives).
        self._inventory_arrays = {c: self.inventory[c].to_numpy() for c in self.inventory}
        #: The inventory columns as the frame stores them (the status frame's columns).
        self._inventory_columns = {c: self.inventory[c].array for c in self.inventory.columns}
        self._cust_index = pd.Index(cust["customer_id"].astype(str))
        # Row of each ONU id and customer id, for the few ids a tick's events name (a hash
        # lookup each; an Index per lookup infers a string dtype first). None where the
        # ids repeat: get_indexer then says so, as before.
        self._row_map = {o: i for i, o in enumerate(self.index)} if self.index.is_unique else None
        self._cust_map = (
            {c: i for i, c in enumerate(self._cust_index)} if self._cust_index.is_unique else None
        )
        #: Integer codes of the box / PON / OLT of each ONU (fast neighbour statistics).
        self._codes = {
            f"{k}_code": pd.factorize(self.inventory[f"{k}_id"])[0] for k in ("box", "pon", "olt")
        }
        self.degraded_loss_pct = degraded_loss_pct
        self.degraded_latency_ms = degraded_latency_ms
        self.high_ber = high_ber
        self.baseline_tau_s = baseline_tau_h * 3600
        n = self.n
        self.now_s = np.nan
        self.values = {c: np.full(n, np.nan) for c in _TELEMETRY}
        self.online = np.ones(n, dtype=bool)
        self.service_up = np.ones(n, dtype=bool)
        self.degraded = np.zeros(n, dtype=bool)
        self.impacted_since_s = np.full(n, np.nan)
        self.ok_since_s = np.full(n, np.nan)
        # Since when service is lost (offline or no PPPoE) and since when RX sits below
        # its baseline: an ONU degraded before an outage took it down still shows when
        # it went dark, so it counts among the ONUs that failed together.
        self.down_since_s = np.full(n, np.nan)
        self.rx_low_since_s = np.full(n, np.nan)
        self.down_type = np.zeros(n, dtype=np.int8)
        self.rx_base = np.full(n, np.nan)
        self.tx_base = np.full(n, np.nan)
        self.last_call_s = np.full(n, -np.inf)
        self.calls = np.zeros(n)
        self.flaps = np.zeros(n)
        self.dhcp_fails = np.zeros(n)
        self.lat_base = np.full(n, np.nan)
        self.lat_fast = np.full(n, np.nan)
        self._last_s = np.nan

    def row_of(self, onu_ids: pd.Series | np.ndarray | list) -> np.ndarray:
        """Inventory rows of ONU ids (−1 for unknown ids). [-]"""
        return self.index.get_indexer(pd.Index(np.asarray(onu_ids, dtype=object).astype(str)))

    @property
    def thresholds(self) -> ServiceThresholds:
        """The limits above which service counts as degraded."""
        return ServiceThresholds(self.degraded_loss_pct, self.degraded_latency_ms, self.high_ber)

    def update(self, tick: Tick) -> None:
        """Fold in one polling round and the events received since the previous one.

        Parameters
        ----------
        tick : guardian_lib.loop.Tick
            Readings in the inventory's ONU order (``online``, ``rx_dbm``, ``tx_dbm``,
            ``olt_rx_dbm``, ``ber``, ``latency_ms``, ``loss_pct``, ``uptime_s``; missing
            measures are NaN) and the events since the previous tick. A table of
            readings becomes a tick with :meth:`Tick.from_frame
            <guardian_lib.loop.Tick.from_frame>` (an ONU without a row is offline).
        """
        if tick.n_onus != self.n:
            raise ValueError(
                f"Observer.update: tick at {tick.ts} has {tick.n_onus} ONUs, the inventory {self.n}"
            )
        ts, online, values = tick.ts, tick.online, tick.values
        events = None
        if tick.events:  # what _fold_events reads (a full events frame costs more)
            events = (
                np.array([e.type for e in tick.events], dtype=object),
                np.array([e.entity_id for e in tick.events], dtype=object),
            )
        now = pd.Timestamp(ts).timestamp()
        dt = 0.0 if np.isnan(self._last_s) else max(now - self._last_s, 0.0)
        if events is not None:
            events = (*events, self._call_steps(tick.events, events[0], now, dt))
        self._last_s = now
        self.now_s = now
        nan = np.full(self.n, np.nan)
        self.values = {c: np.asarray(values.get(c, nan), dtype=float) for c in _TELEMETRY}
        online = np.asarray(online, dtype=bool)
        v = self.values
        service, degraded = tick_service_state(tick, self.thresholds)
        impacted = ~service | degraded
        was = ~np.isnan(self.impacted_since_s)
        self.impacted_since_s[impacted & ~was] = now
        ended = ~impacted & was
        self.ok_since_s[ended] = now
        self.impacted_since_s[ended] = np.nan
        self.online, self.service_up, self.degraded = online, service, degraded
        _track_since(self.down_since_s, ~service, now)
        self.down_type[online] = 0
        # Slow baselines of the optical levels while the link is healthy.
        alpha = 1.0 - np.exp(-dt / self.baseline_tau_s) if dt > 0 else 1.0
        for base, col in ((self.rx_base, "rx_dbm"), (self.tx_base, "tx_dbm")):
            x = v[col]
            fresh = np.isnan(base) & ~np.isnan(x)
            base[fresh] = x[fresh]
            upd = online & ~np.isnan(x) & ~fresh
            base[upd] += alpha * (x[upd] - base[upd])
        _track_since(self.rx_low_since_s, online & (self.rx_base - v["rx_dbm"] > _RX_LOW_DB), now)
        # Latency: a slow baseline and an hourly level; a leaking CPE (memory, DHCP
        # table) adds tens of ms for hours before it hangs.
        lat = v["latency_ms"]
        ok = online & ~np.isnan(lat) & ~degraded
        a_fast = 1.0 - np.exp(-dt / _LAT_FAST_TAU_S) if dt > 0 else 1.0
        for base, a in ((self.lat_base, alpha), (self.lat_fast, a_fast)):
            fresh = np.isnan(base) & ok
            base[fresh] = lat[fresh]
            upd = ok & ~fresh
            base[upd] += a * (lat[upd] - base[upd])
        decay = np.exp(-dt / _DAY_S) if dt > 0 else 1.0
        self.calls *= decay
        self.flaps *= decay
        self.dhcp_fails *= np.exp(-dt / _DHCP_TAU_S) if dt > 0 else 1.0
        if events is not None:
            self._fold_events(*events, now)

    def state_dict(self) -> dict[str, Any]:
        """The observed state (every per-ONU array and the clock), picklable, for a restart.

        Returns
        -------
        dict
            Copies of the attributes that change tick by tick (everything but the
            inventory and the settings given to the constructor), plus ``onu_ids`` to
            check the fleet on load.
        """
        out = {k: _copy(v) for k, v in self.__dict__.items() if k not in _CONFIG_ATTRS}
        out["onu_ids"] = self.index.to_numpy(dtype=object)
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (same fleet, same order)."""
        ids = np.asarray(state["onu_ids"], dtype=object)
        if len(ids) != self.n or not np.array_equal(ids, self.index.to_numpy(dtype=object)):
            raise ValueError("Observer.load_state_dict: the saved fleet differs from the inventory")
        # A state saved before these arrays existed: unknown since when (NaN).
        state = {**{k: np.full(self.n, np.nan) for k in _ADDED_ATTRS}, **state}
        missing = [k for k in self.__dict__ if k not in _CONFIG_ATTRS and k not in state]
        if missing:
            raise KeyError(f"Observer.load_state_dict: saved state lacks {missing}")
        for k, v in state.items():
            if k != "onu_ids":
                setattr(self, k, _copy(v))

    @staticmethod
    def _call_steps(events: tuple, types: np.ndarray, now: float, dt: float) -> np.ndarray | None:
        """When each ``CUSTOMER_CALL`` of a tick counts from. [s]

        A call reported late (dated before the previous tick, as ``guardian operate``'s
        contact intake may feed it) counts from the polling step it belongs to, the one
        ``guardian decide`` places it in (its time rounded up to the tick grid ending at
        ``now``); every other call, from ``now``. None without late calls.
        """
        calls = types == "CUSTOMER_CALL"
        if dt <= 0 or not calls.any():
            return None
        at = np.array([pd.Timestamp(e.ts).timestamp() for e, c in zip(events, calls, strict=True)
                       if c], dtype=float)  # fmt: skip
        late = at < now - dt
        if not late.any():
            return None
        return np.where(late, now - np.floor((now - at) / dt) * dt, now)

    def _fold_events(
        self,
        types: np.ndarray,
        entity_ids: np.ndarray,
        call_steps: np.ndarray | None,
        now: float,
    ) -> None:
        """Fold in a tick's events: their types and entity ids (object arrays), and when
        each call counts from (:meth:`_call_steps`; None: all from ``now``)."""
        strings = all(isinstance(e, str) for e in entity_ids)
        if strings:
            ent = entity_ids
        else:  # as pandas' astype(str) of the events' entity ids
            ent = pd.Series(entity_ids, dtype=object).astype(str).to_numpy()
        rows_of = self._rows_of if strings else self.row_of
        for code, name in ((1, "LOS"), (2, "DYING_GASP")):
            r = rows_of(ent[types == name])
            r = r[r >= 0]
            self.down_type[r[~self.online[r]]] = code
            if code == 1:
                np.add.at(self.flaps, r, 1.0)
        dhcp = rows_of(ent[types == "DHCP_FAIL"])
        np.add.at(self.dhcp_fails, dhcp[dhcp >= 0], 1.0)
        calls = types == "CUSTOMER_CALL"
        if calls.any():
            if strings and self._cust_map is not None:
                m = self._cust_map
                r = np.fromiter((m.get(o, -1) for o in ent[calls]), dtype=np.intp)
            else:
                r = self._cust_index.get_indexer(pd.Index(ent[calls]))
            if call_steps is None:
                r = r[r >= 0]
                np.add.at(self.calls, r, 1.0)
                self.last_call_s[r] = now
            else:  # late calls: decayed since their step, never moving a later call back
                at = call_steps[r >= 0]
                r = r[r >= 0]
                np.add.at(self.calls, r, np.exp(-(now - at) / _DAY_S))
                np.maximum.at(self.last_call_s, r, at)

    def _rows_of(self, onu_ids: np.ndarray) -> np.ndarray:
        """:meth:`row_of` of ONU id strings, by the hash map when the fleet's ids are
        unique. [-]"""
        m = self._row_map
        if m is None:
            return self.row_of(onu_ids)
        return np.fromiter((m.get(o, -1) for o in onu_ids), dtype=np.intp, count=len(onu_ids))

    def status(self) -> pd.DataFrame:
        """Observed state of every ONU (index ``onu_id``).

        Returns
        -------
        pandas.DataFrame
            Inventory keys, the latest telemetry and :data:`STATUS_COLUMNS`:
            ``impacted_min`` (how long the current problem lasts, 0 if none) [min],
            ``stable_min`` (since when the ONU is back, ``inf`` if never impacted) [min],
            ``rx_drop_db``/``tx_drop_db`` (baseline minus current) [dB], ``calls_24h``
            and ``flaps_24h`` (decayed counts) [-], ``last_call_min`` [min],
            ``dhcp_fails_6h`` (failed DHCP renewals, decayed over 6 h) [-] and
            ``latency_excess_ms`` (last hour's latency above the slow baseline) [ms],
            ``down_min`` (since service was lost, offline or no PPPoE, 0 with service:
            unlike ``impacted_min`` it starts when a degraded ONU goes dark) [min] and
            ``rx_low_min`` (since RX fell more than 2.5 dB below its baseline, 0 if
            not) [min], ``contacted_since_down`` (the customer contacted us, a
            ``CUSTOMER_CALL`` event: a call or a ticket, since service was lost; False
            with service).
        """
        return self.status_with_columns()[0]

    def status_with_columns(self) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """:meth:`status`, and its columns as numpy arrays.

        Returns
        -------
        status : pandas.DataFrame
        columns : dict of ndarray
            Each equal to ``status[c].to_numpy()`` (strings and ``down_type`` as
            object arrays), without reading them back from the frame: a decision round
            reads the status column by column (:meth:`Snapshot.column
            <guardian_lib.decision.Snapshot.column>`). Some are shared with the frame
            or the observer; do not write to them.
        """
        now = self.now_s
        v = self.values
        impacted_min = nan_to_num((now - self.impacted_since_s) / 60.0, nan=0.0)
        stable = (now - self.ok_since_s) / 60.0
        stable = np.where(np.isnan(stable), np.inf, stable)
        stable = np.where(np.isnan(self.impacted_since_s), stable, 0.0)
        cols = dict(self._inventory_columns)
        cols.update(self._codes)
        cols.update({c: v[c] for c in _TELEMETRY})
        cols.update(
            online=self.online,
            service_up=self.service_up,
            degraded=self.degraded,
            outage=~self.service_up,
            impacted=~np.isnan(self.impacted_since_s),
            down_type=pd.Categorical.from_codes(self.down_type, dtype=_DOWN_TYPE_DTYPE),
            impacted_min=impacted_min,
            stable_min=stable,
            rx_drop_db=nan_to_num(self.rx_base - v["rx_dbm"], nan=0.0),
            tx_drop_db=nan_to_num(self.tx_base - v["tx_dbm"], nan=0.0),
            calls_24h=self.calls.copy(),
            last_call_min=(now - self.last_call_s) / 60.0,
            flaps_24h=self.flaps.copy(),
            dhcp_fails_6h=self.dhcp_fails.copy(),
            latency_excess_ms=nan_to_num(self.lat_fast - self.lat_base, nan=0.0),
            down_min=nan_to_num((now - self.down_since_s) / 60.0, nan=0.0),
            rx_low_min=nan_to_num((now - self.rx_low_since_s) / 60.0, nan=0.0),
            contacted_since_down=~np.isnan(self.down_since_s)
            & (self.last_call_s >= self.down_since_s),
        )
        df = frame_from_columns(cols, self.index)  # as pd.DataFrame(cols)
        arrays = dict(cols)
        arrays.update(self._inventory_arrays)
        arrays["down_type"] = _DOWN_TYPE_NAMES[self.down_type]
        return df, arrays


#: Observer attributes set once from the inventory and settings (not restart state).
_CONFIG_ATTRS = frozenset({"index", "n", "inventory", "_inventory_arrays", "_inventory_columns",
                           "_cust_index", "_row_map", "_cust_map", "_codes",
                           "degraded_loss_pct", "degraded_latency_ms", "high_ber",
                           "baseline_tau_s"})  # fmt: skip


#: Arrays added after states were first saved (restored as NaN when a state lacks them).
_ADDED_ATTRS = ("down_since_s", "rx_low_since_s")


def _track_since(since_s: np.ndarray, now_on: np.ndarray, now: float) -> None:
    """Start (``now``) or clear (NaN) each row's "since" time as its condition holds."""
    since_s[now_on & np.isnan(since_s)] = now
    since_s[~now_on] = np.nan


def _copy(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.copy()
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    return v
