"""Where a policy's impact hours come from: each impact episode joined to the truth.

Runs one policy in the closed-loop backtest (:class:`simulator.backtest.BacktestWorld`,
policy every 15 min) and gives every service-impact episode of the run to the
simulator's fault on that ONU with the largest overlap in time (evaluation only;
``none`` when no fault overlaps), split into outage and degraded hours. Prints one JSON
line per policy with the hours per fault kind, the run's total cost and its parts::

    .venv/bin/python benchmarks/impact_breakdown.py --scenario unseen_4x32 --seed 2 \
        --policies rules,autopilot,oracle
"""

from __future__ import annotations

import argparse
import collections
import json
from typing import Any

__all__ = ["impact_hours_by_kind", "main"]

_KPIS = ("total_cost_brl", "churn_cost_brl", "sla_credits_brl", "visits", "calls", "reboots",
         "wifi_changes", "deferred_repairs", "impact_hours")  # fmt: skip


def impact_hours_by_kind(sim, episodes) -> dict[str, float]:
    """Impact hours per ``<fault kind>:<out|deg>`` (largest overlap wins). [h]

    Parameters
    ----------
    sim : simulator.engine.Simulation
        The finished simulation (its faults are the truth).
    episodes : pandas.DataFrame
        :meth:`guardian_lib.episodes.EpisodeTracker.episodes` of the run.

    Returns
    -------
    dict
        Hours of impact per key, sorted by key. [h]
    """
    row_of = {o: i for i, o in enumerate(sim.topology.onus["onu_id"])}
    t0 = sim.start.timestamp()
    by_row = collections.defaultdict(list)
    for f in sim.faults:
        for r in f.onus.tolist():
            by_row[r].append(f)
    hours: collections.Counter = collections.Counter()
    for e in episodes.itertuples():
        s, t = e.start_at.timestamp() - t0, e.end_at.timestamp() - t0
        best, most = "none", 0.0
        for f in by_row[row_of[e.onu_id]]:
            end = f.end_s if f.end_s is not None else float("inf")
            overlap = min(t, end) - max(s, f.start_s)
            if overlap > most:
                best, most = f.kind, overlap
        hours[f"{best}:{'out' if e.outage else 'deg'}"] += e.duration_min / 60.0
    return {k: round(v, 1) for k, v in sorted(hours.items())}


def main() -> None:
    """Parse arguments, run each policy and print its breakdown."""
    from simulator.backtest import BacktestWorld
    from simulator.scenario import load_scenario

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="unseen_4x32")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--policies", default="rules,autopilot,oracle")
    args = ap.parse_args()
    sc = load_scenario(args.scenario, days=args.days)
    for pol in args.policies.split(","):
        world = BacktestWorld.build(sc, pol, args.seed)
        world.sim.run()
        episodes = world.loop.tracker.episodes(until=world.sim.ts_of(sc.horizon_s))
        k = world.close()
        out: dict[str, Any] = {"scenario": args.scenario, "seed": args.seed, "policy": pol}
        out.update({key: round(float(k[key]), 1) for key in _KPIS})
        out["hours"] = impact_hours_by_kind(world.sim, episodes)
        print(json.dumps(out))


if __name__ == "__main__":
    main()
