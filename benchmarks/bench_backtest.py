"""Benchmark: simulated days per wall-clock second of the closed-loop backtest.

Runs ``small`` (about 2,000 ONUs) with each policy in the loop, one after the other in
this process, and prints one JSON line per policy plus a summary table::

    .venv/bin/python benchmarks/bench_backtest.py [--days 2] [--every-minutes 15]
        [--policies reactive,rules,autopilot,oracle] [--seed 7]

``reactive`` is the simulator alone (its built-in call centre) and is the ceiling; the
other policies add the observer, scorer, policy, safety checks and audit every
``--every-minutes``.
"""

from __future__ import annotations

import argparse
import json
import time

from simulator.backtest import POLICIES, run_policy
from simulator.scenario import load_scenario


def main() -> None:
    """Parse arguments, run each policy and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="small")
    ap.add_argument("--days", type=float, default=2.0)
    ap.add_argument("--every-minutes", type=int, default=15)
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    sc = load_scenario(args.scenario, days=args.days)
    rows = []
    for pol in args.policies.split(","):
        t0 = time.perf_counter()
        t_cpu = time.process_time()
        k = run_policy(sc, pol, args.seed, every_minutes=args.every_minutes)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - t_cpu
        row = {
            "policy": pol,
            "scenario": sc.name,
            "days": args.days,
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "sim_days_per_wall_s": round(args.days / wall, 3),
            "sim_days_per_cpu_s": round(args.days / cpu, 3),
            "decisions": k["decisions"],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{'policy':<10} {'sim days / wall s':>18} {'sim days / CPU s':>17} {'decisions':>10}")
    for r in rows:
        print(
            f"{r['policy']:<10} {r['sim_days_per_wall_s']:>18.3f} "
            f"{r['sim_days_per_cpu_s']:>17.3f} {r['decisions']:>10}"
        )


if __name__ == "__main__":
    main()
