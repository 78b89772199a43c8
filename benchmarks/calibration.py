"""Calibration of the reactive operation on every scenario variant.

The ``reactive`` policy (today's practice: no autopilot) is the baseline of every backtest
figure, so its three headline numbers must sit in the ranges stated in
experiments/scenarios/README.md "Calibration of the reactive operation" on every variant
we ship, not only on the demo's ``small``. This runs the closed-loop backtest with the
reactive policy alone (:func:`simulator.backtest.run_backtest`), N seeds × D days per
variant, and prints one Markdown row per variant::

    nice -n 10 .venv/bin/python benchmarks/calibration.py --seeds 1,2,3,4,5 --days 7 \
        --workers 2 [--scenarios small,unseen_8x4] [--json calib.json]
    .venv/bin/python benchmarks/calibration.py --table calib.json   # print a saved run
    .venv/bin/python benchmarks/calibration.py --table seeds1-5.json seeds6-10.json  # pooled

``--default-faults`` runs each variant's layout (topology, vendors, customers,
operations) with the default fault catalogue and weather instead of its own: what is left
outside the targets then comes from the layout or the operator, not from a variant's
raised fault rates.

Figures (per variant):

* visits that find no fault — completed visits with outcome ``no_fault_found``,
  ``customer_absent`` or ``massive_outage``, pooled over the seeds (wasted / completed),
  with the range of the per-seed shares (a seed with 5 visits moves the share by 20 %);
* customer contacts per subscriber and year — mean over the seeds [1/yr];
* MTTR of service-impacting episodes of 15 min or more — mean over the seeds [h];

each mean with its 95 % percentile-bootstrap interval over the seeds, and a flag for a
figure outside its target range.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

__all__ = ["TARGETS", "VARIANTS", "calibration_figures", "main", "merge", "table"]

#: Target range of each calibrated figure (experiments/scenarios/README.md).
TARGETS: dict[str, tuple[float, float]] = {
    "no_fault_found_share": (0.15, 0.30),
    "contacts_per_sub_year": (2.0, 3.0),
    "mttr_hours": (4.0, 12.0),
}
#: Shipped variants checked by default (``tiny`` is for tests, ``city`` is a scale run).
VARIANTS = ("small", "shifted", "mix_4x16", "mix_2x32", "mix_8x8", "unseen_8x4", "unseen_4x32",
            "unseen_2x8", "unseen_2x64", "unseen_16x2", "unseen_8x4_young",
            "unseen_2x16_storms")  # fmt: skip


def calibration_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The three calibrated figures of one variant from its reactive runs' KPIs.

    Parameters
    ----------
    runs : list of dict
        One KPI dict per seed (:func:`simulator.backtest.run_policy`), each with
        ``visits``, ``wasted_visits``, ``contacts_per_sub_year`` and ``mttr_hours``.

    Returns
    -------
    dict
        ``no_fault_found_share`` (pooled, with ``seed_range``), ``contacts_per_sub_year``
        and ``mttr_hours`` (mean and ``ci95`` over the seeds), ``visits`` (completed visits
        over all seeds) and ``outside`` (the figures outside :data:`TARGETS`).
    """
    from guardian_lib.kpis_stats import bootstrap_ci

    visits = sum(int(r["visits"]) for r in runs)
    wasted = sum(int(r["wasted_visits"]) for r in runs)
    shares = [r["wasted_visits"] / r["visits"] for r in runs if r["visits"]]
    out: dict[str, Any] = {
        "visits": visits,
        "no_fault_found_share": {
            "mean": wasted / visits if visits else math.nan,
            "seed_range": [min(shares), max(shares)] if shares else [math.nan, math.nan],
        },
    }
    for key in ("contacts_per_sub_year", "mttr_hours"):
        mean, ci = bootstrap_ci([float(r[key]) for r in runs], bounds=(0.0, math.inf))
        out[key] = {"mean": mean, "ci95": ci}
    out["outside"] = [
        key
        for key, (lo, hi) in TARGETS.items()
        if not (math.isfinite(out[key]["mean"]) and lo <= out[key]["mean"] <= hi)
    ]
    return out


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Pool saved runs of other seeds (same days and fault mode) into one result.

    Each (variant, seed) cell is seeded from its seed alone, so runs of seeds 1–5 and
    6–10 pooled give the figures of one run of seeds 1–10.
    """

    def mode(meta: dict[str, Any]) -> dict[str, Any]:
        return {"days": meta.get("days"), "default_faults": bool(meta.get("default_faults"))}

    first = results[0]["meta"]
    for r in results[1:]:
        for key, value in mode(r["meta"]).items():
            if value != mode(first)[key]:
                raise ValueError(f"merge: {key} differs: {mode(first)[key]} vs {value}")
    per_seed: dict[str, list[dict[str, Any]]] = {}
    seeds: dict[str, list[int]] = {}
    for r in results:
        for name, runs in r["per_seed"].items():
            seeds.setdefault(name, []).extend(r["meta"]["seeds"])
            per_seed.setdefault(name, []).extend(runs)
    for name, ss in seeds.items():
        if len(set(ss)) != len(ss):
            raise ValueError(f"merge: {name}: a seed appears twice: {sorted(ss)}")
    return {
        "meta": {
            **first,
            "seeds": sorted({x for ss in seeds.values() for x in ss}),
            "seeds_by_variant": seeds,
        },
        "variants": {name: calibration_figures(runs) for name, runs in per_seed.items()},
        "per_seed": per_seed,
    }


def _fmt(key: str, fig: dict[str, Any]) -> str:
    mark = " ⚠" if key in fig["outside"] else ""
    m = fig[key]
    if key == "no_fault_found_share":
        lo, hi = m["seed_range"]
        return f"{100 * m['mean']:.1f} % (seeds {100 * lo:.0f}–{100 * hi:.0f} %){mark}"
    lo, hi = m["ci95"]
    return f"{m['mean']:.2f} [{lo:.2f}, {hi:.2f}]{mark}"


def table(result: dict[str, Any]) -> str:
    """A Markdown table: one row per variant, one column per figure (⚠: outside target)."""
    lo_hi = {k: f"{lo:g}–{hi:g}" for k, (lo, hi) in TARGETS.items()}
    lines = [
        "| variant | completed visits | visits that find no fault "
        f"(target {100 * TARGETS['no_fault_found_share'][0]:.0f}–"
        f"{100 * TARGETS['no_fault_found_share'][1]:.0f} %) | contacts per subscriber-year "
        f"(target {lo_hi['contacts_per_sub_year']}) | MTTR [h] (target {lo_hi['mttr_hours']}) |",
        "|---|---|---|---|---|",
    ]
    suffix = ", default faults" if result.get("meta", {}).get("default_faults") else ""
    for name, fig in result["variants"].items():
        cells = [_fmt(k, fig) for k in TARGETS]
        lines.append(f"| `{name}`{suffix} | {fig['visits']} | " + " | ".join(cells) + " |")
    per_seed = result.get("per_seed", {})
    if len(per_seed) > 1:  # the operator over every layout: many more visits, less noise
        fig = calibration_figures([run for runs in per_seed.values() for run in runs])
        cells = [_fmt(k, fig) for k in TARGETS]
        lines.append(f"| all of the above{suffix} | {fig['visits']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, run the reactive backtests (or read their JSON) and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default=",".join(VARIANTS),
                    help="comma-separated shipped scenario names or YAML paths")  # fmt: skip
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="write the result here")
    ap.add_argument("--default-faults", action="store_true",
                    help="replace each variant's fault rates and weather by the defaults "
                         "(layout, vendors, customers and operations stay)")  # fmt: skip
    ap.add_argument("--table", type=Path, nargs="+", default=None,
                    help="print the table of these JSONs, pooled (no run)")  # fmt: skip
    args = ap.parse_args()
    if args.table is not None:
        print(table(merge([json.loads(p.read_text(encoding="utf-8")) for p in args.table])))
        return

    from simulator.backtest import run_backtest
    from simulator.scenario import Faults, Weather, load_scenario

    seeds = [int(s) for s in args.seeds.split(",")]
    result: dict[str, Any] = {
        "meta": {"seeds": seeds, "days": args.days, "default_faults": args.default_faults},
        "variants": {},
        "per_seed": {},
    }
    t0 = time.perf_counter()
    for name in args.scenarios.split(","):
        sc = load_scenario(name, days=args.days)
        if args.default_faults:
            sc = sc.with_overrides(faults=Faults(), weather=Weather())
        r = run_backtest(sc, ("reactive",), seeds, workers=args.workers)
        runs = r["per_seed"]["reactive"]
        result["variants"][sc.name] = calibration_figures(runs)
        result["per_seed"][sc.name] = [
            {k: run[k] for k in ("visits", "wasted_visits", "calls", "contacts_per_sub_year",
                                 "mttr_hours", "no_fault_found_share")}
            for run in runs
        ]  # fmt: skip
    result["meta"]["wall_s"] = round(time.perf_counter() - t0, 1)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(table(result))


if __name__ == "__main__":
    main()
