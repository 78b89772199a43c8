"""The feature store of a run: point-in-time features materialized as Parquet by date."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from guardian_lib.errors import WarehouseError
from guardian_lib.features._compute import compute_features
from guardian_lib.features._cube import load_cube
from guardian_lib.layout import RunLayout
from guardian_lib.schema import FEATURE_EVERY_MINUTES, US_PER_S
from guardian_lib.silver_ppp import PPP_TYPES
from guardian_lib.warehouse import connect, table_names

__all__ = [
    "LOOKBACK_DAYS",
    "feature_frame",
    "materialize_features",
    "features_dir",
    "telemetry_span_us",
    "feature_dates",
    "feature_date_is_current",
    "write_feature_date",
]

#: History a feature row needs behind it (the longest window: tickets / visits). [d]
LOOKBACK_DAYS = 30
_DAY_US = 86400 * US_PER_S


def _utc_us(value) -> int:
    """µs since the epoch of a timestamp; naive values are taken as UTC."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1000)


def features_dir(run: Path | str) -> Path:
    """GOLD folder of materialized features."""
    return RunLayout(run).features


def telemetry_span_us(con) -> tuple[int, int]:
    """First and last SILVER tick of a warehouse, µs since the epoch (UTC)."""
    lo, hi = con.execute("SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM telemetry").fetchone()
    if lo is None:
        raise WarehouseError("SILVER telemetry is empty: nothing to compute features from")
    return int(lo), int(hi)


def feature_frame(
    run: Path | str,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    every_minutes: int = FEATURE_EVERY_MINUTES,
    tick_s: int = 300,
    lookback_days: int = LOOKBACK_DAYS,
    onu_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Point-in-time features of every ONU at each scoring time in ``[start, end]``.

    Parameters
    ----------
    run : path
        Run folder with an ingested warehouse.
    start, end : Timestamp or str, optional
        Range of scoring times (UTC); default: the whole SILVER span.
    every_minutes : int, default 5
        Spacing of scoring times; a multiple of the tick. [min]
    tick_s : int, default 300
        SILVER grid. [s]
    lookback_days : int, default 30
        History loaded before ``start`` so that windows are complete. [d]
    onu_ids : sequence of str, optional
        Only these ONUs (a partition closed under neighbour groups, see
        :func:`~guardian_lib.features.olt_partitions`); default every ONU.

    Returns
    -------
    pandas.DataFrame
        ``ts``, ``onu_id`` and :data:`~guardian_lib.features.FEATURE_COLUMNS`.
    """
    if (every_minutes * 60) % tick_s:
        raise ValueError(
            f"every_minutes={every_minutes} must be a multiple of the tick ({tick_s} s)"
        )
    con = connect(run)
    try:
        lo, hi = telemetry_span_us(con)
        s = lo if start is None else _utc_us(start)
        e = hi if end is None else _utc_us(end)
        if e < s:
            raise ValueError(f"end ({end}) is before start ({start})")
        step = every_minutes * 60 * US_PER_S
        s = -(-s // step) * step  # first aligned scoring time ≥ start
        load_from = max(lo, s - lookback_days * _DAY_US)
        load_from -= (load_from - s) % (tick_s * US_PER_S)  # keep ticks aligned with s
        cube = load_cube(con, load_from, e, tick_s, onu_ids=onu_ids)
    finally:
        con.close()
    first = (s - load_from) // (tick_s * US_PER_S)
    rows = np.arange(first, cube.n_ticks, every_minutes * 60 // tick_s)
    return compute_features(cube, rows)


def _inputs_digest(con, day_start_us: int, lookback_days: int) -> str:
    """Digest of the SILVER inputs a feature date depends on."""
    lo = day_start_us - lookback_days * _DAY_US
    hi = day_start_us + _DAY_US
    row = con.execute(
        "SELECT count(*), sum(hash(onu_id, ts, rx_dbm, online)) FROM telemetry "
        f"WHERE epoch_us(ts) >= {lo} AND epoch_us(ts) < {hi}"
    ).fetchone()
    ev = None  # a warehouse imported without events has no events view
    key: tuple = (row, ev)
    if "events" in table_names(con):
        ev = con.execute(
            "SELECT count(*), sum(hash(entity_id, ts, type)) FROM events "
            f"WHERE epoch_us(ts) >= {lo} AND epoch_us(ts) < {hi}"
        ).fetchone()
        # the PPPoE session state is carried from records before the window (load_cube)
        ppp = con.execute(
            "SELECT count(*), sum(hash(entity_id, ts, type)) FROM events "
            f"WHERE type IN {PPP_TYPES!r} AND epoch_us(ts) < {lo}"
        ).fetchone()
        key = (row, ev) if not ppp[0] else (row, ev, ppp)  # unchanged without records
    return hashlib.sha256(repr(key).encode()).hexdigest()[:24]


def feature_dates(run: Path | str) -> dict[int, str]:
    """Every date of a run's SILVER span (days since the epoch) → digest of its inputs."""
    con = connect(run)
    try:
        lo, hi = telemetry_span_us(con)
        days = range(lo // _DAY_US, hi // _DAY_US + 1)
        return {d: _inputs_digest(con, d * _DAY_US, LOOKBACK_DAYS) for d in days}
    finally:
        con.close()


def feature_date_is_current(folder: Path, digest: str) -> bool:
    """Whether ``folder`` (``date=YYYY-MM-DD``) holds features computed from ``digest``."""
    stamp = folder / "inputs.sha"
    return stamp.exists() and stamp.read_text() == digest and (folder / "data.parquet").exists()


def write_feature_date(folder: Path, frame: pd.DataFrame, digest: str) -> None:
    """Write one date's features (atomically) and the digest of their inputs beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".data.parquet.tmp-{os.getpid()}-{id(frame)}"
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, folder / "data.parquet")
    (folder / "inputs.sha").write_text(digest)


def materialize_features(
    run: Path | str, every_minutes: int = FEATURE_EVERY_MINUTES, progress: bool = False
) -> dict[str, int]:
    """Compute features for every date of the run that is new or whose inputs changed.

    Each date is written to ``lake/gold/features/date=YYYY-MM-DD/data.parquet``
    (atomically), with a digest of its inputs beside it; dates whose digest is unchanged
    are skipped, so a second call, or a call after new data arrived, computes only what
    is needed and gives the same values as a full recompute.

    Returns
    -------
    dict
        ``{"dates_computed": n, "dates_unchanged": m, "rows": total_rows}``.
    """
    run = Path(run)
    digests = feature_dates(run)
    days = list(digests)
    out_root = features_dir(run)
    computed = unchanged = rows = 0
    iterator = list(days)
    if progress:
        from rich.progress import track

        iterator = track(iterator, description="features", transient=True)
    for d in iterator:
        day = pd.Timestamp(d * _DAY_US, unit="us", tz="UTC")
        folder = out_root / f"date={day:%Y-%m-%d}"
        if feature_date_is_current(folder, digests[d]):
            unchanged += 1
            rows += pd.read_parquet(folder / "data.parquet", columns=["ts"]).shape[0]
            continue
        frame = feature_frame(
            run, start=day, end=day + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1),
            every_minutes=every_minutes,
        )  # fmt: skip
        write_feature_date(folder, frame, digests[d])
        computed += 1
        rows += len(frame)
    return {"dates_computed": computed, "dates_unchanged": unchanged, "rows": rows}
