"""Features on Dask, one task per (date, OLT group), equal the single-process frame."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from guardian_lib.features import (
    FEATURE_COLUMNS,
    distributed_feature_frame,
    feature_frame,
    olt_partitions,
    write_feature_partitions,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "simulator"))
from test_sharded import _SCENARIO  # noqa: E402  (the three-region test scenario)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from guardian_lib.ingest import ingest_run
    from simulator.scenario import load_scenario
    from simulator.sharded import simulate_sharded

    # 1.5 days from midnight: two dates; four OLTs in three regions.
    sc = load_scenario(_SCENARIO, days=1.5)
    out = simulate_sharded(sc, tmp_path_factory.mktemp("fd") / "run", 1)
    ingest_run(out)
    return out


@pytest.fixture(scope="module")
def client():
    from guardian_lib.cluster import open_client

    with open_client(n_workers=2, processes=False) as c:
        yield c


@pytest.fixture(scope="module")
def bundle(run):
    from guardian_lib.models.training import fit_bundle, labelled_frame

    features, labels = labelled_frame(run, every_minutes=60)
    b = fit_bundle(features, labels, n_estimators=5)
    b.model_version = "test/1"
    return b


def test_distributed_equals_serial(run, client):
    serial = feature_frame(run, every_minutes=60)
    dist = distributed_feature_frame(run, client, every_minutes=60)
    assert len(serial) > 0 and serial["ts"].dt.date.nunique() == 2
    pd.testing.assert_frame_equal(
        serial[["ts", "onu_id"]].reset_index(drop=True), dist[["ts", "onu_id"]]
    )
    a = serial[list(FEATURE_COLUMNS)].to_numpy(np.float64)
    b = dist[list(FEATURE_COLUMNS)].to_numpy(np.float64)
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-9, equal_nan=True)
    # The neighbour shares are not all zero: the partitions did cut groups that matter.
    assert np.nanmax(serial["olt_share_offline"]) > 0


def test_partitions_are_written_by_date_and_group(run, client, tmp_path):
    rows = write_feature_partitions(run, tmp_path / "features", client, every_minutes=60)
    files = sorted(
        p.relative_to(tmp_path / "features") for p in (tmp_path / "features").rglob("*.parquet")
    )
    assert len(files) == 2 * 4  # two dates x four OLT groups (no shared geo cell)
    back = pd.read_parquet(tmp_path / "features")
    assert len(back) == rows == len(feature_frame(run, every_minutes=60))


def test_olt_groups_join_olts_that_share_a_geo_cell():
    onus = pd.DataFrame(
        {
            "onu_id": ["a1", "a2", "b1", "c1"],
            "olt_id": ["A", "A", "B", "C"],
            # b1 sits in a2's H3 cell; c1 is far away.
            "lat": [-22.90, -22.95, -22.95, -20.0],
            "lon": [-47.06, -47.10, -47.10, -47.0],
        }
    )
    assert olt_partitions(onus) == [["a1", "a2", "b1"], ["c1"]]


def test_scoring_over_partitions_equals_serial(run, client, bundle):
    from guardian_lib.models.scoring import score_partitions

    features = feature_frame(run, every_minutes=60)
    serial = bundle.predict(features, explain=False)
    dist = score_partitions(run, bundle, client, every_minutes=60)
    pd.testing.assert_frame_equal(
        serial[["ts", "onu_id"]].reset_index(drop=True), dist[["ts", "onu_id"]]
    )
    cols = [c for c in serial.columns if c.startswith(("risk_", "p_", "anomaly"))]
    assert cols
    np.testing.assert_allclose(
        dist[cols].to_numpy(float), serial[cols].to_numpy(float), rtol=0, atol=1e-9,
        equal_nan=True,
    )  # fmt: skip


def test_materialize_on_dask_writes_the_serial_gold_files(run, client, tmp_path):
    import shutil

    from guardian_lib.features import features_dir, materialize_features
    from guardian_lib.features._distributed import materialize_features_distributed

    twin = tmp_path / "twin"
    shutil.copytree(run, twin, ignore=shutil.ignore_patterns("gold"))
    shutil.rmtree(features_dir(twin), ignore_errors=True)
    serial = materialize_features(run, every_minutes=60)
    dist = materialize_features_distributed(twin, client, every_minutes=60)
    assert dist == serial and serial["dates_computed"] == 2
    for folder in sorted(features_dir(run).glob("date=*")):
        other = features_dir(twin) / folder.name
        assert (other / "inputs.sha").read_text() == (folder / "inputs.sha").read_text()
        a, b = pd.read_parquet(folder / "data.parquet"), pd.read_parquet(other / "data.parquet")
        pd.testing.assert_frame_equal(a[["ts", "onu_id"]], b[["ts", "onu_id"]])
        np.testing.assert_allclose(
            b[list(FEATURE_COLUMNS)].to_numpy(np.float64),
            a[list(FEATURE_COLUMNS)].to_numpy(np.float64),
            rtol=0, atol=1e-9, equal_nan=True,
        )  # fmt: skip
    # Current dates are skipped, by either path.
    again = materialize_features_distributed(twin, client, every_minutes=60)
    assert again == {"dates_computed": 0, "dates_unchanged": 2, "rows": serial["rows"]}
    assert materialize_features(twin, every_minutes=60)["dates_computed"] == 0


def test_scoring_with_reasons_equals_serial_under_a_run_wide_cap(run, client, bundle):
    from guardian_lib.models.scoring import _explain_candidates, score_partitions

    features = feature_frame(run, every_minutes=60)
    full = bundle.predict(features, explain=False)
    # A cap below the run's candidates: per-partition caps would pick other rows.
    n_sym = int(full["p_massive_outage"].notna().sum())
    cap = max(1, min(n_sym, len(_explain_candidates(full, 10**9))) // 3)
    serial = bundle.predict(features, explain=True, max_explained=cap)
    dist = score_partitions(run, bundle, client, every_minutes=60, explain=True, max_explained=cap)
    explained = serial["top_reasons"] != "[]"
    assert 0 < explained.sum() < len(serial)
    assert dist["top_reasons"].tolist() == serial["top_reasons"].tolist()
    num = [c for c in serial.columns if c.startswith(("risk_", "p_", "anomaly"))]
    np.testing.assert_allclose(
        dist[num].to_numpy(float), serial[num].to_numpy(float), rtol=0, atol=1e-9,
        equal_nan=True,
    )  # fmt: skip


def test_score_run_on_dask_writes_the_serial_file(run, client, bundle, tmp_path):
    from guardian_lib.models.scoring import score_run

    a = pd.read_parquet(score_run(run, bundle, every_minutes=60, explain=False))
    b = pd.read_parquet(score_run(run, bundle, every_minutes=60, explain=False, client=client))
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=1e-9)


def _assert_same_metrics(a, b, path="metrics"):
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _assert_same_metrics(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, float):
        assert (a != a and b != b) or abs(a - b) <= 1e-9, (path, a, b)
    else:
        assert a == b, (path, a, b)


def _serial_and_partitions(run, client, bundle, split_time: str):
    """The serial evaluation, the Dask one, and the features they scored."""
    from guardian_lib.models.distributed import evaluate_partitions
    from guardian_lib.models.training import evaluate_bundle, labelled_frame, load_truth

    features, labels = labelled_frame(run, every_minutes=60)
    keep = features["ts"] >= pd.Timestamp(split_time, tz="UTC")
    assert 0 < keep.sum() < len(keep)
    features, labels = (
        features[keep].reset_index(drop=True),
        labels[keep].reset_index(drop=True),
    )
    truth = load_truth(run)
    serial = evaluate_bundle(bundle, features, labels, truth)
    reference = features.sample(min(200, len(features)), random_state=0)
    dist, drift = evaluate_partitions(
        run, bundle, client, truth, 60, split_time=split_time, reference=reference
    )
    return serial, dist, drift, features, reference


def test_evaluation_over_partitions_equals_serial(run, client, bundle):
    from guardian_lib.models.drift import drift_report

    # rows before the split are left out, their labels are not
    serial, dist, drift, features, reference = _serial_and_partitions(
        run, client, bundle, "2026-03-02T06:00"
    )
    assert serial["n_symptomatic"] > 0 and sum(map(sum, serial["confusion_matrix"]["matrix"]))
    _assert_same_metrics(serial, dist)
    want = drift_report(reference, features, columns=bundle.feature_columns)
    got = drift.set_index("feature").loc[want["feature"]]
    np.testing.assert_allclose(got["psi"].to_numpy(), want["psi"].to_numpy(), atol=1e-9)


def test_a_split_too_late_for_the_risk_horizons_gives_notes_not_a_crash(run, client, bundle):
    """The last scoring time is 2026-03-03 11:00: rows from 10:00 have no risk label."""
    serial, dist, *_ = _serial_and_partitions(run, client, bundle, "2026-03-03T10:00")
    _assert_same_metrics(serial, dist)
    for h in (2, 6, 24):
        assert "ends before the horizon" in dist[f"risk_{h}h_note"]
        assert np.isnan(dist[f"risk_{h}h_pr_auc"]) and np.isnan(dist[f"risk_{h}h_brier"])


def test_features_command_on_a_local_cluster(run, tmp_path, monkeypatch):
    import functools
    import json
    import shutil

    import typer
    from typer.testing import CliRunner

    import guardian_lib.cluster
    from guardian_lib.features import features_dir, materialize_features
    from guardian_lib.models.cli import register

    # The command's own LocalCluster, with thread workers (process start-up is slow).
    threads = functools.partial(guardian_lib.cluster.open_client, processes=False)
    monkeypatch.setattr(guardian_lib.cluster, "open_client", threads)

    app = typer.Typer()
    register(app)
    twin = tmp_path / "twin"
    shutil.copytree(run, twin, ignore=shutil.ignore_patterns("gold"))
    args = ["features", "--run", str(twin), "--every-minutes", "60"]
    bad = CliRunner().invoke(app, [*args, "--scheduler", "http://x:1"])
    assert bad.exit_code != 0 and "tcp://HOST:8786" in bad.output
    assert not features_dir(twin).exists()
    res = CliRunner().invoke(app, [*args, "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert "Dask dashboard: http://" in res.output
    written = json.loads(res.output.strip().splitlines()[-1])
    assert written["dates_computed"] == 2 and written["rows"] > 0
    # The serial command sees the dates the cluster wrote as current.
    assert materialize_features(twin, every_minutes=60)["dates_computed"] == 0
