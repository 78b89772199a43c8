"""Cause classifier alone on unseen variants: quick macro-F1 for feature and label changes.

Retrains only the :class:`~guardian_lib.models.cause.CauseClassifier`, as ``guardian
train`` does (symptomatic rows every ``every_minutes`` of the experiment's training runs,
``n_estimators`` and the classifier's seed from ``models.seed``), and scores it on test
runs. It reads runs that ``benchmarks/bench_generalization.py`` simulated and ingested
under the same ``--work`` folder (``runs/<scenario>_s<seed>``) and computes features and
labels with the code it runs with, so checking out an older commit measures the older
features and labels on the same runs. Much quicker than the full bench (no anomaly or
risk models, no MLflow); single runs differ from the full bundle's figure where a class
has only a few rows (row order of the training frame).

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_cause_generalization.py \
        experiments/mixtures/generalization.yaml --work /tmp/gen \
        [--test unseen_8x4:401,402 --test unseen_4x32:503]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import f1_score

from guardian_lib.features import FEATURE_COLUMNS
from guardian_lib.labels import CAUSE_CLASSES, MASSIVE_CLASSES
from guardian_lib.models.bundle import CAUSE_LAYOUT_COLUMNS
from guardian_lib.models.cause import CauseClassifier
from guardian_lib.models.training import labelled_frame


def _symptomatic_rows(run: Path, every_minutes: int) -> pd.DataFrame:
    """Features of the run's symptomatic rows with their ``cause`` label."""
    if not (run / "warehouse.duckdb").exists():
        raise SystemExit(f"{run}: no ingested warehouse (run bench_generalization.py first)")
    features, labels = labelled_frame(run, every_minutes=every_minutes)
    sym = labels["symptomatic"].to_numpy()
    out = features[sym].reset_index(drop=True)
    out["cause"] = labels.loc[sym, "cause"].astype(str).to_numpy()
    return out


def _runs(entries: list[dict], work: Path) -> list[Path]:
    return [work / "runs" / f"{e['scenario']}_s{s}" for e in entries for s in e["seeds"]]


def _parse_test(specs: list[str]) -> list[dict]:
    """``scenario:seed,seed`` → experiment entries."""
    out = []
    for spec in specs:
        scenario, _, seeds = spec.partition(":")
        if not seeds:
            raise SystemExit(f"--test {spec!r}: expected scenario:seed[,seed...]")
        out.append({"scenario": scenario, "seeds": [int(s) for s in seeds.split(",")]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment", type=Path)
    ap.add_argument("--work", type=Path, default=Path("/tmp/guardian_generalization"))
    ap.add_argument("--test", action="append", default=[], help="scenario:seed,seed")
    a = ap.parse_args()
    exp = yaml.safe_load(a.experiment.read_text())
    every = int(exp.get("models", {}).get("every_minutes", 30))
    train = pd.concat([_symptomatic_rows(r, every) for r in _runs(exp["train"], a.work)])
    # The classifier's seed as fit_bundle draws it from models.seed.
    seed = np.random.default_rng(int(exp.get("models", {}).get("seed", 0))).integers(
        0, 2**31 - 1, 5
    )
    model = CauseClassifier(
        n_estimators=int(exp.get("models", {}).get("n_estimators", 150)),
        booster_exclude=CAUSE_LAYOUT_COLUMNS,
        random_state=int(seed[1]),
    ).fit(train[list(FEATURE_COLUMNS)], train["cause"].to_numpy())
    scores = {}
    for run in _runs(_parse_test(a.test) if a.test else exp["test"], a.work):
        rows = _symptomatic_rows(run, every)
        y, pred = rows["cause"].to_numpy(), model.predict(rows[list(FEATURE_COLUMNS)])
        present = [c for c in CAUSE_CLASSES if (y == c).any()]
        per = f1_score(y, pred, labels=present, average=None, zero_division=0)
        scores[run.name] = float(np.mean(per))
        massive = f1_score(np.isin(y, MASSIVE_CLASSES), np.isin(pred, MASSIVE_CLASSES))
        print(
            f"{run.name}: macro-F1 {scores[run.name]:.3f} massive F1 {massive:.3f} "
            + " ".join(f"{c}={v:.2f}({(y == c).sum()})" for c, v in zip(present, per, strict=True)),
            flush=True,
        )
    print(f"mean macro-F1 {np.mean(list(scores.values())):.3f} min {min(scores.values()):.3f}")


if __name__ == "__main__":
    main()
