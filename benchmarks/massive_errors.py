"""Why the decisions' massive-vs-individual F1 is below 1: every error, from the truth.

Runs the closed-loop backtest (:class:`simulator.backtest.BacktestWorld`) for the given
policies and seeds and joins the policy's incident / case decisions to the simulator's
faults (evaluation only). Two tables per policy:

*Decisions* — every ``open_incident`` / ``join_incident`` target and every ``open_case``
subject, by what the ONU had at that moment:

* ``massive`` / ``individual`` — a confirmed problem of that class (a recorded fault in
  impact, at least 15 min long: the labels of :func:`guardian_lib.kpis.classification_scores`);
* ``short:<kind>`` — a recorded fault in impact but shorter than 15 min (not a label);
* ``precursor:<kind>`` — a fault that has started but does not hurt yet (a drifting
  laser, a degrading fibre, a leaking CPE): a proactive case;
* ``unrecorded:<kind>`` — a symptom with no recorded cause (an unexplained blip);
* ``after:<kind>`` — a fault that ended within the last hour (the ONU is recovering);
* ``nothing`` — none of these.

*Problems* — every confirmed problem (label), by the call the policy made while it
lasted: ``incident`` (``open_incident`` target), ``joined`` (``join_incident``
target), ``incident_before`` (member of an incident opened before it began), ``case``
(``open_case`` during it), ``case_before`` (a case opened before it began and still
open: a proactive case), ``none``; suffixed with the fault kind.

::

    nice -n 10 .venv/bin/python benchmarks/massive_errors.py --scenario unseen_8x4 \
        --seeds 1,2,3 --days 3 [--policies rules,autopilot,oracle] [--json out.json]

``--ml-alias NAME`` (with ``GUARDIAN_DATA_DIR`` pointing at the registry) gives the
autopilot that ML bundle as its scorer (``ModelScorer(full_every=--full-every)``, as
``benchmarks/headline_unseen.py`` does); the other policies do not read a scorer.
"""

from __future__ import annotations

import argparse
import collections
import json
from typing import Any

import pandas as pd

__all__ = ["decision_truth", "problem_calls", "main"]

#: Problems shorter than this are not labels (as ``classification_scores``). [min]
MIN_MINUTES = 15.0
#: A decision this soon after a fault ended is ``after:<kind>``. [min]
AFTER_MIN = 60.0
MASSIVE_CLASSES = ("MASSIVE_OUTAGE", "EXTERNAL_NETWORK")
_SCORES = ("massive_precision", "massive_recall", "individual_precision", "individual_recall")
#: KPIs printed per seed: the per-decision scores, the per-problem ones, visits, MTTR.
KPI_KEYS = (*_SCORES, *(f"problem_{k}" for k in _SCORES), "problem_unscored_calls", "visits",
            "mttr_hours")  # fmt: skip


def _faults_by_row(sim) -> dict[int, list]:
    out: dict[int, list] = collections.defaultdict(list)
    for f in sim.faults:
        for row in f.onus.tolist():
            out[row].append(f)
    return out


def _truth_at(faults: list, t: float, horizon: float) -> str:
    """What one ONU had at ``t`` [s from the start] (see the module docstring)."""
    cats = []
    for f in faults:
        end = horizon if f.end_s is None else f.end_s
        imp = f.impact_start_s
        if not f.recorded:
            if f.start_s <= t <= end:
                cats.append((3, f"unrecorded:{f.kind}"))
            continue
        massive = f.cause_class in MASSIVE_CLASSES
        if imp is not None and imp <= t <= end:
            if end - imp >= MIN_MINUTES * 60:
                cats.append((0, "massive" if massive else "individual"))
            else:
                cats.append((1, f"short:{f.kind}"))
        elif f.start_s <= t and (imp is None or t < imp) and t <= end:
            cats.append((2, f"precursor:{f.kind}"))
        elif end < t <= end + AFTER_MIN * 60:
            cats.append((4, f"after:{f.kind}"))
    if not cats:
        return "nothing"
    best = min(c[0] for c in cats)
    names = sorted({c[1] for c in cats if c[0] == best})
    if best == 0 and len(names) == 2:
        return "both"
    return names[0]


def _targets(decisions: pd.DataFrame, actions: tuple[str, ...]) -> pd.DataFrame:
    d = decisions.loc[decisions["action"].isin(actions), ["ts", "action", "targets", "case_id"]]
    d = d.assign(onu_id=d["targets"].map(json.loads)).explode("onu_id").dropna(subset=["onu_id"])
    d["ts"] = pd.to_datetime(d["ts"], utc=True)
    return d[["ts", "action", "onu_id", "case_id"]]


def decision_truth(sim, decisions: pd.DataFrame) -> pd.DataFrame:
    """Each incident / case call joined to what the ONU had then.

    Returns
    -------
    pandas.DataFrame
        ``ts``, ``action``, ``onu_id``, ``truth`` (see the module docstring).
    """
    d = _targets(decisions, ("open_incident", "join_incident", "open_case"))
    row_of = {str(o): i for i, o in enumerate(sim.onu_ids)}
    by_row = _faults_by_row(sim)
    start = pd.Timestamp(sim.start)
    horizon = sim.scenario.horizon_s
    t = (d["ts"] - start).dt.total_seconds().to_numpy()
    truth = [
        _truth_at(by_row.get(row_of[str(o)], []), float(x), horizon)
        for o, x in zip(d["onu_id"], t, strict=True)
    ]
    return d.assign(truth=truth)


def _intervals(decisions: pd.DataFrame, end: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Case intervals per ONU and incident-membership intervals per ONU."""
    dec = decisions.copy()
    dec["ts"] = pd.to_datetime(dec["ts"], utc=True)
    oc = dec.loc[dec["action"] == "open_case", ["ts", "subject", "case_id"]]
    cc = dec.loc[dec["action"] == "close_case"].groupby("case_id")["ts"].max()
    cases = oc.assign(closed=[cc.get(c, end) for c in oc["case_id"]]).rename(
        columns={"subject": "onu_id", "ts": "opened"}
    )
    mem = _targets(dec, ("open_incident", "join_incident"))
    ci = dec.loc[dec["action"] == "close_incident"].groupby("case_id")["ts"].max()
    # open_incident rows carry the new incident's id in case_id (audit assigns it)
    mem = mem.assign(closed=[ci.get(c, end) for c in mem["case_id"]]).rename(
        columns={"ts": "opened"}
    )
    return cases, mem


def problem_calls(sim, decisions: pd.DataFrame) -> pd.DataFrame:
    """Each confirmed problem with the call the policy made while it lasted.

    Returns
    -------
    pandas.DataFrame
        ``onu_id``, ``kind``, ``massive``, ``start_at``, ``end_at``, ``call``.
    """
    start = pd.Timestamp(sim.start)
    horizon = sim.scenario.horizon_s
    end_ts = start + pd.Timedelta(seconds=horizon)
    rows = []
    for f in sim.faults:
        if not f.recorded or f.impact_start_s is None or f.impact_start_s > horizon:
            continue
        e = horizon if f.end_s is None else f.end_s
        if e - f.impact_start_s < MIN_MINUTES * 60:
            continue
        for row in f.onus.tolist():
            rows.append((str(sim.onu_ids[row]), f.kind, f.cause_class in MASSIVE_CLASSES,
                         start + pd.Timedelta(seconds=f.impact_start_s),
                         start + pd.Timedelta(seconds=e)))  # fmt: skip
    lab = pd.DataFrame(rows, columns=["onu_id", "kind", "massive", "start_at", "end_at"])
    if len(decisions) == 0:
        return lab.assign(call="none")
    cases, mem = _intervals(decisions, end_ts)
    d = _targets(decisions, ("open_incident", "join_incident", "open_case"))
    by_onu = {k: g for k, g in d.groupby("onu_id")}
    cases_by = {k: g for k, g in cases.groupby("onu_id")}
    mem_by = {k: g for k, g in mem.groupby("onu_id")}
    calls = []
    for r in lab.itertuples():
        g = by_onu.get(r.onu_id)
        call = "none"
        if g is not None:
            inside = g.loc[(g["ts"] >= r.start_at) & (g["ts"] <= r.end_at), "action"]
            acts = set(inside)
            if "open_incident" in acts:
                call = "incident"
            elif "join_incident" in acts:
                call = "joined"
        if call == "none":
            m = mem_by.get(r.onu_id)
            if m is not None and ((m["opened"] < r.start_at) & (m["closed"] >= r.start_at)).any():
                call = "incident_before"
        if call == "none" and g is not None:
            if (g.loc[(g["ts"] >= r.start_at) & (g["ts"] <= r.end_at), "action"]
                    == "open_case").any():  # fmt: skip
                call = "case"
        if call == "none":
            c = cases_by.get(r.onu_id)
            if c is not None and ((c["opened"] < r.start_at) & (c["closed"] >= r.start_at)).any():
                call = "case_before"
        calls.append(call)
    return lab.assign(call=calls)


def _one(scenario, policy: str, seed: int, scorer=None) -> dict[str, Any]:
    from simulator.backtest import BacktestWorld

    w = BacktestWorld.build(scenario, policy, seed, 15, scorer, None, None, None)
    w.sim.run()
    dec = w.audit.frame("decisions")
    dt = decision_truth(w.sim, dec)
    pc = problem_calls(w.sim, dec)
    k = w.close()
    return {"decisions": dt, "problems": pc, "kpis": k}


def main() -> None:
    """Run the policies per seed; print both tables per policy (and a JSON file)."""
    from simulator.scenario import load_scenario

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="unseen_8x4")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--days", type=float, default=3.0)
    ap.add_argument("--policies", default="rules,autopilot,oracle")
    ap.add_argument("--json", default=None)
    ap.add_argument("--ml-alias", default=None,
                    help="registry alias of an ML bundle: the autopilot's scorer")  # fmt: skip
    ap.add_argument("--full-every", type=int, default=4, help="ModelScorer.full_every")
    args = ap.parse_args()
    sc = load_scenario(args.scenario, days=args.days)
    scorer = None
    if args.ml_alias:
        from guardian_lib.models.online import ModelScorer
        from guardian_lib.models.registry import load_bundle

        scorer = ModelScorer(load_bundle(args.ml_alias), full_every=args.full_every)
    report: dict[str, Any] = {}
    for pol in args.policies.split(","):
        dcount: collections.Counter = collections.Counter()
        pcount: collections.Counter = collections.Counter()
        kp = []
        for seed in (int(s) for s in args.seeds.split(",")):
            r = _one(sc, pol, seed, scorer)
            for a, t in zip(r["decisions"]["action"], r["decisions"]["truth"], strict=True):
                dcount[f"{a} <- {t}"] += 1
            p = r["problems"]
            for m, c, kind in zip(p["massive"], p["call"], p["kind"], strict=True):
                pcount[f"{'massive' if m else 'individual'} -> {c} ({kind})"] += 1
            k = r["kpis"]
            kp.append({x: k.get(x) for x in KPI_KEYS})
        report[pol] = {"decisions": dict(dcount), "problems": dict(pcount), "kpis": kp}
        print(f"\n== {sc.name} {pol} seeds {args.seeds} x {args.days:g} d")
        print("-- decisions (action <- what the ONU had)")
        for key, n in sorted(dcount.items(), key=lambda kv: -kv[1]):
            print(f"  {key:<58} {n:>5}")
        print("-- confirmed problems (class -> call (kind))")
        for key, n in sorted(pcount.items(), key=lambda kv: -kv[1]):
            print(f"  {key:<58} {n:>5}")
        for x in kp:
            print("  kpis", {a: (round(b, 3) if isinstance(b, float) else b) for a, b in x.items()})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
