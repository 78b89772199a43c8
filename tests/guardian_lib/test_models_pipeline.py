"""train → register → score → evaluate through the CLI, on a tiny but busy run."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from cli_runner import CliResult, run_guardian

from guardian_lib.ingest import ingest_run
from guardian_lib.models import PREDICTION_COLUMNS
from simulator.output import simulate_to_dir
from simulator.scenario import load_scenario

BUSY_RATES = {
    "feeder_cut": 300.0,
    "box_fault": 150.0,
    "olt_board_failure": 30.0,
    "upstream_failure": 150.0,
    "cpe_hang": 30.0,
    "wifi_interference": 20.0,
    "customer_power_off": 20.0,
    "hardware_failure": 10.0,
    "fibre_degradation": 30.0,
}


def busy_run(tmp: Path, name: str, seed: int) -> Path:
    sc = load_scenario("tiny", days=2)
    faults = sc.faults.model_dump()
    for kind, rate in BUSY_RATES.items():
        faults[kind]["rate_per_year"] = rate
    run = simulate_to_dir(sc.with_overrides(faults=faults), tmp / name, seed=seed)
    ingest_run(run)
    return run


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("models")
    e = dict(os.environ)
    e.pop("MLFLOW_TRACKING_URI", None)
    e["GUARDIAN_DATA_DIR"] = str(tmp / "data")
    e["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return tmp, e


def in_process(env: dict, *args: str, check: bool = True) -> CliResult:
    """``guardian ARGS`` in this process, with ``env``'s data folder and tracking store.

    For tests of what the commands do; the start-up of a process is not what they test.
    """
    keys = ("GUARDIAN_DATA_DIR", "MLFLOW_DISABLE_TELEMETRY", "MLFLOW_TRACKING_URI")
    return run_guardian(*args, env={k: env.get(k) for k in keys}, check=check)


def test_train_score_evaluate(env, monkeypatch):
    tmp, e = env
    train = busy_run(tmp, "train", seed=1)
    test = busy_run(tmp, "test", seed=2)
    # An operator's own prior for a dark ONU alone on its box (tickets: drop repairs per
    # box-year, ONU swaps per ONU-year) reaches the registered cause classifier.
    res = in_process(
        e, "train", "--run", str(train), "--n-estimators", "30", "--every-minutes", "30",
        "--box-fault-rate", "0.5", "--onu-failure-rate", "0.1",
    )  # fmt: skip
    assert "registered network-guardian/1" in res.stderr
    assert (tmp / "data" / "mlflow" / "mlflow.db").exists()
    listing = in_process(e, "models", "list").stdout
    assert "network-guardian/1" in listing and "champion" in listing

    in_process(e, "score", "--run", str(test), "--every-minutes", "30")
    files = list((test / "lake" / "gold" / "ml_predictions").glob("*.parquet"))
    assert len(files) == 1
    preds = pd.read_parquet(files[0])
    assert list(preds.columns) == list(PREDICTION_COLUMNS)
    assert (preds["model_version"] == "network-guardian/1").all()
    probs = preds[[c for c in preds if c.startswith(("p_", "risk_"))] + ["anomaly_score"]]
    assert ((probs >= 0) & (probs <= 1) | probs.isna()).all().all()
    assert probs[["anomaly_score", "risk_2h", "risk_6h", "risk_24h"]].notna().all().all()
    classes = preds[[c for c in preds if c.startswith("p_")]]
    explained_rows = classes.notna().all(axis=1)
    assert explained_rows.any()  # symptomatic rows get class probabilities summing to 1
    assert classes[explained_rows].sum(axis=1).between(0.999, 1.001).all()
    explained = preds[preds["top_reasons"] != "[]"]
    assert len(explained) > 0
    reason = json.loads(explained["top_reasons"].iloc[0])[0]
    assert {"feature", "value", "contribution", "model"} <= set(reason)

    out = tmp / "metrics.json"
    in_process(e, "evaluate", "--run", str(test), "--json", str(out), "--every-minutes", "30")
    m = json.loads(out.read_text())
    for key in (
        "massive_precision", "massive_recall", "massive_f1", "macro_f1", "per_class",
        "confusion_matrix", "risk_2h_pr_auc", "risk_6h_pr_auc", "risk_24h_pr_auc",
        "risk_24h_prevalence", "risk_24h_brier", "anomaly_pr_auc", "anomaly_median_lead_minutes",
        "baselines",
    ):  # fmt: skip
        assert key in m, key
    assert set(m["per_class"]) == {
        "MASSIVE_OUTAGE", "CUSTOMER_PREMISES", "EQUIPMENT_FAIL", "EXTERNAL_NETWORK",
        "INTERMITTENT", "UNKNOWN",
    }  # fmt: skip
    assert m["massive_f1"] > 0.5  # a busy tiny run: the neighbour signal is strong
    assert "macro_f1" in m["baselines"]

    # train_and_evaluate's path (notebook 04): the test run's features, labels and
    # predictions computed once give the file `score` wrote and the metrics of `evaluate`.
    from guardian_lib._json import dumps_strict
    from guardian_lib.models.registry import load_bundle
    from guardian_lib.models.training import labelled_frame
    from guardian_lib.models.workflow import evaluate

    monkeypatch.setenv("GUARDIAN_DATA_DIR", e["GUARDIAN_DATA_DIR"])
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    labelled = labelled_frame(test, every_minutes=30)
    champion = load_bundle("champion")
    assert (champion.cause.box_fault_rate, champion.cause.onu_failure_rate) == (0.5, 0.1)
    once = champion.predict(labelled[0], explain=True)
    pd.testing.assert_frame_equal(once, preds, check_dtype=False)
    again = evaluate(test, every_minutes=30, labelled=labelled, predictions=once)
    assert json.loads(dumps_strict(again, default=str)) == m
    with pytest.raises(ValueError, match="predictions"):
        evaluate(test, every_minutes=30, predictions=once)

    # The last 12 h: no row has a 24 h label, so its figures are not defined. The file
    # and stdout are strict JSON (NaN is not JSON): those figures are null.
    late = tmp / "late.json"
    end = pd.read_parquet(next((test / "lake" / "gold" / "ml_predictions").glob("*.parquet")))
    split = (end["ts"].max() - pd.Timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%S")
    res = in_process(e, "evaluate", "--run", str(test), "--json", str(late),
                     "--every-minutes", "30", "--split-time", split)  # fmt: skip
    for text in (late.read_text(), res.stdout):
        late_m = json.loads(text, parse_constant=_refuse)
        assert late_m["risk_24h_pr_auc"] is None and late_m["risk_24h_brier"] is None
        assert late_m["risk_24h_note"]  # why it is not defined
        assert isinstance(late_m["massive_support"], int)


def _refuse(token: str):
    raise AssertionError(f"not strict JSON: {token}")


def test_unknown_alias_and_untrained_run_give_clear_errors(env, tiny_run):
    tmp, e = env
    res = in_process(e, "score", "--run", str(tiny_run), "--alias", "nope", check=False)
    assert res.returncode == 2
    assert "alias 'nope'" in res.stderr
