"""Features over the lake's partitions with Dask: one task per (date, OLT group).

A feature row depends on its ONU's own history and on its neighbours under the same
street box, PON, OLT and H3 geo cell. Box, PON and OLT neighbours share the OLT; a geo
cell may hold ONUs of two OLTs. So the ONUs are cut into **OLT groups**: the OLTs joined
by every geo cell they share (connected components). Inside a group every neighbour
of every ONU is present, and each date needs only its lookback, so a task computes
exactly what the single-process :func:`~guardian_lib.features.feature_frame` computes
for its rows, and holds one group × one date (+ lookback) in memory, never the fleet.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from guardian_lib.features._compute import group_index
from guardian_lib.features._store import (
    LOOKBACK_DAYS,
    feature_date_is_current,
    feature_dates,
    feature_frame,
    features_dir,
    telemetry_span_us,
    write_feature_date,
)
from guardian_lib.schema import FEATURE_EVERY_MINUTES, US_PER_S
from guardian_lib.warehouse import connect

__all__ = [
    "partition_features",
    "feature_tasks",
    "olt_partitions",
    "map_partitions",
    "distributed_feature_frame",
    "write_feature_partitions",
    "materialize_features_distributed",
]

_DAY_US = 86400 * US_PER_S


def olt_partitions(onus: pd.DataFrame) -> list[list[str]]:
    """ONU ids cut into OLT groups closed under every neighbour level.

    Parameters
    ----------
    onus : pandas.DataFrame
        Inventory with ``onu_id``, ``olt_id`` (or ``pon_id``), ``lat``, ``lon``.

    Returns
    -------
    list of list of str
        Sorted ONU ids per group; groups ordered by their first ONU id.
    """
    olt = group_index(onus, "olt")
    geo = group_index(onus, "geo")
    parent = list(range(int(olt.max()) + 1 if len(olt) else 0))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    first_olt_of_cell: dict[int, int] = {}
    for o, g in zip(olt.tolist(), geo.tolist(), strict=True):
        other = first_olt_of_cell.setdefault(g, o)
        ra, rb = find(o), find(other)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    root = np.array([find(o) for o in olt.tolist()], dtype=np.int64)
    ids = onus["onu_id"].astype(str).to_numpy()
    groups = [sorted(ids[root == r].tolist()) for r in np.unique(root)]
    return sorted(groups, key=lambda g: g[0])


def feature_tasks(
    run: Path | str,
) -> tuple[list[pd.Timestamp], list[list[str]], tuple[int, int]]:
    """The dates of a run's SILVER span, its OLT groups and the span (µs since the epoch)."""
    con = connect(run)
    try:
        lo, hi = telemetry_span_us(con)
        onus = con.execute("SELECT * FROM onus ORDER BY onu_id").df()
    finally:
        con.close()
    days = [
        pd.Timestamp(d * _DAY_US, unit="us", tz="UTC")
        for d in range(lo // _DAY_US, hi // _DAY_US + 1)
    ]
    return days, olt_partitions(onus), (lo, hi)


def partition_features(
    run: str, day: pd.Timestamp, onu_ids: list[str], every_minutes: int, span: tuple[int, int]
) -> pd.DataFrame:
    # The day, cut to the SILVER span as the whole-run frame is.
    start_us = max(int(day.value // 1000), span[0])
    end_us = min(int(day.value // 1000) + _DAY_US - 1, span[1])
    return feature_frame(
        run, start=pd.Timestamp(start_us, unit="us", tz="UTC"),
        end=pd.Timestamp(end_us, unit="us", tz="UTC"), every_minutes=every_minutes,
        lookback_days=LOOKBACK_DAYS, onu_ids=onu_ids,
    )  # fmt: skip


def _write_partition(
    run: str, day: pd.Timestamp, k: int, onu_ids: list[str], every_minutes: int, span, out: str
) -> int:
    frame = partition_features(run, day, onu_ids, every_minutes, span)
    folder = Path(out) / f"date={day:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".part-{k:04d}.parquet.tmp"
    frame.to_parquet(tmp, index=False)
    tmp.replace(folder / f"part-{k:04d}.parquet")  # atomic: a retried task rewrites it
    return len(frame)


def map_partitions(
    client,
    fn: Callable,
    run: Path | str,
    days: list,
    groups: list,
    *args,
    on_submit: Callable[[list], None] | None = None,
) -> list:
    """``fn(str(run), day, group, *args)`` as one Dask task per (date, OLT group), gathered.

    Tasks are impure (they read the run's files) and retried twice (a killed worker's
    task runs again); ``on_submit`` gets the futures (e.g. a progress bar).

    Returns
    -------
    list
        The results in (date, group) order.
    """
    futures = [
        client.submit(fn, str(run), day, g, *args, pure=False, retries=2)
        for day in days
        for g in groups
    ]
    if on_submit is not None:
        on_submit(futures)
    return client.gather(futures)


def distributed_feature_frame(
    run: Path | str,
    client,
    every_minutes: int = FEATURE_EVERY_MINUTES,
    on_submit: Callable[[list], None] | None = None,
) -> pd.DataFrame:
    """:func:`~guardian_lib.features.feature_frame` of the whole run, one task per (date, group).

    The result is gathered here (for checks and small runs); for big runs use
    :func:`write_feature_partitions`, which keeps every partition on its worker.

    Returns
    -------
    pandas.DataFrame
        Ordered by ``ts`` then ``onu_id``, as the single-process frame.
    """
    days, groups, span = feature_tasks(run)
    results = map_partitions(
        client, partition_features, run, days, groups, every_minutes, span, on_submit=on_submit
    )
    frames = [f for f in results if len(f)]
    if not frames:
        return feature_frame(run, every_minutes=every_minutes)
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["ts", "onu_id"], kind="stable").reset_index(drop=True)


def write_feature_partitions(
    run: Path | str,
    out: Path | str,
    client,
    every_minutes: int = FEATURE_EVERY_MINUTES,
    on_submit: Callable[[list], None] | None = None,
) -> int:
    """Write features as ``out/date=YYYY-MM-DD/part-KKKK.parquet`` (K: OLT group).

    Returns
    -------
    int
        Rows written. [-]
    """
    days, groups, span = feature_tasks(run)
    futures = [
        client.submit(
            _write_partition,
            str(run),
            day,
            k,
            g,
            every_minutes,
            span,
            str(out),
            pure=False,
            retries=2,
        )
        for day in days
        for k, g in enumerate(groups)
    ]
    if on_submit is not None:
        on_submit(futures)
    return int(sum(client.gather(futures)))


def _date_features(run: str, day: pd.Timestamp, onu_ids: list[str], every_minutes: int):
    # The same range as the serial materialization's (one calendar day).
    end = day + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return feature_frame(run, start=day, end=end, every_minutes=every_minutes, onu_ids=onu_ids)


def _write_date(folder: str, digest: str, *frames: pd.DataFrame) -> int:
    # One date of the fleet, ordered as the single-process frame (ts, then ONU).
    parts = [f for f in frames if len(f)]
    frame = (
        pd.concat(parts, ignore_index=True)
        .sort_values(["ts", "onu_id"], kind="stable")
        .reset_index(drop=True)
        if parts
        else frames[0]
    )
    write_feature_date(Path(folder), frame, digest)
    return len(frame)


def _rows_of(path: str) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def materialize_features_distributed(
    run: Path | str,
    client,
    every_minutes: int = FEATURE_EVERY_MINUTES,
    on_submit: Callable[[list], None] | None = None,
) -> dict[str, int]:
    """:func:`~guardian_lib.features.materialize_features` on Dask: the same files.

    Each date that is new or whose inputs changed is computed as one task per OLT
    group; a last task per date joins its groups in the single-process order and writes
    ``lake/gold/features/date=YYYY-MM-DD/data.parquet`` and ``inputs.sha`` (atomically),
    so every reader of the feature store works unchanged and a later serial call sees
    the dates as current. The joining task holds one date of the fleet's feature rows
    (as the serial command does); the group tasks hold one group × one date + lookback.

    Returns
    -------
    dict
        ``{"dates_computed": n, "dates_unchanged": m, "rows": total_rows}``.
    """
    run = Path(run)
    digests = feature_dates(run)
    out_root = features_dir(run)
    _days, groups, _span = feature_tasks(run)
    futures, unchanged_rows, computed = [], 0, 0
    for d, digest in digests.items():
        day = pd.Timestamp(d * _DAY_US, unit="us", tz="UTC")
        folder = out_root / f"date={day:%Y-%m-%d}"
        if feature_date_is_current(folder, digest):
            unchanged_rows += _rows_of(str(folder / "data.parquet"))
            continue
        parts = [
            client.submit(_date_features, str(run), day, g, every_minutes, pure=False, retries=2)
            for g in groups
        ]
        futures.append(
            client.submit(_write_date, str(folder), digest, *parts, pure=False, retries=2)
        )
        computed += 1
    if on_submit is not None and futures:
        on_submit(futures)
    rows = int(sum(client.gather(futures))) + unchanged_rows
    return {
        "dates_computed": computed,
        "dates_unchanged": len(digests) - computed,
        "rows": rows,
    }
