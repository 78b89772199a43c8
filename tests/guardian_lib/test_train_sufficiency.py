"""``guardian train`` refuses what cannot make a model worth registering (user safety).

A new user trained on one labelled ticket and the result took over the ``champion``
alias; a 1-day run failed only after its features were built. Both are now refused
before anything is registered, with the minimum or the span named.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from cli_runner import run_guardian

from guardian_lib.labels import RISK_HORIZONS_H
from guardian_lib.models.sufficiency import (
    MIN_POSITIVE_ONUS_PER_INTERVAL,
    InsufficientTrainingData,
    check_labels,
    check_spans,
)


def _frame(faults: dict[str, tuple[str, float]], quiet_onus: int = 5, rows: int = 40):
    """Rows every hour for ONUs; ``faults``: ONU → (cause, impact hour) of an individual fault."""
    ts = pd.date_range("2026-01-01", periods=rows, freq="h", tz="UTC")
    feats, labs = [], []
    onus = {**{o: None for o in faults}, **{f"q{i}": None for i in range(quiet_onus)}}
    for onu in onus:
        cause, at = faults.get(onu, (None, np.inf))
        for k, t in enumerate(ts):
            hours_to = at - k
            sym = cause is not None and hours_to <= 0
            row = {"symptomatic": sym, "cause": cause if sym else None}
            for h in RISK_HORIZONS_H:
                row[f"risk_{h}h"] = np.nan if sym or k + h >= rows else float(0 < hours_to <= h)
            feats.append({"ts": t, "onu_id": onu})
            labs.append(row)
    return pd.DataFrame(feats), pd.DataFrame(labs)


def test_one_labelled_fault_is_refused_naming_the_minimums():
    features, labels = _frame({"a": ("CUSTOMER_PREMISES", 30)})
    with pytest.raises(InsufficientTrainingData) as exc:
        check_labels(features, labels, RISK_HORIZONS_H)
    msg = str(exc.value)
    assert "nothing registered" in msg
    assert "{'CUSTOMER_PREMISES': 1}" in msg and "at least 2 needed" in msg
    assert f"at least {MIN_POSITIVE_ONUS_PER_INTERVAL} needed in each" in msg
    assert "(0, 2] h" in msg and "(6, 24] h" in msg


def test_faults_on_enough_onus_pass_and_are_counted():
    faults = {f"c{i}": ("CUSTOMER_PREMISES", 30 + i) for i in range(3)}
    faults |= {f"e{i}": ("EQUIPMENT_FAIL", 28 - i) for i in range(3)}
    features, labels = _frame(faults)
    counts = check_labels(features, labels, RISK_HORIZONS_H)
    assert counts["cause_onus"] == {"CUSTOMER_PREMISES": 3, "EQUIPMENT_FAIL": 3}
    assert counts["risk_onus"] == {"(0, 2] h": 6, "(2, 6] h": 6, "(6, 24] h": 6}
    # many rows of one class on two ONUs are still one class too few
    features, labels = _frame({"a": ("CUSTOMER_PREMISES", 5), "b": ("EQUIPMENT_FAIL", 5)})
    with pytest.raises(InsufficientTrainingData, match="ONUs per class"):
        check_labels(features, labels, RISK_HORIZONS_H)


def test_spans_shorter_than_the_longest_horizon_are_refused():
    t0 = pd.Timestamp("2026-01-05", tz="UTC")
    one_day = {"runs/a": (t0, t0 + pd.Timedelta(hours=23, minutes=55))}
    with pytest.raises(InsufficientTrainingData) as exc:
        check_spans(one_day, RISK_HORIZONS_H)
    assert "no labelled row for the interval (6, 24] h" in str(exc.value)
    assert "runs/a: 23.9 h (2026-01-05 00:00 – 2026-01-05 23:55 UTC)" in str(exc.value)
    three_days = {"runs/a": (t0, t0 + pd.Timedelta(days=3))}
    check_spans(three_days, RISK_HORIZONS_H)  # long enough
    with pytest.raises(InsufficientTrainingData, match="up to --until"):
        check_spans(three_days, RISK_HORIZONS_H, until="2026-01-05T20:00:00")
    with pytest.raises(InsufficientTrainingData, match="from --since"):
        check_spans(three_days, RISK_HORIZONS_H, since="2026-01-07T12:00:00")
    # one long run among short ones is enough (the short ones still give cause rows)
    check_spans(one_day | three_days | {"runs/b": one_day["runs/a"]}, RISK_HORIZONS_H)


@pytest.fixture(scope="module")
def acme(tmp_path_factory, operator_export):
    """The operator export ingested (three days of tickets), and its own registry."""
    tmp = tmp_path_factory.mktemp("acme")
    export = operator_export[1]
    env = {"MLFLOW_TRACKING_URI": None, "GUARDIAN_DATA_DIR": str(tmp / "data"),
           "MLFLOW_DISABLE_TELEMETRY": "true"}  # fmt: skip
    run_guardian("ingest", "--run", str(tmp / "acme"), "--source", str(export),
                 "--mapping", str(export / "mapping.yaml"), env=env)  # fmt: skip
    return tmp / "acme", str(export / "labels.yaml"), env, tmp


def _registered(tmp) -> list:
    from mlflow import MlflowClient

    db = tmp / "data" / "mlflow" / "mlflow.db"
    if not db.exists():
        return []
    return MlflowClient(f"sqlite:///{db}").search_model_versions("name = 'network-guardian'")


def test_train_on_the_first_day_of_tickets_registers_nothing(acme):
    run, labels, env, tmp = acme
    # By 01:00 on the second day a handful of tickets are closed: too few ONUs per cause
    # class or per risk interval (which minimum falls short depends on the run's draws).
    res = run_guardian("train", "--run", str(run), "--labels", "tickets", "--label-map", labels,
                       "--until", "2026-01-06T01:00:00", "--every-minutes", "60",
                       "--n-estimators", "10", env=env, check=False)  # fmt: skip
    assert res.returncode == 2, res.stderr[-500:]
    assert "too few labelled faults to train on, nothing registered" in res.stderr
    assert re.search(r"at least \d+ needed", res.stderr), res.stderr[-500:]
    assert _registered(tmp) == []


def test_a_run_shorter_than_a_day_fails_before_its_features(acme, monkeypatch):
    run, labels, env, tmp = acme

    def no_features(*a, **k):
        raise AssertionError("features were computed before the span was checked")

    monkeypatch.setattr("guardian_lib.models.training.feature_frame", no_features)
    res = run_guardian("train", "--run", str(run), "--labels", "tickets", "--label-map", labels,
                       "--until", "2026-01-05T20:00:00", "--every-minutes", "60",
                       env=env, check=False)  # fmt: skip
    assert res.returncode == 2, res.stderr[-500:]
    assert "error: HazardRiskModel: no labelled row for the interval (6, 24] h" in res.stderr
    assert "up to --until 2026-01-05 20:00:00+00:00" in res.stderr
    assert f"{run}: 20.0 h (2026-01-05 00:00 – 2026-01-05 20:00 UTC)" in res.stderr
    assert _registered(tmp) == []


def test_strict_json_writes_null_for_figures_that_are_not_defined():
    import json

    import numpy as np

    from guardian_lib._json import dumps_strict

    text = dumps_strict({"f1": float("nan"), "lift": np.float64("inf"), "n": 3,
                         "per_class": {"A": [1.0, float("-inf")]}, "when": pd.Timestamp(0)},
                        default=str)  # fmt: skip
    assert json.loads(text, parse_constant=lambda t: pytest.fail(t)) == {
        "f1": None, "lift": None, "n": 3, "per_class": {"A": [1.0, None]},
        "when": "1970-01-01 00:00:00",
    }  # fmt: skip
