"""The column mapping that turns an operator's own telemetry export into RAW rows.

:class:`ColumnMapping` (YAML, documented in ``docs/ingest.md``) names, for each RAW column,
the source column, a ``scale`` / ``offset`` and sentinels; :func:`load_column_mapping`
reads and validates it; :func:`map_frame` applies it to one file's frame and refuses
values implausible for their measure after the mapping (most of a column outside
:data:`~guardian_lib.schema.VALID_RANGES`, e.g. 0.01 dBm read as dBm), naming the file,
the column and the scale that would fit. :func:`guardian_lib.ingest.ingest_user_telemetry`
writes the result to RAW.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guardian_lib.errors import ConfigError, IngestError, validation_message
from guardian_lib.safe_yaml import load_yaml
from guardian_lib.schema import MEASURES, RAW_TELEMETRY_ARROW, TELEMETRY_COLUMNS, VALID_RANGES

__all__ = [
    "ColumnSpec",
    "ColumnMapping",
    "load_column_mapping",
    "default_mapping",
    "read_user_file",
    "map_frame",
    "IMPLAUSIBLE_SHARE",
]

_MEASURES = [c for c in MEASURES if c != "online"]  # the numeric ones
#: Share of a mapped column's values outside the measure's valid range above which the
#: unit is taken to be wrong (a few vendor sentinels stay below it). [-]
IMPLAUSIBLE_SHARE = 0.5


class ColumnSpec(BaseModel):
    """Where one warehouse column comes from in the user's file."""

    model_config = ConfigDict(extra="forbid")

    column: str
    scale: float = 1.0
    offset: float = 0.0
    format: str | None = None
    timezone: str | None = None
    true_values: list[str] = Field(default_factory=lambda: ["1", "true", "online", "up", "yes"])


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

    def spec(self, target: str) -> ColumnSpec | None:
        """The :class:`ColumnSpec` of a warehouse column, or ``None`` if unmapped."""
        value = self.columns.get(target)
        if value is None:
            return None
        return ColumnSpec(column=value) if isinstance(value, str) else value


def load_column_mapping(path: Path | str) -> ColumnMapping:
    """Read and validate a column-mapping YAML file.

    Raises
    ------
    ConfigError
        Names the file, the field and what was expected.
    """
    path = Path(path)
    data = load_yaml(path)  # bounded: alias bombs and huge files are refused
    try:
        mapping = ColumnMapping.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(path, exc)) from None
    unknown = sorted(set(mapping.columns) - set(TELEMETRY_COLUMNS))
    if unknown:
        raise ConfigError(
            f"{path}: columns.{unknown[0]}: not a telemetry column; expected one of "
            f"{sorted(TELEMETRY_COLUMNS)}"
        )
    for required in ("ts", "onu_id"):
        if required not in mapping.columns:
            raise ConfigError(f"{path}: columns.{required}: required mapping is missing")
    if not set(mapping.columns) & set(_MEASURES):
        raise ConfigError(f"{path}: columns: map at least one measurement of {_MEASURES}")
    return mapping


#: What reading a user's file may raise on bad content.
_READ_ERRORS = (
    OSError,
    pa.ArrowException,
    pd.errors.ParserError,
    pd.errors.EmptyDataError,
    UnicodeDecodeError,
    ValueError,
)


def default_mapping(path: Path) -> ColumnMapping:
    """Identity mapping over the telemetry columns the file has (ts and onu_id required)."""
    try:
        if path.suffix.lower() == ".parquet":
            present = pq.read_schema(path).names
        else:
            present = pd.read_csv(path, nrows=0).columns.tolist()
    except _READ_ERRORS as exc:
        raise IngestError(f"{path}: cannot read file: {' '.join(str(exc).split())}") from None
    cols = {c: c for c in TELEMETRY_COLUMNS if c in present and c != "source"}
    cols.setdefault("ts", "ts")
    cols.setdefault("onu_id", "onu_id")
    return ColumnMapping(columns=cols)


def read_user_file(path: Path, mapping: ColumnMapping) -> pd.DataFrame:
    """One export file (CSV/TXT/GZ or Parquet) as strings, as the mapping reads it."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path).to_pandas()
        if suffix in (".csv", ".txt", ".gz"):
            return pd.read_csv(path, sep=mapping.csv_delimiter, dtype=str, keep_default_na=False)
    except _READ_ERRORS as exc:
        raise IngestError(f"{path}: cannot read file: {' '.join(str(exc).split())}") from None
    raise IngestError(f"{path}: unsupported file type {suffix!r}: expected .csv or .parquet")


def _bad_row(path: Path, frame: pd.DataFrame, mask: np.ndarray, column: str, expected: str) -> None:
    if mask.any():
        i = int(np.flatnonzero(mask)[0])
        # CSV: header is line 1, so data row i is line i + 2.
        line = (
            f"row {i + 1} (line {i + 2})" if path.suffix.lower() != ".parquet" else f"row {i + 1}"
        )
        raise IngestError(
            f"{path}: {line}: column {column!r}: expected {expected}, got {frame[column].iloc[i]!r}"
        )


def _check_plausible(path: Path, target: str, spec: ColumnSpec, values: np.ndarray) -> None:
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
        f"{path}: column {spec.column!r} (mapped to {target}, scale {spec.scale:g}): "
        f"{outside.mean():.0%} of values lie outside the plausible range [{lo:g}, {hi:g}] "
        f"(median {median:g}); check the unit in the mapping{hint}"
    )


def map_frame(path: Path, frame: pd.DataFrame, mapping: ColumnMapping) -> pa.Table:
    """RAW telemetry rows (:data:`~guardian_lib.schema.RAW_TELEMETRY_ARROW`) of ``frame``.

    Raises
    ------
    IngestError
        A missing column, a bad value (file, line and column named) or a measure whose
        values are implausible for its unit after ``scale`` / ``offset``.
    """
    absent = [
        f"{target} <- {spec.column}"
        for target in mapping.columns
        if (spec := mapping.spec(target)) is not None and spec.column not in frame.columns
    ]
    if absent:
        raise IngestError(f"{path}: missing column(s) {absent}; the file has {list(frame.columns)}")
    if len(frame) == 0:
        raise IngestError(f"{path}: no data rows")
    out: dict[str, object] = {}
    ts_spec = mapping.spec("ts")
    raw_ts = frame[ts_spec.column]
    ts = pd.to_datetime(
        raw_ts, format=ts_spec.format, errors="coerce", utc=ts_spec.timezone is None
    )
    if ts_spec.timezone is not None:
        if getattr(ts.dt, "tz", None) is None:
            ts = ts.dt.tz_localize(ts_spec.timezone, ambiguous="NaT", nonexistent="NaT")
        ts = ts.dt.tz_convert("UTC")
    _bad_row(path, frame, ts.isna().to_numpy(), ts_spec.column, "a timestamp")
    out["ts"] = ts.dt.as_unit("us")
    ids = frame[mapping.spec("onu_id").column].astype(str).str.strip()
    _bad_row(path, frame, (ids == "").to_numpy(), mapping.spec("onu_id").column, "an ONU id")
    out["onu_id"] = ids
    n = len(frame)
    for col in _MEASURES:
        spec = mapping.spec(col)
        if spec is None:
            out[col] = np.full(n, np.nan)
            continue
        raw = frame[spec.column]
        text = raw.astype(str).str.strip()
        values = pd.to_numeric(
            raw if raw.dtype.kind in "fiu" else text.replace("", np.nan), errors="coerce"
        )
        bad = values.isna().to_numpy() & ~text.isin(["", "nan", "NaN", "None", "<NA>"]).to_numpy()
        _bad_row(path, frame, bad, spec.column, "a number")
        out[col] = values.to_numpy(dtype=float) * spec.scale + spec.offset
        _check_plausible(path, col, spec, out[col])
    spec = mapping.spec("online")
    if spec is None:
        out["online"] = ~np.isnan(out["rx_dbm"]) | ~np.isnan(out["olt_rx_dbm"])
    else:
        out["online"] = (
            frame[spec.column]
            .astype(str)
            .str.strip()
            .str.lower()
            .isin([v.lower() for v in spec.true_values])
            .to_numpy()
        )
    for col in ("crc_errors", "uptime_s"):
        values = np.asarray(out[col], dtype=float)
        out[col] = pd.array(np.where(np.isnan(values), pd.NA, np.round(values)), dtype="Int64")
    out["source"] = mapping.source
    out["received_at"] = pd.Timestamp(datetime.now(UTC)).as_unit("us")
    df = pd.DataFrame(out)
    return pa.Table.from_pandas(df, schema=RAW_TELEMETRY_ARROW, preserve_index=False)
