"""The autopilot's visits and what became of them, against the reactive operation.

For docs/autopilot-results.md "Field service follow-up: repeat visits in the simulator" (the
follow-up itself: docs/autopilot.md "Field service follow-up"): on each scenario and seed, the
reactive operation (:func:`simulator.backtest.run_policy`) and the autopilot with the
rule scorer (:class:`simulator.backtest.BacktestWorld`, to read its service orders), each
seeded from the seed alone (common random numbers). Prints one JSON line per cell (the
KPIs, the autopilot's orders counted by status and closure code, ONUs with more than one
autopilot order) and a summary per scenario::

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/revisit_visits.py \\
        --scenarios unseen_8x4,unseen_4x32 --seeds 1,2 --days 4 --json revisit.json

Run it on two commits and compare the JSON files (``--no-reactive`` skips the reactive
runs, which no autopilot change moves; ``--call-ahead-reach 0`` runs the autopilot
without call-aheads, so that its visits to a dying gasp can find the customer absent).
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
from pathlib import Path
from typing import Any

__all__ = ["KEYS", "autopilot_costs", "main", "run_cell", "summary"]

#: KPIs kept per run.
KEYS = ("visits", "mttr_hours", "net_savings_brl", "total_cost_brl", "safety_violations",
        "no_fault_found_share", "call_aheads")  # fmt: skip


def autopilot_costs(scenario: Any, call_ahead_reach_prob: float) -> Any:
    """The backtest's cost model of ``scenario`` (as :meth:`BacktestWorld.build
    <simulator.backtest.BacktestWorld.build>` makes it) with another call-ahead reach
    probability (0: visits to a dying gasp go without a call). [-]"""
    from guardian_lib.decision.costs import CostModel
    from guardian_lib.decision.settings import AutopilotSettings

    econ = scenario.economics
    return CostModel(
        cost_per_visit_brl=AutopilotSettings().cost_per_visit,
        call_cost_brl=econ.call_cost_brl,
        monthly_fee_brl=econ.monthly_fee_brl["residential"],
        reboot_fix_prob=scenario.faults.cpe_hang_reboot_fix_prob,
        call_ahead_reach_prob=call_ahead_reach_prob,
    )


def run_cell(scenario: Any, seed: int, reactive: bool = True, costs: Any = None) -> dict[str, Any]:
    """One scenario and seed: the KPIs of both policies and the autopilot's orders
    (``costs``: the autopilot's :class:`~guardian_lib.decision.costs.CostModel`, default
    the backtest's)."""
    from simulator.backtest import BacktestWorld, run_policy

    cell: dict[str, Any] = {}
    if reactive:
        re = run_policy(scenario, "reactive", seed)
        cell["reactive"] = {c: re.get(c) for c in KEYS}
    world = BacktestWorld.build(scenario, "autopilot", seed, costs=costs)
    world.sim.run()
    k = world.close()
    orders = [o for o in world.sim.ops.orders if o.opened_by == "autopilot"]
    outcomes = collections.Counter((o.status, o.outcome) for o in orders)
    per_onu = collections.Counter(o.onu_row for o in orders)
    cell["autopilot"] = {c: k.get(c) for c in KEYS}
    cell["orders"] = {f"{s}/{o}": n for (s, o), n in sorted(outcomes.items(), key=str)}
    cell["onus_with_2plus_orders"] = sum(1 for n in per_onu.values() if n > 1)
    cell["decisions"] = k.get("decisions")
    return cell


def summary(cells: dict[str, dict[str, Any]], name: str) -> dict[str, float]:
    """Totals over the seeds of one scenario: visits, share avoided [%], ratio of the
    mean MTTRs [-], mean net savings and mean saving vs reactive per run [R$], safety
    violations."""
    runs = [c for k, c in cells.items() if k.startswith(f"{name}/")]
    out = {"autopilot_visits": sum(c["autopilot"]["visits"] for c in runs),
           "net_savings_brl": statistics.mean(c["autopilot"]["net_savings_brl"] for c in runs),
           "safety_violations": sum(c["autopilot"]["safety_violations"] for c in runs)}  # fmt: skip
    if all("reactive" in c for c in runs):
        rv = sum(c["reactive"]["visits"] for c in runs)
        out["reactive_visits"] = rv
        out["visits_avoided_pct"] = 100.0 * (rv - out["autopilot_visits"]) / rv if rv else 0.0
        out["mttr_ratio"] = statistics.mean(c["autopilot"]["mttr_hours"] for c in runs) / (
            statistics.mean(c["reactive"]["mttr_hours"] for c in runs)
        )
        out["saved_vs_reactive_brl"] = statistics.mean(
            c["reactive"]["total_cost_brl"] - c["autopilot"]["total_cost_brl"] for c in runs
        )
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line (see the module docstring)."""
    from simulator.scenario import load_scenario

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default="unseen_8x4,unseen_4x32")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--days", type=float, default=4.0)
    ap.add_argument("--no-reactive", action="store_true")
    ap.add_argument(
        "--call-ahead-reach",
        type=float,
        default=None,
        help="the autopilot's call_ahead_reach_prob (0: no call-ahead)",
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    names = args.scenarios.split(",")
    cells: dict[str, dict[str, Any]] = {}
    for name in names:
        scenario = load_scenario(name, days=args.days)
        costs = None
        if args.call_ahead_reach is not None:
            costs = autopilot_costs(scenario, args.call_ahead_reach)
        for seed in (int(s) for s in args.seeds.split(",")):
            cells[f"{name}/s{seed}"] = cell = run_cell(scenario, seed, not args.no_reactive,
                                                       costs)  # fmt: skip
            print(name, seed, json.dumps(cell, default=str), flush=True)
    result = {"cells": cells, "summary": {n: summary(cells, n) for n in names}}
    print(json.dumps(result["summary"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
