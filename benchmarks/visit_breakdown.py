"""Why each completed visit happened: a per-visit breakdown by cause from the truth.

For every completed service order of a backtest run it reads, from the simulator's
faults (evaluation only), what the technician found and what was wrong when the visit
was ordered, and puts the visit in one class:

* ``needed`` — fixed a fault only a visit fixes (dead / drifting laser, degrading fibre);
* ``wifi`` — fixed Wi-Fi interference (a remote profile change may have done it);
* ``hang`` — fixed a hung CPE (a remote reboot could have done it);
* ``box_drop`` — fixed the fault of a street box that serves only that customer (their
  drop; only a visit ends it unless the scenario sends a crew, `lone_box_crew`);
* ``massive`` — found a massive outage (could have been held);
* ``power`` — customer absent (their own power was off);
* ``ended_<kind>`` — found nothing: a fault of that kind was there when the order was
  opened and ended before the technician came;
* ``no_fault`` — found nothing and nothing was wrong when it was ordered.

::

    .venv/bin/python benchmarks/visit_breakdown.py --scenario small --seeds 1,2,3,4,5 \
        [--policies reactive,autopilot] [--days 7] [--models ALIAS] [--json out.json]
"""

from __future__ import annotations

import argparse
import collections
import json

from simulator.backtest import BacktestWorld
from simulator.scenario import load_scenario

NEEDED = ("hardware_failure", "fibre_degradation")


def classify(sim, order) -> tuple[str, str]:
    """``(class, kind)`` of one completed order (see the module docstring)."""
    row = order.onu_row
    at_open = [
        f
        for f in sim.faults
        if row in set(f.onus.tolist())
        and f.start_s <= order.opened_s
        and (f.end_s is None or f.end_s > order.opened_s)
        and f.kind != "customer_power_off"
    ]
    fixed = [
        f
        for f in sim.faults
        if f.fixed_by == "visit" and row in set(f.onus.tolist())
        and f.end_s is not None and abs(f.end_s - (order.closed_s or -1)) < 1e-6
    ]  # fmt: skip
    out = order.outcome or ""
    if out.startswith("fixed_"):
        kinds = {f.kind for f in fixed}
        if kinds & set(NEEDED):
            return "needed", sorted(kinds & set(NEEDED))[0]
        if "cpe_hang" in kinds:
            return "hang", "cpe_hang"
        if "box_drop_fault" in kinds:
            return "box_drop", "box_drop_fault"
        if "wifi_interference" in kinds:
            return "wifi", "wifi_interference"
        return "needed", ",".join(sorted(kinds)) or out
    if out == "massive_outage":
        return "massive", ""
    if out == "customer_absent":
        return "power", ""
    if at_open:
        return f"ended_{at_open[0].kind}", at_open[0].kind
    return "no_fault", ""


def main() -> None:
    """Run the policies per seed and print the breakdown (and a JSON file)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="small")
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--policies", default="reactive,autopilot")
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--models", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    sc = load_scenario(args.scenario, days=args.days)
    scorer = None
    if args.models:
        from guardian_lib.models.online import ModelScorer
        from guardian_lib.models.registry import load_bundle

        scorer = ModelScorer(load_bundle(args.models))
    table: dict[str, collections.Counter] = {}
    detail: dict[str, list] = {}
    for pol in args.policies.split(","):
        cnt: collections.Counter = collections.Counter()
        rows = []
        for seed in (int(s) for s in args.seeds.split(",")):
            w = BacktestWorld.build(sc, pol, seed, 15, scorer if pol == "autopilot" else None,
                                    None, None, None)  # fmt: skip
            w.sim.run()
            for o in w.sim.ops.orders:
                if o.status != "completed":
                    continue
                cls, kind = classify(w.sim, o)
                key = f"{cls}|{o.opened_by}"
                cnt[key] += 1
                rows.append({"seed": seed, "class": cls, "kind": kind, "reason": o.reason,
                             "opened_by": o.opened_by, "outcome": o.outcome,
                             "opened_h": round(o.opened_s / 3600, 2),
                             "closed_h": round((o.closed_s or 0) / 3600, 2)})  # fmt: skip
            w.close()
        table[pol] = cnt
        detail[pol] = rows
        total = sum(cnt.values())
        print(f"\n{sc.name} {pol}: {total} completed visits over {args.seeds}")
        for key, n in sorted(cnt.items(), key=lambda kv: -kv[1]):
            print(f"  {key:<40} {n:>4}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"counts": {p: dict(c) for p, c in table.items()}, "visits": detail},
                      fh, indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
