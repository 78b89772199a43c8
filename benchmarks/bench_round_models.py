"""Benchmark: CPU milliseconds the ML models take per decision round of the closed loop.

Runs the autopilot with a registered bundle as its scorer on ``small`` for ``--hours``
(policy every 15 min), keeps the feature rows of the last ``--rounds`` decision rounds,
then times ``ModelBundle.predict(features, explain=False)`` on them (what
``ModelScorer`` calls every round with ``full_every=1``), ``--repeat`` passes over the
kept rounds after one untimed pass. Prints one JSON line: the median and the smallest
mean over the passes, in CPU ms per round (``time.process_time``: other jobs on the
machine inflate wall time more than CPU time)::

    GUARDIAN_DATA_DIR=<registry> .venv/bin/python benchmarks/bench_round_models.py \\
        --models mixture [--hours 12] [--rounds 8] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    """Parse arguments, run the loop, time the models and print the figures."""
    from guardian_lib.models.online import ModelScorer, OnlineScorer
    from guardian_lib.models.registry import load_bundle
    from simulator.backtest import run_policy
    from simulator.scenario import load_scenario

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="champion", help="registry alias of an ML bundle")
    ap.add_argument("--scenario", default="small")
    ap.add_argument("--hours", type=float, default=12.0)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    bundle = load_bundle(args.models)
    kept: list = []
    scorer_call = OnlineScorer.__call__

    def keeping(self, snapshot=None):
        out = scorer_call(self, snapshot)
        kept.append(self.last_features)
        del kept[: -args.rounds]
        return out

    OnlineScorer.__call__ = keeping
    try:
        sc = load_scenario(args.scenario, days=args.hours / 24)
        run_policy(sc, "autopilot", args.seed, every_minutes=15, scorer=ModelScorer(bundle))
    finally:
        OnlineScorer.__call__ = scorer_call
    for features in kept:  # untimed: caches, compiled walks
        bundle.predict(features, explain=False)
    per_round = []
    for _ in range(args.repeat):
        t0 = time.process_time()
        for features in kept:
            bundle.predict(features, explain=False)
        per_round.append((time.process_time() - t0) / len(kept) * 1e3)
    row = {
        "scenario": args.scenario,
        "models": args.models,
        "rows": len(kept[-1]),
        "rounds": len(kept),
        "predict_cpu_ms_median": round(statistics.median(per_round), 2),
        "predict_cpu_ms_min": round(min(per_round), 2),
    }
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
