"""Benchmark: the SILVER step of one ``guardian operate`` cycle, early and late in a day.

A 50k-ONU fleet polled every 5 minutes adds one RAW telemetry file of 50,000 rows and one
RAW events file (``--events`` rows) per cycle. This runs
:func:`guardian_lib.silver.update_silver` once per cycle, as operate does, from midnight
until the first cycle that closes the day (``CLOSE_AFTER_S`` after midnight), and reports:

* the cycle time at each of ``--hours`` (median of ``--reps`` cycles without a
  compaction): it should not grow through the day;
* the cycles that compacted ``MAX_PARTS`` part files of the open day (median, max);
* the cycle that closed the day: its part files compacted into one ``data-….parquet``;
* with ``--before``: the full rebuild of the date at each of ``--hours``, as every cycle
  did before the incremental update (``ingest_run``, its per-file date cache dropped: the
  old code read every RAW file's timestamps each cycle);
* seconds per cycle, wall and CPU (all threads of the process), median and mean over the
  cycles without a compaction: what each ``guardian operate`` cycle pays. ``--cycles N``
  stops after ``N`` cycles (a quick figure for a small fleet, e.g. ``--onus 64``); the
  hour table and the day's closing are then left out.

The lake is synthetic (seeded), written with the poller's RAW schemas.

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_silver.py [--onus 50000] [--reps 3]
        [--hours 1 20] [--events 200] [--before] [--cycles N]
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

from guardian_lib import silver
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


def write_events(run: Path, k: int, n: int, rng: np.random.Generator) -> None:
    """The RAW events file of the ``k``-th cycle (``n`` alarms of random ONUs)."""
    ts = DAY + k * TICK
    frame = pd.DataFrame({
        "ts": ts + pd.to_timedelta(rng.integers(0, 300, n), unit="s"),
        "entity_id": [f"HWTC{i:08X}" for i in rng.integers(0, 50_000, n)],
        "entity_type": "onu", "type": rng.choice(["LOS", "DYING_GASP", "LOW_RX"], n),
        "severity": "major", "source": "snmp", "payload": "{}",
        "received_at": ts + pd.Timedelta(seconds=30) + pd.to_timedelta(np.arange(n), unit="us"),
    })  # fmt: skip
    out = raw_dir(run, "events") / f"date={DAY:%Y-%m-%d}" / f"ev-{k:04d}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out)


def _drop_date_cache(run: Path) -> None:
    con = duckdb.connect(str(warehouse_path(run)))
    con.execute(f"DROP TABLE IF EXISTS {RAW_FILE_DATES}")
    con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onus", type=int, default=50_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--hours", type=int, nargs="+", default=[1, 20])
    ap.add_argument("--events", type=int, default=200, help="RAW event rows per cycle")
    ap.add_argument("--before", action="store_true", help="also time the full rebuild")
    ap.add_argument("--cycles", type=int, default=None,
                    help="stop after this many cycles (default: until the day closes)")  # fmt: skip
    args = ap.parse_args()
    rng = np.random.default_rng(20261204)
    onus = np.array([f"HWTC{i:08X}" for i in range(args.onus)])
    per_day = 24 * 60 // 5
    close_k = per_day + silver.CLOSE_AFTER_S // 300  # first cycle that closes the day
    timed = {h * 12 + r for h in args.hours for r in range(args.reps)}
    with tempfile.TemporaryDirectory(prefix="bench-silver-") as tmp:
        run = Path(tmp) / "run"
        print(f"{args.onus} ONUs: one RAW file of {args.onus} rows and one of "
              f"{args.events} events per 5-minute cycle; MAX_PARTS={silver.MAX_PARTS}")  # fmt: skip
        cycles: dict[int, float] = {}
        part_compactions: list[float] = []
        before: dict[int, float] = {}
        closing = None
        wall: list[float] = []  # cycles without a compaction [s]
        cpu: list[float] = []
        last = close_k if args.cycles is None else min(close_k, args.cycles)
        for k in range(last + 1):
            write_tick(run, k, onus, rng)
            write_events(run, k, args.events, rng)
            if args.before and k in timed and k // 12 not in before:
                _drop_date_cache(run)
                t0 = time.perf_counter()
                ingest_run(run, grid_minutes=5)
                before[k // 12] = time.perf_counter() - t0
                write_tick(run, 10_000 + k, onus, rng)  # a new file for the timed update
            c0 = time.process_time()
            upd = update_silver(run)
            c1 = time.process_time() - c0
            if k == 0:
                continue
            if not upd.compacted:
                wall.append(upd.seconds)
                cpu.append(c1)
            assert upd.mode == "incremental", upd
            day = f"{DAY:%Y-%m-%d}"
            if day in upd.compacted and k == close_k:
                closing = upd.seconds
            elif upd.compacted:
                part_compactions.append(upd.seconds)
            elif k in timed:
                cycles[k] = upd.seconds
        print(f"seconds per cycle without compaction ({len(wall)} cycles): wall median "
              f"{statistics.median(wall):.3f} mean {statistics.mean(wall):.3f}; CPU median "
              f"{statistics.median(cpu):.3f} mean {statistics.mean(cpu):.3f}")  # fmt: skip
        if args.cycles is not None:
            return
        print(f"{'hour':>4} {'SILVER rows':>11} {'cycle [s]':>9}"
              + (f" {'full rebuild [s]':>16}" if args.before else ""))  # fmt: skip
        for h in args.hours:
            got = [v for k, v in cycles.items() if k // 12 == h]
            line = f"{h:>4} {h * 12 * args.onus:>11,} {statistics.median(got):>9.2f}"
            if args.before:
                line += f" {before[h]:>16.2f}"
            print(line)
        if part_compactions:
            print(f"cycles compacting {silver.MAX_PARTS}+ parts (of the open day or events): "
                  f"{len(part_compactions)}, median {statistics.median(part_compactions):.2f} s, "
                  f"max {max(part_compactions):.2f} s")  # fmt: skip
        print(f"cycle closing the day ({per_day * args.onus:,} rows into one file): "
              f"{closing if closing is None else round(closing, 2)} s")  # fmt: skip


if __name__ == "__main__":
    main()
