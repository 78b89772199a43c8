"""The tables an operator can import and how each lands in the warehouse.

:data:`TABLES` (defined in :mod:`guardian_lib.owndata.catalog`) lists, for every table of
a source mapping, its warehouse columns and their kinds, which must be mapped, which cells
may not be blank and its key.
:func:`convert` turns one file's (or one query's) rows into those columns through a
:class:`~guardian_lib.owndata.config.TableSource`, with the parsers of
:mod:`guardian_lib.mapping` (every bad cell named by file/line/column or query/row/
column); :func:`finish` turns a table's converted rows into what is written:

* inventory (``olts``, ``pons``, ``splitters``, ``onus``, ``customers``): the columns of
  :data:`~guardian_lib.schema.INVENTORY_COLUMNS`, unmapped ones NULL; an ONU's
  ``olt_id`` comes from its PON when not mapped;
* ``events``: RAW events (:data:`~guardian_lib.schema.RAW_EVENTS_ARROW`), ``type`` one of
  :data:`~guardian_lib.schema.EVENT_TYPES` after the mapping's value map;
* ``contacts``: RAW events of type ``CUSTOMER_CALL`` on the customer, payload
  ``{"channel": …, "reason": …}``;
* ``tickets``: ``ops/service_orders`` with the simulator's columns plus ``onu_id``,
  ``closure_code`` and ``notes``;
* ``cpe_state``: ``ops/cpe_state`` (:data:`CPE_STATE_COLUMNS`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from guardian_lib.errors import IngestError
from guardian_lib.mapping import (
    ColumnSpec,
    RowOrigin,
    check_columns,
    parse_flags,
    parse_numbers,
    parse_strings,
    parse_timestamps,
)
from guardian_lib.owndata.catalog import (  # re-exported: defined there
    CPE_STATE_COLUMNS,
    ENTITY_TYPES,
    INVENTORY_TABLES,
    SERVICE_ORDER_COLUMNS,
    TABLES,
    TableDef,
)
from guardian_lib.owndata.config import TableSource
from guardian_lib.schema import EVENT_TYPES, RAW_EVENTS_ARROW

__all__ = [
    "TableDef",
    "TABLES",
    "INVENTORY_TABLES",
    "CPE_STATE_COLUMNS",
    "SERVICE_ORDER_COLUMNS",
    "ENTITY_TYPES",
    "convert",
    "finish",
]


def _drop_mask(origin: RowOrigin, frame: pd.DataFrame, table: TableSource) -> np.ndarray:
    """Rows whose value, under ``values:``, is mapped to null (dropped on purpose)."""
    drop = np.zeros(len(frame), dtype=bool)
    for target, words in table.values.items():
        nulls = {k.strip().upper() for k, v in words.items() if v is None}
        if nulls:
            text = parse_strings(origin, frame, table.spec(target))
            drop |= text.str.upper().isin(nulls).to_numpy()
    return drop


def _mapped_words(series: pd.Series, words: dict[str, str | None]) -> pd.Series:
    lookup = {k.strip().upper(): v for k, v in words.items() if v is not None}
    mapped = series.str.upper().map(lookup)
    return mapped.where(mapped.notna(), series)


def convert(
    name: str,
    origin: RowOrigin,
    frame: pd.DataFrame,
    table: TableSource,
    default_tz: str | None,
) -> pd.DataFrame:
    """The warehouse columns of ``name`` read from one file's or query's ``frame``.

    Rows whose value is mapped to null under ``values:`` are dropped first. The result
    keeps ``frame``'s index (the source rows) and has a column per field of the table:
    parsed, converted, value-mapped; unmapped columns hold the mapping's ``defaults`` or
    NULL.

    Raises
    ------
    IngestError
        A missing source column, a blank required cell, a value that is not a number or a
        timestamp, an event type outside :data:`~guardian_lib.schema.EVENT_TYPES` (file
        and row, or query and row, and column named).
    """
    tdef = TABLES[name]
    specs = table.specs()
    check_columns(origin, frame, specs)
    frame = frame[~_drop_mask(origin, frame, table)]
    out: dict[str, object] = {}
    for col, kind in tdef.fields.items():
        spec: ColumnSpec | None = specs.get(col)
        if spec is None:
            default = table.defaults.get(col)
            out[col] = pd.Series([default] * len(frame), index=frame.index, dtype=object)
            continue
        required = col in tdef.required
        if kind == "ts":
            out[col] = parse_timestamps(origin, frame, spec, default_tz, required=required)
        elif kind in ("float", "int"):
            values = parse_numbers(origin, frame, spec, table.decimal)
            if required:
                origin.bad(frame, np.isnan(values), spec.column, "a number")
            if kind == "int":
                out[col] = pd.array(
                    np.where(np.isnan(values), pd.NA, np.round(values)), dtype="Int64"
                )
            else:
                out[col] = values
        elif kind == "bool":
            out[col] = parse_flags(frame, spec)
        else:
            text = parse_strings(origin, frame, spec, required=required)
            if col in table.values:
                text = _mapped_words(text, table.values[col])
            out[col] = text
    result = pd.DataFrame(out, index=frame.index)
    _check_words(name, origin, frame, result, table)
    return result


def _check_words(
    name: str, origin: RowOrigin, frame: pd.DataFrame, result: pd.DataFrame, table: TableSource
) -> None:
    """Event types and entity types must be the warehouse's own after the value maps."""
    one_of = TABLES[name].one_of
    if one_of:  # a ticket must say whose it is: its customer, its ONU or both
        nobody = np.logical_and.reduce([result[c].isna().to_numpy() for c in one_of])
        mapped = [table.spec(c) for c in one_of if table.spec(c) is not None]
        origin.bad(
            frame, nobody, mapped[0].column, f"a value (or one in {[m.column for m in mapped]})"
        )
    checks = []
    if name == "events":
        checks = [("type", EVENT_TYPES), ("entity_type", ENTITY_TYPES)]
    for col, allowed in checks:
        bad = ~result[col].isin(allowed).to_numpy() & result[col].notna().to_numpy()
        spec = table.spec(col)
        if spec is None:
            if bad.any():
                raise IngestError(
                    f"{origin.label}: defaults.{col}: expected one of {list(allowed)}, "
                    f"got {table.defaults[col]!r}"
                )
            continue
        origin.bad(
            frame,
            bad,
            spec.column,
            f"one of {list(allowed)} or a value mapped to one under values.{col}",
        )
    if name == "events":
        _check_onu_records(origin, frame, result, table)


#: Event types that record what ``guardian operate`` read of an ONU (the replay applies
#: them to that ONU's readings): their entity must be an ONU.
_ONU_RECORD_TYPES = ("ACS_SEEN", "ACS_PPP_DOWN", "ACS_PPP_UP")


def _check_onu_records(
    origin: RowOrigin, frame: pd.DataFrame, result: pd.DataFrame, table: TableSource
) -> None:
    """An ``ACS_*`` record naming anything but an ONU is refused (file, row and column
    named): the replay would silently skip it."""
    other = result["entity_type"].notna().to_numpy() & (result["entity_type"] != "onu").to_numpy()
    bad = result["type"].isin(_ONU_RECORD_TYPES).to_numpy() & other
    spec = table.spec("entity_type")
    if spec is None:
        if bad.any():
            raise IngestError(
                f"{origin.label}: defaults.entity_type: expected 'onu' for the event types "
                f"{list(_ONU_RECORD_TYPES)}, got {table.defaults['entity_type']!r}"
            )
        return
    origin.bad(frame, bad, spec.column, f"'onu' for the event types {list(_ONU_RECORD_TYPES)}")


def _now() -> pd.Timestamp:
    return pd.Timestamp(datetime.now(UTC)).as_unit("us")


def _events_table(df: pd.DataFrame, source: str) -> pa.Table:
    out = pd.DataFrame(
        {
            "ts": df["ts"],
            "entity_id": df["entity_id"],
            "entity_type": df["entity_type"].fillna("onu"),
            "type": df["type"],
            "severity": df["severity"].fillna("info"),
            "source": source,
            "payload": df["payload"].fillna("{}"),
            "received_at": _now(),
        }
    )
    return pa.Table.from_pandas(out, schema=RAW_EVENTS_ARROW, preserve_index=False)


def _contacts_table(df: pd.DataFrame, source: str) -> pa.Table:
    payload = [
        json.dumps({"channel": c, "reason": r}, ensure_ascii=False)
        for c, r in zip(df["channel"], df["reason"], strict=True)
    ]
    events = pd.DataFrame(
        {
            "ts": df["ts"],
            "entity_id": df["customer_id"],
            "entity_type": "customer",
            "type": "CUSTOMER_CALL",
            "severity": "info",
            "payload": payload,
        },
        index=df.index,
    )
    return _events_table(events, source)


def _tickets_frame(df: pd.DataFrame, inventory: dict[str, pd.DataFrame]) -> pd.DataFrame:
    out = df.copy()
    customers = inventory.get("customers")
    if customers is not None:
        # Fill a ticket's customer from its ONU, its ONU and region from its customer.
        by_onu = customers.drop_duplicates("onu_id").set_index("onu_id")["customer_id"]
        by_cust = customers.set_index("customer_id")
        out["customer_id"] = out["customer_id"].fillna(out["onu_id"].map(by_onu))
        out["onu_id"] = out["onu_id"].fillna(out["customer_id"].map(by_cust["onu_id"]))
        out["region"] = out["region"].fillna(out["customer_id"].map(by_cust["region"]))
    out = out.rename(columns={"ticket_id": "os_id"})
    out["status"] = np.where(out["closed_at"].notna(), "completed", "open")
    out["outcome"] = None
    out["cost_brl"] = pd.to_numeric(out["cost_brl"], errors="coerce").astype(float)
    for col in ("opened_at", "closed_at", "scheduled_for"):
        out[col] = pd.to_datetime(out[col], utc=True).dt.as_unit("us")
    strings = [c for c in SERVICE_ORDER_COLUMNS if out[c].dtype == object or c == "outcome"]
    for col in strings:
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out[list(SERVICE_ORDER_COLUMNS)].reset_index(drop=True)


def _typed(df: pd.DataFrame, fields: dict[str, str]) -> pd.DataFrame:
    """Columns in ``fields`` order with their kind's dtype (NULL columns included)."""
    out = {}
    for col, kind in fields.items():
        s = df[col]
        if kind == "ts":
            out[col] = pd.to_datetime(s, utc=True).dt.as_unit("us")
        elif kind == "float":
            out[col] = pd.to_numeric(s, errors="coerce").astype(float)
        elif kind == "int":
            out[col] = pd.array(pd.to_numeric(s, errors="coerce"), dtype="Int64")
        elif kind == "bool":
            out[col] = pd.array(s, dtype="boolean")
        else:
            out[col] = s.astype(object).where(s.notna(), None)
    return pd.DataFrame(out).reset_index(drop=True)


def finish(
    name: str, df: pd.DataFrame, source: str, inventory: dict[str, pd.DataFrame]
) -> pa.Table:
    """What is written for table ``name`` from its converted rows ``df``.

    ``inventory`` holds the inventory tables of the same import (an ONU's ``olt_id``
    comes from its PON, a ticket's customer from its ONU).
    """
    if name == "events":
        return _events_table(df, source)
    if name == "contacts":
        return _contacts_table(df, source)
    if name == "tickets":
        frame = _tickets_frame(df, inventory)
        return pa.Table.from_pandas(frame, preserve_index=False)
    tdef = TABLES[name]
    frame = _typed(df, tdef.fields)
    if name == "onus" and frame["olt_id"].isna().any() and "pons" in inventory:
        olt_of_pon = inventory["pons"].set_index("pon_id")["olt_id"]
        frame["olt_id"] = frame["olt_id"].fillna(frame["pon_id"].map(olt_of_pon))
    return pa.Table.from_pandas(frame, preserve_index=False)
