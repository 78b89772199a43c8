"""The prior of a dark ONU alone on its street box: a dead ONU or a fault of its box."""

import json

import numpy as np
import pandas as pd
import pytest

from guardian_lib.models import CauseClassifier
from guardian_lib.models.cause import lone_box_los


def _frame(rng, n=2000):
    """Training rows from boxes of 8: a sudden LOS of one ONU is a dead ONU (EQUIPMENT_FAIL),
    a light drop is the fibre (INTERMITTENT), an online ONU the premises."""
    cls = rng.choice(["EQUIPMENT_FAIL", "INTERMITTENT", "CUSTOMER_PREMISES"], n)
    dead = cls == "EQUIPMENT_FAIL"
    X = pd.DataFrame(
        {
            "online": np.where(dead, 0.0, 1.0),
            "last_down_los": np.where(dead, 1.0, np.nan),
            "box_size": np.full(n, 8.0),
            "box_share_offline": np.zeros(n),
            "pon_size": np.full(n, 32.0),
            "pon_share_offline": np.zeros(n),
            "rx_delta_7d": np.where(cls == "INTERMITTENT", rng.normal(-5, 1, n), 0.0),
            "tx_last_delta_7d": rng.normal(0, 0.2, n),
        }
    )
    return X, cls


def _dark(box_size: float, **extra) -> pd.DataFrame:
    row = {"online": 0.0, "last_down_los": 1.0, "box_size": box_size, "box_share_offline": 0.0,
           "pon_size": 32.0, "pon_share_offline": 0.0, "rx_delta_7d": 0.0,
           "tx_last_delta_7d": 0.0}  # fmt: skip
    return pd.DataFrame([{**row, **extra}])


def test_lone_box_los_needs_a_box_of_one_a_dark_onu_an_los_and_steady_light():
    rows = pd.DataFrame(
        {
            "box_size": [1.0, 2.0, 1.0, 1.0, 1.0, np.nan, 1.0, 1.0],
            "online": [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            "last_down_los": [1.0, 1.0, 1.0, 0.0, np.nan, 1.0, 1.0, 1.0],
            # A laser that lost 4 dB before it died, an OLT that lost the ONU's light by 5 dB.
            "tx_last_delta_7d": [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, -4.0, np.nan],
            "olt_rx_last_delta_7d": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -5.0],
        }
    )
    assert lone_box_los(rows).tolist() == [True] + [False] * 7
    # Without the drift columns the steady-light check is silent; without the box, all of it.
    assert lone_box_los(rows.drop(columns=["tx_last_delta_7d", "olt_rx_last_delta_7d"])).tolist() == [
        True, False, False, False, False, False, True, True,
    ]  # fmt: skip
    assert not lone_box_los(rows.drop(columns=["box_size"])).any()
    columns = {c: rows[c].to_numpy() for c in rows.columns}
    assert lone_box_los(columns).tolist() == lone_box_los(rows).tolist()


def test_a_dark_onu_alone_on_its_box_splits_equipment_by_the_two_rates(rng):
    X, y = _frame(rng)
    model = CauseClassifier(n_estimators=30, random_state=0).fit(X, y)
    classes = list(model.classes_)
    i, j = classes.index("EQUIPMENT_FAIL"), classes.index("INTERMITTENT")
    shared = model.predict_proba(_dark(8.0))[0]
    alone = model.predict_proba(_dark(1.0))[0]
    # On a box of eight the booster's dead ONU; box size is not what it learned from.
    assert model.predict(_dark(8.0)).tolist() == ["EQUIPMENT_FAIL"]
    assert shared[i] > 0.8
    # Alone: of the equipment probability, 0.3 / (0.3 + 0.06) goes to the box's drop.
    moved = shared[i] * 0.3 / 0.36
    np.testing.assert_allclose(alone[i], shared[i] - moved)
    np.testing.assert_allclose(alone[j], shared[j] + moved)
    np.testing.assert_allclose(alone.sum(), 1.0)
    assert model.predict(_dark(1.0)).tolist() == ["INTERMITTENT"]
    # The compiled path (a float matrix in feature order) gives the same probabilities.
    matrix = _dark(1.0)[list(model.feature_names_in_)].to_numpy(dtype=float)
    np.testing.assert_allclose(model._proba_matrix(matrix)[0], alone)
    # A laser that drifted before it died stays the ONU's own, on any box.
    drifted = model.predict_proba(_dark(1.0, tx_last_delta_7d=-5.0))[0]
    np.testing.assert_allclose(drifted, model.predict_proba(_dark(8.0, tx_last_delta_7d=-5.0))[0])
    # Rates where ONUs fail more often than boxes: the dead ONU stays the likelier.
    model.set_params(box_fault_rate=0.02, onu_failure_rate=0.06)
    assert model.predict(_dark(1.0)).tolist() == ["EQUIPMENT_FAIL"]
    np.testing.assert_allclose(model.predict_proba(_dark(1.0))[0, i], shared[i] * 0.75)
    # Rate 0 turns it off; so does turning the neighbour rules off.
    model.set_params(box_fault_rate=0.0)
    np.testing.assert_array_equal(model.predict_proba(_dark(1.0)), model.predict_proba(_dark(8.0)))
    model.set_params(box_fault_rate=0.3, neighbour_rules=False)
    assert model.predict(_dark(1.0)).tolist() == ["EQUIPMENT_FAIL"]


def test_models_pickled_before_the_rates_existed_do_not_split(rng):
    X, y = _frame(rng, n=600)
    model = CauseClassifier(n_estimators=10, random_state=0).fit(X, y)
    before = model.predict_proba(_dark(8.0))
    for name in ("box_fault_rate", "onu_failure_rate", "equipment_class", "drop_class"):
        delattr(model, name)
    np.testing.assert_array_equal(model.predict_proba(_dark(1.0)), before)


def test_classes_absent_from_training_leave_the_row_alone(rng):
    X, y = _frame(rng, n=600)
    keep = y != "INTERMITTENT"
    model = CauseClassifier(n_estimators=10, random_state=0).fit(X[keep], y[keep])
    np.testing.assert_array_equal(model.predict_proba(_dark(1.0)), model.predict_proba(_dark(8.0)))


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_a_rate_must_be_a_finite_non_negative_number(rng, bad):
    X, y = _frame(rng, n=300)
    with pytest.raises(ValueError, match=r"box_fault_rate must be a finite rate >= 0"):
        CauseClassifier(n_estimators=5, box_fault_rate=bad).fit(X, y)
    with pytest.raises(ValueError, match=r"onu_failure_rate must be a finite rate >= 0"):
        CauseClassifier(n_estimators=5, onu_failure_rate=bad).fit(X, y)


def test_the_prior_is_the_first_reason_where_it_decided(rng):
    X, y = _frame(rng)
    model = CauseClassifier(n_estimators=30, random_state=0).fit(X, y)
    rows = pd.concat([_dark(1.0), _dark(8.0), _dark(1.0, tx_last_delta_7d=-5.0)])
    rows = rows.reset_index(drop=True)
    items = model.lone_box_items(rows, model.predict_proba(rows))
    assert list(items) == [0]  # the drifted laser and the shared box keep the booster's
    item = items[0]
    assert (item["feature"], item["value"], item["model"]) == ("box_size", 1.0, "cause prior")
    # The contribution is the log-odds the split added to the drop class.
    j = list(model.classes_).index("INTERMITTENT")
    after = model.predict_proba(_dark(1.0))[0, j]
    before = model.set_params(box_fault_rate=0.0).predict_proba(_dark(1.0))[0, j]
    logit = np.log(after / (1 - after)) - np.log(before / (1 - before))
    assert item["contribution"] == pytest.approx(logit, abs=1e-3)
    assert model.lone_box_items(rows, model.predict_proba(rows)) == {}


def test_bundle_reasons_start_with_the_prior(tiny_run, rng):
    from guardian_lib.features import FEATURE_COLUMNS
    from guardian_lib.models.bundle import CAUSE_LAYOUT_COLUMNS
    from guardian_lib.models.training import fit_bundle, labelled_frame

    features, labels = labelled_frame(tiny_run, every_minutes=60)
    bundle = fit_bundle(features, labels, n_estimators=5)
    # The cause classifier of a real bundle (every feature, layout columns for the rules
    # only), trained on the synthetic causes over the run's other features.
    X, y = _frame(rng)
    full = features.loc[:, list(FEATURE_COLUMNS)].sample(len(X), replace=True, random_state=0)
    full = full.reset_index(drop=True).assign(**{c: X[c] for c in X.columns})
    bundle.cause = CauseClassifier(
        n_estimators=30, booster_exclude=CAUSE_LAYOUT_COLUMNS, random_state=0
    ).fit(full, y)
    # Two dark ONUs that went down with an LOS, one alone on its box, one on a box of 8.
    rows = features.iloc[:2].copy()
    for c, v in {"online": 0.0, "last_down_los": 1.0, "tx_last_delta_7d": 0.0,
                 "olt_rx_last_delta_7d": 0.0, "box_share_offline": 0.0,
                 "pon_share_offline": 0.0}.items():  # fmt: skip
        rows[c] = v
    rows["box_size"] = [1.0, 8.0]
    out = bundle.predict(rows, explain=True, top_k=3)
    assert out["p_intermittent"].iloc[0] > out["p_equipment_fail"].iloc[0]
    assert out["p_intermittent"].iloc[1] < out["p_equipment_fail"].iloc[1]
    first = [json.loads(r) for r in out["top_reasons"]]
    assert first[0][0]["model"] == "cause prior" and len(first[0]) == 3
    assert all(r["model"] == "cause" for r in first[1]) and len(first[1]) == 3
