"""Benchmark: telemetry rows/s end to end (simulate + write Parquet) and peak memory.

Runs each case in a fresh subprocess so that peak RSS is that case's own:

* ``small``  (about 2,000 ONUs × 7 days)
* 20,000 ONUs × 2 days and × 7 days (peak memory must not grow with the days)

Usage::

    .venv/bin/python benchmarks/bench_simulate.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from simulator.scenario import load_scenario
from simulator.output import simulate_to_dir
name, out = sys.argv[1], sys.argv[5]
onus_per_pon, olts, days = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sc = load_scenario(name, days=days)
if onus_per_pon:
    data = sc.model_dump()
    data["topology"]["onus_per_pon_min"] = data["topology"]["onus_per_pon_max"] = onus_per_pon
    data["topology"]["boards_per_olt"] = 8
    data["topology"]["pons_per_board"] = 16
    data["topology"]["regions"] = data["topology"]["regions"][:1]
    data["topology"]["regions"][0]["olts"] = olts
    sc = load_scenario(data)
t0 = time.perf_counter()
run = simulate_to_dir(sc, Path(out), overwrite=True)
elapsed = time.perf_counter() - t0
rows = json.loads((run / "run.json").read_text())
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "rows": rows["rows"]["telemetry"],
                  "n_onus": rows["n_onus"], "days": days, "peak_rss_mb": peak_mb}))
"""


def run_case(label: str, name: str, onus_per_pon: int, olts: int, days: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                name,
                str(onus_per_pon),
                str(olts),
                str(days),
                tmp + "/run",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    rate = out["rows"] / out["seconds"]
    per_day = out["seconds"] / out["days"]
    print(
        f"{label:<28} {out['n_onus']:>7,} ONUs × {out['days']:>4g} d: {out['rows']:>12,} rows "
        f"in {out['seconds']:6.1f} s = {rate / 1e6:5.2f} M rows/s "
        f"({per_day:5.2f} s per simulated day), peak RSS {out['peak_rss_mb']:7.0f} MB"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small scenario only")
    args = parser.parse_args()
    t0 = time.perf_counter()
    run_case("small", "small", 0, 0, 7)
    if not args.quick:
        # 20,480 ONUs: 10 OLTs × 8 boards × 16 PONs × 16 ONUs.
        a = run_case("20k ONUs, 2 days", "small", 16, 10, 2)
        b = run_case("20k ONUs, 7 days", "small", 16, 10, 7)
        growth = b["peak_rss_mb"] / a["peak_rss_mb"]
        print(f"peak RSS 7 d / 2 d = {growth:.2f} (flat in days when close to 1)")
    print(f"total benchmark time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
