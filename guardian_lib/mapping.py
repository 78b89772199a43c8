"""Column mappings: how a column of an operator's export becomes a warehouse column.

:class:`ColumnSpec` names the source column and its conversion (``value · scale +
offset``, a timestamp ``format`` and ``timezone``, the words that mean *true*). The
parsers :func:`parse_timestamps`, :func:`parse_numbers`, :func:`parse_strings` and
:func:`parse_flags` apply one spec to one frame and name the first bad row through a
:class:`RowOrigin` (file, row and CSV line, or query and row); every table of an import
(telemetry here, inventory, events, tickets… in :mod:`guardian_lib.owndata`) is parsed
with them.

:class:`ColumnMapping` (YAML, documented in ``docs/ingest.md``) maps a telemetry export
onto RAW telemetry; :func:`load_column_mapping` reads and validates it; :func:`map_frame`
applies it to one file's frame and refuses values implausible for their measure after
the mapping (most of a column outside :data:`~guardian_lib.schema.VALID_RANGES`, e.g.
0.01 dBm read as dBm), naming the file, the column and the scale that would fit.
:func:`guardian_lib.ingest.ingest_user_telemetry` writes the result to RAW.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from guardian_lib.errors import ConfigError, IngestError
from guardian_lib.safe_yaml import load_yaml_model
from guardian_lib.schema import MEASURES, RAW_TELEMETRY_ARROW, TELEMETRY_COLUMNS, VALID_RANGES
from guardian_lib.user_files import (
    DEFAULT_CSV_ENCODING,
    EXCEL_SUFFIXES,
    CsvEncoding,
    SheetName,
    read_errors,
    read_user_file,
)

__all__ = [
    "ColumnSpec",
    "ColumnMapping",
    "RowOrigin",
    "load_column_mapping",
    "default_mapping",
    "map_frame",
    "check_columns",
    "check_telemetry_columns",
    "parse_timestamps",
    "parse_numbers",
    "parse_strings",
    "parse_flags",
    "blank_mask",
    "IMPLAUSIBLE_SHARE",
]

_MEASURES = [c for c in MEASURES if c != "online"]  # the numeric ones
#: Share of a mapped column's values outside the measure's valid range above which the
#: unit is taken to be wrong (a few vendor sentinels stay below it). [-]
IMPLAUSIBLE_SHARE = 0.5
#: Text that means "no value" in a cell (CSV cells are read as text).
_BLANKS = ("", "nan", "NaN", "None", "<NA>", "NaT", "null", "NULL")


class ColumnSpec(BaseModel):
    """Where one warehouse column comes from in the user's file."""

    model_config = ConfigDict(extra="forbid")

    column: str
    scale: float = 1.0
    offset: float = 0.0
    format: str | None = None
    timezone: str | None = None
    true_values: list[str] = Field(default_factory=lambda: ["1", "true", "online", "up", "yes"])


def _spec_of(columns: dict[str, str | ColumnSpec], target: str) -> ColumnSpec | None:
    value = columns.get(target)
    if value is None:
        return None
    return ColumnSpec(column=value) if isinstance(value, str) else value


class ColumnMapping(BaseModel):
    """Mapping of a user's telemetry file onto ``telemetry_raw``.

    ``columns`` maps a warehouse column (``ts``, ``onu_id``, ``rx_dbm``, …) to a column of
    the file, either by name or with a :class:`ColumnSpec` giving a unit conversion
    (``value · scale + offset``), a timestamp ``format`` and ``timezone``. ``ts`` and
    ``onu_id`` are required, plus at least one measurement.
    """

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, str | ColumnSpec]
    source: Annotated[str, Field(min_length=1)] = "user"
    csv_delimiter: str = ","
    csv_encoding: CsvEncoding = DEFAULT_CSV_ENCODING
    sheet: SheetName = 0
    decimal: Literal[".", ","] = "."

    def spec(self, target: str) -> ColumnSpec | None:
        """The :class:`ColumnSpec` of a warehouse column, or ``None`` if unmapped."""
        return _spec_of(self.columns, target)


def check_telemetry_columns(columns: dict, where: str) -> None:
    """Refuse a telemetry ``columns`` mapping without ``ts``, ``onu_id`` or a measurement.

    ``where`` prefixes the message (``"map.yaml: columns"``).
    """
    unknown = sorted(set(columns) - set(TELEMETRY_COLUMNS))
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}: not a telemetry column; expected one of "
            f"{sorted(TELEMETRY_COLUMNS)}"
        )
    for required in ("ts", "onu_id"):
        if required not in columns:
            raise ConfigError(f"{where}.{required}: required mapping is missing")
    if not set(columns) & set(_MEASURES):
        raise ConfigError(f"{where}: map at least one measurement of {_MEASURES}")


def load_column_mapping(path: Path | str) -> ColumnMapping:
    """Read and validate a column-mapping YAML file.

    Raises
    ------
    ConfigError
        Names the file, the field and what was expected.
    """
    path = Path(path)
    mapping = load_yaml_model(path, ColumnMapping, shape="a column mapping with 'columns:'")
    check_telemetry_columns(mapping.columns, f"{path}: columns")
    return mapping


def default_mapping(path: Path) -> ColumnMapping:
    """Identity mapping over the telemetry columns the file has (ts and onu_id required)."""
    try:
        if path.suffix.lower() == ".parquet":
            present = pq.read_schema(path).names
        elif path.suffix.lower() in EXCEL_SUFFIXES:
            present = [str(c) for c in read_user_file(path).columns]
        else:
            present = pd.read_csv(path, nrows=0).columns.tolist()
    except read_errors() as exc:
        raise IngestError(f"{path}: cannot read file: {' '.join(str(exc).split())}") from None
    cols = {c: c for c in TELEMETRY_COLUMNS if c in present and c != "source"}
    cols.setdefault("ts", "ts")
    cols.setdefault("onu_id", "onu_id")
    return ColumnMapping(columns=cols)


@dataclass(frozen=True)
class RowOrigin:
    """Where the rows of a frame come from, to name a bad row.

    Parameters
    ----------
    label : str
        The file, or ``<mapping>: tables.<name>.sql`` for a query.
    csv_lines : bool
        Rows are lines of a CSV file under a one-line header (row ``i`` is line ``i + 1``).
    """

    label: str
    csv_lines: bool = False

    line_name: str = "line"

    @classmethod
    def of_file(cls, path: Path, sheet: str | int = 0) -> RowOrigin:
        """Origin of the rows read from ``path``: CSV lines, a worksheet's rows (named
        by the spreadsheet's own numbers) or, for Parquet, rows."""
        suffix = path.suffix.lower()
        if suffix in EXCEL_SUFFIXES:
            return cls(f"{path} (sheet {sheet!r})", csv_lines=True, line_name="sheet row")
        return cls(str(path), csv_lines=suffix != ".parquet")

    def row(self, i: int) -> str:
        """``<label>: row <i+1>[ (line <i+2>)]`` for the 0-based row ``i``."""
        line = f" ({self.line_name} {i + 2})" if self.csv_lines else ""
        return f"{self.label}: row {i + 1}{line}"

    def bad(self, frame: pd.DataFrame, mask: np.ndarray, column: str, expected: str) -> None:
        """Raise on the first row where ``mask`` is true, naming ``column`` and its value."""
        if mask.any():
            pos = int(np.flatnonzero(mask)[0])
            # The frame's index is the source row (rows dropped on purpose keep their number).
            label = frame.index[pos]
            i = int(label) if isinstance(label, int | np.integer) else pos
            raise IngestError(
                f"{self.row(i)}: column {column!r}: expected {expected}, "
                f"got {frame[column].iloc[pos]!r}"
            )


def check_columns(origin: RowOrigin, frame: pd.DataFrame, specs: dict[str, ColumnSpec]) -> None:
    """Refuse a frame that lacks a mapped column (``target <- source`` listed)."""
    absent = [f"{t} <- {s.column}" for t, s in specs.items() if s.column not in frame.columns]
    if absent:
        raise IngestError(
            f"{origin.label}: missing column(s) {absent}; the file has {list(frame.columns)}"
        )


def blank_mask(values: pd.Series) -> np.ndarray:
    """Cells that hold no value: null, or text such as ``''``, ``'nan'``, ``'NULL'``."""
    text = values.astype(str).str.strip()
    return (values.isna() | text.isin(_BLANKS)).to_numpy()


#: The zone at the end of an ISO 8601 time (``Z``, ``+hh:mm``, ``-hhmm`` or ``-hh``); a
#: date alone (``2026-06-13``) ends alike, so the value must hold a time too (``:`` or ``T``).
_ISO_ZONE = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_ISO_EXPECTED = (
    "a timestamp in ISO 8601, such as '2026-06-05 10:00' or '2026-06-05T10:00:00-03:00' "
    "(another layout needs the column's format, e.g. '%d/%m/%Y %H:%M')"
)


def _time_cell_kind(value: object) -> int:
    """2 for a time with its zone, 1 for one without (a ``date`` too: its midnight), 0
    for anything else (text)."""
    if isinstance(value, date | np.datetime64):
        return 2 if getattr(value, "tzinfo", None) is not None else 1
    return 0


def parse_timestamps(
    origin: RowOrigin,
    frame: pd.DataFrame,
    spec: ColumnSpec,
    default_tz: str | None = None,
    required: bool = True,
) -> pd.Series:
    """UTC timestamps [µs] of ``spec.column``.

    A value without a zone is read in ``spec.timezone``, else ``default_tz``, else UTC;
    one with a zone is converted (a column may mix both). Without ``spec.format`` text is
    read as ISO 8601 only: ``05/06/2026`` is the 5th of June in Brazil and May 6th
    where the month comes first, so a guess would shift days without a word; such a
    column needs its ``format``. Blank cells are an error when ``required``, else NaT.

    Raises
    ------
    IngestError
        The first value that is not a timestamp in ``spec.format`` (ISO 8601 without
        one), with its row and column.
    """
    raw = frame[spec.column]
    blank = blank_mask(raw)
    zone = spec.timezone or default_tz or "UTC"
    values = raw.where(~blank, None)
    fmt = spec.format or "ISO8601"
    n = len(raw)
    # Groups of cells parsed alike: (cells, format or None for typed cells, zone given).
    groups: list[tuple[np.ndarray, str | None, bool]] = []
    if isinstance(raw.dtype, pd.DatetimeTZDtype):  # a database's timestamptz, Parquet
        groups.append((np.ones(n, dtype=bool), None, True))
    elif pd.api.types.is_datetime64_dtype(raw.dtype):
        groups.append((np.ones(n, dtype=bool), None, False))
    else:
        typed = np.zeros(n, dtype=bool)
        if raw.dtype == object:
            # Cells that already are times (a spreadsheet's date cells, a driver's
            # datetimes): taken as they are, whatever the format says of text cells.
            kind = values.map(_time_cell_kind, na_action="ignore").fillna(0).to_numpy()
            typed = kind > 0
            groups += [(kind == 2, None, True), (kind == 1, None, False)]
        # The rest as text: a CSV reader makes 202606131000 an integer, which pandas
        # would take for an epoch.
        text = (values.where(~typed, None) if typed.any() else values).astype("str")
        if spec.format is None:
            stripped = text.str.strip()
            zoned = stripped.str.contains(_ISO_ZONE, regex=True) & stripped.str.contains("[:Tt]")
            zoned = zoned.fillna(False).to_numpy(dtype=bool) & ~typed
        else:  # every value of a format carries a zone (%z, %Z), or none does
            zoned = np.full(n, "%z" in fmt or "%Z" in fmt) & ~typed
        values = values.where(typed, text) if typed.any() else text  # missing stay missing
        groups += [(zoned, fmt, True), (~zoned & ~typed, fmt, False)]
    parts = []
    for mask, group_fmt, zoned_group in groups:
        if not mask.any():
            continue
        # Most columns are one group: no subset is copied for them.
        sub = values if mask.all() else values[mask]
        part = pd.to_datetime(sub, format=group_fmt, errors="coerce", utc=zoned_group)
        if getattr(part.dt, "tz", None) is None:
            local = part.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
            gap = np.zeros(n, dtype=bool)
            gap[mask] = (part.notna() & local.isna()).to_numpy()
            origin.bad(frame, gap, spec.column,
                       f"a local time that exists once in {zone} (not in a daylight-saving "
                       "change; give the value its offset)")  # fmt: skip
            part = local
        parts.append((mask, part.dt.tz_convert("UTC").dt.as_unit("us")))
    if len(parts) == 1 and parts[0][0].all():
        ts = parts[0][1]
    else:  # several groups, or no row; by position: the frame's index need not be unique
        out = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
        for mask, part in parts:
            out[mask] = part.dt.tz_convert(None).to_numpy(dtype="datetime64[us]")
        ts = pd.Series(out, index=raw.index).dt.tz_localize("UTC")
    bad = ts.isna().to_numpy() & (~blank | required)
    origin.bad(
        frame, bad, spec.column, f"a timestamp in {spec.format!r}" if spec.format else _ISO_EXPECTED
    )
    return ts


def _is_number_cell(value: object) -> bool:
    # numbers.Number: a driver's Decimal too (a NUMERIC column), numpy's scalars.
    return isinstance(value, numbers.Number) and not isinstance(value, bool | np.bool_)


def parse_numbers(
    origin: RowOrigin, frame: pd.DataFrame, spec: ColumnSpec, decimal: str = "."
) -> np.ndarray:
    """``value · scale + offset`` of ``spec.column`` as floats (blank cells are NaN).

    With ``decimal=","`` text cells are read the Brazilian way: ``1.234,5`` is 1234.5
    (``.`` groups thousands); with ``"."`` a comma is not part of a number.

    Raises
    ------
    IngestError
        The first value that is not a number (row and column named).
    """
    raw = frame[spec.column]
    blank = blank_mask(raw)
    if raw.dtype.kind in "fiub":
        values = pd.to_numeric(raw, errors="coerce")
    else:
        text = raw.astype(str).str.strip()
        if decimal == ",":
            text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        values = pd.to_numeric(text.where(~blank, None), errors="coerce")
        if raw.dtype == object:
            # A spreadsheet's number cells and a database's numerics are numbers
            # already: the decimal comma is for text cells only (1234.5 is not 12345).
            typed = raw.map(_is_number_cell).to_numpy(dtype=bool)
            if typed.any():
                values = values.where(~typed, pd.to_numeric(raw.where(typed), errors="coerce"))
    bad = values.isna().to_numpy() & ~blank
    origin.bad(frame, bad, spec.column, "a number")
    return values.to_numpy(dtype=float) * spec.scale + spec.offset


def parse_strings(
    origin: RowOrigin,
    frame: pd.DataFrame,
    spec: ColumnSpec,
    required: bool = False,
    expected: str = "a value",
) -> pd.Series:
    """``spec.column`` as stripped text, ``None`` where blank.

    Raises
    ------
    IngestError
        A blank cell in a ``required`` column (row and column named, ``expected`` said).
    """
    raw = frame[spec.column]
    blank = blank_mask(raw)
    if required:
        origin.bad(frame, blank, spec.column, expected)
    if raw.dtype.kind == "f":  # integer ids of a database column with NULLs come as floats
        values = raw.to_numpy(dtype=float)
        whole = np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < 2**62)
        text = pd.Series(
            np.where(whole, np.round(np.where(whole, values, 0)).astype("int64").astype(str),
                     raw.astype(str)),
            index=raw.index,
        )  # fmt: skip
    else:
        text = raw.astype(str).str.strip()
    return text.where(~blank, None).astype(object)


def parse_flags(frame: pd.DataFrame, spec: ColumnSpec) -> np.ndarray:
    """Whether each cell of ``spec.column`` is one of ``spec.true_values`` (case-insensitive)."""
    words = [v.lower() for v in spec.true_values]
    return frame[spec.column].astype(str).str.strip().str.lower().isin(words).to_numpy()


def _check_plausible(origin: RowOrigin, target: str, spec: ColumnSpec, values: np.ndarray) -> None:
    """Refuse a column whose values mostly lie outside the measure's plausible range."""
    lo, hi = VALID_RANGES[target]
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return
    outside = (finite < lo) | (finite > hi)
    if outside.mean() <= IMPLAUSIBLE_SHARE:
        return
    median = float(np.median(finite))
    raw_median = (median - spec.offset) / spec.scale if spec.scale else median
    hint = ""
    for factor in (1e-1, 1e-2, 1e-3, 1e-4, 10.0, 100.0, 1000.0):  # smallest change first
        scale = spec.scale * factor
        if lo <= raw_median * scale + spec.offset <= hi:
            hint = (
                f"; with scale: {scale:g} the median would be {raw_median * scale + spec.offset:g}"
            )
            break
    raise IngestError(
        f"{origin.label}: column {spec.column!r} (mapped to {target}, scale {spec.scale:g}): "
        f"{outside.mean():.0%} of values lie outside the plausible range [{lo:g}, {hi:g}] "
        f"(median {median:g}); check the unit in the mapping{hint}"
    )


def _check_online_words(
    origin: RowOrigin, frame: pd.DataFrame, spec: ColumnSpec, out: dict[str, object]
) -> None:
    """Refuse an ``online`` column none of whose words is a true value while the rows have light.

    Every row would be offline — the whole fleet down, a massive outage on every PON —
    although most rows carry an optical level, which an ONU without light does not have:
    ``true_values`` does not name the file's word for online (``UP`` mapped with
    ``[ONLINE]``). A file of offline rows without levels (an outage's export) passes.
    """
    if np.any(out["online"]):
        return
    light = ~np.isnan(np.asarray(out["rx_dbm"], dtype=float)) | ~np.isnan(
        np.asarray(out["olt_rx_dbm"], dtype=float)
    )
    if light.mean() <= 0.5:
        return
    words = frame[spec.column].astype(str).str.strip()
    seen = sorted(set(words[~words.isin(_BLANKS)]))
    shown = ", ".join(repr(w) for w in seen[:5]) + (", …" if len(seen) > 5 else "")
    raise IngestError(
        f"{origin.label}: column {spec.column!r} (mapped to online): no value is one of "
        f"true_values {spec.true_values} (the column holds {shown or 'no value'}), so every "
        f"row would be offline although {light.mean():.0%} of them have an optical level; "
        "list the words that mean online in true_values"
    )


def map_frame(
    path: Path,
    frame: pd.DataFrame,
    mapping: ColumnMapping,
    origin: RowOrigin | None = None,
    default_tz: str | None = None,
) -> pa.Table:
    """RAW telemetry rows (:data:`~guardian_lib.schema.RAW_TELEMETRY_ARROW`) of ``frame``.

    Parameters
    ----------
    path : Path
        The file the frame was read from.
    frame : pandas.DataFrame
    mapping : ColumnMapping
    origin : RowOrigin, optional
        Names bad rows (default: the file ``path``; a query for SQL sources).
    default_tz : str, optional
        Zone of timestamps without one when the ``ts`` spec names none (default UTC).

    Raises
    ------
    IngestError
        A missing column, a bad value (file, line and column named), a measure whose
        values are implausible for its unit after ``scale`` / ``offset``, or an ``online``
        column whose ``true_values`` match none of its words while most rows have light.
    """
    origin = origin or RowOrigin.of_file(path, mapping.sheet)
    specs = {t: mapping.spec(t) for t in mapping.columns}
    check_columns(origin, frame, specs)
    if len(frame) == 0:
        raise IngestError(f"{origin.label}: no data rows")
    out: dict[str, object] = {}
    out["ts"] = parse_timestamps(origin, frame, specs["ts"], default_tz)
    out["onu_id"] = parse_strings(
        origin, frame, specs["onu_id"], required=True, expected="an ONU id"
    )
    n = len(frame)
    for col in _MEASURES:
        spec = specs.get(col)
        if spec is None:
            out[col] = np.full(n, np.nan)
            continue
        out[col] = parse_numbers(origin, frame, spec, mapping.decimal)
        _check_plausible(origin, col, spec, out[col])
    spec = specs.get("online")
    if spec is None:
        out["online"] = ~np.isnan(out["rx_dbm"]) | ~np.isnan(out["olt_rx_dbm"])
    else:
        out["online"] = parse_flags(frame, spec)
        _check_online_words(origin, frame, spec, out)
    for col in ("crc_errors", "uptime_s"):
        values = np.asarray(out[col], dtype=float)
        out[col] = pd.array(np.where(np.isnan(values), pd.NA, np.round(values)), dtype="Int64")
    out["source"] = mapping.source
    out["received_at"] = pd.Timestamp(datetime.now(UTC)).as_unit("us")
    df = pd.DataFrame(out)
    return pa.Table.from_pandas(df, schema=RAW_TELEMETRY_ARROW, preserve_index=False)
