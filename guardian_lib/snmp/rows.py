"""Pure decoding of walked OLT tables into ``telemetry_raw`` / ``events_raw`` rows.

No I/O here: :mod:`guardian_lib.snmp.poller` fetches, these functions decode.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from guardian_lib.schema import RAW_EVENTS_ARROW, RAW_TELEMETRY_ARROW
from guardian_lib.snmp.encodings import (
    decode_dbm,
    decode_serial,
    serial_from_length_prefixed_index,
)
from guardian_lib.snmp.profiles import OpticalColumn, Profile
from guardian_lib.snmp.transport import Oid, oid_str

__all__ = [
    "SOURCE",
    "TELEMETRY_SCHEMA",
    "EVENTS_SCHEMA",
    "empty_frame",
    "decode_walk",
    "derive_events",
    "olt_alarm",
]

SOURCE = "snmp"

#: ``telemetry_raw`` columns plus the trace columns of the SNMP poller.
TELEMETRY_SCHEMA = pa.schema(
    [
        *RAW_TELEMETRY_ARROW,
        pa.field("olt_id", pa.string()),
        pa.field("snmp_index", pa.string()),
        pa.field("serial", pa.string()),
        pa.field("poll_complete", pa.bool_()),
    ]
)
#: ``events_raw`` columns.
EVENTS_SCHEMA = RAW_EVENTS_ARROW
_SEVERITY = {"LOS": "critical", "DYING_GASP": "major", "LINK_UP": "info", "OLT_ALARM": "major"}


def empty_frame(schema: pa.Schema) -> pd.DataFrame:
    """An empty frame with the schema's columns and nullable dtypes."""
    return schema.empty_table().to_pandas(types_mapper=_nullable)


def _nullable(t: pa.DataType) -> Any:
    if t == pa.bool_():
        return pd.BooleanDtype()
    if t == pa.int64():
        return pd.Int64Dtype()
    return None


def _index_key(idx: Oid, strip: int) -> Oid:
    return idx[: len(idx) - strip] if strip else idx


def decode_walk(
    profile: Profile,
    rows: Mapping[str, Sequence[tuple[Oid, Any]]],
    *,
    olt_id: str,
    ts: pd.Timestamp,
    received_at: pd.Timestamp | None = None,
    complete: bool = True,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Turn walked table columns into telemetry rows (pure; no I/O).

    Parameters
    ----------
    profile : Profile
    rows : mapping
        Column OID → ``(index sub-ids, value)`` pairs, as from
        :meth:`SnmpSession.walk_columns`.
    olt_id : str
    ts, received_at : pandas.Timestamp
        Poll time and answer arrival time (UTC).
    complete : bool
        Written to ``poll_complete``.

    Returns
    -------
    telemetry : pandas.DataFrame
        One row per ONU index seen in any column, :data:`TELEMETRY_SCHEMA` columns.
    down_causes : dict
        ``snmp_index`` → event type (LOS, DYING_GASP) for ONUs reported offline with a
        known last-down cause.
    """
    received_at = ts if received_at is None else received_at
    w = _Walked(profile, rows)
    n = len(w.order)
    online = _online(profile, w)
    optics = _optics(profile, w, online)
    serial = _serials(profile, w)
    uptime: list[Any] = [pd.NA] * n
    if profile.columns.uptime_s is not None:
        scale = profile.columns.uptime_s.scale
        uptime = [pd.NA if v is None else int(int(v) * scale) for v in w.values("uptime_s")]
    causes: dict[str, str] = {}
    if profile.columns.down_cause is not None:
        cmap = profile.columns.down_cause.causes
        for ix, v, on in zip(w.index_str, w.values("down_cause"), online, strict=True):
            if on is False and isinstance(v, int) and v in cmap:
                causes[ix] = cmap[v]
    onu_id = [s if s else f"{olt_id}:{ix}" for s, ix in zip(serial, w.index_str, strict=True)]
    frame = pd.DataFrame(
        {
            "ts": pd.Series([ts] * n, dtype="datetime64[us, UTC]"),
            "onu_id": pd.Series(onu_id, dtype=object),
            "rx_dbm": optics["rx_dbm"],
            "tx_dbm": optics["tx_dbm"],
            "olt_rx_dbm": optics["olt_rx_dbm"],
            "snr_db": np.full(n, np.nan),
            "ber": np.full(n, np.nan),
            "crc_errors": pd.array([pd.NA] * n, dtype="Int64"),
            "latency_ms": np.full(n, np.nan),
            "loss_pct": np.full(n, np.nan),
            "online": pd.array(online, dtype="boolean"),
            "uptime_s": pd.array(uptime, dtype="Int64"),
            "source": SOURCE,
            "received_at": pd.Series([received_at] * n, dtype="datetime64[us, UTC]"),
            "olt_id": olt_id,
            "snmp_index": pd.Series(w.index_str, dtype=object),
            "serial": pd.Series(serial, dtype=object),
            "poll_complete": pd.array([complete] * n, dtype="boolean"),
        }
    )
    return frame, causes


class _Walked:
    """Walked columns by profile field, aligned on the sorted ONU indices seen in any."""

    def __init__(self, profile: Profile, rows: Mapping[str, Sequence[tuple[Oid, Any]]]) -> None:
        self.per_field: dict[str, dict[Oid, Any]] = {}
        keys: set[Oid] = set()
        for fname, col in profile.columns.items():
            got = {_index_key(i, col.strip_suffix): v for i, v in rows.get(col.oid, ())}
            self.per_field[fname] = got
            keys.update(got)
        self.order = sorted(keys)
        self.index_str = [oid_str(k) for k in self.order]

    def values(self, fname: str) -> list[Any]:
        """The field's raw value per ONU index (``None`` where it was not walked)."""
        got = self.per_field.get(fname, {})
        return [got.get(k) for k in self.order]


def _online(profile: Profile, w: _Walked) -> list[Any]:
    """True / False per ONU from the status column, ``pd.NA`` for an unknown status."""
    online: list[Any] = [pd.NA] * len(w.order)
    status = profile.columns.status
    if status is not None:
        for i, v in enumerate(w.values("status")):
            if v in status.online:
                online[i] = True
            elif v in status.offline:
                online[i] = False
    return online


def _optics(profile: Profile, w: _Walked, online: list[Any]) -> dict[str, np.ndarray]:
    """``rx_dbm``, ``tx_dbm``, ``olt_rx_dbm`` decoded, NaN outside ``valid_dbm``. [dBm]"""
    n = len(w.order)
    out: dict[str, np.ndarray] = {}
    for fname in ("rx_dbm", "tx_dbm", "olt_rx_dbm"):
        col = getattr(profile.columns, fname)
        if col is None:
            out[fname] = np.full(n, np.nan)
            continue
        assert isinstance(col, OpticalColumn)
        dbm = decode_dbm(w.values(fname), col.encoding, **_encoding_params(col))
        lo, hi = col.valid_dbm
        out[fname] = np.where((dbm >= lo) & (dbm <= hi), dbm, np.nan)
    if profile.blank_optics_when_offline:
        off = np.array([o is False for o in online], dtype=bool)
        for fname in ("rx_dbm", "tx_dbm", "olt_rx_dbm"):
            out[fname] = np.where(off, np.nan, out[fname])
    return out


def _serials(profile: Profile, w: _Walked) -> list[str | None]:
    """Serial per ONU: the serial column, else decoded from the index if the profile says."""
    serial: list[str | None] = [None] * len(w.order)
    if profile.columns.serial is not None:
        enc = profile.columns.serial.encoding
        serial = [decode_serial(v, enc) for v in w.values("serial")]
    if profile.serial_from_index == "length_prefixed_ascii":
        serial = [
            s or serial_from_length_prefixed_index(ix)
            for s, ix in zip(serial, w.index_str, strict=True)
        ]
    return serial


def _encoding_params(col: OpticalColumn) -> dict[str, Any]:
    if col.encoding == "scaled":
        return {"scale": col.scale, "offset": col.offset, "sentinels": col.sentinels}
    if col.encoding == "linear_mw":
        return {"scale": col.scale, "sentinels": col.sentinels}
    return {"sentinels": col.sentinels}


def derive_events(
    telemetry: pd.DataFrame,
    down_causes: Mapping[str, str],
    previous_online: Mapping[str, bool] | None = None,
    *,
    profile: str = "",
) -> pd.DataFrame:
    """LOS / DYING_GASP / LINK_UP events from one poll and, if known, the previous one.

    Without a previous poll every ONU found offline with a known last-down cause gives
    one event. With one, only changes do: online → offline gives the cause's event (none
    when the OLT reports no cause: nothing is invented), offline → online gives LINK_UP.

    Parameters
    ----------
    telemetry : pandas.DataFrame
        One OLT's rows from :func:`decode_walk`.
    down_causes : mapping
        ``snmp_index`` → event type.
    previous_online : mapping, optional
        ONU id → online at the previous poll.
    profile : str
        Written to the payload.

    Returns
    -------
    events : pandas.DataFrame
        :data:`EVENTS_SCHEMA` columns.
    """
    recs = []
    for row in telemetry.itertuples(index=False):
        if row.online is pd.NA:
            continue
        on = bool(row.online)
        prev = None if previous_online is None else previous_online.get(row.onu_id)
        prev = None if prev is None or prev is pd.NA else bool(prev)
        etype = None
        if not on:
            cause = down_causes.get(row.snmp_index)
            if cause and (previous_online is None or prev is True):
                etype = cause
        elif prev is False:
            etype = "LINK_UP"
        if etype is None:
            continue
        payload = {
            "olt_id": row.olt_id,
            "snmp_index": row.snmp_index,
            "serial": row.serial,
            "profile": profile,
            "observed": "transition" if previous_online is not None else "state",
        }
        recs.append(
            (
                row.ts,
                row.onu_id,
                "onu",
                etype,
                _SEVERITY[etype],
                SOURCE,
                json.dumps(payload),
                row.received_at,
            )
        )
    if not recs:
        return empty_frame(EVENTS_SCHEMA)
    frame = pd.DataFrame(recs, columns=EVENTS_SCHEMA.names)
    for c in ("ts", "received_at"):
        frame[c] = frame[c].astype("datetime64[us, UTC]")
    return frame


def olt_alarm(
    olt_id: str,
    ts: pd.Timestamp,
    received_at: pd.Timestamp,
    error: str,
    profile: str | None,
) -> pd.DataFrame:
    """One ``OLT_ALARM`` event for an OLT whose poll is incomplete (payload names the error)."""
    payload = json.dumps(
        {"olt_id": olt_id, "reason": "snmp_poll_incomplete", "error": error, "profile": profile}
    )
    frame = pd.DataFrame(
        [(ts, olt_id, "olt", "OLT_ALARM", "major", SOURCE, payload, received_at)],
        columns=EVENTS_SCHEMA.names,
    )
    for c in ("ts", "received_at"):
        frame[c] = frame[c].astype("datetime64[us, UTC]")
    return frame
