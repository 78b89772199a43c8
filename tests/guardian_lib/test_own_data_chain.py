"""examples/own-data end to end, from an operator export alone (issue 16).

export → ingest → features → train on tickets → score → evaluate on held-out tickets →
decide (the autopilot on 6 h of history, simulate mode) → report, then the feedback loop (train --since: a challenger, promoted only if better).
Every step is the CLI a user runs; the warehouse never sees the simulator's tables.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from cli_runner import CliResult, run_guardian

from guardian_lib.models import PREDICTION_COLUMNS

SPLIT = "2026-01-07T00:00:00"
FAST = ("--every-minutes", "60")


@pytest.fixture(scope="module")
def env(tmp_path_factory, operator_export):
    tmp = tmp_path_factory.mktemp("own_data")
    e = {
        "MLFLOW_TRACKING_URI": None,
        "GUARDIAN_DATA_DIR": str(tmp / "data"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    return tmp, e, operator_export[1]


def guardian(env: dict, *args: str, check: bool = True) -> CliResult:
    """``guardian ARGS`` in this process: the chain is under test, not process start-up."""
    return run_guardian(*args, env=env, check=check)


@pytest.mark.slow  # eight CLI commands in a row
def test_export_alone_to_scores_evaluation_report_and_a_challenger(env):
    tmp, e, export = env
    w = tmp / "acme"
    labels = str(export / "labels.yaml")
    guardian(e, "ingest", "--run", str(w), "--source", str(export),
             "--mapping", str(export / "mapping.yaml"))  # fmt: skip
    assert not (w / "ops" / "faults_truth.parquet").exists()
    orders = pd.read_parquet(w / "ops" / "service_orders.parquet")
    assert {"closure_code", "notes", "onu_id"} <= set(orders.columns)
    guardian(e, "features", "--run", str(w))

    res = guardian(e, "train", "--run", str(w), "--labels", "tickets", "--label-map", labels,
                   "--until", SPLIT, "--n-estimators", "20", *FAST)  # fmt: skip
    assert "registered network-guardian/1" in res.stderr
    assert "tickets:" in res.stderr and "unlabelled" in res.stderr

    guardian(e, "score", "--run", str(w), *FAST)
    preds = pd.read_parquet(next((w / "lake" / "gold" / "ml_predictions").glob("*.parquet")))
    assert list(preds.columns) == list(PREDICTION_COLUMNS)
    assert preds["risk_24h"].between(0, 1).all()

    out = tmp / "evaluation.json"
    guardian(e, "evaluate", "--run", str(w), "--labels", "tickets", "--label-map", labels,
             "--split-time", SPLIT, "--json", str(out), *FAST)  # fmt: skip
    m = json.loads(out.read_text(), parse_constant=_not_json)  # strict JSON: no NaN
    assert m["labels"] == "tickets" and m["n_symptomatic"] > 0
    assert m["macro_f1_classes"]
    if m["massive_support"]:
        assert 0 <= m["massive_f1"] <= 1 and "massive_note" not in m
    else:  # no massive ticket in the held-out period: not measurable (null), and said so
        assert m["massive_f1"] is None and m["massive_note"]
    assert m["ticket_labels"]["counts"]["labelled"] > 0
    # the ticket report covers the held-out rows only, as the metrics do
    assert m["ticket_labels"]["labelled_rows"] == m["n_symptomatic"]

    # What the autopilot would have decided on 6 h of that history (simulate mode, audited).
    decide = tmp / "decide.json"
    guardian(e, "decide", "--run", str(w), "--start", "2026-01-06T00:00:00",
             "--end", "2026-01-06T06:00:00", "--warmup-hours", "2", "--json", str(decide))  # fmt: skip
    d = json.loads(decide.read_text())
    assert d["model_version"] == "network-guardian/1" and d["decisions"] > 0
    assert d["audit"] == str(w / "audit.duckdb") and d["ticks"] == 6 * 12 + 1

    report = tmp / "report.html"
    guardian(e, "report", "--run", str(w), "--out", str(report))
    assert report.stat().st_size > 10_000
    from guardian_lib.dashboards._compress import expand_scripts
    from guardian_lib.i18n import label

    text = expand_scripts(report.read_text())
    assert label("decision_reasons", "en") in text  # the decisions section, from decide
    assert "guardian decide --run RUN" not in text  # …not its "not computed" hint

    # The feedback loop: a challenger on the newest rows, judged on the last day.
    res = guardian(e, "train", "--run", str(w), "--labels", "tickets", "--label-map", labels,
                   "--since", "2026-01-05T12:00:00", "--holdout-days", "1",
                   "--n-estimators", "20", *FAST)  # fmt: skip
    r = json.loads(res.stdout)
    assert r["champion"] == "network-guardian/1" and r["challenger"] == "network-guardian/2"
    assert "macro_f1" in r["challenger_metrics"] and "macro_f1" in r["champion_metrics"]
    new, old = r["challenger_metrics"]["macro_f1"], r["champion_metrics"]["macro_f1"]
    assert r["promoted"] == (new > old)
    from mlflow import MlflowClient

    # A client of its own: the worker's global MLflow tracking URI stays untouched.
    client = MlflowClient(f"sqlite:///{tmp / 'data' / 'mlflow' / 'mlflow.db'}")
    aliases = client.get_registered_model("network-guardian").aliases
    assert str(aliases["champion"]) == ("2" if r["promoted"] else "1")
    assert str(aliases["challenger"]) == "2"
    # Both figures are logged with the decision.
    experiment = client.get_experiment_by_name("network-guardian")
    runs = client.search_runs([experiment.experiment_id],
                              filter_string="attributes.run_name = 'promotion'")  # fmt: skip
    assert len(runs) == 1
    assert runs[0].data.metrics["challenger_macro_f1"] == pytest.approx(new)
    assert runs[0].data.metrics["champion_macro_f1"] == pytest.approx(old)


def _not_json(token: str):
    raise AssertionError(f"not strict JSON: {token}")


def _main(capsys, *args: str) -> tuple[int, str]:
    """``guardian ARGS`` in this process (its one error path); exit code and stderr."""
    from guardian_lib.cli import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return exc.value.code, capsys.readouterr().err


def test_ticket_labels_need_a_label_map_and_a_run_with_tickets(operator_export, tiny_run, capsys):
    export = operator_export[1]
    code, err = _main(capsys, "train", "--run", str(tiny_run), "--labels", "tickets")
    assert code == 2 and "--label-map" in err
    code, err = _main(capsys, "train", "--run", str(tiny_run), "--labels", "tickets",
                      "--label-map", str(export / "labels.yaml"))  # fmt: skip
    assert code == 2 and "closure_code / notes" in err
    bad = export.parent / "bad-labels.yaml"
    bad.write_text("classes: {MASSIVE_OUTAGE: ['ROMP(']}\n")
    code, err = _main(capsys, "train", "--run", str(tiny_run), "--labels", "tickets",
                      "--label-map", str(bad))  # fmt: skip
    assert code == 2
    assert "bad-labels.yaml: invalid label map: classes.MASSIVE_OUTAGE[0]" in err
    code, err = _main(capsys, "train", "--run", str(tiny_run), "--since", "2026-01-05")
    assert code == 2 and "--since" in err
