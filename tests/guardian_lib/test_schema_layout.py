"""One home per fact: the schema's shared names and the run / report layouts."""

from __future__ import annotations

from pathlib import Path

from guardian_lib import schema
from guardian_lib.decision import CLASS_COLUMNS as DECISION_CLASS_COLUMNS
from guardian_lib.decision import PREDICTION_COLUMNS as DECISION_PREDICTION_COLUMNS
from guardian_lib.features import MEASURES as FEATURE_MEASURES
from guardian_lib.features._store import features_dir
from guardian_lib.labels import RISK_HORIZONS_H
from guardian_lib.layout import ReportLayout, RunLayout
from guardian_lib.models import CLASS_COLUMNS as MODEL_CLASS_COLUMNS
from guardian_lib.models import PREDICTION_COLUMNS as MODEL_PREDICTION_COLUMNS
from guardian_lib.models.scoring import predictions_dir
from guardian_lib.warehouse import raw_dir, silver_dir, warehouse_path


def test_prediction_columns_have_one_definition():
    assert list(schema.CLASS_COLUMNS) == list(schema.CAUSE_CLASSES)
    assert MODEL_CLASS_COLUMNS is schema.CLASS_COLUMNS
    assert DECISION_CLASS_COLUMNS == tuple(schema.CLASS_COLUMNS.values())
    assert MODEL_PREDICTION_COLUMNS is DECISION_PREDICTION_COLUMNS is schema.PREDICTION_COLUMNS
    risk = [c for c in schema.PREDICTION_COLUMNS if c.startswith("risk_")]
    assert risk == [f"risk_{h}h" for h in RISK_HORIZONS_H]


def test_measures_and_thresholds_are_shared():
    assert FEATURE_MEASURES is schema.MEASURES
    assert set(schema.MEASURES) <= set(schema.TELEMETRY_COLUMNS)
    # The decision threshold sits above the physical impact level: the rules flag an ONU
    # before its customer is hurt.
    assert schema.RX_IMPACT_DBM < schema.RX_CRITICAL_DBM < schema.RX_OVERLOAD_DBM


def test_writers_and_readers_share_the_run_layout(tmp_path):
    run = RunLayout(tmp_path)
    assert warehouse_path(tmp_path) == run.warehouse
    assert raw_dir(tmp_path, "events") == run.raw("events")
    assert silver_dir(tmp_path, "telemetry") == run.silver("telemetry")
    assert features_dir(tmp_path) == run.features == run.gold(schema.GOLD_TABLES[0])
    assert predictions_dir(tmp_path) == run.predictions == run.gold(schema.GOLD_TABLES[1])
    every = [run.manifest, run.warehouse, run.features, run.predictions, run.shap_importance,
             run.kpis, run.audit]  # fmt: skip
    assert len(set(every)) == len(every) and all(p.is_relative_to(tmp_path) for p in every)


def test_report_layout_names_the_first_report_report_html():
    out = ReportLayout("r")
    assert out.report("pt-BR", first=True) == Path("r/report.html")
    assert out.report("pt-BR", first=False) == Path("r/report.pt-BR.html")
    assert out.scenario("train") != out.scenario("test")
