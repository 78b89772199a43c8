"""Hours dark before the visit, for every failed ONU power supply of a backtest.

A failed ONU power supply sends a dying gasp, like a customer switching off, but stays
dark until a technician replaces it. The scenarios have none by default
(``faults.hardware_power_supply_share`` 0); this benchmark turns a share of the hardware
failures into power-supply failures (and may raise their rate so that a week holds
enough of them), runs each policy in the closed-loop backtest (policy every 15 min) and
prints one JSON line per policy and seed: for each such fault its start, the hours it
stayed dark (to its visit, or to the end of the run: ``censored``), whether the customer
called, and the run's visits and cost::

    nice -n 10 .venv/bin/python benchmarks/psu_visits.py --scenario unseen_8x4 \\
        --seeds 1,2,3 --days 7 --share 1.0 --rate 0.3 --policies reactive,autopilot,oracle

Evaluation only: the faults are the simulator's truth.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["main", "psu_episodes"]


def psu_episodes(sim, horizon_s: float, calls: list[tuple[float, str]]) -> list[dict[str, Any]]:
    """One record per failed power supply of a finished simulation.

    Parameters
    ----------
    sim : simulator.engine.Simulation
    horizon_s : float
        End of the run. [s]
    calls : list of (float, str)
        The customer calls, ``(time [s], onu_id)`` (``SimTelemetry.calls``).

    Returns
    -------
    list of dict
        ``onu``, ``start_h``, ``dark_h`` (to the fault's end, or to the horizon),
        ``censored`` (still dark at the end), ``fixed_by`` and ``called`` (a call from
        the customer while dark). [h]
    """
    out = []
    for f in sim.faults:
        if f.kind != "hardware_failure" or not f.params.get("power_supply"):
            continue
        if f.start_s >= horizon_s:
            continue
        onu = str(sim.onu_ids[int(f.onus[0])])
        end = f.end_s if f.end_s is not None else horizon_s
        called = any(onu == o and f.start_s <= t <= end for t, o in calls)
        out.append({"onu": onu, "start_h": round(f.start_s / 3600, 1),
                    "dark_h": round((end - f.start_s) / 3600, 1),
                    "censored": f.end_s is None, "fixed_by": f.fixed_by,
                    "called": called})  # fmt: skip
    return out


def main() -> None:
    """Parse arguments, run each policy and seed, print one JSON line each."""
    from simulator.backtest import BacktestWorld
    from simulator.scenario import load_scenario

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="unseen_8x4")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--share", type=float, default=1.0,
                    help="faults.hardware_power_supply_share")  # fmt: skip
    ap.add_argument(
        "--rate",
        type=float,
        default=None,
        help="faults.hardware_failure.rate_per_year (default: the scenario's)",
    )
    ap.add_argument("--policies", default="reactive,autopilot,oracle")
    args = ap.parse_args()
    sc = load_scenario(args.scenario, days=args.days)
    faults = sc.faults.model_dump()
    faults["hardware_power_supply_share"] = args.share
    if args.rate is not None:
        faults["hardware_failure"]["rate_per_year"] = args.rate
    sc = sc.with_overrides(faults=faults)
    for seed in (int(s) for s in args.seeds.split(",")):
        for pol in args.policies.split(","):
            world = BacktestWorld.build(sc, pol, seed)
            world.sim.run()
            eps = psu_episodes(world.sim, sc.horizon_s, world.source.calls)
            k = world.close()
            print(json.dumps({"scenario": args.scenario, "seed": seed, "policy": pol,
                              "visits": int(k["visits"]),
                              "total_cost_brl": round(float(k["total_cost_brl"]), 1),
                              "psu": eps}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
