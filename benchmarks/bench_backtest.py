"""Benchmark: simulated days per wall-clock second of the closed-loop backtest.

Runs ``small`` (about 2,000 ONUs) with each policy in the loop, one after the other in
this process, and prints one JSON line per policy plus a summary table::

    .venv/bin/python benchmarks/bench_backtest.py [--days 2] [--every-minutes 15]
        [--policies reactive,rules,autopilot,oracle] [--seed 7]
        [--models champion [--full-every 1,4]]   # --full-every defaults to 4, as the backtest

``reactive`` is the simulator alone (its built-in call centre) and is the ceiling; the
other policies add the observer, scorer, policy, safety checks and audit every
``--every-minutes``. With ``--models ALIAS`` the registered bundle is also run as the
autopilot's scorer (rows ``autopilot-ml/fN``), once per value of ``--full-every``
(:class:`guardian_lib.models.OnlineScorer`: 1 predicts the whole fleet at every
decision; N > 1 only every N-th decision and the rows that can matter in between).
"""

from __future__ import annotations

import argparse
import json
import time

from guardian_lib.models.online import RISK_EVERY_ROUNDS
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
    ap.add_argument("--models", default=None, help="registry alias of an ML bundle")
    ap.add_argument(
        "--full-every",
        default=str(RISK_EVERY_ROUNDS),
        help="comma-separated OnlineScorer.full_every (default: the backtest's and operate's)",
    )
    args = ap.parse_args()
    sc = load_scenario(args.scenario, days=args.days)
    runs: list[tuple[str, str, object]] = [(p, p, None) for p in args.policies.split(",")]
    if args.models:
        from guardian_lib.models.online import ModelScorer
        from guardian_lib.models.registry import load_bundle

        bundle = load_bundle(args.models)
        for fe in (int(v) for v in args.full_every.split(",")):
            runs.append((f"autopilot-ml/f{fe}", "autopilot", ModelScorer(bundle, full_every=fe)))
    rows = []
    for label, pol, scorer in runs:
        t0 = time.perf_counter()
        t_cpu = time.process_time()
        k = run_policy(sc, pol, args.seed, every_minutes=args.every_minutes, scorer=scorer)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - t_cpu
        row = {
            "policy": label,
            "scenario": sc.name,
            "days": args.days,
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "sim_days_per_wall_s": round(args.days / wall, 3),
            "sim_days_per_cpu_s": round(args.days / cpu, 3),
            "decisions": k["decisions"],
            "visits": k["visits"],
            "reboots": k["reboots"],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{'policy':<16} {'sim days / wall s':>18} {'sim days / CPU s':>17} {'decisions':>10}")
    for r in rows:
        print(
            f"{r['policy']:<16} {r['sim_days_per_wall_s']:>18.3f} "
            f"{r['sim_days_per_cpu_s']:>17.3f} {r['decisions']:>10}"
        )


if __name__ == "__main__":
    main()
