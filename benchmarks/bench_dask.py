"""Benchmark: scale-out on Dask — sharded simulation and a sweep, serial vs 2 workers.

Simulation: a fleet of ``--onus`` ONUs in ``--regions`` regions (the unit of sharding)
for ``--days`` days, three ways, each case in a fresh subprocess:

* ``unsharded``: today's single-process engine (:func:`simulate_to_dir`), for reference;
* ``serial``: the sharded engine, all regions in one process (``--shards 1``);
* ``dask-2``: the sharded engine on a LocalCluster of 2 worker processes (``--shards 2``).

Reported: wall time [s], telemetry rows/s, peak RSS [MB] and CPU time [s] — of the
process for the first two, of each worker (RSS sampled every 0.2 s) for ``dask-2``. On
a shared machine the CPU times tell the work from the waiting for a core.

Features (``--features``): a run of ``--feature-onus`` ONUs × ``--feature-days`` days,
simulated and ingested once, then ``materialize_features`` in one process vs
``materialize_features_distributed`` on a LocalCluster of 2 worker processes (one task
per date × OLT group, plus one joining task per date): feature rows/s, wall, CPU, peak RSS.

Sweep: ``4 variants × --seeds seeds × rules`` on the tiny scenario (``--sweep-days``),
serial in one process vs a LocalCluster of 2 workers (wall time, cells/min).

Usage::

    .venv/bin/python benchmarks/bench_dask.py --onus 50000 --days 1 [--skip-sweep]
    .venv/bin/python benchmarks/bench_dask.py --skip-sim --skip-sweep --features
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, sys, threading, time
from pathlib import Path
import psutil
from simulator.scenario import load_scenario
mode, onus, regions, days, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), Path(sys.argv[5])
boards, pons = 8, 16
olts_per_region = -(-onus // (regions * boards * pons * 64))
per_pon = max(1, round(onus / (regions * olts_per_region * boards * pons)))
data = load_scenario("city", days=days, allow_large=True).model_dump()
region0 = data["topology"]["regions"][0]
data["topology"]["regions"] = [
    dict(region0, name=f"R{i + 1}", olts=olts_per_region) for i in range(regions)
]
data["topology"].update(boards_per_olt=boards, pons_per_board=pons,
                        onus_per_pon_min=per_pon, onus_per_pon_max=per_pon)
sc = load_scenario(data, allow_large=True)
peaks = {}
stop = threading.Event()

def sample(pids):
    while not stop.is_set():
        for pid in pids:
            try:
                rss = psutil.Process(pid).memory_info().rss
            except psutil.Error:
                continue
            peaks[pid] = max(peaks.get(pid, 0), rss)
        time.sleep(0.2)

def cpu_s(pids):
    # user + system CPU seconds of each process (its threads included)
    out = {}
    for pid in pids:
        t = psutil.Process(pid).cpu_times()
        out[pid] = t.user + t.system
    return out

cpu0 = cpu_s([os.getpid()])
t0 = time.perf_counter()
if mode == "unsharded":
    from simulator.output import simulate_to_dir
    pids = [os.getpid()]
    th = threading.Thread(target=sample, args=(pids,)); th.start()
    t0 = time.perf_counter()
    run = simulate_to_dir(sc, out)
elif mode == "serial":
    from simulator.sharded import simulate_sharded
    pids = [os.getpid()]
    th = threading.Thread(target=sample, args=(pids,)); th.start()
    t0 = time.perf_counter()
    run = simulate_sharded(sc, out, 1)
else:
    from guardian_lib.cluster import open_client
    from simulator.sharded import simulate_sharded
    with open_client(n_workers=2) as client:
        pids = list(client.run(os.getpid).values())
        th = threading.Thread(target=sample, args=(pids,)); th.start()
        cpu0 = cpu_s(pids)
        t0 = time.perf_counter()
        run = simulate_sharded(sc, out, 2, client=client)
        elapsed = time.perf_counter() - t0
        cpu = [c1 - cpu0[p] for p, c1 in cpu_s(pids).items()]
if mode != "dask-2":
    elapsed = time.perf_counter() - t0
stop.set(); th.join()
cpu = [c1 - cpu0.get(p, 0.0) for p, c1 in cpu_s(pids).items()] if mode != "dask-2" else cpu
m = json.loads((run / "run.json").read_text())
print(json.dumps({"mode": mode, "seconds": round(elapsed, 1), "rows": m["rows"]["telemetry"],
                  "n_onus": m["n_onus"], "days": days,
                  "peak_rss_mb": [round(peaks[p] / 2**20) for p in pids if p in peaks],
                  "cpu_s": [round(c, 1) for c in cpu]}))
"""

PREPARE_CHILD = (
    CHILD.split("cpu0 = cpu_s")[0]
    + r"""
# Regions half a degree apart: no shared H3 cell, so each region is its own OLT group
# (the unit of a feature task); copies of one region would make the fleet one group.
for i, region in enumerate(data["topology"]["regions"]):
    region["cities"] = [dict(c, lat=c["lat"] + 0.5 * i) for c in region["cities"]]
sc = load_scenario(data, allow_large=True)
from guardian_lib.ingest import ingest_run
from simulator.sharded import simulate_sharded
run = simulate_sharded(sc, out, 1)
ingest_run(run)
m = json.loads((run / "run.json").read_text())
print(json.dumps({"n_onus": m["n_onus"], "telemetry_rows": m["rows"]["telemetry"]}))
"""
)

FEATURES_CHILD = r"""
import json, os, shutil, sys, threading, time
from pathlib import Path
import psutil
from guardian_lib.features import features_dir, materialize_features, materialize_features_distributed
mode, run, every = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
shutil.rmtree(features_dir(run), ignore_errors=True)
peaks, stop = {}, threading.Event()

def sample(pids):
    while not stop.is_set():
        for pid in pids:
            try:
                peaks[pid] = max(peaks.get(pid, 0), psutil.Process(pid).memory_info().rss)
            except psutil.Error:
                pass
        time.sleep(0.2)

def cpu_s(pids):
    return {p: sum(psutil.Process(p).cpu_times()[:2]) for p in pids}

if mode == "serial":
    pids = [os.getpid()]
    th = threading.Thread(target=sample, args=(pids,)); th.start()
    cpu0, t0 = cpu_s(pids), time.perf_counter()
    res = materialize_features(run, every_minutes=every)
    elapsed, cpu1 = time.perf_counter() - t0, cpu_s(pids)
else:
    from guardian_lib.cluster import open_client
    with open_client(n_workers=2) as client:
        pids = list(client.run(os.getpid).values())
        th = threading.Thread(target=sample, args=(pids,)); th.start()
        cpu0, t0 = cpu_s(pids), time.perf_counter()
        res = materialize_features_distributed(run, client, every_minutes=every)
        elapsed, cpu1 = time.perf_counter() - t0, cpu_s(pids)
stop.set(); th.join()
print(json.dumps({"features": mode, "seconds": round(elapsed, 1), "rows": res["rows"],
                  "rows_per_s": round(res["rows"] / elapsed),
                  "peak_rss_mb": [round(peaks[p] / 2**20) for p in pids if p in peaks],
                  "cpu_s": [round(cpu1[p] - cpu0[p], 1) for p in pids]}))
"""

SWEEP_CHILD = r"""
import json, sys, time
from pathlib import Path
import yaml
from simulator.sweep import load_sweep, run_sweep
mode, seeds, days, tmp = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4])
spec = {"name": "bench", "scenario": "tiny", "days": days,
        "grid": {"customers.background_calls_per_year": [0.0, 10.0, 20.0, 40.0]},
        "seeds": list(range(1, seeds + 1)), "policies": ["rules"]}
(tmp / "s.yaml").write_text(yaml.safe_dump(spec))
sweep, sc = load_sweep(tmp / "s.yaml")
t0 = time.perf_counter()
if mode == "serial":
    res = run_sweep(sweep, sc, tmp / "out", mlflow=False)
else:
    from guardian_lib.cluster import open_client
    with open_client(n_workers=2) as client:
        t0 = time.perf_counter()
        res = run_sweep(sweep, sc, tmp / "out", client=client, mlflow=False)
elapsed = time.perf_counter() - t0
print(json.dumps({"mode": mode, "cells": res["cells"], "seconds": round(elapsed, 1)}))
"""


def _child(code: str, args: list[str]) -> dict:
    res = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=3600
    )
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run the cases and print one JSON line each, then a summary."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--onus", type=int, default=50_000)
    p.add_argument("--regions", type=int, default=4)
    p.add_argument("--days", type=float, default=1.0)
    p.add_argument("--modes", default="unsharded,serial,dask-2")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--sweep-days", type=float, default=2.0)
    p.add_argument("--skip-sweep", action="store_true")
    p.add_argument("--skip-sim", action="store_true")
    p.add_argument("--features", action="store_true", help="Also time the feature store.")
    p.add_argument("--feature-onus", type=int, default=10_000)
    p.add_argument("--feature-regions", type=int, default=4)
    p.add_argument("--feature-days", type=float, default=2.0)
    p.add_argument("--feature-every", type=int, default=15, help="Feature spacing. [min]")
    a = p.parse_args()
    if not a.skip_sim:
        for mode in a.modes.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                r = _child(CHILD, [mode, str(a.onus), str(a.regions), str(a.days), f"{tmp}/run"])
            r["rows_per_s"] = round(r["rows"] / r["seconds"])
            print(json.dumps(r), flush=True)
    if a.features:
        with tempfile.TemporaryDirectory() as tmp:
            spec = [str(a.feature_onus), str(a.feature_regions), str(a.feature_days)]
            made = _child(PREPARE_CHILD, ["prepare", *spec, f"{tmp}/run"])
            print(json.dumps({"features_run": made}), flush=True)
            for mode in ("serial", "dask-2"):
                r = _child(FEATURES_CHILD, [mode, f"{tmp}/run", str(a.feature_every)])
                print(json.dumps(r), flush=True)
    if not a.skip_sweep:
        for mode in ("serial", "dask-2"):
            with tempfile.TemporaryDirectory() as tmp:
                r = _child(SWEEP_CHILD, [mode, str(a.seeds), str(a.sweep_days), tmp])
            r["cells_per_min"] = round(60 * r["cells"] / r["seconds"], 1)
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
