"""Benchmark: the SILVER step of one ``guardian operate`` cycle, early and late in a day.

A 50k-ONU fleet polled every 5 minutes adds one RAW file of 50,000 rows per cycle. For a
cycle at hour 1 (12 files of the day already in RAW) and at hour 20 (240 files, 12 M
rows) this times, on the same lake:

* **before**: the full rebuild of the date from all its RAW files, as every cycle did
  before the incremental update (``ingest_run``, with its per-file date cache dropped:
  the old code read every RAW file's timestamps each cycle);
* **after**: :func:`guardian_lib.silver.update_silver` merging the new file only.

Each figure is the median of ``--reps`` cycles (each adds a new file first). The lake is
synthetic (seeded), written with the poller's RAW schema.

Usage::

    .venv/bin/python benchmarks/bench_silver.py [--onus 50000] [--reps 3] [--hours 1 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from guardian_lib.ingest import RAW_FILE_DATES, RAW_TELEMETRY_SCHEMA, ingest_run
from guardian_lib.silver import update_silver
from guardian_lib.warehouse import raw_dir, warehouse_path

DAY = pd.Timestamp("2026-03-02T00:00:00Z")
TICK = pd.Timedelta(minutes=5)


def write_tick(run: Path, k: int, onus: np.ndarray, rng: np.random.Generator) -> None:
    """The RAW file of the ``k``-th poll of the day."""
    n = len(onus)
    ts = DAY + k * TICK
    frame = pd.DataFrame({
        "ts": ts + pd.to_timedelta(rng.integers(-20, 20, n), unit="s"), "onu_id": onus,
        "rx_dbm": rng.normal(-20, 2, n), "tx_dbm": rng.normal(2, 0.3, n),
        "olt_rx_dbm": rng.normal(-24, 1, n), "snr_db": rng.normal(30, 2, n),
        "ber": rng.uniform(0, 1e-9, n), "crc_errors": rng.integers(0, 5, n),
        "latency_ms": rng.uniform(1, 5, n), "loss_pct": np.zeros(n), "online": True,
        "uptime_s": rng.integers(0, 10**6, n), "source": "snmp",
        "received_at": ts + pd.Timedelta(seconds=30) + pd.to_timedelta(np.arange(n), unit="us"),
    })  # fmt: skip
    out = raw_dir(run, "telemetry") / f"date={DAY:%Y-%m-%d}" / f"snmp-{k:04d}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, schema=RAW_TELEMETRY_SCHEMA), out)


def _drop_date_cache(run: Path) -> None:
    con = duckdb.connect(str(warehouse_path(run)))
    con.execute(f"DROP TABLE IF EXISTS {RAW_FILE_DATES}")
    con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onus", type=int, default=50_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--hours", type=int, nargs="+", default=[1, 20])
    args = ap.parse_args()
    rng = np.random.default_rng(20261204)
    onus = np.array([f"HWTC{i:08X}" for i in range(args.onus)])
    with tempfile.TemporaryDirectory(prefix="bench-silver-") as tmp:
        run = Path(tmp) / "run"
        k = 0
        print(f"{args.onus} ONUs, one RAW file of {args.onus} rows per 5-minute cycle")
        print(f"{'hour':>4} {'RAW files':>9} {'SILVER rows':>11} {'before [s]':>10} "
              f"{'after [s]':>9} {'speed-up':>8}")  # fmt: skip
        for hour in args.hours:
            while k < hour * 12:
                write_tick(run, k, onus, rng)
                k += 1
            update_silver(run)  # catch up (not timed)
            before, after = [], []
            for _ in range(args.reps):
                write_tick(run, k, onus, rng)
                k += 1
                _drop_date_cache(run)
                t0 = time.perf_counter()
                ingest_run(run, grid_minutes=5)
                before.append(time.perf_counter() - t0)
                write_tick(run, k, onus, rng)
                k += 1
                upd = update_silver(run)
                assert upd.mode == "incremental", upd
                after.append(upd.seconds)
            b, a = statistics.median(before), statistics.median(after)
            print(f"{hour:>4} {k:>9} {k * args.onus:>11,} {b:>10.2f} {a:>9.2f} {b / a:>7.0f}x")


if __name__ == "__main__":
    main()
