"""Generalization experiment: train on a mixture of scenario variants, evaluate on others.

Reads an experiment file such as ``experiments/mixtures/generalization.yaml``::

    train: [{scenario, seeds: [...], days}, ...]   # the mixture the models learn from
    test:  [{scenario, seeds: [...], days}, ...]   # variants no training run resembles
    models: {n_estimators, every_minutes, seed}
    evaluate: {every_minutes}

and drives the ordinary CLI — ``guardian simulate``, ``guardian ingest``, ``guardian
train`` (all training runs at once, registry alias ``mixture``) and ``guardian evaluate``
— with an isolated data directory (MLflow included) under ``--work``. Prints one JSON
line per evaluated run and a summary table; ``--json`` writes everything.

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_generalization.py \
        experiments/mixtures/generalization.yaml [--work /tmp/gen] [--json out.json]

``--no-train`` evaluates the ``test`` runs with the bundle already registered as
``mixture`` under ``--work``'s data directory (the experiment needs no ``train`` list):
more held-out variants for models trained once, e.g.
``experiments/mixtures/more_layouts.yaml`` with a copy of ``/tmp/gen/data`` in
``/tmp/more/data``::

    nice -n 10 .venv/bin/python benchmarks/bench_generalization.py \
        experiments/mixtures/more_layouts.yaml --work /tmp/more --no-train
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
GUARDIAN = [sys.executable, "-m", "guardian_lib.cli"]
SUMMARY_KEYS = (
    "massive_f1", "macro_f1", "risk_24h_pr_auc", "risk_24h_prevalence", "risk_24h_brier",
    "risk_24h_brier_training_prevalence", "monotonicity_violations",
    "anomaly_median_lead_minutes",
)  # fmt: skip


def _guardian(args: list[str], env: dict[str, str]) -> str:
    res = subprocess.run([*GUARDIAN, *args], env=env, capture_output=True, text=True, check=False)
    if res.returncode:
        raise SystemExit(f"guardian {' '.join(args)} failed:\n{res.stderr[-3000:]}")
    return res.stdout


def _runs(entries: list[dict], work: Path, env: dict[str, str]) -> list[Path]:
    out = []
    for entry in entries:
        scenario = REPO / "experiments" / "scenarios" / f"{entry['scenario']}.yaml"
        for seed in entry["seeds"]:
            run = work / "runs" / f"{entry['scenario']}_s{seed}"
            if not (run / "warehouse.duckdb").exists():
                _guardian(["simulate", "--scenario", str(scenario), "--out", str(run),
                           "--seed", str(seed), "--days", str(entry["days"]), "--overwrite"], env)  # fmt: skip
                _guardian(["ingest", "--run", str(run)], env)
            out.append(run)
    return out


def _train_mixture(exp: dict, runs: list[Path], env: dict[str, str]) -> None:
    """Train on all ``runs`` at once and register the bundle as ``mixture``."""
    m = exp.get("models", {})
    args = ["train", "--alias", "mixture", "--every-minutes", str(m.get("every_minutes", 30)),
            "--n-estimators", str(m.get("n_estimators", 150)), "--seed", str(m.get("seed", 0))]  # fmt: skip
    for run in runs:
        args += ["--run", str(run)]
    _guardian(args, env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment", type=Path)
    ap.add_argument("--work", type=Path, default=Path("/tmp/guardian_generalization"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--no-train", action="store_true",
                    help="evaluate with the 'mixture' bundle already registered under --work")  # fmt: skip
    a = ap.parse_args()
    exp = yaml.safe_load(a.experiment.read_text())
    a.work.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"GUARDIAN_DATA_DIR": str(a.work / "data")}
    env.pop("MLFLOW_TRACKING_URI", None)
    if not a.no_train:
        _train_mixture(exp, _runs(exp["train"], a.work, env), env)
    test = _runs(exp["test"], a.work, env)
    every = str(exp.get("evaluate", {}).get("every_minutes", 30))
    results = {}
    for run in test:
        out = a.work / f"{run.name}.metrics.json"
        _guardian(["evaluate", "--run", str(run), "--alias", "mixture",
                   "--every-minutes", every, "--json", str(out)], env)  # fmt: skip
        metrics = json.loads(out.read_text())
        results[run.name] = metrics
        print(json.dumps({"run": run.name, **{k: metrics.get(k) for k in SUMMARY_KEYS}}))
    print(f"{'run':<20}" + "".join(f"{k[:18]:>20}" for k in SUMMARY_KEYS))
    for name, metrics in results.items():
        cells = "".join(
            f"{metrics.get(k, float('nan')):>20.4f}"
            if isinstance(metrics.get(k), (int, float))
            else f"{'-':>20}"
            for k in SUMMARY_KEYS
        )
        print(f"{name:<20}{cells}")
    if a.json:
        a.json.write_text(
            json.dumps({"experiment": exp, "results": results}, indent=2, default=str)
        )


if __name__ == "__main__":
    main()
