"""SHAP per class, the cap on explained rows and the online scorer."""

import numpy as np
import pandas as pd
import pytest

from guardian_lib.features import load_cube, symptomatic
from guardian_lib.models import CauseClassifier, OnlineScorer
from guardian_lib.models.explain import class_boosters, shap_values
from guardian_lib.warehouse import connect


def test_per_class_shap_equals_the_whole_models_bit_for_bit(rng):
    n = 1500
    X = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(6)})
    X.loc[rng.random(n) < 0.1, "x2"] = np.nan
    y = np.select([X["x0"] > 0.8, X["x1"] + X["x3"] > 0.5, X["x4"] < -1], ["A", "B", "C"], "D")
    model = CauseClassifier(n_estimators=25, random_state=0).fit(X, y)
    rows = X.iloc[:300]
    cls = rng.integers(0, 4, len(rows))
    full = model.booster_.predict(rows, pred_contrib=True).reshape(len(rows), 4, X.shape[1] + 1)
    expected = full[np.arange(len(rows)), cls, : X.shape[1]]
    np.testing.assert_array_equal(shap_values(model.booster_, rows, cls), expected)
    boosters = class_boosters(model.booster_)
    assert len(boosters) == 4 and all(b.num_trees() == 25 for b in boosters)
    assert class_boosters(model.booster_) is boosters  # built once per model
    with pytest.raises(ValueError, match=r"class_index must give one class in \[0, 4\)"):
        shap_values(model.booster_, rows, np.full(len(rows), 4))


@pytest.fixture
def busy(tmp_path, only_fault, monkeypatch):
    """A bundle trained on a run full of hung CPEs and fibre cuts, and that run's features."""
    from functools import partial

    from guardian_lib.ingest import ingest_run
    from guardian_lib.models import training
    from guardian_lib.models.hazard import HazardRiskModel
    from guardian_lib.models.training import fit_bundle, labelled_frame
    from simulator.output import simulate_to_dir

    # The tests below need risks that move from one tick to the next (rows the online
    # scorer keeps must differ from a full prediction somewhere); on 1.5 days of a tiny
    # network the default leaves of >= 100 rows hardly split, so these boosters get the
    # small leaves of before 2026-12-06.
    monkeypatch.setattr(
        training, "HazardRiskModel", partial(HazardRiskModel, min_child_samples=20, reg_lambda=0.0)
    )

    sc = only_fault("cpe_hang", 200.0, days=1.5)  # > 24 h: risk_24h needs it
    faults = sc.faults.model_dump()
    faults["feeder_cut"]["rate_per_year"] = 200.0
    faults["fibre_degradation"]["rate_per_year"] = 50.0
    run = simulate_to_dir(sc.with_overrides(faults=faults), tmp_path / "busy", seed=4)
    ingest_run(run)
    features, labels = labelled_frame(run, every_minutes=30)
    return run, fit_bundle(features, labels, n_estimators=15), features


def test_risk_explanations_are_capped_highest_risk_first(busy):
    _, bundle, features = busy
    full = bundle.predict(features)
    sym = symptomatic(features)
    hot = np.flatnonzero(~sym & (full["top_reasons"] != "[]").to_numpy())
    assert len(hot) > 10
    k = len(hot) // 3
    capped = bundle.predict(features, max_risk_explained=k)
    # Only the reasons change, and only for the non-symptomatic rows past the cap.
    pd.testing.assert_frame_equal(
        capped.drop(columns="top_reasons"), full.drop(columns="top_reasons")
    )
    np.testing.assert_array_equal(capped["top_reasons"][sym], full["top_reasons"][sym])
    risk = full["risk_24h"].to_numpy()
    kept = hot[np.argsort(-risk[hot], kind="stable")][:k]
    explained = np.flatnonzero(~sym & (capped["top_reasons"] != "[]").to_numpy())
    np.testing.assert_array_equal(explained, np.sort(kept))
    np.testing.assert_array_equal(capped["top_reasons"][kept], full["top_reasons"][kept])
    assert risk[kept].min() >= risk[np.setdiff1d(hot, kept)].max()  # highest risk first


def test_online_scorer_explains_the_capped_rows(busy):
    run, bundle, _ = busy
    con = connect(run)
    lo, hi = con.execute("SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM telemetry").fetchone()
    cube = load_cube(con, lo, hi)
    con.close()
    assert OnlineScorer(bundle, cube.onus).max_risk_explained == 500
    scorer = OnlineScorer(bundle, cube.onus, window_ticks=36, max_risk_explained=2)
    for k in range(120):
        scorer.update(cube.tick(k))
    preds = scorer()
    expected = bundle.predict(scorer.cube.latest_features(), max_risk_explained=2)
    pd.testing.assert_frame_equal(preds, expected)
    assert len(preds) == cube.n_onus


def test_a_bundle_from_an_older_feature_set_asks_to_be_retrained(busy):
    import dataclasses

    _, bundle, features = busy
    # Risk models see the ONU's own features only.
    assert list(bundle.risk.feature_names_in_) == list(bundle.risk_columns)
    assert list(bundle.risk[24].feature_names_in_) == list(bundle.risk_columns)
    old = dataclasses.replace(
        bundle, feature_columns=(*bundle.feature_columns, "olt_size"), model_version="ng/1"
    )
    with pytest.raises(ValueError, match=r"ng/1 was trained on an older feature set .*olt_size"):
        old.predict(features)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['rx_dbm'\]"):
        bundle.predict(features.drop(columns="rx_dbm"))


def test_risk_never_decreases_with_the_horizon_on_a_scored_run(busy):
    import dataclasses

    from guardian_lib.labels import build_labels
    from guardian_lib.models.training import evaluate_bundle, load_truth

    run, bundle, features = busy
    preds = bundle.predict(features, explain=False)
    r2, r6, r24 = (preds[f"risk_{h}h"].to_numpy() for h in (2, 6, 24))
    assert ((r2 <= r6) & (r6 <= r24)).all()  # every row
    assert r24.max() > r2.min()  # not a constant
    labels = build_labels(features, load_truth(run))
    assert evaluate_bundle(bundle, features, labels)["monotonicity_violations"] == 0
    # A bundle of an older release (one classifier per horizon) asks to be retrained.
    old = dataclasses.replace(bundle, risk={h: bundle.risk[h] for h in (2, 6, 24)})
    with pytest.raises(ValueError, match="predicts each risk horizon separately"):
        old.predict(features)


class _Seeded:
    """A snapshot that takes the scorer's prediction arrays (as ``Snapshot`` does)."""

    def seed_predictions(self, frame, cols):
        self.frame, self.cols = frame, cols


def test_online_scorer_full_every_keeps_only_rows_that_cannot_matter(busy):
    run, bundle, _ = busy
    con = connect(run)
    lo, hi = con.execute("SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM telemetry").fetchone()
    cube = load_cube(con, lo, hi)
    con.close()
    scorer = OnlineScorer(bundle, cube.onus, window_ticks=36, explain=False, full_every=3)
    previous = None
    kept_somewhere = False
    for k in range(150):
        scorer.update(cube.tick(k))
        if k < 120 or k % 3:
            continue
        feats = scorer.cube.latest_features()
        full = bundle.predict(feats, explain=False)
        snap = _Seeded()
        preds = scorer(snap)
        # The snapshot got the arrays the frame was built from, equal to its columns.
        assert snap.frame is preds and list(snap.cols) == list(preds.columns)
        for c, v in snap.cols.items():
            a = preds[c].to_numpy()
            assert len(v) == len(a) and ((np.asarray(v) == a) | (pd.isna(v) & pd.isna(a))).all()
        assert len(preds) == cube.n_onus
        assert (preds["ts"] == full["ts"]).all()
        same = np.ones(len(full), dtype=bool)
        for c in full.columns:
            a, b = preds[c].to_numpy(), full[c].to_numpy()
            same &= (a == b) | (pd.isna(a) & pd.isna(b))
        if previous is None or scorer._calls % 3 == 1:  # a full call
            assert same.all()
        else:
            # Re-predicted rows equal the full prediction; the others are the last call's.
            must = symptomatic(feats) | (previous["risk_24h"].to_numpy() >= 0.05)
            assert same[must].all()
            old = ~same
            kept_somewhere |= bool(old.any())
            np.testing.assert_array_equal(
                preds["risk_24h"].to_numpy()[old], previous["risk_24h"].to_numpy()[old]
            )
        previous = preds
    assert kept_somewhere  # the partial calls did keep some rows
    # A restart between two partial calls keeps the kept rows (the state holds them).
    restarted = OnlineScorer(bundle, cube.onus, window_ticks=36, explain=False, full_every=3)
    restarted.load_state_dict(scorer.state_dict())
    for k in range(150, 152):
        scorer.update(cube.tick(k))
        restarted.update(cube.tick(k))
        pd.testing.assert_frame_equal(restarted(), scorer(), check_exact=True)
    with pytest.raises(ValueError, match="full_every must be at least 1"):
        OnlineScorer(bundle, cube.onus, full_every=0)
