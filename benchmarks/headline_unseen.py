"""Headline figures on unseen scenario variants: the closing note of issue 15.

Runs the closed-loop backtest (:func:`simulator.backtest.run_backtest`, policy every
15 min) on a scenario variant not used for tuning or training, with the rule scorer and
optionally an ML bundle as the autopilot's scorer, and prints one table::

    nice -n 10 .venv/bin/python benchmarks/headline_unseen.py --scenario unseen_8x4 \
        --seeds 1,2,3,4,5 --days 7 --workers 2 --json h8x4.json     # rule scorer
    GUARDIAN_DATA_DIR=<registry> nice -n 10 .venv/bin/python benchmarks/headline_unseen.py \
        --scenario unseen_8x4 --seeds 1,2,3,4,5 --days 7 --workers 2 \
        --ml-alias mixture --full-every 4 --json h8x4.ml-mixture.json  # ML autopilot only
    .venv/bin/python benchmarks/headline_unseen.py --table h8x4.json --ml h8x4.ml-mixture.json

The last three rows of the table are the F1 of the policy's massive-vs-individual
decisions (from the precision and recall the backtest reports per seed) and the
monotonicity count below.

Only the ``autopilot`` reads the scorer (``rules`` always uses the rule scorer, ``oracle``
the simulator's truth, ``reactive`` none), and every cell is seeded from its seed alone
(common random numbers), so the ML scorer's autopilot is run on its own and summarised
against the same ``reactive``, ``rules`` and ``oracle`` runs as the rule scorer's.

Every scorer is wrapped to count the rows it returns whose risk decreases with the
horizon (``risk_2h ≤ risk_6h ≤ risk_24h`` broken,
:func:`guardian_lib.models.training.monotonicity_violations`). The counts of the worker
processes are appended to ``<json>.mono.jsonl`` and summed.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MonotonicityCounter", "decision_f1", "main", "merge_ml", "table"]

RISK_COLUMNS = ("risk_2h", "risk_6h", "risk_24h")
POLICIES = ("reactive", "rules", "autopilot", "oracle")

_ROWS = (
    ("visits", "visits"),
    ("visits avoided vs reactive [%]", "visits_avoided_vs_reactive_pct"),
    ("visits avoided per month vs reactive", "visits_avoided_per_month"),
    (
        "visits + repairs left for later, avoided vs reactive [%]",
        "visits_with_deferred_avoided_vs_reactive_pct",
    ),
    ("MTTR [h]", "mttr_hours"),
    ("MTTR ratio vs reactive", "mttr_ratio_vs_reactive"),
    ("saved vs reactive per month [R$]", "saved_brl_per_month"),
    ("net savings (audit) [R$]", "net_savings_brl"),
    ("rules → oracle gap closed", "rules_oracle_gap_share"),
    ("reboots", "reboots"),
    ("no-fault visits share", "no_fault_found_share"),
    ("safety violations", "safety_violations"),
    ("massive F1 of the decisions (incident vs case)", "massive_f1"),
    ("macro-F1 of the decisions (massive, individual)", "macro_f1"),
    ("massive F1 per problem (the call held on it)", "problem_massive_f1"),
    ("macro-F1 per problem (massive, individual)", "problem_macro_f1"),
)

_PAIRED = {"visits_avoided_vs_reactive_pct", "visits_avoided_per_month", "mttr_ratio_vs_reactive",
           "saved_brl_per_month", "net_savings_brl",
           "visits_with_deferred_avoided_vs_reactive_pct"}  # fmt: skip


class MonotonicityCounter:
    """Wrap a scorer; count the returned rows whose risk decreases with the horizon.

    Picklable (the backtest sends the scorer to its worker processes). Each call appends
    ``{"rows": n, "violations": v}`` to ``path`` (one short line, opened in append mode,
    so the lines of several processes do not mix).

    Parameters
    ----------
    inner : callable
        ``inner(snapshot) -> predictions`` (with ``bind`` / ``update`` when it has them).
    path : Path
        The JSON-lines file the counts go to.
    """

    def __init__(self, inner: Any, path: Path) -> None:
        self.inner = inner
        self.path = Path(path)

    def bind(self, onus, tick_s: int) -> MonotonicityCounter:
        """Bind the inner scorer to a fleet (when it can be bound)."""
        inner = self.inner.bind(onus, tick_s) if hasattr(self.inner, "bind") else self.inner
        return _BoundCounter(inner, self.path)

    def __call__(self, snapshot):
        """Score and count (a scorer without ``bind``)."""
        return _BoundCounter(self.inner, self.path)(snapshot)


class _BoundCounter:
    """A bound scorer with the count; has ``update`` when the inner scorer has it."""

    def __init__(self, inner: Any, path: Path) -> None:
        self.inner = inner
        self.path = path

    def update(self, tick) -> None:
        if hasattr(self.inner, "update"):
            self.inner.update(tick)

    def __call__(self, snapshot):
        from guardian_lib.models.training import monotonicity_violations

        pred = self.inner(snapshot)
        risk = pred[list(RISK_COLUMNS)].to_numpy(dtype=float)
        risk = risk[~np.isnan(risk).any(axis=1)]
        line = json.dumps({"rows": int(len(risk)), "violations": monotonicity_violations(risk)})
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        return pred


def _mono(path: Path) -> dict[str, int]:
    rows = viol = 0
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            rows += d["rows"]
            viol += d["violations"]
    return {"rows": rows, "violations": viol}


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"


def _cell(m: dict | None) -> str:
    if m is None:
        return "–"
    lo, hi = m["ci95"]
    if lo == hi == m["mean"]:
        return _fmt(m["mean"])
    return f"{_fmt(m['mean'])} [{_fmt(lo)}, {_fmt(hi)}]"


def merge_ml(rule: dict[str, Any], ml: dict[str, Any]) -> dict[str, Any]:
    """Summary of an ML-scorer autopilot against the rule run's other policies.

    ``reactive``, ``rules`` and ``oracle`` do not read the scorer, so the ML autopilot's
    seeds are paired with the rule run's (same scenario, seeds and days: checked).
    """
    from simulator.backtest import summarise

    for key in ("scenario", "seeds", "days", "every_minutes"):
        if rule["meta"][key] != ml["meta"][key]:
            raise ValueError(f"merge_ml: {key} differs: {rule['meta'][key]} vs {ml['meta'][key]}")
    per_seed = {p: rule["per_seed"][p] for p in ("reactive", "rules", "oracle")}
    per_seed["autopilot"] = ml["per_seed"]["autopilot"]
    return summarise(per_seed, days=float(ml["meta"]["days"]))["autopilot"]


def decision_f1(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """F1 of the policy's massive-vs-individual calls, from the backtest's KPIs.

    The backtest reports, per seed, the precision and recall of ``open_incident``
    (massive) and ``open_case`` (individual) decisions against the confirmed problems
    (:func:`guardian_lib.kpis.classification_scores`), and per confirmed problem the
    call held on it (``problem_*``, :func:`guardian_lib.kpis.problem_classification_scores`).
    Per seed: ``massive_f1``, ``individual_f1`` and their mean ``macro_f1`` (NaN where a
    class has no decision or no problem), the same with the ``problem_`` prefix; then
    the mean over the seeds and its bootstrap interval in [0, 1].
    """
    from guardian_lib.kpis_stats import bootstrap_ci

    def f1(p: float, r: float) -> float:
        if any(v is None or math.isnan(v) for v in (p, r)) or p + r == 0:
            return float("nan")
        return 2 * p * r / (p + r)

    per: dict[str, list[float]] = collections.defaultdict(list)
    for run in runs:
        for pre in ("", "problem_"):
            m = f1(run.get(f"{pre}massive_precision", math.nan),
                   run.get(f"{pre}massive_recall", math.nan))  # fmt: skip
            i = f1(run.get(f"{pre}individual_precision", math.nan),
                   run.get(f"{pre}individual_recall", math.nan))  # fmt: skip
            per[f"{pre}massive_f1"].append(m)
            per[f"{pre}individual_f1"].append(i)
            per[f"{pre}macro_f1"].append((m + i) / 2)
    out = {}
    for key, vals in per.items():
        if all(math.isnan(v) for v in vals):
            continue
        mean, ci = bootstrap_ci(vals, bounds=(0.0, 1.0))
        out[key] = {"mean": mean, "ci95": ci}
    return out


def table(rule: dict[str, Any], mls: list[dict[str, Any]] = ()) -> str:
    """A Markdown table: one column per policy and per ML autopilot, one row per metric."""
    from simulator.backtest import summarise

    cols: list[tuple[str, dict[str, Any], dict[str, int] | None]] = []
    # Summarised again from the seeds' KPIs (fixed bootstrap seed: the stored figures
    # come out the same), so a file written before a metric existed gets it too.
    summaries = summarise(rule["per_seed"], days=float(rule["meta"]["days"]))
    for p in POLICIES:
        if p in summaries:
            mono = rule["monotonicity"] if p == "autopilot" else None
            mono = mono.get("rule", mono) if mono else None  # first runs' layout
            summary = {**summaries[p], **decision_f1(rule["per_seed"][p])}
            cols.append((p if p != "autopilot" else "autopilot (rule scorer)", summary, mono))
    for ml in mls:
        label = f"autopilot (ML `{ml['meta']['alias']}`, full_every={ml['meta']['full_every']})"
        summary = {**merge_ml(rule, ml), **decision_f1(ml["per_seed"]["autopilot"])}
        cols.append((label, summary, ml["monotonicity"]))
    lines = ["| metric | " + " | ".join(c[0] for c in cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for label, key in _ROWS:
        cells = [
            "–" if name == "reactive" and key in _PAIRED else _cell(m.get(key))
            for name, m, _ in cols
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = ["–" if m is None else f"{m['violations']} of {m['rows']:,}" for _, _, m in cols]
    lines.append("| monotonicity violations (rows scored) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Parse arguments, run the backtests (or read their JSON) and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="unseen_8x4")
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--every-minutes", type=int, default=15)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--policies", default=",".join(POLICIES),
                    help="rule-scorer run: the policies to run (reactive for the paired figures)")  # fmt: skip
    ap.add_argument("--ml-alias", default=None,
                    help="registry alias of an ML bundle: run only its autopilot")  # fmt: skip
    ap.add_argument("--full-every", type=int, default=4, help="ModelScorer.full_every")
    ap.add_argument("--json", type=Path, default=None, help="write the result here")
    ap.add_argument("--table", type=Path, default=None,
                    help="print the table of this rule-scorer JSON (no run)")  # fmt: skip
    ap.add_argument("--ml", type=Path, action="append", default=[],
                    help="with --table: an ML-scorer JSON to add (repeatable)")  # fmt: skip
    args = ap.parse_args()
    if args.table is not None:
        rule = json.loads(args.table.read_text(encoding="utf-8"))
        mls = [json.loads(p.read_text(encoding="utf-8")) for p in args.ml]
        print(table(rule, mls))
        return

    if args.json is None:
        ap.error("--json is required to run the backtests")
    from guardian_lib.decision import RuleScorer
    from simulator.backtest import run_backtest
    from simulator.scenario import load_scenario

    seeds = [int(s) for s in args.seeds.split(",")]
    sc = load_scenario(args.scenario, days=args.days)
    meta: dict[str, Any] = {"scenario": args.scenario, "seeds": seeds, "days": args.days,
                            "every_minutes": args.every_minutes}  # fmt: skip
    mono = args.json.with_suffix(".mono.jsonl")
    mono.unlink(missing_ok=True)
    if args.ml_alias:
        from guardian_lib.models.online import ModelScorer
        from guardian_lib.models.registry import load_bundle

        scorer = ModelScorer(load_bundle(args.ml_alias), full_every=args.full_every)
        meta.update(alias=args.ml_alias, full_every=args.full_every)
        policies: tuple[str, ...] = ("autopilot",)
    else:
        scorer, policies = RuleScorer(), tuple(args.policies.split(","))
    t0 = time.perf_counter()
    r = run_backtest(sc, policies, seeds, args.every_minutes,
                     scorer=MonotonicityCounter(scorer, mono), workers=args.workers)  # fmt: skip
    meta["wall_s"] = round(time.perf_counter() - t0, 1)
    r["meta"] = meta
    r["monotonicity"] = _mono(mono)
    args.json.write_text(json.dumps(r, indent=1), encoding="utf-8")
    if not args.ml_alias:
        print(table(r))


if __name__ == "__main__":
    main()
