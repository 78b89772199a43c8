"""What a Huawei, ZTE or FiberHome OLT answers over SNMP, built from simulator state.

Each vendor function encodes one OLT's ONUs exactly as the vendor's agent does — scales,
offsets, sentinels and index formats (docs/snmp.md) — into an :class:`OidTable`. This is
written independently of the poller's YAML profiles on purpose: the round-trip test then
checks one against the other.

The state source is anything with ``topology`` (``olts``, ``pons``, ``onus`` DataFrames)
and ``state`` (arrays aligned with ``topology.onus``: ``rx_dbm``, ``tx_dbm``,
``olt_rx_dbm``, ``online``, ``uptime_s``, ``down_cause``, and ``ts``), e.g.
``simulator.engine.Simulation``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from acs_emulator.olt.mib import (
    GAUGE32,
    INTEGER,
    OBJECT_ID,
    OCTET_STRING,
    TIMETICKS,
    Oid,
    OidTable,
)

__all__ = [
    "StateSource",
    "OltView",
    "VENDOR_MIBS",
    "mib_for",
    "VendorMib",
    "olt_view",
    "build_olt_table",
    "LiveOltTable",
    "HUAWEI_SENTINEL",
    "ZTE_1012_SENTINEL",
    "ZTE_1082_NO_SIGNAL",
    "ZTE_1082_NOT_AVAILABLE",
    "FIBERHOME_SENTINEL",
]

HUAWEI_SENTINEL = 2147483647
ZTE_1012_SENTINEL = 65535
ZTE_1082_NO_SIGNAL = -80000
ZTE_1082_NOT_AVAILABLE = 65535000
FIBERHOME_SENTINEL = 65535

DOWN_NONE, DOWN_LOS, DOWN_DYING_GASP = 0, 1, 2

_SYS = (1, 3, 6, 1, 2, 1, 1)
_IF = (1, 3, 6, 1, 2, 1, 2, 2, 1)
_IFX = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)


class StateSource(Protocol):
    """What the agents read: a topology and the latest tick's arrays."""

    topology: Any
    state: Any


@dataclass(frozen=True)
class OltView:
    """One OLT's slice of the state, sorted by (PON ifIndex, ONU id).

    Attributes
    ----------
    olt : pandas.Series
        The OLT's row of ``topology.olts``.
    pons : pandas.DataFrame
        Its PONs.
    if_index, onu_index : ndarray of int64
        PON ifIndex and ONU id on the PON, per ONU. [-]
    serial : ndarray of str
    distance_m : ndarray of float
        [m]
    rx_dbm, tx_dbm, olt_rx_dbm : ndarray of float
        NaN where no reading. [dBm]
    online : ndarray of bool
    uptime_s : ndarray of int64
        [s]
    down_cause : ndarray of int8
        0 none, 1 LOS, 2 dying gasp.
    """

    olt: pd.Series
    pons: pd.DataFrame
    if_index: np.ndarray
    onu_index: np.ndarray
    serial: np.ndarray
    distance_m: np.ndarray
    rx_dbm: np.ndarray
    tx_dbm: np.ndarray
    olt_rx_dbm: np.ndarray
    online: np.ndarray
    uptime_s: np.ndarray
    down_cause: np.ndarray
    #: PON ids shut by the operator (ifAdminStatus down)
    pons_down: frozenset = frozenset()


def _scaled(values: np.ndarray, scale: float, offset: float, sentinel: int) -> list[int]:
    """``round((dBm - offset) / scale)`` as ints, the sentinel where NaN."""
    raw = np.where(np.isnan(values), np.nan, np.round((values - offset) / scale))
    return [sentinel if np.isnan(v) else int(v) for v in raw]


def _octets(serial: str) -> bytes:
    """``HWTC1A2B3C4D`` → the 8 GPON serial octets."""
    return serial[:4].encode("ascii") + bytes.fromhex(serial[4:12])


def _column(base: Oid, col: int, idx: list[Oid], tag: int, values: list[Any]) -> list:
    return [(base + (col,) + i, (tag, v)) for i, v in zip(idx, values, strict=True)]


def _huawei(v: OltView) -> list:
    idx = [(int(a), int(b)) for a, b in zip(v.if_index, v.onu_index, strict=True)]
    ddm = (1, 3, 6, 1, 4, 1, 2011, 6, 128, 1, 1, 2, 51, 1)
    info = (1, 3, 6, 1, 4, 1, 2011, 6, 128, 1, 1, 2, 46, 1)
    sn = (1, 3, 6, 1, 4, 1, 2011, 6, 128, 1, 1, 2, 43, 1)
    cause = np.select(
        [v.down_cause == DOWN_LOS, v.down_cause == DOWN_DYING_GASP], [1, 13], default=-1
    )
    return [
        *_column(ddm, 3, idx, INTEGER, _scaled(v.tx_dbm, 0.01, 0.0, HUAWEI_SENTINEL)),
        *_column(ddm, 4, idx, INTEGER, _scaled(v.rx_dbm, 0.01, 0.0, HUAWEI_SENTINEL)),
        *_column(ddm, 6, idx, INTEGER, _scaled(v.olt_rx_dbm, 0.01, -100.0, HUAWEI_SENTINEL)),
        *_column(info, 15, idx, INTEGER, [1 if o else 2 for o in v.online]),
        *_column(info, 20, idx, INTEGER, [int(round(d)) for d in v.distance_m]),
        *_column(info, 24, idx, INTEGER, [int(c) for c in cause]),
        *_column(sn, 3, idx, OCTET_STRING, [_octets(s) for s in v.serial]),
    ]


def _zte_phase(v: OltView) -> list[int]:
    """zxGponOntPhaseState: 4 working, 2 LOS, 5 dyingGasp, 7 offline."""
    phase = np.select(
        [v.online, v.down_cause == DOWN_LOS, v.down_cause == DOWN_DYING_GASP], [4, 2, 5], 7
    )
    return [int(p) for p in phase]


def _zte_1012(v: OltView) -> list:
    idx = [(int(a), int(b)) for a, b in zip(v.if_index, v.onu_index, strict=True)]
    optical = (1, 3, 6, 1, 4, 1, 3902, 1012, 3, 50, 12, 1, 1)
    ont = (1, 3, 6, 1, 4, 1, 3902, 1012, 3, 28)
    rx = _scaled(v.rx_dbm, 0.002, -30.0, ZTE_1012_SENTINEL)
    return [
        *_column(optical, 10, [i + (1,) for i in idx], INTEGER, rx),
        *_column(ont + (1, 1), 5, idx, OCTET_STRING, [_octets(s) for s in v.serial]),
        *_column(ont + (2, 1), 4, idx, INTEGER, _zte_phase(v)),
    ]


def _zte_1082(v: OltView) -> list:
    idx = [(int(a), int(b)) for a, b in zip(v.if_index, v.onu_index, strict=True)]
    olt_rx = _scaled(v.olt_rx_dbm, 0.001, 0.0, ZTE_1082_NO_SIGNAL)
    # An ONU whose optics the OLT cannot read at all (never ranged) reports "not available".
    olt_rx = [
        ZTE_1082_NOT_AVAILABLE if (r == ZTE_1082_NO_SIGNAL and c == DOWN_NONE) else r
        for r, c in zip(olt_rx, v.down_cause, strict=True)
    ]
    return [
        *_column((1, 3, 6, 1, 4, 1, 3902, 1082, 500, 1, 2, 4, 2, 1), 2, idx, INTEGER, olt_rx),
        *_column(
            (1, 3, 6, 1, 4, 1, 3902, 1082, 500, 10, 2, 3, 3, 1),
            18,
            idx,
            OCTET_STRING,
            [s.encode("ascii") for s in v.serial],
        ),
        *_column(
            (1, 3, 6, 1, 4, 1, 3902, 1082, 500, 10, 2, 3, 8, 1), 4, idx, INTEGER, _zte_phase(v)
        ),
    ]


def _fiberhome(v: OltView) -> list:
    idx = [(int(a) + int(b) * 256,) for a, b in zip(v.if_index, v.onu_index, strict=True)]
    opt = (1, 3, 6, 1, 4, 1, 5875, 800, 3, 9, 3, 3, 1)
    auth = (1, 3, 6, 1, 4, 1, 5875, 800, 3, 10, 1, 1)
    return [
        *_column(opt, 6, idx, INTEGER, _scaled(v.rx_dbm, 0.01, 0.0, FIBERHOME_SENTINEL)),
        *_column(opt, 7, idx, INTEGER, _scaled(v.tx_dbm, 0.01, 0.0, FIBERHOME_SENTINEL)),
        *_column(auth, 10, idx, OCTET_STRING, [s.encode("ascii") for s in v.serial]),
        *_column(auth, 11, idx, INTEGER, [1 if o else 2 for o in v.online]),
    ]


@dataclass(frozen=True)
class VendorMib:
    """How one OLT family identifies itself and encodes its ONU tables."""

    sys_descr: str
    sys_object_id: str
    encode: Callable[[OltView], list]
    if_descr: str
    default_model: str


#: MIB family name → encoder. ``mib_for`` picks one from the OLT's vendor and model.
VENDOR_MIBS: dict[str, VendorMib] = {
    "huawei": VendorMib(
        "Huawei Integrated Access Software {model} V800R021C00",
        "1.3.6.1.4.1.2011.2.248",
        _huawei,
        "GPON 0/{slot}/{port}",
        "MA5800-X7",
    ),
    "zte_1012": VendorMib(
        "ZXA10 {model} Version V1.2.5P3 Software, Copyright (c) by ZTE Corporation",
        "1.3.6.1.4.1.3902.1082.1001.320.1",
        _zte_1012,
        "gpon_olt-1/{slot}/{port1}",
        "C320",
    ),
    "zte_1082": VendorMib(
        "ZXA10 {model} Version V2.1.0 Software, Copyright (c) by ZTE Corporation",
        "1.3.6.1.4.1.3902.1082.1001.600.1",
        _zte_1082,
        "gpon_olt-1/{slot}/{port1}",
        "C600",
    ),
    "fiberhome": VendorMib(
        "{model} FiberHome GEPON OLT RP1000",
        "1.3.6.1.4.1.5875.800.1001.16",
        _fiberhome,
        "PON {slot}/{port1}",
        "AN5516-06",
    ),
}


def mib_for(vendor: str, model: str) -> str:
    """MIB family of an OLT: ZTE C600 and C3xx V2 use ``3902.1082``, older C3xx ``3902.1012``."""
    vendor = vendor.lower()
    if vendor == "zte":
        return "zte_1082" if model.upper().startswith("C6") else "zte_1012"
    if vendor in VENDOR_MIBS:
        return vendor
    raise ValueError(f"no OLT MIB for vendor {vendor!r}: expected huawei, zte or fiberhome")


def olt_view(source: StateSource, olt_id: str) -> OltView:
    """Slice one OLT's ONUs out of the topology and state, sorted by (ifIndex, ONU id).

    ONUs the source's ``admin`` state (if any) marks as not authorized are left out: an
    OLT lists only the ONUs configured on it.
    """
    topo = source.topology
    olts = topo.olts.set_index("olt_id")
    if olt_id not in olts.index:
        raise KeyError(f"OLT {olt_id!r} is not in the topology")
    onus = topo.onus
    rows = np.flatnonzero(onus["olt_id"].to_numpy() == olt_id)
    admin = getattr(source, "admin", None)
    if admin is not None:  # an ONU still in the autofind list is in no ONU table
        rows = rows[admin.provisioned[rows]]
    pons = topo.pons[topo.pons["olt_id"] == olt_id]
    pon_if = dict(zip(pons["pon_id"], pons["if_index"].astype(np.int64), strict=True))
    sub = onus.iloc[rows]
    if_index = np.array([pon_if[p] for p in sub["pon_id"]], dtype=np.int64)
    onu_index = sub["onu_index"].to_numpy(dtype=np.int64)
    order = np.lexsort((onu_index, if_index))
    rows, if_index, onu_index = rows[order], if_index[order], onu_index[order]
    st = source.state
    online = np.asarray(st.online, dtype=bool)[rows]
    down_cause = np.asarray(st.down_cause, dtype=np.int8)[rows]
    optics = [np.asarray(getattr(st, c), dtype=float)[rows] for c in ("rx_dbm", "tx_dbm",
                                                                       "olt_rx_dbm")]  # fmt: skip
    if admin is not None:  # a deactivated ONU or shut port is offline at once, not next tick
        shut = admin.down_mask()[rows] & online
        if shut.any():
            online = online & ~shut
            down_cause = np.where(shut, 3, down_cause).astype(np.int8)
            optics = [np.where(shut, np.nan, x) for x in optics]
    return OltView(
        olt=olts.loc[olt_id],
        pons=pons,
        if_index=if_index,
        onu_index=onu_index,
        serial=onus["serial"].to_numpy()[rows],
        distance_m=onus["distance_m"].to_numpy(dtype=float)[rows],
        rx_dbm=optics[0],
        tx_dbm=optics[1],
        olt_rx_dbm=optics[2],
        online=online,
        uptime_s=np.asarray(st.uptime_s, dtype=np.int64)[rows],
        down_cause=down_cause,
        pons_down=frozenset(getattr(admin, "disabled_pons", ()) or ()),
    )


def build_olt_table(
    view: OltView, mib: str, uptime_ticks: int = 0, model: str | None = None
) -> OidTable:
    """The OLT's whole SNMP tree (system, IF-MIB, vendor ONU tables).

    Parameters
    ----------
    view : OltView
    mib : str
        A key of :data:`VENDOR_MIBS`.
    uptime_ticks : int
        sysUpTime. [0.01 s]
    model : str, optional
        Model named in sysDescr; the OLT's own by default.

    Returns
    -------
    table : OidTable
    """
    spec = VENDOR_MIBS[mib]
    model = model or str(view.olt.get("model", ""))
    items: list = [
        (_SYS + (1, 0), (OCTET_STRING, spec.sys_descr.format(model=model).encode())),
        (_SYS + (2, 0), (OBJECT_ID, spec.sys_object_id)),
        (_SYS + (3, 0), (TIMETICKS, int(uptime_ticks) & 0xFFFFFFFF)),
        (_SYS + (5, 0), (OCTET_STRING, str(view.olt.name).encode())),
    ]
    pons = view.pons.sort_values("if_index")
    onu_if = view.if_index[view.online]
    for slot, port, ifx, pon in zip(
        pons["slot"], pons["port"], pons["if_index"], pons["pon_id"], strict=True
    ):
        ifx = int(ifx)
        descr = spec.if_descr.format(slot=int(slot), port=int(port), port1=int(port) + 1)
        up = 1 if np.any(onu_if == ifx) else 2
        items += [
            (_IF + (1, ifx), (INTEGER, ifx)),
            (_IF + (2, ifx), (OCTET_STRING, descr.encode())),
            (_IF + (3, ifx), (INTEGER, 250)),  # gpon(250)
            (_IF + (5, ifx), (GAUGE32, 2_488_320_000 & 0xFFFFFFFF)),
            (_IF + (7, ifx), (INTEGER, 2 if pon in view.pons_down else 1)),  # ifAdminStatus
            (_IF + (8, ifx), (INTEGER, up)),
            (_IFX + (1, ifx), (OCTET_STRING, descr.encode())),
        ]
    items += spec.encode(view)
    return OidTable(items)


class LiveOltTable:
    """An OLT's table that follows the state source, rebuilt when the tick changes.

    Parameters
    ----------
    source : StateSource
    olt_id : str
    mib : str, optional
        MIB family; by default from the OLT's vendor and model (:func:`mib_for`).
    lock : threading.Lock, optional
        Held while reading the source (share it with whoever steps the simulation).
    """

    def __init__(
        self,
        source: StateSource,
        olt_id: str,
        mib: str | None = None,
        lock: threading.Lock | None = None,
    ) -> None:
        self.source = source
        self.olt_id = olt_id
        olt = source.topology.olts.set_index("olt_id").loc[olt_id]
        natural = mib_for(str(olt["vendor"]), str(olt["model"]))
        self.mib = mib or natural
        # an OLT served as another vendor's family names that family's model
        self.model = (
            str(olt["model"]) if self.mib == natural else VENDOR_MIBS[self.mib].default_model
        )
        self.lock = lock or threading.Lock()
        self._started = time.monotonic()
        self._key: Any = None
        self._table: OidTable | None = None

    def __call__(self) -> OidTable:
        """The current table (rebuilt if the source moved to another tick)."""
        state = self.source.state
        admin = getattr(self.source, "admin", None)
        key = (id(state), getattr(state, "ts", None), getattr(admin, "version", 0))
        if self._table is None or key != self._key:
            with self.lock:
                view = olt_view(self.source, self.olt_id)
            ticks = int((time.monotonic() - self._started) * 100)
            self._table = build_olt_table(view, self.mib, uptime_ticks=ticks, model=self.model)
            self._key = key
        return self._table
