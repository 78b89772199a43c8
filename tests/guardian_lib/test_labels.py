"""Labels from ground truth: cause precedence, risk horizons and precursor rows."""

import numpy as np
import pandas as pd
import pytest

from guardian_lib.labels import build_labels

T0 = pd.Timestamp("2026-01-05", tz="UTC")
LATER = T0 + pd.Timedelta(days=10)  # the run goes on well after the frame


def frame(onus=("A", "B"), hours=30, sick=()):
    """Healthy features every 15 min; ``sick`` = [(onu, from_h, to_h)] offline."""
    ts = T0 + pd.to_timedelta(np.arange(hours * 4) * 15, unit="min")
    f = pd.DataFrame(
        [(t, o) for t in ts for o in onus], columns=["ts", "onu_id"]
    )  # tick-major, like compute_features
    for c in ("los_1h", "dying_gasp_1h", "pppoe_down_1h", "high_ber_1h", "low_rx_1h"):
        f[c] = 0.0
    f["online"], f["pppoe_down"], f["loss_pct"], f["latency_ms"], f["rx_dbm"] = (
        1.0,
        0.0,
        0.1,
        9.0,
        -20,
    )
    h = (f["ts"] - T0).dt.total_seconds() / 3600
    for onu, a, b in sick:
        f.loc[(f["onu_id"] == onu) & (h >= a) & (h < b), "online"] = 0.0
    return f, h.to_numpy()


def truth(*rows):
    """rows: (kind, cause_class, start_h, impact_h or None, end_h or None, [onus])."""
    out = []
    for i, (kind, cls, s, imp, e, onus) in enumerate(rows):
        out.append(
            {
                "fault_id": f"F{i}",
                "kind": kind,
                "cause_class": cls,
                "start_at": T0 + pd.Timedelta(hours=s),
                "impact_start_at": pd.NaT if imp is None else T0 + pd.Timedelta(hours=imp),
                "end_at": pd.NaT if e is None else T0 + pd.Timedelta(hours=e),
                "affected_onus": list(onus),
            }
        )
    return pd.DataFrame(out)


def test_risk_rows_before_the_impact_are_labelled_and_rows_after_it_are_not():
    # A laser drifts from 10 h and dies at 20 h; nobody fixes it.
    f, h = frame(sick=[("A", 20, 30)])
    lab = build_labels(
        f, truth(("hardware_failure", "EQUIPMENT_FAIL", 10, 20, None, ["A"])), observed_until=LATER
    )
    a = (f["onu_id"] == "A").to_numpy()
    # During the drift (10–20 h) the customer is not hurt yet: labelled, positive within H.
    for hz in (2, 6, 24):
        y = lab[f"risk_{hz}h"].to_numpy()
        before = a & (h < 20)
        assert not np.isnan(y[before]).any()
        np.testing.assert_array_equal(y[before], (h[before] >= 20 - hz).astype(float))
        assert np.isnan(y[a & (h >= 20)]).all()  # it hurts: nothing left to predict
        assert (y[~a] == 0).all()
    assert (lab.loc[a & (h >= 20), "cause"] == "EQUIPMENT_FAIL").all()
    assert lab.loc[a & (h < 20), "cause"].isna().all()  # no symptom, no cause


def test_a_fault_fixed_before_it_hurt_never_makes_a_positive():
    f, h = frame()
    lab = build_labels(
        f, truth(("cpe_hang", "CUSTOMER_PREMISES", 5, None, 8, ["A"])), observed_until=LATER
    )
    assert (lab["risk_24h"] == 0).all()
    assert lab.loc[(f["onu_id"] == "A").to_numpy() & (h >= 5) & (h < 8), "fault_active"].eq(1).all()


def test_customer_power_off_is_not_service_affecting():
    f, h = frame(sick=[("B", 12, 14)])
    lab = build_labels(
        f,
        truth(("customer_power_off", "CUSTOMER_PREMISES", 12, 12, 14, ["B"])),
        observed_until=LATER,
    )
    assert (lab["risk_24h"] == 0).all()
    assert (lab.loc[(f["onu_id"] == "B").to_numpy() & (h >= 12) & (h < 14), "cause"]
            == "CUSTOMER_PREMISES").all()  # fmt: skip


@pytest.mark.parametrize("order", [0, 1])
def test_cause_precedence_and_unknown(order):
    f, h = frame(sick=[("A", 3, 6), ("B", 20, 21)])
    rows = [
        ("cpe_hang", "CUSTOMER_PREMISES", 2, 2, 7, ["A"]),
        ("feeder_cut", "MASSIVE_OUTAGE", 3, 3, 6, ["A"]),
    ]
    lab = build_labels(f, truth(*(rows if order == 0 else rows[::-1])), observed_until=LATER)
    a = (f["onu_id"] == "A").to_numpy()
    assert (lab.loc[a & (h >= 3) & (h < 6), "cause"] == "MASSIVE_OUTAGE").all()
    assert (lab.loc[a & (h >= 3) & (h < 6), "massive"] == 1).all()
    # B is offline with no fault to explain it.
    b = (f["onu_id"] == "B").to_numpy()
    assert (lab.loc[b & (h >= 20) & (h < 21), "cause"] == "UNKNOWN").all()
    assert (lab.loc[b & (h >= 20) & (h < 21), "massive"] == 0).all()


def test_risk_is_not_labelled_where_the_horizon_runs_past_the_data():
    f, h = frame(hours=30)
    lab = build_labels(f, truth(("cpe_hang", "CUSTOMER_PREMISES", 29, 29, None, ["A"])))
    last = h.max()  # the default end is the last tick
    for hz in (2, 6, 24):
        y = lab[f"risk_{hz}h"].to_numpy()
        assert np.isnan(y[h + hz > last]).all()
        assert not np.isnan(y[(h + hz <= last) & (h < 29)]).any()
    # The hang at 29 h is seen by the 2 h horizon from 27 h on (27.75 h is the last row
    # whose 2 h horizon is observed).
    a = (f["onu_id"] == "A").to_numpy()
    y2 = lab["risk_2h"].to_numpy()
    assert (y2[a & (h >= 27) & (h + 2 <= last)] == 1).all()


def test_training_on_runs_shorter_than_the_horizon_says_so():
    from guardian_lib.features import FEATURE_COLUMNS
    from guardian_lib.models.training import fit_bundle

    f, h = frame(hours=20, sick=[("A", 3, 6)])
    lab = build_labels(f, truth(("feeder_cut", "MASSIVE_OUTAGE", 3, 3, 6, ["A"])))
    assert lab["risk_24h"].isna().all()
    features = f.assign(**{c: 0.0 for c in FEATURE_COLUMNS if c not in f})
    with pytest.raises(ValueError, match="needs runs longer than 24 h"):
        fit_bundle(features, lab, n_estimators=5)


def test_risk_counts_individual_faults_and_not_massive_outages():
    f, h = frame(onus=("A", "B"), sick=[("B", 10, 14)])
    lab = build_labels(
        f,
        truth(
            ("feeder_cut", "MASSIVE_OUTAGE", 10, 10, 14, ["B"]),
            ("fibre_degradation", "INTERMITTENT", 2, 10, None, ["A"]),
        ),
        observed_until=LATER,
    )
    a = (f["onu_id"] == "A").to_numpy()
    b = ~a
    y = lab["risk_24h"].to_numpy()
    # A's degradation hurts at 10 h: positive before; B's cut has no precursor: negative
    # before it, unlabelled while it hurts, negative after.
    assert (y[a & (h < 10)] == 1).all()
    assert (y[b & (h < 10)] == 0).all()
    assert np.isnan(y[b & (h >= 10) & (h < 14)]).all()
    assert (y[b & (h >= 14)] == 0).all()


def test_a_bng_failure_explains_sessions_not_a_dark_onu():
    # A BNG failure over A and B from 5 h to 25 h; A's laser dies at 10 h.
    f, h = frame(sick=[("A", 10, 30)])
    f.loc[(h >= 5) & (h < 25) & (f["online"] == 1), "pppoe_down"] = 1.0
    lab = build_labels(
        f,
        truth(
            ("upstream_failure", "EXTERNAL_NETWORK", 5, 5, 25, ["A", "B"]),
            ("hardware_failure", "EQUIPMENT_FAIL", 0, 10, None, ["A"]),
        ),
        observed_until=LATER,
    )
    a = (f["onu_id"] == "A").to_numpy()
    # Online without PPPoE: the BNG failure, whatever else the ONU has.
    assert (lab.loc[a & (h >= 5) & (h < 10), "cause"] == "EXTERNAL_NETWORK").all()
    assert (lab.loc[~a & (h >= 5) & (h < 25), "cause"] == "EXTERNAL_NETWORK").all()
    # Dark: the dead laser, during the BNG failure too.
    assert (lab.loc[a & (h >= 10), "cause"] == "EQUIPMENT_FAIL").all()
